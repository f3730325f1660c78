//! config_watch: notices when the config file changes, so an edit made
//! through "Settings" (or `mirrortray add`) applies without a restart.
//!
//! The folder holding the file is watched, not the file: editors save by
//! writing a new file and renaming it over the old one, and `mirrortray add`
//! does the same; a watch on the file itself would follow the old inode
//! away. A config that is a symlink (dotfile managers) is followed: the
//! target's folder is watched too. Events are hints: after a burst has been
//! quiet for [`SETTLE`], one `Reload` is sent and the control thread reads
//! the file and decides whether anything changed. When the OS watch cannot
//! be set up, the file's size and time are checked every [`POLL`] instead.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crossbeam_channel::{RecvTimeoutError, Sender, unbounded};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use super::control::Ctl;

/// Quiet time after the last event before the config is read again.
const SETTLE: Duration = Duration::from_millis(300);
/// Interval of the fallback check.
const POLL: Duration = Duration::from_secs(2);

/// Starts watching `config` on a thread of its own.
pub fn start(config: PathBuf, ctl: Sender<Ctl>) {
    let spawned = std::thread::Builder::new()
        .name("config-watch".into())
        .spawn(move || run(&config, &ctl));
    if let Err(e) = spawned {
        log::warn!(
            "cannot watch the config file for changes ({e}); restart mirrortray after editing it"
        );
    }
}

/// The folders to watch and the file names that matter in them.
fn targets(config: &Path) -> Vec<(PathBuf, OsString)> {
    let mut out = Vec::new();
    let mut p = config.to_path_buf();
    for _ in 0..8 {
        if let (Some(dir), Some(name)) = (p.parent(), p.file_name()) {
            out.push((dir.to_path_buf(), name.to_os_string()));
        }
        match std::fs::read_link(&p) {
            Ok(next) => p = p.parent().map(|d| d.join(&next)).unwrap_or(next),
            Err(_) => break,
        }
    }
    out
}

fn run(config: &Path, ctl: &Sender<Ctl>) {
    let targets = targets(config);
    let (tx, rx) = unbounded::<()>();
    let names: Vec<OsString> = targets.iter().map(|(_, n)| n.clone()).collect();
    let watcher = RecommendedWatcher::new(
        move |ev: notify::Result<notify::Event>| {
            let relevant = match ev {
                // Reads are not changes: our own reload opens the file,
                // and counting that would reload again and again.
                Ok(ev) if is_read(&ev.kind) => false,
                Ok(ev) => {
                    ev.need_rescan()
                        || ev
                            .paths
                            .iter()
                            .any(|p| p.file_name().is_some_and(|n| names.iter().any(|m| m == n)))
                }
                Err(_) => true,
            };
            if relevant {
                let _ = tx.send(());
            }
        },
        notify::Config::default(),
    );
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => return poll(config, ctl, &e.to_string()),
    };
    for (dir, _) in &targets {
        // The config folder is ours; make it so there is something to watch.
        if let Err(e) = std::fs::create_dir_all(dir)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                watcher
                    .watch(dir, RecursiveMode::NonRecursive)
                    .map_err(|e| e.to_string())
            })
        {
            return poll(
                config,
                ctl,
                &format!("{}: {e}", mirrortray::engine::error::show(dir)),
            );
        }
    }
    loop {
        if rx.recv().is_err() {
            return;
        }
        // Let the burst (write, rename, chmod...) settle.
        loop {
            match rx.recv_timeout(SETTLE) {
                Ok(()) => continue,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        log::debug!(
            "{}: changed; reloading",
            mirrortray::engine::error::show(config)
        );
        if ctl.send(Ctl::Reload).is_err() {
            return;
        }
    }
}

/// An event of a read (opened, closed without writing): not a change.
fn is_read(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    matches!(kind, EventKind::Access(a) if *a != AccessKind::Close(AccessMode::Write))
}

/// What identifies a version of the file, cheaply.
fn stamp(p: &Path) -> Option<(u64, Option<SystemTime>)> {
    let m = std::fs::metadata(p).ok()?;
    Some((m.len(), m.modified().ok()))
}

fn poll(config: &Path, ctl: &Sender<Ctl>, why: &str) {
    log::warn!(
        "cannot watch the config file for changes ({why}); checking it every {} s instead",
        POLL.as_secs()
    );
    let mut last = stamp(config);
    loop {
        std::thread::sleep(POLL);
        let now = stamp(config);
        if now != last {
            last = now;
            if ctl.send(Ctl::Reload).is_err() {
                return;
            }
        }
    }
}
