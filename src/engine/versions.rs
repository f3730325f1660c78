//! versions: what DST loses is kept, never destroyed (safety rule 3).
//!
//! Model: a *batch* (one reconcile, or one set of live changes) gets one
//! folder `versions/<UTC time>/`, made on first use. Keeping a version of
//! DST's `a/b/c` moves it to `versions/<time>/a/b/c` with one `rename` (a
//! whole folder too: O(1)). A file about to be overwritten is hard-linked
//! there first, so DST's path never goes missing in between; where the file
//! system has no hard links it is renamed just before the new one. Each kept
//! version appends a line to `versions.log` (time, reason, kind, path), which
//! the restore commands read. With versions off for a pair, the entry is
//! removed instead.
//!
//! Thinning (`thinning.rs`) removes single old versions of a path that has
//! newer ones in the same hour, day or week; each is named in `thinned.log`
//! before it goes.
//!
//! Pruning removes whole time folders older than the retention window. A
//! version named `T` is what DST held *until* `T`, so a folder older than the
//! window is never what a restore to a time inside the window needs.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use jiff::Timestamp;

use super::error::show;
use super::event::VersionReason;
use super::fsops::{DirHandle, Entry, Kind};
use super::stamp;

pub struct Versions {
    dir: DirHandle,
    path: PathBuf,
    enabled: bool,
    batch: Mutex<Option<(String, Arc<DirHandle>)>>,
    last: Mutex<Option<Timestamp>>,
    journal: Mutex<Journal>,
    /// `false` on a drive whose rename sets a file's mtime to now
    /// (fusefat): a file kept is given its time back in its time folder,
    /// or a restore as of before would give the time it was kept at.
    renames_keep_times: AtomicBool,
}

/// `versions.log`, open for appending.
struct Journal {
    file: File,
    /// DST's `.mirrortray/`.
    root: DirHandle,
}

impl Journal {
    /// Appends `line` (written anew where the drive refuses to make a file
    /// longer, as `aside.log` is: see `store`).
    fn append(&mut self, line: &[u8]) -> io::Result<()> {
        if super::store::append_or_rewrite(&self.root, LOG, &mut self.file, line)? {
            self.file = super::store::open_append(&self.root, OsStr::new(LOG))?;
        }
        Ok(())
    }
}

/// The versions' journal in `.mirrortray/`.
const LOG: &str = "versions.log";

impl Versions {
    /// `root`: DST's `.mirrortray/`, which holds `versions.log` (`journal`,
    /// open for appending).
    pub fn new(
        dir: DirHandle,
        root: DirHandle,
        journal: File,
        path: PathBuf,
        enabled: bool,
    ) -> Versions {
        Versions {
            dir,
            path,
            enabled,
            batch: Mutex::new(None),
            last: Mutex::new(None),
            journal: Mutex::new(Journal {
                file: journal,
                root,
            }),
            renames_keep_times: AtomicBool::new(true),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// What the drive's probe found (see `keeps`).
    pub fn set_renames_keep_times(&self, keep: bool) {
        self.renames_keep_times.store(keep, Ordering::Relaxed);
    }

    /// Where versions live (`DST/.mirrortray/versions`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current batch's folder name, if it has one (never pruned).
    fn current_batch(&self) -> Option<String> {
        self.batch
            .lock()
            .ok()
            .and_then(|b| b.as_ref().map(|(s, _)| s.clone()))
    }

    /// The current batch's time folder name, made now if needed: what an
    /// entry of the record kept as a version is named by (see `record`).
    pub fn batch_stamp(&self) -> io::Result<String> {
        self.batch_dir(false).map(|(name, _)| name)
    }

    /// The current batch's time folder name, if a version was kept in it.
    pub fn batch_stamp_if_used(&self) -> Option<String> {
        self.current_batch()
    }

    /// Moves the blob `name` (an aside file's bytes, see `record`) from
    /// `from` into the current batch's `.mirrortray/aside/`. Returns the
    /// time folder's name.
    pub fn keep_blob(&self, from: &DirHandle, name: &OsStr) -> io::Result<String> {
        let (stamp_name, bdir) = self.batch_dir(false)?;
        let to = bdir.create_path(&Path::new(super::filter::RESERVED).join("aside"))?;
        from.rename_noreplace(name, &to, name)?;
        Ok(stamp_name)
    }

    /// Starts a new batch: the next version kept opens a new time folder.
    pub fn begin_batch(&self) {
        if let Ok(mut b) = self.batch.lock() {
            *b = None;
        }
    }

    /// The current batch's folder, made on first use. Times only go forward,
    /// even if the clock steps back, so folder names stay unique and ordered.
    fn batch_dir(&self, fresh: bool) -> io::Result<(String, Arc<DirHandle>)> {
        let mut b = self
            .batch
            .lock()
            .map_err(|_| io::Error::other("versions lock poisoned"))?;
        if let (false, Some((name, dir))) = (fresh, b.as_ref()) {
            return Ok((name.clone(), dir.clone()));
        }
        let mut last = self
            .last
            .lock()
            .map_err(|_| io::Error::other("versions lock poisoned"))?;
        let mut t = Timestamp::now();
        loop {
            if let Some(l) = *last
                && t <= l
            {
                t = l + jiff::SignedDuration::from_micros(1);
            }
            let name = stamp::format(t);
            *last = Some(t);
            match self.dir.mkdir(OsStr::new(&name), 0o755) {
                Ok(()) => {
                    let dir = Arc::new(self.dir.open_dir(OsStr::new(&name))?);
                    *b = Some((name.clone(), dir.clone()));
                    return Ok((name, dir));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Moves DST's entry `rel` (whose parent folder is `parent`) out of the
    /// mirror: into the versions, or removed when versions are off.
    pub fn keep(
        &self,
        parent: &DirHandle,
        rel: &Path,
        kind: Kind,
        reason: VersionReason,
    ) -> io::Result<()> {
        let name = file_name(rel)?;
        if !self.enabled {
            return parent.writable(|| {
                if kind == Kind::Dir {
                    remove_tree(parent, name)
                } else {
                    parent.unlink(name)
                }
            });
        }
        let times = match (kind, self.renames_keep_times.load(Ordering::Relaxed)) {
            (Kind::File, false) => Some(parent.stat(name)?),
            _ => None,
        };
        self.place(rel, kind, reason, |vdir, vname| {
            parent.writable(|| {
                if kind != Kind::Dir {
                    parent.rename_noreplace(name, vdir, vname)?;
                    if let Some(m) = times
                        && let Err(e) = vdir.set_times(vname, m.atime, m.mtime)
                    {
                        // Kept all the same: only its time is off.
                        log::warn!(
                            "{}: cannot give the version kept its time back: {}",
                            show(&self.path.join(rel)),
                            super::error::reason(&e)
                        );
                    }
                    return Ok(());
                }
                // Moving a folder to another parent rewrites its `..`, which
                // needs write permission on the folder itself too.
                match parent.rename_noreplace(name, vdir, vname) {
                    Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                        let moved = parent.open_dir(name)?;
                        moved.writable(|| parent.rename_noreplace(name, vdir, vname))
                    }
                    r => r,
                }
            })
        })
    }

    /// Keeps a version of DST's file `rel` that is about to be replaced, by
    /// hard link, so the path stays in place until the new content is
    /// renamed over it. Returns `false` where hard links are not supported
    /// (the caller then uses [`keep`](Self::keep)).
    pub fn keep_linked(
        &self,
        parent: &DirHandle,
        rel: &Path,
        kind: Kind,
        reason: VersionReason,
    ) -> io::Result<bool> {
        let name = file_name(rel)?;
        if !self.enabled {
            return Ok(true);
        }
        let r = self.place(rel, kind, reason, |vdir, vname| {
            parent.link_to(name, vdir, vname)
        });
        match r {
            Ok(()) => Ok(true),
            Err(e) if is_no_links(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn place(
        &self,
        rel: &Path,
        kind: Kind,
        reason: VersionReason,
        op: impl Fn(&DirHandle, &OsStr) -> io::Result<()>,
    ) -> io::Result<()> {
        let name = file_name(rel)?;
        let parent_rel = rel.parent().unwrap_or(Path::new(""));
        let mut fresh = false;
        loop {
            let (stamp_name, bdir) = self.batch_dir(fresh)?;
            let vparent = match bdir.create_path(parent_rel) {
                Ok(d) => d,
                // A file this batch kept where `rel` needs a folder (a file
                // replaced by a folder, then something in that folder
                // replaced): a batch of its own.
                Err(e) if is_taken(&e) && !fresh => {
                    fresh = true;
                    continue;
                }
                Err(e) => return Err(e),
            };
            match op(&vparent, name) {
                Ok(()) => {
                    self.journal(&stamp_name, reason, kind, rel);
                    return Ok(());
                }
                // The same path twice in one batch: it gets a batch of its own.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && !fresh => fresh = true,
                Err(e) => return Err(e),
            }
        }
    }

    fn journal(&self, stamp_name: &str, reason: VersionReason, kind: Kind, rel: &Path) {
        let line = format!(
            "{stamp_name}\t{}\t{}\t{}\n",
            reason.as_str(),
            kind_code(kind),
            escape(rel)
        );
        if let Ok(mut j) = self.journal.lock()
            && let Err(e) = j.append(line.as_bytes())
        {
            log::warn!(
                "{}: cannot write versions.log: {}",
                show(&self.path),
                super::error::reason(&e)
            );
        }
    }

    /// Time folders, oldest first.
    pub fn list_batches(&self) -> io::Result<Vec<(Timestamp, String)>> {
        let mut out: Vec<(Timestamp, String)> = self
            .dir
            .list()?
            .into_iter()
            .filter_map(|e| {
                let n = e.name.to_str()?.to_string();
                stamp::parse(&n).map(|t| (t, n))
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Removes the time folders older than `cutoff`. Returns how many.
    pub fn prune(&self, cutoff: Timestamp) -> io::Result<usize> {
        let mut n = 0;
        let current = self.current_batch();
        for (t, name) in self.list_batches()? {
            if t >= cutoff || current.as_deref() == Some(name.as_str()) {
                continue;
            }
            remove_tree(&self.dir, OsStr::new(&name))?;
            n += 1;
        }
        Ok(n)
    }
}

impl Versions {
    /// Removes the oldest time folders until what the versions hold is at
    /// most `max_bytes` (the optional size limit). Returns how many went and
    /// the bytes they held.
    ///
    /// Only whole folders, oldest first: what stays is always every batch
    /// from some time up to now, so a restore to any time after the newest
    /// removed folder still finds exactly what the mirror held (no holes).
    /// The newest folder and the current batch are never removed, so the
    /// last change can always be undone, even when it alone is over the
    /// limit. Removed folders stay named in `versions.log`, which is how the
    /// restore commands know how far back history is complete.
    pub fn prune_to_size(&self, max_bytes: u64) -> io::Result<(usize, u64)> {
        let current = self.current_batch();
        let batches = self.list_batches()?;
        let mut sizes = Vec::with_capacity(batches.len());
        let mut total: u64 = 0;
        for (_, name) in &batches {
            let bytes = match self.dir.open_dir(OsStr::new(name)) {
                Ok(d) => tree_usage(&d)?.0,
                Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
                Err(e) => return Err(e),
            };
            total = total.saturating_add(bytes);
            sizes.push(bytes);
        }
        let mut removed = 0;
        let mut freed: u64 = 0;
        let last = batches.len().saturating_sub(1);
        for (i, ((_, name), bytes)) in batches.iter().zip(sizes).enumerate() {
            if total <= max_bytes || i >= last || current.as_deref() == Some(name.as_str()) {
                break;
            }
            remove_tree(&self.dir, OsStr::new(name))?;
            total -= bytes;
            freed += bytes;
            removed += 1;
        }
        Ok((removed, freed))
    }
}

/// `thinned.log`, next to `versions.log`: one line per version thinning
/// removed (see `thinning.rs`; read by `history.rs`).
pub const THINNED_LOG: &str = "thinned.log";

/// A modification time as `thinned.log` writes it (`sec.nanoseconds`).
pub fn format_mtime(t: super::fsops::Time) -> String {
    format!("{}.{:09}", t.sec, t.nsec)
}

pub fn parse_mtime(s: &str) -> Option<super::fsops::Time> {
    let (sec, nsec) = s.split_once('.')?;
    Some(super::fsops::Time {
        sec: sec.parse().ok()?,
        nsec: nsec.parse().ok().filter(|n| *n < 1_000_000_000)?,
    })
}

/// What thinning removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Thinned {
    pub count: usize,
    pub bytes: u64,
}

impl Versions {
    /// Removes the versions `gone` (time folder, path, kind), each named in
    /// `log` before it goes (a crash in between leaves a version that is
    /// still there but named: never one that is gone unnamed), then the
    /// folders that held only them, up to the time folder itself (named as
    /// emptied after it went). The current batch is never touched; an entry
    /// no longer there, or of another kind than the journal says, is left.
    pub fn thin(&self, gone: &[(&str, &Path, Kind)], log: &mut File) -> io::Result<Thinned> {
        let current = self.current_batch();
        let mut out = Thinned::default();
        for &(stamp_name, rel, kind) in gone {
            if current.as_deref() == Some(stamp_name) {
                continue;
            }
            let name = file_name(rel)?;
            let parent_rel = rel.parent().unwrap_or(Path::new(""));
            let sdir = match self.dir.open_dir(OsStr::new(stamp_name)) {
                Ok(d) => d,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let parent = match sdir.open_path(parent_rel) {
                Ok(d) => d,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let Some(meta) = parent.stat_opt(name)? else {
                continue;
            };
            if meta.kind != kind {
                continue;
            }
            log.write_all(
                format!(
                    "{stamp_name}\t{}\t{}\t{}\n",
                    kind_code(kind),
                    format_mtime(meta.mtime),
                    escape(rel)
                )
                .as_bytes(),
            )?;
            parent.unlink(name)?;
            out.count += 1;
            out.bytes += meta.size;
            // The containers that held only it.
            let mut p = parent_rel;
            while let Some(n) = p.file_name() {
                let up = p.parent().unwrap_or(Path::new(""));
                let r = sdir.open_path(up).and_then(|d| d.rmdir(n));
                if r.is_err() {
                    break;
                }
                p = up;
            }
            if p.as_os_str().is_empty() && self.dir.rmdir(OsStr::new(stamp_name)).is_ok() {
                log.write_all(format!("{stamp_name}\temptied\t-\t\n").as_bytes())?;
            }
        }
        Ok(out)
    }
}

/// Version folders removed to make room.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    pub count: usize,
    pub bytes: u64,
    /// The oldest folder left (how far back restores reach now).
    pub reach: Option<String>,
}

impl Pruned {
    /// What went, for people.
    pub fn describe(&self, dst: &Path) -> String {
        let what = match self.count {
            1 => "the oldest version folder".to_string(),
            n => format!("the {n} oldest version folders"),
        };
        let reach = match &self.reach {
            Some(r) => format!("; restores now reach back to {r}"),
            None => String::new(),
        };
        format!(
            "{}: the backup disk was short of space: removed {what} ({}) to make room{reach}",
            super::error::show(dst),
            super::words::bytes_text(self.bytes)
        )
    }
}

impl Versions {
    /// Removes the oldest time folders while `short()` says the disk is
    /// still short of space. Never the newest folder or the current batch
    /// (the last change stays undoable); oldest first, so history stays
    /// exact after the newest removed one (see `prune_to_size`).
    pub fn prune_oldest_while(
        &self,
        mut short: impl FnMut() -> io::Result<bool>,
    ) -> io::Result<Pruned> {
        let current = self.current_batch();
        let batches = self.list_batches()?;
        let last = batches.len().saturating_sub(1);
        let mut out = Pruned::default();
        for (i, (_, name)) in batches.iter().enumerate() {
            if i >= last || current.as_deref() == Some(name.as_str()) || !short()? {
                out.reach = Some(name.clone());
                break;
            }
            let bytes = match self.dir.open_dir(OsStr::new(name)) {
                Ok(d) => tree_usage(&d)?.0,
                Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
                Err(e) => return Err(e),
            };
            remove_tree(&self.dir, OsStr::new(name))?;
            out.count += 1;
            out.bytes += bytes;
        }
        Ok(out)
    }
}

/// What a folder holds, through handles: `(bytes, files)`, where bytes are
/// the sizes of its files and symlinks (what a restore would write).
pub fn tree_usage(dir: &DirHandle) -> io::Result<(u64, u64)> {
    let mut bytes: u64 = 0;
    let mut files: u64 = 0;
    // One frame per level of the path the walk is in (a `Vec`, not the call
    // stack, so any depth fits): the folder (`None`: `dir` itself) and the
    // names not looked at yet.
    let mut stack: Vec<(Option<DirHandle>, std::vec::IntoIter<Entry>)> =
        vec![(None, dir.list()?.into_iter())];
    while let Some((sub, names)) = stack.last_mut() {
        let Some(e) = names.next() else {
            stack.pop();
            continue;
        };
        let here = sub.as_ref().unwrap_or(dir);
        let meta = match here.stat_opt(&e.name)? {
            Some(m) => m,
            None => continue,
        };
        if meta.kind == Kind::Dir {
            match here.open_dir(&e.name) {
                Ok(d) => {
                    let names = d.list()?.into_iter();
                    stack.push((Some(d), names));
                }
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        } else {
            bytes += meta.size;
            files += 1;
        }
    }
    Ok((bytes, files))
}

fn file_name(rel: &Path) -> io::Result<&OsStr> {
    rel.file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))
}

/// A path component in the way is not a folder.
fn is_taken(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::AlreadyExists
        || e.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error())
}

fn is_no_links(e: &io::Error) -> bool {
    use rustix::io::Errno;
    matches!(
        e.raw_os_error(),
        Some(c) if c == Errno::PERM.raw_os_error()
            || c == Errno::OPNOTSUPP.raw_os_error()
            || c == Errno::MLINK.raw_os_error()
            || c == Errno::XDEV.raw_os_error()
    )
}

pub fn kind_code(kind: Kind) -> &'static str {
    match kind {
        Kind::File => "file",
        Kind::Dir => "dir",
        Kind::Symlink => "symlink",
        Kind::Special => "special",
    }
}

/// Removes `name` in `parent` and everything under it, through handles
/// (never following a symlink out of the tree). A folder's content goes
/// before the folder; the folders being emptied are a `Vec` (one per level
/// of the path the removal is in), not the call stack, so any depth fits.
pub fn remove_tree(parent: &DirHandle, name: &OsStr) -> io::Result<()> {
    let mut stack: Vec<Emptying> = Vec::new();
    stack.extend(start_removal(parent, name)?);
    while let Some(top) = stack.last_mut() {
        let Some(e) = top.names.next() else {
            let Some(done) = stack.pop() else { break };
            let holder = stack.last().map_or(parent, |f| &f.dir);
            match holder.rmdir(&done.name) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
            continue;
        };
        let is_dir = match e.kind {
            Some(k) => k == Kind::Dir,
            None => top.dir.stat(&e.name)?.kind == Kind::Dir,
        };
        if is_dir {
            let sub = start_removal(&top.dir, &e.name)?;
            stack.extend(sub);
        } else {
            match top.dir.unlink(&e.name) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
    }
    Ok(())
}

/// A folder [`remove_tree`] is emptying: `name` in the folder below it on
/// the stack (or in `remove_tree`'s `parent`), and the names in it not
/// removed yet.
struct Emptying {
    dir: DirHandle,
    name: OsString,
    names: std::vec::IntoIter<Entry>,
}

/// Starts removing `name` in `parent`: a folder is opened and listed (to be
/// emptied, then removed); anything else is unlinked at once (`None`).
fn start_removal(parent: &DirHandle, name: &OsStr) -> io::Result<Option<Emptying>> {
    match parent.open_dir(name) {
        Ok(dir) => {
            // A kept read-only folder: its owner may still remove it.
            let meta = dir.meta()?;
            if meta.mode & 0o700 != 0o700 {
                let _ = dir.set_own_mode(meta.mode | 0o700);
            }
            let names = dir.list()?.into_iter();
            Ok(Some(Emptying {
                dir,
                name: name.to_os_string(),
                names,
            }))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        // Not a folder (ENOTDIR, or ELOOP for a symlink): a plain unlink.
        Err(_) => parent.unlink(name).map(|()| None),
    }
}

/// Escapes a relative path for one line of `versions.log`: backslash, tab,
/// newline and bytes that are not UTF-8 become `\\`, `\t`, `\n`, `\xNN`.
pub fn escape(rel: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for chunk in rel.as_os_str().as_bytes().utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out
}

/// The inverse of [`escape`].
pub fn unescape(s: &str) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            match b.get(i + 1)? {
                b'\\' => out.push(b'\\'),
                b't' => out.push(b'\t'),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b'x' => {
                    let hex = std::str::from_utf8(b.get(i + 2..i + 4)?).ok()?;
                    out.push(u8::from_str_radix(hex, 16).ok()?);
                    i += 2;
                }
                _ => return None,
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(PathBuf::from(std::ffi::OsString::from_vec(out)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn escape_round_trip() {
        for raw in [
            &b"plain/name.txt"[..],
            b"tab\there",
            b"new\nline",
            b"back\\slash",
            b"bad\xff\xfebytes",
        ] {
            let p = PathBuf::from(OsStr::from_bytes(raw));
            let e = escape(&p);
            assert!(!e.contains('\n') && !e.contains('\t'));
            assert_eq!(unescape(&e).unwrap(), p);
        }
    }
}
