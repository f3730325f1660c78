//! aside: keeps the record of what the backup drive cannot hold (see
//! `record`) in step with SRC during a pass or a batch. The I/O shell
//! around the record: files the drive holds under no name are copied into
//! `.mirrortray/aside/`, entries that go are kept as versions.
//!
//! - Every SRC entry a walk or a batch looks at is noted: an overlay entry
//!   when DST holds it but not exactly (on a drive without extended
//!   attributes, an entry that has any: read from SRC on every look, since
//!   a `setfattr` or `setfacl` moves no mtime), none when DST holds it
//!   exactly, an aside entry (and its bytes) when DST cannot hold it at
//!   all. A path SRC no longer holds loses its entries, and so do the names
//!   a folder listing no longer shows (their overlays are logged with the
//!   versions of their files, once the batch kept them).
//! - An aside file is copied again only when its size or mtime changed
//!   (or its blob went missing): a pass with no change in SRC writes nothing.
//! - What an entry held until it changed or went is kept as a version
//!   (versions on): the blob moves into the batch's time folder, and a line
//!   goes to `aside.log`. An overlay is logged when the file it describes
//!   was versioned, so a restore of that version gets its mode and time.
//! - The user is told once per pair, as a note.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use super::content;
use super::ctx::Ctx;
use super::error::{EntryError, show};
use super::event::{Event, Stats, VersionReason};
use super::filter::join;
use super::fsops::{self, DirHandle, Kind, Meta};
use super::keeps::Unheld;
use super::record::{Bytes, Entry, Kept, needs_overlay};
use super::xattrs::{self, Xattrs};

/// Tries at copying a file that keeps changing under the copy.
const COPY_TRIES: u32 = 3;

fn blob_name(n: u64) -> OsString {
    OsString::from(n.to_string())
}

impl Ctx<'_> {
    /// Whether the record is kept in this pass (not in a dry run).
    fn recording(&self) -> bool {
        self.store.is_some() && self.record.is_some()
    }

    /// Notes SRC's entry at `rel`, mirrored the ordinary way (`sm`: its
    /// metadata; `None`: SRC holds nothing there any more). `dm`: DST's
    /// entry there, which this pass versions if it no longer holds SRC's
    /// content: the overlay that described it then goes along with it.
    /// `attrs` reads SRC's attributes, asked only where the drive loses
    /// them; an entry whose attributes cannot be read keeps its record.
    pub(crate) fn note(
        &self,
        rel: &Path,
        sm: Option<&Meta>,
        dm: Option<&Meta>,
        attrs: impl FnOnce() -> io::Result<Xattrs>,
    ) {
        let (true, Some(rec)) = (self.recording(), self.record) else {
            return;
        };
        let Some(x) = self.lost_xattrs(rel, sm, attrs) else {
            return;
        };
        let want = sm
            .filter(|m| needs_overlay(&self.keeps, m, &x))
            .and_then(|m| Entry::recorded(&self.keeps, m, &x));
        let gone = {
            let Ok(mut r) = rec.lock() else { return };
            if want.is_none() && r.is_empty() {
                return;
            }
            let mut gone = Vec::new();
            if sm.is_none_or(|m| m.kind != Kind::Dir) {
                gone = r.remove_under(rel);
            }
            let old = match &want {
                Some(e) => r.set(rel, e.clone()),
                None => r.remove(rel).map(|(_, e)| e),
            };
            let versioned = |old: &Entry| {
                dm.is_some_and(|d| old.describes(&self.keeps.times, d))
                    && want.as_ref().is_none_or(|e| !same_content(old, e))
            };
            if let Some(old) = old
                && (old.aside || versioned(&old))
            {
                gone.push((rel.to_path_buf(), old));
            }
            gone
        };
        let reason = if sm.is_some() {
            VersionReason::Modified
        } else {
            VersionReason::Deleted
        };
        self.retire(gone, dm.is_some(), reason);
        if want.is_some() {
            self.tell_recorded(rel);
        }
    }

    /// SRC's attributes of its entry `rel` (`sm`), read by `read` where the
    /// record keeps them (the drive holds none); else none. `None`: they
    /// could not be read (reported, unless the entry went meanwhile).
    pub(crate) fn lost_xattrs(
        &self,
        rel: &Path,
        sm: Option<&Meta>,
        read: impl FnOnce() -> io::Result<Xattrs>,
    ) -> Option<Xattrs> {
        let wanted =
            !self.keeps.xattrs && sm.is_some_and(|m| matches!(m.kind, Kind::File | Kind::Dir));
        if !wanted {
            return Some(Xattrs::default());
        }
        match read() {
            Ok(x) => Some(x),
            Err(e) => {
                if !fsops::changed_under_us(&e) {
                    self.failed(EntryError::new(
                        self.src_path(rel),
                        "read extended attributes",
                        &e,
                    ));
                }
                None
            }
        }
    }

    /// Drops the entries of names the SRC folder `folder` no longer holds
    /// (`names`: its listing).
    pub(crate) fn note_listing(&self, folder: &Path, names: &HashSet<&OsStr>) {
        let (true, Some(rec)) = (self.recording(), self.record) else {
            return;
        };
        let gone = match rec.lock() {
            Ok(mut r) if !r.is_empty() => r.retain_children(folder, |n| names.contains(n)),
            _ => return,
        };
        let (aside, overlays): (Vec<_>, Vec<_>) = gone.into_iter().partition(|(_, e)| e.aside);
        self.retire(aside, false, VersionReason::Deleted);
        if let Ok(mut l) = self.listed_gone.lock() {
            l.extend(overlays);
        }
    }

    /// After the extras were versioned (or held): the overlays of the names
    /// listings dropped go with the versions this batch kept of them.
    pub(crate) fn retire_listed(&self) {
        let gone = match self.listed_gone.lock() {
            Ok(mut l) => std::mem::take(&mut *l),
            Err(_) => return,
        };
        self.retire(gone, false, VersionReason::Deleted);
    }

    /// SRC's `from` was renamed `to`, and DST's too: the entries go along.
    pub(crate) fn note_renamed(&self, from: &Path, to: &Path) {
        let (true, Some(rec)) = (self.recording(), self.record) else {
            return;
        };
        let gone = match rec.lock() {
            Ok(mut r) if !r.is_empty() => r.renamed(from, to),
            _ => return,
        };
        self.retire(gone, false, VersionReason::RenamedOver);
    }

    /// Keeps SRC's entry `rel` (`sm`, in SRC's folder `src`), which the
    /// drive cannot hold at all, in the record: a folder with everything
    /// under it. In a dry run, only says so.
    pub(crate) fn hold_aside(&self, src: &DirHandle, rel: &Path, sm: &Meta, why: Unheld) {
        if !self.recording() {
            self.skipped(rel, why.why().to_string(), true);
            return;
        }
        self.tell_recorded(rel);
        let Some(name) = rel.file_name() else { return };
        if sm.kind == Kind::Special {
            return self.note(rel, None, None, no_xattrs);
        }
        self.hold_one(src, name, rel, sm);
        if sm.kind == Kind::Dir {
            self.hold_aside_tree(src, name, rel);
        }
    }

    /// Everything under the aside folder `rel` (`name` in `src`), walked
    /// with a stack, not the call stack; entries gone from it are dropped
    /// once the whole folder was read.
    fn hold_aside_tree(&self, src: &DirHandle, name: &OsStr, rel: &Path) {
        let Some(rec) = self.record else { return };
        let top = match src.open_dir(name) {
            Ok(d) => d,
            Err(e) if fsops::changed_under_us(&e) => return,
            Err(e) => {
                return self.failed(EntryError::new(self.src_path(rel), "read folder", &e));
            }
        };
        let mut seen: HashSet<PathBuf> = HashSet::new();
        let mut complete = true;
        let mut stack = vec![(top, rel.to_path_buf())];
        while let Some((dir, drel)) = stack.pop() {
            if self.halted() {
                return;
            }
            let list = match dir.list() {
                Ok(l) => l,
                Err(e) => {
                    complete = false;
                    self.failed(EntryError::new(self.src_path(&drel), "read folder", &e));
                    continue;
                }
            };
            for e in list {
                let child = join(&drel, &e.name);
                let m = match dir.stat_opt(&e.name) {
                    Ok(Some(m)) => m,
                    Ok(None) => continue,
                    Err(err) => {
                        complete = false;
                        self.failed(EntryError::new(self.src_path(&child), "read", &err));
                        continue;
                    }
                };
                if m.kind == Kind::Special || self.filter.ignores(&child, m.kind == Kind::Dir) {
                    continue;
                }
                self.scanned(1);
                seen.insert(child.clone());
                self.hold_one(&dir, &e.name, &child, &m);
                if m.kind == Kind::Dir {
                    match dir.open_dir(&e.name) {
                        Ok(sub) => stack.push((sub, child)),
                        Err(err) if fsops::changed_under_us(&err) => {}
                        Err(err) => {
                            complete = false;
                            self.failed(EntryError::new(
                                self.src_path(&child),
                                "read folder",
                                &err,
                            ));
                        }
                    }
                }
            }
        }
        if !complete {
            return;
        }
        let gone = match rec.lock() {
            Ok(mut r) => {
                let stale: Vec<PathBuf> = r
                    .tree(rel)
                    .into_iter()
                    .map(|(p, _)| p)
                    .filter(|p| p != rel && !seen.contains(p))
                    .collect();
                stale.iter().filter_map(|p| r.remove(p)).collect()
            }
            Err(_) => return,
        };
        self.retire(gone, false, VersionReason::Deleted);
    }

    /// Records one aside entry (a folder's own entry only).
    fn hold_one(&self, src: &DirHandle, name: &OsStr, rel: &Path, sm: &Meta) {
        let (Some(store), Some(rec)) = (self.store, self.record) else {
            return;
        };
        let Some(x) = self.lost_xattrs(rel, Some(sm), || xattrs::of_name(src, name)) else {
            return;
        };
        let Some(mut want) = Entry::recorded(&self.keeps, sm, &x) else {
            return;
        };
        want.aside = true;
        let old = rec.lock().ok().and_then(|r| r.get(rel).cloned());
        match sm.kind {
            Kind::Symlink => match src.read_link(name) {
                Ok(t) => want.target = Some(Bytes::of(&t)),
                Err(e) if fsops::changed_under_us(&e) => return,
                Err(e) => {
                    return self.failed(EntryError::new(self.src_path(rel), "read symlink", &e));
                }
            },
            Kind::File => {
                let same = old.as_ref().is_some_and(|o| {
                    o.aside
                        && same_content(o, &want)
                        && o.blob.is_some_and(|b| {
                            store
                                .aside()
                                .stat_opt(&blob_name(b))
                                .ok()
                                .flatten()
                                .is_some()
                        })
                });
                want.blob = match (same, &old) {
                    (true, Some(o)) => o.blob,
                    _ => match self.copy_blob(src, name, rel) {
                        Some((n, copied)) => {
                            want.mode = copied.mode;
                            want.mtime = (copied.mtime.sec, copied.mtime.nsec);
                            want.size = copied.size;
                            Some(n)
                        }
                        None => return,
                    },
                };
            }
            _ => {}
        }
        if old.as_ref() == Some(&want) {
            return;
        }
        let replaced = rec.lock().ok().and_then(|mut r| r.set(rel, want.clone()));
        match &replaced {
            Some(o) if o.aside && same_content(o, &want) && o.blob == want.blob => {
                Stats::add(&self.stats.meta, 1);
                self.sink.event(Event::MetaUpdated {
                    path: rel.to_path_buf(),
                });
            }
            Some(o) => {
                if want.kind != super::record::EntryKind::Dir {
                    self.copied(rel, want.size);
                }
                // A folder's time moves with every change inside it: not
                // worth a version of its own.
                if want.kind != super::record::EntryKind::Dir
                    && (o.aside || !same_content(o, &want))
                {
                    self.retire(
                        vec![(rel.to_path_buf(), o.clone())],
                        false,
                        VersionReason::Modified,
                    );
                }
            }
            None => {
                if want.kind != super::record::EntryKind::Dir {
                    self.copied(rel, want.size);
                }
            }
        }
    }

    /// Copies SRC's file `name` (at `rel`) into a new blob, complete: a
    /// file that changed during the copy is copied again. The blob's number
    /// and the metadata copied; `None` when it failed (reported).
    fn copy_blob(&self, src: &DirHandle, name: &OsStr, rel: &Path) -> Option<(u64, Meta)> {
        let (store, rec) = (self.store?, self.record?);
        let fail = |what: &'static str, e: &io::Error| {
            if !fsops::changed_under_us(e) {
                self.failed(EntryError::new(self.src_path(rel), what, e));
            }
            None
        };
        for _ in 0..COPY_TRIES {
            let from = match src.open_read(name) {
                Ok(f) => f,
                Err(e) => return fail("read", &e),
            };
            let before = match fsops::file_meta(&from) {
                Ok(m) => m,
                Err(e) => return fail("read", &e),
            };
            let (tmp, to) = match store.temp_file() {
                Ok(t) => t,
                Err(e) => {
                    self.failed(EntryError::new(
                        self.dst_root.join(super::filter::RESERVED).join("tmp"),
                        "make a temp file",
                        &e,
                    ));
                    return None;
                }
            };
            let written = content::write(&from, &to, &before, content::Owner::Leave, None);
            drop(to);
            let after = fsops::file_meta(&from).ok();
            match written {
                Ok(w)
                    if w.bytes == before.size
                        && after.is_some_and(|a| a.unchanged_since(&before)) =>
                {
                    let n = rec.lock().ok()?.new_blob();
                    if let Err(e) = store.tmp().rename_to(&tmp, store.aside(), &blob_name(n)) {
                        store.discard(&tmp);
                        self.failed(EntryError::new(
                            self.dst_root
                                .join(super::filter::RESERVED)
                                .join(super::record::ASIDE_DIR)
                                .join(blob_name(n)),
                            "store",
                            &e,
                        ));
                        return None;
                    }
                    return Some((n, before));
                }
                Ok(_) => store.discard(&tmp),
                Err(e) => {
                    store.discard(&tmp);
                    return fail("copy", &e);
                }
            }
        }
        self.failed(EntryError::msg(
            self.src_path(rel),
            "copy",
            "it kept changing while it was copied; it is tried again on the next pass",
        ));
        None
    }

    /// Entries that no longer say what SRC holds (`versioned`: what DST
    /// held of them is versioned in this batch): with versions on, what
    /// they held is kept as a version (an aside file's blob moves into the
    /// batch's time folder; a line in `aside.log` says what it was);
    /// without, blobs are removed.
    fn retire(&self, gone: Vec<(PathBuf, Entry)>, versioned: bool, reason: VersionReason) {
        let Some(store) = self.store else { return };
        if gone.is_empty() {
            return;
        }
        let mut lines = Vec::new();
        for (rel, e) in gone {
            if !self.versions_on {
                if let Some(b) = e.blob {
                    let _ = store.aside().unlink(&blob_name(b));
                }
                continue;
            }
            let at = if let Some(b) = e.blob {
                match store.versions.keep_blob(store.aside(), &blob_name(b)) {
                    Ok(at) => Some(at),
                    Err(err) if err.kind() == io::ErrorKind::NotFound => None,
                    Err(err) => {
                        self.failed(EntryError::new(
                            self.dst_path(&rel),
                            "keep the recorded file as a version",
                            &err,
                        ));
                        None
                    }
                }
            } else if e.aside || versioned {
                store.versions.batch_stamp().ok()
            } else {
                // An overlay: only worth a line next to a version of its
                // file, if this batch kept one.
                store.versions.batch_stamp_if_used()
            };
            if let Some(at) = at {
                lines.extend(
                    Kept {
                        at,
                        path: Bytes::of(rel.as_os_str()),
                        reason: Some(reason.as_str().to_string()),
                        entry: e,
                    }
                    .line(),
                );
            }
        }
        if !lines.is_empty()
            && let Err(e) = store.log_aside(&lines)
        {
            log::warn!(
                "{}: cannot write {}: {}",
                show(self.dst_root),
                super::record::ASIDE_LOG,
                super::error::reason(&e)
            );
        }
    }

    /// Tells, once per pair, that the drive cannot hold everything and
    /// that it is recorded (a note, not an error).
    fn tell_recorded(&self, rel: &Path) {
        if !self.record_told.swap(true, Ordering::Relaxed) {
            log::warn!(
                "{}: the backup drive cannot hold everything the source has (permissions, owners, symlinks, nanosecond or early times, extended attributes and ACLs, some names; first seen on {}); mirrortray records it in {} so that a restore gives it back exactly",
                show(self.dst_root),
                show(&self.src_path(rel)),
                show(
                    &self
                        .dst_root
                        .join(super::filter::RESERVED)
                        .join(super::record::RECORD_FILE)
                ),
            );
        }
    }
}

/// For [`Ctx::note`] where SRC holds nothing: no attributes to read.
pub(crate) fn no_xattrs() -> io::Result<Xattrs> {
    Ok(Xattrs::default())
}

/// Whether two entries hold the same content (kind, size, mtime, target):
/// the same file, perhaps with another mode.
fn same_content(a: &Entry, b: &Entry) -> bool {
    a.kind == b.kind && a.size == b.size && a.mtime == b.mtime && a.target == b.target
}
