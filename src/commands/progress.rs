//! progress: the command line's view of a reconcile. Turns engine events
//! into log lines, a progress bar (only on a terminal, never with `-q`), the
//! dry run's list of actions, and the one-line summary.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use mirrortray::engine::error::{EntryError, show};
use mirrortray::engine::event::{Event, Sink, Summary};

use crate::cli::Global;

const UNCOUNTED: u64 = u64::MAX;

pub struct CliSink {
    src: PathBuf,
    dst: PathBuf,
    bar: Option<ProgressBar>,
    verbose: u8,
    dry_run: bool,
    scanned: AtomicU64,
    files: AtomicU64,
    /// Files to copy, counted before the pass ([`UNCOUNTED`]: not counted).
    total: AtomicU64,
    last_draw: Mutex<Instant>,
    pub failures: Mutex<Vec<EntryError>>,
}

impl CliSink {
    pub fn new(g: &Global, src: &Path, dst: &Path, dry_run: bool) -> CliSink {
        let show_bar = !g.quiet
            && !dry_run
            && std::io::stdout().is_terminal()
            && std::io::stderr().is_terminal();
        let bar = show_bar.then(|| {
            let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(10));
            let style = ProgressStyle::with_template(
                "{spinner} {msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            b.set_style(style);
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        CliSink {
            src: src.to_path_buf(),
            dst: dst.to_path_buf(),
            bar,
            verbose: g.verbose,
            dry_run,
            scanned: AtomicU64::new(0),
            files: AtomicU64::new(0),
            total: AtomicU64::new(UNCOUNTED),
            last_draw: Mutex::new(Instant::now()),
            failures: Mutex::new(Vec::new()),
        }
    }

    pub fn shows_bar(&self) -> bool {
        self.bar.is_some()
    }

    /// What the pass will copy, counted before it: the bar's total.
    pub fn set_total(&self, files: u64, bytes: u64) {
        self.total.store(files, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.set_length(bytes);
        }
    }

    /// Runs `f` with the bar out of the way, so a line does not tear it.
    fn say(&self, f: impl FnOnce()) {
        match &self.bar {
            Some(b) => b.suspend(f),
            None => f(),
        }
    }

    fn redraw(&self) {
        let Some(b) = &self.bar else { return };
        let Ok(mut last) = self.last_draw.lock() else {
            return;
        };
        if last.elapsed() < Duration::from_millis(100) {
            return;
        }
        *last = Instant::now();
        let files = self.files.load(Ordering::Relaxed);
        b.set_message(match self.total.load(Ordering::Relaxed) {
            UNCOUNTED => format!(
                "scanned {}, copied {files} files",
                self.scanned.load(Ordering::Relaxed)
            ),
            total => format!("copied {files} of {} files", total.max(files)),
        });
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }

    fn line(&self, verb: &str, path: &Path, note: String) {
        if self.dry_run {
            self.say(|| println!("{verb:<8} {}{note}", show(path)));
        } else if self.verbose > 0 {
            self.say(|| log::info!("{verb} {}{note}", show(path)));
        }
    }
}

impl Sink for CliSink {
    fn event(&self, e: Event) {
        match e {
            Event::Scanned(n) => {
                self.scanned.fetch_add(n, Ordering::Relaxed);
            }
            Event::Found { bytes, .. } => {
                // Counted before the pass, the total is known; without,
                // it grows as work is found.
                if let (Some(b), UNCOUNTED) = (&self.bar, self.total.load(Ordering::Relaxed)) {
                    b.inc_length(bytes);
                }
            }
            Event::Copied { path, bytes } => {
                self.files.fetch_add(1, Ordering::Relaxed);
                if let Some(b) = &self.bar {
                    b.inc(bytes);
                }
                self.line("copy", &path, format!(" ({})", HumanBytes(bytes)));
            }
            Event::DirCreated { path } => self.line("mkdir", &path, "/".into()),
            Event::MetaUpdated { path } => {
                self.line("update", &path, " (permissions or times)".into())
            }
            Event::Versioned { path, reason } => self.line(
                "version",
                &path,
                format!(" ({}; kept in versions)", reason.as_str()),
            ),
            Event::Deleted { path } => self.line("delete", &path, String::new()),
            Event::Renamed { from, to } => self.line("rename", &from, format!(" -> {}", show(&to))),
            Event::Skipped { path, why, notable } => {
                let p = self.src.join(&path);
                let level = if notable {
                    log::Level::Warn
                } else {
                    log::Level::Info
                };
                self.say(|| log::log!(level, "{}: skipped: {why}", show(&p)));
            }
            Event::Failed(err) => {
                self.say(|| log::error!("{err}"));
                if let Ok(mut f) = self.failures.lock() {
                    f.push(err);
                }
            }
            Event::MassDeleteHeld { count, total } => {
                let dst = show(&self.dst);
                self.say(|| {
                    log::error!(
                        "{dst}: held {count} deletions of {total} entries (more than half the backup): nothing was deleted. If the source really lost those files, run again with --allow-mass-delete."
                    )
                });
            }
            Event::Pruned {
                count,
                bytes,
                reach,
            } => {
                let text = mirrortray::engine::versions::Pruned {
                    count,
                    bytes,
                    reach,
                }
                .describe(&self.dst);
                self.say(|| log::warn!("{text}"));
            }
            // Only a watcher is told this (a one-shot run reports a failure).
            Event::Busy { .. } | Event::JustMade { .. } | Event::Again { .. } => {}
        }
        self.redraw();
    }
}

/// The one line at the end of a run.
pub fn summary_line(s: &Summary, elapsed: Duration, dry_run: bool) -> String {
    let verb = if dry_run { "would copy" } else { "copied" };
    let mut out = format!(
        "{verb} {} files ({}), {} folders, versioned {}, deleted {}, skipped {}, failed {}",
        s.copied,
        HumanBytes(s.bytes),
        s.dirs,
        s.versioned,
        s.deleted,
        s.skipped,
        s.failed
    );
    if s.meta > 0 {
        out.push_str(&format!(", updated {}", s.meta));
    }
    if let Some((h, _)) = s.held_deletions {
        out.push_str(&format!(", held {h} deletions"));
    }
    if s.interrupted {
        out.push_str(", interrupted");
    }
    out.push_str(&format!(" in {:.2} s", elapsed.as_secs_f64()));
    if dry_run {
        out.push_str(" (dry run: nothing was changed)");
    }
    out
}
