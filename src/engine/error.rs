//! error: what went wrong, with the path it went wrong on.
//!
//! Two kinds, as in watchexec: a [`SetupError`] stops a pair before anything
//! is touched (exit 2); an [`EntryError`] is one entry's failure, recorded
//! while the other entries go on (exit 1). Both print as one sentence a person
//! can act on: path first, then what failed, then why (and the fix, where
//! there is one). Never a `Debug` dump.

use std::io;
use std::path::{Path, PathBuf};

/// Shows a path for people: valid UTF-8 as is, control characters and
/// other bytes escaped (`\xNN`), so a name can neither colour a terminal nor
/// start a new log line.
pub fn show(path: &Path) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let mut out = String::new();
        for chunk in path.as_os_str().as_bytes().utf8_chunks() {
            for c in chunk.valid().chars() {
                push_char(&mut out, c);
            }
            for b in chunk.invalid() {
                out.push_str(&format!("\\x{b:02X}"));
            }
        }
        out
    }
    #[cfg(not(unix))]
    {
        let mut out = String::new();
        for c in path.display().to_string().chars() {
            push_char(&mut out, c);
        }
        out
    }
}

/// A character of a name as people see it: a control character (a
/// newline, an escape that would colour a terminal or forge a log line) as
/// `\xNN` (`\u{NN}` for the C1 ones), everything else as itself.
fn push_char(out: &mut String, c: char) {
    if !c.is_control() {
        out.push(c);
    } else if (c as u32) < 0x80 {
        out.push_str(&format!("\\x{:02X}", c as u32));
    } else {
        out.push_str(&format!("\\u{{{:X}}}", c as u32));
    }
}

/// A write to the backup that found its disk full, as the status says it
/// (with what is free and what was needed after " — ").
pub const DISK_FULL: &str = "backup disk full";

/// An OS error in words, without the "(os error N)" tail.
pub fn reason(e: &io::Error) -> String {
    #[cfg(unix)]
    if let Some(code) = e.raw_os_error() {
        let words = match code {
            c if c == rustix::io::Errno::NOSPC.raw_os_error() => {
                Some("no space left on the device")
            }
            c if c == rustix::io::Errno::NAMETOOLONG.raw_os_error() => {
                Some("the name is too long for this file system")
            }
            c if c == rustix::io::Errno::ACCESS.raw_os_error()
                || c == rustix::io::Errno::PERM.raw_os_error() =>
            {
                Some("permission denied")
            }
            c if c == rustix::io::Errno::ROFS.raw_os_error() => {
                Some("the file system is read-only")
            }
            c if c == rustix::io::Errno::LOOP.raw_os_error() => {
                Some("it is a symlink (not followed)")
            }
            c if c == rustix::io::Errno::NOENT.raw_os_error() => {
                Some("it does not exist (any more)")
            }
            c if c == rustix::io::Errno::DQUOT.raw_os_error() => Some("disk quota exceeded"),
            // Opening without waiting: a file lease held by another program.
            c if c == rustix::io::Errno::AGAIN.raw_os_error() => {
                Some("another program holds it for itself (a file lease)")
            }
            c if c == rustix::io::Errno::IO.raw_os_error() => Some(
                "input/output error (a failing disk, or a network share or FUSE driver refusing the request)",
            ),
            c if c == rustix::io::Errno::XDEV.raw_os_error() => {
                Some("it is on another file system (a mount point inside the backup folder?)")
            }
            _ => None,
        };
        if let Some(w) = words {
            return w.to_string();
        }
    }
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// One entry's failure. `path` is absolute (in SRC when reading failed, in
/// DST when writing failed); `action` says what mirrortray was doing.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: cannot {action}: {reason}", show(path))]
pub struct EntryError {
    pub path: PathBuf,
    pub action: &'static str,
    pub reason: String,
    /// Whether retrying later may help (not for e.g. "name too long").
    pub transient: bool,
}

impl EntryError {
    pub fn new(path: impl Into<PathBuf>, action: &'static str, e: &io::Error) -> EntryError {
        #[cfg(unix)]
        let transient = e.raw_os_error() != Some(rustix::io::Errno::NAMETOOLONG.raw_os_error());
        #[cfg(not(unix))]
        let transient = true;
        EntryError {
            path: path.into(),
            action,
            reason: reason(e),
            transient,
        }
    }

    pub fn msg(
        path: impl Into<PathBuf>,
        action: &'static str,
        reason: impl Into<String>,
    ) -> EntryError {
        EntryError {
            path: path.into(),
            action,
            reason: reason.into(),
            transient: true,
        }
    }
}

/// A pair cannot be mirrored at all; nothing was changed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SetupError {
    #[error("source folder {} does not exist. Check the path; if it is on a removable drive or a network share, mount it first. Nothing was changed in the backup.", show(.0))]
    SrcMissing(PathBuf),
    #[error("source {} is not a folder. mirrortray mirrors folders: give the folder that contains it.", show(.0))]
    SrcNotDir(PathBuf),
    #[error("cannot read source folder {}: {}. Nothing was changed in the backup.", show(.0), .1)]
    SrcUnreadable(PathBuf, String),
    #[error("source folder {} is empty and is on another device than at the last backup: it looks unmounted. Nothing was changed in the backup; mount it and try again (or, if it really is a new empty folder, remove {}).", show(.0), show(.1))]
    SrcLooksUnmounted(PathBuf, PathBuf),
    #[error("the backup folder {} is inside the source folder {}: it would back itself up. Choose a backup folder outside the source.", show(.dst), show(.src))]
    DstInsideSrc { src: PathBuf, dst: PathBuf },
    #[error("the source folder {} is inside the backup folder {}: mirroring would delete or version the source itself. Choose a backup folder outside the source.", show(.src), show(.dst))]
    SrcInsideDst { src: PathBuf, dst: PathBuf },
    #[error("the backup folder {} is mounted again inside the source folder, at {} (a bind mount): it would back itself up, deeper on every pass. Unmount it there, or choose another backup folder.", show(.dst), show(.at))]
    DstMountedInSrc { dst: PathBuf, at: PathBuf },
    #[error("backup path {} is a symlink to {}, which does not exist (is its drive mounted?). Nothing was changed; backups start when it is there.", show(.0), show(.1))]
    DstDanglingLink(PathBuf, PathBuf),
    #[error("source and backup are the same folder ({}{}). Choose a different backup folder.", show(.src), if .src == .dst { String::new() } else { format!(", reached as {}", show(.dst)) })]
    SameFolder { src: PathBuf, dst: PathBuf },
    #[error("backup path {} exists and is not a folder. Give a folder (it is created if missing).", show(.0))]
    DstNotDir(PathBuf),
    #[error("backup folder {} does not exist (is its drive mounted?). Nothing was changed; backups start when it is there.", show(.0))]
    DstMissing(PathBuf),
    #[error("backup folder {} is empty and on another device than the backup it held: its drive looks unplugged or unmounted. Nothing was written; plug the drive in and backups resume by themselves. (If this really is a new, empty backup folder, remove its line from {}.)", show(.0), show(.1))]
    BackupDriveMissing(PathBuf, PathBuf),
    #[error("cannot use backup folder {}: {}. Choose a folder you can write to.", show(.0), .1)]
    DstUnwritable(PathBuf, String),
    #[error("backup folder {} is in use by another mirrortray ({}). Wait for it to finish, or stop it first.", show(.dst), .holder)]
    Locked { dst: PathBuf, holder: String },
    #[error("{}: {}", show(.0), .1)]
    Other(PathBuf, String),
}

#[cfg(test)]
mod show_tests {
    use super::*;

    #[test]
    fn control_characters_and_bad_bytes_are_escaped() {
        use std::os::unix::ffi::OsStrExt;
        let table: &[(&[u8], &str)] = &[
            (b"plain/\xc3\xbcn\xc3\xaf.txt", "plain/\u{fc}n\u{ef}.txt"),
            (b"ctrl\x01\x1b[31mred", "ctrl\\x01\\x1B[31mred"),
            (b"new\nline\ttab\x7f", "new\\x0Aline\\x09tab\\x7F"),
            (b"c1\xc2\x85", "c1\\u{85}"),
            (b"bad\xff", "bad\\xFF"),
        ];
        for (raw, want) in table {
            let p = Path::new(std::ffi::OsStr::from_bytes(raw));
            assert_eq!(show(p), *want, "{raw:?}");
        }
    }
}
