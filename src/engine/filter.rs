//! filter: which relative paths a pair leaves alone.
//!
//! Patterns use gitignore syntax (the `ignore` crate's matcher, as ripgrep
//! and fd use it), rooted at the pair: `*.tmp`, `build/`, `/only-at-root`,
//! `!keep.tmp`. An ignored path is neither copied to DST nor deleted from it.
//! DST's own `.mirrortray/` folder at its root is reserved and never part of
//! the mirror.

use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

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
