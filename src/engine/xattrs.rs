//! xattrs: a file's or folder's extended attributes and POSIX ACLs, read and
//! set as `rsync -X -A` does.
//!
//! Model: an entry's attributes are a sorted list of (name, value). Which
//! names are mirrored is one rule ([`mirrored`]): the user's own (`user.*`),
//! the ACLs (`system.posix_acl_access` and `…_default`, which is how the
//! kernel stores them), and `security.*` / `trusted.*` where the kernel lets
//! us set them (as root). Other `system.*` names belong to the file system.
//!
//! Symlinks have none here: Linux refuses `user.*` on them.
//!
//! A backup drive that cannot hold attributes (exFAT, a file system mounted
//! without them) answers `EOPNOTSUPP`: that is [`SetError::Unsupported`], told
//! once per pair by the caller, never a failure of the file. Where the probe
//! found none at all (`Keeps::xattrs`), they are recorded instead (see
//! `record`): in JSON as `[[name, value], …]`, each as the record writes
//! bytes (a string when UTF-8, else an array of numbers), so binary values
//! (an ACL) come back exactly.

use std::ffi::OsStr;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{self as rfs, XattrFlags};
use rustix::io::Errno;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::fsops::DirHandle;
use super::record::Bytes;

/// An entry's mirrored attributes, sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Xattrs(Vec<(Vec<u8>, Vec<u8>)>);

impl Xattrs {
    pub const EMPTY: Xattrs = Xattrs(Vec::new());

    /// From (name, value) pairs in any order; of a name given twice, the
    /// first value is kept.
    pub fn from_pairs(mut pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Xattrs {
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.dedup_by(|later, first| later.0 == first.0);
        Xattrs(pairs)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The names, for a message.
    pub fn names(&self) -> impl Iterator<Item = &[u8]> {
        self.0.iter().map(|(n, _)| n.as_slice())
    }

    /// The names whose value `other` does not hold (lacks, or holds another).
    pub fn not_in(&self, other: &Xattrs) -> Vec<&[u8]> {
        self.0
            .iter()
            .filter(|kv| !other.0.contains(kv))
            .map(|(n, _)| n.as_slice())
            .collect()
    }
}

impl Serialize for Xattrs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.0
                .iter()
                .map(|(n, v)| (Bytes(n.clone()), Bytes(v.clone()))),
        )
    }
}

impl<'de> Deserialize<'de> for Xattrs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Xattrs, D::Error> {
        let pairs = Vec::<(Bytes, Bytes)>::deserialize(d)?;
        // Sorted again: equality is what says "unchanged".
        Ok(Xattrs::from_pairs(
            pairs.into_iter().map(|(n, v)| (n.0, v.0)).collect(),
        ))
    }
}

/// Why attributes could not be set.
#[derive(Debug)]
pub enum SetError {
    /// The backup's file system keeps no such attributes (or not this big).
    Unsupported,
    Io(io::Error),
}

/// Whether the attribute `name` is mirrored.
pub fn mirrored(name: &[u8]) -> bool {
    name.starts_with(b"user.")
        || name.starts_with(b"security.")
        || name.starts_with(b"trusted.")
        || name == b"system.posix_acl_access"
        || name == b"system.posix_acl_default"
}

/// The attributes of an open file or folder.
pub fn of_fd(fd: impl AsFd) -> io::Result<Xattrs> {
    let fd = fd.as_fd();
    read(
        |buf| rfs::flistxattr(fd, buf),
        |name, buf| rfs::fgetxattr(fd, name, buf),
    )
}

/// The attributes of `name` in `dir`, without opening it (through the
/// folder's `/proc/self/fd` link, not following a symlink at `name`).
/// Empty for a symlink.
pub fn of_name(dir: &DirHandle, name: &OsStr) -> io::Result<Xattrs> {
    // Most files have none: asked without the `/proc` path where the
    // kernel can (a third of the cost; it is paid for every file a pass
    // looks at).
    if let Some(0) = list_at(dir, name)? {
        return Ok(Xattrs::default());
    }
    let path = proc_path(dir, name);
    read(
        |buf| rfs::llistxattr(&path, buf),
        |n, buf| rfs::lgetxattr(&path, n, buf),
    )
}

/// The length of `name`'s attribute list by `listxattrat(2)` (Linux 6.13),
/// not following a symlink. `None`: this kernel has no such call.
fn list_at(dir: &DirHandle, name: &OsStr) -> io::Result<Option<usize>> {
    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    {
        use std::os::fd::AsRawFd;
        use std::sync::atomic::{AtomicBool, Ordering};
        // One number on every architecture for system calls this new.
        const SYS_LISTXATTRAT: libc::c_long = 465;
        static MISSING: AtomicBool = AtomicBool::new(false);
        if MISSING.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let Ok(c) = std::ffi::CString::new(name.as_bytes()) else {
            return Ok(None);
        };
        // SAFETY: a valid descriptor and NUL-terminated name; a null list
        // with size 0 only asks for the length.
        let n = unsafe {
            libc::syscall(
                SYS_LISTXATTRAT,
                dir.as_fd().as_raw_fd(),
                c.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW as libc::c_uint,
                std::ptr::null_mut::<libc::c_char>(),
                0usize,
            )
        };
        if n >= 0 {
            return Ok(usize::try_from(n).ok());
        }
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOSYS) => {
                MISSING.store(true, Ordering::Relaxed);
                Ok(None)
            }
            Some(libc::EOPNOTSUPP) => Ok(Some(0)),
            _ => Err(e),
        };
    }
    #[allow(unreachable_code)]
    {
        let _ = (dir, name);
        Ok(None)
    }
}

fn proc_path(dir: &DirHandle, name: &OsStr) -> std::path::PathBuf {
    use std::os::fd::AsRawFd;
    let mut p = std::path::PathBuf::from(format!("/proc/self/fd/{}", dir.as_fd().as_raw_fd()));
    p.push(name);
    p
}

/// Reads the list, then each mirrored value. A file system without
/// attributes has none; a name gone between list and read is skipped.
fn read(
    list: impl Fn(&mut [u8]) -> rustix::io::Result<usize>,
    get: impl Fn(&std::ffi::CStr, &mut [u8]) -> rustix::io::Result<usize>,
) -> io::Result<Xattrs> {
    let mut names = vec![0u8; 1024];
    let n = loop {
        match list(&mut names) {
            Ok(n) => break n,
            Err(Errno::RANGE) if names.len() < (1 << 20) => {
                names.resize(names.len() * 4, 0);
            }
            Err(Errno::NOTSUP) => return Ok(Xattrs::default()),
            Err(e) => return Err(e.into()),
        }
    };
    let mut out = Vec::new();
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        if !mirrored(name) {
            continue;
        }
        let Ok(cname) = std::ffi::CString::new(name) else {
            continue;
        };
        let mut value = vec![0u8; 256];
        let len = loop {
            match get(&cname, &mut value) {
                Ok(len) => break Some(len),
                Err(Errno::RANGE) if value.len() < (1 << 17) => {
                    value.resize(value.len() * 16, 0);
                }
                Err(Errno::NODATA) => break None,
                Err(e) => return Err(e.into()),
            }
        };
        if let Some(len) = len {
            value.truncate(len);
            out.push((name.to_vec(), value));
        }
    }
    out.sort();
    Ok(Xattrs(out))
}

/// Makes `fd`'s attributes `want`, given that it holds `have`: sets what
/// differs, removes what `want` lacks. Names the kernel does not let us
/// set (`security.*` and `trusted.*` without privilege) are left alone.
pub fn apply(fd: impl AsFd, want: &Xattrs, have: &Xattrs) -> Result<(), SetError> {
    super::fsops::changing();
    let fd = fd.as_fd();
    for (name, value) in &want.0 {
        if have.0.iter().any(|(n, v)| n == name && v == value) {
            continue;
        }
        match rfs::fsetxattr(fd, OsStr::from_bytes(name), value, XattrFlags::empty()) {
            Ok(()) => {}
            Err(Errno::PERM) | Err(Errno::ACCESS) if privileged_name(name) => {}
            // E2BIG / ENOSPC: larger than this file system keeps per entry.
            Err(Errno::NOTSUP) | Err(Errno::TOOBIG) | Err(Errno::NOSPC) => {
                return Err(SetError::Unsupported);
            }
            Err(e) => return Err(SetError::Io(e.into())),
        }
    }
    for (name, _) in &have.0 {
        if want.0.iter().any(|(n, _)| n == name) {
            continue;
        }
        match rfs::fremovexattr(fd, OsStr::from_bytes(name)) {
            Ok(()) | Err(Errno::NODATA) => {}
            Err(Errno::PERM) | Err(Errno::ACCESS) if privileged_name(name) => {}
            Err(Errno::NOTSUP) => return Err(SetError::Unsupported),
            Err(e) => return Err(SetError::Io(e.into())),
        }
    }
    Ok(())
}

fn privileged_name(name: &[u8]) -> bool {
    name.starts_with(b"security.") || name.starts_with(b"trusted.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_names_are_mirrored() {
        let table: &[(&[u8], bool)] = &[
            (b"user.comment", true),
            (b"user.", true),
            (b"security.selinux", true),
            (b"trusted.overlay.opaque", true),
            (b"system.posix_acl_access", true),
            (b"system.posix_acl_default", true),
            (b"system.nfs4_acl", false),
            (b"system.data", false),
            (b"users.x", false),
        ];
        for (name, want) in table {
            assert_eq!(mirrored(name), *want, "{}", String::from_utf8_lossy(name));
        }
    }

    #[test]
    fn set_read_and_remove_on_a_real_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = std::fs::File::create(dir.path().join("a")).unwrap();
        let b = std::fs::File::create(dir.path().join("b")).unwrap();
        let Ok(()) = rfs::fsetxattr(&a, "user.k", b"v1", XattrFlags::empty()) else {
            // The temp folder's file system keeps no user attributes.
            return;
        };
        rfs::fsetxattr(&b, "user.old", b"x", XattrFlags::empty()).unwrap();
        let want = of_fd(&a).unwrap();
        assert_eq!(want.names().collect::<Vec<_>>(), vec![b"user.k".as_slice()]);
        let have = of_fd(&b).unwrap();
        apply(&b, &want, &have).unwrap();
        assert_eq!(of_fd(&b).unwrap(), want);
        let root = DirHandle::open_root(dir.path()).unwrap();
        assert_eq!(of_name(&root, OsStr::new("b")).unwrap(), want);
    }
}
