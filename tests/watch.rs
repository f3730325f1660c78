//! `mirrortray watch SRC DST`: live mirroring, as a user sees it.
//!
//! Each test starts the real binary on its own [`World`] (real inotify, a
//! real process), changes SRC the way people and programs do — editors,
//! `cp -a`, `mv`, `rm -rf`, git — and polls (never a fixed sleep) until DST
//! mirrors SRC exactly: types, bytes, ns mtimes, modes, link targets. Where
//! DST lost something, the test checks that it was kept in
//! `.mirrortray/versions/` (safety rule 3); where SRC renamed something, that
//! DST renamed it too (same inode, no versions).
//!
//! [`Watch`] is the harness: it spawns `mirrortray watch SRC DST -v`, waits
//! for "mirrored; watching for changes", and on `stop()` sends SIGTERM and
//! checks the clean-stop promises: exit 0, no temp files, lock released.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::tree::{Node, Snapshot, diff, mirrorable, snapshot_live};
use crate::support::*;

/// Generous deadlines: CI runs these on 2 cores next to other tests.
const START_DEADLINE: Duration = Duration::from_secs(60);
const CONVERGE_DEADLINE: Duration = Duration::from_secs(90);
const EXIT_DEADLINE: Duration = Duration::from_secs(30);

const READY: &str = "mirrored; watching for changes";

// ---------------------------------------------------------------- harness

static WATCHES: AtomicUsize = AtomicUsize::new(0);

/// A running `mirrortray watch SRC DST -v`, its stderr kept in a file.
/// Killed on drop if still running (a failed test leaves no process).
struct Watch<'a> {
    world: &'a World,
    child: Option<Child>,
    log: PathBuf,
}

impl<'a> Watch<'a> {
    /// Starts watching and waits until the initial reconcile is done.
    #[track_caller]
    fn start(world: &'a World, extra: &[&str]) -> Watch<'a> {
        let mut w = Watch::spawn(world, extra);
        w.expect_log(READY, START_DEADLINE);
        w
    }

    /// Starts the process without waiting for anything.
    fn spawn(world: &'a World, extra: &[&str]) -> Watch<'a> {
        let mut c = world.cmd();
        c.arg("watch")
            .arg(&world.src)
            .arg(&world.dst)
            .arg("-v")
            .args(extra);
        Watch::spawn_cmd(world, c)
    }

    /// Starts `c` (a `mirrortray watch ...` command line), output to files.
    fn spawn_cmd(world: &'a World, mut c: Command) -> Watch<'a> {
        let n = WATCHES.fetch_add(1, Ordering::SeqCst);
        let log = world.path(&format!("watch-{n}.stderr"));
        let out = world.path(&format!("watch-{n}.stdout"));
        let child = c
            .stdout(File::create(out).unwrap())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Watch {
            world,
            child: Some(child),
            log,
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Everything the process wrote to stderr so far.
    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines of the log, for failure messages.
    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let from = lines.len().saturating_sub(60);
        lines[from..].join("\n")
    }

    /// Panics (with the log) if the process has exited.
    #[track_caller]
    fn assert_alive(&mut self) {
        if let Some(st) = self.child.as_mut().expect("running").try_wait().unwrap() {
            panic!(
                "mirrortray watch exited early ({st})\n--- log\n{}",
                self.log_tail()
            );
        }
    }

    /// Waits until the log contains `needle`; panics with the log if it
    /// does not within `deadline` or the process exits.
    #[track_caller]
    fn expect_log(&mut self, needle: &str, deadline: Duration) {
        let ok = wait_for(deadline, || {
            self.assert_alive();
            self.log().contains(needle)
        });
        assert!(
            ok,
            "the log never said {needle:?} within {deadline:?}\n--- log\n{}",
            self.log_tail()
        );
    }

    /// Polls until DST mirrors SRC exactly; panics with the diff and the
    /// log if it does not within the deadline.
    #[track_caller]
    fn converged(&mut self) {
        self.converged_within(CONVERGE_DEADLINE);
    }

    #[track_caller]
    fn converged_within(&mut self, deadline: Duration) {
        self.converged_except(deadline, &|_| false);
    }

    /// Like `converged`, leaving out the paths `skip` says (ignored ones)
    /// on both sides.
    #[track_caller]
    fn converged_except(&mut self, deadline: Duration, skip: &dyn Fn(&Path) -> bool) {
        let (src, dst) = (self.world.src.clone(), self.world.dst.clone());
        let ok = wait_for(deadline, || {
            self.assert_alive();
            mirror_diff_except(&src, &dst, skip).is_empty()
        });
        if !ok {
            let d = mirror_diff_except(&src, &dst, skip);
            let shown: Vec<&str> = d.iter().take(40).map(|s| s.as_str()).collect();
            panic!(
                "DST did not converge to SRC within {deadline:?}; {} differences, first ones:\n{}\n--- log\n{}",
                d.len(),
                shown.join("\n"),
                self.log_tail()
            );
        }
    }

    /// Waits until the watcher's inotify instance watches `dir` (its inode
    /// is listed in /proc/PID/fdinfo): a sync point with notify's thread,
    /// which adds watches for new folders on its own.
    #[track_caller]
    fn wait_watched(&mut self, dir: &Path) {
        let ino = format!("ino:{:x} ", ino(dir));
        let pid = self.pid();
        let watched = || -> bool {
            let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
                return false;
            };
            fds.filter_map(|e| e.ok()).any(|e| {
                let is_inotify = fs::read_link(e.path())
                    .map(|t| t.to_string_lossy().contains("inotify"))
                    .unwrap_or(false);
                is_inotify
                    && fs::read_to_string(format!(
                        "/proc/{pid}/fdinfo/{}",
                        e.file_name().to_string_lossy()
                    ))
                    .map(|info| info.contains(&ino))
                    .unwrap_or(false)
            })
        };
        let ok = wait_for(START_DEADLINE, || {
            self.assert_alive();
            watched()
        });
        assert!(
            ok,
            "{} was never watched\n--- log\n{}",
            dir.display(),
            self.log_tail()
        );
    }

    /// Sends a signal by name (`TERM`, `INT`, `STOP`, `CONT`).
    fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(st.success(), "kill -{sig} failed");
    }

    /// Waits for the process to exit; panics with the log if it does not.
    #[track_caller]
    fn wait_exit(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("running");
        let mut status = None;
        wait_for(EXIT_DEADLINE, || {
            status = child.try_wait().unwrap();
            status.is_some()
        });
        match status {
            Some(st) => {
                self.child = None;
                st
            }
            None => panic!(
                "mirrortray watch did not exit within {EXIT_DEADLINE:?}\n--- log\n{}",
                self.log_tail()
            ),
        }
    }

    /// SIGTERM, then the clean-stop promises.
    #[track_caller]
    fn stop(self) -> String {
        self.stop_with("TERM")
    }

    /// Stops with `sig` and checks: exit 0, no temp files left in DST, no
    /// panic in the log, and the lock released (a `sync` on the same DST
    /// then works). Returns the log.
    #[track_caller]
    fn stop_with(mut self, sig: &str) -> String {
        self.signal(sig);
        let st = self.wait_exit();
        let log = self.log();
        assert_eq!(
            st.code(),
            Some(0),
            "exit status after SIG{sig}: {st}\n--- log\n{log}"
        );
        assert!(!log.contains("panicked"), "a panic in the log\n{log}");
        let left = self.world.temp_leftovers();
        assert!(
            left.is_empty(),
            "temp files left in DST after SIG{sig}: {left:?}\n--- log\n{log}"
        );
        let r = self.world.sync(&[]);
        assert_eq!(
            r.code, 0,
            "sync after the watch stopped (lock released?)\n{r:?}\n--- watch log\n{log}"
        );
        log
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits for a spawned command to exit within the deadline (a second
/// watcher that did not refuse would otherwise hang the test).
#[track_caller]
fn run_with_deadline(mut c: Command) -> Run {
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ok = wait_for(EXIT_DEADLINE, || child.try_wait().unwrap().is_some());
    if !ok {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let run = Run::from(out);
    assert!(ok, "did not exit within {EXIT_DEADLINE:?}\n{run:?}");
    run
}

/// How DST differs from SRC (empty = mirrored), safe while DST changes.
fn mirror_diff_except(src: &Path, dst: &Path, skip: &dyn Fn(&Path) -> bool) -> Vec<String> {
    let keep = |s: Snapshot| -> Snapshot { s.into_iter().filter(|(p, _)| !skip(p)).collect() };
    diff(
        &mirrorable(&keep(snapshot_live(src))),
        &keep(snapshot_live(dst)),
    )
}

// ---------------------------------------------------------------- helpers

fn ino(p: &Path) -> u64 {
    fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .ino()
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
}

fn set_mtime(p: &Path, sec: i64, nsec: u32) {
    let t = filetime::FileTime::from_unix_time(sec, nsec);
    filetime::set_symlink_file_times(p, t, t)
        .unwrap_or_else(|e| panic!("set times of {}: {e}", p.display()));
}

#[track_caller]
fn sh(dir: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?} failed\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Regular files under `root` (DST's `.mirrortray` left out): path -> bytes.
fn files_under(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    snapshot_live(root)
        .into_iter()
        .filter_map(|(k, n)| match n {
            Node::File { bytes, .. } => Some((k, bytes)),
            _ => None,
        })
        .collect()
}

/// Every file content kept in DST's versions, with the paths it was kept
/// at (`<time>/<path>` read as `<path>`).
fn versions_by_content(w: &World) -> HashMap<Vec<u8>, HashSet<PathBuf>> {
    let vdir = w.dst.join(".mirrortray/versions");
    let mut out: HashMap<Vec<u8>, HashSet<PathBuf>> = HashMap::new();
    for e in walkdir::WalkDir::new(&vdir)
        .min_depth(2)
        .into_iter()
        .flatten()
    {
        if !e.file_type().is_file() {
            continue;
        }
        let rel: PathBuf = e
            .path()
            .strip_prefix(&vdir)
            .unwrap()
            .components()
            .skip(1)
            .collect();
        out.entry(fs::read(e.path()).unwrap())
            .or_default()
            .insert(rel);
    }
    out
}

/// Safety rule 3: every file content DST held (`before`, taken when it was
/// a converged mirror) is still in DST (maybe renamed), or kept as a
/// version *at the path it had* (a user looks for it there).
#[track_caller]
fn assert_kept(w: &World, before: &BTreeMap<PathBuf, Vec<u8>>, log: &str) {
    let in_dst: HashSet<Vec<u8>> = files_under(&w.dst).into_values().collect();
    let versions = versions_by_content(w);
    let lost: Vec<String> = before
        .iter()
        .filter(|(p, c)| {
            !in_dst.contains(*c) && !versions.get(*c).is_some_and(|at| at.contains(*p))
        })
        .map(|(p, c)| {
            format!(
                "{} ({} bytes; kept at {:?})",
                p.display(),
                c.len(),
                versions.get(c)
            )
        })
        .collect();
    assert!(
        lost.is_empty(),
        "{} contents DST held are neither in DST nor kept at their path:\n{}\n--- log tail\n{}",
        lost.len(),
        lost.iter().take(30).cloned().collect::<Vec<_>>().join("\n"),
        tail(log, 60)
    );
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Every path under DST's versions folder, relative to it
/// (`<time>/<rel path>`).
fn version_entries(w: &World) -> BTreeSet<PathBuf> {
    let vdir = w.dst.join(".mirrortray/versions");
    walkdir::WalkDir::new(&vdir)
        .min_depth(1)
        .into_iter()
        .filter_map(|e| e.ok())
        .map(|e| e.path().strip_prefix(&vdir).unwrap().to_path_buf())
        .collect()
}

/// The version time folders holding `rel` (any kind), oldest first.
fn version_folders_with(w: &World, rel: &str) -> Vec<PathBuf> {
    let vdir = w.dst.join(".mirrortray/versions");
    let mut out: Vec<PathBuf> = fs::read_dir(&vdir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    out.retain(|t| fs::symlink_metadata(t.join(rel)).is_ok());
    out.sort();
    out
}

/// The contents kept of `rel`, oldest first.
fn version_contents(w: &World, rel: &str) -> Vec<Vec<u8>> {
    w.versions_of(rel).into_iter().map(|(_, c)| c).collect()
}

/// Names in DST's versions that look like an editor's or a program's temp
/// file: they should never have reached DST.
fn temp_names_in_versions(w: &World, names: &[&str]) -> Vec<PathBuf> {
    version_entries(w)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .map(|n| names.iter().any(|x| n == *x))
                .unwrap_or(false)
        })
        .collect()
}

/// A small tree: `files` files spread over nested folders, distinct contents.
fn make_tree(root: &Path, files: usize, tag: &str) {
    for i in 0..files {
        let dir = root.join(format!("d{}", i % 7)).join(format!("e{}", i % 3));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join(format!("f{i}.txt")),
            format!("{tag} file {i}\n").repeat(1 + i % 5),
        )
        .unwrap();
    }
    fs::create_dir_all(root.join("empty/inner")).unwrap();
    symlink("d0/e0/f0.txt", root.join("link")).unwrap();
    chmod(&root.join("d1"), 0o750);
    set_mtime(&root.join("d2/e2"), 1_000_000_000, 123_456_789);
}

// ---------------------------------------------------------------- basics

#[test]
fn start_reconciles_then_creates_are_mirrored() {
    let w = World::new();
    w.write("before/old.txt", "made before the watch");
    let mut watch = Watch::start(&w, &[]);
    // "mirrored" is said after the initial reconcile: DST is a mirror now.
    assert_mirrored(&w.src, &w.dst);

    w.write("a.txt", "hello");
    fs::write(w.src.join("zero"), "").unwrap();
    fs::create_dir(w.src.join("empty")).unwrap();
    w.write("deep/er/still/file.bin", [0u8, 1, 2, 255]);
    watch.converged();

    // Files made inside new folders before their watch can exist (the
    // watchdog script lost these).
    fs::create_dir_all(w.src.join("fresh/a/b/c")).unwrap();
    for (i, d) in ["fresh", "fresh/a", "fresh/a/b", "fresh/a/b/c"]
        .iter()
        .enumerate()
    {
        for j in 0..20 {
            w.write(&format!("{d}/n{j}.txt"), format!("{d} {i} {j}"));
        }
    }
    watch.converged();
    watch.stop();
}

#[test]
fn append_is_mirrored_and_the_old_content_kept() {
    let w = World::new();
    let p = w.write("log.txt", "line 1\n");
    let mut watch = Watch::start(&w, &[]);

    OpenOptions::new()
        .append(true)
        .open(&p)
        .unwrap()
        .write_all(b"line 2\n")
        .unwrap();
    watch.converged();
    assert_eq!(version_contents(&w, "log.txt"), vec![b"line 1\n".to_vec()]);

    OpenOptions::new()
        .append(true)
        .open(&p)
        .unwrap()
        .write_all(b"line 3\n")
        .unwrap();
    watch.converged();
    assert_eq!(
        version_contents(&w, "log.txt"),
        vec![b"line 1\n".to_vec(), b"line 1\nline 2\n".to_vec()]
    );
    watch.stop();
}

#[test]
fn truncate_without_close_is_mirrored_after_a_quiet_period() {
    let w = World::new();
    let big: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    let p = w.write("t.bin", &big);
    let held = w.write("held.bin", &big);
    let mut watch = Watch::start(&w, &[]);

    // truncate(2) on a path: no open, so no close_write — only a modify
    // event (lsyncd missed this). perl's truncate with a name is truncate(2).
    sh(
        &w.src,
        "perl",
        &[
            "-e",
            "truncate($ARGV[0], 100) or die $!",
            p.to_str().unwrap(),
        ],
    );
    watch.converged();
    assert_eq!(version_contents(&w, "t.bin"), vec![big.clone()]);

    // ftruncate on a file kept open for writing: DST must follow before the
    // close ever comes (the quiet-period path).
    let f = OpenOptions::new().write(true).open(&held).unwrap();
    f.set_len(10).unwrap();
    watch.converged();
    drop(f);
    assert_eq!(version_contents(&w, "held.bin"), vec![big]);
    watch.stop();
}

#[test]
fn chmod_is_mirrored_without_a_version() {
    let w = World::new();
    let f = w.write("a.sh", "#!/bin/sh\n");
    let g = w.write("d/x", "x");
    chmod(&f, 0o644);
    let mut watch = Watch::start(&w, &[]);

    chmod(&f, 0o755);
    chmod(&g, 0o600);
    chmod(&w.src.join("d"), 0o700);
    watch.converged();
    chmod(&f, 0o4711);
    watch.converged();
    // Same bytes: only the bits changed in place, nothing to keep.
    assert!(
        version_entries(&w).is_empty(),
        "chmod kept versions: {:?}",
        version_entries(&w)
    );
    watch.stop();
}

#[test]
fn hard_links_made_and_written_while_watching_stay_one_file() {
    let w = World::new();
    let f = w.write("f.txt", "one");
    let mut watch = Watch::start(&w, &[]);
    // `ln` tells only the new name's folder: the watcher finds the rest.
    fs::create_dir_all(w.src.join("sub")).unwrap();
    fs::hard_link(&f, w.src.join("g.txt")).unwrap();
    fs::hard_link(&f, w.src.join("sub/h.txt")).unwrap();
    let linked = |w: &World| {
        let i = |r: &str| fs::metadata(w.dst.join(r)).map(|m| m.ino()).ok();
        i("f.txt").is_some() && i("f.txt") == i("g.txt") && i("f.txt") == i("sub/h.txt")
    };
    let ok = wait_for(CONVERGE_DEADLINE, || linked(&w));
    assert!(ok, "not linked in DST\n{}", watch.log_tail());
    watch.converged();
    // Written in place through one name: the kernel tells that name's
    // folder only, yet every name changed.
    fs::write(w.src.join("sub/h.txt"), "two, through h").unwrap();
    watch.converged();
    assert!(linked(&w));
    assert_eq!(fs::read(w.dst.join("f.txt")).unwrap(), b"two, through h");
    watch.stop();
}

#[test]
fn an_attribute_set_or_removed_while_watching_is_mirrored_without_a_copy() {
    let w = World::new();
    let f = w.write("notes.txt", "notes");
    fs::create_dir_all(w.src.join("album")).unwrap();
    let mut watch = Watch::start(&w, &[]);
    let set = |p: &Path, v: &str| {
        Command::new("setfattr")
            .args(["-n", "user.tag", "-v", v])
            .arg(p)
            .status()
            .unwrap()
            .success()
    };
    let tag = |p: &Path| {
        let out = Command::new("getfattr")
            .args(["--only-values", "-n", "user.tag"])
            .arg(p)
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    if !set(&f, "red") {
        return skip("the temp folder's file system keeps no user attributes");
    }
    assert!(set(&w.src.join("album"), "holiday"));
    let ok = wait_for(CONVERGE_DEADLINE, || {
        tag(&w.dst.join("notes.txt")).as_deref() == Some("red")
            && tag(&w.dst.join("album")).as_deref() == Some("holiday")
    });
    assert!(ok, "attributes not mirrored\n{}", watch.log_tail());
    let removed = Command::new("setfattr")
        .args(["-x", "user.tag"])
        .arg(&f)
        .status()
        .unwrap();
    assert!(removed.success());
    let ok = wait_for(CONVERGE_DEADLINE, || {
        tag(&w.dst.join("notes.txt")).is_none()
    });
    assert!(ok, "removal not mirrored\n{}", watch.log_tail());
    watch.converged();
    assert!(version_entries(&w).is_empty(), "{:?}", version_entries(&w));
    watch.stop();
}

#[test]
fn touch_mtime_only_is_mirrored() {
    let w = World::new();
    let f = w.write("a.txt", "same bytes");
    let d = w.src.join("dir");
    fs::create_dir(&d).unwrap();
    symlink("a.txt", w.src.join("link")).unwrap();
    let mut watch = Watch::start(&w, &[]);

    // Attribute events only (lsyncd, waiting for close_write, missed these).
    set_mtime(&f, 1_500_000_000, 123_456_789);
    watch.converged();
    set_mtime(&d, 1_400_000_000, 987_654_321);
    watch.converged();
    set_mtime(&w.src.join("link"), 1_300_000_000, 5);
    watch.converged();
    // Back to a later time, to the nanosecond.
    set_mtime(&f, 1_700_000_000, 1);
    watch.converged();
    watch.stop();
}

#[test]
fn symlinks_are_created_and_retargeted_never_followed() {
    let w = World::new();
    w.write("a.txt", "A");
    w.write("sub/b.txt", "B");
    let mut watch = Watch::start(&w, &[]);

    symlink("a.txt", w.src.join("rel")).unwrap();
    symlink("nowhere/at/all", w.src.join("dangling")).unwrap();
    symlink("/etc/passwd", w.src.join("abs")).unwrap();
    symlink("sub", w.src.join("dirlink")).unwrap();
    symlink(".", w.src.join("sub/loop")).unwrap();
    symlink(&w.src, w.src.join("root")).unwrap();
    watch.converged();
    assert!(
        fs::symlink_metadata(w.dst.join("dirlink"))
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // Retarget by delete + create, and atomically by renaming a new link over.
    fs::remove_file(w.src.join("rel")).unwrap();
    symlink("sub/b.txt", w.src.join("rel")).unwrap();
    symlink("a.txt", w.src.join(".dirlink.new")).unwrap();
    fs::rename(w.src.join(".dirlink.new"), w.src.join("dirlink")).unwrap();
    watch.converged();
    assert_eq!(
        fs::read_link(w.dst.join("rel")).unwrap(),
        Path::new("sub/b.txt")
    );
    assert_eq!(
        fs::read_link(w.dst.join("dirlink")).unwrap(),
        Path::new("a.txt")
    );

    // A link replaced by a file and a file by a link.
    fs::remove_file(w.src.join("abs")).unwrap();
    w.write("abs", "now a file");
    fs::remove_file(w.src.join("a.txt")).unwrap();
    symlink("abs", w.src.join("a.txt")).unwrap();
    watch.converged();
    assert_eq!(version_contents(&w, "a.txt"), vec![b"A".to_vec()]);
    watch.stop();
}

// ---------------------------------------------------------------- renames and moves

#[test]
fn file_rename_is_a_rename_in_dst() {
    let w = World::new();
    w.write("a.txt", "content of a");
    fs::create_dir(w.src.join("sub")).unwrap();
    let mut watch = Watch::start(&w, &[]);
    let inode = ino(&w.dst.join("a.txt"));

    fs::rename(w.src.join("a.txt"), w.src.join("b.txt")).unwrap();
    watch.converged();
    assert_eq!(
        ino(&w.dst.join("b.txt")),
        inode,
        "DST copied b.txt instead of renaming a.txt"
    );

    fs::rename(w.src.join("b.txt"), w.src.join("sub/c.txt")).unwrap();
    watch.converged();
    assert_eq!(
        ino(&w.dst.join("sub/c.txt")),
        inode,
        "DST copied sub/c.txt instead of renaming b.txt"
    );
    assert!(
        version_entries(&w).is_empty(),
        "a rename kept versions: {:?}",
        version_entries(&w)
    );
    watch.stop();
}

#[test]
fn directory_rename_is_one_rename_in_dst() {
    let w = World::new();
    make_tree(&w.src.join("tree"), 600, "t");
    fs::create_dir_all(w.src.join("other/deeper")).unwrap();
    let mut watch = Watch::start(&w, &[]);
    let dir_ino = ino(&w.dst.join("tree"));
    let file_ino = ino(&w.dst.join("tree/d3/e1/f10.txt"));

    fs::rename(w.src.join("tree"), w.src.join("renamed")).unwrap();
    watch.converged();
    assert_eq!(
        ino(&w.dst.join("renamed")),
        dir_ino,
        "the folder was re-created in DST, not renamed"
    );
    assert_eq!(
        ino(&w.dst.join("renamed/d3/e1/f10.txt")),
        file_ino,
        "files were re-copied"
    );

    // Into another folder, and a change inside right after the move.
    fs::rename(w.src.join("renamed"), w.src.join("other/deeper/moved")).unwrap();
    w.write("other/deeper/moved/d0/new.txt", "made right after the move");
    watch.converged();
    assert_eq!(
        ino(&w.dst.join("other/deeper/moved")),
        dir_ino,
        "the folder was re-created in DST, not renamed"
    );
    assert!(
        version_entries(&w).is_empty(),
        "a folder rename kept versions: {:?}",
        version_entries(&w)
    );
    watch.stop();
}

#[test]
fn move_in_from_outside_is_created_with_its_content() {
    let w = World::new();
    let outside = w.path("outside");
    make_tree(&outside.join("tree"), 200, "in");
    fs::write(outside.join("single.txt"), "moved in alone").unwrap();
    set_mtime(&outside.join("single.txt"), 1_234_567_890, 42);
    let mut watch = Watch::start(&w, &[]);

    fs::rename(outside.join("tree"), w.src.join("tree")).unwrap();
    fs::rename(outside.join("single.txt"), w.src.join("single.txt")).unwrap();
    watch.converged();
    assert!(version_entries(&w).is_empty());
    watch.stop();
}

#[test]
fn move_out_is_a_deletion_kept_as_a_version() {
    let w = World::new();
    make_tree(&w.src.join("tree"), 120, "out");
    w.write("alone.txt", "moved out alone");
    let mut watch = Watch::start(&w, &[]);
    let before = files_under(&w.dst);
    let dir_ino = ino(&w.dst.join("tree"));

    let outside = w.path("outside");
    fs::create_dir(&outside).unwrap();
    fs::rename(w.src.join("tree"), outside.join("tree")).unwrap();
    fs::rename(w.src.join("alone.txt"), outside.join("alone.txt")).unwrap();
    watch.converged();
    assert_eq!(
        version_contents(&w, "alone.txt"),
        vec![b"moved out alone".to_vec()]
    );
    let kept = version_folders_with(&w, "tree");
    assert_eq!(
        kept.len(),
        1,
        "the folder should be kept whole, once: {kept:?}"
    );
    assert_eq!(
        ino(&kept[0].join("tree")),
        dir_ino,
        "the folder should go to versions with one rename"
    );
    for (rel, content) in before.iter().filter(|(p, _)| p.starts_with("tree")) {
        assert_eq!(
            &fs::read(kept[0].join(rel)).unwrap(),
            content,
            "{}",
            rel.display()
        );
    }
    watch.stop();
}

#[test]
fn rename_over_an_existing_file_keeps_the_old_target() {
    let w = World::new();
    w.write("a", "new content from a");
    w.write("b", "old content of b");
    let mut watch = Watch::start(&w, &[]);
    let inode = ino(&w.dst.join("a"));

    fs::rename(w.src.join("a"), w.src.join("b")).unwrap();
    watch.converged();
    assert_eq!(
        version_contents(&w, "b"),
        vec![b"old content of b".to_vec()]
    );
    assert_eq!(
        ino(&w.dst.join("b")),
        inode,
        "DST copied a over b instead of renaming"
    );
    watch.stop();
}

#[test]
fn a_folder_moved_over_a_deleted_file_then_edited_keeps_both_versions() {
    let w = World::new();
    w.write("a", "the file a");
    w.write("b/x", "x before");
    let mut watch = Watch::start(&w, &[]);
    // Live and idle: what follows is one batch.
    w.write("c", "c");
    watch.converged();

    // One batch (a deletion holds it for a few ms; `b/x` is written while
    // its folder's watch surely exists): the version of file `a` and the
    // version of `a/x` would share a versions folder, where `a` cannot be
    // both a file and a folder.
    fs::remove_file(w.src.join("a")).unwrap();
    w.write("b/x", "x after");
    fs::rename(w.src.join("b"), w.src.join("a")).unwrap();
    watch.converged();
    assert_eq!(version_contents(&w, "a"), vec![b"the file a".to_vec()]);
    assert_eq!(version_contents(&w, "a/x"), vec![b"x before".to_vec()]);
    let log = watch.stop();
    assert!(
        !log.contains("[ERROR]"),
        "errors logged:\n{}",
        tail(&log, 20)
    );
}

#[test]
fn swapping_two_names_is_mirrored_and_loses_nothing() {
    let w = World::new();
    w.write("a", "AAAA");
    w.write("b", "BB");
    let mut watch = Watch::start(&w, &[]);
    let before = files_under(&w.dst);

    fs::rename(w.src.join("a"), w.src.join("tmp")).unwrap();
    fs::rename(w.src.join("b"), w.src.join("a")).unwrap();
    fs::rename(w.src.join("tmp"), w.src.join("b")).unwrap();
    watch.converged();
    assert_eq!(fs::read(w.dst.join("a")).unwrap(), b"BB");
    assert_eq!(fs::read(w.dst.join("b")).unwrap(), b"AAAA");
    assert_kept(&w, &before, &watch.log());
    assert!(temp_names_in_versions(&w, &["tmp"]).is_empty() && !w.dst.join("tmp").exists());

    // And again, folders this time.
    make_tree(&w.src.join("x"), 30, "x");
    make_tree(&w.src.join("y"), 40, "y");
    watch.converged();
    let before = files_under(&w.dst);
    fs::rename(w.src.join("x"), w.src.join("t")).unwrap();
    fs::rename(w.src.join("y"), w.src.join("x")).unwrap();
    fs::rename(w.src.join("t"), w.src.join("y")).unwrap();
    watch.converged();
    assert_kept(&w, &before, &watch.log());
    watch.stop();
}

#[test]
fn rm_rf_of_a_deep_tree_keeps_the_whole_tree() {
    let w = World::new();
    let mut rel = PathBuf::from("deep");
    for level in 0..12 {
        for j in 0..3 {
            w.write(
                rel.join(format!("f{j}.txt")).to_str().unwrap(),
                format!("level {level} file {j}"),
            );
        }
        make_tree(&w.src.join(&rel).join("side"), 10, &format!("side {level}"));
        rel.push(format!("l{level}"));
    }
    w.write("stays.txt", "not deleted");
    let mut watch = Watch::start(&w, &[]);
    let before = files_under(&w.dst);

    sh(&w.src, "rm", &["-rf", "deep"]);
    watch.converged();
    for (rel, content) in before.iter().filter(|(p, _)| p.starts_with("deep")) {
        let found = version_folders_with(&w, rel.to_str().unwrap())
            .iter()
            .any(|t| fs::read(t.join(rel)).ok().as_ref() == Some(content));
        assert!(found, "{} is not in versions", rel.display());
    }
    watch.stop();
}

#[test]
fn cp_a_of_a_tree_is_mirrored() {
    let w = World::new();
    let outside = w.path("outside");
    make_tree(&outside.join("tree"), 300, "cp");
    chmod(&outside.join("tree/d4/e1/f4.txt"), 0o600);
    set_mtime(&outside.join("tree/d5"), 1_111_111_111, 111);
    let mut watch = Watch::start(&w, &[]);

    sh(
        &w.path(""),
        "cp",
        &[
            "-a",
            outside.join("tree").to_str().unwrap(),
            w.src.join("tree").to_str().unwrap(),
        ],
    );
    watch.converged();
    // And over itself with newer content (cp onto existing files).
    fs::write(
        outside.join("tree/d0/e0/f0.txt"),
        "changed before the second copy",
    )
    .unwrap();
    sh(
        &w.path(""),
        "cp",
        &[
            "-a",
            "-T",
            outside.join("tree").to_str().unwrap(),
            w.src.join("tree").to_str().unwrap(),
        ],
    );
    watch.converged();
    watch.stop();
}

// ---------------------------------------------------------------- programs

/// Runs git in `dir` with an isolated, fixed configuration.
#[track_caller]
fn git(w: &World, dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "gc.auto=0",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(["-c", "core.fsync=none", "-c", "maintenance.auto=false"])
        .args(args)
        .current_dir(dir)
        .env("HOME", &w.home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?} failed\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn git_checkout_between_distant_commits_is_mirrored() {
    let w = World::new();
    let mut watch = Watch::start(&w, &[]);
    let repo = w.src.join("repo");
    fs::create_dir(&repo).unwrap();
    git(&w, &repo, &["init", "-q"]);

    // Commit A: 400 files in nested folders.
    for i in 0..400 {
        let p = repo.join(format!("src/m{}/s{}/file{i}.rs", i % 10, i % 4));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(
            &p,
            format!("// file {i}\nfn f{i}() {{}}\n").repeat(1 + i % 7),
        )
        .unwrap();
    }
    fs::write(repo.join("README"), "version A\n").unwrap();
    git(&w, &repo, &["add", "-A"]);
    git(&w, &repo, &["commit", "-q", "-m", "A"]);
    let a = git(&w, &repo, &["rev-parse", "HEAD"]);

    // Several commits later, B: folders renamed, files deleted, edited, added.
    git(&w, &repo, &["mv", "src/m3", "src/renamed3"]);
    git(&w, &repo, &["commit", "-q", "-m", "rename m3"]);
    git(&w, &repo, &["rm", "-q", "-r", "src/m5"]);
    git(&w, &repo, &["commit", "-q", "-m", "drop m5"]);
    for i in (0..400).step_by(3) {
        let p = repo.join(format!("src/m{}/s{}/file{i}.rs", i % 10, i % 4));
        if p.exists() {
            fs::write(&p, format!("// edited {i}\n")).unwrap();
        }
    }
    git(&w, &repo, &["commit", "-q", "-a", "-m", "edits"]);
    for i in 0..150 {
        let p = repo.join(format!("new/n{}/g{i}.txt", i % 5));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, format!("new {i}\n")).unwrap();
    }
    fs::write(repo.join("README"), "version B\n").unwrap();
    git(&w, &repo, &["mv", "src/m7/s3", "moved-s3"]);
    git(&w, &repo, &["add", "-A"]);
    git(&w, &repo, &["commit", "-q", "-m", "B"]);
    let b = git(&w, &repo, &["rev-parse", "HEAD"]);
    watch.converged();

    for target in [&a, &b, &a, &b] {
        let before = files_under(&w.dst);
        git(&w, &repo, &["checkout", "-q", target.as_str()]);
        watch.converged();
        assert_kept(&w, &before, &watch.log());
    }
    // The mirrored repository is a working one.
    let dst_repo = w.dst.join("repo");
    assert_eq!(git(&w, &dst_repo, &["rev-parse", "HEAD"]), b);
    assert_eq!(
        git(
            &w,
            &dst_repo,
            &["--no-optional-locks", "status", "--porcelain"]
        ),
        ""
    );
    watch.stop();
}

#[test]
fn editor_safe_saves_end_as_one_new_version() {
    let w = World::new();
    let f = w.write("notes.txt", "v1");
    let mut watch = Watch::start(&w, &[]);

    // Write a temp file, rename it over (gedit, VS Code, most libraries).
    fs::write(w.src.join(".notes.txt.tmp"), "v2").unwrap();
    fs::rename(w.src.join(".notes.txt.tmp"), &f).unwrap();
    watch.converged();
    assert_eq!(version_contents(&w, "notes.txt"), vec![b"v1".to_vec()]);

    // vim's backup dance: rename f -> f~, write f, delete f~.
    fs::rename(&f, w.src.join("notes.txt~")).unwrap();
    fs::write(&f, "v3").unwrap();
    fs::remove_file(w.src.join("notes.txt~")).unwrap();
    watch.converged();
    assert_eq!(
        version_contents(&w, "notes.txt"),
        vec![b"v1".to_vec(), b"v2".to_vec()]
    );

    // Delete and recreate.
    fs::remove_file(&f).unwrap();
    fs::write(&f, "v4").unwrap();
    watch.converged();
    assert_eq!(
        version_contents(&w, "notes.txt"),
        vec![b"v1".to_vec(), b"v2".to_vec(), b"v3".to_vec()]
    );

    let temps = temp_names_in_versions(&w, &[".notes.txt.tmp", "notes.txt~"]);
    assert!(
        temps.is_empty(),
        "editor temp names reached DST: {temps:?}\n--- log\n{}",
        watch.log()
    );
    watch.stop();
}

/// A log held open and appended every 5 ms never goes quiet for a second:
/// it is still refreshed in DST while it grows ("at least every 10 s" in
/// the README), each copy a state the file had.
#[test]
fn a_file_growing_without_pause_is_refreshed_while_it_grows() {
    let w = World::new();
    let mut watch = Watch::start(&w, &[]);
    let p = w.src.join("busy.log");
    let mut f = File::create(&p).unwrap();
    let mut written: Vec<u8> = Vec::new();
    // Sizes DST held while the writing went on, in order.
    let mut seen: Vec<usize> = Vec::new();
    let started = Instant::now();
    let mut i = 0u64;
    while started.elapsed() < Duration::from_secs(25) {
        let line = format!("line {i:08}\n");
        f.write_all(line.as_bytes()).unwrap();
        written.extend_from_slice(line.as_bytes());
        i += 1;
        if let Ok(got) = fs::read(w.dst.join("busy.log")) {
            assert!(written.starts_with(&got), "DST holds a torn copy");
            if !got.is_empty() && seen.last() != Some(&got.len()) {
                seen.push(got.len());
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // 25 s of writing: refreshed at least twice while growing (the first
    // copy and one later one), never only at the end.
    assert!(
        seen.len() >= 2,
        "DST was refreshed {} times in 25 s of writing (sizes {seen:?})\n{}",
        seen.len(),
        watch.log_tail()
    );
    drop(f);
    watch.converged();
    watch.stop();
}

#[test]
fn a_file_written_slowly_is_never_torn_and_ends_mirrored() {
    let w = World::new();
    let mut watch = Watch::start(&w, &[]);
    let p = w.src.join("slow.log");
    let mut f = File::create(&p).unwrap();
    let mut written: Vec<u8> = Vec::new();
    let started = Instant::now();
    let mut i = 0;
    // The workload itself is slow: a chunk every 100 ms for 3 s.
    while started.elapsed() < Duration::from_secs(3) {
        let chunk = format!("chunk {i:04} {}\n", "x".repeat(100));
        f.write_all(chunk.as_bytes()).unwrap();
        written.extend_from_slice(chunk.as_bytes());
        i += 1;
        // Safety rule 2: whatever DST holds is a state the file had.
        if let Ok(got) = fs::read(w.dst.join("slow.log")) {
            assert!(
                written.starts_with(&got),
                "DST holds a torn copy ({} bytes)",
                got.len()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Still open: DST follows after the quiet period...
    watch.converged();
    drop(f);
    // ...and after the close.
    watch.converged();
    watch.stop();
}

#[test]
fn a_burst_of_10000_files_is_applied_in_batches() {
    let w = World::new();
    fs::create_dir(w.src.join("old")).unwrap();
    let mut watch = Watch::start(&w, &[]);

    for i in 0..10_000 {
        let dir = if i % 2 == 0 {
            format!("old/o{}", i % 20)
        } else {
            format!("new{}", i % 10)
        };
        let d = w.src.join(&dir);
        if i < 20 {
            fs::create_dir_all(&d).unwrap();
        }
        fs::write(d.join(format!("f{i}")), format!("burst {i}")).unwrap();
    }
    watch.converged_within(Duration::from_secs(180));
    // Each file copied exactly once (none half-written and then again,
    // which would also keep a version of the half). The log says so once
    // the pair is idle again.
    let total_in = |log: &str, what: &str| -> u64 {
        log.lines()
            .filter_map(|l| l.split(&format!("{what} ")).nth(1))
            .filter_map(|rest| rest.split([',', ' ']).next()?.parse::<u64>().ok())
            .sum()
    };
    wait_for(Duration::from_secs(60), || {
        total_in(&watch.log(), "copied") >= 10_000
    });
    let log = watch.log();
    let total = |what: &str| total_in(&log, what);
    assert_eq!(
        (total("copied"), total("versioned")),
        (10_000, 0),
        "copies and versions for 10,000 new files\n{}",
        tail(&log, 30)
    );
    watch.stop();
}

// ---------------------------------------------------------------- interruptions

#[test]
fn changes_made_while_not_watching_are_caught_at_start() {
    let w = World::new();
    make_tree(&w.src, 50, "first");
    let watch = Watch::start(&w, &[]);
    watch.stop();
    let before = files_under(&w.dst);

    // Not running (the tray's pause is a command on the same path: reconcile
    // on resume).
    fs::write(w.src.join("d0/e0/f0.txt"), "changed while stopped").unwrap();
    fs::remove_dir_all(w.src.join("d1")).unwrap();
    w.write("brand/new.txt", "new while stopped");
    fs::rename(w.src.join("d2"), w.src.join("d2-renamed")).unwrap();

    let watch = Watch::start(&w, &[]);
    assert_mirrored(&w.src, &w.dst);
    assert_kept(&w, &before, &watch.log());
    watch.stop();
}

#[test]
fn queue_overflow_is_reported_and_repaired_by_a_full_reconcile() {
    let w = World::new();
    for d in 0..8 {
        fs::create_dir(w.src.join(format!("d{d}"))).unwrap();
    }
    let mut watch = Watch::start(&w, &[]);

    // Frozen, the watcher cannot read the inotify queue; each new file is 3
    // events (create, modify, close_write), so 8,000 files overflow the
    // default queue of 16,384 events.
    let queue: usize = fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .map(|s| s.trim().parse().unwrap_or(16384))
        .unwrap_or(16384);
    let files = (queue / 3 + 2000).max(8000);
    watch.signal("STOP");
    for i in 0..files {
        fs::write(
            w.src.join(format!("d{}/f{i}", i % 8)),
            format!("overflow {i}"),
        )
        .unwrap();
    }
    fs::remove_dir_all(w.src.join("d7")).unwrap();
    watch.signal("CONT");
    watch.converged_within(Duration::from_secs(180));
    watch.expect_log("overflowed", Duration::from_secs(10));
    watch.stop();
}

#[test]
fn source_deleted_while_watching_leaves_dst_alone_until_it_returns() {
    let w = World::new();
    make_tree(&w.src, 30, "orig");
    let mut watch = Watch::start(&w, &[]);
    let dst_before = snapshot_live(&w.dst);
    let versions_before = version_entries(&w);
    let files_before = files_under(&w.dst);

    fs::remove_dir_all(&w.src).unwrap();
    watch.expect_log("does not exist", Duration::from_secs(30));
    let d = diff(&dst_before, &snapshot_live(&w.dst));
    assert!(
        d.is_empty(),
        "DST changed after SRC vanished:\n{}\n--- log\n{}",
        d.join("\n"),
        watch.log()
    );
    assert_eq!(
        version_entries(&w),
        versions_before,
        "versions changed after SRC vanished"
    );

    // Back, with other content: it resumes by itself.
    w.write("back.txt", "SRC is back");
    watch.converged();
    watch.expect_log("the source is back", Duration::from_secs(10));
    assert_kept(&w, &files_before, &watch.log());
    watch.stop();
}

#[test]
fn backup_folder_deleted_during_a_copy_is_one_error_and_resumes_when_made_again() {
    let w = World::new();
    w.write("small", "s");
    let mut watch = Watch::start(&w, &[]);
    // A big folder moved in is one long deep copy; the backup folder is
    // deleted while (or just before) it runs.
    let outside = w.path("outside/big");
    for i in 0..6000 {
        let p = outside.join(format!("d{}/f{i}", i % 60));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, format!("file {i}")).unwrap();
    }
    fs::rename(&outside, w.src.join("big")).unwrap();
    let started = wait_for(Duration::from_secs(30), || w.dst.join("big").exists());
    assert!(
        started,
        "the copy of big/ never started\n{}",
        watch.log_tail()
    );
    // rm -rf races with the copy going on ("Directory not empty").
    let gone = wait_for(Duration::from_secs(30), || {
        let _ = fs::remove_dir_all(&w.dst);
        !w.dst.exists()
    });
    assert!(gone, "could not delete DST");
    watch.expect_log("does not exist", Duration::from_secs(30));
    let log = watch.log();
    // One error, about the backup folder: not one per file left to copy,
    // nor for each entry rm -rf took from under a copy.
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("[ERROR]")).collect();
    let dst = w.dst.display().to_string();
    assert!(
        errors.len() == 1 && errors[0].contains(&format!("backup folder {dst} does not exist")),
        "{} errors for one deleted backup folder:\n{}",
        errors.len(),
        errors
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(!w.dst.exists(), "DST made again by mirrortray");

    fs::create_dir(&w.dst).unwrap();
    watch.converged();
    watch.stop();
}

#[test]
fn source_renamed_away_pauses_and_resumes_when_it_returns() {
    let w = World::new();
    make_tree(&w.src, 30, "orig");
    let mut watch = Watch::start(&w, &[]);
    let dst_before = snapshot_live(&w.dst);

    let away = w.path("src.away");
    fs::rename(&w.src, &away).unwrap();
    watch.expect_log("does not exist", Duration::from_secs(30));
    // Changed while away: must not reach DST, and must once it is back.
    fs::write(away.join("while-away.txt"), "made while away").unwrap();
    fs::remove_dir_all(away.join("d3")).unwrap();
    let d = diff(&dst_before, &snapshot_live(&w.dst));
    assert!(
        d.is_empty(),
        "DST changed while SRC was away:\n{}",
        d.join("\n")
    );

    fs::rename(&away, &w.src).unwrap();
    watch.converged();
    // And live again afterwards.
    w.write("after.txt", "live again");
    watch.converged();
    watch.stop();
}

#[test]
fn sigint_stops_cleanly_with_no_temp_files() {
    let w = World::new();
    let watch = Watch::start(&w, &[]);
    // A copy in flight when the signal comes (a temp file exists).
    let big = vec![7u8; 64 << 20];
    for i in 0..6 {
        w.write(&format!("big{i}.bin"), &big);
    }
    let busy = wait_for(START_DEADLINE, || !w.temp_leftovers().is_empty());
    assert!(busy, "no copy was seen in flight\n{}", watch.log());
    let log = watch.stop_with("INT");
    assert!(
        log.contains("signal 2: stopping"),
        "the log does not say why it stopped\n{log}"
    );
}

#[test]
fn bad_setup_exits_2_before_watching() {
    let w = World::new();
    let missing = w.path("no-such-src");
    let mut c = w.cmd();
    c.arg("watch").arg(&missing).arg(&w.dst).arg("-v");
    let r = run_with_deadline(c);
    r.code(2)
        .no_debug_dump()
        .stderr_has(missing.to_str().unwrap());
    assert!(
        !r.stderr.contains(READY),
        "it said it was watching:\n{}",
        r.stderr
    );
    assert!(
        !w.dst.exists(),
        "DST was created although the setup was refused"
    );
}

#[test]
fn a_second_watch_on_the_same_dst_exits_2() {
    let w = World::new();
    w.write("a", "a");
    let mut first = Watch::start(&w, &[]);
    let mut c = w.cmd();
    c.arg("watch").arg(&w.src).arg(&w.dst);
    let r = run_with_deadline(c);
    r.code(2).no_debug_dump().stderr_has("in use");
    // The first one goes on.
    w.write("b", "b");
    first.converged();
    first.stop();
}

// Random sequences of operations: see mix.rs.

// ---------------------------------------------------------------- harder cases

#[test]
fn files_written_in_a_new_folder_are_copied_once_without_versions() {
    let w = World::new();
    let mut watch = Watch::start(&w, &[]);
    // The new folder is scanned at once (its files may predate its watch);
    // files still being written then must wait for their close, not be
    // copied half-written and kept as a "version" when the close comes.
    for round in 0..40 {
        let d = format!("new{round}/a/b");
        fs::create_dir_all(w.src.join(&d)).unwrap();
        for j in 0..30 {
            // Created, written in two parts, closed: an ordinary save.
            let mut f = File::create(w.src.join(&d).join(format!("f{j}"))).unwrap();
            let part = format!("round {round} file {j} ").repeat(1000);
            f.write_all(part.as_bytes()).unwrap();
            f.write_all(part.as_bytes()).unwrap();
        }
    }
    watch.converged();
    let kept: Vec<String> = version_entries(&w)
        .into_iter()
        .filter_map(|p| {
            let m = fs::symlink_metadata(w.dst.join(".mirrortray/versions").join(&p)).ok()?;
            m.is_file()
                .then(|| format!("{} ({} bytes)", p.display(), m.len()))
        })
        .collect();
    assert!(
        kept.is_empty(),
        "new files were copied twice, a partial copy kept as a version: {kept:?}\n--- log\n{}",
        tail(&watch.log(), 30)
    );
    watch.stop();
}

#[test]
fn empty_files_that_no_close_will_follow_still_reach_the_backup() {
    let w = World::new();
    let mut watch = Watch::start(&w, &[]);
    // An empty file just made waits for its writer (it may still be
    // opening it); these have none, and no close event comes: a hard link
    // made into SRC, and a folder moved in holding a new empty file.
    fs::write(w.path("outside"), "").unwrap();
    fs::hard_link(w.path("outside"), w.src.join("linked")).unwrap();
    fs::create_dir(w.path("moved")).unwrap();
    fs::write(w.path("moved/empty"), "").unwrap();
    fs::rename(w.path("moved"), w.src.join("moved")).unwrap();
    watch.converged();
    for f in ["linked", "moved/empty"] {
        assert_eq!(
            fs::metadata(w.dst.join(f)).map(|m| m.len()).ok(),
            Some(0),
            "{f}"
        );
    }
    assert!(version_entries(&w).is_empty(), "{:?}", version_entries(&w));
    watch.stop();
}

#[test]
fn renames_in_quick_succession_stay_renames_in_dst() {
    let w = World::new();
    make_tree(&w.src.join("big"), 300, "big");
    make_tree(&w.src.join("x"), 40, "x");
    make_tree(&w.src.join("y"), 50, "y");
    w.write("f", "file f");
    let mut watch = Watch::start(&w, &[]);
    let big = ino(&w.dst.join("big"));
    let (x, y) = (ino(&w.dst.join("x")), ino(&w.dst.join("y")));
    let f = ino(&w.dst.join("f"));

    // A chain (`mv big tmp && mv tmp final`), a swap of two folders and a
    // file renamed twice, all faster than any settle time.
    fs::rename(w.src.join("big"), w.src.join("tmp")).unwrap();
    fs::rename(w.src.join("tmp"), w.src.join("final")).unwrap();
    fs::rename(w.src.join("x"), w.src.join("t")).unwrap();
    fs::rename(w.src.join("y"), w.src.join("x")).unwrap();
    fs::rename(w.src.join("t"), w.src.join("y")).unwrap();
    fs::rename(w.src.join("f"), w.src.join("g")).unwrap();
    fs::rename(w.src.join("g"), w.src.join("h")).unwrap();
    watch.converged();
    let got = [
        ("final", ino(&w.dst.join("final")), big),
        ("x", ino(&w.dst.join("x")), y),
        ("y", ino(&w.dst.join("y")), x),
        ("h", ino(&w.dst.join("h")), f),
    ];
    let copied: Vec<&str> = got
        .iter()
        .filter(|(_, now, was)| now != was)
        .map(|(n, _, _)| *n)
        .collect();
    let versions = version_entries(&w);
    assert!(
        copied.is_empty() && versions.is_empty(),
        "renames inside SRC were not renames in DST: re-copied {copied:?}, {} version entries kept (first: {:?})\n--- log\n{}",
        versions.len(),
        versions.iter().take(5).collect::<Vec<_>>(),
        tail(&watch.log(), 30)
    );
    watch.stop();
}

#[test]
fn type_changes_are_mirrored_and_kept() {
    let w = World::new();
    w.write("f", "a file that becomes a folder");
    make_tree(&w.src.join("d"), 20, "dir-to-file");
    make_tree(&w.src.join("e"), 20, "dir-to-link");
    symlink("f", w.src.join("l")).unwrap();
    let mut watch = Watch::start(&w, &[]);
    let before = files_under(&w.dst);

    fs::remove_file(w.src.join("f")).unwrap();
    w.write("f/inner.txt", "now inside folder f");
    fs::remove_dir_all(w.src.join("d")).unwrap();
    w.write("d", "d is a file now");
    fs::remove_dir_all(w.src.join("e")).unwrap();
    symlink("d", w.src.join("e")).unwrap();
    fs::remove_file(w.src.join("l")).unwrap();
    w.write("l/x", "l is a folder now");
    watch.converged();
    assert_kept(&w, &before, &watch.log());

    // And back, by renames this time.
    let before = files_under(&w.dst);
    fs::rename(w.src.join("d"), w.path("d.out")).unwrap();
    fs::rename(w.src.join("f"), w.src.join("d")).unwrap();
    w.write("f", "a file again");
    watch.converged();
    assert_kept(&w, &before, &watch.log());
    watch.stop();
}

#[test]
fn odd_names_are_mirrored() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let w = World::new();
    let mut watch = Watch::start(&w, &[]);
    let long_a = "a".repeat(255);
    let long_b = "b".repeat(255);
    let names: Vec<&OsStr> = vec![
        OsStr::new("with space"),
        OsStr::new("new\nline"),
        OsStr::new("tab\there"),
        OsStr::new("-leading-dash"),
        OsStr::new("ünïcødé ✓"),
        OsStr::from_bytes(b"bad\xffutf8"),
        OsStr::new(&long_a),
        OsStr::new("back\\slash"),
        OsStr::new("..."),
        OsStr::new(".hidden"),
    ];
    for (i, n) in names.iter().enumerate() {
        fs::write(w.src.join(n), format!("name {i}")).unwrap();
        fs::create_dir_all(w.src.join("dir").join(n).join(n)).unwrap();
    }
    // Only SRC's top-level `.mirrortray` is reserved; a nested one is data.
    w.write("sub/.mirrortray/inner", "nested reserved-looking name");
    w.write(".mirrortray/own", "SRC's own top-level .mirrortray");
    watch.converged();
    assert!(
        !w.dst.join(".mirrortray/own").exists(),
        "SRC's .mirrortray was mirrored into DST's"
    );

    fs::rename(w.src.join(&long_a), w.src.join(&long_b)).unwrap();
    fs::rename(
        w.src.join(OsStr::from_bytes(b"bad\xffutf8")),
        w.src.join(OsStr::from_bytes(b"still\xfe\xffbad")),
    )
    .unwrap();
    fs::rename(
        w.src.join("dir/new\nline"),
        w.src.join("dir/renamed\nagain"),
    )
    .unwrap();
    fs::remove_file(w.src.join("with space")).unwrap();
    watch.converged();
    let log = watch.stop();
    assert!(!log.contains("[ERROR]"), "errors with odd names:\n{log}");
}

#[test]
fn fifos_are_skipped_with_a_log_line() {
    let w = World::new();
    let mut watch = Watch::start(&w, &[]);
    sh(&w.src, "mkfifo", &["pipe"]);
    w.write("after.txt", "after the fifo");
    // The tree comparison leaves special files out of what DST must hold.
    watch.converged();
    watch.expect_log("pipe", Duration::from_secs(30));
    assert!(
        fs::symlink_metadata(w.dst.join("pipe")).is_err(),
        "the FIFO reached DST"
    );
    watch.stop();
}

#[test]
fn ignored_paths_are_neither_copied_nor_deleted() {
    let w = World::new();
    w.write("keep.txt", "kept");
    fs::create_dir_all(w.dst.join("build")).unwrap();
    fs::write(
        w.dst.join("hand.tmp"),
        "DST's own, matched by an ignore pattern",
    )
    .unwrap();
    fs::write(w.dst.join("build/hand"), "DST's own, in an ignored folder").unwrap();
    let ignored =
        |p: &Path| p.extension().map(|e| e == "tmp").unwrap_or(false) || p.starts_with("build");
    let mut watch = Watch::start(&w, &["--ignore", "*.tmp", "--ignore", "build/"]);
    watch.converged_except(CONVERGE_DEADLINE, &ignored);

    w.write("x.tmp", "ignored file");
    w.write("build/out/obj", "ignored folder");
    w.write("real.txt", "copied");
    watch.converged_except(CONVERGE_DEADLINE, &ignored);
    assert!(
        !w.dst.join("x.tmp").exists() && !w.dst.join("build/out").exists(),
        "ignored paths reached DST"
    );

    // A safe save through an ignored temp name, and a rename to an ignored name.
    fs::write(w.src.join("keep.txt.tmp"), "kept v2").unwrap();
    fs::rename(w.src.join("keep.txt.tmp"), w.src.join("keep.txt")).unwrap();
    fs::rename(w.src.join("real.txt"), w.src.join("real.tmp")).unwrap();
    watch.converged_except(CONVERGE_DEADLINE, &ignored);
    assert_eq!(version_contents(&w, "keep.txt"), vec![b"kept".to_vec()]);
    assert_eq!(version_contents(&w, "real.txt"), vec![b"copied".to_vec()]);
    assert!(
        !w.dst.join("real.tmp").exists(),
        "a rename to an ignored name copied it"
    );
    // A folder renamed out of and into an ignored name.
    w.write("build/made/x.o", "ignored build output");
    w.write("lib/a.rs", "source");
    watch.converged_except(CONVERGE_DEADLINE, &ignored);
    fs::rename(w.src.join("build/made"), w.src.join("made")).unwrap();
    fs::rename(w.src.join("lib"), w.src.join("build/lib")).unwrap();
    watch.converged_except(CONVERGE_DEADLINE, &ignored);
    assert!(
        !w.dst.join("build/lib").exists(),
        "a folder renamed into an ignored one reached DST"
    );
    assert_eq!(version_contents(&w, "lib/a.rs"), vec![b"source".to_vec()]);
    assert_eq!(
        fs::read(w.dst.join("hand.tmp")).unwrap(),
        b"DST's own, matched by an ignore pattern"
    );
    assert!(
        w.dst.join("build/hand").exists(),
        "an ignored folder in DST was touched"
    );
    watch.stop();
}

#[test]
fn no_versions_replaces_and_deletes_without_keeping() {
    let w = World::new();
    w.write("a", "a1");
    w.write("b", "b1");
    make_tree(&w.src.join("t"), 10, "t");
    let mut watch = Watch::start(&w, &["--no-versions"]);
    fs::write(w.src.join("a"), "a2").unwrap();
    fs::remove_file(w.src.join("b")).unwrap();
    fs::remove_dir_all(w.src.join("t")).unwrap();
    watch.converged();
    assert!(
        version_entries(&w).is_empty(),
        "--no-versions kept versions: {:?}",
        version_entries(&w)
    );
    watch.stop();
}

#[test]
fn a_file_rewritten_while_being_copied_is_never_torn() {
    let w = World::new();
    const SIZE: usize = 6 << 20;
    let p = w.write("big.bin", vec![0u8; SIZE]);
    let mut watch = Watch::start(&w, &[]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // A reader checks DST all along: every state the file had is one
    // byte value repeated (each rewrite truncates), so a mix is a torn copy.
    let reader = {
        let stop = stop.clone();
        let dst = w.dst.join("big.bin");
        std::thread::spawn(move || {
            let mut seen = 0;
            while !stop.load(Ordering::SeqCst) {
                if let Ok(b) = fs::read(&dst) {
                    if let Some(first) = b.first()
                        && let Some(bad) = b.iter().position(|x| x != first)
                    {
                        return Err(format!(
                            "torn copy in DST: byte {first} then {} at {bad} of {}",
                            b[bad],
                            b.len()
                        ));
                    }
                    seen += 1;
                }
            }
            Ok(seen)
        })
    };
    for k in 1..=40u8 {
        fs::write(&p, vec![k; SIZE]).unwrap();
    }
    watch.converged();
    stop.store(true, Ordering::SeqCst);
    let r = reader.join().unwrap();
    match r {
        Ok(seen) => assert!(seen > 0, "the reader never read DST's copy"),
        Err(e) => panic!("{e}\n--- log\n{}", tail(&watch.log(), 30)),
    }
    watch.stop();
}

#[test]
fn changes_during_the_initial_reconcile_are_not_missed() {
    let w = World::new();
    for i in 0..3000 {
        w.write(
            &format!("d{}/s{}/f{i}", i % 30, i % 3),
            format!("initial {i}"),
        );
    }
    let mut watch = Watch::spawn(&w, &[]);
    // At once, while the start-up reconcile runs.
    for d in 0..10 {
        fs::rename(w.src.join(format!("d{d}")), w.src.join(format!("moved{d}"))).unwrap();
    }
    for i in (0..3000).step_by(10) {
        let p = w.src.join(format!("d{}/s{}/f{i}", i % 30, i % 3));
        if p.exists() {
            if i % 20 == 0 {
                fs::remove_file(&p).unwrap();
            } else {
                fs::write(&p, format!("changed {i}")).unwrap();
            }
        }
    }
    for i in 0..300 {
        w.write(&format!("late/l{}/n{i}", i % 7), format!("late {i}"));
    }
    watch.expect_log(READY, START_DEADLINE);
    watch.converged();
    watch.stop();
}

#[test]
fn drift_check_repairs_what_the_os_missed_and_keeps_hand_edits() {
    let w = World::new();
    fs::create_dir_all(w.config_file().parent().unwrap()).unwrap();
    // A drift check every 1.2 s instead of hourly.
    fs::write(w.config_file(), "[settings]\ndrift_check_minutes = 0.02\n").unwrap();
    w.write("a.txt", "linked v1");
    fs::create_dir(w.src.join("sub")).unwrap();
    fs::hard_link(w.src.join("a.txt"), w.src.join("sub/b.txt")).unwrap();
    w.write("x.txt", "x as in SRC");
    w.write("y.txt", "y as in SRC");
    let mut watch = Watch::start(&w, &[]);

    // Written through one name: inotify reports only that name, so
    // sub/b.txt changes with no event at all.
    fs::write(w.src.join("a.txt"), "linked v2, longer").unwrap();
    // Someone edits DST by hand.
    fs::write(w.dst.join("x.txt"), "edited in DST by hand").unwrap();
    fs::remove_file(w.dst.join("y.txt")).unwrap();
    fs::write(w.dst.join("extra.txt"), "added to DST by hand").unwrap();
    watch.converged();
    let kept = versions_by_content(&w);
    for (c, at) in [
        ("edited in DST by hand", "x.txt"),
        ("added to DST by hand", "extra.txt"),
        ("linked v1", "sub/b.txt"),
    ] {
        assert!(
            kept.get(c.as_bytes())
                .is_some_and(|p| p.contains(Path::new(at))),
            "{c:?} is not kept as a version of {at}: {:?}\n--- log\n{}",
            kept.get(c.as_bytes()),
            tail(&watch.log(), 30)
        );
    }
    watch.expect_log(
        "the drift check found what the live watch had missed",
        START_DEADLINE,
    );
    watch.stop();
}

#[test]
fn a_new_folder_renamed_before_its_watch_exists_is_followed() {
    let w = World::new();
    let mut watch = Watch::start(&w, &[]);
    for round in 0..5 {
        let a = format!("a{round}");
        let b = format!("b{round}");
        fs::create_dir(w.src.join(&a)).unwrap();
        w.write(&format!("{a}/f"), "in a");
        fs::rename(w.src.join(&a), w.src.join(&b)).unwrap();
        w.write(&format!("{b}/g"), "in b");
        fs::create_dir(w.src.join(&b).join("c")).unwrap();
        w.write(&format!("{b}/c/h"), "in b/c");
        fs::rename(w.src.join(&b).join("c"), w.src.join(&b).join("d")).unwrap();
        w.write(&format!("{b}/d/i"), "in b/d");
    }
    watch.converged();
    // Later changes inside the renamed folders are still seen.
    for round in 0..5 {
        w.write(
            &format!("b{round}/d/late"),
            "written after everything settled",
        );
        w.write(
            &format!("b{round}/late"),
            "written after everything settled",
        );
    }
    watch.converged();
    watch.stop();
}

#[test]
fn a_mass_deletion_at_start_is_held_until_allowed() {
    let w = World::new();
    make_tree(&w.src, 200, "mass");
    w.sync(&[]).ok();
    let before = files_under(&w.dst);
    for i in 0..7 {
        fs::remove_dir_all(w.src.join(format!("d{i}"))).unwrap();
    }
    let mut watch = Watch::spawn(&w, &[]);
    watch.expect_log("holding", START_DEADLINE);
    assert_eq!(files_under(&w.dst), before, "held deletions touched DST");
    let (_, out) = crate::status::status_until(&w, "the held deletions", |c, o| {
        c == 1 && o.contains("deletions held — confirm to allow")
    });
    assert!(!out.contains("Up to date"), "{out}");
    let (_, v) = crate::status::json(&w);
    let pair = &v["instances"][0]["pairs"][0];
    assert_eq!(
        (&pair["state"], &pair["up_to_date"]),
        (&"error".into(), &false.into()),
        "{v}"
    );
    assert!(
        !watch.log().contains(READY),
        "it said it mirrored while holding deletions"
    );
    watch.signal("TERM");
    assert_eq!(watch.wait_exit().code(), Some(0));

    let watch = Watch::start(&w, &["--allow-mass-delete"]);
    assert_mirrored(&w.src, &w.dst);
    assert_kept(&w, &before, &watch.log());
    watch.stop();
}

#[test]
fn sigterm_during_the_initial_reconcile_stops_cleanly() {
    let w = World::new();
    let big = vec![3u8; 64 << 20];
    for i in 0..6 {
        w.write(&format!("big{i}.bin"), &big);
    }
    let watch = Watch::spawn(&w, &[]);
    // The signal comes while a copy is in flight (a temp file exists).
    let busy = wait_for(START_DEADLINE, || !w.temp_leftovers().is_empty());
    assert!(busy, "no copy was seen in flight\n--- log\n{}", watch.log());
    let log = watch.stop();
    assert!(
        !log.contains(READY),
        "the first pass was not interrupted\n{log}"
    );
}

#[test]
fn dst_removed_while_watching_resumes_when_it_is_back() {
    let w = World::new();
    make_tree(&w.src, 20, "dst-gone");
    let mut watch = Watch::start(&w, &[]);
    fs::remove_dir_all(&w.dst).unwrap();
    watch.expect_log("backup folder", Duration::from_secs(30));
    // Nothing is written where DST was meanwhile.
    w.write("while-gone.txt", "made while DST was gone");
    assert!(
        !w.dst.exists(),
        "DST was re-created by the watcher (it should wait for the drive)"
    );

    fs::create_dir(&w.dst).unwrap();
    watch.converged();
    w.write("after.txt", "live again");
    watch.converged();
    watch.stop();
}

#[test]
fn dst_replaced_by_a_new_folder_is_followed() {
    let w = World::new();
    make_tree(&w.src, 20, "dst-replaced");
    let mut watch = Watch::start(&w, &[]);
    // The drive unmounted and mounted again at once, or `rm -rf dst; mkdir dst`:
    // DST is a new, empty folder.
    fs::remove_dir_all(&w.dst).unwrap();
    fs::create_dir(&w.dst).unwrap();
    w.write("after.txt", "written after DST was replaced");
    watch.converged();
    watch.stop();
}

#[test]
fn source_replaced_by_a_new_folder_is_followed() {
    let w = World::new();
    make_tree(&w.src, 20, "first src");
    let mut watch = Watch::start(&w, &[]);
    let before = files_under(&w.dst);
    fs::remove_dir_all(&w.src).unwrap();
    fs::create_dir(&w.src).unwrap();
    w.write("new.txt", "in the new SRC");
    watch.converged();
    // Live on the new folder.
    w.write("later/x.txt", "written later in the new SRC");
    watch.converged();
    assert_kept(&w, &before, &watch.log());
    watch.stop();
}

#[test]
fn every_configured_pair_is_watched_without_args() {
    let w = World::new();
    let (src2, dst2) = (w.path("src2"), w.path("dst2"));
    fs::create_dir(&src2).unwrap();
    w.write("one.txt", "pair one");
    fs::write(src2.join("two.txt"), "pair two").unwrap();
    fs::create_dir_all(w.config_file().parent().unwrap()).unwrap();
    let toml = format!(
        "[[pair]]\nsrc = {:?}\ndst = {:?}\n\n[[pair]]\nsrc = {:?}\ndst = {:?}\n",
        w.src, w.dst, src2, dst2
    );
    fs::write(w.config_file(), toml).unwrap();
    fs::create_dir_all(&w.dst).unwrap();
    fs::create_dir_all(&dst2).unwrap();
    let mut c = w.cmd();
    c.args(["watch", "-v"]);
    let mut watch = Watch::spawn_cmd(&w, c);
    let both = wait_for(START_DEADLINE, || watch.log().matches(READY).count() == 2);
    assert!(
        both,
        "not both pairs said mirrored\n--- log\n{}",
        watch.log()
    );
    w.write("a/new.txt", "live in pair one");
    fs::write(src2.join("new2.txt"), "live in pair two").unwrap();
    watch.converged();
    let ok = wait_for(CONVERGE_DEADLINE, || {
        mirror_diff_except(&src2, &dst2, &|_| false).is_empty()
    });
    assert!(
        ok,
        "pair two did not converge\n{}",
        mirror_diff_except(&src2, &dst2, &|_| false).join("\n")
    );
    watch.stop();
}

#[test]
fn unreadable_entries_are_retried_until_they_can_be_read() {
    let w = World::new();
    w.write("ok.txt", "readable");
    w.write("locked/inner/a.txt", "in a folder nobody can read yet");
    w.write("locked/b.txt", "also inside");
    w.write("secret.txt", "a file nobody can read yet");
    chown_nobody(w.dir.path());
    // Root reads everything: the watcher runs as nobody, so permissions count.
    chmod(&w.src.join("locked"), 0o000);
    chmod(&w.src.join("secret.txt"), 0o000);
    let mut c = as_nobody(&w);
    c.arg("watch").arg(&w.src).arg(&w.dst).arg("-v");
    let mut watch = Watch::spawn_cmd(&w, c);
    watch.expect_log("permission denied", START_DEADLINE);
    let unreadable = |p: &Path| p.starts_with("locked") || p == Path::new("secret.txt");
    watch.converged_except(CONVERGE_DEADLINE, &unreadable);
    assert!(
        watch.log().contains("locked"),
        "the log does not name the folder\n{}",
        watch.log()
    );

    // Fixed by the user: the retries (or the chmod events) bring them in.
    chmod(&w.src.join("locked"), 0o755);
    chmod(&w.src.join("secret.txt"), 0o644);
    watch.converged();
    // And the folder is watched live from then on.
    w.write("locked/inner/late.txt", "written after the fix");
    chown_nobody(&w.src.join("locked"));
    watch.converged();
    watch.signal("TERM");
    assert_eq!(watch.wait_exit().code(), Some(0));
}

/// Seconds since midnight of each log-file line (RFC 3339 UTC stamp first)
/// that contains `needle`.
fn log_times(w: &World, needle: &str) -> Vec<f64> {
    let text = fs::read_to_string(w.log_file()).unwrap_or_default();
    text.lines()
        .filter(|l| l.contains(needle))
        .filter_map(|l| {
            let stamp = l.split_whitespace().next()?;
            let time = stamp.split('T').nth(1)?.trim_end_matches('Z');
            let mut parts = time.split(':');
            let h: f64 = parts.next()?.parse().ok()?;
            let m: f64 = parts.next()?.parse().ok()?;
            let s: f64 = parts.next()?.parse().ok()?;
            Some(h * 3600.0 + m * 60.0 + s)
        })
        .collect()
}

#[test]
fn a_failing_path_is_retried_with_growing_back_off() {
    let w = World::new();
    w.write("ok.txt", "readable");
    w.write("secret.txt", "never readable");
    chown_nobody(w.dir.path());
    chmod(&w.src.join("secret.txt"), 0o000);
    let mut c = as_nobody(&w);
    c.arg("watch").arg(&w.src).arg(&w.dst).arg("-v");
    let mut watch = Watch::spawn_cmd(&w, c);
    // Back-off of 1 s doubling: attempts at about 0, 1, 3, 7, 15 s.
    let needle = "secret.txt: cannot read";
    let five = wait_for(Duration::from_secs(90), || log_times(&w, needle).len() >= 5);
    assert!(five, "not retried\n--- log\n{}", watch.log());
    let t = log_times(&w, needle);
    let gaps: Vec<f64> = t
        .windows(2)
        .map(|p| (p[1] - p[0] + 86_400.0) % 86_400.0)
        .collect();
    // The program's own timestamps, and only a lower bound: a slow machine
    // makes the gaps longer, never shorter.
    assert!(
        gaps[3] >= 3.0,
        "retries do not back off: gaps between attempts {gaps:.2?} s\n--- log\n{}",
        tail(&watch.log(), 20)
    );
    watch.signal("TERM");
    assert_eq!(watch.wait_exit().code(), Some(0));
}

#[test]
fn moving_files_into_a_new_folder_renames_them_in_dst() {
    let w = World::new();
    for n in ["a", "b", "c", "d"] {
        w.write(&format!("{n}.txt"), format!("content {n}"));
    }
    make_tree(&w.src.join("tree"), 40, "tree");
    let mut watch = Watch::start(&w, &[]);
    let inodes: Vec<u64> = ["a.txt", "b.txt", "c.txt", "d.txt", "tree"]
        .iter()
        .map(|n| ino(&w.dst.join(n)))
        .collect();

    // The watcher busy with a big copy: what follows reaches it as one batch
    // (as it does on any loaded machine), the new folder included.
    let big = w.write("big.bin", vec![1u8; 256 << 20]);
    let busy = wait_for(START_DEADLINE, || !w.temp_leftovers().is_empty());
    assert!(busy, "the big copy was never seen in flight");
    // `mkdir archive && mv *.txt tree archive/`
    fs::create_dir(w.src.join("archive")).unwrap();
    // Only once notify watches it are the moves into it reported as renames
    // (before, they look like moves out of SRC, which no watcher can pair).
    watch.wait_watched(&w.src.join("archive"));
    for n in ["a.txt", "b.txt", "c.txt", "d.txt", "tree"] {
        fs::rename(w.src.join(n), w.src.join("archive").join(n)).unwrap();
    }
    watch.converged();
    fs::remove_file(big).unwrap();
    watch.converged();
    let now: Vec<u64> = ["a.txt", "b.txt", "c.txt", "d.txt", "tree"]
        .iter()
        .map(|n| ino(&w.dst.join("archive").join(n)))
        .collect();
    // Deleting big.bin is the one change that keeps a version.
    let versions: BTreeSet<PathBuf> = version_entries(&w)
        .into_iter()
        .filter(|p| p.components().count() > 1 && !p.ends_with("big.bin"))
        .collect();
    assert!(
        now == inodes && versions.is_empty(),
        "moves into a new folder were copies in DST (inodes before {inodes:?}, after {now:?}), {} version entries kept\n--- log\n{}",
        versions.len(),
        tail(&watch.log(), 20)
    );
    watch.stop();
}

#[test]
fn a_symlinked_relative_src_is_watched() {
    let w = World::new();
    w.write("a.txt", "through a link");
    symlink("src", w.path("src-link")).unwrap();
    let mut c = w.cmd();
    c.current_dir(w.path(""))
        .args(["watch", "src-link", "dst", "-v"]);
    let mut watch = Watch::spawn_cmd(&w, c);
    watch.expect_log(READY, START_DEADLINE);
    w.write("sub/b.txt", "live through the link");
    fs::rename(w.src.join("a.txt"), w.src.join("c.txt")).unwrap();
    watch.converged();
    watch.stop();
}

#[test]
fn a_pair_failing_for_too_long_raises_an_alert() {
    let w = World::new();
    fs::create_dir_all(w.config_file().parent().unwrap()).unwrap();
    // Alert after 3.6 s instead of 24 h.
    fs::write(w.config_file(), "[settings]\nalert_after_hours = 0.001\n").unwrap();
    w.write("ok.txt", "readable");
    w.write("secret.txt", "never readable");
    chown_nobody(w.dir.path());
    chmod(&w.src.join("secret.txt"), 0o000);
    let mut c = as_nobody(&w);
    c.arg("watch").arg(&w.src).arg(&w.dst).arg("-v");
    let mut watch = Watch::spawn_cmd(&w, c);
    watch.expect_log("no complete backup", Duration::from_secs(60));
    let log = watch.log();
    let line = log
        .lines()
        .find(|l| l.contains("no complete backup"))
        .unwrap()
        .to_string();
    // The alert must say how long, truthfully: not "more than 0 hours".
    assert!(
        !line.contains(" 0 hours"),
        "the alert misstates the time: {line}"
    );
    watch.signal("TERM");
    assert_eq!(watch.wait_exit().code(), Some(0));
}

#[test]
fn stopping_while_the_source_is_missing_exits_0() {
    let w = World::new();
    w.write("a.txt", "a");
    let mut watch = Watch::start(&w, &[]);
    fs::remove_dir_all(&w.src).unwrap();
    watch.expect_log("does not exist", Duration::from_secs(30));
    watch.signal("TERM");
    let st = watch.wait_exit();
    assert_eq!(st.code(), Some(0), "{st}\n--- log\n{}", watch.log());
    assert!(w.temp_leftovers().is_empty());
    // The lock is free: a sync with SRC back works.
    w.write("a.txt", "a");
    w.sync(&[]).ok();
}

#[test]
fn a_killed_watch_leaves_nothing_behind_after_the_next_start() {
    let w = World::new();
    let big = vec![5u8; 64 << 20];
    for i in 0..6 {
        w.write(&format!("big{i}.bin"), &big);
    }
    // Power cut in the middle of a copy: no chance to clean up. The kill
    // must land while a temp file exists (else nothing is tested): tried
    // again from the start if it fell between two copies.
    let mut cut = false;
    for _ in 0..5 {
        let _ = fs::remove_dir_all(&w.dst);
        let mut watch = Watch::spawn(&w, &[]);
        let in_flight = wait_for(START_DEADLINE, || !w.temp_leftovers().is_empty());
        assert!(in_flight, "no copy was seen in flight\n{}", watch.log());
        watch.signal("KILL");
        watch.wait_exit();
        if !w.temp_leftovers().is_empty() {
            cut = true;
            break;
        }
    }
    assert!(cut, "the kill never landed during a copy");
    // Rule 2: whatever DST holds is complete.
    for (rel, bytes) in files_under(&w.dst) {
        assert_eq!(bytes, big, "{} is torn after the kill", rel.display());
    }
    let watch = Watch::start(&w, &[]);
    assert_mirrored(&w.src, &w.dst);
    assert!(
        w.temp_leftovers().is_empty(),
        "temp files from the killed run are still there: {:?}",
        w.temp_leftovers()
    );
    watch.stop();
}

/// The OS watch limit reached: the pair scans periodically instead of
/// watching live, and the log says why and how to raise the limit. The
/// limit is lowered only inside a user namespace of the test's own (Linux
/// counts inotify watches per user namespace), so nothing else running on
/// the machine is affected.
///
/// Where a user namespace cannot be made (some container set-ups), the
/// same limit is put on the watcher by its test hook
/// `MIRRORTRAY_TEST_MAX_WATCHES` (the (N+1)th watch fails as the kernel's
/// limit does): everything after the failed watch is the same code.
#[test]
fn watch_limit_falls_back_to_periodic_scans_and_says_how_to_raise_it() {
    let probe = Command::new("unshare")
        .args(["--user", "--map-root-user", "sh", "-c"])
        .arg("echo 4 > /proc/sys/user/max_inotify_watches")
        .status();
    let own_namespace = matches!(probe, Ok(s) if s.success());
    let w = World::new();
    make_tree(&w.src, 60, "limit");
    let cfg = w.path("limit.toml");
    fs::write(&cfg, "[settings]\npoll_seconds = 1\n").unwrap();
    let args = [
        bin().into_os_string(),
        "watch".into(),
        w.src.clone().into_os_string(),
        w.dst.clone().into_os_string(),
        "-v".into(),
        "--config".into(),
        cfg.into_os_string(),
    ];
    let mut c = if own_namespace {
        let mut c = Command::new("unshare");
        c.args(["--user", "--map-root-user", "sh", "-c"])
            .arg("echo 4 > /proc/sys/user/max_inotify_watches && exec \"$0\" \"$@\"")
            .args(&args);
        c
    } else {
        eprintln!("note: no user namespace here; the watch limit is the test hook's");
        let mut c = Command::new(&args[0]);
        c.args(&args[1..]).env("MIRRORTRAY_TEST_MAX_WATCHES", "4");
        c
    };
    w.isolate(&mut c);
    let mut watch = Watch::spawn_cmd(&w, c);
    watch.expect_log("mirrored; scanning every 1 s", START_DEADLINE);
    let log = watch.log();
    assert!(
        log.contains("too many folders to watch")
            && log.contains("sysctl fs.inotify.max_user_watches="),
        "the log does not say why and how to raise the limit\n{log}"
    );
    watch.converged();
    // Not live: `status` says how it works instead (exit 1, degraded).
    let (_, out) = crate::status::status_until(&w, "the periodic scans", |c, o| {
        c == 1 && o.contains("Scanning every 1 s (watch limit reached)")
    });
    assert!(!out.contains("Up to date"), "{out}");
    let (_, v) = crate::status::json(&w);
    assert_eq!(v["instances"][0]["pairs"][0]["state"], "degraded", "{v}");
    // Changes still arrive, by the periodic scans.
    fs::write(w.src.join("d3/new.txt"), "made while scanning").unwrap();
    fs::remove_file(w.src.join("d0/e0/f0.txt")).unwrap();
    watch.converged();
    watch.stop();
}

// ---------------------------------------------------------------- contract gaps

/// Seconds since the epoch of a wall-clock moment (for log timestamps).
fn epoch_secs(t: std::time::SystemTime) -> f64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The time of each log-file line containing `needle`, as seconds since
/// the epoch (the log's RFC 3339 UTC stamps).
fn log_stamps(w: &World, needle: &str) -> Vec<f64> {
    let text = fs::read_to_string(w.log_file()).unwrap_or_default();
    text.lines()
        .filter(|l| l.contains(needle))
        .filter_map(|l| l.split_whitespace().next()?.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_nanosecond() as f64 / 1e9)
        .collect()
}

/// A change reaches DST in well under a second: the median delay between
/// a file's write and the log line of its copy (the program's own clock).
/// Loose on purpose (it never flakes), but it exists.
#[test]
fn median_change_to_copy_delay_is_under_a_second() {
    let w = World::new();
    let watch = Watch::start(&w, &["-v"]);
    let mut delays = Vec::new();
    for i in 0..30 {
        let name = format!("f{i}.txt");
        let written = epoch_secs(std::time::SystemTime::now());
        w.write(&name, format!("change {i}"));
        // The copy's log line follows its rename into place: wait for both.
        let line = format!("copied {}", w.dst.join(&name).display());
        let copied = wait_for(CONVERGE_DEADLINE, || {
            w.dst.join(&name).exists() && !log_stamps(&w, &line).is_empty()
        });
        assert!(copied, "{name} never copied\n{}", watch.log_tail());
        let at = log_stamps(&w, &line);
        assert_eq!(at.len(), 1, "one copy of {name}: {at:?}");
        delays.push(at[0] - written);
    }
    delays.sort_by(|a, b| a.total_cmp(b));
    let median = delays[delays.len() / 2];
    assert!(
        median < 1.0,
        "median change-to-copy delay {median:.3} s (all: {delays:.3?})"
    );
    watch.stop();
}

/// Watching never changes SRC: contents, modes, times (ctime too: no
/// chmod, utime or write ever touched it), and nothing added or removed.
#[test]
fn watching_leaves_the_source_untouched() {
    let w = World::new();
    make_tree(&w.src, 200, "untouched");
    let stamp = |root: &Path| -> BTreeMap<PathBuf, (u32, i64, i64, i64, i64, u64)> {
        walkdir::WalkDir::new(root)
            .into_iter()
            .flatten()
            .map(|e| {
                let m = fs::symlink_metadata(e.path()).unwrap();
                (
                    e.path().to_path_buf(),
                    (
                        m.mode(),
                        m.mtime(),
                        m.mtime_nsec(),
                        m.ctime(),
                        m.ctime_nsec(),
                        m.size(),
                    ),
                )
            })
            .collect()
    };
    let before = (stamp(&w.src), snapshot_live(&w.src));
    let mut watch = Watch::start(&w, &[]);
    watch.converged();
    // A full pass and live passes over the same tree.
    fs::write(w.dst.join("d0/e0/f0.txt"), "edited in DST").unwrap();
    watch.stop();
    let mut watch = Watch::start(&w, &[]);
    watch.converged();
    watch.stop();
    assert_eq!(stamp(&w.src), before.0, "SRC's metadata changed");
    assert_eq!(snapshot_live(&w.src), before.1, "SRC's content changed");
}

/// A source on its own file system, unmounted while watching: an empty
/// folder on another device now, which is "unmounted", never "everything
/// was deleted"; DST is left alone, and the pair resumes when it is back.
#[test]
fn a_source_unmounted_while_watching_is_missing_not_deleted() {
    let w = World::new();
    let Some(m) = crate::safety::mount(&["-t", "tmpfs", "-o", "size=8m", "tmpfs"], &w.src) else {
        return;
    };
    make_tree(&w.src, 40, "mounted");
    let mut watch = Watch::start(&w, &[]);
    let dst_before = snapshot_live(&w.dst);
    let hidden = w.path("src-content");
    let cp = Command::new("cp")
        .arg("-a")
        .arg(&w.src)
        .arg(&hidden)
        .status()
        .unwrap();
    assert!(cp.success());
    drop(m);
    watch.expect_log("looks unmounted", Duration::from_secs(30));
    let d = diff(&dst_before, &snapshot_live(&w.dst));
    assert!(
        d.is_empty(),
        "DST changed while SRC was unmounted:\n{}",
        d.join("\n")
    );
    // Mounted again (here: the same content on a new tmpfs).
    let Some(_m) = crate::safety::mount(&["-t", "tmpfs", "-o", "size=8m", "tmpfs"], &w.src) else {
        return;
    };
    let cp = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", hidden.display()))
        .arg(&w.src)
        .status()
        .unwrap();
    assert!(cp.success());
    w.write("after.txt", "written once mounted again");
    watch.converged();
    watch.stop();
}

/// A source that becomes unreadable while watching (run as nobody, so
/// permissions count): "Source unreadable", DST left alone, and the pair
/// resumes when it can be read again.
#[test]
fn a_source_unreadable_while_watching_pauses_and_resumes() {
    let w = World::new();
    make_tree(&w.src, 30, "readable");
    chown_nobody(w.dir.path());
    let mut c = as_nobody(&w);
    c.arg("watch").arg(&w.src).arg(&w.dst).arg("-v");
    let mut watch = Watch::spawn_cmd(&w, c);
    watch.expect_log(READY, START_DEADLINE);
    let dst_before = snapshot_live(&w.dst);
    chmod(&w.src, 0o000);
    watch.expect_log("cannot read source folder", Duration::from_secs(30));
    let d = diff(&dst_before, &snapshot_live(&w.dst));
    assert!(
        d.is_empty(),
        "DST changed while SRC was unreadable:\n{}",
        d.join("\n")
    );
    chmod(&w.src, 0o755);
    w.write("after.txt", "readable again");
    chown_nobody(&w.src.join("after.txt"));
    watch.converged();
    watch.stop();
}

/// Files that vanish between their event and their copy are not errors.
#[test]
fn paths_vanishing_before_their_copy_are_not_errors() {
    let w = World::new();
    let mut watch = Watch::start(&w, &[]);
    for i in 0..300 {
        let p = w.write(&format!("d{}/short-lived-{i}", i % 5), vec![b'x'; 4096]);
        if i % 3 == 0 {
            fs::remove_dir_all(p.parent().unwrap()).unwrap();
        } else {
            fs::remove_file(&p).unwrap();
        }
    }
    w.write("last.txt", "done");
    watch.converged();
    let log = watch.stop();
    assert!(
        !log.contains("[ERROR]"),
        "errors for vanished paths:\n{}",
        tail(&log, 30)
    );
}

/// The backup disk full while watching: the file is named with the reason,
/// retried, and the error goes away once it fits (here: the big file is
/// removed from SRC).
#[test]
fn a_full_backup_disk_while_watching_names_the_file_and_recovers() {
    let w = World::new();
    let Some(_m) = crate::safety::mount(&["-t", "tmpfs", "-o", "size=2m", "tmpfs"], &w.dst) else {
        return;
    };
    w.write("small.txt", "fits");
    let mut watch = Watch::start(&w, &[]);
    w.write("big.bin", vec![9u8; 4 << 20]);
    watch.expect_log("backup disk full — ", Duration::from_secs(30));
    let log = watch.log();
    let line = log
        .lines()
        .find(|l| l.contains("backup disk full"))
        .unwrap_or_default();
    assert!(
        line.contains("big.bin"),
        "the error does not name the file: {line}"
    );
    // What to make room for: what is free, and what the file needs.
    assert!(
        line.contains(" free, needs 4.2 MB"),
        "the error does not say how much room is missing: {line}"
    );
    fs::remove_file(w.src.join("big.bin")).unwrap();
    w.write("after.txt", "fits again");
    watch.converged();
    watch.stop();
}

/// A name the backup's file system refuses (longer than 255 bytes; a
/// source on exFAT can hold it) fails with the path and the reason, is not
/// retried as if it could pass, and does not stop the other files.
#[test]
fn a_name_too_long_for_the_backup_fails_with_the_path() {
    let w = World::new();
    let img = w.path("exfat.img");
    File::create(&img).unwrap().set_len(32 << 20).unwrap();
    let mk = Command::new("mkfs.exfat").arg(&img).output().unwrap();
    assert!(
        mk.status.success(),
        "mkfs.exfat: {}",
        String::from_utf8_lossy(&mk.stderr)
    );
    fs::create_dir_all(&w.src).unwrap();
    let Some(_m) = crate::safety::mount(
        &["-t", "exfat-fuse", "-o", "loop", &img.to_string_lossy()],
        &w.src,
    ) else {
        return;
    };
    let mut watch = Watch::start(&w, &[]);
    let long = "é".repeat(200); // 400 bytes: fine on exFAT, too long on ext4
    w.write(&long, "long name");
    w.write("ok.txt", "fine");
    watch.expect_log(
        "the name is too long for this file system",
        Duration::from_secs(30),
    );
    let log = watch.log();
    assert!(
        log.contains(&long),
        "the error does not name the file:\n{}",
        tail(&log, 10)
    );
    let ok = wait_for(CONVERGE_DEADLINE, || w.dst.join("ok.txt").exists());
    assert!(ok, "the other file was not copied\n{}", tail(&log, 10));
    // The long name stays failing (a sync would exit 1): stopped by hand.
    watch.signal("TERM");
    assert_eq!(watch.wait_exit().code(), Some(0));
    assert!(w.temp_leftovers().is_empty(), "{:?}", w.temp_leftovers());
}

/// A backup drive pulled while watching (`umount -l`, as a desktop does):
/// its mount point is now an empty folder on the system disk, and nothing
/// is written there; the pair waits and resumes when the drive is back.
#[test]
fn a_backup_drive_unmounted_while_watching_is_missing_never_refilled() {
    let w = World::new();
    make_tree(&w.src, 30, "drive");
    let Some(m) = crate::cli_sync::mount_image(&w, &[], 64, &w.dst) else {
        return;
    };
    let img = crate::cli_sync::image_for(&w, &w.dst);
    let loop_opts = ["-o", "loop", &img.to_string_lossy()];
    // The drive's own lost+found is the file system's, not the mirror's.
    let fs_own = |p: &Path| p.starts_with("lost+found");
    let mut watch = Watch::start(&w, &[]);
    watch.converged_except(CONVERGE_DEADLINE, &fs_own);
    let lazy = Command::new("umount")
        .arg("-l")
        .arg(&w.dst)
        .status()
        .unwrap();
    assert!(lazy.success());
    std::mem::forget(m);
    w.write("while-away.txt", "made while the drive was away");
    watch.expect_log(
        "its drive looks unplugged or unmounted",
        Duration::from_secs(30),
    );
    // `mirrortray status` says so, as a problem of the pair (exit 1).
    let (_, out) = crate::status::status_until(&w, "the missing drive", |c, o| {
        c == 1 && o.contains("Backup drive missing")
    });
    assert!(out.contains(&w.dst.display().to_string()), "{out}");
    let (_, v) = crate::status::json(&w);
    assert_eq!(v["instances"][0]["pairs"][0]["state"], "error", "{v}");
    let on_system_disk: Vec<_> = fs::read_dir(&w.dst).unwrap().flatten().collect();
    assert!(
        on_system_disk.is_empty(),
        "written into the empty mount point: {:?}\n{}",
        on_system_disk
            .iter()
            .map(|e| e.file_name())
            .collect::<Vec<_>>(),
        watch.log_tail()
    );
    // The drive is back: the pair resumes by itself.
    let Some(_m) = crate::safety::mount(&loop_opts, &w.dst) else {
        return;
    };
    watch.converged_except(CONVERGE_DEADLINE, &fs_own);
    crate::status::status_until(&w, "up to date again", |c, o| {
        c == 0 && o.contains("Up to date")
    });
    watch.stop();
}

/// A folder of the source bind-mounted inside itself while watching: the
/// loop is neither watched nor copied, it is said once, and changes around
/// it are mirrored.
#[test]
fn a_folder_mounted_inside_itself_is_not_followed_while_watching() {
    let w = World::new();
    w.write("a/f.txt", "f");
    let Some(_bind) = crate::cli_sync::Bind::new(&w.src.join("a"), &w.src.join("a/again")) else {
        return skip("mount --bind is not permitted here");
    };
    let mut watch = Watch::spawn(&w, &[]);
    watch.expect_log(READY, START_DEADLINE);
    w.write("a/g.txt", "g");
    fs::create_dir(w.src.join("a/h")).unwrap();
    w.write("a/h/z.txt", "z");
    let copied = wait_for(Duration::from_secs(30), || {
        fs::read(w.dst.join("a/h/z.txt")).is_ok_and(|b| b == b"z")
            && fs::read(w.dst.join("a/g.txt")).is_ok_and(|b| b == b"g")
    });
    assert!(
        copied,
        "changes beside the loop not mirrored\n{}",
        watch.log()
    );
    let log = watch.stop();
    assert!(
        !w.dst.join("a/again").exists(),
        "the loop was copied into the backup\n{log}"
    );
    assert_eq!(
        log.matches("mounted inside itself").count(),
        1,
        "the loop is not said exactly once:\n{log}"
    );
}

/// 2,000 quick rewrites of one file (`for i in $(seq 2000); do echo "edit
/// $i" > hot.txt; done`): what the file held before the burst is kept as a
/// version, and the file is copied when the burst is over, not at each of
/// its 2,000 closes (681 version folders before, 418 of them empty).
#[test]
fn quick_rewrites_keep_what_was_there_and_are_copied_once_quiet() {
    let w = World::new();
    w.write("hot.txt", "before the burst");
    let hour_ago =
        filetime::FileTime::from_unix_time(filetime::FileTime::now().unix_seconds() - 3600, 0);
    filetime::set_file_mtime(w.src.join("hot.txt"), hour_ago).unwrap();
    let mut watch = Watch::start(&w, &[]);
    for i in 1..=2000 {
        fs::write(w.src.join("hot.txt"), format!("edit {i}\n")).unwrap();
    }
    watch.converged();
    watch.stop();
    let kept: Vec<Vec<u8>> = walkdir::WalkDir::new(w.dst.join(".mirrortray/versions"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.file_name() == "hot.txt")
        .map(|e| fs::read(e.path()).unwrap())
        .collect();
    assert!(
        kept.iter().any(|c| c == b"before the burst"),
        "what the file held for an hour was not kept: {kept:?}"
    );
    // The first closes are copied at once, then it waits for quiet (and is
    // copied at least every 10 s): a few versions, not hundreds.
    assert!(kept.len() < 10, "{} versions: {kept:?}", kept.len());
    assert_eq!(fs::read(w.dst.join("hot.txt")).unwrap(), b"edit 2000\n");
}

/// The temporary files programs make and remove by themselves —
/// LibreOffice's lock, vim's swap, a browser's download in progress,
/// rsync's temp names — never reach the backup or its versions; the files
/// they were for do (issue: versions full of junk).
#[test]
fn temporary_files_of_well_known_programs_leave_nothing_behind() {
    let w = World::new();
    w.write("report.odt", "report, first draft");
    let mut watch = Watch::start(&w, &[]);
    // The document opened in LibreOffice and in vim, a download started.
    let lock = w.write(".~lock.report.odt#", "Me,me,host,02.12.2026 14:00,file:///");
    let swap = w.write(".notes.txt.swp", "vim swap, 1");
    w.write(".notes.txt.swp", "vim swap, 2");
    let part = w.write("Downloads/movie.mkv.part", vec![7u8; 200_000]);
    // Saved meanwhile (written to a temp name, renamed over: an atomic save).
    w.write(".goutputstream-ABC123", "report, second draft");
    fs::rename(
        w.src.join(".goutputstream-ABC123"),
        w.src.join("report.odt"),
    )
    .unwrap();
    w.write("notes.txt", "notes");
    let temporary = |p: &Path| {
        let n = p.file_name().unwrap_or_default().to_string_lossy();
        n.starts_with(".~lock.") || n.ends_with(".swp") || n.ends_with(".part")
    };
    watch.converged_except(CONVERGE_DEADLINE, &temporary);
    for t in [&lock, &swap, &part] {
        let rel = t.strip_prefix(&w.src).unwrap();
        assert!(
            !w.dst.join(rel).exists(),
            "{} reached the backup",
            rel.display()
        );
    }
    // Closed: the lock and swap go, the download gets its name.
    fs::remove_file(&lock).unwrap();
    fs::remove_file(&swap).unwrap();
    fs::rename(&part, w.src.join("Downloads/movie.mkv")).unwrap();
    // A folder copied in with rsync (temp names `.x.jpg.AbC123`, renamed).
    let outside = w.path("camera");
    for i in 0..20 {
        let p = outside.join(format!("img{i:02}.jpg"));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, vec![i as u8; 50_000]).unwrap();
    }
    let st = Command::new("rsync")
        .arg("-a")
        .arg(format!("{}/", outside.display()))
        .arg(w.src.join("Photos"))
        .status()
        .unwrap();
    assert!(st.success(), "rsync failed");
    watch.converged();
    // The one version is what the save replaced: no junk.
    assert_eq!(
        w.all_version_contents(),
        vec![b"report, first draft".to_vec()],
        "\n{}",
        watch.log_tail()
    );
    watch.stop();
}
