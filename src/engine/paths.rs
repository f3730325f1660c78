//! paths: the edge where user-given paths become absolute, resolved folders,
//! and where overlapping pairs are refused (safety rule 5).
//!
//! SRC is resolved through symlinks (`canonicalize`). DST may not exist yet:
//! its longest existing ancestor is resolved and the rest appended. Overlap is
//! checked twice: by resolved path prefix, and by (device, inode) of every
//! existing ancestor, which also catches bind mounts and hard-to-spot aliases.
//! After this point the engine never resolves a user path again.

use std::io;
use std::path::{Component, Path, PathBuf};

use super::error::{SetupError, reason};

/// mirrortray's own state folder (`$XDG_STATE_HOME/mirrortray` on Linux):
/// the log, the drive records, the first-start marker. `None`: this system
/// has no place for it (no HOME).
pub fn state_dir() -> Option<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "mirrortray")?;
    Some(
        dirs.state_dir()
            .unwrap_or_else(|| dirs.data_local_dir())
            .to_path_buf(),
    )
}

/// The platform cache dir of mirrortray (`$XDG_CACHE_HOME/mirrortray` on
/// Linux): what can be fetched again, such as the offsite repositories'
/// index and trees.
pub fn cache_dir() -> Option<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "mirrortray")?;
    Some(dirs.cache_dir().to_path_buf())
}

/// A resolved, checked pair of roots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    pub src: PathBuf,
    pub dst: PathBuf,
}

/// Makes `p` absolute against the current directory, without touching the disk.
pub fn absolute(p: &Path) -> io::Result<PathBuf> {
    std::path::absolute(p)
}

/// Resolves SRC: it must exist and be a folder.
pub fn resolve_src(src: &Path) -> Result<PathBuf, SetupError> {
    let abs =
        absolute(src).map_err(|e| SetupError::SrcUnreadable(src.to_path_buf(), reason(&e)))?;
    let real = match std::fs::canonicalize(&abs) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(SetupError::SrcMissing(abs)),
        Err(e) => return Err(SetupError::SrcUnreadable(abs, reason(&e))),
    };
    match std::fs::metadata(&real) {
        Ok(m) if m.is_dir() => Ok(real),
        Ok(_) => Err(SetupError::SrcNotDir(abs)),
        Err(e) => Err(SetupError::SrcUnreadable(abs, reason(&e))),
    }
}

/// Resolves DST, which may not exist yet. A `..` in the missing part is refused.
pub fn resolve_dst(dst: &Path) -> Result<PathBuf, SetupError> {
    let abs =
        absolute(dst).map_err(|e| SetupError::DstUnwritable(dst.to_path_buf(), reason(&e)))?;
    let mut existing = abs.clone();
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    loop {
        match std::fs::canonicalize(&existing) {
            Ok(real) => {
                let mut out = real;
                for c in rest.iter().rev() {
                    out.push(c);
                }
                if rest.is_empty() {
                    match std::fs::metadata(&out) {
                        Ok(m) if !m.is_dir() => return Err(SetupError::DstNotDir(abs)),
                        _ => {}
                    }
                }
                return Ok(out);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Ok(target) = std::fs::read_link(&existing) {
                    return Err(SetupError::DstDanglingLink(existing, target));
                }
                match existing.components().next_back() {
                    Some(Component::Normal(name)) => rest.push(name.to_os_string()),
                    _ => {
                        return Err(SetupError::DstUnwritable(
                            abs,
                            "the path has '..' in a part that does not exist".into(),
                        ));
                    }
                }
                if !existing.pop() {
                    return Err(SetupError::DstUnwritable(abs, reason(&e)));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
                return Err(SetupError::DstNotDir(abs));
            }
            Err(e) => return Err(SetupError::DstUnwritable(abs, reason(&e))),
        }
    }
}

/// Resolves both roots and refuses overlapping ones before anything is touched.
pub fn resolve_pair(src: &Path, dst: &Path) -> Result<Roots, SetupError> {
    let src = resolve_src(src)?;
    let dst = resolve_dst(dst)?;
    check_overlap(&src, &dst)?;
    Ok(Roots { src, dst })
}

/// Refuses SRC == DST, DST inside SRC, SRC inside DST.
pub fn check_overlap(src: &Path, dst: &Path) -> Result<(), SetupError> {
    let pair = || (src.to_path_buf(), dst.to_path_buf());
    if src == dst {
        let (src, dst) = pair();
        return Err(SetupError::SameFolder { src, dst });
    }
    if dst.starts_with(src) {
        let (src, dst) = pair();
        return Err(SetupError::DstInsideSrc { src, dst });
    }
    if src.starts_with(dst) {
        let (src, dst) = pair();
        return Err(SetupError::SrcInsideDst { src, dst });
    }
    check_mounts_inside(src, dst)?;
    // Same check by identity: bind mounts and other aliases.
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let id = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
        let src_id = id(src);
        let dst_id = existing_ancestor(dst).and_then(|a| id(&a).map(|i| (a, i)));
        if let (Some(s), Some((anc, d))) = (src_id, dst_id) {
            if anc == dst && s == d {
                let (src, dst) = pair();
                return Err(SetupError::SameFolder { src, dst });
            }
            if ancestors_ids(dst).contains(&s) {
                let (src, dst) = pair();
                return Err(SetupError::DstInsideSrc { src, dst });
            }
            if anc == dst && ancestors_ids(src).contains(&d) {
                let (src, dst) = pair();
                return Err(SetupError::SrcInsideDst { src, dst });
            }
        }
    }
    Ok(())
}

fn existing_ancestor(p: &Path) -> Option<PathBuf> {
    p.ancestors().find(|a| a.exists()).map(Path::to_path_buf)
}

#[cfg(unix)]
fn ancestors_ids(p: &Path) -> Vec<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    p.ancestors()
        .filter_map(|a| std::fs::metadata(a).ok())
        .map(|m| (m.dev(), m.ino()))
        .collect()
}

/// Whether `rel` is a plain relative path (no root, no `..`).
pub fn is_plain_relative(rel: &Path) -> bool {
    rel.components().all(|c| matches!(c, Component::Normal(_)))
}

/// Refuses a DST mounted again somewhere inside SRC (a bind mount): the walk
/// would find the backup inside what it backs up. Folders on Linux loop only
/// through mounts, so the mount table names every place to look.
pub fn check_mounts_inside(src: &Path, dst: &Path) -> Result<(), SetupError> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        let Ok(dst_meta) = std::fs::metadata(dst) else {
            return Ok(());
        };
        let dst_id = (dst_meta.dev(), dst_meta.ino());
        let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
            return Ok(());
        };
        for point in mount_points(&table) {
            if point == src || !point.starts_with(src) {
                continue;
            }
            if let Ok(m) = std::fs::symlink_metadata(&point)
                && (m.dev(), m.ino()) == dst_id
            {
                return Err(SetupError::DstMountedInSrc {
                    dst: dst.to_path_buf(),
                    at: point,
                });
            }
        }
    }
    Ok(())
}

/// The mount points in `/proc/self/mountinfo` (field 5, octal escapes
/// such as `\040` for a space undone).
#[cfg(target_os = "linux")]
fn mount_points(table: &str) -> Vec<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| {
            let b = field.as_bytes();
            let mut out = Vec::with_capacity(b.len());
            let mut i = 0;
            while i < b.len() {
                let octal = b.get(i + 1..i + 4).and_then(|d| {
                    std::str::from_utf8(d)
                        .ok()
                        .and_then(|d| u8::from_str_radix(d, 8).ok())
                });
                match (b[i], octal) {
                    (b'\\', Some(c)) => {
                        out.push(c);
                        i += 4;
                    }
                    (c, _) => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
            PathBuf::from(std::ffi::OsString::from_vec(out))
        })
        .collect()
}

/// How many entries `dst` holds when it is not a mirrortray backup: a
/// folder with entries and no `.mirrortray/` of its own (0: empty, missing,
/// or a backup already). Mirroring into it would move those entries into
/// the versions, to be deleted after the retention time.
pub fn foreign_entries(dst: &Path) -> usize {
    let Ok(list) = std::fs::read_dir(dst) else {
        return 0;
    };
    let names: Vec<std::ffi::OsString> =
        list.filter_map(|e| e.ok().map(|e| e.file_name())).collect();
    if names.iter().any(|n| n == super::filter::RESERVED) {
        return 0;
    }
    names.len()
}

/// `.` and `..` folded without touching the disk (the path may name a
/// drive that is gone).
pub fn fold_dots(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}
