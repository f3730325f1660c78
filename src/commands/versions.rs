//! versions: what is kept of a path (`mirrortray versions PATH`), and how
//! much space versions use (`--stats`).
//!
//! Also home of what `restore` shares with it: finding the pair a user's
//! path belongs to ([`locate`]), reading a TIME ([`parse_time`]) and
//! showing times.
//!
//! A PATH may be given in a source folder, in a backup folder, or inside a
//! backup's versions folder (`DST/.mirrortray/versions/<time>/<path>`, as
//! the tray's "Restore…" shows it): all three name the same path of the
//! pair. It need not exist any more.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use indicatif::HumanBytes;
use jiff::Timestamp;
use jiff::tz::TimeZone;

use mirrortray::engine::config::{Config, PairConfig};
use mirrortray::engine::error::show;
use mirrortray::engine::filter::RESERVED;
use mirrortray::engine::fsops::{DirHandle, Kind, Meta};
use mirrortray::engine::history::{History, Stamp, Version, to_timestamp};
use mirrortray::engine::mirror::PairSpec;
use mirrortray::engine::{stamp, store};

use crate::cli::Global;
use crate::exit_code::ExitCode;

/// A user's path, placed in its pair.
pub struct Located {
    /// The pair's source and backup folders (resolved).
    pub src: PathBuf,
    pub dst: PathBuf,
    /// The path relative to both (empty: the whole pair).
    pub rel: PathBuf,
    /// The pair's settings (from the config when it is configured).
    pub spec: PairSpec,
    /// The path was given inside this time folder of the versions.
    pub in_version: Option<Stamp>,
}

impl Located {
    /// The path in SRC, for messages and commands to copy.
    pub fn src_path(&self) -> PathBuf {
        join(&self.src, &self.rel)
    }
}

fn join(root: &Path, rel: &Path) -> PathBuf {
    if rel.as_os_str().is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    }
}

/// The path with its folders resolved through symlinks where they exist
/// (the last component is kept as it is: it may be a symlink to restore).
fn resolved(abs: &Path) -> Option<PathBuf> {
    let name = abs.file_name()?;
    let mut existing = abs.parent()?.to_path_buf();
    let mut rest: Vec<std::ffi::OsString> = vec![name.to_os_string()];
    loop {
        match std::fs::canonicalize(&existing) {
            Ok(real) => {
                let mut out = real;
                for c in rest.iter().rev() {
                    out.push(c);
                }
                return Some(out);
            }
            // Longer than the system resolves in one go (a tree thousands of
            // levels deep): the part past that is kept as written. Trying
            // each shorter prefix in turn would cost depth² lookups.
            Err(e)
                if e.raw_os_error() == Some(libc::ENAMETOOLONG)
                    && existing.as_os_str().len() >= libc::PATH_MAX as usize =>
            {
                while existing.as_os_str().len() >= libc::PATH_MAX as usize {
                    rest.push(existing.file_name()?.to_os_string());
                    if !existing.pop() {
                        return None;
                    }
                }
                continue;
            }
            Err(_) => {}
        }
        rest.push(existing.file_name()?.to_os_string());
        if !existing.pop() {
            return None;
        }
    }
}

fn settings_spec(cfg: Option<&Config>, src: &Path, dst: &Path) -> PairSpec {
    cfg.map(|c| c.settings.clone())
        .unwrap_or_default()
        .spec(src, dst)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

/// Finds the pair `path` belongs to: inside a configured source folder, or
/// inside a backup folder (one with `.mirrortray/source`), including its
/// versions folder.
pub fn locate(g: &Global, path: &Path) -> Result<Located, String> {
    let cfg = match super::pairs::load_config(g) {
        Ok((_, c)) => Some(c),
        Err(e) => {
            log::warn!("{e} (looking for backup folders only)");
            None
        }
    };
    let abs = std::path::absolute(path)
        .map(|p| mirrortray::engine::paths::fold_dots(&p))
        .map_err(|e| format!("{}: {}", show(path), e))?;
    let mut candidates = vec![abs.clone()];
    if let Some(r) = resolved(&abs)
        && r != abs
    {
        candidates.push(r);
    }
    // Inside a configured source folder.
    if let Some(cfg) = &cfg {
        for cand in &candidates {
            for p in &cfg.pairs {
                let roots = [Some(p.src.clone()), std::fs::canonicalize(&p.src).ok()];
                for root in roots.iter().flatten() {
                    if let Ok(rel) = cand.strip_prefix(root) {
                        return configured(cfg, p, rel.to_path_buf(), None);
                    }
                }
            }
        }
    }
    // Inside a backup folder.
    for cand in &candidates {
        for anc in cand.ancestors() {
            let record = anc.join(RESERVED).join("source");
            if !std::fs::symlink_metadata(&record).is_ok_and(|m| m.is_file()) {
                continue;
            }
            let rel = cand.strip_prefix(anc).unwrap_or(Path::new(""));
            let (rel, in_version) = inside_store(anc, rel)?;
            let pair = cfg.as_ref().and_then(|c| {
                c.pairs
                    .iter()
                    .find(|p| same_dir(&p.dst, anc))
                    .map(|p| (c, p))
            });
            if let Some((c, p)) = pair {
                return configured(c, p, rel, in_version);
            }
            let rec = DirHandle::open_root(anc)
                .and_then(|d| d.open_dir(std::ffi::OsStr::new(RESERVED)))
                .ok()
                .and_then(|d| store::read_source_record(&d))
                .ok_or_else(|| {
                    format!(
                        "{}: cannot read the backup's record of its source folder",
                        show(&record)
                    )
                })?;
            let dst = std::fs::canonicalize(anc).unwrap_or_else(|_| anc.to_path_buf());
            return Ok(Located {
                spec: settings_spec(cfg.as_ref(), &rec.path, &dst),
                src: rec.path,
                dst,
                rel,
                in_version,
            });
        }
    }
    // A configured backup folder that holds no backup yet.
    if let Some(cfg) = &cfg {
        for cand in &candidates {
            if let Some(p) = cfg.pairs.iter().find(|p| cand.starts_with(&p.dst)) {
                return Err(format!(
                    "the backup folder {} holds no backup yet, so nothing is kept of {}. Run `mirrortray sync` first",
                    show(&p.dst),
                    show(&abs)
                ));
            }
        }
    }
    let sources = match &cfg {
        Some(c) if !c.pairs.is_empty() => c
            .pairs
            .iter()
            .map(|p| show(&p.src))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "none".into(),
    };
    Err(format!(
        "{} is not inside any backed-up folder (configured sources: {sources}). Give a path inside a source folder of the config, or inside a backup folder (for a pair used only on the command line, like `mirrortray sync SRC DST`, give the path in DST)",
        show(&abs)
    ))
}

fn configured(
    cfg: &Config,
    p: &PairConfig,
    rel: PathBuf,
    in_version: Option<Stamp>,
) -> Result<Located, String> {
    let src = std::fs::canonicalize(&p.src).unwrap_or_else(|_| p.src.clone());
    let dst = std::fs::canonicalize(&p.dst).unwrap_or_else(|_| p.dst.clone());
    if !dst.join(RESERVED).is_dir() {
        return Err(format!(
            "the backup folder {} holds no backup yet (is its drive mounted?), so nothing is kept of {}",
            show(&p.dst),
            show(&join(&p.src, &rel))
        ));
    }
    Ok(Located {
        src,
        dst,
        rel,
        spec: p.spec(&cfg.settings),
        in_version,
    })
}

/// A path inside DST: its own folder is refused, except the versions,
/// which name a path and a time.
fn inside_store(dst: &Path, rel: &Path) -> Result<(PathBuf, Option<Stamp>), String> {
    let mut comps = rel.components();
    if comps.next().map(|c| c.as_os_str()) != Some(std::ffi::OsStr::new(RESERVED)) {
        return Ok((rel.to_path_buf(), None));
    }
    let refuse = || {
        format!(
            "{} is mirrortray's own folder, not a backed-up path. Give a path in the source folder, in the backup folder, or in {}",
            show(&dst.join(rel)),
            show(&dst.join(RESERVED).join("versions"))
        )
    };
    if comps.next().map(|c| c.as_os_str()) != Some(std::ffi::OsStr::new("versions")) {
        return Err(refuse());
    }
    let Some(name) = comps.next().and_then(|c| c.as_os_str().to_str()) else {
        return Err(refuse());
    };
    let Some(time) = stamp::parse(name) else {
        return Err(refuse());
    };
    let inner: PathBuf = comps.collect();
    Ok((
        inner,
        Some(Stamp {
            time,
            name: name.to_string(),
        }),
    ))
}

/// Reads a TIME: ISO-8601 with a zone or offset (`2026-11-25T13:30:00Z`),
/// without one (local time: `2026-11-25T14:30`, `2026-11-25 14:30`, a date
/// alone is its start, a time alone is today), a versions folder name
/// (`2026-11-25T13-30-00.123456Z`), or a span back from now ("2 hours
/// ago", "90 minutes ago", "1 day ago").
pub fn parse_time(text: &str) -> Result<Timestamp, String> {
    let s = text.trim();
    let local = TimeZone::system();
    let bad = || {
        format!(
            "cannot read the time {text:?}: give an ISO-8601 time like 2026-11-25T14:30 (local time) or 2026-11-25T13:30:00Z, or a span like \"2 hours ago\""
        )
    };
    if s.eq_ignore_ascii_case("now") {
        return Ok(Timestamp::now());
    }
    if let Some(t) = stamp::parse(s) {
        return Ok(t);
    }
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    if let Ok(z) = s.parse::<jiff::ZonedDateTime>() {
        return Ok(z.timestamp());
    }
    if let Ok(dt) = s.parse::<jiff::civil::DateTime>() {
        return dt
            .to_zoned_datetime(local)
            .map(|z| z.timestamp())
            .map_err(|_| bad());
    }
    if let Ok(d) = s.parse::<jiff::civil::Date>() {
        return d
            .to_zoned_datetime(local)
            .map(|z| z.timestamp())
            .map_err(|_| bad());
    }
    if let Ok(t) = s.parse::<jiff::civil::Time>() {
        let today = Timestamp::now().to_zoned_datetime(local.clone()).date();
        return today
            .to_datetime(t)
            .to_zoned_datetime(local)
            .map(|z| z.timestamp())
            .map_err(|_| bad());
    }
    if let Ok(span) = s.parse::<jiff::Span>() {
        return jiff::ZonedDateTime::now()
            .checked_add(span)
            .map(|z| z.timestamp())
            .map_err(|_| bad());
    }
    Err(bad())
}

/// A time in UTC with microseconds, as `--at` takes it back exactly.
pub fn utc(t: Timestamp) -> String {
    let s = stamp::format(t);
    format!("{}:{}:{}", &s[..13], &s[14..16], &s[17..])
}

/// A time in the local zone, to the second.
pub fn local(t: Timestamp) -> String {
    t.to_zoned_datetime(TimeZone::system())
        .strftime("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

/// "a time" for messages: local, and UTC to the microsecond.
pub fn both(t: Timestamp) -> String {
    format!("{} ({})", local(t), utc(t))
}

fn reason_words(v: &Version) -> String {
    let base = match v.reason {
        Some(r) => match r.as_str() {
            "renamed-over" => "renamed over",
            "replaced" => "replaced by another kind",
            other => other,
        },
        None => "unknown",
    };
    match &v.with_folder {
        Some(f) => format!("{base} (with folder {})", show(f)),
        None => base.to_string(),
    }
}

fn describe_now(meta: Option<&Meta>) -> String {
    match meta {
        None => "not in the backup (deleted)".into(),
        Some(m) => match m.kind {
            Kind::Dir => "a folder".into(),
            Kind::Symlink => format!("a symlink, modified {}", local(to_timestamp(m.mtime))),
            _ => format!(
                "{}, modified {}",
                HumanBytes(m.size),
                local(to_timestamp(m.mtime))
            ),
        },
    }
}

/// `mirrortray versions [PATH] [--json] [--stats]`.
pub fn run(g: &Global, path: Option<&Path>, json: bool, stats: bool) -> ExitCode {
    if stats {
        return run_stats(g, path, json);
    }
    let Some(path) = path else {
        super::fail("give a PATH (a file or folder in a source or backup folder), or --stats");
        return ExitCode::Error;
    };
    let at = match locate(g, path) {
        Ok(l) => l,
        Err(e) => {
            super::fail(e);
            return ExitCode::Error;
        }
    };
    let history = match History::open(&at.dst) {
        Ok(h) => h,
        Err(e) => {
            super::fail(e);
            return ExitCode::Error;
        }
    };
    let versions = match history.versions_of(&at.rel) {
        Ok(v) => v,
        Err(e) => {
            super::fail(e);
            return ExitCode::Error;
        }
    };
    let now = match history.current(&at.rel) {
        Ok(m) => m,
        Err(e) => {
            super::fail(format!(
                "{}: cannot read: {}",
                show(&join(&at.dst, &at.rel)),
                mirrortray::engine::error::reason(&e)
            ));
            return ExitCode::Error;
        }
    };
    let in_src = std::fs::symlink_metadata(at.src_path()).is_ok();
    if versions.is_empty() && now.is_none() && !in_src {
        super::fail(format!(
            "unknown path {}: the backup {} has no version of it and does not hold it",
            show(&at.src_path()),
            show(&at.dst)
        ));
        return ExitCode::Error;
    }
    if json {
        println!("{}", listing_json(&at, &history, now.as_ref(), &versions));
    } else if !g.quiet {
        print!("{}", listing_text(&at, &history, now.as_ref(), &versions));
    }
    ExitCode::Success
}

fn listing_text(
    at: &Located,
    history: &History,
    now: Option<&Meta>,
    versions: &[Version],
) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{}  (backup {})", show(&at.src_path()), show(&at.dst));
    let _ = writeln!(o, "Now: {}", describe_now(now));
    if versions.is_empty() {
        let _ = writeln!(
            o,
            "No versions kept: it has not changed since it was backed up."
        );
        return o;
    }
    let is_folder = versions.iter().any(|v| v.rel != at.rel);
    let _ = writeln!(
        o,
        "{} version{} kept, newest first (each is the content the backup held until that time):",
        versions.len(),
        if versions.len() == 1 { "" } else { "s" }
    );
    let _ = writeln!(o);
    let mut rows: Vec<[String; 6]> = vec![[
        "kept at (UTC, use with --at)".into(),
        "local time".into(),
        "size".into(),
        "content modified".into(),
        "why".into(),
        if is_folder {
            "path".into()
        } else {
            String::new()
        },
    ]];
    for v in versions {
        let size = if v.meta.kind == Kind::Dir {
            format!("{} ({} files)", HumanBytes(v.bytes), v.files)
        } else {
            HumanBytes(v.bytes).to_string()
        };
        let path = if is_folder {
            let mut p = show(&v.rel);
            if v.meta.kind == Kind::Dir {
                p.push('/');
            }
            if v.meta.kind == Kind::Symlink {
                p.push_str(" (symlink)");
            }
            p
        } else {
            String::new()
        };
        rows.push([
            utc(v.stamp.time),
            local(v.stamp.time),
            size,
            local(to_timestamp(v.meta.mtime)),
            reason_words(v),
            path,
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for r in &rows {
        let mut line = String::from(" ");
        for (i, cell) in r.iter().enumerate() {
            line.push(' ');
            line.push_str(cell);
            if i < 5 {
                line.push_str(&" ".repeat(widths[i] - cell.chars().count() + 1));
            }
        }
        let _ = writeln!(o, "{}", line.trim_end());
    }
    let _ = writeln!(o);
    if let Some(t) = history.complete_from() {
        let _ = writeln!(
            o,
            "Older versions were pruned: restores reach back to {}.",
            both(t)
        );
    }
    if let Some(text) = mirrortray::engine::words::thinned_text(&history.thinned_of(&at.rel), both)
    {
        let _ = writeln!(o, "{text}");
    }
    let _ = writeln!(
        o,
        "Restore: mirrortray restore {} --at {}   (without --at: the newest version)",
        quote(&at.src_path()),
        utc(versions[0].stamp.time)
    );
    o
}

/// A path quoted for a shell when it needs it.
pub fn quote(p: &Path) -> String {
    let s = show(p);
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn listing_json(
    at: &Located,
    history: &History,
    now: Option<&Meta>,
    versions: &[Version],
) -> String {
    let mut o = String::from("{");
    let _ = write!(
        o,
        "\"src\":{},\"dst\":{},\"path\":{},",
        js(&show(&at.src)),
        js(&show(&at.dst)),
        js(&show(&at.rel))
    );
    let _ = write!(o, "\"current\":");
    match now {
        None => o.push_str("null"),
        Some(m) => {
            let _ = write!(o, "{}", meta_json(m));
        }
    }
    let _ = write!(
        o,
        ",\"complete_from\":{}",
        history
            .complete_from()
            .map_or("null".into(), |t| js(&utc(t)))
    );
    o.push_str(",\"versions\":[");
    for (i, v) in versions.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        let stored = v.stored.as_ref().map_or("null".into(), |s| {
            js(&show(&history.versions_path().join(&v.stamp.name).join(s)))
        });
        let _ = write!(
            o,
            "{{\"time\":{},\"stamp\":{},\"local_time\":{},\"path\":{},\"kind\":{},\"size\":{},\"files\":{},\"mtime\":{},\"mode\":{},\"reason\":{},\"with_folder\":{},\"stored\":{}}}",
            js(&utc(v.stamp.time)),
            js(&v.stamp.name),
            js(&local(v.stamp.time)),
            js(&show(&v.rel)),
            js(mirrortray::engine::versions::kind_code(v.meta.kind)),
            v.bytes,
            v.files,
            js(&utc(to_timestamp(v.meta.mtime))),
            js(&format!("{:04o}", v.meta.mode)),
            v.reason.map_or("null".into(), |r| js(r.as_str())),
            v.with_folder
                .as_ref()
                .map_or("null".into(), |f| js(&show(f))),
            stored,
        );
    }
    o.push_str("]}");
    o
}

fn meta_json(m: &Meta) -> String {
    format!(
        "{{\"kind\":{},\"size\":{},\"mtime\":{},\"mode\":{}}}",
        js(mirrortray::engine::versions::kind_code(m.kind)),
        m.size,
        js(&utc(to_timestamp(m.mtime))),
        js(&format!("{:04o}", m.mode))
    )
}

/// A JSON string.
pub fn js(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// `mirrortray versions --stats [PATH]`: per pair.
fn run_stats(g: &Global, path: Option<&Path>, json: bool) -> ExitCode {
    let pairs: Vec<(PathBuf, PathBuf, PairSpec)> = match path {
        Some(p) => match locate(g, p) {
            Ok(l) => vec![(l.src, l.dst, l.spec)],
            Err(e) => {
                super::fail(e);
                return ExitCode::Error;
            }
        },
        None => match super::pairs::load_config(g) {
            Ok((file, cfg)) if cfg.pairs.is_empty() => {
                super::fail(format!(
                    "no folder pairs in {}: give a PATH in a backup folder, or add a pair with `mirrortray add SRC DST`",
                    show(&file)
                ));
                return ExitCode::Error;
            }
            Ok((_, cfg)) => cfg
                .pairs
                .iter()
                .map(|p| (p.src.clone(), p.dst.clone(), p.spec(&cfg.settings)))
                .collect(),
            Err(e) => {
                super::fail(e);
                return ExitCode::Error;
            }
        },
    };
    let mut worst = ExitCode::Success;
    let mut objects = Vec::new();
    for (src, dst, spec) in pairs {
        let usage = History::open(&dst).and_then(|h| Ok((h.usage()?, h.complete_from())));
        let (u, complete_from) = match usage {
            Ok(x) => x,
            Err(e) => {
                super::fail(e);
                worst = ExitCode::Error;
                continue;
            }
        };
        if json {
            objects.push(format!(
                "{{\"src\":{},\"dst\":{},\"versions\":{},\"bytes\":{},\"files\":{},\"stamps\":{},\"oldest\":{},\"newest\":{},\"complete_from\":{},\"retention_days\":{},\"max_versions_mb\":{},\"min_free_percent\":{},\"thinning\":{}}}",
                js(&show(&src)),
                js(&show(&dst)),
                js(&show(&dst.join(RESERVED).join("versions"))),
                u.bytes,
                u.files,
                u.stamps,
                u.oldest.as_ref().map_or("null".into(), |s| js(&utc(s.time))),
                u.newest.as_ref().map_or("null".into(), |s| js(&utc(s.time))),
                complete_from.map_or("null".into(), |t| js(&utc(t))),
                spec.retention_days,
                spec.max_versions_mb.map_or("null".into(), |m| m.to_string()),
                spec.min_free_percent,
                spec.thinning
                    .as_ref()
                    .map_or("null".into(), |t| js(&t.describe())),
            ));
            continue;
        }
        if g.quiet {
            continue;
        }
        println!("{} -> {}", show(&src), show(&dst));
        println!(
            "  versions: {} in {} files, {} time folders ({})",
            HumanBytes(u.bytes),
            u.files,
            u.stamps,
            show(&dst.join(RESERVED).join("versions"))
        );
        if let (Some(a), Some(b)) = (&u.oldest, &u.newest) {
            println!("  oldest: {}", both(a.time));
            println!("  newest: {}", both(b.time));
        }
        let limit = match spec.max_versions_mb {
            Some(m) => format!("at most {}", HumanBytes(m.saturating_mul(1024 * 1024))),
            None => "no size limit".into(),
        };
        println!("  kept for {} days, {limit}", spec.retention_days);
        match &spec.thinning {
            Some(t) => println!("  thinned: {}", t.describe()),
            None => println!("  not thinned: every version stays for the whole time"),
        }
        let disk = mirrortray::engine::fsops::DirHandle::open_root(&dst)
            .and_then(|d| Ok((d.free_bytes()?, d.fs_bytes()?)));
        let free_now = match disk {
            Ok((free, total)) if total > 0 => format!(
                " ({} free now, {}%)",
                HumanBytes(free),
                free.saturating_mul(100) / total
            ),
            _ => String::new(),
        };
        match spec.min_free_percent {
            0 => println!(
                "  no free-space floor: versions stay when the backup disk fills{free_now}"
            ),
            p => println!(
                "  the oldest go first when the backup disk has less than {p}% free{free_now}"
            ),
        }
        match complete_from {
            Some(t) => println!(
                "  restores reach back to {} (older versions were pruned)",
                both(t)
            ),
            None => println!("  restores reach back to the first backup (nothing pruned yet)"),
        }
    }
    if json {
        println!("[{}]", objects.join(","));
    }
    worst
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn times_people_write() {
        let now = Timestamp::now();
        let ago = parse_time("2 hours ago").unwrap();
        let d = now.duration_since(ago).as_secs_f64();
        assert!((7190.0..7210.0).contains(&d), "{d}");
        assert_eq!(
            parse_time("2026-11-25T13:30:00Z").unwrap(),
            "2026-11-25T13:30:00Z".parse().unwrap()
        );
        assert_eq!(
            parse_time("2026-11-25T13-30-00.000001Z").unwrap(),
            "2026-11-25T13:30:00.000001Z".parse().unwrap()
        );
        assert!(parse_time("2026-11-25T14:30").is_ok());
        assert!(parse_time("2026-11-25 14:30").is_ok());
        assert!(parse_time("2026-11-25").is_ok());
        assert!(parse_time("14:30").is_ok());
        assert!(parse_time("yesterday-ish").is_err());
        let t: Timestamp = "2026-11-25T13:30:00.123456Z".parse().unwrap();
        assert_eq!(utc(t), "2026-11-25T13:30:00.123456Z");
        assert_eq!(parse_time(&utc(t)).unwrap(), t);
    }

    #[test]
    fn store_paths_name_a_version() {
        let dst = Path::new("/b");
        let (rel, s) = inside_store(
            dst,
            Path::new(".mirrortray/versions/2026-11-25T13-30-00.000001Z/docs/a.txt"),
        )
        .unwrap();
        assert_eq!(rel, Path::new("docs/a.txt"));
        assert!(s.is_some());
        assert!(inside_store(dst, Path::new(".mirrortray/tmp/x")).is_err());
        let (rel, s) = inside_store(dst, Path::new("docs/a.txt")).unwrap();
        assert_eq!((rel.as_path(), s), (Path::new("docs/a.txt"), None));
    }

    #[test]
    fn json_strings() {
        assert_eq!(js("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }
}
