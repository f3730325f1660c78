//! watch: live mirroring. One worker thread per pair; commands in, notices out.
//!
//! ```text
//!  source (inotify; notify elsewhere) ──Heard──> shell ──Input──> core (pure)
//!                                                  <──Effect──
//!  shell ──Mirror::apply / reconcile──> DST
//!  Supervisor ──Command──> shell          shell ──Notice──> CLI log / tray
//! ```
//! - `source`, `inotify`, `hints`: what changed in SRC, as [`Hint`](pending::Hint)s;
//! - `pending`: when to look at what (quiet, settle, busy files);
//! - `retry`: failed paths and their back-off;
//! - `core`: the pair's state machine (phases, problems, timers), no I/O;
//! - `shell`: the thread that does the core's effects.
//!
//! Promises (DESIGN.md "Watching"):
//! - events are hints: each dirty path is stat'ed on both sides, so missed,
//!   merged or reordered events cannot leave DST wrong (see `pending`);
//! - a rename inside SRC is a rename inside DST when DST still holds the old
//!   entry; anything that does not match falls back to reconciling both names;
//! - start-up, resume, overflow and "back up now" reconcile the whole pair,
//!   through the same `Mirror::reconcile` as `sync`;
//! - the OS watch limit turns the pair to periodic scans, said in the log and
//!   the status; a source that disappears pauses the pair with DST untouched
//!   until it returns;
//! - failed paths are retried with back-off; a pair not clean for longer
//!   than the alert time raises a notice.

pub mod core;
pub mod hints;
#[cfg(target_os = "linux")]
pub mod inotify;
pub mod offsite;
pub mod pending;
mod pusher;
pub mod retry;
mod shell;
pub mod source;
pub mod status;
mod tally;

pub use status::{Failing, OffsiteFailure, OffsiteStatus, PairStatus, Progress, State};

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, unbounded};
use jiff::Timestamp;

use super::error::EntryError;
use super::event::Control;
use super::mirror::{Mirror, Options, PairSpec};

/// Timings of the watcher (from the config's settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timings {
    /// Light full check while watching (drift); `None`: off.
    pub drift_check: Option<Duration>,
    /// Alert when a pair has not been clean for this long.
    pub alert_after: Duration,
    /// Full scan interval when the OS watch limit is reached.
    pub poll_interval: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings::from_settings(&crate::engine::config::Settings::default())
    }
}

impl Timings {
    /// The timings a config's settings give: each at least a second; a
    /// drift check of 0 minutes is off.
    pub fn from_settings(s: &crate::engine::config::Settings) -> Timings {
        let secs = |v: f64| Duration::from_secs_f64(if v.is_finite() { v.max(1.0) } else { 1.0 });
        Timings {
            drift_check: (s.drift_check_minutes != 0.0).then(|| secs(s.drift_check_minutes * 60.0)),
            alert_after: secs(s.alert_after_hours * 3600.0),
            poll_interval: secs(s.poll_seconds),
        }
    }
}

/// A command to every pair's worker.
#[derive(Debug, Clone)]
pub enum Command {
    /// Stop applying changes (events are dropped; resume reconciles).
    Pause,
    /// Reconcile, then mirror live again.
    Resume,
    /// A full reconcile now.
    BackupNow,
    /// Let the held mass deletion go through (the user confirmed).
    AllowMassDelete,
    /// New timings.
    Timings(Timings),
    /// Stop cleanly: no temp files, lock released.
    Quit,
}

/// What the workers tell the app.
#[derive(Debug, Clone)]
pub enum Notice {
    Status(PairStatus),
    /// Entries failed in one batch (coalesced): how many, and the first.
    Failures {
        index: usize,
        count: usize,
        first: EntryError,
    },
    /// SRC is missing, unreadable or unmounted; the pair waits for it.
    SourceMissing {
        index: usize,
        src: PathBuf,
        reason: String,
    },
    /// The mass-deletion guard holds deletions.
    MassDeleteHeld {
        index: usize,
        dst: PathBuf,
        count: u64,
        total: u64,
    },
    /// No complete backup for longer than the alert time.
    Stale {
        index: usize,
        since: Option<Timestamp>,
    },
    /// Back to a clean mirror after a problem.
    Recovered {
        index: usize,
    },
    /// Events were lost (queue overflow); a full reconcile follows.
    Overflow {
        index: usize,
    },
    /// The backup disk was short of space: the oldest versions were removed
    /// (`text` says how many, how much and how far back restores reach).
    VersionsPruned {
        index: usize,
        text: String,
    },
    /// The OS watch limit was hit; the pair scans periodically.
    WatchLimit {
        index: usize,
        message: String,
    },
    /// The pair's offsite copy: its state changed.
    Offsite(OffsiteStatus),
    /// A push of the offsite copy failed (first, or for another reason).
    OffsiteFailed {
        index: usize,
        repository: String,
        reason: String,
        next_try: Timestamp,
    },
    /// Changes made at `since` are in no offsite snapshot yet, for longer
    /// than the config allows.
    OffsiteOverdue {
        index: usize,
        repository: String,
        since: Timestamp,
    },
    /// The offsite copy succeeded after failing or being overdue.
    OffsiteRecovered {
        index: usize,
    },
    /// The worker stopped (after Quit).
    Stopped {
        index: usize,
    },
}

/// A pair to watch: already opened (the CLI checks setup first), or only
/// specified (the tray retries until it can be opened).
pub enum Start {
    Opened(Box<Mirror>),
    Spec(PairSpec),
}

struct WorkerHandle {
    cmd: Sender<Command>,
    ctl: Arc<Control>,
    thread: Option<JoinHandle<()>>,
}

/// Runs one worker per pair.
pub struct Supervisor {
    workers: Vec<WorkerHandle>,
}

/// A cloneable way to command every worker from another thread.
#[derive(Clone)]
pub struct Handle {
    cmds: Vec<(Sender<Command>, Arc<Control>)>,
}

impl Handle {
    pub fn send(&self, cmd: Command) {
        for (tx, ctl) in &self.cmds {
            // Interrupt a long reconcile so the command is seen at once.
            if matches!(cmd, Command::Pause | Command::Quit) {
                ctl.stop();
            }
            let _ = tx.send(cmd.clone());
        }
    }
}

impl Supervisor {
    /// Starts a worker per pair; notices go to `notices`.
    pub fn start(
        pairs: Vec<Start>,
        opts: Options,
        timings: Timings,
        notices: Sender<Notice>,
    ) -> Supervisor {
        let workers = pairs
            .into_iter()
            .enumerate()
            .map(|(index, start)| {
                let (tx, rx): (Sender<Command>, Receiver<Command>) = unbounded();
                let ctl = Arc::new(Control::new());
                let w = shell::Shell::new(
                    index,
                    start,
                    opts.clone(),
                    timings.clone(),
                    rx,
                    ctl.clone(),
                    notices.clone(),
                );
                let thread = std::thread::Builder::new()
                    .name(format!("pair-{index}"))
                    .spawn(move || w.run())
                    .ok();
                if thread.is_none() {
                    let _ = notices.send(Notice::Stopped { index });
                }
                WorkerHandle {
                    cmd: tx,
                    ctl,
                    thread,
                }
            })
            .collect();
        Supervisor { workers }
    }

    pub fn handle(&self) -> Handle {
        Handle {
            cmds: self
                .workers
                .iter()
                .map(|w| (w.cmd.clone(), w.ctl.clone()))
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.workers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// Sends Quit and waits for every worker to finish cleanly.
    pub fn quit(mut self) {
        self.handle().send(Command::Quit);
        for w in &mut self.workers {
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        let h = self.handle();
        if self.workers.iter().any(|w| w.thread.is_some()) {
            h.send(Command::Quit);
            for w in &mut self.workers {
                if let Some(t) = w.thread.take() {
                    let _ = t.join();
                }
            }
        }
    }
}
