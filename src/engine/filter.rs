//! filter: which relative paths a pair leaves alone.
//!
//! Patterns use gitignore syntax (the `ignore` crate's matcher, as ripgrep
//! and fd use it), rooted at the pair: `*.tmp`, `build/`, `/only-at-root`,
//! `!keep.tmp`. An ignored path is neither copied to DST nor deleted from it.
//! DST's own `.mirrortray/` folder at its root is reserved and never part of
//! the mirror.
//!
//! Unless a pair's settings turn it off (`ignore_temporary_files = false`),
//! [`TEMPORARY`] comes before the user's own patterns: the lock, swap and
//! part-downloaded files programs make and remove by themselves. Mirrored,
//! each would become a version of junk when its program removes it. The
//! list names only files no person keeps on purpose (a name pattern a real
//! document could have, such as `*.tmp` or `*~`, is not on it), and a user's
//! `!pattern` takes one back.

use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// Temporary files of well-known programs, never part of the mirror unless
/// the user says otherwise (gitignore syntax).
pub const TEMPORARY: &[&str] = &[
    // LibreOffice / OpenOffice lock files.
    ".~lock.*#",
    // Microsoft Office owner files (`~$report.docx`).
    "~$*",
    // Vim swap files (`.notes.txt.swp`, then .swo, .swn...).
    ".*.sw[a-p]",
    // Emacs lock links and auto-save files.
    ".#*",
    // (`\#`: a line starting with `#` is a comment in gitignore syntax.)
    "\\#*#",
    // Kate swap files.
    ".*.kate-swp",
    // Downloads in progress: Firefox, Chrome, Safari.
    "*.part",
    "*.crdownload",
    "*.download/",
    // GLib/GNOME atomic saves before their rename.
    ".goutputstream-*",
    // A file still open when deleted on an NFS mount.
    ".nfs[0-9a-f]*[0-9a-f]",
];

/// The reserved folder at DST's root.
pub const RESERVED: &str = ".mirrortray";

#[derive(Debug, Clone)]
pub struct Filter {
    matcher: Gitignore,
    patterns: Vec<String>,
}

/// A pattern that does not parse.
#[derive(Debug, Clone, thiserror::Error)]
#[error("ignore pattern {pattern:?} is not valid gitignore syntax: {reason}")]
pub struct BadPattern {
    pub pattern: String,
    pub reason: String,
}

impl Filter {
    pub fn new(patterns: &[String]) -> Result<Filter, BadPattern> {
        let mut b = GitignoreBuilder::new("");
        for p in patterns {
            b.add_line(None, p).map_err(|e| BadPattern {
                pattern: p.clone(),
                reason: e.to_string(),
            })?;
        }
        let matcher = b.build().map_err(|e| BadPattern {
            pattern: patterns.join(", "),
            reason: e.to_string(),
        })?;
        Ok(Filter {
            matcher,
            patterns: patterns.to_vec(),
        })
    }

    /// A pair's filter: [`TEMPORARY`] first when `temporary`, then the
    /// user's patterns (which may take names back with `!`). A bad pattern
    /// is named as the user wrote it.
    pub fn for_pair(patterns: &[String], temporary: bool) -> Result<Filter, BadPattern> {
        let own = Filter::new(patterns)?;
        if !temporary {
            return Ok(own);
        }
        let all: Vec<String> = TEMPORARY
            .iter()
            .map(|p| p.to_string())
            .chain(patterns.iter().cloned())
            .collect();
        Filter::new(&all)
    }

    pub fn none() -> Filter {
        Filter {
            matcher: Gitignore::empty(),
            patterns: Vec::new(),
        }
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether `rel` itself is ignored (its parents were already checked by
    /// the walk, which does not descend into ignored folders).
    pub fn ignores(&self, rel: &Path, is_dir: bool) -> bool {
        !self.patterns.is_empty() && self.matcher.matched(rel, is_dir).is_ignore()
    }

    /// Whether `rel` or any of its parent folders is ignored (for a single
    /// path that arrives without a walk, e.g. from the watcher).
    pub fn ignores_path(&self, rel: &Path, is_dir: bool) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        self.matcher
            .matched_path_or_any_parents(rel, is_dir)
            .is_ignore()
    }
}

/// The folder `fsck` keeps at the root of an ext2/3/4 file system. When DST
/// is the root of such a drive and SRC has no such folder, it belongs to the
/// file system, not to the mirror: left alone, never versioned.
pub const LOST_FOUND: &str = "lost+found";

/// Whether DST's root entry `name` (of `kind`), absent from SRC, is the file
/// system's own and not an extra.
pub fn is_file_system_own(name: &std::ffi::OsStr, kind: super::fsops::Kind) -> bool {
    name == LOST_FOUND && kind == super::fsops::Kind::Dir
}

/// Whether `rel` (relative to a pair's root) is the reserved folder or inside it.
pub fn is_reserved(rel: &Path) -> bool {
    rel.components().next().map(|c| c.as_os_str() == RESERVED) == Some(true)
}

/// `a/b` joined with `c`, treating an empty `a` as the root.
pub fn join(dir: &Path, name: &std::ffi::OsStr) -> PathBuf {
    if dir.as_os_str().is_empty() {
        PathBuf::from(name)
    } else {
        dir.join(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The temporary files programs make (left out), and real files with
    /// names like them (kept).
    #[test]
    fn temporary_files_of_well_known_programs_and_only_those() {
        let f = Filter::for_pair(&[], true).unwrap();
        let temporary = [
            (".~lock.report.odt#", false),
            ("docs/~$report.docx", false),
            (".notes.txt.swp", false),
            ("a/.notes.txt.swo", false),
            (".#draft.org", false),
            ("#draft.org#", false),
            (".notes.txt.kate-swp", false),
            ("Downloads/movie.mkv.part", false),
            ("Downloads/setup.exe.crdownload", false),
            ("Downloads/big.zip.download", true),
            (".goutputstream-4XK2Q1", false),
            (".nfs000000000012345600000001", false),
        ];
        for (name, dir) in temporary {
            assert!(f.ignores_path(Path::new(name), dir), "{name} kept");
        }
        let real = [
            "report.odt",
            "notes.swp",
            ".swp",
            "draft.org~",
            "page.tmp",
            "backup.bak",
            "archive.part1.rar",
            "lock.report.odt#",
            "~report.docx",
            ".nfsrc",
            "#notes",
            ".profile",
        ];
        for name in real {
            assert!(!f.ignores_path(Path::new(name), false), "{name} left out");
        }
        // Off: every one of them is mirrored.
        let off = Filter::for_pair(&[], false).unwrap();
        assert!(!off.ignores_path(Path::new(".~lock.report.odt#"), false));
        // A user's `!pattern` takes one back; a bad pattern is the user's.
        let back = Filter::for_pair(&["!*.part".into()], true).unwrap();
        assert!(!back.ignores_path(Path::new("movie.mkv.part"), false));
        assert!(back.ignores_path(Path::new(".notes.txt.swp"), false));
        let bad = Filter::for_pair(&["a{b".into()], true).unwrap_err();
        assert_eq!(bad.pattern, "a{b");
    }

    #[test]
    fn gitignore_syntax() {
        let f = Filter::new(&[
            "*.tmp".into(),
            "build/".into(),
            "/top".into(),
            "!keep.tmp".into(),
        ])
        .unwrap();
        assert!(f.ignores(Path::new("a.tmp"), false));
        assert!(f.ignores(Path::new("x/a.tmp"), false));
        assert!(!f.ignores(Path::new("keep.tmp"), false));
        assert!(f.ignores(Path::new("x/build"), true));
        assert!(!f.ignores(Path::new("x/build"), false));
        assert!(f.ignores(Path::new("top"), false));
        assert!(!f.ignores(Path::new("x/top"), false));
        assert!(f.ignores_path(Path::new("x/build/deep/file.c"), false));
    }

    #[test]
    fn reserved() {
        assert!(is_reserved(Path::new(".mirrortray")));
        assert!(is_reserved(Path::new(".mirrortray/tmp/x")));
        assert!(!is_reserved(Path::new("a/.mirrortray")));
    }
}
