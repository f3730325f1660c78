//! `mirrortray offsite`: snapshots of a pair's backup folder in a restic
//! repository, with real parts only: a local repository and a REST server
//! (`rclone serve restic` on 127.0.0.1), and stock `restic` (Debian's) to
//! read what mirrortray wrote — `snapshots`, `check --read-data` and
//! `restore latest`, whose tree must equal the mirror (bytes, ns mtimes,
//! modes, symlinks). A second push with nothing changed gives a snapshot of
//! the same tree, having read no file again; a wrong password, a missing
//! repository, a server that is down, a full disk and a link cut in the
//! middle of an upload each give one sentence naming the repository, and
//! exit 2 — and what a failed push leaves, restic accepts and the next push
//! completes. SFTP goes to a real sshd on a loopback port; the keep policy
//! is checked over days of pushes dated by the test.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use filetime::FileTime;

use crate::support::sshd::{SshServer, listening};
use crate::support::*;

const PASSWORD: &str = "correct horse battery staple";

fn set_mtime(p: &Path, sec: i64, nsec: u32) {
    let t = FileTime::from_unix_time(sec, nsec);
    filetime::set_symlink_file_times(p, t, t).unwrap();
}

/// SRC with what a mirror must keep: bytes (an empty file, a larger one),
/// modes, times to the nanosecond, a symlink, an empty folder, and a folder
/// called `.mirrortray` deeper down (only DST's own is left out).
fn sample_tree(w: &World) {
    w.write("a.txt", "alpha\n");
    w.write("empty", "");
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    w.write("docs/big.bin", &big);
    w.write("docs/deep/note.md", "# note\n");
    w.write(
        "docs/deep/.mirrortray/mine.txt",
        "a user's own folder of that name\n",
    );
    let script = w.write("bin/run.sh", "#!/bin/sh\necho hi\n");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o750)).unwrap();
    let private = w.write("private.txt", "secret\n");
    fs::set_permissions(&private, fs::Permissions::from_mode(0o600)).unwrap();
    fs::create_dir_all(w.src.join("empty-dir")).unwrap();
    symlink("docs/deep/note.md", w.src.join("link")).unwrap();
    symlink("/nowhere/at/all", w.src.join("docs/dangling")).unwrap();
    // Times last, deepest first, so that no later write changes them.
    let mut n = 0u32;
    let mut paths: Vec<PathBuf> = walkdir::WalkDir::new(&w.src)
        .min_depth(1)
        .into_iter()
        .map(|e| e.unwrap().path().to_path_buf())
        .collect();
    paths.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in paths {
        n += 1;
        set_mtime(&p, 1_700_000_000 + i64::from(n) * 1000, 123_456_789 + n);
    }
}

/// Writes the config: one pair SRC -> DST with an offsite copy.
fn configure(w: &World, repository: &str, password_file: &Path, extra: &str) {
    let text = format!(
        "[[pair]]\nsrc = '{}'\ndst = '{}'\noffsite = {{ repository = '{}', password_file = '{}'{extra} }}\n",
        w.src.display(),
        w.dst.display(),
        repository,
        password_file.display()
    );
    fs::create_dir_all(w.config_file().parent().unwrap()).unwrap();
    fs::write(w.config_file(), text).unwrap();
}

/// The sample tree mirrored, with a local repository (`repo` in the
/// world) configured for the pair (`extra`: more offsite settings, each
/// after a comma) and made: the world, the password file, the repository.
fn mirrored_with_repo(extra: &str) -> (World, PathBuf, String) {
    let w = World::new();
    sample_tree(&w);
    w.sync(&[]).ok();
    let pw = password_file(&w);
    let repo = w.path("repo").to_str().unwrap().to_string();
    configure(&w, &repo, &pw, extra);
    w.run(["offsite", "init"]).ok();
    (w, pw, repo)
}

fn password_file(w: &World) -> PathBuf {
    let p = w.path("password");
    fs::write(&p, format!("{PASSWORD}\n")).unwrap();
    p
}

/// Stock restic on `repo`, with the password file and no cache.
fn restic(w: &World, repo: &str, pw: &Path, args: &[&str]) -> Run {
    restic_with(w, &[], repo, pw, args)
}

/// [`restic`] with global options (`-o sftp.command=...`) first.
fn restic_with(w: &World, opts: &[String], repo: &str, pw: &Path, args: &[&str]) -> Run {
    let out = Command::new("restic")
        .args(opts)
        .arg("-r")
        .arg(repo)
        .arg("--password-file")
        .arg(pw)
        .arg("--no-cache")
        .args(args)
        .env("HOME", &w.home)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run::from(out)
}

/// restic's snapshots of `repo`: (id, tree, paths, tags).
fn restic_snapshots(w: &World, repo: &str, pw: &Path) -> Vec<serde_json::Value> {
    restic_snapshots_with(w, &[], repo, pw)
}

fn restic_snapshots_with(
    w: &World,
    opts: &[String],
    repo: &str,
    pw: &Path,
) -> Vec<serde_json::Value> {
    let r = restic_with(w, opts, repo, pw, &["snapshots", "--json"]);
    r.ok();
    serde_json::from_str::<Vec<serde_json::Value>>(&r.stdout).unwrap()
}

/// Where `restic restore --target X` puts DST: X/<DST's absolute path>.
fn restored_dst(target: &Path, dst: &Path) -> PathBuf {
    let real = fs::canonicalize(dst).unwrap();
    target.join(real.strip_prefix("/").unwrap())
}

#[track_caller]
fn assert_same_tree(want: &Path, got: &Path) {
    let d = tree::diff(&snapshot(want), &snapshot(got));
    assert!(
        d.is_empty(),
        "{} does not equal {}:\n{}",
        got.display(),
        want.display(),
        d.join("\n")
    );
}

/// DST's marker that nothing changed since the last snapshot.
fn clean_mark(w: &World) -> PathBuf {
    w.dst.join(".mirrortray/offsite-clean")
}

/// What stock restic must find in a repository mirrortray pushed DST to:
/// one more snapshot, a check that reads every byte, and a restore equal
/// to the mirror without its `.mirrortray/`.
fn restic_reads_it(w: &World, repo: &str, pw: &Path, snapshots: usize, restore_into: &str) {
    restic_reads_it_with(w, &[], repo, pw, snapshots, restore_into)
}

fn restic_reads_it_with(
    w: &World,
    opts: &[String],
    repo: &str,
    pw: &Path,
    snapshots: usize,
    restore_into: &str,
) {
    let snaps = restic_snapshots_with(w, opts, repo, pw);
    assert_eq!(snaps.len(), snapshots, "{snaps:?}");
    let last = snaps.last().unwrap();
    let dst = fs::canonicalize(&w.dst).unwrap();
    assert_eq!(last["paths"], serde_json::json!([dst.to_str().unwrap()]));
    let tags = last["tags"].as_array().unwrap();
    assert!(tags.contains(&serde_json::json!("mirrortray")), "{tags:?}");
    assert!(tags.contains(&serde_json::json!("src")), "{tags:?}");
    restic_with(w, opts, repo, pw, &["check", "--read-data"]).ok();
    let target = w.path(restore_into);
    restic_with(
        w,
        opts,
        repo,
        pw,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    )
    .ok();
    let got = restored_dst(&target, &w.dst);
    assert_same_tree(&w.dst, &got);
    assert!(
        !got.join(".mirrortray").exists(),
        "the backup's own folder went into the snapshot"
    );
    // A folder of that name deeper down is the user's, and kept.
    let deep = "docs/deep/.mirrortray/mine.txt";
    assert_eq!(got.join(deep).is_file(), w.dst.join(deep).is_file());
}

#[test]
fn offsite_local_repository_is_read_by_stock_restic() {
    if !tools(&["restic"]) {
        return;
    }
    let w = World::new();
    sample_tree(&w);
    w.sync(&[]).ok();
    assert_mirrored(&w.src, &w.dst);
    let pw = password_file(&w);
    let repo = w.path("repo");
    let repo_text = repo.to_str().unwrap();
    configure(&w, repo_text, &pw, "");

    // Before init: a sentence, not a dump.
    w.run(["offsite", "push"])
        .code(2)
        .stderr_has(repo_text)
        .stderr_has("no restic repository there yet")
        .no_debug_dump();

    w.run(["offsite", "init"]).ok().stdout_has("created");
    w.run(["offsite", "init"]).ok().stdout_has("using it");
    let first = w.run(["offsite", "push"]);
    first.ok().stdout_has("the first one").no_debug_dump();
    restic_reads_it(&w, repo_text, &pw, 1, "restic-1");

    // Nothing changed: the mirror wrote nothing since, so the push does
    // not walk DST; its snapshot has the same tree, and restic reads it.
    assert!(clean_mark(&w).exists(), "the first push left no marker");
    let second = w.run(["offsite", "push"]);
    second
        .ok()
        .stdout_has("nothing changed since snapshot")
        .stdout_has("no file read");
    let snaps = restic_snapshots(&w, repo_text, &pw);
    assert_eq!(snaps.len(), 2);
    assert_eq!(snaps[0]["tree"], snaps[1]["tree"], "{snaps:?}");
    assert_eq!(snaps[1]["parent"], snaps[0]["id"], "{snaps:?}");
    restic_reads_it(&w, repo_text, &pw, 2, "restic-2");
    // Asked for no snapshot of the same tree: none, and still no walk.
    w.run(["offsite", "push", "--skip-if-unchanged"])
        .ok()
        .stdout_has("no new snapshot")
        .stdout_has("no file read");
    assert_eq!(restic_snapshots(&w, repo_text, &pw).len(), 2);

    // A change through `sync` takes the marker away, and reaches the next
    // snapshot (which walks, and makes the marker again).
    w.write("docs/deep/note.md", "# note, edited\n");
    fs::remove_file(w.src.join("a.txt")).unwrap();
    w.sync(&[]).ok();
    assert!(!clean_mark(&w).exists(), "sync left the marker");
    w.run(["offsite", "push", "--skip-if-unchanged"])
        .ok()
        .stdout_has("0 new, 1 changed");
    restic_reads_it(&w, repo_text, &pw, 3, "restic-3");
    assert!(clean_mark(&w).exists());

    // mirrortray lists and gets files back itself.
    w.run(["offsite", "snapshots"])
        .ok()
        .stdout_has("3 snapshots");
    w.run(["offsite", "check"]).ok().stdout_has("no errors");
    w.run(["offsite", "check", "--read-data"])
        .ok()
        .stdout_has("every byte read and verified");
    let back = w.path("back");
    w.run([
        "offsite".as_ref(),
        "restore".as_ref(),
        w.src.as_os_str(),
        "--to".as_ref(),
        back.as_os_str(),
    ])
    .ok();
    assert_same_tree(&w.dst, &back.join("src"));
    // One file, from the first snapshot (before the edit), by time.
    let t1 = snaps[1]["time"].as_str().unwrap().to_string();
    let one = w.path("one");
    w.run([
        "offsite".as_ref(),
        "restore".as_ref(),
        w.src.join("docs/deep/note.md").as_os_str(),
        "--at".as_ref(),
        t1.as_ref(),
        "--to".as_ref(),
        one.as_os_str(),
    ])
    .ok();
    assert_eq!(fs::read(one.join("note.md")).unwrap(), b"# note\n");
    // Nothing is overwritten.
    w.run([
        "offsite".as_ref(),
        "restore".as_ref(),
        w.src.join("docs/deep/note.md").as_os_str(),
        "--to".as_ref(),
        one.as_os_str(),
    ])
    .code(2)
    .stderr_has("exists already");
    assert_eq!(fs::read(one.join("note.md")).unwrap(), b"# note\n");
    // Never into the mirror; and what no snapshot holds is said.
    w.run([
        "offsite".as_ref(),
        "restore".as_ref(),
        w.src.join("a.txt").as_os_str(),
        "--to".as_ref(),
        w.dst.join("docs").as_os_str(),
    ])
    .code(2)
    .stderr_has("is inside the backup folder");
    w.run([
        "offsite".as_ref(),
        "restore".as_ref(),
        w.src.join("never-there.txt").as_os_str(),
        "--to".as_ref(),
        w.path("none").as_os_str(),
    ])
    .code(2)
    .stderr_has("never-there.txt is not in the snapshot")
    .no_debug_dump();

    // Another process writing to it from this machine (here: this test,
    // holding the same file lock): the push does not wait, it says so.
    let locks: Vec<PathBuf> = fs::read_dir(w.home.join(".cache/mirrortray/offsite/locks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(locks.len(), 1, "{locks:?}");
    let held = fs::OpenOptions::new().write(true).open(&locks[0]).unwrap();
    held.try_lock().unwrap();
    w.run(["offsite", "push"])
        .code(2)
        .stderr_has(&format!("offsite repository {repo_text}: locked: "))
        .stderr_has("is writing to it on this machine")
        .no_debug_dump();
    drop(held);
    w.run(["offsite", "push"]).ok();

    // A wrong password: one sentence with the repository.
    fs::write(&pw, "not the password\n").unwrap();
    for cmd in ["push", "snapshots", "check"] {
        w.run(["offsite", cmd])
            .code(2)
            .stderr_has(&format!("offsite repository {repo_text}: wrong password"))
            .no_debug_dump();
    }
}

/// The command serving `dir` as a restic REST server on `port`.
fn serve(w: &World, dir: &Path, port: u16) -> Command {
    let mut cmd = Command::new("rclone");
    cmd.args(["serve", "restic", "--addr"])
        .arg(format!("127.0.0.1:{port}"))
        .arg(dir)
        .env("HOME", &w.home)
        .env("RCLONE_CONFIG", w.home.join("rclone.conf"));
    cmd
}

/// `rclone serve restic` on a free port of 127.0.0.1, stopped on drop.
struct RestServer {
    child: Child,
    port: u16,
}

impl RestServer {
    fn start(w: &World, dir: &Path) -> RestServer {
        fs::create_dir_all(dir).unwrap();
        // A port taken between the probe and rclone's bind makes rclone
        // exit: try another.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            if let Some(child) = listening(&mut serve(w, dir, port), port, Duration::from_secs(30))
            {
                return RestServer { child, port };
            }
        }
        panic!("rclone serve restic did not start");
    }

    fn url(&self) -> String {
        format!("rest:http://127.0.0.1:{}/", self.port)
    }

    /// Serves `dir` again on the same port (after [`stop`](Self::stop)).
    fn restart(&mut self, w: &World, dir: &Path) {
        self.stop();
        let port = self.port;
        let up = wait_for(Duration::from_secs(60), || {
            match listening(&mut serve(w, dir, port), port, Duration::from_secs(10)) {
                Some(child) => {
                    self.child = child;
                    true
                }
                None => false,
            }
        });
        assert!(up, "rclone serve restic did not start again on port {port}");
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn offsite_rest_server_is_read_by_stock_restic_and_a_server_down_is_said() {
    if !tools(&["restic", "rclone"]) {
        return;
    }
    let w = World::new();
    sample_tree(&w);
    w.sync(&[]).ok();
    let pw = password_file(&w);
    let mut server = RestServer::start(&w, &w.path("served"));
    let url = server.url();
    configure(&w, &url, &pw, "");

    w.run(["offsite", "init"]).ok().stdout_has("created");
    w.run(["offsite", "push"]).ok();
    restic_reads_it(&w, &url, &pw, 1, "restic-1");
    // Nothing changed: the snapshot of the same tree, made without a walk
    // through the server, is read by restic too.
    w.run(["offsite", "push"])
        .ok()
        .stdout_has("nothing changed since snapshot")
        .stdout_has("no file read");
    restic_reads_it(&w, &url, &pw, 2, "restic-2");
    let snaps = restic_snapshots(&w, &url, &pw);
    assert_eq!(snaps[0]["tree"], snaps[1]["tree"], "{snaps:?}");

    // The server goes away: every command says so, naming it; the local
    // mirror goes on.
    server.stop();
    for cmd in ["push", "snapshots"] {
        w.run(["offsite", cmd])
            .code(2)
            .stderr_has(&format!("offsite repository {url}: unreachable"))
            .no_debug_dump();
    }
    w.write("after.txt", "made while the server was down\n");
    w.sync(&[]).ok();
    assert_mirrored(&w.src, &w.dst);
}

/// Issue 15: a push trusts the marker only for a day after its walk. A
/// change made to DST by hand (no mirrortray involved) is not seen by the
/// marker; once its walk is older than that, the next push walks and
/// takes the change in. Here the marker is dated back by the test.
#[test]
fn offsite_a_change_by_hand_is_taken_in_once_the_marker_is_a_day_old() {
    if !tools(&["restic"]) {
        return;
    }
    let (w, pw, repo) = mirrored_with_repo("");
    let repo_text = repo.as_str();
    w.run(["offsite", "push"]).ok().stdout_has("the first one");
    // DST changed by hand, then the marker made a day old.
    fs::write(w.dst.join("docs/deep/note.md"), "# changed by hand\n").unwrap();
    let text = fs::read_to_string(clean_mark(&w)).unwrap();
    let old = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(25);
    let dated: String = text
        .lines()
        .map(|l| {
            if l.starts_with("walked ") {
                format!("walked {old}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert_ne!(dated, text);
    fs::write(clean_mark(&w), dated).unwrap();
    w.run(["offsite", "push", "--skip-if-unchanged"])
        .ok()
        .stdout_has("0 new, 1 changed");
    restic_reads_it(&w, repo_text, &pw, 2, "restic-2");
    let got = restored_dst(&w.path("restic-2"), &w.dst);
    assert_eq!(
        fs::read_to_string(got.join("docs/deep/note.md")).unwrap(),
        "# changed by hand\n"
    );
    // That walk made a new marker: the next push trusts it again.
    w.run(["offsite", "push"]).ok().stdout_has("no file read");
}

#[test]
fn offsite_config_never_holds_the_password() {
    let w = World::new();
    let text = format!(
        "[[pair]]\nsrc = '{}'\ndst = '{}'\noffsite = {{ repository = '/srv/r', password = 'hunter2' }}\n",
        w.src.display(),
        w.dst.display()
    );
    fs::create_dir_all(w.config_file().parent().unwrap()).unwrap();
    fs::write(w.config_file(), text).unwrap();
    w.run(["config"])
        .code(2)
        .stderr_has("field \"offsite\"")
        .stderr_has("the offsite password is never kept in the config file")
        .no_debug_dump();
    w.run(["offsite", "push"])
        .code(2)
        .stderr_has("password_file");
}

#[test]
fn offsite_over_sftp_is_read_by_stock_restic_over_its_own_sftp() {
    if !tools(&["restic", "rclone", "ssh", "ssh-keygen", "/usr/sbin/sshd"]) {
        return;
    }
    let w = World::new();
    sample_tree(&w);
    w.sync(&[]).ok();
    let pw = password_file(&w);
    let server = SshServer::start(&w.path("ssh"));
    let repo = w.path("remote/repo");
    let url = server.rclone_url(&repo);
    configure(&w, &url, &pw, "");

    w.run(["offsite", "init"]).ok().stdout_has("created");
    w.run(["offsite", "push"]).ok();
    w.run(["offsite", "push"])
        .ok()
        .stdout_has("nothing changed since snapshot")
        .stdout_has("no file read");
    let (opts, restic_url) = server.restic_sftp(&repo);
    restic_reads_it_with(&w, &opts, &restic_url, &pw, 2, "restic-2");
    let snaps = restic_snapshots_with(&w, &opts, &restic_url, &pw);
    assert_eq!(snaps[0]["tree"], snaps[1]["tree"], "{snaps:?}");
}

/// `moto_server` (moto's S3-compatible server, from PyPI:
/// `scripts/install-deps.sh --test` puts it in `target/test-tools/moto`),
/// on a free port of 127.0.0.1; stopped on drop.
struct S3Server {
    child: Child,
    port: u16,
}

impl S3Server {
    fn program() -> Option<PathBuf> {
        let venv =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-tools/moto/bin/moto_server");
        if venv.is_file() {
            return Some(venv);
        }
        have("moto_server").then(|| PathBuf::from("moto_server"))
    }

    fn start(program: &Path) -> S3Server {
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut cmd = Command::new(program);
            cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
            if let Some(child) = listening(&mut cmd, port, Duration::from_secs(60)) {
                return S3Server { child, port };
            }
        }
        panic!("moto_server did not start");
    }

    /// Makes `bucket` (moto takes an unsigned request).
    fn make_bucket(&self, bucket: &str) {
        use std::io::{Read, Write};
        let mut c = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            c,
            "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    /// The repository in restic's form.
    fn url(&self, bucket: &str, prefix: &str) -> String {
        format!("s3:http://127.0.0.1:{}/{bucket}/{prefix}", self.port)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// S3 in restic's `s3:` form, written through OpenDAL: a missing bucket
/// and missing keys are each a sentence; with the keys in
/// `~/.aws/credentials`, as restic and the AWS tools read them, stock
/// restic reads every snapshot mirrortray wrote and restores the mirror.
#[test]
fn offsite_s3_is_read_by_stock_restic() {
    if !tools(&["restic"]) {
        return;
    }
    let Some(program) = S3Server::program() else {
        skip("moto_server is not installed (scripts/install-deps.sh --test installs it)");
        return;
    };
    let w = World::new();
    sample_tree(&w);
    w.sync(&[]).ok();
    let pw = password_file(&w);
    let server = S3Server::start(&program);
    let url = server.url("backups", "laptop/docs");
    configure(&w, &url, &pw, "");

    // Keys first: without them no request is made at all.
    w.run(["offsite", "init"])
        .code(2)
        .stderr_has(&format!(
            "offsite repository {url}: permission denied: no S3 keys"
        ))
        .stderr_has("~/.aws/credentials")
        .no_debug_dump();
    fs::create_dir_all(w.home.join(".aws")).unwrap();
    fs::write(
        w.home.join(".aws/credentials"),
        "[default]\naws_access_key_id = mirrortray-test\naws_secret_access_key = not-a-real-key\n",
    )
    .unwrap();
    w.run(["offsite", "init"])
        .code(2)
        .stderr_has(&format!(
            "offsite repository {url}: the bucket does not exist"
        ))
        .no_debug_dump();
    server.make_bucket("backups");
    w.run(["offsite", "init"]).ok().stdout_has("created");
    w.run(["offsite", "push"]).ok().stdout_has("the first one");
    w.write("docs/deep/note.md", "# note, edited\n");
    w.sync(&[]).ok();
    w.run(["offsite", "push"]).ok();
    restic_reads_it(&w, &url, &pw, 2, "restic-s3");
    let listed = w.run(["offsite", "snapshots"]);
    listed.ok().stdout_has("2 snapshots");
}

/// The keep policy, over days of pushes dated by the test (through the
/// engine, so no day has to pass): the snapshots kept are the ones
/// restic's rules name, the rest are forgotten and their data pruned, and
/// stock restic still checks every byte and restores what is kept.
#[test]
fn offsite_keep_policy_keeps_the_snapshots_it_names() {
    use mirrortray::engine::offsite::{Offsite, OffsiteConfig};
    if !tools(&["restic"]) {
        return;
    }
    let w = World::new();
    w.write("f.txt", "start");
    w.sync(&[]).ok();
    let pw = password_file(&w);
    let repo = w.path("repo");
    let repo_text = repo.to_str().unwrap();
    let mut cfg = OffsiteConfig::new(repo_text, &pw);
    cfg.keep_hourly = 2;
    cfg.keep_daily = 3;
    cfg.keep_weekly = 0;
    cfg.keep_monthly = 0;
    let offsite = Offsite::new("src", &w.dst, &cfg, None);
    offsite.init().unwrap();
    // Minutes under 15 and hours 10 to 13 UTC: the same hours and days in
    // any time zone the machine may be in.
    let day = |d: i64, h: i64, m: i64| {
        jiff::Timestamp::from_second(1_795_132_800 + d * 86_400 + h * 3600 + m * 60).unwrap()
    };
    let times = [
        day(0, 10, 1),
        day(0, 10, 7),
        day(0, 11, 3),
        day(1, 10, 2),
        day(1, 12, 5),
        day(1, 12, 11),
        day(2, 10, 0),
        day(2, 10, 6),
        day(2, 13, 4),
    ];
    for (i, t) in times.iter().enumerate() {
        w.write("f.txt", format!("push {i}"));
        w.sync(&[]).ok();
        offsite.push_at(Some(*t)).unwrap();
    }
    // Newest first: 13:04 (the last, hour 2-13, day 2), 10:06 (hour 2-10),
    // then one a day: 12:11 on day 1, 11:03 on day 0.
    let want = [times[2], times[5], times[7], times[8]];
    let f = offsite.forget().unwrap();
    let kept: Vec<_> = f.kept.iter().map(|s| s.time).collect();
    assert_eq!(kept, want);
    assert_eq!(f.forgotten.len(), 5);
    let listed: Vec<_> = offsite
        .snapshots()
        .unwrap()
        .iter()
        .map(|s| s.time)
        .collect();
    assert_eq!(listed, want);
    // Forgetting again changes nothing.
    let again = offsite.forget().unwrap();
    assert!(again.forgotten.is_empty());

    let snaps = restic_snapshots(&w, repo_text, &pw);
    let restic_times: Vec<jiff::Timestamp> = snaps
        .iter()
        .map(|s| s["time"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(restic_times, want);
    restic(&w, repo_text, &pw, &["check", "--read-data"]).ok();
    let target = w.path("day1");
    let id = snaps[1]["id"].as_str().unwrap();
    restic(
        &w,
        repo_text,
        &pw,
        &["restore", id, "--target", target.to_str().unwrap()],
    )
    .ok();
    assert_eq!(
        fs::read_to_string(restored_dst(&target, &w.dst).join("f.txt")).unwrap(),
        "push 5"
    );
}

/// `len` bytes that do not compress, the same every run.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = rng::Rng(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The chunks are restic's: restic reading DST anew (`--force`) into the
/// repository mirrortray filled finds every data blob there already. Where
/// a file is cut comes from the repository's polynom through rustic_cdc's
/// tables, which mirrortray's copy of rustic_cdc computes once per thread
/// (vendor/rustic_cdc/PATCHED.md): tables that differed would cut files
/// elsewhere, and restic would add the blobs it cut.
#[test]
fn offsite_cuts_files_into_the_chunks_restic_cuts() {
    if !tools(&["restic"]) {
        return;
    }
    let (w, pw, repo) = mirrored_with_repo("");
    // Several chunks each (restic's are 512 KiB to 8 MiB), one file after
    // another through the same threads.
    for i in 0..4u64 {
        w.write(&format!("media/clip{i}.bin"), noise(40 + i, 3 << 20));
    }
    w.sync(&[]).ok();
    w.run(["offsite", "push"]).ok();
    let reserved = w.dst.join(".mirrortray");
    let run = restic(
        &w,
        &repo,
        &pw,
        &[
            "backup",
            "--force",
            "--json",
            "--exclude",
            reserved.to_str().unwrap(),
            w.dst.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "restic backup: {}", run.stderr);
    let summary: serde_json::Value = run
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message_type"] == "summary")
        .unwrap_or_else(|| panic!("no summary from restic backup:\n{}", run.stdout));
    assert!(
        summary["total_bytes_processed"].as_u64().unwrap() >= 4 * (3 << 20),
        "restic read less than the four clips: {summary}"
    );
    assert_eq!(
        summary["data_blobs"], 0,
        "restic cut DST into chunks mirrortray had not stored: {summary}"
    );
}

#[test]
fn offsite_disk_full_on_the_repository_is_said_and_the_next_push_works() {
    if !tools(&["restic"]) {
        return;
    }
    let w = World::new();
    w.write("small.txt", "small\n");
    w.write("big.bin", noise(1, 3 << 20));
    w.sync(&[]).ok();
    let pw = password_file(&w);
    let disk = w.path("far-disk");
    let Some(_mount) = crate::safety::mount(&["-t", "tmpfs", "-o", "size=1m", "tmpfs"], &disk)
    else {
        return;
    };
    let repo = disk.join("repo");
    let repo_text = repo.to_str().unwrap();
    configure(&w, repo_text, &pw, "");
    w.run(["offsite", "init"]).ok();
    w.run(["offsite", "push"])
        .code(2)
        .stderr_has(&format!(
            "offsite repository {repo_text}: the repository's disk is full"
        ))
        .no_debug_dump();
    // What the failed push left, restic accepts.
    restic(&w, repo_text, &pw, &["check"]).ok();
    // Room made: the next push goes through, and restic reads it all.
    let st = Command::new("mount")
        .args(["-o", "remount,size=32m"])
        .arg(&disk)
        .status()
        .unwrap();
    assert!(st.success());
    w.run(["offsite", "push"]).ok();
    restic_reads_it(&w, repo_text, &pw, 1, "restic-1");
}

/// A TCP proxy on 127.0.0.1 in front of `upstream`: it passes the
/// clients' first `budget` bytes on, then cuts every connection and
/// refuses new ones — a network that goes down in the middle of an upload.
struct CuttingProxy {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl CuttingProxy {
    fn start(upstream: u16, budget: u64) -> CuttingProxy {
        use std::io::{Read, Write};
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let cut = Arc::new(AtomicBool::new(false));
        let passed = Arc::new(AtomicU64::new(0));
        let (stop2, cut2) = (stop.clone(), cut.clone());
        std::thread::spawn(move || {
            let mut open: Vec<TcpStream> = Vec::new();
            while !stop2.load(Ordering::SeqCst) {
                if cut2.load(Ordering::SeqCst) {
                    for s in open.drain(..) {
                        let _ = s.shutdown(std::net::Shutdown::Both);
                    }
                }
                let client = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                if cut2.load(Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                client.set_nonblocking(false).unwrap();
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                open.push(client.try_clone().unwrap());
                open.push(server.try_clone().unwrap());
                let (mut c_in, mut s_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (passed, cut3) = (passed.clone(), cut2.clone());
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    loop {
                        let n = match c_in.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let before = passed.fetch_add(n as u64, Ordering::SeqCst);
                        let room = budget.saturating_sub(before) as usize;
                        if room < n {
                            let _ = s_out.write_all(&buf[..room]);
                            cut3.store(true, Ordering::SeqCst);
                            break;
                        }
                        if s_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = s_out.shutdown(std::net::Shutdown::Both);
                    let _ = c_in.shutdown(std::net::Shutdown::Both);
                });
                let (mut s_in, mut c_out) = (server, client);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s_in, &mut c_out);
                    let _ = c_out.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        CuttingProxy { port, stop, cut }
    }

    fn cut(&self) -> bool {
        self.cut.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn offsite_push_cut_off_midway_leaves_a_repository_restic_accepts_and_the_next_push_completes() {
    if !tools(&["restic", "rclone"]) {
        return;
    }
    let w = World::new();
    w.write("small.txt", "small\n");
    for i in 0..4u64 {
        w.write(&format!("big/{i}.bin"), noise(i + 10, 3 << 20));
    }
    w.sync(&[]).ok();
    let pw = password_file(&w);
    let served = w.path("served");
    let mut server = RestServer::start(&w, &served);
    configure(&w, &server.url(), &pw, "");
    w.run(["offsite", "init"]).ok();

    // The push goes through a link that dies after 2 MB of its 12 MB, and
    // the server is killed.
    let proxy = CuttingProxy::start(server.port, 2 << 20);
    let cut_url = format!("rest:http://127.0.0.1:{}/", proxy.port);
    configure(&w, &cut_url, &pw, "");
    w.run(["offsite", "push"])
        .code(2)
        .stderr_has(&format!(
            "offsite repository {cut_url}: unreachable: the connection to the server broke off"
        ))
        .no_debug_dump();
    assert!(proxy.cut(), "the push never reached the cut");
    server.stop();
    drop(proxy);

    // The server back (on another port): restic accepts the repository,
    // and the next push completes it.
    let server = RestServer::start(&w, &served);
    let url = server.url();
    restic(&w, &url, &pw, &["check"]).ok();
    configure(&w, &url, &pw, "");
    w.run(["offsite", "push"]).ok();
    restic_reads_it(&w, &url, &pw, 1, "restic-1");
}

/// An unmounted backup drive leaves an empty folder: it is not copied as
/// an empty snapshot (which the keep policy could later keep instead of
/// the real ones).
#[test]
fn offsite_push_of_a_folder_that_holds_no_backup_is_refused() {
    let w = World::new();
    fs::create_dir_all(&w.dst).unwrap();
    let pw = password_file(&w);
    let repo = w.path("repo");
    configure(&w, repo.to_str().unwrap(), &pw, "");
    w.run(["offsite", "push"])
        .code(2)
        .stderr_has("holds no mirrortray backup (is its drive mounted?")
        .no_debug_dump();
    assert!(!repo.exists());
}

/// `mirrortray watch` of the configured pairs, its offsite schedule run in
/// `minute_ms` milliseconds a minute; killed on drop.
struct Watching(Child);

impl Watching {
    fn start(w: &World, minute_ms: u64) -> Watching {
        let child = w
            .cmd()
            .arg("watch")
            .env("MIRRORTRAY_TEST_MINUTE_MS", minute_ms.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Watching(child)
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        // Already gone when a test killed it.
        let _ = Command::new("kill")
            .arg(self.0.id().to_string())
            .stderr(Stdio::null())
            .status();
        let _ = self.0.wait();
    }
}

/// An empty SRC mirrored once (the mix's model starts empty), with a local
/// repository configured and made.
fn empty_with_repo(extra: &str) -> (World, PathBuf, String) {
    let w = World::new();
    fs::create_dir_all(&w.src).unwrap();
    w.sync(&[]).ok();
    let pw = password_file(&w);
    let repo = w.path("repo").to_str().unwrap().to_string();
    configure(&w, &repo, &pw, extra);
    w.run(["offsite", "init"]).ok();
    (w, pw, repo)
}

/// Whether the latest snapshot restores to DST exactly (restored into
/// `target`); the differences when not.
fn latest_is_dst(w: &World, repo: &str, pw: &Path, target: &Path) -> Result<(), Vec<String>> {
    let _ = fs::remove_dir_all(target);
    let r = restic(
        w,
        repo,
        pw,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    );
    if r.code != 0 {
        return Err(vec![format!("restic restore latest: {}", r.stderr)]);
    }
    let d = tree::diff(&snapshot(&w.dst), &snapshot(&restored_dst(target, &w.dst)));
    if d.is_empty() { Ok(()) } else { Err(d) }
}

/// Eight batches of fifteen of the mix's operations, each followed by a
/// wait (up to `deadline`) for `pushes` to count one more push ended.
fn changes_between_pushes(
    ops: &mut crate::mix::Ops<'_>,
    deadline: Duration,
    pushes: impl Fn() -> usize,
) {
    for _ in 0..8 {
        for _ in 0..15 {
            ops.one();
        }
        let seen = pushes();
        wait_for(deadline, || pushes() > seen);
    }
}

/// DST catches up with SRC after a round of the mix's changes (`what`: the
/// seed and round, for the message).
#[track_caller]
fn assert_caught_up(w: &World, ops: &crate::mix::Ops<'_>, what: &str) {
    let caught_up = wait_for(Duration::from_secs(60), || {
        tree::is_mirrored(&w.src, &w.dst)
    });
    assert!(
        caught_up,
        "{what}: DST never caught up with SRC; done:\n{}",
        ops.done()
    );
}

/// The marker that lets a push skip the walk must never outlive a change:
/// random changes from the mix (`mix::Ops`) mirrored by a live `watch`,
/// with `offsite push` and `offsite push --skip-if-unchanged` run by hand
/// back to back all through them (a batch of changes after each push);
/// once DST has caught up, one more push, and the snapshot it leaves (new,
/// or the one it found unchanged) must be DST exactly, as stock restic
/// restores it. The watcher's own schedule does not push. It fails when a
/// batch that wrote puts the marker back; a batch that begins before a
/// walk and ends within it is rarer than this reaches (its batches last
/// milliseconds, a walk starts after the key's 0.3 s): that order is in
/// `offsite_clean`'s table of every order of the steps
/// (`a_mark_is_never_left_by_a_push_that_a_write_overlapped`).
#[test]
fn offsite_pushes_racing_random_changes_never_leave_the_copy_behind() {
    if !tools(&["restic"]) {
        return;
    }
    for seed in [7001u64, 7002] {
        let (w, pw, repo) = empty_with_repo("");
        let _watch = Watching::start(&w, 600_000);
        let mut ops = crate::mix::Ops::new(seed, &w.src, w.path("outside"));
        let mut said = std::collections::BTreeMap::<&str, usize>::new();
        for round in 0..4 {
            use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
            let (done, pushes) = (AtomicBool::new(false), AtomicUsize::new(0));
            let outcomes = std::thread::scope(|s| {
                let pusher = s.spawn(|| {
                    let mut outcomes = Vec::new();
                    while !done.load(SeqCst) {
                        // Either may fail in the middle of changes (a
                        // file gone while read): only what is left counts.
                        let args: &[&str] = match outcomes.len() % 2 {
                            0 => &["offsite", "push"],
                            _ => &["offsite", "push", "--skip-if-unchanged"],
                        };
                        let r = w.run(args);
                        outcomes.push(r.stdout + &r.stderr);
                        pushes.fetch_add(1, SeqCst);
                    }
                    outcomes
                });
                // Every push overlaps the watcher mirroring some changes.
                changes_between_pushes(&mut ops, Duration::from_secs(60), || pushes.load(SeqCst));
                done.store(true, SeqCst);
                pusher.join().unwrap()
            });
            for o in &outcomes {
                let kind = if o.contains("no file read") {
                    "not walked"
                } else if o.contains("no new snapshot") || o.contains("nothing changed") {
                    "no snapshot"
                } else if o.contains("error") {
                    "failed"
                } else {
                    "walked"
                };
                *said.entry(kind).or_default() += 1;
            }
            assert_caught_up(&w, &ops, &format!("seed {seed} round {round}"));
            let push = w.run(["offsite", "push"]);
            assert_eq!(push.code, 0, "seed {seed} round {round}: {}", push.stderr);
            if let Err(d) = latest_is_dst(&w, &repo, &pw, &w.path("restored")) {
                panic!(
                    "seed {seed} round {round}: the latest snapshot is not DST after `offsite push` said:\n{}\n{}\ndone:\n{}",
                    push.stdout,
                    d.join("\n"),
                    ops.done()
                );
            }
        }
        println!("seed {seed}: pushes during the changes: {said:?}");
    }
}

/// The same for the watcher's own pushes: a minute of 0.3 s and
/// `interval_minutes = 1`, so it pushes (`--skip-if-unchanged`, as the
/// background does) every 0.3 s once 50 ms idle, all through the mix's
/// random changes. Once DST has caught up, the copy must become DST
/// exactly by itself: a marker left standing after a write would keep the
/// background from ever pushing the last changes.
#[test]
fn offsite_background_pushes_racing_random_changes_end_exact() {
    if !tools(&["restic"]) {
        return;
    }
    for seed in [7101u64, 7102] {
        let (w, pw, repo) = empty_with_repo(", interval_minutes = 1");
        let _watch = Watching::start(&w, 300);
        let pushed = || {
            fs::read_to_string(w.log_file())
                .unwrap_or_default()
                .matches("offsite: ")
                .count()
        };
        let mut ops = crate::mix::Ops::new(seed, &w.src, w.path("outside"));
        for round in 0..3 {
            // The watcher's next word on its offsite copy (a push, or why
            // not) after each batch: changes land all through its pushes.
            changes_between_pushes(&mut ops, Duration::from_secs(30), pushed);
            assert_caught_up(&w, &ops, &format!("seed {seed} round {round}"));
            let mut last = Ok(());
            let exact = wait_for(Duration::from_secs(120), || {
                last = latest_is_dst(&w, &repo, &pw, &w.path("restored"));
                last.is_ok()
            });
            assert!(
                exact,
                "seed {seed} round {round}: the background never copied DST exactly:\n{}\nlog:\n{}\ndone:\n{}",
                last.err().unwrap_or_default().join("\n"),
                fs::read_to_string(w.log_file()).unwrap_or_default(),
                ops.done()
            );
        }
        let log = fs::read_to_string(w.log_file()).unwrap_or_default();
        println!(
            "seed {seed}: {} background snapshots, {} found nothing to copy",
            log.matches("offsite: snapshot").count(),
            log.matches("no new snapshot").count()
        );
    }
}

/// The running instance's page `/`, fetched as a browser with its key.
fn overview_page(w: &World) -> String {
    use std::io::{Read, Write};
    let r = w.run(["ui", "--print-url"]);
    r.ok();
    let url = r.stdout.trim();
    let rest = url.strip_prefix("http://127.0.0.1:").unwrap();
    let (port, tail) = rest.split_once('/').unwrap();
    let token = tail.strip_prefix("?token=").unwrap();
    let mut s = TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: mirrortray-{port}={token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The first pair's `offsite` object in `mirrortray status --json`.
fn offsite_json(w: &World) -> (i32, serde_json::Value) {
    let (code, v) = crate::status::json(w);
    (code, v["instances"][0]["pairs"][0]["offsite"].clone())
}

fn restic_count(w: &World, repo: &str, pw: &Path) -> usize {
    let r = restic(w, repo, pw, &["snapshots", "--json"]);
    if r.code != 0 {
        return usize::MAX;
    }
    serde_json::from_str::<Vec<serde_json::Value>>(&r.stdout)
        .map(|v| v.len())
        .unwrap_or(usize::MAX)
}

#[track_caller]
fn wait_snapshots(w: &World, repo: &str, pw: &Path, n: usize) {
    let mut last = 0;
    let seen = wait_for(Duration::from_secs(120), || {
        last = restic_count(w, repo, pw);
        last == n
    });
    let log = fs::read_to_string(w.log_file()).unwrap_or_default();
    assert!(seen, "never {n} snapshots (last {last}); log:\n{log}");
}

/// Issue 15: a batch of a live `watch` takes the marker away before it
/// writes, so the push after it walks and takes the change in. The
/// watcher's own schedule runs with a minute of 10 minutes: it does not
/// push during the test.
#[test]
fn offsite_a_change_mirrored_by_watch_reaches_the_next_push() {
    if !tools(&["restic"]) {
        return;
    }
    let (w, pw, repo) = mirrored_with_repo("");
    let repo_text = repo.as_str();
    let _watch = Watching::start(&w, 600_000);
    // The watcher's first pass takes the marker away while it runs: once
    // it is done, a push leaves one.
    let sealed = wait_for(Duration::from_secs(60), || {
        w.run(["offsite", "push"]).ok();
        clean_mark(&w).exists()
    });
    assert!(sealed, "no push left a marker while watching");
    w.run(["offsite", "push"]).ok().stdout_has("no file read");

    w.write("docs/live.txt", "written while watching\n");
    let mirrored = wait_for(Duration::from_secs(60), || {
        w.dst.join("docs/live.txt").is_file()
    });
    assert!(mirrored, "the watcher did not mirror the new file");
    assert!(
        !clean_mark(&w).exists(),
        "a batch of the watcher left the marker"
    );
    w.run(["offsite", "push"])
        .ok()
        .stdout_has("1 new, 0 changed");
    let n = restic_snapshots(&w, repo_text, &pw).len();
    restic_reads_it(&w, repo_text, &pw, n, "restic-live");
    let got = restored_dst(&w.path("restic-live"), &w.dst);
    assert!(got.join("docs/live.txt").is_file());
}

/// Issue 15, item 3: a watcher started on a backup that is up to date
/// writes nothing, and leaves the marker a push sealed before it: the next
/// push reads no file (and the background one makes no snapshot), where it
/// walked the whole backup before; a change mirrored then takes it away.
#[test]
fn offsite_a_watch_with_nothing_to_do_leaves_the_marker() {
    if !tools(&["restic"]) {
        return;
    }
    let (w, pw, repo) = mirrored_with_repo("");
    let repo_text = repo.as_str();
    w.run(["offsite", "push"]).ok();
    let sealed = std::fs::read_to_string(clean_mark(&w)).expect("the push left no marker");
    let before = restic_snapshots(&w, repo_text, &pw).len();

    // A minute of 1.5 s: the first background push follows the first
    // pass at once.
    let _watch = Watching::start(&w, 1500);
    crate::status::status_until(&w, "up to date", |c, o| c == 0 && o.contains("Up to date"));
    // The start-up pass (and the first background push) are over once
    // status says when the offsite copy was last made.
    crate::status::status_until(&w, "the offsite copy", |_, o| {
        o.contains("Offsite: last copy")
    });
    assert_eq!(
        std::fs::read_to_string(clean_mark(&w)).ok(),
        Some(sealed),
        "the watcher's first pass took the marker away though it wrote nothing"
    );
    assert!(
        !w.dst.join(".mirrortray/offsite-writing").exists(),
        "a writer's file is left"
    );
    assert_eq!(restic_snapshots(&w, repo_text, &pw).len(), before);
    w.run(["offsite", "push"]).ok().stdout_has("no file read");

    w.write("docs/later.txt", "written while watching\n");
    let mirrored = wait_for(Duration::from_secs(60), || {
        w.dst.join("docs/later.txt").is_file()
    });
    assert!(mirrored, "the watcher did not mirror the new file");
    let gone = wait_for(Duration::from_secs(60), || !clean_mark(&w).exists());
    assert!(gone, "a batch that wrote left the marker");
    w.run(["offsite", "push"])
        .ok()
        .stdout_has("1 new, 0 changed");
}

/// Issue 15, items 1 and 4: `watch` applies the keep policy by itself
/// (forget + prune) after a push that made a snapshot, at most once a day.
/// The schedule runs with a minute of 10 ms (a day: 14.4 s); with one
/// snapshot kept per hour, day, week and month, the snapshots of one hour
/// come down to the newest: the first one goes, restic's check accepts
/// what is left, and the newest holds the last change.
#[test]
fn offsite_watch_applies_the_keep_policy_by_itself() {
    if !tools(&["restic"]) {
        return;
    }
    let (w, pw, repo) = mirrored_with_repo(
        ", interval_minutes = 1, keep_hourly = 1, keep_daily = 1, keep_weekly = 1, keep_monthly = 1",
    );
    let repo_text = repo.as_str();
    let watch = Watching::start(&w, 10);
    wait_snapshots(&w, repo_text, &pw, 1);
    let ids = || -> Option<Vec<String>> {
        // None while a forget holds the repository's lock.
        let r = restic(&w, repo_text, &pw, &["snapshots", "--json"]);
        let v: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).ok()?;
        Some(
            v.iter()
                .map(|s| s["id"].as_str().unwrap().to_string())
                .collect(),
        )
    };
    let first = ids().unwrap()[0].clone();
    // A change at each look, each pushed: the second day's forget (after
    // 14.4 s) removes the first snapshot.
    let mut n = 0;
    let forgot = wait_for(Duration::from_secs(180), || {
        n += 1;
        w.write(&format!("docs/change-{n}.txt"), "made while watching\n");
        ids().is_some_and(|v| !v.is_empty() && !v.contains(&first))
    });
    let log = fs::read_to_string(w.log_file()).unwrap_or_default();
    assert!(
        forgot,
        "the first snapshot was never forgotten; log:\n{log}"
    );
    assert!(log.contains("forgot"), "{log}");
    drop(watch);
    restic(&w, repo_text, &pw, &["check"]).ok();
    let left = ids().unwrap();
    assert!(!left.is_empty());
    let last = left.last().unwrap();
    let listed = restic(&w, repo_text, &pw, &["ls", last]);
    listed.ok();
    assert!(listed.stdout.contains("change-"), "{}", listed.stdout);
}

/// Issue 15, item 4: `watch` pushes by itself once the changes settle, at
/// most every interval, and not at all with nothing new; a server that is
/// down is a failure `status` names (the local mirror goes on), and once it
/// is back the next try succeeds. The schedule runs with a minute of 1.5 s
/// (interval 1 minute: 1.5 s; back-off from 1.5 s).
#[test]
fn offsite_watch_pushes_by_itself_and_says_a_server_down() {
    if !tools(&["restic", "rclone"]) {
        return;
    }
    let w = World::new();
    sample_tree(&w);
    w.sync(&[]).ok();
    let pw = password_file(&w);
    let served = w.path("served");
    let mut server = RestServer::start(&w, &served);
    let url = server.url();
    configure(&w, &url, &pw, ", interval_minutes = 1");
    w.run(["offsite", "init"]).ok();

    let _watch = Watching::start(&w, 1500);
    // The first push of a run: the pair is up to date and settled.
    wait_snapshots(&w, &url, &pw, 1);
    restic_reads_it(&w, &url, &pw, 1, "restic-1");
    crate::status::status_until(&w, "the last copy", |c, o| {
        c == 0 && o.contains("Offsite: last copy")
    });
    let (_, o) = offsite_json(&w);
    assert_eq!(o["ok"], true, "{o}");
    assert_eq!(o["repository"], url.as_str(), "{o}");

    // Nothing changes: four intervals pass without a push.
    let pushed_again = wait_for(Duration::from_secs(6), || restic_count(&w, &url, &pw) != 1);
    assert!(!pushed_again, "a push with no change since the last one");

    // A change is mirrored, then pushed by itself.
    w.write("docs/new.txt", "written while watching\n");
    wait_snapshots(&w, &url, &pw, 2);
    restic_reads_it(&w, &url, &pw, 2, "restic-2");
    assert!(w.dst.join("docs/new.txt").is_file());

    // The server goes down: the next push fails, status says why, and the
    // local mirror goes on.
    server.stop();
    w.write("while-down.txt", "made while the server was down\n");
    let (code, out) = crate::status::status_until(&w, "the failed push", |_, o| {
        o.contains("Offsite: failed at") && o.contains("unreachable")
    });
    assert_eq!(code, 1, "a failing offsite copy is outstanding:\n{out}");
    assert!(out.contains("next try"), "{out}");
    assert!(out.contains(&url), "{out}");
    let (_, o) = offsite_json(&w);
    assert_eq!(o["ok"], false, "{o}");
    assert!(
        o["failed"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("unreachable")),
        "{o}"
    );
    // The page says it too.
    let page = overview_page(&w);
    let line = page
        .split("id=\"offsite-0\"")
        .nth(1)
        .and_then(|rest| rest.split("</dd>").next())
        .unwrap_or_else(|| panic!("no offsite line on the page:\n{page}"));
    assert!(
        line.contains("failed at") && line.contains("unreachable") && line.contains(&url),
        "{line}"
    );
    assert!(
        wait_for(Duration::from_secs(60), || {
            w.dst.join("while-down.txt").is_file()
        }),
        "the local mirror stopped with the server"
    );
    assert_mirrored(&w.src, &w.dst);

    // Back: a retry succeeds by itself, with what was made meanwhile.
    server.restart(&w, &served);
    wait_snapshots(&w, &url, &pw, 3);
    crate::status::status_until(&w, "the copy after the server came back", |c, o| {
        c == 0 && o.contains("Offsite: last copy") && !o.contains("failed")
    });
    restic_reads_it(&w, &url, &pw, 3, "restic-3");
}

/// Issue 15, item 4: `limit_upload` (KiB/s, restic's `--limit-upload`)
/// holds a push back: 4 MiB that do not compress, at 1 MiB/s with a
/// second's burst, take at least 3 s (a lower bound: how much longer the
/// machine takes is not asserted). What it wrote, restic reads.
#[test]
fn offsite_limit_upload_holds_a_push_to_its_rate() {
    if !tools(&["restic"]) {
        return;
    }
    let w = World::new();
    w.write("noise.bin", noise(15, 4 << 20));
    w.sync(&[]).ok();
    let pw = password_file(&w);
    let repo = w.path("repo");
    let repo_text = repo.to_str().unwrap();
    configure(&w, repo_text, &pw, ", limit_upload = 1024");
    w.run(["offsite", "init"]).ok();
    let started = std::time::Instant::now();
    w.run(["offsite", "push"]).ok();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(2900),
        "4 MiB at 1 MiB/s went in {took:?}"
    );
    let snaps = restic_snapshots(&w, repo_text, &pw);
    assert_eq!(snaps.len(), 1);
    restic(&w, repo_text, &pw, &["check", "--read-data"]).ok();
}

/// Files in a local repository's `data/` (its packs).
fn packs(repo: &Path) -> usize {
    walkdir::WalkDir::new(repo.join("data"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .count()
}

/// Issue 15, item 4: a background push cut off by the process being
/// killed (not the server) — after its first pack reached the repository,
/// before its snapshot — leaves a repository stock restic checks without
/// error, and the next run's push completes it. 72 MiB that do not
/// compress make three packs; `limit_upload` spreads them over seconds, so
/// the kill lands between the first and the snapshot (and `status` shows
/// how far the push has got meanwhile, and a change made meanwhile is
/// mirrored without waiting for it).
#[test]
fn offsite_watch_killed_in_the_middle_of_a_push_leaves_a_repository_restic_accepts() {
    if !tools(&["restic"]) {
        return;
    }
    // Some 300 MB in all: not in a temp folder that may be in RAM.
    let w = World::on_disk();
    for i in 0..3u64 {
        w.write(&format!("big/{i}.bin"), noise(i + 20, 24 << 20));
    }
    w.sync(&[]).ok();
    let pw = password_file(&w);
    let repo = w.path("repo");
    let repo_text = repo.to_str().unwrap();
    configure(&w, repo_text, &pw, ", limit_upload = 10240");
    w.run(["offsite", "init"]).ok();
    let before = packs(&repo);

    let mut watch = Watching::start(&w, 1500);
    // While it uploads, status says how far it has got.
    let (_, out) = crate::status::status_until(&w, "the push's progress", |_, o| {
        o.contains("Offsite: copying…") && o.contains(" of 75 MB")
    });
    assert!(!out.contains("failed"), "{out}");
    let (_, o) = offsite_json(&w);
    assert_eq!(o["progress"]["bytes_total"], 72 << 20, "{o}");
    assert!(o["pushing"].is_string(), "{o}");
    // The local mirror does not wait for the push: a change is copied
    // while it still runs.
    w.write("during.txt", "made while the push uploads\n");
    assert!(
        wait_for(Duration::from_secs(30), || w
            .dst
            .join("during.txt")
            .is_file()),
        "the local mirror waited for the push"
    );
    let (_, o) = offsite_json(&w);
    assert!(o["pushing"].is_string(), "the push ended first: {o}");
    let midway = wait_for(Duration::from_secs(120), || packs(&repo) > before);
    let _ = Command::new("kill")
        .args(["-KILL", &watch.0.id().to_string()])
        .status();
    let _ = watch.0.wait();
    assert!(midway, "no pack reached the repository");
    assert_eq!(
        restic_count(&w, repo_text, &pw),
        0,
        "the push was not cut off before its snapshot"
    );
    restic(&w, repo_text, &pw, &["check"]).ok();

    // The next run pushes it whole (reusing the packs that made it).
    configure(&w, repo_text, &pw, "");
    let _watch = Watching::start(&w, 1500);
    wait_snapshots(&w, repo_text, &pw, 1);
    restic(&w, repo_text, &pw, &["check", "--read-data"]).ok();
    let target = w.path("restored");
    restic(
        &w,
        repo_text,
        &pw,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    )
    .ok();
    assert_same_tree(&w.dst, &restored_dst(&target, &w.dst));
}
