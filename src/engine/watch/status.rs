//! status: one pair's status, derived from its outstanding work, and the
//! words for it. The tray's lines, the popups and `mirrortray status` all
//! read this one model; the words a person reads about a pair are made here
//! once (the tray adds only names, times and `~`).
//!
//! A pair is "Up to date" only when nothing is outstanding: no problem of
//! the pair as a whole (`State::Error`), no failing path, nothing pending,
//! not paused, not starting.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use jiff::Timestamp;

use crate::engine::error::show;
pub use crate::engine::words::{bytes_text, count_text};

/// What a pair is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Starting,
    /// Nothing pending (failing paths are in [`PairStatus::failures`]).
    Idle,
    /// Applying changes; `pending` waiting.
    Busy {
        pending: usize,
    },
    Paused,
    /// Working, but not as well as it should (watch limit: polling).
    Degraded(String),
    /// Not mirroring (source missing, backup folder unusable, held deletions).
    Error(String),
}

impl State {
    /// A word for scripts (`mirrortray status --json`).
    pub fn key(&self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Idle => "idle",
            State::Busy { .. } => "busy",
            State::Paused => "paused",
            State::Degraded(_) => "degraded",
            State::Error(_) => "error",
        }
    }
}

/// A path that failed and is being retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failing {
    /// The user's file (in SRC), not the backup's copy.
    pub path: PathBuf,
    /// What failed and why, in words ("cannot copy: no space left on the
    /// device").
    pub reason: String,
    /// When it first failed (it may have been retried since).
    pub since: Timestamp,
}

/// At most this many failing paths travel in a status (the count is exact).
pub const FAILURES_SHOWN: usize = 50;

/// One pair's status, sent whenever it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairStatus {
    pub index: usize,
    pub src: PathBuf,
    pub dst: PathBuf,
    pub state: State,
    /// Last time the pair was known to be a complete mirror.
    pub last_ok: Option<Timestamp>,
    /// Last time a full pass found DST equal to SRC (or made it so).
    pub verified_at: Option<Timestamp>,
    /// How many paths are failing now (being retried).
    pub failing: usize,
    /// The oldest of them (at most [`FAILURES_SHOWN`]), oldest first.
    pub failures: Vec<Failing>,
    /// How far the work in hand has got (while busy).
    pub progress: Option<Progress>,
    /// Files another program is writing: copied once closed or quiet (at
    /// most [`FAILURES_SHOWN`]; counted in `Busy`'s pending).
    pub being_written: Vec<PathBuf>,
    /// Files and symlinks copied per hour (whole UTC hours since the
    /// epoch) over the last 24 hours that this instance ran, oldest first:
    /// the activity chart's.
    pub copied_per_hour: Vec<(i64, u64)>,
}

/// How far a pair's current run of work has got: everything copied since it
/// was last idle. A whole-pair pass counts its work before it copies (what
/// SRC holds that DST lacks or holds otherwise), so it has a total; live
/// changes have none beyond what is waiting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Files and symlinks copied in this run.
    pub files_done: u64,
    pub bytes_done: u64,
    /// Files this run has to copy, the ones done included (counted before
    /// a whole-pair pass).
    pub files_total: Option<u64>,
    pub bytes_total: Option<u64>,
    /// A whole-pair pass is counting its work.
    pub counting: bool,
}

impl Progress {
    /// Bytes still to copy, when the run has a total.
    pub fn bytes_left(&self) -> Option<u64> {
        self.bytes_total.map(|t| t.saturating_sub(self.bytes_done))
    }

    /// Several pairs' runs as one (the tray's first line).
    pub fn sum(all: impl IntoIterator<Item = Progress>) -> Progress {
        let mut s = Progress {
            files_total: Some(0),
            bytes_total: Some(0),
            ..Progress::default()
        };
        for p in all {
            s.files_done += p.files_done;
            s.bytes_done += p.bytes_done;
            s.files_total = s.files_total.zip(p.files_total).map(|(a, b)| a + b);
            s.bytes_total = s.bytes_total.zip(p.bytes_total).map(|(a, b)| a + b);
            s.counting |= p.counting;
        }
        s
    }
}

impl PairStatus {
    /// Nothing outstanding: DST is an exact mirror as far as the pair knows.
    pub fn up_to_date(&self) -> bool {
        self.state == State::Idle && self.failing == 0
    }

    /// The pair's state in a few words, the reason first when something is
    /// wrong ("2 files can't be backed up: permission denied").
    pub fn headline(&self) -> String {
        match &self.state {
            State::Error(text) => text.clone(),
            _ if self.failing > 0 => failing_text(self.failing, &self.failures),
            State::Paused => "Paused".into(),
            State::Busy { pending } => busy_text(*pending, self.progress.as_ref()),
            State::Starting => "Starting…".into(),
            State::Degraded(text) => capital(text),
            State::Idle => "Up to date".into(),
        }
    }
}

/// A pair's offsite copy, as the status shows it (`watch::offsite` keeps
/// it; the tray, the page and `mirrortray status` show [`line`](Self::line)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsiteStatus {
    pub index: usize,
    /// As shown to people (a password in its URL hidden).
    pub repository: String,
    /// The pair's latest snapshot, when one is known.
    pub last_copy: Option<Timestamp>,
    /// A push running, since.
    pub pushing: Option<Timestamp>,
    /// How far it has got: bytes of the backup folder looked at, and their
    /// total once counted.
    pub progress: Option<(u64, Option<u64>)>,
    pub failed: Option<OffsiteFailure>,
    /// Changes in no snapshot since this time, for longer than the
    /// config's `overdue_hours`.
    pub overdue_since: Option<Timestamp>,
    /// Changes wait for the next push.
    pub waiting: bool,
}

/// The last push failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsiteFailure {
    pub at: Timestamp,
    /// Why, in words (without the repository).
    pub reason: String,
    pub next_try: Timestamp,
}

impl OffsiteStatus {
    /// Nothing wrong with the offsite copy (it may be waiting for changes
    /// to settle, or pushing).
    pub fn ok(&self) -> bool {
        self.failed.is_none() && self.overdue_since.is_none()
    }

    /// "Offsite: last copy 14:02", "Offsite: failed at 14:05: unreachable
    /// …, next try 14:09", times in `now`'s zone.
    pub fn line(&self, now: &jiff::ZonedDateTime) -> String {
        let t = |t: Timestamp| crate::engine::words::clock(t, now);
        let last = self.last_copy.map(|l| format!("last copy {}", t(l)));
        if let Some(f) = &self.failed {
            let mut s = format!(
                "Offsite: failed at {}: {}, next try {}",
                t(f.at),
                f.reason.trim_end_matches('.'),
                t(f.next_try)
            );
            if let Some(o) = self.overdue_since {
                s.push_str(&format!("; changes since {} not copied (overdue)", t(o)));
            }
            return s;
        }
        let last_paren = last.as_ref().map(|l| format!(" ({l})")).unwrap_or_default();
        if self.pushing.is_some() {
            let how_far = match self.progress {
                Some((done, Some(total))) if total > 0 => {
                    format!(" {} of {}", bytes_text(done.min(total)), bytes_text(total))
                }
                _ => String::new(),
            };
            return format!("Offsite: copying…{how_far}{last_paren}");
        }
        if let Some(o) = self.overdue_since {
            return format!(
                "Offsite: overdue: changes since {} not copied{last_paren}",
                t(o)
            );
        }
        match last {
            Some(l) => format!("Offsite: {l}"),
            None if self.waiting => {
                "Offsite: no copy yet, one follows once the changes settle".into()
            }
            None => "Offsite: no copy yet".into(),
        }
    }
}

/// "1 file can't be backed up: no space left on the device"; with several
/// reasons, the most common one and how many others.
pub fn failing_text(count: usize, failures: &[Failing]) -> String {
    let what = match count {
        1 => "1 file can't be backed up".to_string(),
        n => format!("{n} files can't be backed up"),
    };
    // Grouped by the cause without its details ("backup disk full", not
    // "backup disk full — 1.6 MB free, needs 3 MB"); the details are shown
    // when every file of the group has the same.
    let mut by_reason: BTreeMap<&str, (usize, BTreeSet<&str>)> = BTreeMap::new();
    for f in failures {
        let full = cause(&f.reason);
        let key = full.split_once(" — ").map_or(full, |(k, _)| k);
        let group = by_reason.entry(key).or_default();
        group.0 += 1;
        group.1.insert(full);
    }
    let Some((key, (_, fulls))) = by_reason
        .iter()
        .max_by_key(|(key, (n, _))| (*n, std::cmp::Reverse(**key)))
    else {
        return what;
    };
    let top = match fulls.iter().collect::<Vec<_>>()[..] {
        [one] => one,
        _ => key,
    };
    match by_reason.len() {
        1 => format!("{what}: {top}"),
        2 => format!("{what}: {top}, and 1 other reason"),
        n => format!("{what}: {top}, and {} other reasons", n - 1),
    }
}

/// The cause in a reason: "cannot copy: no space left" → "no space left".
fn cause(reason: &str) -> &str {
    reason.rsplit_once(": ").map_or(reason, |(_, c)| c)
}

/// One failing path as a line: the user's file, then what and why.
pub fn failing_line(f: &Failing) -> String {
    format!("{}: {}", show(&f.path), f.reason)
}

/// The busy line: how many files are being copied.
pub fn copying(pending: usize) -> String {
    match pending {
        // A whole-folder pass: how many files is not known up front.
        0 => "Backing up…".into(),
        1 => "Copying 1 file".into(),
        n => format!("Copying {n} files"),
    }
}

/// The busy line: how far the work in hand has got ("Copying 312 of 3,000
/// files · 120 MB left"), so that it moves one way. `pending`: paths
/// waiting besides.
pub fn busy_text(pending: usize, progress: Option<&Progress>) -> String {
    let Some(p) = progress.filter(|p| p.counting || p.files_done > 0 || p.files_total.is_some())
    else {
        return copying(pending);
    };
    if p.counting {
        return "Looking for changes…".into();
    }
    let done = p.files_done;
    let total = match p.files_total {
        Some(t) => t.max(done + pending as u64),
        None if pending > 0 => done + pending as u64,
        None => return format!("Copying · {} copied", files(done)),
    };
    if total == 0 {
        return copying(pending);
    }
    let mut text = format!("Copying {} of {}", count_text(done), files(total));
    if let Some(left) = p.bytes_left().filter(|b| *b > 0) {
        text.push_str(&format!(" · {} left", bytes_text(left)));
    }
    text
}

/// "1 file", "3,000 files".
fn files(n: u64) -> String {
    match n {
        1 => "1 file".into(),
        n => format!("{} files", count_text(n)),
    }
}

/// `s` with its first letter in capitals.
pub fn capital(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failing(path: &str, reason: &str) -> Failing {
        Failing {
            path: path.into(),
            reason: reason.into(),
            since: Timestamp::UNIX_EPOCH,
        }
    }

    fn status(state: State, failures: Vec<Failing>) -> PairStatus {
        PairStatus {
            index: 0,
            src: "/s".into(),
            dst: "/d".into(),
            state,
            last_ok: None,
            verified_at: None,
            failing: failures.len(),
            failures,
            progress: None,
            being_written: Vec::new(),
            copied_per_hour: Vec::new(),
        }
    }

    #[test]
    fn headlines_say_the_reason_first() {
        let full = "cannot copy: no space left on the device";
        let denied = "cannot read: permission denied";
        let cases: Vec<(State, Vec<Failing>, &str, bool)> = vec![
            (State::Idle, vec![], "Up to date", true),
            (
                State::Idle,
                vec![failing("/s/a", full)],
                "1 file can't be backed up: no space left on the device",
                false,
            ),
            (
                State::Busy { pending: 3 },
                vec![failing("/s/a", full), failing("/s/b", full)],
                "2 files can't be backed up: no space left on the device",
                false,
            ),
            (
                State::Idle,
                vec![
                    failing("/s/a", denied),
                    failing("/s/b", denied),
                    failing("/s/c", full),
                ],
                "3 files can't be backed up: permission denied, and 1 other reason",
                false,
            ),
            (
                State::Idle,
                vec![failing(
                    "/s/a",
                    "cannot copy: backup disk full — 1.6 MB free, needs 3.0 MB",
                )],
                "1 file can't be backed up: backup disk full — 1.6 MB free, needs 3.0 MB",
                false,
            ),
            (
                State::Idle,
                vec![
                    failing(
                        "/s/a",
                        "cannot copy: backup disk full — 1.6 MB free, needs 3.0 MB",
                    ),
                    failing(
                        "/s/b",
                        "cannot copy: backup disk full — 1.2 MB free, needs 5.0 MB",
                    ),
                ],
                "2 files can't be backed up: backup disk full",
                false,
            ),
            (
                State::Error("Source missing: /s".into()),
                vec![failing("/s/a", full)],
                "Source missing: /s",
                false,
            ),
            (State::Busy { pending: 0 }, vec![], "Backing up…", false),
            (State::Busy { pending: 1 }, vec![], "Copying 1 file", false),
            (State::Paused, vec![], "Paused", false),
            (State::Starting, vec![], "Starting…", false),
            (
                State::Degraded("scanning every 60 s".into()),
                vec![],
                "Scanning every 60 s",
                false,
            ),
        ];
        for (state, failures, want, ok) in cases {
            let s = status(state.clone(), failures);
            assert_eq!(s.headline(), want, "{state:?}");
            assert_eq!(s.up_to_date(), ok, "{state:?}");
        }
    }

    #[test]
    fn the_offsite_line_says_the_last_copy_or_why_not() {
        let tz = jiff::tz::TimeZone::UTC;
        let now: Timestamp = "2024-06-03T14:30:00Z".parse().unwrap_or_default();
        let now = now.to_zoned_datetime(tz);
        let at = |s: &str| s.parse::<Timestamp>().ok();
        let base = OffsiteStatus {
            index: 0,
            repository: "rest:http://nas:8000/".into(),
            last_copy: None,
            pushing: None,
            progress: None,
            failed: None,
            overdue_since: None,
            waiting: false,
        };
        let failed = OffsiteFailure {
            at: at("2024-06-03T14:05:00Z").unwrap_or_default(),
            reason: "unreachable: the connection was refused".into(),
            next_try: at("2024-06-03T14:09:00Z").unwrap_or_default(),
        };
        let cases: Vec<(OffsiteStatus, &str, bool)> = vec![
            (base.clone(), "Offsite: no copy yet", true),
            (
                OffsiteStatus {
                    waiting: true,
                    ..base.clone()
                },
                "Offsite: no copy yet, one follows once the changes settle",
                true,
            ),
            (
                OffsiteStatus {
                    last_copy: at("2024-06-03T14:02:00Z"),
                    ..base.clone()
                },
                "Offsite: last copy 14:02",
                true,
            ),
            (
                OffsiteStatus {
                    last_copy: at("2024-06-01T09:05:00Z"),
                    pushing: at("2024-06-03T14:29:00Z"),
                    ..base.clone()
                },
                "Offsite: copying… (last copy 1 Jun 09:05)",
                true,
            ),
            (
                OffsiteStatus {
                    pushing: at("2024-06-03T14:29:00Z"),
                    progress: Some((120_000_000, Some(3_000_000_000))),
                    ..base.clone()
                },
                "Offsite: copying… 120 MB of 3.0 GB",
                true,
            ),
            (
                OffsiteStatus {
                    last_copy: at("2024-06-03T14:02:00Z"),
                    failed: Some(failed.clone()),
                    ..base.clone()
                },
                "Offsite: failed at 14:05: unreachable: the connection was refused, next try 14:09",
                false,
            ),
            (
                OffsiteStatus {
                    failed: Some(failed),
                    overdue_since: at("2024-06-02T10:00:00Z"),
                    ..base.clone()
                },
                "Offsite: failed at 14:05: unreachable: the connection was refused, next try 14:09; changes since 2 Jun 10:00 not copied (overdue)",
                false,
            ),
            (
                OffsiteStatus {
                    last_copy: at("2024-06-02T09:00:00Z"),
                    overdue_since: at("2024-06-02T10:00:00Z"),
                    ..base.clone()
                },
                "Offsite: overdue: changes since 2 Jun 10:00 not copied (last copy 2 Jun 09:00)",
                false,
            ),
        ];
        for (s, want, ok) in cases {
            assert_eq!(s.line(&now), want);
            assert_eq!(s.ok(), ok, "{want}");
        }
    }

    #[test]
    fn progress_moves_one_way_and_says_how_far() {
        let p = |done: u64, total: Option<u64>, bytes_total: Option<u64>| Progress {
            files_done: done,
            bytes_done: done * 100_000,
            files_total: total,
            bytes_total,
            counting: false,
        };
        let counting = Progress {
            counting: true,
            ..Progress::default()
        };
        let cases: Vec<(usize, Option<Progress>, &str)> = vec![
            (0, None, "Backing up…"),
            (77, None, "Copying 77 files"),
            (0, Some(counting), "Looking for changes…"),
            (
                0,
                Some(p(312, Some(3000), Some(420_000_000))),
                "Copying 312 of 3,000 files · 389 MB left",
            ),
            (
                0,
                Some(p(3000, Some(3000), Some(300_000_000))),
                "Copying 3,000 of 3,000 files",
            ),
            // Live changes after the counted pass raise the total.
            (
                5,
                Some(p(3000, Some(3000), Some(300_000_000))),
                "Copying 3,000 of 3,005 files",
            ),
            (0, Some(p(0, Some(0), Some(0))), "Backing up…"),
            (
                0,
                Some(p(1, Some(1), Some(2_000_000))),
                "Copying 1 of 1 file · 1.9 MB left",
            ),
            // Live: what is done, and what is waiting.
            (52, Some(p(312, None, None)), "Copying 312 of 364 files"),
            (0, Some(p(312, None, None)), "Copying · 312 files copied"),
        ];
        for (pending, progress, want) in cases {
            assert_eq!(
                busy_text(pending, progress.as_ref()),
                want,
                "{pending} {progress:?}"
            );
        }
    }
}
