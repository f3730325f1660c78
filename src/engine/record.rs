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
//!   mtime's nanoseconds or year). The entry gives SRC's mode and mtime. It
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
//! On disk, `.mirrortray/record.json`, written whole (temp file, rename)
//! at the end of a pass or batch that changed it:
//! ```text
//! {"format":1,"next_blob":3,"entries":[
//!  {"path":"bin/run.sh","kind":"file","mode":493,"mtime":[1714979289,123456789],"size":19},
//!  {"path":"link","kind":"symlink","mode":511,"mtime":[1714979289,5],"size":10,"aside":true,"target":"secret.txt"},
//!  {"path":"a:b","kind":"file","mode":420,"mtime":[1714979289,7],"size":5,"aside":true,"blob":2}]}
//! ```
//! A path or target that is not UTF-8 is written as an array of its bytes.
//! An aside entry replaced or dropped (versions on) is kept as a version:
//! its blob moves to `versions/<time>/.mirrortray/aside/<blob>` (pruned with
//! that time folder), and `.mirrortray/aside.log` gets one JSON line
//! `{"at":"<time folder>","path":…,"reason":…,<the entry>}`: held until that time, as
//! the versions are (see `history.rs`).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::ops::Bound;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::fsops::{Kind, Meta, Time};
use super::keeps::Keeps;
use super::plan::TimeLimits;

/// The record file's name in `.mirrortray/`.
pub const RECORD_FILE: &str = "record.json";
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
        })
    }

    pub fn time(&self) -> Time {
        Time {
            sec: self.mtime.0,
            nsec: self.mtime.1,
        }
    }

    /// Whether it says what SRC's `m` is (kind, size, mode, mtime).
    pub fn matches(&self, m: &Meta) -> bool {
        EntryKind::of(m.kind) == Some(self.kind)
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

    /// `held` with the recorded mode and mtime.
    pub fn apply(&self, held: &Meta) -> Meta {
        Meta {
            mode: self.mode,
            mtime: self.time(),
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
            dev: 0,
            ino: 0,
            nlink: 1,
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

/// Whether SRC's entry `m`, which DST holds, needs an overlay entry.
pub fn needs_overlay(keeps: &Keeps, m: &Meta) -> bool {
    if m.kind == Kind::Special {
        return false;
    }
    let mode_lost = !keeps.modes && m.kind != Kind::Symlink && m.mode != ordinary_mode(m.kind);
    mode_lost || !time_kept(&keeps.times, m.mtime)
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
    /// Changed since read or last written.
    dirty: bool,
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

impl Record {
    /// Reads the record file's text.
    pub fn parse(text: &[u8]) -> Result<Record, serde_json::Error> {
        let f: File = serde_json::from_slice(text)?;
        let mut r = Record {
            next_blob: f.next_blob,
            ..Record::default()
        };
        for l in f.entries {
            if let Some(b) = l.entry.blob {
                r.next_blob = r.next_blob.max(b + 1);
            }
            r.entries.insert(l.path.0, l.entry);
        }
        Ok(r)
    }

    /// The record file's text.
    pub fn to_json(&self) -> Vec<u8> {
        let f = File {
            format: 1,
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

    /// An empty record whose blobs are numbered from `next` on (so that no
    /// number of a record that could not be read is used again).
    pub fn starting_at(next: u64) -> Record {
        Record {
            next_blob: next,
            ..Record::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it changed since [`saved`](Self::saved).
    pub fn dirty(&self) -> bool {
        self.dirty
    }

    /// Written out: not changed any more.
    pub fn saved(&mut self) {
        self.dirty = false;
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
        self.dirty = true;
        self.entries.insert(k, e)
    }

    /// A number for a new blob.
    pub fn new_blob(&mut self) -> u64 {
        self.dirty = true;
        self.next_blob += 1;
        self.next_blob - 1
    }

    /// Drops `rel`'s own entry; returns it.
    pub fn remove(&mut self, rel: &Path) -> Option<(PathBuf, Entry)> {
        let e = self.entries.remove(&key(rel))?;
        self.dirty = true;
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
            }
        }
        self.dirty |= !out.is_empty();
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
            }
        }
        self.dirty |= !out.is_empty();
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
            self.entries.insert(key(&q), e);
            self.dirty = true;
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
            assert_eq!(needs_overlay(k, m), *want, "case {i}");
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
        assert!(e.matches(&src));
        assert!(!e.matches(&Meta { mode: 0o644, ..src }));
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
}
