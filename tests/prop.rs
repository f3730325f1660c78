//! Property test: random trees and random edits, then `sync`; DST must
//! equal SRC exactly, a second `sync` must change nothing, and every content
//! DST held before the edits that it no longer holds at that path must be in
//! the versions.
//!
//! Trees have nested folders (empty ones too), files with random bytes,
//! modes and nanosecond mtimes (before 1970 too), symlinks (dangling, loops,
//! absolute), and a name that is not UTF-8. Edits: create, same-size rewrite
//! in the same second with other nanoseconds (rsync's blind spot), delete,
//! rename, chmod, file replaced by a folder, a folder or link replaced by a
//! file, anything replaced by a symlink, time-only change; in up to three
//! rounds of edits, each followed by a sync.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use crate::cli_sync::{assert_noop_sync, chmod, set_mtime, sync_ok};
use crate::support::tree::Node;
use crate::support::*;

const NAMES: &[&[u8]] = &[b"a", b"b", b"c", b"d", b"sp ace", b"n\xff"];
const FILE_MODES: &[u32] = &[0o644, 0o600, 0o755, 0o444, 0o400, 0o000, 0o4755];
const DIR_MODES: &[u32] = &[0o755, 0o700, 0o555, 0o750, 0o1777];
const TARGETS: &[&[u8]] = &[
    b"a",
    b"../b",
    b".",
    b"..",
    b"/nonexistent/x",
    b"/tmp",
    b"c/d",
    b"self",
    b"t\xfe",
];

#[derive(Debug, Clone)]
enum What {
    File { bytes: Vec<u8>, mode: u32 },
    Dir { mode: u32 },
    Link { target: &'static [u8] },
}

#[derive(Debug, Clone)]
struct Entry {
    path: Vec<&'static [u8]>,
    what: What,
    mtime: (i64, u32),
}

#[derive(Debug, Clone)]
enum Edit {
    Create(Entry),
    /// Same size, same second, other nanoseconds, other bytes.
    Rewrite {
        pick: usize,
        xor: u8,
        dns: u32,
    },
    Delete {
        pick: usize,
    },
    Rename {
        pick: usize,
        to: Vec<&'static [u8]>,
    },
    Chmod {
        pick: usize,
        mode: u32,
    },
    FileToDir {
        pick: usize,
        child: bool,
    },
    /// A folder (with its content) or a symlink becomes a file.
    ToFile {
        pick: usize,
        bytes: Vec<u8>,
    },
    /// Anything becomes a symlink.
    ToLink {
        pick: usize,
        target: &'static [u8],
    },
    /// Only the mtime moves (nanoseconds).
    Touch {
        pick: usize,
        dns: u32,
    },
}

fn rel(parts: &[&[u8]]) -> PathBuf {
    parts.iter().map(|p| OsStr::from_bytes(p)).collect()
}

fn path_s() -> impl Strategy<Value = Vec<&'static [u8]>> {
    prop::collection::vec(prop::sample::select(NAMES), 1..=3)
}

fn mtime_s() -> impl Strategy<Value = (i64, u32)> {
    (-1_000_000_000i64..2_000_000_000, 0u32..1_000_000_000)
}

fn what_s() -> impl Strategy<Value = What> {
    prop_oneof![
        5 => (prop::collection::vec(any::<u8>(), 0..3000), prop::sample::select(FILE_MODES))
            .prop_map(|(bytes, mode)| What::File { bytes, mode }),
        2 => prop::sample::select(DIR_MODES).prop_map(|mode| What::Dir { mode }),
        2 => prop::sample::select(TARGETS).prop_map(|target| What::Link { target }),
    ]
}

fn entry_s() -> impl Strategy<Value = Entry> {
    (path_s(), what_s(), mtime_s()).prop_map(|(path, what, mtime)| Entry { path, what, mtime })
}

fn edit_s() -> impl Strategy<Value = Edit> {
    prop_oneof![
        2 => entry_s().prop_map(Edit::Create),
        3 => (any::<usize>(), 1u8..=255, 1u32..1_000_000_000).prop_map(|(pick, xor, dns)| Edit::Rewrite { pick, xor, dns }),
        2 => any::<usize>().prop_map(|pick| Edit::Delete { pick }),
        2 => (any::<usize>(), path_s()).prop_map(|(pick, to)| Edit::Rename { pick, to }),
        1 => (any::<usize>(), prop::sample::select(FILE_MODES)).prop_map(|(pick, mode)| Edit::Chmod { pick, mode }),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(pick, child)| Edit::FileToDir { pick, child }),
        1 => (any::<usize>(), 1u32..1_000_000_000).prop_map(|(pick, dns)| Edit::Touch { pick, dns }),
        1 => (any::<usize>(), prop::collection::vec(any::<u8>(), 0..100)).prop_map(|(pick, bytes)| Edit::ToFile { pick, bytes }),
        1 => (any::<usize>(), prop::sample::select(TARGETS)).prop_map(|(pick, target)| Edit::ToLink { pick, target }),
    ]
}

/// Creates `e` in `root` if its place is free and its parents can be
/// folders; returns whether it was made.
fn create(root: &Path, e: &Entry) -> bool {
    let p = root.join(rel(&e.path));
    if std::fs::symlink_metadata(&p).is_ok() {
        return false;
    }
    if let Some(parent) = p.parent()
        && std::fs::create_dir_all(parent).is_err()
    {
        return false;
    }
    let made = match &e.what {
        What::File { bytes, mode } => std::fs::write(&p, bytes).map(|()| chmod(&p, *mode)),
        What::Dir { .. } => std::fs::create_dir(&p),
        What::Link { target } => std::os::unix::fs::symlink(OsStr::from_bytes(target), &p),
    };
    if made.is_err() {
        return false;
    }
    if !matches!(e.what, What::Dir { .. }) {
        set_mtime(&p, e.mtime.0, e.mtime.1);
    }
    true
}

/// Folder modes and mtimes, deepest first, after all content exists.
fn finish_dirs(root: &Path, entries: &[Entry]) {
    let mut dirs: Vec<&Entry> = entries
        .iter()
        .filter(|e| matches!(e.what, What::Dir { .. }))
        .collect();
    dirs.sort_by_key(|e| std::cmp::Reverse(e.path.len()));
    for e in dirs {
        let p = root.join(rel(&e.path));
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if !m.is_dir() {
            continue;
        }
        if let What::Dir { mode } = e.what {
            chmod(&p, mode);
        }
        set_mtime(&p, e.mtime.0, e.mtime.1);
    }
}

/// Everything in SRC (relative paths), sorted, for picking edit targets.
fn entries(root: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .filter_map(|e| e.ok())
        .map(|e| e.path().strip_prefix(root).unwrap().to_path_buf())
        .collect()
}

fn apply(root: &Path, edit: &Edit) {
    if let Edit::Create(e) = edit {
        create(root, e);
        return;
    }
    let all = entries(root);
    if all.is_empty() {
        return;
    }
    let pick = match edit {
        Edit::Rewrite { pick, .. }
        | Edit::Delete { pick }
        | Edit::Rename { pick, .. }
        | Edit::Chmod { pick, .. }
        | Edit::FileToDir { pick, .. }
        | Edit::Touch { pick, .. }
        | Edit::ToFile { pick, .. }
        | Edit::ToLink { pick, .. } => *pick,
        Edit::Create(_) => unreachable!(),
    };
    let p = root.join(&all[pick % all.len()]);
    let m = std::fs::symlink_metadata(&p).unwrap();
    let (sec, nsec) = {
        use std::os::unix::fs::MetadataExt;
        (m.mtime(), m.mtime_nsec() as u32)
    };
    match edit {
        Edit::Rewrite { xor, dns, .. } if m.is_file() => {
            let mut bytes = std::fs::read(&p).unwrap();
            for b in &mut bytes {
                *b ^= xor;
            }
            let mode = std::fs::metadata(&p).unwrap().permissions();
            chmod(&p, 0o644);
            std::fs::write(&p, &bytes).unwrap();
            std::fs::set_permissions(&p, mode).unwrap();
            set_mtime(&p, sec, (nsec + dns) % 1_000_000_000);
        }
        Edit::Touch { dns, .. } => set_mtime(&p, sec, (nsec + dns) % 1_000_000_000),
        Edit::Delete { .. } => {
            let _ = if m.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
        }
        Edit::Rename { to, .. } => {
            let dest = root.join(rel(to));
            if let Some(parent) = dest.parent()
                && std::fs::create_dir_all(parent).is_err()
            {
                return;
            }
            let _ = std::fs::rename(&p, &dest);
        }
        Edit::Chmod { mode, .. } if !m.file_type().is_symlink() => {
            let mode = if m.is_dir() { mode | 0o700 } else { *mode };
            chmod(&p, mode);
        }
        Edit::FileToDir { child, .. } if m.is_file() => {
            std::fs::remove_file(&p).unwrap();
            std::fs::create_dir(&p).unwrap();
            if *child {
                std::fs::write(p.join("child"), "child of a former file").unwrap();
            }
        }
        Edit::ToFile { bytes, .. } if !m.is_file() => {
            let _ = if m.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            std::fs::write(&p, bytes).unwrap();
        }
        Edit::ToLink { target, .. } if !m.file_type().is_symlink() => {
            let _ = if m.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            std::os::unix::fs::symlink(OsStr::from_bytes(target), &p).unwrap();
        }
        _ => {}
    }
}

/// The files DST holds: path -> bytes.
fn dst_files(dst: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    snapshot(dst)
        .into_iter()
        .filter_map(|(p, n)| match n {
            Node::File { bytes, .. } => Some((p, bytes)),
            _ => None,
        })
        .collect()
}

fn check(tree: &[Entry], rounds: &[Vec<Edit>]) {
    let w = World::new();
    for e in tree {
        create(&w.src, e);
    }
    finish_dirs(&w.src, tree);
    sync_ok(&w, &[]);
    assert_noop_sync(&w);
    for edits in rounds {
        let before = dst_files(&w.dst);
        for e in edits {
            apply(&w.src, e);
        }
        sync_ok(&w, &[]);
        assert_noop_sync(&w);
        let now = dst_files(&w.dst);
        let kept = w.all_version_contents();
        for (p, bytes) in &before {
            if now.get(p) != Some(bytes) {
                assert!(
                    kept.contains(bytes),
                    "{} lost its content ({} bytes) and no version holds it",
                    p.display(),
                    bytes.len()
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 32,
        failure_persistence: None,
        max_shrink_iters: 200,
        .. ProptestConfig::default()
    })]

    #[test]
    fn random_trees_and_edits_mirror_exactly(
        tree in prop::collection::vec(entry_s(), 1..30),
        rounds in prop::collection::vec(prop::collection::vec(edit_s(), 1..12), 1..=3),
    ) {
        check(&tree, &rounds);
    }
}
