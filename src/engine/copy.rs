//! copy: puts one file or symlink from SRC into DST, complete or not at all.
//!
//! The copy goes to a temp file in `.mirrortray/tmp/` with SRC's mode and
//! times, then is renamed into place (safety rule 2). The source is checked
//! before and after (size, mtime, ctime, inode): a file that changed while it
//! was copied is copied again; one that keeps changing is reported and left
//! for the retry (safety rule 7). What DST held at that name is versioned
//! first: a file by hard link (the path never goes missing), anything else by
//! rename.

use std::ffi::OsStr;
use std::io;
use std::path::Path;

use super::batch::Look;
use super::content;
use super::ctx::Ctx;
use super::error::{DISK_FULL, EntryError};
use super::event::{Event, VersionReason};
use super::fsops::{self, DirHandle, Kind, Meta, changed_under_us};
use super::words::bytes_text;

/// Attempts before a file that keeps changing is reported.
const ATTEMPTS: usize = 4;
/// File times come from a coarse kernel clock (one tick is 1 to 10 ms): a
/// write during the copy can leave mtime and ctime as they were if the file
/// had already changed within the same tick. A file changed this recently
/// is copied again once the tick has surely passed (git's "racy" files).
const TICK: std::time::Duration = std::time::Duration::from_millis(20);
/// How long to wait for a writer that has the file open and is writing.
const WRITER_WAIT: std::time::Duration = std::time::Duration::from_millis(100);
/// A file changed less than this before its copy is compared with the copy.
const RECENT: std::time::Duration = std::time::Duration::from_secs(2);
/// An empty file made less than this ago may not have its writer counted
/// yet (see `copy_file_to_temp`).
const FRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// Copies the file or symlink `name` (at `rel`) from `src` into `dst`,
/// replacing DST's entry `existing` (kept as a version with `reason`).
pub(crate) fn copy_entry(
    ctx: &Ctx<'_>,
    src: &DirHandle,
    dst: Option<&DirHandle>,
    rel: &Path,
    sm: &Meta,
    existing: Option<(Kind, VersionReason)>,
) {
    let Some(name) = rel.file_name() else { return };
    if sm.kind == Kind::File {
        ctx.sink.event(Event::Found {
            path: rel.to_path_buf(),
            bytes: sm.size,
        });
    }
    let (Some(dst), Some(store)) = (dst, ctx.store) else {
        // Dry run: report what would happen.
        if let (Some((_, reason)), true) = (existing, ctx.versions_on) {
            ctx.versioned(rel, reason);
        }
        ctx.copied(rel, sm.size);
        return;
    };
    let made = match sm.kind {
        Kind::File => copy_file_to_temp(ctx, src, name, rel),
        Kind::Symlink => link_to_temp(ctx, src, name, rel, sm),
        _ => return,
    };
    let (tmp_name, bytes, id) = match made {
        Ok(Some(m)) => m,
        Ok(None) => return, // vanished from SRC: nothing to mirror
        Err(e) => {
            ctx.failed(e);
            return;
        }
    };
    match place(ctx, dst, rel, &tmp_name, existing) {
        Ok(()) => {
            if let (Some(o), Some(id)) = (ctx.origins, id) {
                o.record(rel, id);
            }
            ctx.copied(rel, bytes)
        }
        Err(e) => {
            store.discard(&tmp_name);
            ctx.dst_failed(rel, "write", &e);
        }
    }
}

/// A temp file made: its name, its bytes, and the SRC file it was read
/// from (device, inode; files only).
type Made = (std::ffi::OsString, u64, Option<super::origins::Id>);

/// Copies SRC's file to a new temp file. `Ok(None)` when it vanished.
fn copy_file_to_temp(
    ctx: &Ctx<'_>,
    src: &DirHandle,
    name: &OsStr,
    rel: &Path,
) -> Result<Option<Made>, EntryError> {
    let Some(store) = ctx.store else {
        return Ok(None);
    };
    let read_err = |e: &io::Error| EntryError::new(ctx.src_path(rel), "read", e);
    let mut waited_for_writer = false;
    let mut made_room = false;
    for _ in 0..ATTEMPTS {
        if ctx.halted() {
            return Ok(None);
        }
        let file = match src.open_read(name) {
            Ok(f) => f,
            // Gone, or no longer a file (a symlink or folder now): whatever
            // replaced it is seen by the next look at this name.
            Err(e) if changed_under_us(&e) => return Ok(None),
            // Another program holds a lease on it (a file server's oplock or
            // delegation, or a program that asked to be the only one): it
            // may be writing. Watching, looked at again like a file being
            // written; once, a short wait, then said plainly.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if !ctx.recheck_recent {
                    ctx.sink.event(Event::Busy {
                        path: rel.to_path_buf(),
                    });
                    return Ok(None);
                }
                if waited_for_writer {
                    return Err(EntryError::msg(
                        ctx.src_path(rel),
                        "read",
                        "another program holds it for itself (a file lease, as file servers take); it will be copied when released",
                    ));
                }
                waited_for_writer = true;
                std::thread::sleep(WRITER_WAIT);
                continue;
            }
            Err(e) => return Err(read_err(&e)),
        };
        let before = fsops::file_meta(&file).map_err(|e| read_err(&e))?;
        // Another program is writing it: a file only reported created (or
        // in a folder that just appeared) is left to its close event; one
        // written but not closed is looked at again when closed or quiet.
        let look = ctx.look();
        if matches!(look, Look::Gentle | Look::Open)
            && fsops::open_for_writing_elsewhere(&file) == Some(true)
        {
            if look == Look::Open {
                ctx.sink.event(Event::Busy {
                    path: rel.to_path_buf(),
                });
            }
            return Ok(None);
        }
        // Empty and just made: its creator may still be inside open(2), which
        // shows the name before the opener counts as a writer, so the check
        // above cannot see it (about 1 creation in 4,000 under CPU load here). Copied
        // now, it would be replaced a moment later and its empty copy kept as
        // a version. Watching: looked at again in a moment, when open(2) is
        // surely over and a writer shows (not after the quiet time of a
        // busy file: most such files are simply empty).
        if look == Look::Gentle
            && !ctx.recheck_recent
            && before.size == 0
            && changed_within(&before, FRESH)
        {
            ctx.sink.event(Event::JustMade {
                path: rel.to_path_buf(),
            });
            return Ok(None);
        }
        // Being written right now (open for writing, changed just now): a
        // write() already under way does not move the times again, so no
        // check after the copy could see it. Wait for the writer.
        if ctx.recheck_recent
            && changed_within(&before, RECENT)
            && fsops::open_for_writing_elsewhere(&file) == Some(true)
        {
            if waited_for_writer {
                return Err(EntryError::msg(
                    ctx.src_path(rel),
                    "copy",
                    "it kept changing while being copied (another program is writing it); it will be copied when it settles",
                ));
            }
            waited_for_writer = true;
            drop(file);
            std::thread::sleep(WRITER_WAIT);
            continue;
        }
        let (tmp_name, tmp) = match store.temp_file() {
            Ok(t) => t,
            // `.mirrortray/tmp` taken away with the rest of the backup by
            // an `rm -rf` still under way: the look again finds DST gone.
            Err(e) if !ctx.recheck_recent && changed_under_us(&e) => {
                ctx.dst_failed(rel, "create a temp file to copy into", &e);
                return Ok(None);
            }
            Err(e) => {
                return Err(EntryError::new(
                    ctx.dst_path(rel),
                    "create a temp file to copy into",
                    &e,
                ));
            }
        };
        // Times past the drive's range are given as its nearest end: the
        // kernel does so for its own drivers, fusefat stores garbage (1970
        // became 2098).
        let stored = Meta {
            atime: ctx.keeps.times.clamp(before.atime),
            mtime: ctx.keeps.times.clamp(before.mtime),
            ..before
        };
        let n = match content::write(&file, &tmp, &stored, ctx.owner(), None) {
            Ok(w) => {
                if w.xattrs_dropped {
                    ctx.xattrs_dropped(rel);
                }
                w.bytes
            }
            Err(e) => {
                store.discard(&tmp_name);
                drop(tmp);
                // Which side failed: reading SRC or writing DST. A read error
                // on SRC's fd surfaces as EIO mostly; the disk-full, quota and
                // read-only cases are DST's.
                let full = e.raw_os_error() == Some(rustix::io::Errno::NOSPC.raw_os_error());
                // The disk full: the oldest versions make room first (the
                // user is told), then the copy is tried again, once.
                if full && !made_room {
                    made_room = true;
                    match store.make_room(before.size) {
                        Ok(p) if p.count > 0 => {
                            ctx.pruned(p);
                            continue;
                        }
                        Ok(_) => {}
                        Err(err) => log::warn!(
                            "{}: cannot remove old versions to make room: {}",
                            super::error::show(store.versions.path()),
                            super::error::reason(&err)
                        ),
                    }
                }
                let mut err = EntryError::new(ctx.dst_path(rel), "copy", &e);
                if full && let Ok(free) = store.free_bytes() {
                    // What to make room for, in the words the status shows.
                    err.reason = format!(
                        "{DISK_FULL} — {} free, needs {}",
                        bytes_text(free),
                        bytes_text(before.size)
                    );
                }
                return Err(err);
            }
        };
        let after = fsops::file_meta(&file).map_err(|e| read_err(&e))?;
        let still_there = src.stat_opt(name).ok().flatten().map(|m| m.ino) == Some(before.ino);
        if n == before.size
            && after.unchanged_since(&before)
            && still_there
            && ctx.recheck_recent
            && let Some(wait) = racy_for(&before)
        {
            store.discard(&tmp_name);
            std::thread::sleep(wait);
            continue;
        }
        if n == before.size && after.unchanged_since(&before) && still_there {
            // A write() sets the times once, when it starts: one that began
            // before the copy and lasted through it (a throttled writer)
            // leaves them unchanged. A file changed this recently is read
            // again and compared with the copy.
            // The copy is read as the drive stored it, through a handle of
            // its own: fusefat gives garbage when it is read back through
            // the one it was written by.
            let torn = ctx.recheck_recent
                && changed_within(&before, RECENT)
                && !store
                    .tmp()
                    .open_read(&tmp_name)
                    .is_ok_and(|copy| matches!(fsops::same_content(&file, &copy), Ok(true)));
            if !torn {
                return Ok(Some((tmp_name, n, Some((before.dev, before.ino)))));
            }
        }
        store.discard(&tmp_name);
        if !still_there && src.stat_opt(name).ok().flatten().is_none() {
            return Ok(None);
        }
    }
    if !ctx.recheck_recent {
        // Watching: looked at again once quiet. Not a failure (no popup for
        // a file being saved over and over); not left to the events of
        // those writes alone either (a folder's watch may not exist yet).
        ctx.sink.event(super::event::Event::Busy {
            path: rel.to_path_buf(),
        });
        return Ok(None);
    }
    Err(EntryError::msg(
        ctx.src_path(rel),
        "copy",
        "it kept changing while being copied; it will be copied when it settles",
    ))
}

/// How long until a file's last change is surely older than one clock tick
/// (`None`: it already is). Measured against the wall clock, as file times are.
fn racy_for(m: &Meta) -> Option<std::time::Duration> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    let changed = std::time::Duration::new(u64::try_from(m.ctime.sec).ok()?, m.ctime.nsec);
    let safe = changed + TICK;
    (safe > now).then(|| safe - now)
}

/// Whether a file changed less than `window` ago.
fn changed_within(m: &Meta, window: std::time::Duration) -> bool {
    let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) else {
        return true;
    };
    match u64::try_from(m.ctime.sec) {
        Ok(s) => std::time::Duration::new(s, m.ctime.nsec) + window > now,
        Err(_) => false,
    }
}

/// Makes a copy of SRC's symlink (same target text, same times) in tmp/.
fn link_to_temp(
    ctx: &Ctx<'_>,
    src: &DirHandle,
    name: &OsStr,
    rel: &Path,
    sm: &Meta,
) -> Result<Option<Made>, EntryError> {
    let Some(store) = ctx.store else {
        return Ok(None);
    };
    let target = match src.read_link(name) {
        Ok(t) => t,
        // EINVAL: not a symlink any more.
        Err(e)
            if changed_under_us(&e)
                || e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(EntryError::new(ctx.src_path(rel), "read symlink", &e)),
    };
    let tmp_name = store.temp_name();
    let write = (|| -> io::Result<()> {
        store.tmp().symlink(&target, &tmp_name)?;
        if ctx.owner() == content::Owner::Set {
            store.tmp().set_owner(&tmp_name, sm.uid, sm.gid)?;
        }
        store.tmp().set_times(&tmp_name, sm.atime, sm.mtime)
    })();
    if let Err(e) = write {
        store.discard(&tmp_name);
        return Err(EntryError::new(ctx.dst_path(rel), "create symlink", &e));
    }
    Ok(Some((tmp_name, sm.size, None)))
}

/// Renames the temp entry into place at `rel`, versioning what is there.
pub(crate) fn place(
    ctx: &Ctx<'_>,
    dst: &DirHandle,
    rel: &Path,
    tmp_name: &OsStr,
    existing: Option<(Kind, VersionReason)>,
) -> io::Result<()> {
    let Some(store) = ctx.store else {
        return Ok(());
    };
    let name = rel
        .file_name()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let tmp = store.tmp();
    // A drive whose rename sets the mtime to now: the copy's times are set
    // again once it is in place.
    let times = match ctx.keeps.renames_keep_times {
        true => None,
        false => Some(tmp.stat(tmp_name)?),
    };
    let settle = || match times {
        Some(m) => dst.set_times(name, m.atime, m.mtime),
        None => Ok(()),
    };
    let mut existing = existing;
    for _ in 0..3 {
        match existing {
            None => match dst.writable(|| tmp.rename_noreplace(tmp_name, dst, name)) {
                Ok(()) => return settle(),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    // Something appeared at the name since the scan.
                    match dst.stat_opt(name)? {
                        Some(m) => existing = Some((m.kind, VersionReason::Replaced)),
                        None => continue,
                    }
                }
                Err(e) => return Err(e),
            },
            Some((kind @ (Kind::File | Kind::Symlink), reason)) => {
                if !store.versions.keep_linked(dst, rel, kind, reason)? {
                    store.versions.keep(dst, rel, kind, reason)?;
                }
                dst.writable(|| tmp.rename_to(tmp_name, dst, name))?;
                if store.versions.enabled() {
                    ctx.versioned(rel, reason);
                }
                return settle();
            }
            Some((kind, reason)) => {
                store.versions.keep(dst, rel, kind, reason)?;
                if store.versions.enabled() {
                    ctx.versioned(rel, reason);
                }
                existing = None;
            }
        }
    }
    Err(io::Error::other(
        "the name kept changing in the backup folder",
    ))
}
