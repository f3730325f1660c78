//! ctx: what one reconcile shares between its threads, and how it reports.
//!
//! A [`Ctx`] is made per pass (by `Mirror`) and borrowed by the walk
//! ([`super::reconcile`]) and the copies ([`super::copy`]). Every outcome of
//! an entry goes through it: counted in [`Stats`], sent to the [`Sink`] as an
//! [`Event`], and a failure on DST's side that only says DST changed under
//! the write is turned into a look again ([`Event::Again`]) while watching.
//! One place decides what is a failure, so the walk and the copy agree.
//! Every pass that writes into DST has one, so it is also where the offsite
//! copy hears of the writes (`offsite_clean`): its marker goes before the
//! first write and after the last.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::batch::Look;
use super::error::EntryError;
use super::event::{Control, Event, Sink, Stats, VersionReason};
use super::filter::Filter;
use super::fsops::{DirHandle, Kind, changed_under_us};
use super::keeps::Keeps;
use super::store::Store;

/// Everything one reconcile shares between its threads.
pub(crate) struct Ctx<'a> {
    /// The pass writes into DST's tree: the offsite marker is taken away
    /// when it starts and when it ends (the `Ctx` dropped); `None` when
    /// nothing is written.
    pub _writing: Option<super::offsite_clean::Writing<'a>>,
    pub src_root: &'a Path,
    pub dst_root: &'a Path,
    /// DST's (device, inode): found again inside SRC, it is not entered.
    pub dst_id: Option<(u64, u64)>,
    pub filter: &'a Filter,
    /// `None` in a dry run: nothing is written.
    pub store: Option<&'a Store>,
    pub sink: &'a dyn Sink,
    pub stats: &'a Stats,
    pub ctl: &'a Control,
    /// What DST's file system keeps (probed at open).
    pub keeps: Keeps,
    /// Drives that cannot tell case: each SRC folder's names as the drive
    /// sees them, and the one name of each that is mirrored.
    pub case_names: Mutex<HashMap<PathBuf, HashMap<String, OsString>>>,
    /// The backup drive keeps no extended attributes: said once per pair.
    pub xattrs_told: &'a AtomicBool,
    /// What the drive cannot hold, written down (see `record`); `None`
    /// when nothing is written (a dry run).
    pub record: Option<&'a Mutex<super::record::Record>>,
    /// The note that the drive cannot hold everything: said once per pair.
    pub record_told: &'a AtomicBool,
    /// DST's root (`None` in a dry run of a DST not made yet).
    pub dst_dir: Option<&'a DirHandle>,
    /// SRC files with several names met in this pass.
    pub links: super::links::Links,
    /// Live: the names the pair has seen of such files.
    pub names: Option<&'a super::links::Names>,
    /// Records where each copy came from (live mirroring only).
    pub origins: Option<&'a super::origins::Origins>,
    /// Versions on for this pair (off: DST's lost entries are removed).
    pub versions_on: bool,
    /// A one-shot run: copy again a file changed within a clock tick of its
    /// copy, wait for an active writer, and report a file that kept
    /// changing as failed. A watcher gets an event for each such write
    /// instead, and leaves the file to it.
    pub recheck_recent: bool,
    /// Files being written (the watcher has a later event for each): a
    /// walk neither copies nor removes them now.
    pub deferred: &'a std::collections::HashSet<PathBuf>,
    /// How the path in hand is looked at (a [`Look`] as a number: the
    /// watcher's paths are done one after the other, each with its own).
    pub look: std::sync::atomic::AtomicU8,
    pub extras: Mutex<Vec<Extra>>,
    /// Overlay entries of names a folder listing no longer shows: their
    /// files are versioned with the extras, after the walk, and the lines
    /// that give those versions their mode, time and attributes are
    /// written then (see `Ctx::retire_listed`).
    pub listed_gone: Mutex<Vec<(PathBuf, super::record::Entry)>>,
    pub dst_entries: AtomicU64,
    /// The backup folder was deleted during this walk: it stops, and says
    /// so once instead of once per file.
    pub dst_gone: std::sync::atomic::AtomicBool,
}

/// An entry DST holds that SRC does not.
#[derive(Debug, Clone)]
pub(crate) struct Extra {
    pub rel: PathBuf,
    pub kind: Kind,
}

impl<'a> Ctx<'a> {
    pub fn src_path(&self, rel: &Path) -> PathBuf {
        self.src_root.join(rel)
    }
    pub fn dst_path(&self, rel: &Path) -> PathBuf {
        self.dst_root.join(rel)
    }
    /// Stopped by the user, or nothing more can be done.
    /// Whether copies into DST are given SRC's owners (as root, on a
    /// drive that keeps them).
    pub(crate) fn owner(&self) -> super::content::Owner {
        if self.keeps.owners == super::keeps::Owners::Kept {
            super::content::Owner::Set
        } else {
            super::content::Owner::Leave
        }
    }

    pub fn halted(&self) -> bool {
        self.ctl.stopped() || self.dst_gone.load(Ordering::Relaxed)
    }
    pub fn look(&self) -> Look {
        match self.look.load(Ordering::Relaxed) {
            0 => Look::Gentle,
            1 => Look::Open,
            2 => Look::Written,
            _ => Look::Forced,
        }
    }
    pub fn set_look(&self, look: Look) {
        self.look.store(look as u8, Ordering::Relaxed);
    }
    /// Tells, once per pair, that the backup drive cannot keep `rel`'s
    /// extended attributes or ACLs (a note: the file itself is backed up).
    /// Where the drive keeps none at all, the record keeps them (see
    /// `record`); one a drive that keeps others refuses (too large, an ACL
    /// where it keeps only `user.*`) is lost.
    pub fn xattrs_dropped(&self, rel: &Path) {
        if self.xattrs_told.swap(true, Ordering::Relaxed) {
            return;
        }
        if self.keeps.xattrs {
            log::warn!(
                "{}: the backup drive cannot keep some extended attributes or ACLs (too large, or of a kind it does not hold; first seen on {}); files are backed up without them",
                super::error::show(self.dst_root),
                super::error::show(&self.src_path(rel))
            );
        } else {
            log::warn!(
                "{}: the backup drive cannot hold extended attributes or ACLs (first seen on {}); mirrortray records them in {} so that a restore gives them back exactly",
                super::error::show(self.dst_root),
                super::error::show(&self.src_path(rel)),
                super::error::show(
                    &self
                        .dst_root
                        .join(super::filter::RESERVED)
                        .join(super::record::RECORD_FILE)
                ),
            );
        }
    }
    pub fn failed(&self, e: EntryError) {
        if self.dst_gone.load(Ordering::Relaxed) {
            return;
        }
        if self.store.is_some_and(|s| s.deleted()) {
            self.dst_gone.store(true, Ordering::Relaxed);
            return;
        }
        Stats::add(&self.stats.failed, 1);
        self.sink.event(Event::Failed(e));
    }
    /// A failure on DST's side of `rel`. Watching, an entry DST lost from
    /// under the write (its folder deleted or replaced meanwhile: by hand,
    /// or an `rm -rf` of the whole backup) is looked at again rather than
    /// reported: that look mends it, or finds the backup folder missing
    /// (one error, not one per file).
    pub fn dst_failed(&self, rel: &Path, action: &'static str, e: &io::Error) {
        if !self.recheck_recent && changed_under_us(e) {
            self.sink.event(Event::Again {
                path: rel.to_path_buf(),
            });
            return;
        }
        self.failed(EntryError::new(self.dst_path(rel), action, e));
    }

    pub fn versioned(&self, rel: &Path, reason: VersionReason) {
        Stats::add(&self.stats.versioned, 1);
        self.sink.event(Event::Versioned {
            path: rel.to_path_buf(),
            reason,
        });
    }
    pub(crate) fn removed(&self, rel: &Path, reason: VersionReason) {
        if !self.versions_on {
            Stats::add(&self.stats.deleted, 1);
            self.sink.event(Event::Deleted {
                path: rel.to_path_buf(),
            });
        } else {
            self.versioned(rel, reason);
        }
    }
    /// `notable`: see [`Event::Skipped`].
    pub(crate) fn skipped(&self, rel: &Path, why: String, notable: bool) {
        Stats::add(&self.stats.skipped, 1);
        self.sink.event(Event::Skipped {
            path: rel.to_path_buf(),
            why,
            notable,
        });
    }
    pub(crate) fn scanned(&self, n: u64) {
        Stats::add(&self.stats.scanned, n);
        self.sink.event(Event::Scanned(n));
    }

    /// Moves DST's entry at `rel` out of the mirror (versioned, or removed
    /// with versions off). In a dry run, only reports.
    pub fn remove_entry(
        &self,
        dst: &DirHandle,
        rel: &Path,
        kind: Kind,
        reason: VersionReason,
    ) -> bool {
        match self.store {
            None => {
                self.removed(rel, reason);
                true
            }
            Some(store) => match store.versions.keep(dst, rel, kind, reason) {
                Ok(()) => {
                    self.removed(rel, reason);
                    true
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => true,
                Err(e) => {
                    self.failed(EntryError::new(
                        self.dst_path(rel),
                        "move into versions",
                        &e,
                    ));
                    false
                }
            },
        }
    }

    pub(crate) fn pruned(&self, p: super::versions::Pruned) {
        self.sink.event(Event::Pruned {
            count: p.count,
            bytes: p.bytes,
            reach: p.reach,
        });
    }

    pub(crate) fn copied(&self, rel: &Path, bytes: u64) {
        Stats::add(&self.stats.copied, 1);
        Stats::add(&self.stats.bytes, bytes);
        self.sink.event(Event::Copied {
            path: rel.to_path_buf(),
            bytes,
        });
    }
}
