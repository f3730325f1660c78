//! Tree snapshots and comparison: types, bytes, mtimes (ns), permission
//! bits, symlink targets. DST's `.mirrortray/` is not part of the mirror.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    File {
        bytes: Vec<u8>,
        mode: u32,
        mtime: (i64, i64),
    },
    Dir {
        mode: u32,
        mtime: (i64, i64),
    },
    Symlink {
        target: PathBuf,
        mtime: (i64, i64),
    },
    Special,
}

pub type Snapshot = BTreeMap<PathBuf, Node>;

/// Everything under `root` (not following links), minus `.mirrortray` at
/// the top. Safe while the tree changes (see `snapshot_live`).
pub fn snapshot(root: &Path) -> Snapshot {
    snapshot_live(root)
}

/// SRC's snapshot as DST should hold it: special files are not mirrored.
pub fn mirrorable(s: &Snapshot) -> Snapshot {
    s.iter()
        .filter(|(_, n)| !matches!(n, Node::Special))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn describe(n: &Node) -> String {
    match n {
        Node::File { bytes, mode, mtime } => format!(
            "file {} bytes mode {:o} mtime {}.{:09}",
            bytes.len(),
            mode,
            mtime.0,
            mtime.1
        ),
        Node::Dir { mode, mtime } => {
            format!("dir mode {:o} mtime {}.{:09}", mode, mtime.0, mtime.1)
        }
        Node::Symlink { target, mtime } => format!(
            "symlink -> {} mtime {}.{:09}",
            target.display(),
            mtime.0,
            mtime.1
        ),
        Node::Special => "special".into(),
    }
}

/// The differences between two snapshots, one line each (empty = equal).
pub fn diff(want: &Snapshot, got: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for (k, w) in want {
        match got.get(k) {
            None => out.push(format!("missing in DST: {} ({})", k.display(), describe(w))),
            Some(g) if g != w => {
                let extra = match (w, g) {
                    (Node::File { bytes: a, .. }, Node::File { bytes: b, .. }) if a != b => {
                        " [bytes differ]"
                    }
                    _ => "",
                };
                out.push(format!(
                    "differs: {}\n   SRC {}\n   DST {}{extra}",
                    k.display(),
                    describe(w),
                    describe(g)
                ));
            }
            _ => {}
        }
    }
    for (k, g) in got {
        if !want.contains_key(k) {
            out.push(format!("extra in DST: {} ({})", k.display(), describe(g)));
        }
    }
    out
}

/// Asserts DST mirrors SRC exactly, with a readable diff if not.
#[track_caller]
pub fn assert_mirrored(src: &Path, dst: &Path) {
    let d = diff(&mirrorable(&snapshot(src)), &snapshot(dst));
    assert!(d.is_empty(), "DST does not mirror SRC:\n{}", d.join("\n"));
}

/// Whether DST mirrors SRC (for polling).
pub fn is_mirrored(src: &Path, dst: &Path) -> bool {
    diff(&mirrorable(&snapshot(src)), &snapshot(dst)).is_empty()
}

/// A snapshot like `tree::snapshot`, but one that never panics when DST
/// changes under it (an entry gone between listing and reading is left
/// out: the next poll sees the settled state).
pub fn snapshot_live(root: &Path) -> Snapshot {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
    {
        let Ok(e) = e else { continue };
        let Ok(rel) = e.path().strip_prefix(root) else {
            continue;
        };
        let rel = rel.to_path_buf();
        if rel
            .components()
            .next()
            .map(|c| c.as_os_str() == ".mirrortray")
            == Some(true)
        {
            continue;
        }
        let Ok(m) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        let mtime = (m.mtime(), m.mtime_nsec());
        let mode = m.permissions().mode() & 0o7777;
        let ft = m.file_type();
        let node = if ft.is_symlink() {
            let Ok(target) = std::fs::read_link(e.path()) else {
                continue;
            };
            Node::Symlink { target, mtime }
        } else if ft.is_dir() {
            Node::Dir { mode, mtime }
        } else if ft.is_file() {
            let Ok(bytes) = std::fs::read(e.path()) else {
                continue;
            };
            Node::File { bytes, mode, mtime }
        } else {
            Node::Special
        };
        out.insert(rel, node);
    }
    out
}
