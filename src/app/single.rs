//! single: one tray per user. The first `mirrortray` takes an exclusive
//! lock on a file in the user's runtime folder (`$XDG_RUNTIME_DIR/mirrortray/
//! tray.lock`) and holds it until it exits; the OS releases it even after a
//! crash, so a stale file never blocks the next start. A second tray finds
//! the lock taken, says so with the first one's process id, and exits 0
//! instead of adding a second icon.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::PathBuf;

/// Held for the life of the tray.
pub struct Instance {
    _file: Option<File>,
}

/// What the lock said.
pub enum Claim {
    /// We are the only tray.
    First(Instance),
    /// Another tray runs (with this process id, if it wrote it).
    Running(Option<u32>),
}

/// The lock file for this user.
pub fn lock_path() -> PathBuf {
    mirrortray::engine::status_file::runtime_dir().join("tray.lock")
}

/// Claims the tray for this process. A lock that cannot be made at all
/// (unwritable runtime folder) does not stop the tray: it is logged, and
/// the tray runs unguarded.
pub fn claim() -> Claim {
    let path = lock_path();
    let opened = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
        });
    let mut file = match opened {
        Ok(f) => f,
        Err(e) => {
            log::warn!(
                "{}: cannot create the single-instance lock: {}; not checking for another running tray",
                mirrortray::engine::error::show(&path),
                mirrortray::engine::error::reason(&e)
            );
            return Claim::First(Instance { _file: None });
        }
    };
    match file.try_lock() {
        Ok(()) => {
            // Who holds it, for the second tray's message.
            let _ = file.set_len(0);
            let _ = file.rewind();
            let _ = write!(file, "{}", std::process::id());
            Claim::First(Instance { _file: Some(file) })
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            Claim::Running(text.trim().parse().ok())
        }
        Err(std::fs::TryLockError::Error(e)) => {
            log::warn!(
                "{}: cannot lock: {}; not checking for another running tray",
                mirrortray::engine::error::show(&path),
                mirrortray::engine::error::reason(&e)
            );
            Claim::First(Instance { _file: Some(file) })
        }
    }
}
