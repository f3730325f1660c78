//! restore: `mirrortray restore PATH [--at TIME] [--to DIR] [--dry-run]`.
//!
//! Brings back a file or a folder tree as the mirror held it at TIME
//! (default: as it was just before its last change, every batch of that
//! change gathered: see `History::last_change`).
//!
//! Into SRC (the default), the content it replaces is made safe first:
//! - when no other process holds the backup's lock, this command takes it,
//!   backs up PATH (so the backup holds exactly what SRC has), restores,
//!   and backs up PATH again: the restored files reach the backup, and what
//!   they replaced is kept as one version each;
//! - when a watcher holds the lock, it mirrors the restored files like any
//!   change (one version each of what they replaced); this command only
//!   writes into SRC, after checking that what it replaces is already in
//!   the backup (waiting a little for the watcher to catch up).
//!
//! Either way the restore can be undone: restoring PATH `--at` the time the
//! restore started brings back what it replaced.
//!
//! With `--to DIR`, the tree is written to `DIR/<name>` and SRC is never
//! touched; DIR may not be inside the backup folder.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::HumanBytes;
use jiff::Timestamp;

use mirrortray::engine::batch::Batch;
use mirrortray::engine::error::EntryError;
use mirrortray::engine::error::{SetupError, show};
use mirrortray::engine::event::{Control, Event};
use mirrortray::engine::filter::RESERVED;
use mirrortray::engine::fsops::Kind;
use mirrortray::engine::history::{History, Origin, Tree};
use mirrortray::engine::mirror::{Mirror, Options};
use mirrortray::engine::restore::{self, Action, Dest, Outcome, Plan, Step};

use super::versions::{Located, both, locate, parse_time, quote, utc};
use crate::cli::Global;
use crate::exit_code::ExitCode;

/// Entries listed before "... and N more" (all with -v or --dry-run).
const SHOWN: usize = 20;
/// How long to wait for a running watcher to back up what will be replaced.
const WATCHER_WAIT: Duration = Duration::from_secs(10);

/// Ends [`perform`] with a refusal: nothing was changed (exit 2).
macro_rules! bail {
    ($($arg:tt)*) => {{
        return Err(format!($($arg)*));
    }};
}

/// What a restore says as it goes: the command prints it, the page
/// collects it.
pub trait Report {
    /// The restore is decided: what, as of when, where to.
    fn begin(&mut self, b: &Begin);
    /// Something the user must know (e.g. what the chosen time lacks).
    fn warn(&mut self, text: String);
    /// One entry written, or failed.
    fn step(&mut self, s: &Step, err: Option<&EntryError>);
}

pub struct Begin<'a> {
    /// The path in SRC.
    pub path: &'a Path,
    pub at: Timestamp,
    /// `--to`: the folder written instead of SRC.
    pub into: Option<PathBuf>,
    /// The watcher that holds the backup, if one does.
    pub watcher: Option<&'a str>,
}

/// What a restore did (or, in a dry run, would do).
pub struct Done {
    pub loc: Located,
    pub at: Timestamp,
    pub tree: Tree,
    pub plan: Plan,
    pub outcome: Outcome,
    /// When writing began: `restore --at` this time undoes it.
    pub started: Timestamp,
    /// The time folder keeping what it replaced (when this process backed up).
    pub kept_at: Option<String>,
    pub versions_path: PathBuf,
    pub watcher: Option<String>,
    pub beside: bool,
    /// `--to`: the path written (`DIR/<name>`).
    pub into: Option<PathBuf>,
}

pub fn run(
    g: &Global,
    path: &Path,
    at: Option<&str>,
    to: Option<&Path>,
    dry_run: bool,
) -> ExitCode {
    let mut printer = Printer {
        quiet: g.quiet,
        all: dry_run || g.verbose > 0,
        dry_run,
        shown: 0,
    };
    let done = match perform(g, path, at, to, dry_run, &mut printer) {
        Ok(d) => d,
        Err(e) => {
            super::fail(e);
            return ExitCode::Error;
        }
    };
    let Done {
        loc,
        tree,
        plan,
        outcome,
        started,
        kept_at,
        versions_path,
        watcher,
        beside,
        ..
    } = done;
    if dry_run {
        if !g.quiet {
            print_left_alone(&plan, &tree, beside, true);
            let dirs = plan
                .steps
                .iter()
                .filter(|s| s.held.meta.kind == Kind::Dir && s.action == Action::Create)
                .count();
            let files = plan.count(&Action::Create) + plan.count(&Action::Replace) - dirs;
            println!(
                "Would restore {} ({}), make {}, refuse {}; {} unchanged. Nothing was changed (dry run).",
                plural(files, "file"),
                HumanBytes(plan.bytes()),
                plural(dirs, "folder"),
                plan.refused(),
                plan.count(&Action::Unchanged)
            );
        }
        return ExitCode::Success;
    }
    if !g.quiet && !printer.all && printer.shown > SHOWN {
        println!(
            "  ... and {} more (-v lists them all)",
            printer.shown - SHOWN
        );
    }
    if !g.quiet {
        print_left_alone(&plan, &tree, beside, false);
        let written = (outcome.created + outcome.replaced) as usize;
        println!(
            "Restored {} ({}): {} new, {} replaced, {} made, {} unchanged{}.",
            plural(written, "file"),
            HumanBytes(outcome.bytes),
            outcome.created,
            outcome.replaced,
            plural(outcome.dirs as usize, "folder"),
            outcome.unchanged,
            if outcome.failed.is_empty() {
                String::new()
            } else {
                format!(", {} failed", outcome.failed.len())
            }
        );
        if !beside && outcome.replaced > 0 {
            match (&kept_at, &watcher) {
                (Some(s), _) => println!(
                    "What it replaced is kept in {}.",
                    show(&versions_path.join(s))
                ),
                (None, Some(_)) => println!(
                    "What it replaced is kept as a version once the watcher has backed it up."
                ),
                _ => {}
            }
            println!(
                "To undo: mirrortray restore {} --at {}",
                quote(&loc.src_path()),
                utc(started)
            );
        }
    }
    if outcome.failed.is_empty() {
        ExitCode::Success
    } else {
        ExitCode::Partial
    }
}

/// The command's [`Report`]: prints each step as it is written.
struct Printer {
    quiet: bool,
    /// Every step, not only the first [`SHOWN`].
    all: bool,
    dry_run: bool,
    shown: usize,
}

impl Report for Printer {
    fn begin(&mut self, b: &Begin) {
        if self.quiet {
            return;
        }
        let verb = if self.dry_run {
            "Would restore"
        } else {
            "Restoring"
        };
        println!("{verb} {} as it was at {}", show(b.path), both(b.at));
        if let Some(into) = &b.into {
            println!("  into {}", show(into));
        }
        if let Some(h) = b.watcher {
            println!(
                "  a watcher holds the backup ({h}): it copies the restored files into the backup and keeps what they replace as versions"
            );
        }
    }

    fn warn(&mut self, text: String) {
        log::warn!("{text}");
    }

    fn step(&mut self, s: &Step, err: Option<&EntryError>) {
        if let Some(e) = err {
            super::fail(e);
        } else if !self.quiet {
            print_step(s, &mut self.shown, self.all);
        }
    }
}

/// Restores PATH as it was at `at` (default: just before its last change),
/// into SRC or `to`; an error says why nothing was done.
pub fn perform(
    g: &Global,
    path: &Path,
    at: Option<&str>,
    to: Option<&Path>,
    dry_run: bool,
    report: &mut dyn Report,
) -> Result<Done, String> {
    let loc = match locate(g, path) {
        Ok(l) => l,
        Err(e) => bail!("{e}"),
    };
    let asked = match at.map(parse_time).transpose() {
        Ok(t) => t,
        Err(e) => bail!("{e}"),
    };
    let now = Timestamp::now();
    if let Some(t) = asked
        && t > now
    {
        bail!(
            "the time {} is in the future (it is now {}): give a past time",
            both(t),
            both(now)
        );
    }
    // --to: checked before anything is touched.
    let beside = match to {
        Some(dir) => match check_to(dir, &loc) {
            Ok(b) => Some(b),
            Err(e) => bail!("{e}"),
        },
        None => None,
    };

    if beside.is_none() && !loc.spec.versions {
        bail!(
            "versions are off for the pair {} -> {}: what a restore replaces in the source could not be kept, so it could not be undone. Restore beside it with --to DIR",
            show(&loc.src),
            show(&loc.dst)
        );
    }
    // Into SRC: this command backs up around the restore, unless a watcher
    // holds the backup (then the watcher does).
    let mut mirror = None;
    let mut watcher = None;
    if beside.is_none() && !dry_run {
        let opts = Options {
            command: "restore".into(),
            ..Options::default()
        };
        match Mirror::open(&loc.spec, &opts) {
            Ok(m) => mirror = Some(m),
            Err(SetupError::Locked { holder, .. }) => watcher = Some(holder),
            Err(e) => bail!("{e} (To restore beside it instead, use --to DIR.)"),
        }
    }
    // Whatever would refuse the restore refuses it before anything is
    // written (exit 2 promises nothing was done). Only "no versions yet"
    // waits for the back-up below, which may keep the first one.
    let history = match History::open(&loc.dst) {
        Ok(h) => h,
        Err(e) => bail!("{e}"),
    };
    let explicit = asked.or(loc.in_version.as_ref().map(|s| s.time));
    match resolve(&history, &loc, explicit) {
        Err(Unresolved::NoVersions(_)) if mirror.is_some() => {}
        Err(Unresolved::NoVersions(e) | Unresolved::Other(e)) => bail!("{e}"),
        Ok(_) => {}
    }
    if let Some(m) = &mirror
        && let Err(e) = back_up(m, &loc.rel)
    {
        bail!("{e}");
    }
    let history = match History::open(&loc.dst) {
        Ok(h) => h,
        Err(e) => bail!("{e}"),
    };
    let shown_path = quote(&loc.src_path());
    let (t, tree) = match resolve(&history, &loc, explicit) {
        Ok(r) => r,
        Err(Unresolved::NoVersions(e) | Unresolved::Other(e)) => bail!("{e}"),
    };

    if let Some((dir, _)) = &beside
        && !dry_run
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        bail!(
            "{}: cannot create the folder: {}",
            show(dir),
            mirrortray::engine::error::reason(&e)
        );
    }
    let dest = match &beside {
        Some((dir, name)) => Dest::beside(dir, name),
        None => Dest::source(&loc.src, &tree),
    };
    let dest = match dest {
        Ok(d) => d,
        Err(e) => bail!(
            "{}: cannot open: {}",
            show(&beside.as_ref().map_or(loc.src.clone(), |b| b.0.clone())),
            mirrortray::engine::error::reason(&e)
        ),
    };
    let mut plan = restore::plan(&history, &tree, &dest);
    if beside.is_none() && !dry_run {
        let wait = if watcher.is_some() {
            WATCHER_WAIT
        } else {
            Duration::ZERO
        };
        keep_unsafe_out(&mut plan, &history, &loc, wait);
    }

    report.begin(&Begin {
        path: &loc.src_path(),
        at: t,
        into: beside.as_ref().map(|_| dest.top()),
        watcher: watcher.as_deref(),
    });
    // A time inside a burst (a folder being deleted batch by batch): say
    // what the tree lacks, and the time that has it all.
    match history.missed_before(&tree) {
        Ok(Some((s, n))) => report.warn(format!(
            "{} was being changed at {}: {} it held a moment earlier {} not part of this restore (kept at {}). To bring back everything it held, restore --at {}",
            shown_path,
            both(t),
            if n == 1 {
                "1 entry".to_string()
            } else {
                format!("{n} entries")
            },
            if n == 1 { "is" } else { "are" },
            both(s.time),
            s.name
        )),
        Ok(None) => {}
        Err(e) => report.warn(e.to_string()),
    }
    if let Some(first) = tree.thinned.keys().next() {
        const WHY: &str = "thinned as versions aged (one is kept per hour, day or week)";
        report.warn(if tree.thinned.len() == 1 && *first == loc.rel {
            format!(
                "{shown_path}: the version it had at {} was {WHY}: the nearest version kept after that time comes back instead",
                both(t)
            )
        } else {
            format!(
                "{shown_path}: the versions {} entries in it had at {} were {WHY}: each comes back as the nearest version kept after that time (for example {})",
                tree.thinned.len(),
                both(t),
                quote(&loc.src.join(first))
            )
        });
    }
    let started = Timestamp::now();
    let mut kept_at = None;
    let outcome = if dry_run {
        for s in &plan.steps {
            if s.action != Action::Unchanged {
                report.step(s, None);
            }
        }
        Outcome::default()
    } else {
        let outcome = restore::apply(&history, &tree, &plan, &dest, &mut |s, err| {
            report.step(s, err)
        });
        if let Some(m) = &mirror {
            match back_up(m, &loc.rel) {
                Ok(()) => kept_at = newest_since(&loc, started),
                Err(e) => report.warn(format!(
                    "{e} (the restored files are in the source; the next backup copies them)"
                )),
            }
        }
        outcome
    };
    drop(mirror);
    Ok(Done {
        loc,
        at: t,
        tree,
        plan,
        outcome,
        started,
        kept_at,
        versions_path: history.versions_path(),
        watcher,
        beside: beside.is_some(),
        into: beside.as_ref().map(|_| dest.top()),
    })
}

/// Why there is nothing to restore.
enum Unresolved {
    /// The path has never changed since it was backed up (the back-up
    /// before a restore into SRC may keep its first version).
    NoVersions(String),
    Other(String),
}

/// The time to restore PATH as of (`explicit`, or just before its last
/// change) and the tree the backup held then; or why there is none.
fn resolve(
    history: &History,
    loc: &Located,
    explicit: Option<Timestamp>,
) -> Result<(Timestamp, Tree), Unresolved> {
    macro_rules! other {
        ($($arg:tt)*) => {
            return Err(Unresolved::Other(format!($($arg)*)))
        };
    }
    let shown_path = quote(&loc.src_path());
    let t = match explicit {
        Some(t) => t,
        None => match history.last_change(&loc.rel) {
            Ok(Some(s)) => s.time,
            Ok(None) if matches!(history.current(&loc.rel), Ok(None)) => other!(
                "unknown path {}: the backup {} has no version of it and does not hold it: nothing to restore",
                show(&loc.src_path()),
                show(&loc.dst)
            ),
            Ok(None) => {
                return Err(Unresolved::NoVersions(format!(
                    "no versions of {} are kept (it has not changed since it was backed up): nothing to restore",
                    show(&loc.src_path())
                )));
            }
            Err(e) => other!("{e}"),
        },
    };
    if let (Some(pruned), Some(from)) = (history.pruned_up_to(), history.complete_from())
        && t <= pruned
    {
        let oldest = match history.tree_at(&loc.rel, from) {
            Ok(tree) if !tree.entries.is_empty() => Some(from),
            Ok(tree) => tree.oldest.filter(|o| *o > from),
            Err(_) => Some(from),
        };
        match oldest {
            Some(o) => other!(
                "{} is older than what is kept: versions up to {} were pruned. The oldest time it can restore {} is {}",
                both(t),
                both(pruned),
                shown_path,
                both(o)
            ),
            None => other!(
                "{} is older than what is kept (versions up to {} were pruned), and nothing is kept of {} since",
                both(t),
                both(pruned),
                shown_path
            ),
        }
    }
    let tree = match history.tree_at(&loc.rel, t) {
        Ok(tree) => tree,
        Err(e) => other!("{e}"),
    };
    if tree.entries.is_empty() {
        // When did the path first hold anything the backup kept?
        let ever = history
            .tree_at(&loc.rel, Timestamp::MIN)
            .ok()
            .and_then(|all| all.oldest);
        match ever {
            Some(o) if o > t => other!(
                "{} did not exist yet at {}, as far as the backup knows: the oldest time it can restore it is {}",
                shown_path,
                both(t),
                both(o)
            ),
            Some(_) => other!(
                "the backup holds nothing at {} for {}: it had been deleted, or renamed or moved away (a rename is mirrored as a rename, and keeps no version under the old name). See what is kept with `mirrortray versions {}`",
                shown_path,
                both(t),
                quote(loc.src_path().parent().unwrap_or(&loc.src))
            ),
            None => other!(
                "nothing is kept of {}: the backup has no version of it and does not hold it",
                shown_path
            ),
        }
    }
    Ok((t, tree))
}

/// Reconciles PATH (deeply) so the backup holds exactly what SRC has.
fn back_up(m: &Mirror, rel: &Path) -> Result<(), String> {
    let ctl = Control::new();
    let sink = |e: Event| {
        if let Event::Failed(err) = e {
            log::warn!("{err}");
        }
    };
    let applied = if rel.as_os_str().is_empty() {
        m.reconcile(&ctl, &sink, false)
    } else {
        m.apply(&Batch::deep(rel), &ctl, &sink)
    };
    let summary = applied.map_err(|e| e.to_string())?.summary;
    if let Some((held, _)) = summary.held_deletions {
        log::warn!(
            "{}: the backup held {held} deletions (more than half of it); run `mirrortray sync --allow-mass-delete` if they are real",
            show(m.dst())
        );
    }
    Ok(())
}

/// The time folder made by the backup after the restore, if any.
fn newest_since(loc: &Located, started: Timestamp) -> Option<String> {
    let h = History::open(&loc.dst).ok()?;
    h.stamps()
        .iter()
        .rev()
        .take_while(|s| s.time >= started)
        .last()
        .map(|s| s.name.clone())
}

/// Refuses to replace what the backup does not hold yet: each entry to be
/// replaced in SRC must be in the backup as it is in SRC (same kind, size
/// and time). With a watcher, waits up to `wait` for it to catch up.
fn keep_unsafe_out(plan: &mut Plan, history: &History, loc: &Located, wait: Duration) {
    let deadline = Instant::now() + wait;
    loop {
        let mut pending = false;
        for s in plan.steps.iter_mut() {
            if s.action != Action::Replace {
                continue;
            }
            let in_src = std::fs::symlink_metadata(loc.src.join(&s.to)).ok();
            let in_dst = history.current(&s.to).ok().flatten();
            let same = match (in_src, in_dst) {
                (Some(a), Some(b)) => {
                    use std::os::unix::fs::MetadataExt;
                    a.len() == b.size
                        && a.mtime() == b.mtime.sec
                        && a.mtime_nsec() == i64::from(b.mtime.nsec)
                        && a.file_type().is_symlink() == (b.kind == Kind::Symlink)
                }
                _ => false,
            };
            if !same {
                pending = true;
                if Instant::now() >= deadline {
                    s.action = Action::Refuse(
                        "its current content is not in the backup yet, so replacing it could lose it; try again once it is backed up".into(),
                    );
                }
            }
        }
        if !pending || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `--to DIR`: made absolute, outside the backup folder, and `DIR/<name>`
/// free.
fn check_to(dir: &Path, loc: &Located) -> Result<(PathBuf, std::ffi::OsString), String> {
    let abs = std::path::absolute(dir).map_err(|e| format!("{}: {e}", show(dir)))?;
    let real = mirrortray::engine::paths::resolve_dst(&abs).map_err(|e| e.to_string())?;
    let dst = std::fs::canonicalize(&loc.dst).unwrap_or_else(|_| loc.dst.clone());
    if real.starts_with(&dst) {
        let what = if real.starts_with(dst.join(RESERVED)) {
            "mirrortray's own folder in the backup"
        } else {
            "the backup folder"
        };
        return Err(format!(
            "{} is inside {what} {}: the next backup would move what is restored there into the versions. Choose a folder outside it",
            show(&abs),
            show(&dst)
        ));
    }
    let name = match loc.rel.file_name() {
        Some(n) => n.to_os_string(),
        None => loc
            .src
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| "restored".into()),
    };
    let target = real.join(&name);
    if std::fs::symlink_metadata(&target).is_ok() {
        return Err(format!(
            "{} already exists: restore into another folder, or move it away first",
            show(&target)
        ));
    }
    Ok((real, name))
}

fn print_step(s: &Step, shown: &mut usize, all: bool) {
    *shown += 1;
    if !all && *shown > SHOWN {
        return;
    }
    let (verb, note) = match &s.action {
        Action::Create if s.held.meta.kind == Kind::Dir => ("folder", String::new()),
        Action::Create => ("new", describe(s)),
        Action::Replace => ("replace", describe(s)),
        Action::Unchanged => ("same", String::new()),
        Action::Refuse(why) => ("refuse", format!("  ({why})")),
    };
    let mut p = show(&s.to);
    if s.held.meta.kind == Kind::Dir {
        p.push('/');
    }
    println!("  {verb:<8} {p}{note}");
}

fn describe(s: &Step) -> String {
    let from = match &s.held.origin {
        Origin::Version(st) => format!("version kept at {}", utc(st.time)),
        Origin::Current => "as the backup holds it now".into(),
        Origin::Recorded(a) => match &a.stamp {
            Some(st) => format!("recorded, kept at {}", utc(st.time)),
            None => "recorded: the backup drive cannot hold it".into(),
        },
    };
    match s.held.meta.kind {
        Kind::Symlink => format!("  (symlink, {from})"),
        _ => format!("  ({}, {from})", HumanBytes(s.held.meta.size)),
    }
}

fn print_left_alone(plan: &Plan, tree: &Tree, beside: bool, dry_run: bool) {
    if beside {
        if !tree.later.is_empty() {
            println!(
                "Not included: {} made after that time (they are in the source and the backup as they are now).",
                plural(tree.later.len(), "file")
            );
        }
        return;
    }
    if plan.left_alone.is_empty() {
        return;
    }
    let verb = if dry_run { "Would leave" } else { "Left" };
    println!(
        "{verb} alone {} made after that time (a restore never deletes):",
        plural(plan.left_alone.len(), "file")
    );
    for p in plan.left_alone.iter().take(10) {
        println!("  {}", show(p));
    }
    if plan.left_alone.len() > 10 {
        println!("  ... and {} more", plan.left_alone.len() - 10);
    }
}

/// "1 file", "2 files".
fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
