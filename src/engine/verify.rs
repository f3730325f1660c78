//! verify: compares a pair's SRC and DST and lists how they differ, changing
//! nothing.
//!
//! Promises:
//! - Read only. No `.mirrortray/` is created, the lock is not taken (so it
//!   works while a `watch` or `sync` holds it), not one byte is written
//!   anywhere. Both trees are walked through [`DirHandle`]s, never following
//!   a symlink: a link is compared by its target text.
//! - "The same" means what a reconcile would leave: same types, sizes,
//!   modification times (nanoseconds), permission bits, link targets,
//!   extended attributes and ACLs, and hard links (names one file in SRC are
//!   one file in DST, and the other way round); folders' own mode, mtime
//!   and attributes count too (not the roots'). On a drive that cannot hold
//!   some of these (exFAT, NTFS: `keeps`, as the last backup recorded in
//!   `.mirrortray/limits`), what it holds is compared within its limits,
//!   and the rest against what `.mirrortray/record.json` says (see
//!   `record`): a mode, a fine time, a symlink, a refused name and its
//!   bytes, extended attributes and ACLs. Without recorded limits (a backup older than them), what the
//!   drive cannot hold at all is [`Skipped`]. With `checksum`,
//!   the bytes of files whose size and mtime match are compared as well
//!   (streamed in chunks, never a whole file in memory).
//! - Not differences: ignored paths (the pair's filter), DST's reserved
//!   `.mirrortray/` at its root, and special files in SRC (FIFOs, sockets,
//!   devices), which are never mirrored and come back as [`Skipped`].
//! - An entry that cannot be read is an [`EntryError`], never a difference:
//!   an unreadable SRC folder does not make its DST counterpart "extra", an
//!   unreadable DST folder does not make SRC's content "missing".
//! - A DST that does not exist yet is not a setup error: everything in SRC is
//!   "missing". SRC missing, SRC a file, overlapping roots and an SRC that
//!   looks unmounted are [`SetupError`]s, as for `sync`.
//!
//! Time precision: `sync` learns how finely DST's file system keeps mtimes
//! (exFAT, NTFS, some network shares are coarse) and records it; verify
//! uses that record. Without one it may not write a probe, so it reads the
//! answer off DST itself: the largest
//! power of ten that divides the nanoseconds of every DST mtime seen
//! (including DST's root, whose mtime the kernel sets). That is evidence only
//! when there is enough of it: the kernel stamps files with a clock that
//! ticks every few milliseconds, so a small tree may hold one or two
//! distinct nanosecond values, which end in a zero one time in ten; and a
//! tree unpacked from an archive holds whole seconds on any file system. So a
//! coarser precision is believed only with [`PRECISION_EVIDENCE`] distinct
//! observations that agree: DST nanosecond values that are all multiples of
//! it (exFAT, NTFS), or SRC times that DST holds cut to it (a file system
//! that keeps whole seconds stores only zeros, which say nothing alone).
//! Otherwise times are compared to the nanosecond. Mtime differences are
//! settled after the walk, once the precision is known
//! ([`plan::same_time`]).

use std::collections::{BTreeMap, HashMap, HashSet, btree_map};
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};

use super::error::{EntryError, SetupError, reason};
use super::filter::{Filter, RESERVED, is_file_system_own, join};
use super::fsops::{self, DirHandle, Kind, Meta, ReadSide, Time};
use super::keeps::{Keeps, Unheld};
use super::mirror::PairSpec;
use super::paths;
use super::plan;
use super::record::{Entry as Recorded, RECORD_FILE, Record, needs_overlay};
use super::store::{read_limits, read_record};
use super::xattrs;

/// Distinct DST nanosecond values needed before a coarser mtime precision
/// than 1 ns is believed (the chance that as many independent kernel
/// timestamps all end in a zero is 10^-16).
pub const PRECISION_EVIDENCE: usize = 16;

/// How two entries at the same relative path differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DiffKind {
    /// In SRC, not in DST. `src` holds SRC's kind noun.
    Missing,
    /// In DST only. `dst` holds DST's kind noun.
    Extra,
    /// File vs folder vs symlink. `src`/`dst` hold the kind nouns.
    Type,
    /// Sizes in bytes.
    Size,
    /// Modification times, as `2026-11-25 10:00:00.123456789 UTC`.
    Mtime,
    /// Permission bits, in octal (`755`).
    Mode,
    /// Owner and group, as `uid:gid` (compared as root, where kept).
    Owner,
    /// Symlink target text.
    Target,
    /// Same size and time, other bytes (only with `checksum`).
    Content,
    /// Extended attributes or ACLs: the names on each side.
    Xattrs,
    /// Hard links: `src` says which name SRC links it with (or "separate").
    Link,
    /// What `.mirrortray/record.json` says of an entry the drive cannot
    /// hold exactly (see `record`): SRC's entry and the record's, in words.
    Record,
}

impl DiffKind {
    /// The word the command line prints for it.
    pub fn label(self) -> &'static str {
        match self {
            DiffKind::Missing => "missing",
            DiffKind::Extra => "extra",
            DiffKind::Type => "type",
            DiffKind::Size => "size",
            DiffKind::Mtime => "mtime",
            DiffKind::Mode => "mode",
            DiffKind::Owner => "owner",
            DiffKind::Target => "target",
            DiffKind::Content => "content",
            DiffKind::Xattrs => "xattrs",
            DiffKind::Link => "hardlink",
            DiffKind::Record => "record",
        }
    }
}

/// One difference. `rel` is relative to the pair's roots; `src` and `dst`
/// are the two sides in words (see [`DiffKind`] for what each holds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub rel: PathBuf,
    pub kind: DiffKind,
    pub src: Option<String>,
    pub dst: Option<String>,
}

/// An entry of SRC that is not compared on purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub rel: PathBuf,
    /// Why, in words ("FIFO, never mirrored").
    pub why: String,
}

/// What a verify found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// SRC and DST as resolved (absolute).
    pub src: PathBuf,
    pub dst: PathBuf,
    /// Sorted by path, then by kind.
    pub differences: Vec<Difference>,
    /// Entries that could not be read (absolute paths).
    pub errors: Vec<EntryError>,
    pub skipped: Vec<Skipped>,
    /// Entries looked at on either side (a name both sides hold counts once;
    /// ignored and skipped entries do not count).
    pub compared: u64,
    /// The mtime precision used, in ns (1 unless DST's file system is coarse).
    pub granularity_ns: u32,
    /// Files whose time DST's file system cannot hold (kept as the nearest
    /// it can: not a difference).
    pub times_out_of_range: u64,
}

impl Report {
    /// Same, and everything could be read.
    pub fn same(&self) -> bool {
        self.differences.is_empty() && self.errors.is_empty()
    }
}

/// Compares `spec`'s SRC and DST without changing anything.
pub fn verify(spec: &PairSpec, checksum: bool) -> Result<Report, SetupError> {
    let roots = paths::resolve_pair(&spec.src, &spec.dst)?;
    let filter = Filter::for_pair(&spec.ignore, spec.ignore_temporary)
        .map_err(|e| SetupError::Other(roots.src.clone(), e.to_string()))?;
    let src = DirHandle::open_root(&roots.src).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => SetupError::SrcMissing(roots.src.clone()),
        io::ErrorKind::NotADirectory => SetupError::SrcNotDir(roots.src.clone()),
        _ => SetupError::SrcUnreadable(roots.src.clone(), reason(&e)),
    })?;
    let src_list = src
        .list()
        .map_err(|e| SetupError::SrcUnreadable(roots.src.clone(), reason(&e)))?;
    let dst = match DirHandle::open_root(&roots.dst) {
        Ok(d) => Some(d),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(SetupError::Other(
                roots.dst.clone(),
                format!("cannot read the backup folder: {}", reason(&e)),
            ));
        }
    };
    if let Some(d) = &dst {
        check_source(&src, src_list.is_empty(), d, &roots.src, &roots.dst)?;
    }
    let store = dst
        .as_ref()
        .and_then(|d| d.open_dir(OsStr::new(RESERVED)).ok());
    let mut walk = Walk {
        src_root: &roots.src,
        dst_root: &roots.dst,
        filter: &filter,
        checksum,
        report: Report {
            src: roots.src.clone(),
            dst: roots.dst.clone(),
            ..Report::default()
        },
        pending: Vec::new(),
        finest: None,
        distinct: HashSet::new(),
        limits: store.as_ref().and_then(read_limits),
        record: None,
        aside_seen: HashSet::new(),
        store,
        links: HashMap::new(),
        dst_links: HashMap::new(),
    };
    if let Some(d) = &dst {
        match d.meta() {
            Ok(m) => walk.saw_dst_time(m.mtime),
            Err(e) => walk.error(roots.dst.clone(), "read", &e),
        }
    }
    if walk.limits.is_some()
        && let Some(st) = &walk.store
    {
        match read_record(st) {
            Ok(r) => walk.record = Some(r),
            Err(e) => walk.report.errors.push(EntryError::msg(
                roots.dst.join(RESERVED).join(RECORD_FILE),
                "read",
                e,
            )),
        }
    }
    walk.tree(&src, dst.as_ref());
    walk.aside_left_over();
    let g = walk.precision();
    walk.settle_times(&src, dst.as_ref(), g);
    let mut report = walk.report;
    report.granularity_ns = g;
    report
        .differences
        .sort_by(|a, b| (&a.rel, a.kind).cmp(&(&b.rel, b.kind)));
    report.skipped.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(report)
}

/// Safety rule 4, read only: an empty SRC on another device than the one
/// recorded at the last backup looks unmounted; saying "everything is
/// extra" would mislead.
fn check_source(
    src: &DirHandle,
    src_empty: bool,
    dst: &DirHandle,
    src_path: &Path,
    dst_path: &Path,
) -> Result<(), SetupError> {
    if !src_empty {
        return Ok(());
    }
    let Ok(root) = dst.open_dir(OsStr::new(RESERVED)) else {
        return Ok(());
    };
    let Some(rec) = super::store::read_source_record(&root) else {
        return Ok(());
    };
    let meta = src
        .meta()
        .map_err(|e| SetupError::SrcUnreadable(src_path.to_path_buf(), reason(&e)))?;
    if rec.dev != meta.dev {
        return Err(SetupError::SrcLooksUnmounted(
            src_path.to_path_buf(),
            dst_path.join(RESERVED).join("source"),
        ));
    }
    Ok(())
}

/// An mtime that differs at the nanosecond, settled once DST's precision is
/// known.
struct Pending {
    rel: PathBuf,
    src: Time,
    dst: Time,
    /// A file whose sizes match: compare its bytes if the times turn out
    /// equal at DST's precision (with `checksum`).
    content: bool,
}

struct Walk<'a> {
    src_root: &'a Path,
    dst_root: &'a Path,
    filter: &'a Filter,
    checksum: bool,
    report: Report,
    pending: Vec<Pending>,
    /// The largest power of ten dividing every DST mtime's nanoseconds.
    finest: Option<u32>,
    /// Distinct DST nanosecond values seen (up to [`PRECISION_EVIDENCE`]).
    distinct: HashSet<u32>,
    /// What `sync` or `watch` learned DST's file system keeps, if recorded.
    limits: Option<Keeps>,
    /// What the drive cannot hold, as the last backup recorded it (`None`:
    /// no limits recorded either, a backup older than both: such entries
    /// are skipped).
    record: Option<Record>,
    /// The record's aside entries SRC was found to hold.
    aside_seen: HashSet<PathBuf>,
    /// DST's `.mirrortray/` (aside files' bytes, for `checksum`).
    store: Option<DirHandle>,
    /// SRC files with several names: (device, inode) → the first name
    /// seen and DST's (device, inode) there.
    links: HashMap<Id, (PathBuf, Id)>,
    /// The same, seen from DST: DST's inode → SRC's inode of its first name.
    dst_links: HashMap<Id, (PathBuf, Id)>,
}

/// A file's (device, inode).
type Id = (u64, u64);

/// Which side(s) listed a name.
#[derive(Default, Clone, Copy)]
struct Sides {
    src: bool,
    dst: bool,
    /// The backup drive cannot tell it from a name before it (case).
    case_twin: bool,
}

/// A folder being compared, one per level of the path the walk is in (the
/// walk keeps them in a `Vec`, not on the call stack, so a tree of any
/// depth fits): its two handles, open only while the walk is inside it.
struct Frame {
    /// SRC's and DST's folder (DST's `None` where DST lacks it); `None` for
    /// the roots, which the caller holds.
    handles: Option<(DirHandle, Option<DirHandle>)>,
    rel: PathBuf,
    /// The names not looked at yet, sorted by bytes.
    names: btree_map::IntoIter<OsString, Sides>,
}

/// A folder to go into next: SRC's, and DST's if DST holds it.
type Descend = (DirHandle, Option<DirHandle>);

impl Walk<'_> {
    fn error(&mut self, path: PathBuf, action: &'static str, e: &io::Error) {
        self.report.errors.push(EntryError::new(path, action, e));
    }

    fn diff(&mut self, rel: &Path, kind: DiffKind, src: Option<String>, dst: Option<String>) {
        self.report.differences.push(Difference {
            rel: rel.to_path_buf(),
            kind,
            src,
            dst,
        });
    }

    fn saw_dst_time(&mut self, t: Time) {
        let g = power_of_ten_dividing(t.nsec);
        self.finest = Some(self.finest.map_or(g, |f| f.min(g)));
        if self.distinct.len() < PRECISION_EVIDENCE {
            self.distinct.insert(t.nsec);
        }
    }

    /// DST's mtime precision in ns: recorded by the last backup, else
    /// read off what the walk saw.
    fn precision(&self) -> u32 {
        match self.limits {
            Some(l) => l.times.granularity_ns,
            None => infer_precision(self.finest, self.distinct.len(), &self.pending),
        }
    }

    /// Attributes and ACLs, where DST's file system keeps them.
    fn xattrs(&mut self, src: &DirHandle, dst: &DirHandle, name: &OsStr, rel: &Path) {
        if self.limits.is_some_and(|l| !l.xattrs) {
            return;
        }
        let (a, b) = match (xattrs::of_name(src, name), xattrs::of_name(dst, name)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) => {
                return self.error(self.src_root.join(rel), "read extended attributes", &e);
            }
            (_, Err(e)) => {
                return self.error(self.dst_root.join(rel), "read extended attributes", &e);
            }
        };
        if a != b {
            // Only what differs: a name one side lacks, or holds otherwise.
            let (only_a, only_b) = (a.not_in(&b), b.not_in(&a));
            self.diff(
                rel,
                DiffKind::Xattrs,
                Some(attr_names(only_a)),
                Some(attr_names(only_b)),
            );
        }
    }

    /// Hard links: names SRC links together are one file in DST, and names
    /// DST links together are one file in SRC.
    fn links(&mut self, rel: &Path, s: &Meta, d: &Meta) {
        if !self.keeps().hardlinks {
            return;
        }
        let (sid, did) = ((s.dev, s.ino), (d.dev, d.ino));
        if s.nlink > 1
            && let Some(first) = first_name_elsewhere(&mut self.links, sid, rel, did)
        {
            let with = format!("one file with {}", first.display());
            self.diff(
                rel,
                DiffKind::Link,
                Some(with),
                Some("a separate copy".into()),
            );
            return;
        }
        if d.nlink > 1
            && let Some(first) = first_name_elsewhere(&mut self.dst_links, did, rel, sid)
        {
            let with = format!("one file with {}", first.display());
            self.diff(
                rel,
                DiffKind::Link,
                Some("a separate file".into()),
                Some(with),
            );
        }
    }

    /// Compares the trees under the roots `src` and `dst` (`None`: DST does
    /// not exist), depth first: a folder's content comes before its next
    /// sibling, and the names in each folder in byte order, so runs are
    /// repeatable.
    fn tree(&mut self, src: &DirHandle, dst: Option<&DirHandle>) {
        let mut stack: Vec<Frame> = Vec::new();
        if let Some(names) = self.list(src, dst, Path::new("")) {
            stack.push(Frame {
                handles: None,
                rel: PathBuf::new(),
                names,
            });
        }
        while let Some(top) = stack.last_mut() {
            let Some((name, sides)) = top.names.next() else {
                stack.pop();
                continue;
            };
            let (src, dst) = match &top.handles {
                Some((s, d)) => (s, d.as_ref()),
                None => (src, dst),
            };
            let child = join(&top.rel, &name);
            let unheld = if sides.case_twin {
                Some(Unheld::Case)
            } else {
                (sides.src && self.keeps().refuses(&name)).then_some(Unheld::Name)
            };
            if let Some(why) = unheld {
                if self.filter.ignores(&child, false) {
                    continue;
                }
                if self.record.is_none() {
                    self.report.skipped.push(Skipped {
                        rel: child,
                        why: why.why().into(),
                    });
                    continue;
                }
                match src.stat_opt(&name) {
                    Ok(Some(sm)) => self.aside(src, &name, &child, &sm),
                    Ok(None) => {}
                    Err(e) => self.error(self.src_root.join(&child), "read", &e),
                }
                continue;
            }
            let sm = if sides.src {
                match src.stat_opt(&name) {
                    Ok(m) => m,
                    Err(e) => {
                        self.error(self.src_root.join(&child), "read", &e);
                        continue;
                    }
                }
            } else {
                None
            };
            let dm = match (dst, sides.dst) {
                (Some(d), true) => match d.stat_opt(&name) {
                    Ok(m) => m,
                    Err(e) => {
                        self.error(self.dst_root.join(&child), "read", &e);
                        continue;
                    }
                },
                _ => None,
            };
            let Some((sub_src, sub_dst)) = self.entry(src, dst, &name, &child, sm, dm) else {
                continue;
            };
            if let Some(names) = self.list(&sub_src, sub_dst.as_ref(), &child) {
                stack.push(Frame {
                    handles: Some((sub_src, sub_dst)),
                    rel: child,
                    names,
                });
            }
        }
    }

    /// The names in a folder both sides hold (`dst` is `None` when DST lacks
    /// it: then everything in it is missing), sorted by bytes. `None` when a
    /// side cannot be listed.
    fn list(
        &mut self,
        src: &DirHandle,
        dst: Option<&DirHandle>,
        rel: &Path,
    ) -> Option<btree_map::IntoIter<OsString, Sides>> {
        let at_root = rel.as_os_str().is_empty();
        let src_list = match src.list() {
            Ok(l) => l,
            Err(e) => {
                // Unreadable is not empty: DST's side is left unjudged.
                self.error(self.src_root.join(rel), "read folder", &e);
                return None;
            }
        };
        let dst_list = match dst.map(DirHandle::list) {
            None => Vec::new(),
            Some(Ok(l)) => l,
            Some(Err(e)) => {
                self.error(self.dst_root.join(rel), "read folder", &e);
                return None;
            }
        };
        let mut names: BTreeMap<OsString, Sides> = BTreeMap::new();
        for e in src_list {
            if at_root && e.name == RESERVED {
                self.report.skipped.push(Skipped {
                    rel: PathBuf::from(RESERVED),
                    why: "the name .mirrortray at the top of the source is reserved for the backup's own folder".into(),
                });
                continue;
            }
            names.entry(e.name).or_default().src = true;
        }
        for e in dst_list {
            if at_root && e.name == RESERVED {
                continue;
            }
            names.entry(e.name).or_default().dst = true;
        }
        let keeps = self.keeps();
        let mut seen = HashSet::new();
        for (name, sides) in names.iter_mut().filter(|(_, s)| s.src) {
            if let Some(f) = keeps.folded(name) {
                sides.case_twin = !seen.insert(f);
            }
        }
        Some(names.into_iter())
    }

    /// Compares one name; `src` and `dst` are the folders holding it.
    /// Returns the folder to go into next, if it is one.
    fn entry(
        &mut self,
        src: &DirHandle,
        dst: Option<&DirHandle>,
        name: &OsStr,
        rel: &Path,
        sm: Option<Meta>,
        dm: Option<Meta>,
    ) -> Option<Descend> {
        let kind = sm.or(dm)?.kind;
        if self.filter.ignores(rel, kind == Kind::Dir) {
            return None;
        }
        if let Some(d) = &dm {
            self.saw_dst_time(d.mtime);
        }
        match (sm, dm) {
            (None, None) => {}
            (Some(s), d) if s.kind == Kind::Symlink && !self.keeps().symlinks => {
                if self.record.is_some() {
                    self.aside(src, name, rel, &s);
                } else {
                    self.report.skipped.push(Skipped {
                        rel: rel.to_path_buf(),
                        why: format!("symlink: {}", Unheld::Symlink.why()),
                    });
                }
                if let Some(d) = d {
                    self.report.compared += 1;
                    self.diff(rel, DiffKind::Extra, None, Some(d.kind.noun().into()));
                }
            }
            (Some(s), _) if s.kind == Kind::Special => {
                self.report.skipped.push(Skipped {
                    rel: rel.to_path_buf(),
                    why: format!("{}, never mirrored", s.special_noun()),
                });
                // Whatever DST holds there, a sync would move away.
                if let Some(d) = dm {
                    self.report.compared += 1;
                    self.diff(rel, DiffKind::Extra, None, Some(d.kind.noun().into()));
                }
            }
            (Some(s), None) => {
                self.report.compared += 1;
                self.diff(rel, DiffKind::Missing, Some(s.kind.noun().into()), None);
                if s.kind == Kind::Dir {
                    match src.open_dir(name) {
                        Ok(sub) => return Some((sub, None)),
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => self.error(self.src_root.join(rel), "read folder", &e),
                    }
                }
            }
            (None, Some(d)) => {
                // DST at a drive's root: its lost+found is the file system's.
                if rel.parent() == Some(Path::new("")) && is_file_system_own(name, d.kind) {
                    return None;
                }
                self.report.compared += 1;
                self.diff(rel, DiffKind::Extra, None, Some(d.kind.noun().into()));
            }
            (Some(s), Some(d)) => {
                self.report.compared += 1;
                if s.kind == d.kind {
                    self.overlay(src, name, rel, &s);
                }
                return self.both(src, dst, name, rel, &s, &d);
            }
        }
        None
    }

    /// Compares a name both sides hold. Returns the folder to go into next,
    /// if it is one.
    fn both(
        &mut self,
        src: &DirHandle,
        dst: Option<&DirHandle>,
        name: &OsStr,
        rel: &Path,
        s: &Meta,
        d: &Meta,
    ) -> Option<Descend> {
        let dst = dst?;
        if s.kind != d.kind {
            self.diff(
                rel,
                DiffKind::Type,
                Some(s.kind.noun().into()),
                Some(d.kind.noun().into()),
            );
            return None;
        }
        match s.kind {
            Kind::File => {
                let same_size = s.size == d.size;
                if !same_size {
                    self.diff(
                        rel,
                        DiffKind::Size,
                        Some(s.size.to_string()),
                        Some(d.size.to_string()),
                    );
                }
                self.mode(rel, s, d);
                self.xattrs(src, dst, name, rel);
                self.links(rel, s, d);
                if s.mtime != d.mtime {
                    self.pending.push(Pending {
                        rel: rel.to_path_buf(),
                        src: s.mtime,
                        dst: d.mtime,
                        content: same_size,
                    });
                } else if same_size && self.checksum {
                    self.content(src, dst, name, rel);
                }
            }
            Kind::Symlink => {
                let targets = (src.read_link(name), dst.read_link(name));
                match targets {
                    (Ok(a), Ok(b)) => {
                        if a != b {
                            self.diff(rel, DiffKind::Target, Some(text(&a)), Some(text(&b)));
                        }
                    }
                    (Err(e), _) => self.error(self.src_root.join(rel), "read symlink", &e),
                    (_, Err(e)) => self.error(self.dst_root.join(rel), "read symlink", &e),
                }
                self.owner(rel, s, d);
                self.mtime_later(rel, s, d);
            }
            Kind::Dir => {
                self.mode(rel, s, d);
                self.xattrs(src, dst, name, rel);
                self.mtime_later(rel, s, d);
                let sub_src = match src.open_dir(name) {
                    Ok(h) => h,
                    Err(e) => {
                        self.error(self.src_root.join(rel), "read folder", &e);
                        return None;
                    }
                };
                let sub_dst = match dst.open_dir(name) {
                    Ok(h) => h,
                    Err(e) => {
                        self.error(self.dst_root.join(rel), "read folder", &e);
                        return None;
                    }
                };
                return Some((sub_src, Some(sub_dst)));
            }
            Kind::Special => {}
        }
        None
    }

    /// SRC's attributes of `name` (`s`) in `src`, read where the record
    /// keeps them (the drive holds none); else none. `None`: unreadable
    /// (an error).
    fn lost_xattrs(
        &mut self,
        src: &DirHandle,
        name: &OsStr,
        rel: &Path,
        s: &Meta,
    ) -> Option<xattrs::Xattrs> {
        if self.keeps().xattrs || !matches!(s.kind, Kind::File | Kind::Dir) {
            return Some(xattrs::Xattrs::default());
        }
        match xattrs::of_name(src, name) {
            Ok(x) => Some(x),
            Err(e) => {
                self.error(self.src_root.join(rel), "read extended attributes", &e);
                None
            }
        }
    }

    /// An entry DST holds (`name` in SRC's folder `src`): where the drive
    /// cannot hold all of it, the record must say the rest (and say nothing
    /// where it can).
    fn overlay(&mut self, src: &DirHandle, name: &OsStr, rel: &Path, s: &Meta) {
        if self.record.is_none() {
            return;
        }
        let Some(x) = self.lost_xattrs(src, name, rel, s) else {
            return;
        };
        let keeps = self.keeps();
        let Some(rec) = &self.record else { return };
        let want = needs_overlay(&keeps, s, &x);
        let got = rec.get(rel).filter(|e| !e.aside);
        let ok = match got {
            Some(e) => want && e.matches(&keeps, s, &x),
            None => !want,
        };
        if !ok {
            let (ours, theirs) = record_words(s, None, &x, got);
            self.diff(rel, DiffKind::Record, Some(ours), Some(theirs));
        }
    }

    /// An entry the drive cannot hold at all (`sm`, `name` in SRC's
    /// folder `src`): the record must hold it, and everything under it.
    fn aside(&mut self, src: &DirHandle, name: &OsStr, rel: &Path, sm: &Meta) {
        self.aside_one(src, name, rel, sm);
        if sm.kind != Kind::Dir {
            return;
        }
        let mut stack = match src.open_dir(name) {
            Ok(d) => vec![(d, rel.to_path_buf())],
            Err(e) => return self.error(self.src_root.join(rel), "read folder", &e),
        };
        while let Some((dir, drel)) = stack.pop() {
            let list = match dir.list() {
                Ok(l) => l,
                Err(e) => {
                    self.error(self.src_root.join(&drel), "read folder", &e);
                    continue;
                }
            };
            for e in list {
                let child = join(&drel, &e.name);
                let m = match dir.stat_opt(&e.name) {
                    Ok(Some(m)) => m,
                    Ok(None) => continue,
                    Err(err) => {
                        self.error(self.src_root.join(&child), "read", &err);
                        continue;
                    }
                };
                if m.kind == Kind::Special || self.filter.ignores(&child, m.kind == Kind::Dir) {
                    continue;
                }
                self.aside_one(&dir, &e.name, &child, &m);
                if m.kind == Kind::Dir {
                    match dir.open_dir(&e.name) {
                        Ok(sub) => stack.push((sub, child)),
                        Err(err) => self.error(self.src_root.join(&child), "read folder", &err),
                    }
                }
            }
        }
    }

    /// One entry the drive cannot hold against the record.
    fn aside_one(&mut self, src: &DirHandle, name: &OsStr, rel: &Path, sm: &Meta) {
        let Some(rec) = &self.record else { return };
        self.report.compared += 1;
        self.aside_seen.insert(rel.to_path_buf());
        let got = rec.get(rel).filter(|e| e.aside).cloned();
        let target = if sm.kind == Kind::Symlink {
            match src.read_link(name) {
                Ok(t) => Some(t),
                Err(e) => return self.error(self.src_root.join(rel), "read symlink", &e),
            }
        } else {
            None
        };
        let Some(x) = self.lost_xattrs(src, name, rel, sm) else {
            return;
        };
        let keeps = self.keeps();
        let same = got.as_ref().is_some_and(|e| {
            e.matches(&keeps, sm, &x)
                && target
                    .as_deref()
                    .is_none_or(|t| e.target.as_ref().map(|x| x.as_os_str()) == Some(t))
        });
        if !same {
            let (ours, theirs) = record_words(sm, target.as_deref(), &x, got.as_ref());
            self.diff(rel, DiffKind::Record, Some(ours), Some(theirs));
            return;
        }
        if self.checksum
            && sm.kind == Kind::File
            && let Some(b) = got.and_then(|e| e.blob)
        {
            let blob = self.store.as_ref().map(|st| {
                st.open_path(Path::new(super::record::ASIDE_DIR))
                    .and_then(|d| d.open_read(OsStr::new(&b.to_string())))
            });
            let (a, b) = match (src.open_read(name), blob) {
                (Ok(a), Some(Ok(b))) => (a, b),
                (Err(e), _) => return self.error(self.src_root.join(rel), "read", &e),
                (_, Some(Err(e))) => {
                    let p = self
                        .dst_root
                        .join(RESERVED)
                        .join(super::record::ASIDE_DIR)
                        .join(b.to_string());
                    return self.error(p, "read", &e);
                }
                (_, None) => return,
            };
            match fsops::same_content(&a, &b) {
                Ok(true) => {}
                Ok(false) => self.diff(rel, DiffKind::Content, None, None),
                Err(ReadSide::First(e)) => self.error(self.src_root.join(rel), "read", &e),
                Err(ReadSide::Second(e)) => {
                    self.error(self.dst_root.join(RESERVED).join(RECORD_FILE), "read", &e)
                }
            }
        }
    }

    /// The record's aside entries SRC no longer holds: a restore would
    /// bring them back.
    fn aside_left_over(&mut self) {
        let Some(rec) = &self.record else { return };
        let extra: Vec<(PathBuf, Kind)> = rec
            .tree(Path::new(""))
            .into_iter()
            .filter(|(p, e)| e.aside && !self.aside_seen.contains(p))
            .map(|(p, e)| (p, e.kind.kind()))
            .filter(|(p, k)| !self.filter.ignores(p, *k == Kind::Dir))
            .collect();
        for (p, k) in extra {
            self.report.compared += 1;
            self.diff(
                &p,
                DiffKind::Extra,
                None,
                Some(format!("recorded {}", k.noun())),
            );
        }
    }

    /// What DST's file system keeps: as the last backup recorded it, else
    /// everything.
    fn keeps(&self) -> Keeps {
        self.limits.unwrap_or(Keeps::ALL)
    }

    fn owner(&mut self, rel: &Path, s: &Meta, d: &Meta) {
        if !self.keeps().same_owner(s, d) {
            self.diff(
                rel,
                DiffKind::Owner,
                Some(format!("{}:{}", s.uid, s.gid)),
                Some(format!("{}:{}", d.uid, d.gid)),
            );
        }
    }

    fn mode(&mut self, rel: &Path, s: &Meta, d: &Meta) {
        self.owner(rel, s, d);
        if !self.keeps().same_mode(s.mode, d.mode) {
            self.diff(
                rel,
                DiffKind::Mode,
                Some(format!("{:03o}", s.mode)),
                Some(format!("{:03o}", d.mode)),
            );
        }
    }

    fn mtime_later(&mut self, rel: &Path, s: &Meta, d: &Meta) {
        if s.mtime != d.mtime {
            self.pending.push(Pending {
                rel: rel.to_path_buf(),
                src: s.mtime,
                dst: d.mtime,
                content: false,
            });
        }
    }

    /// Compares the bytes of `name` in both folders.
    fn content(&mut self, src: &DirHandle, dst: &DirHandle, name: &OsStr, rel: &Path) {
        let a = match src.open_read(name) {
            Ok(f) => f,
            Err(e) => return self.error(self.src_root.join(rel), "read", &e),
        };
        let b = match dst.open_read(name) {
            Ok(f) => f,
            Err(e) => return self.error(self.dst_root.join(rel), "read", &e),
        };
        match fsops::same_content(&a, &b) {
            Ok(true) => {}
            Ok(false) => self.diff(rel, DiffKind::Content, None, None),
            Err(ReadSide::First(e)) => self.error(self.src_root.join(rel), "read", &e),
            Err(ReadSide::Second(e)) => self.error(self.dst_root.join(rel), "read", &e),
        }
    }

    /// Settles the mtimes that differ at the nanosecond, now that DST's
    /// precision `g` is known; files whose times are equal at it get their
    /// bytes compared (with `checksum`).
    fn settle_times(&mut self, src_root: &DirHandle, dst_root: Option<&DirHandle>, g: u32) {
        let limits = plan::TimeLimits {
            granularity_ns: g,
            ..self.limits.map_or(plan::TimeLimits::EXACT, |l| l.times)
        };
        for p in std::mem::take(&mut self.pending) {
            if limits.out_of_range(p.src) && limits.same(p.src, p.dst) {
                self.report.times_out_of_range += 1;
            }
            if !limits.same(p.src, p.dst) {
                self.diff(
                    &p.rel,
                    DiffKind::Mtime,
                    Some(time_text(p.src)),
                    Some(time_text(p.dst)),
                );
                continue;
            }
            if !(p.content && self.checksum) {
                continue;
            }
            let (Some(dst_root), Some(name)) = (dst_root, p.rel.file_name()) else {
                continue;
            };
            let parent = p.rel.parent().unwrap_or(Path::new(""));
            let s = match src_root.open_path(parent) {
                Ok(h) => h,
                Err(e) => {
                    self.error(self.src_root.join(parent), "read folder", &e);
                    continue;
                }
            };
            let d = match dst_root.open_path(parent) {
                Ok(h) => h,
                Err(e) => {
                    self.error(self.dst_root.join(parent), "read folder", &e);
                    continue;
                }
            };
            self.content(&s, &d, name, &p.rel);
        }
    }
}

/// Hard links, from one side: `key` is a file with several names, `other`
/// what the other side holds at `rel`. The first name of `key` seen is
/// remembered with its `other`; a later name whose `other` differs gets
/// that first name back (linked on one side, not on the other).
fn first_name_elsewhere(
    seen: &mut HashMap<Id, (PathBuf, Id)>,
    key: Id,
    rel: &Path,
    other: Id,
) -> Option<PathBuf> {
    match seen.get(&key) {
        None => {
            seen.insert(key, (rel.to_path_buf(), other));
            None
        }
        Some((first, o)) if *o != other => Some(first.clone()),
        Some(_) => None,
    }
}

/// DST's mtime precision: `finest` is the largest power of ten dividing
/// every DST nanosecond value, `distinct` how many different values there
/// were; `pending` the times that differ at the nanosecond.
fn infer_precision(finest: Option<u32>, distinct: usize, pending: &[Pending]) -> u32 {
    let Some(g) = finest.filter(|g| *g > 1) else {
        return 1;
    };
    let cut: HashSet<u32> = pending
        .iter()
        .filter(|p| p.dst.sec == p.src.sec && p.dst.nsec == p.src.nsec / g * g)
        .map(|p| p.src.nsec)
        .take(PRECISION_EVIDENCE)
        .collect();
    if distinct + cut.len() >= PRECISION_EVIDENCE {
        g
    } else {
        1
    }
}

/// The largest power of ten (up to one second) that divides `nsec`.
fn power_of_ten_dividing(nsec: u32) -> u32 {
    let mut g: u32 = 1;
    while g < 1_000_000_000 && nsec.is_multiple_of(g * 10) {
        g *= 10;
    }
    g
}

/// An entry in words, for a record difference.
fn meta_words(m: &Meta, target: Option<&OsStr>) -> String {
    let mut out = format!(
        "{} mode {:03o} mtime {}",
        m.kind.noun(),
        m.mode,
        time_text(m.mtime)
    );
    if m.kind == Kind::File {
        out.push_str(&format!(" {} bytes", m.size));
    }
    if (m.uid, m.gid) != (0, 0) {
        out.push_str(&format!(" owner {}:{}", m.uid, m.gid));
    }
    if let Some(t) = target {
        out.push_str(&format!(" -> {}", text(t)));
    }
    out
}

fn recorded_words(e: &Recorded) -> String {
    meta_words(&e.meta(), e.target.as_ref().map(|t| t.as_os_str()))
}

/// SRC's entry (`m`, a symlink's `target`, the attributes `x` the record
/// keeps) and the record's `got`, in words; where attributes differ, each
/// side names those the other lacks or holds otherwise.
fn record_words(
    m: &Meta,
    target: Option<&OsStr>,
    x: &xattrs::Xattrs,
    got: Option<&Recorded>,
) -> (String, String) {
    let mut ours = meta_words(m, target);
    let Some(e) = got else {
        return (ours, "nothing".to_string());
    };
    let mut theirs = recorded_words(e);
    if *x != e.xattrs {
        ours.push_str(&format!(" attributes {}", attr_names(x.not_in(&e.xattrs))));
        theirs.push_str(&format!(" attributes {}", attr_names(e.xattrs.not_in(x))));
    }
    (ours, theirs)
}

/// Attribute names for people ("none" for none).
fn attr_names(v: Vec<&[u8]>) -> String {
    if v.is_empty() {
        return "none".to_string();
    }
    let v: Vec<_> = v.iter().map(|n| String::from_utf8_lossy(n)).collect();
    v.join(", ")
}

/// A symlink target for people (bytes that are not UTF-8 as `\xNN`).
fn text(target: &OsStr) -> String {
    super::error::show(Path::new(target))
}

/// A time for people, in UTC to the nanosecond:
/// `2026-11-25 10:00:00.123456789 UTC` (times before 1970 too).
pub fn time_text(t: Time) -> String {
    let ts = i32::try_from(t.nsec)
        .ok()
        .and_then(|ns| jiff::Timestamp::new(t.sec, ns).ok());
    match ts {
        Some(ts) => {
            let dt = ts.to_zoned_datetime(jiff::tz::TimeZone::UTC);
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:09} UTC",
                dt.year(),
                dt.month(),
                dt.day(),
                dt.hour(),
                dt.minute(),
                dt.second(),
                dt.subsec_nanosecond()
            )
        }
        None => format!("{}.{:09} s from 1970", t.sec, t.nsec),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_from_nanoseconds() {
        assert_eq!(power_of_ten_dividing(123_456_789), 1);
        assert_eq!(power_of_ten_dividing(123_456_780), 10);
        assert_eq!(power_of_ten_dividing(120_000_000), 10_000_000);
        assert_eq!(power_of_ten_dividing(0), 1_000_000_000);
    }

    fn cut(nsec: u32, g: u32) -> Pending {
        Pending {
            rel: PathBuf::from("f"),
            src: Time { sec: 7, nsec },
            dst: Time {
                sec: 7,
                nsec: nsec / g * g,
            },
            content: true,
        }
    }

    #[test]
    fn coarse_precision_needs_evidence() {
        // A nanosecond file system: any value not ending in 0 settles it.
        assert_eq!(infer_precision(Some(1), 100, &[]), 1);
        // A small tree whose few kernel timestamps happen to end in zeros.
        assert_eq!(infer_precision(Some(100), 2, &[]), 1);
        // exFAT: many distinct values, all multiples of 10 ms.
        assert_eq!(infer_precision(Some(10_000_000), 16, &[]), 10_000_000);
        // Whole seconds: DST holds zeros only; SRC's times cut to the second.
        let many: Vec<Pending> = (1..=20)
            .map(|i| cut(i * 1_234_567, 1_000_000_000))
            .collect();
        assert_eq!(
            infer_precision(Some(1_000_000_000), 1, &many),
            1_000_000_000
        );
        // One file touched by hand to a whole second is a difference, not a file system.
        assert_eq!(infer_precision(Some(1_000_000_000), 1, &many[..1]), 1);
    }

    #[test]
    fn times_for_people() {
        assert_eq!(
            time_text(Time { sec: 0, nsec: 5 }),
            "1970-01-01 00:00:00.000000005 UTC"
        );
        assert_eq!(
            time_text(Time {
                sec: -1,
                nsec: 500_000_000
            }),
            "1969-12-31 23:59:59.500000000 UTC"
        );
        assert_eq!(
            time_text(Time {
                sec: 1_795_600_800,
                nsec: 123_456_789
            }),
            "2026-11-25 10:00:00.123456789 UTC"
        );
    }
}
