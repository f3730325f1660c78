//! worker: one pair's loop. Owns the `Mirror`, the notify watcher and what
//! is pending; wakes on an event, a command or the next deadline, and never
//! polls when there is nothing to do (idle CPU 0 %).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};
use jiff::Timestamp;
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use super::hints::{Heard, translate};
use super::pending::{Batch, Pending};
use super::retry::Retry;
use super::{Command, Notice, PairStatus, Start, State, Timings};
use crate::engine::error::{EntryError, SetupError, show};
use crate::engine::event::{Control, Event, Sink, Summary};
use crate::engine::mirror::{Dirty, Mirror, Options, PairSpec};

/// How often SRC's root (and DST's) are checked to still be what we watch.
const ROOT_CHECK: Duration = Duration::from_secs(2);
/// Status while busy is sent at most this often.
const STATUS_EVERY: Duration = Duration::from_millis(250);

type NotifyMsg = notify::Result<notify::Event>;

pub(super) struct Worker {
    index: usize,
    spec: PairSpec,
    src: PathBuf,
    dst: PathBuf,
    opts: Options,
    timings: Timings,
    cmds: Receiver<Command>,
    ctl: Arc<Control>,
    notices: Sender<Notice>,
    mirror: Option<Mirror>,
    watcher: Option<RecommendedWatcher>,
    events_tx: Sender<NotifyMsg>,
    events: Receiver<NotifyMsg>,
    pending: Pending,
    retry: Retry,
    paused: bool,
    /// Why the pair is not mirroring (source missing...), if it is not.
    problem: Option<String>,
    /// Why live watching is off (watch limit), if it is.
    polling: Option<String>,
    root_id: Option<(u64, u64)>,
    /// DST's identity when the Mirror was opened: a backup folder deleted
    /// and made again (or unmounted and remounted) is a new one.
    dst_id: Option<(u64, u64)>,
    /// notify said SRC's root itself was deleted or moved.
    root_gone: bool,
    /// Folders notify could not watch (unreadable when tried).
    unwatched: Vec<PathBuf>,
    next_rewatch: Instant,
    last_ok: Option<Timestamp>,
    unclean_since: Option<Instant>,
    /// When to hand memory freed by the last batches back to the system.
    trim_at: Option<Instant>,
    stale_sent: bool,
    next_drift: Instant,
    next_poll: Instant,
    next_root_check: Instant,
    last_status: Option<(State, Instant)>,
    needs_full: bool,
}

impl Worker {
    pub(super) fn new(
        index: usize,
        start: Start,
        opts: Options,
        timings: Timings,
        cmds: Receiver<Command>,
        ctl: Arc<Control>,
        notices: Sender<Notice>,
    ) -> Worker {
        let (events_tx, events) = unbounded();
        let now = Instant::now();
        let (spec, mirror) = match start {
            Start::Opened(m) => {
                m.set_watched(true);
                (m.spec().clone(), Some(*m))
            }
            Start::Spec(s) => (s, None),
        };
        let (src, dst): (PathBuf, PathBuf) = match &mirror {
            Some(m) => (m.src().to_path_buf(), m.dst().to_path_buf()),
            None => (spec.src.clone(), spec.dst.clone()),
        };
        let dst_id = if mirror.is_some() {
            root_id(&dst)
        } else {
            None
        };
        Worker {
            index,
            spec,
            src,
            dst,
            opts,
            next_drift: now + timings.drift_check,
            next_poll: now + timings.poll_interval,
            timings,
            cmds,
            ctl,
            notices,
            mirror,
            watcher: None,
            events_tx,
            events,
            pending: Pending::new(),
            retry: Retry::default(),
            paused: false,
            problem: None,
            polling: None,
            root_id: None,
            dst_id,
            unwatched: Vec::new(),
            root_gone: false,
            next_rewatch: now,
            last_ok: None,
            unclean_since: Some(now),
            trim_at: None,
            stale_sent: false,
            next_root_check: now + ROOT_CHECK,
            last_status: None,
            needs_full: true,
        }
    }

    fn notice(&self, n: Notice) {
        let _ = self.notices.send(n);
    }

    pub(super) fn run(mut self) {
        self.status(true);
        if self.mirror.is_none() {
            self.try_open();
        }
        if self.mirror.is_some() {
            self.start_watching();
        }
        loop {
            let deadline = self.next_deadline();
            let timeout = deadline.saturating_duration_since(Instant::now());
            crossbeam_channel::select! {
                recv(self.cmds) -> cmd => match cmd {
                    Ok(Command::Quit) | Err(_) => break,
                    Ok(c) => self.command(c),
                },
                recv(self.events) -> ev => {
                    if let Ok(ev) = ev {
                        self.heard(ev);
                    }
                    // Everything already queued joins the same batch.
                    while let Ok(ev) = self.events.try_recv() {
                        self.heard(ev);
                    }
                },
                default(timeout) => {},
            }
            // A Quit may have arrived while applying.
            match self.cmds.try_recv() {
                Ok(Command::Quit) => break,
                Ok(c) => self.command(c),
                Err(_) => {}
            }
            self.tick();
        }
        self.stop();
    }

    fn stop(&mut self) {
        self.watcher = None;
        if let Some(m) = self.mirror.take() {
            m.clean_tmp();
        }
        self.notice(Notice::Stopped { index: self.index });
    }

    fn next_deadline(&self) -> Instant {
        let now = Instant::now();
        let mut d = self.next_root_check;
        if self.mirror.is_some() && self.problem.is_none() && !self.paused {
            if self.needs_full {
                return now;
            }
            for x in [self.pending.next_deadline(), self.retry.next_deadline()]
                .into_iter()
                .flatten()
            {
                d = d.min(x);
            }
            d = d.min(self.next_drift);
            if let Some(t) = self.trim_at {
                d = d.min(t);
            }
            if self.polling.is_some() {
                d = d.min(self.next_poll);
            }
        }
        d
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Pause => {
                self.ctl.reset();
                self.paused = true;
                self.pending.clear();
                log::info!("{}: paused", show(&self.src));
                self.status(true);
            }
            Command::Resume => {
                self.ctl.reset();
                if self.paused {
                    self.paused = false;
                    log::info!(
                        "{}: resumed; reconciling what changed meanwhile",
                        show(&self.src)
                    );
                    self.needs_full = true;
                }
                self.status(true);
            }
            Command::BackupNow => {
                self.ctl.reset();
                self.needs_full = true;
                if self.mirror.is_none() || self.problem.is_some() {
                    self.next_root_check = Instant::now();
                }
            }
            Command::AllowMassDelete => {
                if let Some(m) = &self.mirror {
                    m.allow_mass_delete(true);
                }
                self.needs_full = true;
            }
            Command::Timings(t) => {
                let now = Instant::now();
                self.next_drift = now + t.drift_check;
                self.next_poll = now + t.poll_interval;
                self.timings = t;
            }
            Command::Quit => {}
        }
    }

    fn heard(&mut self, ev: NotifyMsg) {
        match ev {
            Ok(ev) => {
                for h in translate(&ev, &self.src) {
                    match h {
                        Heard::Hint(hint) => {
                            if self.paused {
                                continue;
                            }
                            if hint == super::pending::Hint::Rescan {
                                log::warn!(
                                    "{}: events were lost (the event queue overflowed); reconciling the whole folder",
                                    show(&self.src)
                                );
                                self.notice(Notice::Overflow { index: self.index });
                            }
                            let touches_unwatched = match &hint {
                                super::pending::Hint::Attr(p) => self
                                    .unwatched
                                    .iter()
                                    .any(|u| u.strip_prefix(&self.src).ok() == Some(p.as_path())),
                                _ => false,
                            };
                            self.pending.note(hint, Instant::now());
                            if touches_unwatched {
                                self.rewatch(Instant::now());
                            }
                        }
                        Heard::RootGone => {
                            // The watched folder itself went: whatever is at
                            // SRC's path now (even with the same inode number,
                            // which a new folder often gets) is not watched.
                            self.root_gone = true;
                            self.next_root_check = Instant::now();
                        }
                    }
                }
            }
            Err(e) => self.watch_error(e),
        }
    }

    fn watch_error(&mut self, e: notify::Error) {
        match e.kind {
            notify::ErrorKind::MaxFilesWatch => self.fall_back_to_polling(),
            _ => {
                log::warn!(
                    "{}: the file watcher reported an error ({}); reconciling the whole folder",
                    show(&self.src),
                    e
                );
                self.needs_full = true;
            }
        }
    }

    fn fall_back_to_polling(&mut self) {
        if self.polling.is_some() {
            return;
        }
        self.watcher = None;
        let limit = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".into());
        let secs = self.timings.poll_interval.as_secs();
        let msg = format!(
            "{}: too many folders to watch (the system's limit, fs.inotify.max_user_watches, is {limit}); scanning every {secs} s instead of live. To watch live, raise the limit: sudo sysctl fs.inotify.max_user_watches=524288 (and add it to /etc/sysctl.conf to keep it)",
            show(&self.src)
        );
        log::warn!("{msg}");
        self.polling = Some(format!("scanning every {secs} s (watch limit reached)"));
        self.notice(Notice::WatchLimit {
            index: self.index,
            message: msg,
        });
        self.next_poll = Instant::now() + self.timings.poll_interval;
        self.needs_full = true;
        self.status(true);
    }

    /// Starts the notify watcher on SRC (before the reconcile, so nothing
    /// made during it is missed).
    fn start_watching(&mut self) {
        self.root_id = root_id(&self.src);
        if self.polling.is_some() {
            return;
        }
        let tx = self.events_tx.clone();
        let config = notify::Config::default().with_follow_symlinks(false);
        let watcher = RecommendedWatcher::new(
            move |ev: NotifyMsg| {
                // Reads (a copy of 100,000 files is 100,000 opens) would
                // only fill the queue and wake the worker for nothing.
                if matches!(&ev, Ok(e) if super::hints::is_read_only(e)) {
                    return;
                }
                // Never block notify's thread: the channel is unbounded.
                let _ = tx.send(ev);
            },
            config,
        );
        let mut watcher = match watcher {
            Ok(w) => w,
            Err(e) => return self.watch_error(e),
        };
        self.unwatched.clear();
        match watcher.watch(&self.src, RecursiveMode::Recursive) {
            Ok(()) => self.watcher = Some(watcher),
            Err(e) if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) => self.watch_error(e),
            Err(e) => {
                // One folder could not be watched (unreadable): notify stops
                // at it, so the folders after it are watched one by one.
                let src = self.src.clone();
                match watch_around(&mut watcher, &src, e, &mut self.unwatched) {
                    Ok(()) => {
                        for p in &self.unwatched {
                            log::warn!(
                                "{}: cannot watch this folder (it is not readable); it is backed up when it can be read",
                                show(p)
                            );
                        }
                        self.watcher = Some(watcher);
                    }
                    Err(e) => self.watch_error(e),
                }
            }
        }
    }

    /// Tries again to watch folders that could not be watched; each one that
    /// now can is reconciled whole (what it holds was never reported).
    fn rewatch(&mut self, now: Instant) {
        let Some(w) = self.watcher.as_mut() else {
            return;
        };
        let mut still = Vec::new();
        for p in std::mem::take(&mut self.unwatched) {
            match w.watch(&p, RecursiveMode::Recursive) {
                Ok(()) => {
                    log::info!("{}: now watched", show(&p));
                    if let Ok(rel) = p.strip_prefix(&self.src) {
                        self.pending
                            .note(super::pending::Hint::Retry(rel.to_path_buf()), now);
                    }
                }
                Err(_) if !p.exists() => {}
                Err(_) => still.push(p),
            }
        }
        self.unwatched = still;
    }

    fn try_open(&mut self) {
        // The worker never creates a missing backup folder (see Options).
        let opts = Options {
            create_dst: false,
            ..self.opts.clone()
        };
        match Mirror::open(&self.spec, &opts) {
            Ok(m) => {
                m.set_watched(true);
                self.src = m.src().to_path_buf();
                self.dst = m.dst().to_path_buf();
                self.dst_id = root_id(&self.dst);
                self.mirror = Some(m);
                self.needs_full = true;
            }
            Err(e) => self.setup_failed(e),
        }
    }

    fn setup_failed(&mut self, e: SetupError) {
        let first = self.problem.is_none();
        let short = match &e {
            SetupError::SrcMissing(_)
            | SetupError::SrcLooksUnmounted(..)
            | SetupError::SrcNotDir(_) => {
                format!("Source missing: {}", show(&self.spec.src))
            }
            SetupError::SrcUnreadable(..) => format!("Source unreadable: {}", show(&self.spec.src)),
            SetupError::Locked { .. } => format!("Backup folder in use: {}", show(&self.spec.dst)),
            SetupError::DstMissing(_) => format!("Backup folder missing: {}", show(&self.spec.dst)),
            _ => format!("Cannot back up {}", show(&self.spec.src)),
        };
        if first {
            log::error!("{e}");
            let is_source = matches!(
                e,
                SetupError::SrcMissing(_)
                    | SetupError::SrcLooksUnmounted(..)
                    | SetupError::SrcNotDir(_)
                    | SetupError::SrcUnreadable(..)
            );
            if is_source {
                self.notice(Notice::SourceMissing {
                    index: self.index,
                    src: self.spec.src.clone(),
                    reason: e.to_string(),
                });
            }
        }
        self.problem = Some(short);
        self.watcher = None;
        self.pending.clear();
        self.mark_unclean();
        self.status(first);
    }

    fn tick(&mut self) {
        let now = Instant::now();
        if now >= self.next_root_check {
            self.next_root_check = now + ROOT_CHECK;
            self.check_roots();
        }
        if self.paused || self.problem.is_some() || self.mirror.is_none() {
            self.check_stale();
            return;
        }
        if self.needs_full
            || (self.polling.is_some() && now >= self.next_poll)
            || now >= self.next_drift
        {
            self.needs_full = false;
            self.next_drift = now + self.timings.drift_check;
            self.next_poll = now + self.timings.poll_interval;
            self.pending.want_full();
        }
        if !self.unwatched.is_empty() && now >= self.next_rewatch {
            self.next_rewatch = now + self.timings.poll_interval.min(Duration::from_secs(30));
            self.rewatch(now);
        }
        for rel in self.retry.due(now) {
            self.retry.trying(&rel, now);
            self.pending.note(super::pending::Hint::Retry(rel), now);
        }
        if let Some(batch) = self.pending.take_ready(now) {
            self.apply(batch);
            self.trim_at = Some(Instant::now() + TRIM_AFTER);
        } else if self.trim_at.is_some_and(|t| now >= t) && self.pending.next_deadline().is_none() {
            self.trim_at = None;
            release_free_memory();
        }
        self.check_stale();
    }

    /// SRC's root still the folder we watch? DST's still there? A source
    /// that went away pauses the pair; one that came back resumes it.
    fn check_roots(&mut self) {
        if self.mirror.is_none() {
            self.try_open();
            if self.mirror.is_some() {
                self.recovered();
            }
            return;
        }
        let now_id = root_id(&self.src);
        if self.problem.is_some() {
            if now_id.is_some() {
                // Mirror::reconcile re-checks the source (rule 4) before
                // touching anything.
                self.recovered();
            }
            return;
        }
        if now_id.is_none() {
            self.setup_failed(SetupError::SrcMissing(self.src.clone()));
        } else if (now_id != self.root_id && self.root_id.is_some())
            || std::mem::take(&mut self.root_gone)
        {
            // Replaced (unmounted and remounted, or another folder now):
            // watch the new one and reconcile (which checks rule 4).
            log::warn!(
                "{}: the source folder was replaced; reconciling",
                show(&self.src)
            );
            self.watcher = None;
            self.start_watching();
            self.needs_full = true;
        }
        let dst_now = root_id(&self.dst);
        if dst_now.is_none() {
            self.setup_failed(SetupError::DstMissing(self.dst.clone()));
            // The Mirror holds handles to a folder that is gone: reopen later.
            self.mirror = None;
        } else if self.dst_id.is_some() && dst_now != self.dst_id {
            log::warn!(
                "{}: the backup folder was replaced; opening the new one",
                show(&self.dst)
            );
            self.mirror = None;
            self.try_open();
        }
    }

    fn recovered(&mut self) {
        self.root_gone = false;
        if let Some(problem) = self.problem.take() {
            if problem.starts_with("Source") {
                log::info!("{}: the source is back; reconciling", show(&self.src));
            } else {
                log::info!("{}: resolved ({problem}); reconciling", show(&self.src));
            }
        }
        self.watcher = None;
        self.start_watching();
        self.needs_full = true;
        self.status(true);
    }

    fn apply(&mut self, batch: Batch) {
        if self.mirror.is_none() {
            return;
        }
        self.ctl.reset();
        let pending = batch.dirty.len() + batch.renames.len();
        if batch.full || pending > 1 {
            self.status_state(
                State::Busy {
                    pending: if batch.full { 0 } else { pending },
                },
                batch.full,
            );
        }
        let Some(mirror) = &self.mirror else { return };
        let sink = WorkerSink::new(&self.src, &self.dst);
        let mut tried: Vec<PathBuf> = Vec::new();
        mirror.set_deferred(batch.defer.iter().cloned().collect());
        let result: Result<Summary, SetupError> = if batch.full {
            let r = mirror.reconcile(&self.ctl, &sink);
            mirror.allow_mass_delete(false);
            r
        } else {
            mirror.begin_batch();
            let mut dirty = batch.dirty;
            for (i, (from, to)) in batch.renames.iter().enumerate() {
                let chained = batch.renames[i + 1..].iter().any(|(f, _)| f == to);
                match mirror.rename(from, to, chained, &sink) {
                    Ok(true) => dirty.push(Dirty {
                        rel: to.clone(),
                        deep: false,
                    }),
                    Ok(false) => {
                        dirty.push(Dirty {
                            rel: from.clone(),
                            deep: true,
                        });
                        dirty.push(Dirty {
                            rel: to.clone(),
                            deep: true,
                        });
                    }
                    Err(e) => {
                        log::warn!(
                            "{}: cannot rename in the backup ({}); copying instead",
                            show(&self.dst.join(from)),
                            crate::engine::error::reason(&e)
                        );
                        dirty.push(Dirty {
                            rel: from.clone(),
                            deep: true,
                        });
                        dirty.push(Dirty {
                            rel: to.clone(),
                            deep: true,
                        });
                    }
                }
            }
            let mut r = mirror.reconcile_paths(&dirty, &self.ctl, &sink);
            if !batch.gentle.is_empty()
                && let Ok(summary) = &mut r
            {
                mirror.set_skip_busy(true);
                let more = mirror.reconcile_paths(&batch.gentle, &self.ctl, &sink);
                mirror.set_skip_busy(false);
                match more {
                    Ok(m) => summary.merge(&m),
                    Err(e) => r = Err(e),
                }
            }
            tried = dirty
                .into_iter()
                .chain(batch.gentle)
                .map(|d| d.rel)
                .collect();
            r
        };
        let summary = match result {
            Ok(s) => s,
            Err(e) => {
                if matches!(e, SetupError::DstMissing(_)) {
                    // Deleted under the walk: the Mirror's handles point
                    // into a folder that is gone; reopen when it is back.
                    self.mirror = None;
                }
                return self.setup_failed(e);
            }
        };
        if batch.full && !summary.interrupted {
            self.retry.clear();
            match mirror.prune_versions() {
                Ok(0) => {}
                Ok(n) => log::info!(
                    "{}: pruned {n} old version folders",
                    show(&mirror.versions_path())
                ),
                Err(e) => log::warn!(
                    "{}: cannot prune old versions: {}",
                    show(&mirror.versions_path()),
                    crate::engine::error::reason(&e)
                ),
            }
        }
        let now = Instant::now();
        for rel in sink.take_busy() {
            // As if written again: copied after a quiet period.
            self.pending.note(super::pending::Hint::Modified(rel), now);
        }
        let failures = sink.take_failures();
        for f in &failures {
            let rel = f
                .path
                .strip_prefix(&self.src)
                .or_else(|_| f.path.strip_prefix(&self.dst))
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| f.path.clone());
            if !rel.as_os_str().is_empty() {
                self.retry.failed(&rel, f.transient, now);
            }
        }
        // Tried and not failed: off the retry list (a failure keeps its
        // count, so the back-off grows).
        let failed_now: std::collections::HashSet<&Path> =
            failures.iter().map(|f| f.path.as_path()).collect();
        for rel in &tried {
            if !failed_now.contains(self.src.join(rel).as_path())
                && !failed_now.contains(self.dst.join(rel).as_path())
            {
                self.retry.succeeded(rel);
            }
        }
        if let Some(first) = failures.first() {
            self.notice(Notice::Failures {
                index: self.index,
                count: failures.len(),
                first: first.clone(),
            });
        }
        if let Some((count, total)) = summary.held_deletions {
            if self.problem.is_none() {
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
        if summary.changed() || summary.failed > 0 {
            log::info!(
                "{}: copied {}, versioned {}, deleted {}, renamed {}, failed {}",
                show(&self.src),
                summary.copied,
                summary.versioned + sink.renamed_over(),
                summary.deleted,
                sink.renamed(),
                summary.failed
            );
        }
        let clean = self.retry.is_empty()
            && summary.held_deletions.is_none()
            && !summary.interrupted
            && self.pending.is_empty();
        if clean {
            let was_unclean = self.unclean_since.is_some();
            self.last_ok = Some(Timestamp::now());
            self.unclean_since = None;
            if self.stale_sent && was_unclean {
                self.notice(Notice::Recovered { index: self.index });
            }
            self.stale_sent = false;
        } else {
            self.mark_unclean();
        }
        self.status(false);
    }

    fn mark_unclean(&mut self) {
        if self.unclean_since.is_none() {
            self.unclean_since = Some(Instant::now());
        }
    }

    /// A pair that has not been clean for the alert time raises a notice, once.
    fn check_stale(&mut self) {
        let unclean = self.paused
            || self.problem.is_some()
            || !self.retry.is_empty()
            || self.mirror.is_none();
        if !unclean {
            return;
        }
        self.mark_unclean();
        if let Some(since) = self.unclean_since
            && !self.stale_sent
            && since.elapsed() >= self.timings.alert_after
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

    fn state(&self) -> State {
        if let Some(p) = &self.problem {
            State::Error(p.clone())
        } else if self.mirror.is_none() || (self.needs_full && self.last_ok.is_none()) {
            State::Starting
        } else if self.paused {
            State::Paused
        } else if let Some(h) = self.mirror.as_ref().and_then(Mirror::held_deletions) {
            State::Error(format!("{} deletions held — confirm to allow", h.0))
        } else if let Some(p) = &self.polling {
            State::Degraded(p.clone())
        } else if !self.pending.is_empty() {
            State::Busy {
                pending: self.pending.len(),
            }
        } else {
            State::Idle
        }
    }

    fn status(&mut self, force: bool) {
        let s = self.state();
        self.status_state(s, force);
    }

    fn status_state(&mut self, state: State, force: bool) {
        let now = Instant::now();
        if !force && let Some((last, at)) = &self.last_status {
            let same_kind = std::mem::discriminant(last) == std::mem::discriminant(&state);
            if *last == state || (same_kind && now.duration_since(*at) < STATUS_EVERY) {
                return;
            }
        }
        self.last_status = Some((state.clone(), now));
        self.notice(Notice::Status(PairStatus {
            index: self.index,
            src: self.src.clone(),
            dst: self.dst.clone(),
            state,
            last_ok: self.last_ok,
            failing: self.retry.len(),
        }));
    }
}

/// After `watch(root)` failed at one folder (`err` names it), watches the
/// folders notify's walk did not reach: notify walks depth-first in listing
/// order and stops at the first error, so what is left is, for each folder
/// between the failing one and `root`, the sub-folders listed after the
/// branch that leads to it. Each is watched recursively (failing again
/// means the same, one level down). The failing folders go in `unwatched`.
fn watch_around(
    w: &mut RecommendedWatcher,
    root: &Path,
    err: notify::Error,
    unwatched: &mut Vec<PathBuf>,
) -> Result<(), notify::Error> {
    let Some(failed) = err.paths.first().cloned() else {
        return Err(err);
    };
    if !failed.starts_with(root) || failed == root {
        return Err(err);
    }
    unwatched.push(failed.clone());
    let mut branch = failed.as_path();
    while let Some(parent) = branch.parent() {
        if !parent.starts_with(root) {
            break;
        }
        let mut after = false;
        if let Ok(rd) = std::fs::read_dir(parent) {
            for e in rd.flatten() {
                if e.path() == branch {
                    after = true;
                    continue;
                }
                let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
                if after && is_dir {
                    let p = e.path();
                    if let Err(e2) = w.watch(&p, RecursiveMode::Recursive) {
                        if matches!(e2.kind, notify::ErrorKind::MaxFilesWatch) {
                            return Err(e2);
                        }
                        watch_around(w, &p, e2, unwatched).or_else(|e3| {
                            // Nothing to go around: this folder itself failed.
                            if e3.paths.first() == Some(&p) || e3.paths.is_empty() {
                                unwatched.push(p.clone());
                                Ok(())
                            } else {
                                Err(e3)
                            }
                        })?;
                    }
                }
            }
        }
        if parent == root {
            break;
        }
        branch = parent;
    }
    Ok(())
}

/// "24 hours", "90 minutes", "4 seconds".
/// Quiet time after a batch before freed memory is handed back.
const TRIM_AFTER: Duration = Duration::from_secs(1);

/// Hands the heap memory that a burst or a walk used and freed back to the
/// system: glibc keeps it (in every thread's arena) otherwise, and a tray
/// utility idles for days.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own allocator state.
    unsafe {
        libc::malloc_trim(0);
    }
}

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

fn root_id(p: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p).ok()?;
    m.is_dir().then(|| (m.dev(), m.ino()))
}

/// Collects one batch's events for the worker: logs changes at debug level,
/// keeps failures for retry and one coalesced notice.
struct WorkerSink {
    src: PathBuf,
    dst: PathBuf,
    failures: Mutex<Vec<EntryError>>,
    renamed: std::sync::atomic::AtomicU64,
    /// Versions kept by renames over an existing entry (the renames' own
    /// count, outside the reconcile's summary).
    renamed_over: std::sync::atomic::AtomicU64,
    /// Files that kept changing while copied: looked at again when quiet.
    busy: Mutex<Vec<PathBuf>>,
}

impl WorkerSink {
    fn new(src: &Path, dst: &Path) -> WorkerSink {
        WorkerSink {
            src: src.to_path_buf(),
            dst: dst.to_path_buf(),
            failures: Mutex::new(Vec::new()),
            renamed: Default::default(),
            renamed_over: Default::default(),
            busy: Mutex::new(Vec::new()),
        }
    }
    fn take_failures(&self) -> Vec<EntryError> {
        self.failures
            .lock()
            .map(|mut f| std::mem::take(&mut *f))
            .unwrap_or_default()
    }
    fn take_busy(&self) -> Vec<PathBuf> {
        self.busy
            .lock()
            .map(|mut b| std::mem::take(&mut *b))
            .unwrap_or_default()
    }
    fn renamed(&self) -> u64 {
        self.renamed.load(std::sync::atomic::Ordering::Relaxed)
    }
    fn renamed_over(&self) -> u64 {
        self.renamed_over.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Sink for WorkerSink {
    fn event(&self, e: Event) {
        match e {
            Event::Scanned(_) | Event::Found { .. } => {}
            Event::Copied { path, bytes } => {
                log::debug!("copied {} ({bytes} bytes)", show(&self.dst.join(path)))
            }
            Event::DirCreated { path } => log::debug!("created {}", show(&self.dst.join(path))),
            Event::MetaUpdated { path } => log::debug!("updated {}", show(&self.dst.join(path))),
            Event::Versioned { path, reason } => {
                if reason == crate::engine::event::VersionReason::RenamedOver {
                    self.renamed_over
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                log::debug!(
                    "versioned {} ({})",
                    show(&self.dst.join(path)),
                    reason.as_str()
                )
            }
            Event::Deleted { path } => log::debug!("deleted {}", show(&self.dst.join(path))),
            Event::Renamed { from, to } => {
                self.renamed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                log::debug!("renamed {} -> {}", show(&self.dst.join(from)), show(&to))
            }
            Event::Skipped { path, why } => {
                log::info!("{}: skipped: {why}", show(&self.src.join(path)))
            }
            Event::Failed(err) => {
                log::error!("{err}");
                if let Ok(mut f) = self.failures.lock() {
                    f.push(err);
                }
            }
            Event::MassDeleteHeld { .. } => {}
            Event::Busy { path } => {
                log::info!(
                    "{}: still being written; it is copied when it settles",
                    show(&self.src.join(&path))
                );
                if let Ok(mut b) = self.busy.lock() {
                    b.push(path);
                }
            }
        }
    }
}
