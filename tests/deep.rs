//! A folder tree 4,096 levels deep: `sync`, `verify`, `versions` (of one
//! file, of the whole backup, and `--stats`), removing the whole chain
//! from the backup, and `watch` (its first pass and a live change at the
//! bottom) all get through it without running out of stack. Every
//! walk keeps its folders in a list of its own, not in nested calls, so
//! depth costs memory and open handles, never stack.
//!
//! The chain's paths are far over PATH_MAX (4,096 bytes), so the test makes
//! and changes it one level at a time, relative to an open folder
//! (`mkdirat`, `openat`, `unlinkat`), as the binary itself reads it. The
//! working directory is never changed: tests run in parallel threads.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed set-up step should stop it loudly

use std::ffi::{CStr, OsStr};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

const DEPTH: usize = 4096;
/// What the bottom file holds.
const BOTTOM: &str = "the bottom of the chain\n";

/// Opens the folder `name` in `dir`, never following a symlink.
fn open_dir(dir: &OwnedFd, name: &CStr) -> OwnedFd {
    // SAFETY: a valid descriptor and a NUL-terminated name; the result is
    // checked before it is owned.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    assert!(
        fd >= 0,
        "openat {name:?}: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `fd` was just opened and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn open_root(path: &Path) -> OwnedFd {
    OwnedFd::from(File::open(path).unwrap())
}

/// Writes a new file `name` in `dir`.
fn write_at(dir: &OwnedFd, name: &CStr, content: &str) {
    // SAFETY: as in `open_dir`.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
            0o644 as libc::c_uint,
        )
    };
    assert!(
        fd >= 0,
        "create {name:?}: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: as in `open_dir`.
    let mut f = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    f.write_all(content.as_bytes()).unwrap();
}

/// Opens the file `name` in `dir` for reading.
fn open_file(dir: &OwnedFd, name: &CStr) -> OwnedFd {
    // SAFETY: as in `open_dir`.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    assert!(
        fd >= 0,
        "open {name:?}: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: as in `open_dir`.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Makes `DEPTH` nested folders `d` in `top`, with `f.txt` every 1,000
/// levels and `bottom.txt` at the bottom. Only the folder being filled is
/// open.
fn make_chain(top: &Path) {
    let mut dir = open_root(top);
    for level in 1..=DEPTH {
        // SAFETY: as in `open_dir`.
        let r = unsafe { libc::mkdirat(dir.as_raw_fd(), c"d".as_ptr(), 0o755) };
        assert_eq!(
            r,
            0,
            "mkdir at level {level}: {}",
            std::io::Error::last_os_error()
        );
        dir = open_dir(&dir, c"d");
        if level % 1000 == 0 {
            write_at(&dir, c"f.txt", &format!("level {level}\n"));
        }
    }
    write_at(&dir, c"bottom.txt", BOTTOM);
}

/// The bottom folder of the chain in `top`.
fn open_bottom(top: &Path) -> OwnedFd {
    let mut dir = open_root(top);
    for _ in 0..DEPTH {
        dir = open_dir(&dir, c"d");
    }
    dir
}

/// `top/d/d/…/d/name`: a path only the binary's own walks can follow.
fn deep_path(top: &Path, name: &str) -> PathBuf {
    let mut p = top.to_path_buf();
    for _ in 0..DEPTH {
        p.push("d");
    }
    p.push(name);
    p
}

/// Removes the world's trees on drop, before its `TempDir` tries: `rm`
/// walks any depth (fts), where a walk holding a handle per level may run
/// out of open files.
struct RemoveDeep<'a>(&'a World);

impl Drop for RemoveDeep<'_> {
    fn drop(&mut self) {
        let _ = Command::new("chmod")
            .args(["-R", "u+rwx"])
            .arg(self.0.dir.path())
            .status();
        let _ = Command::new("rm")
            .arg("-rf")
            .arg(&self.0.src)
            .arg(&self.0.dst)
            .status();
    }
}

#[test]
fn a_tree_4096_levels_deep_is_mirrored_verified_versioned_and_removed() {
    let w = World::new();
    let _clean = RemoveDeep(&w);
    make_chain(&w.src);
    w.write("keep.txt", "stays, so the source is never empty");

    w.sync(&[]).ok().no_debug_dump();
    let bottom = open_bottom(&w.dst);
    let mut copied = String::new();
    std::io::Read::read_to_string(
        &mut File::from(open_file(&bottom, c"bottom.txt")),
        &mut copied,
    )
    .unwrap();
    assert_eq!(copied, BOTTOM);
    drop(bottom);

    let verify = |w: &World| {
        let args: [&OsStr; 3] = ["verify".as_ref(), w.src.as_os_str(), w.dst.as_os_str()];
        w.run(args)
    };
    verify(&w)
        .ok()
        .no_debug_dump()
        // The folders, the 4 files on the way, bottom.txt and keep.txt.
        .stdout_has(&format!("same: {} entries compared", DEPTH + 6));

    // A file deleted at the bottom is kept as a version.
    let src_bottom = open_bottom(&w.src);
    // SAFETY: as in `open_dir`.
    let r = unsafe { libc::unlinkat(src_bottom.as_raw_fd(), c"bottom.txt".as_ptr(), 0) };
    assert_eq!(r, 0, "unlink: {}", std::io::Error::last_os_error());
    drop(src_bottom);
    w.sync(&[]).ok().no_debug_dump();
    verify(&w).ok().stdout_has("same: ");

    // Named by its path in DST (over 8,000 bytes: the command line takes it).
    let kept = deep_path(&w.dst, "bottom.txt");
    assert!(kept.as_os_str().len() > 2 * DEPTH);
    w.run([OsStr::new("versions"), kept.as_os_str()])
        .ok()
        .no_debug_dump()
        .stdout_has("1 version kept")
        .stdout_has("deleted");
    // The whole backup's versions: the time folder is walked to the bottom.
    let r = w.run([OsStr::new("versions"), w.dst.as_os_str()]);
    r.ok().no_debug_dump().stdout_has("/d/bottom.txt");
    let r = w.run([
        OsStr::new("versions"),
        OsStr::new("--stats"),
        OsStr::new("--json"),
        w.dst.as_os_str(),
    ]);
    r.ok()
        .no_debug_dump()
        .stdout_has(&format!("\"bytes\":{},\"files\":1,", BOTTOM.len()));

    // The chain gone from SRC, with versions off: the backup removes it,
    // content before folders.
    let st = Command::new("rm")
        .arg("-rf")
        .arg(w.src.join("d"))
        .status()
        .unwrap();
    assert!(st.success());
    w.sync(&["--no-versions", "--allow-mass-delete"])
        .ok()
        .no_debug_dump();
    assert!(!w.dst.join("d").exists(), "the chain is still in DST");
    verify(&w).ok().stdout_has("same: ");
}

/// `watch` on the same chain: the first pass, a file written at the
/// bottom while watching, and a clean stop, all without running out of
/// stack (4,096 folders watched, each named relative to its parent).
#[test]
fn a_tree_4096_levels_deep_is_watched_and_a_change_at_the_bottom_mirrored() {
    let w = World::new();
    let _clean = RemoveDeep(&w);
    make_chain(&w.src);
    w.write("keep.txt", "stays, so the source is never empty");
    let log = w.path("watch.log");
    let mut child = w
        .cmd()
        .arg("watch")
        .arg(&w.src)
        .arg(&w.dst)
        .arg("-v")
        .stdout(std::process::Stdio::null())
        .stderr(File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = std::time::Duration::from_secs(120);
    let ready = wait_for(deadline, || {
        read_log().contains("mirrored; watching for changes")
            || child.try_wait().ok().flatten().is_some()
    });
    assert!(
        ready && read_log().contains("mirrored; watching for changes"),
        "the watcher never said it was watching:\n{}",
        read_log()
    );
    let read_at = |top: &Path, name: &CStr| -> Option<String> {
        let bottom = open_bottom(top);
        // SAFETY: as in `open_dir`.
        let fd = unsafe {
            libc::openat(
                bottom.as_raw_fd(),
                name.as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: a descriptor just opened, owned from here.
        let mut f = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let mut s = String::new();
        std::io::Read::read_to_string(&mut f, &mut s).ok()?;
        Some(s)
    };
    assert_eq!(read_at(&w.dst, c"bottom.txt").as_deref(), Some(BOTTOM));

    // Written at the bottom while watching: it arrives.
    write_at(&open_bottom(&w.src), c"new.txt", "written while watching\n");
    let arrived = wait_for(deadline, || {
        read_at(&w.dst, c"new.txt").as_deref() == Some("written while watching\n")
    });
    assert!(
        arrived,
        "the change at the bottom never arrived:\n{}",
        read_log()
    );

    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let st = child.wait().unwrap();
    let text = read_log();
    assert_eq!(st.code(), Some(0), "{text}");
    assert!(
        !text.contains("overflow") && !text.contains("panicked"),
        "{text}"
    );
}
