//! restore: puts a tree back as the mirror held it at some time (see
//! `history.rs` for what "held at T" means).
//!
//! Model: [`plan`] compares the tree at `T` with the destination (SRC, or a
//! folder the user gave) and decides per entry: create, replace, leave as it
//! is (already the same), or refuse (a folder where a file was, or the
//! other way round: never removed to make room). [`apply`] then writes.
//!
//! Promises kept here:
//! - Nothing is written outside the destination root: every write goes
//!   through no-follow directory handles opened from it, so a symlink in
//!   the destination is replaced, never followed (a symlinked folder on the
//!   way is refused).
//! - A file is never half restored: its content, mode and times are written
//!   to an unnamed file in the target's folder (`O_TMPFILE` where the system
//!   has it, else a hidden temp name), which is then linked or renamed over
//!   the target. A watcher of the destination sees one complete file appear.
//! - Names that were one file (hard links, kept or recorded) are one file
//!   again: the first is written, the others are linked to it.
//! - Extended attributes and ACLs come back with files and the folders a
//!   restore makes: the stored entry's, or where the drive keeps none, the
//!   record's (see `History::xattrs`).
//! - Nothing is deleted: entries the destination holds that did not exist at
//!   `T` are left alone (and listed), and a file is not replaced by a folder
//!   or a folder by a file.
//!
//! Keeping what a restore replaces, and mirroring what it wrote, is the
//! caller's part (the command reconciles the pair before and after, or lets
//! the running watcher do it).

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::content;
use super::error::EntryError;
use super::fsops::{self, DirHandle, Kind, Meta};
use super::history::{self, Held, History, Tree};
use super::xattrs::{self, Xattrs};

/// Where a restore writes.
pub struct Dest {
    /// `None`: a `--to` folder that does not exist yet (dry run).
    root: Option<DirHandle>,
    root_path: PathBuf,
    /// Where the tree's top lands, relative to `root`.
    base: PathBuf,
    /// Restoring in place (into SRC): the destination's paths are the
    /// pair's paths.
    in_place: bool,
}

impl Dest {
    /// Restores in place: `src` is the pair's (resolved) SRC, and the tree
    /// goes back where it was.
    pub fn source(src: &Path, tree: &Tree) -> io::Result<Dest> {
        Ok(Dest {
            root: Some(DirHandle::open_root(src)?),
            root_path: src.to_path_buf(),
            base: tree.rel.clone(),
            in_place: true,
        })
    }

    /// Restores beside: into `dir`, as `dir/<name>`. A `dir` that does not
    /// exist can only be planned for (everything is new there).
    pub fn beside(dir: &Path, name: &OsStr) -> io::Result<Dest> {
        let root = match DirHandle::open_root(dir) {
            Ok(d) => Some(d),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        Ok(Dest {
            root,
            root_path: dir.to_path_buf(),
            base: PathBuf::from(name),
            in_place: false,
        })
    }

    /// The absolute path of a destination entry (for messages).
    pub fn path(&self, rel: &Path) -> PathBuf {
        if rel.as_os_str().is_empty() {
            self.root_path.clone()
        } else {
            self.root_path.join(rel)
        }
    }

    /// The destination's top (`SRC/path` or `DIR/name`).
    pub fn top(&self) -> PathBuf {
        self.path(&self.base)
    }

    fn root(&self) -> io::Result<&DirHandle> {
        self.root
            .as_ref()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn map(&self, tree: &Tree, rel: &Path) -> PathBuf {
        let inner = rel.strip_prefix(&tree.rel).unwrap_or(Path::new(""));
        if inner.as_os_str().is_empty() {
            self.base.clone()
        } else {
            self.base.join(inner)
        }
    }

    /// lstat of a destination entry; `Err` with the reason when a folder on
    /// the way is not a folder (never followed).
    fn stat(&self, rel: &Path) -> io::Result<Option<Meta>> {
        let Some(root) = &self.root else {
            return Ok(None);
        };
        let Some(name) = rel.file_name() else {
            return root.meta().map(Some);
        };
        match root.open_path(rel.parent().unwrap_or(Path::new(""))) {
            Ok(p) => p.stat_opt(name),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// What a restore does with one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Not in the destination: made.
    Create,
    /// The destination holds another content (or kind of file): replaced.
    Replace,
    /// Already as it was.
    Unchanged,
    /// Cannot be restored there without removing something: why.
    Refuse(String),
}

/// One entry of a restore.
#[derive(Debug, Clone)]
pub struct Step {
    pub held: Held,
    /// Relative to the destination root.
    pub to: PathBuf,
    pub action: Action,
}

/// What a restore will do.
#[derive(Debug, Clone)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Files and symlinks in the destination (under the restored folder)
    /// that did not exist at the restore time: left alone.
    pub left_alone: Vec<PathBuf>,
}

impl Plan {
    pub fn count(&self, a: &Action) -> usize {
        self.steps.iter().filter(|s| &s.action == a).count()
    }
    pub fn refused(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(s.action, Action::Refuse(_)))
            .count()
    }
    /// Bytes of the files that will be written.
    pub fn bytes(&self) -> u64 {
        self.steps
            .iter()
            .filter(|s| matches!(s.action, Action::Create | Action::Replace))
            .filter(|s| s.held.meta.kind != Kind::Dir)
            .map(|s| s.held.meta.size)
            .sum()
    }
}

/// Compares the tree at its time with the destination.
pub fn plan(history: &History, tree: &Tree, dest: &Dest) -> Plan {
    let mut steps: Vec<Step> = Vec::with_capacity(tree.entries.len());
    // Destination paths under which nothing can be restored.
    let mut blocked: Vec<PathBuf> = Vec::new();
    for held in &tree.entries {
        let to = dest.map(tree, &held.rel);
        if let Some(b) = blocked.iter().find(|b| to.starts_with(b)) {
            let why = format!(
                "it is inside {}, which could not be restored",
                super::error::show(&dest.path(b))
            );
            steps.push(Step {
                held: held.clone(),
                to,
                action: Action::Refuse(why),
            });
            continue;
        }
        let action = match dest.stat(&to) {
            Err(e) if not_a_folder(&e) => Action::Refuse(
                "a folder on the way is a file or a symlink now (a symlink is never followed); move it away and restore again, or restore with --to DIR".into(),
            ),
            Err(e) => Action::Refuse(format!(
                "a folder on the way cannot be used: {}",
                super::error::reason(&e)
            )),
            Ok(None) => Action::Create,
            Ok(Some(now)) => decide(history, held, &now, dest, &to),
        };
        if matches!(action, Action::Refuse(_)) && held.meta.kind == Kind::Dir {
            blocked.push(to.clone());
        }
        steps.push(Step {
            held: held.clone(),
            to,
            action,
        });
    }
    let left_alone = if dest.in_place {
        left_alone(tree, dest, &steps)
    } else {
        Vec::new()
    };
    Plan { steps, left_alone }
}

fn not_a_folder(e: &io::Error) -> bool {
    use rustix::io::Errno;
    e.raw_os_error() == Some(Errno::NOTDIR.raw_os_error())
        || e.raw_os_error() == Some(Errno::LOOP.raw_os_error())
}

fn decide(history: &History, held: &Held, now: &Meta, dest: &Dest, to: &Path) -> Action {
    match (held.meta.kind, now.kind) {
        (Kind::Dir, Kind::Dir) => Action::Unchanged,
        (Kind::Dir, k) => Action::Refuse(format!(
            "it was a folder then and is a {} now; move it away and restore again, or restore with --to DIR",
            k.noun()
        )),
        (_, Kind::Dir) => Action::Refuse(format!(
            "it was a {} then and is a folder now; move the folder away and restore again, or restore with --to DIR",
            held.meta.kind.noun()
        )),
        (a, b) if a == b && same(history, held, now, dest, to) => Action::Unchanged,
        _ => Action::Replace,
    }
}

/// Whether the destination already holds exactly the kept entry.
fn same(history: &History, held: &Held, now: &Meta, dest: &Dest, to: &Path) -> bool {
    if held.meta.mtime != now.mtime || held.meta.size != now.size {
        return false;
    }
    let Some(name) = to.file_name() else {
        return false;
    };
    let Ok(dparent) = dest
        .root()
        .and_then(|r| r.open_path(to.parent().unwrap_or(Path::new(""))))
    else {
        return false;
    };
    match held.meta.kind {
        Kind::Symlink => match (dparent.read_link(name), history.link_target(held)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        },
        Kind::File => {
            if history.modes_kept() && held.meta.mode != now.mode {
                return false;
            }
            // Recorded attributes are the entry's, as a kept mode is (a
            // drive that keeps them compares only the bytes, as before).
            if let Some(x) = history.recorded_xattrs(held)
                && xattrs::of_name(&dparent, name).ok().as_ref() != Some(x)
            {
                return false;
            }
            match (dparent.open_read(name), history.open_file(held)) {
                (Ok(a), Ok(b)) => same_bytes(a, b).unwrap_or(false),
                _ => false,
            }
        }
        _ => false,
    }
}

fn same_bytes(mut a: File, mut b: File) -> io::Result<bool> {
    let mut x = vec![0u8; 64 * 1024];
    let mut y = vec![0u8; 64 * 1024];
    loop {
        let n = read_full(&mut a, &mut x)?;
        let m = read_full(&mut b, &mut y)?;
        if n != m || x[..n] != y[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Files and symlinks under the restored folder that the tree does not
/// have (made after the restore time).
fn left_alone(tree: &Tree, dest: &Dest, steps: &[Step]) -> Vec<PathBuf> {
    let top_is_dir = tree
        .entries
        .first()
        .is_some_and(|e| e.rel == tree.rel && e.meta.kind == Kind::Dir)
        || tree.rel.as_os_str().is_empty();
    if !top_is_dir {
        return Vec::new();
    }
    let restored: HashSet<&Path> = steps.iter().map(|s| s.to.as_path()).collect();
    let mut out = Vec::new();
    /// Files and symlinks under `dir` (which is `rel`) not in `restored`,
    /// depth first, each folder's names sorted; a folder that cannot be
    /// read is passed over. One frame per level of the path the walk is in,
    /// each holding its folder (`None`: `dir` itself) and the names not
    /// looked at yet.
    fn walk(
        dir: &DirHandle,
        rel: &Path,
        at_root: bool,
        restored: &HashSet<&Path>,
        out: &mut Vec<PathBuf>,
    ) {
        fn sorted(dir: &DirHandle) -> Option<std::vec::IntoIter<fsops::Entry>> {
            let mut list = dir.list().ok()?;
            list.sort_by(|a, b| a.name.cmp(&b.name));
            Some(list.into_iter())
        }
        let Some(names) = sorted(dir) else { return };
        let mut stack = vec![(None::<DirHandle>, rel.to_path_buf(), names)];
        while let Some((sub, rel, names)) = stack.last_mut() {
            let Some(e) = names.next() else {
                stack.pop();
                continue;
            };
            if at_root && sub.is_none() && e.name == super::filter::RESERVED {
                continue;
            }
            let here = sub.as_ref().unwrap_or(dir);
            let q = rel.join(&e.name);
            let Ok(Some(m)) = here.stat_opt(&e.name) else {
                continue;
            };
            if m.kind == Kind::Dir {
                if let Ok(d) = here.open_dir(&e.name)
                    && let Some(names) = sorted(&d)
                {
                    stack.push((Some(d), q, names));
                }
            } else if !restored.contains(q.as_path()) {
                out.push(q);
            }
        }
    }
    if let Ok(d) = dest.root().and_then(|r| r.open_path(&dest.base)) {
        walk(
            &d,
            &dest.base,
            dest.base.as_os_str().is_empty(),
            &restored,
            &mut out,
        );
    }
    out
}

/// What a restore did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub created: u64,
    pub replaced: u64,
    pub dirs: u64,
    pub unchanged: u64,
    pub bytes: u64,
    pub failed: Vec<EntryError>,
}

/// Writes the plan. `each` hears every entry written or failed. Refused
/// entries are failures too (named, with the reason).
pub fn apply(
    history: &History,
    tree: &Tree,
    plan: &Plan,
    dest: &Dest,
    each: &mut dyn FnMut(&Step, Option<&EntryError>),
) -> Outcome {
    let mut out = Outcome::default();
    // Folders made here, to get their attributes, mode and times once
    // filled.
    let mut made: Vec<(PathBuf, Option<Held>)> = Vec::new();
    let mut failed_dirs: Vec<PathBuf> = Vec::new();
    // Files with several names: the first name restored of each, which
    // the others are linked to.
    let mut firsts: HashMap<(u64, u64), PathBuf> = HashMap::new();
    for step in &plan.steps {
        let fail =
            |what: &'static str, e: &io::Error| EntryError::new(dest.path(&step.to), what, e);
        let result: Result<(), EntryError> = match &step.action {
            Action::Unchanged => {
                // Counted as files, like "1 file … 1 unchanged" reads; a
                // folder that is already there is not news.
                if step.held.meta.kind != Kind::Dir {
                    out.unchanged += 1;
                }
                continue;
            }
            Action::Refuse(why) => {
                Err(EntryError::msg(dest.path(&step.to), "restore", why.clone()))
            }
            _ if failed_dirs.iter().any(|d| step.to.starts_with(d)) => Err(EntryError::msg(
                dest.path(&step.to),
                "restore",
                "the folder it is in could not be made",
            )),
            Action::Create | Action::Replace => {
                let parent_rel = step.to.parent().unwrap_or(Path::new(""));
                match ensure_dirs(dest, parent_rel, &mut made) {
                    Err(e) => Err(fail("make the folder to restore into", &e)),
                    Ok(parent) => {
                        let m = &step.held.meta;
                        let id = (m.kind == Kind::File && m.nlink > 1).then_some((m.dev, m.ino));
                        let first = id.and_then(|id| firsts.get(&id));
                        // Where no link can be made (a destination without
                        // hard links), a copy of its own.
                        let r = match first {
                            Some(f) => link_one(dest, f, &parent, step)
                                .or_else(|_| write_one(history, step, &parent, &mut made)),
                            None => write_one(history, step, &parent, &mut made),
                        };
                        if r.is_ok()
                            && first.is_none()
                            && let Some(id) = id
                        {
                            firsts.insert(id, step.to.clone());
                        }
                        r.map_err(|e| fail("restore", &e))
                    }
                }
            }
        };
        match &result {
            Ok(()) => {
                match (&step.action, step.held.meta.kind) {
                    (_, Kind::Dir) => out.dirs += 1,
                    (Action::Replace, _) => out.replaced += 1,
                    _ => out.created += 1,
                }
                if step.held.meta.kind != Kind::Dir {
                    out.bytes += step.held.meta.size;
                }
            }
            Err(_) if step.held.meta.kind == Kind::Dir => failed_dirs.push(step.to.clone()),
            Err(_) => {}
        }
        each(step, result.as_ref().err());
        if let Err(e) = result {
            out.failed.push(e);
        }
    }
    // Folders: their own mode and times after their content (deepest
    // first), from the tree where it has them, else as the history knew
    // them at that time.
    made.sort_by_key(|(rel, _)| std::cmp::Reverse(rel.components().count()));
    for (rel, held) in made {
        let held = held.or_else(|| known_dir(history, tree, dest, &rel));
        let meta = held.as_ref().map(|h| h.meta);
        let Ok(d) = dest.root().and_then(|r| r.open_path(&rel)) else {
            continue;
        };
        // Before the mode: an ACL set moves the mode's group bits.
        if let Some(h) = &held
            && let Err(e) = dir_xattrs(history, h, &d)
        {
            log::warn!(
                "{}: cannot set the folder's extended attributes or ACLs: {}",
                super::error::show(&dest.path(&rel)),
                super::error::reason(&e)
            );
        }
        if let Some(m) = meta
            && restore_owner() == content::Owner::Try
        {
            let _ = d.set_own_owner(m.uid, m.gid);
        }
        // Nothing known: an ordinary folder.
        let mut r = d.set_own_mode(meta.map_or(0o755, |m| m.mode));
        // A folder's time is only known for sure if it had not changed
        // since before the restore time.
        if let Some(m) = meta
            && r.is_ok()
            && history::exists_at(&m, tree.at)
        {
            r = d.set_own_times(m.atime, m.mtime);
        }
        if let Err(e) = r {
            log::warn!(
                "{}: cannot set the folder's permissions and times: {}",
                super::error::show(&dest.path(&rel)),
                super::error::reason(&e)
            );
        }
    }
    out
}

/// Gives the folder `d`, made by the restore, the attributes and ACLs `h`
/// had (a destination that holds none keeps none: not an error).
fn dir_xattrs(history: &History, h: &Held, d: &DirHandle) -> io::Result<()> {
    let want = history.xattrs(h)?;
    let have = xattrs::of_fd(d)?;
    if want == have {
        return Ok(());
    }
    match xattrs::apply(d, &want, &have) {
        Ok(()) | Err(xattrs::SetError::Unsupported) => Ok(()),
        Err(xattrs::SetError::Io(e)) => Err(e),
    }
}

/// The folder at destination path `rel` as the history knew it at the
/// tree's time, for a folder made on the way.
fn known_dir(history: &History, tree: &Tree, dest: &Dest, rel: &Path) -> Option<Held> {
    let pair_rel = if dest.in_place {
        rel.to_path_buf()
    } else {
        tree.rel.join(rel.strip_prefix(&dest.base).ok()?)
    };
    match history.entry_at(&pair_rel, tree.at) {
        Ok(Some(h)) if h.meta.kind == Kind::Dir => Some(h),
        _ => None,
    }
}

/// Opens the destination folder `rel`, making the missing ones (recorded in
/// `made`). Never follows a symlink: one on the way is an error.
fn ensure_dirs(
    dest: &Dest,
    rel: &Path,
    made: &mut Vec<(PathBuf, Option<Held>)>,
) -> io::Result<DirHandle> {
    let mut cur = dest.root()?.try_clone()?;
    let mut at = PathBuf::new();
    for c in rel.components() {
        let std::path::Component::Normal(name) = c else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "path component is not a plain name",
            ));
        };
        at.push(name);
        cur = match cur.open_dir(name) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match cur.mkdir(name, 0o700) {
                    Ok(()) => made.push((at.clone(), None)),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(e),
                }
                cur.open_dir(name)?
            }
            Err(e) => return Err(e),
        };
    }
    Ok(cur)
}

fn write_one(
    history: &History,
    step: &Step,
    parent: &DirHandle,
    made: &mut Vec<(PathBuf, Option<Held>)>,
) -> io::Result<()> {
    let name = step
        .to
        .file_name()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let meta = &step.held.meta;
    match meta.kind {
        Kind::Dir => {
            match parent.mkdir(name, 0o700) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if parent.stat(name)?.kind != Kind::Dir {
                        return Err(io::Error::other("something else appeared there meanwhile"));
                    }
                }
                Err(e) => return Err(e),
            }
            made.push((step.to.clone(), Some(step.held.clone())));
            Ok(())
        }
        Kind::File => {
            let from = history.open_file(&step.held)?;
            let attrs = history.recorded_xattrs(&step.held);
            write_file(
                parent,
                name,
                &from,
                meta,
                attrs,
                step.action == Action::Create,
            )
        }
        Kind::Symlink => {
            let target = history.link_target(&step.held)?;
            write_symlink(parent, name, &target, meta)
        }
        Kind::Special => Err(io::Error::other("special files are not kept")),
    }
}

/// Restores `step`'s file as another name of `first` (restored before it,
/// relative to the destination root), in `parent`.
fn link_one(dest: &Dest, first: &Path, parent: &DirHandle, step: &Step) -> io::Result<()> {
    let invalid = || io::Error::from(io::ErrorKind::InvalidInput);
    let name = step.to.file_name().ok_or_else(invalid)?;
    let first_name = first.file_name().ok_or_else(invalid)?;
    let first_dir = dest
        .root()?
        .open_path(first.parent().unwrap_or(Path::new("")))?;
    if step.action == Action::Create {
        return first_dir
            .link_to(first_name, parent, name)
            .map_err(appeared);
    }
    let tmp = temp_name();
    first_dir.link_to(first_name, parent, &tmp)?;
    rename_into_place(parent, &tmp, name)
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_name() -> OsString {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    OsString::from(format!(
        ".mirrortray-restore-{}-{n}.tmp",
        std::process::id()
    ))
}

/// Writes `from` as `name` in `parent`, with `meta`'s mode and times and
/// `attrs` (`None`: `from`'s own), complete or not at all.
fn write_file(
    parent: &DirHandle,
    name: &OsStr,
    from: &File,
    meta: &Meta,
    attrs: Option<&Xattrs>,
    is_new: bool,
) -> io::Result<()> {
    let fill = |to: &File| -> io::Result<()> {
        let w = content::write(from, to, meta, restore_owner(), attrs)?;
        if w.bytes != meta.size {
            return Err(io::Error::other(
                "the kept version is shorter than recorded (changed while read?)",
            ));
        }
        Ok(())
    };
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Some(anon) = unnamed_file(parent)? {
        fill(&anon)?;
        // A new name is linked directly; a replacement goes through a temp
        // name and a rename (linkat cannot replace).
        let tmp = temp_name();
        let link_as = if is_new { name } else { tmp.as_os_str() };
        match link_unnamed(&anon, parent, link_as) {
            Ok(true) if is_new => return Ok(()),
            Ok(true) => return rename_into_place(parent, &tmp, name),
            Ok(false) => {} // no linking here: a named temp file below
            Err(e) => return Err(appeared(e)),
        }
    }
    let tmp = temp_name();
    let file = parent.create_new(&tmp)?;
    if let Err(e) = fill(&file) {
        let _ = parent.unlink(&tmp);
        return Err(e);
    }
    drop(file);
    if is_new {
        return match parent.rename_noreplace(&tmp, parent, name) {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = parent.unlink(&tmp);
                Err(appeared(e))
            }
        };
    }
    rename_into_place(parent, &tmp, name)
}

/// A name that was free when planned is taken now: the user's new file is
/// not overwritten (the backup has never seen it).
fn appeared(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::AlreadyExists {
        io::Error::other(
            "something appeared at this name meanwhile (left as it is); run the restore again",
        )
    } else {
        e
    }
}

fn rename_into_place(parent: &DirHandle, tmp: &OsStr, name: &OsStr) -> io::Result<()> {
    match parent.rename_to(tmp, parent, name) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = parent.unlink(tmp);
            Err(e)
        }
    }
}

/// An unnamed file in `parent` (`O_TMPFILE`); `None` where the file system
/// has none.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn unnamed_file(parent: &DirHandle) -> io::Result<Option<File>> {
    use rustix::fs::{Mode, OFlags};
    use rustix::io::Errno;
    match rustix::fs::openat(
        parent,
        c".",
        OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    ) {
        Ok(fd) => Ok(Some(File::from(fd))),
        Err(Errno::OPNOTSUPP) | Err(Errno::ISDIR) | Err(Errno::INVAL) | Err(Errno::NOSYS) => {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Gives an unnamed file the name `name` in `parent` (`AlreadyExists` if
/// taken). `false` when linking is not allowed here (the caller falls back).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn link_unnamed(file: &File, parent: &DirHandle, name: &OsStr) -> io::Result<bool> {
    use rustix::fs::AtFlags;
    use rustix::io::Errno;
    use std::os::fd::AsRawFd;
    // Through /proc: linkat(AT_EMPTY_PATH) needs a capability on many
    // kernels; the /proc link works for the file's owner.
    let proc = format!("/proc/self/fd/{}", file.as_raw_fd());
    let r = rustix::fs::linkat(
        rustix::fs::CWD,
        proc.as_str(),
        parent,
        name,
        AtFlags::SYMLINK_FOLLOW,
    );
    let r = match r {
        Err(Errno::NOENT) | Err(Errno::PERM) | Err(Errno::ACCESS) => {
            rustix::fs::linkat(file, c"", parent, name, AtFlags::EMPTY_PATH)
        }
        r => r,
    };
    match r {
        Ok(()) => Ok(true),
        Err(Errno::NOENT) | Err(Errno::PERM) | Err(Errno::ACCESS) | Err(Errno::OPNOTSUPP) => {
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether a restore gives entries their owners: as root (as `cp -a`
/// does), where the destination's file system keeps them.
fn restore_owner() -> content::Owner {
    if fsops::sets_owners() {
        content::Owner::Try
    } else {
        content::Owner::Leave
    }
}

/// Makes the symlink `name` -> `target` in `parent` with `meta`'s owner
/// and times.
fn write_symlink(parent: &DirHandle, name: &OsStr, target: &OsStr, meta: &Meta) -> io::Result<()> {
    let tmp = temp_name();
    parent.symlink(target, &tmp)?;
    if restore_owner() == content::Owner::Try {
        let _ = parent.set_owner(&tmp, meta.uid, meta.gid);
    }
    if let Err(e) = parent.set_times(&tmp, meta.atime, meta.mtime) {
        let _ = parent.unlink(&tmp);
        return Err(e);
    }
    rename_into_place(parent, &tmp, name)
}
