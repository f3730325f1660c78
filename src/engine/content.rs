//! content: what one file holds, written into another as `rsync -aXAS`
//! would: its bytes, its extended attributes and ACLs, then its mode and
//! times (last, since writing moves the times and an ACL moves the mode).
//!
//! The bytes go the cheapest way the file systems allow:
//! 1. a clone (`FICLONE`: btrfs, XFS with reflink) shares the blocks, so the
//!    copy and each version made from it cost no space until changed;
//! 2. else only the data regions (`SEEK_DATA` / `SEEK_HOLE`) are copied,
//!    in the kernel (`copy_file_range`, which clones ranges where it can),
//!    else through a buffer; holes stay holes, so a 2 GiB sparse file with
//!    8 KiB of data stays 8 KiB on the backup drive.
//!
//! Used for backups (`copy`) and restores (`restore`): one rule for both.

use std::fs::File;
use std::io;

use rustix::fs::{self as rfs, SeekFrom};
use rustix::io::Errno;

use super::fsops::{self, Meta};
use super::xattrs::{self, SetError, Xattrs};

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Bytes of content (holes included): less than asked if `from` shrank.
    pub bytes: u64,
    /// `from`'s attributes could not be kept: the target's file system
    /// has no room for them (told once per pair by the caller).
    pub xattrs_dropped: bool,
}

/// Whether a written file is given `meta`'s owner and group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The writer's (not root, or a copy the drive keeps no owner of).
    Leave,
    /// `meta`'s; a failure is the copy's.
    Set,
    /// `meta`'s where the target's file system keeps owners (a restore
    /// as root, to wherever it was asked to go).
    Try,
}

/// Writes `from` (described by `meta`, read before) into the new, empty
/// file `to`: bytes, attributes (`attrs`, or `from`'s own where `None`: a
/// restore from a drive that keeps none gives the recorded ones), owner,
/// mode, times.
pub fn write(
    from: &File,
    to: &File,
    meta: &Meta,
    owner: Owner,
    attrs: Option<&Xattrs>,
) -> io::Result<Written> {
    let bytes = copy_data(from, to, meta.size)?;
    let own;
    let want = match attrs {
        Some(x) => x,
        None => {
            own = xattrs::of_fd(from)?;
            &own
        }
    };
    let mut xattrs_dropped = false;
    if !want.is_empty() {
        match xattrs::apply(to, want, &Xattrs::default()) {
            Ok(()) => {}
            Err(SetError::Unsupported) => xattrs_dropped = true,
            Err(SetError::Io(e)) => return Err(e),
        }
    }
    // Before the mode: a change of owner clears set-user-ID bits.
    match owner {
        Owner::Leave => {}
        Owner::Set => fsops::set_file_owner(to, meta.uid, meta.gid)?,
        Owner::Try => {
            let _ = fsops::set_file_owner(to, meta.uid, meta.gid);
        }
    }
    fsops::set_file_mode(to, meta.mode)?;
    fsops::set_file_times(to, meta.atime, meta.mtime)?;
    Ok(Written {
        bytes,
        xattrs_dropped,
    })
}

/// Copies `len` bytes of `from` into the empty file `to` (both from offset
/// 0). Returns the bytes copied, holes included: less than `len` only when
/// `from` shrank under the copy.
pub fn copy_data(from: &File, to: &File, len: u64) -> io::Result<u64> {
    super::fsops::changing();
    if len == 0 {
        return Ok(0);
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if rfs::ioctl_ficlone(to, from).is_ok() {
        return Ok(fsops::file_meta(to)?.size.min(len));
    }
    let mut off = 0;
    // How far data was written: only a hole at the end needs the length set.
    let mut written_to = 0;
    while off < len {
        let start = match rfs::seek(from, SeekFrom::Data(off)) {
            Ok(s) => s,
            // Nothing but a hole from `off` to the end.
            Err(Errno::NXIO) => break,
            // No SEEK_DATA here: all of it is data.
            Err(_) => off,
        };
        if start >= len {
            break;
        }
        let end = match rfs::seek(from, SeekFrom::Hole(start)) {
            Ok(e) => e.min(len),
            Err(_) => len,
        };
        let copied = copy_range(from, to, start, end)?;
        if copied < end - start {
            return Ok(start + copied);
        }
        off = end;
        written_to = end;
    }
    // A hole at the end: the length says it.
    if written_to < len {
        to.set_len(len)?;
    }
    Ok(len)
}

/// Copies bytes `start..end` at the same offsets. Returns the bytes copied
/// (short when `from` ends early).
fn copy_range(from: &File, to: &File, start: u64, end: u64) -> io::Result<u64> {
    let mut done: u64 = 0;
    let want = end - start;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let mut in_off = start;
        let mut out_off = start;
        while done < want {
            let chunk = (want - done).min(1 << 30) as usize;
            match rfs::copy_file_range(from, Some(&mut in_off), to, Some(&mut out_off), chunk) {
                Ok(0) => return Ok(done),
                Ok(n) => done += n as u64,
                Err(Errno::INTR) => {}
                // Not between these two file systems: through a buffer.
                Err(Errno::XDEV)
                | Err(Errno::NOSYS)
                | Err(Errno::INVAL)
                | Err(Errno::OPNOTSUPP)
                | Err(Errno::PERM) => break,
                Err(e) => return Err(e.into()),
            }
        }
        if done >= want {
            return Ok(done);
        }
    }
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; (want - done).clamp(1, 1 << 20) as usize];
    while done < want {
        let n = ((want - done) as usize).min(buf.len());
        let got = match from.read_at(&mut buf[..n], start + done) {
            Ok(0) => break,
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all_at(&buf[..got], start + done)?;
        done += got as u64;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileExt, MetadataExt};

    #[test]
    fn holes_stay_holes_and_bytes_are_exact() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("sparse");
        let f = File::create(&src).unwrap();
        // Data at 0, at 64 MiB, and a hole to the end at 128 MiB.
        f.write_all_at(b"head", 0).unwrap();
        f.write_all_at(&[7u8; 8192], 64 << 20).unwrap();
        f.set_len(128 << 20).unwrap();
        drop(f);
        let from = File::open(&src).unwrap();
        let to = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.path().join("copy"))
            .unwrap();
        let meta = fsops::file_meta(&from).unwrap();
        let w = write(&from, &to, &meta, Owner::Leave, None).unwrap();
        assert_eq!(w.bytes, 128 << 20);
        assert!(matches!(fsops::same_content(&from, &to), Ok(true)));
        let copy = std::fs::metadata(dir.path().join("copy")).unwrap();
        assert_eq!(copy.len(), 128 << 20);
        // Allocated: the data and a little more, never the 128 MiB.
        assert!(
            copy.blocks() * 512 < 4 << 20,
            "{} bytes",
            copy.blocks() * 512
        );
        assert_eq!(copy.mtime_nsec(), meta.mtime.nsec as i64);
    }

    #[test]
    fn empty_and_fully_written_files() {
        let dir = tempfile::tempdir().unwrap();
        for (name, size) in [("empty", 0usize), ("full", 3 << 20)] {
            let p = dir.path().join(name);
            std::fs::write(&p, vec![9u8; size]).unwrap();
            let from = File::open(&p).unwrap();
            let to = File::create(dir.path().join(format!("{name}.copy"))).unwrap();
            assert_eq!(copy_data(&from, &to, size as u64).unwrap(), size as u64);
            assert_eq!(
                std::fs::read(dir.path().join(format!("{name}.copy"))).unwrap(),
                vec![9u8; size]
            );
        }
    }
}
