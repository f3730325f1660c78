//! A backup folder on a network mount: sshfs (FUSE over SFTP) from a real
//! OpenSSH server on loopback. NFS and SMB need kernel modules this machine
//! does not have; the README says what is known of them.
//!
//! What SFTP changes: times to the second only, no extended attributes
//! (recorded, as on exFAT),
//! `rename` without RENAME_NOREPLACE, and setting a symlink's times
//! follows the link on the server. That last one made a pass set the times
//! of whatever an absolute link named, SRC's own files included (the server
//! is this machine): a drive whose links cannot take times of their own now
//! keeps symlinks in the record, as exFAT does.

use std::fs::{self, File};
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use filetime::FileTime;

use crate::fidelity::{run, same_attrs};
use crate::support::sshd::SshServer;
use crate::support::*;

/// `dir` on the server, mounted at `at` with sshfs; unmounted on drop.
struct Sshfs {
    at: PathBuf,
}

impl Sshfs {
    fn mount(server: &SshServer, dir: &Path, at: &Path) -> Sshfs {
        fs::create_dir_all(dir).unwrap();
        fs::create_dir_all(at).unwrap();
        let st = Command::new("sshfs")
            .arg(format!("{}@127.0.0.1:{}", server.user, dir.display()))
            .arg(at)
            .args(["-p", &server.port.to_string(), "-o"])
            .arg(format!(
                "IdentityFile={},UserKnownHostsFile={},StrictHostKeyChecking=yes,BatchMode=yes",
                server.key.display(),
                server.known_hosts.display()
            ))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "sshfs failed: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        Sshfs {
            at: at.to_path_buf(),
        }
    }
}

impl Drop for Sshfs {
    fn drop(&mut self) {
        let _ = Command::new("fusermount3")
            .arg("-u")
            .arg("-z")
            .arg(&self.at)
            .status();
    }
}

fn set_times(p: &Path, sec: i64, nsec: u32) {
    let t = FileTime::from_unix_time(sec, nsec);
    filetime::set_symlink_file_times(p, t, t).unwrap();
}

/// Files with nanosecond times and modes, a hard link, an empty folder,
/// and symlinks of every kind: relative, dangling, and absolute to a file
/// of SRC (which the server, being this machine, can also reach).
fn tree(w: &World) {
    w.write("docs/a.txt", "alpha\n");
    let run = w.write("bin/run.sh", "#!/bin/sh\necho hi\n");
    fs::set_permissions(&run, fs::Permissions::from_mode(0o750)).unwrap();
    let private = w.write("private.txt", "secret\n");
    fs::set_permissions(&private, fs::Permissions::from_mode(0o600)).unwrap();
    fs::create_dir_all(w.src.join("empty")).unwrap();
    fs::hard_link(w.src.join("docs/a.txt"), w.src.join("docs/same.txt")).unwrap();
    symlink("docs/a.txt", w.src.join("rel")).unwrap();
    symlink("missing", w.src.join("dangling")).unwrap();
    symlink(w.src.join("private.txt"), w.src.join("abs")).unwrap();
    for (i, p) in [
        "docs/a.txt",
        "bin/run.sh",
        "private.txt",
        "rel",
        "dangling",
        "abs",
    ]
    .iter()
    .enumerate()
    {
        set_times(&w.src.join(p), 1_500_000_000 + i as i64 * 1000, 123_456_789);
    }
    set_times(&w.src.join("empty"), 1_400_000_000, 5);
    // Beyond SFTP's 32-bit seconds on both ends.
    w.write("future.txt", "year 2200\n");
    set_times(&w.src.join("future.txt"), 7_258_118_400, 1);
    w.write("old.txt", "1969\n");
    set_times(&w.src.join("old.txt"), -100_000, 2);
}

/// A world whose SRC holds [`tree`], with an sshfs mount of a loopback
/// sshd's folder (the server kept alive with it); `None` where the tools
/// or root are missing (a failure under `CI=true`).
fn on_sshfs() -> Option<(World, SshServer, Sshfs)> {
    if !is_root() {
        skip("sshd for a test user needs root here");
        return None;
    }
    if !tools(&[
        "sshfs",
        "fusermount3",
        "ssh",
        "ssh-keygen",
        "/usr/sbin/sshd",
    ]) {
        return None;
    }
    let w = World::new();
    let server = SshServer::start(&w.path("ssh"));
    let nas = Sshfs::mount(&server, &w.path("server/backups"), &w.path("nas"));
    tree(&w);
    Some((w, server, nas))
}

fn verify_same(w: &World, dst: &Path) -> bool {
    w.run(["verify", w.src.to_str().unwrap(), dst.to_str().unwrap()])
        .code
        == 0
}

#[test]
fn a_backup_folder_on_sshfs_is_exact_and_touches_nothing_a_link_names() {
    let Some((w, _server, nas)) = on_sshfs() else {
        return;
    };
    // Attributes and ACLs, which SFTP does not carry: recorded.
    let path = |rel: &str| w.src.join(rel).to_str().unwrap().to_string();
    run(
        "setfattr",
        &["-n", "user.x", "-v", "0x00ff", &path("private.txt")],
    );
    run("setfacl", &["-m", "u:65534:r", &path("private.txt")]);
    run("setfacl", &["-d", "-m", "u:65534:rx", &path("empty")]);
    let before = snapshot(&w.src);
    let dst = nas.at.join("src");
    let args = [w.src.to_str().unwrap(), dst.to_str().unwrap()];

    let first = w.run(["sync", args[0], args[1]]);
    first.ok().stdout_has("failed 0").stdout_has("skipped 0");
    first.stderr_has("so that a restore gives it back exactly");
    // SRC untouched: no time of a file an absolute link names was set
    // through the server.
    assert_eq!(snapshot(&w.src), before, "SRC changed");
    // The link's file on the NAS has its own time, not the link's.
    assert_eq!(
        fs::metadata(dst.join("private.txt")).unwrap().mtime(),
        1_500_002_000
    );
    w.run(["sync", args[0], args[1]])
        .ok()
        .stdout_has("copied 0 files")
        .stdout_has("versioned 0");
    w.run(["verify", args[0], args[1]])
        .ok()
        .stdout_has("same")
        .stdout_has("times compared to the second");

    // Live: changes reach the NAS and it is exact again.
    let log = w.path("watch.log");
    let mut watch: Child = w
        .cmd()
        .args(["watch", args[0], args[1], "-v"])
        .stdout(Stdio::null())
        .stderr(File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let read_log = || fs::read_to_string(&log).unwrap_or_default();
    assert!(
        wait_for(Duration::from_secs(60), || read_log()
            .contains("watching for changes")),
        "{}",
        read_log()
    );
    w.write("docs/new.txt", "made while watched\n");
    fs::remove_file(w.src.join("rel")).unwrap();
    symlink("bin/run.sh", w.src.join("rel")).unwrap();
    fs::rename(w.src.join("bin"), w.src.join("tools")).unwrap();
    fs::remove_file(w.src.join("dangling")).unwrap();
    fs::set_permissions(w.src.join("private.txt"), fs::Permissions::from_mode(0o640)).unwrap();
    run(
        "setfattr",
        &["-n", "user.live", "-v", "yes", &path("empty")],
    );
    let ok = wait_for(Duration::from_secs(60), || {
        dst.join("docs/new.txt").exists() && verify_same(&w, &dst)
    });
    let _ = Command::new("kill").arg(watch.id().to_string()).status();
    let _ = watch.wait();
    assert!(ok, "the NAS never became exact\n{}", read_log());
    assert!(!read_log().contains("[ERROR]"), "{}", read_log());

    // Given back onto a local disk exactly: bytes, modes, times to the
    // nanosecond, link targets, the empty folder.
    let out = w.path("restored");
    fs::create_dir_all(&out).unwrap();
    w.run([
        "restore",
        args[1],
        "--at",
        "now",
        "--to",
        out.to_str().unwrap(),
    ])
    .ok();
    assert_mirrored(&w.src, &out.join("src"));
    same_attrs(&w.src, &out.join("src"), &["private.txt", "empty"]);
    // sshfs shows each name its own inode, so the two names of one file
    // were recorded; the restore links them again.
    assert_eq!(
        fs::metadata(out.join("src/docs/a.txt")).unwrap().ino(),
        fs::metadata(out.join("src/docs/same.txt")).unwrap().ino()
    );
    let limits = fs::read_to_string(dst.join(".mirrortray/limits")).unwrap();
    assert!(limits.contains("symlinks=0\nhardlinks=0"), "{limits}");
    assert!(limits.contains("xattrs=0"), "{limits}");
    drop(nas);
}

#[test]
fn links_an_older_mirrortray_made_on_the_nas_give_way_to_the_record() {
    let Some((w, _server, nas)) = on_sshfs() else {
        return;
    };
    let before = snapshot(&w.src);
    let dst = nas.at.join("src");
    // What a mirrortray that made links on sshfs left there: the links
    // themselves (times as SFTP left them) and the hard link as a copy.
    fs::create_dir_all(dst.join("docs")).unwrap();
    symlink("docs/a.txt", dst.join("rel")).unwrap();
    symlink("missing", dst.join("dangling")).unwrap();
    symlink(w.src.join("private.txt"), dst.join("abs")).unwrap();
    fs::write(dst.join("docs/same.txt"), "alpha\n").unwrap();
    let args = [w.src.to_str().unwrap(), dst.to_str().unwrap()];
    // The stale links and the copy are kept as versions, never just lost.
    w.run(["sync", args[0], args[1]])
        .ok()
        .stdout_has("failed 0")
        .stdout_has("versioned 4");
    assert_eq!(snapshot(&w.src), before, "SRC changed");
    w.run(["sync", args[0], args[1]])
        .ok()
        .stdout_has("copied 0 files")
        .stdout_has("versioned 0");
    w.run(["verify", args[0], args[1]]).ok().stdout_has("same");
    let out = w.path("restored");
    fs::create_dir_all(&out).unwrap();
    w.run([
        "restore",
        args[1],
        "--at",
        "now",
        "--to",
        out.to_str().unwrap(),
    ])
    .ok();
    assert_mirrored(&w.src, &out.join("src"));
    drop(nas);
}
