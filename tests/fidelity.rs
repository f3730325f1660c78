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
fn attrs(p: &Path) -> String {
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

fn run(cmd: &str, args: &[&str]) {
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
    let r = w.sync(&[]);
    r.ok()
        .stdout_has("copied 0 files")
        .stdout_has("versioned 0");
    assert!(!r.stdout.contains("updated"), "{}", r.stdout);
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

    w.sync(&[]).ok();
    for rel in ["doc.txt", "shared", "shared/plan.txt"] {
        let (s, d) = (attrs(&w.src.join(rel)), attrs(&w.dst.join(rel)));
        assert_eq!(s, d, "{rel}");
    }
    assert!(attrs(&w.dst.join("doc.txt")).contains("system.posix_acl_access"));
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
    let w = World::new();
    let Some(_m) = loop_fs(&w, "btrfs", "256M", &["mkfs.btrfs", "-q", "-f"]) else {
        return;
    };
    let src = w.path("btrfs/src");
    let dst = w.path("btrfs/dst");
    std::fs::create_dir_all(&src).unwrap();
    let big = src.join("video.bin");
    let data: Vec<u8> = (0..48u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(&big, &data).unwrap();
    run("sync", &[]);
    let shared = |p: &Path| {
        let out = Command::new("filefrag").arg("-v").arg(p).output().unwrap();
        String::from_utf8_lossy(&out.stdout).contains("shared")
    };
    assert!(!shared(&big));
    w.run(["sync", src.to_str().unwrap(), dst.to_str().unwrap()])
        .ok();
    run("sync", &[]);
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
    run("sync", &[]);
    assert!(same_bytes(&big, &copy));
    assert!(shared(&copy));
}
