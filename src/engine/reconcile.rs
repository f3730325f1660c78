//! reconcile: makes DST's tree equal to SRC's, walking both at once.
//!
//! Model: for each folder, list SRC and DST, `lstat` each name on both sides
//! through directory handles (no path is ever resolved from the root again),
//! ask [`plan::decide`] what to do, do it, and go into sub-folders in
//! parallel (rayon: the two cores scan and copy together). A folder's own
//! mode and mtime are set after its content, since adding entries changes
//! them. Nothing is read twice and nothing is buffered but one folder's names.
//!
//! Entries DST holds and SRC does not ("extras") are collected, not removed
//! on sight: after the walk the mass-deletion guard (safety rule 6) looks at
//! how many there are against DST's size, and holds them all, or versions
//! them (one rename each, whole folders included).
//!
//! A folder that cannot be read on the SRC side is reported and its DST
//! counterpart left as it is: unreadable is never taken to mean empty.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use super::aside::no_xattrs;
use super::copy::copy_entry;
use super::ctx::{Ctx, Extra};
use super::error::EntryError;
use super::event::{Event, Stats, VersionReason};
use super::filter::{RESERVED, is_file_system_own, join};
use super::fsops::{DirHandle, Kind, Meta};
use super::keeps::Unheld;
use super::links::Linked;
use super::plan::{self, Step};
use super::xattrs::{self, SetError};

/// A folder to go into (see `Ctx::enter`).
pub(crate) struct Into {
    rel: PathBuf,
    sm: Meta,
    dm: Option<Meta>,
    /// DST lacks the folder.
    create: bool,
    /// DST holds something else there, kept as a version first.
    replace: Option<VersionReason>,
}

/// A folder being reconciled: its handles, and how many pieces of its work
/// (its own listing, each sub-folder) are not done yet.
/// The SRC folders above a subtree's top: path and (device, inode).
type Outer = Vec<(PathBuf, (u64, u64))>;

struct Node {
    src: DirHandle,
    dst: Option<DirHandle>,
    rel: PathBuf,
    meta: Meta,
    pending: AtomicUsize,
    parent: Option<Arc<Node>>,
    /// Only at the top of a subtree walk: the folders above it.
    outer: Outer,
}

impl<'a> Ctx<'a> {
    /// Reconciles one name: `src` and `dst` are the folders holding it.
    /// `dst_listed` is whether DST's listing holds the name (if not, DST's
    /// stat is skipped).
    pub fn sync_entry(
        &self,
        src: &DirHandle,
        dst: Option<&DirHandle>,
        rel: &Path,
        dst_listed: bool,
    ) {
        if let Some(into) = self.look_at(src, dst, rel, dst_listed) {
            // The folders above `rel` are not in the walk's chain of nodes:
            // the loop check gets them from the handle, one `..` at a time.
            let outer = outer_ids(src, rel);
            // The whole subtree, in tasks; done when this returns.
            rayon::scope(|scope| self.enter(scope, src, dst, into, Err(outer)));
        }
    }

    /// Reconciles one name, except a folder to go into: that is returned
    /// (the caller goes into it, as a task of its own).
    fn look_at(
        &self,
        src: &DirHandle,
        dst: Option<&DirHandle>,
        rel: &Path,
        dst_listed: bool,
    ) -> Option<Into> {
        if self.halted() {
            return None;
        }
        let name = rel.file_name()?;
        let sm = match src.stat_opt(name) {
            Ok(m) => m,
            Err(e) => {
                self.failed(EntryError::new(self.src_path(rel), "read", &e));
                return None;
            }
        };
        let mut dm = match (dst, dst_listed) {
            (Some(d), true) => match d.stat_opt(name) {
                Ok(m) => m,
                Err(e) => {
                    self.dst_failed(rel, "read", &e);
                    return None;
                }
            },
            _ => None,
        };
        // A case-blind drive finds `Report` for `report`: only an entry
        // listed under this very name is this name's (else deleting
        // `report` in SRC would take `Report` away).
        if sm.is_none()
            && dm.is_some()
            && self.keeps.case_blind
            && let Some(d) = dst
            && let Ok(list) = d.list()
            && !list.iter().any(|e| e.name == name)
        {
            dm = None;
        }
        if let Some(s) = &sm {
            if self.filter.ignores(rel, s.kind == Kind::Dir) {
                self.note(rel, None, None, no_xattrs);
                return None;
            }
            if s.kind == Kind::File && self.deferred.contains(rel) {
                return None;
            }
        }
        self.scanned(1);
        if let Some(s) = &sm {
            let why = self.unheld_name(src, rel, name).or_else(|| {
                (s.kind == Kind::Symlink && !self.keeps.symlinks).then_some(Unheld::Symlink)
            });
            if let Some(why) = why {
                self.hold_aside(src, rel, s, why);
                // Whatever DST holds there is from before: stale.
                if let Some(d) = dm
                    && why == Unheld::Symlink
                {
                    self.extra(rel, d.kind);
                }
                return None;
            }
        }
        self.note(rel, sm.as_ref(), dm.as_ref(), || xattrs::of_name(src, name));
        if let Some(s) = &sm
            && matches!(
                self.link_name(dst, rel, s, dm.as_ref()),
                Linked::Already | Linked::Made
            )
        {
            return None;
        }
        let links_equal = match (&sm, &dm, dst) {
            (Some(s), Some(d), Some(dd)) if s.kind == Kind::Symlink && d.kind == Kind::Symlink => {
                match (src.read_link(name), dd.read_link(name)) {
                    (Ok(a), Ok(b)) => a == b,
                    _ => false,
                }
            }
            _ => false,
        };
        let step = plan::decide(sm.as_ref(), dm.as_ref(), links_equal, &self.keeps);
        match step {
            Step::Keep | Step::FixMeta => {
                let (Some(s), Some(d)) = (&sm, dst) else {
                    return None;
                };
                // Extended attributes and ACLs change no time: compared
                // here, on every look (as rsync -X does). Not only where
                // SRC's ctime is newer than DST's: DST's moves with every
                // rename replayed and version linked, so a change made
                // before those would be missed (the mix found it).
                let attrs = s.kind == Kind::File
                    && self.keeps.xattrs
                    && self.fix_file_xattrs(src, d, rel, name);
                if step == Step::FixMeta && self.store.is_some() {
                    let r = if dm.as_ref().is_none_or(|d| self.keeps.same_owner(s, d)) {
                        Ok(())
                    } else {
                        d.set_owner(name, s.uid, s.gid)
                    };
                    let r = r.and_then(|()| {
                        if s.kind == Kind::Symlink {
                            d.set_times(name, s.atime, s.mtime)
                        } else {
                            d.set_mode(name, s.mode)
                        }
                    });
                    if let Err(e) = r {
                        self.failed(EntryError::new(self.dst_path(rel), "set permissions", &e));
                        return None;
                    }
                }
                if step == Step::FixMeta || attrs {
                    Stats::add(&self.stats.meta, 1);
                    self.sink.event(Event::MetaUpdated {
                        path: rel.to_path_buf(),
                    });
                }
            }
            Step::Copy { replace } => {
                let Some(s) = &sm else { return None };
                let existing = replace.and_then(|r| dm.map(|d| (d.kind, r)));
                copy_entry(self, src, dst, rel, s, existing);
            }
            Step::Descend { create, replace } => {
                return sm.map(|s| Into {
                    rel: rel.to_path_buf(),
                    sm: s,
                    dm,
                    create,
                    replace,
                });
            }
            Step::Remove => {
                if let Some(d) = dm {
                    self.extra(rel, d.kind);
                }
            }
            Step::Unheld(why) => {
                if let Some(s) = &sm {
                    self.hold_aside(src, rel, s, why);
                }
                // Whatever DST holds there is from before: stale.
                if let Some(d) = dm {
                    self.extra(rel, d.kind);
                }
            }
            Step::Skip => {
                let noun = sm.map(|m| m.special_noun()).unwrap_or("special file");
                self.skipped(rel, format!("{noun}: not mirrored"), false);
                if let Some(d) = dm {
                    self.extra(rel, d.kind);
                }
            }
        }
        None
    }

    /// Reconciles the whole tree under the roots `src` and `dst` (the root's
    /// own mode and times are not mirrored).
    pub fn sync_tree(&self, src: &DirHandle, dst: Option<&DirHandle>, src_meta: &Meta) {
        let (Ok(s), d) = (src.try_clone(), dst.map(DirHandle::try_clone)) else {
            return self.failed(EntryError::msg(
                self.src_root,
                "read folder",
                "cannot open it again",
            ));
        };
        let d = match d {
            Some(Ok(d)) => Some(d),
            Some(Err(e)) => return self.dst_failed(Path::new(""), "open folder", &e),
            None => None,
        };
        let root = Arc::new(Node {
            src: s,
            dst: d,
            rel: PathBuf::new(),
            meta: *src_meta,
            pending: AtomicUsize::new(1),
            parent: None,
            outer: Vec::new(),
        });
        rayon::scope(|scope| self.process(scope, root));
    }

    /// Goes into the folder `into` names (`src` and `dst` hold it): versions
    /// what DST held there if it was not a folder, makes DST's folder, then
    /// reconciles its content as a task of `scope`, each sub-folder a task
    /// of its own: the depth of a tree is never the depth of the stack, and
    /// the cores share the work.
    /// Why the SRC folder `sm` must not be entered: it is the backup
    /// folder, or a folder the walk is already inside of, reached again
    /// through a (bind) mount. Going in would never end.
    fn loop_at(&self, sm: &Meta, parent: Option<&Node>, outer: &Outer) -> Option<String> {
        let id = (sm.dev, sm.ino);
        if self.dst_id == Some(id) {
            return Some(
                "this is the backup folder itself, mounted again inside the source: not backed up (it would hold itself)".into(),
            );
        }
        let again = |rel: &Path| {
            format!(
                "this is {} again, mounted inside itself: not entered (it would never end)",
                super::error::show(&self.src_path(rel))
            )
        };
        let mut up = parent;
        let mut top_outer = outer;
        while let Some(n) = up {
            if (n.meta.dev, n.meta.ino) == id {
                return Some(again(&n.rel));
            }
            top_outer = &n.outer;
            up = n.parent.as_deref();
        }
        top_outer
            .iter()
            .find(|(_, i)| *i == id)
            .map(|(rel, _)| again(rel))
    }

    fn enter<'s>(
        &'s self,
        scope: &rayon::Scope<'s>,
        src: &DirHandle,
        dst: Option<&DirHandle>,
        into: Into,
        above: Result<Arc<Node>, Outer>,
    ) {
        // The top of a subtree has no node above it: the folders above it
        // come as ids, and stay with its node for the loop check below.
        let (parent, outer) = match above {
            Ok(p) => (Some(p), Vec::new()),
            Err(o) => (None, o),
        };
        let Into {
            rel,
            sm,
            dm,
            create,
            replace,
        } = into;
        let Some(name) = rel.file_name() else {
            return self.done(parent);
        };
        if self.halted() {
            return self.done(parent);
        }
        if let Some(why) = self.loop_at(&sm, parent.as_deref(), &outer) {
            self.skipped(&rel, why, true);
            return self.done(parent);
        }
        let src_sub = match src.open_dir(name) {
            Ok(d) => d,
            Err(e) if super::fsops::changed_under_us(&e) => return self.done(parent),
            Err(e) => {
                self.failed(EntryError::new(self.src_path(&rel), "read folder", &e));
                return self.done(parent);
            }
        };
        let mut dst_sub = None;
        if let (Some(d), Some(_)) = (dst, self.store) {
            if let (Some(reason), Some(old)) = (replace, dm)
                && !self.remove_entry(d, &rel, old.kind, reason)
            {
                return self.done(parent);
            }
            if create {
                match d.writable(|| d.mkdir(name, 0o700)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => {
                        self.dst_failed(&rel, "create folder", &e);
                        return self.done(parent);
                    }
                }
                Stats::add(&self.stats.dirs, 1);
                self.sink.event(Event::DirCreated { path: rel.clone() });
            }
            match d.open_dir(name) {
                Ok(h) => dst_sub = Some(h),
                Err(e) => {
                    self.dst_failed(&rel, "open folder", &e);
                    return self.done(parent);
                }
            }
        } else {
            if let (Some(reason), Some(_)) = (replace, dm) {
                self.removed(&rel, reason);
            }
            if create {
                Stats::add(&self.stats.dirs, 1);
                self.sink.event(Event::DirCreated { path: rel.clone() });
            } else if let Some(d) = dst {
                dst_sub = d.open_dir(name).ok();
            }
        }
        let node = Arc::new(Node {
            src: src_sub,
            dst: dst_sub,
            rel,
            meta: sm,
            pending: AtomicUsize::new(1),
            parent,
            outer,
        });
        self.process(scope, node);
    }

    /// Reconciles the content of a folder both sides hold: names only in
    /// DST become extras, files and links are done here (in parallel),
    /// sub-folders are spawned as tasks. The folder's own metadata is set
    /// when the last of them is done (see `done`).
    fn process<'s>(&'s self, scope: &rayon::Scope<'s>, node: Arc<Node>) {
        if self.halted() {
            return self.done(Some(node));
        }
        let rel = &node.rel;
        let at_root = rel.as_os_str().is_empty();
        // Below the root, the handles were just opened by `enter` and are
        // read once; the roots are long-lived (and read every reconcile).
        let list = |h: &DirHandle| if at_root { h.list() } else { h.list_fresh() };
        let src_list = match list(&node.src) {
            Ok(l) => l,
            // Deleted while being looked at: its parent's next look sees it gone.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return self.done(Some(node)),
            Err(e) => {
                self.failed(EntryError::new(self.src_path(rel), "read folder", &e));
                return self.done(Some(node));
            }
        };
        let mut dst_names: HashMap<OsString, Option<Kind>> = HashMap::new();
        if let Some(d) = &node.dst {
            match list(d) {
                Ok(l) => {
                    for e in l {
                        if at_root && e.name == RESERVED {
                            continue;
                        }
                        dst_names.insert(e.name, e.kind);
                    }
                }
                Err(e) => {
                    self.dst_failed(rel, "read folder", &e);
                    return self.done(Some(node));
                }
            }
        }
        self.dst_entries
            .fetch_add(dst_names.len() as u64, Ordering::Relaxed);
        let mut names: Vec<OsString> = Vec::with_capacity(src_list.len());
        for e in src_list {
            if at_root && e.name == RESERVED {
                self.skipped(
                    Path::new(RESERVED),
                    "the name .mirrortray at the top of the source is reserved for the backup's own folder (is the source itself a backup folder? back up its parent, or rename it)".into(),
                    true,
                );
                continue;
            }
            names.push(e.name);
        }
        let mut dirs: Vec<Into> = Vec::new();
        // Extras: in DST only.
        let src_names: std::collections::HashSet<&OsStr> =
            names.iter().map(OsString::as_os_str).collect();
        self.note_listing(rel, &src_names);
        for (name, kind) in &dst_names {
            if src_names.contains(name.as_os_str()) {
                continue;
            }
            let child = join(rel, name);
            let Some(d) = &node.dst else { continue };
            let kind = match kind {
                Some(k) => *k,
                None => match d.stat_opt(name) {
                    Ok(Some(m)) => m.kind,
                    _ => continue,
                },
            };
            if self.filter.ignores(&child, kind == Kind::Dir)
                || (at_root && is_file_system_own(name, kind))
            {
                continue;
            }
            // It may have appeared in SRC since the listing.
            if node.src.stat_opt(name).ok().flatten().is_some() {
                dirs.extend(self.look_at(&node.src, Some(d), &child, true));
                continue;
            }
            self.extra(&child, kind);
        }
        let work = |name: &OsString| {
            let child = join(rel, name);
            self.look_at(
                &node.src,
                node.dst.as_ref(),
                &child,
                dst_names.contains_key(name.as_os_str()),
            )
        };
        if names.len() > 1 {
            dirs.extend(names.par_iter().filter_map(work).collect::<Vec<_>>());
        } else {
            dirs.extend(names.iter().filter_map(work));
        }
        for into in dirs {
            node.pending.fetch_add(1, Ordering::AcqRel);
            let n = node.clone();
            scope.spawn(move |s| {
                let parent = n.clone();
                self.enter(s, &n.src, n.dst.as_ref(), into, Ok(parent));
            });
        }
        self.done(Some(node));
    }

    /// One piece of a folder's work is finished; when it was the last, the
    /// folder's own mode and times are set (after its content, since adding
    /// entries changes them) and its parent is told, up the tree (a loop,
    /// not a recursion).
    fn done(&self, node: Option<Arc<Node>>) {
        let mut cur = node;
        while let Some(n) = cur {
            if n.pending.fetch_sub(1, Ordering::AcqRel) != 1 {
                return;
            }
            if !n.rel.as_os_str().is_empty() && !self.halted() {
                self.fix_dir_meta(&n.src, n.dst.as_ref(), &n.rel, &n.meta);
            }
            cur = n.parent.clone();
        }
    }

    /// Sets a DST folder's attributes, mode and times to SRC's, after its
    /// content.
    pub fn fix_dir_meta(
        &self,
        src: &DirHandle,
        dst: Option<&DirHandle>,
        rel: &Path,
        src_meta: &Meta,
    ) {
        let Some(d) = dst else { return };
        if self.store.is_none() {
            return;
        }
        // The time set below is the one the record must give back.
        self.note(rel, Some(src_meta), None, || xattrs::of_fd(src));
        let dm = match d.meta() {
            Ok(m) => m,
            Err(e) => {
                self.dst_failed(rel, "read", &e);
                return;
            }
        };
        // Attributes first: an ACL set moves the mode's group bits.
        let attrs = if self.keeps.xattrs {
            (xattrs::of_fd(src), xattrs::of_fd(d))
        } else {
            (Ok(Default::default()), Ok(Default::default()))
        };
        match attrs {
            (Ok(want), Ok(have)) if want != have => match xattrs::apply(d, &want, &have) {
                Ok(()) => {}
                Err(SetError::Unsupported) => self.xattrs_dropped(rel),
                Err(SetError::Io(e)) => {
                    self.failed(EntryError::new(
                        self.dst_path(rel),
                        "set extended attributes",
                        &e,
                    ));
                }
            },
            (Err(e), _) => self.failed(EntryError::new(
                self.src_path(rel),
                "read extended attributes",
                &e,
            )),
            _ => {}
        }
        let dm = match d.meta() {
            Ok(m) => m,
            Err(_) => dm,
        };
        if !plan::dir_meta_differs(src_meta, &dm, &self.keeps) {
            return;
        }
        let owned = if self.keeps.same_owner(src_meta, &dm) {
            Ok(())
        } else {
            d.set_own_owner(src_meta.uid, src_meta.gid)
        };
        let r = owned
            .and_then(|()| d.set_own_mode(src_meta.mode))
            .and_then(|()| d.set_own_times(src_meta.atime, src_meta.mtime));
        if let Err(e) = r {
            self.failed(EntryError::new(
                self.dst_path(rel),
                "set permissions and times",
                &e,
            ));
        }
    }

    /// Makes the attributes of DST's file `name` SRC's (both exist, same
    /// content). Returns whether anything was set.
    fn fix_file_xattrs(&self, src: &DirHandle, dst: &DirHandle, rel: &Path, name: &OsStr) -> bool {
        let want = match xattrs::of_name(src, name) {
            Ok(x) => x,
            Err(e) if super::fsops::changed_under_us(&e) => return false,
            Err(e) => {
                self.failed(EntryError::new(
                    self.src_path(rel),
                    "read extended attributes",
                    &e,
                ));
                return false;
            }
        };
        let have = match xattrs::of_name(dst, name) {
            Ok(x) => x,
            Err(e) => {
                self.dst_failed(rel, "read extended attributes", &e);
                return false;
            }
        };
        if want == have || self.store.is_none() {
            return want != have;
        }
        let r = match dst.open_read(name) {
            Ok(f) => xattrs::apply(&f, &want, &have),
            Err(e) => Err(SetError::Io(e)),
        };
        match r {
            Ok(()) => true,
            Err(SetError::Unsupported) => {
                self.xattrs_dropped(rel);
                false
            }
            Err(SetError::Io(e)) => {
                self.failed(EntryError::new(
                    self.dst_path(rel),
                    "set extended attributes",
                    &e,
                ));
                false
            }
        }
    }

    /// Whether the backup drive cannot hold the name `name` (at `rel`, in
    /// SRC's folder `src`): refused, or the drive cannot tell it from a
    /// name before it in byte order that differs only in case.
    fn unheld_name(&self, src: &DirHandle, rel: &Path, name: &OsStr) -> Option<Unheld> {
        if self.keeps.refuses(name) {
            return Some(Unheld::Name);
        }
        let folded = self.keeps.folded(name)?;
        let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        let mut all = self.case_names.lock().ok()?;
        let names = match all.entry(parent) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let mut listed: Vec<OsString> =
                    src.list().ok()?.into_iter().map(|e| e.name).collect();
                listed.sort();
                let mut first: HashMap<String, OsString> = HashMap::new();
                for n in listed {
                    if let Some(f) = self.keeps.folded(&n) {
                        first.entry(f).or_insert(n);
                    }
                }
                v.insert(first)
            }
        };
        // A name made since the listing: the first of its kind, or later.
        let winner = names.entry(folded).or_insert_with(|| name.to_os_string());
        (winner.as_os_str() != name).then_some(Unheld::Case)
    }

    /// The topmost path of `rel` (itself included) whose name the drive
    /// cannot hold (see [`unheld_name`](Self::unheld_name)): everything
    /// under it is held in the record, and looked at from there. A
    /// case-blind drive would find the other name's folder at such a path.
    pub(crate) fn unheld_ancestor(&self, src: &DirHandle, rel: &Path) -> Option<PathBuf> {
        if !self.keeps.windows_names && !self.keeps.case_blind {
            return None;
        }
        let mut dir = src.try_clone().ok()?;
        let mut at = PathBuf::new();
        for c in rel.components() {
            let std::path::Component::Normal(name) = c else {
                return None;
            };
            at.push(name);
            if self.unheld_name(&dir, &at, name).is_some() {
                return Some(at);
            }
            dir = dir.open_dir(name).ok()?;
        }
        None
    }

    pub fn extra(&self, rel: &Path, kind: Kind) {
        if let Ok(mut x) = self.extras.lock() {
            x.push(Extra {
                rel: rel.to_path_buf(),
                kind,
            });
        }
    }

    pub fn take_extras(&self) -> Vec<Extra> {
        self.extras
            .lock()
            .map(|mut x| std::mem::take(&mut *x))
            .unwrap_or_default()
    }

    /// Entries under an extra folder, counted for the mass-deletion guard
    /// (names only, no stat).
    pub fn count_tree(&self, dst_root: &DirHandle, rel: &Path) -> u64 {
        let Ok(top) = dst_root.open_path(rel) else {
            return 0;
        };
        let mut n = 0;
        let mut stack = vec![top];
        while let Some(d) = stack.pop() {
            let Ok(list) = d.list() else { continue };
            n += list.len() as u64;
            for e in &list {
                if e.kind == Some(Kind::Dir)
                    && let Ok(sub) = d.open_dir(&e.name)
                {
                    stack.push(sub);
                }
            }
        }
        n
    }

    /// Moves the extras out of DST (versions), grouped by folder, then puts
    /// back each folder's mtime from SRC. An extra that SRC holds again by
    /// now is reconciled instead.
    pub fn remove_extras(&self, src_root: &DirHandle, dst_root: &DirHandle, extras: Vec<Extra>) {
        // An extra inside an extra folder goes with it (and removing both at
        // once, in parallel, would race).
        let dirs: std::collections::HashSet<PathBuf> = extras
            .iter()
            .filter(|x| x.kind == Kind::Dir)
            .map(|x| x.rel.clone())
            .collect();
        let mut by_parent: HashMap<PathBuf, Vec<Extra>> = HashMap::new();
        for x in extras {
            if x.rel.ancestors().skip(1).any(|a| dirs.contains(a)) {
                continue;
            }
            let parent = x.rel.parent().map(Path::to_path_buf).unwrap_or_default();
            by_parent.entry(parent).or_default().push(x);
        }
        let groups: Vec<(PathBuf, Vec<Extra>)> = by_parent.into_iter().collect();
        groups.par_iter().for_each(|(parent, xs)| {
            if self.halted() {
                return;
            }
            let src_dir = src_root.open_path(parent).ok();
            let dst_dir = match dst_root.open_path(parent) {
                Ok(d) => d,
                // No longer a folder in DST (replaced earlier in this batch,
                // its content kept with it): nothing left to remove.
                Err(e) if super::fsops::changed_under_us(&e) => return,
                Err(e) => {
                    self.dst_failed(parent, "open folder", &e);
                    return;
                }
            };
            for x in xs {
                let name = x.rel.file_name().unwrap_or_default();
                let in_src = src_dir
                    .as_ref()
                    .and_then(|s| s.stat_opt(name).ok().flatten())
                    .filter(|m| m.kind != Kind::Special);
                // A symlink the drive cannot hold is in the record: what
                // DST has at its name is from before (links an older
                // mirrortray made on sshfs), not a race with SRC.
                let recorded_link =
                    in_src.is_some_and(|m| m.kind == Kind::Symlink && !self.keeps.symlinks);
                if in_src.is_some() && !recorded_link {
                    if let Some(s) = &src_dir {
                        self.sync_entry(s, Some(&dst_dir), &x.rel, true);
                    }
                    continue;
                }
                self.remove_entry(&dst_dir, &x.rel, x.kind, VersionReason::Deleted);
            }
            if !parent.as_os_str().is_empty()
                && let Some(s) = &src_dir
                && let Ok(sm) = s.meta()
            {
                self.fix_dir_meta(s, Some(&dst_dir), parent, &sm);
            }
        });
    }
}

/// The (device, inode) of each SRC folder above `rel`, from `parent` (the
/// folder holding `rel`) up to SRC's root, each with its relative path.
/// Through `..`: a mount's root leads back to where it is mounted, as paths
/// do.
fn outer_ids(parent: &DirHandle, rel: &Path) -> Outer {
    let mut out = Vec::new();
    let Ok(mut here) = parent.try_clone() else {
        return out;
    };
    let mut at = rel.parent().map(Path::to_path_buf);
    while let Some(p) = at {
        let Ok(m) = here.meta() else { break };
        out.push((p.clone(), (m.dev, m.ino)));
        if p.as_os_str().is_empty() {
            break;
        }
        match here.open_dir(OsStr::new("..")) {
            Ok(h) => here = h,
            Err(_) => break,
        }
        at = p.parent().map(Path::to_path_buf);
    }
    out
}
