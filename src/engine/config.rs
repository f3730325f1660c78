//! config: the folder pairs and settings, in a TOML file.
//!
//! The file lives in the platform config dir as confy places it
//! (`$XDG_CONFIG_HOME/mirrortray/config.toml` on Linux); `--config FILE`
//! overrides it. It holds one `[settings]` table and one `[[pair]]` table per
//! folder pair:
//!
//! ```toml
//! [settings]
//! retention_days = 30
//! # max_versions_mb = 5000   (optional: the oldest versions go first)
//! min_free_percent = 2        (the backup disk's share kept free; 0: off)
//! thin_versions = true        (older versions thinned: see thinning.rs)
//! keep_all_hours = 24
//! keep_hourly_days = 7
//! keep_daily_days = 30
//! ignore_temporary_files = true  (lock, swap, .part files: filter.rs)
//!
//! [[pair]]
//! src = "/home/me/Documents"
//! dst = "/mnt/backup/Documents"
//! ignore = ["*.tmp", "node_modules/"]
//! versions = true
//! # optional: encrypted snapshots of dst in a restic repository (offsite.rs)
//! offsite = { repository = "rest:http://nas:8000/", password_file = "/home/me/.restic-pw" }
//! ```
//!
//! Promises kept here:
//! - Reading never creates or changes the file; a missing file is an empty
//!   config. Only an edit ([`update`]) writes, and it writes atomically: a
//!   temp file next to the config (serialized by confy), flushed, then
//!   renamed over it. A reader sees the old file or the new one, never half.
//! - A file that does not parse is never overwritten: [`update`] refuses
//!   with the same message as [`load`], and the bytes stay as they were.
//! - A malformed file gives one sentence naming the file, the line and the
//!   field, and what to do — never a Debug dump. Line and field come from the
//!   span of toml's error, mapped onto the document's own spans.
//! - A config that parses is also checked ([`validate`]): absolute paths
//!   only, no two pairs backing up into the same folder or into each other,
//!   no backup folder inside a source folder (it would back up the backup),
//!   valid ignore patterns.
//!
//! The text is read and parsed here rather than with `confy::load_path`,
//! because confy creates the file when it is missing and drops the text that
//! line numbers are computed from; the parser is the same (toml).

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{reason, show};
use super::filter::Filter;
use super::mirror::PairSpec;
use super::offsite::OffsiteConfig;
use super::paths;
use super::thinning::Policy;

/// The name confy files the config under (`config.toml`).
const APP: &str = "mirrortray";
const CONFIG_NAME: &str = "config";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub settings: Settings,
    #[serde(default, rename = "pair", skip_serializing_if = "Vec::is_empty")]
    pub pairs: Vec<PairConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Days to keep versions (per pair overridable).
    pub retention_days: u32,
    /// Minutes between light drift checks while watching (fractions allowed;
    /// 0: off). The check runs less often when the tree is large, so that it
    /// costs at most 0.1 % of a core.
    pub drift_check_minutes: f64,
    /// Hours without a successful backup before the user is alerted.
    pub alert_after_hours: f64,
    /// Seconds between full scans when the OS watch limit is reached.
    pub poll_seconds: f64,
    /// Most space (MiB) each pair's versions may use; the oldest go first.
    /// None: no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_versions_mb: Option<u64>,
    /// Share of the backup disk (percent) kept free: below it, the oldest
    /// versions are removed first (0: no floor).
    pub min_free_percent: u32,
    /// Thin older versions (see `thinning.rs`): every one for
    /// `keep_all_hours`, then one an hour until `keep_hourly_days`, one a
    /// day until `keep_daily_days`, one a week after.
    pub thin_versions: bool,
    pub keep_all_hours: u32,
    pub keep_hourly_days: u32,
    pub keep_daily_days: u32,
    /// Leave the lock, swap and part-downloaded files of well-known
    /// programs out of the mirror (`filter::TEMPORARY`).
    pub ignore_temporary_files: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            retention_days: 30,
            drift_check_minutes: 5.0,
            alert_after_hours: 24.0,
            poll_seconds: 60.0,
            max_versions_mb: None,
            min_free_percent: crate::engine::store::DEFAULT_MIN_FREE_PERCENT,
            thin_versions: true,
            keep_all_hours: 24,
            keep_hourly_days: 7,
            keep_daily_days: 30,
            ignore_temporary_files: true,
        }
    }
}

impl Settings {
    /// The thinning policy (`None`: thinning is off).
    pub fn thinning(&self) -> Option<Policy> {
        self.thin_versions.then(|| {
            Policy::from_config(
                self.keep_all_hours,
                self.keep_hourly_days,
                self.keep_daily_days,
            )
        })
    }

    /// A pair with these settings (the one place settings reach a pair).
    pub fn spec(&self, src: impl Into<PathBuf>, dst: impl Into<PathBuf>) -> PairSpec {
        let mut spec = PairSpec::new(src, dst);
        spec.retention_days = self.retention_days;
        spec.max_versions_mb = self.max_versions_mb;
        spec.min_free_percent = self.min_free_percent;
        spec.thinning = self.thinning();
        spec.ignore_temporary = self.ignore_temporary_files;
        spec
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairConfig {
    pub src: PathBuf,
    pub dst: PathBuf,
    #[serde(default)]
    pub ignore: Vec<String>,
    #[serde(default = "yes")]
    pub versions: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    /// Encrypted snapshots of DST in a restic repository (`offsite.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offsite: Option<OffsiteConfig>,
}

fn yes() -> bool {
    true
}

impl PairConfig {
    pub fn spec(&self, settings: &Settings) -> PairSpec {
        let mut spec = settings.spec(&self.src, &self.dst);
        spec.ignore = self.ignore.clone();
        spec.versions = self.versions;
        spec.retention_days = self.retention_days.unwrap_or(settings.retention_days);
        spec
    }

    /// `SRC -> DST`, for messages.
    pub fn label(&self) -> String {
        format!("{} -> {}", show(&self.src), show(&self.dst))
    }
}

impl Config {
    /// Every pair's spec, their offsite copies named as the tray names
    /// the pairs (the snapshots' tag).
    pub fn specs(&self) -> Vec<PairSpec> {
        let home = directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf());
        let names =
            super::words::pair_names(self.pairs.iter().map(|p| p.src.as_path()), home.as_deref());
        self.pairs
            .iter()
            .zip(names)
            .map(|(p, name)| {
                let mut spec = p.spec(&self.settings);
                spec.offsite = p.offsite.as_ref().map(|o| {
                    Box::new(super::offsite::OffsiteSpec {
                        name,
                        config: o.clone(),
                    })
                });
                spec
            })
            .collect()
    }

    /// The pairs whose source is `src` (compared after resolving symlinks
    /// where the paths exist, so `/home/me/docs/` and a symlink to it match).
    pub fn find_src(&self, src: &Path) -> Vec<usize> {
        let want = comparable(src);
        self.pairs
            .iter()
            .enumerate()
            .filter(|(_, p)| p.src == src || comparable(&p.src) == want)
            .map(|(i, _)| i)
            .collect()
    }
}

/// What went wrong with the config. Each prints as one sentence that names
/// the file and says what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    /// Generic: a path and what is wrong with it.
    #[error("{}: {}", show(.0), .1)]
    Bad(PathBuf, String),
    /// The file does not parse (syntax, type, unknown or missing field).
    #[error(
        "config file {}, line {line}{}: {what}. Fix the file (it was not changed).",
        show(path),
        field_part(field)
    )]
    Malformed {
        path: PathBuf,
        line: usize,
        field: Option<String>,
        what: String,
    },
    /// The file parses, but a pair is not allowed (e.g. overlapping folders).
    #[error("config file {}{}, field \"{field}\" of pair {pair}: {what}. Fix the file (it was not changed).", show(path), line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Invalid {
        path: PathBuf,
        line: Option<usize>,
        field: String,
        pair: String,
        what: String,
    },
    /// An edit would make the config invalid; nothing was written.
    #[error("{what}. The config file {} was not changed.", show(path))]
    Refused { path: PathBuf, what: String },
    #[error("cannot read config file {}: {reason}.", show(path))]
    Read { path: PathBuf, reason: String },
    #[error(
        "cannot save config file {}: {reason}. The old config was not changed.",
        show(path)
    )]
    Write { path: PathBuf, reason: String },
    #[error("config file {} was changed by another program while mirrortray was editing it; nothing was saved. Run the command again.", show(.0))]
    Changed(PathBuf),
    #[error(
        "cannot find the folder for the config file: {0}. Set HOME (or XDG_CONFIG_HOME), or use --config FILE."
    )]
    NoConfigDir(String),
}

fn field_part(field: &Option<String>) -> String {
    match field {
        Some(f) => format!(", field \"{f}\""),
        None => String::new(),
    }
}

/// The default config file (confy's platform config dir).
pub fn default_path() -> Result<PathBuf, ConfigError> {
    confy::get_configuration_file_path(APP, CONFIG_NAME).map_err(|e| {
        let mut text = e.to_string();
        if let Some(src) = std::error::Error::source(&e) {
            let _ = write!(text, ": {src}");
        }
        ConfigError::NoConfigDir(text)
    })
}

/// Loads and checks the config. A missing file is an empty config (and is
/// not created).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = match read(path)? {
        Some(t) => t,
        None => return Ok(Config::default()),
    };
    let cfg = parse(path, &text)?;
    validate(&cfg).map_err(|p| p.locate(path, &text, &cfg))?;
    Ok(cfg)
}

/// Reads the file; `None` when it does not exist.
fn read(path: &Path) -> Result<Option<String>, ConfigError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                reason: read_reason(&e),
            });
        }
    };
    match String::from_utf8(bytes) {
        Ok(t) => Ok(Some(t)),
        Err(e) => {
            let bytes = e.as_bytes();
            let at = e.utf8_error().valid_up_to();
            Err(ConfigError::Malformed {
                path: path.to_path_buf(),
                line: line_at(bytes, at),
                field: None,
                what: "the file is not UTF-8 text (it must be a TOML text file)".into(),
            })
        }
    }
}

fn read_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::IsADirectory => "it is a folder; give a file with --config FILE".into(),
        io::ErrorKind::PermissionDenied => {
            "permission denied; check the file's owner and permissions".into()
        }
        _ => reason(e),
    }
}

/// Parses the text of the config file at `path` (named in errors). Does not
/// [`validate`].
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    // The document first: its spans map a later type error back to its key
    // (toml's error only has the span); a syntax error stops here.
    let doc = match DeTable::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let pos = e.span().map(|s| s.start).unwrap_or(0);
            let (field, header) = key_on_line(text, pos);
            let mut what = format!("TOML syntax error: {}", tidy(e.message()));
            if let Some(h) = header {
                let _ = write!(what, " (in the table header {h})");
            }
            return Err(ConfigError::Malformed {
                path: path.to_path_buf(),
                line: line_at(text.as_bytes(), pos),
                field,
                what,
            });
        }
    };
    toml::from_str::<Config>(text).map_err(|e| {
        let pos = e.span().map(|s| s.start).unwrap_or(0);
        let at = find_key(doc.get_ref(), pos).unwrap_or_default();
        let (field, what) = explain(e.message(), &at);
        ConfigError::Malformed {
            path: path.to_path_buf(),
            line: line_at(text.as_bytes(), pos),
            field,
            what,
        }
    })
}

/// Edits the config: loads it (a file that does not parse is refused and left
/// as it is), lets `edit` change it, checks the result and saves it
/// atomically. `edit` returning an error saves nothing.
///
/// A file that parses but breaks a rule of [`validate`] may still be edited
/// if the edit fixes it (e.g. `remove` of the offending pair).
pub fn update<T, E>(path: &Path, edit: impl FnOnce(&mut Config) -> Result<T, E>) -> Result<T, E>
where
    E: From<ConfigError>,
{
    let text = read(path)?;
    let old = match &text {
        Some(t) => parse(path, t)?,
        None => Config::default(),
    };
    let mut cfg = old.clone();
    let out = edit(&mut cfg)?;
    if let Err(p) = validate(&cfg) {
        // A problem already in the file is reported as the file's problem,
        // with its line; a new one as a refused edit.
        if let (Some(t), Err(old_problem)) = (&text, validate(&old)) {
            return Err(old_problem.locate(path, t, &old).into());
        }
        return Err(ConfigError::Refused {
            path: path.to_path_buf(),
            what: p.describe(&cfg),
        }
        .into());
    }
    save(path, &old, &cfg, text.as_deref())?;
    Ok(out)
}

/// Writes `cfg` to `path` atomically (temp file in the same folder, then
/// rename), if the file still holds `expected` (`None`: still absent),
/// which parsed to `old`. The user's text is kept with only the changes
/// written in (`config_edit`); should that ever not read back as `cfg`,
/// the whole config is written afresh instead.
fn save(
    path: &Path,
    old: &Config,
    cfg: &Config,
    expected: Option<&str>,
) -> Result<(), ConfigError> {
    let werr = |e: &io::Error| ConfigError::Write {
        path: path.to_path_buf(),
        reason: reason(e),
    };
    let target = through_links(path).map_err(|e| werr(&e))?;
    let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
        return Err(ConfigError::Write {
            path: path.to_path_buf(),
            reason: "it is not a file path".into(),
        });
    };
    std::fs::create_dir_all(dir).map_err(|e| werr(&e))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = dir.join(tmp_name);

    let result = (|| {
        let perms = std::fs::metadata(&target).ok().map(|m| m.permissions());
        let kept = super::config_edit::render(expected.unwrap_or(""), old, cfg)
            .filter(|t| parse(path, t).is_ok_and(|c| &c == cfg));
        match kept {
            Some(text) => {
                std::fs::write(&tmp, text).map_err(|e| werr(&e))?;
                if let Some(p) = perms {
                    std::fs::set_permissions(&tmp, p).map_err(|e| werr(&e))?;
                }
            }
            None => {
                let stored = match perms {
                    Some(p) => confy::store_path_perms(&tmp, cfg, p),
                    None => confy::store_path(&tmp, cfg),
                };
                stored.map_err(|e| ConfigError::Write {
                    path: path.to_path_buf(),
                    reason: confy_reason(&e),
                })?;
            }
        }
        // Durable before it replaces the old file.
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| werr(&e))?;
        // Someone else's edit since we read it is not silently lost.
        let now = match std::fs::read(&target) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(werr(&e)),
        };
        if now.as_deref() != expected.map(str::as_bytes) {
            return Err(ConfigError::Changed(path.to_path_buf()));
        }
        std::fs::rename(&tmp, &target).map_err(|e| werr(&e))?;
        #[cfg(unix)]
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A config that is a symlink (dotfile managers do this) is written
/// through: the link stays, its target (which may not exist yet) gets the
/// new content.
fn through_links(path: &Path) -> io::Result<PathBuf> {
    let mut p = paths::absolute(path)?;
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let next = std::fs::read_link(&p)?;
                p = match p.parent() {
                    Some(dir) => paths::absolute(&dir.join(next))?,
                    None => next,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(io::Error::other("too many levels of symlinks"))
}

fn confy_reason(e: &confy::ConfyError) -> String {
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            return reason(io);
        }
        if std::error::Error::source(s).is_none() {
            return s.to_string();
        }
        src = std::error::Error::source(s);
    }
    e.to_string()
}

// ---------------------------------------------------------------------------
// Validation

/// What makes a parsed config unusable: which pair, which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The pair's index, or [`SETTINGS`] for the `[settings]` table.
    pub pair: usize,
    pub field: &'static str,
    pub what: String,
}

/// [`Problem::pair`] of a problem in `[settings]`.
pub const SETTINGS: usize = usize::MAX;

impl Problem {
    /// The sentence, without a file location (for a refused edit).
    pub fn describe(&self, cfg: &Config) -> String {
        match cfg.pairs.get(self.pair) {
            Some(p) => format!("pair {}: {}", p.label(), self.what),
            None => self.what.clone(),
        }
    }

    /// The error for the file `path` holding `text`, with the line of the field.
    fn locate(&self, path: &Path, text: &str, cfg: &Config) -> ConfigError {
        let line = DeTable::parse(text).ok().and_then(|doc| {
            if self.pair == SETTINGS {
                let settings = doc.get_ref().get("settings")?;
                let DeValue::Table(t) = settings.get_ref() else {
                    return None;
                };
                let pos = match t.get_key_value(self.field) {
                    Some((k, _)) => k.span().start,
                    None => settings.span().start,
                };
                return Some(line_at(text.as_bytes(), pos));
            }
            let pair = doc.get_ref().get("pair")?;
            let DeValue::Array(arr) = pair.get_ref() else {
                return None;
            };
            let elem = arr.get(self.pair)?;
            let DeValue::Table(t) = elem.get_ref() else {
                return None;
            };
            let pos = match t.get_key_value(self.field) {
                Some((k, _)) => k.span().start,
                None => elem.span().start,
            };
            Some(line_at(text.as_bytes(), pos))
        });
        ConfigError::Invalid {
            path: path.to_path_buf(),
            line,
            field: self.field.to_string(),
            pair: cfg
                .pairs
                .get(self.pair)
                .map(PairConfig::label)
                .unwrap_or_default(),
            what: self.what.clone(),
        }
    }
}

/// Checks the rules a parsed config must keep (see the module doc). The
/// first problem found is returned.
pub fn validate(cfg: &Config) -> Result<(), Problem> {
    let problem = |pair, field, what: String| Err(Problem { pair, field, what });
    // 0 days would delete every version at the next backup: never what
    // someone who writes it wants.
    const NO_DAYS: &str = "retention_days = 0 would delete every version kept at the next backup. Keep them at least 1 day, or set versions = false for a pair that should keep none";
    if cfg.settings.retention_days == 0 {
        return problem(SETTINGS, "retention_days", NO_DAYS.into());
    }
    let floor = cfg.settings.min_free_percent;
    if floor > 50 {
        return problem(
            SETTINGS,
            "min_free_percent",
            format!(
                "min_free_percent = {floor} is not a share of the disk from 0 to 50 (percent kept free; 0: no floor)"
            ),
        );
    }
    let st = &cfg.settings;
    if st.keep_all_hours == 0 {
        return problem(
            SETTINGS,
            "keep_all_hours",
            "keep_all_hours = 0 would thin the version of a change made a moment ago. Keep every version at least 1 hour, or set thin_versions = false to keep every version".into(),
        );
    }
    if u64::from(st.keep_hourly_days) * 24 < u64::from(st.keep_all_hours) {
        return problem(
            SETTINGS,
            "keep_hourly_days",
            format!(
                "keep_hourly_days = {} ends before keep_all_hours = {} does: one an hour is kept from {} hours on, so keep_hourly_days must be at least {}",
                st.keep_hourly_days,
                st.keep_all_hours,
                st.keep_all_hours,
                st.keep_all_hours.div_ceil(24)
            ),
        );
    }
    if st.keep_daily_days < st.keep_hourly_days {
        return problem(
            SETTINGS,
            "keep_daily_days",
            format!(
                "keep_daily_days = {} ends before keep_hourly_days = {} does; make it at least {}",
                st.keep_daily_days, st.keep_hourly_days, st.keep_hourly_days
            ),
        );
    }
    for (i, p) in cfg.pairs.iter().enumerate() {
        if p.retention_days == Some(0) {
            return problem(i, "retention_days", NO_DAYS.into());
        }
        for (field, path, role) in [("src", &p.src, "source"), ("dst", &p.dst, "backup")] {
            if !path.is_absolute() {
                let shown = if path.as_os_str().is_empty() {
                    "\"\"".into()
                } else {
                    show(path)
                };
                return problem(
                    i,
                    field,
                    format!(
                        "the {role} folder {shown} is a relative path; paths in the config must be absolute (like /home/me/Documents). `mirrortray add` makes them absolute"
                    ),
                );
            }
        }
        if let Err(e) = Filter::new(&p.ignore) {
            return problem(i, "ignore", e.to_string());
        }
        if let Some(what) = p.offsite.as_ref().and_then(|o| o.problem(&p.src, &p.dst)) {
            return problem(i, "offsite", what);
        }
    }
    let real: Vec<(PathBuf, PathBuf)> = cfg
        .pairs
        .iter()
        .map(|p| (comparable(&p.src), comparable(&p.dst)))
        .collect();
    for (i, (src, dst)) in real.iter().enumerate() {
        let p = &cfg.pairs[i];
        if dst == src {
            return problem(i, "dst", "the source and the backup are the same folder. Choose a backup folder outside the source".into());
        }
        if dst.starts_with(src) {
            return problem(
                i,
                "dst",
                format!(
                    "the backup folder {} is inside its source folder {}: it would back itself up. Choose a backup folder outside the source",
                    show(&p.dst),
                    show(&p.src)
                ),
            );
        }
        if src.starts_with(dst) {
            return problem(
                i,
                "dst",
                format!(
                    "the source folder {} is inside its backup folder {}: mirroring would delete or version the source itself. Choose a backup folder outside the source",
                    show(&p.src),
                    show(&p.dst)
                ),
            );
        }
        for (j, (other_src, other_dst)) in real.iter().enumerate() {
            if i == j {
                continue;
            }
            let q = &cfg.pairs[j];
            if dst == other_dst && i > j {
                return problem(
                    i,
                    "dst",
                    format!(
                        "the backup folder {} is also the backup folder of pair {}: two pairs would overwrite each other. Give each pair its own backup folder",
                        show(&p.dst),
                        q.label()
                    ),
                );
            }
            if dst != other_dst && dst.starts_with(other_dst) {
                return problem(
                    i,
                    "dst",
                    format!(
                        "the backup folder {} is inside the backup folder {} of pair {}: that pair would delete or version this backup. Give each pair a backup folder of its own, outside the others",
                        show(&p.dst),
                        show(&q.dst),
                        q.label()
                    ),
                );
            }
            if dst.starts_with(other_src) {
                return problem(
                    i,
                    "dst",
                    format!(
                        "the backup folder {} is inside the source folder {} of pair {}: that pair would back up this backup. Choose a backup folder outside every source folder",
                        show(&p.dst),
                        show(&q.src),
                        q.label()
                    ),
                );
            }
            if src.starts_with(other_dst) {
                return problem(
                    i,
                    "src",
                    format!(
                        "the source folder {} is inside the backup folder {} of pair {}: that pair would delete or version this source. Choose a source folder outside every backup folder",
                        show(&p.src),
                        show(&q.dst),
                        q.label()
                    ),
                );
            }
        }
    }
    Ok(())
}

/// Adds SRC -> DST to the config file: the one rule for `mirrortray add`,
/// the tray's "Add a folder…" and the page. Paths are made absolute and
/// resolved; a pair overlapping another (see [`validate`]), a source backed
/// up already, or a backup folder already used is refused with words; the
/// backup folder is made now, while the user is there to see it (the
/// background watcher never creates a missing one: an unmounted drive
/// would get a backup on the wrong disk). Returns the pair added and the
/// config's default retention.
pub fn add_pair(
    config_file: &Path,
    src: &Path,
    dst: &Path,
    ignore: &[String],
    versions: bool,
    retention_days: Option<u32>,
    adopt: bool,
) -> Result<(PairConfig, u32), ConfigError> {
    let refused = |what: String| ConfigError::Refused {
        path: config_file.to_path_buf(),
        what,
    };
    let roots = paths::resolve_pair(src, dst).map_err(|e| refused(e.to_string()))?;
    // A folder of other files is not taken as a backup folder by default:
    // the mirror would move them into its versions, out of sight.
    let foreign = paths::foreign_entries(&roots.dst);
    if foreign > 0 && !adopt {
        let name = roots
            .src
            .file_name()
            .map(Path::new)
            .unwrap_or(Path::new("backup"));
        return Err(refused(format!(
            "the backup folder {} already holds {} that {} not a mirrortray backup: mirroring into it would move {} into its versions, deleted after the retention time. Choose an empty folder, such as {} (`mirrortray add {} {}`), or add --adopt to mirror into it anyway",
            show(&roots.dst),
            if foreign == 1 {
                "1 entry".to_string()
            } else {
                format!("{foreign} entries")
            },
            if foreign == 1 { "is" } else { "are" },
            if foreign == 1 { "it" } else { "them" },
            show(&roots.dst.join(name)),
            show(&roots.src),
            show(&roots.dst.join(name))
        )));
    }
    // TOML text holds UTF-8 only.
    for (role, p) in [("source", &roots.src), ("backup", &roots.dst)] {
        if p.to_str().is_none() {
            return Err(refused(format!(
                "the {role} folder {} has a name that is not UTF-8, which the config file cannot hold. Rename it, or run `mirrortray sync SRC DST` with the paths instead of a configured pair",
                show(p)
            )));
        }
    }
    let pair = PairConfig {
        src: roots.src,
        dst: roots.dst,
        ignore: ignore.to_vec(),
        versions,
        retention_days,
        offsite: None,
    };
    update(config_file, |cfg: &mut Config| {
        if let Some(&i) = cfg.find_src(&pair.src).first() {
            let old = &cfg.pairs[i];
            return Err(refused(format!(
                "{} is already backed up, to {}. To change that pair, remove it first with `mirrortray remove {}`",
                show(&pair.src),
                show(&old.dst),
                show(&old.src)
            )));
        }
        let real = comparable(&pair.dst);
        if let Some(old) = cfg
            .pairs
            .iter()
            .find(|p| p.dst == pair.dst || comparable(&p.dst) == real)
        {
            return Err(refused(format!(
                "{} is already the backup folder of pair {}. Give each pair its own backup folder",
                show(&pair.dst),
                old.label()
            )));
        }
        // The overlap rules, before anything is made on disk (a file broken
        // already is refused by `update`, with its own line and field).
        let mut next = cfg.clone();
        next.pairs.push(pair.clone());
        if let (Ok(()), Err(p)) = (validate(cfg), validate(&next)) {
            return Err(refused(p.what));
        }
        std::fs::create_dir_all(&pair.dst).map_err(|e| {
            refused(format!(
                "cannot create the backup folder {}: {}. Choose a folder you can write to",
                show(&pair.dst),
                reason(&e)
            ))
        })?;
        cfg.pairs.push(pair.clone());
        Ok(cfg.settings.retention_days)
    })
    .map(|days| (pair, days))
}

/// `p` as it can be compared with other paths: symlinks resolved where the
/// path exists (its longest existing ancestor otherwise), `.` and `..`
/// folded; the plain path when it cannot be resolved (e.g. a source on an
/// unmounted drive).
fn comparable(p: &Path) -> PathBuf {
    match paths::resolve_dst(p) {
        Ok(real) => real,
        Err(_) => paths::fold_dots(p),
    }
}

// ---------------------------------------------------------------------------
// Error messages: from toml's span and message to a line, a field and words.

/// 1-based line of byte offset `pos`.
fn line_at(text: &[u8], pos: usize) -> usize {
    text[..pos.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// For a syntax error: the key written on the error's line (`key = ...`), or
/// the table header when the line is one.
fn key_on_line(text: &str, pos: usize) -> (Option<String>, Option<String>) {
    let pos = pos.min(text.len());
    let start = text.as_bytes()[..pos]
        .iter()
        .rposition(|b| *b == b'\n')
        .map(|i| i + 1)
        .unwrap_or(0);
    let end = text[start..]
        .find('\n')
        .map(|i| start + i)
        .unwrap_or(text.len());
    let line = text[start..end].trim();
    if line.starts_with('[') {
        return (None, Some(line.to_string()));
    }
    let key = line
        .split('=')
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches(|c| c == '"' || c == '\'');
    if key.is_empty() || key.starts_with('#') {
        (None, None)
    } else {
        (Some(key.to_string()), None)
    }
}

/// A step in the document: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

fn contains(span: &std::ops::Range<usize>, pos: usize) -> bool {
    span.contains(&pos) || (span.start == pos && span.end == pos)
}

/// The path to the key or value at byte `pos`. Children are searched first:
/// a `[[pair]]` table's span is only its header, its keys lie outside it.
fn find_key(table: &DeTable<'_>, pos: usize) -> Option<Vec<Step>> {
    for (k, v) in table.iter() {
        let here = Step::Key(k.get_ref().to_string());
        if let Some(mut rest) = find_in_value(v, pos) {
            rest.insert(0, here);
            return Some(rest);
        }
        if contains(&k.span(), pos) || contains(&v.span(), pos) {
            return Some(vec![here]);
        }
    }
    None
}

fn find_in_value(v: &Spanned<DeValue<'_>>, pos: usize) -> Option<Vec<Step>> {
    match v.get_ref() {
        DeValue::Table(t) => find_key(t, pos),
        DeValue::Array(a) => {
            for (i, e) in a.iter().enumerate() {
                if let Some(mut rest) = find_in_value(e, pos) {
                    rest.insert(0, Step::Index(i));
                    return Some(rest);
                }
                if contains(&e.span(), pos) {
                    return Some(vec![Step::Index(i)]);
                }
            }
            None
        }
        _ => None,
    }
}

/// The field and the explanation for a deserialization error `msg` found at
/// document path `at`.
fn explain(msg: &str, at: &[Step]) -> (Option<String>, String) {
    let last_key = at.iter().rev().find_map(|s| match s {
        Step::Key(k) => Some(k.clone()),
        Step::Index(_) => None,
    });
    let in_pair = matches!(at.first(), Some(Step::Key(k)) if k == "pair");
    let names = backticked(msg);

    if let Some(rest) = msg.strip_prefix("missing field ") {
        let field = names
            .first()
            .cloned()
            .unwrap_or_else(|| rest.trim_matches('`').to_string());
        let what = if in_pair {
            "missing: every [[pair]] needs a \"src\" (the folder to back up) and a \"dst\" (the backup folder)".to_string()
        } else {
            "missing".to_string()
        };
        return (Some(field), what);
    }
    if msg.starts_with("unknown field ") {
        let field = names.first().cloned().or(last_key);
        let known: Vec<String> = names.iter().skip(1).cloned().collect();
        let mut what = "unknown field".to_string();
        if let Some(f) = &field
            && let Some(best) = closest(f, &known)
        {
            let _ = write!(what, "; did you mean \"{best}\"?");
        }
        if !known.is_empty() {
            let _ = write!(what, " The known fields here are: {}", known.join(", "));
        }
        return (field, what);
    }
    for prefix in ["invalid type: ", "invalid value: ", "invalid length: "] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            let (found, expected) = match rest.rsplit_once(", expected ") {
                Some((f, e)) => (f, e),
                None => (rest, ""),
            };
            let mut what = if expected.is_empty() {
                format!("{} is not allowed here", found_words(found))
            } else {
                format!(
                    "expected {}, found {}",
                    expected_words(expected),
                    found_words(found)
                )
            };
            if last_key.as_deref() == Some("pair") && found == "map" {
                what.push_str("; write each pair as [[pair]] (double brackets)");
            }
            return (last_key, what);
        }
    }
    (last_key, tidy(msg))
}

/// The `quoted` names in a serde message, in order.
fn backticked(msg: &str) -> Vec<String> {
    msg.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn expected_words(e: &str) -> String {
    match e {
        "u32" => "a whole number (0 to 4294967295)".into(),
        "u64" => "a whole number (0 or more)".into(),
        "f64" => "a number".into(),
        "a boolean" => "true or false".into(),
        "path string" | "a string" => "a text in quotes (like \"/home/me/Documents\")".into(),
        "a sequence" => "a list in brackets (like [\"*.tmp\", \"cache/\"])".into(),
        "struct Settings" => "a table ([settings])".into(),
        "struct PairConfig" => "a table ([[pair]])".into(),
        "struct Config" => "a table".into(),
        other => tidy(other),
    }
}

fn found_words(f: &str) -> String {
    let value = backticked(f).into_iter().next();
    if let Some(s) = f.strip_prefix("string ") {
        return format!("the text {s}");
    }
    match (f.split(' ').next().unwrap_or(""), value) {
        ("integer", Some(v)) => format!("the number {v}"),
        ("floating", Some(v)) => format!("the decimal number {v}"),
        ("boolean", Some(v)) => v,
        ("map", _) => "a table".into(),
        ("sequence", _) => "a list".into(),
        _ => tidy(f),
    }
}

/// toml's and serde's messages with `backticks` shown as "quotes".
fn tidy(msg: &str) -> String {
    let mut out = String::new();
    for (i, part) in msg.split('`').enumerate() {
        if i % 2 == 1 && !part.contains('"') {
            out.push('"');
            out.push_str(part);
            out.push('"');
        } else if i % 2 == 1 {
            out.push('\'');
            out.push_str(part);
            out.push('\'');
        } else {
            out.push_str(part);
        }
    }
    out.trim_end_matches('.').to_string()
}

/// The known name closest to a misspelt `word`, if one is close enough.
fn closest(word: &str, known: &[String]) -> Option<String> {
    known
        .iter()
        .map(|k| (distance(word, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.clone())
}

/// Optimal string alignment distance (Levenshtein plus swapped neighbours:
/// `ignroe` is one step from `ignore`).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(Path::new("/c/config.toml"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn thinning_settings_that_contradict_each_other_are_refused() {
        let table = [
            (
                "keep_all_hours = 0",
                "keep_all_hours = 0 would thin the version of a change made a moment ago",
            ),
            (
                "keep_all_hours = 72\nkeep_hourly_days = 2",
                "keep_hourly_days = 2 ends before keep_all_hours = 72 does: one an hour is kept from 72 hours on, so keep_hourly_days must be at least 3",
            ),
            (
                "keep_daily_days = 3",
                "keep_daily_days = 3 ends before keep_hourly_days = 7 does; make it at least 7",
            ),
        ];
        for (line, want) in table {
            let text = format!("[settings]\n{line}\n");
            let cfg = parse(Path::new("/c/config.toml"), &text).unwrap();
            let e = validate(&cfg)
                .unwrap_err()
                .locate(Path::new("/c/config.toml"), &text, &cfg)
                .to_string();
            assert!(e.contains(want), "{line}: {e}");
        }
        let c = parse(
            Path::new("/c/config.toml"),
            "[settings]\nkeep_all_hours = 48\nkeep_hourly_days = 14\nkeep_daily_days = 60\n",
        )
        .unwrap();
        assert_eq!(
            c.settings.thinning(),
            Some(crate::engine::thinning::Policy::from_config(48, 14, 60))
        );
    }

    #[test]
    fn zero_retention_days_is_refused_with_the_line() {
        let err = |text: &str| {
            let cfg = parse(Path::new("/c/config.toml"), text).unwrap();
            validate(&cfg)
                .unwrap_err()
                .locate(Path::new("/c/config.toml"), text, &cfg)
                .to_string()
        };
        let e = err("[settings]\n# keep\nretention_days = 0\n");
        assert!(e.contains("line 3"), "{e}");
        assert!(
            e.contains("retention_days = 0 would delete every version"),
            "{e}"
        );
        let e = err("[[pair]]\nsrc = \"/s\"\ndst = \"/d\"\nretention_days = 0\n");
        assert!(e.contains("line 4") && e.contains("/s -> /d"), "{e}");
    }

    #[test]
    fn wrong_type_names_line_and_field() {
        let e = err("[settings]\n\nretention_days = \"x\"\n");
        assert_eq!(
            e,
            "config file /c/config.toml, line 3, field \"retention_days\": expected a whole number (0 to 4294967295), found the text \"x\". Fix the file (it was not changed)."
        );
    }

    #[test]
    fn typo_suggests_the_field() {
        let e = err("[[pair]]\nsrc = \"/a\"\ndst = \"/b\"\nignroe = [\"x\"]\n");
        assert!(
            e.contains("line 4, field \"ignroe\": unknown field; did you mean \"ignore\"?"),
            "{e}"
        );
    }

    #[test]
    fn missing_dst_in_second_pair() {
        let e = err("[[pair]]\nsrc = \"/a\"\ndst = \"/b\"\n\n[[pair]]\nsrc = \"/c\"\n");
        assert!(e.contains("line 5, field \"dst\": missing"), "{e}");
    }

    #[test]
    fn syntax_error_names_the_key() {
        let e = err("[[pair]]\nsrc = \"/a\ndst = \"/b\"\n");
        assert!(
            e.contains("line 2, field \"src\": TOML syntax error"),
            "{e}"
        );
    }

    #[test]
    fn single_bracket_pair_gets_a_hint() {
        let e = err("[pair]\nsrc = \"/a\"\ndst = \"/b\"\n");
        assert!(
            e.contains("line 1, field \"pair\"") && e.contains("[[pair]] (double brackets)"),
            "{e}"
        );
    }

    #[test]
    fn nested_pair_type_error() {
        let e = err(
            "[[pair]]\nsrc = \"/a\"\ndst = \"/b\"\n\n[[pair]]\nsrc = \"/c\"\ndst = \"/d\"\nversions = \"yes\"\n",
        );
        assert!(
            e.contains("line 8, field \"versions\": expected true or false"),
            "{e}"
        );
    }

    #[test]
    fn distance_counts_swaps_once() {
        assert_eq!(distance("ignroe", "ignore"), 1);
        assert_eq!(distance("src", "dst"), 3);
    }

    #[test]
    fn validation_finds_overlaps() {
        let pair = |s: &str, d: &str| PairConfig {
            src: s.into(),
            dst: d.into(),
            ignore: vec![],
            versions: true,
            retention_days: None,
            offsite: None,
        };
        let cfg = |pairs| Config {
            settings: Settings::default(),
            pairs,
        };
        assert!(validate(&cfg(vec![pair("/nx/a", "/nx/b"), pair("/nx/c", "/nx/d")])).is_ok());
        assert_eq!(
            validate(&cfg(vec![pair("/nx/a", "/nx/b"), pair("/nx/c", "/nx/b")]))
                .unwrap_err()
                .pair,
            1
        );
        assert_eq!(
            validate(&cfg(vec![pair("/nx/a", "/nx/b"), pair("/nx/c", "/nx/b/x")]))
                .unwrap_err()
                .pair,
            1
        );
        assert_eq!(
            validate(&cfg(vec![
                pair("/nx/a", "/nx/b"),
                pair("/nx/c", "/nx/a/bk")
            ]))
            .unwrap_err()
            .pair,
            1
        );
        assert_eq!(
            validate(&cfg(vec![
                pair("/nx/a", "/nx/c/bk"),
                pair("/nx/c", "/nx/d")
            ]))
            .unwrap_err()
            .pair,
            0
        );
        assert_eq!(
            validate(&cfg(vec![pair("rel", "/nx/b")]))
                .unwrap_err()
                .field,
            "src"
        );
    }
}
