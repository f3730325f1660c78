//! inotify: SRC watched recursively on Linux, exact about paths.
//!
//! Why not notify's inotify backend (the other platforms use notify): it
//! keys watches by path, while inotify keys them by inode. After a folder
//! moves, notify removes the watches of the old path and walks the new one;
//! when the walk of a new parent finds the moved folder before the move's
//! MOVED_FROM is read, inotify hands back the same watch descriptor, and the
//! removal that follows ends the watch of the folder at its new place: every
//! later change in it is lost (found by the random-sequence tests: a file
//! deleted in SRC stayed in DST). notify also reports events inside a moved
//! folder under the old path until its remove-and-walk is done, and it
//! watches IN_OPEN, so every read of SRC (ours too) is one queued event.
//!
//! The model here:
//! - a watch descriptor is a folder (an inode); one table maps each wd to
//!   the folder's path relative to SRC, and back;
//! - a rename inside SRC (MOVED_FROM then MOVED_TO with one cookie) rewrites
//!   the table's paths for the moved subtree at the point of the queue where
//!   it happened, so each later event is reported under the path it has
//!   then. The watches stay: they follow the inode;
//! - a folder that appears (created, moved in, renamed) is watched, with its
//!   subfolders, *before* it is reported: when the worker scans it, anything
//!   its events will not report is already there to be seen;
//! - a walk that finds a folder already watched under another path found a
//!   move: the table follows it, and the worker hears it as a rename;
//! - a folder moved out of SRC stops being watched (its wd would report
//!   changes outside SRC under a path that may be reused);
//! - the kernel's own limits are said plainly: the watch limit (ENOSPC),
//!   folders that cannot be read (watched again on request), overflow.
//!
//! Folders are walked with an explicit stack (no recursion on the depth of
//! a user's tree). A watch is added through `/proc/self/fd/N` of a handle
//! opened one component at a time, so a tree deeper than PATH_MAX is
//! watched too.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::engine::error::show;
use crossbeam_channel::{Receiver, Sender, unbounded};
use rustix::event::{EventfdFlags, PollFd, PollFlags, eventfd, poll};
use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use rustix::io::Errno;

use super::hints::Heard;
use super::pending::Hint;
use crate::engine::filter::RESERVED;
use crate::engine::fsops::{DirHandle, Kind};

/// What each folder's watch reports. No IN_OPEN / IN_CLOSE_NOWRITE: reads
/// change nothing.
fn mask() -> WatchFlags {
    WatchFlags::CREATE
        | WatchFlags::DELETE
        | WatchFlags::MODIFY
        | WatchFlags::CLOSE_WRITE
        | WatchFlags::ATTRIB
        | WatchFlags::MOVED_FROM
        | WatchFlags::MOVED_TO
        | WatchFlags::DELETE_SELF
        | WatchFlags::MOVE_SELF
        | WatchFlags::ONLYDIR
        | WatchFlags::EXCL_UNLINK
}

/// How long a MOVED_FROM waits for its MOVED_TO. The kernel queues the two
/// back to back in one rename, but the renaming thread can be preempted
/// between them: on a loaded 2-core machine (the whole test suite) 5 ms
/// very likely split a rename into a move out and a move in (a copy, not a
/// rename: `file_rename_is_a_rename_in_dst` failed once in CI). The cost:
/// a move out of SRC is heard this much later.
const PAIR_WAIT: Duration = Duration::from_millis(50);

/// Why watching could not start or go on.
#[derive(Debug)]
pub enum StartError {
    /// The system's limit of watches (fs.inotify.max_user_watches) is reached.
    Limit,
    Io(std::io::Error),
}

/// A running watch of one SRC tree. Dropping it stops the thread.
pub struct Watcher {
    wake: Arc<OwnedFd>,
    stop: Arc<AtomicBool>,
    asks: Sender<Ask>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What the worker asks the watch thread.
enum Ask {
    /// Watch a folder again (it could not be watched).
    WatchAgain(PathBuf),
    /// Answer once everything queued until now has been heard.
    Sync(Sender<()>),
}

/// How long the worker waits for a sync (a thread that does not answer is
/// stuck, and waiting longer helps nothing).
const SYNC_WAIT: Duration = Duration::from_secs(2);

impl Watcher {
    /// Watches `src` and every folder under it (all watches exist when this
    /// returns, so a reconcile started after it misses nothing), then reports
    /// what it hears to `out`.
    pub fn start(src: &Path, out: Sender<Heard>) -> Result<Watcher, StartError> {
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)
            .map_err(|e| StartError::Io(e.into()))?;
        let root = DirHandle::open_root(src).map_err(StartError::Io)?;
        let mut tree = Tree {
            fd,
            root,
            by_wd: HashMap::new(),
            by_path: BTreeMap::new(),
            root_wd: -1,
            out,
        };
        tree.add_tree(Path::new(""))?;
        tree.root_wd = tree.by_path.get(Path::new("")).copied().unwrap_or(-1);
        let wake = Arc::new(
            eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
                .map_err(|e| StartError::Io(e.into()))?,
        );
        let stop = Arc::new(AtomicBool::new(false));
        let (asks, asks_rx) = unbounded();
        let thread = {
            let wake = wake.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("inotify".into())
                .spawn(move || tree.run(&wake, &stop, &asks_rx))
                .map_err(StartError::Io)?
        };
        Ok(Watcher {
            wake,
            stop,
            asks,
            thread: Some(thread),
        })
    }

    fn ask(&self, a: Ask) {
        let _ = self.asks.send(a);
        let _ = rustix::io::write(&*self.wake, &1u64.to_ne_bytes());
    }

    /// Tries again to watch a folder that could not be watched (it was
    /// unreadable); if it now can be, a `Retry` of it is heard.
    pub fn watch_again(&self, rel: &Path) {
        self.ask(Ask::WatchAgain(rel.to_path_buf()));
    }

    /// Returns once every change made before the call has been heard (sent
    /// to the worker's channel): a batch taken after it is not behind SRC
    /// by changes the kernel had already queued.
    pub fn sync(&self) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.ask(Ask::Sync(tx));
        let _ = rx.recv_timeout(SYNC_WAIT);
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = rustix::io::write(&*self.wake, &1u64.to_ne_bytes());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The watch table and the reading loop (owned by the watcher's thread).
struct Tree {
    fd: OwnedFd,
    root: DirHandle,
    by_wd: HashMap<i32, PathBuf>,
    by_path: BTreeMap<PathBuf, i32>,
    root_wd: i32,
    out: Sender<Heard>,
}

/// A MOVED_FROM waiting for its MOVED_TO.
struct MovedAway {
    cookie: u32,
    path: PathBuf,
    is_dir: bool,
}

impl Tree {
    fn hear(&self, h: Heard) {
        let _ = self.out.send(h);
    }

    fn hint(&self, h: Hint) {
        self.hear(Heard::Hint(h));
    }

    fn run(mut self, wake: &OwnedFd, stop: &AtomicBool, asks: &Receiver<Ask>) {
        let mut buf = vec![std::mem::MaybeUninit::<u8>::uninit(); 64 * 1024];
        let mut from: Option<MovedAway> = None;
        loop {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let timeout = from.as_ref().map(|_| rustix::time::Timespec {
                tv_sec: 0,
                tv_nsec: PAIR_WAIT.as_nanos() as _,
            });
            let (polled, woken) = {
                let mut fds = [
                    PollFd::new(&self.fd, PollFlags::IN),
                    PollFd::new(wake, PollFlags::IN),
                ];
                let r = poll(&mut fds, timeout.as_ref());
                (r, fds[1].revents().contains(PollFlags::IN))
            };
            match polled {
                Ok(0) => {
                    // Nothing followed the MOVED_FROM: moved out of SRC.
                    if let Some(f) = from.take() {
                        self.moved_out(f);
                    }
                    continue;
                }
                Ok(_) => {}
                Err(Errno::INTR) => continue,
                Err(e) => {
                    self.hear(Heard::Failed(format!("cannot wait for file events: {e}")));
                    return;
                }
            }
            if !self.read_queue(&mut buf, &mut from) {
                return;
            }
            if !woken {
                continue;
            }
            let mut b = [0u8; 8];
            let _ = rustix::io::read(wake, &mut b);
            while let Ok(ask) = asks.try_recv() {
                match ask {
                    Ask::WatchAgain(rel) => match self.add_tree(&rel) {
                        Ok(()) if self.by_path.contains_key(&rel) => {
                            self.hint(Hint::Retry(rel));
                        }
                        Ok(()) => {}
                        Err(StartError::Limit) => return self.hear(Heard::WatchLimit),
                        Err(StartError::Io(_)) => {}
                    },
                    Ask::Sync(done) => {
                        // Everything the kernel queued until now is heard
                        // before the answer (a MOVED_FROM with nothing after
                        // it in the queue was a move out of SRC).
                        if !self.read_queue(&mut buf, &mut from) {
                            return;
                        }
                        if let Some(f) = from.take() {
                            self.moved_out(f);
                        }
                        let _ = done.send(());
                    }
                }
            }
        }
    }

    /// Reads and handles every event queued now; `false` when reading
    /// failed (said to the worker).
    fn read_queue(
        &mut self,
        buf: &mut [std::mem::MaybeUninit<u8>],
        from: &mut Option<MovedAway>,
    ) -> bool {
        let events = match read_all(&self.fd, buf) {
            Ok(ev) => ev,
            Err(e) => {
                self.hear(Heard::Failed(format!("cannot read file events: {e}")));
                return false;
            }
        };
        for (wd, flags, cookie, name) in events {
            if let Some(f) = from.take() {
                if flags.contains(ReadFlags::MOVED_TO) && cookie == f.cookie {
                    match self.path_of(wd, name.as_deref()) {
                        Some(to) => self.renamed(f, to),
                        None => self.moved_out(f),
                    }
                    continue;
                }
                self.moved_out(f);
            }
            *from = self.event(wd, flags, cookie, name.as_deref());
        }
        true
    }

    /// `wd`'s folder joined with `name`; `None` for an unknown wd or a path
    /// in SRC's reserved `.mirrortray`.
    fn path_of(&self, wd: i32, name: Option<&OsStr>) -> Option<PathBuf> {
        let dir = self.by_wd.get(&wd)?;
        let p = match name {
            Some(n) => dir.join(n),
            None => dir.clone(),
        };
        (!is_reserved_rel(&p)).then_some(p)
    }

    /// Handles one event; returns a MOVED_FROM that waits for its pair.
    fn event(
        &mut self,
        wd: i32,
        flags: ReadFlags,
        cookie: u32,
        name: Option<&OsStr>,
    ) -> Option<MovedAway> {
        if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
            self.hint(Hint::Rescan);
            return None;
        }
        if flags.contains(ReadFlags::IGNORED) {
            // The watch is gone (folder deleted or moved out): forget it,
            // unless its path already belongs to a newer folder.
            if let Some(p) = self.by_wd.remove(&wd) {
                log::trace!("inotify: wd {wd} ({}) ignored", p.display());
                if self.by_path.get(&p) == Some(&wd) {
                    self.by_path.remove(&p);
                }
            }
            return None;
        }
        if wd == self.root_wd
            && name.is_none()
            && flags.intersects(ReadFlags::DELETE_SELF | ReadFlags::MOVE_SELF | ReadFlags::UNMOUNT)
        {
            self.hear(Heard::RootGone);
            return None;
        }
        // A folder's own events (no name): its parent reports the same, with
        // the name, for all but ATTRIB on SRC's root, which is not mirrored.
        let path = self.path_of(wd, Some(name?))?;
        let is_dir = flags.contains(ReadFlags::ISDIR);
        if flags.contains(ReadFlags::MOVED_FROM) {
            return Some(MovedAway {
                cookie,
                path,
                is_dir,
            });
        }
        if flags.contains(ReadFlags::MOVED_TO) {
            // Moved in from outside SRC (or from a folder not watched).
            if is_dir {
                self.add_tree_or_limit(&path);
            }
            self.hint(Hint::MovedTo(path));
            return None;
        }
        if flags.contains(ReadFlags::CREATE) {
            if is_dir {
                self.add_tree_or_limit(&path);
            }
            self.hint(Hint::Created(path, is_dir));
            return None;
        }
        if flags.contains(ReadFlags::DELETE) {
            self.hint(Hint::Removed(path, is_dir));
            return None;
        }
        if flags.contains(ReadFlags::CLOSE_WRITE) {
            self.hint(Hint::Closed(path.clone()));
        } else if flags.contains(ReadFlags::MODIFY) {
            self.hint(Hint::Modified(path.clone()));
        }
        if flags.contains(ReadFlags::ATTRIB) {
            self.hint(Hint::Attr(path));
        }
        None
    }

    /// Both halves of a rename inside SRC.
    fn renamed(&mut self, f: MovedAway, to: PathBuf) {
        if f.is_dir {
            self.move_subtree(&f.path, &to);
            // Folders made in it before it moved, whose CREATE named the old
            // path after it was gone, are watched now (idempotent for the
            // rest: an inode already watched keeps its wd).
            self.add_tree_or_limit(&to);
        }
        self.hint(Hint::Renamed(f.path, to));
    }

    /// A MOVED_FROM with no MOVED_TO in SRC: the entry left the tree.
    fn moved_out(&mut self, f: MovedAway) {
        if f.is_dir {
            let gone: Vec<(PathBuf, i32)> = self.subtree(&f.path);
            log::trace!(
                "inotify: {} moved out, {} watches off",
                show(&f.path),
                gone.len()
            );
            for (p, wd) in gone {
                let _ = inotify::remove_watch(&self.fd, wd);
                self.by_path.remove(&p);
                self.by_wd.remove(&wd);
            }
        }
        self.hint(Hint::MovedFrom(f.path));
    }

    /// Table entries at `root` and under it.
    fn subtree(&self, root: &Path) -> Vec<(PathBuf, i32)> {
        self.by_path
            .range(root.to_path_buf()..)
            .take_while(|(p, _)| p.starts_with(root))
            .map(|(p, wd)| (p.clone(), *wd))
            .collect()
    }

    /// The table's paths at `from` and under it now start with `to`.
    fn move_subtree(&mut self, from: &Path, to: &Path) {
        let moved = self.subtree(from);
        log::trace!(
            "inotify: {} -> {} ({} watches)",
            show(from),
            show(to),
            moved.len()
        );
        for (p, wd) in moved {
            let q = match p.strip_prefix(from) {
                Ok(rest) if rest.as_os_str().is_empty() => to.to_path_buf(),
                Ok(rest) => to.join(rest),
                Err(_) => continue,
            };
            if self.by_path.get(&p) == Some(&wd) {
                self.by_path.remove(&p);
            }
            self.claim(q, wd);
        }
    }

    /// Records that `wd` is the folder at `path`, keeping the two maps one
    /// to one. Another wd said to be at `path` is not there any more (this
    /// one is, by identity: just opened there, or just renamed there): its
    /// stale path is forgotten rather than kept beside this one, or a later
    /// move of `path`'s subtree would carry the wrong folder along (found
    /// by the random-sequence tests: a folder moved away while a folder
    /// moved in took its name, before the queue was read). The forgotten
    /// folder is mapped again when a walk finds it where it is.
    fn claim(&mut self, path: PathBuf, wd: i32) {
        if let Some(other) = self.by_path.insert(path.clone(), wd)
            && other != wd
            && self.by_wd.get(&other) == Some(&path)
        {
            log::trace!("inotify: wd {other} is not at {} any more", path.display());
            self.by_wd.remove(&other);
        }
        self.by_wd.insert(wd, path);
    }

    fn add_tree_or_limit(&mut self, rel: &Path) {
        if let Err(StartError::Limit) = self.add_tree(rel) {
            self.hear(Heard::WatchLimit);
        }
    }

    /// Watches `rel` and every folder under it, parents before children
    /// (a folder is watched before it is listed: what appears after the
    /// listing is reported, what was there before is in it).
    fn add_tree(&mut self, rel: &Path) -> Result<(), StartError> {
        let mut stack: Vec<(PathBuf, Option<DirHandle>, Option<Rc<Chain>>)> =
            vec![(rel.to_path_buf(), None, None)];
        while let Some((d, handle, up)) = stack.pop() {
            let dir = match handle {
                Some(h) => h,
                None => match self.root.open_path(&d) {
                    Ok(h) => h,
                    Err(e) if gone(&e) => continue,
                    Err(_) => {
                        self.hear(Heard::Unwatched(d));
                        continue;
                    }
                },
            };
            // A folder mounted inside itself: not entered (the walk would
            // never end); reconcile says so once. By identity along the
            // walk, not by the table's paths: those may be stale while a
            // rename waits in the queue.
            let id = dir.meta().ok().map(|m| (m.dev, m.ino));
            if id.is_some() && Chain::holds(&up, id) {
                log::trace!("inotify: {} is a folder above it again: a loop", show(&d));
                continue;
            }
            let chain = Some(Rc::new(Chain { id, up }));
            match self.add_one(&d, &dir) {
                Ok(()) => {}
                Err(Errno::NOSPC) => return Err(StartError::Limit),
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
                Err(_) => {
                    self.hear(Heard::Unwatched(d));
                    continue;
                }
            }
            let list = match dir.list() {
                Ok(l) => l,
                Err(e) if gone(&e) => continue,
                Err(_) => {
                    self.hear(Heard::Unwatched(d));
                    continue;
                }
            };
            for e in list {
                if d.as_os_str().is_empty() && e.name == RESERVED {
                    continue;
                }
                let is_dir = match e.kind {
                    Some(k) => k == Kind::Dir,
                    None => matches!(dir.stat_opt(&e.name), Ok(Some(m)) if m.kind == Kind::Dir),
                };
                if !is_dir {
                    continue;
                }
                match dir.open_dir(&e.name) {
                    Ok(h) => stack.push((d.join(&e.name), Some(h), chain.clone())),
                    Err(err) if gone(&err) => {}
                    Err(_) => self.hear(Heard::Unwatched(d.join(&e.name))),
                }
            }
        }
        Ok(())
    }

    /// Adds one folder's watch through its open handle.
    fn add_one(&mut self, rel: &Path, dir: &DirHandle) -> Result<(), Errno> {
        use std::os::fd::AsRawFd;
        if test_limit().is_some_and(|max| self.by_wd.len() >= max) {
            return Err(Errno::NOSPC);
        }
        let proc_path = format!("/proc/self/fd/{}", dir.as_fd().as_raw_fd());
        // Through the handle: the folder opened, not whatever the path
        // names by now, and no PATH_MAX limit on deep trees.
        let wd = inotify::add_watch(&self.fd, proc_path.as_str(), mask())?;
        match self.by_wd.get(&wd) {
            Some(old) if old.as_path() == rel => {}
            Some(old) => {
                // Already watched under another path: it moved there (a walk
                // of its new parent found it before its MOVED_FROM was read).
                let old = old.clone();
                log::trace!("inotify: wd {wd} found at {}: moved", rel.display());
                self.move_subtree(&old, rel);
                self.hint(Hint::Renamed(old, rel.to_path_buf()));
            }
            None => {
                log::trace!("inotify: wd {wd} = {}", rel.display());
                self.claim(rel.to_path_buf(), wd);
            }
        }
        Ok(())
    }
}

/// The folders a walk is inside of, innermost first: (device, inode).
struct Chain {
    id: Option<(u64, u64)>,
    up: Option<Rc<Chain>>,
}

/// Dropped link by link: a chain is as long as the tree is deep.
impl Drop for Chain {
    fn drop(&mut self) {
        let mut up = self.up.take();
        while let Some(rc) = up {
            match Rc::try_unwrap(rc) {
                Ok(mut c) => up = c.up.take(),
                Err(_) => break,
            }
        }
    }
}

impl Chain {
    fn holds(mut c: &Option<Rc<Chain>>, id: Option<(u64, u64)>) -> bool {
        while let Some(link) = c {
            if link.id == id {
                return true;
            }
            c = &link.up;
        }
        false
    }
}

/// One raw event: wd, mask, cookie, name.
type RawEvent = (i32, ReadFlags, u32, Option<std::ffi::OsString>);

/// Every event the kernel has queued now.
fn read_all(fd: &OwnedFd, buf: &mut [std::mem::MaybeUninit<u8>]) -> Result<Vec<RawEvent>, Errno> {
    let mut reader = inotify::Reader::new(fd, buf);
    let mut out = Vec::new();
    loop {
        match reader.next() {
            Ok(ev) => out.push((
                ev.wd(),
                ev.events(),
                ev.cookie(),
                ev.file_name()
                    .map(|n| OsStr::from_bytes(n.to_bytes()).to_os_string()),
            )),
            Err(Errno::AGAIN) | Err(Errno::INTR) => return Ok(out),
            Err(e) => return Err(e),
        }
    }
}

/// For tests on machines where a user namespace (and so a watch limit of
/// the test's own) cannot be made: `MIRRORTRAY_TEST_MAX_WATCHES=N` makes
/// the (N+1)th watch fail as the kernel's limit does (ENOSPC).
fn test_limit() -> Option<usize> {
    static LIMIT: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        std::env::var("MIRRORTRAY_TEST_MAX_WATCHES")
            .ok()
            .and_then(|v| v.parse().ok())
    })
}

fn gone(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound
        || e.raw_os_error() == Some(Errno::NOTDIR.raw_os_error())
        || e.raw_os_error() == Some(Errno::LOOP.raw_os_error())
}

fn is_reserved_rel(p: &Path) -> bool {
    crate::engine::filter::is_reserved(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// Everything heard within a moment after `f` ran.
    fn heard_after(w: &Receiver<Heard>, f: impl FnOnce()) -> Vec<Heard> {
        f();
        let mut out = Vec::new();
        while let Ok(h) = w.recv_timeout(Duration::from_millis(200)) {
            out.push(h);
        }
        out
    }

    fn hints(h: &[Heard]) -> Vec<Hint> {
        h.iter()
            .filter_map(|x| match x {
                Heard::Hint(h) => Some(h.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn renames_follow_the_folder_and_its_later_events() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path();
        fs::create_dir_all(src.join("a/sub")).unwrap();
        let (tx, rx) = unbounded();
        let _w = Watcher::start(src, tx).unwrap();
        let got = hints(&heard_after(&rx, || {
            fs::create_dir(src.join("n")).unwrap();
            fs::rename(src.join("a"), src.join("n/b")).unwrap();
            fs::write(src.join("n/b/sub/f"), "x").unwrap();
        }));
        assert!(
            got.contains(&Hint::Renamed("a".into(), "n/b".into())),
            "{got:?}"
        );
        assert!(got.contains(&Hint::Closed("n/b/sub/f".into())), "{got:?}");
        assert!(
            !got.iter().any(|h| format!("{h:?}").contains("\"a/")),
            "nothing under the old path: {got:?}"
        );
        // Moved out of SRC: a MovedFrom, and no more events from it.
        let out = tempfile::tempdir().unwrap();
        let got = hints(&heard_after(&rx, || {
            fs::rename(src.join("n/b"), out.path().join("b")).unwrap();
            fs::write(out.path().join("b/sub/g"), "y").unwrap();
        }));
        assert_eq!(got, vec![Hint::MovedFrom("n/b".into())]);
    }

    #[test]
    fn a_new_folder_is_watched_before_it_is_reported() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path();
        let (tx, rx) = unbounded();
        let _w = Watcher::start(src, tx).unwrap();
        fs::create_dir_all(src.join("x/y/z")).unwrap();
        // Once the top folder is reported, all below it are watched: a file
        // made now in the deepest one is heard.
        let top = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(matches!(top, Heard::Hint(Hint::Created(ref p, true)) if p == Path::new("x")));
        let got = hints(&heard_after(&rx, || {
            fs::write(src.join("x/y/z/f"), "x").unwrap();
        }));
        assert!(got.contains(&Hint::Closed("x/y/z/f".into())), "{got:?}");
    }

    /// Mix seed 45 (kept in `tests/mix.rs`): a folder moved away while a
    /// folder moved in from outside took its name, all before the watcher
    /// read the queue. The walk for the first folder's creation found the
    /// newcomer; the rename then carried the newcomer's watch to the old
    /// folder's new name, and the move-in's walk carried the old folder's
    /// watch back: its later changes were heard under the newcomer's path,
    /// never mirrored.
    #[test]
    fn a_name_taken_over_before_the_queue_is_read_keeps_each_folder_at_its_path() {
        for _ in 0..20 {
            let t = tempfile::tempdir().unwrap();
            let src = t.path().join("src");
            fs::create_dir(&src).unwrap();
            let out = t.path().join("out");
            fs::create_dir_all(out.join("m/inner")).unwrap();
            let (tx, rx) = unbounded();
            let _w = Watcher::start(&src, tx).unwrap();
            heard_after(&rx, || {
                fs::create_dir_all(src.join("tmp1/inner")).unwrap();
                fs::rename(src.join("tmp1"), src.join("zzz3")).unwrap();
                fs::rename(out.join("m"), src.join("tmp1")).unwrap();
            });
            let got = hints(&heard_after(&rx, || {
                fs::write(src.join("zzz3/inner/x"), "x").unwrap();
                fs::write(src.join("tmp1/inner/y"), "y").unwrap();
                fs::write(src.join("zzz3/a"), "a").unwrap();
                fs::write(src.join("tmp1/b"), "b").unwrap();
            }));
            for want in ["zzz3/inner/x", "tmp1/inner/y", "zzz3/a", "tmp1/b"] {
                assert!(got.contains(&Hint::Closed(want.into())), "{want}: {got:?}");
            }
            for wrong in ["tmp1/inner/x", "zzz3/inner/y", "tmp1/a", "zzz3/b"] {
                assert!(
                    !got.contains(&Hint::Closed(wrong.into())),
                    "{wrong}: {got:?}"
                );
            }
        }
    }
}
