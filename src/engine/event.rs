//! event: what a [`Mirror`](super::mirror::Mirror) reports while it works,
//! and how it is told to stop.
//!
//! The engine never prints and never knows who listens: the CLI turns events
//! into a progress bar and a summary, the watcher into tray status and
//! notifications. A [`Sink`] is called from worker threads, so it must be
//! cheap and never block for long (forward to a channel).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::error::EntryError;

/// Why a version was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionReason {
    /// SRC holds another content at that path.
    Modified,
    /// SRC no longer holds the path.
    Deleted,
    /// SRC holds another kind of entry there (a folder where a file was...).
    Replaced,
    /// A rename in SRC moved another entry over it.
    RenamedOver,
}

impl VersionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionReason::Modified => "modified",
            VersionReason::Deleted => "deleted",
            VersionReason::Replaced => "replaced",
            VersionReason::RenamedOver => "renamed-over",
        }
    }
    pub fn parse(s: &str) -> Option<VersionReason> {
        Some(match s {
            "modified" => VersionReason::Modified,
            "deleted" => VersionReason::Deleted,
            "replaced" => VersionReason::Replaced,
            "renamed-over" => VersionReason::RenamedOver,
            _ => return None,
        })
    }
}

/// One thing that happened (or, in a dry run, would happen). Paths are
/// relative to the pair's roots.
#[derive(Debug, Clone)]
pub enum Event {
    /// `n` more entries were looked at.
    Scanned(u64),
    /// Work found: a file of `bytes` bytes needs copying (feeds the ETA).
    Found { path: PathBuf, bytes: u64 },
    /// A file was copied (or a symlink made).
    Copied { path: PathBuf, bytes: u64 },
    /// A folder was created.
    DirCreated { path: PathBuf },
    /// Only permissions or times changed, and were applied.
    MetaUpdated { path: PathBuf },
    /// What DST held at `path` was moved into the versions folder.
    Versioned {
        path: PathBuf,
        reason: VersionReason,
    },
    /// Removed from DST without keeping a version (versions are off).
    Deleted { path: PathBuf },
    /// An entry was renamed inside DST, following a rename in SRC.
    Renamed { from: PathBuf, to: PathBuf },
    /// Not mirrored on purpose (FIFO, socket, device, reserved name, a
    /// folder reached again through a mount). `notable`: the user would not
    /// expect it (said at the default level), unlike a FIFO or a socket.
    Skipped {
        path: PathBuf,
        why: String,
        notable: bool,
    },
    /// One entry failed; the others went on.
    Failed(EntryError),
    /// Deletions held by the mass-deletion guard.
    MassDeleteHeld { count: u64, total: u64 },
    /// Watching: a file another program is writing (or one that kept
    /// changing through every copy attempt); it is looked at again once
    /// closed or quiet (not a failure).
    Busy { path: PathBuf },
    /// Watching: an empty file made a moment ago, whose creator may still
    /// be inside `open(2)` (not yet counted as a writer); looked at again
    /// in a moment (not a failure).
    JustMade { path: PathBuf },
    /// The backup disk was short of space: the oldest version folders were
    /// removed to make room (`reach`: the oldest one left).
    Pruned {
        count: usize,
        bytes: u64,
        reach: Option<String>,
    },
    /// Watching: DST lost what the entry was being written into (a folder
    /// deleted or replaced meanwhile); it is looked at again (not a failure).
    Again { path: PathBuf },
}

/// Receives events from worker threads.
pub trait Sink: Sync {
    fn event(&self, e: Event);
}

impl<F: Fn(Event) + Sync> Sink for F {
    fn event(&self, e: Event) {
        self(e)
    }
}

/// A sink that drops everything.
pub struct NullSink;
impl Sink for NullSink {
    fn event(&self, _e: Event) {}
}

/// Shared stop switch, checked between entries. Stopping leaves DST
/// consistent: the entry in hand finishes or is abandoned before its rename.
#[derive(Debug, Default)]
pub struct Control {
    stop: AtomicBool,
}

impl Control {
    pub fn new() -> Control {
        Control::default()
    }
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
    pub fn reset(&self) {
        self.stop.store(false, Ordering::SeqCst);
    }
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Counters of one reconcile, summed atomically from worker threads.
#[derive(Debug, Default)]
pub struct Stats {
    pub scanned: AtomicU64,
    pub copied: AtomicU64,
    pub bytes: AtomicU64,
    pub dirs: AtomicU64,
    pub meta: AtomicU64,
    pub versioned: AtomicU64,
    pub deleted: AtomicU64,
    pub renamed: AtomicU64,
    pub skipped: AtomicU64,
    pub failed: AtomicU64,
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
    pub fn snapshot(&self) -> Summary {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Summary {
            scanned: g(&self.scanned),
            copied: g(&self.copied),
            bytes: g(&self.bytes),
            dirs: g(&self.dirs),
            meta: g(&self.meta),
            versioned: g(&self.versioned),
            deleted: g(&self.deleted),
            renamed: g(&self.renamed),
            skipped: g(&self.skipped),
            failed: g(&self.failed),
            held_deletions: None,
            interrupted: false,
        }
    }
}

/// The outcome of one reconcile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub scanned: u64,
    pub copied: u64,
    pub bytes: u64,
    pub dirs: u64,
    pub meta: u64,
    pub versioned: u64,
    pub deleted: u64,
    pub renamed: u64,
    pub skipped: u64,
    pub failed: u64,
    /// `(held, dst_entries)` when the mass-deletion guard held deletions.
    pub held_deletions: Option<(u64, u64)>,
    /// Stopped before the end (pause, quit).
    pub interrupted: bool,
}

impl Summary {
    /// Whether DST now mirrors SRC (as far as this run could tell).
    pub fn clean(&self) -> bool {
        self.failed == 0 && self.held_deletions.is_none() && !self.interrupted
    }
    /// Whether anything was written to DST.
    pub fn changed(&self) -> bool {
        self.copied + self.dirs + self.meta + self.versioned + self.deleted + self.renamed > 0
    }
    pub fn merge(&mut self, o: &Summary) {
        self.scanned += o.scanned;
        self.copied += o.copied;
        self.bytes += o.bytes;
        self.dirs += o.dirs;
        self.meta += o.meta;
        self.versioned += o.versioned;
        self.deleted += o.deleted;
        self.renamed += o.renamed;
        self.skipped += o.skipped;
        self.failed += o.failed;
        if let Some((h, t)) = o.held_deletions {
            let (h0, t0) = self.held_deletions.unwrap_or((0, 0));
            self.held_deletions = Some((h0 + h, t0 + t));
        }
        self.interrupted |= o.interrupted;
    }
}
