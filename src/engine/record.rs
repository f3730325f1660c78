//! record: what the backup drive cannot hold, written down beside it so a
//! restore gives SRC's entries back exactly. Pure: the model, its rules and
//! its file format; the I/O that keeps it in step is `aside.rs`.
//!
//! An exFAT or NTFS drive keeps no permission bits (every entry reads 777),
//! exFAT keeps whole seconds from 1980 to 2107 and no symlinks, and some
//! names are refused or clash by case (see `keeps`). The drive is compared
//! within what it holds; the rest is recorded, per path, in two kinds of
//! entry:
//! - **overlay**: DST holds the entry, but not exactly (its mode, or its
//!   mtime's nanoseconds or year, or, as root, an owner other than root
//!   where the drive has none: see `Keeps::owner_lost`; or, on a drive
//!   without extended attributes, any attribute or ACL). The entry gives
//!   SRC's mode and mtime (and that owner; and for a file with several
//!   names on a drive without hard links, SRC's device and inode, so that
//!   a restore makes its names one file again; and those attributes). It
//!   applies to a stored entry (DST's, or a kept version) only if that one
//!   is of the same kind and size and the drive's precision makes its mtime
//!   equal to the recorded one ([`Entry::describes`]): an older version it
//!   does not describe is given back as the drive holds it.
//! - **aside**: DST cannot hold the entry at all: a symlink on exFAT, a name
//!   the drive refuses, the second of two names that differ only in case,
//!   and everything under such a folder. A symlink's target is in the
//!   entry; a file's bytes are in `.mirrortray/aside/<blob>`, named by a
//!   number, since any number is a name every drive takes.
//!
//! Entries exist only for paths SRC holds that need one: an entry the drive
//! holds exactly (ordinary mode, a time it keeps) has none, so on ext4 the
//! record stays empty. Every entry a pass or batch looks at is noted again;
//! each folder listing drops the recorded names SRC no longer holds there;
//! a rename replayed in DST moves the entries under it.
//!
//! On disk, two files in `.mirrortray/`. A large tree on exFAT has an
//! overlay for nearly every file (its nanoseconds), so the record is not
//! written whole per batch: a batch appends one line of what it changed.
//! - `record.json`, the snapshot, written whole (temp file, rename):
//!   ```text
//!   {"format":2,"next_blob":3,"entries":[
//!    {"path":"bin/run.sh","kind":"file","mode":493,"mtime":[1714979289,123456789],"size":19},
//!    {"path":"link","kind":"symlink","mode":511,"mtime":[1714979289,5],"size":10,"aside":true,"target":"secret.txt"},
//!    {"path":"a:b","kind":"file","mode":420,"mtime":[1714979289,7],"size":5,"aside":true,"blob":2},
//!    {"path":"doc","kind":"file","mode":416,"mtime":[1714979289,0],"size":3,"xattrs":[["system.posix_acl_access",[2,0,0,0,1,0,6,0,255,255,255,255]],["user.tag","red"]]}]}
//!   ```
//!   Format 1 (before the log) reads the same, and so does a record from
//!   before attributes were recorded (no `xattrs`: none).
//! - `record.log`, one JSON line per pass or batch that changed the record,
//!   appended: `{"next_blob":4,"set":[{"path":…,<entry>}],"gone":["old"]}`.
//!   Each line gives paths their new state, not a step from the old one,
//!   so replaying a line twice changes nothing: the log is read before the
//!   snapshot, and a snapshot that already holds it (made between the two
//!   reads) is still right after the replay.
//!
//! Reading is the snapshot, then the log's lines in order ([`Record::read`]).
//! A last line without its newline is a write torn by a crash: left out, and
//! the next save writes a snapshot rather than append after it. When the
//! log has grown past [`COMPACT_FACTOR`] times the snapshot (and
//! [`COMPACT_MIN`]), the next save writes a snapshot and the log goes
//! ([`compact_due`]).
//!
//! A path or target that is not UTF-8 is written as an array of its bytes.
//! An aside entry replaced or dropped (versions on) is kept as a version:
//! its blob moves to `versions/<time>/.mirrortray/aside/<blob>` (pruned with
//! that time folder), and `.mirrortray/aside.log` gets one JSON line
//! `{"at":"<time folder>","path":…,"reason":…,<the entry>}`: held until that time, as
//! the versions are (see `history.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::ops::Bound;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::fsops::{Kind, Meta, Time};
use super::keeps::Keeps;
use super::plan::TimeLimits;
use super::xattrs::Xattrs;

/// The record's snapshot, in `.mirrortray/`.
pub const RECORD_FILE: &str = "record.json";
/// The record's log of changes since the snapshot, in `.mirrortray/`.
pub const RECORD_LOG: &str = "record.log";
/// The snapshot's format; 1 was written whole, with no log beside it.
const FORMAT: u32 = 2;
/// The log is folded into a new snapshot once it is this many times the
/// snapshot's size: a save then costs, spread over the batches, a small
/// multiple of what the batches changed.
pub const COMPACT_FACTOR: u64 = 2;
/// ...and at least this long, so that a small record is not rewritten for
/// every few batches.
pub const COMPACT_MIN: u64 = 64 * 1024;
/// Where aside files' bytes are, in `.mirrortray/`.
pub const ASIDE_DIR: &str = "aside";
/// The log of aside entries kept as versions, in `.mirrortray/`.
pub const ASIDE_LOG: &str = "aside.log";

/// Bytes written as a string when they are UTF-8, else as an array.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Bytes(pub Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => self.0.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Text(String),
            Raw(Vec<u8>),
        }
        Ok(Bytes(match Either::deserialize(d)? {
            Either::Text(t) => t.into_bytes(),
            Either::Raw(b) => b,
        }))
    }
}

impl Bytes {
    pub fn of(s: &OsStr) -> Bytes {
        Bytes(s.as_bytes().to_vec())
    }
    pub fn as_os_str(&self) -> &OsStr {
        OsStr::from_bytes(&self.0)
    }
}

/// The kinds of entry a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
}

impl EntryKind {
    pub fn of(kind: Kind) -> Option<EntryKind> {
        match kind {
            Kind::File => Some(EntryKind::File),
            Kind::Dir => Some(EntryKind::Dir),
            Kind::Symlink => Some(EntryKind::Symlink),
            Kind::Special => None,
        }
    }
    pub fn kind(self) -> Kind {
        match self {
            EntryKind::File => Kind::File,
            EntryKind::Dir => Kind::Dir,
            EntryKind::Symlink => Kind::Symlink,
        }
    }
}

/// What the record says of one SRC path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub kind: EntryKind,
    /// Permission bits (07777).
    pub mode: u32,
    /// Seconds and nanoseconds.
    pub mtime: (i64, u32),
    pub size: u64,
    /// DST holds nothing at this path: everything is here.
    #[serde(default, skip_serializing_if = "is_false")]
    pub aside: bool,
    /// A symlink's target text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Bytes>,
    /// An aside file's bytes: `.mirrortray/aside/<blob>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<u64>,
    /// Owner and group, where the drive loses them (root's: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<[u32; 2]>,
    /// A file with several names, on a drive without hard links: SRC's
    /// device and inode, the same for each of its names, so that a
    /// restore makes them one file again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<[u64; 2]>,
    /// Extended attributes and ACLs, where the drive keeps none.
    #[serde(default, skip_serializing_if = "Xattrs::is_empty")]
    pub xattrs: Xattrs,
}

/// SRC's attributes `x` as the record keeps them: where the drive loses
/// them (a symlink has none the record keeps).
fn xattrs_of(keeps: &Keeps, m: &Meta, x: &Xattrs) -> Xattrs {
    if keeps.xattrs || m.kind == Kind::Symlink {
        Xattrs::default()
    } else {
        x.clone()
    }
}

/// SRC's `m`'s identity as the record keeps it for its names.
fn link_of(keeps: &Keeps, m: &Meta) -> Option<[u64; 2]> {
    links_lost(keeps, m).then_some([m.dev, m.ino])
}

/// Whether `m` is a file with several names on a drive that holds each as
/// a copy of its own.
fn links_lost(keeps: &Keeps, m: &Meta) -> bool {
    !keeps.hardlinks && m.kind == Kind::File && m.nlink > 1
}

/// SRC's `m`'s owner and group as the record keeps them.
fn owner_of(keeps: &Keeps, m: &Meta) -> Option<[u32; 2]> {
    keeps.owner_lost(m).then_some([m.uid, m.gid])
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Entry {
    /// SRC's entry as an overlay (no target, no blob).
    pub fn overlay(m: &Meta) -> Option<Entry> {
        Some(Entry {
            kind: EntryKind::of(m.kind)?,
            mode: m.mode,
            mtime: (m.mtime.sec, m.mtime.nsec),
            size: if m.kind == Kind::Dir { 0 } else { m.size },
            aside: false,
            target: None,
            blob: None,
            owner: None,
            link: None,
            xattrs: Xattrs::default(),
        })
    }

    /// SRC's entry as the record keeps it on a drive that keeps `keeps`
    /// (`x`: its attributes): the overlay, with the owner and attributes
    /// the drive loses.
    pub fn recorded(keeps: &Keeps, m: &Meta, x: &Xattrs) -> Option<Entry> {
        Some(Entry {
            owner: owner_of(keeps, m),
            link: link_of(keeps, m),
            xattrs: xattrs_of(keeps, m, x),
            ..Entry::overlay(m)?
        })
    }

    pub fn time(&self) -> Time {
        Time {
            sec: self.mtime.0,
            nsec: self.mtime.1,
        }
    }

    /// Whether it says what SRC's `m` is (kind, size, mode, mtime, and
    /// owner and attributes `x` where `keeps` loses them).
    pub fn matches(&self, keeps: &Keeps, m: &Meta, x: &Xattrs) -> bool {
        self.owner == owner_of(keeps, m)
            && self.xattrs == xattrs_of(keeps, m, x)
            && self.link == link_of(keeps, m)
            && EntryKind::of(m.kind) == Some(self.kind)
            && (self.kind == EntryKind::Dir || self.size == m.size)
            && self.mode == m.mode
            && self.time() == m.mtime
    }

    /// Whether it is what a stored entry `held` (as the drive holds it:
    /// DST's, or a kept version) stands for: same kind and size, and the
    /// same mtime as far as the drive keeps times.
    pub fn describes(&self, limits: &TimeLimits, held: &Meta) -> bool {
        EntryKind::of(held.kind) == Some(self.kind)
            && (self.kind == EntryKind::Dir || self.size == held.size)
            && limits.same(self.time(), held.mtime)
    }

    /// `held` with the recorded mode, mtime, owner and identity (a file
    /// with several names: SRC's, shared by its names).
    pub fn apply(&self, held: &Meta) -> Meta {
        let [uid, gid] = self.owner.unwrap_or([held.uid, held.gid]);
        let [dev, ino] = self.link.unwrap_or([held.dev, held.ino]);
        Meta {
            mode: self.mode,
            mtime: self.time(),
            uid,
            gid,
            dev,
            ino,
            nlink: if self.link.is_some() { 2 } else { held.nlink },
            ..*held
        }
    }

    /// A [`Meta`] for an entry DST does not hold.
    pub fn meta(&self) -> Meta {
        let t = self.time();
        Meta {
            kind: self.kind.kind(),
            size: self.size,
            mode: self.mode,
            mtime: t,
            atime: t,
            ctime: t,
            dev: self.link.map_or(0, |l| l[0]),
            ino: self.link.map_or(0, |l| l[1]),
            nlink: if self.link.is_some() { 2 } else { 1 },
            uid: self.owner.map_or(0, |o| o[0]),
            gid: self.owner.map_or(0, |o| o[1]),
            raw_mode: self.mode,
        }
    }
}

/// The permission bits a restore gives an entry from a drive that keeps
/// none, when the record has no word on it (never the drive's 777).
pub fn ordinary_mode(kind: Kind) -> u32 {
    if kind == Kind::Dir { 0o755 } else { 0o644 }
}

/// Whether the drive holds time `t` exactly (in range, and no finer than
/// its precision).
pub fn time_kept(limits: &TimeLimits, t: Time) -> bool {
    let g = limits.granularity_ns;
    limits.clamp(t) == t
        && match g {
            0 | 1 => true,
            g if g < 1_000_000_000 => t.nsec.is_multiple_of(g),
            g => t.nsec == 0 && t.sec.rem_euclid(i64::from(g / 1_000_000_000)) == 0,
        }
}

/// Whether SRC's entry `m` (with attributes `x`), which DST holds, needs
/// an overlay entry.
pub fn needs_overlay(keeps: &Keeps, m: &Meta, x: &Xattrs) -> bool {
    if m.kind == Kind::Special {
        return false;
    }
    let mode_lost = !keeps.modes && m.kind != Kind::Symlink && m.mode != ordinary_mode(m.kind);
    mode_lost
        || !time_kept(&keeps.times, m.mtime)
        || keeps.owner_lost(m)
        || links_lost(keeps, m)
        || !xattrs_of(keeps, m, x).is_empty()
}

/// A relative path as the record's key: its bytes.
fn key(rel: &Path) -> Vec<u8> {
    rel.as_os_str().as_bytes().to_vec()
}

/// A range of keys.
type Span = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// The range of keys strictly under `rel` (everything, for the root), and
/// the length of their common prefix.
fn under(rel: &Path) -> (Span, usize) {
    let k = key(rel);
    if k.is_empty() {
        return ((Bound::Unbounded, Bound::Unbounded), 0);
    }
    let mut lo = k.clone();
    lo.push(b'/');
    let mut hi = k;
    // '/' + 1: just past every key that continues with '/'.
    hi.push(b'/' + 1);
    let n = lo.len();
    ((Bound::Included(lo), Bound::Excluded(hi)), n)
}

/// The record of one pair, in memory.
#[derive(Debug, Clone, Default)]
pub struct Record {
    entries: BTreeMap<Vec<u8>, Entry>,
    next_blob: u64,
    /// Paths changed since read or last saved.
    changed: BTreeSet<Vec<u8>>,
    /// A blob number was taken since read or last saved.
    blob_taken: bool,
    /// What the files on disk hold.
    disk: OnDisk,
}

/// The record's files as read or last written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OnDisk {
    /// The snapshot's length.
    pub snapshot: u64,
    /// The log's length, up to its last whole line.
    pub log: u64,
    /// The next save writes a snapshot: the log ends in a torn line (an
    /// append after it would glue the two), or the record was made anew.
    pub rewrite: bool,
}

/// What a save writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Save {
    /// Appended to the log: one line.
    Append(Vec<u8>),
    /// A new snapshot, after which the log goes.
    Snapshot(Vec<u8>),
}

/// Whether a log of `log` bytes beside a snapshot of `snapshot` bytes is
/// folded into a new snapshot.
pub fn compact_due(snapshot: u64, log: u64) -> bool {
    log > COMPACT_MIN && log > snapshot.saturating_mul(COMPACT_FACTOR)
}

/// One line of the log: the state of every path a save changed.
#[derive(Serialize, Deserialize)]
struct Change {
    next_blob: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    set: Vec<Line>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    gone: Vec<Bytes>,
}

#[derive(Serialize, Deserialize)]
struct Line {
    path: Bytes,
    #[serde(flatten)]
    entry: Entry,
}

#[derive(Serialize, Deserialize)]
struct File {
    format: u32,
    next_blob: u64,
    entries: Vec<Line>,
}

/// One line of `aside.log`: an aside entry held until the time folder `at`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Kept {
    pub at: String,
    pub path: Bytes,
    /// Why (`modified`, `deleted`...: `VersionReason`'s words).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(flatten)]
    pub entry: Entry,
}

impl Kept {
    pub fn line(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).unwrap_or_default();
        v.push(b'\n');
        v
    }
    pub fn rel(&self) -> PathBuf {
        PathBuf::from(self.path.as_os_str())
    }
}

/// Reads `aside.log`; lines that do not parse (a torn last line) are left out.
pub fn parse_kept(text: &[u8]) -> Vec<Kept> {
    text.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect()
}

/// `aside.log`'s text without the lines whose time folder is gone
/// (`kept(at)`: whether the folder `at` is still there), and without a
/// torn last line; `None` when no line goes. A line is what a version in
/// its folder was: with the folder pruned or thinned away, nothing is left
/// for it to describe, and the log would only grow.
pub fn trim_kept(text: &[u8], kept: impl Fn(&str) -> bool) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut dropped = false;
    for line in text.split_inclusive(|b| *b == b'\n') {
        let stays = line.ends_with(b"\n")
            && serde_json::from_slice::<Kept>(line).is_ok_and(|k| kept(&k.at));
        if stays {
            out.extend_from_slice(line);
        } else {
            dropped = true;
        }
    }
    dropped.then_some(out)
}

impl Record {
    /// Reads the snapshot's text (format 1 or 2).
    pub fn parse(text: &[u8]) -> Result<Record, String> {
        let f: File = serde_json::from_slice(text).map_err(|e| e.to_string())?;
        if f.format > FORMAT {
            return Err(format!(
                "format {} is from a newer mirrortray (this one reads up to {FORMAT})",
                f.format
            ));
        }
        let mut r = Record {
            next_blob: f.next_blob,
            ..Record::default()
        };
        for l in f.entries {
            r.take(l);
        }
        r.disk.snapshot = text.len() as u64;
        Ok(r)
    }

    /// Reads the snapshot's text (`None`: there is none) with the log's
    /// replayed on it. A last line cut short is left out; any other line
    /// that does not read is an error, naming its line number.
    pub fn read(snapshot: Option<&[u8]>, log: &[u8]) -> Result<Record, String> {
        let mut r = match snapshot {
            Some(text) => Record::parse(text)?,
            None => Record::default(),
        };
        let mut at = 0usize;
        for (i, line) in log.split_inclusive(|b| *b == b'\n').enumerate() {
            let whole = line.ends_with(b"\n");
            match serde_json::from_slice::<Change>(line) {
                Ok(c) if whole => r.replay(c),
                Ok(_) => {}
                Err(_) if !whole => {}
                Err(e) => return Err(format!("{RECORD_LOG} line {}: {e}", i + 1)),
            }
            if whole {
                at += line.len();
            }
        }
        r.disk.log = at as u64;
        r.disk.rewrite = at < log.len();
        Ok(r)
    }

    fn take(&mut self, l: Line) {
        if let Some(b) = l.entry.blob {
            self.next_blob = self.next_blob.max(b + 1);
        }
        self.entries.insert(l.path.0, l.entry);
    }

    fn replay(&mut self, c: Change) {
        self.next_blob = self.next_blob.max(c.next_blob);
        for g in c.gone {
            self.entries.remove(&g.0);
        }
        for l in c.set {
            self.take(l);
        }
    }

    /// The snapshot's text.
    pub fn to_json(&self) -> Vec<u8> {
        let f = File {
            format: FORMAT,
            next_blob: self.next_blob,
            entries: self
                .entries
                .iter()
                .map(|(k, e)| Line {
                    path: Bytes(k.clone()),
                    entry: e.clone(),
                })
                .collect(),
        };
        serde_json::to_vec(&f).unwrap_or_default()
    }

    /// The log line of what changed since the last save.
    fn change_line(&self) -> Vec<u8> {
        let mut c = Change {
            next_blob: self.next_blob,
            set: Vec::new(),
            gone: Vec::new(),
        };
        for k in &self.changed {
            match self.entries.get(k) {
                Some(e) => c.set.push(Line {
                    path: Bytes(k.clone()),
                    entry: e.clone(),
                }),
                None => c.gone.push(Bytes(k.clone())),
            }
        }
        let mut v = serde_json::to_vec(&c).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// What to write to save it (`None`: nothing changed).
    pub fn to_save(&self) -> Option<Save> {
        if !self.dirty() {
            return None;
        }
        // No snapshot yet: the log starts from one.
        if self.disk.rewrite || self.disk.snapshot == 0 {
            return Some(Save::Snapshot(self.to_json()));
        }
        let line = self.change_line();
        if compact_due(self.disk.snapshot, self.disk.log + line.len() as u64) {
            Some(Save::Snapshot(self.to_json()))
        } else {
            Some(Save::Append(line))
        }
    }

    /// `s` was written: nothing to save any more.
    pub fn saved(&mut self, s: &Save) {
        match s {
            Save::Append(line) => self.disk.log += line.len() as u64,
            Save::Snapshot(text) => {
                self.disk = OnDisk {
                    snapshot: text.len() as u64,
                    ..OnDisk::default()
                }
            }
        }
        self.changed.clear();
        self.blob_taken = false;
    }

    /// A save that failed may have left part of a line: the next one
    /// writes a snapshot.
    pub fn save_failed(&mut self) {
        self.disk.rewrite = true;
    }

    /// What the files on disk hold.
    pub fn on_disk(&self) -> OnDisk {
        self.disk
    }

    /// An empty record whose blobs are numbered from `next` on (so that no
    /// number of a record that could not be read is used again).
    pub fn starting_at(next: u64) -> Record {
        Record {
            next_blob: next,
            disk: OnDisk {
                rewrite: true,
                ..OnDisk::default()
            },
            ..Record::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether a save has something to write.
    pub fn dirty(&self) -> bool {
        !self.changed.is_empty() || self.blob_taken || self.disk.rewrite
    }

    pub fn get(&self, rel: &Path) -> Option<&Entry> {
        self.entries.get(&key(rel))
    }

    /// Sets `rel`'s entry; returns the one it replaced.
    pub fn set(&mut self, rel: &Path, e: Entry) -> Option<Entry> {
        let k = key(rel);
        if self.entries.get(&k) == Some(&e) {
            return Some(e);
        }
        self.changed.insert(k.clone());
        self.entries.insert(k, e)
    }

    /// A number for a new blob.
    pub fn new_blob(&mut self) -> u64 {
        self.blob_taken = true;
        self.next_blob += 1;
        self.next_blob - 1
    }

    /// Drops `rel`'s own entry; returns it.
    pub fn remove(&mut self, rel: &Path) -> Option<(PathBuf, Entry)> {
        let k = key(rel);
        let e = self.entries.remove(&k)?;
        self.changed.insert(k);
        Some((rel.to_path_buf(), e))
    }

    /// Drops everything strictly under `rel`; returns what went.
    pub fn remove_under(&mut self, rel: &Path) -> Vec<(PathBuf, Entry)> {
        let (range, _) = under(rel);
        let keys: Vec<Vec<u8>> = self.entries.range(range).map(|(k, _)| k.clone()).collect();
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            if let Some(e) = self.entries.remove(&k) {
                out.push((PathBuf::from(OsStr::from_bytes(&k)), e));
                self.changed.insert(k);
            }
        }
        out
    }

    /// Drops `rel` and everything under it; returns what went.
    pub fn remove_tree(&mut self, rel: &Path) -> Vec<(PathBuf, Entry)> {
        let mut out = self.remove_under(rel);
        out.extend(self.remove(rel));
        out
    }

    /// Drops the entries under the folder `folder` whose name there (the
    /// first component below it) `keep` refuses; returns what went.
    pub fn retain_children(
        &mut self,
        folder: &Path,
        keep: impl Fn(&OsStr) -> bool,
    ) -> Vec<(PathBuf, Entry)> {
        let (range, skip) = under(folder);
        let gone: Vec<Vec<u8>> = self
            .entries
            .range(range)
            .filter(|(k, _)| {
                let rest = &k[skip..];
                let first = rest.split(|b| *b == b'/').next().unwrap_or(rest);
                !keep(OsStr::from_bytes(first))
            })
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Vec::with_capacity(gone.len());
        for k in gone {
            if let Some(e) = self.entries.remove(&k) {
                out.push((PathBuf::from(OsStr::from_bytes(&k)), e));
                self.changed.insert(k);
            }
        }
        out
    }

    /// `from` and everything under it now is `to` (a rename replayed);
    /// what `to` held before goes, and is returned.
    pub fn renamed(&mut self, from: &Path, to: &Path) -> Vec<(PathBuf, Entry)> {
        let mut moving = self.remove_under(from);
        moving.extend(self.remove(from));
        let replaced = self.remove_tree(to);
        for (p, e) in moving {
            let rest = p.strip_prefix(from).unwrap_or(Path::new(""));
            let q = if rest.as_os_str().is_empty() {
                to.to_path_buf()
            } else {
                to.join(rest)
            };
            self.changed.insert(key(&q));
            self.entries.insert(key(&q), e);
        }
        replaced
    }

    /// The entries at `rel` and under it, in path order.
    pub fn tree(&self, rel: &Path) -> Vec<(PathBuf, &Entry)> {
        let (range, _) = under(rel);
        let mut out: Vec<(PathBuf, &Entry)> = self
            .get(rel)
            .map(|e| (rel.to_path_buf(), e))
            .into_iter()
            .collect();
        out.extend(
            self.entries
                .range(range)
                .map(|(k, e)| (PathBuf::from(OsStr::from_bytes(k)), e)),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none() -> Xattrs {
        Xattrs::default()
    }

    fn meta(kind: Kind, sec: i64, nsec: u32, mode: u32) -> Meta {
        let t = Time { sec, nsec };
        Meta {
            kind,
            size: 5,
            mode,
            mtime: t,
            atime: t,
            ctime: t,
            dev: 1,
            ino: 1,
            nlink: 1,
            uid: 0,
            gid: 0,
            raw_mode: mode,
        }
    }

    fn exfat() -> Keeps {
        Keeps {
            times: TimeLimits {
                granularity_ns: 1_000_000_000,
                min_sec: 315_532_800,
                max_sec: 4_354_819_198,
            },
            modes: false,
            symlinks: false,
            hardlinks: false,
            xattrs: false,
            case_blind: true,
            windows_names: true,
            owners: super::super::keeps::Owners::Recorded,
            renames_keep_times: true,
        }
    }

    #[test]
    fn what_needs_an_overlay() {
        let e = exfat();
        let ntfs = Keeps {
            times: TimeLimits {
                granularity_ns: 100,
                ..TimeLimits::EXACT
            },
            modes: false,
            ..Keeps::ALL
        };
        let cases: &[(Keeps, Meta, bool)] = &[
            (Keeps::ALL, meta(Kind::File, 1_700_000_001, 5, 0o600), false),
            (e, meta(Kind::File, 1_700_000_000, 0, 0o644), false),
            (e, meta(Kind::File, 1_700_000_000, 0, 0o600), true),
            (e, meta(Kind::Dir, 1_700_000_000, 0, 0o755), false),
            (e, meta(Kind::Dir, 1_700_000_000, 0, 0o700), true),
            (e, meta(Kind::File, 1_700_000_000, 5, 0o644), true),
            // Before 1980: kept as 1980.
            (e, meta(Kind::File, 1, 0, 0o644), true),
            (ntfs, meta(Kind::File, 1_700_000_000, 500, 0o644), false),
            (ntfs, meta(Kind::File, 1_700_000_000, 501, 0o644), true),
            (ntfs, meta(Kind::Symlink, 1_700_000_000, 500, 0o777), false),
        ];
        for (i, (k, m, want)) in cases.iter().enumerate() {
            assert_eq!(needs_overlay(k, m, &none()), *want, "case {i}");
        }
        // FAT: two seconds.
        let fat = TimeLimits {
            granularity_ns: 2_000_000_000,
            ..TimeLimits::EXACT
        };
        assert!(time_kept(&fat, Time { sec: 4, nsec: 0 }));
        assert!(!time_kept(&fat, Time { sec: 5, nsec: 0 }));
    }

    #[test]
    fn an_overlay_describes_what_the_drive_stored_of_it() {
        let limits = exfat().times;
        let src = meta(Kind::File, 1_700_000_000, 123_456_789, 0o600);
        let e = Entry::overlay(&src).unwrap();
        let on_drive = meta(Kind::File, 1_700_000_000, 0, 0o777);
        assert!(e.describes(&limits, &on_drive));
        assert_eq!(e.apply(&on_drive).mtime, src.mtime);
        assert_eq!(e.apply(&on_drive).mode, 0o600);
        // An older version: another second.
        assert!(!e.describes(&limits, &meta(Kind::File, 1_699_999_000, 0, 0o777)));
        let bigger = Meta {
            size: 6,
            ..on_drive
        };
        assert!(!e.describes(&limits, &bigger));
        let k = exfat();
        assert!(e.matches(&k, &src, &none()));
        assert!(!e.matches(&k, &Meta { mode: 0o644, ..src }, &none()));
        // An owner the drive loses is recorded, and given back.
        let theirs = Meta {
            uid: 1234,
            gid: 5678,
            ..src
        };
        assert!(needs_overlay(&k, &theirs, &none()));
        assert!(!e.matches(&k, &theirs, &none()));
        let o = Entry::recorded(&k, &theirs, &none()).unwrap();
        assert_eq!(o.owner, Some([1234, 5678]));
        assert!(o.matches(&k, &theirs, &none()));
        let back = o.apply(&on_drive);
        assert_eq!((back.uid, back.gid), (1234, 5678));
        assert_eq!(Entry::recorded(&k, &src, &none()).unwrap().owner, None);
        // One of several names: SRC's identity, given back with it.
        let named = Meta { nlink: 2, ..src };
        assert!(needs_overlay(&k, &named, &none()) && !needs_overlay(&Keeps::ALL, &named, &none()));
        let l = Entry::recorded(&k, &named, &none()).unwrap();
        assert_eq!(l.link, Some([1, 1]));
        assert!(l.matches(&k, &named, &none()) && !l.matches(&k, &src, &none()));
        let back = l.apply(&Meta {
            ino: 77,
            ..on_drive
        });
        assert_eq!((back.dev, back.ino, back.nlink), (1, 1, 2));
    }

    fn attrs(pairs: &[(&[u8], &[u8])]) -> Xattrs {
        Xattrs::from_pairs(
            pairs
                .iter()
                .map(|(n, v)| (n.to_vec(), v.to_vec()))
                .collect(),
        )
    }

    /// Attributes on a drive that keeps none: recorded (and only there),
    /// compared, and written and read back byte for byte, in the snapshot
    /// and in the log; a record from before them reads as none.
    #[test]
    fn attributes_are_recorded_where_the_drive_has_none() {
        // An access ACL as the kernel stores it: binary, not UTF-8.
        let acl: &[u8] = &[
            2, 0, 0, 0, 1, 0, 6, 0, 255, 255, 255, 255, 2, 0, 4, 0, 254, 255, 0, 0, 4, 0, 4, 0,
            255, 255, 255, 255, 16, 0, 4, 0, 255, 255, 255, 255, 32, 0, 4, 0, 255, 255, 255, 255,
        ];
        let text = attrs(&[(b"user.x", b"first draft")]);
        let binary = attrs(&[
            (b"user.bin", b"\x00\xff\n\"q"),
            (b"system.posix_acl_access", acl),
        ]);
        let default_acl = attrs(&[(b"system.posix_acl_default", acl), (b"user.x", b"")]);
        let ntfs = Keeps {
            modes: false,
            ..Keeps::ALL
        };
        let (e, file, dir) = (
            exfat(),
            meta(Kind::File, 1_700_000_000, 0, 0o644),
            meta(Kind::Dir, 1_700_000_000, 0, 0o755),
        );
        let link = meta(Kind::Symlink, 1_700_000_000, 0, 0o777);
        // (drive, SRC's entry, its attributes, recorded)
        let table: &[(Keeps, Meta, &Xattrs, bool)] = &[
            (e, file, &none(), false),
            (e, file, &text, true),
            (e, file, &binary, true),
            (e, dir, &default_acl, true),
            // Linux keeps no user attributes on a symlink.
            (e, link, &text, false),
            (Keeps::ALL, file, &binary, false),
            (ntfs, file, &text, false),
        ];
        for (i, (k, m, x, recorded)) in table.iter().enumerate() {
            assert_eq!(needs_overlay(k, m, x), *recorded, "case {i}");
            let entry = Entry::recorded(k, m, x).unwrap();
            let want = if *recorded { (*x).clone() } else { none() };
            assert_eq!(entry.xattrs, want, "case {i}");
            assert!(entry.matches(k, m, x), "case {i}");
            // Other attributes differ wherever the record would keep them.
            let other = attrs(&[(b"user.x", b"second draft")]);
            let kept_anyway = k.xattrs || m.kind == Kind::Symlink;
            assert_eq!(entry.matches(k, m, &other), kept_anyway, "case {i}");

            let mut r = Record::default();
            let (mut snap, mut log) = (None, Vec::new());
            r.set(Path::new("a"), Entry::overlay(m).unwrap());
            assert_eq!(save(&mut r, &mut snap, &mut log), "snapshot");
            r.set(Path::new("a"), entry.clone());
            r.set(Path::new("b"), entry.clone());
            save(&mut r, &mut snap, &mut log);
            let back = Record::read(snap.as_deref(), &log).unwrap();
            assert_eq!(back.get(Path::new("a")), Some(&entry), "case {i}");
            let again = Record::parse(&back.to_json()).unwrap();
            assert_eq!(again.get(Path::new("b")), Some(&entry), "case {i}");
            // No attributes, no field: an ext4 record is as before.
            let json = String::from_utf8(back.to_json()).unwrap();
            assert_eq!(json.contains("xattrs"), *recorded, "case {i}: {json}");
        }

        // Written before attributes were recorded: none.
        let old = br#"{"format":2,"next_blob":0,"entries":[{"path":"doc","kind":"file","mode":384,"mtime":[1714979289,7],"size":5}]}"#;
        let old_log = b"{\"next_blob\":0,\"set\":[{\"path\":\"d\",\"kind\":\"dir\",\"mode\":448,\"mtime\":[1,0],\"size\":0}]}\n";
        let back = Record::read(Some(old), old_log).unwrap();
        for p in ["doc", "d"] {
            let got = back.get(Path::new(p)).unwrap();
            assert!(got.xattrs.is_empty(), "{p}");
        }
        // A value as text, and names out of order: read sorted.
        let line = br#"{"format":2,"next_blob":0,"entries":[{"path":"f","kind":"file","mode":420,"mtime":[1,0],"size":0,"xattrs":[["user.z","1"],["user.a",[0,255]]]}]}"#;
        let back = Record::parse(line).unwrap();
        let got = &back.get(Path::new("f")).unwrap().xattrs;
        assert_eq!(*got, attrs(&[(b"user.z", b"1"), (b"user.a", b"\x00\xff")]));
        assert_eq!(got.names().next(), Some(b"user.a".as_slice()));
    }

    #[test]
    fn entries_follow_listings_renames_and_removals() {
        let mut r = Record::default();
        let e = Entry::overlay(&meta(Kind::File, 1, 0, 0o600)).unwrap();
        for p in ["a", "a/b", "a/b/c", "ab", "a:b", "z/a"] {
            r.set(Path::new(p), e.clone());
        }
        let names = |r: &Record| -> Vec<String> {
            r.tree(Path::new(""))
                .into_iter()
                .map(|(p, _)| p.display().to_string())
                .collect()
        };
        assert_eq!(names(&r), ["a", "a/b", "a/b/c", "a:b", "ab", "z/a"]);
        assert_eq!(r.tree(Path::new("a")).len(), 3);
        let gone = r.retain_children(Path::new(""), |n| n != "a");
        assert_eq!(gone.len(), 3);
        assert_eq!(names(&r), ["a:b", "ab", "z/a"]);
        r.renamed(Path::new("z"), Path::new("y/z"));
        assert_eq!(names(&r), ["a:b", "ab", "y/z/a"]);
        r.remove_tree(Path::new("y"));
        assert_eq!(names(&r), ["a:b", "ab"]);
    }

    #[test]
    fn the_file_round_trips_names_that_are_not_utf8() {
        let mut r = Record::default();
        let mut e = Entry::overlay(&meta(Kind::Symlink, 1, 7, 0o777)).unwrap();
        e.aside = true;
        e.target = Some(Bytes(b"\xffx".to_vec()));
        r.set(Path::new(OsStr::from_bytes(b"bad\xfe:name")), e.clone());
        let mut f = Entry::overlay(&meta(Kind::File, 1, 7, 0o600)).unwrap();
        f.aside = true;
        f.blob = Some(r.new_blob());
        r.set(Path::new("a:b"), f.clone());
        let text = r.to_json();
        let back = Record::parse(&text).unwrap();
        assert_eq!(
            back.get(Path::new(OsStr::from_bytes(b"bad\xfe:name"))),
            Some(&e)
        );
        assert_eq!(back.get(Path::new("a:b")), Some(&f));
        let mut back = back;
        assert_eq!(back.new_blob(), 1);
        let k = Kept {
            at: "2026-01-01T00-00-00.000000Z".into(),
            path: Bytes(b"a:b".to_vec()),
            reason: Some("modified".into()),
            entry: f,
        };
        let mut log = k.line();
        log.extend_from_slice(b"{\"torn");
        assert_eq!(parse_kept(&log).len(), 1);
    }

    fn names_of(r: &Record) -> Vec<String> {
        r.tree(Path::new(""))
            .into_iter()
            .map(|(p, e)| format!("{}={:o}", p.display(), e.mode))
            .collect()
    }

    fn with_mode(mode: u32) -> Entry {
        Entry::overlay(&meta(Kind::File, 1_700_000_000, 5, mode)).unwrap()
    }

    /// Saves `r` the way the shell does, into `snapshot` and `log`.
    fn save(r: &mut Record, snapshot: &mut Option<Vec<u8>>, log: &mut Vec<u8>) -> &'static str {
        let Some(s) = r.to_save() else {
            return "nothing";
        };
        let what = match &s {
            Save::Append(line) => {
                log.extend_from_slice(line);
                "append"
            }
            Save::Snapshot(text) => {
                *snapshot = Some(text.clone());
                log.clear();
                "snapshot"
            }
        };
        r.saved(&s);
        what
    }

    #[test]
    fn when_the_log_is_folded_into_a_snapshot() {
        let table: &[(u64, u64, bool)] = &[
            (0, 0, false),
            (0, COMPACT_MIN, false),
            (0, COMPACT_MIN + 1, true),
            (1_000_000, 2_000_000, false),
            (1_000_000, 2_000_001, true),
            (10, COMPACT_MIN + 1, true),
            (u64::MAX, u64::MAX, false),
        ];
        for (snapshot, log, want) in table {
            assert_eq!(compact_due(*snapshot, *log), *want, "{snapshot} {log}");
        }
    }

    #[test]
    fn reading_is_the_snapshot_with_the_log_replayed() {
        let mut r = Record::default();
        let (mut snap, mut log) = (None, Vec::new());
        r.set(Path::new("a"), with_mode(0o600));
        r.set(Path::new("d/x"), with_mode(0o700));
        // A new record starts with a snapshot, and a pass that changed
        // nothing writes nothing.
        assert_eq!(save(&mut r, &mut snap, &mut log), "snapshot");
        assert_eq!(save(&mut r, &mut snap, &mut log), "nothing");
        r.set(Path::new("a"), with_mode(0o600));
        assert_eq!(save(&mut r, &mut snap, &mut log), "nothing");
        r.set(Path::new("a"), with_mode(0o640));
        r.renamed(Path::new("d"), Path::new("e"));
        let n = r.new_blob();
        assert_eq!(save(&mut r, &mut snap, &mut log), "append");
        let back = Record::read(snap.as_deref(), &log).unwrap();
        assert_eq!(names_of(&back), ["a=640", "e/x=700"]);
        assert_eq!(names_of(&back), names_of(&r));
        assert_eq!(back.clone().new_blob(), n + 1);
        assert_eq!(back.on_disk().log, log.len() as u64);
        assert!(!back.dirty());

        // A snapshot made between reading the log and reading the
        // snapshot: the log replayed on it changes nothing.
        let both = Record::read(Some(&r.to_json()), &log).unwrap();
        assert_eq!(names_of(&both), names_of(&r));
    }

    /// Each case: the log's text after one good line, what is read, and
    /// whether the next save writes a snapshot instead of appending.
    #[test]
    fn a_torn_last_line_is_left_out_and_followed_by_a_snapshot() {
        let mut r = Record::default();
        r.set(Path::new("a"), with_mode(0o600));
        let Some(Save::Snapshot(snap)) = r.to_save() else {
            panic!("a new record starts with a snapshot")
        };
        r.saved(&Save::Snapshot(snap.clone()));
        r.set(Path::new("a"), with_mode(0o600 | 0o40));
        r.set(Path::new("a"), with_mode(0o600));
        let Some(Save::Append(good)) = r.to_save() else {
            panic!("a record with a snapshot appends")
        };
        // The log's tail, the names read (or the error), a snapshot next.
        type Case<'a> = (&'a [u8], Result<&'a [&'a str], &'a str>, bool);
        let torn: &[Case] = &[
            (b"", Ok(&["a=600"]), false),
            (b"\n", Err("record.log line 2"), false),
            (b"{\"next_blob\":0,\"se", Ok(&["a=600"]), true),
            // Whole JSON, but its newline never made it: not taken either.
            (b"{\"next_blob\":0,\"gone\":[\"a\"]}", Ok(&["a=600"]), true),
            (b"{\"next_blob\":0,\"gone\":[\"a\"]}\n", Ok(&[]), false),
            // Not the last line: a record that cannot be read.
            (
                b"{\"torn\n{\"next_blob\":0}\n",
                Err("record.log line 2"),
                false,
            ),
        ];
        for (i, (tail, want, rewrite)) in torn.iter().enumerate() {
            let mut log = good.clone();
            log.extend_from_slice(tail);
            match (Record::read(Some(&snap), &log), want) {
                (Ok(mut back), Ok(names)) => {
                    assert_eq!(names_of(&back), *names, "case {i}");
                    assert_eq!(back.on_disk().rewrite, *rewrite, "case {i}");
                    back.set(Path::new("b"), with_mode(0o700));
                    let snapshot = matches!(back.to_save(), Some(Save::Snapshot(_)));
                    assert_eq!(snapshot, *rewrite, "case {i}");
                }
                (Err(e), Err(w)) => assert!(e.contains(w), "case {i}: {e}"),
                (got, _) => panic!("case {i}: {got:?}"),
            }
        }
    }

    #[test]
    fn a_long_log_is_folded_and_old_records_still_read() {
        let mut r = Record::default();
        let (mut snap, mut log) = (None, Vec::new());
        let mut saves = Vec::new();
        for i in 0..3000u32 {
            r.set(Path::new(&format!("f{}", i % 50)), with_mode(i & 0o777));
            saves.push(save(&mut r, &mut snap, &mut log));
        }
        assert!(saves.contains(&"snapshot") && saves.contains(&"append"));
        assert!(log.len() as u64 <= COMPACT_MIN);
        let back = Record::read(snap.as_deref(), &log).unwrap();
        assert_eq!(names_of(&back), names_of(&r));

        // Format 1, written whole before the log: read as a snapshot.
        let old = br#"{"format":1,"next_blob":3,"entries":[{"path":"a:b","kind":"file","mode":420,"mtime":[1714979289,7],"size":5,"aside":true,"blob":2}]}"#;
        let mut back = Record::read(Some(old), b"").unwrap();
        assert_eq!(names_of(&back), ["a:b=644"]);
        assert_eq!(back.new_blob(), 3);
        let newer = br#"{"format":3,"next_blob":0,"entries":[]}"#;
        let e = Record::read(Some(newer), b"").unwrap_err();
        assert!(e.contains("newer mirrortray"), "{e}");
        // Made anew (the old one could not be read): a snapshot first.
        let mut fresh = Record::starting_at(7);
        assert!(matches!(fresh.to_save(), Some(Save::Snapshot(_))));
        fresh.save_failed();
        assert!(fresh.dirty());
    }

    #[test]
    fn aside_log_lines_go_with_their_time_folder() {
        let line = |at: &str| {
            Kept {
                at: at.into(),
                path: Bytes(b"a:b".to_vec()),
                reason: None,
                entry: with_mode(0o600),
            }
            .line()
        };
        let text = |ats: &[&str]| -> Vec<u8> { ats.iter().flat_map(|a| line(a)).collect() };
        let there = ["t2", "t3"];
        // (lines, then a tail, what stays; None: nothing changes)
        type Case<'a> = (&'a [&'a str], &'a [u8], Option<&'a [&'a str]>);
        let table: &[Case] = &[
            (&[], b"", None),
            (&["t2", "t3"], b"", None),
            (&["t1", "t2", "t1", "t3"], b"", Some(&["t2", "t3"])),
            (&["t1"], b"", Some(&[])),
            (&["t2"], b"{\"at\":\"t2\",\"pa", Some(&["t2"])),
        ];
        for (i, (lines, tail, want)) in table.iter().enumerate() {
            let mut t = text(lines);
            t.extend_from_slice(tail);
            let got = trim_kept(&t, |at| there.contains(&at));
            assert_eq!(got, want.map(text), "case {i}");
        }
    }
}
