//! `mirrortray verify`: a mirror made by `sync` verifies as the same; each
//! kind of difference, made by hand in DST, is found and named; ignored and
//! special entries are not differences; verify changes nothing, not even
//! DST's `.mirrortray/`, and works while another process holds the lock;
//! bad setups and unreadable folders exit 2 naming the path.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed set-up step should stop it loudly

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use filetime::FileTime;

use crate::support::*;

/// 2026-11-25 10:00:00 UTC.
const T0: i64 = 1_795_600_800;

fn set_mtime(p: &Path, sec: i64, nsec: u32) {
    filetime::set_symlink_file_times(
        p,
        FileTime::from_unix_time(sec, nsec),
        FileTime::from_unix_time(sec, nsec),
    )
    .unwrap();
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// `mirrortray verify SRC DST` plus extra args.
fn verify(w: &World, extra: &[&str]) -> Run {
    let mut args: Vec<&std::ffi::OsStr> =
        vec!["verify".as_ref(), w.src.as_os_str(), w.dst.as_os_str()];
    args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
    w.run(args)
}

/// A small tree with every kind `sync` mirrors, nanosecond times, and a FIFO.
fn mirrored_world() -> World {
    let w = World::new();
    w.write("a.txt", "hello world!");
    w.write("run.sh", "#!/bin/sh\n");
    chmod(&w.src.join("run.sh"), 0o755);
    w.write("d/inner/deep.bin", vec![3u8; 70_000]);
    w.write("d/x.txt", "x");
    fs::create_dir_all(w.src.join("empty")).unwrap();
    symlink("a.txt", w.src.join("link")).unwrap();
    set_mtime(&w.src.join("a.txt"), T0, 123_456_789);
    let st = std::process::Command::new("mkfifo")
        .arg(w.src.join("pipe"))
        .status()
        .unwrap();
    assert!(st.success());
    w.sync(&[]).ok();
    assert_mirrored(&w.src, &w.dst);
    w
}

/// The lines of stdout that start with `label`.
fn lines_of<'a>(r: &'a Run, label: &str) -> Vec<&'a str> {
    r.stdout
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(label))
        .collect()
}

#[test]
fn a_fresh_mirror_is_the_same_and_special_files_are_skipped() {
    let w = mirrored_world();
    let r = verify(&w, &[]);
    r.ok()
        .no_debug_dump()
        .stdout_has("same: ")
        .stdout_has("skipped  pipe: FIFO, never mirrored");
    assert!(
        lines_of(&r, "missing").is_empty() && lines_of(&r, "extra").is_empty(),
        "{}",
        r.stdout
    );
    verify(&w, &["--checksum"]).ok().stdout_has("same: ");
}

#[test]
fn missing_and_extra_entries() {
    let w = mirrored_world();
    fs::remove_file(w.dst.join("a.txt")).unwrap();
    fs::remove_dir_all(w.dst.join("d")).unwrap();
    fs::write(w.dst.join("old.log"), "stale").unwrap();
    fs::create_dir_all(w.dst.join("gone/sub")).unwrap();
    fs::write(w.dst.join("gone/sub/f"), "f").unwrap();
    let r = verify(&w, &[]);
    r.code(1).no_debug_dump();
    r.stdout_has("missing  a.txt\n")
        .stdout_has("missing  d/\n")
        .stdout_has("missing  d/inner/\n")
        .stdout_has("missing  d/inner/deep.bin\n")
        .stdout_has("missing  d/x.txt\n")
        .stdout_has("extra    old.log\n")
        .stdout_has("extra    gone/\n");
    // An extra folder is one difference: a sync moves it away whole.
    assert!(!r.stdout.contains("gone/sub"), "{}", r.stdout);
    assert_eq!(lines_of(&r, "missing").len(), 5, "{}", r.stdout);
    r.stdout_has("7 differences (");
}

#[test]
fn a_missing_backup_folder_is_everything_missing_and_is_not_created() {
    let w = World::new();
    w.write("a", "1");
    w.write("sub/b", "2");
    let r = verify(&w, &[]);
    r.code(1).no_debug_dump();
    r.stdout_has("missing  a\n")
        .stdout_has("missing  sub/\n")
        .stdout_has("missing  sub/b\n")
        .stdout_has("3 differences (3 entries compared)");
    assert!(!w.dst.exists(), "verify created the backup folder");
}

#[test]
fn permission_bits_of_files_and_folders() {
    let w = mirrored_world();
    chmod(&w.dst.join("run.sh"), 0o644);
    chmod(&w.dst.join("d/inner"), 0o700);
    let r = verify(&w, &[]);
    r.code(1);
    r.stdout_has("mode     run.sh: 755 in source, 644 in backup\n")
        .stdout_has("mode     d/inner: 755 in source, 700 in backup\n");
    assert_eq!(
        r.stdout.lines().count(),
        4,
        "only the two modes, the skipped FIFO and the summary:\n{}",
        r.stdout
    );
}

#[test]
fn an_mtime_one_nanosecond_off_is_found_and_both_times_shown() {
    let w = mirrored_world();
    set_mtime(&w.dst.join("a.txt"), T0, 123_456_788);
    let r = verify(&w, &[]);
    r.code(1).stdout_has(
        "mtime    a.txt: 2026-11-25 10:00:00.123456789 UTC in source, 2026-11-25 10:00:00.123456788 UTC in backup\n",
    );
    r.stdout_has("1 difference (");
}

#[test]
fn folder_mtimes_count_but_not_the_roots() {
    let w = mirrored_world();
    set_mtime(&w.dst.join("d"), T0 - 3600, 5);
    set_mtime(&w.dst, T0 - 7200, 0);
    let r = verify(&w, &[]);
    r.code(1)
        .stdout_has("mtime    d: ")
        .stdout_has("2026-11-25 09:00:00.000000005 UTC in backup\n")
        .stdout_has("1 difference (");
}

#[test]
fn size_is_found_with_the_two_sizes() {
    let w = mirrored_world();
    fs::write(w.dst.join("d/x.txt"), "longer").unwrap();
    let r = verify(&w, &[]);
    r.code(1)
        .stdout_has("size     d/x.txt: 1 in source, 6 in backup\n");
}

#[test]
fn same_size_and_time_with_other_bytes_needs_checksum() {
    let w = mirrored_world();
    let f = w.dst.join("a.txt");
    fs::write(&f, "HELLO WORLD!").unwrap();
    set_mtime(&f, T0, 123_456_789);
    // Large file, last byte differs, same size and time: read in chunks.
    let mut big = vec![9u8; 3 * 1024 * 1024 + 17];
    w.write("big.bin", &big);
    set_mtime(&w.src.join("big.bin"), T0, 1);
    w.sync(&[]).ok();
    let last = big.len() - 1;
    big[last] = 8;
    fs::write(w.dst.join("big.bin"), &big).unwrap();
    set_mtime(&w.dst.join("big.bin"), T0, 1);
    verify(&w, &[]).ok().stdout_has("same: ");
    let r = verify(&w, &["--checksum"]);
    r.code(1).no_debug_dump();
    r.stdout_has("content  a.txt: bytes differ\n")
        .stdout_has("content  big.bin: bytes differ\n")
        .stdout_has("2 differences (");
}

#[test]
fn a_file_replaced_by_a_folder_and_a_folder_by_a_symlink() {
    let w = mirrored_world();
    fs::remove_file(w.dst.join("a.txt")).unwrap();
    fs::create_dir(w.dst.join("a.txt")).unwrap();
    fs::write(w.dst.join("a.txt/inside"), "i").unwrap();
    // A planted symlink to a folder outside DST, holding the same names: not followed.
    let outside = w.path("outside");
    fs::create_dir_all(outside.join("inner")).unwrap();
    fs::write(outside.join("x.txt"), "x").unwrap();
    fs::remove_dir_all(w.dst.join("d")).unwrap();
    symlink(&outside, w.dst.join("d")).unwrap();
    let r = verify(&w, &[]);
    r.code(1).no_debug_dump();
    r.stdout_has("type     a.txt: file in source, folder in backup\n")
        .stdout_has("type     d: folder in source, symlink in backup\n");
    assert!(
        !r.stdout.contains("inside") && !r.stdout.contains("d/"),
        "went into a replaced entry:\n{}",
        r.stdout
    );
    r.stdout_has("2 differences (");
}

#[test]
fn a_retargeted_symlink() {
    let w = mirrored_world();
    fs::remove_file(w.dst.join("link")).unwrap();
    symlink("run.sh", w.dst.join("link")).unwrap();
    let st = fs::symlink_metadata(w.src.join("link")).unwrap();
    let t = FileTime::from_last_modification_time(&st);
    filetime::set_symlink_file_times(w.dst.join("link"), t, t).unwrap();
    let r = verify(&w, &[]);
    r.code(1)
        .stdout_has("target   link: -> a.txt in source, -> run.sh in backup\n")
        .stdout_has("1 difference (");
}

#[test]
fn a_special_file_in_source_is_skipped_and_what_backup_holds_there_is_extra() {
    let w = mirrored_world();
    fs::write(w.dst.join("pipe"), "not a pipe").unwrap();
    let r = verify(&w, &[]);
    r.code(1)
        .stdout_has("skipped  pipe: FIFO, never mirrored\n")
        .stdout_has("extra    pipe\n");
}

#[test]
fn ignored_paths_are_not_differences() {
    let w = mirrored_world();
    w.write("new.log", "not backed up");
    w.write("build/out.o", "obj");
    fs::write(w.dst.join("stale.log"), "old").unwrap();
    fs::create_dir_all(w.dst.join("d/build")).unwrap();
    fs::write(w.dst.join("d/build/junk"), "j").unwrap();
    // d's own mtime changed when build/ was made in it: put it back.
    let st = fs::metadata(w.src.join("d")).unwrap();
    let t = FileTime::from_last_modification_time(&st);
    filetime::set_file_times(w.dst.join("d"), t, t).unwrap();
    verify(&w, &[]).code(1);
    let r = verify(&w, &["--ignore", "*.log", "--ignore", "build/"]);
    r.ok().stdout_has("same: ");
    assert!(
        !r.stdout.contains(".log") && !r.stdout.contains("build"),
        "{}",
        r.stdout
    );
}

/// Everything under `dir`, reserved folder included: kind, bytes, mode,
/// mtime and ctime (a chmod or a rewrite with the same content shows too).
fn raw_snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir).follow_links(false) {
        let e = e.unwrap();
        let m = fs::symlink_metadata(e.path()).unwrap();
        let bytes = if m.is_file() {
            fs::read(e.path())
                .map(|b| format!("{b:?}"))
                .unwrap_or_default()
        } else {
            String::new()
        };
        out.insert(
            e.path().to_path_buf(),
            format!(
                "{:o} {}.{} {}.{} {}",
                m.mode(),
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec(),
                bytes
            ),
        );
    }
    out
}

#[test]
fn verify_changes_nothing_anywhere() {
    let w = mirrored_world();
    fs::write(w.dst.join("extra.txt"), "e").unwrap();
    fs::remove_file(w.dst.join("d/x.txt")).unwrap();
    let before = (raw_snapshot(&w.src), raw_snapshot(&w.dst));
    assert!(before.1.keys().any(|p| p.ends_with(".mirrortray/lock")));
    verify(&w, &[]).code(1);
    verify(&w, &["--checksum"]).code(1);
    verify(&w, &["--checksum", "--ignore", "*.txt"]).code(1);
    let after = (raw_snapshot(&w.src), raw_snapshot(&w.dst));
    assert_eq!(before, after, "verify changed a tree");
}

#[test]
fn verify_works_while_another_process_holds_the_lock() {
    let w = mirrored_world();
    let lock = File::options()
        .read(true)
        .write(true)
        .open(w.dst.join(".mirrortray/lock"))
        .unwrap();
    // flock, as std's File::try_lock does (rustix: the crate's MSRV predates it).
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    // The lock really is held: a sync is refused...
    w.sync(&[])
        .code(2)
        .stderr_has("in use by another mirrortray");
    // ...and verify does not care.
    verify(&w, &["--checksum"]).ok().stdout_has("same: ");
    fs::remove_file(w.dst.join("a.txt")).unwrap();
    verify(&w, &[]).code(1).stdout_has("missing  a.txt\n");
    drop(lock);
}

#[test]
fn quiet_prints_nothing_and_the_exit_code_tells() {
    let w = mirrored_world();
    let r = verify(&w, &["-q"]);
    r.ok();
    assert_eq!(r.stdout, "");
    fs::remove_file(w.dst.join("a.txt")).unwrap();
    let r = verify(&w, &["-q"]);
    r.code(1);
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", ""));
}

#[test]
fn names_that_are_not_utf8_are_shown_with_escapes() {
    use std::os::unix::ffi::OsStrExt;
    let w = mirrored_world();
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
    fs::write(w.src.join(name), "x").unwrap();
    let r = verify(&w, &[]);
    r.code(1)
        .no_debug_dump()
        .stdout_has("missing  caf\\xE9.txt\n");
}

#[test]
fn a_missing_source_is_a_setup_error_naming_it() {
    let w = World::new();
    let gone = w.path("no-such-folder");
    let r = w.run(["verify".as_ref(), gone.as_os_str(), w.dst.as_os_str()]);
    r.code(2)
        .no_debug_dump()
        .stderr_has(&format!("{} does not exist", gone.display()));
    assert!(!w.dst.exists());
}

#[test]
fn overlapping_folders_are_refused() {
    let w = World::new();
    w.write("a", "1");
    let inside = w.src.join("backup");
    let r = w.run(["verify".as_ref(), w.src.as_os_str(), inside.as_os_str()]);
    r.code(2)
        .no_debug_dump()
        .stderr_has("inside the source folder");
    assert!(!inside.exists());
}

/// A world that nobody (65534) can read, except `secret/` on one side.
fn nobody_world() -> World {
    let w = mirrored_world();
    w.write("secret/s.txt", "s");
    w.sync(&[]).ok();
    chown_nobody(w.dir.path());
    w
}

fn verify_as_nobody(w: &World) -> Run {
    let out = as_nobody(w)
        .arg("verify")
        .arg(&w.src)
        .arg(&w.dst)
        .output()
        .unwrap();
    Run::from(out)
}

#[test]
fn an_unreadable_source_folder_is_an_error_not_everything_extra() {
    let w = nobody_world();
    verify_as_nobody(&w).ok();
    let secret = w.src.join("secret");
    chmod(&secret, 0o000);
    let r = verify_as_nobody(&w);
    chmod(&secret, 0o755);
    r.code(2).no_debug_dump().stderr_has(&format!(
        "{}: cannot read folder: permission denied",
        secret.display()
    ));
    assert!(
        !r.stdout.contains("extra"),
        "unreadable was taken as empty:\n{}",
        r.stdout
    );
}

#[test]
fn an_unreadable_backup_folder_is_an_error_not_everything_missing() {
    let w = nobody_world();
    let secret = w.dst.join("secret");
    let st = fs::metadata(w.src.join("secret")).unwrap();
    chmod(&secret, 0o000);
    let t = FileTime::from_last_modification_time(&st);
    filetime::set_file_times(&secret, t, t).unwrap();
    let r = verify_as_nobody(&w);
    chmod(&secret, 0o755);
    r.code(2).no_debug_dump().stderr_has(&format!(
        "{}: cannot read folder: permission denied",
        secret.display()
    ));
    assert!(
        !r.stdout.contains("missing  secret/s.txt"),
        "unreadable was taken as empty:\n{}",
        r.stdout
    );
}

#[test]
fn without_src_dst_every_configured_pair_is_verified_with_its_ignore_patterns() {
    let w = mirrored_world();
    let src2 = w.path("src2");
    let dst2 = w.path("dst2");
    fs::create_dir_all(&src2).unwrap();
    fs::write(src2.join("kept.txt"), "k").unwrap();
    w.run(["sync".as_ref(), src2.as_os_str(), dst2.as_os_str()])
        .ok();
    fs::write(dst2.join("scratch.tmp"), "ignored by the pair").unwrap();
    fs::remove_file(w.dst.join("a.txt")).unwrap();
    let config = w.path("pairs.toml");
    fs::write(
        &config,
        format!(
            "[[pair]]\nsrc = {:?}\ndst = {:?}\n\n[[pair]]\nsrc = {:?}\ndst = {:?}\nignore = [\"*.tmp\"]\n",
            w.src, w.dst, src2, dst2
        ),
    )
    .unwrap();
    let r = w.run(["verify".as_ref(), "--config".as_ref(), config.as_os_str()]);
    r.code(1).no_debug_dump();
    let real = |p: &Path| fs::canonicalize(p).unwrap().display().to_string();
    r.stdout_has(&format!("{} -> {}\n", real(&w.src), real(&w.dst)))
        .stdout_has("missing  a.txt\n")
        .stdout_has(&format!("{} -> {}\n", real(&src2), real(&dst2)))
        .stdout_has("same: 1 entry compared\n");
    assert!(!r.stdout.contains("scratch"), "{}", r.stdout);
}
