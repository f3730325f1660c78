//! status_file: what a running tray or `watch` tells `mirrortray status`.
//!
//! Each running instance keeps one JSON file, `status-<pid>.json`, in the
//! user's runtime folder (`$XDG_RUNTIME_DIR/mirrortray/`, else the local
//! data folder), rewritten atomically (temp file, rename) whenever a pair's
//! status changes, and removed when the instance stops. `mirrortray status`
//! reads every such file whose process is alive; a file left by a process
//! that died is removed by the reader. A file, not a socket: the reader
//! needs no cooperation from a busy instance, and a hung instance shows as
//! a stale time rather than as no answer.
//!
//! The file holds what [`PairStatus`] holds, with the words already made
//! ([`PairStatus::headline`]), so scripts and people read the same thing.

use std::io;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::watch::{OffsiteFailure, OffsiteStatus, PairStatus};

/// The user's folder for files that live as long as a session: the lock of
/// the tray, the status files.
pub fn runtime_dir() -> PathBuf {
    let dirs = directories::BaseDirs::new();
    dirs.as_ref()
        .and_then(|d| d.runtime_dir().map(PathBuf::from))
        .or_else(|| dirs.as_ref().map(|d| d.data_local_dir().to_path_buf()))
        .unwrap_or_else(std::env::temp_dir)
        .join("mirrortray")
}

/// One instance, as written to its file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Instance {
    pub pid: u32,
    /// "tray" or "watch".
    pub kind: String,
    /// When the file was last written (RFC 3339, UTC).
    pub updated: String,
    pub pairs: Vec<Pair>,
    /// Pairs that have not said anything yet (just started, or reloaded).
    #[serde(default)]
    pub starting: usize,
}

impl Instance {
    /// Every pair up to date, and there is at least one; no offsite copy
    /// failing or overdue.
    pub fn up_to_date(&self) -> bool {
        self.starting == 0
            && !self.pairs.is_empty()
            && self
                .pairs
                .iter()
                .all(|p| p.up_to_date && p.offsite.as_ref().is_none_or(|o| o.ok))
    }
}

/// One pair, as written to the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pair {
    pub src: String,
    pub dst: String,
    /// starting, idle, busy, paused, degraded, error.
    pub state: String,
    /// The state in words, the reason first when something is wrong.
    pub headline: String,
    /// Nothing outstanding: the backup is an exact copy as far as the
    /// instance knows.
    pub up_to_date: bool,
    pub pending: usize,
    pub failing: usize,
    pub failures: Vec<Failure>,
    pub last_ok: Option<String>,
    pub verified_at: Option<String>,
    /// How far the work in hand has got (while busy).
    #[serde(default)]
    pub progress: Option<ProgressJson>,
    /// Files another program is writing: copied once closed or quiet.
    #[serde(default)]
    pub being_written: Vec<String>,
    /// Files copied per hour: `[hours since the epoch (UTC), files]`, the
    /// last 24 hours this instance ran, oldest first.
    #[serde(default)]
    pub copied_per_hour: Vec<(i64, u64)>,
    /// The pair's offsite copy (`None`: it has none).
    #[serde(default)]
    pub offsite: Option<OffsiteJson>,
}

/// [`OffsiteStatus`] for scripts; times in RFC 3339 (UTC).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OffsiteJson {
    pub repository: String,
    /// "Offsite: last copy 14:02", in the writer's local time.
    pub line: String,
    /// Neither failing nor overdue.
    pub ok: bool,
    pub last_copy: Option<String>,
    /// A push running, since.
    pub pushing: Option<String>,
    /// How far it has got: bytes of the backup folder looked at.
    #[serde(default)]
    pub progress: Option<OffsiteProgressJson>,
    pub failed: Option<OffsiteFailureJson>,
    pub overdue_since: Option<String>,
    /// Changes wait for the next push.
    pub waiting: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OffsiteProgressJson {
    pub bytes_done: u64,
    /// Known once counted.
    pub bytes_total: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OffsiteFailureJson {
    pub at: String,
    pub reason: String,
    pub next_try: String,
}

impl OffsiteJson {
    pub fn from_status(o: &OffsiteStatus) -> OffsiteJson {
        let t = |t: &Timestamp| t.to_string();
        OffsiteJson {
            repository: o.repository.clone(),
            line: o.line(&jiff::ZonedDateTime::now()),
            ok: o.ok(),
            last_copy: o.last_copy.as_ref().map(t),
            pushing: o.pushing.as_ref().map(t),
            progress: o.progress.map(|(done, total)| OffsiteProgressJson {
                bytes_done: done,
                bytes_total: total,
            }),
            failed: o.failed.as_ref().map(|f| OffsiteFailureJson {
                at: t(&f.at),
                reason: f.reason.clone(),
                next_try: t(&f.next_try),
            }),
            overdue_since: o.overdue_since.as_ref().map(t),
            waiting: o.waiting,
        }
    }

    /// Back to the model, to say it with a reader's `now`.
    pub fn status(&self) -> OffsiteStatus {
        let t = |s: &Option<String>| s.as_deref().and_then(|s| s.parse::<Timestamp>().ok());
        OffsiteStatus {
            index: 0,
            repository: self.repository.clone(),
            last_copy: t(&self.last_copy),
            pushing: t(&self.pushing),
            progress: self
                .progress
                .as_ref()
                .map(|p| (p.bytes_done, p.bytes_total)),
            failed: self.failed.as_ref().map(|f| OffsiteFailure {
                at: f.at.parse().unwrap_or(Timestamp::UNIX_EPOCH),
                reason: f.reason.clone(),
                next_try: f.next_try.parse().unwrap_or(Timestamp::UNIX_EPOCH),
            }),
            overdue_since: t(&self.overdue_since),
            waiting: self.waiting,
        }
    }
}

/// [`Progress`](super::watch::Progress) for scripts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProgressJson {
    pub files_done: u64,
    pub bytes_done: u64,
    /// Known once a whole-pair pass has counted its work.
    pub files_total: Option<u64>,
    pub bytes_total: Option<u64>,
    pub counting: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    pub path: String,
    pub reason: String,
    pub since: String,
}

impl Pair {
    pub fn from_status(s: &PairStatus) -> Pair {
        let lossy = |p: &Path| p.to_string_lossy().into_owned();
        Pair {
            src: lossy(&s.src),
            dst: lossy(&s.dst),
            state: s.state.key().into(),
            headline: s.headline(),
            up_to_date: s.up_to_date(),
            pending: match s.state {
                super::watch::State::Busy { pending } => pending,
                _ => 0,
            },
            failing: s.failing,
            failures: s
                .failures
                .iter()
                .map(|f| Failure {
                    path: lossy(&f.path),
                    reason: f.reason.clone(),
                    since: f.since.to_string(),
                })
                .collect(),
            last_ok: s.last_ok.map(|t| t.to_string()),
            verified_at: s.verified_at.map(|t| t.to_string()),
            progress: s.progress.map(|p| ProgressJson {
                files_done: p.files_done,
                bytes_done: p.bytes_done,
                files_total: p.files_total,
                bytes_total: p.bytes_total,
                counting: p.counting,
            }),
            being_written: s.being_written.iter().map(|p| lossy(p)).collect(),
            copied_per_hour: s.copied_per_hour.clone(),
            offsite: None,
        }
    }
}

/// This process's status file: written on every change, removed on drop.
pub struct StatusFile {
    path: PathBuf,
    kind: &'static str,
    pairs: Vec<Option<PairStatus>>,
    /// Each pair's offsite copy, by index.
    offsite: Vec<Option<OffsiteStatus>>,
    /// A failure to write is said once, not on every change.
    warned: bool,
    /// The same, for readers in this process (the page).
    view: StatusView,
}

/// What the status file says, read in the process that writes it.
#[derive(Clone, Default)]
pub struct StatusView(std::sync::Arc<std::sync::Mutex<Option<Instance>>>);

impl StatusView {
    /// The latest status (`None`: none written yet).
    pub fn get(&self) -> Option<Instance> {
        self.0.lock().map(|g| g.clone()).unwrap_or(None)
    }

    fn set(&self, i: Instance) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some(i);
        }
    }
}

impl StatusFile {
    /// The file for this process; `kind` is "tray" or "watch". Nothing is
    /// written until the first status.
    pub fn new(kind: &'static str) -> StatusFile {
        StatusFile {
            path: runtime_dir().join(format!("status-{}.json", std::process::id())),
            kind,
            pairs: Vec::new(),
            offsite: Vec::new(),
            warned: false,
            view: StatusView::default(),
        }
    }

    /// The file for this process, also shown through `view`.
    pub fn with_view(kind: &'static str, view: StatusView) -> StatusFile {
        let mut f = StatusFile::new(kind);
        f.view = view;
        f
    }

    /// A reader of this status for the same process.
    pub fn view(&self) -> StatusView {
        self.view.clone()
    }

    /// Forgets every pair (the config was reloaded: new pairs follow).
    pub fn reset(&mut self, count: usize) {
        self.pairs = vec![None; count];
        self.offsite = vec![None; count];
        self.write();
    }

    /// A pair's new status.
    pub fn set(&mut self, s: &PairStatus) {
        if self.pairs.len() <= s.index {
            self.pairs.resize(s.index + 1, None);
        }
        self.pairs[s.index] = Some(s.clone());
        self.write();
    }

    /// A pair's offsite copy's new state.
    pub fn set_offsite(&mut self, o: &OffsiteStatus) {
        if self.offsite.len() <= o.index {
            self.offsite.resize(o.index + 1, None);
        }
        self.offsite[o.index] = Some(o.clone());
        self.write();
    }

    fn write(&mut self) {
        let instance = Instance {
            pid: std::process::id(),
            kind: self.kind.into(),
            updated: Timestamp::now().to_string(),
            pairs: self
                .pairs
                .iter()
                .enumerate()
                .filter_map(|(i, s)| {
                    let mut p = Pair::from_status(s.as_ref()?);
                    p.offsite = self
                        .offsite
                        .get(i)
                        .and_then(Option::as_ref)
                        .map(OffsiteJson::from_status);
                    Some(p)
                })
                .collect(),
            starting: self.pairs.iter().filter(|p| p.is_none()).count(),
        };
        let written = write_atomic(&self.path, &instance);
        self.view.set(instance);
        if let Err(e) = written
            && !self.warned
        {
            self.warned = true;
            log::warn!(
                "{}: cannot write the status for `mirrortray status`: {}",
                super::error::show(&self.path),
                super::error::reason(&e)
            );
        }
    }
}

impl Drop for StatusFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn write_atomic(path: &Path, instance: &Instance) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_vec_pretty(instance).map_err(io::Error::other)?;
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Every running instance's status, oldest process first. An instance's
/// files in the runtime folder are named `<what>-<pid>.<ext>` (its status
/// here, its page's address in `page`); those of processes that are gone
/// are removed.
pub fn running() -> Vec<Instance> {
    let dir = runtime_dir();
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name();
        let Some((what, pid)) = name.to_str().and_then(owner) else {
            continue;
        };
        if !alive(pid) {
            let _ = std::fs::remove_file(e.path());
            continue;
        }
        if what != "status" {
            continue;
        }
        // Read while it may be replaced: a rename is atomic, so the text
        // is one whole version or the other.
        if let Ok(text) = std::fs::read(e.path())
            && let Ok(i) = serde_json::from_slice::<Instance>(&text)
        {
            out.push(i);
        }
    }
    out.sort_by_key(|i| i.pid);
    out
}

/// `("status", 42)` for `status-42.json`; `None` for a name of no instance.
fn owner(name: &str) -> Option<(&str, u32)> {
    let (what, rest) = name.split_once('-')?;
    let (pid, ext) = rest.split_once('.')?;
    let known = matches!((what, ext), ("status", "json") | ("page", "url"));
    Some((what, pid.parse().ok()?)).filter(|_| known)
}

/// Whether process `pid` is a running mirrortray (a dead one's number may
/// have been given to another program since).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("comm"))
        .is_ok_and(|c| c.trim_end() == "mirrortray")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instances_files_are_known_by_name() {
        for (name, want) in [
            ("status-42.json", Some(("status", 42))),
            ("page-42.url", Some(("page", 42))),
            ("status-42.json.tmp", None),
            ("page-x.url", None),
            ("tray.lock", None),
            ("notes-42.txt", None),
        ] {
            assert_eq!(owner(name), want, "{name}");
        }
    }
}
