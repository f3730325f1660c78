//! `mirrortray status`: what the running watcher says about each pair, in
//! words and as JSON, and its exit codes (0 all up to date, 1 something
//! outstanding, 2 none running), read by a second process as a script
//! would.

use std::ffi::OsStr;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::support::*;
use crate::tray::Immutable;

const LONG: Duration = Duration::from_secs(60);

/// `mirrortray status [--json]`: exit code, stdout, stderr.
fn status(w: &World, json: bool) -> (i32, String, String) {
    let mut args = vec![OsStr::new("status")];
    if json {
        args.push(OsStr::new("--json"));
    }
    let r = w.run(args);
    (r.code, r.stdout.clone(), r.stderr.clone())
}

pub(crate) fn status_until(w: &World, what: &str, ok: impl Fn(i32, &str) -> bool) -> (i32, String) {
    let mut last = (0, String::new());
    let seen = wait_for(LONG, || {
        let (code, out, _) = status(w, false);
        last = (code, out);
        ok(last.0, &last.1)
    });
    assert!(
        seen,
        "status never showed {what}; last (exit {}):\n{}",
        last.0, last.1
    );
    last
}

pub(crate) fn json(w: &World) -> (i32, serde_json::Value) {
    let (code, out, err) = status(w, true);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (code, v)
}

fn spawn_watch(w: &World) -> Child {
    w.cmd()
        .arg("watch")
        .arg(&w.src)
        .arg(&w.dst)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn stop(mut child: Child) {
    let _ = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}

#[test]
fn status_with_nothing_running_exits_2() {
    let w = World::new();
    let (code, out, err) = status(&w, false);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("no mirrortray is running"), "{err}");
    let (code, v) = json(&w);
    assert_eq!(code, 2);
    assert_eq!(v["instances"].as_array().map(Vec::len), Some(0), "{v}");
}

#[test]
fn status_says_how_far_a_first_backup_has_got() {
    let w = World::new();
    for i in 0..30 {
        w.write(&format!("photos/img{i:02}.jpg"), vec![b'x'; 10_000]);
    }
    // The copy of this one waits on a lease the test holds: the pass stops
    // there, with everything else copied, for as long as the test looks.
    let held = w.write("photos/zz-held.jpg", vec![b'y'; 10_000]);
    let lease = match Lease::take(&held) {
        Ok(l) => l,
        Err(e) => return skip(&e),
    };
    let child = spawn_watch(&w);

    let (code, out) = status_until(&w, "the progress of the first backup", |_, o| {
        o.contains("Copying 30 of 31 files · 10 kB left")
    });
    assert_eq!(code, 1, "busy is not up to date:\n{out}");
    let (code, v) = json(&w);
    assert_eq!(code, 1);
    let pair = &v["instances"][0]["pairs"][0];
    assert_eq!(pair["state"], "busy", "{v}");
    assert_eq!(pair["up_to_date"], false, "{v}");
    let progress = &pair["progress"];
    assert_eq!(progress["files_done"], 30, "{v}");
    assert_eq!(progress["files_total"], 31, "{v}");
    assert_eq!(progress["bytes_done"], 300_000, "{v}");
    assert_eq!(progress["bytes_total"], 310_000, "{v}");
    // The held file is waited for, not failing.
    let (_, out) = status_until(&w, "the file being written", |_, o| {
        o.contains("zz-held.jpg: being written by another program")
    });
    assert!(!out.contains("can't be backed up"), "{out}");
    let (_, v) = json(&w);
    let pair = &v["instances"][0]["pairs"][0];
    assert_eq!(
        pair["being_written"][0],
        held.to_string_lossy().as_ref(),
        "{v}"
    );
    assert_eq!(pair["failing"], 0, "{v}");

    // Let go: the last file lands, and the run's progress is gone with it.
    drop(lease);
    status_until(&w, "up to date", |c, o| c == 0 && o.contains("Up to date"));
    let (_, v) = json(&w);
    assert!(v["instances"][0]["pairs"][0]["progress"].is_null(), "{v}");
    assert_mirrored(&w.src, &w.dst);
    stop(child);
}

#[test]
fn status_of_a_watch_up_to_date_failing_and_source_missing() {
    let w = World::new();
    w.write("locked/old.txt", "old");
    w.write("a.txt", "a");
    let child = spawn_watch(&w);

    // Up to date, verified by the first pass.
    let (_, out) = status_until(&w, "up to date", |c, o| c == 0 && o.contains("Up to date"));
    assert!(out.contains("mirrortray watch (pid "), "{out}");
    assert!(out.contains("verified exact at"), "{out}");
    let (code, v) = json(&w);
    assert_eq!(code, 0);
    let pair = &v["instances"][0]["pairs"][0];
    assert_eq!(pair["state"], "idle", "{v}");
    assert_eq!(pair["up_to_date"], true, "{v}");
    assert_eq!(pair["src"], w.src.to_string_lossy().as_ref(), "{v}");
    assert!(pair["verified_at"].is_string(), "{v}");

    // A file that cannot be backed up: exit 1, the user's file and why.
    let guard = match Immutable::set(&w.dst.join("locked")) {
        Ok(g) => g,
        Err(e) => {
            stop(child);
            return skip(&format!("cannot make a folder unwritable for root: {e}"));
        }
    };
    w.write("locked/new.txt", "cannot land");
    let (_, out) = status_until(&w, "the failing file", |c, o| {
        c == 1 && o.contains("can't be backed up")
    });
    let user_file = w.src.join("locked/new.txt").display().to_string();
    assert!(
        out.lines()
            .any(|l| l.contains(&user_file) && l.contains("cannot") && l.contains("(since ")),
        "the failing file is not named with its reason:\n{out}"
    );
    let (code, v) = json(&w);
    assert_eq!(code, 1);
    let pair = &v["instances"][0]["pairs"][0];
    assert_eq!(pair["up_to_date"], false, "{v}");
    assert!(pair["failing"].as_u64().unwrap_or(0) >= 1, "{v}");
    let failures = pair["failures"].as_array().cloned().unwrap_or_default();
    assert!(
        failures.iter().any(|f| f["path"] == user_file.as_str()
            && f["reason"].as_str().is_some_and(|r| !r.is_empty())
            && f["since"].is_string()),
        "{v}"
    );

    // Writable again: the retry alone clears it.
    drop(guard);
    status_until(&w, "up to date again", |c, o| {
        c == 0 && o.contains("Up to date")
    });

    // The source gone: the pair's problem, exit 1.
    std::fs::remove_dir_all(&w.src).unwrap();
    let (_, out) = status_until(&w, "the missing source", |c, o| {
        c == 1 && o.contains("Source missing")
    });
    assert!(out.contains(&w.src.display().to_string()), "{out}");

    // Stopped: nothing running, the status file gone.
    stop(child);
    let (code, _, err) = status(&w, false);
    assert_eq!(code, 2, "{err}");
    let left: Vec<_> = std::fs::read_dir(w.home.join(".run/mirrortray"))
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        !left
            .iter()
            .any(|n| n.to_string_lossy().starts_with("status-")),
        "status file left behind: {left:?}"
    );
}

/// A file the user's own account cannot read (the watcher runs as nobody:
/// root reads everything): the status turns to the reason at once, and the
/// retry alone clears it once the file is readable.
#[test]
fn an_unreadable_file_is_named_with_its_reason_and_clears_by_itself() {
    let w = World::new();
    w.write("a.txt", "a");
    std::fs::create_dir_all(w.home.join(".run")).unwrap();
    chown_nobody(w.dir.path());
    // The watcher's own words, for a failure's message.
    let log_path = w.path("watch.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = as_nobody(&w)
        .arg("watch")
        .arg(&w.src)
        .arg(&w.dst)
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut until = |what: &str, ok: &dyn Fn(i32, &str) -> bool| -> (i32, String) {
        let mut last = (0, String::new());
        if wait_for(LONG, || {
            let (code, out, _) = status(&w, false);
            last = (code, out);
            ok(last.0, &last.1)
        }) {
            return last;
        }
        panic!(
            "status never showed {what}; last (exit {}):\n{}\n--- the watcher: {:?}\n{}",
            last.0,
            last.1,
            child.try_wait(),
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    };
    until("up to date", &|c, o| c == 0 && o.contains("Up to date"));

    // Owned by root, readable by root only.
    let secret = w.src.join("secret.txt");
    std::fs::write(w.src.join(".secret.tmp"), "not for nobody").unwrap();
    std::fs::set_permissions(
        w.src.join(".secret.tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    std::fs::rename(w.src.join(".secret.tmp"), &secret).unwrap();
    let (code, out) = until("the unreadable file", &|_, o| {
        o.contains("1 file can't be backed up: permission denied")
    });
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "{}: cannot read: permission denied",
            secret.display()
        )),
        "the user's file is not named with its reason:\n{out}"
    );

    // Readable again: no command, the retry alone copies it.
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    until("up to date again", &|c, o| {
        c == 0 && o.contains("Up to date")
    });
    assert_mirrored(&w.src, &w.dst);
    let _ = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}
