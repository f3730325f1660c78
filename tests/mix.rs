//! mix: random sequences of what people and programs do to a folder, as wide
//! as real life, against the live watcher — with the drift check off, so
//! only the live path can make DST exact.
//!
//! The mix (issue "Exact under any sequence of changes"): files of 0 B to
//! 300 KB created at random nested paths (parents made as needed), appends,
//! rewrites, atomic saves (`NAME.swp~` renamed over `NAME`), renames inside a
//! folder onto names that may exist, folders moved to new nested paths,
//! unlink, `rm -rf`, `mkdir -p`, symlinks (relative, absolute, dangling),
//! chmod, utime to random nanosecond times, truncate(2) to 0 (no close
//! event) and ftruncate, trees moved in from outside SRC and entries moved
//! out, a file replaced by a folder of the same name, a folder made and
//! files moved into it at once; between them (seeded ranges, not the pinned
//! seeds), a `user.` extended attribute set or removed on a file or folder,
//! or a hard link made (`ln`) to an existing file.
//!
//! One sequence is left out: a name made by `ln` removed or replaced in the
//! round that made it. The kernel tells a folder's watch the name a file was
//! written through and nothing of the file's other names; written through a
//! new link name that is gone before the watcher looks, nothing says which
//! file changed. The drift check finds it.
//!
//! Names come from a small pool with spaces, dots,
//! Unicode and a 40-character name, so they collide and get reused all the
//! time. Operations run back to back, no pause.
//!
//! After each round the test polls until DST equals SRC exactly (types,
//! bytes, ns mtimes, modes, link targets) and checks that every file content
//! DST held at the previous round is still in DST or kept in its versions
//! *at a path that content had* (the model records each content's paths).
//!
//! A failing seed writes its operations and the watcher's log under
//! `target/mix-failures/` and panics with the diff: pin it as a regression
//! test (`mix_seed(N, ...)`), fix the product, keep the test.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::rng::Rng;
use crate::support::tree::{Node, Snapshot, diff, mirrorable};
use crate::support::*;

/// A round that has not converged by then never will: a missed change.
const CONVERGE: Duration = Duration::from_secs(30);

const NAMES: &[&str] = &[
    "a",
    "b",
    "c",
    "dir",
    "x y",
    "ünï",
    "new",
    "tmp",
    ".hidden",
    "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum E {
    /// A file whose content starts with the id's header.
    File(u64),
    Dir,
    Link,
}

/// What SRC holds, kept exactly in step with the operations (each one is
/// only done when the model says it will succeed; a failure is a test bug).
#[derive(Default)]
struct Model {
    tree: BTreeMap<PathBuf, E>,
    /// The content ids each path has held, carried along by renames: DST
    /// applies a batch's renames before its copies, so a content replaced
    /// and renamed in one burst is rightly kept under the new name.
    ids_at: HashMap<PathBuf, BTreeSet<u64>>,
    next_id: u64,
    /// Names made by `ln` this round (carried along by renames): not removed
    /// or replaced until the round ends (see the module doc).
    linked: BTreeSet<PathBuf>,
}

impl Model {
    fn get(&self, p: &Path) -> Option<E> {
        self.tree.get(p).copied()
    }
    fn of_kind(&self, want: fn(&E) -> bool) -> Vec<PathBuf> {
        self.tree
            .iter()
            .filter(|(_, e)| want(e))
            .map(|(p, _)| p.clone())
            .collect()
    }
    /// Whether `mkdir -p` of `p`'s ancestors would work.
    fn parents_ok(&self, p: &Path) -> bool {
        p.ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
            .all(|a| matches!(self.get(a), None | Some(E::Dir)))
    }
    fn add_parents(&mut self, p: &Path) {
        let ancestors: Vec<PathBuf> = p
            .ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .collect();
        for a in ancestors {
            self.tree.insert(a, E::Dir);
        }
    }
    fn new_id(&mut self, at: &Path) -> u64 {
        self.next_id += 1;
        self.ids_at
            .entry(at.to_path_buf())
            .or_default()
            .insert(self.next_id);
        self.next_id
    }
    fn put_file(&mut self, p: &Path, id: u64) {
        self.ids_at.entry(p.to_path_buf()).or_default().insert(id);
        self.tree.insert(p.to_path_buf(), E::File(id));
    }
    fn under(&self, root: &Path) -> Vec<PathBuf> {
        self.tree
            .range(root.to_path_buf()..)
            .take_while(|(p, _)| p.starts_with(root))
            .map(|(p, _)| p.clone())
            .collect()
    }
    /// Whether removing or replacing `root` would take a name made by `ln`
    /// this round.
    fn holds_new_link(&self, root: &Path) -> bool {
        self.linked
            .range(root.to_path_buf()..)
            .next()
            .is_some_and(|p| p.starts_with(root))
    }
    fn remove_tree(&mut self, root: &Path) {
        for p in self.under(root) {
            self.tree.remove(&p);
        }
    }
    /// `from` (a file, a link or a folder) renamed to `to`.
    fn move_tree(&mut self, from: &Path, to: &Path) {
        let carried: Vec<(PathBuf, BTreeSet<u64>)> = self
            .ids_at
            .iter()
            .filter(|(p, _)| p.starts_with(from))
            .map(|(p, ids)| (moved(p, from, to), ids.clone()))
            .collect();
        for (p, ids) in carried {
            self.ids_at.entry(p).or_default().extend(ids);
        }
        let linked: Vec<PathBuf> = self
            .linked
            .iter()
            .filter(|p| p.starts_with(from))
            .cloned()
            .collect();
        for p in linked {
            self.linked.remove(&p);
            self.linked.insert(moved(&p, from, to));
        }
        for p in self.under(from) {
            let e = self.tree.remove(&p).unwrap();
            let q = moved(&p, from, to);
            if let E::File(id) = e {
                self.put_file(&q, id);
            } else {
                self.tree.insert(q, e);
            }
        }
    }
}

/// Where `p` is after `from` moved to `to` (`Path::join("")` would add a
/// trailing slash).
fn moved(p: &Path, from: &Path, to: &Path) -> PathBuf {
    match p.strip_prefix(from) {
        Ok(rest) if rest.as_os_str().is_empty() => to.to_path_buf(),
        Ok(rest) => to.join(rest),
        Err(_) => p.to_path_buf(),
    }
}

struct Mix<'a> {
    rng: Rng,
    m: Model,
    src: &'a Path,
    /// A folder beside SRC, for moves in and out.
    outside: PathBuf,
    n_outside: usize,
    seed: u64,
    /// One line per operation done, for a failing seed's report.
    log: Vec<String>,
    /// Extended attributes set and removed between the operations, from a
    /// stream of their own (the pinned seeds run without, as they failed).
    attrs: Option<Rng>,
}

impl Mix<'_> {
    fn name(&mut self) -> String {
        format!(
            "{}{}",
            NAMES[self.rng.below(NAMES.len())],
            self.rng.below(4)
        )
    }

    /// A random relative path, depth 1 to 3 (shallow ones more often).
    fn path(&mut self) -> PathBuf {
        let depth = [1, 1, 2, 2, 2, 3, 3][self.rng.below(7)];
        let mut p = PathBuf::new();
        for _ in 0..depth {
            p.push(self.name());
        }
        p
    }

    /// A new path: under a random existing folder, or anywhere.
    fn target(&mut self) -> PathBuf {
        let dirs = self.m.of_kind(|e| *e == E::Dir);
        if !dirs.is_empty() && self.rng.below(2) == 0 {
            let d = dirs[self.rng.below(dirs.len())].clone();
            if d.components().count() < 3 {
                let n = self.name();
                return d.join(n);
            }
        }
        self.path()
    }

    fn pick(&mut self, want: fn(&E) -> bool) -> Option<PathBuf> {
        let v = self.m.of_kind(want);
        if v.is_empty() {
            None
        } else {
            Some(v[self.rng.below(v.len())].clone())
        }
    }

    fn content(&mut self, id: u64) -> Vec<u8> {
        let len = [0, 0, 10, 1024, 1024, 70 * 1024, 300 * 1024][self.rng.below(7)];
        let mut c = format!("mix seed {} id {id}\n", self.seed).into_bytes();
        let salt = self.rng.next();
        c.extend((0..len).map(|i| b'a' + ((i as u64 ^ salt) % 26) as u8));
        c
    }

    fn abs(&self, p: &Path) -> PathBuf {
        self.src.join(p)
    }

    fn mkdir_p(&mut self, p: &Path) {
        if let Some(parent) = p.parent()
            && !parent.as_os_str().is_empty()
            && let Err(e) = fs::create_dir_all(self.abs(parent))
        {
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/mix-failures");
            let ops = dir.join(format!("seed-{}-ops.txt", self.seed));
            let _ = fs::create_dir_all(&dir).and_then(|_| fs::write(&ops, self.log.join("\n")));
            panic!(
                "mkdir -p {parent:?}: {e}: the model and SRC differ (operations in {})",
                ops.display()
            );
        }
        self.m.add_parents(p);
    }

    fn did(&mut self, what: String) {
        self.log.push(what);
    }

    /// One operation, at once.
    fn op(&mut self) {
        match self.rng.below(110) {
            0..=17 => {
                // Create (or rewrite) a file at a random nested path.
                let p = self.target();
                if !self.m.parents_ok(&p) || !matches!(self.m.get(&p), None | Some(E::File(_))) {
                    return;
                }
                self.mkdir_p(&p);
                let id = self.m.new_id(&p);
                let c = self.content(id);
                fs::write(self.abs(&p), &c).unwrap();
                self.m.put_file(&p, id);
                self.written_through(&p, id);
                self.did(format!("write {:?} ({} B, id {id})", p, c.len()));
            }
            18..=25 => {
                let Some(p) = self.pick(|e| matches!(e, E::File(_))) else {
                    return;
                };
                let n = [10, 1024, 40 * 1024][self.rng.below(3)];
                OpenOptions::new()
                    .append(true)
                    .open(self.abs(&p))
                    .unwrap()
                    .write_all(&vec![b'+'; n])
                    .unwrap();
                self.did(format!("append {p:?} ({n} B)"));
            }
            26..=33 => {
                // Atomic save: NAME.swp~ written, renamed over NAME.
                let p = match self.pick(|e| matches!(e, E::File(_))) {
                    Some(p) if self.rng.below(3) > 0 => p,
                    _ => self.target(),
                };
                if !self.m.parents_ok(&p)
                    || !matches!(self.m.get(&p), None | Some(E::File(_)))
                    || self.m.holds_new_link(&p)
                {
                    return;
                }
                let mut tmp = p.clone().into_os_string();
                tmp.push(".swp~");
                let tmp = PathBuf::from(tmp);
                if self.m.get(&tmp).is_some() {
                    return;
                }
                self.mkdir_p(&p);
                let id = self.m.new_id(&tmp);
                let c = self.content(id);
                fs::write(self.abs(&tmp), &c)
                    .unwrap_or_else(|e| panic!("{tmp:?}: {e}\n{}", self.log.join("\n")));
                fs::rename(self.abs(&tmp), self.abs(&p)).unwrap();
                self.m.put_file(&p, id);
                self.did(format!("atomic save {p:?} ({} B, id {id})", c.len()));
            }
            34..=43 => {
                // Rename a file or link inside its folder, maybe onto a name
                // that exists.
                let Some(p) = self.pick(|e| matches!(e, E::File(_) | E::Link)) else {
                    return;
                };
                let n = self.name();
                let q = p.with_file_name(n);
                if q == p
                    || !matches!(self.m.get(&q), None | Some(E::File(_)) | Some(E::Link))
                    || self.m.holds_new_link(&q)
                {
                    return;
                }
                let same = |a: &Path, b: &Path| {
                    use std::os::unix::fs::MetadataExt;
                    let ino = |x: &Path| fs::symlink_metadata(x).map(|m| (m.dev(), m.ino())).ok();
                    ino(a).is_some() && ino(a) == ino(b)
                };
                let noop = same(&self.abs(&p), &self.abs(&q));
                fs::rename(self.abs(&p), self.abs(&q)).unwrap();
                if noop {
                    // Two names of one file: rename(2) does nothing and
                    // reports nothing; both names stay.
                    self.did(format!("rename {p:?} -> {q:?} (one file: nothing happens)"));
                    return;
                }
                self.m.tree.remove(&q);
                self.m.move_tree(&p, &q);
                self.did(format!("rename {p:?} -> {q:?}"));
            }
            44..=49 => {
                // Move a folder to a new nested path.
                let Some(d) = self.pick(|e| *e == E::Dir) else {
                    return;
                };
                let q = self.target();
                if q.starts_with(&d) || self.m.get(&q).is_some() || !self.m.parents_ok(&q) {
                    return;
                }
                self.mkdir_p(&q);
                fs::rename(self.abs(&d), self.abs(&q)).unwrap();
                self.m.move_tree(&d, &q);
                self.did(format!("move folder {d:?} -> {q:?}"));
            }
            50..=57 => {
                let Some(p) = self.pick(|e| matches!(e, E::File(_) | E::Link)) else {
                    return;
                };
                if self.m.holds_new_link(&p) {
                    return;
                }
                fs::remove_file(self.abs(&p)).unwrap();
                self.m.tree.remove(&p);
                self.did(format!("unlink {p:?}"));
            }
            58..=60 => {
                let Some(d) = self.pick(|e| *e == E::Dir) else {
                    return;
                };
                if self.m.holds_new_link(&d) {
                    return;
                }
                fs::remove_dir_all(self.abs(&d)).unwrap();
                self.m.remove_tree(&d);
                self.did(format!("rm -rf {d:?}"));
            }
            61..=66 => {
                let p = self.target();
                if self.m.get(&p).is_some() || !self.m.parents_ok(&p) {
                    return;
                }
                fs::create_dir_all(self.abs(&p)).unwrap();
                self.m.add_parents(&p);
                self.m.tree.insert(p.clone(), E::Dir);
                self.did(format!("mkdir -p {p:?}"));
            }
            67..=72 => {
                let p = self.target();
                if self.m.get(&p).is_some() || !self.m.parents_ok(&p) {
                    return;
                }
                let target = match self.rng.below(3) {
                    0 => PathBuf::from("..").join(self.name()),
                    1 => self.src.join(self.path()),
                    _ => PathBuf::from(format!("missing-{}", self.rng.below(100))),
                };
                self.mkdir_p(&p);
                symlink(&target, self.abs(&p)).unwrap();
                self.m.tree.insert(p.clone(), E::Link);
                self.did(format!("symlink {p:?} -> {target:?}"));
            }
            73..=79 => {
                let Some(p) = self.pick(|e| *e != E::Link) else {
                    return;
                };
                let mode = if self.m.get(&p) == Some(E::Dir) {
                    [0o755, 0o700, 0o750, 0o775, 0o555][self.rng.below(5)]
                } else {
                    [0o644, 0o600, 0o755, 0o444, 0o640, 0o666][self.rng.below(6)]
                };
                fs::set_permissions(self.abs(&p), fs::Permissions::from_mode(mode)).unwrap();
                self.did(format!("chmod {mode:o} {p:?}"));
            }
            80..=86 => {
                let Some(p) = self.pick(|_| true) else {
                    return;
                };
                let t = filetime::FileTime::from_unix_time(
                    1_000_000_000 + self.rng.below(800_000_000) as i64,
                    self.rng.below(1_000_000_000) as u32,
                );
                filetime::set_symlink_file_times(self.abs(&p), t, t).unwrap();
                self.did(format!("utime {p:?} {t}"));
            }
            87..=91 => {
                // truncate(2): a modify event, no close.
                let Some(p) = self.pick(|e| matches!(e, E::File(_))) else {
                    return;
                };
                truncate_path(&self.abs(&p));
                self.did(format!("truncate {p:?}"));
            }
            92..=94 => {
                // Opened, truncated and closed (a program rewriting in place).
                let Some(p) = self.pick(|e| matches!(e, E::File(_))) else {
                    return;
                };
                let f = OpenOptions::new().write(true).open(self.abs(&p)).unwrap();
                f.set_len(0).unwrap();
                drop(f);
                self.did(format!("ftruncate {p:?}"));
            }
            95..=99 => {
                // Rewrite an existing file in place (O_TRUNC).
                let Some(p) = self.pick(|e| matches!(e, E::File(_))) else {
                    return;
                };
                let id = self.m.new_id(&p);
                let c = self.content(id);
                let mut f = File::create(self.abs(&p)).unwrap();
                f.write_all(&c).unwrap();
                drop(f);
                self.m.put_file(&p, id);
                self.written_through(&p, id);
                self.did(format!("rewrite {p:?} ({} B, id {id})", c.len()));
            }
            100..=102 => {
                // Moved in from outside SRC: a small tree made elsewhere.
                let q = self.target();
                if self.m.get(&q).is_some() || !self.m.parents_ok(&q) {
                    return;
                }
                self.n_outside += 1;
                let out = self.outside.join(format!("in{}", self.n_outside));
                fs::create_dir_all(out.join("inner")).unwrap();
                let (x, y) = (q.join("x"), q.join("inner").join("y"));
                let (ix, iy) = (self.m.new_id(&x), self.m.new_id(&y));
                let (cx, cy) = (self.content(ix), self.content(iy));
                fs::write(out.join("x"), &cx).unwrap();
                fs::write(out.join("inner/y"), &cy).unwrap();
                self.mkdir_p(&q);
                fs::rename(&out, self.abs(&q)).unwrap();
                self.m.tree.insert(q.clone(), E::Dir);
                self.m.tree.insert(q.join("inner"), E::Dir);
                self.m.put_file(&x, ix);
                self.m.put_file(&y, iy);
                self.did(format!("move in {q:?} (ids {ix} {iy})"));
            }
            103..=104 => {
                // Moved out of SRC: a file or a folder.
                let Some(p) = self.pick(|_| true) else {
                    return;
                };
                if self.m.holds_new_link(&p) {
                    return;
                }
                self.n_outside += 1;
                let out = self.outside.join(format!("out{}", self.n_outside));
                fs::create_dir_all(&self.outside).unwrap();
                fs::rename(self.abs(&p), &out).unwrap();
                self.m.remove_tree(&p);
                self.did(format!("move out {p:?}"));
            }
            105..=106 => {
                // A file replaced by a folder of the same name.
                let Some(p) = self.pick(|e| matches!(e, E::File(_))) else {
                    return;
                };
                if self.m.holds_new_link(&p) {
                    return;
                }
                fs::remove_file(self.abs(&p)).unwrap();
                fs::create_dir(self.abs(&p)).unwrap();
                let f = p.join("was-a-file");
                let id = self.m.new_id(&f);
                let c = self.content(id);
                fs::write(self.abs(&f), &c).unwrap();
                self.m.tree.insert(p.clone(), E::Dir);
                self.m.put_file(&f, id);
                self.did(format!("file {p:?} replaced by a folder (id {id})"));
            }
            _ => {
                // mkdir, then files moved into it at once.
                let d = self.target();
                if self.m.get(&d).is_some() || !self.m.parents_ok(&d) {
                    return;
                }
                fs::create_dir_all(self.abs(&d)).unwrap();
                self.m.add_parents(&d);
                self.m.tree.insert(d.clone(), E::Dir);
                let mut moved = Vec::new();
                for _ in 0..3 {
                    let Some(p) = self.pick(|e| matches!(e, E::File(_))) else {
                        break;
                    };
                    let Some(name) = p.file_name() else { break };
                    let q = d.join(name);
                    if self.m.get(&q).is_some() || d.starts_with(&p) {
                        continue;
                    }
                    fs::rename(self.abs(&p), self.abs(&q)).unwrap();
                    self.m.move_tree(&p, &q);
                    moved.push(q);
                }
                self.did(format!("mkdir {d:?} and move in {moved:?}"));
            }
        }
    }
}

impl Mix<'_> {
    /// Content `id` written in place at `p`: every other name of the same
    /// file (a hard link) holds it too.
    fn written_through(&mut self, p: &Path, id: u64) {
        use std::os::unix::fs::MetadataExt;
        let Ok(m) = fs::symlink_metadata(self.abs(p)) else {
            return;
        };
        if m.nlink() < 2 {
            return;
        }
        for q in self.m.of_kind(|e| matches!(e, E::File(_))) {
            if q != p && fs::symlink_metadata(self.abs(&q)).is_ok_and(|n| n.ino() == m.ino()) {
                self.m.ids_at.entry(q).or_default().insert(id);
            }
        }
    }

    /// Now and then (a separate random stream, so that pinned seeds keep
    /// their sequences): a second name for an existing file (a hard link),
    /// or `user.mix` set to a new value or removed on an existing file or
    /// folder (what `setfattr` or a file manager's tags do).
    fn attr_op(&mut self) {
        let Some(r) = self.attrs.as_mut() else { return };
        match r.below(16) {
            0 => {}
            1 => return self.link_op(),
            _ => return,
        }
        let Some(r) = self.attrs.as_mut() else { return };
        let v = self.m.of_kind(|e| matches!(e, E::File(_) | E::Dir));
        let Some(p) = r.pick(&v).cloned() else { return };
        let remove = r.below(4) == 0;
        let value = format!("v{}", r.below(1000));
        let c = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(
            self.abs(&p).as_os_str(),
        ))
        .unwrap();
        let name = c"user.mix";
        // SAFETY: valid NUL-terminated strings and a buffer of that length.
        let rc = unsafe {
            if remove {
                libc::lremovexattr(c.as_ptr(), name.as_ptr())
            } else {
                libc::lsetxattr(
                    c.as_ptr(),
                    name.as_ptr(),
                    value.as_ptr().cast(),
                    value.len(),
                    0,
                )
            }
        };
        let what = if remove {
            "removexattr".to_string()
        } else {
            format!("setxattr {value}")
        };
        self.did(format!("{what} {p:?} -> {rc}"));
    }
}

impl Mix<'_> {
    /// `ln EXISTING NEW`: a hard link at a random new path.
    fn link_op(&mut self) {
        let Some(r) = self.attrs.as_mut() else { return };
        let files = self.m.of_kind(|e| matches!(e, E::File(_)));
        let Some(p) = r.pick(&files).cloned() else {
            return;
        };
        let q = self.target();
        if self.m.get(&q).is_some() || !self.m.parents_ok(&q) {
            return;
        }
        let Some(E::File(id)) = self.m.get(&p) else {
            return;
        };
        self.mkdir_p(&q);
        fs::hard_link(self.abs(&p), self.abs(&q)).unwrap();
        // Both names hold every content either has held since.
        let ids: Vec<u64> = self
            .m
            .ids_at
            .get(&p)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        self.m.put_file(&q, id);
        self.m.ids_at.entry(q.clone()).or_default().extend(ids);
        self.m.linked.insert(q.clone());
        self.did(format!("ln {p:?} {q:?}"));
    }
}

/// The `user.` attributes of an entry (not following a symlink), sorted.
/// The mix's operations, for other tests that need changes as wide as real
/// life in a folder (the mix's model of it starts empty: give it an empty
/// folder). `outside` is a folder beside it, for moves in and out.
pub(crate) struct Ops<'a>(Mix<'a>);

impl<'a> Ops<'a> {
    pub(crate) fn new(seed: u64, src: &'a Path, outside: PathBuf) -> Ops<'a> {
        Ops(Mix {
            rng: Rng(seed),
            m: Model::default(),
            src,
            outside,
            n_outside: 0,
            seed,
            log: Vec::new(),
            attrs: None,
        })
    }

    /// One operation, as the mix does them.
    pub(crate) fn one(&mut self) {
        self.0.op();
    }

    /// What was done so far, one line each (for a failure's message).
    pub(crate) fn done(&self) -> String {
        self.0.log.join("\n")
    }
}

fn user_xattrs(p: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
        return Vec::new();
    };
    let mut names = vec![0u8; 4096];
    // SAFETY: a valid path and a buffer of that length.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n <= 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for name in names[..n as usize].split(|b| *b == 0) {
        if !name.starts_with(b"user.") {
            continue;
        }
        let cn = std::ffi::CString::new(name).unwrap();
        let mut v = vec![0u8; 4096];
        // SAFETY: as above.
        let k = unsafe { libc::lgetxattr(c.as_ptr(), cn.as_ptr(), v.as_mut_ptr().cast(), v.len()) };
        if k >= 0 {
            v.truncate(k as usize);
            out.push((name.to_vec(), v));
        }
    }
    out.sort();
    out
}

fn truncate_path(p: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    let r = unsafe { libc::truncate(c.as_ptr(), 0) };
    assert_eq!(r, 0, "truncate {}", p.display());
}

/// A snapshot that never panics while DST changes under it.
fn snap(root: &Path) -> Snapshot {
    crate::support::tree::snapshot_live(root)
}

fn mix_diff(src: &Path, dst: &Path) -> Vec<String> {
    diff(&mirrorable(&snap(src)), &snap(dst))
}

/// Type, size, mode, ns mtime, link target and user attributes of every
/// entry: cheap enough to poll (no file is read), so the time measured is
/// the watcher's.
type Stamp = (
    u32,
    u64,
    u32,
    i64,
    i64,
    Option<PathBuf>,
    Vec<(Vec<u8>, Vec<u8>)>,
);

fn stamps(root: &Path) -> BTreeMap<PathBuf, Stamp> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    // DST's versions grow every round: not walked, so a poll costs the
    // same in the last round as in the first.
    for e in walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| e.depth() != 1 || e.file_name() != ".mirrortray")
        .flatten()
    {
        let Ok(rel) = e.path().strip_prefix(root) else {
            continue;
        };
        let Ok(m) = fs::symlink_metadata(e.path()) else {
            continue;
        };
        let ft = m.file_type();
        if !(ft.is_dir() || ft.is_file() || ft.is_symlink()) {
            continue;
        }
        let link = ft
            .is_symlink()
            .then(|| fs::read_link(e.path()).ok())
            .flatten();
        let size = if ft.is_dir() { 0 } else { m.size() };
        let mode = if ft.is_symlink() { 0 } else { m.mode() };
        out.insert(
            rel.to_path_buf(),
            (
                m.mode() & 0o170000,
                size,
                mode,
                m.mtime(),
                m.mtime_nsec(),
                link,
                if ft.is_symlink() {
                    Vec::new()
                } else {
                    user_xattrs(e.path())
                },
            ),
        );
    }
    out
}

/// When the trees were seen equal: the moment their stamps matched,
/// confirmed by then comparing every byte. Reading the bytes takes longer
/// than the watcher's last copies, so it is not counted as the watcher's time.
fn converged_now(src: &Path, dst: &Path) -> Option<Instant> {
    let seen = (stamps(src) == stamps(dst)).then(Instant::now)?;
    mix_diff(src, dst).is_empty().then_some(seen)
}

fn hash(b: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    b.hash(&mut h);
    h.finish()
}

/// The content id in a file's header.
fn id_of(bytes: &[u8]) -> Option<u64> {
    let line = bytes.split(|b| *b == b'\n').next()?;
    let s = std::str::from_utf8(line).ok()?;
    s.rsplit_once(" id ")?.1.parse().ok()
}

/// DST's files with a content id: (hash of bytes, id, path).
fn dst_contents(dst: &Path) -> Vec<(u64, u64, PathBuf)> {
    snap(dst)
        .into_iter()
        .filter_map(|(p, n)| match n {
            Node::File { bytes, .. } => id_of(&bytes).map(|id| (hash(&bytes), id, p)),
            _ => None,
        })
        .collect()
}

/// Every file kept in DST's versions: hash of bytes -> paths it was kept at.
fn version_contents(dst: &Path) -> HashMap<u64, BTreeSet<PathBuf>> {
    let vdir = dst.join(".mirrortray/versions");
    let mut out: HashMap<u64, BTreeSet<PathBuf>> = HashMap::new();
    for e in walkdir::WalkDir::new(&vdir)
        .min_depth(2)
        .into_iter()
        .flatten()
    {
        if !e.file_type().is_file() {
            continue;
        }
        let Ok(bytes) = fs::read(e.path()) else {
            continue;
        };
        let rel: PathBuf = e
            .path()
            .strip_prefix(&vdir)
            .unwrap()
            .components()
            .skip(1)
            .collect();
        out.entry(hash(&bytes)).or_default().insert(rel);
    }
    out
}

/// Outcome of one seed.
pub struct MixRun {
    /// Time from the last operation of each round to convergence.
    pub converged: Vec<Duration>,
}

/// Background load: busy loops, killed on drop.
pub struct Hog(Vec<Child>);

impl Hog {
    pub fn start(n: usize) -> Hog {
        Hog((0..n)
            .map(|_| {
                Command::new("sh")
                    .args(["-c", "while :; do :; done"])
                    .stdout(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect())
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs one seed: `rounds` rounds of `ops` operations back to back, each
/// followed by the convergence and kept-content checks.
pub fn mix_seed(seed: u64, rounds: usize, ops: usize) -> MixRun {
    mix_seed_with(seed, rounds, ops, false)
}

/// [`mix_seed`], with extended attributes set and removed in between when
/// `attrs`.
pub fn mix_seed_with(seed: u64, rounds: usize, ops: usize, attrs: bool) -> MixRun {
    let w = World::new();
    let cfg = w.path("config.toml");
    // The drift check off: only the live path may make DST exact.
    fs::write(&cfg, "[settings]\ndrift_check_minutes = 0\n").unwrap();
    let log = w.path("watch.log");
    let vv = std::env::var_os("MIX_VV").is_some();
    // A peer (benchmark only): the same rounds and convergence check,
    // without the checks of what mirrortray keeps (versions, its log).
    let peer = std::env::var("MIX_PEER").ok();
    let mut child = match &peer {
        Some(template) => Command::new("sh")
            .arg("-c")
            .arg(
                template
                    .replace("{src}", &w.src.to_string_lossy())
                    .replace("{dst}", &w.dst.to_string_lossy()),
            )
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap(),
        None => w
            .cmd()
            .arg("watch")
            .arg(&w.src)
            .arg(&w.dst)
            .arg("--config")
            .arg(&cfg)
            .arg(if vv { "-vvv" } else { "-v" })
            .arg("--log-file")
            .arg(w.path("watch-timed.log"))
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    };
    let read_log = || fs::read_to_string(&log).unwrap_or_default();
    let ready = match &peer {
        // Watching once a file made now reaches DST and its deletion too.
        Some(_) => {
            let probe = "mix-ready-probe";
            fs::write(w.src.join(probe), "ready").unwrap();
            let copied = wait_for(Duration::from_secs(60), || w.dst.join(probe).exists());
            fs::remove_file(w.src.join(probe)).unwrap();
            copied
                && wait_for(Duration::from_secs(60), || {
                    fs::symlink_metadata(w.dst.join(probe)).is_err()
                })
        }
        None => wait_for(Duration::from_secs(60), || {
            read_log().contains("mirrored; watching for changes")
        }),
    };
    let mut mix = Mix {
        rng: Rng(seed),
        m: Model::default(),
        src: &w.src,
        outside: w.path("outside"),
        n_outside: 0,
        seed,
        log: Vec::new(),
        attrs: attrs.then_some(Rng(seed ^ 0x5eed_a77b)),
    };
    let mut run = MixRun {
        converged: Vec::new(),
    };
    let mut failure = (!ready).then(|| "the watcher never said it was ready".to_string());
    let mut held: Vec<(u64, u64, PathBuf)> = Vec::new();
    for round in 0..rounds {
        if failure.is_some() {
            break;
        }
        for _ in 0..ops {
            mix.op();
            mix.attr_op();
        }
        mix.m.linked.clear();
        mix.did(format!(
            "-- end of round {round} at {}",
            jiff::Timestamp::now()
        ));
        let t = Instant::now();
        let mut seen = None;
        let ok = wait_for(CONVERGE, || {
            if let Ok(Some(st)) = child.try_wait() {
                panic!("the watcher exited ({st})\n{}", tail(&read_log(), 40));
            }
            seen = converged_now(&w.src, &w.dst);
            seen.is_some()
        });
        if !ok {
            let d = mix_diff(&w.src, &w.dst);
            failure = Some(format!(
                "round {round}: DST did not converge within {CONVERGE:?}; {} differences:\n{}",
                d.len(),
                d.iter().take(30).cloned().collect::<Vec<_>>().join("\n")
            ));
            break;
        }
        run.converged.push(seen.map_or(t.elapsed(), |s| s - t));
        // Safety rule 3: what DST held at the last round is in DST or kept
        // as a version at a path that content had.
        let now = dst_contents(&w.dst);
        let in_dst: BTreeSet<u64> = now.iter().map(|x| x.0).collect();
        let kept = version_contents(&w.dst);
        let mut lost = Vec::new();
        for (h, id, p) in &held {
            if in_dst.contains(h) {
                continue;
            }
            let ok = kept.get(h).is_some_and(|at| {
                at.iter()
                    .any(|k| mix.m.ids_at.get(k).is_some_and(|ids| ids.contains(id)))
            });
            if !ok {
                lost.push(format!(
                    "{p:?} (id {id}) is neither in DST nor kept at a path it had (kept at: {:?})",
                    kept.get(h)
                ));
            }
        }
        if !lost.is_empty() {
            failure = Some(format!(
                "round {round}: {} contents lost:\n{}",
                lost.len(),
                lost.join("\n")
            ));
            break;
        }
        held = if peer.is_some() { Vec::new() } else { now };
    }
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    let text = if peer.is_some() {
        String::new()
    } else {
        read_log()
    };
    if failure.is_none() && text.contains("[ERROR]") {
        failure = Some("errors logged".into());
    }
    if failure.is_none() && text.contains("panicked") {
        failure = Some("a panic in the log".into());
    }
    if failure.is_none() && std::env::var_os("MIX_KEEP").is_some() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/mix-kept");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("seed-{seed}-ops.txt")), mix.log.join("\n")).unwrap();
        let _ = fs::copy(
            w.path("watch-timed.log"),
            dir.join(format!("seed-{seed}-watch-timed.log")),
        );
    }
    if let Some(f) = failure {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/mix-failures");
        fs::create_dir_all(&dir).unwrap();
        let ops_file = dir.join(format!("seed-{seed}-ops.txt"));
        let log_file = dir.join(format!("seed-{seed}-watch.log"));
        fs::write(&ops_file, mix.log.join("\n")).unwrap();
        fs::write(&log_file, &text).unwrap();
        let _ = fs::copy(
            w.path("watch-timed.log"),
            dir.join(format!("seed-{seed}-watch-timed.log")),
        );
        panic!(
            "mix seed {seed}: {f}\n(operations in {}, the watcher's log in {})\n--- log tail\n{}",
            ops_file.display(),
            log_file.display(),
            tail(&text, 40)
        );
    }
    run
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Seeds `from..=to`; prints min / median / max convergence per seed.
fn seeds(from: u64, to: u64, rounds: usize, ops: usize) {
    let mut all = Vec::new();
    for seed in from..=to {
        let r = mix_seed_with(seed, rounds, ops, true);
        all.extend(r.converged);
    }
    all.sort();
    if !all.is_empty() {
        eprintln!(
            "mix seeds {from}-{to}: {} rounds converged, min {:?} median {:?} max {:?}",
            all.len(),
            all[0],
            all[all.len() / 2],
            all[all.len() - 1]
        );
    }
}

// CI: a few hundred seeds, split so both cores work.

#[test]
fn mix_seeds_1_to_60() {
    seeds(1, 60, 2, 400);
}

#[test]
fn mix_seeds_61_to_120() {
    seeds(61, 120, 2, 400);
}

#[test]
fn mix_seeds_121_to_180() {
    seeds(121, 180, 2, 400);
}

#[test]
fn mix_seeds_181_to_240() {
    seeds(181, 240, 2, 400);
}

#[test]
fn mix_three_rounds_of_3000() {
    seeds(1000, 1002, 3, 3000);
}

/// The long run: `MIX_SEEDS=1-2000 [MIX_HOG=2] [MIX_OPS=3000] cargo test
/// --release --test tests mix_long -- --ignored --nocapture`.
#[test]
#[ignore = "long run; seeds from MIX_SEEDS"]
fn mix_long() {
    let spec = std::env::var("MIX_SEEDS").unwrap_or_else(|_| "1-100".into());
    let (a, b) = spec.split_once('-').unwrap_or((&spec, &spec));
    let ops = std::env::var("MIX_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    let _hog = std::env::var("MIX_HOG")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Hog::start);
    // Every seed runs, failed or not: a long run reports all its failures.
    let (from, to): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
    let mut all = Vec::new();
    let mut failed = Vec::new();
    for seed in from..=to {
        match std::panic::catch_unwind(|| mix_seed_with(seed, 3, ops, true)) {
            Ok(r) => all.extend(r.converged),
            Err(_) => failed.push(seed),
        }
        if seed % 10 == 0 {
            eprintln!("mix_long: seeds {from}-{seed} done, failed: {failed:?}");
        }
    }
    all.sort();
    if let (Some(min), Some(max)) = (all.first(), all.last()) {
        eprintln!(
            "mix seeds {from}-{to}: {} rounds converged, min {min:?} median {:?} max {max:?}; failed: {failed:?}",
            all.len(),
            all[all.len() / 2],
        );
    }
    assert!(failed.is_empty(), "seeds failed: {failed:?}");
}

/// One seed, for hunting: `MIX_SEED=81 MIX_OPS=400 MIX_ROUNDS=2 [MIX_ATTRS=0]`.
#[test]
#[ignore = "one seed from MIX_SEED"]
fn mix_one() {
    let env = |k: &str, d: usize| -> usize {
        std::env::var(k)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    mix_seed_with(
        env("MIX_SEED", 1) as u64,
        env("MIX_ROUNDS", 2),
        env("MIX_OPS", 400),
        env("MIX_ATTRS", 1) != 0,
    );
}

// Seeds that failed once, pinned with the bug they found.

/// With hard links in the mix: `ln A B` while a full pass ran, after its
/// walk had passed A (one name then); the pass met B alone and took A for
/// a name outside SRC, so a later truncate through B never reached A's
/// copy (1 run in 5 here; seeds 102, 105, 175 and 216 failed alike). A
/// file changed while a full pass runs now settles nothing (`links.rs`;
/// table test there).
#[test]
fn mix_seed_206_a_link_made_while_a_full_pass_ran() {
    mix_seed_with(206, 2, 400, true);
}

/// A file renamed onto another name of itself (made by `ln` a round
/// before): rename(2) does nothing then, and the mix's model dropped the
/// first name; a later `mkdir -p` under that name failed in the mix itself
/// (found by the long run under `MIX_HOG=2`). Kept for the sequence: a
/// rename that changes nothing, then writes through both names.
#[test]
fn mix_seed_5032_a_file_renamed_onto_its_own_link() {
    mix_seed(5032, 3, 3000);
}

/// A file rewritten, and another written two operations later with the
/// same size, got the same mtime (one tick of the kernel's coarse clock);
/// then the first was moved into a new folder and the second renamed to its
/// name. The watcher had copied that name after SRC moved on (the second
/// file), and replaying the rename carried that copy to the first file's
/// place, where size and mtime matched: DST kept the wrong bytes (failed 1
/// full test run of 2 here, and CI). A file's rename is now replayed only
/// for the SRC file DST's copy came from (`origins.rs`; deterministic twin
/// in `mirror.rs`).
#[test]
fn mix_seed_146_a_rename_replayed_for_a_copy_of_another_file() {
    mix_seed(146, 2, 400);
}

/// A folder moved away, a new one made under its old name and moved too,
/// in one batch: the first move could not be replayed in DST (its target
/// was deleted meanwhile), so DST's old folder was taken for the new one and
/// moved with stale content. Renames under a name whose rename was not
/// replayed are no longer replayed.
#[test]
fn mix_seed_81_rename_under_a_name_not_replayed() {
    mix_seed(81, 2, 400);
}

/// A file copied into a folder SRC had already moved away (its rename not
/// heard yet); the rename then carried the file to the wrong place. Folders
/// written just before a rename are now checked whole at their new place,
/// and the listings are compared only after a sync with the event queue.
#[test]
fn mix_seed_6_write_into_a_folder_moved_meanwhile() {
    mix_seed(6, 3, 3000);
}

/// notify's watch of a moved folder was dropped when the walk of its new
/// parent met it before its MOVED_FROM was read: later changes in it were
/// never heard (the Linux watcher is now our own, keyed by inode).
#[test]
fn mix_seed_4_changes_in_a_folder_moved_into_a_new_parent() {
    mix_seed(4, 3, 3000);
}

/// A folder moved away while a folder moved in from outside took its name,
/// before the watcher read the queue: the newcomer's watch was carried to
/// the old folder's new name and the old folder's back, so the changes in
/// one were heard under the other's path and never mirrored (failed 2 runs
/// of 3 beside other tests; deterministic twin in `inotify.rs`). A path now
/// belongs to one watch at a time.
#[test]
fn mix_seed_45_a_name_taken_over_before_the_queue_is_read() {
    mix_seed(45, 2, 400);
}
