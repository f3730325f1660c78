//! status: what the tray knows about the pairs, and the words and the icon
//! it shows for that. Pure: no I/O and no clock (the caller passes "now"),
//! so every line a user can read is unit-tested here.
//!
//! The model is fed by the workers' notices (through the event loop) and by
//! the menu (pause). One line sums up every pair, by severity:
//!
//! ```text
//!  stopping > no pairs > a pair in error > entries failing > paused
//!           > copying > starting > degraded (polling) > up to date
//! ```
//! and the icon follows the same order, folded onto the four icons:
//! error > paused > busy > idle.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::ZonedDateTime;
use mirrortray::engine::error::DISK_FULL;
use mirrortray::engine::error::show;
use mirrortray::engine::watch::status::{Progress, busy_text, capital, failing_line, failing_text};
use mirrortray::engine::watch::{Failing, OffsiteStatus, PairStatus, State};
pub use mirrortray::engine::words::{pair_names as names, tilde};

/// The four tray icons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    Idle,
    Busy,
    Paused,
    Error,
    /// No folder is backed up yet: the set-up icon, not the paused one.
    Setup,
}

/// One folder pair as the tray shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairView {
    /// Short name for menu entries ("Documents").
    pub name: String,
    pub src: PathBuf,
    pub dst: PathBuf,
    pub state: State,
    pub last_ok: Option<Timestamp>,
    /// Entries failing now (being retried).
    pub failing: usize,
    /// The oldest of them, with their reasons.
    pub failures: Vec<Failing>,
    /// Deletions the mass-deletion guard holds: (held, entries in DST).
    pub held: Option<(u64, u64)>,
    /// How far the work in hand has got (while busy).
    pub progress: Option<Progress>,
    /// The pair's offsite copy (`None`: it has none, or nothing said yet).
    pub offsite: Option<OffsiteStatus>,
}

/// Everything the menu and the icon are drawn from.
#[derive(Debug, Clone, Default)]
pub struct Model {
    pub pairs: Vec<PairView>,
    /// "Pause watching" is on.
    pub paused: bool,
    /// Quit was chosen; the workers are stopping.
    pub quitting: bool,
    /// The config file could not be read (the sentence from the loader).
    pub config_error: Option<String>,
    /// Whether the login entry exists; `None` until it has been checked.
    pub autostart: Option<bool>,
    /// Whether "Previous versions…" is in the file managers' menus; `None`
    /// until it has been checked.
    pub integrated: Option<bool>,
    /// The config has been read at least once.
    pub loaded: bool,
    /// The user's home, to write `~/Docs` instead of `/home/me/Docs`.
    pub home: Option<PathBuf>,
    /// The local page is served: the status line opens it.
    pub page: bool,
}

impl Model {
    /// Replaces the pairs (after the config was (re)loaded): every pair
    /// starts over as "starting".
    pub fn set_pairs(&mut self, pairs: &[(PathBuf, PathBuf)]) {
        let names = names(pairs.iter().map(|(s, _)| s.as_path()), self.home.as_deref());
        self.pairs = pairs
            .iter()
            .zip(names)
            .map(|((src, dst), name)| PairView {
                name,
                src: src.clone(),
                dst: dst.clone(),
                state: State::Starting,
                last_ok: None,
                failing: 0,
                failures: Vec::new(),
                held: None,
                progress: None,
                offsite: None,
            })
            .collect();
        self.loaded = true;
    }

    /// A worker's status.
    pub fn set_status(&mut self, index: usize, s: &PairStatus) {
        if let Some(p) = self.pairs.get_mut(index) {
            p.state = s.state.clone();
            p.last_ok = s.last_ok.or(p.last_ok);
            p.failing = s.failing;
            p.failures = s.failures.clone();
            p.progress = s.progress;
            // Held deletions show as an error state; any other state means
            // they were allowed or are no longer needed.
            if !matches!(s.state, State::Error(_) | State::Paused) {
                p.held = None;
            }
        }
    }

    /// A pair's offsite copy's new state.
    pub fn set_offsite(&mut self, index: usize, o: &OffsiteStatus) {
        if let Some(p) = self.pairs.get_mut(index) {
            p.offsite = Some(o.clone());
        }
    }

    pub fn set_held(&mut self, index: usize, count: u64, total: u64) {
        if let Some(p) = self.pairs.get_mut(index) {
            p.held = Some((count, total));
        }
    }

    /// `path` for people: under the home folder as `~/...`.
    pub fn tilde(&self, path: &Path) -> String {
        tilde(path, self.home.as_deref())
    }
}

/// The first menu line.
pub fn status_line(m: &Model, now: &ZonedDateTime) -> String {
    if m.quitting {
        return "Stopping…".into();
    }
    if m.pairs.is_empty() {
        return match (&m.config_error, m.loaded) {
            (Some(_), _) => "Settings file has an error — see log".into(),
            (None, false) => "Starting…".into(),
            (None, true) => "No folders yet".into(),
        };
    }
    let problems: Vec<String> = m.pairs.iter().filter_map(|p| problem(m, p)).collect();
    if let Some(first) = problems.first() {
        return match problems.len() {
            1 => first.clone(),
            n => format!("{first} (+{} more)", n - 1),
        };
    }
    let failing: usize = m.pairs.iter().map(|p| p.failing).sum();
    if failing > 0 {
        let all: Vec<Failing> = m.pairs.iter().flat_map(|p| p.failures.clone()).collect();
        return match m.pairs.iter().filter(|p| p.failing > 0).collect::<Vec<_>>()[..] {
            [one] if m.pairs.len() > 1 => {
                format!("{}: {}", one.name, failing_text(failing, &all))
            }
            _ => failing_text(failing, &all),
        };
    }
    if m.config_error.is_some() {
        return "Settings not applied — see log".into();
    }
    if m.paused || m.pairs.iter().all(|p| p.state == State::Paused) {
        return "Paused".into();
    }
    let busy: Vec<(usize, Option<Progress>)> = m
        .pairs
        .iter()
        .filter_map(|p| match p.state {
            State::Busy { pending } => Some((pending, p.progress)),
            _ => None,
        })
        .collect();
    if !busy.is_empty() {
        let pending = busy.iter().map(|(n, _)| n).sum();
        let progress = busy
            .iter()
            .any(|(_, p)| p.is_some())
            .then(|| Progress::sum(busy.iter().map(|(_, p)| p.unwrap_or_default())));
        return busy_text(pending, progress.as_ref());
    }
    if m.pairs.iter().any(|p| p.state == State::Starting) {
        return "Starting…".into();
    }
    if let Some(msg) = m.pairs.iter().find_map(|p| match &p.state {
        State::Degraded(msg) => Some(msg),
        _ => None,
    }) {
        return capital(msg);
    }
    // Up to date: the oldest pair's time is the one every pair is at least at.
    let oldest = m.pairs.iter().map(|p| p.last_ok).min().flatten();
    up_to_date(oldest, now)
}

/// One pair's own line (shown under the first line when there are several).
pub fn pair_line(m: &Model, p: &PairView, now: &ZonedDateTime) -> String {
    let what = if let Some(text) = problem(m, p) {
        text.strip_prefix(&format!("{}: ", p.name))
            .map(str::to_string)
            .unwrap_or(text)
    } else if p.failing > 0 {
        failing_text(p.failing, &p.failures)
    } else {
        match &p.state {
            State::Paused => "Paused".into(),
            _ if m.paused => "Paused".into(),
            State::Busy { pending } => busy_text(*pending, p.progress.as_ref()),
            State::Starting => "Starting…".into(),
            State::Degraded(msg) => capital(msg),
            State::Idle | State::Error(_) => up_to_date(p.last_ok, now),
        }
    };
    format!("{}: {what}", p.name)
}

/// The offsite copies' lines ("Offsite: last copy 14:02"), under the
/// status lines; named by pair when there are several pairs.
pub fn offsite_lines(m: &Model, now: &ZonedDateTime) -> Vec<String> {
    m.pairs
        .iter()
        .filter_map(|p| {
            let line = p.offsite.as_ref()?.line(now);
            Some(if m.pairs.len() > 1 {
                format!("{}: {line}", p.name)
            } else {
                line
            })
        })
        .collect()
}

/// What "Show what can't be backed up…" opens: per pair, each failing file
/// with what failed, why and since when, and what would help.
pub fn failing_report(m: &Model, now: &ZonedDateTime) -> String {
    let tz = now.time_zone().clone();
    let mut out = format!(
        "Files mirrortray can't back up now ({})\n\nEach is tried again by itself; this list is as it was when opened.\n",
        now.strftime("%Y-%m-%d %H:%M")
    );
    for p in m.pairs.iter().filter(|p| p.failing > 0) {
        out.push_str(&format!(
            "\n{} -> {}: {}\n",
            m.tilde(&p.src),
            m.tilde(&p.dst),
            failing_text(p.failing, &p.failures)
        ));
        for f in &p.failures {
            let since = f
                .since
                .to_zoned_datetime(tz.clone())
                .strftime("%Y-%m-%d %H:%M:%S");
            out.push_str(&format!("  {} (since {since})\n", failing_line(f)));
        }
        if p.failing > p.failures.len() {
            out.push_str(&format!("  … and {} more\n", p.failing - p.failures.len()));
        }
        let hints: std::collections::BTreeSet<&str> =
            p.failures.iter().filter_map(|f| hint(&f.reason)).collect();
        for h in hints {
            out.push_str(&format!("  What helps: {h}\n"));
        }
    }
    out
}

/// What a person can do about a reason, when there is something.
fn hint(reason: &str) -> Option<&'static str> {
    if reason.contains(DISK_FULL) || reason.contains("no space left") {
        Some(
            "free space on the backup disk (old versions are in its .mirrortray/versions folder), or back up to a larger one.",
        )
    } else if reason.contains("permission denied") {
        Some(
            "make the file readable by you (and the backup folder writable), or add it to `exclude` in Settings.",
        )
    } else if reason.contains("read-only") {
        Some("the backup disk is mounted read-only: mount it writable, or check it for errors.")
    } else if reason.contains("name is too long") {
        Some("shorten the name, or back up to a disk whose file system allows longer names.")
    } else if reason.contains("quota") {
        Some("free space in your quota on the backup disk.")
    } else {
        None
    }
}

/// The icon.
pub fn look(m: &Model) -> Look {
    if m.quitting {
        return Look::Busy;
    }
    if m.pairs.is_empty() {
        // Nothing is being backed up: not the "all is well" icon.
        return if m.config_error.is_some() && m.loaded {
            Look::Error
        } else if m.loaded {
            Look::Setup
        } else {
            Look::Busy
        };
    }
    let error = m.config_error.is_some()
        || m.pairs
            .iter()
            .any(|p| p.failing > 0 || matches!(p.state, State::Error(_)));
    if error {
        Look::Error
    } else if m.paused || m.pairs.iter().all(|p| p.state == State::Paused) {
        Look::Paused
    } else if m
        .pairs
        .iter()
        .any(|p| matches!(p.state, State::Busy { .. } | State::Starting))
    {
        Look::Busy
    } else {
        Look::Idle
    }
}

/// A pair's problem, as a line: the worker's sentence with `~` paths, and
/// the pair's name in front when the sentence does not name its folders.
fn problem(m: &Model, p: &PairView) -> Option<String> {
    let State::Error(msg) = &p.state else {
        return None;
    };
    let mut text = msg.clone();
    let mut named = false;
    for path in [&p.src, &p.dst] {
        let full = show(path);
        if text.contains(&full) {
            text = text.replace(&full, &m.tilde(path));
            named = true;
        }
    }
    if !named {
        text = format!("{}: {text}", p.name);
    }
    Some(text)
}

fn up_to_date(at: Option<Timestamp>, now: &ZonedDateTime) -> String {
    match at {
        None => "Up to date".into(),
        Some(t) => {
            let t = t.to_zoned_datetime(now.time_zone().clone());
            if t.date() == now.date() {
                format!("Up to date · {}", t.strftime("%H:%M"))
            } else {
                format!("Up to date · {}", t.strftime("%-d %b %H:%M"))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use jiff::tz::TimeZone;

    fn now() -> ZonedDateTime {
        "2024-06-03T14:30:00Z"
            .parse::<Timestamp>()
            .unwrap()
            .to_zoned_datetime(TimeZone::UTC)
    }

    fn at(s: &str) -> Option<Timestamp> {
        Some(s.parse().unwrap())
    }

    fn model(pairs: &[(&str, &str)]) -> Model {
        let mut m = Model {
            home: Some("/home/me".into()),
            ..Model::default()
        };
        let pairs: Vec<(PathBuf, PathBuf)> = pairs
            .iter()
            .map(|(s, d)| (PathBuf::from(s), PathBuf::from(d)))
            .collect();
        m.set_pairs(&pairs);
        m
    }

    fn status(
        index: usize,
        state: State,
        last_ok: Option<Timestamp>,
        failing: usize,
    ) -> PairStatus {
        PairStatus {
            index,
            src: PathBuf::new(),
            dst: PathBuf::new(),
            state,
            last_ok,
            verified_at: None,
            failing,
            failures: (0..failing)
                .map(|i| Failing {
                    path: PathBuf::from(format!("/s/f{i}")),
                    reason: "cannot copy: no space left on the device".into(),
                    since: Timestamp::UNIX_EPOCH,
                })
                .collect(),
            progress: None,
            being_written: Vec::new(),
            copied_per_hour: Vec::new(),
        }
    }

    #[test]
    fn lines_for_every_state() {
        let one = [("/home/me/Docs", "/mnt/bk/Docs")];
        // (state, last ok, failing, paused) -> (line, icon)
        type Case = (State, Option<Timestamp>, usize, bool, &'static str, Look);
        let cases: Vec<Case> = vec![
            (
                State::Idle,
                at("2024-06-03T14:02:00Z"),
                0,
                false,
                "Up to date · 14:02",
                Look::Idle,
            ),
            (
                State::Idle,
                at("2024-06-01T09:05:00Z"),
                0,
                false,
                "Up to date · 1 Jun 09:05",
                Look::Idle,
            ),
            (State::Idle, None, 0, false, "Up to date", Look::Idle),
            (
                State::Busy { pending: 312 },
                None,
                0,
                false,
                "Copying 312 files",
                Look::Busy,
            ),
            (
                State::Busy { pending: 1 },
                None,
                0,
                false,
                "Copying 1 file",
                Look::Busy,
            ),
            (
                State::Busy { pending: 0 },
                None,
                0,
                false,
                "Backing up…",
                Look::Busy,
            ),
            (State::Starting, None, 0, false, "Starting…", Look::Busy),
            (State::Paused, None, 0, false, "Paused", Look::Paused),
            (State::Idle, None, 0, true, "Paused", Look::Paused),
            (
                State::Idle,
                None,
                2,
                false,
                "2 files can't be backed up: no space left on the device",
                Look::Error,
            ),
            (
                State::Idle,
                None,
                1,
                true,
                "1 file can't be backed up: no space left on the device",
                Look::Error,
            ),
            (
                State::Error("Source missing: /home/me/Docs".into()),
                None,
                0,
                false,
                "Source missing: ~/Docs",
                Look::Error,
            ),
            (
                State::Error("150 deletions held — confirm to allow".into()),
                None,
                0,
                false,
                "Docs: 150 deletions held — confirm to allow",
                Look::Error,
            ),
            (
                State::Degraded("scanning every 60 s (watch limit reached)".into()),
                None,
                0,
                false,
                "Scanning every 60 s (watch limit reached)",
                Look::Idle,
            ),
        ];
        for (state, last_ok, failing, paused, want, want_look) in cases {
            let mut m = model(&one);
            m.paused = paused;
            m.set_status(0, &status(0, state.clone(), last_ok, failing));
            assert_eq!(status_line(&m, &now()), want, "{state:?}");
            assert_eq!(look(&m), want_look, "{state:?}");
        }
    }

    #[test]
    fn no_pairs_and_lifecycle() {
        let mut m = Model::default();
        assert_eq!(status_line(&m, &now()), "Starting…");
        m.set_pairs(&[]);
        assert_eq!(status_line(&m, &now()), "No folders yet");
        assert_eq!(look(&m), Look::Setup);
        m.config_error = Some("config file x, line 3: ...".into());
        assert_eq!(
            status_line(&m, &now()),
            "Settings file has an error — see log"
        );
        assert_eq!(look(&m), Look::Error);
        m.quitting = true;
        assert_eq!(status_line(&m, &now()), "Stopping…");
    }

    #[test]
    fn several_pairs_sum_up() {
        let mut m = model(&[("/home/me/Docs", "/mnt/a"), ("/home/me/Photos", "/mnt/b")]);
        m.set_status(0, &status(0, State::Idle, at("2024-06-03T14:02:00Z"), 0));
        m.set_status(1, &status(1, State::Idle, at("2024-06-03T13:00:00Z"), 0));
        // The older time: both pairs are at least that fresh.
        assert_eq!(status_line(&m, &now()), "Up to date · 13:00");
        m.set_status(1, &status(1, State::Busy { pending: 4 }, None, 0));
        assert_eq!(status_line(&m, &now()), "Copying 4 files");
        // The last successful time is kept while busy.
        assert_eq!(
            pair_line(&m, &m.pairs[1], &now()),
            "Photos: Copying 4 files"
        );
        m.set_status(1, &status(1, State::Idle, None, 0));
        assert_eq!(
            pair_line(&m, &m.pairs[1], &now()),
            "Photos: Up to date · 13:00"
        );
        m.set_status(
            0,
            &status(
                0,
                State::Error("Source missing: /home/me/Docs".into()),
                None,
                0,
            ),
        );
        m.set_status(
            1,
            &status(
                1,
                State::Error("Source missing: /home/me/Photos".into()),
                None,
                0,
            ),
        );
        assert_eq!(status_line(&m, &now()), "Source missing: ~/Docs (+1 more)");
        assert_eq!(
            pair_line(&m, &m.pairs[1], &now()),
            "Photos: Source missing: ~/Photos"
        );
    }

    #[test]
    fn held_deletions_clear_when_the_pair_moves_on() {
        let mut m = model(&[("/home/me/Docs", "/mnt/a")]);
        m.set_held(0, 150, 200);
        m.set_status(
            0,
            &status(
                0,
                State::Error("150 deletions held — confirm to allow".into()),
                None,
                0,
            ),
        );
        assert_eq!(m.pairs[0].held, Some((150, 200)));
        m.set_status(0, &status(0, State::Busy { pending: 0 }, None, 0));
        assert_eq!(m.pairs[0].held, None);
    }

    #[test]
    fn names_and_tilde() {
        let home = Some(Path::new("/home/me"));
        assert_eq!(tilde(Path::new("/home/me/Docs"), home), "~/Docs");
        assert_eq!(tilde(Path::new("/home/me"), home), "~");
        assert_eq!(tilde(Path::new("/home/meg/x"), home), "/home/meg/x");
        assert_eq!(tilde(Path::new("/srv/x"), Some(Path::new("/"))), "/srv/x");
        let srcs = [
            Path::new("/home/me/a/Docs"),
            Path::new("/home/me/b/Docs"),
            Path::new("/srv/Photos"),
        ];
        assert_eq!(
            names(srcs.iter().copied(), home),
            ["~/a/Docs", "~/b/Docs", "Photos"]
        );
    }

    #[test]
    fn the_failing_report_names_each_file_and_what_helps() {
        let mut m = model(&[
            ("/home/me/Docs", "/mnt/bk/Docs"),
            ("/home/me/Pics", "/mnt/bk/Pics"),
        ]);
        m.set_status(1, &status(1, State::Idle, None, 2));
        let now = "2026-12-01T10:00:00Z"
            .parse::<Timestamp>()
            .unwrap()
            .to_zoned_datetime(TimeZone::UTC);
        let text = failing_report(&m, &now);
        let want = "\n~/Pics -> /mnt/bk/Pics: 2 files can't be backed up: no space left on the device\n  \
                    /s/f0: cannot copy: no space left on the device (since 1970-01-01 00:00:00)\n  \
                    /s/f1: cannot copy: no space left on the device (since 1970-01-01 00:00:00)\n  \
                    What helps: free space on the backup disk";
        assert!(text.contains(want), "{text}");
        assert!(!text.contains("Docs"), "{text}");
        let plan = super::super::menu::plan(&m, &now);
        assert!(plan.iter().any(|e| matches!(
            e,
            super::super::menu::Entry::Item {
                action: super::super::menu::Action::ShowFailing,
                ..
            }
        )));
    }
}
