//! `mirrortray versions` and `mirrortray restore`, as a user sees them.
//!
//! The live tests run the real `mirrortray watch` as a child (with the
//! World's environment) and edit, delete, rename and safe-save files over
//! several timestamps; the restore runs while the watcher runs, so they also
//! check that the two never fight: the restored file reaches DST once, with
//! one version of what it replaced. Retention is tested with time folders
//! made by hand (old names and `versions.log` lines), as a month-old backup
//! would hold them.
//!
//! Waiting is by polling; the only sleeps are the short ones that make two
//! edits (or an edit and a recorded time) have distinct timestamps.

use std::ffi::OsStr;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cli_sync::{set_mtime, versions_log};
use crate::support::tree::{Node, is_mirrored};
use crate::support::*;

const DEADLINE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------- helpers

/// `mirrortray watch` running as a child; stopped with SIGTERM on drop.
struct Watching {
    child: Child,
    log: PathBuf,
}

impl Watching {
    /// Starts `watch` with `args` and waits until it watches.
    fn start(w: &World, args: &[&OsStr]) -> Watching {
        let log = w.path("watch.log");
        let child = w
            .cmd()
            .arg("watch")
            .args(args)
            .arg("--log-file")
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut me = Watching { child, log };
        let started = wait_for(DEADLINE, || {
            me.log_text().contains("watching for changes") || me.exited()
        });
        assert!(
            started && !me.exited(),
            "watch did not start:\n{}",
            me.log_text()
        );
        me
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        if !self.exited() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            if !wait_for(DEADLINE, || self.exited()) {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }
}

/// Adds SRC DST to the World's config (DST made first, as a user would
/// pick an existing drive folder).
fn configure(w: &World) {
    std::fs::create_dir_all(&w.dst).unwrap();
    w.run([OsStr::new("add"), w.src.as_os_str(), w.dst.as_os_str()])
        .ok();
}

/// A pause that gives the next edit (or recorded time) a later timestamp.
fn tick() {
    std::thread::sleep(Duration::from_millis(20));
}

fn now_utc() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    utc_of(d.as_secs() as i64, d.subsec_micros())
}

/// `2026-11-25T13:30:00.123456Z` for a Unix time (civil from days: Howard
/// Hinnant's algorithm, so the tests need no date library).
fn utc_of(secs: i64, micros: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A versions folder name for "`days` days ago".
fn stamp_days_ago(days: f64) -> (String, i64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let secs = now - (days * 86_400.0) as i64;
    let iso = utc_of(secs, 0);
    (iso.replace(':', "-"), secs)
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

/// The `"key":"value"` string values of one key, in order, from the
/// command's JSON (paths in these tests need no escapes).
fn json_values(json: &str, key: &str) -> Vec<String> {
    let pat = format!("\"{key}\":");
    let mut out = Vec::new();
    let mut rest = json;
    while let Some(i) = rest.find(&pat) {
        rest = &rest[i + pat.len()..];
        if let Some(s) = rest.strip_prefix('"') {
            let end = s.find('"').unwrap();
            out.push(s[..end].to_string());
        } else {
            let end = rest.find([',', '}']).unwrap();
            out.push(rest[..end].to_string());
        }
    }
    out
}

/// The versions listed (JSON) for `path`: `(reason, content)` newest first.
fn listed(w: &World, path: &Path) -> Vec<(String, String)> {
    let r = w.run([
        OsStr::new("versions"),
        path.as_os_str(),
        OsStr::new("--json"),
    ]);
    r.ok().no_debug_dump();
    let reasons = json_values(&r.stdout, "reason");
    let stored = json_values(&r.stdout, "stored");
    assert_eq!(reasons.len(), stored.len(), "{}", r.stdout);
    reasons
        .into_iter()
        .zip(
            stored
                .iter()
                .map(|p| read(Path::new(p)).unwrap_or_default()),
        )
        .collect()
}

/// Lines of versions.log for `rel`.
fn log_lines(w: &World, rel: &str) -> usize {
    versions_log(&w.dst).iter().filter(|l| l.3 == rel).count()
}

/// Waits until the watcher has handled everything before this call: a
/// marker file written now reaches DST after the earlier changes.
fn barrier(w: &World, n: u32) {
    let name = format!("barrier-{n}.txt");
    w.write(&name, "barrier");
    assert!(
        wait_for(DEADLINE, || w.dst.join(&name).exists()),
        "the watcher did not mirror {name}"
    );
}

/// A snapshot with folder times left out: a folder's time at a past moment
/// is not kept anywhere once its content changed (only files' are).
fn without_dir_times(s: Snapshot) -> Snapshot {
    s.into_iter()
        .map(|(k, v)| match v {
            Node::Dir { mode, .. } => (
                k,
                Node::Dir {
                    mode,
                    mtime: (0, 0),
                },
            ),
            v => (k, v),
        })
        .collect()
}

#[track_caller]
fn assert_same_tree(want: &Snapshot, got: &Snapshot) {
    let d = crate::support::tree::diff(want, got);
    assert!(d.is_empty(), "restored tree differs:\n{}", d.join("\n"));
}

/// The `--at` value printed on the "To undo:" line.
fn undo_time(r: &Run) -> String {
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("To undo:"))
        .unwrap_or_else(|| panic!("no undo line in:\n{}", r.stdout));
    line.rsplit(' ').next().unwrap().to_string()
}

// ------------------------------------------------------------------ tests

#[test]
fn live_history_lists_every_content_and_restores_each_one() {
    let w = World::new();
    w.write("notes/doc.txt", "v1 first draft");
    w.write("notes/todo.txt", "todo");
    configure(&w);
    let _watch = Watching::start(&w, &[]);
    let src_doc = w.src.join("notes/doc.txt");
    let dst_doc = w.dst.join("notes/doc.txt");
    let has = |p: &Path, s: &str| wait_for(DEADLINE, || read(p).as_deref() == Some(s));
    assert!(has(&dst_doc, "v1 first draft"));

    // Edit in place.
    tick();
    let t_v1 = now_utc();
    tick();
    std::fs::write(&src_doc, "v2 edited in place").unwrap();
    assert!(has(&dst_doc, "v2 edited in place"));
    // An editor's safe save: write a temp file, rename it over.
    tick();
    let t_v2 = now_utc();
    tick();
    let swp = w.src.join("notes/.doc.txt.swp");
    std::fs::write(&swp, "v3 safe-saved").unwrap();
    std::fs::rename(&swp, &src_doc).unwrap();
    assert!(has(&dst_doc, "v3 safe-saved"));
    // Renamed away, a new file at the name, then deleted.
    tick();
    let t_v3 = now_utc();
    tick();
    std::fs::rename(&src_doc, w.src.join("notes/renamed.txt")).unwrap();
    assert!(has(&w.dst.join("notes/renamed.txt"), "v3 safe-saved"));
    // The watcher is done with the rename before the name is used again
    // (else it may copy the new file while it is still empty).
    barrier(&w, 0);
    std::fs::write(&src_doc, "v4 a new doc").unwrap();
    assert!(has(&dst_doc, "v4 a new doc"));
    tick();
    std::fs::remove_file(&src_doc).unwrap();
    assert!(wait_for(DEADLINE, || !dst_doc.exists()));

    // Every content that left doc.txt, newest first, with why.
    let versions = listed(&w, &src_doc);
    let contents: Vec<&str> = versions.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(
        contents,
        ["v4 a new doc", "v2 edited in place", "v1 first draft"],
        "{versions:?}"
    );
    assert_eq!(versions[0].0, "deleted");
    assert!(
        ["modified", "renamed-over"].contains(&versions[1].0.as_str()),
        "{versions:?}"
    );
    assert_eq!(versions[2].0, "modified");
    // The folder's listing has them too; v3 lives on as renamed.txt. The
    // same path given in DST lists the same.
    let text = w.run([OsStr::new("versions"), w.dst.join("notes").as_os_str()]);
    text.ok().no_debug_dump().stdout_has("3 versions kept");
    text.stdout_has("notes/doc.txt").stdout_has("deleted");

    // A deleted file: the default is the newest version.
    let r = w.run([OsStr::new("restore"), src_doc.as_os_str()]);
    r.ok().no_debug_dump();
    assert_eq!(read(&src_doc).as_deref(), Some("v4 a new doc"));
    assert!(has(&dst_doc, "v4 a new doc"));
    r.stdout_has("a watcher holds the backup");

    // An overwritten one, at a time between edits, while the watcher runs:
    // the restored file reaches DST once, with one version of what it
    // replaced, and no temp name anywhere.
    barrier(&w, 1);
    let before = log_lines(&w, "notes/doc.txt");
    let r = w.run([
        OsStr::new("restore"),
        src_doc.as_os_str(),
        OsStr::new("--at"),
        OsStr::new(&t_v2),
    ]);
    r.ok().no_debug_dump();
    assert_eq!(read(&src_doc).as_deref(), Some("v2 edited in place"));
    assert!(has(&dst_doc, "v2 edited in place"));
    barrier(&w, 2);
    assert_eq!(log_lines(&w, "notes/doc.txt"), before + 1);
    let last = listed(&w, &src_doc);
    assert_eq!(last[0].1, "v4 a new doc", "what the restore replaced");
    assert!(
        !versions_log(&w.dst)
            .iter()
            .any(|l| l.3.contains("mirrortray-restore")),
        "a temp name reached the backup: {:?}",
        versions_log(&w.dst)
    );
    assert!(is_mirrored(&w.src, &w.dst));

    // Undo it, as the output says.
    let undo = undo_time(&r);
    w.run([
        OsStr::new("restore"),
        src_doc.as_os_str(),
        OsStr::new("--at"),
        OsStr::new(&undo),
    ])
    .ok();
    assert_eq!(read(&src_doc).as_deref(), Some("v4 a new doc"));

    // Beside, never touching SRC: the first draft.
    let out = w.path("out");
    let before = snapshot(&w.src);
    w.run([
        OsStr::new("restore"),
        src_doc.as_os_str(),
        OsStr::new("--at"),
        OsStr::new(&t_v1),
        OsStr::new("--to"),
        out.as_os_str(),
    ])
    .ok()
    .no_debug_dump();
    assert_eq!(
        read(&out.join("doc.txt")).as_deref(),
        Some("v1 first draft")
    );
    assert_eq!(snapshot(&w.src), before, "--to touched SRC");

    // At t_v3 doc.txt held v3, which was then renamed away: a rename keeps
    // no version, so the backup cannot tell; it says so rather than guess.
    let r = w.run([
        OsStr::new("restore"),
        src_doc.as_os_str(),
        OsStr::new("--at"),
        OsStr::new(&t_v3),
        OsStr::new("--dry-run"),
    ]);
    r.code(2).no_debug_dump().stderr_has("renamed");
}

#[test]
fn a_folder_comes_back_as_it_was_at_a_time_between_edits() {
    let w = World::new();
    w.write("proj/a.txt", "a1");
    w.write("proj/sub/b.txt", "b1");
    w.write("proj/sub/deep/c.txt", "c1");
    w.write("proj/sub/deep/d.txt", "d1");
    symlink("a.txt", w.src.join("proj/link")).unwrap();
    std::fs::set_permissions(
        w.src.join("proj/sub/deep"),
        std::fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    std::fs::set_permissions(
        w.src.join("proj/a.txt"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    configure(&w);
    let _watch = Watching::start(&w, &[]);
    assert!(wait_for(DEADLINE, || is_mirrored(&w.src, &w.dst)));

    tick();
    let then = snapshot(&w.src.join("proj"));
    let t = now_utc();
    tick();
    // After t: an edit, a deletion, a new file, a folder removed as a whole,
    // a symlink pointed elsewhere, a permission change.
    std::fs::write(w.src.join("proj/a.txt"), "a2, longer").unwrap();
    std::fs::remove_file(w.src.join("proj/sub/b.txt")).unwrap();
    w.write("proj/new.txt", "made later");
    std::fs::remove_dir_all(w.src.join("proj/sub/deep")).unwrap();
    std::fs::remove_file(w.src.join("proj/link")).unwrap();
    symlink("new.txt", w.src.join("proj/link")).unwrap();
    assert!(wait_for(DEADLINE, || is_mirrored(&w.src, &w.dst)));

    // Beside: exactly the tree of then (folder times aside, except a folder
    // versioned whole, whose time is known).
    let out = w.path("out");
    let r = w.run([
        OsStr::new("restore"),
        w.src.join("proj").as_os_str(),
        OsStr::new("--at"),
        OsStr::new(&t),
        OsStr::new("--to"),
        out.as_os_str(),
    ]);
    r.ok().no_debug_dump();
    let got = snapshot(&out.join("proj"));
    assert_same_tree(
        &without_dir_times(then.clone()),
        &without_dir_times(got.clone()),
    );
    assert_eq!(
        got.get(Path::new("sub/deep")),
        then.get(Path::new("sub/deep")),
        "a folder versioned whole keeps its time"
    );
    r.stdout_has("Not included: 1 file made after that time");

    // In place: what existed then comes back; the file made later stays,
    // and the output names it.
    let r = w.run([
        OsStr::new("restore"),
        w.src.join("proj").as_os_str(),
        OsStr::new("--at"),
        OsStr::new(&t),
    ]);
    r.ok().no_debug_dump();
    r.stdout_has("Left alone 1 file made after that time")
        .stdout_has("proj/new.txt")
        // Folders already there are not "unchanged files".
        .stdout_has(", 0 unchanged");
    let mut now = snapshot(&w.src.join("proj"));
    assert!(
        now.remove(Path::new("new.txt")).is_some(),
        "new.txt was removed"
    );
    assert_same_tree(&without_dir_times(then), &without_dir_times(now));
    assert!(wait_for(DEADLINE, || is_mirrored(&w.src, &w.dst)));

    // The dry run of the same restore now has nothing to do.
    let r = w.run([
        OsStr::new("restore"),
        w.src.join("proj").as_os_str(),
        OsStr::new("--at"),
        OsStr::new(&t),
        OsStr::new("-n"),
    ]);
    r.ok().stdout_has("Would restore 0 files");
}

#[test]
fn restore_without_a_watcher_backs_up_around_itself() {
    // A pair used on the command line only: found through its backup folder.
    let w = World::new();
    w.write("a.txt", "one");
    w.sync(&[]).ok();
    tick();
    w.write("a.txt", "two");
    w.sync(&[]).ok();
    tick();
    // Edited after the last backup: the restore backs it up first, so
    // "three" is safe in the versions before "two" replaces it.
    w.write("a.txt", "three");
    let in_dst = w.dst.join("a.txt");
    let r = w.run([OsStr::new("restore"), in_dst.as_os_str()]);
    r.ok()
        .no_debug_dump()
        .stdout_has("What it replaced is kept in");
    // The last change was "two" -> "three": the default brings back "two".
    assert_eq!(read(&w.src.join("a.txt")).as_deref(), Some("two"));
    assert_mirrored(&w.src, &w.dst);
    let contents: Vec<String> = listed(&w, &in_dst).into_iter().map(|(_, c)| c).collect();
    assert_eq!(contents, ["three", "two", "one"]);
    // No lock left behind: a sync runs.
    w.sync(&[]).ok();
}

#[test]
fn restoring_twice_toggles_and_undo_brings_back_what_was_replaced() {
    let w = World::new();
    w.write("a.txt", "one");
    w.sync(&[]).ok();
    tick();
    w.write("a.txt", "two");
    w.sync(&[]).ok();
    let in_dst = w.dst.join("a.txt");
    let r = w.run([OsStr::new("restore"), in_dst.as_os_str()]);
    r.ok();
    assert_eq!(read(&w.src.join("a.txt")).as_deref(), Some("one"));
    assert_mirrored(&w.src, &w.dst);
    let undo = undo_time(&r);
    w.run([
        OsStr::new("restore"),
        in_dst.as_os_str(),
        OsStr::new("--at"),
        OsStr::new(&undo),
    ])
    .ok();
    assert_eq!(read(&w.src.join("a.txt")).as_deref(), Some("two"));
    assert_mirrored(&w.src, &w.dst);
}

#[test]
fn a_path_in_the_versions_folder_names_that_version() {
    let w = World::new();
    w.write("d/a.txt", "one");
    w.sync(&[]).ok();
    tick();
    w.write("d/a.txt", "two");
    w.sync(&[]).ok();
    let stamp = crate::cli_sync::version_stamps(&w.dst).pop().unwrap();
    let kept = w
        .dst
        .join(".mirrortray/versions")
        .join(&stamp)
        .join("d/a.txt");
    let out = w.path("out");
    w.run([
        OsStr::new("restore"),
        kept.as_os_str(),
        OsStr::new("--to"),
        out.as_os_str(),
    ])
    .ok()
    .no_debug_dump();
    assert_eq!(read(&out.join("a.txt")).as_deref(), Some("one"));
    let r = w.run([OsStr::new("versions"), kept.as_os_str()]);
    r.ok().stdout_has("1 version kept");
}

/// Hand-made history of `f.txt`: `(days ago, content, content made days
/// ago)`, oldest first, plus the current file; then a sync prunes.
fn crafted(w: &World, history: &[(f64, &str, f64)]) {
    // The current content replaced the newest kept one, so it is older
    // than that version's folder.
    let current = w.write("f.txt", "now");
    let newest = history.iter().map(|h| h.0).fold(f64::MAX, f64::min);
    set_mtime(&current, stamp_days_ago(newest * 0.9).1, 0);
    w.sync(&[]).ok();
    let log = w.dst.join(".mirrortray/versions.log");
    let mut lines = std::fs::read_to_string(&log).unwrap_or_default();
    for (ago, content, made) in history {
        let (name, _) = stamp_days_ago(*ago);
        let p = w.dst.join(".mirrortray/versions").join(&name).join("f.txt");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        let (_, made_secs) = stamp_days_ago(*made);
        set_mtime(&p, made_secs, 0);
        lines.push_str(&format!("{name}\tmodified\tfile\tf.txt\n"));
    }
    std::fs::write(&log, lines).unwrap();
}

#[test]
fn retention_pruning_keeps_what_a_restore_inside_the_window_needs() {
    let w = World::new();
    crafted(
        &w,
        &[
            (40.0, "ancient", 50.0),
            (20.0, "older", 38.0),
            (10.0, "old", 19.0),
        ],
    );
    // The default retention (30 days) prunes the 40-day-old folder.
    w.sync(&[]).ok();
    assert_eq!(crate::cli_sync::version_stamps(&w.dst).len(), 2);
    let f = w.dst.join("f.txt");
    let out = w.path("out");
    let at = |when: &str, to: &str| {
        w.run([
            OsStr::new("restore"),
            f.as_os_str(),
            OsStr::new("--at"),
            OsStr::new(when),
            OsStr::new("--to"),
            w.path(to).as_os_str(),
        ])
    };
    // Anywhere inside the window (and beyond, back to the pruned folder),
    // the content held then.
    at("35 days ago", "out35").ok().no_debug_dump();
    assert_eq!(read(&w.path("out35/f.txt")).as_deref(), Some("older"));
    at("21 days ago", "out21").ok();
    assert_eq!(read(&w.path("out21/f.txt")).as_deref(), Some("older"));
    at("12 days ago", "out12").ok();
    assert_eq!(read(&w.path("out12/f.txt")).as_deref(), Some("old"));
    at("1 day ago", "out1").ok();
    assert_eq!(read(&w.path("out1/f.txt")).as_deref(), Some("now"));
    // Before the pruned folder: refused, naming the oldest time it can do.
    let r = at("45 days ago", "out45");
    r.code(2)
        .no_debug_dump()
        .stderr_has("older than what is kept")
        .stderr_has("The oldest time it can restore");
    assert!(!out.exists() && !w.path("out45").exists());
    w.run([
        OsStr::new("versions"),
        OsStr::new("--stats"),
        w.dst.as_os_str(),
    ])
    .ok()
    .stdout_has("2 time folders")
    .stdout_has("older versions were pruned");
}

#[test]
fn the_size_limit_removes_the_oldest_and_restores_say_how_far_back() {
    let w = World::new();
    let big = |c: char| c.to_string().repeat(600 * 1024);
    let (a, b, c) = (big('a'), big('b'), big('c'));
    crafted(&w, &[(3.0, &a, 5.0), (2.0, &b, 3.0), (1.0, &c, 2.0)]);
    std::fs::create_dir_all(w.config_file().parent().unwrap()).unwrap();
    std::fs::write(
        w.config_file(),
        format!(
            "[settings]\nmax_versions_mb = 1\n\n[[pair]]\nsrc = \"{}\"\ndst = \"{}\"\n",
            w.src.display(),
            w.dst.display()
        ),
    )
    .unwrap();
    // 1.8 MiB of versions, 1 MiB allowed: the two oldest go.
    w.run(["sync"]).ok();
    assert_eq!(crate::cli_sync::version_stamps(&w.dst).len(), 1);
    let f = w.src.join("f.txt");
    let r = w.run([
        OsStr::new("restore"),
        f.as_os_str(),
        OsStr::new("--at"),
        OsStr::new("36 hours ago"),
        OsStr::new("--to"),
        w.path("o1").as_os_str(),
    ]);
    r.ok();
    assert_eq!(read(&w.path("o1/f.txt")), Some(c));
    w.run([
        OsStr::new("restore"),
        f.as_os_str(),
        OsStr::new("--at"),
        OsStr::new("60 hours ago"),
        OsStr::new("--to"),
        w.path("o2").as_os_str(),
    ])
    .code(2)
    .stderr_has("older than what is kept");
    w.run(["versions", "--stats"])
        .ok()
        .stdout_has("at most 1.00 MiB")
        .stdout_has("the oldest go first when the backup disk has less than 2% free (")
        .stdout_has("older versions were pruned");
}

#[test]
fn bad_input_is_refused_with_a_reason() {
    let w = World::new();
    w.write("a.txt", "one");
    w.sync(&[]).ok();
    tick();
    w.write("a.txt", "two");
    w.sync(&[]).ok();
    let a = w.dst.join("a.txt");
    let run = |args: &[&OsStr]| {
        let r = w.run(args);
        r.code(2).no_debug_dump();
        r
    };
    let s = |x: &'static str| OsStr::new(x);
    // A path inside a pair that was never there.
    run(&[s("versions"), w.dst.join("nothing.txt").as_os_str()]).stderr_has("unknown path");
    run(&[s("restore"), w.dst.join("nothing.txt").as_os_str()]).stderr_has("unknown path");
    // A path outside every pair (and no pairs configured).
    run(&[s("versions"), w.path("elsewhere/x.txt").as_os_str()])
        .stderr_has("is not inside any backed-up folder");
    run(&[s("restore"), w.src.join("a.txt").as_os_str()])
        .stderr_has("is not inside any backed-up folder (configured sources: none)");
    // TIME in the future, before the oldest version, or unreadable.
    run(&[
        s("restore"),
        a.as_os_str(),
        s("--at"),
        s("2999-01-01T00:00:00Z"),
    ])
    .stderr_has("is in the future");
    run(&[s("restore"), a.as_os_str(), s("--at"), s("10 years ago")])
        .stderr_has("did not exist yet")
        .stderr_has("the oldest time it can restore it is");
    run(&[
        s("restore"),
        a.as_os_str(),
        s("--at"),
        s("last tuesday-ish"),
    ])
    .stderr_has("cannot read the time");
    // --to inside the backup, or onto something that exists.
    run(&[
        s("restore"),
        a.as_os_str(),
        s("--to"),
        w.dst.join(".mirrortray/x").as_os_str(),
    ])
    .stderr_has("inside mirrortray's own folder");
    run(&[
        s("restore"),
        a.as_os_str(),
        s("--to"),
        w.dst.join("sub").as_os_str(),
    ])
    .stderr_has("inside the backup folder");
    run(&[s("restore"), a.as_os_str(), s("--to"), w.src.as_os_str()]).stderr_has("already exists");
    // The backup's own folder is not a backed-up path.
    run(&[s("versions"), w.dst.join(".mirrortray/tmp").as_os_str()])
        .stderr_has("mirrortray's own folder");
    // Nothing was changed by any of it.
    assert_eq!(read(&w.src.join("a.txt")).as_deref(), Some("two"));
    assert_mirrored(&w.src, &w.dst);
}

#[test]
fn a_symlink_in_the_source_is_never_followed_by_a_restore() {
    let w = World::new();
    w.write("a/b/f.txt", "one");
    w.sync(&[]).ok();
    tick();
    w.write("a/b/f.txt", "two");
    w.sync(&[]).ok();
    // The folder became a symlink to somewhere else since.
    let outside = w.path("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::remove_dir_all(w.src.join("a")).unwrap();
    symlink(&outside, w.src.join("a")).unwrap();
    let stamp = crate::cli_sync::version_stamps(&w.dst).pop().unwrap();
    let r = w.run([
        OsStr::new("restore"),
        w.dst.join("a/b/f.txt").as_os_str(),
        OsStr::new("--at"),
        OsStr::new(&stamp),
    ]);
    r.code(1)
        .no_debug_dump()
        .stderr_has("a/b/f.txt: cannot restore: a folder on the way is a file or a symlink");
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "wrote through the symlink"
    );
    // Beside, it comes back.
    w.run([
        OsStr::new("restore"),
        w.dst.join("a/b/f.txt").as_os_str(),
        OsStr::new("--at"),
        OsStr::new(&stamp),
        OsStr::new("--to"),
        w.path("out").as_os_str(),
    ])
    .ok();
    assert_eq!(read(&w.path("out/f.txt")).as_deref(), Some("one"));
}

/// Exit 2 means nothing was done: a restore refused for its time does not
/// first back up the changed file (which would change the backup).
#[test]
fn a_refused_restore_changes_nothing_in_the_backup() {
    let w = World::new();
    configure(&w);
    w.write("a.txt", "one");
    w.sync(&[]).ok();
    tick();
    // Changed in SRC, not backed up yet.
    w.write("a.txt", "two, not backed up");
    let before = snapshot(&w.dst);
    w.run([
        OsStr::new("restore"),
        w.src.join("a.txt").as_os_str(),
        OsStr::new("--at"),
        OsStr::new("10 years ago"),
    ])
    .code(2)
    .stderr_has("did not exist yet");
    assert_eq!(
        snapshot(&w.dst),
        before,
        "a refused restore changed the backup"
    );
    // The same without --at, for a file the backup never held.
    w.write("new.txt", "never backed up");
    w.run([OsStr::new("restore"), w.src.join("new.txt").as_os_str()])
        .code(2)
        .stderr_has("unknown path");
    assert_eq!(
        snapshot(&w.dst),
        before,
        "a refused restore changed the backup"
    );
    // A file changed since its only backup: the back-up keeps that first
    // version, and the restore brings it back.
    w.run([OsStr::new("restore"), w.src.join("a.txt").as_os_str()])
        .ok();
    assert_eq!(std::fs::read(w.src.join("a.txt")).unwrap(), b"one");
}

/// A folder deleted while the backup ran is kept in several batches (here
/// two passes a moment apart, as a watcher sees an `rm -rf` under way):
/// restoring it "as it was before its last change" gathers every batch.
#[test]
fn a_folder_deleted_in_two_batches_comes_back_whole() {
    let w = World::new();
    configure(&w);
    for i in 0..10 {
        w.write(&format!("photos/a/img{i}.jpg"), format!("a{i}"));
        w.write(&format!("photos/b/img{i}.jpg"), format!("b{i}"));
    }
    w.sync(&[]).ok();
    let before = snapshot(&w.src.join("photos"));
    std::fs::remove_dir_all(w.src.join("photos/a")).unwrap();
    w.sync(&[]).ok();
    tick();
    std::fs::remove_dir_all(w.src.join("photos")).unwrap();
    w.sync(&[]).ok();
    let batches = std::fs::read_dir(w.dst.join(".mirrortray/versions"))
        .unwrap()
        .count();
    assert_eq!(batches, 2, "the deletion was not kept in two batches");
    // Asked for a time inside the deletion, the restore says what it lacks
    // and which time has everything.
    let mut names: Vec<String> = std::fs::read_dir(w.dst.join(".mirrortray/versions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    w.run([
        OsStr::new("restore"),
        w.src.join("photos").as_os_str(),
        OsStr::new("--at"),
        OsStr::new(&names[1]),
        OsStr::new("--dry-run"),
    ])
    .ok()
    .stdout_has("Would restore 10 files")
    .stderr_has("was being changed at")
    .stderr_has("11 entries it held a moment earlier are not part of this restore")
    .stderr_has(&format!("restore --at {}", names[0]));
    w.run([OsStr::new("restore"), w.src.join("photos").as_os_str()])
        .ok()
        .stdout_has("Restored 20 files");
    assert_eq!(snapshot(&w.src.join("photos")), before);
}

/// Versions kept days ago by hand, as a watcher would have kept them: each
/// `(seconds since the hour, path, content, reason)`, in the UTC hour that
/// began `hours_ago` hours ago. Returns each version's file.
pub(crate) fn plant_hour(
    w: &World,
    hours_ago: i64,
    rows: &[(i64, &str, &str, &str)],
) -> Vec<PathBuf> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let hour = (now - hours_ago * 3600).div_euclid(3600) * 3600;
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(w.dst.join(".mirrortray/versions.log"))
        .unwrap();
    rows.iter()
        .map(|&(at, rel, content, reason)| {
            let name = utc_of(hour + at, 0).replace(':', "-");
            let p = w.dst.join(".mirrortray/versions").join(&name).join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, content).unwrap();
            // Written a while before it was replaced (after the version
            // before it, planted 5 or 10 minutes earlier).
            set_mtime(&p, hour + at - 290, 0);
            use std::io::Write;
            writeln!(log, "{name}\t{reason}\tfile\t{rel}").unwrap();
            p
        })
        .collect()
}

/// Issue 12: versions thin out as they age, like Time Machine's; what went
/// is said by `versions` and by a restore to a time it covered, and the
/// restore still brings back the nearest kept version.
#[test]
fn old_versions_are_thinned_and_a_restore_to_a_thinned_time_says_so() {
    let w = World::new();
    configure(&w);
    w.write("notes/plan.txt", "now");
    w.write("other.txt", "other");
    w.run(["sync"]).ok();
    // Three days ago, within one hour: three saves of plan.txt, and
    // other.txt changed then deleted.
    let old = plant_hour(
        &w,
        72,
        &[
            (600, "notes/plan.txt", "first", "modified"),
            (900, "gone.txt", "gone, older", "modified"),
            (1200, "notes/plan.txt", "second", "renamed-over"),
            (1500, "gone.txt", "gone, last", "deleted"),
            (1800, "notes/plan.txt", "third", "modified"),
        ],
    );
    // Two hours ago: two saves, too young to thin.
    let young = plant_hour(
        &w,
        2,
        &[
            (600, "notes/plan.txt", "young 1", "modified"),
            (1200, "notes/plan.txt", "young 2", "modified"),
        ],
    );
    let run = w.run(["sync", "-v"]);
    run.ok();
    let log = std::fs::read_to_string(w.log_file()).unwrap();
    assert!(
        log.contains("thinned 3 older versions (")
            && log.contains("every version for 24 hours, then one an hour up to 7 days"),
        "{log}"
    );
    let exists: Vec<bool> = old.iter().chain(&young).map(|p| p.exists()).collect();
    assert_eq!(
        exists,
        [false, false, false, true, true, true, true],
        "first, second and the older gone.txt go; the deletion, third and the young stay"
    );
    // A time folder thinning emptied is gone, not left empty.
    assert!(!old[0].parent().unwrap().exists());
    let thinned = std::fs::read_to_string(w.dst.join(".mirrortray/thinned.log")).unwrap();
    assert_eq!(
        thinned.lines().filter(|l| l.contains("\tfile\t")).count(),
        3,
        "{thinned}"
    );

    // `versions` lists what is left and says what went.
    let src_plan = w.src.join("notes/plan.txt");
    let v = w.run([OsStr::new("versions"), src_plan.as_os_str()]);
    v.ok();
    assert!(
        v.stdout.contains("2 older versions, from ")
            && v.stdout.contains("were thinned as they aged"),
        "{}",
        v.stdout
    );
    assert_eq!(
        v.stdout
            .lines()
            .filter(|l| l.ends_with(" modified"))
            .count(),
        3,
        "third and the two young ones: {}",
        v.stdout
    );
    let stats = w.run(["versions", "--stats"]);
    stats.ok();
    assert!(
        stats.stdout.contains("thinned: every version for 24 hours"),
        "{}",
        stats.stdout
    );

    // Restoring plan.txt to a time its thinned "second" covered brings back
    // the nearest kept version ("third"), and says so.
    let hour = (SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 72 * 3600)
        .div_euclid(3600)
        * 3600;
    let at = utc_of(hour + 1000, 0);
    let r = w.run([
        OsStr::new("restore"),
        src_plan.as_os_str(),
        OsStr::new("--at"),
        OsStr::new(&at),
    ]);
    r.ok();
    assert!(
        r.stderr.contains("plan.txt: the version it had at ")
            && r.stderr.contains("was thinned as versions aged"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(read(&src_plan).as_deref(), Some("third"));
    // The deleted file's last content is still there to be had.
    let g = w.run([
        OsStr::new("restore"),
        w.src.join("gone.txt").as_os_str(),
        OsStr::new("--at"),
        OsStr::new(&utc_of(hour + 1400, 0)),
    ]);
    g.ok();
    assert_eq!(read(&w.src.join("gone.txt")).as_deref(), Some("gone, last"));
}

#[test]
fn versions_shows_local_times_beside_the_exact_utc_one() {
    let w = World::new();
    w.write("a.txt", "one");
    assert_eq!(w.sync(&[]).code, 0);
    w.write("a.txt", "two");
    filetime::set_file_mtime(
        w.src.join("a.txt"),
        filetime::FileTime::from_unix_time(1_796_169_600, 0), // 2026-12-02 00:00:00 UTC
    )
    .unwrap();
    assert_eq!(w.sync(&[]).code, 0);
    // A zone without daylight saving, written as TZ allows (no tz database
    // needed): UTC+05:30.
    let out = w
        .cmd()
        .env("TZ", "IST-5:30")
        .arg("versions")
        .arg(w.dst.join("a.txt"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("modified 2026-12-02 05:30:00 IST"),
        "the file's time is not shown in local time:\n{text}"
    );
    // Each version: the UTC time `--at` takes back exactly, and the same
    // moment in local time.
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with("20") && l.contains("modified"))
        .unwrap_or_else(|| panic!("no version row:\n{text}"));
    let utc: jiff::Timestamp = row.split_whitespace().next().unwrap().parse().unwrap();
    let local = utc
        .checked_add(jiff::SignedDuration::from_mins(330))
        .unwrap()
        .strftime("%Y-%m-%d %H:%M:%S IST")
        .to_string();
    assert!(row.contains(&local), "{local} not in {row:?}");
}

#[test]
fn a_file_dated_in_the_future_comes_back_at_now() {
    // A wrong camera clock or a file dated 2200: its time says nothing of
    // when it was made, so `--at now` must not leave it behind.
    let w = World::new();
    let f = w.write("photos/from-the-future.jpg", "pixels");
    let t = filetime::FileTime::from_unix_time(7_258_118_400, 7);
    filetime::set_file_times(&f, t, t).unwrap();
    w.write("photos/today.jpg", "more pixels");
    w.sync(&[]).ok();
    let out = w.path("out");
    std::fs::create_dir_all(&out).unwrap();
    w.run([
        OsStr::new("restore"),
        w.dst.as_os_str(),
        OsStr::new("--at"),
        OsStr::new("now"),
        OsStr::new("--to"),
        out.as_os_str(),
    ])
    .ok();
    assert_mirrored(&w.src, &out.join(w.src.file_name().unwrap()));
}
