//! fsops: file-system operations relative to open directory handles.
//!
//! Model: every write mirrortray makes goes through a [`DirHandle`], an open
//! directory reached from DST's root one component at a time with `O_NOFOLLOW`.
//! A name inside a handle is never resolved through a symlink, so a symlink
//! that sits in DST (mirrored from SRC earlier, or planted there) is replaced,
//! never followed, and no check-then-write window exists: the kernel resolves
//! exactly one component per call. Reads of SRC go through the same handles,
//! so a SRC symlink is read as a link, never entered.
//!
//! The functions here return plain `io::Result`; callers attach the path.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, Timestamps};
use rustix::io::Errno;

/// What kind of entry a name is, as mirrortray cares about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// FIFO, socket or device: never mirrored.
    Special,
}

impl Kind {
    pub fn noun(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "folder",
            Kind::Symlink => "symlink",
            Kind::Special => "special file",
        }
    }
}

/// A point in time with nanoseconds, as the file system keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time {
    pub sec: i64,
    pub nsec: u32,
}

impl Time {
    fn to_timespec(self) -> rfs::Timespec {
        rfs::Timespec {
            tv_sec: self.sec,
            tv_nsec: self.nsec as _,
        }
    }
}

/// The metadata mirrortray compares (from `lstat`, never following links).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    pub size: u64,
    /// Permission bits only (07777).
    pub mode: u32,
    pub mtime: Time,
    pub atime: Time,
    pub ctime: Time,
    pub dev: u64,
    pub ino: u64,
    /// Names the inode has (hard links).
    pub nlink: u64,
    /// Owner and group.
    pub uid: u32,
    pub gid: u32,
    /// Raw `st_mode`, to tell FIFOs from sockets and devices in messages.
    pub raw_mode: u32,
}

impl Meta {
    // The stat field types differ between platforms; the casts are needed there.
    #[allow(clippy::unnecessary_cast)]
    pub fn from_stat(st: &rfs::Stat) -> Meta {
        let raw_mode = st.st_mode as u32;
        let kind = match rfs::FileType::from_raw_mode(st.st_mode as _) {
            rfs::FileType::RegularFile => Kind::File,
            rfs::FileType::Directory => Kind::Dir,
            rfs::FileType::Symlink => Kind::Symlink,
            _ => Kind::Special,
        };
        Meta {
            kind,
            size: st.st_size as u64,
            mode: raw_mode & 0o7777,
            mtime: Time {
                sec: st.st_mtime as i64,
                nsec: st.st_mtime_nsec as u32,
            },
            atime: Time {
                sec: st.st_atime as i64,
                nsec: st.st_atime_nsec as u32,
            },
            ctime: Time {
                sec: st.st_ctime as i64,
                nsec: st.st_ctime_nsec as u32,
            },
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            nlink: st.st_nlink as u64,
            uid: st.st_uid as u32,
            gid: st.st_gid as u32,
            raw_mode,
        }
    }

    /// A short name for a special file, for the "skipped" log line.
    pub fn special_noun(&self) -> &'static str {
        match rfs::FileType::from_raw_mode(self.raw_mode as _) {
            rfs::FileType::Fifo => "FIFO",
            rfs::FileType::Socket => "socket",
            rfs::FileType::CharacterDevice => "character device",
            rfs::FileType::BlockDevice => "block device",
            _ => "special file",
        }
    }

    /// True when the content is known to be the same without reading it:
    /// same type, size and modification time to the nanosecond.
    pub fn same_content_stamp(&self, other: &Meta) -> bool {
        self.kind == other.kind && self.size == other.size && self.mtime == other.mtime
    }

    /// True when a file did not change between two `stat`s of it.
    pub fn unchanged_since(&self, before: &Meta) -> bool {
        self.size == before.size && self.mtime == before.mtime && self.ctime == before.ctime
    }
}

/// One name read from a directory, with the type the directory listing gave
/// (may be `None` on file systems that do not report it).
#[derive(Debug)]
pub struct Entry {
    pub name: OsString,
    pub kind: Option<Kind>,
}

/// How many changes this process has asked of any file system through
/// this module (and `xattrs::apply`, `content::copy_data`): every call that
/// makes, removes, renames, writes or sets something, counted before it is
/// made, failed or not. A writer of
/// DST that sees it unchanged over its pass wrote nothing (see
/// `offsite_clean`); another thread's changes only make that answer "maybe
/// wrote", never the other way.
static CHANGES: AtomicU64 = AtomicU64::new(0);

/// Counts a change about to be asked (see [`CHANGES`]).
pub(crate) fn changing() {
    CHANGES.fetch_add(1, Ordering::SeqCst);
}

/// The number of changes asked so far (see [`CHANGES`]).
pub fn changes() -> u64 {
    CHANGES.load(Ordering::SeqCst)
}

/// An open directory. Shared between threads; all operations take names
/// (single components) relative to it.
#[derive(Debug)]
pub struct DirHandle {
    fd: OwnedFd,
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

impl AsFd for DirHandle {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl DirHandle {
    /// Opens a root given by the user. The path was made absolute and
    /// resolved at the edge, so following links here is intended.
    pub fn open_root(path: &Path) -> io::Result<DirHandle> {
        let fd = rfs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(DirHandle { fd })
    }

    /// Opens the sub-directory `name`, refusing to follow a symlink
    /// (`ELOOP`/`ENOTDIR` then).
    pub fn open_dir(&self, name: &OsStr) -> io::Result<DirHandle> {
        let fd = rfs::openat(&self.fd, name, DIR_FLAGS, Mode::empty())?;
        Ok(DirHandle { fd })
    }

    /// Walks `rel` (relative, no `..`) one component at a time, never
    /// following a symlink.
    pub fn open_path(&self, rel: &Path) -> io::Result<DirHandle> {
        let mut cur: Option<DirHandle> = None;
        for comp in rel.components() {
            let name = normal_component(comp)?;
            let next = match &cur {
                None => self.open_dir(name)?,
                Some(d) => d.open_dir(name)?,
            };
            cur = Some(next);
        }
        match cur {
            Some(d) => Ok(d),
            None => self.try_clone(),
        }
    }

    /// Like [`open_path`](Self::open_path) but creates missing folders
    /// (mode 0700 until their real mode is set).
    pub fn create_path(&self, rel: &Path) -> io::Result<DirHandle> {
        let mut cur = self.try_clone()?;
        for comp in rel.components() {
            let name = normal_component(comp)?;
            cur = match cur.open_dir(name) {
                Ok(d) => d,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    match cur.mkdir(name, 0o700) {
                        Ok(()) => {}
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

    pub fn try_clone(&self) -> io::Result<DirHandle> {
        Ok(DirHandle {
            fd: self.fd.try_clone()?,
        })
    }

    /// Lists the directory (without `.` and `..`).
    pub fn list(&self) -> io::Result<Vec<Entry>> {
        let fd = rfs::openat(&self.fd, c".", DIR_FLAGS, Mode::empty())?;
        let mut dir = rfs::Dir::new(fd)?;
        let mut out = Vec::new();
        while let Some(ent) = dir.read() {
            let ent = ent?;
            out.extend(Entry::listed(ent.file_name(), ent.file_type()));
        }
        Ok(out)
    }

    /// Lists a directory just opened (its read position at the start),
    /// through its own descriptor: no second open. Only for a handle no other
    /// thread lists (the walk's fresh handles); [`list`](Self::list) is the
    /// general one.
    pub fn list_fresh(&self) -> io::Result<Vec<Entry>> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use std::mem::MaybeUninit;
            let mut buf = [MaybeUninit::<u8>::uninit(); 32 * 1024];
            let mut dir = rfs::RawDir::new(&self.fd, &mut buf);
            let mut out = Vec::new();
            while let Some(ent) = dir.next() {
                let ent = ent?;
                out.extend(Entry::listed(ent.file_name(), ent.file_type()));
            }
            Ok(out)
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        self.list()
    }

    /// `lstat` of `name`.
    pub fn stat(&self, name: &OsStr) -> io::Result<Meta> {
        let st = rfs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(Meta::from_stat(&st))
    }

    /// `lstat` of `name`, `None` when it does not exist.
    pub fn stat_opt(&self, name: &OsStr) -> io::Result<Option<Meta>> {
        match self.stat(name) {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether the directory was deleted (it is still open here).
    pub fn is_deleted(&self) -> bool {
        rfs::fstat(&self.fd).is_ok_and(|s| s.st_nlink == 0)
    }

    /// `fstat` of the directory itself.
    pub fn meta(&self) -> io::Result<Meta> {
        Ok(Meta::from_stat(&rfs::fstat(&self.fd)?))
    }

    /// Bytes an unprivileged writer can still use on this folder's file
    /// system.
    pub fn free_bytes(&self) -> io::Result<u64> {
        let s = rfs::fstatvfs(&self.fd)?;
        Ok(s.f_bavail.saturating_mul(s.f_frsize))
    }

    /// The size of this folder's file system.
    pub fn fs_bytes(&self) -> io::Result<u64> {
        let s = rfs::fstatvfs(&self.fd)?;
        Ok(s.f_blocks.saturating_mul(s.f_frsize))
    }

    /// Opens a regular file for reading, refusing symlinks and FIFOs
    /// (`O_NONBLOCK` so a FIFO swapped in cannot hang the copy).
    pub fn open_read(&self, name: &OsStr) -> io::Result<File> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        // Reading for a backup is not an access the user made: keep atime
        // where the kernel lets us (owner or CAP_FOWNER only).
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let fd = match rfs::openat(&self.fd, name, flags | OFlags::NOATIME, Mode::empty()) {
            Err(Errno::PERM) => rfs::openat(&self.fd, name, flags, Mode::empty())?,
            r => r?,
        };
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let fd = rfs::openat(&self.fd, name, flags, Mode::empty())?;
        let file = File::from(fd);
        let meta = Meta::from_stat(&rfs::fstat(&file)?);
        if meta.kind != Kind::File {
            // InvalidData: the entry changed kind since it was looked at.
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("is a {} now, not a file", meta.kind.noun()),
            ));
        }
        Ok(file)
    }

    /// Creates a new file `name` (fails if it exists), mode 0600, open for
    /// reading and writing.
    pub fn create_new(&self, name: &OsStr) -> io::Result<File> {
        changing();
        let fd = rfs::openat(
            &self.fd,
            name,
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?;
        Ok(File::from(fd))
    }

    /// Makes an empty file `name` if there is none (never follows a
    /// symlink there).
    pub fn touch(&self, name: &OsStr) -> io::Result<()> {
        changing();
        rfs::openat(
            &self.fd,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )?;
        Ok(())
    }

    pub fn mkdir(&self, name: &OsStr, mode: u32) -> io::Result<()> {
        changing();
        rfs::mkdirat(&self.fd, name, Mode::from_raw_mode(mode as _))?;
        Ok(())
    }

    pub fn symlink(&self, target: &OsStr, name: &OsStr) -> io::Result<()> {
        changing();
        rfs::symlinkat(target, &self.fd, name)?;
        Ok(())
    }

    pub fn read_link(&self, name: &OsStr) -> io::Result<OsString> {
        let target = rfs::readlinkat(&self.fd, name, Vec::new())?;
        Ok(OsString::from_vec(target.into_bytes()))
    }

    /// Renames `name` here to `to_name` in `to` (replacing a file there).
    pub fn rename_to(&self, name: &OsStr, to: &DirHandle, to_name: &OsStr) -> io::Result<()> {
        changing();
        rfs::renameat(&self.fd, name, &to.fd, to_name)?;
        Ok(())
    }

    /// Renames without replacing: fails with `AlreadyExists` if `to_name`
    /// exists. Falls back to a checked plain rename where the kernel or the
    /// file system lacks `RENAME_NOREPLACE`.
    pub fn rename_noreplace(
        &self,
        name: &OsStr,
        to: &DirHandle,
        to_name: &OsStr,
    ) -> io::Result<()> {
        changing();
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            match rfs::renameat_with(&self.fd, name, &to.fd, to_name, rfs::RenameFlags::NOREPLACE) {
                Ok(()) => return Ok(()),
                Err(Errno::INVAL) | Err(Errno::NOSYS) | Err(Errno::NOTSUP) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if to.stat_opt(to_name)?.is_some() {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        self.rename_to(name, to, to_name)
    }

    /// Hard-links `name` here as `to_name` in `to` (never following).
    pub fn link_to(&self, name: &OsStr, to: &DirHandle, to_name: &OsStr) -> io::Result<()> {
        changing();
        rfs::linkat(&self.fd, name, &to.fd, to_name, AtFlags::empty())?;
        Ok(())
    }

    pub fn unlink(&self, name: &OsStr) -> io::Result<()> {
        changing();
        rfs::unlinkat(&self.fd, name, AtFlags::empty())?;
        Ok(())
    }

    pub fn rmdir(&self, name: &OsStr) -> io::Result<()> {
        changing();
        rfs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR)?;
        Ok(())
    }

    /// Sets the times of `name` itself (a symlink's own times, not its
    /// target's).
    pub fn set_times(&self, name: &OsStr, atime: Time, mtime: Time) -> io::Result<()> {
        changing();
        let ts = Timestamps {
            last_access: atime.to_timespec(),
            last_modification: mtime.to_timespec(),
        };
        rfs::utimensat(&self.fd, name, &ts, AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(())
    }

    /// Sets the permission bits of `name`, which must be a file or folder;
    /// a symlink put in its place is not followed.
    pub fn set_mode(&self, name: &OsStr, mode: u32) -> io::Result<()> {
        changing();
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            // fchmodat(AT_SYMLINK_NOFOLLOW) is not in every kernel; an O_PATH
            // handle pins the entry without following, and /proc resolves
            // to exactly that inode (what glibc does for lchmod).
            let fd = rfs::openat(
                &self.fd,
                name,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let meta = Meta::from_stat(&rfs::fstat(&fd)?);
            if meta.kind == Kind::Symlink {
                return Err(io::Error::other("became a symlink, not followed"));
            }
            let proc_path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
            match rfs::chmod(proc_path.as_str(), Mode::from_raw_mode(mode as _)) {
                Err(Errno::NOENT) => {} // no /proc: fall through
                r => return chmodded(r),
            }
        }
        let meta = self.stat(name)?;
        if meta.kind == Kind::Symlink {
            return Err(io::Error::other("became a symlink, not followed"));
        }
        chmodded(rfs::chmodat(
            &self.fd,
            name,
            Mode::from_raw_mode(mode as _),
            AtFlags::empty(),
        ))
    }

    /// Runs `op`, a change of this folder's entries; if it is refused
    /// because the folder is read-only (a mirrored 0555 folder), makes it
    /// writable for the owner, retries, and puts the mode back. Root never
    /// needs this; the owner does, as with rsync's own folders.
    pub fn writable<T>(&self, mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                let meta = self.meta()?;
                if meta.mode & 0o300 == 0o300 || self.set_own_mode(meta.mode | 0o700).is_err() {
                    return Err(e);
                }
                let r = op();
                let _ = self.set_own_mode(meta.mode);
                r
            }
            r => r,
        }
    }

    /// Sets the owner and group of `name` itself (a symlink's own, not
    /// its target's).
    pub fn set_owner(&self, name: &OsStr, uid: u32, gid: u32) -> io::Result<()> {
        changing();
        rfs::chownat(
            &self.fd,
            name,
            Some(owner_uid(uid)),
            Some(owner_gid(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
        Ok(())
    }

    /// Sets this directory's own owner and group.
    pub fn set_own_owner(&self, uid: u32, gid: u32) -> io::Result<()> {
        set_file_owner(&self.fd, uid, gid)
    }

    /// Sets this directory's own mode.
    pub fn set_own_mode(&self, mode: u32) -> io::Result<()> {
        set_file_mode(&self.fd, mode)
    }

    /// Sets this directory's own times.
    pub fn set_own_times(&self, atime: Time, mtime: Time) -> io::Result<()> {
        set_file_times(&self.fd, atime, mtime)
    }
}

/// `fchown` on an open file. Before its mode: a change of owner clears the
/// set-user-ID and set-group-ID bits.
pub fn set_file_owner(fd: impl AsFd, uid: u32, gid: u32) -> io::Result<()> {
    changing();
    rfs::fchown(fd, Some(owner_uid(uid)), Some(owner_gid(gid)))?;
    Ok(())
}

fn owner_uid(uid: u32) -> rustix::fs::Uid {
    rustix::fs::Uid::from_raw(uid)
}

fn owner_gid(gid: u32) -> rustix::fs::Gid {
    rustix::fs::Gid::from_raw(gid)
}

/// Whether this process sets owners (it runs as root, as `rsync -a` needs).
pub fn sets_owners() -> bool {
    rustix::process::geteuid().is_root()
}

/// `futimens` on an open file.
pub fn set_file_times(fd: impl AsFd, atime: Time, mtime: Time) -> io::Result<()> {
    changing();
    let ts = Timestamps {
        last_access: atime.to_timespec(),
        last_modification: mtime.to_timespec(),
    };
    rfs::futimens(fd, &ts)?;
    Ok(())
}

/// `fchmod` on an open file.
pub fn set_file_mode(fd: impl AsFd, mode: u32) -> io::Result<()> {
    changing();
    chmodded(rfs::fchmod(fd, Mode::from_raw_mode(mode as _)))
}

/// A change of mode done. A file system with no permission bits at all
/// may have no call for it (fusefat on FAT32: `ENOSYS`): nothing to set
/// there; the probe finds it keeps no modes, and the record keeps them.
fn chmodded(r: rustix::io::Result<()>) -> io::Result<()> {
    match r {
        Ok(()) | Err(Errno::NOSYS) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Whether some process has `file` open for writing, where the kernel can
/// tell (Linux: a read lease cannot be taken then). `None`: unknown (not
/// the owner, or a file system without leases).
pub fn open_for_writing_elsewhere(file: &File) -> Option<bool> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // Breaking a lease signals its holder with SIGIO, whose default is
        // to terminate: ignore it (the lease is let go at once anyway).
        static IGNORE_SIGIO: std::sync::Once = std::sync::Once::new();
        IGNORE_SIGIO.call_once(|| {
            // SAFETY: setting a signal's disposition to SIG_IGN has no
            // preconditions.
            unsafe {
                libc::signal(libc::SIGIO, libc::SIG_IGN);
            }
        });
        let fd = file.as_raw_fd();
        // SAFETY: fcntl on a valid, open descriptor with integer arguments.
        let r = unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_RDLCK) };
        if r == 0 {
            // SAFETY: as above.
            unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_UNLCK) };
            return Some(false);
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::EAGAIN) => Some(true),
            _ => None,
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        None
    }
}

/// `fstat` on an open file.
pub fn file_meta(fd: impl AsFd) -> io::Result<Meta> {
    Ok(Meta::from_stat(&rfs::fstat(fd)?))
}

/// Which side a read failed on, in [`same_content`].
#[derive(Debug)]
pub enum ReadSide {
    First(io::Error),
    Second(io::Error),
}

/// Whether two files hold the same bytes, read in step a chunk at a time
/// (positional reads: the files' offsets are not moved).
pub fn same_content(a: &File, b: &File) -> Result<bool, ReadSide> {
    thread_local! {
        static BUFS: std::cell::RefCell<(Vec<u8>, Vec<u8>)> =
            std::cell::RefCell::new((vec![0; 256 << 10], vec![0; 256 << 10]));
    }
    BUFS.with(|bufs| {
        let mut bufs = bufs.borrow_mut();
        let (ba, bb) = &mut *bufs;
        let mut off = 0u64;
        loop {
            let na = fill_at(a, ba, off).map_err(ReadSide::First)?;
            let nb = fill_at(b, bb, off).map_err(ReadSide::Second)?;
            if na != nb || ba[..na] != bb[..nb] {
                return Ok(false);
            }
            if na == 0 {
                return Ok(true);
            }
            off += na as u64;
        }
    })
}

/// Reads at `off` until `buf` is full or the file ends; returns the bytes read.
fn fill_at(f: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], off + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl Entry {
    /// A directory listing's entry (`None` for `.` and `..`).
    fn listed(name: &std::ffi::CStr, t: rfs::FileType) -> Option<Entry> {
        let bytes = name.to_bytes();
        (bytes != b"." && bytes != b"..").then(|| Entry {
            name: OsString::from_vec(bytes.to_vec()),
            kind: kind_of(t),
        })
    }
}

/// The kind a directory listing reports (`None`: the file system did not say).
fn kind_of(t: rfs::FileType) -> Option<Kind> {
    match t {
        rfs::FileType::RegularFile => Some(Kind::File),
        rfs::FileType::Directory => Some(Kind::Dir),
        rfs::FileType::Symlink => Some(Kind::Symlink),
        rfs::FileType::Unknown => None,
        _ => Some(Kind::Special),
    }
}

fn normal_component(comp: std::path::Component<'_>) -> io::Result<&OsStr> {
    match comp {
        std::path::Component::Normal(n) => Ok(n),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "path component is not a plain name",
        )),
    }
}

/// The bytes of a name, for sorting and hashing without UTF-8.
pub fn name_bytes(name: &OsStr) -> &[u8] {
    name.as_bytes()
}

/// Device id and whether the folder is empty, for the "unmounted source"
/// check.
pub fn is_empty_dir(dir: &DirHandle) -> io::Result<bool> {
    Ok(dir.list()?.is_empty())
}

/// Whether an error only says the entry went away or changed kind since it
/// was stat'ed (a race with the user, not a failure).
pub(crate) fn changed_under_us(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::InvalidData
    ) || e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error())
        || e.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error())
}
