//! batch: one batch of live changes, as the watcher hands it to
//! [`Mirror::apply`](super::mirror::Mirror::apply), and what came of it.
//!
//! A batch names paths; the mirror decides what to do by looking at both
//! sides (events are hints). Besides the paths it names, every folder a
//! batch touched (the parent of each path, both ends of each rename) then
//! has its listing compared on both sides, so a sibling whose event was lost
//! or mispaired is caught. That comparison comes after the watcher has heard
//! every event queued meanwhile (a rename made during a long copy is then
//! applied as a rename, not mistaken for a deletion and a new file).

use std::collections::HashSet;
use std::path::PathBuf;

use super::error::EntryError;
use super::event::Summary;

/// How a path is looked at, from what was heard about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Look {
    /// Created, attributes changed, or in a folder that just appeared: a
    /// file another program has open for writing is left to its close
    /// event.
    #[default]
    Gentle,
    /// Written, not closed yet (`truncate(2)`, a log kept open): a file
    /// still open for writing elsewhere is left and reported busy (looked at
    /// again when closed or quiet); one nobody writes is copied now.
    Open,
    /// Written and closed: copied.
    Written,
    /// Copied even while open for writing elsewhere (it kept changing for
    /// the longest quiet time; a retry).
    Forced,
}

/// A path (relative to the pair's roots) to make equal on both sides.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dirty {
    pub rel: PathBuf,
    /// The whole subtree (a folder that appeared with content, a retry),
    /// not only the entry itself.
    pub deep: bool,
    pub look: Look,
}

impl Dirty {
    pub fn new(rel: impl Into<PathBuf>, deep: bool, look: Look) -> Dirty {
        Dirty {
            rel: rel.into(),
            deep,
            look,
        }
    }
}

/// What to apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Renames inside SRC, in the order they happened.
    pub renames: Vec<(PathBuf, PathBuf)>,
    pub paths: Vec<Dirty>,
    /// Files still being written, each with a later batch of its own: a
    /// scan passing them leaves them alone now.
    pub deferred: HashSet<PathBuf>,
    /// Folders the last batches wrote into (`""`: a full pass, everything).
    /// One that a rename of this batch carries elsewhere is checked whole
    /// at its new place: it may have been written from what SRC held at
    /// its old path *after* SRC had moved it (the rename not heard yet).
    pub recent: Vec<PathBuf>,
}

impl Batch {
    /// A batch of one path, whole subtree, copied even if open elsewhere
    /// (what `restore` backs up).
    pub fn deep(rel: impl Into<PathBuf>) -> Batch {
        Batch {
            paths: vec![Dirty::new(rel, true, Look::Forced)],
            ..Batch::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.renames.is_empty() && self.paths.is_empty()
    }
}

/// What a comparison of listings leaves alone (`Mirror::verify_folders`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leave {
    /// Paths being written, or failing and waiting for their retry.
    pub paths: HashSet<PathBuf>,
    /// Folders whose listings pending changes are about to change: a
    /// folder gone from SRC is looked at from its parent, unless that
    /// parent is one of these.
    pub folders: HashSet<PathBuf>,
}

/// One entry that failed, relative to the pair's roots.
#[derive(Debug, Clone)]
pub struct Failure {
    pub rel: PathBuf,
    pub error: EntryError,
}

/// What applying a batch (or a whole reconcile) did.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub summary: Summary,
    pub failures: Vec<Failure>,
    /// Files left because another program is writing them (or they kept
    /// changing through every copy attempt): to be looked at again.
    pub busy: Vec<PathBuf>,
    /// Empty files made a moment ago (their creator may not show as a
    /// writer yet): looked at again shortly.
    pub just_made: Vec<PathBuf>,
    /// Entries DST lost from under a write (see `Ctx::dst_failed`): looked
    /// at again after a back-off, not failures.
    pub again: Vec<PathBuf>,
    /// Every path the batch tried (a failed path that is not in `failures`
    /// now succeeded).
    pub tried: Vec<PathBuf>,
    /// Folders written in DST whose SRC counterpart had moved on (its
    /// rename not applied yet): their metadata is set by a later look.
    pub revisit: Vec<PathBuf>,
    /// Folders this batch wrote into (see `Batch::recent`).
    pub written: Vec<PathBuf>,
    /// Folders whose listings are to be compared once the events of this
    /// batch's time have been heard (`Mirror::verify_folders`).
    pub touched: Vec<PathBuf>,
    /// A file with several names was met whose other names the pair has
    /// not seen (see `links`): a full pass finds and links them.
    pub links_unknown: bool,
}
