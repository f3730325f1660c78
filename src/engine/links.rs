//! links: hard links inside SRC stay hard links in DST (`rsync -H`).
//!
//! Model: during one pass, the first name of a SRC file with several links
//! that the walk meets is its *leader*; DST's copy of the leader is the one
//! inode every other name links to. A later name of the same SRC file is
//! linked to DST's leader instead of copied, but only when DST's leader
//! holds SRC's content now (same size and mtime, the rule every unchanged
//! file is judged by): a leader whose copy is still being made, or stale, is
//! never linked. Such a name is copied as any file and listed; at the end of
//! the pass ([`Ctx::link_pending`]) it is linked, once the leader is in place.
//!
//! What DST held at a name is kept as a version as for any copy, except a
//! separate copy of the very same content (size and mtime), which the link
//! replaces at no loss (as when a backup made before links were kept is
//! brought up to date).
//!
//! Live, only the names a batch touches are seen, so a link made while
//! watching is a copy until the next whole-pair pass (start, "Back up now",
//! the drift check) links it.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::ctx::Ctx;
use super::error::EntryError;
use super::event::VersionReason;
use super::fsops::{DirHandle, Kind, Meta};

/// One pass's SRC files with several names: (device, inode) → leader.
#[derive(Debug, Default)]
pub(crate) struct Links {
    leaders: Mutex<HashMap<(u64, u64), PathBuf>>,
    /// Names copied because their leader was not in place yet.
    later: Mutex<Vec<PathBuf>>,
}

/// What to do with a name of a SRC file with several links.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Linked {
    /// It is the leader (or links are not kept): mirror it as any file.
    Mirror,
    /// DST already has it as a link to the leader's inode.
    Already,
    /// Linked now.
    Made,
    /// The leader is not in place: mirror it as any file (linked later).
    Later,
}

impl Links {
    /// The leader of `sm`'s file, claiming it for `rel` when it has none.
    fn leader(&self, rel: &Path, sm: &Meta) -> Option<PathBuf> {
        let mut l = self.leaders.lock().ok()?;
        let leader = l
            .entry((sm.dev, sm.ino))
            .or_insert_with(|| rel.to_path_buf());
        (leader != rel).then(|| leader.clone())
    }
}

impl Ctx<'_> {
    /// For a SRC file with several names at `rel` (in `dst`): links it to
    /// its leader's copy when DST's leader holds SRC's content.
    pub(crate) fn link_name(
        &self,
        dst: Option<&DirHandle>,
        rel: &Path,
        sm: &Meta,
        dm: Option<&Meta>,
    ) -> Linked {
        if sm.kind != Kind::File || sm.nlink < 2 {
            return Linked::Mirror;
        }
        let Some(leader) = self.links.leader(rel, sm) else {
            return Linked::Mirror;
        };
        let (Some(dst), Some(_), Some(root)) = (dst, self.store, self.dst_dir) else {
            return Linked::Mirror;
        };
        match self.link_to_leader(root, dst, rel, &leader, sm, dm) {
            Ok(Some(l)) => l,
            Ok(None) => {
                if let Ok(mut later) = self.links.later.lock() {
                    later.push(rel.to_path_buf());
                }
                Linked::Later
            }
            Err(e) => {
                log::debug!(
                    "{}: not linked to {}: {e}",
                    super::error::show(&self.dst_path(rel)),
                    super::error::show(&self.dst_path(&leader))
                );
                Linked::Later
            }
        }
    }

    /// `Ok(None)`: DST's leader is missing or does not hold SRC's content.
    fn link_to_leader(
        &self,
        root: &DirHandle,
        dst: &DirHandle,
        rel: &Path,
        leader: &Path,
        sm: &Meta,
        dm: Option<&Meta>,
    ) -> io::Result<Option<Linked>> {
        let (Some(store), Some(name), Some(leader_name)) =
            (self.store, rel.file_name(), leader.file_name())
        else {
            return Ok(None);
        };
        let leader_dir = match root.open_path(leader.parent().unwrap_or(Path::new(""))) {
            Ok(d) => d,
            Err(e) if super::fsops::changed_under_us(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(lm) = leader_dir.stat_opt(leader_name)? else {
            return Ok(None);
        };
        if !self.holds(sm, &lm) {
            return Ok(None);
        }
        if dm.is_some_and(|d| d.dev == lm.dev && d.ino == lm.ino) {
            return Ok(Some(Linked::Already));
        }
        let tmp = store.temp_name();
        leader_dir.link_to(leader_name, store.tmp(), &tmp)?;
        // Linked what was checked? The leader may have been replaced since.
        let same = store
            .tmp()
            .stat_opt(&tmp)?
            .is_some_and(|t| t.ino == lm.ino && self.holds(sm, &t));
        if !same {
            store.discard(&tmp);
            return Ok(None);
        }
        let r = match dm {
            // The same content, a separate copy: nothing is lost.
            Some(d) if d.kind == Kind::File && self.holds(sm, d) => {
                dst.writable(|| store.tmp().rename_to(&tmp, dst, name))
            }
            Some(d) => self.place_linked(dst, rel, &tmp, d.kind),
            None => dst.writable(|| store.tmp().rename_noreplace(&tmp, dst, name)),
        };
        if let Err(e) = r {
            store.discard(&tmp);
            return Err(e);
        }
        if let Some(o) = self.origins {
            o.record(rel, (sm.dev, sm.ino));
        }
        self.copied(rel, 0);
        Ok(Some(Linked::Made))
    }

    fn place_linked(&self, dst: &DirHandle, rel: &Path, tmp: &OsStr, kind: Kind) -> io::Result<()> {
        let (Some(store), Some(name)) = (self.store, rel.file_name()) else {
            return Ok(());
        };
        let reason = VersionReason::Modified;
        if !(matches!(kind, Kind::File | Kind::Symlink)
            && store.versions.keep_linked(dst, rel, kind, reason)?)
        {
            store.versions.keep(dst, rel, kind, reason)?;
        }
        dst.writable(|| store.tmp().rename_to(tmp, dst, name))?;
        if store.versions.enabled() {
            self.versioned(rel, reason);
        }
        Ok(())
    }

    /// Whether DST's file `d` holds the content of SRC's `s`.
    fn holds(&self, s: &Meta, d: &Meta) -> bool {
        d.kind == Kind::File && d.size == s.size && self.keeps.times.same(s.mtime, d.mtime)
    }

    /// Links the names that were copied because their leader was not in
    /// place yet (end of a pass; `src` and `root` are SRC's and DST's roots).
    pub(crate) fn link_pending(&self, src: &DirHandle) {
        let later = match self.links.later.lock() {
            Ok(mut l) => std::mem::take(&mut *l),
            Err(_) => return,
        };
        let Some(root) = self.dst_dir else { return };
        for rel in later {
            if self.halted() {
                return;
            }
            let (Some(name), parent) = (rel.file_name(), rel.parent().unwrap_or(Path::new("")))
            else {
                continue;
            };
            let sm = match src.open_path(parent).and_then(|d| d.stat_opt(name)) {
                Ok(Some(m)) => m,
                _ => continue,
            };
            let leader = match self.links.leaders.lock() {
                Ok(l) => l.get(&(sm.dev, sm.ino)).cloned(),
                Err(_) => None,
            };
            let Some(leader) = leader.filter(|l| *l != rel) else {
                continue;
            };
            let Ok(dst) = root.open_path(parent) else {
                continue;
            };
            let dm = match dst.stat_opt(name) {
                Ok(m) => m,
                Err(e) => {
                    self.dst_failed(&rel, "read", &e);
                    continue;
                }
            };
            if let Err(e) = self.link_to_leader(root, &dst, &rel, &leader, &sm, dm.as_ref()) {
                self.failed(EntryError::new(self.dst_path(&rel), "make hard link", &e));
            }
        }
    }
}
