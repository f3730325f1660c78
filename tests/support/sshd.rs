//! A real OpenSSH server on loopback, for the tests that reach a backup
//! over SSH: offsite copies over SFTP, and a backup folder on sshfs.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{is_root, wait_for};

/// Spawns `cmd`, a server that should listen on `port` of 127.0.0.1: the
/// child once it does, or `None` (killed) if it exited first or did not
/// listen `within` (a port taken between the probe and its bind).
pub fn listening(cmd: &mut Command, port: u16, within: Duration) -> Option<Child> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let up = wait_for(within, || {
        matches!(child.try_wait(), Ok(Some(_))) || TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    if up && child.try_wait().unwrap().is_none() {
        return Some(child);
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// An OpenSSH server on a free port of 127.0.0.1, for the current user,
/// with a key made for it in a temp folder; stopped on drop.
pub struct SshServer {
    pub child: Child,
    pub port: u16,
    pub user: String,
    pub key: PathBuf,
    pub known_hosts: PathBuf,
}

impl SshServer {
    pub fn start(dir: &Path) -> SshServer {
        fs::create_dir_all(dir).unwrap();
        let keygen = |name: &str| {
            let st = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.join(name))
                .stdin(Stdio::null())
                .status()
                .unwrap();
            assert!(st.success(), "ssh-keygen failed");
        };
        keygen("host_key");
        keygen("user_key");
        fs::copy(dir.join("user_key.pub"), dir.join("authorized_keys")).unwrap();
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        if is_root() {
            // sshd's privilege separation needs its empty folder.
            fs::create_dir_all("/run/sshd").unwrap();
        }
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let config = dir.join("sshd_config");
            fs::write(
                &config,
                format!(
                    "ListenAddress 127.0.0.1\nPort {port}\nHostKey {}\nAuthorizedKeysFile {}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\nPidFile none\n",
                    dir.join("host_key").display(),
                    dir.join("authorized_keys").display()
                ),
            )
            .unwrap();
            let sshd = listening(
                Command::new("/usr/sbin/sshd")
                    .args(["-D", "-e", "-f"])
                    .arg(&config),
                port,
                Duration::from_secs(30),
            );
            if let Some(child) = sshd {
                let host_key = fs::read_to_string(dir.join("host_key.pub")).unwrap();
                let mut parts = host_key.split_whitespace();
                let line = format!(
                    "[127.0.0.1]:{port} {} {}\n",
                    parts.next().unwrap(),
                    parts.next().unwrap()
                );
                let known_hosts = dir.join("known_hosts");
                fs::write(&known_hosts, line).unwrap();
                return SshServer {
                    child,
                    port,
                    user,
                    key: dir.join("user_key"),
                    known_hosts,
                };
            }
        }
        panic!("sshd did not start");
    }

    /// The repository at `path` on this server, through rclone's SFTP
    /// (the host key checked against the known one).
    pub fn rclone_url(&self, path: &Path) -> String {
        format!(
            "rclone::sftp,host=127.0.0.1,port={},user={},key_file={},known_hosts_file={}:{}",
            self.port,
            self.user,
            self.key.display(),
            self.known_hosts.display(),
            path.display()
        )
    }

    /// restic's own SFTP: its URL and options.
    pub fn restic_sftp(&self, path: &Path) -> (Vec<String>, String) {
        (
            vec![
                "-o".into(),
                format!(
                    "sftp.command=ssh -i {} -p {} -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -o BatchMode=yes {}@127.0.0.1 -s sftp",
                    self.key.display(),
                    self.port,
                    self.known_hosts.display(),
                    self.user
                ),
            ],
            format!("sftp:{}@127.0.0.1:{}", self.user, path.display()),
        )
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
