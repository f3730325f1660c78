//! status: one pair's status, derived from its outstanding work, and the
//! words for it. The tray's lines, the popups and `mirrortray status` all
//! read this one model; the words a person reads about a pair are made here
//! once (the tray adds only names, times and `~`).
//!
//! A pair is "Up to date" only when nothing is outstanding: no problem of
//! the pair as a whole (`State::Error`), no failing path, nothing pending,
//! not paused, not starting.

use std::collections::BTreeMap;
use std::path::PathBuf;

use jiff::Timestamp;

use crate::engine::error::show;

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
            State::Busy { pending } => copying(*pending),
            State::Starting => "Starting…".into(),
            State::Degraded(text) => capital(text),
            State::Idle => "Up to date".into(),
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
    let mut by_reason: BTreeMap<&str, usize> = BTreeMap::new();
    for f in failures {
        *by_reason.entry(cause(&f.reason)).or_default() += 1;
    }
    let Some((top, _)) = by_reason
        .iter()
        .max_by_key(|(reason, n)| (**n, std::cmp::Reverse(**reason)))
    else {
        return what;
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
}
