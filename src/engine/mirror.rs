//! mirror: one folder pair, held open for as long as it is mirrored.
//!
//! A [`Mirror`] is what the CLI, the watcher and the tray drive. Opening it
//! checks the pair (safety rules 4, 5), creates DST's `.mirrortray/` and takes
//! its lock (rule 8); it then offers:
//! - [`reconcile`](Mirror::reconcile): the whole tree, with the mass-deletion
//!   guard (rule 6): start-up, `sync`, resume, overflow, drift check;
//! - [`reconcile_paths`](Mirror::reconcile_paths): a set of dirty paths from
//!   the watcher; events are hints, each path is stat'ed on both sides;
//! - [`rename`](Mirror::rename): a rename in SRC applied as a rename in DST;
//! - [`prune_versions`](Mirror::prune_versions): the retention window.
//!
//! Progress and per-entry failures go to a [`Sink`]; a [`Control`] stops a
//! run between entries. The lock is released when the `Mirror` is dropped.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64};

use super::error::{EntryError, SetupError, reason};
use super::event::{Control, Event, Sink, Stats, Summary, VersionReason};
use super::filter::{Filter, is_reserved};
use super::fsops::{DirHandle, Kind, Meta};
use super::paths::{self, Roots};
use super::reconcile::Ctx;
use super::store::{SourceRecord, Store};

/// The mass-deletion guard holds deletions above this share of DST...
pub const MASS_DELETE_SHARE: f64 = 0.5;
/// ...when they are at least this many.
pub const MASS_DELETE_MIN: u64 = 100;

/// A folder pair as configured (paths as the user gave them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairSpec {
    pub src: PathBuf,
    pub dst: PathBuf,
    pub ignore: Vec<String>,
    pub versions: bool,
    pub retention_days: u32,
    /// Most space (MiB) the versions may use (`None`: no limit).
    pub max_versions_mb: Option<u64>,
}

impl PairSpec {
    pub fn new(src: impl Into<PathBuf>, dst: impl Into<PathBuf>) -> PairSpec {
        PairSpec {
            src: src.into(),
            dst: dst.into(),
            ignore: Vec::new(),
            versions: true,
            retention_days: 30,
            max_versions_mb: None,
        }
    }
}

/// How a mirror runs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Report, write nothing.
    pub dry_run: bool,
    /// Let a reconcile delete more than the guard allows.
    pub allow_mass_delete: bool,
    /// Names the command in the lock file (`sync`, `watch`, `tray`).
    pub command: String,
    /// Create DST when missing. Only when the user named it just now: a
    /// configured backup folder that is missing is most likely an unmounted
    /// drive, and creating it would back up onto the wrong disk.
    pub create_dst: bool,
}

/// A pair's dirty path, as the watcher reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dirty {
    pub rel: PathBuf,
    /// Reconcile the whole subtree (a folder that appeared with content),
    /// not only the entry itself.
    pub deep: bool,
}

pub struct Mirror {
    roots: Roots,
    spec: PairSpec,
    filter: Filter,
    dst: Option<DirHandle>,
    store: Option<Store>,
    granularity: AtomicU32,
    /// Deletions held by the guard, until allowed or SRC changes.
    held: Mutex<Option<(u64, u64)>>,
    allow_mass: std::sync::atomic::AtomicBool,
    /// Under a watcher, a write during a copy always comes with an event
    /// (and a new copy); without one, recently changed files get the
    /// racy-timestamp check (see copy.rs).
    watched: std::sync::atomic::AtomicBool,
    /// Files the watcher knows are still being written: a deep scan leaves
    /// them to their own, later, event (no copy of a half-written file).
    deferred: Mutex<std::sync::Arc<std::collections::HashSet<PathBuf>>>,
    /// Leave files open for writing elsewhere to their close event (the
    /// scan of a folder that just appeared).
    skip_busy: std::sync::atomic::AtomicBool,
}

impl Mirror {
    /// Checks and opens a pair. Nothing is written before every check passed;
    /// in a dry run, nothing is written at all.
    pub fn open(spec: &PairSpec, opts: &Options) -> Result<Mirror, SetupError> {
        let roots = paths::resolve_pair(&spec.src, &spec.dst)?;
        let filter = Filter::new(&spec.ignore)
            .map_err(|e| SetupError::Other(roots.src.clone(), e.to_string()))?;
        let src = open_src(&roots.src)?;
        src.list()
            .map_err(|e| SetupError::SrcUnreadable(roots.src.clone(), reason(&e)))?;
        let exists = roots.dst.exists();
        if !exists && !opts.dry_run && !opts.create_dst {
            return Err(SetupError::DstMissing(roots.dst));
        }
        if !exists && !opts.dry_run {
            std::fs::create_dir_all(&roots.dst)
                .map_err(|e| SetupError::DstUnwritable(roots.dst.clone(), reason(&e)))?;
        }
        let dst = if exists || !opts.dry_run {
            Some(
                DirHandle::open_root(&roots.dst)
                    .map_err(|e| SetupError::DstUnwritable(roots.dst.clone(), reason(&e)))?,
            )
        } else {
            None
        };
        let store = match (&dst, opts.dry_run) {
            (Some(d), false) => Some(Store::open(d, &roots.dst, spec.versions, &opts.command)?),
            _ => None,
        };
        let granularity = match &store {
            Some(s) => s.probe_granularity().unwrap_or(1),
            None => 1,
        };
        if granularity > 1 {
            log::info!(
                "{}: the backup's file system keeps modification times to {} ns; comparing at that precision",
                roots.dst.display(),
                granularity
            );
        }
        let m = Mirror {
            roots,
            spec: spec.clone(),
            filter,
            dst,
            store,
            granularity: AtomicU32::new(granularity),
            held: Mutex::new(None),
            allow_mass: std::sync::atomic::AtomicBool::new(opts.allow_mass_delete),
            watched: std::sync::atomic::AtomicBool::new(false),
            deferred: Mutex::new(Default::default()),
            skip_busy: std::sync::atomic::AtomicBool::new(false),
        };
        m.check_source(&src)?;
        Ok(m)
    }

    pub fn src(&self) -> &Path {
        &self.roots.src
    }
    pub fn dst(&self) -> &Path {
        &self.roots.dst
    }
    pub fn spec(&self) -> &PairSpec {
        &self.spec
    }
    pub fn filter(&self) -> &Filter {
        &self.filter
    }
    pub fn versions_path(&self) -> PathBuf {
        self.roots
            .dst
            .join(super::filter::RESERVED)
            .join("versions")
    }
    /// Deletions the guard is holding: `(count, dst_entries)`.
    pub fn held_deletions(&self) -> Option<(u64, u64)> {
        self.held.lock().ok().and_then(|h| *h)
    }
    /// Says a watcher feeds this mirror its changes (see `watched`).
    pub fn set_watched(&self, watched: bool) {
        self.watched
            .store(watched, std::sync::atomic::Ordering::Relaxed);
    }

    /// Files still being written, left out of the next reconciles (see
    /// `deferred`); the watcher sets this before each batch.
    pub fn set_deferred(&self, paths: std::collections::HashSet<PathBuf>) {
        if let Ok(mut d) = self.deferred.lock() {
            *d = std::sync::Arc::new(paths);
        }
    }

    /// Makes the next reconciles leave files that another program has open
    /// for writing (their close event follows); for folders that just
    /// appeared, whose files may still be being written.
    pub fn set_skip_busy(&self, skip: bool) {
        self.skip_busy
            .store(skip, std::sync::atomic::Ordering::Relaxed);
    }

    /// Lets the next reconcile go past the mass-deletion guard (the user
    /// confirmed).
    pub fn allow_mass_delete(&self, allow: bool) {
        self.allow_mass
            .store(allow, std::sync::atomic::Ordering::SeqCst);
    }

    /// Safety rule 4: a SRC that is empty and on another device than at the
    /// last backup is taken as unmounted, not as "everything was deleted".
    fn check_source(&self, src: &DirHandle) -> Result<Meta, SetupError> {
        let meta = src
            .meta()
            .map_err(|e| SetupError::SrcUnreadable(self.roots.src.clone(), reason(&e)))?;
        let record = match &self.store {
            Some(s) => s.source_record(),
            None => self
                .dst
                .as_ref()
                .and_then(|d| d.open_dir(OsStr::new(super::filter::RESERVED)).ok())
                .and_then(|r| super::store::read_source_record(&r)),
        };
        if let Some(rec) = record
            && rec.dev != meta.dev
            && super::fsops::is_empty_dir(src).unwrap_or(false)
        {
            return Err(SetupError::SrcLooksUnmounted(
                self.roots.src.clone(),
                self.roots.dst.join(super::filter::RESERVED).join("source"),
            ));
        }
        Ok(meta)
    }

    fn record_source(&self, meta: &Meta) {
        if let Some(store) = &self.store {
            let rec = SourceRecord {
                path: self.roots.src.clone(),
                dev: meta.dev,
            };
            if let Err(e) = store.write_source_record(&rec) {
                log::warn!(
                    "{}: cannot record the source device: {}",
                    self.roots.dst.display(),
                    reason(&e)
                );
            }
        }
    }

    fn ctx<'a>(&'a self, ctl: &'a Control, sink: &'a dyn Sink, stats: &'a Stats) -> Ctx<'a> {
        Ctx {
            src_root: &self.roots.src,
            dst_root: &self.roots.dst,
            filter: &self.filter,
            store: self.store.as_ref(),
            sink,
            stats,
            ctl,
            granularity: &self.granularity,
            versions_on: self.spec.versions,
            recheck_recent: !self.watched.load(std::sync::atomic::Ordering::Relaxed),
            deferred: self.deferred.lock().map(|d| d.clone()).unwrap_or_default(),
            skip_busy: std::sync::atomic::AtomicBool::new(
                self.skip_busy.load(std::sync::atomic::Ordering::Relaxed),
            ),
            extras: Mutex::new(Vec::new()),
            dst_entries: AtomicU64::new(0),
            dst_gone: Default::default(),
        }
    }

    /// Opens SRC's root again (it may have gone since the last run) and
    /// checks it.
    fn open_src_checked(&self) -> Result<(DirHandle, Meta), SetupError> {
        // Opening a folder for reading already needs read permission; no
        // listing here, this runs for every live batch.
        let src = open_src(&self.roots.src)?;
        let meta = self.check_source(&src)?;
        Ok((src, meta))
    }

    /// Makes DST mirror SRC, whole tree.
    pub fn reconcile(&self, ctl: &Control, sink: &dyn Sink) -> Result<Summary, SetupError> {
        let (src, src_meta) = self.open_src_checked()?;
        if let Some(s) = &self.store {
            s.versions.begin_batch();
        }
        let stats = Stats::default();
        let ctx = self.ctx(ctl, sink, &stats);
        ctx.sync_dir(&src, self.dst.as_ref(), Path::new(""), &src_meta);
        self.check_dst_kept(&ctx)?;
        let extras = ctx.take_extras();
        let mut held = None;
        if !extras.is_empty() && !ctl.stopped() {
            let dst_root = self.dst.as_ref();
            let subtree: u64 = extras
                .iter()
                .filter(|x| x.kind == Kind::Dir)
                .map(|x| dst_root.map(|d| ctx.count_tree(d, &x.rel)).unwrap_or(0))
                .sum();
            let count = extras.len() as u64 + subtree;
            let total = ctx.dst_entries.load(std::sync::atomic::Ordering::Relaxed) + subtree;
            if !self.allow_mass.load(std::sync::atomic::Ordering::SeqCst)
                && count >= MASS_DELETE_MIN
                && (count as f64) > MASS_DELETE_SHARE * total as f64
            {
                sink.event(Event::MassDeleteHeld { count, total });
                held = Some((count, total));
            } else if let Some(d) = dst_root {
                ctx.remove_extras(&src, d, extras);
            }
        }
        if let Ok(mut h) = self.held.lock() {
            *h = held;
        }
        if !ctl.stopped() && held.is_none() {
            self.record_source(&src_meta);
        }
        let mut summary = stats.snapshot();
        summary.held_deletions = held;
        summary.interrupted = ctl.stopped();
        Ok(summary)
    }

    /// Makes DST equal to SRC at each dirty path (events are hints: both
    /// sides are stat'ed). Deletions here are live ones, versioned one by
    /// one; the mass-deletion guard is for whole-tree reconciles.
    pub fn reconcile_paths(
        &self,
        dirty: &[Dirty],
        ctl: &Control,
        sink: &dyn Sink,
    ) -> Result<Summary, SetupError> {
        let (src, _) = self.open_src_checked()?;
        let stats = Stats::default();
        let Some(dst) = &self.dst else {
            return Ok(stats.snapshot());
        };
        let ctx = self.ctx(ctl, sink, &stats);
        let mut paths: Vec<&Dirty> = dirty
            .iter()
            .filter(|d| {
                !d.rel.as_os_str().is_empty()
                    && paths::is_plain_relative(&d.rel)
                    && !is_reserved_src(&d.rel)
            })
            .collect();
        // Parents first: a folder that must be created comes before its content.
        paths.sort_by_key(|d| d.rel.components().count());
        let mut parents: std::collections::BTreeSet<PathBuf> = std::collections::BTreeSet::new();
        // A path under one reconciled deeply is already covered (an `rm -rf`
        // reports every file, then the folder: one rename does it all).
        let mut deep_done: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
        for d in paths {
            if ctl.stopped() {
                break;
            }
            if d.rel.ancestors().skip(1).any(|a| deep_done.contains(a)) {
                continue;
            }
            if d.deep {
                deep_done.insert(d.rel.clone());
            }
            if self.filter.ignores_path(&d.rel, false) && self.filter.ignores_path(&d.rel, true) {
                continue;
            }
            let parent = d.rel.parent().unwrap_or(Path::new("")).to_path_buf();
            // The nearest ancestor DST already has; from there down, the
            // first missing folder is created by a deep reconcile of it.
            let (anc, child) = match nearest_dst_ancestor(dst, &parent) {
                Some(a) if a == parent => (a, d.rel.clone()),
                Some(a) => {
                    let next = d
                        .rel
                        .components()
                        .take(a.components().count() + 1)
                        .collect::<PathBuf>();
                    (a, next)
                }
                None => continue,
            };
            let deep = d.deep || child != d.rel;
            let src_dir = match src.open_path(&anc) {
                Ok(s) => s,
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound
                        || e.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error())
                        || e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) =>
                {
                    // Gone from SRC: the deletion of an ancestor will be (or was) seen.
                    continue;
                }
                Err(e) => {
                    ctx.failed(EntryError::new(ctx.src_path(&anc), "read folder", &e));
                    continue;
                }
            };
            let dst_dir = match dst.open_path(&anc) {
                Ok(h) => h,
                Err(e) => {
                    ctx.failed(EntryError::new(ctx.dst_path(&anc), "open folder", &e));
                    continue;
                }
            };
            if child != d.rel && self.watched.load(std::sync::atomic::Ordering::Relaxed) {
                // DST lacks a folder on the way: it just appeared in SRC, and
                // files in it still being written have their own events to
                // come (the one this path is about is closed).
                let was = ctx
                    .skip_busy
                    .swap(true, std::sync::atomic::Ordering::Relaxed);
                ctx.sync_entry(&src_dir, Some(&dst_dir), &child, true);
                ctx.skip_busy
                    .store(was, std::sync::atomic::Ordering::Relaxed);
            } else if deep {
                ctx.sync_entry(&src_dir, Some(&dst_dir), &child, true);
            } else {
                ctx.sync_entry_shallow(&src_dir, &dst_dir, &child);
            }
            parents.insert(anc);
        }
        let extras = ctx.take_extras();
        if !extras.is_empty() {
            ctx.remove_extras(&src, dst, extras);
        }
        // Writing into a folder changed its mtime: put SRC's back.
        for p in parents.iter().filter(|p| !p.as_os_str().is_empty()) {
            if let (Ok(s), Ok(d)) = (src.open_path(p), dst.open_path(p))
                && let Ok(sm) = s.meta()
            {
                ctx.fix_dir_meta(Some(&d), p, &sm);
            }
        }
        self.check_dst_kept(&ctx)?;
        let mut summary = stats.snapshot();
        summary.interrupted = ctl.stopped();
        Ok(summary)
    }

    /// A walk that found the backup folder deleted under it ends as a
    /// missing backup folder (the watcher waits for it to come back).
    fn check_dst_kept(&self, ctx: &Ctx<'_>) -> Result<(), SetupError> {
        if ctx.dst_gone.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(SetupError::DstMissing(self.roots.dst.clone()));
        }
        Ok(())
    }

    /// Applies SRC's rename `from` -> `to` as a rename inside DST, when DST
    /// still holds `from` as the same kind of entry SRC now has at `to`.
    /// `chained`: a later rename in the same batch moves `to` on (`mv a tmp;
    /// mv tmp b`, a swap), so SRC no longer having `to` is expected. Missing
    /// DST folders on the way to `to` are made (`mkdir x; mv *.txt x/`).
    /// What DST held at `to` is versioned first. Returns `false` when the
    /// rename does not apply (the caller then reconciles both paths).
    pub fn rename(
        &self,
        from: &Path,
        to: &Path,
        chained: bool,
        sink: &dyn Sink,
    ) -> io::Result<bool> {
        let (Some(dst), Some(_)) = (&self.dst, &self.store) else {
            return Ok(false);
        };
        if !paths::is_plain_relative(from)
            || !paths::is_plain_relative(to)
            || is_reserved_src(from)
            || is_reserved_src(to)
        {
            return Ok(false);
        }
        let (Some(from_name), Some(to_name)) = (from.file_name(), to.file_name()) else {
            return Ok(false);
        };
        let src = DirHandle::open_root(&self.roots.src)?;
        let src_to = stat_at(&src, to)?;
        if src_to.is_none() && !chained {
            return Ok(false);
        }
        let is_dir = src_to.map(|m| m.kind == Kind::Dir);
        let ignored = |p: &Path| match is_dir {
            Some(d) => self.filter.ignores_path(p, d),
            None => self.filter.ignores_path(p, false) || self.filter.ignores_path(p, true),
        };
        if src_to.map(|m| m.kind) == Some(Kind::Special) || ignored(from) || ignored(to) {
            return Ok(false);
        }
        let from_parent = match dst.open_path(from.parent().unwrap_or(Path::new(""))) {
            Ok(d) => d,
            Err(_) => return Ok(false),
        };
        let Some(dst_from) = from_parent.stat_opt(from_name)? else {
            return Ok(false);
        };
        if let Some(s) = src_to
            && dst_from.kind != s.kind
        {
            return Ok(false);
        }
        let to_parent_rel = to.parent().unwrap_or(Path::new(""));
        let to_parent = match dst.open_path(to_parent_rel) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Only where SRC has that folder; its mode and times are set
                // by the reconcile of the batch that follows.
                if src.open_path(to_parent_rel).is_err() {
                    return Ok(false);
                }
                match dst.create_path(to_parent_rel) {
                    Ok(d) => d,
                    Err(_) => return Ok(false),
                }
            }
            Err(_) => return Ok(false),
        };
        let stats = Stats::default();
        let ctl = Control::new();
        let ctx = self.ctx(&ctl, sink, &stats);
        if let Some(old) = to_parent.stat_opt(to_name)?
            && !ctx.remove_entry(&to_parent, to, old.kind, VersionReason::RenamedOver)
        {
            return Ok(false);
        }
        let renamed = from_parent.writable(|| {
            to_parent.writable(|| from_parent.rename_noreplace(from_name, &to_parent, to_name))
        });
        match renamed {
            Ok(()) => {}
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.kind() == io::ErrorKind::AlreadyExists =>
            {
                return Ok(false);
            }
            Err(e) => return Err(e),
        }
        sink.event(Event::Renamed {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
        });
        Ok(true)
    }

    /// Removes temp files (at a clean stop).
    pub fn clean_tmp(&self) {
        if let Some(s) = &self.store
            && let Err(e) = s.clean_tmp()
        {
            log::warn!(
                "{}: cannot clean temp files: {}",
                self.roots.dst.display(),
                reason(&e)
            );
        }
    }

    /// Starts a new versions batch (the watcher calls it per batch of changes).
    pub fn begin_batch(&self) {
        if let Some(s) = &self.store {
            s.versions.begin_batch();
        }
    }

    /// Removes versions older than the pair's retention, then, with a size
    /// limit, the oldest ones until the rest fits. Returns how many time
    /// folders went.
    ///
    /// A version named `T` is what DST held until `T`, so a restore to a
    /// time inside the window only needs folders named after the window's
    /// start: age pruning never removes one. The size limit, when it must
    /// remove folders inside the window, removes the oldest first, so the
    /// window shrinks from its old end and never gets a hole; the restore
    /// commands then say how far back they reach (see `history.rs`).
    pub fn prune_versions(&self) -> io::Result<usize> {
        let Some(store) = &self.store else {
            return Ok(0);
        };
        let days = i64::from(self.spec.retention_days);
        let cutoff = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * days);
        let mut n = store.versions.prune(cutoff)?;
        if let Some(mb) = self.spec.max_versions_mb {
            let (removed, freed) = store.versions.prune_to_size(mb.saturating_mul(1 << 20))?;
            if removed > 0 {
                let reach = store
                    .versions
                    .list_batches()?
                    .first()
                    .map(|(_, name)| name.clone())
                    .unwrap_or_default();
                log::warn!(
                    "{}: versions were over the size limit (max_versions_mb = {mb}): removed the {removed} oldest time folders ({freed} bytes) although younger than {days} days; restores now reach back to {reach}",
                    super::error::show(store.versions.path())
                );
            }
            n += removed;
        }
        Ok(n)
    }
}

fn open_src(src: &Path) -> Result<DirHandle, SetupError> {
    DirHandle::open_root(src).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => SetupError::SrcMissing(src.to_path_buf()),
        io::ErrorKind::NotADirectory => SetupError::SrcNotDir(src.to_path_buf()),
        _ => SetupError::SrcUnreadable(src.to_path_buf(), reason(&e)),
    })
}

fn is_reserved_src(rel: &Path) -> bool {
    is_reserved(rel)
}

/// `lstat` of a relative path, walking folders without following links.
fn stat_at(root: &DirHandle, rel: &Path) -> io::Result<Option<Meta>> {
    let Some(name) = rel.file_name() else {
        return Ok(None);
    };
    let parent = match root.open_path(rel.parent().unwrap_or(Path::new(""))) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(_) => return Ok(None),
    };
    parent.stat_opt(name)
}

/// The longest prefix of `rel` that DST holds as a real folder.
fn nearest_dst_ancestor(dst: &DirHandle, rel: &Path) -> Option<PathBuf> {
    let mut cur = PathBuf::new();
    let mut handle = dst.try_clone().ok()?;
    for c in rel.components() {
        match handle.open_dir(c.as_os_str()) {
            Ok(h) => {
                handle = h;
                cur.push(c);
            }
            Err(_) => return Some(cur),
        }
    }
    Some(cur)
}

impl Ctx<'_> {
    /// Reconciles one entry without going into it when it is a folder both
    /// sides hold (only its own metadata): a change event on a folder says
    /// nothing about its content.
    pub(crate) fn sync_entry_shallow(&self, src: &DirHandle, dst: &DirHandle, rel: &Path) {
        let Some(name) = rel.file_name() else { return };
        let both_dirs = matches!(
            (src.stat_opt(name), dst.stat_opt(name)),
            (Ok(Some(s)), Ok(Some(d))) if s.kind == Kind::Dir && d.kind == Kind::Dir
        );
        if !both_dirs {
            return self.sync_entry(src, Some(dst), rel, true);
        }
        if self.filter.ignores(rel, true) {
            return;
        }
        if let (Ok(s), Ok(d)) = (src.open_dir(name), dst.open_dir(name))
            && let Ok(sm) = s.meta()
        {
            self.fix_dir_meta(Some(&d), rel, &sm);
        }
    }
}
