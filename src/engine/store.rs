//! store: DST's reserved folder `.mirrortray/`, the tool's own corner of DST.
//!
//! ```text
//! DST/.mirrortray/
//!   lock          held (flock) by the one process mirroring into DST; names it
//!   source        SRC's path and device at the last backup (safety rule 4)
//!   limits        what DST's file system keeps: time precision and range, attributes
//!   tmp/          copies in progress; renamed into place when complete
//!   versions/     <UTC time>/<relative path>: what DST lost (see versions.rs)
//!   versions.log  one line per kept version: time, reason, kind, path
//!   thinned.log   one line per version thinning removed (see thinning.rs)
//!   record.json   what the backup drive cannot hold (see record.rs): snapshot
//!   record.log    its changes since, one line per pass or batch
//!   aside/        <number>: bytes of files the drive holds under no name
//!   aside.log     one JSON line per such entry kept as a version
//!   offsite-clean, offsite-clean.pending, offsite-writing
//!                 DST is as the last offsite snapshot holds it (see
//!                 offsite_clean.rs)
//! ```
//! Temp files live on DST's file system, so putting a copy in place is one
//! `rename` (safety rule 2). Leftovers of a crashed run are removed at start,
//! after the lock is held.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{Mode, OFlags};

use super::error::{SetupError, reason, show};
use super::filter::RESERVED;
use super::fsops::{DirHandle, Kind};
use super::history::History;
use super::keeps::{Keeps, Owners};
use super::plan::TimeLimits;
use super::record::{ASIDE_DIR, ASIDE_LOG, RECORD_FILE, RECORD_LOG, Record, Save};
use super::thinning::{self, Candidate, Policy};
use super::versions::{Pruned, THINNED_LOG, Thinned, Versions};

/// The share of the backup disk kept free by default (percent).
pub const DEFAULT_MIN_FREE_PERCENT: u32 = 2;

pub struct Store {
    dst_path: PathBuf,
    root: DirHandle,
    tmp: DirHandle,
    aside: DirHandle,
    pub versions: Versions,
    counter: AtomicU64,
    /// Share of the backup disk kept free (percent; 0: no floor).
    min_free_percent: u32,
    /// One pruning for space at a time (copies run in parallel).
    pruning: std::sync::Mutex<()>,
    /// One writer of `aside.log` at a time: a trim rewrites it whole.
    aside_log: std::sync::Mutex<()>,
    /// When thinning last ran (it reads the whole journal: at most hourly).
    thinned_at: std::sync::Mutex<Option<std::time::Instant>>,
    /// This process's writers of DST (see `offsite_clean`).
    writers: super::offsite_clean::Writers,
    _lock: File,
}

/// What `source` records about SRC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRecord {
    pub path: PathBuf,
    pub dev: u64,
}

impl Store {
    /// Whether `.mirrortray/` (and so, usually, the whole backup folder)
    /// was deleted while in use: nothing more can be written.
    pub fn deleted(&self) -> bool {
        self.root.is_deleted()
    }

    /// Opens (creating if needed) `.mirrortray/` in DST and takes the lock.
    pub fn open(
        dst: &DirHandle,
        dst_path: &Path,
        versions_on: bool,
        what: &str,
    ) -> Result<Store, SetupError> {
        let root_path = dst_path.join(RESERVED);
        let unwritable =
            |e: io::Error| SetupError::DstUnwritable(dst_path.to_path_buf(), reason(&e));
        let root = match dst.open_dir(OsStr::new(RESERVED)) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Another process may make it at the same moment; the lock
                // decides which one goes on.
                match dst.mkdir(OsStr::new(RESERVED), 0o755) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(unwritable(e)),
                }
                dst.open_dir(OsStr::new(RESERVED)).map_err(unwritable)?
            }
            Err(e) => {
                return Err(SetupError::Other(
                    root_path,
                    format!(
                        "mirrortray's own folder cannot be opened ({}); if it is a symlink or a file, move it away",
                        reason(&e)
                    ),
                ));
            }
        };
        let lock = acquire_lock(&root, dst_path, what)?;
        // Each part named on its own: a symlink planted there is refused
        // (never followed), and the message says which one.
        let own = |name: &'static str| {
            let path = root_path.join(name);
            move |e: io::Error| {
                SetupError::Other(
                    path,
                    format!(
                        "cannot use mirrortray's own {}: {}; if it is a symlink or the wrong kind of entry, move it away",
                        if name.ends_with(".log") {
                            "log of versions"
                        } else {
                            "folder"
                        },
                        reason(&e)
                    ),
                )
            }
        };
        let tmp = root.create_path(Path::new("tmp")).map_err(own("tmp"))?;
        let versions_dir = root
            .create_path(Path::new("versions"))
            .map_err(own("versions"))?;
        let aside = root
            .create_path(Path::new(ASIDE_DIR))
            .map_err(own(ASIDE_DIR))?;
        let journal =
            open_append(&root, OsStr::new("versions.log")).map_err(own("versions.log"))?;
        let store = Store {
            dst_path: dst_path.to_path_buf(),
            versions: Versions::new(
                versions_dir,
                root.try_clone().map_err(own("versions.log"))?,
                journal,
                dst_path.join(RESERVED).join("versions"),
                versions_on,
            ),
            root,
            tmp,
            aside,
            counter: AtomicU64::new(0),
            min_free_percent: DEFAULT_MIN_FREE_PERCENT,
            pruning: std::sync::Mutex::new(()),
            aside_log: std::sync::Mutex::new(()),
            thinned_at: std::sync::Mutex::new(None),
            writers: Default::default(),
            _lock: lock,
        };
        store.clean_tmp().map_err(unwritable)?;
        Ok(store)
    }

    /// A pass or batch that writes into DST's tree (see `offsite_clean`):
    /// the offsite marker goes now and again when it is dropped.
    pub fn writing(&self) -> super::offsite_clean::Writing<'_> {
        super::offsite_clean::Writing::begin(&self.root, &self.dst_path, &self.writers)
    }

    /// Thins the versions by `policy` (see `thinning.rs`), at most once an
    /// hour for this store.
    pub fn thin(&self, policy: &Policy, now: jiff::Timestamp) -> io::Result<Thinned> {
        {
            let mut last = self
                .thinned_at
                .lock()
                .map_err(|_| io::Error::other("thinning lock poisoned"))?;
            if last.is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(3600)) {
                return Ok(Thinned::default());
            }
            *last = Some(std::time::Instant::now());
        }
        let history = History::open(&self.dst_path).map_err(|e| io::Error::other(e.to_string()))?;
        let logged = history.thinnable();
        let candidates: Vec<Candidate> = logged
            .iter()
            .map(|l| Candidate {
                time: l.stamp.time,
                rel: &l.rel,
                reason: l.reason,
            })
            .collect();
        let gone: Vec<(&str, &Path, Kind)> = thinning::plan(policy, now, &candidates)
            .into_iter()
            .map(|i| {
                let l = &logged[i];
                (l.stamp.name.as_str(), l.rel.as_path(), l.kind)
            })
            .collect();
        if gone.is_empty() {
            return Ok(Thinned::default());
        }
        let mut log = open_append(&self.root, OsStr::new(THINNED_LOG))?;
        self.versions.thin(&gone, &mut log)
    }

    pub fn dst_path(&self) -> &Path {
        &self.dst_path
    }

    pub fn tmp(&self) -> &DirHandle {
        &self.tmp
    }

    /// A fresh temp name (unique in this process, which holds the lock).
    pub fn temp_name(&self) -> OsString {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        OsString::from(format!("{}-{n}.tmp", std::process::id()))
    }

    /// Creates a new temp file.
    pub fn temp_file(&self) -> io::Result<(OsString, File)> {
        loop {
            let name = self.temp_name();
            match self.tmp.create_new(&name) {
                Ok(f) => return Ok((name, f)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Sets the share of the backup disk to keep free (percent; 0: none).
    pub fn set_min_free_percent(&mut self, percent: u32) {
        self.min_free_percent = percent.min(100);
    }

    /// The free space below which old versions are removed, in bytes.
    pub fn floor_bytes(&self) -> io::Result<u64> {
        let total = self.tmp.fs_bytes()?;
        Ok(total / 100 * u64::from(self.min_free_percent))
    }

    /// Makes room for `need` more bytes above the floor by removing the
    /// oldest version folders (safety rule 3: pruned by a free-space floor,
    /// oldest first). What went; nothing when there is room already.
    pub fn make_room(&self, need: u64) -> io::Result<Pruned> {
        let _one = self
            .pruning
            .lock()
            .map_err(|_| io::Error::other("pruning lock poisoned"))?;
        if !self.versions.enabled() {
            return Ok(Pruned::default());
        }
        let floor = self.floor_bytes()?;
        let pruned = self
            .versions
            .prune_oldest_while(|| Ok(self.tmp.free_bytes()? < floor.saturating_add(need)))?;
        if pruned.count > 0 {
            self.trim_aside_log_or_say();
        }
        Ok(pruned)
    }

    /// [`trim_aside_log`](Self::trim_aside_log); a failure only leaves
    /// lines that describe nothing, so it is a warning.
    pub fn trim_aside_log_or_say(&self) {
        if let Err(e) = self.trim_aside_log() {
            log::warn!(
                "{}: cannot drop the lines of pruned versions: {}",
                show(&self.dst_path.join(RESERVED).join(ASIDE_LOG)),
                reason(&e)
            );
        }
    }

    /// Free space on the backup's file system.
    pub fn free_bytes(&self) -> io::Result<u64> {
        self.tmp.free_bytes()
    }

    /// Removes a temp entry, ignoring "already gone".
    pub fn discard(&self, name: &OsStr) {
        let _ = self.tmp.unlink(name);
    }

    /// Removes everything left in `tmp/` (a crashed or killed run).
    pub fn clean_tmp(&self) -> io::Result<()> {
        for e in self.tmp.list()? {
            if e.kind == Some(Kind::Dir) {
                super::versions::remove_tree(&self.tmp, &e.name)?;
            } else {
                match self.tmp.unlink(&e.name) {
                    Ok(()) => {}
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                    Err(err) => return Err(err),
                }
            }
        }
        Ok(())
    }

    /// Whether the symlink `link` (to a name that does not exist) takes
    /// times of its own. Over SFTP (sshfs) setting a link's times follows
    /// it: that fails, or worse, touches whatever the target names on the
    /// server. Such a drive is one without symlinks: they are recorded,
    /// never made there.
    fn link_times_hold(&self, link: &OsStr) -> bool {
        let t = super::fsops::Time {
            sec: 1_000_000_000,
            nsec: 0,
        };
        match self.tmp.set_times(link, t, t) {
            Ok(()) => self
                .tmp
                .stat_opt(link)
                .ok()
                .flatten()
                .is_some_and(|m| m.kind == Kind::Symlink && m.mtime.sec == t.sec),
            Err(e) => {
                log::debug!("a symlink's own times cannot be set on the backup drive: {e}");
                false
            }
        }
    }

    /// What DST's file system keeps, learned in `tmp/` (see `keeps`): an
    /// odd second with nanoseconds set and read back gives the time
    /// precision; the furthest future and past set and read back give the
    /// range (the kernel keeps the nearest end); then a mode, a user
    /// attribute, an owner (as root), a hard link, a symlink, a name with `:`, and a name read
    /// back in other case. Recorded in `.mirrortray/limits` for `verify`.
    pub fn probe(&self) -> io::Result<Keeps> {
        use super::fsops::{Time, file_meta, set_file_mode, set_file_times};
        use rustix::io::Errno;
        let (name, file) = self.temp_file()?;
        let now = jiff::Timestamp::now().as_second();
        let fine = Time {
            sec: now | 1,
            nsec: 123_456_789,
        };
        let far = |sec: i64| -> io::Result<Time> {
            let t = Time { sec, nsec: 0 };
            set_file_times(&file, t, t)?;
            Ok(file_meta(&file)?.mtime)
        };
        let r = (|| -> io::Result<Keeps> {
            set_file_times(&file, fine, fine)?;
            let got = file_meta(&file)?.mtime;
            // Refused outright (some FUSE file systems): no range known.
            // One that wraps (SFTP's 32-bit seconds: 2^40 reads back as
            // 1970) is asked for the ends of the common 32-bit ranges,
            // where 0 is no end: sshfs sends it as "now".
            let exact = |ends: [i64; 2]| {
                ends.into_iter()
                    .find_map(|s| far(s).ok().filter(|t| t.sec == s))
            };
            let (future, past) = match far(1 << 40) {
                Ok(t) if t.sec > now => (t, far(-(1 << 40)).ok()),
                _ => (
                    exact([i64::from(u32::MAX), i64::from(i32::MAX)])
                        .unwrap_or(Time { sec: 0, nsec: 0 }),
                    exact([i64::from(i32::MIN), 1]),
                ),
            };
            let past = past.unwrap_or(Time { sec: now, nsec: 0 });
            let modes =
                set_file_mode(&file, 0o640).is_ok() && file_meta(&file)?.mode & 0o777 == 0o640;
            let xattrs = !matches!(
                rustix::fs::fsetxattr(
                    &file,
                    "user.mirrortray",
                    b"1",
                    rustix::fs::XattrFlags::empty()
                ),
                Err(Errno::NOTSUP)
            );
            // Given to a user nobody is and read back: NTFS without a
            // user mapping says yes and keeps root.
            const NOBODY_KNOWN: u32 = 0x6d69_7272;
            let owners = if !super::fsops::sets_owners() {
                Owners::Off
            } else if super::fsops::set_file_owner(&file, NOBODY_KNOWN, NOBODY_KNOWN).is_ok()
                && file_meta(&file).is_ok_and(|m| (m.uid, m.gid) == (NOBODY_KNOWN, NOBODY_KNOWN))
            {
                Owners::Kept
            } else {
                Owners::Recorded
            };
            Ok(Keeps {
                times: TimeLimits::from_probe((fine, got), future, past, now),
                modes,
                xattrs,
                owners,
                ..Keeps::ALL
            })
        })();
        drop(file);
        let mut keeps = r?;
        let link = self.temp_name();
        // Made, and seen as one file: sshfs makes the link on the server
        // but gives each name its own inode number, so the two names
        // could never be told to be one.
        keeps.hardlinks = self.tmp.link_to(&name, &self.tmp, &link).is_ok()
            && match (self.tmp.stat_opt(&name), self.tmp.stat_opt(&link)) {
                (Ok(Some(a)), Ok(Some(b))) => a.ino == b.ino && a.nlink > 1,
                _ => false,
            };
        self.discard(&link);
        // Other case: the same entry on a case-blind drive.
        let upper = OsString::from(name.to_string_lossy().to_uppercase());
        // (Not by inode: exfat-fuse gives each spelling its own number.)
        keeps.case_blind = upper != name && self.tmp.stat_opt(&upper).ok().flatten().is_some();
        self.discard(&name);
        let link = self.temp_name();
        keeps.symlinks = match self.tmp.symlink(OsStr::new("probe"), &link) {
            Ok(()) => self.link_times_hold(&link),
            Err(e) => ![
                Errno::NOSYS,
                Errno::PERM,
                Errno::NOTSUP,
                Errno::INVAL,
                Errno::IO,
            ]
            .iter()
            .any(|x| e.raw_os_error() == Some(x.raw_os_error())),
        };
        self.discard(&link);
        let mut odd = self.temp_name();
        odd.push(":?");
        keeps.windows_names = match self.tmp.create_new(&odd) {
            Ok(_) => false,
            Err(e) => e.kind() != io::ErrorKind::AlreadyExists,
        };
        self.discard(&odd);
        keeps.renames_keep_times = self.probe_rename_times().unwrap_or(true);
        self.versions
            .set_renames_keep_times(keeps.renames_keep_times);
        keeps.times = keeps.fat_range();
        if let Err(e) = self.write_small(OsStr::new("limits"), keeps.record().as_bytes()) {
            log::debug!("cannot record the backup's limits: {e}");
        }
        Ok(keeps)
    }

    /// Whether a file renamed keeps its mtime (a whole, even second in
    /// 2001, which every drive keeps).
    fn probe_rename_times(&self) -> io::Result<bool> {
        use super::fsops::{Time, set_file_times};
        let t = Time {
            sec: 1_000_000_000,
            nsec: 0,
        };
        let (name, file) = self.temp_file()?;
        set_file_times(&file, t, t)?;
        drop(file);
        let to = self.temp_name();
        let moved = self.tmp.rename_to(&name, &self.tmp, &to);
        let kept = match moved {
            Ok(()) => self.tmp.stat(&to).map(|m| m.mtime.sec == t.sec),
            Err(e) => Err(e),
        };
        self.discard(&name);
        self.discard(&to);
        kept
    }

    /// The recorded source, if any.
    pub fn source_record(&self) -> Option<SourceRecord> {
        read_source_record(&self.root)
    }

    /// Records SRC's path and device (written atomically via tmp/).
    pub fn write_source_record(&self, rec: &SourceRecord) -> io::Result<()> {
        if self.source_record().as_ref() == Some(rec) {
            return Ok(());
        }
        use std::os::unix::ffi::OsStrExt;
        let mut text = b"path=".to_vec();
        text.extend_from_slice(rec.path.as_os_str().as_bytes());
        text.extend_from_slice(format!("\ndev={}\n", rec.dev).as_bytes());
        self.write_small(OsStr::new("source"), &text)
    }

    /// `.mirrortray/aside/`: bytes of files the drive holds under no name.
    pub fn aside(&self) -> &DirHandle {
        &self.aside
    }

    /// The record of what the drive cannot hold (empty when there is none
    /// yet). `None` when it cannot be read: said, and the caller starts
    /// it again.
    pub fn read_record(&self) -> Option<Record> {
        match read_record(&self.root) {
            Ok(r) => Some(r),
            Err(e) => {
                log::warn!(
                    "{}: cannot read the record of what the backup drive cannot hold ({e}); making it again",
                    show(&self.dst_path.join(RESERVED).join(RECORD_FILE))
                );
                None
            }
        }
    }

    /// The number after the highest blob in `aside/` (0 when none).
    pub fn next_free_blob(&self) -> u64 {
        self.aside
            .list()
            .map(|l| {
                l.iter()
                    .filter_map(|e| e.name.to_str()?.parse::<u64>().ok())
                    .map(|n| n + 1)
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    }

    /// Writes what a save of the record asks for: a line appended to its
    /// log (one write, so a crash tears at most that line), or a new
    /// snapshot, atomically, after which the log it holds goes.
    pub fn write_record(&self, s: &Save) -> io::Result<()> {
        match s {
            Save::Append(line) => open_append(&self.root, OsStr::new(RECORD_LOG))?.write_all(line),
            Save::Snapshot(text) => {
                self.write_small(OsStr::new(RECORD_FILE), text)?;
                match self.root.unlink(OsStr::new(RECORD_LOG)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                    _ => Ok(()),
                }
            }
        }
    }

    /// Appends lines to `aside.log`.
    pub fn log_aside(&self, lines: &[u8]) -> io::Result<()> {
        let _one = self
            .aside_log
            .lock()
            .map_err(|_| io::Error::other("aside log lock poisoned"))?;
        self.append_log(ASIDE_LOG, lines)
    }

    /// Drops the lines of `aside.log` whose time folder was pruned or
    /// thinned away (written anew, atomically, only if any go).
    pub fn trim_aside_log(&self) -> io::Result<()> {
        let _one = self
            .aside_log
            .lock()
            .map_err(|_| io::Error::other("aside log lock poisoned"))?;
        let Some(text) = read_opt(&self.root, ASIDE_LOG).map_err(io::Error::other)? else {
            return Ok(());
        };
        let there: std::collections::HashSet<String> = self
            .versions
            .list_batches()?
            .into_iter()
            .map(|(_, name)| name)
            .collect();
        match super::record::trim_kept(&text, |at| there.contains(at)) {
            Some(trimmed) => self.write_small(OsStr::new(ASIDE_LOG), &trimmed),
            None => Ok(()),
        }
    }

    /// Removes blobs in `aside/` the record does not name (written by a
    /// run that stopped before it saved the record).
    pub fn clean_aside(&self, r: &Record) -> io::Result<()> {
        let named: std::collections::HashSet<u64> = r
            .tree(Path::new(""))
            .into_iter()
            .filter_map(|(_, e)| e.blob)
            .collect();
        for e in self.aside.list()? {
            let n = e.name.to_str().and_then(|n| n.parse::<u64>().ok());
            if n.is_none_or(|n| !named.contains(&n)) && e.kind != Some(Kind::Dir) {
                self.aside.unlink(&e.name)?;
            }
        }
        Ok(())
    }

    /// Appends `bytes` to the log `name` (see [`append_or_rewrite`]).
    fn append_log(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let mut file = open_append(&self.root, OsStr::new(name))?;
        append_or_rewrite(&self.root, name, &mut file, bytes).map(drop)
    }

    /// Writes a small file of `.mirrortray/`, atomically (via tmp/).
    fn write_small(&self, name: &OsStr, text: &[u8]) -> io::Result<()> {
        let (tmp, mut f) = self.temp_file()?;
        f.write_all(text)?;
        drop(f);
        self.tmp.rename_to(&tmp, &self.root, name)
    }
}

/// What `sync` or `watch` learned a DST's file system keeps, as recorded
/// in its `.mirrortray/` (`root`) (`None`: nothing recorded yet).
pub fn read_limits(root: &DirHandle) -> Option<Keeps> {
    let mut f = root.open_read(OsStr::new("limits")).ok()?;
    let mut text = String::new();
    f.read_to_string(&mut text).ok()?;
    Keeps::parse(&text)
}

/// Reads the record (`record.json` and `record.log`) from a DST's
/// `.mirrortray/` (`root`), without taking the lock (none yet: an empty
/// record). The log first: a writer that folds it into a new snapshot
/// between the two reads leaves a snapshot that already holds it, on which
/// replaying it changes nothing (see `record`).
pub fn read_record(root: &DirHandle) -> Result<Record, String> {
    let log = read_opt(root, RECORD_LOG)?.unwrap_or_default();
    let snapshot = read_opt(root, RECORD_FILE)?;
    Record::read(snapshot.as_deref(), &log)
}

/// A small file of `.mirrortray/` (`None`: there is none).
fn read_opt(root: &DirHandle, name: &str) -> Result<Option<Vec<u8>>, String> {
    let mut f = match root.open_read(OsStr::new(name)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{name}: {}", reason(&e))),
    };
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)
        .map_err(|e| format!("{name}: {}", reason(&e)))?;
    Ok(Some(buf))
}

/// Reads `.mirrortray/aside.log` (none: empty).
pub fn read_aside_log(root: &DirHandle) -> Vec<super::record::Kept> {
    let Ok(mut f) = root.open_read(OsStr::new(ASIDE_LOG)) else {
        return Vec::new();
    };
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_err() {
        return Vec::new();
    }
    super::record::parse_kept(&buf)
}

/// Reads `.mirrortray/source` from a DST, without taking the lock.
pub fn read_source_record(root: &DirHandle) -> Option<SourceRecord> {
    use std::os::unix::ffi::OsStrExt;
    let mut f = root.open_read(OsStr::new("source")).ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    let mut path = None;
    let mut dev = None;
    for line in buf.split(|b| *b == b'\n') {
        if let Some(p) = line.strip_prefix(b"path=") {
            path = Some(PathBuf::from(OsStr::from_bytes(p)));
        } else if let Some(d) = line.strip_prefix(b"dev=") {
            dev = std::str::from_utf8(d).ok().and_then(|s| s.parse().ok());
        }
    }
    Some(SourceRecord {
        path: path?,
        dev: dev?,
    })
}

/// Appends `bytes` to `file`, the log `name` of `.mirrortray/` (`root`)
/// open for appending. A drive that refuses to make a file longer
/// (fusefat: EPERM, for an appending write and a `pwrite` past the end
/// alike) gets the log written anew, whole, through `tmp/`: slower, and
/// nothing is lost. `true`: written anew (`file` is the old one now).
pub(crate) fn append_or_rewrite(
    root: &DirHandle,
    name: &str,
    file: &mut File,
    bytes: &[u8],
) -> io::Result<bool> {
    match file.write_all(bytes) {
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::PERM.raw_os_error()) => {}
        done => return done.map(|()| false),
    }
    let mut all = read_opt(root, name)
        .map_err(io::Error::other)?
        .unwrap_or_default();
    all.extend_from_slice(bytes);
    write_whole(root, name, &all)?;
    Ok(true)
}

/// Writes the file `name` of `.mirrortray/` (`root`) anew with `bytes`,
/// through `tmp/` (`NAME.new`, its leftovers removed at start): a reader
/// never sees half of it. For one writer of `name` at a time.
pub(crate) fn write_whole(root: &DirHandle, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = root.open_dir(OsStr::new("tmp"))?;
    let new = OsString::from(format!("{name}.new"));
    match tmp.unlink(&new) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut f = tmp.create_new(&new)?;
    f.write_all(bytes)?;
    drop(f);
    tmp.rename_to(&new, root, OsStr::new(name))
}

pub(crate) fn open_append(dir: &DirHandle, name: &OsStr) -> io::Result<File> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::APPEND | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )?;
    Ok(File::from(fd))
}

/// Takes the exclusive lock on `.mirrortray/lock` and writes who holds it.
fn acquire_lock(root: &DirHandle, dst_path: &Path, what: &str) -> Result<File, SetupError> {
    let lock_path = dst_path.join(RESERVED).join("lock");
    let fd = rustix::fs::openat(
        root,
        "lock",
        OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .map_err(|e| SetupError::DstUnwritable(lock_path.clone(), reason(&e.into())))?;
    let file = File::from(fd);
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = (&file).read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(SetupError::Locked {
                dst: dst_path.to_path_buf(),
                holder: if holder.is_empty() {
                    "another process".to_string()
                } else {
                    holder.to_string()
                },
            });
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(SetupError::DstUnwritable(lock_path, reason(&e)));
        }
    }
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let since = jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%S UTC");
    let text = format!(
        "pid {} on {host}, `mirrortray {what}`, since {since}\n",
        std::process::id()
    );
    let write = file
        .set_len(0)
        .and_then(|()| file.write_all_at(text.as_bytes(), 0));
    if let Err(e) = write {
        return Err(SetupError::DstUnwritable(lock_path, reason(&e)));
    }
    log::debug!("{}: locked", show(dst_path));
    Ok(file)
}
