//! offsite: a pair's backup folder copied, as encrypted and deduplicated
//! snapshots, into a restic repository — on a local path, a restic REST
//! server or anything rclone reaches — so that a fire, a theft or
//! ransomware that takes every mounted disk does not take the backup too.
//!
//! Model:
//! - The repository is restic's format, written by `rustic_core` (back ends
//!   from `rustic_backend`); stock `restic` lists, checks and restores it,
//!   so nobody depends on mirrortray to get their files back.
//! - What is copied is the mirror, DST, never SRC: SRC is read once (by the
//!   mirror), and DST only ever holds whole files (each one is renamed into
//!   place complete), so a snapshot never holds a torn file. DST's own
//!   `.mirrortray/` (versions, temp files, lock) is left out.
//! - A pair's snapshots are the ones of this host whose path is DST (as
//!   restic groups them: one repository can hold several pairs and
//!   machines); each is tagged `mirrortray` and with the pair's name. The
//!   previous one is the parent, so a file with the same size, times and
//!   inode is not read again: a push with nothing changed reads no file.
//! - A push with nothing changed does not even walk DST when DST's marker
//!   (`offsite_clean`) says the mirror wrote nothing since the snapshot it
//!   names, walked less than a day ago: `push` writes a snapshot of that
//!   one's tree dated now (no file read, one small file written), and
//!   `push_if_changed` makes none and needs no key (a list of the
//!   repository's snapshots). A push that walks makes the marker.
//! - The password never lives in the config: `password_file` or
//!   `password_command`, as restic has them.
//! - rustic writes without restic's locks (its prune is two-phase
//!   instead); on this machine a file lock per repository, in the cache
//!   folder, keeps two mirrortray processes from writing to it at once.
//! - Every failure is one [`OffsiteError`]: the repository (a password in
//!   its URL hidden) and the reason in words (wrong password, unreachable,
//!   not a repository yet, locked, server disk full, ...).
//!
//! The commands call this; so does the watcher's schedule in the
//! background (`watch::offsite`, `watch::pusher`).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use rustic_backend::BackendOptions;
use rustic_core::repofile::{NodeType, SnapshotFile, SnapshotId};
use rustic_core::{
    BackupOptions, CheckOptions, ConfigOptions, Credentials, Excludes, KeepOptions, KeyOptions,
    LocalDestination, LsOptions, OpenStatus, ParentOptions, PathList, Progress, ProgressBars,
    ProgressType, PruneOptions, Repository, RepositoryOptions, RestoreOptions, RusticError,
    RusticProgress, SnapshotOptions,
};
use serde::{Deserialize, Serialize};

use super::error::show;

/// The tag every snapshot mirrortray makes carries.
pub const TAG: &str = "mirrortray";

/// A pair's `offsite = { ... }` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffsiteConfig {
    /// As restic takes it: `/path`, `rest:http://host:8000/`,
    /// `rclone:remote:path`.
    pub repository: String,
    /// A file whose first line is the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// A command (run by the shell) that prints the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_command: Option<String>,
    /// Never used: a password written into the config is refused with
    /// words (`config::validate`) rather than as an unknown field.
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
    /// Back-end options, as rustic takes them (`retry = "3"`,
    /// `timeout = "2m"`, `cacert = "/path"`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    /// Minutes between the starts of two pushes, at least: while watching,
    /// a push follows once the changes have settled, not more often.
    #[serde(default = "default_interval")]
    pub interval_minutes: u32,
    /// Upload at most this many KiB a second (restic's `--limit-upload`);
    /// `None`: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_upload: Option<u32>,
    /// Changes in no snapshot for this many hours: the offsite copy is
    /// overdue (said in the status and a popup).
    #[serde(default = "default_overdue")]
    pub overdue_hours: u32,
    /// Keep policy, in restic's terms (forget + prune).
    #[serde(default = "default_hourly")]
    pub keep_hourly: u32,
    #[serde(default = "default_daily")]
    pub keep_daily: u32,
    #[serde(default = "default_weekly")]
    pub keep_weekly: u32,
    #[serde(default = "default_monthly")]
    pub keep_monthly: u32,
}

/// A pair's offsite copy as the watcher takes it: the config and the
/// pair's name (its snapshots' tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsiteSpec {
    pub name: String,
    pub config: OffsiteConfig,
}

/// Retries of a failed request to a server (rustic's `retry` option),
/// unless the config's `options` say otherwise.
pub const DEFAULT_RETRIES: u32 = 2;

pub const DEFAULT_INTERVAL_MINUTES: u32 = 60;
pub const DEFAULT_OVERDUE_HOURS: u32 = 24;
pub const DEFAULT_KEEP_HOURLY: u32 = 24;
pub const DEFAULT_KEEP_DAILY: u32 = 14;
pub const DEFAULT_KEEP_WEEKLY: u32 = 8;
pub const DEFAULT_KEEP_MONTHLY: u32 = 24;

fn default_interval() -> u32 {
    DEFAULT_INTERVAL_MINUTES
}
fn default_overdue() -> u32 {
    DEFAULT_OVERDUE_HOURS
}
fn default_hourly() -> u32 {
    DEFAULT_KEEP_HOURLY
}
fn default_daily() -> u32 {
    DEFAULT_KEEP_DAILY
}
fn default_weekly() -> u32 {
    DEFAULT_KEEP_WEEKLY
}
fn default_monthly() -> u32 {
    DEFAULT_KEEP_MONTHLY
}

impl OffsiteConfig {
    /// A config with the defaults, for `repository` and a password file.
    pub fn new(repository: impl Into<String>, password_file: impl Into<PathBuf>) -> Self {
        OffsiteConfig {
            repository: repository.into(),
            password_file: Some(password_file.into()),
            password_command: None,
            password: None,
            options: BTreeMap::new(),
            interval_minutes: DEFAULT_INTERVAL_MINUTES,
            overdue_hours: DEFAULT_OVERDUE_HOURS,
            limit_upload: None,
            keep_hourly: DEFAULT_KEEP_HOURLY,
            keep_daily: DEFAULT_KEEP_DAILY,
            keep_weekly: DEFAULT_KEEP_WEEKLY,
            keep_monthly: DEFAULT_KEEP_MONTHLY,
        }
    }

    /// What is wrong with it, in words (for `config::validate`); `dst`
    /// and `src` are the pair's folders.
    pub fn problem(&self, src: &Path, dst: &Path) -> Option<String> {
        if self.password.is_some() {
            return Some("the offsite password is never kept in the config file: put it in a file only you can read and give password_file = \"/path/to/it\", or give password_command = \"a command that prints it\"".into());
        }
        if self.repository.trim().is_empty() {
            return Some("offsite repository is empty: give a restic repository (a folder path, rest:http://host:8000/, s3:https://host/bucket, or rclone:remote:path)".into());
        }
        if let Some(s3) = super::s3::parse(&self.repository) {
            if let Err(why) = s3 {
                return Some(why);
            }
            if let Some(why) = super::s3::problem(&self.options) {
                return Some(why);
            }
        }
        match (&self.password_file, &self.password_command) {
            (None, None) => {
                return Some("offsite needs password_file = \"/path/to/a/file\" or password_command = \"...\" (the repository's password; never the password itself)".into());
            }
            (Some(_), Some(_)) => {
                return Some(
                    "offsite has both password_file and password_command: give one of them".into(),
                );
            }
            (Some(f), None) if !f.is_absolute() => {
                return Some(format!(
                    "offsite password_file {} is a relative path; give an absolute one",
                    show(f)
                ));
            }
            (None, Some(c)) if c.trim().is_empty() => {
                return Some("offsite password_command is empty".into());
            }
            _ => {}
        }
        if self.interval_minutes == 0 {
            return Some("offsite interval_minutes = 0 would push without pause; give at least 1 (minutes between two pushes at most)".into());
        }
        if self.limit_upload == Some(0) {
            return Some("offsite limit_upload = 0 would upload nothing; give the most KiB a second to upload, or leave it out for no limit".into());
        }
        if self.overdue_hours == 0 {
            return Some("offsite overdue_hours = 0 would call every copy overdue; give at least 1 (hours a change may wait for its snapshot before you are told)".into());
        }
        if let Some(local) = local_path(&self.repository) {
            if !local.is_absolute() {
                return Some(format!(
                    "offsite repository {} is a relative path; give an absolute one",
                    show(&local)
                ));
            }
            for (role, root) in [("backup", dst), ("source", src)] {
                if local.starts_with(root) {
                    return Some(format!(
                        "offsite repository {} is inside the pair's {role} folder {}: it would copy itself. Put it on another disk or server",
                        show(&local),
                        show(root)
                    ));
                }
            }
        }
        None
    }
}

/// The folder of a local repository (`/path` or `local:/path`); `None`
/// for the other back ends.
fn local_path(repository: &str) -> Option<PathBuf> {
    let r = repository.trim();
    if let Some(rest) = r.strip_prefix("local:") {
        return Some(PathBuf::from(rest));
    }
    match r.split_once(':') {
        // A colon after a slash is part of a path, not a scheme.
        Some((scheme, _)) if !scheme.contains('/') => None,
        _ => Some(PathBuf::from(r)),
    }
}

/// The repository as shown to people: a password in a URL hidden,
/// control characters escaped.
pub fn shown_repository(repository: &str) -> String {
    let mut r = repository.trim().to_string();
    if let Some(scheme_end) = r.find("://") {
        let rest_start = scheme_end + 3;
        let host_end = r[rest_start..]
            .find('/')
            .map_or(r.len(), |i| rest_start + i);
        if let Some(at) = r[rest_start..host_end].rfind('@') {
            let userinfo = &r[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                let user = userinfo[..colon].to_string();
                r.replace_range(rest_start..rest_start + at, &format!("{user}:***"));
            }
        }
    }
    show(Path::new(&r))
}

/// Why an offsite operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The password opens no key of the repository.
    WrongPassword,
    /// The password file or command gave no password.
    NoPassword(String),
    /// The server or the folder cannot be reached.
    Unreachable(String),
    /// There is no restic repository there (yet).
    NotARepository,
    /// Another mirrortray is using it for this pair right now.
    Locked(String),
    /// The S3 bucket the repository names does not exist.
    NoBucket,
    /// The server (or the disk of a local repository) is full.
    DiskFull,
    /// Permission denied by the server or the file system.
    PermissionDenied(String),
    /// `check` found damage.
    Damaged(String),
    /// The pair's backup folder cannot be read.
    BackupFolder(String),
    /// No snapshot matches (restore, snapshots).
    NoSnapshot(String),
    /// What `restore` was asked for is not in the snapshot, or its target
    /// is not acceptable.
    Restore(String),
    /// Anything else, in rustic's own words.
    Other(String),
}

/// One failed offsite operation: which repository, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("offsite repository {repository}: {}", describe(.reason))]
pub struct OffsiteError {
    /// As shown to people ([`shown_repository`]).
    pub repository: String,
    pub reason: Reason,
}

impl OffsiteError {
    /// The reason in words, without the repository or the advice (for a
    /// status line that names the repository elsewhere).
    pub fn brief(&self) -> String {
        match &self.reason {
            Reason::Unreachable(why) => format!("unreachable: {why}"),
            r => describe(r),
        }
    }
}

fn describe(r: &Reason) -> String {
    match r {
        Reason::WrongPassword => "wrong password: the password given by password_file or password_command does not open this repository".into(),
        Reason::NoPassword(why) => format!("no password: {why}"),
        Reason::Unreachable(why) => format!("unreachable: {why}. Check that the server is running and the network is up; the local mirror keeps working meanwhile"),
        Reason::NotARepository => "there is no restic repository there yet: create it with `mirrortray offsite init`".into(),
        Reason::NoBucket => "the bucket does not exist: create it first (with the S3 provider's tools; `restic init` creates it too), then run `mirrortray offsite init`".into(),
        Reason::Locked(why) => format!("locked: {why}"),
        Reason::DiskFull => "the repository's disk is full: free space on the server (or forget and prune old snapshots), then push again".into(),
        Reason::PermissionDenied(why) => format!("permission denied: {why}"),
        Reason::Damaged(why) => format!("the check found damage: {why}"),
        Reason::BackupFolder(why) => why.clone(),
        Reason::NoSnapshot(why) => why.clone(),
        Reason::Restore(why) => why.clone(),
        Reason::Other(why) => why.clone(),
    }
}

/// A snapshot of the pair, as listed.
#[derive(Debug, Clone)]
pub struct Snap {
    /// restic's short id (8 hex digits).
    pub short_id: String,
    pub id: String,
    pub time: Timestamp,
    pub host: String,
    pub tags: Vec<String>,
    /// The snapshot's root tree (equal trees: equal content).
    pub tree: String,
    /// Files and bytes in it, when the snapshot says.
    pub files: Option<u64>,
    pub bytes: Option<u64>,
}

/// What `init` found or made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    Created,
    /// A restic repository was there already, and the password opens it.
    Existing,
}

/// What one push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The snapshot made; or, when `new` is false, the parent (nothing
    /// had changed since it, and no snapshot was made).
    pub snap: Snap,
    pub new: bool,
    /// DST was walked (each file's metadata compared with the parent's);
    /// false: its marker said nothing changed since the parent, whose tree
    /// the new snapshot has (see `offsite_clean`).
    pub walked: bool,
    /// The snapshot it was compared with, if any.
    pub parent: Option<String>,
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unmodified: u64,
    /// New data stored (after deduplication and compression).
    pub bytes_added: u64,
    pub took: Duration,
}

/// What `restore` wrote.
#[derive(Debug, Clone)]
pub struct Restored {
    pub snap: Snap,
    pub target: PathBuf,
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
}

/// What `forget` kept and let go.
#[derive(Debug, Clone)]
pub struct Forgot {
    /// Oldest first, both.
    pub kept: Vec<Snap>,
    pub forgotten: Vec<Snap>,
    pub bytes_freed: u64,
}

/// What `check` found.
#[derive(Debug, Clone)]
pub struct Checked {
    pub warnings: Vec<String>,
    pub snapshots: usize,
}

/// How far the push in hand has got: bytes of the backup folder looked
/// at (read, or found unchanged since the parent snapshot), and their total
/// once rustic has counted them.
#[derive(Debug, Default)]
pub struct PushProgress {
    done: AtomicU64,
    total: AtomicU64,
}

impl PushProgress {
    /// (done, total once known).
    pub fn get(&self) -> (u64, Option<u64>) {
        let total = self.total.load(Ordering::Relaxed);
        (
            self.done.load(Ordering::Relaxed),
            (total > 0).then_some(total),
        )
    }

    fn reset(&self) {
        self.done.store(0, Ordering::Relaxed);
        self.total.store(0, Ordering::Relaxed);
    }
}

/// rustic's progress bars, of which only the bytes of a backup are kept.
#[derive(Debug, Clone)]
struct Bars(Arc<PushProgress>);

impl ProgressBars for Bars {
    fn progress(&self, kind: ProgressType, _prefix: &str) -> Progress {
        match kind {
            ProgressType::Bytes => Progress::new(Bar(self.0.clone())),
            _ => Progress::hidden(),
        }
    }
}

#[derive(Debug)]
struct Bar(Arc<PushProgress>);

impl RusticProgress for Bar {
    fn is_hidden(&self) -> bool {
        false
    }
    fn set_length(&self, len: u64) {
        self.0.total.store(len, Ordering::Relaxed);
    }
    fn set_title(&self, _title: &str) {}
    fn inc(&self, inc: u64) {
        self.0.done.fetch_add(inc, Ordering::Relaxed);
    }
    fn finish(&self) {}
}

/// One pair's offsite copy.
pub struct Offsite {
    progress: Arc<PushProgress>,
    name: String,
    /// DST, resolved (snapshots record it so).
    dst: PathBuf,
    cfg: OffsiteConfig,
    shown: String,
    cache_dir: Option<PathBuf>,
}

impl Offsite {
    /// The offsite copy of the pair called `name` whose backup folder is
    /// `dst`. `cache_dir`: where rustic may keep its cache of the
    /// repository's index and trees (`None`: no cache).
    pub fn new(name: &str, dst: &Path, cfg: &OffsiteConfig, cache_dir: Option<PathBuf>) -> Self {
        Offsite {
            progress: Arc::default(),
            name: name.to_string(),
            dst: std::fs::canonicalize(dst).unwrap_or_else(|_| dst.to_path_buf()),
            cfg: cfg.clone(),
            shown: shown_repository(&cfg.repository),
            cache_dir,
        }
    }

    /// How far the push in hand has got.
    pub fn progress(&self) -> &PushProgress {
        &self.progress
    }

    /// The repository as shown to people.
    pub fn repository(&self) -> &str {
        &self.shown
    }

    /// The backup folder whose snapshots these are.
    pub fn dst(&self) -> &Path {
        &self.dst
    }

    fn err(&self, reason: Reason) -> OffsiteError {
        OffsiteError {
            repository: self.shown.clone(),
            reason,
        }
    }

    fn rustic(&self, e: &RusticError) -> OffsiteError {
        self.err(classify(e))
    }

    fn password(&self) -> Result<String, OffsiteError> {
        let no = |why: String| self.err(Reason::NoPassword(why));
        let text = match (&self.cfg.password_file, &self.cfg.password_command) {
            (Some(file), _) => std::fs::read(file).map_err(|e| {
                no(format!(
                    "cannot read the password file {}: {}",
                    show(file),
                    super::error::reason(&e)
                ))
            })?,
            (None, Some(cmd)) => run_password_command(cmd).map_err(no)?,
            (None, None) => {
                return Err(no(
                    "the config gives no password_file or password_command".into()
                ));
            }
        };
        let text =
            String::from_utf8(text).map_err(|_| no("the password is not UTF-8 text".into()))?;
        let line = text.lines().next().unwrap_or("");
        if line.is_empty() {
            return Err(no(match &self.cfg.password_file {
                Some(f) => format!("the password file {} is empty", show(f)),
                None => "the password command printed nothing".into(),
            }));
        }
        Ok(line.to_string())
    }

    /// Takes this machine's lock on the repository for `what`: rustic
    /// takes no lock in the repository, so two mirrortray processes here
    /// (a schedule, a push by hand) must not write to it at once. Without
    /// a cache folder, or when the lock file cannot be made, the operation
    /// goes on without it (said in the log).
    fn lock(&self, what: &str) -> Result<Option<std::fs::File>, OffsiteError> {
        use std::io::{Read, Write};
        let Some(cache) = &self.cache_dir else {
            return Ok(None);
        };
        let dir = cache.join("locks");
        let path = dir.join(format!("{:016x}.lock", fnv1a(self.cfg.repository.trim())));
        let opened = std::fs::create_dir_all(&dir).and_then(|()| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
        });
        let mut file = match opened {
            Ok(f) => f,
            Err(e) => {
                log::warn!(
                    "{}: cannot make the lock of offsite repository {}: {}; going on without it",
                    show(&path),
                    self.shown,
                    super::error::reason(&e)
                );
                return Ok(None);
            }
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(self.err(Reason::Locked(format!(
                    "{} is writing to it on this machine; try again when it is done",
                    if holder.is_empty() {
                        "another mirrortray"
                    } else {
                        holder
                    }
                ))));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                log::warn!(
                    "{}: cannot lock offsite repository {}: {}; going on without the lock",
                    show(&path),
                    self.shown,
                    super::error::reason(&e)
                );
                return Ok(None);
            }
        }
        let text = format!(
            "mirrortray (process {}, {what} of {}, since {})",
            std::process::id(),
            self.name,
            Timestamp::now().strftime("%Y-%m-%d %H:%M:%S UTC")
        );
        let _ = file
            .set_len(0)
            .and_then(|()| file.write_all(text.as_bytes()));
        Ok(Some(file))
    }

    fn repo(&self) -> Result<Repository<()>, OffsiteError> {
        let given = self.cfg.repository.trim();
        let (repository, options) = match super::s3::parse(given) {
            Some(Ok(loc)) => super::s3::backend(&loc, &self.cfg.options),
            Some(Err(why)) => return Err(self.err(Reason::Other(why))),
            None => (given.to_string(), self.cfg.options.clone()),
        };
        let mut backend = BackendOptions::default().repository(repository.as_str());
        backend.options = options;
        // rustic retries a failed request 5 times with a doubling pause
        // (half a minute for a server that is down); a push that fails is
        // tried again at the next interval anyway, so say it sooner.
        if ["rest:", "rclone:", "opendal:"]
            .iter()
            .any(|p| repository.starts_with(p))
            && !backend.options.contains_key("retry")
        {
            backend
                .options
                .insert("retry".into(), DEFAULT_RETRIES.to_string());
        }
        let mut backends = backend.to_backends().map_err(|e| self.rustic(&e))?;
        if let Some(kib) = self.cfg.limit_upload {
            backends = rustic_core::RepositoryBackends::new(
                std::sync::Arc::new(super::throttle::Throttled::new(backends.repository(), kib)),
                backends.repo_hot(),
            );
        }
        let mut opts = RepositoryOptions::default();
        match &self.cache_dir {
            Some(dir) => opts = opts.cache_dir(dir.clone()),
            None => opts = opts.no_cache(true),
        }
        Repository::new_with_progress(&opts, &backends, Bars(self.progress.clone()))
            .map_err(|e| self.rustic(&e))
    }

    fn open(&self) -> Result<Repository<OpenStatus>, OffsiteError> {
        let password = self.password()?;
        let repo = self.repo()?;
        match repo.config_id() {
            Ok(Some(_)) => {}
            Ok(None) => return Err(self.err(Reason::NotARepository)),
            Err(e) => return Err(self.rustic(&e)),
        }
        repo.open(&Credentials::password(password))
            .map_err(|e| self.rustic(&e))
    }

    /// Creates the repository, or takes the one that is there when the
    /// password opens it.
    pub fn init(&self) -> Result<Init, OffsiteError> {
        let _lock = self.lock("init")?;
        let password = self.password()?;
        let repo = self.repo()?;
        let exists = repo.config_id().map_err(|e| self.rustic(&e))?.is_some();
        let credentials = Credentials::password(password);
        if exists {
            repo.open(&credentials).map_err(|e| self.rustic(&e))?;
            return Ok(Init::Existing);
        }
        repo.init(
            &credentials,
            &KeyOptions::default(),
            &ConfigOptions::default(),
        )
        .map_err(|e| self.rustic(&e))?;
        Ok(Init::Created)
    }

    fn host() -> Result<String, String> {
        SnapshotOptions::default()
            .to_snapshot()
            .map(|s| s.hostname)
            .map_err(|e| short(&e))
    }

    fn dst_text(&self) -> Result<&str, OffsiteError> {
        self.dst.to_str().ok_or_else(|| {
            self.err(Reason::BackupFolder(format!(
                "the backup folder {} has a name that is not UTF-8, which a restic snapshot cannot record",
                show(&self.dst)
            )))
        })
    }

    /// One snapshot of DST now (without its `.mirrortray/`), with the
    /// pair's previous snapshot as parent; DST is not walked when its
    /// marker vouches for that snapshot (see `offsite_clean`).
    pub fn push(&self) -> Result<Pushed, OffsiteError> {
        self.push_at(None)
    }

    /// [`Offsite::push`], the snapshot dated `time` instead of now (how
    /// the keep policy is tested over days without waiting for them).
    pub fn push_at(&self, time: Option<Timestamp>) -> Result<Pushed, OffsiteError> {
        self.push_with(time, false)
    }

    /// A push in the background: no snapshot when nothing changed since
    /// the parent (restic's `--skip-if-unchanged`), so that a schedule
    /// that cannot know whether DST changed while it was not running
    /// (start-up) adds no snapshot of the same tree. With DST's marker
    /// vouching for a snapshot the repository still lists, it neither
    /// walks DST nor opens the key.
    pub fn push_if_changed(&self) -> Result<Pushed, OffsiteError> {
        self.push_with(None, true)
    }

    fn push_with(
        &self,
        time: Option<Timestamp>,
        skip_if_unchanged: bool,
    ) -> Result<Pushed, OffsiteError> {
        let start = Instant::now();
        let dst = self.dst_text()?.to_string();
        match std::fs::metadata(&self.dst) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(self.err(Reason::BackupFolder(format!(
                    "the backup folder {} is not a folder",
                    show(&self.dst)
                ))));
            }
            Err(e) => {
                return Err(self.err(Reason::BackupFolder(format!(
                    "cannot read the backup folder {}: {}",
                    show(&self.dst),
                    super::error::reason(&e)
                ))));
            }
        }
        // An unmounted backup drive leaves an empty mount point: its
        // snapshot would be empty, and the keep policy could later keep it
        // instead of the real ones. Only a folder the mirror has written
        // (its record of the source) is copied.
        let record = self.dst.join(super::filter::RESERVED).join("source");
        if !std::fs::symlink_metadata(&record).is_ok_and(|m| m.is_file()) {
            return Err(self.err(Reason::BackupFolder(format!(
                "the backup folder {} holds no mirrortray backup (is its drive mounted? has it been backed up once?), so nothing was copied",
                show(&self.dst)
            ))));
        }
        let _lock = self.lock("a push")?;
        self.progress.reset();
        let host = Self::host().map_err(|e| self.err(Reason::Other(e)))?;
        let marks = self.dst.join(super::filter::RESERVED);
        let mark = self.trusted_mark(&marks, &host, &dst);
        if skip_if_unchanged && let Some(m) = &mark {
            // No snapshot to write: no key needed, a list of the
            // repository's snapshots says whether the marker's is there.
            let repo = self.repo()?;
            match repo.config_id() {
                Ok(Some(_)) => {}
                Ok(None) => return Err(self.err(Reason::NotARepository)),
                Err(e) => return Err(self.rustic(&e)),
            }
            let mut ids = repo.list::<SnapshotId>().map_err(|e| self.rustic(&e))?;
            if ids.any(|id| id.to_hex().as_str() == m.snapshot) {
                return Ok(Pushed {
                    parent: Some(m.snapshot.clone()),
                    new: false,
                    walked: false,
                    files_new: 0,
                    files_changed: 0,
                    files_unmodified: 0,
                    bytes_added: 0,
                    snap: Snap {
                        short_id: m.snapshot.chars().take(8).collect(),
                        id: m.snapshot.clone(),
                        time: m.time,
                        host: m.host.clone(),
                        tags: vec![tag_text(TAG), tag_text(&self.name)],
                        tree: String::new(),
                        files: None,
                        bytes: None,
                    },
                    took: start.elapsed(),
                });
            }
            log::info!(
                "offsite: walking {} (its last snapshot is no longer in the repository)",
                show(&self.dst)
            );
        }
        let repo = self.open()?;
        let snap_opts = SnapshotOptions::default()
            .label(self.name.clone())
            .add_tags(&tag_text(TAG))
            .and_then(|o| o.add_tags(&tag_text(&self.name)))
            .map_err(|e| self.rustic(&e))?;
        let snap_opts = match time {
            Some(t) => snap_opts.time(Some(to_zoned(t))),
            None => snap_opts,
        };
        if !skip_if_unchanged
            && let Some(m) = mark
            && let Some(parent) = self.vouched(&repo, &m, &host, &dst)
            && let Some(p) = self.unchanged(&repo, &snap_opts, m, &parent, &marks, start)?
        {
            return Ok(p);
        }
        // The marker is made before the walk starts: a write after this
        // takes it away (see `offsite_clean`).
        let walked = Timestamp::now();
        let pending = super::offsite_clean::Pending::start(&marks)
            .inspect_err(|e| {
                log::warn!(
                    "{}: {}; the next offsite push walks the backup folder again",
                    show(&marks.join(super::offsite_clean::PENDING)),
                    super::error::reason(e)
                )
            })
            .ok();
        let repo = repo.to_indexed_ids().map_err(|e| self.rustic(&e))?;
        let snap = snap_opts.to_snapshot().map_err(|e| self.rustic(&e))?;
        // Anchored to DST (a leading `/`), so a folder of the user's own
        // called `.mirrortray` deeper down is kept.
        let excludes = Excludes::default().globs(vec![format!(
            "!{}",
            glob_escape(&format!("{dst}/{}", super::filter::RESERVED))
        )]);
        // The parent as rustic would choose it (the latest of this host,
        // label and folder), found here to know whether there is one.
        let parent = repo
            .get_matching_snapshots(|s| {
                s.hostname == snap.hostname
                    && s.label == snap.label
                    && s.paths.iter().map(String::as_str).eq([dst.as_str()])
            })
            .map_err(|e| self.rustic(&e))?
            .into_iter()
            .max_by_key(|s| s.time.timestamp());
        let opts = BackupOptions::default().excludes(excludes).parent_opts(
            ParentOptions::default()
                .skip_if_unchanged(skip_if_unchanged)
                .parents(parent.iter().map(|p| p.id.to_string()).collect::<Vec<_>>()),
        );
        let source = PathList::from_iter([self.dst.clone()]);
        let backup = || repo.backup(&opts, &source, snap);
        // With a parent most of DST is as it holds it: one CPU does that
        // faster than two (see `one_cpu`); a first push hashes and
        // compresses everything, on every CPU.
        let saved = match parent {
            Some(_) => super::one_cpu::on_one_cpu(backup),
            None => backup(),
        }
        .map_err(|e| self.rustic(&e))?;
        let summary = saved.summary.clone().unwrap_or_default();
        // rustic returns the snapshot it did not save with no id.
        let new = saved.id != Default::default();
        let vouched = if new { Some(saved.id) } else { saved.parent };
        if let (Some(pending), Some(id)) = (pending, vouched) {
            // The time of the snapshot vouched for: the new one's, or the
            // parent's (read below when no snapshot was made).
            let time = if new {
                Some(to_timestamp(&saved))
            } else {
                repo.get_snapshots(&[id.to_hex().as_str()])
                    .ok()
                    .and_then(|f| f.first().map(to_timestamp))
            };
            if let Some(time) = time {
                self.seal(
                    pending,
                    &super::offsite_clean::Mark {
                        snapshot: id.to_hex().to_string(),
                        time,
                        host,
                        dst: dst.clone(),
                        walked,
                    },
                );
            }
        }
        if !new && let Some(parent) = saved.parent {
            let found = repo
                .get_snapshots(&[parent.to_string()])
                .map_err(|e| self.rustic(&e))?;
            if let Some(p) = found.first() {
                return Ok(Pushed {
                    parent: Some(parent.to_string()),
                    new: false,
                    walked: true,
                    files_new: 0,
                    files_changed: 0,
                    files_unmodified: summary.files_unmodified,
                    bytes_added: 0,
                    snap: to_snap(p),
                    took: start.elapsed(),
                });
            }
        }
        Ok(Pushed {
            new: true,
            walked: true,
            parent: saved.parent.map(|p| p.to_string()),
            files_new: summary.files_new,
            files_changed: summary.files_changed,
            files_unmodified: summary.files_unmodified,
            bytes_added: summary.data_added_packed,
            snap: to_snap(&saved),
            took: start.elapsed(),
        })
    }

    /// DST's marker (see `offsite_clean`), when a push may trust it: of
    /// this host and folder, walked lately. Otherwise the push walks (said
    /// in the log, with the reason).
    fn trusted_mark(
        &self,
        marks: &Path,
        host: &str,
        dst: &str,
    ) -> Option<super::offsite_clean::Mark> {
        use super::offsite_clean::{Plan, TRUST, plan, read};
        let text = match read(marks) {
            Ok(t) => t,
            Err(e) => {
                log::info!(
                    "offsite: walking {} ({}: {})",
                    show(&self.dst),
                    show(&marks.join(super::offsite_clean::CLEAN)),
                    super::error::reason(&e)
                );
                return None;
            }
        };
        match plan(text.as_deref(), host, dst, Timestamp::now(), TRUST) {
            Plan::Trust(m) => Some(m),
            Plan::Walk(why) => {
                log::info!("offsite: walking {} ({})", show(&self.dst), why.words());
                None
            }
        }
    }

    /// The snapshot `mark` vouches for, read from the repository, when it
    /// is there and is of this host and folder.
    fn vouched(
        &self,
        repo: &Repository<OpenStatus>,
        mark: &super::offsite_clean::Mark,
        host: &str,
        dst: &str,
    ) -> Option<SnapshotFile> {
        let walk = |why: String| {
            log::info!("offsite: walking {} ({why})", show(&self.dst));
            None
        };
        let found = match repo.get_snapshots(&[mark.snapshot.as_str()]) {
            Ok(f) => f,
            Err(e) => {
                return walk(format!(
                    "its last snapshot {} cannot be read: {}",
                    &mark.snapshot[..8],
                    short(&e)
                ));
            }
        };
        let Some(parent) = found.into_iter().next() else {
            return walk("its last snapshot is no longer in the repository".into());
        };
        // The root tree holds the path down to DST: only a snapshot of
        // this very folder has the tree to reuse.
        if parent.hostname != host || !parent.paths.iter().map(String::as_str).eq([dst]) {
            return walk("its last snapshot is of another host or folder".into());
        }
        Some(parent)
    }

    /// A snapshot dated now of the tree of `parent`, which the marker says
    /// DST still is: no walk, no file read, one snapshot file written.
    /// `None` when a write took the marker away meanwhile (the push walks).
    fn unchanged(
        &self,
        repo: &Repository<OpenStatus>,
        snap_opts: &SnapshotOptions,
        mark: super::offsite_clean::Mark,
        parent: &SnapshotFile,
        marks: &Path,
        start: Instant,
    ) -> Result<Option<Pushed>, OffsiteError> {
        use super::offsite_clean::Pending;
        // Claimed first: a write from now on takes it away.
        let pending = match Pending::claim(marks) {
            Ok(Some(p)) => p,
            Ok(None) => {
                log::info!(
                    "offsite: walking {} (the mirror began writing into it)",
                    show(&self.dst)
                );
                return Ok(None);
            }
            Err(e) => {
                log::warn!(
                    "{}: {}; walking the backup folder",
                    show(&marks.join(super::offsite_clean::CLEAN)),
                    super::error::reason(&e)
                );
                return Ok(None);
            }
        };
        let made = (|| -> rustic_core::RusticResult<Option<SnapshotFile>> {
            let mut snap = snap_opts.to_snapshot()?;
            let now = snap.time.clone();
            snap.tree = parent.tree;
            snap.paths = parent.paths.clone();
            snap.parent = Some(parent.id);
            snap.summary = parent.summary.clone().map(|mut m| {
                (m.files_new, m.files_changed) = (0, 0);
                m.files_unmodified = m.total_files_processed;
                (m.dirs_new, m.dirs_changed) = (0, 0);
                m.dirs_unmodified = m.total_dirs_processed;
                (m.data_blobs, m.tree_blobs) = (0, 0);
                (m.data_added, m.data_added_packed) = (0, 0);
                (m.data_added_files, m.data_added_files_packed) = (0, 0);
                (m.data_added_trees, m.data_added_trees_packed) = (0, 0);
                (m.backup_start, m.backup_end) = (now.clone(), now.clone());
                (m.backup_duration, m.total_duration) = (0.0, 0.0);
                m
            });
            // rustic gives no id back: the new file is the one not
            // listed before.
            let before: std::collections::HashSet<SnapshotId> = repo.list()?.collect();
            repo.save_snapshots(vec![snap.clone()])?;
            let new: Vec<SnapshotId> = repo.list()?.filter(|id| !before.contains(id)).collect();
            let ids: Vec<String> = new.iter().map(ToString::to_string).collect();
            Ok(repo.get_snapshots(&ids)?.into_iter().find(|s| {
                s.tree == snap.tree
                    && s.hostname == snap.hostname
                    && s.time.timestamp() == now.timestamp()
            }))
        })();
        let saved = match made {
            Ok(Some(s)) => s,
            Ok(None) => {
                // Saved, but not found again: the marker cannot name it.
                drop(pending);
                return Err(self.err(Reason::Other(
                    "the new snapshot is not in the repository's list of snapshots".into(),
                )));
            }
            Err(e) => {
                // Nothing new: the marker still says what it said.
                self.seal(pending, &mark);
                return Err(self.rustic(&e));
            }
        };
        self.seal(
            pending,
            &super::offsite_clean::Mark {
                snapshot: saved.id.to_hex().to_string(),
                time: to_timestamp(&saved),
                ..mark
            },
        );
        let files = parent
            .summary
            .as_ref()
            .map_or(0, |m| m.total_files_processed);
        Ok(Some(Pushed {
            new: true,
            walked: false,
            parent: Some(parent.id.to_string()),
            files_new: 0,
            files_changed: 0,
            files_unmodified: files,
            bytes_added: 0,
            snap: to_snap(&saved),
            took: start.elapsed(),
        }))
    }

    /// Makes `pending` DST's marker for `mark`, unless the mirror wrote
    /// meanwhile (see `offsite_clean`).
    fn seal(&self, pending: super::offsite_clean::Pending, mark: &super::offsite_clean::Mark) {
        match pending.seal(mark) {
            Ok(super::offsite_clean::Sealed::Clean) => {}
            Ok(super::offsite_clean::Sealed::Written) => log::debug!(
                "offsite: the mirror wrote into {} during the push; the next one walks it",
                show(&self.dst)
            ),
            Err(e) => log::warn!(
                "{}: {}; the next offsite push walks the backup folder again",
                show(
                    &self
                        .dst
                        .join(super::filter::RESERVED)
                        .join(super::offsite_clean::PENDING)
                ),
                super::error::reason(&e)
            ),
        }
    }

    fn is_ours(&self, s: &SnapshotFile, host: &str, dst: &str) -> bool {
        s.hostname == host && s.paths.contains(dst)
    }

    fn our_snapshots(
        &self,
        repo: &Repository<OpenStatus>,
    ) -> Result<Vec<SnapshotFile>, OffsiteError> {
        let host = Self::host().map_err(|e| self.err(Reason::Other(e)))?;
        let dst = self.dst_text()?.to_string();
        let mut snaps = repo
            .get_matching_snapshots(|s| self.is_ours(s, &host, &dst))
            .map_err(|e| self.rustic(&e))?;
        snaps.sort_by_key(|s| s.time.timestamp());
        Ok(snaps)
    }

    /// The pair's snapshots (this host, this backup folder), oldest first.
    pub fn snapshots(&self) -> Result<Vec<Snap>, OffsiteError> {
        let repo = self.open()?;
        Ok(self.our_snapshots(&repo)?.iter().map(to_snap).collect())
    }

    /// Writes `rel` (a path inside DST; empty: all of it) as the latest
    /// snapshot at or before `at` held it, to `target`, which must not
    /// exist yet.
    pub fn restore(
        &self,
        rel: &Path,
        at: Option<Timestamp>,
        target: &Path,
    ) -> Result<Restored, OffsiteError> {
        let bad = |why: String| self.err(Reason::Restore(why));
        if std::fs::symlink_metadata(target).is_ok() {
            return Err(bad(format!(
                "{} exists already; restore into a folder where nothing of that name is",
                show(target)
            )));
        }
        let repo = self.open()?;
        let snaps = self.our_snapshots(&repo)?;
        let chosen = snaps
            .iter()
            .rev()
            .find(|s| at.is_none_or(|t| to_timestamp(s) <= t))
            .ok_or_else(|| {
                self.err(Reason::NoSnapshot(match at {
                    Some(t) if !snaps.is_empty() => format!(
                        "no snapshot of {} is as old as {t} (the oldest is from {})",
                        show(&self.dst),
                        to_timestamp(&snaps[0])
                    ),
                    _ => format!(
                        "no snapshot of {} yet: make one with `mirrortray offsite push`",
                        show(&self.dst)
                    ),
                }))
            })?
            .clone();
        let repo = repo.to_indexed().map_err(|e| self.rustic(&e))?;
        let in_snap = if rel.as_os_str().is_empty() {
            self.dst.clone()
        } else {
            self.dst.join(rel)
        };
        let in_snap_text = in_snap.to_str().ok_or_else(|| {
            bad(format!(
                "{} has a name that is not UTF-8, which restic's snapshots do not hold",
                show(&in_snap)
            ))
        })?;
        let node = repo
            .node_from_snapshot_and_path(&chosen, in_snap_text)
            .map_err(|_| {
                bad(format!(
                    "{} is not in the snapshot {} of {}",
                    show(&in_snap),
                    short_id(&chosen),
                    to_timestamp(&chosen)
                ))
            })?;
        let is_file = !matches!(node.node_type, NodeType::Dir);
        let target_text = target.to_str().ok_or_else(|| {
            bad(format!(
                "{} has a name that is not UTF-8; choose another folder",
                show(target)
            ))
        })?;
        let ls = repo
            .ls(&node, &LsOptions::default())
            .map_err(|e| self.rustic(&e))?;
        let dest =
            LocalDestination::new(target_text, true, is_file).map_err(|e| self.rustic(&e))?;
        let opts = RestoreOptions::default();
        let plan = repo
            .prepare_restore(&opts, ls.clone(), &dest, false)
            .map_err(|e| self.rustic(&e))?;
        let (files, dirs, bytes) = (
            plan.stats.files.restore,
            plan.stats.dirs.restore,
            plan.restore_size,
        );
        repo.restore(plan, &opts, ls, &dest)
            .map_err(|e| self.rustic(&e))?;
        Ok(Restored {
            snap: to_snap(&chosen),
            target: target.to_path_buf(),
            files,
            dirs,
            bytes,
        })
    }

    /// Applies the keep policy to the pair's snapshots (this host, this
    /// backup folder; other pairs' and machines' are left alone), then
    /// prunes the data no snapshot uses any more (freed a day later: see
    /// the comment at the prune).
    pub fn forget(&self) -> Result<Forgot, OffsiteError> {
        let _lock = self.lock("forget")?;
        let repo = self.open()?;
        let snaps = self.our_snapshots(&repo)?;
        let c = &self.cfg;
        let keep = KeepOptions::default()
            .keep_hourly(count(c.keep_hourly))
            .keep_daily(count(c.keep_daily))
            .keep_weekly(count(c.keep_weekly))
            .keep_monthly(count(c.keep_monthly))
            // The latest is always kept, whatever the policy says.
            .keep_last(1);
        let decided = keep
            .apply(snaps, &rustic_core::jiff::Zoned::now())
            .map_err(|e| self.rustic(&e))?;
        let mut kept = Vec::new();
        let mut forgotten = Vec::new();
        for d in &decided {
            if d.keep {
                kept.push(to_snap(&d.snapshot));
            } else {
                forgotten.push(to_snap(&d.snapshot));
            }
        }
        kept.sort_by_key(|s| s.time);
        forgotten.sort_by_key(|s| s.time);
        if forgotten.is_empty() {
            return Ok(Forgot {
                kept,
                forgotten,
                bytes_freed: 0,
            });
        }
        let ids: Vec<_> = decided
            .iter()
            .filter(|d| !d.keep)
            .map(|d| d.snapshot.id)
            .collect();
        repo.delete_snapshots(&ids).map_err(|e| self.rustic(&e))?;
        // rustic takes no lock (restic's locks are not honoured), so packs
        // no snapshot uses are only marked now and deleted by a forget a
        // day later: a push from another machine meanwhile that reuses
        // their data takes them back. Stock restic sees the marked packs as
        // "not referenced in any index", which its check calls harmless.
        let opts = PruneOptions::default();
        let plan = repo.prune_plan(&opts).map_err(|e| self.rustic(&e))?;
        let freed = plan.stats.size_to_delete.remove;
        repo.prune(&opts, plan).map_err(|e| self.rustic(&e))?;
        Ok(Forgot {
            kept,
            forgotten,
            bytes_freed: freed,
        })
    }

    /// Checks the whole repository (every pair's snapshots in it);
    /// `read_data` also reads and verifies every pack.
    pub fn check(&self, read_data: bool) -> Result<Checked, OffsiteError> {
        let repo = self.open()?;
        let snapshots = repo.get_all_snapshots().map_err(|e| self.rustic(&e))?.len();
        let results = repo
            .check(CheckOptions::default().read_data(read_data))
            .map_err(|e| self.rustic(&e))?;
        let mut warnings = Vec::new();
        let mut errors = Vec::new();
        // The level's type is not exported by rustic_core; its name is.
        for (level, e) in &results.0 {
            if format!("{level:?}") == "Warn" {
                warnings.push(e.to_string());
            } else {
                errors.push(e.to_string());
            }
        }
        if !errors.is_empty() {
            let more = if errors.len() > 1 {
                format!(" (and {} more problems)", errors.len() - 1)
            } else {
                String::new()
            };
            return Err(self.err(Reason::Damaged(format!("{}{more}", errors[0]))));
        }
        Ok(Checked {
            warnings,
            snapshots,
        })
    }
}

/// The first line of what `cmd` prints, run by the shell.
fn run_password_command(cmd: &str) -> Result<Vec<u8>, String> {
    #[cfg(unix)]
    let mut c = std::process::Command::new("sh");
    #[cfg(unix)]
    c.arg("-c").arg(cmd);
    #[cfg(not(unix))]
    let mut c = std::process::Command::new("cmd");
    #[cfg(not(unix))]
    c.arg("/C").arg(cmd);
    let out = c
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .map_err(|e| {
            format!(
                "cannot run the password command: {}",
                super::error::reason(&e)
            )
        })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().next().unwrap_or("").trim();
        return Err(format!(
            "the password command failed ({}){}",
            out.status,
            if first.is_empty() {
                String::new()
            } else {
                format!(": {}", show(Path::new(first)))
            }
        ));
    }
    Ok(out.stdout)
}

/// A tag as restic and rustic take it: no commas (they separate tags).
fn tag_text(s: &str) -> String {
    s.replace(',', "_")
}

/// `s` matched literally by a glob.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\' | '!') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// FNV-1a: a name for a repository's lock file that stays the same from
/// one build to the next (std's hasher may not).
fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A policy count as rustic takes it (0: none of that kind).
fn count(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn to_zoned(t: Timestamp) -> rustic_core::jiff::Zoned {
    let ts = rustic_core::jiff::Timestamp::new(t.as_second(), t.subsec_nanosecond())
        .unwrap_or(rustic_core::jiff::Timestamp::UNIX_EPOCH);
    ts.to_zoned(rustic_core::jiff::tz::TimeZone::system())
}

fn short_id(s: &SnapshotFile) -> String {
    s.id.to_string().chars().take(8).collect()
}

fn to_timestamp(s: &SnapshotFile) -> Timestamp {
    let t = s.time.timestamp();
    Timestamp::new(t.as_second(), t.subsec_nanosecond()).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn to_snap(s: &SnapshotFile) -> Snap {
    Snap {
        short_id: short_id(s),
        id: s.id.to_string(),
        time: to_timestamp(s),
        host: s.hostname.clone(),
        tags: s.tags.iter().cloned().collect(),
        tree: s.tree.to_string(),
        files: s.summary.as_ref().map(|m| m.total_files_processed),
        bytes: s.summary.as_ref().map(|m| m.total_bytes_processed),
    }
}

/// rustic's message without its report boilerplate: the guidance with its
/// context filled in, and the first cause.
fn short(e: &RusticError) -> String {
    let log = e.display_log();
    let text = log.strip_prefix("Error: ").unwrap_or(&log);
    let (guidance, rest) = match text.find(" (kind: ") {
        Some(i) => (&text[..i], &text[i..]),
        None => (text, ""),
    };
    let cause = rest
        .find(": caused by: ")
        .map(|i| &rest[i + ": caused by: ".len()..]);
    let guidance = guidance
        .trim()
        .trim_start_matches("Backoff failed, please check the logs for more information.")
        .trim();
    let mut out = guidance.trim_end_matches('.').to_string();
    if let Some(c) = cause {
        let c = c.split(" : (source: ").next().unwrap_or(c).trim();
        if !c.is_empty() && !out.contains(c) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(c.trim_end_matches('.'));
        }
    }
    show(Path::new(&out))
}

/// The reason behind a rustic error, from its code and the errors it was
/// caused by.
fn classify(e: &RusticError) -> Reason {
    if e.is_incorrect_password() {
        return Reason::WrongPassword;
    }
    let mut chain: Vec<String> = Vec::new();
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<io::Error>()
            && let Some(r) = io_reason(io)
        {
            return r;
        }
        chain.push(s.to_string());
        src = s.source();
    }
    let all = format!("{} {}", e.display_log(), chain.join(" ")).to_lowercase();
    if all.contains("no space left") || all.contains("insufficient storage") {
        return Reason::DiskFull;
    }
    if all.contains("connection refused")
        || all.contains("error sending request")
        || all.contains("body error")
        || all.contains("connection reset")
        || all.contains("connection closed")
        || all.contains("broken pipe")
        || all.contains("unexpected eof")
        || all.contains("dns error")
        || all.contains("timed out")
        || all.contains("network is unreachable")
        || all.contains("no route to host")
    {
        return Reason::Unreachable(unreachable_words(&all));
    }
    // S3 (OpenDAL) says what went wrong in the server's error code.
    if all.contains("nosuchbucket") {
        return Reason::NoBucket;
    }
    if all.contains("failed to load signing credential") {
        return Reason::PermissionDenied(
            "no S3 keys: give AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment, or put them in ~/.aws/credentials".into(),
        );
    }
    if all.contains("invalidaccesskeyid") || all.contains("signaturedoesnotmatch") {
        return Reason::PermissionDenied(
            "the server refused the S3 keys (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or ~/.aws/credentials)".into(),
        );
    }
    if all.contains("accessdenied") {
        return Reason::PermissionDenied("the server refused access to the bucket".into());
    }
    if all.contains("no repository config file found") {
        return Reason::NotARepository;
    }
    if all.contains("permission denied") || all.contains("403 forbidden") {
        return Reason::PermissionDenied(short(e));
    }
    if all.contains("401 unauthorized") {
        return Reason::PermissionDenied(
            "the server refused the user name or password in the repository URL".into(),
        );
    }
    Reason::Other(short(e))
}

fn unreachable_words(all: &str) -> String {
    if all.contains("connection refused") {
        "the connection was refused (no server listening there)".into()
    } else if all.contains("dns error") {
        "the server's name does not resolve".into()
    } else if all.contains("timed out") {
        "the server did not answer in time".into()
    } else if all.contains("error sending request") {
        "no connection to the server".into()
    } else if all.contains("body error")
        || all.contains("connection reset")
        || all.contains("connection closed")
        || all.contains("broken pipe")
        || all.contains("unexpected eof")
    {
        "the connection to the server broke off".into()
    } else {
        "no connection to the server".into()
    }
}

fn io_reason(e: &io::Error) -> Option<Reason> {
    #[cfg(unix)]
    if let Some(code) = e.raw_os_error() {
        use rustix::io::Errno;
        let r = match code {
            c if c == Errno::NOSPC.raw_os_error() || c == Errno::DQUOT.raw_os_error() => {
                Reason::DiskFull
            }
            c if c == Errno::CONNREFUSED.raw_os_error() => {
                Reason::Unreachable("the connection was refused (no server listening there)".into())
            }
            c if c == Errno::HOSTUNREACH.raw_os_error()
                || c == Errno::NETUNREACH.raw_os_error()
                || c == Errno::TIMEDOUT.raw_os_error() =>
            {
                Reason::Unreachable(super::error::reason(e))
            }
            c if c == Errno::ACCESS.raw_os_error() || c == Errno::PERM.raw_os_error() => {
                Reason::PermissionDenied(super::error::reason(e))
            }
            _ => return None,
        };
        return Some(r);
    }
    match e.kind() {
        io::ErrorKind::ConnectionRefused => Some(Reason::Unreachable(
            "the connection was refused (no server listening there)".into(),
        )),
        io::ErrorKind::PermissionDenied => Some(Reason::PermissionDenied(e.to_string())),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_a_url_is_hidden() {
        assert_eq!(
            shown_repository("rest:https://me:secret@host:8000/repo"),
            "rest:https://me:***@host:8000/repo"
        );
        assert_eq!(
            shown_repository("rest:http://127.0.0.1:8000/"),
            "rest:http://127.0.0.1:8000/"
        );
        assert_eq!(shown_repository("/srv/restic"), "/srv/restic");
    }

    #[test]
    fn local_repositories_are_told_from_the_others() {
        assert_eq!(local_path("/srv/r"), Some(PathBuf::from("/srv/r")));
        assert_eq!(local_path("local:/srv/r"), Some(PathBuf::from("/srv/r")));
        assert_eq!(local_path("rest:http://h/"), None);
        assert_eq!(local_path("rclone:remote:path"), None);
        assert_eq!(local_path("/mnt/a:b"), Some(PathBuf::from("/mnt/a:b")));
    }

    #[test]
    fn config_problems_in_words() {
        let ok = OffsiteConfig::new("/srv/r", "/home/me/.pw");
        assert_eq!(ok.problem(Path::new("/s"), Path::new("/d")), None);
        type Edit = fn(&mut OffsiteConfig);
        let table: &[(Edit, &str)] = &[
            (
                |c| c.password = Some("x".into()),
                "never kept in the config",
            ),
            (|c| c.password_file = None, "needs password_file"),
            (
                |c| c.password_command = Some("pass show r".into()),
                "both password_file and password_command",
            ),
            (|c| c.interval_minutes = 0, "interval_minutes = 0"),
            (|c| c.overdue_hours = 0, "overdue_hours = 0"),
            (|c| c.limit_upload = Some(0), "limit_upload = 0"),
            (|c| c.repository = "/d/r".into(), "inside the pair's backup"),
            (|c| c.repository = "rel/r".into(), "relative path"),
            (|c| c.password_file = Some("pw".into()), "relative path"),
        ];
        for (edit, want) in table {
            let mut c = ok.clone();
            edit(&mut c);
            let p = c.problem(Path::new("/s"), Path::new("/d")).unwrap();
            assert!(p.contains(want), "{want}: {p}");
        }
    }

    #[test]
    fn globs_match_names_literally() {
        assert_eq!(
            glob_escape("/a/b[1]*/.mirrortray"),
            "/a/b\\[1\\]\\*/.mirrortray"
        );
    }
}
