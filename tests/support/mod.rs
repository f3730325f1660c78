//! The test harness: a temp world (SRC, DST, an isolated HOME and XDG
//! dirs), the real `mirrortray` binary, and a tree comparison that checks
//! what a user would: types, bytes, mtimes to the nanosecond, permission
//! bits and symlink targets — with a readable diff on failure.
#![allow(dead_code)]

pub mod browser;
pub mod desktop;
pub mod rng;
pub mod sshd;
pub mod tree;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use tree::{Snapshot, assert_mirrored, snapshot};

/// Path of the binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mirrortray"))
}

/// A temp directory with `src/`, `dst` (not created), and an isolated
/// environment (HOME, XDG_*), so tests never touch the real config or log.
pub struct World {
    pub dir: tempfile::TempDir,
    pub src: PathBuf,
    pub dst: PathBuf,
    pub home: PathBuf,
}

impl World {
    pub fn new() -> World {
        World::in_dir(
            tempfile::Builder::new()
                .prefix("mt-test-")
                .tempdir()
                .unwrap(),
        )
    }

    /// A world under the target folder rather than the temp folder: for a
    /// test that holds hundreds of MB, since `/tmp` may be a small tmpfs
    /// (in RAM) shared with every test running beside it.
    pub fn on_disk() -> World {
        let base = bin().parent().unwrap().join("test-worlds");
        std::fs::create_dir_all(&base).unwrap();
        World::in_dir(
            tempfile::Builder::new()
                .prefix("mt-test-")
                .tempdir_in(base)
                .unwrap(),
        )
    }

    fn in_dir(dir: tempfile::TempDir) -> World {
        let src = dir.path().join("src");
        let dst = dir.path().join("dst");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        World {
            dir,
            src,
            dst,
            home,
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The config file the binary uses in this world.
    pub fn config_file(&self) -> PathBuf {
        self.home.join(".config/mirrortray/config.toml")
    }

    /// The default log file in this world.
    pub fn log_file(&self) -> PathBuf {
        self.home.join(".local/state/mirrortray/mirrortray.log")
    }

    /// A `Command` for the binary with this world's environment.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        self.isolate(&mut c);
        c
    }

    pub fn isolate(&self, c: &mut Command) {
        c.env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("XDG_STATE_HOME", self.home.join(".local/state"))
            .env("XDG_DATA_HOME", self.home.join(".local/share"))
            .env("XDG_CACHE_HOME", self.home.join(".cache"))
            // The status files of running instances (`mirrortray status`)
            // are this world's own.
            .env("XDG_RUNTIME_DIR", self.home.join(".run"))
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            // S3 keys come from the world's own ~/.aws, never the tester's.
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
    }

    /// Runs the binary with `args` and waits.
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.cmd().args(args).output().unwrap();
        Run::from(out)
    }

    /// `mirrortray sync SRC DST` plus extra args.
    pub fn sync(&self, extra: &[&str]) -> Run {
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("sync"),
            self.src.as_os_str(),
            self.dst.as_os_str(),
        ];
        args.extend(extra.iter().map(OsStr::new));
        self.run(args)
    }

    /// Writes a file in SRC (parents created).
    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.src.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p
    }

    /// The versions DST kept of `rel`: `(time folder, content)` oldest first.
    pub fn versions_of(&self, rel: &str) -> Vec<(String, Vec<u8>)> {
        let vdir = self.dst.join(".mirrortray/versions");
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(&vdir) else {
            return out;
        };
        let mut stamps: Vec<String> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        stamps.sort();
        for s in stamps {
            let p = vdir.join(&s).join(rel);
            if let Ok(m) = std::fs::symlink_metadata(&p)
                && m.is_file()
            {
                out.push((s, std::fs::read(&p).unwrap()));
            }
        }
        out
    }

    /// Every file content found anywhere under DST's versions folder.
    pub fn all_version_contents(&self) -> Vec<Vec<u8>> {
        let vdir = self.dst.join(".mirrortray/versions");
        walkdir::WalkDir::new(vdir)
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_file())
            .map(|e| std::fs::read(e.path()).unwrap())
            .collect()
    }

    /// Names left in DST's temp folder (should be none when idle).
    pub fn temp_leftovers(&self) -> Vec<String> {
        std::fs::read_dir(self.dst.join(".mirrortray/tmp"))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A finished run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn code(&self, want: i32) -> &Run {
        assert_eq!(
            self.code, want,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
    #[track_caller]
    pub fn ok(&self) -> &Run {
        self.code(0)
    }
    #[track_caller]
    pub fn stderr_has(&self, s: &str) -> &Run {
        assert!(
            self.stderr.contains(s),
            "stderr lacks {s:?}\n--- stderr\n{}\n--- stdout\n{}",
            self.stderr,
            self.stdout
        );
        self
    }
    #[track_caller]
    pub fn stdout_has(&self, s: &str) -> &Run {
        assert!(
            self.stdout.contains(s),
            "stdout lacks {s:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
    /// No Rust debug dump or panic in the output.
    #[track_caller]
    pub fn no_debug_dump(&self) -> &Run {
        for bad in [
            "panicked",
            "RUST_BACKTRACE",
            "Os {",
            "kind:",
            "Error {",
            "unwrap()",
        ] {
            assert!(
                !self.stderr.contains(bad) && !self.stdout.contains(bad),
                "debug dump ({bad:?}) in output\n{}\n{}",
                self.stderr,
                self.stdout
            );
        }
        self
    }
}

/// Polls `cond` every 10 ms until it holds or `deadline` passes; returns
/// whether it held. Never a fixed sleep.
/// Writes an executable script for a child process to run. Written by a
/// child process of its own: a file this multi-threaded test process wrote
/// could still be open in a sibling test's child between its fork and exec,
/// and running it would then fail with "Text file busy" (ETXTBSY).
pub fn write_program(path: &Path, text: &str) {
    use std::io::Write;
    let mut c = Command::new("sh")
        .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    assert!(
        c.wait().unwrap().success(),
        "cannot write {}",
        path.display()
    );
}

pub fn wait_for(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether this process is root (then permission tests drop privileges).
pub fn is_root() -> bool {
    rustix_uid() == 0
}

fn rustix_uid() -> u32 {
    // Avoid a libc dependency: /proc/self/status has "Uid:\treal\teff...".
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2))
                .and_then(|u| u.parse().ok())
        })
        .unwrap_or(u32::MAX)
}

/// A `Command` that runs the binary as nobody (65534) via setpriv, for
/// permission tests that root would otherwise pass through.
pub fn as_nobody(world: &World) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(bin());
    world.isolate(&mut c);
    c
}

/// Makes `path` and everything under it owned by nobody (so the dropped
/// process can write where the test wants it to).
pub fn chown_nobody(path: &Path) {
    let st = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success());
}

/// Whether this run is CI's (`CI` set, as `.ci/run` does): there, a test
/// that cannot do what it is about fails instead of skipping.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// A test that cannot run here says why and returns; in CI it fails (the
/// CI machine is set up to run them all).
#[track_caller]
pub fn skip(why: &str) {
    if in_ci() {
        panic!("cannot run in CI: {why}");
    }
    eprintln!("SKIPPED: {why}");
}

/// Whether `tool` is on PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

/// The tools a test needs, or it is skipped (failed in CI).
pub fn tools(needed: &[&str]) -> bool {
    for t in needed {
        if !have(t) {
            skip(&format!(
                "{t} is not installed (scripts/install-deps.sh --test installs it)"
            ));
            return false;
        }
    }
    true
}

/// A file that nobody can open while this lives: a write lease (fcntl
/// `F_SETLEASE`) makes every other `open` of it wait until the lease is
/// given up (or the system's lease-break-time, 45 s by default, runs out).
/// A real barrier in the middle of a copy, with no hook in the product.
pub struct Lease {
    file: std::fs::File,
}

impl Lease {
    pub fn take(path: &Path) -> Result<Lease, String> {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        // SAFETY: ignoring SIGIO (sent to the holder when a lease is to be
        // broken; its default action ends the process) and fcntl on an open
        // descriptor touch no memory of ours.
        let r = unsafe {
            libc::signal(libc::SIGIO, libc::SIG_IGN);
            libc::fcntl(file.as_raw_fd(), libc::F_SETLEASE, libc::F_WRLCK)
        };
        if r != 0 {
            return Err(format!(
                "{}: cannot take a lease: {}",
                path.display(),
                std::io::Error::last_os_error()
            ));
        }
        Ok(Lease { file })
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: as in `take`.
        unsafe {
            libc::fcntl(self.file.as_raw_fd(), libc::F_SETLEASE, libc::F_UNLCK);
        }
    }
}
