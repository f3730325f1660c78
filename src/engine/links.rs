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
//! Live, a change reaches the watcher under the one name it was made
//! through, though every name of the file changed. So the pair remembers
//! the names it has seen of each such file ([`Names`]), and a batch that
//! meets one looks at the others too (linking them again). A file with more
//! names than the pair has seen (`ln` while watching: the kernel tells the
//! new name's folder only) asks for a full pass, which meets every name.
//! Until then the new name is a copy. A name made while a full pass runs
//! may be missed by its walk: a file changed since the pass began settles
//! nothing, so a change through it asks again.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::copy::place;
use super::ctx::Ctx;
use super::error::EntryError;
use super::event::VersionReason;
use super::fsops::{DirHandle, Kind, Meta};

/// One pass's SRC files with several names: (device, inode) → leader.
#[derive(Debug)]
pub(crate) struct Links {
    leaders: Mutex<HashMap<(u64, u64), PathBuf>>,
    /// Names copied because their leader was not in place yet.
    later: Mutex<Vec<PathBuf>>,
    /// Files with several names met in this pass, and how many names
    /// each has.
    met: Mutex<HashMap<(u64, u64), u64>>,
    /// When the pass began, and the files met whose names may have changed
    /// since (changed after it began): a name made while the walk was
    /// elsewhere is not met by it, so their count settles nothing.
    began: std::time::SystemTime,
    moving: Mutex<std::collections::HashSet<(u64, u64)>>,
}

impl Default for Links {
    fn default() -> Links {
        Links {
            leaders: Mutex::default(),
            later: Mutex::default(),
            met: Mutex::default(),
            began: std::time::SystemTime::now(),
            moving: Mutex::default(),
        }
    }
}

/// File times come from the kernel's coarse clock, which lags the one the
/// pass's start is read from by up to a tick: what changed within this of
/// the start may have changed after it.
const CLOCK_SLACK: std::time::Duration = std::time::Duration::from_millis(50);

/// The names a pair has seen of each SRC file with several (kept across
/// passes and moved along by the renames a batch applies; a full pass
/// starts it afresh).
#[derive(Debug, Default)]
pub struct Names(
    Mutex<HashMap<(u64, u64), std::collections::BTreeSet<PathBuf>>>,
    Settled,
);

/// How many names each such file had outside SRC when the last full pass
/// met all those inside: names the pair has not seen and need not look for.
/// (Counted, not taken from the file's link count then: an inode number is
/// given to a new file once freed, and the new file's names are all to be
/// found.)
type Settled = Mutex<HashMap<(u64, u64), u64>>;

impl Names {
    pub(crate) fn clear(&self) {
        if let Ok(mut n) = self.0.lock() {
            n.clear();
        }
    }

    /// The end of a full pass: every name in SRC was met, except those of
    /// files changed while it ran (they keep what was settled before).
    pub(crate) fn settle(&self, links: &Links) {
        if let (Ok(met), Ok(moving), Ok(names), Ok(mut settled)) = (
            links.met.lock(),
            links.moving.lock(),
            self.0.lock(),
            self.1.lock(),
        ) {
            let before = std::mem::take(&mut *settled);
            *settled = met
                .iter()
                .filter_map(|(id, nlink)| {
                    if moving.contains(id) {
                        return before.get(id).map(|o| (*id, *o));
                    }
                    let inside = names.get(id).map_or(0, |n| n.len() as u64);
                    let outside = nlink.saturating_sub(inside);
                    (outside > 0).then_some((*id, outside))
                })
                .collect();
        }
    }

    /// Names of file `id` outside SRC (see [`Settled`]).
    fn outside(&self, id: (u64, u64)) -> u64 {
        self.1
            .lock()
            .map(|s| s.get(&id).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    fn saw(&self, id: (u64, u64), rel: &Path) {
        if let Ok(mut n) = self.0.lock() {
            n.entry(id).or_default().insert(rel.to_path_buf());
        }
    }

    fn of(&self, id: (u64, u64)) -> Vec<PathBuf> {
        self.0
            .lock()
            .map(|n| {
                n.get(&id)
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }

    /// SRC renamed `from` (a file or a folder) to `to`: the names seen
    /// under it now live under `to` (else a change through another name
    /// would look for this one where it no longer is).
    pub(crate) fn renamed(&self, from: &Path, to: &Path) {
        if let Ok(mut n) = self.0.lock() {
            for names in n.values_mut() {
                let moved: Vec<PathBuf> = names
                    .iter()
                    .filter(|p| p.starts_with(from))
                    .cloned()
                    .collect();
                for p in moved {
                    names.remove(&p);
                    if let Ok(rest) = p.strip_prefix(from) {
                        names.insert(to.join(rest));
                    }
                }
            }
        }
    }

    /// The files one of whose names is in `rels`.
    fn naming(&self, rels: &std::collections::HashSet<&Path>) -> Vec<(u64, u64)> {
        self.0
            .lock()
            .map(|n| {
                n.iter()
                    .filter(|(_, names)| names.iter().any(|p| rels.contains(p.as_path())))
                    .map(|(id, _)| *id)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn forget(&self, id: (u64, u64), rel: &Path) {
        if let Ok(mut n) = self.0.lock()
            && let Some(s) = n.get_mut(&id)
        {
            s.remove(rel);
            if s.is_empty() {
                n.remove(&id);
                // Its inode may be freed, and its number given to a new file.
                if let Ok(mut settled) = self.1.lock() {
                    settled.remove(&id);
                }
            }
        }
    }
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
    fn changed_since_began(&self, m: &Meta) -> bool {
        let Ok(sec) = u64::try_from(m.ctime.sec) else {
            return false;
        };
        let ctime = std::time::UNIX_EPOCH + std::time::Duration::new(sec, m.ctime.nsec);
        ctime + CLOCK_SLACK >= self.began
    }

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
        // Names are followed on a drive without hard links too: there each
        // is a copy, and a change made through one name is the others'.
        if let Some(names) = self.names {
            names.saw((sm.dev, sm.ino), rel);
        }
        if let Ok(mut met) = self.links.met.lock() {
            met.insert((sm.dev, sm.ino), sm.nlink);
        }
        if self.links.changed_since_began(sm)
            && let Ok(mut moving) = self.links.moving.lock()
        {
            moving.insert((sm.dev, sm.ino));
        }
        if !self.keeps.hardlinks {
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
            _ => place(
                self,
                dst,
                rel,
                &tmp,
                dm.map(|d| (d.kind, VersionReason::Modified)),
            ),
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

    /// Whether DST's file `d` holds the content of SRC's `s`.
    fn holds(&self, s: &Meta, d: &Meta) -> bool {
        d.kind == Kind::File && d.size == s.size && self.keeps.times.same(s.mtime, d.mtime)
    }

    /// Links the names that were copied because their leader was not in
    /// place yet (end of a pass; `src` and `root` are SRC's and DST's roots).
    ///
    /// Returns the folders it linked into: their times are to be put back.
    pub(crate) fn link_pending(&self, src: &DirHandle) -> Vec<PathBuf> {
        let later = match self.links.later.lock() {
            Ok(mut l) => std::mem::take(&mut *l),
            Err(_) => return Vec::new(),
        };
        let Some(root) = self.dst_dir else {
            return Vec::new();
        };
        let mut into = Vec::new();
        for rel in later {
            if self.halted() {
                break;
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
            into.push(parent.to_path_buf());
            if let Err(e) = self.link_to_leader(root, &dst, &rel, &leader, &sm, dm.as_ref()) {
                self.failed(EntryError::new(self.dst_path(&rel), "make hard link", &e));
            }
        }
        into
    }
}

impl Ctx<'_> {
    /// Live: the other names seen of the files with several names this
    /// batch met, or whose name it tried (a name already gone: written
    /// through, then unlinked), still naming them in SRC (each to be looked
    /// at: a change made through one name changed them all). The second
    /// value: some file has names the pair has not seen.
    pub(crate) fn other_names(&self, src: &DirHandle, tried: &[PathBuf]) -> (Vec<PathBuf>, bool) {
        let Some(names) = self.names else {
            return (Vec::new(), false);
        };
        let mut met = match self.links.met.lock() {
            Ok(m) => m.clone(),
            Err(_) => return (Vec::new(), false),
        };
        let tried_set: std::collections::HashSet<&Path> =
            tried.iter().map(PathBuf::as_path).collect();
        for id in names.naming(&tried_set) {
            // Its count of names is not known here: none are taken as unseen.
            met.entry(id).or_insert(0);
        }
        let mut look = Vec::new();
        let mut unknown = false;
        for (id, nlink) in met {
            let mut known = 0;
            for rel in names.of(id) {
                let (Some(name), parent) = (rel.file_name(), rel.parent().unwrap_or(Path::new("")))
                else {
                    continue;
                };
                let here = src
                    .open_path(parent)
                    .and_then(|d| d.stat_opt(name))
                    .ok()
                    .flatten()
                    .is_some_and(|m| (m.dev, m.ino) == id);
                if !here {
                    names.forget(id, &rel);
                    continue;
                }
                known += 1;
                if !tried_set.contains(rel.as_path()) {
                    look.push(rel);
                }
            }
            unknown |= known + names.outside(id) < nlink;
        }
        (look, unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mix seeds 53 and 58 with links: a full pass had settled an inode
    /// number whose names were all in SRC; once freed, the number went to a
    /// new file, whose second name (`ln` live) was then never looked for.
    #[test]
    fn only_names_outside_src_are_settled_and_a_freed_inode_forgets_them() {
        let (names, links) = (Names::default(), Links::default());
        let (inside, shared) = ((1, 7), (1, 8));
        // A full pass met both names of `inside`, and one of `shared`'s
        // three (two are outside SRC).
        for (id, nlink) in [(inside, 2), (shared, 3)] {
            links.met.lock().unwrap().insert(id, nlink);
        }
        names.saw(inside, Path::new("a"));
        names.saw(inside, Path::new("d/b"));
        names.saw(shared, Path::new("s"));
        names.settle(&links);
        assert_eq!(names.outside(inside), 0);
        assert_eq!(names.outside(shared), 2);
        // `s` is gone from SRC: its inode may be freed and its number reused.
        names.forget(shared, Path::new("s"));
        assert_eq!(names.outside(shared), 0);
        assert!(names.of(shared).is_empty());
    }

    /// Mix seed 206 with links: `ln A B` while a full pass ran, after its
    /// walk had passed A (one name then). It met B alone, and took A for a
    /// name outside SRC; a write through B later never reached A's copy.
    #[test]
    fn a_file_changed_while_a_full_pass_ran_settles_nothing() {
        let names = Names::default();
        let (id, other) = ((1, 9), (1, 10));
        let first = Links::default();
        first.met.lock().unwrap().insert(other, 2);
        names.saw(other, Path::new("o"));
        names.settle(&first);
        assert_eq!(names.outside(other), 1);

        let pass = Links::default();
        for i in [id, other] {
            pass.met.lock().unwrap().insert(i, 2);
            pass.moving.lock().unwrap().insert(i);
        }
        names.clear();
        names.saw(id, Path::new("b"));
        names.settle(&pass);
        assert_eq!(names.outside(id), 0, "B's other name is still to be found");
        assert_eq!(names.outside(other), 1, "what was settled before stays");
    }
}
