//! `mirrortray sync SRC DST`: the one-shot reconcile, as a user sees it.
//!
//! Each test builds a real SRC tree, runs the real binary, and checks what a
//! user would: the exit code, the summary line, DST's contents (types, bytes,
//! ns mtimes, modes, link targets via `assert_mirrored`), SRC untouched (a
//! snapshot before and after), and what went into the versions folder.
//!
//! The small helpers at the top are shared with `safety.rs` and `prop.rs`.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use crate::support::tree::Node;
use crate::support::*;

// ---------------------------------------------------------------- helpers

/// Sets the mtime (and atime) of `p` itself, not following a symlink.
pub(crate) fn set_mtime(p: &Path, sec: i64, nsec: u32) {
    let t = filetime::FileTime::from_unix_time(sec, nsec);
    filetime::set_symlink_file_times(p, t, t)
        .unwrap_or_else(|e| panic!("set times of {}: {e}", p.display()));
}

pub(crate) fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
}

pub(crate) fn mtime_of(p: &Path) -> (i64, i64) {
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.mtime(), m.mtime_nsec())
}

/// The counters of the summary line (`copied N files (X), N folders, ...`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Counts {
    pub copied: u64,
    pub folders: u64,
    pub versioned: u64,
    pub deleted: u64,
    pub skipped: u64,
    pub failed: u64,
    pub updated: u64,
    pub held: u64,
}

/// Parses the summary line of a sync's stdout; panics (showing the output)
/// when there is none.
#[track_caller]
pub(crate) fn counts(r: &Run) -> Counts {
    let line = r
        .stdout
        .lines()
        .rev()
        .find(|l| l.contains(" folders, versioned "))
        .unwrap_or_else(|| {
            panic!(
                "no summary line\n--- stdout\n{}\n--- stderr\n{}",
                r.stdout, r.stderr
            )
        });
    let mut c = Counts::default();
    for part in line.split(", ") {
        let words: Vec<&str> = part.split_whitespace().collect();
        let num = |i: usize| words.get(i).and_then(|w| w.parse::<u64>().ok());
        match words.first().copied() {
            Some("copied") | Some("would") => {
                let i = if words[0] == "would" { 2 } else { 1 };
                c.copied = num(i).unwrap_or_else(|| panic!("bad summary {line:?}"));
            }
            Some("versioned") => c.versioned = num(1).unwrap(),
            Some("deleted") => c.deleted = num(1).unwrap(),
            Some("skipped") => c.skipped = num(1).unwrap(),
            Some("updated") => c.updated = num(1).unwrap(),
            Some("held") => c.held = num(1).unwrap(),
            Some("failed") => c.failed = num(1).unwrap(),
            Some(n) if words.get(1) == Some(&"folders") => c.folders = n.parse().unwrap(),
            _ => {}
        }
    }
    c
}

/// Everything under DST's `.mirrortray/` (versions, log, lock, tmp).
pub(crate) fn store_snapshot(dst: &Path) -> Snapshot {
    snapshot(&dst.join(".mirrortray"))
}

/// The time folders under DST's versions folder, oldest first.
pub(crate) fn version_stamps(dst: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dst.join(".mirrortray/versions"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Whether `name` looks like `2026-11-25T11-03-29.123456Z`.
pub(crate) fn is_stamp(name: &str) -> bool {
    let b = name.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.into_iter().all(|i| b[i].is_ascii_digit());
    b.len() == 27
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b'-'
        && digits(14..16)
        && b[16] == b'-'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..26)
        && b[26] == b'Z'
}

/// The lines of DST's `versions.log`: `(time, reason, kind, escaped path)`.
pub(crate) fn versions_log(dst: &Path) -> Vec<(String, String, String, String)> {
    let text = std::fs::read_to_string(dst.join(".mirrortray/versions.log")).unwrap_or_default();
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(
                f.len(),
                4,
                "versions.log line is not time\\treason\\tkind\\tpath: {l:?}"
            );
            (
                f[0].to_string(),
                f[1].to_string(),
                f[2].to_string(),
                f[3].to_string(),
            )
        })
        .collect()
}

/// Undoes versions.log's escaping (`\\`, `\t`, `\n`, `\r`, `\xNN`).
pub(crate) fn unescape(s: &str) -> PathBuf {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b't' => out.push(b'\t'),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b'x' => {
                    out.push(u8::from_str_radix(&s[i + 2..i + 4], 16).unwrap());
                    i += 2;
                }
                c => out.push(c),
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(OsStr::from_bytes(&out))
}

/// Asserts versions.log has a line for `path` with `reason` and `kind`, in a
/// time folder that exists and holds the path.
#[track_caller]
pub(crate) fn assert_logged(dst: &Path, path: &str, reason: &str, kind: &str) {
    let log = versions_log(dst);
    let hit = log
        .iter()
        .find(|(_, r, k, p)| p == path && r == reason && k == kind);
    let Some((t, ..)) = hit else {
        panic!("versions.log has no {reason} {kind} line for {path:?}:\n{log:#?}");
    };
    assert!(
        is_stamp(t),
        "versions.log time {t:?} is not a version folder name"
    );
    let kept = dst
        .join(".mirrortray/versions")
        .join(t)
        .join(unescape(path));
    assert!(
        std::fs::symlink_metadata(&kept).is_ok(),
        "versions.log names {} but it does not exist",
        kept.display()
    );
}

/// Runs sync and checks SRC was not changed by it.
#[track_caller]
pub(crate) fn sync_src_untouched(w: &World, extra: &[&str]) -> Run {
    let before = snapshot(&w.src);
    let r = w.sync(extra);
    r.no_debug_dump();
    let after = snapshot(&w.src);
    let d = tree::diff(&before, &after);
    assert!(d.is_empty(), "sync changed SRC:\n{}", d.join("\n"));
    r
}

/// A sync that must mirror: exit 0, DST == SRC, SRC untouched, no temp files.
#[track_caller]
pub(crate) fn sync_ok(w: &World, extra: &[&str]) -> Counts {
    let r = sync_src_untouched(w, extra);
    r.ok();
    assert_mirrored(&w.src, &w.dst);
    assert!(
        w.temp_leftovers().is_empty(),
        "temp files left: {:?}",
        w.temp_leftovers()
    );
    counts(&r)
}

/// A second sync right after a mirroring one: nothing copied, nothing
/// versioned, DST (and its versions) unchanged.
#[track_caller]
pub(crate) fn assert_noop_sync(w: &World) {
    let dst_before = snapshot(&w.dst);
    let versions_before = snapshot(&w.dst.join(".mirrortray/versions"));
    let r = sync_src_untouched(w, &[]);
    r.ok().stdout_has("copied 0 files");
    let c = counts(&r);
    assert_eq!(
        (
            c.copied,
            c.folders,
            c.versioned,
            c.deleted,
            c.updated,
            c.failed
        ),
        (0, 0, 0, 0, 0, 0),
        "second sync was not a no-op:\n{}",
        r.stdout
    );
    let d = tree::diff(&dst_before, &snapshot(&w.dst));
    assert!(d.is_empty(), "second sync changed DST:\n{}", d.join("\n"));
    let d = tree::diff(
        &versions_before,
        &snapshot(&w.dst.join(".mirrortray/versions")),
    );
    assert!(
        d.is_empty(),
        "second sync changed the versions:\n{}",
        d.join("\n")
    );
}

fn osname(bytes: &[u8]) -> &OsStr {
    OsStr::from_bytes(bytes)
}

// ---------------------------------------------------------------- tests

#[test]
fn first_sync_mirrors_then_second_changes_nothing() {
    let w = World::new();
    w.write("a.txt", "hello");
    w.write("d/e/f.bin", vec![7u8; 100_000]);
    std::os::unix::fs::symlink("a.txt", w.src.join("link")).unwrap();
    std::fs::create_dir_all(w.src.join("empty/inner")).unwrap();
    w.sync(&[]).ok().no_debug_dump();
    assert_mirrored(&w.src, &w.dst);
    let again = w.sync(&[]);
    again.ok().stdout_has("copied 0 files");
    assert_mirrored(&w.src, &w.dst);
}

#[test]
fn summary_line_counts_what_was_done() {
    let w = World::new();
    w.write("a.txt", "12345");
    w.write("d/b.txt", "123");
    std::fs::create_dir_all(w.src.join("d/empty")).unwrap();
    symlink("a.txt", w.src.join("l")).unwrap();
    let r = sync_src_untouched(&w, &[]);
    r.ok();
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("copied "))
        .expect("summary line starts with 'copied'");
    assert!(
        line.contains(" in ") && line.trim_end().ends_with(" s"),
        "summary line lacks the time: {line:?}"
    );
    let c = counts(&r);
    assert_eq!(
        (
            c.copied,
            c.folders,
            c.versioned,
            c.deleted,
            c.skipped,
            c.failed
        ),
        (3, 2, 0, 0, 0, 0),
        "{line}"
    );
    assert_mirrored(&w.src, &w.dst);
    assert!(w.temp_leftovers().is_empty());
    // The source device is recorded for the "looks unmounted" check.
    let rec = std::fs::read_to_string(w.dst.join(".mirrortray/source")).unwrap();
    let dev = std::fs::metadata(&w.src).unwrap().dev();
    assert!(
        rec.contains(&format!("dev={dev}")),
        "source record {rec:?} lacks dev={dev}"
    );
}

#[test]
fn files_folders_empty_folders_and_symlinks_are_mirrored() {
    let w = World::new();
    let outside = w.path("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("o.txt"), "outside").unwrap();
    w.write("top.txt", "top");
    w.write("empty.txt", "");
    w.write("a/b/c/deep.txt", "deep");
    std::fs::create_dir_all(w.src.join("empty1")).unwrap();
    std::fs::create_dir_all(w.src.join("a/empty2/empty3")).unwrap();
    symlink("top.txt", w.src.join("rel-link")).unwrap();
    symlink("../top.txt", w.src.join("a/up-link")).unwrap();
    symlink("does/not/exist", w.src.join("dangling")).unwrap();
    symlink(&outside, w.src.join("abs-dir-link")).unwrap();
    symlink(outside.join("o.txt"), w.src.join("abs-file-link")).unwrap();
    symlink("a/b", w.src.join("dir-link")).unwrap();
    let outside_before = snapshot(&outside);
    let c = sync_ok(&w, &[]);
    assert_eq!(c.failed, 0);
    // Target text kept exactly, never resolved, never followed.
    for (l, t) in [
        ("rel-link", PathBuf::from("top.txt")),
        ("a/up-link", PathBuf::from("../top.txt")),
        ("dangling", PathBuf::from("does/not/exist")),
        ("abs-dir-link", outside.clone()),
        ("abs-file-link", outside.join("o.txt")),
        ("dir-link", PathBuf::from("a/b")),
    ] {
        let p = w.dst.join(l);
        assert!(
            std::fs::symlink_metadata(&p)
                .unwrap()
                .file_type()
                .is_symlink(),
            "{l} is not a symlink in DST"
        );
        assert_eq!(std::fs::read_link(&p).unwrap(), t, "{l}");
    }
    assert!(w.dst.join("empty1").is_dir() && w.dst.join("a/empty2/empty3").is_dir());
    assert_eq!(
        snapshot(&outside),
        outside_before,
        "a symlink target outside was touched"
    );
    assert_noop_sync(&w);
}

#[test]
fn modes_and_nanosecond_mtimes_are_kept() {
    let w = World::new();
    let files: &[(&str, u32)] = &[
        ("private.txt", 0o600),
        ("script.sh", 0o755),
        ("readonly.txt", 0o444),
        ("setuid-bin", 0o4755),
        ("group.txt", 0o640),
        ("none.txt", 0o000),
        ("ro/inside.txt", 0o644),
    ];
    for (i, (p, mode)) in files.iter().enumerate() {
        let path = w.write(p, format!("content of {p}"));
        chmod(&path, *mode);
        set_mtime(&path, 1_600_000_000 + i as i64, 123_456_789 + i as u32);
    }
    std::fs::create_dir_all(w.src.join("sticky")).unwrap();
    std::fs::create_dir_all(w.src.join("setgid/sub")).unwrap();
    symlink("private.txt", w.src.join("link")).unwrap();
    set_mtime(&w.src.join("link"), 1_500_000_000, 999_999_999);
    for (d, mode, t) in [
        ("ro", 0o555, 1_400_000_001),
        ("sticky", 0o1777, 1_400_000_002),
        ("setgid/sub", 0o2750, 1_400_000_003),
        ("setgid", 0o2755, 1_400_000_004),
    ] {
        chmod(&w.src.join(d), mode);
        set_mtime(&w.src.join(d), t, 7);
    }
    sync_ok(&w, &[]);
    for (p, mode) in files {
        let m = std::fs::symlink_metadata(w.dst.join(p)).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, *mode, "{p}");
    }
    assert_eq!(
        std::fs::metadata(w.dst.join("ro"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o555
    );
    assert_eq!(mtime_of(&w.dst.join("link")), (1_500_000_000, 999_999_999));
    assert_noop_sync(&w);
}

#[test]
fn permission_change_alone_is_applied_without_a_copy() {
    let w = World::new();
    let f = w.write("f.txt", "same bytes");
    chmod(&f, 0o644);
    sync_ok(&w, &[]);
    let ino = std::fs::metadata(w.dst.join("f.txt")).unwrap().ino();
    chmod(&f, 0o600);
    let c = sync_ok(&w, &[]);
    assert_eq!((c.copied, c.versioned, c.updated), (0, 0, 1), "{c:?}");
    assert_eq!(
        std::fs::metadata(w.dst.join("f.txt")).unwrap().ino(),
        ino,
        "a mode change made a new copy"
    );
    assert!(
        w.all_version_contents().is_empty(),
        "a mode change kept a version"
    );
    assert_noop_sync(&w);
}

#[test]
fn folder_mtimes_are_set_after_their_content() {
    let w = World::new();
    w.write("d/one.txt", "1");
    w.write("d/sub/two.txt", "2");
    w.write("d/gone.txt", "x");
    set_mtime(&w.src.join("d/sub"), 1_000_000_000, 111);
    set_mtime(&w.src.join("d"), 1_000_000_001, 222);
    sync_ok(&w, &[]);
    assert_eq!(mtime_of(&w.dst.join("d")), (1_000_000_001, 222));
    // Adding and removing entries inside a folder changes DST's folder
    // mtime; the sync must put SRC's back afterwards.
    w.write("d/new.txt", "new");
    w.write("d/sub/three.txt", "3");
    std::fs::remove_file(w.src.join("d/gone.txt")).unwrap();
    set_mtime(&w.src.join("d/sub"), 1_000_000_000, 333);
    set_mtime(&w.src.join("d"), 1_000_000_001, 444);
    let c = sync_ok(&w, &[]);
    assert_eq!((c.copied, c.versioned), (2, 1), "{c:?}");
    assert_eq!(mtime_of(&w.dst.join("d")), (1_000_000_001, 444));
    assert_eq!(mtime_of(&w.dst.join("d/sub")), (1_000_000_000, 333));
    assert_noop_sync(&w);
}

#[test]
fn unchanged_files_are_not_copied_again() {
    let w = World::new();
    for i in 0..50 {
        w.write(&format!("d{}/f{i}.txt", i % 5), format!("file {i}"));
    }
    sync_ok(&w, &[]);
    let before: BTreeMap<PathBuf, (u64, i64, i64)> = walkdir::WalkDir::new(&w.dst)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file() && !e.path().starts_with(w.dst.join(".mirrortray")))
        .map(|e| {
            let m = e.metadata().unwrap();
            (e.path().to_path_buf(), (m.ino(), m.ctime(), m.ctime_nsec()))
        })
        .collect();
    assert_eq!(before.len(), 50);
    let r = sync_src_untouched(&w, &[]);
    r.ok().stdout_has("copied 0 files");
    for (p, id) in &before {
        let m = std::fs::metadata(p).unwrap();
        assert_eq!(
            (m.ino(), m.ctime(), m.ctime_nsec()),
            *id,
            "{} was rewritten by a no-op sync",
            p.display()
        );
    }
    assert_noop_sync(&w);
}

#[test]
fn same_size_rewrite_in_the_same_second_is_copied() {
    // rsync's quick check (size + whole seconds) misses this; lsyncd left
    // git's .git/HEAD stale that way.
    let w = World::new();
    let head = w.write(".git/HEAD", "ref: refs/heads/main\n");
    set_mtime(&head, 1_700_000_000, 100_000_000);
    sync_ok(&w, &[]);
    std::fs::write(&head, "ref: refs/heads/next\n").unwrap();
    set_mtime(&head, 1_700_000_000, 100_000_001);
    let c = sync_ok(&w, &[]);
    assert_eq!((c.copied, c.versioned), (1, 1), "{c:?}");
    assert_eq!(
        std::fs::read(w.dst.join(".git/HEAD")).unwrap(),
        b"ref: refs/heads/next\n"
    );
    let v = w.versions_of(".git/HEAD");
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].1, b"ref: refs/heads/main\n");
    assert_logged(&w.dst, ".git/HEAD", "modified", "file");
    assert_noop_sync(&w);
}

#[test]
fn two_files_same_size_and_second_different_content() {
    let w = World::new();
    let a = w.write("a.txt", "AAAA");
    let b = w.write("b.txt", "BBBB");
    set_mtime(&a, 1_650_000_000, 1);
    set_mtime(&b, 1_650_000_000, 2);
    sync_ok(&w, &[]);
    assert_eq!(std::fs::read(w.dst.join("a.txt")).unwrap(), b"AAAA");
    assert_eq!(std::fs::read(w.dst.join("b.txt")).unwrap(), b"BBBB");
    // Swap them: same sizes, same second, only the nanoseconds tell.
    std::fs::rename(&a, w.src.join("tmp")).unwrap();
    std::fs::rename(&b, &a).unwrap();
    std::fs::rename(w.src.join("tmp"), &b).unwrap();
    let c = sync_ok(&w, &[]);
    assert_eq!((c.copied, c.versioned), (2, 2), "{c:?}");
    assert_eq!(std::fs::read(w.dst.join("a.txt")).unwrap(), b"BBBB");
    assert_eq!(w.versions_of("a.txt").last().unwrap().1, b"AAAA");
    assert_eq!(w.versions_of("b.txt").last().unwrap().1, b"BBBB");
    assert_noop_sync(&w);
}

#[test]
fn mtimes_before_1970_and_with_nanoseconds() {
    let w = World::new();
    let old = w.write("old.txt", "from 1960");
    set_mtime(&old, -315_619_200, 123_456_789); // 1960-01-01 + ns
    let just_before = w.write("just-before.txt", "1969-12-31T23:59:59.5");
    set_mtime(&just_before, -1, 500_000_000);
    let epoch = w.write("epoch.txt", "0");
    set_mtime(&epoch, 0, 0);
    let future = w.write("future.txt", "2200");
    set_mtime(&future, 7_258_118_400, 1);
    std::fs::create_dir(w.src.join("olddir")).unwrap();
    symlink("old.txt", w.src.join("oldlink")).unwrap();
    set_mtime(&w.src.join("oldlink"), -86_400, 42);
    set_mtime(&w.src.join("olddir"), -1_000_000_000, 999_999_999);
    sync_ok(&w, &[]);
    assert_eq!(
        mtime_of(&w.dst.join("old.txt")),
        (-315_619_200, 123_456_789)
    );
    assert_eq!(mtime_of(&w.dst.join("just-before.txt")), (-1, 500_000_000));
    assert_eq!(
        mtime_of(&w.dst.join("olddir")),
        (-1_000_000_000, 999_999_999)
    );
    assert_noop_sync(&w);
    // And a same-size edit that only moves the nanoseconds before 1970.
    std::fs::write(&old, "from 1961").unwrap();
    set_mtime(&old, -315_619_200, 123_456_790);
    let c = sync_ok(&w, &[]);
    assert_eq!((c.copied, c.versioned), (1, 1), "{c:?}");
    assert_eq!(w.versions_of("old.txt")[0].1, b"from 1960");
}

#[test]
fn names_that_are_not_utf8() {
    let w = World::new();
    let bad_file = w.src.join(osname(b"caf\xff.txt"));
    std::fs::write(&bad_file, "latin-1 name").unwrap();
    let bad_dir = w.src.join(osname(b"dir\xfe\xfd"));
    std::fs::create_dir(&bad_dir).unwrap();
    std::fs::write(bad_dir.join(osname(b"in\x80side")), "inside").unwrap();
    symlink(osname(b"target\xff"), w.src.join(osname(b"link\xff"))).unwrap();
    // The dry run names them readably.
    let dry = w.sync(&["--dry-run"]);
    dry.ok()
        .no_debug_dump()
        .stdout_has("caf\\xFF.txt")
        .stdout_has("dir\\xFE\\xFD");
    sync_ok(&w, &[]);
    assert_eq!(
        std::fs::read_link(w.dst.join(osname(b"link\xff")))
            .unwrap()
            .as_os_str()
            .as_bytes(),
        b"target\xff"
    );
    assert_noop_sync(&w);
    // Deleted: versioned, and the log line escapes the bytes.
    std::fs::remove_file(&bad_file).unwrap();
    let c = sync_ok(&w, &[]);
    assert_eq!(c.versioned, 1);
    assert_logged(&w.dst, "caf\\xFF.txt", "deleted", "file");
    assert!(w.all_version_contents().contains(&b"latin-1 name".to_vec()));
}

#[test]
fn a_255_byte_name() {
    let w = World::new();
    let long = "x".repeat(255);
    w.write(&long, "long name");
    // 127 two-byte characters + 1 = 255 bytes.
    let long_utf8 = format!("{}y", "é".repeat(127));
    assert_eq!(long_utf8.len(), 255);
    w.write(&format!("{long_utf8}/{long}"), "long in long");
    sync_ok(&w, &[]);
    assert_noop_sync(&w);
    std::fs::write(w.src.join(&long), "long name, edited").unwrap();
    std::fs::remove_dir_all(w.src.join(&long_utf8)).unwrap();
    let c = sync_ok(&w, &[]);
    assert_eq!(c.versioned, 2, "{c:?}");
    assert_eq!(w.versions_of(&long)[0].1, b"long name");
    assert_eq!(
        w.versions_of(&format!("{long_utf8}/{long}"))[0].1,
        b"long in long"
    );
}

#[test]
fn fifos_sockets_and_devices_are_skipped() {
    let w = World::new();
    w.write("normal.txt", "n");
    let st = std::process::Command::new("mkfifo")
        .arg(w.src.join("pipe"))
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::create_dir(w.src.join("d")).unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(w.src.join("d/sock")).unwrap();
    let dev = std::process::Command::new("mknod")
        .arg(w.src.join("null-dev"))
        .args(["c", "1", "3"])
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !dev {
        skip("mknod is not permitted here; the device case is not tested");
    }
    let c = sync_ok(&w, &[]);
    assert_eq!(c.skipped, 2 + u64::from(dev), "{c:?}");
    assert_eq!(c.failed, 0);
    assert!(std::fs::symlink_metadata(w.dst.join("pipe")).is_err());
    assert!(std::fs::symlink_metadata(w.dst.join("d/sock")).is_err());
    assert!(std::fs::symlink_metadata(w.dst.join("null-dev")).is_err());
    // One log line each, naming the path.
    let log = std::fs::read_to_string(w.log_file()).unwrap_or_default();
    for name in ["pipe", "d/sock"] {
        let p = w.src.join(name);
        let lines = log
            .lines()
            .filter(|l| l.contains(&*p.to_string_lossy()) && l.contains("skipped"))
            .count();
        assert_eq!(
            lines,
            1,
            "want one 'skipped' log line for {}\n{log}",
            p.display()
        );
    }
    // A file DST held where SRC now has a FIFO is versioned, not left stale.
    std::fs::remove_file(w.src.join("normal.txt")).unwrap();
    let st = std::process::Command::new("mkfifo")
        .arg(w.src.join("normal.txt"))
        .status()
        .unwrap();
    assert!(st.success());
    let c = sync_ok(&w, &[]);
    assert_eq!(c.versioned, 1, "{c:?}");
    assert_eq!(w.versions_of("normal.txt")[0].1, b"n");
}

#[test]
fn symlink_loops_are_copied_as_links() {
    let w = World::new();
    symlink("self", w.src.join("self")).unwrap();
    symlink(".", w.src.join("dot")).unwrap();
    symlink("..", w.src.join("up")).unwrap();
    std::fs::create_dir(w.src.join("d")).unwrap();
    symlink("..", w.src.join("d/parent")).unwrap();
    symlink("pong", w.src.join("ping")).unwrap();
    symlink("ping", w.src.join("pong")).unwrap();
    w.write("d/file.txt", "f");
    let c = sync_ok(&w, &[]);
    assert_eq!((c.copied, c.failed), (7, 0), "{c:?}");
    for l in ["self", "dot", "up", "d/parent", "ping", "pong"] {
        let p = w.dst.join(l);
        assert!(
            std::fs::symlink_metadata(&p)
                .unwrap()
                .file_type()
                .is_symlink(),
            "{l}"
        );
        assert_eq!(
            std::fs::read_link(&p).unwrap(),
            std::fs::read_link(w.src.join(l)).unwrap()
        );
    }
    assert_noop_sync(&w);
}

#[test]
fn modified_file_keeps_the_old_content_in_versions() {
    let w = World::new();
    let f = w.write("docs/report.txt", "version one");
    sync_ok(&w, &[]);
    std::fs::write(&f, "version two, longer").unwrap();
    let c = sync_ok(&w, &[]);
    assert_eq!((c.copied, c.versioned), (1, 1), "{c:?}");
    assert_logged(&w.dst, "docs/report.txt", "modified", "file");
    std::fs::write(&f, "version three").unwrap();
    sync_ok(&w, &[]);
    let v = w.versions_of("docs/report.txt");
    let contents: Vec<&[u8]> = v.iter().map(|(_, c)| c.as_slice()).collect();
    assert_eq!(contents, vec![&b"version one"[..], b"version two, longer"]);
    let stamps = version_stamps(&w.dst);
    assert_eq!(stamps.len(), 2, "{stamps:?}");
    assert!(stamps.iter().all(|s| is_stamp(s)), "{stamps:?}");
    assert!(w.temp_leftovers().is_empty());
}

#[test]
fn deleted_file_and_folder_go_to_versions() {
    let w = World::new();
    w.write("keep.txt", "keep");
    w.write("gone.txt", "gone file");
    w.write("tree/a.txt", "tree a");
    w.write("tree/sub/b.txt", "tree b");
    std::fs::create_dir(w.src.join("tree/empty")).unwrap();
    symlink("a.txt", w.src.join("tree/link")).unwrap();
    sync_ok(&w, &[]);
    std::fs::remove_file(w.src.join("gone.txt")).unwrap();
    std::fs::remove_dir_all(w.src.join("tree")).unwrap();
    let c = sync_ok(&w, &[]);
    assert_eq!((c.versioned, c.deleted), (2, 0), "{c:?}");
    assert_logged(&w.dst, "gone.txt", "deleted", "file");
    assert_logged(&w.dst, "tree", "deleted", "dir");
    // The whole folder was moved, content and all.
    let stamps = version_stamps(&w.dst);
    assert_eq!(stamps.len(), 1);
    let kept = w.dst.join(".mirrortray/versions").join(&stamps[0]);
    assert_eq!(std::fs::read(kept.join("gone.txt")).unwrap(), b"gone file");
    assert_eq!(std::fs::read(kept.join("tree/a.txt")).unwrap(), b"tree a");
    assert_eq!(
        std::fs::read(kept.join("tree/sub/b.txt")).unwrap(),
        b"tree b"
    );
    assert!(kept.join("tree/empty").is_dir());
    assert_eq!(
        std::fs::read_link(kept.join("tree/link")).unwrap(),
        PathBuf::from("a.txt")
    );
    assert_noop_sync(&w);
}

#[test]
fn no_versions_removes_instead() {
    let w = World::new();
    w.write("mod.txt", "old");
    w.write("gone.txt", "gone");
    w.write("tree/a.txt", "a");
    w.write("tree/sub/b.txt", "b");
    sync_ok(&w, &["--no-versions"]);
    std::fs::write(w.src.join("mod.txt"), "new content").unwrap();
    std::fs::remove_file(w.src.join("gone.txt")).unwrap();
    std::fs::remove_dir_all(w.src.join("tree")).unwrap();
    let c = sync_ok(&w, &["--no-versions"]);
    assert_eq!((c.copied, c.versioned, c.deleted), (1, 0, 2), "{c:?}");
    assert!(
        w.all_version_contents().is_empty(),
        "versions kept with --no-versions"
    );
    assert!(versions_log(&w.dst).is_empty());
    assert_noop_sync(&w);
}

#[test]
fn dry_run_prints_actions_and_changes_nothing() {
    let w = World::new();
    w.write("mod.txt", "old");
    w.write("gone.txt", "gone");
    w.write("chmod.txt", "mode");
    w.write("old/x.txt", "x");
    sync_ok(&w, &[]);
    std::fs::write(w.src.join("mod.txt"), "modified!").unwrap();
    std::fs::remove_file(w.src.join("gone.txt")).unwrap();
    chmod(&w.src.join("chmod.txt"), 0o600);
    w.write("new.txt", "123456789012");
    w.write("newdir/inner.txt", "i");
    std::fs::remove_dir_all(w.src.join("old")).unwrap();
    let dst_before = snapshot(&w.dst);
    let store_before = store_snapshot(&w.dst);
    for flag in ["--dry-run", "-n"] {
        let r = sync_src_untouched(&w, &[flag]);
        r.ok()
            .stdout_has("copy     new.txt (12 B)")
            .stdout_has("copy     newdir/inner.txt (1 B)")
            .stdout_has("mkdir    newdir/")
            .stdout_has("version  mod.txt (modified; kept in versions)")
            .stdout_has("copy     mod.txt")
            .stdout_has("version  gone.txt (deleted; kept in versions)")
            .stdout_has("version  old (deleted; kept in versions)")
            .stdout_has("update   chmod.txt (permissions or times)");
        assert!(
            !r.stdout.contains("copy     chmod.txt"),
            "a mode change would be copied:\n{}",
            r.stdout
        );
        assert!(
            !r.stdout.contains("old/x.txt"),
            "a deleted folder's content is listed one by one:\n{}",
            r.stdout
        );
        let d = tree::diff(&dst_before, &snapshot(&w.dst));
        assert!(d.is_empty(), "dry run changed DST:\n{}", d.join("\n"));
        let d = tree::diff(&store_before, &store_snapshot(&w.dst));
        assert!(
            d.is_empty(),
            "dry run changed DST/.mirrortray:\n{}",
            d.join("\n")
        );
    }
    let r = sync_src_untouched(&w, &["--dry-run", "--no-versions"]);
    r.ok()
        .stdout_has("delete   gone.txt")
        .stdout_has("delete   old");
    assert!(
        !r.stdout.contains("version "),
        "--no-versions dry run would version:\n{}",
        r.stdout
    );
    assert_eq!(snapshot(&w.dst), dst_before);
    // And the real run does what the dry run said.
    let c = sync_ok(&w, &[]);
    assert_eq!((c.copied, c.versioned, c.updated), (3, 3, 1), "{c:?}");
}

#[test]
fn dry_run_does_not_create_a_missing_dst() {
    let w = World::new();
    w.write("a/b.txt", "b");
    assert!(!w.dst.exists());
    let r = sync_src_untouched(&w, &["--dry-run"]);
    r.ok()
        .stdout_has("mkdir    a/")
        .stdout_has("copy     a/b.txt (1 B)");
    assert!(!w.dst.exists(), "dry run created DST");
    let c = counts(&r);
    assert_eq!((c.copied, c.folders), (1, 1), "{c:?}");
}

#[test]
fn ignored_paths_are_neither_copied_nor_deleted() {
    let w = World::new();
    w.write("keep.txt", "k");
    w.write("debug.log", "src log");
    w.write("sub/deep.log", "deep src log");
    w.write("sub/important.log", "negated: kept");
    w.write("build/out.o", "obj");
    w.write("src/build.rs", "a file named like the folder pattern");
    w.write("cache/x", "x");
    let ignore = [
        "--ignore",
        "*.log",
        "--ignore",
        "!important.log",
        "--ignore",
        "build/",
        "--ignore",
        "/cache",
    ];
    // Put ignored things in DST by hand: they must survive.
    std::fs::create_dir_all(w.dst.join("build")).unwrap();
    std::fs::write(w.dst.join("build/by-hand.o"), "hand").unwrap();
    std::fs::write(w.dst.join("hand.log"), "hand log").unwrap();
    std::fs::create_dir_all(w.dst.join("sub")).unwrap();
    std::fs::write(w.dst.join("sub/hand.log"), "hand sub log").unwrap();
    std::fs::create_dir_all(w.dst.join("cache")).unwrap();
    std::fs::write(w.dst.join("cache/hand"), "hand cache").unwrap();
    let r = sync_src_untouched(&w, &ignore);
    r.ok();
    let c = counts(&r);
    assert_eq!(
        c.versioned + c.deleted,
        0,
        "an ignored path was removed from DST: {c:?}"
    );
    let dst = snapshot(&w.dst);
    let names: Vec<String> = dst
        .iter()
        .filter(|(_, n)| matches!(n, Node::File { .. }))
        .map(|(p, _)| p.to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec![
            "build/by-hand.o",
            "cache/hand",
            "hand.log",
            "keep.txt",
            "src/build.rs",
            "sub/hand.log",
            "sub/important.log"
        ]
    );
    assert_eq!(std::fs::read(w.dst.join("hand.log")).unwrap(), b"hand log");
    // Second run: still nothing copied or removed.
    let r = sync_src_untouched(&w, &ignore);
    r.ok().stdout_has("copied 0 files");
    assert_eq!(snapshot(&w.dst), dst);
    // Without the patterns, the hand-made ones are extras: versioned.
    std::fs::remove_file(w.src.join("debug.log")).unwrap();
    let c = sync_ok(&w, &[]);
    assert!(c.versioned >= 3, "{c:?}");
    assert!(w.all_version_contents().contains(&b"hand log".to_vec()));
}

#[test]
fn file_replaced_by_folder_and_back() {
    let w = World::new();
    w.write("x", "x was a file");
    w.write("y/inner.txt", "y was a folder");
    w.write("z", "z was a file");
    symlink("x", w.src.join("l")).unwrap();
    sync_ok(&w, &[]);
    std::fs::remove_file(w.src.join("x")).unwrap();
    w.write("x/now.txt", "x is a folder");
    std::fs::remove_dir_all(w.src.join("y")).unwrap();
    w.write("y", "y is a file");
    std::fs::remove_file(w.src.join("z")).unwrap();
    symlink("x", w.src.join("z")).unwrap();
    std::fs::remove_file(w.src.join("l")).unwrap();
    w.write("l/f", "l is a folder");
    let c = sync_ok(&w, &[]);
    assert_eq!(c.versioned, 4, "{c:?}");
    assert_logged(&w.dst, "x", "replaced", "file");
    assert_logged(&w.dst, "y", "replaced", "dir");
    assert_logged(&w.dst, "z", "replaced", "file");
    assert_logged(&w.dst, "l", "replaced", "symlink");
    assert_eq!(w.versions_of("x")[0].1, b"x was a file");
    assert_eq!(w.versions_of("y/inner.txt")[0].1, b"y was a folder");
    assert_eq!(w.versions_of("z")[0].1, b"z was a file");
    assert_noop_sync(&w);
}

/// A version folder name `days` days ago, as the engine names them.
fn stamp_days_ago(days: i64) -> String {
    let t = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * days);
    let dt = t.to_zoned_datetime(jiff::tz::TimeZone::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}-{:02}-{:02}.{:06}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.subsec_nanosecond() / 1000
    )
}

fn plant_version(w: &World, days: i64) -> PathBuf {
    let name = stamp_days_ago(days);
    assert!(is_stamp(&name), "{name}");
    let dir = w.dst.join(".mirrortray/versions").join(&name);
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/old.txt"), format!("{days} days old")).unwrap();
    dir
}

#[test]
fn old_versions_are_pruned_after_30_days() {
    let w = World::new();
    w.write("a.txt", "a");
    sync_ok(&w, &[]);
    let old = plant_version(&w, 40);
    let recent = plant_version(&w, 1);
    let edge = plant_version(&w, 29);
    let not_a_version = w.dst.join(".mirrortray/versions/my notes");
    std::fs::create_dir_all(&not_a_version).unwrap();
    sync_ok(&w, &[]);
    assert!(!old.exists(), "a 40-day-old version folder was kept");
    assert!(
        recent.exists() && edge.exists(),
        "a version inside the 30 days was pruned"
    );
    assert!(
        not_a_version.exists(),
        "a folder that is not a version was removed"
    );
}

#[test]
fn retention_days_from_the_config_file() {
    let w = World::new();
    let cfg = w.path("custom.toml");
    std::fs::write(&cfg, "[settings]\nretention_days = 5\n").unwrap();
    w.write("a.txt", "a");
    let cfg_s = cfg.to_str().unwrap();
    sync_ok(&w, &["--config", cfg_s]);
    let ten = plant_version(&w, 10);
    let six = plant_version(&w, 6);
    let three = plant_version(&w, 3);
    sync_ok(&w, &["--config", cfg_s]);
    assert!(
        !ten.exists() && !six.exists(),
        "versions older than retention_days = 5 were kept"
    );
    assert!(
        three.exists(),
        "a 3-day-old version was pruned with retention_days = 5"
    );
}

#[test]
fn top_level_mirrortray_in_src_is_skipped_not_mixed_with_the_store() {
    let w = World::new();
    w.write(".mirrortray/versions/evil.txt", "from SRC");
    w.write(".mirrortray/lock", "from SRC");
    w.write("sub/.mirrortray/ok.txt", "a nested one is ordinary");
    w.write("a.txt", "a");
    let r = sync_src_untouched(&w, &[]);
    r.ok();
    assert_eq!(counts(&r).skipped, 1, "{}", r.stdout);
    assert_eq!(
        std::fs::read(w.dst.join("sub/.mirrortray/ok.txt")).unwrap(),
        b"a nested one is ordinary"
    );
    assert!(
        !w.dst.join(".mirrortray/versions/evil.txt").exists(),
        "SRC's .mirrortray was copied into DST's store"
    );
    assert!(w.all_version_contents().is_empty());
    let log = std::fs::read_to_string(w.log_file()).unwrap_or_default();
    assert!(
        log.contains("reserved"),
        "no log line says why .mirrortray was skipped:\n{log}"
    );
}

/// Runs `cmd` under `script` so that stdout and stderr are a terminal;
/// returns the exit code and everything the terminal showed.
fn on_terminal(w: &World, args: &[&str]) -> (i32, String) {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let mut line = quote(&bin().to_string_lossy());
    for a in args {
        line.push(' ');
        line.push_str(&quote(a));
    }
    let mut c = std::process::Command::new("script");
    w.isolate(&mut c);
    let out = c
        .args(["-qefc", &line, "/dev/null"])
        .env("TERM", "xterm")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn progress_shows_on_a_terminal_only_and_never_with_quiet() {
    let w = World::new();
    for i in 0..200 {
        w.write(&format!("d{}/f{i}.bin", i % 4), vec![i as u8; 50_000]);
    }
    let (src, dst) = (
        w.src.to_string_lossy().into_owned(),
        w.dst.to_string_lossy().into_owned(),
    );
    // Not a terminal (the harness pipes both): no progress, just the summary.
    let r = w.sync(&[]);
    r.ok();
    for bar in ["ETA", "B/s", "\u{1b}["] {
        assert!(
            !r.stderr.contains(bar) && !r.stdout.contains(bar),
            "progress ({bar:?}) when not a terminal:\n{}{}",
            r.stdout,
            r.stderr
        );
    }
    assert_eq!(
        r.stdout.lines().count(),
        1,
        "want only the summary line:\n{}",
        r.stdout
    );
    // On a terminal: a progress bar with bytes, rate and ETA, then the summary.
    std::fs::remove_dir_all(&w.dst).unwrap();
    let (code, screen) = on_terminal(&w, &["sync", &src, &dst]);
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("ETA") && screen.contains("B/s"),
        "no progress bar on a terminal:\n{screen}"
    );
    assert!(
        screen.contains("copied 200 files"),
        "no summary on a terminal:\n{screen}"
    );
    assert_mirrored(&w.src, &w.dst);
    // -q on a terminal: nothing at all.
    std::fs::remove_dir_all(&w.dst).unwrap();
    let (code, screen) = on_terminal(&w, &["sync", "-q", &src, &dst]);
    assert_eq!(code, 0, "{screen}");
    assert!(screen.trim().is_empty(), "-q printed something:\n{screen}");
    assert_mirrored(&w.src, &w.dst);
}

#[test]
fn quiet_shows_only_errors_and_verbose_lists_each_change() {
    let w = World::new();
    w.write("a.txt", "a");
    let r = w.sync(&["-q"]);
    r.ok();
    assert!(
        r.stdout.is_empty() && r.stderr.is_empty(),
        "-q printed:\n{}{}",
        r.stdout,
        r.stderr
    );
    w.write("b.txt", "b");
    std::fs::remove_file(w.src.join("a.txt")).unwrap();
    let r = w.sync(&["-v"]);
    r.ok().stderr_has("b.txt").stderr_has("a.txt");
    // Errors still show with -q.
    let missing = w.path("missing");
    let r = w.run([
        OsStr::new("sync"),
        OsStr::new("-q"),
        missing.as_os_str(),
        w.dst.as_os_str(),
    ]);
    r.code(2).stderr_has(&missing.to_string_lossy());
}

#[test]
fn sync_without_paths_mirrors_every_configured_pair() {
    let w = World::new();
    let (s1, d1, s2, d2) = (w.path("s1"), w.path("d1"), w.path("s2"), w.path("d2"));
    for (s, name) in [(&s1, "one"), (&s2, "two")] {
        std::fs::create_dir_all(s.join("sub")).unwrap();
        std::fs::write(s.join("sub/file.txt"), name).unwrap();
        std::fs::write(s.join("skip.tmp"), "ignored").unwrap();
    }
    let cfg = w.path("pairs.toml");
    let toml = format!(
        "[[pair]]\nsrc = {:?}\ndst = {:?}\nignore = [\"*.tmp\"]\n\n[[pair]]\nsrc = {:?}\ndst = {:?}\nversions = false\n",
        s1, d1, s2, d2
    );
    std::fs::write(&cfg, toml).unwrap();
    let cfg_s = cfg.to_string_lossy().into_owned();
    // A configured backup folder that is missing is taken as an unplugged
    // drive: an error naming it, and it is not created.
    let r = w.run(["sync", "--config", &cfg_s]);
    r.code(2).no_debug_dump().stderr_has(&d1.to_string_lossy());
    assert!(
        !d1.exists() && !d2.exists(),
        "a configured backup folder was created"
    );
    std::fs::create_dir(&d1).unwrap();
    std::fs::create_dir(&d2).unwrap();
    let r = w.run(["sync", "--config", &cfg_s]);
    r.ok().no_debug_dump();
    assert_eq!(
        r.stdout
            .lines()
            .filter(|l| l.contains(" folders, versioned "))
            .count(),
        2,
        "one summary per pair:\n{}",
        r.stdout
    );
    assert!(
        !d1.join("skip.tmp").exists(),
        "the pair's ignore pattern was not used"
    );
    assert_mirrored(&s2, &d2);
    // The pair's versions = false: removed, not versioned; the other pair keeps versions.
    std::fs::remove_dir_all(s1.join("sub")).unwrap();
    std::fs::remove_dir_all(s2.join("sub")).unwrap();
    w.run(["sync", "--config", &cfg_s]).ok();
    assert!(!d1.join("sub").exists() && !d2.join("sub").exists());
    let kept = |d: &Path| {
        walkdir::WalkDir::new(d.join(".mirrortray/versions"))
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_file())
            .count()
    };
    assert_eq!((kept(&d1), kept(&d2)), (1, 0));
    // A pair whose SRC is gone fails (exit 2, named) but the other pair still runs.
    std::fs::remove_dir_all(&s1).unwrap();
    std::fs::write(s2.join("new.txt"), "new").unwrap();
    let r = w.run(["sync", "--config", &cfg_s]);
    r.code(2).no_debug_dump().stderr_has(&s1.to_string_lossy());
    assert_mirrored(&s2, &d2);
}

#[test]
fn read_only_folders_can_be_updated_and_removed_by_their_owner() {
    // As a user (not root): DST's copy of a 0555 folder is read-only too,
    // yet files must still be added to, versioned out of, and the folder
    // itself moved into the versions, as rsync does for its own folders.
    let w = World::new();
    w.write("ro/a.txt", "a");
    w.write("ro/inner/i.txt", "i");
    w.write("outer/ro2/x.txt", "x");
    for d in ["ro/inner", "ro", "outer/ro2"] {
        chmod(&w.src.join(d), 0o555);
    }
    chown_nobody(w.dir.path());
    let sync = |extra: &[&str]| {
        let out = as_nobody(&w)
            .arg("sync")
            .arg(&w.src)
            .arg(&w.dst)
            .args(extra)
            .output()
            .unwrap();
        Run::from(out)
    };
    sync(&[]).ok().no_debug_dump();
    assert_mirrored(&w.src, &w.dst);
    // Add and remove inside the read-only folder (the owner does it with a
    // chmod u+w around the change).
    chmod(&w.src.join("ro"), 0o755);
    std::fs::write(w.src.join("ro/b.txt"), "b").unwrap();
    std::fs::remove_file(w.src.join("ro/a.txt")).unwrap();
    chmod(&w.src.join("ro"), 0o555);
    let r = sync(&[]);
    r.no_debug_dump();
    r.ok();
    assert_mirrored(&w.src, &w.dst);
    assert_eq!(w.versions_of("ro/a.txt")[0].1, b"a");
    // Remove the read-only folders themselves.
    chmod(&w.src.join("ro"), 0o755);
    chmod(&w.src.join("ro/inner"), 0o755);
    std::fs::remove_dir_all(w.src.join("ro")).unwrap();
    chmod(&w.src.join("outer/ro2"), 0o755);
    std::fs::remove_dir_all(w.src.join("outer/ro2")).unwrap();
    let r = sync(&[]);
    r.no_debug_dump();
    r.ok();
    assert_mirrored(&w.src, &w.dst);
    assert_eq!(w.versions_of("ro/inner/i.txt")[0].1, b"i");
    assert_eq!(w.versions_of("outer/ro2/x.txt")[0].1, b"x");
}

#[test]
fn pruning_removes_old_versions_that_hold_read_only_folders() {
    // As a user: a version that holds a 0555 folder must still be pruned.
    let w = World::new();
    w.write("outer/ro/x.txt", "x");
    chmod(&w.src.join("outer/ro"), 0o555);
    w.write("keep.txt", "keep");
    chown_nobody(w.dir.path());
    let sync = || {
        Run::from(
            as_nobody(&w)
                .arg("sync")
                .arg(&w.src)
                .arg(&w.dst)
                .output()
                .unwrap(),
        )
    };
    sync().ok();
    chmod(&w.src.join("outer/ro"), 0o755);
    std::fs::remove_dir_all(w.src.join("outer")).unwrap();
    sync().ok();
    let stamps = version_stamps(&w.dst);
    assert_eq!(stamps.len(), 1, "{stamps:?}");
    // Age it by 40 days.
    let vdir = w.dst.join(".mirrortray/versions");
    let old = vdir.join(stamp_days_ago(40));
    std::fs::rename(vdir.join(&stamps[0]), &old).unwrap();
    let r = sync();
    r.ok().no_debug_dump();
    assert!(
        !old.exists(),
        "a 40-day-old version holding a read-only folder was not pruned\n{}",
        r.stderr
    );
}

/// The image [`mount_image`] makes for `dir`.
pub(crate) fn image_for(w: &World, dir: &Path) -> PathBuf {
    w.path(&format!(
        "{}.img",
        dir.file_name().unwrap().to_string_lossy()
    ))
}

/// Makes an ext4 image of `mib` MiB with `mkfs_args` and mounts it (loop)
/// at `dir`; `None` (with a note) only when not root. The image stays, at
/// [`image_for`], to be mounted again (a drive plugged back in).
pub(crate) fn mount_image(
    w: &World,
    mkfs_args: &[&str],
    mib: u64,
    dir: &Path,
) -> Option<crate::safety::Mount> {
    let img = image_for(w, dir);
    std::fs::File::create(&img)
        .unwrap()
        .set_len(mib << 20)
        .unwrap();
    let out = std::process::Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .args(mkfs_args)
        .arg(&img)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mkfs.ext4: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    crate::safety::mount(&["-o", "loop", &img.to_string_lossy()], dir)
}

#[test]
fn backup_file_system_with_whole_second_times_is_not_copied_again() {
    // ext4 with 128-byte inodes keeps whole seconds only, like FAT (2 s),
    // some network shares and old file systems on USB drives. A no-op sync
    // there must stay a no-op: nothing copied, nothing versioned.
    let w = World::new();
    let Some(_m) = mount_image(&w, &["-I", "128"], 16, &w.dst) else {
        return;
    };
    std::fs::remove_dir(w.dst.join("lost+found")).unwrap();
    for i in 0..20 {
        let p = w.write(&format!("d/f{i}.txt"), format!("file {i}"));
        set_mtime(&p, 1_700_000_000 + i, 123_456_789);
    }
    set_mtime(&w.src.join("d"), 1_700_000_100, 987_654_321);
    let r = sync_src_untouched(&w, &[]);
    r.ok();
    assert_eq!(counts(&r).copied, 20);
    for i in 0..20 {
        let (s, ns) = mtime_of(&w.dst.join(format!("d/f{i}.txt")));
        assert_eq!(
            (s, ns),
            (1_700_000_000 + i, 0),
            "the backup keeps whole seconds"
        );
    }
    for round in 0..3 {
        let r = sync_src_untouched(&w, &[]);
        r.ok();
        let c = counts(&r);
        assert_eq!(
            (c.copied, c.versioned, c.updated),
            (0, 0, 0),
            "no-op sync #{round} on a whole-second file system:\n{}",
            r.stdout
        );
    }
    assert!(
        w.all_version_contents().is_empty(),
        "unchanged files were versioned"
    );
    // A real change within the same second is still seen where the backup
    // cannot tell (size differs here).
    std::fs::write(w.src.join("d/f3.txt"), "file 3, edited").unwrap();
    set_mtime(&w.src.join("d/f3.txt"), 1_700_000_003, 999);
    let c = counts(w.sync(&[]).ok());
    assert_eq!(c.copied, 1, "{c:?}");
}

#[test]
fn backup_into_the_root_of_a_fresh_drive_as_a_user() {
    // A freshly formatted ext4 drive has root's lost+found at its top; a
    // user who owns the drive's root and backs up into it must get a clean
    // run, and lost+found must be left alone (fsck needs it there).
    let w = World::new();
    w.write("a.txt", "a");
    w.write("d/b.txt", "b");
    chown_nobody(w.dir.path());
    let Some(_m) = mount_image(&w, &[], 16, &w.dst) else {
        return;
    };
    let st = std::process::Command::new("chown")
        .arg("65534:65534")
        .arg(&w.dst)
        .status()
        .unwrap();
    assert!(st.success());
    let lf = snapshot(&w.dst.join("lost+found"));
    let r = Run::from(
        as_nobody(&w)
            .arg("sync")
            .arg(&w.src)
            .arg(&w.dst)
            .output()
            .unwrap(),
    );
    r.no_debug_dump();
    r.ok();
    assert!(
        w.dst.join("lost+found").is_dir(),
        "lost+found was moved away"
    );
    assert_eq!(snapshot(&w.dst.join("lost+found")), lf);
    assert_eq!(std::fs::read(w.dst.join("d/b.txt")).unwrap(), b"b");
    let r = Run::from(
        as_nobody(&w)
            .arg("sync")
            .arg(&w.src)
            .arg(&w.dst)
            .output()
            .unwrap(),
    );
    r.ok().stdout_has("copied 0 files");
}

// ------------------------------------------------ signals, loops, odd roots

/// SIGINT or SIGTERM while a copy is in flight: a clean stop, as `watch`
/// stops: no temp file left, every file in DST whole, the lock released (a
/// second `sync` runs and finishes the job), a line saying what was done,
/// and the shell's exit code for the signal.
#[test]
fn sync_stops_cleanly_on_sigint_and_sigterm() {
    for (sig, code, name) in [("INT", 130, "SIGINT"), ("TERM", 143, "SIGTERM")] {
        let w = World::new();
        let big = vec![7u8; 64 << 20];
        for i in 0..6 {
            w.write(&format!("big{i}.bin"), &big);
        }
        let child = w
            .cmd()
            .arg("sync")
            .arg(&w.src)
            .arg(&w.dst)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The signal comes while a copy is in flight (a temp file exists).
        let busy = wait_for(std::time::Duration::from_secs(60), || {
            !w.temp_leftovers().is_empty()
        });
        assert!(busy, "no copy was seen in flight");
        let st = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(st.success());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("stopped by {name}")) && stderr.contains("run again"),
            "{name}: no line says what was done:\n{stderr}"
        );
        assert!(
            w.temp_leftovers().is_empty(),
            "{name}: temp files left: {:?}",
            w.temp_leftovers()
        );
        // Whatever DST holds is whole.
        for i in 0..6 {
            let p = w.dst.join(format!("big{i}.bin"));
            if let Ok(got) = std::fs::read(&p) {
                assert!(got == big, "{name}: {} is torn", p.display());
            }
        }
        // The lock was released: the next run finishes.
        w.sync(&[]).ok().no_debug_dump();
        assert_mirrored(&w.src, &w.dst);
    }
}

/// A backup folder that is a symlink to a folder that is not there (a
/// drive's mount point linked from home, drive unplugged): said so, nothing
/// made.
#[test]
fn backup_folder_symlink_to_a_missing_folder_says_so() {
    let w = World::new();
    w.write("a.txt", "a");
    let link = w.path("backup-link");
    let target = w.path("unplugged/Backups");
    symlink(&target, &link).unwrap();
    let r = w.run([OsStr::new("sync"), w.src.as_os_str(), link.as_os_str()]);
    r.code(2)
        .stderr_has("is a symlink to")
        .stderr_has("which does not exist");
    assert!(!target.exists(), "the link's target was created");
}

/// A source whose top level holds a `.mirrortray` (a backup of a backup
/// drive): skipped, and the reason said at the default level.
#[test]
fn top_level_mirrortray_in_src_is_said_at_the_default_level() {
    let w = World::new();
    w.write(".mirrortray/versions/x.txt", "x");
    w.write("a.txt", "a");
    w.sync(&[]).ok().stderr_has(
        ".mirrortray: skipped: the name .mirrortray at the top of the source is reserved",
    );
}

/// Bind-mounts `from` on `to` (made if missing); unmounted on drop.
pub(crate) struct Bind(PathBuf);

impl Bind {
    pub(crate) fn new(from: &Path, to: &Path) -> Option<Bind> {
        std::fs::create_dir_all(to).unwrap();
        let st = std::process::Command::new("mount")
            .arg("--bind")
            .arg(from)
            .arg(to)
            .status()
            .ok()?;
        st.success().then(|| Bind(to.to_path_buf()))
    }
}

impl Drop for Bind {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// The backup folder bind-mounted inside its own source: refused before
/// anything is written (it would back itself up, deeper on every pass).
#[test]
fn backup_folder_mounted_inside_its_source_is_refused() {
    let w = World::new();
    w.write("a.txt", "a");
    std::fs::create_dir_all(&w.dst).unwrap();
    let Some(_bind) = Bind::new(&w.dst, &w.src.join("sub/loop")) else {
        return skip("mount --bind is not permitted here");
    };
    w.sync(&[])
        .code(2)
        .stderr_has("is mounted again inside the source folder, at")
        .stderr_has("sub/loop");
    assert!(
        std::fs::read_dir(&w.dst).unwrap().next().is_none(),
        "something was written in the backup folder"
    );
}

/// A folder of the source bind-mounted inside itself: the loop is skipped
/// with one message, everything else mirrored, no crash.
#[test]
fn a_folder_mounted_inside_itself_is_skipped_with_one_message() {
    let w = World::new();
    w.write("a/f.txt", "f");
    w.write("b.txt", "b");
    let Some(_bind) = Bind::new(&w.src.join("a"), &w.src.join("a/again")) else {
        return skip("mount --bind is not permitted here");
    };
    let r = w.sync(&[]);
    r.ok().stderr_has("a/again: skipped: this is");
    assert_eq!(
        r.stderr.matches("skipped: this is").count(),
        1,
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read(w.dst.join("a/f.txt")).unwrap(), b"f");
    assert_eq!(std::fs::read(w.dst.join("b.txt")).unwrap(), b"b");
    assert!(!w.dst.join("a/again/f.txt").exists());
}

#[test]
fn a_file_another_program_holds_for_itself_is_named_and_the_rest_copied() {
    let w = World::new();
    w.write("a.txt", "a");
    let held = w.write("held.doc", "locked by a file server");
    let lease = match Lease::take(&held) {
        Ok(l) => l,
        Err(e) => return skip(&e),
    };
    let r = w.sync(&[]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    r.stderr_has(&held.display().to_string())
        .stderr_has("another program holds it for itself");
    assert_eq!(std::fs::read(w.dst.join("a.txt")).unwrap(), b"a");
    assert!(!w.dst.join("held.doc").exists());
    drop(lease);
    w.sync(&[]).ok();
    assert_mirrored(&w.src, &w.dst);
}

/// Issue 14: a name with control characters cannot colour the terminal or
/// forge a log line: `sync -v`, the log and `versions` show it escaped.
#[test]
fn control_characters_in_names_are_escaped_everywhere_they_are_shown() {
    let w = World::new();
    let red = "a\x1b[31mred\x01.txt";
    let two = "one\nline two.txt";
    w.write(red, "x");
    w.write(two, "y");
    let log = w.path("log.txt");
    let log_s = log.to_str().unwrap();
    let r = w.sync(&["-v", "--log-file", log_s]);
    r.ok();
    assert!(!r.stdout.contains('\x1b'), "{:?}", r.stdout);
    for text in [&r.stderr, &std::fs::read_to_string(&log).unwrap()] {
        assert!(!text.contains('\x1b') && !text.contains('\x01'), "{text:?}");
        assert!(text.contains("a\\x1B[31mred\\x01.txt"), "{text:?}");
        assert!(text.contains("one\\x0Aline two.txt"), "{text:?}");
    }
    // Every log line is one line of its own.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines().all(|l| l.starts_with("20")),
        "a log line was split:\n{text}"
    );
    // A version of it, listed.
    w.write(two, "changed");
    w.sync(&[]).ok();
    let v = w.run([OsStr::new("versions"), w.dst.join(two).as_os_str()]);
    v.ok();
    assert!(!v.stdout.contains("one\nline"), "{}", v.stdout);
    assert!(v.stdout.contains("one\\x0Aline two.txt"), "{}", v.stdout);
}
