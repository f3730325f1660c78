//! core: one pair's watcher as a state machine without I/O (quinn-proto's
//! shape). The shell (`shell.rs`) owns the watch of SRC, the `Mirror`, the
//! channels and the clock; it feeds [`Input`]s in with the time, and does
//! the [`Effect`]s that come out, feeding their results back as inputs.
//! Everything this pair decides is here, and tested by scenario tables.
//!
//! The model:
//! - [`Phase`]: not open yet (or closed: its backup folder went), starting
//!   (the first full pass has not finished), live, paused;
//! - [`Problem`]: why the pair is not mirroring (source or backup folder
//!   missing, in use, unreadable ...), an enum, never a string;
//! - pending work (`pending`: what was heard, when to look), failed paths
//!   and when to try them again (`retry`), deletions held by the guard;
//! - timers: the root check (is SRC still the folder watched, is DST still
//!   there), the drift check, periodic scans when live watching is off
//!   (the system's watch limit), the retry of folders that could not be
//!   watched, handing freed memory back.
//!
//! Promises kept here (DESIGN.md "Watching"): start-up, resume, overflow
//! and "back up now" reconcile the whole pair; a missing source pauses the
//! pair and it resumes by itself; failed paths are retried with back-off;
//! a pair not clean for longer than the alert time raises a notice; the
//! next deadline is never in the past unless there is work to do (an idle
//! pair sleeps).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jiff::Timestamp;

use super::hints::Heard;
use super::pending::{Hint, Pending, Quirks};
use super::retry::Retry;
use super::{Command, Notice, PairStatus, State, Timings};
use crate::engine::batch::{Applied, Batch, Leave};
use crate::engine::error::{SetupError, show};
use crate::engine::event::Summary;

/// How often SRC's root (and DST's) are checked to still be what we watch.
pub const ROOT_CHECK: Duration = Duration::from_secs(2);
/// At most one log line a minute about a busy pair's batches.
const TELL_EVERY: Duration = Duration::from_secs(60);
/// Status while busy is sent at most this often.
pub const STATUS_EVERY: Duration = Duration::from_millis(250);
/// Quiet time after a batch before freed memory is handed back.
pub const TRIM_AFTER: Duration = Duration::from_secs(1);
/// A full pass that took T is repeated for drift at most every T times this
/// (0.1 % of a core).
pub const DRIFT_BUDGET: u32 = 1000;
/// Folders that could not be watched are tried again this often (at most).
pub const REWATCH_EVERY: Duration = Duration::from_secs(30);
/// The longest a full pass the pair asked for itself waits for the changes
/// heard to be applied first.
const FULL_WAITS_AT_MOST: Duration = Duration::from_secs(10);

/// A folder's identity: (device, inode).
pub type Id = (u64, u64);

/// Where the pair is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No open mirror (not opened yet, or its backup folder went): opening
    /// is tried at each root check.
    Closed,
    /// Open; the first full pass has not finished.
    Starting,
    Live,
    Paused,
}

/// Why a pair is not mirroring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// SRC is missing, not a folder, or looks unmounted.
    SourceMissing,
    SourceUnreadable,
    BackupMissing,
    /// The backup folder is the empty mount point of a drive not there.
    BackupDriveMissing,
    BackupInUse,
    /// Any other setup failure (its sentence is in the log).
    Setup,
}

impl Problem {
    fn from_error(e: &SetupError) -> Problem {
        match e {
            SetupError::SrcMissing(_)
            | SetupError::SrcLooksUnmounted(..)
            | SetupError::SrcNotDir(_) => Problem::SourceMissing,
            SetupError::SrcUnreadable(..) => Problem::SourceUnreadable,
            SetupError::Locked { .. } => Problem::BackupInUse,
            SetupError::DstMissing(_) | SetupError::DstDanglingLink(..) => Problem::BackupMissing,
            SetupError::BackupDriveMissing(..) => Problem::BackupDriveMissing,
            _ => Problem::Setup,
        }
    }

    fn is_source(&self) -> bool {
        matches!(self, Problem::SourceMissing | Problem::SourceUnreadable)
    }

    /// The words the status shows.
    fn text(&self, src: &Path, dst: &Path) -> String {
        match self {
            Problem::SourceMissing => format!("Source missing: {}", show(src)),
            Problem::SourceUnreadable => format!("Source unreadable: {}", show(src)),
            Problem::BackupMissing => format!("Backup folder missing: {}", show(dst)),
            Problem::BackupDriveMissing => format!("Backup drive missing: {}", show(dst)),
            Problem::BackupInUse => format!("Backup folder in use: {}", show(dst)),
            Problem::Setup => format!("Cannot back up {}", show(src)),
        }
    }
}

/// Why the whole pair is reconciled (a full pass).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Opened (start-up, or back after a problem).
    Start,
    Resume,
    /// Events were lost, or the watch failed or was restarted.
    Lost,
    BackupNow,
    /// The periodic check that catches what the live watch missed.
    Drift,
    /// Live watching is off (watch limit): the periodic scan.
    Poll,
    AllowMassDelete,
    /// A file got another name whose other names this pair has not seen
    /// (`ln` while watching): a full pass finds them and links them.
    Links,
}

/// Why the watch of SRC could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchFailure {
    /// The system's watch limit: scan periodically instead.
    Limit,
    Other(String),
}

/// What the shell tells the core.
// Each input is made, handed over and dropped once: the large `Applied`
// is not worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Input {
    /// The worker starts; `opened` when the shell already holds an open
    /// mirror (the CLI opens and checks pairs before watching);
    /// `allow_mass_delete`: the user allowed the first full pass past the
    /// mass-deletion guard.
    Start {
        opened: Option<Opened>,
        allow_mass_delete: bool,
    },
    Heard(Heard),
    Command(Command),
    /// The loop woke (a deadline, or after events): run what is due.
    Tick,
    /// Result of [`Effect::Open`].
    Opened(Result<Opened, SetupError>),
    /// Result of [`Effect::Watch`]: the hint source's quirks and SRC's
    /// identity when the watch began.
    Watching(Result<(Quirks, Option<Id>), WatchFailure>),
    /// Result of [`Effect::CheckRoots`]: SRC's and DST's identities (none:
    /// missing), and whether SRC can be read.
    Roots {
        src: Option<Id>,
        src_readable: bool,
        dst: Option<Id>,
    },
    /// Result of [`Effect::Sync`]: everything changed before it was heard.
    Synced,
    /// Result of [`Effect::Apply`], [`Effect::Verify`] or
    /// [`Effect::Reconcile`].
    Applied {
        pass: Pass,
        result: Result<Applied, SetupError>,
    },
}

/// Which kind of pass an `Applied` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// A batch of live changes.
    Batch,
    /// The listings of the folders the batches touched.
    Verify,
    /// The whole pair.
    Full,
}

/// A mirror the shell opened.
#[derive(Debug, Clone)]
pub struct Opened {
    pub src: PathBuf,
    pub dst: PathBuf,
    pub dst_id: Option<Id>,
}

/// What the core asks the shell to do.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Open the mirror (never creating a missing backup folder); answer
    /// with `Input::Opened`.
    Open,
    /// Drop the mirror (its handles point into a folder that went).
    Close,
    /// Start watching SRC; answer with `Input::Watching`.
    Watch,
    Unwatch,
    /// Try again to watch a folder that could not be (relative to SRC).
    WatchAgain(PathBuf),
    /// Hear everything SRC's watch has queued until now (fed in as
    /// `Input::Heard`), then answer with `Input::Synced`: a batch is taken
    /// only after that, so it is never behind changes already made.
    Sync,
    /// Apply a batch of live changes; answer with `Input::Applied`.
    Apply(Batch),
    /// Compare these folders' listings on both sides and mend them, but
    /// not what to `leave`; answer with `Input::Applied`.
    Verify {
        folders: Vec<PathBuf>,
        leave: Leave,
    },
    /// Reconcile the whole pair; answer with `Input::Applied`. `count`:
    /// count the work first, so the pass can say how far it has got (not
    /// for the periodic checks, which expect to find nothing).
    Reconcile {
        allow_mass_delete: bool,
        count: bool,
    },
    /// Remove versions past the retention.
    PruneVersions,
    /// Look at SRC's and DST's roots; answer with `Input::Roots`.
    CheckRoots,
    /// Tell the app (status, popups).
    Notice(Notice),
    /// Hand freed memory back to the system.
    TrimMemory,
}

/// One pair's watcher, without I/O.
pub struct Core {
    index: usize,
    src: PathBuf,
    dst: PathBuf,
    timings: Timings,
    phase: Phase,
    problem: Option<Problem>,
    /// Live watching is off (the system's watch limit): periodic scans.
    polling: bool,
    watching: bool,
    held: Option<(u64, u64)>,
    /// The user allowed the next full pass past the mass-deletion guard.
    allow_mass: bool,
    /// When the full pass waiting was first due (see `take`).
    full_asked: Option<Instant>,
    pending: Pending,
    retry: Retry,
    src_id: Option<Id>,
    dst_id: Option<Id>,
    /// The watch said SRC's root itself went.
    root_gone: bool,
    /// Folders that could not be watched (unreadable), relative to SRC.
    unwatched: Vec<PathBuf>,
    next_root_check: Instant,
    next_drift: Option<Instant>,
    next_poll: Instant,
    next_rewatch: Instant,
    trim_at: Option<Instant>,
    last_ok: Option<Timestamp>,
    unclean_since: Option<Instant>,
    /// What the batches did since the log last said it, and since when:
    /// the log gets one line when the pair is no longer busy, and one a
    /// minute while it stays busy (each batch is a debug line).
    untold: Summary,
    untold_since: Option<Instant>,
    stale_sent: bool,
    last_status: Option<(State, usize, Instant)>,
    /// The folders the last two batches wrote into (newest last).
    recent: std::collections::VecDeque<Vec<PathBuf>>,
    /// Folders touched by batches, whose listings are compared after the
    /// next sync.
    to_verify: std::collections::BTreeSet<PathBuf>,
    /// Why the next full pass is wanted, and the one running (since when).
    full_why: Option<Why>,
    full_running: Option<(Why, Instant)>,
    /// The last time a full pass ended with DST verified equal to SRC.
    verified_at: Option<Timestamp>,
    out: Vec<Effect>,
}

impl Core {
    pub fn new(index: usize, src: &Path, dst: &Path, timings: Timings, now: Instant) -> Core {
        Core {
            index,
            src: src.to_path_buf(),
            dst: dst.to_path_buf(),
            next_drift: timings.drift_check.map(|d| now + d),
            next_poll: now + timings.poll_interval,
            timings,
            phase: Phase::Closed,
            problem: None,
            polling: false,
            watching: false,
            held: None,
            allow_mass: false,
            full_asked: None,
            pending: Pending::new(Quirks::default()),
            retry: Retry::default(),
            src_id: None,
            dst_id: None,
            root_gone: false,
            unwatched: Vec::new(),
            next_root_check: now + ROOT_CHECK,
            next_rewatch: now + REWATCH_EVERY,
            trim_at: None,
            last_ok: None,
            unclean_since: Some(now),
            untold: Summary::default(),
            untold_since: None,
            stale_sent: false,
            last_status: None,
            recent: std::collections::VecDeque::new(),
            to_verify: std::collections::BTreeSet::new(),
            full_why: None,
            full_running: None,
            verified_at: None,
            out: Vec::new(),
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn problem(&self) -> Option<&Problem> {
        self.problem.as_ref()
    }

    /// Handles one input at `now` (`wall`: the same moment on the wall
    /// clock, for the times people read); returns what to do, in order.
    pub fn on(&mut self, input: Input, now: Instant, wall: Timestamp) -> Vec<Effect> {
        match input {
            Input::Start {
                opened,
                allow_mass_delete,
            } => {
                self.allow_mass = allow_mass_delete;
                match opened {
                    Some(o) => self.opened(o, now),
                    None => {
                        self.status(now, true);
                        self.out.push(Effect::Open);
                    }
                }
            }
            Input::Heard(h) => self.heard(h, now),
            Input::Command(c) => self.command(c, now),
            Input::Tick => self.tick(now),
            Input::Opened(Ok(o)) => self.opened(o, now),
            Input::Opened(Err(e)) => self.setup_failed(&e, now),
            Input::Watching(r) => self.watching(r, now),
            Input::Roots {
                src,
                src_readable,
                dst,
            } => self.roots(src, src_readable, dst, now),
            Input::Synced => {
                // Good for this moment only: what is taken now is taken
                // after every event queued until now was heard.
                if self.live() && !self.verify() {
                    self.take(now);
                }
            }
            Input::Applied { pass, result } => self.applied(pass, result, now, wall),
        }
        std::mem::take(&mut self.out)
    }

    /// When the core next needs a `Tick` (never in the past while idle).
    pub fn poll_timeout(&self, now: Instant) -> Instant {
        let mut d = self.next_root_check;
        if self.phase == Phase::Closed || self.phase == Phase::Paused || self.problem.is_some() {
            return d;
        }
        let timers = [
            self.pending.next_deadline(now),
            self.retry.next_deadline(),
            self.next_drift,
            self.trim_at,
            self.polling.then_some(self.next_poll),
            (!self.unwatched.is_empty()).then_some(self.next_rewatch),
        ];
        for t in timers.into_iter().flatten() {
            d = d.min(t);
        }
        d
    }

    /// Asks for a full pass (a drift check or a link's search gives way to
    /// any other reason).
    fn want_full(&mut self, why: Why) {
        if matches!(self.full_why, None | Some(Why::Drift | Why::Links)) {
            self.full_why = Some(why);
        }
        self.pending.want_full();
    }

    fn notice(&mut self, n: Notice) {
        self.out.push(Effect::Notice(n));
    }

    fn heard(&mut self, h: Heard, now: Instant) {
        match h {
            Heard::Hint(hint) => {
                // Paused, or not mirroring: what changes meanwhile is found
                // by the full pass that resuming starts.
                if self.phase == Phase::Paused
                    || self.phase == Phase::Closed
                    || self.problem.is_some()
                {
                    // Said at debug level: tests wait for it as proof that
                    // a change was heard and left alone.
                    if self.phase == Phase::Paused {
                        log::debug!("{}: paused; left for the resume: {hint:?}", show(&self.src));
                    }
                    return;
                }
                if hint == Hint::Rescan {
                    log::warn!(
                        "{}: events were lost (the event queue overflowed); reconciling the whole folder",
                        show(&self.src)
                    );
                    self.notice(Notice::Overflow { index: self.index });
                    return self.want_full(Why::Lost);
                }
                if let Hint::Attr(p) = &hint
                    && self.unwatched.contains(p)
                {
                    // Its permissions changed: it may be readable now.
                    self.unwatched.retain(|u| u != p);
                    self.out.push(Effect::WatchAgain(p.clone()));
                }
                self.pending.note(hint, now);
            }
            Heard::RootGone => {
                // The watched folder itself went: whatever is at SRC's path
                // now (even with the same inode number, which a new folder
                // often gets) is not watched.
                self.root_gone = true;
                self.next_root_check = now;
            }
            Heard::WatchLimit => self.fall_back_to_polling(now),
            Heard::Unwatched(p) => {
                log::warn!(
                    "{}: cannot watch this folder (it is not readable); it is backed up when it can be read",
                    show(&self.src.join(&p))
                );
                if !self.unwatched.contains(&p) {
                    self.unwatched.push(p);
                }
            }
            Heard::Failed(why) => {
                log::warn!(
                    "{}: the file watch failed ({why}); watching again and reconciling the whole folder",
                    show(&self.src)
                );
                self.restart_watch();
                self.want_full(Why::Lost);
            }
        }
    }

    fn command(&mut self, c: Command, now: Instant) {
        match c {
            Command::Pause => {
                if self.phase != Phase::Closed {
                    self.phase = Phase::Paused;
                }
                self.pending.clear();
                log::info!("{}: paused", show(&self.src));
                self.status(now, true);
            }
            Command::Resume => {
                if self.phase == Phase::Paused {
                    self.phase = Phase::Starting;
                    log::info!(
                        "{}: resumed; reconciling what changed meanwhile",
                        show(&self.src)
                    );
                    self.want_full(Why::Resume);
                }
                self.status(now, true);
            }
            Command::BackupNow => {
                self.want_full(Why::BackupNow);
                if self.phase == Phase::Closed || self.problem.is_some() {
                    self.next_root_check = now;
                }
            }
            Command::AllowMassDelete => {
                self.allow_mass = true;
                self.want_full(Why::AllowMassDelete);
            }
            Command::Timings(t) => {
                self.next_drift = t.drift_check.map(|d| now + d);
                self.next_poll = now + t.poll_interval;
                self.timings = t;
            }
            Command::Quit => {}
        }
    }

    fn opened(&mut self, o: Opened, now: Instant) {
        self.src = o.src;
        self.dst = o.dst;
        self.dst_id = o.dst_id;
        if let Some(p) = self.problem.take() {
            log::info!(
                "{}: resolved ({}); reconciling",
                show(&self.src),
                p.text(&self.src, &self.dst)
            );
        }
        self.phase = Phase::Starting;
        self.restart_watch();
        self.want_full(Why::Start);
        self.status(now, true);
    }

    fn restart_watch(&mut self) {
        if self.watching {
            self.out.push(Effect::Unwatch);
            self.watching = false;
        }
        self.unwatched.clear();
        if !self.polling {
            self.out.push(Effect::Watch);
        }
    }

    fn watching(&mut self, r: Result<(Quirks, Option<Id>), WatchFailure>, now: Instant) {
        match r {
            Ok((quirks, src_id)) => {
                self.watching = true;
                self.src_id = src_id;
                self.root_gone = false;
                if !self.pending.is_empty() || self.pending.wants_full() {
                    // Keep what is pending; only the source's quirks change.
                    let full = self.pending.wants_full();
                    self.pending = Pending::new(quirks);
                    if full {
                        self.pending.want_full();
                    }
                } else {
                    self.pending = Pending::new(quirks);
                }
            }
            Err(WatchFailure::Limit) => self.fall_back_to_polling(now),
            Err(WatchFailure::Other(why)) => {
                log::warn!(
                    "{}: cannot watch for changes ({why}); scanning every {} s instead",
                    show(&self.src),
                    self.timings.poll_interval.as_secs()
                );
                self.polling = true;
                self.next_poll = now + self.timings.poll_interval;
                self.want_full(Why::Poll);
                self.status(now, true);
            }
        }
    }

    fn fall_back_to_polling(&mut self, now: Instant) {
        if self.polling {
            return;
        }
        if self.watching {
            self.out.push(Effect::Unwatch);
            self.watching = false;
        }
        let secs = self.timings.poll_interval.as_secs();
        let msg = format!(
            "{}: too many folders to watch (the system's limit, fs.inotify.max_user_watches, is reached); scanning every {secs} s instead of live. To watch live, raise the limit: sudo sysctl fs.inotify.max_user_watches=524288 (and add it to /etc/sysctl.conf to keep it)",
            show(&self.src)
        );
        log::warn!("{msg}");
        self.polling = true;
        self.notice(Notice::WatchLimit {
            index: self.index,
            message: msg,
        });
        self.next_poll = now + self.timings.poll_interval;
        self.want_full(Why::Poll);
        self.status(now, true);
    }

    fn setup_failed(&mut self, e: &SetupError, now: Instant) {
        let problem = Problem::from_error(e);
        let first = self.problem.as_ref() != Some(&problem);
        if first {
            log::error!("{e}");
            if problem.is_source() {
                self.notice(Notice::SourceMissing {
                    index: self.index,
                    src: self.src.clone(),
                    reason: e.to_string(),
                });
            }
        }
        self.problem = Some(problem);
        if self.watching {
            self.out.push(Effect::Unwatch);
            self.watching = false;
        }
        self.pending.clear();
        self.mark_unclean(now);
        self.status(now, first);
    }

    fn tick(&mut self, now: Instant) {
        if now >= self.next_root_check {
            self.next_root_check = now + ROOT_CHECK;
            self.out.push(Effect::CheckRoots);
        }
        if self.trim_at.is_some_and(|t| now >= t) {
            self.trim_at = None;
            self.out.push(Effect::TrimMemory);
        }
        if matches!(self.phase, Phase::Closed | Phase::Paused) || self.problem.is_some() {
            self.check_stale(now);
            return;
        }
        if self.next_drift.is_some_and(|t| now >= t) {
            self.next_drift = None;
            self.want_full(Why::Drift);
        }
        if self.polling && now >= self.next_poll {
            self.next_poll = now + self.timings.poll_interval;
            self.want_full(Why::Poll);
        }
        if !self.unwatched.is_empty() && now >= self.next_rewatch {
            self.next_rewatch = now + REWATCH_EVERY.min(self.timings.poll_interval);
            for p in std::mem::take(&mut self.unwatched) {
                self.out.push(Effect::WatchAgain(p));
            }
        }
        for rel in self.retry.due(now) {
            self.retry.trying(&rel, now);
            self.pending.note(Hint::Retry(rel), now);
        }
        if self.pending.wants_full() || self.pending.due(now) || !self.to_verify.is_empty() {
            self.out.push(Effect::Sync);
        }
        self.check_stale(now);
    }

    /// Compares the listings of the folders batches touched (once synced),
    /// but not of those a pending change is about to touch again. Returns
    /// whether a pass was asked for.
    fn verify(&mut self) -> bool {
        // Asked after every sync: what is pending can be thousands of
        // paths in a burst, and nothing needs them when nothing waits.
        if self.to_verify.is_empty() {
            return false;
        }
        let unsettled = self.pending.unsettled_folders();
        let folders: Vec<PathBuf> = std::mem::take(&mut self.to_verify)
            .into_iter()
            .filter(|f| !unsettled.contains(f))
            .collect();
        if folders.is_empty() || self.pending.wants_full() {
            return false;
        }
        let mut deferred = self.pending.waiting();
        deferred.extend(self.retry.paths().cloned());
        self.out.push(Effect::Verify {
            folders,
            leave: Leave {
                paths: deferred,
                folders: unsettled,
            },
        });
        true
    }

    /// Whether changes are being applied (not paused, closed or stopped by a
    /// problem).
    fn live(&self) -> bool {
        matches!(self.phase, Phase::Starting | Phase::Live) && self.problem.is_none()
    }

    /// Takes what is due: a full pass, or a batch.
    fn take(&mut self, now: Instant) {
        // A full pass the pair asks for itself (the drift check, a link's
        // other names) comes after the changes heard: taken in the middle
        // of a burst, it would take over the deletions heard (a full pass
        // drops what it covers) and meet SRC half-changed, where the
        // mass-deletion guard may hold what the user deleted on purpose.
        // Not for ever: changes that never pause (a program writing file
        // after file) would keep it off.
        let asked = self
            .pending
            .wants_full()
            .then(|| *self.full_asked.get_or_insert(now));
        let after_changes = matches!(self.full_why, Some(Why::Drift | Why::Links))
            && self.pending.changes_coming()
            && asked.is_some_and(|t| now < t + FULL_WAITS_AT_MOST);
        if !after_changes && self.pending.take_full(now) {
            self.full_asked = None;
            let why = self.full_why.take().unwrap_or(Why::Start);
            self.full_running = Some((why, now));
            self.status_state(State::Busy { pending: 0 }, now, true);
            self.out.push(Effect::Reconcile {
                allow_mass_delete: self.allow_mass,
                count: !matches!(why, Why::Drift | Why::Poll | Why::Links),
            });
        } else if let Some(mut batch) = self.pending.take_ready(now) {
            batch.recent = self.recent.iter().flatten().cloned().collect();
            let n = batch.paths.len() + batch.renames.len();
            if n > 1 {
                self.status_state(State::Busy { pending: n }, now, false);
            }
            self.out.push(Effect::Apply(batch));
        }
    }

    fn roots(&mut self, src: Option<Id>, src_readable: bool, dst: Option<Id>, now: Instant) {
        if self.phase == Phase::Closed {
            self.out.push(Effect::Open);
            return;
        }
        if src.is_some() && !src_readable {
            let e = SetupError::SrcUnreadable(self.src.clone(), "permission denied".into());
            return self.setup_failed(&e, now);
        }
        if self.problem.is_some() {
            if src.is_some() {
                // The mirror re-checks the source (rule 4) before touching
                // anything, in the full pass that follows.
                self.recovered(now);
            }
            return;
        }
        if src.is_none() {
            self.setup_failed(&SetupError::SrcMissing(self.src.clone()), now);
            return;
        }
        if (self.src_id.is_some() && src != self.src_id) || std::mem::take(&mut self.root_gone) {
            // Replaced (unmounted and remounted, or another folder now):
            // watch the new one and reconcile (which checks rule 4).
            log::warn!(
                "{}: the source folder was replaced; reconciling",
                show(&self.src)
            );
            self.restart_watch();
            self.want_full(Why::Lost);
        }
        if dst.is_none() {
            self.setup_failed(&SetupError::DstMissing(self.dst.clone()), now);
            self.close();
        } else if self.dst_id.is_some() && dst != self.dst_id {
            log::warn!(
                "{}: the backup folder was replaced; opening the new one",
                show(&self.dst)
            );
            self.close();
            self.out.push(Effect::Open);
        }
    }

    fn close(&mut self) {
        self.phase = Phase::Closed;
        if self.watching {
            self.out.push(Effect::Unwatch);
            self.watching = false;
        }
        self.out.push(Effect::Close);
    }

    fn recovered(&mut self, now: Instant) {
        self.root_gone = false;
        if let Some(p) = self.problem.take() {
            if p.is_source() {
                log::info!("{}: the source is back; reconciling", show(&self.src));
            } else {
                log::info!(
                    "{}: resolved ({}); reconciling",
                    show(&self.src),
                    p.text(&self.src, &self.dst)
                );
            }
        }
        self.restart_watch();
        self.want_full(Why::Start);
        self.status(now, true);
    }

    fn applied(
        &mut self,
        pass: Pass,
        result: Result<Applied, SetupError>,
        now: Instant,
        wall: Timestamp,
    ) {
        let full = pass == Pass::Full;
        self.trim_at = Some(now + TRIM_AFTER);
        let a = match result {
            Ok(a) => a,
            Err(e) => {
                if matches!(e, SetupError::DstMissing(_)) {
                    // Deleted under the walk: the mirror's handles point into
                    // a folder that is gone; reopen when it is back.
                    self.close();
                }
                return self.setup_failed(&e, now);
            }
        };
        // A full pass may have written anywhere: `""` says so.
        self.recent.push_back(if full {
            vec![PathBuf::new()]
        } else {
            a.written.clone()
        });
        if full {
            self.to_verify.clear();
        } else {
            self.to_verify.extend(a.touched.iter().cloned());
        }
        while self.recent.len() > 2 {
            self.recent.pop_front();
        }
        let s = &a.summary;
        if full {
            self.allow_mass = false;
            if let Some((why, since)) = self.full_running.take() {
                self.full_pass_done(why, now.duration_since(since), &a, now, wall);
            }
            if !s.interrupted {
                self.retry.clear();
                if self.phase == Phase::Starting {
                    self.phase = Phase::Live;
                }
                self.out.push(Effect::PruneVersions);
            }
            let was = self.held;
            self.held = s.held_deletions;
            if let Some((count, total)) = self.held {
                if was.is_none() {
                    self.notice(Notice::MassDeleteHeld {
                        index: self.index,
                        dst: self.dst.clone(),
                        count,
                        total,
                    });
                }
                log::error!(
                    "{}: holding {count} deletions of {total} entries (more than half the backup); nothing was deleted. If the source really lost them, choose \"Allow deletions\" in the tray or run `mirrortray sync --allow-mass-delete`.",
                    show(&self.dst)
                );
            }
        }
        for rel in &a.revisit {
            self.pending.note(Hint::Attr(rel.clone()), now);
        }
        if !full && a.links_unknown {
            self.want_full(Why::Links);
        }
        let busy: std::collections::HashSet<&PathBuf> = a.busy.iter().chain(&a.just_made).collect();
        for rel in &a.busy {
            self.pending.busy(rel.clone(), now);
        }
        for rel in &a.just_made {
            self.pending.just_made(rel.clone(), now);
        }
        let failed: std::collections::HashSet<&PathBuf> =
            a.failures.iter().map(|f| &f.rel).collect();
        for f in &a.failures {
            if !f.rel.as_os_str().is_empty() {
                let why = format!("cannot {}: {}", f.error.action, f.error.reason);
                self.retry.failed(&f.rel, f.error.transient, now, why, wall);
            }
        }
        for rel in &a.again {
            self.retry.again(rel, now);
        }
        for rel in &a.tried {
            if !busy.contains(rel) {
                self.pending.done(rel);
            }
            // Tried and not failed: off the retry list (a failure keeps its
            // count, so the back-off grows).
            if !failed.contains(rel) && !a.again.contains(rel) {
                self.retry.succeeded(rel, now);
            }
        }
        if let Some(first) = a.failures.first() {
            // Named by the user's file, not by the backup's copy.
            let mut error = first.error.clone();
            if !first.rel.as_os_str().is_empty() {
                error.path = self.src.join(&first.rel);
            }
            self.notice(Notice::Failures {
                index: self.index,
                count: a.failures.len(),
                first: error,
            });
        }
        if s.changed() || s.failed > 0 {
            log::debug!(
                "{}: batch: copied {}, versioned {}, deleted {}, renamed {}, failed {}",
                show(&self.src),
                s.copied,
                s.versioned,
                s.deleted,
                s.renamed,
                s.failed
            );
            self.untold.merge(s);
            let since = *self.untold_since.get_or_insert(now);
            if now.duration_since(since) >= TELL_EVERY {
                self.tell();
            }
        }
        let clean = self.retry.is_empty()
            && self.held.is_none()
            && !s.interrupted
            && self.pending.is_empty()
            && self.to_verify.is_empty();
        if clean && self.phase == Phase::Live {
            let was_unclean = self.unclean_since.is_some();
            self.last_ok = Some(wall);
            self.unclean_since = None;
            if self.stale_sent && was_unclean {
                self.notice(Notice::Recovered { index: self.index });
            }
            self.stale_sent = false;
        } else {
            self.mark_unclean(now);
        }
        self.status(now, full);
    }

    /// Says in the log what the batches did since it last said so (folders
    /// made or times set alone are not worth a line).
    fn tell(&mut self) {
        let s = std::mem::take(&mut self.untold);
        self.untold_since = None;
        if s.copied + s.versioned + s.deleted + s.renamed + s.failed == 0 {
            return;
        }
        log::info!(
            "{}: copied {} ({}), versioned {}, deleted {}, renamed {}, failed {}",
            show(&self.src),
            match s.copied {
                1 => "1 file".to_string(),
                n => format!("{n} files"),
            },
            crate::engine::words::bytes_text(s.bytes),
            s.versioned,
            s.deleted,
            s.renamed,
            s.failed
        );
    }

    /// After a full pass: when the next drift check is due (its interval
    /// grows with the pass's cost, so the check stays under 0.1 % of a
    /// core), what it repaired that the live watch had missed (said: it
    /// should be nothing), and since when DST is verified equal to SRC.
    fn full_pass_done(
        &mut self,
        why: Why,
        took: Duration,
        a: &Applied,
        now: Instant,
        wall: Timestamp,
    ) {
        let s = &a.summary;
        self.next_drift = self
            .timings
            .drift_check
            .map(|d| now + d.max(took.saturating_mul(DRIFT_BUDGET)));
        if why == Why::Drift && s.changed() {
            log::warn!(
                "{}: the drift check found what the live watch had missed and repaired it: copied {}, versioned {}, deleted {}",
                show(&self.src),
                s.copied,
                s.versioned,
                s.deleted
            );
        }
        if !s.interrupted && a.failures.is_empty() && s.held_deletions.is_none() {
            self.verified_at = Some(wall);
        }
    }

    fn mark_unclean(&mut self, now: Instant) {
        if self.unclean_since.is_none() {
            self.unclean_since = Some(now);
        }
    }

    /// A pair that has not been clean for the alert time raises a notice,
    /// once.
    fn check_stale(&mut self, now: Instant) {
        let unclean = self.phase != Phase::Live || self.problem.is_some() || !self.retry.is_empty();
        if !unclean {
            return;
        }
        self.mark_unclean(now);
        if let Some(since) = self.unclean_since
            && !self.stale_sent
            && now.duration_since(since) >= self.timings.alert_after
        {
            self.stale_sent = true;
            log::error!(
                "{}: no complete backup for more than {}",
                show(&self.src),
                humantime_short(self.timings.alert_after)
            );
            self.notice(Notice::Stale {
                index: self.index,
                since: self.last_ok,
            });
        }
    }

    pub fn state(&self) -> State {
        if let Some(p) = &self.problem {
            State::Error(p.text(&self.src, &self.dst))
        } else if self.phase == Phase::Closed
            || (self.phase == Phase::Starting && self.last_ok.is_none())
        {
            State::Starting
        } else if self.phase == Phase::Paused {
            State::Paused
        } else if let Some((count, _)) = self.held {
            State::Error(format!("{count} deletions held — confirm to allow"))
        } else if self.polling {
            State::Degraded(format!(
                "scanning every {} s (watch limit reached)",
                self.timings.poll_interval.as_secs()
            ))
        } else if !self.pending.is_empty() || !self.to_verify.is_empty() {
            State::Busy {
                pending: self.pending.len() + self.to_verify.len(),
            }
        } else {
            State::Idle
        }
    }

    fn status(&mut self, now: Instant, force: bool) {
        let s = self.state();
        self.status_state(s, now, force);
    }

    fn status_state(&mut self, state: State, now: Instant, force: bool) {
        let failing = self.retry.failing();
        if !force && let Some((last, last_failing, at)) = &self.last_status {
            let same = *last == state && *last_failing == failing;
            // A changing count of pending paths is said at most so often.
            let throttled = matches!((last, &state), (State::Busy { .. }, State::Busy { .. }))
                && *last_failing == failing
                && now.duration_since(*at) < STATUS_EVERY;
            if same || throttled {
                return;
            }
        }
        if !matches!(state, State::Busy { .. } | State::Starting) {
            self.tell();
        }
        self.last_status = Some((state.clone(), failing, now));
        self.notice(Notice::Status(PairStatus {
            index: self.index,
            src: self.src.clone(),
            dst: self.dst.clone(),
            state,
            last_ok: self.last_ok,
            verified_at: self.verified_at,
            failing,
            failures: self
                .retry
                .failures(super::status::FAILURES_SHOWN)
                .into_iter()
                .map(|(rel, reason, since)| super::Failing {
                    path: self.src.join(rel),
                    reason: reason.to_string(),
                    since,
                })
                .collect(),
            // The shell adds how far the work in hand has got.
            progress: None,
            being_written: self
                .pending
                .busy_paths(super::status::FAILURES_SHOWN)
                .into_iter()
                .map(|rel| self.src.join(rel))
                .collect(),
            // The shell adds these too.
            copied_per_hour: Vec::new(),
        }));
    }
}

/// "24 hours", "90 minutes", "4 seconds".
fn humantime_short(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 7200 && s.is_multiple_of(3600) {
        format!("{} hours", s / 3600)
    } else if s >= 120 {
        format!("{} minutes", s / 60)
    } else {
        format!("{} seconds", s.max(1))
    }
}

#[cfg(test)]
mod tests {
    //! Scenario tables: inputs at times (ms from the start), and the
    //! effects each must give, as short labels.
    use super::*;
    use crate::engine::batch::{Dirty, Failure, Look};
    use crate::engine::error::EntryError;
    use crate::engine::event::Summary;

    fn label(e: &Effect) -> String {
        match e {
            Effect::Open => "Open".into(),
            Effect::Close => "Close".into(),
            Effect::Watch => "Watch".into(),
            Effect::Unwatch => "Unwatch".into(),
            Effect::WatchAgain(p) => format!("WatchAgain({})", p.display()),
            Effect::Sync => "Sync".into(),
            Effect::Apply(b) => {
                let mut v: Vec<String> = b
                    .paths
                    .iter()
                    .map(|d| {
                        format!(
                            "{}{}{}",
                            d.rel.display(),
                            if d.deep { "/**" } else { "" },
                            match d.look {
                                Look::Forced => "!",
                                _ => "",
                            }
                        )
                    })
                    .collect();
                v.extend(
                    b.renames
                        .iter()
                        .map(|(f, t)| format!("{}->{}", f.display(), t.display())),
                );
                v.sort();
                format!("Apply({})", v.join(" "))
            }
            Effect::Verify { folders, .. } => format!(
                "Verify({})",
                folders
                    .iter()
                    .map(|f| format!("'{}'", f.display()))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Effect::Reconcile {
                allow_mass_delete, ..
            } => {
                if *allow_mass_delete {
                    "Reconcile(allow)".into()
                } else {
                    "Reconcile".into()
                }
            }
            Effect::PruneVersions => "Prune".into(),
            Effect::CheckRoots => "CheckRoots".into(),
            Effect::TrimMemory => "Trim".into(),
            Effect::Notice(n) => match n {
                Notice::Status(s) => format!("Status({})", s.state.key()),
                Notice::Failures { count, .. } => format!("Failures({count})"),
                Notice::SourceMissing { .. } => "SourceMissing".into(),
                Notice::MassDeleteHeld { count, .. } => format!("Held({count})"),
                Notice::Stale { .. } => "Stale".into(),
                Notice::Recovered { .. } => "Recovered".into(),
                Notice::Overflow { .. } => "Overflow".into(),
                Notice::WatchLimit { .. } => "WatchLimit".into(),
                Notice::VersionsPruned { .. } => "Pruned".into(),
                Notice::Stopped { .. } => "Stopped".into(),
                Notice::Offsite(_)
                | Notice::OffsiteFailed { .. }
                | Notice::OffsiteOverdue { .. }
                | Notice::OffsiteRecovered { .. } => "Offsite".into(),
            },
        }
    }

    fn ok(touched: &[&str]) -> Input {
        Input::Applied {
            pass: Pass::Batch,
            result: Ok(Applied {
                touched: touched.iter().map(PathBuf::from).collect(),
                ..Applied::default()
            }),
        }
    }

    fn verified() -> Input {
        Input::Applied {
            pass: Pass::Verify,
            result: Ok(Applied::default()),
        }
    }

    fn full(held: Option<(u64, u64)>) -> Input {
        Input::Applied {
            pass: Pass::Full,
            result: Ok(Applied {
                summary: Summary {
                    held_deletions: held,
                    ..Summary::default()
                },
                ..Applied::default()
            }),
        }
    }

    fn failed(rel: &str) -> Input {
        Input::Applied {
            pass: Pass::Batch,
            result: Ok(Applied {
                failures: vec![Failure {
                    rel: rel.into(),
                    error: EntryError::msg(format!("/s/{rel}"), "read", "permission denied"),
                }],
                tried: vec![rel.into()],
                ..Applied::default()
            }),
        }
    }

    fn hint(h: Hint) -> Input {
        Input::Heard(Heard::Hint(h))
    }

    fn opened() -> Input {
        Input::Start {
            opened: Some(Opened {
                src: "/s".into(),
                dst: "/d".into(),
                dst_id: Some((1, 2)),
            }),
            allow_mass_delete: false,
        }
    }

    fn watching() -> Input {
        Input::Watching(Ok((Quirks::default(), Some((1, 1)))))
    }

    /// Runs `steps` (at ms, input, expected labels) on a fresh core.
    fn run(name: &str, timings: Timings, steps: Vec<(u64, Input, &[&str])>) -> Core {
        let t0 = Instant::now();
        let w0 = Timestamp::now();
        let mut core = Core::new(0, Path::new("/s"), Path::new("/d"), timings, t0);
        for (i, (at, input, want)) in steps.into_iter().enumerate() {
            let now = t0 + Duration::from_millis(at);
            let wall = w0 + jiff::SignedDuration::from_millis(at as i64);
            let got: Vec<String> = core.on(input, now, wall).iter().map(label).collect();
            let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
            assert_eq!(got, want, "{name}: step {i} at {at} ms");
        }
        core
    }

    fn no_drift() -> Timings {
        Timings {
            drift_check: None,
            ..Timings::default()
        }
    }

    /// The steps that bring a pair to up to date.
    fn started() -> Vec<(u64, Input, &'static [&'static str])> {
        vec![
            (0, opened(), &["Watch", "Status(starting)"]),
            (0, watching(), &[]),
            (0, Input::Tick, &["Sync"]),
            (0, Input::Synced, &["Status(busy)", "Reconcile"]),
            (1, full(None), &["Prune", "Status(idle)"]),
        ]
    }

    fn with(
        mut a: Vec<(u64, Input, &'static [&'static str])>,
        b: Vec<(u64, Input, &'static [&'static str])>,
    ) -> Vec<(u64, Input, &'static [&'static str])> {
        a.extend(b);
        a
    }

    #[test]
    fn start_watches_first_then_reconciles_the_whole_pair() {
        run("start", no_drift(), started());
        run(
            "start unopened: open is tried, then the same",
            no_drift(),
            vec![
                (
                    0,
                    Input::Start {
                        opened: None,
                        allow_mass_delete: false,
                    },
                    &["Status(starting)", "Open"],
                ),
                (
                    0,
                    Input::Opened(Err(SetupError::DstMissing("/d".into()))),
                    &["Status(error)"],
                ),
                // The root check retries the opening.
                (2000, Input::Tick, &["CheckRoots"]),
                (
                    2000,
                    Input::Roots {
                        src: None,
                        src_readable: true,
                        dst: None,
                    },
                    &["Open"],
                ),
            ],
        );
    }

    #[test]
    fn a_closed_file_is_applied_then_its_folder_verified() {
        run(
            "closed",
            no_drift(),
            with(
                started(),
                vec![
                    (10, hint(Hint::Closed("d/a".into())), &[]),
                    (10, Input::Tick, &["Sync"]),
                    (10, Input::Synced, &["Apply(d/a)"]),
                    (11, ok(&["d"]), &["Status(busy)"]),
                    (11, Input::Tick, &["Sync"]),
                    (11, Input::Synced, &["Verify('d')"]),
                    (12, verified(), &["Status(idle)"]),
                    // Nothing pending: the tick does nothing.
                    (13, Input::Tick, &[]),
                ],
            ),
        );
    }

    #[test]
    fn a_folder_with_more_changes_coming_is_verified_with_them() {
        run(
            "verify waits",
            no_drift(),
            with(
                started(),
                vec![
                    (10, hint(Hint::Closed("d/a".into())), &[]),
                    (10, Input::Tick, &["Sync"]),
                    (10, Input::Synced, &["Apply(d/a)"]),
                    // During the batch, a file was created in d: its
                    // listing is compared after that change is applied.
                    (11, hint(Hint::Created("d/b".into(), false)), &[]),
                    (11, ok(&["d"]), &["Status(busy)"]),
                    (11, Input::Tick, &["Sync"]),
                    (11, Input::Synced, &[]),
                    (61, Input::Tick, &["Sync"]),
                    (61, Input::Synced, &["Apply(d/b)"]),
                    (62, ok(&["d"]), &[]),
                    (62, Input::Tick, &["Sync"]),
                    (62, Input::Synced, &["Verify('d')"]),
                    (63, verified(), &["Status(idle)"]),
                ],
            ),
        );
    }

    /// Mix seed 1000 (3,000 operations, hard links): a link's full pass,
    /// taken in the middle of the burst, dropped the deletions heard and
    /// found most of DST gone from SRC: the guard held them, an error.
    #[test]
    fn a_full_pass_for_links_waits_for_the_changes_heard() {
        let links = Input::Applied {
            pass: Pass::Batch,
            result: Ok(Applied {
                links_unknown: true,
                ..Applied::default()
            }),
        };
        run(
            "links",
            no_drift(),
            with(
                started(),
                vec![
                    (10, hint(Hint::Closed("d/b".into())), &[]),
                    (10, Input::Tick, &["Sync"]),
                    (10, Input::Synced, &["Apply(d/b)"]),
                    (11, hint(Hint::Removed("e".into(), true)), &[]),
                    (11, links, &["Status(busy)"]),
                    (11, Input::Tick, &["Sync"]),
                    // The deletion heard is applied first, once settled...
                    (11, Input::Synced, &[]),
                    (200, Input::Tick, &["Sync"]),
                    (200, Input::Synced, &["Apply(e/**)"]),
                    (201, ok(&[""]), &[]),
                    (201, Input::Tick, &["Sync"]),
                    // ...then the pass.
                    (201, Input::Synced, &["Status(busy)", "Reconcile"]),
                    (202, full(None), &["Prune", "Status(idle)"]),
                ],
            ),
        );
    }

    #[test]
    fn paused_hears_nothing_and_resuming_reconciles() {
        run(
            "pause",
            no_drift(),
            with(
                started(),
                vec![
                    (10, Input::Command(Command::Pause), &["Status(paused)"]),
                    (11, hint(Hint::Closed("a".into())), &[]),
                    (12, Input::Tick, &[]),
                    (20, Input::Command(Command::Resume), &["Status(busy)"]),
                    (20, Input::Tick, &["Sync"]),
                    (20, Input::Synced, &["Status(busy)", "Reconcile"]),
                    (21, full(None), &["Prune", "Status(idle)"]),
                ],
            ),
        );
    }

    #[test]
    fn an_overflow_is_said_and_reconciles_the_whole_pair() {
        run(
            "overflow",
            no_drift(),
            with(
                started(),
                vec![
                    (10, hint(Hint::Rescan), &["Overflow"]),
                    (10, Input::Tick, &["Sync"]),
                    (10, Input::Synced, &["Status(busy)", "Reconcile"]),
                ],
            ),
        );
    }

    #[test]
    fn the_watch_limit_turns_the_pair_to_periodic_scans() {
        let t = Timings {
            drift_check: None,
            poll_interval: Duration::from_secs(60),
            ..Timings::default()
        };
        let core = run(
            "limit",
            t,
            with(
                started(),
                vec![
                    (
                        10,
                        Input::Heard(Heard::WatchLimit),
                        &["Unwatch", "WatchLimit", "Status(degraded)"],
                    ),
                    (10, Input::Tick, &["Sync"]),
                    (10, Input::Synced, &["Status(busy)", "Reconcile"]),
                    (11, full(None), &["Prune", "Status(degraded)"]),
                    (30_000, Input::Tick, &["CheckRoots", "Trim"]),
                    (
                        30_000,
                        Input::Roots {
                            src: Some((1, 1)),
                            src_readable: true,
                            dst: Some((1, 2)),
                        },
                        &[],
                    ),
                    (60_011, Input::Tick, &["CheckRoots", "Sync"]),
                ],
            ),
        );
        assert_eq!(core.phase(), Phase::Live);
    }

    #[test]
    fn a_failed_path_is_retried_forced_and_deep_after_its_back_off() {
        run(
            "retry",
            no_drift(),
            with(
                started(),
                vec![
                    (10, hint(Hint::Closed("x".into())), &[]),
                    (10, Input::Tick, &["Sync"]),
                    (10, Input::Synced, &["Apply(x)"]),
                    (11, failed("x"), &["Failures(1)", "Status(idle)"]),
                    (500, Input::Tick, &[]),
                    (1011, Input::Tick, &["Trim", "Sync"]),
                    (1011, Input::Synced, &["Apply(x/**!)"]),
                ],
            ),
        );
    }

    #[test]
    fn a_missing_source_pauses_the_pair_until_it_is_back() {
        run(
            "source",
            no_drift(),
            with(
                started(),
                vec![
                    (2000, Input::Tick, &["CheckRoots", "Trim"]),
                    (
                        2000,
                        Input::Roots {
                            src: None,
                            src_readable: true,
                            dst: Some((1, 2)),
                        },
                        &["SourceMissing", "Unwatch", "Status(error)"],
                    ),
                    (2001, hint(Hint::Closed("a".into())), &[]),
                    (4000, Input::Tick, &["CheckRoots"]),
                    (
                        4000,
                        Input::Roots {
                            src: Some((1, 1)),
                            src_readable: true,
                            dst: Some((1, 2)),
                        },
                        &["Watch", "Status(busy)"],
                    ),
                    (4000, watching(), &[]),
                    (4000, Input::Tick, &["Sync"]),
                    (4000, Input::Synced, &["Status(busy)", "Reconcile"]),
                ],
            ),
        );
    }

    #[test]
    fn a_backup_folder_that_went_is_closed_and_opened_again() {
        run(
            "dst",
            no_drift(),
            with(
                started(),
                vec![
                    (2000, Input::Tick, &["CheckRoots", "Trim"]),
                    (
                        2000,
                        Input::Roots {
                            src: Some((1, 1)),
                            src_readable: true,
                            dst: None,
                        },
                        &["Unwatch", "Status(error)", "Close"],
                    ),
                    (4000, Input::Tick, &["CheckRoots"]),
                    (
                        4000,
                        Input::Roots {
                            src: Some((1, 1)),
                            src_readable: true,
                            dst: None,
                        },
                        &["Open"],
                    ),
                ],
            ),
        );
    }

    #[test]
    fn held_deletions_are_said_once_and_go_through_when_allowed() {
        run(
            "held",
            no_drift(),
            vec![
                (0, opened(), &["Watch", "Status(starting)"]),
                (0, watching(), &[]),
                (0, Input::Tick, &["Sync"]),
                (0, Input::Synced, &["Status(busy)", "Reconcile"]),
                (
                    1,
                    full(Some((150, 200))),
                    &["Prune", "Held(150)", "Status(error)"],
                ),
                (5, Input::Command(Command::AllowMassDelete), &[]),
                (5, Input::Tick, &["Sync"]),
                (5, Input::Synced, &["Status(busy)", "Reconcile(allow)"]),
                (6, full(None), &["Prune", "Status(idle)"]),
            ],
        );
    }

    /// Answers effects the way the shell would, with canned results (a
    /// file found busy once), until none is left.
    fn drive(core: &mut Core, input: Input, now: Instant, busy: &mut bool) {
        let w = Timestamp::now();
        let mut queue: std::collections::VecDeque<Effect> = core.on(input, now, w).into();
        while let Some(e) = queue.pop_front() {
            let next = match e {
                Effect::Sync => Some(Input::Synced),
                Effect::Apply(b) => Some(Input::Applied {
                    pass: Pass::Batch,
                    result: Ok(Applied {
                        busy: if std::mem::take(busy) {
                            b.paths.iter().map(|d| d.rel.clone()).collect()
                        } else {
                            Vec::new()
                        },
                        tried: b.paths.iter().map(|d| d.rel.clone()).collect(),
                        touched: vec![PathBuf::new()],
                        ..Applied::default()
                    }),
                }),
                Effect::Verify { .. } => Some(verified()),
                Effect::Reconcile { .. } => Some(full(None)),
                Effect::CheckRoots => Some(Input::Roots {
                    src: Some((1, 1)),
                    src_readable: true,
                    dst: Some((1, 2)),
                }),
                _ => None,
            };
            if let Some(i) = next {
                queue.extend(core.on(i, now, w));
            }
        }
    }

    #[test]
    fn an_idle_pair_sleeps_until_its_next_timer() {
        let t0 = Instant::now();
        let mut core = Core::new(0, Path::new("/s"), Path::new("/d"), no_drift(), t0);
        let mut busy = false;
        drive(&mut core, opened(), t0, &mut busy);
        drive(&mut core, watching(), t0, &mut busy);
        drive(&mut core, Input::Tick, t0, &mut busy);
        // A file written and still open elsewhere: found busy once.
        busy = true;
        let mut now = t0 + Duration::from_millis(10);
        drive(
            &mut core,
            hint(Hint::Modified("log".into())),
            now,
            &mut busy,
        );
        // Whatever happens next, the loop sleeps: a deadline that is due
        // at once (work left after a pass) is followed by a real wait.
        let mut wakes = 0;
        let mut at_once = 0;
        while now < t0 + Duration::from_secs(30) {
            drive(&mut core, Input::Tick, now, &mut busy);
            let next = core.poll_timeout(now);
            at_once = if next <= now { at_once + 1 } else { 0 };
            assert!(at_once < 2, "spins at {:?}", now - t0);
            now = next.max(now);
            wakes += 1;
        }
        // Root checks every 2 s, a look at the busy file, a trim or two.
        assert!(wakes < 30, "{wakes} wake-ups in 30 s");
        assert_eq!(core.state(), State::Idle);
    }

    #[test]
    fn with_the_drift_check_off_nothing_reconciles_on_its_own() {
        let t0 = Instant::now();
        let mut core = Core::new(0, Path::new("/s"), Path::new("/d"), no_drift(), t0);
        let w = Timestamp::now();
        for (at, input, _) in started() {
            core.on(input, t0 + Duration::from_millis(at), w);
        }
        for s in (2..7200).step_by(2) {
            let now = t0 + Duration::from_secs(s);
            for e in core.on(Input::Tick, now, w) {
                if let Effect::CheckRoots = e {
                    core.on(
                        Input::Roots {
                            src: Some((1, 1)),
                            src_readable: true,
                            dst: Some((1, 2)),
                        },
                        now,
                        w,
                    );
                }
                assert!(
                    !matches!(e, Effect::Sync | Effect::Reconcile { .. }),
                    "{s} s"
                );
            }
        }
    }

    #[test]
    fn a_pair_unclean_for_the_alert_time_raises_one_alert() {
        let t = Timings {
            drift_check: None,
            alert_after: Duration::from_secs(10),
            ..Timings::default()
        };
        let core = run(
            "stale",
            t,
            vec![
                (
                    0,
                    Input::Start {
                        opened: None,
                        allow_mass_delete: false,
                    },
                    &["Status(starting)", "Open"],
                ),
                (
                    0,
                    Input::Opened(Err(SetupError::DstMissing("/d".into()))),
                    &["Status(error)"],
                ),
                (11_000, Input::Tick, &["CheckRoots", "Stale"]),
                (
                    11_000,
                    Input::Roots {
                        src: None,
                        src_readable: true,
                        dst: None,
                    },
                    &["Open"],
                ),
                (13_000, Input::Tick, &["CheckRoots"]),
            ],
        );
        assert_eq!(core.phase(), Phase::Closed);
        let _ = Dirty::new("x", false, Look::Gentle);
    }
}
