//! Fidelity like `rsync -aHAXS`, checked with the tools a user would:
//! extended attributes and ACLs (`getfattr`, `setfacl`), hard links (same
//! inode in DST), sparse files (`du`: blocks allocated), times beyond what
//! the backup's file system keeps, and clones on a loop-mounted btrfs
//! (`filefrag`: shared extents). Each is also reported by `verify` when
//! DST differs, and a second `sync` changes nothing.

use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::process::Command;

use crate::safety::{Mount, mount};
use crate::support::*;

/// `getfattr -d -m - --absolute-names PATH`: every attribute, ACLs included,
/// without the `# file:` line (the paths differ).
pub(crate) fn attrs(p: &Path) -> String {
    let out = Command::new("getfattr")
        .args(["-d", "-m", "-", "--absolute-names", "-e", "hex"])
        .arg(p)
        .output()
        .expect("getfattr (package attr)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("# file:") && !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sets a user attribute; `false` when the temp folder's file system keeps
/// none (then the test cannot run here).
fn try_setfattr(p: &Path, name: &str, value: &str) -> bool {
    Command::new("setfattr")
        .args(["-n", name, "-v", value])
        .arg(p)
        .status()
        .unwrap()
        .success()
}

fn blocks_bytes(p: &Path) -> u64 {
    std::fs::symlink_metadata(p).unwrap().blocks() * 512
}

fn same_bytes(a: &Path, b: &Path) -> bool {
    Command::new("cmp")
        .args(["-s"])
        .arg(a)
        .arg(b)
        .status()
        .unwrap()
        .success()
}

/// A second `sync` that finds nothing to do.
#[track_caller]
fn nothing_to_do(w: &World) {
    nothing_to_do_into(w, &w.dst);
}

/// A `sync` of SRC into `dst` that finds nothing to do.
#[track_caller]
fn nothing_to_do_into(w: &World, dst: &Path) {
    let r = w.run(["sync", w.src.to_str().unwrap(), dst.to_str().unwrap()]);
    r.ok()
        .stdout_has("copied 0 files")
        .stdout_has("versioned 0");
    assert!(!r.stdout.contains("updated"), "{}", r.stdout);
}

/// `restore DST --at now --to DIR`: the backup as it is now, given back
/// beside (into the World's `restored/`); returns where SRC's top landed.
#[track_caller]
fn restore_beside(w: &World, dst: &Path) -> std::path::PathBuf {
    let out = w.path("restored");
    std::fs::create_dir_all(&out).unwrap();
    w.run([
        "restore",
        dst.to_str().unwrap(),
        "--at",
        "now",
        "--to",
        out.to_str().unwrap(),
    ])
    .ok();
    out.join("src")
}

#[test]
fn extended_attributes_and_acls_are_kept_compared_and_followed() {
    let w = World::new();
    let doc = w.write("doc.txt", "text");
    let sub = w.src.join("shared");
    std::fs::create_dir_all(&sub).unwrap();
    w.write("shared/plan.txt", "plan");
    if !try_setfattr(&doc, "user.comment", "first draft") {
        return skip("the temp folder's file system keeps no user attributes");
    }
    run(
        "setfattr",
        &[
            "-n",
            "user.tags",
            "-v",
            "work,urgent",
            doc.to_str().unwrap(),
        ],
    );
    run("setfacl", &["-m", "u:nobody:rw", doc.to_str().unwrap()]);
    // A folder's default ACL (what new files in it inherit) and its own.
    run(
        "setfacl",
        &["-d", "-m", "u:nobody:rx", sub.to_str().unwrap()],
    );
    run("setfacl", &["-m", "u:nobody:rx", sub.to_str().unwrap()]);
    run(
        "setfattr",
        &["-n", "user.project", "-v", "x", sub.to_str().unwrap()],
    );
    if is_root() {
        // As root, the security and trusted namespaces too (rsync -X as root).
        let d = doc.to_str().unwrap();
        run("setfattr", &["-n", "security.mirrortray", "-v", "label", d]);
        run("setfattr", &["-n", "trusted.mirrortray", "-v", "t", d]);
    }

    w.sync(&[]).ok();
    for rel in ["doc.txt", "shared", "shared/plan.txt"] {
        let (s, d) = (attrs(&w.src.join(rel)), attrs(&w.dst.join(rel)));
        assert_eq!(s, d, "{rel}");
    }
    assert!(attrs(&w.dst.join("doc.txt")).contains("system.posix_acl_access"));
    if is_root() {
        assert!(attrs(&w.dst.join("doc.txt")).contains("trusted.mirrortray"));
        assert!(attrs(&w.dst.join("doc.txt")).contains("security.mirrortray"));
    }
    assert!(attrs(&w.dst.join("shared")).contains("system.posix_acl_default"));
    assert_mirrored(&w.src, &w.dst);
    nothing_to_do(&w);
    w.run(["verify", w.src.to_str().unwrap(), w.dst.to_str().unwrap()])
        .ok()
        .stdout_has("same");

    // Changed in SRC, one value and one name gone: verify names what
    // differs, sync follows without a copy and without a version.
    run(
        "setfattr",
        &[
            "-n",
            "user.comment",
            "-v",
            "second draft",
            doc.to_str().unwrap(),
        ],
    );
    run("setfattr", &["-x", "user.project", sub.to_str().unwrap()]);
    let v = w.run(["verify", w.src.to_str().unwrap(), w.dst.to_str().unwrap()]);
    v.code(1)
        .stdout_has("xattrs   doc.txt: user.comment in source, user.comment in backup")
        .stdout_has("xattrs   shared: none in source, user.project in backup");
    let r = w.sync(&[]);
    r.ok()
        .stdout_has("copied 0 files")
        .stdout_has("versioned 0");
    for rel in ["doc.txt", "shared"] {
        assert_eq!(attrs(&w.src.join(rel)), attrs(&w.dst.join(rel)), "{rel}");
    }
    assert!(w.all_version_contents().is_empty());
    nothing_to_do(&w);
}

/// Every entry's owner and group under `root` (itself left out), by path.
fn owners(root: &Path) -> Vec<(String, u32, u32)> {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            let m = e.path().symlink_metadata().unwrap();
            let rel = e.path().strip_prefix(root).unwrap();
            (rel.display().to_string(), m.uid(), m.gid())
        })
        .filter(|(rel, _, _)| !rel.starts_with(".mirrortray"))
        .collect()
}

/// The `names` under `root` are one file (one inode).
#[track_caller]
fn one_file(root: &Path, names: &[&str]) {
    let ino = |n: &str| std::fs::symlink_metadata(root.join(n)).unwrap().ino();
    for n in &names[1..] {
        assert_eq!(
            ino(names[0]),
            ino(n),
            "{} and {n} in {}",
            names[0],
            root.display()
        );
    }
}

/// `chown -h UID:GID` on each of `paths` under `root`.
fn chown(root: &Path, ids: &str, paths: &[&str]) {
    for p in paths {
        run("chown", &["-h", ids, root.join(p).to_str().unwrap()]);
    }
}

/// Like `rsync -a` as root: owners and groups are kept, compared by
/// `verify`, and a change of owner alone is mirrored without a copy or a
/// version; a restore gives them back.
#[test]
fn owners_are_kept_as_root_compared_and_followed() {
    if !is_root() {
        return skip("only root gives files away");
    }
    let w = World::new();
    w.write("theirs.txt", "someone else's");
    w.write("mine.txt", "root's");
    w.write("team/plan.txt", "plan");
    std::os::unix::fs::symlink("plan.txt", w.src.join("team/link")).unwrap();
    chown(
        &w.src,
        "1234:5678",
        &["theirs.txt", "team", "team/plan.txt", "team/link"],
    );
    w.sync(&[]).ok();
    assert_eq!(owners(&w.src), owners(&w.dst));
    nothing_to_do(&w);
    let args = [w.src.to_str().unwrap(), w.dst.to_str().unwrap()];
    w.run(["verify", args[0], args[1]]).ok().stdout_has("same");

    chown(&w.src, "4321:8765", &["theirs.txt", "team/link"]);
    chown(&w.src, "0:5678", &["team"]);
    let v = w.run(["verify", args[0], args[1]]);
    v.code(1)
        .stdout_has("theirs.txt: 4321:8765 in source, 1234:5678 in backup")
        .stdout_has("team/link: 4321:8765 in source")
        .stdout_has("team: 0:5678 in source");
    w.sync(&[])
        .ok()
        .stdout_has("copied 0 files")
        .stdout_has("versioned 0");
    assert_eq!(owners(&w.src), owners(&w.dst));
    assert!(w.all_version_contents().is_empty());
    nothing_to_do(&w);
    w.run(["verify", args[0], args[1]]).ok().stdout_has("same");
    let back = restore_at(&w, &w.dst, "now", "restored");
    assert_eq!(owners(&w.src), owners(&back));
}

#[test]
fn hard_links_in_the_source_are_hard_links_in_the_backup() {
    let w = World::new();
    let a = w.write("a.txt", "one file, three names");
    std::fs::create_dir_all(w.src.join("deep/er")).unwrap();
    std::fs::hard_link(&a, w.src.join("b.txt")).unwrap();
    std::fs::hard_link(&a, w.src.join("deep/er/c.txt")).unwrap();
    let x = w.write("x.bin", vec![7u8; 100_000]);
    std::fs::hard_link(&x, w.src.join("deep/x-again.bin")).unwrap();
    w.write("alone.txt", "one name");

    w.sync(&[]).ok();
    let ino = |rel: &str| std::fs::metadata(w.dst.join(rel)).unwrap().ino();
    assert_eq!(ino("a.txt"), ino("b.txt"));
    assert_eq!(ino("a.txt"), ino("deep/er/c.txt"));
    assert_eq!(ino("x.bin"), ino("deep/x-again.bin"));
    assert_ne!(ino("a.txt"), ino("x.bin"));
    assert_eq!(
        std::fs::metadata(w.dst.join("alone.txt")).unwrap().nlink(),
        1
    );
    assert_mirrored(&w.src, &w.dst);
    nothing_to_do(&w);

    // A backup holding separate copies (made before links were kept, or by
    // hand): verify says so; sync links them, keeping no version of a copy
    // that held the same content.
    std::fs::remove_file(w.dst.join("b.txt")).unwrap();
    run(
        "cp",
        &[
            "-p",
            w.dst.join("a.txt").to_str().unwrap(),
            w.dst.join("b.txt").to_str().unwrap(),
        ],
    );
    let v = w.run(["verify", w.src.to_str().unwrap(), w.dst.to_str().unwrap()]);
    v.code(1).stdout_has("hardlink").stdout_has("b.txt");
    w.sync(&[]).ok().stdout_has("versioned 0");
    assert_eq!(ino("a.txt"), ino("b.txt"));
    assert!(w.all_version_contents().is_empty());
    w.run(["verify", w.src.to_str().unwrap(), w.dst.to_str().unwrap()])
        .ok()
        .stdout_has("same");

    // A restore makes them one file again.
    let back = restore_at(&w, &w.dst, "now", "restored");
    one_file(&back, &["a.txt", "b.txt", "deep/er/c.txt"]);
    one_file(&back, &["x.bin", "deep/x-again.bin"]);

    // A name SRC unlinks from the group and writes anew: DST follows, and
    // the others keep their content.
    std::fs::remove_file(w.src.join("b.txt")).unwrap();
    w.write("b.txt", "a file of its own now");
    w.sync(&[]).ok();
    assert_ne!(ino("a.txt"), ino("b.txt"));
    assert_mirrored(&w.src, &w.dst);
    w.run(["verify", w.src.to_str().unwrap(), w.dst.to_str().unwrap()])
        .ok()
        .stdout_has("same");
}

#[test]
fn sparse_files_stay_sparse_in_the_backup_its_versions_and_a_restore() {
    const GIB: u64 = 1 << 30;
    let w = World::new();
    let p = w.src.join("disk.img");
    let f = std::fs::File::create(&p).unwrap();
    f.write_all_at(&[1u8; 4096], 0).unwrap();
    f.write_all_at(&[2u8; 4096], GIB / 2).unwrap();
    f.set_len(GIB).unwrap();
    drop(f);
    w.sync(&[]).ok();
    let copy = w.dst.join("disk.img");
    assert_eq!(std::fs::metadata(&copy).unwrap().len(), GIB);
    assert!(same_bytes(&p, &copy));
    assert!(
        blocks_bytes(&copy) < 1 << 20,
        "the backup's copy takes {} bytes",
        blocks_bytes(&copy)
    );
    nothing_to_do(&w);

    // Changed: the old copy becomes a version, sparse as it was.
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.write_all_at(b"changed", GIB / 4).unwrap();
    drop(f);
    w.sync(&[]).ok().stdout_has("versioned 1");
    assert!(same_bytes(&p, &copy));
    let version = walkdir::WalkDir::new(w.dst.join(".mirrortray/versions"))
        .into_iter()
        .filter_map(|e| e.ok())
        .find(|e| e.file_type().is_file() && e.file_name() == "disk.img")
        .expect("a version of disk.img")
        .into_path();
    assert!(blocks_bytes(&copy) < 1 << 20, "{}", blocks_bytes(&copy));
    assert!(
        blocks_bytes(&version) < 1 << 20,
        "{}",
        blocks_bytes(&version)
    );

    // Restored beside (by default as it was before its last change): the
    // old bytes, sparse too.
    let out = w.path("restored");
    std::fs::create_dir_all(&out).unwrap();
    w.run([
        "restore",
        copy.to_str().unwrap(),
        "--to",
        out.to_str().unwrap(),
    ])
    .ok();
    let back = out.join("disk.img");
    assert!(same_bytes(&back, &version));
    assert!(!same_bytes(&back, &copy));
    assert!(blocks_bytes(&back) < 1 << 20, "{}", blocks_bytes(&back));
}

/// A loop-mounted file system image of `size` made by `mkfs` (`None` when
/// this machine cannot; a failure in CI).
fn loop_fs(w: &World, name: &str, size: &str, mkfs: &[&str]) -> Option<Mount> {
    let img = w.path(&format!("{name}.img"));
    run("truncate", &["-s", size, img.to_str().unwrap()]);
    let mut args: Vec<&str> = mkfs[1..].to_vec();
    args.push(img.to_str().unwrap());
    let made = Command::new(mkfs[0]).args(&args).output();
    match made {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            skip(&format!(
                "{} failed: {}",
                mkfs[0],
                String::from_utf8_lossy(&o.stderr)
            ));
            return None;
        }
        Err(e) => {
            skip(&format!("{} is not installed: {e}", mkfs[0]));
            return None;
        }
    }
    mount(&["-o", "loop", img.to_str().unwrap()], &w.path(name))
}

#[test]
fn a_time_the_backup_drive_cannot_hold_is_kept_as_its_nearest_and_not_copied_again() {
    let w = World::new();
    // SRC on tmpfs (64-bit times), DST on ext4 (up to 2446 at most).
    let Some(_s) = mount(&["-t", "tmpfs", "-o", "size=8m", "tmpfs"], &w.src) else {
        return;
    };
    let Some(_d) = loop_fs(&w, "ext4", "64M", &["mkfs.ext4", "-q", "-F"]) else {
        return;
    };
    let dst = w.path("ext4/backup");
    let far = w.write("far-future.txt", "from the year 2500");
    run(
        "touch",
        &["-d", "2500-06-01 12:00:00.5", far.to_str().unwrap()],
    );
    w.write("today.txt", "now");
    let sync = || w.run(["sync", w.src.to_str().unwrap(), dst.to_str().unwrap()]);
    sync().ok();
    let kept = std::fs::metadata(dst.join("far-future.txt"))
        .unwrap()
        .mtime();
    let src_time = std::fs::metadata(&far).unwrap().mtime();
    assert!(kept < src_time, "DST holds {kept}, SRC {src_time}");
    assert!(kept > 2_000_000_000, "not the nearest it can hold: {kept}");
    for _ in 0..2 {
        sync()
            .ok()
            .stdout_has("copied 0 files")
            .stdout_has("versioned 0");
    }
    let v = w.run(["verify", w.src.to_str().unwrap(), dst.to_str().unwrap()]);
    v.ok()
        .stdout_has("same")
        .stdout_has("1 entry is dated beyond what the backup's file system can store");
    // A real change is still one.
    std::fs::write(&far, "rewritten").unwrap();
    run("touch", &["-d", "2500-06-02", far.to_str().unwrap()]);
    sync()
        .ok()
        .stdout_has("copied 1 file")
        .stdout_has("versioned 1");
    assert_eq!(
        std::fs::read(dst.join("far-future.txt")).unwrap(),
        b"rewritten"
    );
}

#[test]
fn copies_on_btrfs_share_their_blocks_with_the_source() {
    clones_on("btrfs", "256M", &["mkfs.btrfs", "-q", "-f"]);
}

#[test]
fn copies_on_xfs_with_reflink_share_their_blocks_with_the_source() {
    clones_on("xfs", "320M", &["mkfs.xfs", "-q", "-f", "-m", "reflink=1"]);
}

/// Writes out the loop file system holding `p` (`syncfs`: that one only, so
/// the tests beside it are not held up by a flush of every disk).
fn flush(p: &Path) {
    run("sync", &["-f", p.to_str().unwrap()]);
}

/// On a loop-mounted `fs` made by `mkfs`: a copy and the version a change
/// leaves share their blocks with the source (`filefrag`: shared extents).
fn clones_on(fs: &str, size: &str, mkfs: &[&str]) {
    let w = World::new();
    let Some(_m) = loop_fs(&w, fs, size, mkfs) else {
        return;
    };
    let src = w.path(&format!("{fs}/src"));
    let dst = w.path(&format!("{fs}/dst"));
    std::fs::create_dir_all(&src).unwrap();
    let big = src.join("video.bin");
    let data: Vec<u8> = (0..48u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(&big, &data).unwrap();
    flush(&src);
    let shared = |p: &Path| {
        let out = Command::new("filefrag").arg("-v").arg(p).output().unwrap();
        String::from_utf8_lossy(&out.stdout).contains("shared")
    };
    assert!(!shared(&big));
    w.run(["sync", src.to_str().unwrap(), dst.to_str().unwrap()])
        .ok();
    flush(&src);
    let copy = dst.join("video.bin");
    assert!(same_bytes(&big, &copy));
    assert!(shared(&copy), "the backup's copy is not a clone");
    // The version a change leaves shares them too.
    let f = std::fs::OpenOptions::new().write(true).open(&big).unwrap();
    f.write_all_at(b"edit", 1 << 20).unwrap();
    drop(f);
    w.run(["sync", src.to_str().unwrap(), dst.to_str().unwrap()])
        .ok()
        .stdout_has("versioned 1");
    flush(&src);
    assert!(same_bytes(&big, &copy));
    assert!(shared(&copy));
}

/// A FUSE file system (`exfat-fuse`, `ntfs-3g`) on a loop device holding
/// an image made by `mkfs`; unmounted and the device let go when dropped.
struct FuseDrive {
    dir: std::path::PathBuf,
    dev: String,
    mount_cmd: String,
}

impl FuseDrive {
    /// Unplugged and plugged in again: what the driver shows from its
    /// memory is gone, what the drive stored is read back.
    fn remount(&self) {
        run("umount", &[self.dir.to_str().unwrap()]);
        let o = self.mount().output().unwrap();
        assert!(o.status.success(), "{o:?}");
    }

    /// `mount_cmd` (a command and its first arguments) with the device
    /// and the folder.
    fn mount(&self) -> Command {
        let mut words = self.mount_cmd.split_whitespace();
        let mut c = Command::new(words.next().unwrap_or_default());
        c.args(words).arg(&self.dev).arg(&self.dir);
        c
    }
}

impl Drop for FuseDrive {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

fn fuse_drive(w: &World, name: &str, mkfs: &[&str], mount_cmd: &str) -> Option<FuseDrive> {
    if !is_root() {
        skip("a loop device needs root");
        return None;
    }
    let img = w.path(&format!("{name}.img"));
    run("truncate", &["-s", "64M", img.to_str().unwrap()]);
    let mut args: Vec<&str> = mkfs[1..].to_vec();
    args.push(img.to_str().unwrap());
    match Command::new(mkfs[0]).args(&args).output() {
        Ok(o) if o.status.success() => {}
        other => {
            skip(&format!("{} cannot make the image: {other:?}", mkfs[0]));
            return None;
        }
    }
    let out = Command::new("losetup")
        .args(["-f", "--show"])
        .arg(&img)
        .output()
        .unwrap();
    if !out.status.success() {
        skip(&format!(
            "no loop device: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
        return None;
    }
    let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let dir = w.path(name);
    std::fs::create_dir_all(&dir).unwrap();
    let drive = FuseDrive {
        dir,
        dev,
        mount_cmd: mount_cmd.to_string(),
    };
    let m = drive.mount().output();
    match m {
        Ok(o) if o.status.success() => Some(drive),
        other => {
            skip(&format!("{mount_cmd} failed: {other:?}"));
            None
        }
    }
}

/// What people keep in a folder, with what FAT-family and NTFS drives
/// cannot all hold: modes, a symlink, names with `:` and a trailing dot,
/// two names that differ only in case, nanosecond and pre-1980 times.
fn awkward_tree(w: &World) {
    use std::os::unix::fs::PermissionsExt;
    let secret = w.write("secret.txt", "mine only");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let script = w.write("bin/run.sh", "#!/bin/sh\necho hi\n");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("secret.txt", w.src.join("link")).unwrap();
    w.write("a:b", "colon");
    w.write("x.", "trailing dot");
    w.write("Report", "capital");
    w.write("report", "small");
    std::fs::hard_link(&secret, w.src.join("secret-again.txt")).unwrap();
    let old = w.write("old.txt", "from 1970");
    run("touch", &["-d", "@1", old.to_str().unwrap()]);
    run(
        "touch",
        &[
            "-d",
            "2024-05-06 07:08:09.123456789",
            w.src.join("bin").to_str().unwrap(),
        ],
    );
}

#[test]
fn an_exfat_backup_drive_is_up_to_date_when_as_exact_as_it_can_be() {
    let w = World::new();
    let Some(drive) = fuse_drive(&w, "exfat", &["mkfs.exfat"], "mount.exfat-fuse") else {
        return;
    };
    awkward_tree(&w);
    let dst = drive.dir.join("Backups/src");
    let sync = || w.run(["sync", w.src.to_str().unwrap(), dst.to_str().unwrap()]);
    let first = sync();
    // What it cannot hold (the symlink, `a:b`, `report`, modes, times) is
    // recorded, and said once: a note, not a skip or a failure.
    first.ok().stdout_has("failed 0").stdout_has("skipped 0");
    first.stderr_has("the backup drive cannot hold everything the source has");
    for _ in 0..2 {
        nothing_to_do_into(&w, &dst);
    }
    let v = w.run(["verify", w.src.to_str().unwrap(), dst.to_str().unwrap()]);
    v.ok()
        .stdout_has("same")
        .stdout_has("times compared to the second");
    assert!(!v.stdout.contains("skipped"), "{}", v.stdout);
    // A changed byte is still caught.
    std::fs::write(w.src.join("x."), "trailing Dot").unwrap();
    run(
        "touch",
        &[
            "-r",
            dst.join("x.").to_str().unwrap(),
            w.src.join("x.").to_str().unwrap(),
        ],
    );
    w.run([
        "verify",
        "--checksum",
        w.src.to_str().unwrap(),
        dst.to_str().unwrap(),
    ])
    .code(1)
    .stdout_has("content  x.: bytes differ");
    std::fs::write(w.src.join("x."), "trailing dot").unwrap();
    sync().ok();

    // Given back onto ext4 exactly, with what the record adds to what the
    // drive held (see `an_exfat_backup_drive_gives_back_everything_exactly`).
    let back = restore_beside(&w, &dst);
    assert_mirrored(&w.src, &back);
    drop(drive);
}

#[test]
fn an_ntfs_backup_drive_keeps_links_and_names_and_is_up_to_date() {
    let w = World::new();
    let Some(drive) = fuse_drive(&w, "ntfs", &["mkntfs", "-q", "-F", "-f"], "ntfs-3g") else {
        return;
    };
    awkward_tree(&w);
    let dst = drive.dir.join("Backups/src");
    let sync = || w.run(["sync", w.src.to_str().unwrap(), dst.to_str().unwrap()]);
    sync().ok().stdout_has("failed 0").stdout_has("skipped 0");
    for _ in 0..2 {
        nothing_to_do_into(&w, &dst);
    }
    w.run(["verify", w.src.to_str().unwrap(), dst.to_str().unwrap()])
        .ok()
        .stdout_has("same");
    assert_eq!(
        std::fs::read_link(dst.join("link")).unwrap(),
        std::path::PathBuf::from("secret.txt")
    );
    let ino = |rel: &str| std::fs::metadata(dst.join(rel)).unwrap().ino();
    assert_eq!(
        ino("secret.txt"),
        ino("secret-again.txt"),
        "hard link on NTFS"
    );
    for rel in ["a:b", "x.", "Report", "report", "old.txt"] {
        assert_eq!(
            std::fs::read(dst.join(rel)).unwrap(),
            std::fs::read(w.src.join(rel)).unwrap(),
            "{rel}"
        );
    }
    let back = restore_beside(&w, &dst);
    assert_eq!(
        std::fs::read_link(back.join("link")).unwrap(),
        std::path::PathBuf::from("secret.txt")
    );
    assert_eq!(std::fs::read_to_string(back.join("a:b")).unwrap(), "colon");
    assert_eq!(
        std::fs::read_to_string(back.join("report")).unwrap(),
        "small"
    );
    drop(drive);
}

/// `awkward_tree`, and more that a drive may not hold: absolute and
/// dangling symlinks, a private folder, a file with the group's write bit,
/// a folder with a refused name and two folders whose names differ only in
/// case (each with content); every entry but `old.txt` (1970) then gets a
/// time to the nanosecond, folders after their content.
fn exact_tree(w: &World) {
    use std::os::unix::fs::{PermissionsExt, symlink};
    awkward_tree(w);
    symlink("/etc/hostname", w.src.join("abs-link")).unwrap();
    symlink("nowhere/at/all", w.src.join("dangling")).unwrap();
    w.write("private/key", "k");
    let mode = |p: &str, m: u32| {
        std::fs::set_permissions(w.src.join(p), std::fs::Permissions::from_mode(m)).unwrap()
    };
    mode("private", 0o700);
    w.write("shared.txt", "group writes");
    mode("shared.txt", 0o664);
    w.write("c:d/inner.txt", "inside a refused folder");
    symlink("inner.txt", w.src.join("c:d/link")).unwrap();
    std::fs::create_dir_all(w.src.join("c:d/empty")).unwrap();
    w.write("Docs/a.txt", "capital folder");
    w.write("docs/b.txt", "small folder");
    mode("docs/b.txt", 0o640);
    set_fine_times(&w.src, 0);
}

/// Sets every entry under `root` but `old.txt` to its own time with
/// nanoseconds (`salt` moves them all), folders after their content.
fn set_fine_times(root: &Path, salt: i64) {
    for (i, e) in walkdir::WalkDir::new(root)
        .min_depth(1)
        .contents_first(true)
        .sort_by_file_name()
        .into_iter()
        .enumerate()
    {
        let e = e.unwrap();
        if e.file_name() == "old.txt" {
            continue;
        }
        let i = i as i64 + salt;
        let t = filetime::FileTime::from_unix_time(
            1_700_000_000 + i * 7,
            (123_456_789 + i * 1_001) as u32,
        );
        filetime::set_symlink_file_times(e.path(), t, t).unwrap();
    }
}

/// `restore DST --at AT --to w/NAME`; returns where SRC's top landed.
#[track_caller]
fn restore_at(w: &World, dst: &Path, at: &str, name: &str) -> std::path::PathBuf {
    let out = w.path(name);
    std::fs::create_dir_all(&out).unwrap();
    w.run([
        "restore",
        dst.to_str().unwrap(),
        "--at",
        at,
        "--to",
        out.to_str().unwrap(),
    ])
    .ok();
    out.join("src")
}

fn utc_now() -> String {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%S.%6NZ"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// What a drive cannot hold is recorded in `.mirrortray/`: the backup is
/// up to date, a second pass changes nothing, and a restore onto ext4 gives
/// back every entry exactly (types, bytes, modes, times to the nanosecond,
/// link targets, names). Then changes to recorded entries (a mode, a link's
/// target, a refused name's bytes, a file gone from a case-twin folder) are
/// followed, restored exactly, and what they replaced is still there as of
/// before.
fn a_drive_gives_back_everything(w: &World, drive: &FuseDrive) {
    exact_tree(w);
    // Owners the drive cannot hold (exFAT refuses them, NTFS without a user
    // mapping keeps root): recorded, compared and given back as root.
    chown(
        &w.src,
        "1234:5678",
        &["secret.txt", "bin", "link", "a:b", "c:d/inner.txt"],
    );
    chown(&w.src, "0:5678", &["private/key"]);
    // A refused name with a second name the drive holds (`secret.txt` and
    // `secret-again.txt` are two names of one file too): the drive holds
    // copies, the record says which names were one file.
    std::fs::hard_link(w.src.join("a:b"), w.src.join("a-b-too")).unwrap();
    set_fine_times(&w.src, 0);
    let dst = drive.dir.join("Backups/src");
    let args = [w.src.to_str().unwrap(), dst.to_str().unwrap()];
    let first = w.run(["sync", args[0], args[1]]);
    first.ok().stdout_has("failed 0");
    assert_eq!(
        first
            .stderr
            .matches("so that a restore gives it back exactly")
            .count(),
        1,
        "told once: {}",
        first.stderr
    );
    // Nor anything in `.mirrortray/`: the record, its files, the versions.
    let own = || {
        let names = |p: &str| -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(dst.join(p))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        let record = std::fs::metadata(dst.join(".mirrortray/record.json")).unwrap();
        (
            names(".mirrortray/versions"),
            names(".mirrortray/aside"),
            record.modified().unwrap(),
            record.ino(),
            std::fs::read(dst.join(".mirrortray/record.log")).ok(),
        )
    };
    let settled = own();
    for _ in 0..2 {
        nothing_to_do_into(w, &dst);
    }
    assert_eq!(
        own(),
        settled,
        "a pass with no change in SRC changed .mirrortray/"
    );
    w.run(["verify", args[0], args[1]]).ok().stdout_has("same");
    let back = restore_at(w, &dst, "now", "restored");
    assert_mirrored(&w.src, &back);
    assert_eq!(owners(&w.src), owners(&back));
    one_file(&back, &["secret.txt", "secret-again.txt"]);
    one_file(&back, &["a:b", "a-b-too"]);
    drive.remount();
    nothing_to_do_into(w, &dst);
    w.run(["verify", args[0], args[1]]).ok().stdout_has("same");

    let before = utc_now();
    let then = snapshot(&w.src);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        w.src.join("secret.txt"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::fs::remove_file(w.src.join("link")).unwrap();
    std::os::unix::fs::symlink("bin/run.sh", w.src.join("link")).unwrap();
    std::fs::write(w.src.join("a:b"), "colon, edited").unwrap();
    chown(&w.src, "4321:8765", &["shared.txt"]);
    std::fs::remove_file(w.src.join("docs/b.txt")).unwrap();
    std::fs::write(w.src.join("c:d/inner.txt"), "inside, edited").unwrap();
    set_fine_times(&w.src, 1000);
    let snapshot_before = std::fs::read(dst.join(".mirrortray/record.json")).unwrap();
    let v = w.run(["verify", args[0], args[1]]);
    v.code(1);
    for changed in [
        "secret.txt",
        "link",
        "a:b",
        "docs/b.txt",
        "c:d/inner.txt",
        "shared.txt",
    ] {
        assert!(v.stdout.contains(changed), "{changed} not in: {}", v.stdout);
    }
    w.run(["sync", args[0], args[1]])
        .ok()
        .stdout_has("failed 0");
    // The pass appended what it changed to the record's log; the snapshot
    // was not written again.
    assert_eq!(
        std::fs::read(dst.join(".mirrortray/record.json")).unwrap(),
        snapshot_before
    );
    let log = std::fs::read_to_string(dst.join(".mirrortray/record.log")).unwrap();
    assert_eq!(log.lines().count(), 1, "{log}");
    nothing_to_do_into(w, &dst);
    w.run(["verify", args[0], args[1]]).ok().stdout_has("same");
    let back = restore_at(w, &dst, "now", "restored-after");
    assert_mirrored(&w.src, &back);
    assert_eq!(owners(&w.src), owners(&back));
    one_file(&back, &["secret.txt", "secret-again.txt"]);
    one_file(&back, &["a:b", "a-b-too"]);

    // As it was before the changes: what the record held then.
    let old = restore_at(w, &dst, &before, "restored-before");
    let read = |p: &str| std::fs::read_to_string(old.join(p)).unwrap();
    assert_eq!(read("a:b"), "colon");
    assert_eq!(read("c:d/inner.txt"), "inside a refused folder");
    assert_eq!(read("docs/b.txt"), "small folder");
    assert_eq!(
        std::fs::read_link(old.join("c:d/link")).unwrap(),
        std::path::PathBuf::from("inner.txt")
    );
    // Every file as it was, to the nanosecond and the permission bit: the
    // versions the changes made, with what the record said of them then.
    // (Folders get their times only where unchanged since; a symlink whose
    // time alone changed keeps no version, as on any drive.)
    use crate::support::tree::{Node, diff};
    let files = |s: Snapshot| -> Snapshot {
        s.into_iter()
            .filter(|(_, n)| matches!(n, Node::File { .. }))
            .collect()
    };
    let d = diff(&files(then), &files(snapshot(&old)));
    assert!(d.is_empty(), "as of before the changes:\n{}", d.join("\n"));
}

#[test]
fn an_exfat_backup_drive_gives_back_everything_exactly() {
    let w = World::new();
    let Some(drive) = fuse_drive(&w, "exfat", &["mkfs.exfat"], "mount.exfat-fuse") else {
        return;
    };
    a_drive_gives_back_everything(&w, &drive);
    // The versions of a name the drive refuses, and the newest one back.
    let a_b = drive.dir.join("Backups/src/a:b");
    w.run(["versions", a_b.to_str().unwrap()])
        .ok()
        .stdout_has("1 version kept")
        .stdout_has("modified");
    // `--json` names the file that holds that version's bytes.
    let listed = w.run(["versions", "--json", a_b.to_str().unwrap()]);
    listed.ok();
    let stored = listed
        .stdout
        .split("\"stored\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no stored path in\n{}", listed.stdout))
        .to_string();
    assert_eq!(
        std::fs::read_to_string(&stored).unwrap(),
        "colon",
        "{stored}"
    );
    let out = w.path("a-b-before");
    std::fs::create_dir_all(&out).unwrap();
    w.run([
        "restore",
        a_b.to_str().unwrap(),
        "--to",
        out.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(std::fs::read_to_string(out.join("a:b")).unwrap(), "colon");
    // What the drive held before the changes: the link's old target.
    let old = w.path("restored-before/src");
    assert_eq!(
        std::fs::read_link(old.join("link")).unwrap(),
        std::path::PathBuf::from("secret.txt")
    );
    drop(drive);
}

#[test]
fn an_ntfs_backup_drive_gives_back_everything_exactly() {
    let w = World::new();
    let Some(drive) = fuse_drive(&w, "ntfs", &["mkntfs", "-q", "-F", "-f"], "ntfs-3g") else {
        return;
    };
    a_drive_gives_back_everything(&w, &drive);
    drop(drive);
}

/// FAT32 as fusefat mounts it (this kernel has no vfat): 2-second times,
/// no modes, no chmod call at all, and a rename that sets the mtime to
/// now (the probe sees it; the copy's times are set again in place).
#[test]
fn a_fat32_backup_drive_gives_back_everything_exactly() {
    let w = World::new();
    let Some(drive) = fuse_drive(&w, "fat32", &["mkfs.fat", "-F", "32"], "fusefat -o rw+") else {
        return;
    };
    exact_tree(&w);
    chown(&w.src, "1234:5678", &["secret.txt", "bin", "a:b"]);
    std::fs::hard_link(w.src.join("a:b"), w.src.join("a-b-too")).unwrap();
    // Attributes and ACLs, which FAT keeps none of: recorded.
    let path = |rel: &str| w.src.join(rel).to_str().unwrap().to_string();
    run(
        "setfattr",
        &["-n", "user.x", "-v", "0x00ff", &path("shared.txt")],
    );
    run("setfacl", &["-d", "-m", "u:65534:rx", &path("private")]);
    set_fine_times(&w.src, 0);
    let dst = drive.dir.join("Backups/src");
    let args = [w.src.to_str().unwrap(), dst.to_str().unwrap()];
    w.run(["sync", args[0], args[1]])
        .ok()
        .stdout_has("failed 0");
    let limits = std::fs::read_to_string(dst.join(".mirrortray/limits")).unwrap();
    assert!(
        limits.contains("granularity_ns=2000000000") && limits.contains("renames_keep_times=0"),
        "{limits}"
    );
    nothing_to_do_into(&w, &dst);
    w.run(["verify", args[0], args[1]]).ok().stdout_has("same");
    let back = restore_at(&w, &dst, "now", "restored");
    assert_mirrored(&w.src, &back);
    same_attrs(&w.src, &back, &["shared.txt", "private"]);
    assert_eq!(owners(&w.src), owners(&back));
    one_file(&back, &["secret.txt", "secret-again.txt"]);
    one_file(&back, &["a:b", "a-b-too"]);
    drive.remount();
    nothing_to_do_into(&w, &dst);
    w.run(["verify", args[0], args[1]]).ok().stdout_has("same");
    drop(drive);
}

/// FAT32 through everything exFAT and NTFS are put through: versions of a
/// refused name and of a symlink, and a restore as of before the changes.
/// fusefat (the only FAT32 here: no vfat in this kernel) refuses to make
/// an existing file longer (EPERM), so `aside.log` is written anew there;
/// and its rename sets a file's mtime to now, so a file kept as a version
/// is given its time back in its time folder.
#[test]
fn a_fat32_backup_drive_gives_back_what_it_held_before_a_change() {
    let w = World::new();
    let Some(drive) = fuse_drive(&w, "fat32", &["mkfs.fat", "-F", "32"], "fusefat -o rw+") else {
        return;
    };
    a_drive_gives_back_everything(&w, &drive);
    // The reasons beside versions too (`versions.log` is written anew
    // there, as `aside.log` is).
    let dst = drive.dir.join("Backups/src");
    w.run(["versions", dst.join("docs/b.txt").to_str().unwrap()])
        .ok()
        .stdout_has("1 version kept")
        .stdout_has("deleted");
    drop(drive);
}

/// `getfacl --omit-header PATH`: a file's or folder's ACL as a user reads it.
fn acl(p: &Path) -> String {
    let out = Command::new("getfacl")
        .args(["--omit-header", "--absolute-names", "--numeric"])
        .arg(p)
        .output()
        .expect("getfacl (package acl)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every attribute and the ACL of each of `rels` under `a` and `b` alike.
#[track_caller]
pub(crate) fn same_attrs(a: &Path, b: &Path, rels: &[&str]) {
    for rel in rels {
        assert_eq!(attrs(&a.join(rel)), attrs(&b.join(rel)), "{rel}");
        assert_eq!(acl(&a.join(rel)), acl(&b.join(rel)), "{rel}");
    }
}

/// Attributes and ACLs on an exFAT drive, which holds none: recorded in
/// `.mirrortray/`, said once as a note, compared by `verify`, followed by
/// `sync` without a copy or a version, and given back exactly by a
/// restore onto ext4 (`--to`) and into SRC (a deleted file, from its
/// version).
#[test]
fn attributes_and_acls_on_an_exfat_drive_are_recorded_and_given_back() {
    let w = World::new();
    let doc = w.write("doc.txt", "text");
    if !try_setfattr(&doc, "user.comment", "first draft") {
        return skip("the temp folder's file system keeps no user attributes");
    }
    let Some(drive) = fuse_drive(&w, "exfat", &["mkfs.exfat"], "mount.exfat-fuse") else {
        return;
    };
    let path = |rel: &str| w.src.join(rel).to_str().unwrap().to_string();
    // A binary value (NUL, 0xff, a newline, a quote).
    run(
        "setfattr",
        &["-n", "user.bin", "-v", "0x00ff0a2200", &path("doc.txt")],
    );
    run("setfacl", &["-m", "u:65534:r", &path("doc.txt")]);
    w.write("shared/plan.txt", "plan");
    run("setfacl", &["-d", "-m", "u:65534:rx", &path("shared")]);
    run("setfacl", &["-m", "u:65534:rx", &path("shared")]);
    run(
        "setfattr",
        &["-n", "user.project", "-v", "x", &path("shared")],
    );
    // A name the drive refuses: its attributes go with its recorded bytes.
    w.write("a:b", "colon");
    run("setfattr", &["-n", "user.tag", "-v", "aside", &path("a:b")]);
    w.write("plain.txt", "no attributes");
    let rels = ["doc.txt", "shared", "shared/plan.txt", "a:b", "plain.txt"];

    let dst = drive.dir.join("Backups/src");
    std::fs::create_dir_all(w.config_file().parent().unwrap()).unwrap();
    std::fs::write(
        w.config_file(),
        format!(
            "[[pair]]\nsrc = \"{}\"\ndst = \"{}\"\n",
            w.src.display(),
            dst.display()
        ),
    )
    .unwrap();
    let args = [w.src.to_str().unwrap(), dst.to_str().unwrap()];
    let first = w.run(["sync", args[0], args[1]]);
    first.ok().stdout_has("failed 0");
    let told = "cannot hold extended attributes or ACLs";
    assert_eq!(first.stderr.matches(told).count(), 1, "{}", first.stderr);
    assert!(
        !first.stderr.contains("without them") && !first.stderr.contains("ERROR"),
        "{}",
        first.stderr
    );
    let record = std::fs::read_to_string(dst.join(".mirrortray/record.json")).unwrap();
    assert!(record.contains("system.posix_acl_default"), "{record}");
    // Its nanoseconds only: no attributes field.
    let plain = record.split("\"path\":\"plain.txt\"").nth(1).unwrap();
    assert!(
        !plain[..plain.find('}').unwrap()].contains("xattrs"),
        "{record}"
    );
    nothing_to_do_into(&w, &dst);
    w.run(["verify", args[0], args[1]]).ok().stdout_has("same");
    let back = restore_at(&w, &dst, "now", "restored");
    same_attrs(&w.src, &back, &rels);
    assert!(acl(&back.join("doc.txt")).contains("user:65534:r--"));
    assert!(acl(&back.join("shared")).contains("default:user:65534:r-x"));
    assert!(attrs(&back.join("doc.txt")).contains("user.bin=0x00ff0a2200"));

    // Changed in SRC (a value, a name gone, an ACL entry): verify reports
    // it against the record; a pass follows, copying nothing.
    run(
        "setfattr",
        &["-n", "user.comment", "-v", "second draft", &path("doc.txt")],
    );
    run("setfattr", &["-x", "user.project", &path("shared")]);
    run("setfacl", &["-m", "u:65534:rw", &path("a:b")]);
    let v = w.run(["verify", args[0], args[1]]);
    v.code(1)
        .stdout_has("record   doc.txt")
        .stdout_has("attributes user.comment")
        .stdout_has("record   shared")
        .stdout_has("record   a:b");
    let r = w.run(["sync", args[0], args[1]]);
    r.ok()
        .stdout_has("failed 0")
        .stdout_has("copied 0 files")
        .stdout_has("versioned 0");
    w.run(["verify", args[0], args[1]]).ok().stdout_has("same");
    nothing_to_do_into(&w, &dst);
    let back = restore_at(&w, &dst, "now", "restored-after");
    same_attrs(&w.src, &back, &rels);

    // Deleted in SRC, then restored there from its version: with the
    // attributes and ACL it had.
    let had = (attrs(&w.src.join("doc.txt")), acl(&w.src.join("doc.txt")));
    std::fs::remove_file(w.src.join("doc.txt")).unwrap();
    w.run(["sync", args[0], args[1]])
        .ok()
        .stdout_has("failed 0");
    w.run(["restore", &path("doc.txt")]).ok();
    assert_eq!(
        std::fs::read_to_string(w.src.join("doc.txt")).unwrap(),
        "text"
    );
    assert_eq!(
        (attrs(&w.src.join("doc.txt")), acl(&w.src.join("doc.txt"))),
        had
    );
    w.run(["sync", args[0], args[1]]).ok();
    w.run(["verify", args[0], args[1]]).ok().stdout_has("same");
    drop(drive);
}

/// The live watcher keeps the record in step: a refused name rewritten and
/// one made, a symlink made and one retargeted, a mode changed, a case twin
/// removed, a refused folder renamed — `verify` finds the backup and its
/// record the same as SRC soon after, and once the watcher stopped, a
/// restore onto ext4 gives SRC back exactly.
#[test]
fn the_watcher_keeps_the_record_of_an_exfat_drive_in_step() {
    use std::time::Duration;
    let w = World::new();
    let Some(drive) = fuse_drive(&w, "exfat", &["mkfs.exfat"], "mount.exfat-fuse") else {
        return;
    };
    exact_tree(&w);
    let dst = drive.dir.join("Backups/src");
    std::fs::create_dir_all(&dst).unwrap();
    let log = w.path("watch.stderr");
    let mut child = w
        .cmd()
        .arg("watch")
        .arg(&w.src)
        .arg(&dst)
        .arg("-v")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let said = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        wait_for(Duration::from_secs(60), || said()
            .contains("mirrored; watching for changes")),
        "{}",
        said()
    );
    let verify = || w.run(["verify", w.src.to_str().unwrap(), dst.to_str().unwrap()]);
    let same = || verify().code == 0;
    assert!(same(), "{}", verify().stdout);

    use std::os::unix::fs::{PermissionsExt, symlink};
    std::fs::write(w.src.join("a:b"), "colon, live").unwrap();
    std::fs::write(w.src.join("new:file"), "made live").unwrap();
    std::fs::set_permissions(
        w.src.join("secret.txt"),
        std::fs::Permissions::from_mode(0o604),
    )
    .unwrap();
    symlink("x.", w.src.join("new-link")).unwrap();
    std::fs::remove_file(w.src.join("link")).unwrap();
    symlink("bin", w.src.join("link")).unwrap();
    std::fs::remove_file(w.src.join("report")).unwrap();
    std::fs::rename(w.src.join("c:d"), w.src.join("e:f")).unwrap();
    let ok = wait_for(Duration::from_secs(90), same);
    assert!(ok, "{}\n--- log\n{}", verify().stdout, said());
    // Inside a folder the drive cannot hold by name: the case twin `docs`
    // (the drive would find `Docs` there) and a refused name.
    std::fs::write(w.src.join("docs/c.txt"), "new in the small folder").unwrap();
    std::fs::write(w.src.join("e:f/inner.txt"), "edited live").unwrap();
    let ok = wait_for(Duration::from_secs(90), same);
    assert!(ok, "{}\n--- log\n{}", verify().stdout, said());
    assert!(!dst.join("Docs/c.txt").exists() && dst.join("Docs/a.txt").exists());
    // The twin renamed to a name of its own: now mirrored as any folder.
    std::fs::rename(w.src.join("docs"), w.src.join("notes")).unwrap();
    let ok = wait_for(Duration::from_secs(90), same);
    assert!(ok, "{}\n--- log\n{}", verify().stdout, said());
    assert_eq!(
        std::fs::read_to_string(dst.join("notes/c.txt")).unwrap(),
        "new in the small folder"
    );
    // Attributes and ACLs set alone move no mtime (the watcher hears an
    // attribute change): the record follows them.
    let path = |rel: &str| w.src.join(rel).to_str().unwrap().to_string();
    run(
        "setfattr",
        &["-n", "user.live", "-v", "0x00ff", &path("bin/run.sh")],
    );
    run("setfacl", &["-m", "u:65534:r", &path("shared.txt")]);
    run("setfacl", &["-d", "-m", "u:65534:rx", &path("private")]);
    // Set through one name of a file with two: the kernel tells the
    // watcher of that name only; the other's record follows too.
    run(
        "setfattr",
        &[
            "-n",
            "user.both",
            "-v",
            "one file",
            &path("secret-again.txt"),
        ],
    );
    let ok = wait_for(Duration::from_secs(90), same);
    assert!(ok, "{}\n--- log\n{}", verify().stdout, said());
    let record = || {
        let mut text = std::fs::read_to_string(dst.join(".mirrortray/record.json")).unwrap();
        text.push_str(
            &std::fs::read_to_string(dst.join(".mirrortray/record.log")).unwrap_or_default(),
        );
        text
    };
    let both = wait_for(Duration::from_secs(90), || {
        let r = record();
        ["secret.txt", "secret-again.txt"].iter().all(|n| {
            r.split("{\"path\":")
                .filter(|e| e.starts_with(&format!("\"{n}\"")))
                .last()
                .is_some_and(|e| e.contains("user.both"))
        })
    });
    assert!(
        both,
        "the other name's record lacks the attribute:\n{}",
        record()
    );

    run("kill", &["-TERM", &child.id().to_string()]);
    let mut status = None;
    wait_for(Duration::from_secs(30), || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", said());
    let back = restore_at(&w, &dst, "now", "restored");
    assert_mirrored(&w.src, &back);
    same_attrs(
        &w.src,
        &back,
        &[
            "bin/run.sh",
            "shared.txt",
            "private",
            "secret.txt",
            "secret-again.txt",
        ],
    );
    drop(drive);
}

/// A record that cannot be read (a torn write by another tool, a disk
/// error) is said and made again by the next pass: the backup is then as
/// exact as before, and a restore gives SRC back.
#[test]
fn a_record_that_cannot_be_read_is_made_again() {
    let w = World::new();
    let Some(drive) = fuse_drive(&w, "exfat", &["mkfs.exfat"], "mount.exfat-fuse") else {
        return;
    };
    exact_tree(&w);
    let dst = drive.dir.join("Backups/src");
    let args = [w.src.to_str().unwrap(), dst.to_str().unwrap()];
    w.run(["sync", args[0], args[1]]).ok();
    std::fs::write(dst.join(".mirrortray/record.json"), "{\"format\":1,\"entr").unwrap();
    w.run(["sync", args[0], args[1]])
        .ok()
        .stdout_has("failed 0")
        .stderr_has("cannot read the record of what the backup drive cannot hold");
    nothing_to_do_into(&w, &dst);
    w.run(["verify", args[0], args[1]]).ok().stdout_has("same");
    let back = restore_at(&w, &dst, "now", "restored");
    assert_mirrored(&w.src, &back);

    // A change, then a crash that tore the log's next line: the line is
    // left out (not an error), and the next pass writes a snapshot rather
    // than append after it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        w.src.join("secret.txt"),
        std::fs::Permissions::from_mode(0o604),
    )
    .unwrap();
    w.run(["sync", args[0], args[1]]).ok();
    let log = dst.join(".mirrortray/record.log");
    let mut torn = std::fs::read(&log).unwrap();
    torn.extend_from_slice(b"{\"next_blob\":9,\"se");
    std::fs::write(&log, torn).unwrap();
    w.run(["verify", args[0], args[1]]).ok().stdout_has("same");
    nothing_to_do_into(&w, &dst);
    assert!(!log.exists(), "the torn log was folded into a snapshot");
    w.run(["verify", args[0], args[1]]).ok().stdout_has("same");
    let back = restore_at(&w, &dst, "now", "restored-after-torn");
    assert_mirrored(&w.src, &back);
    drop(drive);
}

/// `aside.log` does not grow forever: the lines of versions whose time
/// folder the size limit removed go with it, and what stays still gives
/// the kept version back.
#[test]
fn aside_log_lines_go_with_their_pruned_time_folders() {
    let w = World::new();
    let Some(drive) = fuse_drive(&w, "exfat", &["mkfs.exfat"], "mount.exfat-fuse") else {
        return;
    };
    let dst = drive.dir.join("Backups/src");
    std::fs::create_dir_all(&dst).unwrap();
    std::fs::create_dir_all(w.config_file().parent().unwrap()).unwrap();
    std::fs::write(
        w.config_file(),
        format!(
            "[settings]\nmax_versions_mb = 1\n\n[[pair]]\nsrc = \"{}\"\ndst = \"{}\"\n",
            w.src.display(),
            dst.display()
        ),
    )
    .unwrap();
    let big = |c: char| c.to_string().repeat(600 * 1024);
    let ats = || -> Vec<String> {
        std::fs::read_to_string(dst.join(".mirrortray/aside.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                l.split("\"at\":\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let folders = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dst.join(".mirrortray/versions"))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    w.write("big:file", big('a'));
    w.run(["sync"]).ok();
    w.write("big:file", big('b'));
    w.run(["sync"]).ok();
    assert_eq!(ats().len(), 1, "one version kept");
    assert_eq!(ats(), folders());
    // 1.2 MiB of versions, 1 MiB allowed: the oldest folder goes, and its line.
    w.write("big:file", big('c'));
    w.run(["sync"]).ok();
    assert_eq!(folders().len(), 1, "{:?}", folders());
    assert_eq!(ats(), folders());
    let f = dst.join("big:file");
    w.run(["versions", f.to_str().unwrap()])
        .ok()
        .stdout_has("1 version kept");
    let listed = w.run(["versions", "--json", f.to_str().unwrap()]);
    listed.ok();
    let stored = listed
        .stdout
        .split("\"stored\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no stored path in\n{}", listed.stdout))
        .to_string();
    assert_eq!(std::fs::read_to_string(&stored).unwrap(), big('b'));
    drop(drive);
}

/// Deletions the mass-deletion guard holds keep what the record says of
/// the held entries: a restore of the backup as it stands gives them back
/// with their permissions and times to the nanosecond.
#[test]
fn deletions_held_by_the_guard_keep_their_record() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new();
    let Some(drive) = fuse_drive(&w, "exfat", &["mkfs.exfat"], "mount.exfat-fuse") else {
        return;
    };
    for i in 0..150 {
        let f = w.write(&format!("f{i:03}.txt"), format!("file {i}"));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    set_fine_times(&w.src, 0);
    let then = snapshot(&w.src);
    let dst = drive.dir.join("Backups/src");
    let args = [w.src.to_str().unwrap(), dst.to_str().unwrap()];
    w.run(["sync", args[0], args[1]]).ok();
    for i in 0..120 {
        std::fs::remove_file(w.src.join(format!("f{i:03}.txt"))).unwrap();
    }
    w.run(["sync", args[0], args[1]])
        .code(1)
        .stderr_has("--allow-mass-delete");
    let back = restore_at(&w, &dst, "now", "restored");
    let d = crate::support::tree::diff(&then, &snapshot(&back));
    assert!(d.is_empty(), "{}", d.join("\n"));
    drop(drive);
}
