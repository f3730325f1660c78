//! history: what a backup folder can tell about the past, read only.
//!
//! Model. DST's `.mirrortray/versions/<S>/<path>` is what DST held at `path`
//! *until* time `S` (see `versions.rs`). For one path with versions at
//! `S1 < S2 < ... < Sn`, the content held during `(S(i-1), Si]` is version
//! `i`, and after `Sn` it is DST's current entry. So the entry held at a
//! time `T` is the one in the first time folder `S >= T` that holds the
//! path, or else DST's current one — provided it existed at `T` at all: a
//! file or symlink whose modification time is after `T` was made later, and
//! was not there yet. A folder at `T` is every path under it resolved that
//! way (paths are gathered from the time folders newer than `T` and from
//! DST as it is now).
//!
//! A time folder also holds plain *container* folders, made only to hold a
//! versioned entry deeper down; `versions.log` tells them apart from a whole
//! folder that was versioned (moved there as one): a folder is a version of
//! its own only if the log names it, or it lies inside one the log names.
//! Files are versions whether or not the log names them (if writing the log
//! failed, the reason is shown as unknown).
//!
//! History is complete from the first backup, except where pruning removed
//! time folders. Those are found without any extra record: `versions.log`
//! keeps naming them, and their folder is gone. Pruning removes only the
//! oldest folders, so every time after the newest removed folder can still
//! be answered exactly; an earlier time cannot, and is refused.
//!
//! Thinning (see `thinning.rs`) removes single old versions and names each
//! in `thinned.log` with its modification time. A time whose version was
//! thinned is answered with the nearest kept one after it, and says so
//! ([`Tree::thinned`]); a time folder thinning emptied and removed is named
//! there too, and is not counted as pruned.
//!
//! Everything here reads through no-follow directory handles (`fsops`), so a
//! symlink planted in DST is never followed; nothing is ever written.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsStr;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use super::error::EntryError;
use super::event::VersionReason;
use super::filter::RESERVED;
use super::fsops::{DirHandle, Entry, Kind, Meta, Time};
use super::plan::TimeLimits;
use super::record::{ASIDE_DIR, Entry as RecordEntry, Kept, Record};
use super::stamp;
use super::versions;
use super::xattrs::Xattrs;

/// Version batches of one path closer than this are one change (a burst):
/// see [`History::last_change`].
pub const BURST_GAP: jiff::SignedDuration = jiff::SignedDuration::from_secs(2);

/// One time folder of `versions/`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp {
    pub time: Timestamp,
    /// The folder's name (`2026-11-25T11-03-29.123456Z`).
    pub name: String,
}

/// Where an entry the mirror held is stored now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// In the time folder `versions/<stamp>/`.
    Version(Stamp),
    /// DST's current entry.
    Current,
    /// Only in the record: the drive cannot hold it (see `record`).
    Recorded(Aside),
}

/// An entry the drive cannot hold, as the record has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aside {
    /// The time folder it was kept in until then (`None`: the record as it
    /// is now).
    pub stamp: Option<Stamp>,
    pub entry: RecordEntry,
}

/// An entry as the mirror held it, and where it is stored.
#[derive(Debug, Clone)]
pub struct Held {
    /// Relative to the pair's roots.
    pub rel: PathBuf,
    pub meta: Meta,
    pub origin: Origin,
}

/// One kept version, as `mirrortray versions` lists it.
#[derive(Debug, Clone)]
pub struct Version {
    pub stamp: Stamp,
    pub rel: PathBuf,
    pub meta: Meta,
    /// A file's size; for a folder, the sizes of everything in it.
    pub bytes: u64,
    /// 1 for a file or symlink; the files in a folder.
    pub files: u64,
    /// Why it was kept (`None`: `versions.log` has no line for it).
    pub reason: Option<VersionReason>,
    /// Kept as part of this folder, which was versioned as a whole.
    pub with_folder: Option<PathBuf>,
    /// Where its bytes are, in its time folder (`None`: in no file; a
    /// symlink the drive cannot hold has its target in the record's log).
    pub stored: Option<PathBuf>,
}

/// One line of `versions.log`: see [`History::logged`].
#[derive(Debug, Clone)]
pub struct Logged {
    pub stamp: Stamp,
    pub rel: PathBuf,
    pub kind: Kind,
    pub reason: Option<VersionReason>,
}

/// A tree as the mirror held it at one time.
#[derive(Debug, Clone)]
pub struct Tree {
    pub at: Timestamp,
    /// The path asked for (relative).
    pub rel: PathBuf,
    /// What existed at `at`, parents before their content. Folders that
    /// only hold other entries may be missing (no record of their own).
    pub entries: Vec<Held>,
    /// Files and symlinks found at the path's history that did not exist
    /// yet at `at` (made later).
    pub later: Vec<Held>,
    /// The oldest modification time among all the contents found: before
    /// it, nothing under the path existed as far as the backup knows.
    pub oldest: Option<Timestamp>,
    /// Entries whose version of that time was thinned: what `entries` holds
    /// for them is the nearest kept one after it. Each with the time of
    /// the version that was thinned.
    pub thinned: BTreeMap<PathBuf, Timestamp>,
}

/// Space the versions use.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    pub bytes: u64,
    pub files: u64,
    pub stamps: usize,
    pub oldest: Option<Stamp>,
    pub newest: Option<Stamp>,
}

/// What the journal says about one path in one time folder.
type Line = (Option<VersionReason>, Kind);

/// The readable history of one backup folder.
pub struct History {
    dst: PathBuf,
    root: DirHandle,
    versions: Option<DirHandle>,
    stamps: Vec<Stamp>,
    journal: HashMap<String, HashMap<PathBuf, Line>>,
    pruned_up_to: Option<Timestamp>,
    thinned: Thinned,
    /// The backup drive keeps permission bits (see `keeps`); when it does
    /// not (exFAT reads 777 everywhere), what it holds is given back with
    /// the recorded ones, or ordinary ones, never world-writable.
    modes_kept: bool,
    /// The drive keeps extended attributes and ACLs: a stored entry's own
    /// are its; else they are the record's.
    xattrs_kept: bool,
    /// How finely the drive keeps times (to match the record's entries).
    limits: TimeLimits,
    /// What the drive cannot hold, as recorded now (see `record`).
    record: Record,
    /// `aside.log`: per path, what the record held until a time, oldest
    /// first.
    kept: HashMap<PathBuf, Vec<Kept>>,
}

/// What `thinned.log` says.
#[derive(Debug, Default)]
struct Thinned {
    /// Per path, each thinned version: its time folder's time and its
    /// modification time; oldest first.
    paths: HashMap<PathBuf, Vec<(Timestamp, Time)>>,
    /// Time folders thinning emptied and removed.
    emptied: HashSet<String>,
}

/// An entry found in one time folder.
#[derive(Debug, Clone)]
struct Found {
    rel: PathBuf,
    meta: Meta,
    line: Option<Line>,
    /// The versioned folder (strictly above `rel`) it is part of.
    folder: Option<PathBuf>,
    /// A version of its own (not a container folder).
    real: bool,
}

impl History {
    /// Opens DST's history. `dst` is DST's resolved root. A DST without
    /// versions yet has an empty history.
    pub fn open(dst: &Path) -> Result<History, EntryError> {
        let root = DirHandle::open_root(dst)
            .map_err(|e| EntryError::new(dst, "open backup folder", &e))?;
        let store_path = dst.join(RESERVED);
        let store = match root.open_dir(OsStr::new(RESERVED)) {
            Ok(d) => Some(d),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(EntryError::new(&store_path, "open", &e)),
        };
        let versions = match &store {
            Some(s) => match s.open_dir(OsStr::new("versions")) {
                Ok(d) => Some(d),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(EntryError::new(store_path.join("versions"), "open", &e)),
            },
            None => None,
        };
        let mut stamps = Vec::new();
        if let Some(v) = &versions {
            let list = v
                .list()
                .map_err(|e| EntryError::new(store_path.join("versions"), "list", &e))?;
            for e in list {
                if let Some(name) = e.name.to_str()
                    && let Some(time) = stamp::parse(name)
                    && e.kind.is_none_or(|k| k == Kind::Dir)
                {
                    stamps.push(Stamp {
                        time,
                        name: name.to_string(),
                    });
                }
            }
        }
        stamps.sort();
        let (journal, thinned) = match &store {
            Some(s) => (read_journal(s), read_thinned(s)),
            None => (HashMap::new(), Thinned::default()),
        };
        let limits = store.as_ref().and_then(super::store::read_limits);
        let record = match &store {
            Some(s) => super::store::read_record(s).unwrap_or_else(|e| {
                log::warn!(
                    "{}: cannot read it ({e}); what the backup drive cannot hold is given back as the drive holds it",
                    super::error::show(&store_path.join(super::record::RECORD_FILE))
                );
                Record::default()
            }),
            None => Record::default(),
        };
        let mut kept: HashMap<PathBuf, Vec<Kept>> = HashMap::new();
        if let Some(s) = &store {
            for k in super::store::read_aside_log(s) {
                kept.entry(k.rel()).or_default().push(k);
            }
        }
        for v in kept.values_mut() {
            v.sort_by(|a, b| a.at.cmp(&b.at));
        }
        let present: HashSet<&str> = stamps.iter().map(|s| s.name.as_str()).collect();
        let pruned_up_to = journal
            .keys()
            .filter(|name| !present.contains(name.as_str()))
            .filter(|name| !thinned.emptied.contains(name.as_str()))
            .filter_map(|name| stamp::parse(name))
            .max();
        Ok(History {
            dst: dst.to_path_buf(),
            root,
            versions,
            stamps,
            journal,
            pruned_up_to,
            thinned,
            modes_kept: limits.is_none_or(|k| k.modes),
            xattrs_kept: limits.is_none_or(|k| k.xattrs),
            limits: limits.map_or(TimeLimits::EXACT, |k| k.times),
            record,
            kept,
        })
    }

    pub fn dst(&self) -> &Path {
        &self.dst
    }

    /// `DST/.mirrortray/versions`.
    pub fn versions_path(&self) -> PathBuf {
        self.dst.join(RESERVED).join("versions")
    }

    /// The time folders, oldest first.
    pub fn stamps(&self) -> &[Stamp] {
        &self.stamps
    }

    /// The newest time folder that was pruned (or removed by hand), if any:
    /// history is exact only for times after it.
    pub fn pruned_up_to(&self) -> Option<Timestamp> {
        self.pruned_up_to
    }

    /// The oldest time history is complete from (`None`: since the first
    /// backup).
    pub fn complete_from(&self) -> Option<Timestamp> {
        self.pruned_up_to
            .map(|t| t + jiff::SignedDuration::from_micros(1))
    }

    /// Where an entry is stored, for messages.
    pub fn stored_path(&self, h: &Held) -> PathBuf {
        match &h.origin {
            Origin::Version(s) => self.versions_path().join(&s.name).join(&h.rel),
            Origin::Current => self.dst.join(&h.rel),
            Origin::Recorded(a) => match (&a.stamp, a.entry.blob) {
                (Some(s), Some(b)) => self
                    .versions_path()
                    .join(&s.name)
                    .join(RESERVED)
                    .join(ASIDE_DIR)
                    .join(b.to_string()),
                (None, Some(b)) => self.dst.join(RESERVED).join(ASIDE_DIR).join(b.to_string()),
                (_, None) => self.dst.join(RESERVED).join(super::record::RECORD_FILE),
            },
        }
    }

    /// Opens a stored file's bytes for reading.
    pub fn open_file(&self, h: &Held) -> io::Result<std::fs::File> {
        let Origin::Recorded(a) = &h.origin else {
            let name = h
                .rel
                .file_name()
                .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
            return self.open_parent(h)?.open_read(name);
        };
        let blob = a
            .entry
            .blob
            .ok_or_else(|| io::Error::other("the record holds no bytes for it"))?;
        let dir = match &a.stamp {
            None => self.root.open_path(&Path::new(RESERVED).join(ASIDE_DIR))?,
            Some(s) => self
                .versions
                .as_ref()
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?
                .open_path(&Path::new(&s.name).join(RESERVED).join(ASIDE_DIR))?,
        };
        dir.open_read(OsStr::new(&blob.to_string()))
    }

    /// A stored symlink's target.
    pub fn link_target(&self, h: &Held) -> io::Result<std::ffi::OsString> {
        if let Origin::Recorded(a) = &h.origin {
            return a
                .entry
                .target
                .as_ref()
                .map(|t| t.as_os_str().to_os_string())
                .ok_or_else(|| io::Error::other("the record holds no target for it"));
        }
        let name = h
            .rel
            .file_name()
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        self.open_parent(h)?.read_link(name)
    }

    /// The extended attributes and ACLs `h` had: the record's (see
    /// [`recorded_xattrs`](Self::recorded_xattrs)), else the stored
    /// entry's own (a symlink: none).
    pub fn xattrs(&self, h: &Held) -> io::Result<Xattrs> {
        if let Some(x) = self.recorded_xattrs(h) {
            return Ok(x.clone());
        }
        // Held in the record only: nothing of it on the drive to read.
        if let Origin::Recorded(a) = &h.origin {
            return Ok(a.entry.xattrs.clone());
        }
        let Some(name) = h.rel.file_name() else {
            return Ok(Xattrs::default());
        };
        match h.meta.kind {
            Kind::File | Kind::Dir => super::xattrs::of_name(&self.open_parent(h)?, name),
            _ => Ok(Xattrs::default()),
        }
    }

    /// The folder holding a stored entry (to read it through handles).
    pub fn open_parent(&self, h: &Held) -> io::Result<DirHandle> {
        let parent = h.rel.parent().unwrap_or(Path::new(""));
        match &h.origin {
            Origin::Current => self.root.open_path(parent),
            Origin::Recorded(_) => Err(io::Error::other(
                "the backup drive cannot hold it: it is in mirrortray's record",
            )),
            Origin::Version(s) => {
                let v = self
                    .versions
                    .as_ref()
                    .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
                v.open_dir(OsStr::new(&s.name))?.open_path(parent)
            }
        }
    }

    /// DST's entry at `rel` now (`None`: not there).
    pub fn current(&self, rel: &Path) -> io::Result<Option<Meta>> {
        if is_reserved(rel) {
            return Ok(None);
        }
        // Held in the record only: what the drive shows at that name (a
        // case twin's) is not it.
        if let Some(e) = self.record.get(rel).filter(|e| e.aside) {
            return Ok(Some(e.meta()));
        }
        let Some(name) = rel.file_name() else {
            return self.root.meta().map(|m| Some(self.seen(rel, m, None)));
        };
        match self.root.open_path(rel.parent().unwrap_or(Path::new(""))) {
            Ok(p) => Ok(p.stat_opt(name)?.map(|m| self.seen(rel, m, None))),
            Err(e) if gone(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether the permission bits it gives are the ones backed up.
    pub fn modes_kept(&self) -> bool {
        self.modes_kept
    }

    /// An entry as read from the backup drive (at `rel`, in the time
    /// folder `stamp` or DST's current one), with the mode and time the
    /// record gives it where the record describes it; else with ordinary
    /// permission bits where the drive keeps none.
    fn seen(&self, rel: &Path, mut m: Meta, stamp: Option<&Stamp>) -> Meta {
        if let Some(e) = self.overlay(rel, &m, stamp) {
            return e.apply(&m);
        }
        if !self.modes_kept {
            m.mode = super::record::ordinary_mode(m.kind);
        }
        m
    }

    /// The record's overlay entry for the stored entry `m` at `rel` (in
    /// the time folder `stamp`, or DST's current one): the line logged
    /// with that version, else the record's entry, if it describes `m`.
    fn overlay(&self, rel: &Path, m: &Meta, stamp: Option<&Stamp>) -> Option<&RecordEntry> {
        let logged = stamp.and_then(|s| {
            self.kept
                .get(rel)?
                .iter()
                .find(|k| k.at == s.name && !k.entry.aside)
                .map(|k| &k.entry)
        });
        logged
            .into_iter()
            .chain(self.record.get(rel).filter(|e| !e.aside))
            .find(|e| e.describes(&self.limits, m))
    }

    /// The extended attributes and ACLs `h` had, where the drive keeps none
    /// and the record has them (see `record`): with its version's line in
    /// `aside.log`, or the record's entry, as for its mode and time (`h`'s
    /// meta has them already, so the entry still describes it). `None`:
    /// the stored entry's own are its (a drive that keeps them).
    pub fn recorded_xattrs<'a>(&'a self, h: &'a Held) -> Option<&'a Xattrs> {
        static NONE: Xattrs = Xattrs::EMPTY;
        if self.xattrs_kept {
            return None;
        }
        let e = match &h.origin {
            Origin::Recorded(a) => Some(&a.entry),
            Origin::Version(s) => self.overlay(&h.rel, &h.meta, Some(s)),
            Origin::Current => self.overlay(&h.rel, &h.meta, None),
        };
        Some(e.map_or(&NONE, |e| &e.xattrs))
    }

    /// The entries the drive cannot hold at `rel` and under it as they
    /// were at `t` (see `record`): for each path, the first one kept as a
    /// version at or after `t` whose time folder is still there, else the
    /// record's current one.
    fn aside_at(&self, rel: &Path, t: Timestamp) -> BTreeMap<PathBuf, Held> {
        let mut out = BTreeMap::new();
        let stamp_of = |name: &str| self.stamps.iter().find(|s| s.name == name);
        for (q, lines) in &self.kept {
            if !q.starts_with(rel) {
                continue;
            }
            let found = lines
                .iter()
                .filter(|k| k.entry.aside)
                .filter_map(|k| Some((stamp_of(&k.at)?, k)))
                .find(|(s, _)| s.time >= t);
            if let Some((s, k)) = found {
                out.insert(
                    q.clone(),
                    Held {
                        rel: q.clone(),
                        meta: k.entry.meta(),
                        origin: Origin::Recorded(Aside {
                            stamp: Some(s.clone()),
                            entry: k.entry.clone(),
                        }),
                    },
                );
            }
        }
        for (q, e) in self.record.tree(rel) {
            if e.aside && !out.contains_key(&q) {
                out.insert(
                    q.clone(),
                    Held {
                        rel: q,
                        meta: e.meta(),
                        origin: Origin::Recorded(Aside {
                            stamp: None,
                            entry: e.clone(),
                        }),
                    },
                );
            }
        }
        out
    }

    /// Every line of `versions.log` whose time folder is still there and
    /// whose version was not thinned, newest first: what was kept, when and why, without reading the
    /// folders (for lists across all paths: recently deleted, search, the
    /// activity chart).
    pub fn logged(&self) -> Vec<Logged> {
        let mut out = Vec::new();
        for s in self.stamps.iter().rev() {
            let Some(lines) = self.journal.get(&s.name) else {
                continue;
            };
            let mut here: Vec<Logged> = lines
                .iter()
                .filter(|(rel, _)| !self.is_thinned(s.time, rel))
                .map(|(rel, (reason, kind))| Logged {
                    stamp: s.clone(),
                    rel: rel.clone(),
                    kind: *kind,
                    reason: *reason,
                })
                .collect();
            here.sort_by(|a, b| a.rel.cmp(&b.rel));
            out.extend(here);
        }
        out
    }

    /// The versions thinning may remove: files and symlinks with a line of
    /// their own, not inside a folder kept as a whole in the same time
    /// folder, not thinned already (see [`History::logged`]); oldest first.
    pub fn thinnable(&self) -> Vec<Logged> {
        let mut out: Vec<Logged> = self
            .logged()
            .into_iter()
            .filter(|l| matches!(l.kind, Kind::File | Kind::Symlink))
            .filter(|l| self.versioned_ancestor(&l.stamp, &l.rel).is_none())
            .collect();
        out.reverse();
        out
    }

    /// Whether the version of `rel` in the time folder of time `t` was
    /// thinned.
    fn is_thinned(&self, t: Timestamp, rel: &Path) -> bool {
        self.thinned
            .paths
            .get(rel)
            .is_some_and(|v| v.iter().any(|(s, _)| *s == t))
    }

    /// The times of the thinned versions of `rel`, oldest first.
    pub fn thinned_of(&self, rel: &Path) -> Vec<Timestamp> {
        self.thinned
            .paths
            .get(rel)
            .map(|v| v.iter().map(|(t, _)| *t).collect())
            .unwrap_or_default()
    }

    /// Every kept version of `rel` and of anything under it, newest first.
    /// A folder versioned as a whole is one entry (with its total size).
    pub fn versions_of(&self, rel: &Path) -> Result<Vec<Version>, EntryError> {
        let aside = self.aside_versions_of(rel);
        let mixed = !aside.is_empty();
        let mut out = aside;
        for s in self.stamps.iter().rev() {
            let found = self.walk_stamp(s, rel)?;
            for (i, f) in found.iter().enumerate() {
                let own = f.line.is_some();
                let listed = own
                    || (f.folder.is_none() && f.meta.kind != Kind::Dir)
                    || (f.rel == rel && f.folder.is_some());
                if !listed {
                    continue;
                }
                let (bytes, files) = if f.meta.kind == Kind::Dir {
                    // Pre-order: what is under it follows it.
                    found[i + 1..]
                        .iter()
                        .take_while(|g| g.rel.starts_with(&f.rel))
                        .filter(|g| g.meta.kind != Kind::Dir)
                        .fold((0, 0), |(b, n), g| (b + g.meta.size, n + 1))
                } else {
                    (f.meta.size, 1)
                };
                let (reason, with_folder) = match (&f.line, &f.folder) {
                    (Some((r, _)), _) => (*r, None),
                    (None, Some(folder)) => (
                        self.line(s, folder).and_then(|(r, _)| r),
                        Some(folder.clone()),
                    ),
                    (None, None) => (None, None),
                };
                out.push(Version {
                    stamp: s.clone(),
                    rel: f.rel.clone(),
                    meta: f.meta,
                    bytes,
                    files,
                    reason,
                    with_folder,
                    stored: Some(f.rel.clone()),
                });
            }
        }
        if mixed {
            // Newest first, each time folder's own order kept (stable).
            out.sort_by(|a, b| b.stamp.cmp(&a.stamp));
        }
        Ok(out)
    }

    /// The kept versions of entries the drive cannot hold (see `record`) at
    /// `rel` and under it, newest first.
    fn aside_versions_of(&self, rel: &Path) -> Vec<Version> {
        let mut out: Vec<Version> = self
            .kept
            .iter()
            .filter(|(q, _)| q.starts_with(rel))
            .flat_map(|(q, lines)| {
                lines
                    .iter()
                    .filter(|k| k.entry.aside && k.entry.kind != super::record::EntryKind::Dir)
                    .filter_map(move |k| {
                        let stamp = self.stamps.iter().find(|s| s.name == k.at)?;
                        Some(Version {
                            stamp: stamp.clone(),
                            rel: q.clone(),
                            meta: k.entry.meta(),
                            bytes: k.entry.size,
                            files: 1,
                            reason: k.reason.as_deref().and_then(VersionReason::parse),
                            with_folder: None,
                            stored: k.entry.blob.map(|b| {
                                Path::new(RESERVED)
                                    .join(super::record::ASIDE_DIR)
                                    .join(b.to_string())
                            }),
                        })
                    })
            })
            .collect();
        out.sort_by(|a, b| (&b.stamp, &a.rel).cmp(&(&a.stamp, &b.rel)));
        out
    }

    /// The time folder of the last change of `rel` or anything under it:
    /// the newest folder holding some of it, or an earlier one of the same
    /// burst (less than [`BURST_GAP`] before) that holds entries the newest
    /// does not. A `rm -rf` seen while it ran is kept in several batches;
    /// "as it was before its last change" is before the first of them, so
    /// a restore gathers every one. An earlier folder holding only entries
    /// already accounted for is an earlier change (a file saved twice), and
    /// ends the search.
    pub fn last_change(&self, rel: &Path) -> Result<Option<Stamp>, EntryError> {
        // What the drive cannot hold has its versions in the record's log.
        let aside = self
            .aside_versions_of(rel)
            .into_iter()
            .next()
            .map(|v| v.stamp);
        let held = self.last_change_held(rel)?;
        Ok(match (held, aside) {
            (Some(h), Some(a)) if a > h => Some(a),
            (None, a) => a,
            (h, _) => h,
        })
    }

    /// [`last_change`](Self::last_change) among what the drive holds.
    fn last_change_held(&self, rel: &Path) -> Result<Option<Stamp>, EntryError> {
        let mut newer = self.stamps.iter().rev();
        let Some(last) = newer
            .by_ref()
            .find_map(|s| match self.walk_stamp(s, rel) {
                Ok(found) if found.is_empty() => None,
                Ok(_) => Some(Ok(s)),
                Err(e) => Some(Err(e)),
            })
            .transpose()?
        else {
            return Ok(None);
        };
        let mut first = last;
        let mut covered: HashSet<PathBuf> = self
            .tree_at(rel, last.time)?
            .entries
            .into_iter()
            .map(|h| h.rel)
            .collect();
        for s in newer {
            if first.time.duration_since(s.time) >= BURST_GAP {
                break;
            }
            let found = self.walk_stamp(s, rel)?;
            if found.is_empty() {
                continue;
            }
            if !found.iter().any(|f| f.real && !covered.contains(&f.rel)) {
                break;
            }
            covered.extend(found.into_iter().map(|f| f.rel));
            first = s;
        }
        Ok(Some(first.clone()))
    }

    /// What a restore of `tree` would miss because its time falls inside a
    /// burst of changes: entries kept less than [`BURST_GAP`] before it
    /// (batch after batch) that the tree lacks. The earliest such time
    /// folder, and how many entries; `None` when the tree has everything.
    pub fn missed_before(&self, tree: &Tree) -> Result<Option<(Stamp, usize)>, EntryError> {
        let mut covered: HashSet<PathBuf> = tree.entries.iter().map(|h| h.rel.clone()).collect();
        let mut edge = tree.at;
        let mut missed = None;
        let mut count = 0;
        for s in self.stamps.iter().rev().filter(|s| s.time < tree.at) {
            if edge.duration_since(s.time) >= BURST_GAP {
                break;
            }
            let found = self.walk_stamp(s, &tree.rel)?;
            let new: Vec<PathBuf> = found
                .into_iter()
                .filter(|f| f.real && !covered.contains(&f.rel))
                .map(|f| f.rel)
                .collect();
            if new.is_empty() {
                continue;
            }
            count += new.len();
            covered.extend(new);
            edge = s.time;
            missed = Some(s.clone());
        }
        Ok(missed.map(|s| (s, count)))
    }

    /// The entry held at `rel` at time `t` (the path alone, not what is
    /// under it), whether or not it existed then (see [`exists_at`]).
    pub fn entry_at(&self, rel: &Path, t: Timestamp) -> Result<Option<Held>, EntryError> {
        if let Some(h) = self.aside_at(rel, t).remove(rel) {
            return Ok(Some(h));
        }
        for s in self.stamps.iter().filter(|s| s.time >= t) {
            if let Some(f) = self.find_in_stamp(s, rel)?
                && f.real
            {
                return Ok(Some(Held {
                    rel: rel.to_path_buf(),
                    meta: f.meta,
                    origin: Origin::Version(s.clone()),
                }));
            }
        }
        let cur = self
            .current(rel)
            .map_err(|e| EntryError::new(self.dst.join(rel), "read", &e))?;
        Ok(cur.map(|meta| Held {
            rel: rel.to_path_buf(),
            meta,
            origin: Origin::Current,
        }))
    }

    /// `rel` and everything under it as the mirror held it at `t`.
    pub fn tree_at(&self, rel: &Path, t: Timestamp) -> Result<Tree, EntryError> {
        let mut res: BTreeMap<PathBuf, Held> = BTreeMap::new();
        for s in self.stamps.iter().filter(|s| s.time >= t) {
            for f in self.walk_stamp(s, rel)? {
                if f.real && !res.contains_key(&f.rel) {
                    res.insert(
                        f.rel,
                        Held {
                            rel: PathBuf::new(),
                            meta: f.meta,
                            origin: Origin::Version(s.clone()),
                        },
                    );
                }
            }
        }
        let mut current = Vec::new();
        self.walk_current(rel, &mut current)
            .map_err(|e| EntryError::new(self.dst.join(rel), "read", &e))?;
        for (q, meta) in current {
            res.entry(q).or_insert(Held {
                rel: PathBuf::new(),
                meta,
                origin: Origin::Current,
            });
        }
        // What the drive cannot hold at a path, it holds nothing of there:
        // an entry read at that name is another one's (a case-blind drive
        // finds `Report` for `report`).
        res.extend(self.aside_at(rel, t));
        for (q, h) in res.iter_mut() {
            h.rel = q.clone();
        }
        let thinned = self.thinned_at(rel, t, &res);

        // Under an entry that was not a folder at `t`, nothing existed then.
        let blocked = |q: &Path| {
            q.ancestors()
                .skip(1)
                .take_while(|a| a.starts_with(rel))
                .any(|a| res.get(a).is_some_and(|h| h.meta.kind != Kind::Dir))
        };
        let mut oldest: Option<Timestamp> = None;
        let mut keep: HashSet<PathBuf> = HashSet::new();
        let mut later = Vec::new();
        // Children before parents, so a folder knows whether it holds
        // something that existed.
        for (q, h) in res.iter().rev() {
            if blocked(q) {
                continue;
            }
            if h.meta.kind == Kind::Dir {
                if keep.contains(q) || exists_at(&h.meta, t) {
                    mark(&mut keep, q, rel);
                }
                continue;
            }
            let m = to_timestamp(h.meta.mtime);
            oldest = Some(oldest.map_or(m, |o: Timestamp| o.min(m)));
            if exists_at(&h.meta, t) || thinned.contains_key(q) {
                mark(&mut keep, q, rel);
            } else {
                later.push(h.clone());
            }
        }
        later.reverse();
        let entries = res
            .into_iter()
            .filter(|(q, _)| keep.contains(q))
            .map(|(_, h)| h)
            .collect();
        let thinned = thinned
            .into_iter()
            .filter(|(q, _)| keep.contains(q))
            .collect();
        Ok(Tree {
            at: t,
            rel: rel.to_path_buf(),
            entries,
            later,
            oldest,
            thinned,
        })
    }

    /// The paths under `rel` whose version held at `t` was thinned and
    /// existed at `t` already, where `res` holds a later kept one: each with
    /// the thinned version's time.
    fn thinned_at(
        &self,
        rel: &Path,
        t: Timestamp,
        res: &BTreeMap<PathBuf, Held>,
    ) -> HashMap<PathBuf, Timestamp> {
        let mut out = HashMap::new();
        for (q, list) in &self.thinned.paths {
            if !q.starts_with(rel) {
                continue;
            }
            let Some(h) = res.get(q) else { continue };
            let Some((gone, mtime)) = list.iter().find(|(s, _)| *s >= t) else {
                continue;
            };
            let shown_is_later = match &h.origin {
                Origin::Version(s) => s.time > *gone,
                Origin::Current => true,
                // Thinning never touches the record's entries.
                Origin::Recorded(_) => false,
            };
            if shown_is_later && to_timestamp(*mtime) <= t {
                out.insert(q.clone(), *gone);
            }
        }
        out
    }

    /// Space used by the versions.
    pub fn usage(&self) -> Result<Usage, EntryError> {
        let mut u = Usage {
            stamps: self.stamps.len(),
            oldest: self.stamps.first().cloned(),
            newest: self.stamps.last().cloned(),
            ..Usage::default()
        };
        if let Some(v) = &self.versions {
            for s in &self.stamps {
                let r = v
                    .open_dir(OsStr::new(&s.name))
                    .and_then(|d| versions::tree_usage(&d));
                match r {
                    Ok((b, f)) => {
                        u.bytes += b;
                        u.files += f;
                    }
                    Err(e) if gone(&e) => {}
                    Err(e) => {
                        return Err(EntryError::new(
                            self.versions_path().join(&s.name),
                            "read",
                            &e,
                        ));
                    }
                }
            }
        }
        Ok(u)
    }

    fn line(&self, s: &Stamp, rel: &Path) -> Option<Line> {
        self.journal.get(&s.name).and_then(|m| m.get(rel)).copied()
    }

    /// The folder (strictly above `rel`) versioned as a whole in `s`.
    fn versioned_ancestor(&self, s: &Stamp, rel: &Path) -> Option<PathBuf> {
        let m = self.journal.get(&s.name)?;
        rel.ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
            .find(|a| matches!(m.get(*a), Some((_, Kind::Dir))))
            .map(Path::to_path_buf)
    }

    /// `rel` itself in the time folder `s`, if there.
    fn find_in_stamp(&self, s: &Stamp, rel: &Path) -> Result<Option<Found>, EntryError> {
        let Some(name) = rel.file_name() else {
            return Ok(None);
        };
        let Some(sdir) = self.open_stamp(s)? else {
            return Ok(None);
        };
        let at = |e: &io::Error| {
            EntryError::new(self.versions_path().join(&s.name).join(rel), "read", e)
        };
        let parent = match sdir.open_path(rel.parent().unwrap_or(Path::new(""))) {
            Ok(p) => p,
            Err(e) if gone(&e) => return Ok(None),
            Err(e) => return Err(at(&e)),
        };
        let Some(meta) = parent.stat_opt(name).map_err(|e| at(&e))? else {
            return Ok(None);
        };
        let meta = self.seen(rel, meta, Some(s));
        let line = self.line(s, rel);
        let folder = self.versioned_ancestor(s, rel);
        Ok(Some(Found {
            rel: rel.to_path_buf(),
            meta,
            real: meta.kind != Kind::Dir || line.is_some() || folder.is_some(),
            line,
            folder,
        }))
    }

    fn open_stamp(&self, s: &Stamp) -> Result<Option<DirHandle>, EntryError> {
        let Some(v) = &self.versions else {
            return Ok(None);
        };
        match v.open_dir(OsStr::new(&s.name)) {
            Ok(d) => Ok(Some(d)),
            Err(e) if gone(&e) => Ok(None),
            Err(e) => Err(EntryError::new(
                self.versions_path().join(&s.name),
                "open",
                &e,
            )),
        }
    }

    /// `rel` and everything under it in the time folder `s`, pre-order.
    fn walk_stamp(&self, s: &Stamp, rel: &Path) -> Result<Vec<Found>, EntryError> {
        let mut out = Vec::new();
        let Some(sdir) = self.open_stamp(s)? else {
            return Ok(out);
        };
        let base = self.versions_path().join(&s.name);
        let r = if rel.as_os_str().is_empty() {
            self.walk_children(s, &sdir, rel, None, &mut out)
        } else {
            match self.find_in_stamp(s, rel)? {
                None => Ok(()),
                Some(f) => {
                    let is_dir = f.meta.kind == Kind::Dir;
                    let folder = match f.line {
                        Some((_, Kind::Dir)) => Some(rel.to_path_buf()),
                        _ => f.folder.clone(),
                    };
                    out.push(f);
                    if is_dir {
                        sdir.open_path(rel)
                            .and_then(|d| self.walk_children(s, &d, rel, folder, &mut out))
                    } else {
                        Ok(())
                    }
                }
            }
        };
        r.map_err(|e| EntryError::new(base.join(rel), "read", &e))?;
        Ok(out)
    }

    /// Everything under `dir`, which is `rel` in the time folder `s` and
    /// part of the versioned folder `folder` (if any): pre-order, each
    /// folder's names sorted.
    fn walk_children(
        &self,
        s: &Stamp,
        dir: &DirHandle,
        rel: &Path,
        folder: Option<PathBuf>,
        out: &mut Vec<Found>,
    ) -> io::Result<()> {
        /// A folder being walked, one per level of the path the walk is in
        /// (a `Vec` of them, not the call stack, so any depth fits).
        struct Frame {
            /// `None`: `dir`, which the caller holds.
            dir: Option<DirHandle>,
            rel: PathBuf,
            folder: Option<PathBuf>,
            /// The names not looked at yet.
            names: std::vec::IntoIter<Entry>,
        }
        fn sorted(dir: &DirHandle) -> io::Result<std::vec::IntoIter<Entry>> {
            let mut list = dir.list()?;
            list.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(list.into_iter())
        }
        let mut stack = vec![Frame {
            dir: None,
            rel: rel.to_path_buf(),
            folder,
            names: sorted(dir)?,
        }];
        while let Some(top) = stack.last_mut() {
            let Some(e) = top.names.next() else {
                stack.pop();
                continue;
            };
            let here = top.dir.as_ref().unwrap_or(dir);
            // The time folder's own corner: the record's files kept as
            // versions (see `record`), not entries of the mirror.
            if top.dir.is_none() && top.rel.as_os_str().is_empty() && e.name == RESERVED {
                continue;
            }
            let Some(meta) = here.stat_opt(&e.name)? else {
                continue;
            };
            let q = top.rel.join(&e.name);
            let meta = self.seen(&q, meta, Some(s));
            let line = self.line(s, &q);
            let real = meta.kind != Kind::Dir || line.is_some() || top.folder.is_some();
            let inner = match line {
                Some((_, Kind::Dir)) => Some(q.clone()),
                _ => top.folder.clone(),
            };
            out.push(Found {
                rel: q.clone(),
                meta,
                line,
                folder: top.folder.clone(),
                real,
            });
            if meta.kind == Kind::Dir {
                match here.open_dir(&e.name) {
                    Ok(sub) => {
                        let names = sorted(&sub)?;
                        stack.push(Frame {
                            dir: Some(sub),
                            rel: q,
                            folder: inner,
                            names,
                        });
                    }
                    Err(err) if gone(&err) => {}
                    Err(err) => return Err(err),
                }
            }
        }
        Ok(())
    }

    /// DST's current entries under `rel` (and `rel` itself).
    fn walk_current(&self, rel: &Path, out: &mut Vec<(PathBuf, Meta)>) -> io::Result<()> {
        let start = out.len();
        let r = self.walk_current_raw(rel, out);
        for (q, m) in &mut out[start..] {
            *m = self.seen(q, *m, None);
        }
        r
    }

    fn walk_current_raw(&self, rel: &Path, out: &mut Vec<(PathBuf, Meta)>) -> io::Result<()> {
        /// Everything under `dir` (which is `rel`), pre-order, in the order
        /// the folders list their names; one frame per level of the path the
        /// walk is in, each holding its folder (`None`: `dir` itself) and
        /// the names not looked at yet.
        fn walk(
            dir: &DirHandle,
            rel: &Path,
            at_root: bool,
            out: &mut Vec<(PathBuf, Meta)>,
        ) -> io::Result<()> {
            let mut stack: Vec<(Option<DirHandle>, PathBuf, std::vec::IntoIter<Entry>)> =
                vec![(None, rel.to_path_buf(), dir.list()?.into_iter())];
            while let Some((sub, rel, names)) = stack.last_mut() {
                let Some(e) = names.next() else {
                    stack.pop();
                    continue;
                };
                let here = sub.as_ref().unwrap_or(dir);
                if at_root && sub.is_none() && e.name == RESERVED {
                    continue;
                }
                let Some(meta) = here.stat_opt(&e.name)? else {
                    continue;
                };
                let q = rel.join(&e.name);
                out.push((q.clone(), meta));
                if meta.kind == Kind::Dir {
                    match here.open_dir(&e.name) {
                        Ok(d) => {
                            let names = d.list()?.into_iter();
                            stack.push((Some(d), q, names));
                        }
                        Err(err) if gone(&err) => {}
                        Err(err) => return Err(err),
                    }
                }
            }
            Ok(())
        }
        if rel.as_os_str().is_empty() {
            return walk(&self.root, rel, true, out);
        }
        let Some(meta) = self.current(rel)? else {
            return Ok(());
        };
        out.push((rel.to_path_buf(), meta));
        if meta.kind == Kind::Dir {
            match self.root.open_path(rel) {
                Ok(d) => walk(&d, rel, false, out)?,
                Err(e) if gone(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Whether an entry held at some time existed already at `t`: a file or
/// symlink modified after `t` did not (its content was made later). A
/// folder's time changes with its content, so it says nothing: a folder
/// counts when it holds something that existed, or is older than `t`.
/// A time still in the future (a camera's wrong clock, a file dated 2200)
/// says nothing of when it was made: such an entry counts, so that
/// `restore --at now` never leaves a current file behind.
pub fn exists_at(meta: &Meta, t: Timestamp) -> bool {
    let m = to_timestamp(meta.mtime);
    m <= t || m > Timestamp::now()
}

/// A file-system time as a timestamp.
pub fn to_timestamp(t: Time) -> Timestamp {
    Timestamp::new(t.sec, t.nsec as i32).unwrap_or(if t.sec < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// Marks `q` and its ancestors down to `rel` as kept.
fn mark(keep: &mut HashSet<PathBuf>, q: &Path, rel: &Path) {
    for a in q.ancestors() {
        if !a.starts_with(rel) || !keep.insert(a.to_path_buf()) {
            break;
        }
    }
}

/// Whether `rel` is DST's own folder or inside it.
pub fn is_reserved(rel: &Path) -> bool {
    rel.components()
        .next()
        .is_some_and(|c| c.as_os_str() == RESERVED)
}

/// "Not there" errors: missing, or a path component that is not a folder
/// (a file, or a symlink, which handles never follow).
fn gone(e: &io::Error) -> bool {
    use rustix::io::Errno;
    e.kind() == io::ErrorKind::NotFound
        || e.raw_os_error() == Some(Errno::NOTDIR.raw_os_error())
        || e.raw_os_error() == Some(Errno::LOOP.raw_os_error())
}

/// Reads `versions.log`: per time folder, the paths kept and why. A log
/// that cannot be read gives an empty journal (files are still found by
/// scanning; only reasons and whole-folder versions are then unknown).
/// The text of one of the store's logs (empty when missing or unreadable;
/// `what` says what that costs, for the warning).
fn read_log(store: &DirHandle, name: &str, what: &str) -> String {
    let mut text = Vec::new();
    let r = store
        .open_read(OsStr::new(name))
        .and_then(|mut f| f.read_to_end(&mut text));
    match r {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => log::warn!(
            "{name}: cannot read it: {}; {what}",
            super::error::reason(&e)
        ),
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// `thinned.log`: `<time folder>\t<kind>\t<mtime>\t<path>` per thinned
/// version, `<time folder>\temptied\t-\t` per time folder thinning removed.
fn read_thinned(store: &DirHandle) -> Thinned {
    let mut out = Thinned::default();
    let text = read_log(
        store,
        versions::THINNED_LOG,
        "thinned versions are not told apart from kept ones",
    );
    for line in text.lines() {
        let mut parts = line.splitn(4, '\t');
        let (Some(st), Some(kind), Some(mtime), Some(path)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Some(time) = stamp::parse(st) else {
            continue;
        };
        if kind == "emptied" {
            out.emptied.insert(st.to_string());
            continue;
        }
        let (Some(mtime), Some(rel)) = (versions::parse_mtime(mtime), versions::unescape(path))
        else {
            continue;
        };
        out.paths.entry(rel).or_default().push((time, mtime));
    }
    for v in out.paths.values_mut() {
        v.sort_by_key(|(t, _)| *t);
    }
    out
}

fn read_journal(store: &DirHandle) -> HashMap<String, HashMap<PathBuf, Line>> {
    let mut out: HashMap<String, HashMap<PathBuf, Line>> = HashMap::new();
    let text = read_log(store, "versions.log", "reasons are shown as unknown");
    for line in text.lines() {
        let mut parts = line.splitn(4, '\t');
        let (Some(st), Some(reason), Some(kind), Some(path)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if stamp::parse(st).is_none() {
            continue;
        }
        let kind = match kind {
            "file" => Kind::File,
            "dir" => Kind::Dir,
            "symlink" => Kind::Symlink,
            "special" => Kind::Special,
            _ => continue,
        };
        let Some(rel) = versions::unescape(path) else {
            continue;
        };
        out.entry(st.to_string())
            .or_default()
            .insert(rel, (VersionReason::parse(reason), kind));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn set_mtime(p: &Path, t: &str) {
        let t = ts(t);
        let ft = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.as_second() as u64);
        let f = std::fs::File::options().write(true).open(p).unwrap();
        f.set_modified(ft).unwrap();
    }

    /// A DST with versions made by hand: `(stamp, rel, content, mtime)`,
    /// plus journal lines.
    struct Fake {
        dir: tempfile::TempDir,
    }

    impl Fake {
        fn new() -> Fake {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(dir.path().join(".mirrortray/versions")).unwrap();
            Fake { dir }
        }
        fn dst(&self) -> &Path {
            self.dir.path()
        }
        fn version(&self, at: &str, rel: &str, content: &str, mtime: &str, reason: &str) {
            let name = stamp::format(ts(at));
            let p = self
                .dst()
                .join(".mirrortray/versions")
                .join(&name)
                .join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, content).unwrap();
            set_mtime(&p, mtime);
            self.line(&name, reason, "file", rel);
        }
        fn line(&self, name: &str, reason: &str, kind: &str, rel: &str) {
            use std::io::Write;
            let mut f = std::fs::File::options()
                .create(true)
                .append(true)
                .open(self.dst().join(".mirrortray/versions.log"))
                .unwrap();
            writeln!(f, "{name}\t{reason}\t{kind}\t{rel}").unwrap();
        }
        fn current(&self, rel: &str, content: &str, mtime: &str) {
            let p = self.dst().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, content).unwrap();
            set_mtime(&p, mtime);
        }
        fn read(&self, h: &History, held: &Held) -> String {
            std::fs::read_to_string(h.stored_path(held)).unwrap()
        }
    }

    #[test]
    fn a_file_at_each_time() {
        let f = Fake::new();
        f.version(
            "2026-01-01T10:00:00Z",
            "a.txt",
            "one",
            "2026-01-01T09:00:00Z",
            "modified",
        );
        f.version(
            "2026-01-01T11:00:00Z",
            "a.txt",
            "two",
            "2026-01-01T10:00:00Z",
            "modified",
        );
        f.current("a.txt", "three", "2026-01-01T11:00:00Z");
        let h = History::open(f.dst()).unwrap();
        let at = |t: &str| {
            let tree = h.tree_at(Path::new("a.txt"), ts(t)).unwrap();
            tree.entries.first().map(|e| f.read(&h, e))
        };
        assert_eq!(at("2026-01-01T08:00:00Z"), None, "before it was made");
        assert_eq!(at("2026-01-01T09:30:00Z").as_deref(), Some("one"));
        assert_eq!(at("2026-01-01T10:00:00Z").as_deref(), Some("one"));
        assert_eq!(at("2026-01-01T10:30:00Z").as_deref(), Some("two"));
        assert_eq!(at("2026-01-01T12:00:00Z").as_deref(), Some("three"));
        let v = h.versions_of(Path::new("a.txt")).unwrap();
        assert_eq!(v.len(), 2);
        assert!(v[0].stamp > v[1].stamp, "newest first");
        assert_eq!(v[0].reason, Some(VersionReason::Modified));
        assert_eq!(
            h.tree_at(Path::new("a.txt"), ts("2026-01-01T08:00:00Z"))
                .unwrap()
                .oldest,
            Some(ts("2026-01-01T09:00:00Z"))
        );
    }

    #[test]
    fn a_whole_folder_version_and_containers() {
        let f = Fake::new();
        // docs/old/ deleted as a whole at 10:00; docs/b.txt modified at 11:00
        // (docs/ in that time folder is only a container).
        let name = stamp::format(ts("2026-01-01T10:00:00Z"));
        let base = f.dst().join(".mirrortray/versions").join(&name);
        std::fs::create_dir_all(base.join("docs/old/sub")).unwrap();
        std::fs::write(base.join("docs/old/x.txt"), "xx").unwrap();
        std::fs::write(base.join("docs/old/sub/y.txt"), "yyy").unwrap();
        set_mtime(&base.join("docs/old/x.txt"), "2026-01-01T08:00:00Z");
        set_mtime(&base.join("docs/old/sub/y.txt"), "2026-01-01T08:00:00Z");
        symlink("x.txt", base.join("docs/old/link")).unwrap();
        let old_time = Time {
            sec: ts("2026-01-01T08:00:00Z").as_second(),
            nsec: 0,
        };
        DirHandle::open_root(&base.join("docs/old"))
            .unwrap()
            .set_times(OsStr::new("link"), old_time, old_time)
            .unwrap();
        f.line(&name, "deleted", "dir", "docs/old");
        f.version(
            "2026-01-01T11:00:00Z",
            "docs/b.txt",
            "b1",
            "2026-01-01T08:00:00Z",
            "modified",
        );
        f.current("docs/b.txt", "b2", "2026-01-01T10:30:00Z");
        let h = History::open(f.dst()).unwrap();

        let v = h.versions_of(Path::new("docs")).unwrap();
        let listed: Vec<(String, u64, u64)> = v
            .iter()
            .map(|v| (v.rel.display().to_string(), v.bytes, v.files))
            .collect();
        assert_eq!(
            listed,
            vec![("docs/b.txt".into(), 2, 1), ("docs/old".into(), 5 + 5, 3),]
        );
        // One file inside the folder version is a version of that file.
        let y = h.versions_of(Path::new("docs/old/sub/y.txt")).unwrap();
        assert_eq!(y.len(), 1);
        assert_eq!(y[0].with_folder.as_deref(), Some(Path::new("docs/old")));
        assert_eq!(y[0].reason, Some(VersionReason::Deleted));

        // At 09:00 docs held old/ (with its content) and b1.
        let tree = h
            .tree_at(Path::new("docs"), ts("2026-01-01T09:00:00Z"))
            .unwrap();
        let rels: Vec<String> = tree
            .entries
            .iter()
            .map(|e| e.rel.display().to_string())
            .collect();
        assert_eq!(
            rels,
            vec![
                "docs",
                "docs/b.txt",
                "docs/old",
                "docs/old/link",
                "docs/old/sub",
                "docs/old/sub/y.txt",
                "docs/old/x.txt"
            ]
        );
        // At 10:45 old/ is gone and b.txt is b2 (made at 10:30).
        let tree = h
            .tree_at(Path::new("docs"), ts("2026-01-01T10:45:00Z"))
            .unwrap();
        let rels: Vec<String> = tree
            .entries
            .iter()
            .map(|e| {
                format!(
                    "{}={}",
                    e.rel.display(),
                    if e.meta.kind == Kind::File {
                        f.read(&h, e)
                    } else {
                        String::new()
                    }
                )
            })
            .collect();
        assert_eq!(rels, vec!["docs=", "docs/b.txt=b1"]);
        // b2 was made at 10:30 but b1 was held until 11:00: the stamp wins.
        let tree = h
            .tree_at(Path::new("docs"), ts("2026-01-01T11:30:00Z"))
            .unwrap();
        assert_eq!(f.read(&h, &tree.entries[1]), "b2");
    }

    #[test]
    fn a_file_that_became_a_folder() {
        let f = Fake::new();
        f.version(
            "2026-01-01T10:00:00Z",
            "p",
            "file",
            "2026-01-01T08:00:00Z",
            "replaced",
        );
        // Now a folder whose file claims an old time (copied with cp -p).
        f.current("p/inner.txt", "inner", "2026-01-01T07:00:00Z");
        let h = History::open(f.dst()).unwrap();
        let tree = h
            .tree_at(Path::new("p"), ts("2026-01-01T09:00:00Z"))
            .unwrap();
        assert_eq!(tree.entries.len(), 1);
        assert_eq!(tree.entries[0].meta.kind, Kind::File);
    }

    #[test]
    fn pruned_folders_are_found_from_the_log() {
        let f = Fake::new();
        f.version(
            "2026-01-01T10:00:00Z",
            "a.txt",
            "one",
            "2026-01-01T09:00:00Z",
            "modified",
        );
        f.version(
            "2026-01-02T10:00:00Z",
            "a.txt",
            "two",
            "2026-01-01T11:00:00Z",
            "modified",
        );
        let h = History::open(f.dst()).unwrap();
        assert_eq!(h.pruned_up_to(), None);
        std::fs::remove_dir_all(
            f.dst()
                .join(".mirrortray/versions")
                .join(stamp::format(ts("2026-01-01T10:00:00Z"))),
        )
        .unwrap();
        let h = History::open(f.dst()).unwrap();
        assert_eq!(h.pruned_up_to(), Some(ts("2026-01-01T10:00:00Z")));
        assert_eq!(h.usage().unwrap().stamps, 1);
    }

    #[test]
    fn a_thinned_time_is_answered_with_the_nearest_kept_version_and_says_so() {
        use crate::engine::fsops::DirHandle;
        use crate::engine::store::Store;
        use crate::engine::thinning::Policy;
        let f = Fake::new();
        let (a1, a2, a3) = (
            "2026-01-01T10:10:00Z",
            "2026-01-01T10:20:00Z",
            "2026-01-01T10:30:00Z",
        );
        f.version(a1, "a.txt", "one", "2026-01-01T09:00:00Z", "modified");
        f.version(a2, "a.txt", "two", "2026-01-01T10:10:00Z", "renamed-over");
        f.version(a3, "a.txt", "three", "2026-01-01T10:20:00Z", "modified");
        f.current("a.txt", "four", "2026-01-01T10:30:00Z");
        // Another path in the first folder, and a deletion in the same hour.
        f.version(a1, "b/c.txt", "c", "2026-01-01T08:00:00Z", "modified");
        f.version(a2, "b/c.txt", "c2", "2026-01-01T10:00:00Z", "deleted");

        let thin = |now: &str| {
            let root = DirHandle::open_root(f.dst()).unwrap();
            let store = Store::open(&root, f.dst(), true, "test").unwrap();
            store.thin(&Policy::DEFAULT, ts(now)).unwrap()
        };
        // A day later nothing is old enough.
        assert_eq!(thin("2026-01-02T09:00:00Z").count, 0);
        let t = thin("2026-01-05T00:00:00Z");
        assert_eq!(
            (t.count, t.bytes),
            (3, 3 + 3 + 1),
            "a.txt twice and b/c.txt"
        );

        let h = History::open(f.dst()).unwrap();
        // The second folder held only a.txt and the deletion: it stays for
        // the deletion; the first lost everything, and is not "pruned".
        assert!(
            !f.dst()
                .join(".mirrortray/versions")
                .join(stamp::format(ts(a1)))
                .exists()
        );
        assert_eq!(h.pruned_up_to(), None);
        assert_eq!(h.thinned_of(Path::new("a.txt")), vec![ts(a1), ts(a2)]);
        let v = h.versions_of(Path::new("a.txt")).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].stamp.time, ts(a3));

        // At 10:15 a.txt held "two" (thinned): the nearest kept is "three".
        let tree = h
            .tree_at(Path::new(""), ts("2026-01-01T10:15:00Z"))
            .unwrap();
        let a = tree
            .entries
            .iter()
            .find(|e| e.rel == Path::new("a.txt"))
            .unwrap();
        assert_eq!(f.read(&h, a), "three");
        assert_eq!(tree.thinned.get(Path::new("a.txt")), Some(&ts(a2)));
        // b/c.txt: its kept deletion answers exactly, nothing thinned.
        assert!(!tree.thinned.contains_key(Path::new("b/c.txt")));
        // Before a.txt existed at all, it is not there; b/c.txt held "c"
        // (thinned), and its nearest kept is what was deleted.
        let tree = h
            .tree_at(Path::new(""), ts("2026-01-01T08:30:00Z"))
            .unwrap();
        assert!(!tree.entries.iter().any(|e| e.rel == Path::new("a.txt")));
        let want: BTreeMap<PathBuf, Timestamp> = [("b/c.txt".into(), ts(a1))].into();
        assert_eq!(tree.thinned, want);
        // Thinning again removes nothing more.
        assert_eq!(thin("2026-01-05T00:00:00Z").count, 0);
        // The log lines of thinned versions are not listed as kept.
        assert!(
            !h.logged()
                .iter()
                .any(|l| l.rel == Path::new("a.txt") && l.stamp.time != ts(a3))
        );
    }
}
