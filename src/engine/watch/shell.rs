//! shell: one pair's worker thread, the I/O around the [`Core`]. It owns
//! the watch of SRC ([`Source`]), the [`Mirror`], the channels and the
//! clock: it waits for a command, something heard or the core's next
//! deadline, feeds that to the core, and does the effects that come out
//! (feeding their results back). It decides nothing itself.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, unbounded};
use jiff::Timestamp;

use super::core::{Core, Effect, Id, Input, Opened, Pass, WatchFailure};
use super::hints::Heard;
use super::offsite::Outcome;
use super::pending::Quirks;
use super::pusher::Pusher;
use super::source::{Source, StartError};
use super::tally::Tally;
use super::{Command, Notice, Start, Timings};
use crate::engine::error::{SetupError, reason, show};
use crate::engine::event::{Control, Event, Sink};
use crate::engine::mirror::{Mirror, Options, PairSpec};
use crate::engine::versions::Pruned;

pub(super) struct Shell {
    index: usize,
    spec: PairSpec,
    opts: Options,
    core: Core,
    mirror: Option<Mirror>,
    source: Option<Source>,
    heard_tx: Sender<Heard>,
    heard: Receiver<Heard>,
    cmds: Receiver<Command>,
    ctl: Arc<Control>,
    notices: Sender<Notice>,
    /// Notable skips already said (a loop is found again by every look at
    /// its folder; the log says it once).
    said: Mutex<HashSet<PathBuf>>,
    tally: Tally,
    /// The pair's offsite copy, pushed in the background (`None`: none).
    pusher: Option<Pusher>,
    /// The mirror wrote into DST since the pusher last heard.
    dst_changed: bool,
}

impl Shell {
    pub(super) fn new(
        index: usize,
        start: Start,
        opts: Options,
        timings: Timings,
        cmds: Receiver<Command>,
        ctl: Arc<Control>,
        notices: Sender<Notice>,
    ) -> Shell {
        let (heard_tx, heard) = unbounded();
        let (spec, mirror) = match start {
            Start::Opened(m) => (m.spec().clone(), Some(*m)),
            Start::Spec(s) => (s, None),
        };
        let (src, dst) = match &mirror {
            Some(m) => (m.src().to_path_buf(), m.dst().to_path_buf()),
            None => (spec.src.clone(), spec.dst.clone()),
        };
        let pusher = spec.offsite.as_ref().map(|o| Pusher::new(index, o, &dst));
        Shell {
            index,
            spec,
            // The worker never creates a missing backup folder: a configured
            // one that is missing is most likely an unmounted drive.
            opts: Options {
                create_dst: false,
                live: true,
                ..opts
            },
            core: Core::new(index, &src, &dst, timings, Instant::now()),
            pusher,
            dst_changed: false,
            mirror,
            source: None,
            heard_tx,
            heard,
            cmds,
            ctl,
            tally: Tally::new(notices.clone()),
            notices,
            said: Mutex::new(HashSet::new()),
        }
    }

    pub(super) fn run(mut self) {
        let opened = self.mirror.as_ref().map(|m| Opened {
            src: m.src().to_path_buf(),
            dst: m.dst().to_path_buf(),
            dst_id: root_id(m.dst()),
        });
        let allow_mass_delete = self.opts.allow_mass_delete;
        self.feed(Input::Start {
            opened,
            allow_mass_delete,
        });
        let pushed = self
            .pusher
            .as_ref()
            .map_or_else(crossbeam_channel::never, |p| p.done.clone());
        loop {
            let mut deadline = self.core.poll_timeout(Instant::now());
            if let Some(d) = self.pusher.as_ref().and_then(Pusher::deadline) {
                deadline = deadline.min(d);
            }
            let timeout = deadline.saturating_duration_since(Instant::now());
            let mut done = None;
            crossbeam_channel::select! {
                recv(pushed) -> o => done = o.ok(),
                recv(self.cmds) -> cmd => match cmd {
                    Ok(Command::Quit) | Err(_) => break,
                    Ok(c) => self.command(c),
                },
                recv(self.heard) -> h => {
                    if let Ok(h) = h {
                        self.hear(h);
                    }
                    // Everything already queued joins the same batch.
                    while let Ok(h) = self.heard.try_recv() {
                        self.hear(h);
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
            self.feed(Input::Tick);
            self.offsite(done);
        }
        self.source = None;
        if let Some(m) = self.mirror.take() {
            m.clean_tmp();
        }
        let _ = self.notices.send(Notice::Stopped { index: self.index });
    }

    /// The offsite copy's turn: told whether the pair is idle and whether
    /// DST changed; its notices go to the app.
    fn offsite(&mut self, done: Option<Outcome>) {
        let Some(p) = &mut self.pusher else {
            return;
        };
        let idle = matches!(
            self.core.state(),
            super::State::Idle | super::State::Degraded(_)
        );
        let changed = std::mem::take(&mut self.dst_changed);
        for n in p.step(idle, changed, done) {
            let _ = self.notices.send(n);
        }
    }

    fn hear(&mut self, h: Heard) {
        log::trace!("heard {h:?}");
        self.feed(Input::Heard(h));
    }

    fn command(&mut self, c: Command) {
        if matches!(
            c,
            Command::Pause | Command::Resume | Command::BackupNow | Command::AllowMassDelete
        ) {
            // A Pause interrupted the pass in hand; what comes next runs.
            self.ctl.reset();
        }
        self.feed(Input::Command(c));
    }

    /// One input to the core, then its effects (and theirs) in order.
    fn feed(&mut self, input: Input) {
        let mut queue: VecDeque<Effect> =
            self.core.on(input, Instant::now(), Timestamp::now()).into();
        while let Some(e) = queue.pop_front() {
            for next in self.effect(e) {
                queue.extend(self.core.on(next, Instant::now(), Timestamp::now()));
            }
        }
    }

    /// Does one effect; returns the inputs it gives back, in order.
    fn effect(&mut self, e: Effect) -> Vec<Input> {
        match e {
            Effect::Open => vec![Input::Opened(self.open())],
            Effect::Close => {
                self.mirror = None;
                Vec::new()
            }
            Effect::Watch => vec![Input::Watching(self.watch())],
            Effect::Unwatch => {
                self.source = None;
                Vec::new()
            }
            Effect::WatchAgain(rel) => {
                if let Some(s) = &mut self.source {
                    s.watch_again(&rel, &self.heard_tx);
                }
                Vec::new()
            }
            Effect::Sync => {
                if let Some(s) = &self.source {
                    s.sync();
                }
                // What the sync made heard is in the channel: heard now,
                // before the batch is taken.
                let mut inputs: Vec<Input> = self
                    .heard
                    .try_iter()
                    .inspect(|h| log::trace!("heard {h:?}"))
                    .map(Input::Heard)
                    .collect();
                inputs.push(Input::Synced);
                inputs
            }
            Effect::Apply(batch) => {
                let Some(m) = self.mirror.as_ref() else {
                    return Vec::new();
                };
                log::trace!("batch {:?} {:?}", batch.renames, batch.paths);
                let sink = LogSink::new(m, self);
                let result = m.apply(&batch, &self.ctl, &sink);
                self.wrote(&result);
                vec![Input::Applied {
                    pass: Pass::Batch,
                    result,
                }]
            }
            Effect::Verify { folders, leave } => {
                let Some(m) = self.mirror.as_ref() else {
                    return Vec::new();
                };
                log::trace!("verify {folders:?}");
                let sink = LogSink::new(m, self);
                let result = m.verify_folders(&folders, &leave, &self.ctl, &sink);
                self.wrote(&result);
                vec![Input::Applied {
                    pass: Pass::Verify,
                    result,
                }]
            }
            Effect::Reconcile {
                allow_mass_delete,
                count,
            } => {
                let Some(m) = self.mirror.as_ref() else {
                    return Vec::new();
                };
                if count {
                    self.tally.counting();
                    // A failure here is met again, and said, by the pass.
                    if let Ok(work) = m.survey(&self.ctl) {
                        self.tally.counted(&work);
                    }
                }
                let sink = LogSink::new(m, self);
                let result = m.reconcile(&self.ctl, &sink, allow_mass_delete);
                self.wrote(&result);
                vec![Input::Applied {
                    pass: Pass::Full,
                    result,
                }]
            }
            Effect::PruneVersions => {
                if let Some(m) = &self.mirror {
                    match m.prune_versions(&LogSink::new(m, self)) {
                        Ok(0) => {}
                        Ok(n) => log::info!(
                            "{}: pruned {n} old version folders",
                            show(&m.versions_path())
                        ),
                        Err(e) => log::warn!(
                            "{}: cannot prune old versions: {}",
                            show(&m.versions_path()),
                            reason(&e)
                        ),
                    }
                }
                Vec::new()
            }
            Effect::CheckRoots => {
                let (src, dst) = match &self.mirror {
                    Some(m) => (m.src().to_path_buf(), m.dst().to_path_buf()),
                    None => (self.spec.src.clone(), self.spec.dst.clone()),
                };
                vec![Input::Roots {
                    src: root_id(&src),
                    src_readable: std::fs::read_dir(&src).is_ok(),
                    dst: root_id(&dst),
                }]
            }
            Effect::Notice(n) => {
                let n = match n {
                    Notice::Status(s) => Notice::Status(self.tally.stamp(s)),
                    n => n,
                };
                let _ = self.notices.send(n);
                Vec::new()
            }
            Effect::TrimMemory => {
                release_free_memory();
                Vec::new()
            }
        }
    }

    /// Notes that a pass wrote into DST (for the offsite copy).
    fn wrote(&mut self, result: &Result<crate::engine::batch::Applied, SetupError>) {
        if result.as_ref().is_ok_and(|a| a.summary.changed()) {
            self.dst_changed = true;
        }
    }

    fn open(&mut self) -> Result<Opened, SetupError> {
        let m = Mirror::open(&self.spec, &self.opts)?;
        let o = Opened {
            src: m.src().to_path_buf(),
            dst: m.dst().to_path_buf(),
            dst_id: root_id(m.dst()),
        };
        self.mirror = Some(m);
        Ok(o)
    }

    /// Starts watching SRC (before the full pass, so nothing made during
    /// it is missed).
    fn watch(&mut self) -> Result<(Quirks, Option<Id>), WatchFailure> {
        self.source = None;
        let src = match &self.mirror {
            Some(m) => m.src().to_path_buf(),
            None => return Err(WatchFailure::Other("the pair is not open".into())),
        };
        let id = root_id(&src);
        match Source::start(&src, self.heard_tx.clone()) {
            Ok(s) => {
                let quirks = Quirks {
                    second_look: s.second_look(),
                    late_pairs: s.second_look(),
                };
                self.source = Some(s);
                Ok((quirks, id))
            }
            Err(StartError::Limit) => Err(WatchFailure::Limit),
            Err(StartError::Other(why)) => Err(WatchFailure::Other(why)),
        }
    }
}

fn root_id(p: &Path) -> Option<Id> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p).ok()?;
    m.is_dir().then(|| (m.dev(), m.ino()))
}

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

/// Logs one batch's events: each change at debug level (`-vv`), skipped
/// entries at info, failures as errors (with the path and the reason).
/// Copies are counted in the run's [`Tally`]; versions pruned for space
/// are told to the app.
struct LogSink<'a> {
    src: &'a Path,
    dst: &'a Path,
    said: &'a Mutex<HashSet<PathBuf>>,
    tally: &'a Tally,
    notices: &'a Sender<Notice>,
    index: usize,
}

impl<'a> LogSink<'a> {
    fn new(m: &'a Mirror, shell: &'a Shell) -> LogSink<'a> {
        LogSink {
            src: m.src(),
            dst: m.dst(),
            said: &shell.said,
            tally: &shell.tally,
            notices: &shell.notices,
            index: shell.index,
        }
    }
}

impl Sink for LogSink<'_> {
    fn event(&self, e: Event) {
        match e {
            Event::Scanned(_) | Event::Found { .. } | Event::MassDeleteHeld { .. } => {}
            Event::Copied { path, bytes } => {
                self.tally.copied(bytes);
                log::debug!("copied {} ({bytes} bytes)", show(&self.dst.join(path)))
            }
            Event::DirCreated { path } => log::debug!("created {}", show(&self.dst.join(path))),
            Event::MetaUpdated { path } => log::debug!("updated {}", show(&self.dst.join(path))),
            Event::Versioned { path, reason } => log::debug!(
                "versioned {} ({})",
                show(&self.dst.join(path)),
                reason.as_str()
            ),
            Event::Deleted { path } => log::debug!("deleted {}", show(&self.dst.join(path))),
            Event::Renamed { from, to } => {
                log::debug!("renamed {} -> {}", show(&self.dst.join(from)), show(&to))
            }
            Event::Skipped { path, why, notable } => {
                let first = notable && self.said.lock().is_ok_and(|mut s| s.insert(path.clone()));
                let level = match (notable, first) {
                    (true, true) => log::Level::Warn,
                    (true, false) => log::Level::Debug,
                    (false, _) => log::Level::Info,
                };
                log::log!(level, "{}: skipped: {why}", show(&self.src.join(path)))
            }
            Event::Failed(err) => log::error!("{err}"),
            Event::Busy { path } => log::debug!(
                "{}: being written; copied when it is closed or quiet",
                show(&self.src.join(&path))
            ),
            Event::JustMade { path } => log::debug!(
                "{}: empty and just made; looked at again in a moment",
                show(&self.src.join(&path))
            ),
            Event::Pruned {
                count,
                bytes,
                reach,
            } => {
                let p = Pruned {
                    count,
                    bytes,
                    reach,
                };
                let text = p.describe(self.dst);
                log::warn!("{text}");
                let _ = self.notices.send(Notice::VersionsPruned {
                    index: self.index,
                    text,
                });
            }
            Event::Again { path } => log::debug!(
                "{}: the backup lost its folder during the copy; looked at again",
                show(&self.dst.join(&path))
            ),
        }
    }
}
