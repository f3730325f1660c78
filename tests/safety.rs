//! The safety rules of DESIGN.md (1–8), "never write through a symlink in
//! DST", and every bad input of issue 3 item 9, driven through `sync`.
//!
//! Each test checks what a user would: the exit code, one sentence naming
//! the path (never a debug dump), SRC untouched, DST untouched where nothing
//! may change, and nothing written outside DST. Permission tests drop root
//! with `as_nobody`, since root passes every permission check.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::cli_sync::{
    assert_logged, chmod, counts, store_snapshot, sync_ok, sync_src_untouched, version_stamps,
};
use crate::support::*;

/// Runs `sync SRC DST extra...` as nobody.
fn sync_as_nobody(w: &World, src: &Path, dst: &Path, extra: &[&str]) -> Run {
    let out = as_nobody(w)
        .arg("sync")
        .arg(src)
        .arg(dst)
        .args(extra)
        .output()
        .unwrap();
    let r = Run::from(out);
    r.no_debug_dump();
    r
}

/// `sync SRC DST` with explicit paths.
fn sync_paths(w: &World, src: &Path, dst: &Path) -> Run {
    w.run([
        std::ffi::OsStr::new("sync"),
        src.as_os_str(),
        dst.as_os_str(),
    ])
}

/// Runs the binary in `cwd` with `args`.
fn run_in(w: &World, cwd: &Path, args: &[&str]) -> Run {
    let out = w.cmd().current_dir(cwd).args(args).output().unwrap();
    Run::from(out)
}

#[track_caller]
fn assert_same(before: &Snapshot, after: &Snapshot, what: &str) {
    let d = tree::diff(before, after);
    assert!(d.is_empty(), "{what} changed:\n{}", d.join("\n"));
}

/// A folder outside SRC and DST with some content, to prove nothing was
/// written there.
fn outside(w: &World) -> PathBuf {
    let o = w.path("outside");
    std::fs::create_dir_all(o.join("sub")).unwrap();
    std::fs::write(o.join("victim.txt"), "must not change").unwrap();
    std::fs::write(o.join("sub/deep.txt"), "deep").unwrap();
    o
}

/// A mount that is undone when dropped (before the World's temp dir goes).
pub(crate) struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Mounts with `mount args... dir`; `None` (with a printed note) only when
/// not root.
pub(crate) fn mount(args: &[&str], dir: &Path) -> Option<Mount> {
    std::fs::create_dir_all(dir).unwrap();
    let out = Command::new("mount").args(args).arg(dir).output().unwrap();
    if out.status.success() {
        return Some(Mount(dir.to_path_buf()));
    }
    if !is_root() {
        skip(&format!(
            "`mount {}` needs root ({})",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
        return None;
    }
    panic!(
        "mount {args:?} {} failed as root: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------- bad input (rule 5, item 9)

#[test]
fn missing_src_is_refused_and_dst_not_created() {
    let w = World::new();
    let missing = w.path("no-such-folder");
    let r = sync_paths(&w, &missing, &w.dst);
    r.code(2)
        .no_debug_dump()
        .stderr_has(&missing.to_string_lossy())
        .stderr_has("does not exist");
    assert_eq!(
        r.stderr.lines().filter(|l| !l.trim().is_empty()).count(),
        1,
        "want one sentence:\n{}",
        r.stderr
    );
    assert!(!w.dst.exists(), "DST was created for a missing SRC");
}

#[test]
fn src_that_is_a_file_is_refused() {
    let w = World::new();
    let file = w.write("file.txt", "not a folder");
    let r = sync_paths(&w, &file, &w.dst);
    r.code(2)
        .no_debug_dump()
        .stderr_has(&file.to_string_lossy())
        .stderr_has("not a folder");
    assert!(!w.dst.exists());
}

#[test]
fn dst_that_is_a_file_is_refused() {
    let w = World::new();
    w.write("a.txt", "a");
    std::fs::write(&w.dst, "I am a file").unwrap();
    let r = sync_src_untouched(&w, &[]);
    r.code(2)
        .stderr_has(&w.dst.to_string_lossy())
        .stderr_has("not a folder");
    assert_eq!(std::fs::read(&w.dst).unwrap(), b"I am a file");
}

#[test]
fn dst_inside_src_is_refused() {
    let w = World::new();
    w.write("a.txt", "a");
    let src_before = snapshot(&w.src);
    let inner = w.src.join("backup");
    let r = sync_paths(&w, &w.src, &inner);
    r.code(2)
        .no_debug_dump()
        .stderr_has("inside the source folder")
        .stderr_has(&inner.to_string_lossy());
    assert!(!inner.exists(), "DST inside SRC was created");
    assert_eq!(snapshot(&w.src), src_before);
    // Deeper, and through a missing part.
    let deep = w.src.join("x/y/backup");
    sync_paths(&w, &w.src, &deep).code(2).no_debug_dump();
    assert_eq!(snapshot(&w.src), src_before, "SRC was written to");
}

#[test]
fn src_inside_dst_is_refused() {
    let w = World::new();
    std::fs::create_dir_all(w.dst.join("photos")).unwrap();
    std::fs::write(w.dst.join("photos/cat.jpg"), "meow").unwrap();
    std::fs::write(w.dst.join("other.txt"), "other").unwrap();
    let before = snapshot(&w.dst);
    let src = w.dst.join("photos");
    let r = sync_paths(&w, &src, &w.dst);
    r.code(2)
        .no_debug_dump()
        .stderr_has("inside the backup folder")
        .stderr_has(&src.to_string_lossy());
    assert_eq!(snapshot(&w.dst), before);
    assert!(
        !w.dst.join(".mirrortray").exists(),
        "DST's .mirrortray was created before the refusal"
    );
}

#[test]
fn same_folder_is_refused_also_through_a_symlink() {
    let w = World::new();
    w.write("a.txt", "a");
    let before = snapshot(&w.src);
    let alias = w.path("alias");
    symlink(&w.src, &alias).unwrap();
    for (s, d) in [(&w.src, &w.src), (&w.src, &alias), (&alias, &w.src)] {
        let r = sync_paths(&w, s, d);
        r.code(2).no_debug_dump().stderr_has("same folder");
        assert!(
            !w.src.join(".mirrortray").exists(),
            "SRC got a .mirrortray ({} -> {})",
            s.display(),
            d.display()
        );
        assert_eq!(snapshot(&w.src), before);
    }
    // DST inside SRC, reached through the alias.
    let via = alias.join("backup");
    let r = sync_paths(&w, &w.src, &via);
    r.code(2)
        .no_debug_dump()
        .stderr_has("inside the source folder");
    assert_eq!(snapshot(&w.src), before);
    // SRC inside DST, reached through a symlinked DST.
    let dst_alias = w.path("dst-alias");
    std::fs::create_dir_all(w.path("outer/inner")).unwrap();
    symlink(w.path("outer"), &dst_alias).unwrap();
    let r = sync_paths(&w, &w.path("outer/inner"), &dst_alias);
    r.code(2)
        .no_debug_dump()
        .stderr_has("inside the backup folder");
    assert!(!w.path("outer/.mirrortray").exists());
}

#[test]
fn same_folder_through_a_bind_mount_is_refused() {
    let w = World::new();
    w.write("a.txt", "a");
    let bind = w.path("bind");
    let src_s = w.src.to_string_lossy().into_owned();
    let Some(_m) = mount(&["--bind", &src_s], &bind) else {
        return;
    };
    let before = snapshot(&w.src);
    let r = sync_paths(&w, &w.src, &bind);
    r.code(2).no_debug_dump().stderr_has("same folder");
    let r = sync_paths(&w, &w.src, &bind.join("backup"));
    r.code(2)
        .no_debug_dump()
        .stderr_has("inside the source folder");
    assert_eq!(snapshot(&w.src), before);
    assert!(!w.src.join(".mirrortray").exists() && !w.src.join("backup").exists());
}

#[test]
fn relative_paths_that_resolve_to_an_overlap_are_refused() {
    let w = World::new();
    w.write("sub/a.txt", "a");
    let before = snapshot(&w.src);
    let world = w.dir.path().to_path_buf();
    let cases: &[(&Path, &[&str], &str)] = &[
        (&w.src, &["sync", ".", "backup"], "inside the source folder"),
        (
            &w.src,
            &["sync", ".", "./sub/../backup"],
            "inside the source folder",
        ),
        (&w.src, &["sync", ".", ".."], "inside the backup folder"),
        (
            &w.src.join("sub"),
            &["sync", "..", "../.."],
            "inside the backup folder",
        ),
        (
            &w.src.join("sub"),
            &["sync", "..", "."],
            "inside the source folder",
        ),
        (&world, &["sync", "src", "src/sub/.."], "same folder"),
        (&world, &["sync", "src/sub/..", "./src"], "same folder"),
        (&world, &["sync", "src", "dst/../src/new"], ""),
    ];
    for (cwd, args, msg) in cases {
        let r = run_in(&w, cwd, args);
        assert_eq!(
            r.code,
            2,
            "{args:?} in {}: exit {}\n{}",
            cwd.display(),
            r.code,
            r.stderr
        );
        r.no_debug_dump();
        if !msg.is_empty() {
            r.stderr_has(msg);
        }
        assert_eq!(snapshot(&w.src), before, "{args:?} wrote into SRC");
        assert!(
            !world.join(".mirrortray").exists(),
            "{args:?} wrote a .mirrortray in the parent"
        );
        assert!(!w.dst.exists(), "{args:?} created dst");
    }
}

#[test]
fn bad_ignore_pattern_is_refused_before_anything_is_written() {
    let w = World::new();
    w.write("a.txt", "a");
    let r = sync_src_untouched(&w, &["--ignore", "a{b"]);
    r.code(2).stderr_has("a{b").stderr_has("not valid");
    assert!(!w.dst.exists(), "DST created for a bad pattern");
}

// ---------------------------------------------------------------- unreadable / read-only (rules 4, 9)

#[test]
fn unreadable_src_subfolder_fails_and_keeps_dst_copy() {
    let w = World::new();
    w.write("ok.txt", "ok");
    w.write("secret/a.txt", "secret a");
    w.write("secret/deeper/b.txt", "secret b");
    chown_nobody(w.dir.path());
    sync_as_nobody(&w, &w.src, &w.dst, &[]).ok();
    assert_mirrored(&w.src, &w.dst);
    let dst_secret = snapshot(&w.dst.join("secret"));
    chmod(&w.src.join("secret"), 0o000);
    w.write("new.txt", "new");
    std::fs::write(w.src.join("ok.txt"), "ok, edited").unwrap();
    let src_before = snapshot(&w.src);
    let r = sync_as_nobody(&w, &w.src, &w.dst, &[]);
    chmod(&w.src.join("secret"), 0o755);
    r.code(1);
    let secret = w.src.join("secret");
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains(&*secret.to_string_lossy()))
        .unwrap_or_else(|| panic!("no error line names {}\n{}", secret.display(), r.stderr));
    assert!(
        line.contains("[ERROR]") && line.contains("permission denied"),
        "{line}"
    );
    assert_eq!(counts(&r).failed, 1, "{}", r.stdout);
    // Unreadable is not empty: DST's copy of the folder is left as it was.
    assert_same(
        &dst_secret,
        &snapshot(&w.dst.join("secret")),
        "DST's copy of the unreadable folder",
    );
    assert!(
        w.all_version_contents().iter().all(|c| c != b"secret a"),
        "the unreadable folder's copy was versioned"
    );
    // Everything else went on.
    assert_eq!(std::fs::read(w.dst.join("new.txt")).unwrap(), b"new");
    assert_eq!(std::fs::read(w.dst.join("ok.txt")).unwrap(), b"ok, edited");
    chmod(&w.src.join("secret"), 0o000);
    assert_same(&src_before, &snapshot(&w.src), "SRC");
    chmod(&w.src.join("secret"), 0o755);
}

#[test]
fn unreadable_file_fails_and_dst_keeps_the_old_version() {
    let w = World::new();
    w.write("doc.txt", "old content");
    w.write("other.txt", "other");
    chown_nobody(w.dir.path());
    sync_as_nobody(&w, &w.src, &w.dst, &[]).ok();
    std::fs::write(w.src.join("doc.txt"), "new content, unreadable").unwrap();
    chmod(&w.src.join("doc.txt"), 0o000);
    w.write("fresh.txt", "fresh");
    let r = sync_as_nobody(&w, &w.src, &w.dst, &[]);
    r.code(1);
    let doc = w.src.join("doc.txt");
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains(&*doc.to_string_lossy()))
        .unwrap_or_else(|| panic!("no error line names {}\n{}", doc.display(), r.stderr));
    assert!(
        line.contains("[ERROR]") && line.contains("cannot") && line.contains("permission denied"),
        "{line}"
    );
    assert_eq!(
        std::fs::read(w.dst.join("doc.txt")).unwrap(),
        b"old content",
        "DST lost the complete old version"
    );
    assert_eq!(std::fs::read(w.dst.join("fresh.txt")).unwrap(), b"fresh");
    assert!(w.temp_leftovers().is_empty(), "{:?}", w.temp_leftovers());
}

#[test]
fn unreadable_src_root_is_an_error_never_a_mass_delete() {
    let w = World::new();
    w.write("a.txt", "a");
    w.write("d/b.txt", "b");
    chown_nobody(w.dir.path());
    sync_as_nobody(&w, &w.src, &w.dst, &[]).ok();
    let before = snapshot(&w.dst);
    chmod(&w.src, 0o000);
    let r = sync_as_nobody(&w, &w.src, &w.dst, &[]);
    chmod(&w.src, 0o755);
    r.code(2)
        .stderr_has(&w.src.to_string_lossy())
        .stderr_has("permission denied");
    assert_same(&before, &snapshot(&w.dst), "DST");
    assert!(w.all_version_contents().is_empty());
}

#[test]
fn read_only_dst_is_refused_naming_it() {
    let w = World::new();
    w.write("a.txt", "a");
    chown_nobody(w.dir.path());
    // DST owned by root, 0755: nobody cannot write in it.
    std::fs::create_dir(&w.dst).unwrap();
    chmod(&w.dst, 0o755);
    let src_before = snapshot(&w.src);
    let r = sync_as_nobody(&w, &w.src, &w.dst, &[]);
    r.code(2)
        .stderr_has(&w.dst.to_string_lossy())
        .stderr_has("permission denied");
    assert_eq!(
        std::fs::read_dir(&w.dst).unwrap().count(),
        0,
        "something was written in the read-only DST"
    );
    assert_eq!(snapshot(&w.src), src_before);
    // A DST to be created under a read-only folder.
    let ro = w.path("ro");
    std::fs::create_dir(&ro).unwrap();
    chmod(&ro, 0o755);
    let dst = ro.join("backup");
    let r = sync_as_nobody(&w, &w.src, &dst, &[]);
    r.code(2)
        .stderr_has(&dst.to_string_lossy())
        .stderr_has("permission denied");
    assert!(!dst.exists());
}

// ---------------------------------------------------------------- lock (rule 8)

#[test]
fn second_sync_on_a_locked_dst_names_the_holder() {
    let w = World::new();
    w.write("a.txt", "a");
    sync_ok(&w, &[]);
    w.write("b.txt", "b");
    let mut lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(w.dst.join(".mirrortray/lock"))
        .unwrap();
    lock.try_lock().expect("the lock is free after a sync");
    lock.set_len(0).unwrap();
    lock.write_all(b"pid 4242 on testhost, `mirrortray watch`, since 2026-01-01 00:00:00 UTC\n")
        .unwrap();
    let before = snapshot(&w.dst);
    let r = sync_src_untouched(&w, &[]);
    r.code(2)
        .stderr_has("in use by another mirrortray")
        .stderr_has("pid 4242")
        .stderr_has(&w.dst.to_string_lossy());
    assert_same(&before, &snapshot(&w.dst), "DST (locked)");
    drop(lock);
    // Released (or a stale lock file left by a crash): the next sync runs.
    sync_ok(&w, &[]);
    let text = std::fs::read_to_string(w.dst.join(".mirrortray/lock")).unwrap();
    assert!(
        !text.contains("4242"),
        "the lock file still names the old holder: {text:?}"
    );
}

#[test]
fn two_syncs_at_once_one_waits_or_refuses_never_both() {
    let w = World::new();
    for i in 0..300 {
        w.write(&format!("d{}/f{i}", i % 10), vec![i as u8; 20_000]);
    }
    let spawn = || {
        let mut c = w.cmd();
        c.arg("sync").arg(&w.src).arg(&w.dst);
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let ra = Run::from(a.wait_with_output().unwrap());
    let rb = Run::from(b.wait_with_output().unwrap());
    for r in [&ra, &rb] {
        r.no_debug_dump();
        assert!(
            r.code == 0 || (r.code == 2 && r.stderr.contains("in use by another mirrortray")),
            "{r:?}"
        );
    }
    assert!(
        ra.code == 0 || rb.code == 0,
        "neither sync ran: {ra:?} {rb:?}"
    );
    assert_mirrored(&w.src, &w.dst);
    assert!(w.temp_leftovers().is_empty());
    assert!(
        w.all_version_contents().is_empty(),
        "two runs versioned each other's copies"
    );
}

// ---------------------------------------------------------------- symlinks in DST

#[test]
fn planted_symlink_to_an_outside_folder_is_replaced_not_followed() {
    let w = World::new();
    let out = outside(&w);
    w.write("a/f1.txt", "one");
    w.write("a/sub/f2.txt", "two");
    w.write("victim.txt", "SRC's victim.txt");
    std::fs::create_dir_all(&w.dst).unwrap();
    symlink(&out, w.dst.join("a")).unwrap();
    // Same name and size as the outside file, to tempt an in-place update.
    symlink(out.join("victim.txt"), w.dst.join("victim.txt")).unwrap();
    let out_before = snapshot(&out);
    let c = sync_ok(&w, &[]);
    assert_same(&out_before, &snapshot(&out), "the folder outside DST");
    assert!(
        std::fs::symlink_metadata(w.dst.join("a")).unwrap().is_dir(),
        "DST/a is still a symlink"
    );
    assert_eq!(std::fs::read(w.dst.join("a/sub/f2.txt")).unwrap(), b"two");
    assert_eq!(c.versioned, 2, "{c:?}");
    assert_logged(&w.dst, "a", "replaced", "symlink");
    assert_logged(&w.dst, "victim.txt", "replaced", "symlink");
    let stamps = version_stamps(&w.dst);
    let kept = w
        .dst
        .join(".mirrortray/versions")
        .join(&stamps[0])
        .join("a");
    assert_eq!(
        std::fs::read_link(kept).unwrap(),
        out,
        "the planted link was not kept as a link"
    );
}

#[test]
fn planted_symlink_deeper_in_dst_is_replaced_not_followed() {
    let w = World::new();
    let out = outside(&w);
    w.write("x/y/z/file.txt", "z");
    w.write("x/y/top.txt", "top");
    sync_ok(&w, &[]);
    std::fs::remove_dir_all(w.dst.join("x/y")).unwrap();
    symlink(&out, w.dst.join("x/y")).unwrap();
    // And a planted folder link where SRC holds only a file's mode change.
    chmod(&w.src.join("x/y/top.txt"), 0o600);
    let out_before = snapshot(&out);
    sync_ok(&w, &[]);
    assert_same(&out_before, &snapshot(&out), "the folder outside DST");
    assert!(
        std::fs::symlink_metadata(w.dst.join("x/y"))
            .unwrap()
            .is_dir()
    );
}

#[test]
fn extra_symlink_in_dst_is_removed_without_following() {
    for flags in [&[][..], &["--no-versions"][..]] {
        let w = World::new();
        let out = outside(&w);
        w.write("keep.txt", "keep");
        std::fs::create_dir_all(w.dst.join("d")).unwrap();
        symlink(&out, w.dst.join("extra-dir-link")).unwrap();
        symlink(out.join("victim.txt"), w.dst.join("extra-file-link")).unwrap();
        symlink(&out, w.dst.join("d/nested-link")).unwrap();
        let out_before = snapshot(&out);
        sync_ok(&w, flags);
        assert_same(
            &out_before,
            &snapshot(&out),
            &format!("the folder outside DST ({flags:?})"),
        );
        assert!(!w.dst.join("d").exists());
    }
}

#[test]
fn src_symlink_that_became_a_folder_does_not_write_through_the_old_link() {
    let w = World::new();
    let out = outside(&w);
    symlink(&out, w.src.join("a")).unwrap();
    symlink(out.join("sub"), w.src.join("b")).unwrap();
    sync_ok(&w, &[]);
    assert_eq!(std::fs::read_link(w.dst.join("a")).unwrap(), out);
    let out_before = snapshot(&out);
    std::fs::remove_file(w.src.join("a")).unwrap();
    w.write("a/new.txt", "new in a");
    w.write("a/victim.txt", "would overwrite the outside victim");
    w.write("a/sub/deep.txt", "would overwrite deep");
    std::fs::remove_file(w.src.join("b")).unwrap();
    w.write("b/deep.txt", "b is a folder now");
    let c = sync_ok(&w, &[]);
    assert_same(&out_before, &snapshot(&out), "the old link's target");
    assert_eq!(
        std::fs::read(w.dst.join("a/victim.txt")).unwrap(),
        b"would overwrite the outside victim"
    );
    assert_eq!(c.versioned, 2, "{c:?}");
    assert_logged(&w.dst, "a", "replaced", "symlink");
    assert_noop_sync_light(&w);
}

fn assert_noop_sync_light(w: &World) {
    let r = sync_src_untouched(w, &[]);
    r.ok().stdout_has("copied 0 files");
    assert_mirrored(&w.src, &w.dst);
}

#[test]
fn planted_symlinks_in_dst_mirrortray_are_refused_or_replaced_never_followed() {
    // What is planted, relative to DST/.mirrortray (or DST for the folder itself).
    let cases: &[(&str, bool)] = &[
        (".mirrortray", true),
        ("tmp", true),
        ("versions", true),
        ("versions.log", false),
        ("lock", false),
        ("source", false),
    ];
    let mut problems = Vec::new();
    for (name, is_dir) in cases {
        let w = World::new();
        let out = outside(&w);
        std::fs::write(out.join("file-target"), "outside file").unwrap();
        w.write("a.txt", "a");
        w.write("gone.txt", "gone");
        sync_ok(&w, &[]);
        std::fs::remove_file(w.src.join("gone.txt")).unwrap();
        std::fs::write(w.src.join("a.txt"), "a, modified").unwrap();
        let at = if *name == ".mirrortray" {
            w.dst.join(name)
        } else {
            w.dst.join(".mirrortray").join(name)
        };
        if at.is_dir() {
            std::fs::remove_dir_all(&at).unwrap();
        } else if std::fs::symlink_metadata(&at).is_ok() {
            std::fs::remove_file(&at).unwrap();
        }
        let target = if *is_dir {
            out.clone()
        } else {
            out.join("file-target")
        };
        symlink(&target, &at).unwrap();
        let out_before = snapshot(&out);
        let r = sync_src_untouched(&w, &[]);
        match r.code {
            // Refused: the sentence must say which path is wrong.
            2 if !r.stderr.contains(&*at.to_string_lossy()) => problems.push(format!(
                "planted {name}: refused, but the message does not name {}:\n{}",
                at.display(),
                r.stderr.trim()
            )),
            2 => {}
            0 if !tree::is_mirrored(&w.src, &w.dst) => problems.push(format!(
                "planted {name}: exit 0 but DST does not mirror SRC"
            )),
            0 => {}
            c => problems.push(format!("planted {name}: exit {c}\n{}", r.stderr.trim())),
        }
        assert_same(
            &out_before,
            &snapshot(&out),
            &format!("outside folder (planted {name})"),
        );
        // The dry run must not follow it either.
        let r = sync_src_untouched(&w, &["--dry-run"]);
        r.no_debug_dump();
        assert_same(
            &out_before,
            &snapshot(&out),
            &format!("outside folder (planted {name}, dry run)"),
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------- mass deletion guard (rule 6)

#[test]
fn mass_deletion_is_held_until_allowed() {
    let w = World::new();
    for i in 0..300 {
        w.write(&format!("f{i:03}.txt"), format!("file {i}"));
    }
    sync_ok(&w, &[]);
    for i in 0..250 {
        std::fs::remove_file(w.src.join(format!("f{i:03}.txt"))).unwrap();
    }
    w.write("new.txt", "new");
    let before = snapshot(&w.dst);
    let r = sync_src_untouched(&w, &[]);
    r.code(1)
        .stderr_has("--allow-mass-delete")
        .stderr_has(&w.dst.to_string_lossy());
    let c = counts(&r);
    assert_eq!(
        (c.held, c.versioned, c.deleted),
        (250, 0, 0),
        "{}",
        r.stdout
    );
    let after = snapshot(&w.dst);
    for (p, n) in &before {
        assert_eq!(
            after.get(p),
            Some(n),
            "{} changed while deletions were held",
            p.display()
        );
    }
    // Asking again without the flag still holds them.
    w.sync(&[]).code(1);
    let c = sync_ok(&w, &["--allow-mass-delete"]);
    assert_eq!(c.versioned, 250, "{c:?}");
    let kept = w.all_version_contents();
    for i in 0..250 {
        assert!(
            kept.contains(&format!("file {i}").into_bytes()),
            "f{i:03}.txt not in versions"
        );
    }
}

#[test]
fn mass_deletion_of_one_big_folder_is_held() {
    let w = World::new();
    for i in 0..250 {
        w.write(&format!("big/sub{}/f{i}", i % 5), "x");
    }
    for i in 0..40 {
        w.write(&format!("small{i}"), "y");
    }
    sync_ok(&w, &[]);
    std::fs::remove_dir_all(w.src.join("big")).unwrap();
    let r = sync_src_untouched(&w, &[]);
    r.code(1).stderr_has("--allow-mass-delete");
    assert!(
        w.dst.join("big/sub0/f0").exists(),
        "the held folder was removed"
    );
    sync_ok(&w, &["--allow-mass-delete"]);
}

#[test]
fn deletions_under_the_guard_threshold_go_through() {
    let w = World::new();
    for i in 0..150 {
        w.write(&format!("f{i}"), format!("{i}"));
    }
    sync_ok(&w, &[]);
    // 99 of 150: more than half, but fewer than 100.
    for i in 0..99 {
        std::fs::remove_file(w.src.join(format!("f{i}"))).unwrap();
    }
    let c = sync_ok(&w, &[]);
    assert_eq!((c.versioned, c.held), (99, 0), "{c:?}");
}

/// The guard's boundary: deletions of at least 100 entries go through at
/// exactly half of DST, and are held just above half.
#[test]
fn deletions_at_half_go_through_and_just_above_are_held() {
    let w = World::new();
    for i in 0..200 {
        w.write(&format!("f{i:03}"), format!("{i}"));
    }
    sync_ok(&w, &[]);
    for i in 0..100 {
        std::fs::remove_file(w.src.join(format!("f{i:03}"))).unwrap();
    }
    let c = sync_ok(&w, &[]);
    assert_eq!((c.versioned, c.held), (100, 0), "100 of 200: {c:?}");

    let w = World::new();
    for i in 0..200 {
        w.write(&format!("f{i:03}"), format!("{i}"));
    }
    sync_ok(&w, &[]);
    for i in 0..101 {
        std::fs::remove_file(w.src.join(format!("f{i:03}"))).unwrap();
    }
    let r = w.sync(&[]);
    r.code(1);
    let c = counts(&r);
    assert_eq!((c.versioned, c.held), (0, 101), "101 of 200: {}", r.stdout);
}

// ---------------------------------------------------------------- missing / unmounted SRC (rule 4)

#[test]
fn empty_src_on_another_device_looks_unmounted() {
    let w = World::new();
    w.write("a.txt", "a");
    w.write("d/b.txt", "b");
    sync_ok(&w, &[]);
    let dev = std::fs::metadata(&w.src).unwrap().dev();
    let record = format!("path={}\ndev={}\n", w.src.display(), dev + 12345);
    std::fs::write(w.dst.join(".mirrortray/source"), &record).unwrap();
    std::fs::remove_file(w.src.join("a.txt")).unwrap();
    std::fs::remove_dir_all(w.src.join("d")).unwrap();
    let before = snapshot(&w.dst);
    let versions_before = snapshot(&w.dst.join(".mirrortray/versions"));
    let r = sync_src_untouched(&w, &[]);
    r.code(2)
        .stderr_has("looks unmounted")
        .stderr_has(&w.src.to_string_lossy());
    assert_same(&before, &snapshot(&w.dst), "DST");
    assert_same(
        &versions_before,
        &snapshot(&w.dst.join(".mirrortray/versions")),
        "versions",
    );
    // The dry run says the same.
    w.sync(&["--dry-run"]).code(2).stderr_has("looks unmounted");
    // Same device recorded: a folder really emptied is mirrored (versioned).
    std::fs::write(
        w.dst.join(".mirrortray/source"),
        format!("path={}\ndev={dev}\n", w.src.display()),
    )
    .unwrap();
    let c = sync_ok(&w, &[]);
    assert_eq!(c.versioned, 2, "{c:?}");
}

#[test]
fn src_root_gone_after_a_backup_is_an_error_never_a_delete() {
    let w = World::new();
    w.write("a.txt", "a");
    sync_ok(&w, &[]);
    let before = snapshot(&w.dst);
    std::fs::remove_dir_all(&w.src).unwrap();
    let r = w.sync(&[]);
    r.code(2)
        .no_debug_dump()
        .stderr_has("does not exist")
        .stderr_has(&w.src.to_string_lossy());
    assert_same(&before, &snapshot(&w.dst), "DST");
    assert!(w.all_version_contents().is_empty());
}

// ---------------------------------------------------------------- temp files (rule 2)

#[test]
fn leftover_temp_files_are_removed_at_start() {
    let w = World::new();
    let out = outside(&w);
    w.write("a.txt", "a");
    sync_ok(&w, &[]);
    let tmp = w.dst.join(".mirrortray/tmp");
    std::fs::write(tmp.join("12345-0.tmp"), "half a copy").unwrap();
    std::fs::create_dir_all(tmp.join("junk/deeper")).unwrap();
    std::fs::write(tmp.join("junk/deeper/x"), "x").unwrap();
    symlink(&out, tmp.join("planted-link")).unwrap();
    let out_before = snapshot(&out);
    sync_ok(&w, &[]);
    assert!(
        w.temp_leftovers().is_empty(),
        "left: {:?}",
        w.temp_leftovers()
    );
    assert_same(
        &out_before,
        &snapshot(&out),
        "the target of a link planted in tmp/",
    );
}

#[test]
fn full_disk_fails_per_file_and_leaves_no_partial_file() {
    let w = World::new();
    let Some(_m) = mount(&["-t", "tmpfs", "-o", "size=1m", "tmpfs"], &w.dst) else {
        return;
    };
    let mut names = Vec::new();
    for i in 0..12u32 {
        let name = format!("d/file{i:02}.bin");
        // 256 KiB of bytes that differ per file.
        let bytes: Vec<u8> = (0..256 * 1024u32)
            .map(|j| (j.wrapping_mul(31).wrapping_add(i * 7)) as u8)
            .collect();
        w.write(&name, bytes);
        names.push(name);
    }
    let r = sync_src_untouched(&w, &[]);
    r.code(1);
    let c = counts(&r);
    assert!(c.failed >= 8, "3 MiB fit in 1 MiB? {c:?}");
    let mut missing = 0;
    for n in &names {
        match std::fs::read(w.dst.join(n)) {
            Ok(got) => assert_eq!(
                got,
                std::fs::read(w.src.join(n)).unwrap(),
                "{n} is a partial copy"
            ),
            Err(_) => {
                missing += 1;
                let line = r.stderr.lines().find(|l| l.contains(n.as_str()));
                let line = line.unwrap_or_else(|| panic!("no error line names {n}\n{}", r.stderr));
                assert!(
                    line.contains("backup disk full — ") && line.contains(" free, needs "),
                    "{line}"
                );
            }
        }
    }
    assert_eq!(missing, c.failed, "failed count vs. files missing in DST");
    assert!(
        w.temp_leftovers().is_empty(),
        "temp files left: {:?}",
        w.temp_leftovers()
    );
    // Every file DST holds anywhere is complete.
    for e in walkdir::WalkDir::new(&w.dst)
        .into_iter()
        .filter_map(|e| e.ok())
    {
        if e.file_type().is_file() && !e.path().starts_with(w.dst.join(".mirrortray")) {
            let rel = e.path().strip_prefix(&w.dst).unwrap();
            assert_eq!(
                std::fs::read(e.path()).unwrap(),
                std::fs::read(w.src.join(rel)).unwrap()
            );
        }
    }
}

/// The free-space floor on a real (small) disk: versions that would leave
/// less than `min_free_percent` free go, the oldest first, never the
/// newest; it is said with what went and how far back restores reach; the
/// backup itself stays exact.
#[test]
fn versions_below_the_free_space_floor_go_oldest_first_never_the_newest() {
    let w = World::new();
    let Some(_m) = mount(&["-t", "tmpfs", "-o", "size=8m", "tmpfs"], &w.dst) else {
        return;
    };
    let cfg = w.path("floor.toml");
    std::fs::write(
        &cfg,
        format!(
            "[settings]\nmin_free_percent = 50\n\n[[pair]]\nsrc = \"{}\"\ndst = \"{}\"\n",
            w.src.display(),
            w.dst.display()
        ),
    )
    .unwrap();
    let sync = || {
        w.run([
            "sync".as_ref(),
            "--config".as_ref(),
            cfg.as_os_str(),
            "-v".as_ref(),
        ])
    };
    // 1.5 MB each time, four times: the file and three versions would take
    // 6 MB of 8, past the floor of 4 MB free.
    let content = |n: u8| vec![n; 1_500_000];
    let mut said = String::new();
    for n in 1..=4u8 {
        w.write("big.bin", content(n));
        let r = sync();
        assert_eq!(r.code, 0, "{}", r.stderr);
        said.push_str(&r.stderr);
        assert_eq!(std::fs::read(w.dst.join("big.bin")).unwrap(), content(n));
    }
    let kept: Vec<u8> = w.versions_of("big.bin").iter().map(|(_, b)| b[0]).collect();
    // The newest version (3) stays; the oldest (1) went first.
    assert!(kept.contains(&3), "the newest version went: {kept:?}");
    assert!(!kept.contains(&1), "the oldest version was kept: {kept:?}");
    let free = |p: &Path| {
        let st = rustix::fs::statvfs(p).unwrap();
        st.f_bavail * st.f_frsize
    };
    assert!(
        free(&w.dst) >= 4 << 20 || kept.len() == 1,
        "below the floor with {kept:?} kept: {} free",
        free(&w.dst)
    );
    assert!(
        said.contains("the backup disk was short of space: removed")
            && said.contains("restores now reach back to"),
        "the pruning was not said:\n{said}"
    );
}

// ---------------------------------------------------------------- changed while copied (rule 7)

#[test]
fn a_file_rewritten_during_the_copy_is_never_torn_in_dst() {
    // Writers rewrite whole files again and again, each round one write()
    // of one byte value: a copy that mixes two values is torn. A write()
    // sets the file's times once, at its start; while the kernel throttles
    // a writer that dirties pages fast, one write() can last tens of ms, so
    // a copy can start and end inside it with the times unchanged. Several
    // files and several syncs: each one a chance to catch it.
    const LEN: usize = 8 << 20;
    const FILES: usize = 3;
    let w = World::new();
    let paths: Vec<PathBuf> = (0..FILES)
        .map(|i| w.write(&format!("busy{i}.bin"), vec![0u8; LEN]))
        .collect();
    w.write("calm.txt", "calm");
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicU64::new(0));
    // The longest single write(), for the failure message.
    let longest = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = paths
        .iter()
        .map(|path| {
            let (stop, rounds, longest, path) =
                (stop.clone(), rounds.clone(), longest.clone(), path.clone());
            std::thread::spawn(move || {
                use std::os::unix::fs::FileExt;
                let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                let mut k = 1u8;
                while !stop.load(Ordering::Relaxed) {
                    // A fresh buffer each round, as a program writing out a
                    // new version of a file does.
                    let buf = vec![k; LEN];
                    let t = std::time::Instant::now();
                    f.write_all_at(&buf, 0).unwrap();
                    longest.fetch_max(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                    k = k.wrapping_add(1).max(1);
                    rounds.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // Stops the writers even when an assertion fails.
    struct StopOnDrop(Arc<AtomicBool>);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let guard = StopOnDrop(stop.clone());
    assert!(wait_for(Duration::from_secs(30), || rounds
        .load(Ordering::Relaxed)
        >= 3 * FILES as u64));
    let mut torn = Vec::new();
    for round in 0..30 {
        // No versions: these copies need not be kept.
        let r = w.sync(&["--no-versions"]);
        r.no_debug_dump();
        assert!(r.code == 0 || r.code == 1, "{r:?}");
        for line in r.stderr.lines().filter(|l| l.contains("[ERROR]")) {
            assert!(
                line.contains("busy") && line.contains("kept changing"),
                "{line}"
            );
        }
        for i in 0..FILES {
            let Ok(got) = std::fs::read(w.dst.join(format!("busy{i}.bin"))) else {
                continue;
            };
            assert_eq!(got.len(), LEN);
            let first = got[0];
            if let Some(at) = got.iter().position(|b| *b != first) {
                torn.push(format!(
                    "sync #{round}: DST's busy{i}.bin is a torn copy: byte {first} up to offset {at}, then {}",
                    got[at]
                ));
            }
        }
        assert!(w.temp_leftovers().is_empty());
    }
    drop(guard);
    for t in writers {
        t.join().unwrap();
    }
    assert!(
        torn.is_empty(),
        "{}\n(the longest single write() took {} ms)",
        torn.join("\n"),
        longest.load(Ordering::Relaxed) / 1000
    );
    // Once they settle, the next sync mirrors them.
    sync_ok(&w, &[]);
}

#[test]
fn store_is_created_with_lock_tmp_versions_and_log() {
    let w = World::new();
    w.write("a.txt", "a");
    sync_ok(&w, &[]);
    let s = store_snapshot(&w.dst);
    for p in ["lock", "tmp", "versions", "versions.log", "source"] {
        assert!(
            s.contains_key(Path::new(p)),
            "DST/.mirrortray/{p} missing: {:?}",
            s.keys().collect::<Vec<_>>()
        );
    }
}

#[test]
fn mass_deletion_guard_protects_a_wrongly_chosen_dst() {
    // The user points the backup at a folder that already holds their
    // files (a typo, the wrong drive): the first sync must not version
    // them all away without asking.
    let w = World::new();
    for i in 0..200 {
        let p = w.dst.join(format!("documents/doc{i}.txt"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, format!("precious {i}")).unwrap();
    }
    w.write("photo.jpg", "jpg");
    let before = snapshot(&w.dst);
    let r = sync_src_untouched(&w, &[]);
    r.code(1).stderr_has("--allow-mass-delete");
    let after = snapshot(&w.dst);
    for (p, n) in &before {
        assert_eq!(after.get(p), Some(n), "{} was touched", p.display());
    }
    assert_eq!(
        std::fs::read(w.dst.join("photo.jpg")).unwrap(),
        b"jpg",
        "the copy itself still happens"
    );
}

#[test]
fn an_empty_file_system_mounted_over_src_looks_unmounted() {
    // The real case behind the device record: SRC is a mount point whose
    // drive is gone, so SRC is the empty folder underneath (here: an empty
    // tmpfs mounted over it, another device).
    let w = World::new();
    for i in 0..20 {
        w.write(&format!("f{i}"), "data");
    }
    sync_ok(&w, &[]);
    let before = snapshot(&w.dst);
    let versions_before = snapshot(&w.dst.join(".mirrortray/versions"));
    let Some(_m) = mount(&["-t", "tmpfs", "-o", "size=1m", "tmpfs"], &w.src) else {
        return;
    };
    let r = w.sync(&[]);
    r.code(2)
        .no_debug_dump()
        .stderr_has("looks unmounted")
        .stderr_has(&w.src.to_string_lossy());
    assert_same(&before, &snapshot(&w.dst), "DST");
    assert_same(
        &versions_before,
        &snapshot(&w.dst.join(".mirrortray/versions")),
        "versions",
    );
}

#[test]
fn paths_that_are_not_utf8_are_named_readably() {
    use std::os::unix::ffi::OsStrExt;
    let w = World::new();
    let missing = w
        .path("x")
        .with_file_name(std::ffi::OsStr::from_bytes(b"caf\xe9-missing"));
    let r = sync_paths(&w, &missing, &w.dst);
    r.code(2).no_debug_dump().stderr_has("caf\\xE9-missing");
    assert!(!w.dst.exists());
    // A SRC folder with such a name works, and a failure inside names it.
    let src = w
        .path("x")
        .with_file_name(std::ffi::OsStr::from_bytes(b"src\xff"));
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a.txt"), "a").unwrap();
    sync_paths(&w, &src, &w.dst).ok().no_debug_dump();
    assert_mirrored(&src, &w.dst);
}

#[test]
fn dst_that_is_a_symlink_into_src_is_refused() {
    let w = World::new();
    w.write("inner/a.txt", "a");
    let before = snapshot(&w.src);
    let link = w.path("backup-link");
    symlink(w.src.join("inner"), &link).unwrap();
    let r = sync_paths(&w, &w.src, &link);
    r.code(2)
        .no_debug_dump()
        .stderr_has("inside the source folder");
    assert_eq!(snapshot(&w.src), before);
    assert!(!w.src.join("inner/.mirrortray").exists());
}

/// The backup disk full while old versions fill it: the oldest go first
/// (never the newest), the copy goes through, and the user is told what
/// was removed and how far back restores reach now.
#[test]
fn a_full_backup_disk_makes_room_by_removing_the_oldest_versions() {
    let w = World::new();
    let Some(_m) = mount(&["-t", "tmpfs", "-o", "size=4m", "tmpfs"], &w.dst) else {
        return;
    };
    let mib = |b: u8| vec![b; 1 << 20];
    w.write("a.bin", mib(0));
    w.sync(&[]).ok();
    w.write("a.bin", mib(1));
    w.sync(&[]).ok();
    w.write("a.bin", mib(2));
    w.sync(&[]).ok();
    let stamps = || {
        let mut v: Vec<String> = std::fs::read_dir(w.dst.join(".mirrortray/versions"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let before = stamps();
    assert_eq!(before.len(), 2, "{before:?}");
    w.write("b.bin", vec![3u8; 1_200_000]);
    let r = w.sync(&[]);
    r.ok()
        .stderr_has("the backup disk was short of space: removed the oldest version folder (1.0 MB) to make room")
        .stderr_has(&format!("restores now reach back to {}", before[1]));
    assert_eq!(stamps(), vec![before[1].clone()]);
    assert_mirrored(&w.src, &w.dst);
}
