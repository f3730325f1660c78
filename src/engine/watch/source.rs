//! source: where the worker hears about changes in SRC.
//!
//! Two backends behind one face, both sending [`Heard`] to a channel:
//! - on Linux, `inotify` (this crate's own, exact about paths across folder
//!   moves; see its module doc for why);
//! - elsewhere, notify's recommended watcher, its events translated by
//!   `hints`. It adds a new folder's watch only after reporting the folder,
//!   so such folders need a second look once their watch surely exists
//!   ([`Source::second_look`]).
//!
//! Either way, every watch exists when [`Source::start`] returns: a
//! reconcile started after it misses nothing.

use std::path::{Path, PathBuf};

use crossbeam_channel::Sender;
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use super::hints::{Heard, is_read_only, translate};
use super::pending::Hint;

/// Why watching could not start.
#[derive(Debug)]
pub enum StartError {
    /// The system's watch limit is reached (fall back to periodic scans).
    Limit,
    /// Anything else, in words.
    Other(String),
}

/// A live watch of one SRC tree; dropping it stops it.
pub struct Source {
    backend: Backend,
    src: PathBuf,
}

enum Backend {
    #[cfg(target_os = "linux")]
    Inotify(super::inotify::Watcher),
    Notify(RecommendedWatcher),
}

impl Source {
    /// Watches `src` recursively with the platform's best backend.
    pub fn start(src: &Path, out: Sender<Heard>) -> Result<Source, StartError> {
        #[cfg(target_os = "linux")]
        {
            use super::inotify::{StartError as E, Watcher};
            match Watcher::start(src, out) {
                Ok(w) => Ok(Source {
                    backend: Backend::Inotify(w),
                    src: src.to_path_buf(),
                }),
                Err(E::Limit) => Err(StartError::Limit),
                Err(E::Io(e)) => Err(StartError::Other(crate::engine::error::reason(&e))),
            }
        }
        #[cfg(not(target_os = "linux"))]
        Source::start_notify(src, out)
    }

    /// Watches `src` with notify (the backend of other platforms; on Linux
    /// only for its tests).
    pub fn start_notify(src: &Path, out: Sender<Heard>) -> Result<Source, StartError> {
        let root = src.to_path_buf();
        let tx = out.clone();
        let config = notify::Config::default().with_follow_symlinks(false);
        let mut watcher = RecommendedWatcher::new(
            move |ev: notify::Result<notify::Event>| {
                // Never block notify's thread: the channel is unbounded.
                match ev {
                    // Reads would only fill the queue.
                    Ok(e) if is_read_only(&e) => {}
                    Ok(e) => {
                        for h in translate(&e, &root) {
                            let _ = tx.send(h);
                        }
                    }
                    Err(e) if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) => {
                        let _ = tx.send(Heard::WatchLimit);
                    }
                    Err(e) => {
                        let _ = tx.send(Heard::Failed(e.to_string()));
                    }
                }
            },
            config,
        )
        .map_err(|e| StartError::Other(e.to_string()))?;
        match watcher.watch(src, RecursiveMode::Recursive) {
            Ok(()) => {}
            Err(e) if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) => {
                return Err(StartError::Limit);
            }
            Err(e) => {
                // One folder could not be watched (unreadable): notify stops
                // at it, so the folders after it are watched one by one.
                let mut unwatched = Vec::new();
                watch_around(&mut watcher, src, e, &mut unwatched).map_err(|e| {
                    if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
                        StartError::Limit
                    } else {
                        StartError::Other(e.to_string())
                    }
                })?;
                for p in unwatched {
                    if let Ok(rel) = p.strip_prefix(src) {
                        let _ = out.send(Heard::Unwatched(rel.to_path_buf()));
                    }
                }
            }
        }
        Ok(Source {
            backend: Backend::Notify(watcher),
            src: src.to_path_buf(),
        })
    }

    /// Returns once every change made before the call has been heard (on
    /// Linux; notify's backend cannot tell, and returns at once).
    pub fn sync(&self) {
        #[cfg(target_os = "linux")]
        if let Backend::Inotify(w) = &self.backend {
            w.sync();
        }
    }

    /// Whether a folder that appears must be looked at again a little later
    /// (its watch is added after it was reported).
    pub fn second_look(&self) -> bool {
        matches!(self.backend, Backend::Notify(_))
    }

    /// Tries again to watch a folder that could not be (`rel` from SRC);
    /// a `Retry` of it is heard when it now is. `out` is the channel the
    /// source was started with (notify's backend answers here).
    pub fn watch_again(&mut self, rel: &Path, out: &Sender<Heard>) {
        match &mut self.backend {
            #[cfg(target_os = "linux")]
            Backend::Inotify(w) => w.watch_again(rel),
            Backend::Notify(w) => {
                let p = self.src.join(rel);
                match w.watch(&p, RecursiveMode::Recursive) {
                    Ok(()) => {
                        let _ = out.send(Heard::Hint(Hint::Retry(rel.to_path_buf())));
                    }
                    Err(_) if !p.exists() => {}
                    Err(_) => {
                        let _ = out.send(Heard::Unwatched(rel.to_path_buf()));
                    }
                }
            }
        }
    }
}

/// After `watch(root)` failed at one folder (`err` names it), watches the
/// folders notify's walk did not reach: notify walks depth-first in listing
/// order and stops at the first error, so what is left is, for each folder
/// between the failing one and `root`, the sub-folders listed after the
/// branch that leads to it. Each is watched recursively; one that fails
/// again is gone around the same way (a work list, no recursion). The
/// folders that cannot be watched go in `unwatched`.
fn watch_around(
    w: &mut RecommendedWatcher,
    root: &Path,
    err: notify::Error,
    unwatched: &mut Vec<PathBuf>,
) -> Result<(), notify::Error> {
    let mut work: Vec<(PathBuf, notify::Error)> = vec![(root.to_path_buf(), err)];
    while let Some((top, err)) = work.pop() {
        let Some(failed) = err.paths.first().cloned() else {
            if top == root {
                return Err(err);
            }
            unwatched.push(top);
            continue;
        };
        if !failed.starts_with(&top) {
            return Err(err);
        }
        unwatched.push(failed.clone());
        if failed == top {
            continue;
        }
        let mut branch = failed.as_path();
        while let Some(parent) = branch.parent() {
            if !parent.starts_with(&top) {
                break;
            }
            let mut after = false;
            if let Ok(rd) = std::fs::read_dir(parent) {
                for e in rd.flatten() {
                    if e.path() == branch {
                        after = true;
                        continue;
                    }
                    let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
                    if after && is_dir {
                        let p = e.path();
                        if let Err(e2) = w.watch(&p, RecursiveMode::Recursive) {
                            if matches!(e2.kind, notify::ErrorKind::MaxFilesWatch) {
                                return Err(e2);
                            }
                            work.push((p, e2));
                        }
                    }
                }
            }
            if parent == top {
                break;
            }
            branch = parent;
        }
    }
    Ok(())
}
