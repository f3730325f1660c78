//! menu: the tray menu as data — which entries, in which order, with which
//! words and check marks — from the [`Model`]. Pure; `tray` turns the plan
//! into real menu items and only rebuilds them when the plan's shape
//! changes (a pair added, deletions held), otherwise it updates texts and
//! check marks in place.
//!
//! ```text
//!  Up to date · 14:02            <- status line: opens the local page
//!  Photos: Copying 4 files       <- one line per pair, with two pairs or more
//!  Allow deletions in ~/bk/Docs  <- only while the guard holds deletions
//!  Show what can't be backed up… <- only while files fail
//!  ──────────
//!  [ ] Pause watching
//!  Back up now
//!  ──────────
//!  Open backup: Docs             <- one per pair
//!  Restore: Docs…                <- one per pair: the versions, by date
//!  Add a folder…
//!  ──────────
//!  Open log
//!  Settings
//!  [ ] Previous versions in file managers   <- right-click entries
//!  [ ] Start at login
//!  ──────────
//!  Quit
//! ```

use jiff::ZonedDateTime;

use super::status::{Model, offsite_lines, pair_line, status_line};

/// What choosing an entry does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// The status line: the local page's overview.
    Overview,
    Pause,
    BackupNow,
    OpenBackup(usize),
    Restore(usize),
    AllowDeletions(usize),
    ShowFailing,
    AddFolder,
    OpenLog,
    Settings,
    Autostart,
    Integrate,
    Quit,
}

/// One menu entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Text only (disabled).
    Line(String),
    Separator,
    Item {
        action: Action,
        label: String,
        enabled: bool,
    },
    Check {
        action: Action,
        label: String,
        checked: bool,
        enabled: bool,
    },
}

/// The shape of an entry: what must match for an in-place update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Line,
    Separator,
    Item(Action),
    Check(Action),
}

impl Entry {
    pub fn shape(&self) -> Shape {
        match self {
            Entry::Line(_) => Shape::Line,
            Entry::Separator => Shape::Separator,
            Entry::Item { action, .. } => Shape::Item(*action),
            Entry::Check { action, .. } => Shape::Check(*action),
        }
    }
}

/// The entry that puts "Previous versions…" in the file managers' menus.
pub const INTEGRATE: &str = "Previous versions in file managers";

/// The entry that lists the failing files with their reasons.
pub const SHOW_FAILING: &str = "Show what can't be backed up…";

/// The menu for `m` at `now`.
pub fn plan(m: &Model, now: &ZonedDateTime) -> Vec<Entry> {
    let on = !m.quitting;
    let item = |action, label: &str| Entry::Item {
        action,
        label: label.to_string(),
        enabled: on,
    };
    // The status line opens the page, where the whole status is (plain
    // text when no page is served).
    let mut v = vec![if m.page {
        item(Action::Overview, &status_line(m, now))
    } else {
        Entry::Line(status_line(m, now))
    }];
    if m.pairs.len() > 1 {
        v.extend(m.pairs.iter().map(|p| Entry::Line(pair_line(m, p, now))));
    }
    v.extend(offsite_lines(m, now).into_iter().map(Entry::Line));
    for (i, p) in m.pairs.iter().enumerate() {
        if p.held.is_some() {
            v.push(item(
                Action::AllowDeletions(i),
                &format!("Allow deletions in {}", m.tilde(&p.dst)),
            ));
        }
    }
    if m.pairs.iter().any(|p| p.failing > 0) {
        v.push(item(Action::ShowFailing, SHOW_FAILING));
    }
    v.push(Entry::Separator);
    if !m.pairs.is_empty() {
        v.push(Entry::Check {
            action: Action::Pause,
            label: "Pause watching".into(),
            checked: m.paused,
            enabled: on,
        });
        v.push(Entry::Item {
            action: Action::BackupNow,
            label: "Back up now".into(),
            enabled: on && !m.paused,
        });
        v.push(Entry::Separator);
        for (i, p) in m.pairs.iter().enumerate() {
            v.push(item(
                Action::OpenBackup(i),
                &format!("Open backup: {}", p.name),
            ));
        }
        for (i, p) in m.pairs.iter().enumerate() {
            v.push(item(Action::Restore(i), &format!("Restore: {}…", p.name)));
        }
    }
    v.push(item(Action::AddFolder, "Add a folder…"));
    v.push(Entry::Separator);
    v.push(item(Action::OpenLog, "Open log"));
    v.push(item(Action::Settings, "Settings"));
    v.push(Entry::Check {
        action: Action::Integrate,
        label: INTEGRATE.into(),
        checked: m.integrated == Some(true),
        enabled: on && m.integrated.is_some(),
    });
    v.push(Entry::Check {
        action: Action::Autostart,
        label: "Start at login".into(),
        checked: m.autostart == Some(true),
        enabled: on && m.autostart.is_some(),
    });
    v.push(Entry::Separator);
    v.push(item(Action::Quit, "Quit"));
    v
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use jiff::Timestamp;
    use jiff::tz::TimeZone;
    use mirrortray::engine::watch::{PairStatus, State};
    use std::path::PathBuf;

    fn now() -> ZonedDateTime {
        "2024-06-03T14:30:00Z"
            .parse::<Timestamp>()
            .unwrap()
            .to_zoned_datetime(TimeZone::UTC)
    }

    fn labels(v: &[Entry]) -> Vec<String> {
        v.iter()
            .map(|e| match e {
                Entry::Line(t) => format!("({t})"),
                Entry::Separator => "--".into(),
                Entry::Item { label, enabled, .. } => {
                    format!("{label}{}", if *enabled { "" } else { " (off)" })
                }
                Entry::Check { label, checked, .. } => {
                    format!("[{}] {label}", if *checked { "x" } else { " " })
                }
            })
            .collect()
    }

    #[test]
    fn one_pair() {
        let mut m = Model {
            home: Some("/home/me".into()),
            autostart: Some(false),
            ..Model::default()
        };
        m.set_pairs(&[(
            PathBuf::from("/home/me/Documents"),
            PathBuf::from("/mnt/bk/Documents"),
        )]);
        m.set_status(
            0,
            &PairStatus {
                index: 0,
                src: PathBuf::new(),
                dst: PathBuf::new(),
                state: State::Idle,
                last_ok: Some("2024-06-03T14:02:00Z".parse().unwrap()),
                verified_at: None,
                failing: 0,
                failures: Vec::new(),
                progress: None,
                being_written: Vec::new(),
                copied_per_hour: Vec::new(),
            },
        );
        assert_eq!(
            labels(&plan(&m, &now())),
            [
                "(Up to date · 14:02)",
                "--",
                "[ ] Pause watching",
                "Back up now",
                "--",
                "Open backup: Documents",
                "Restore: Documents…",
                "Add a folder…",
                "--",
                "Open log",
                "Settings",
                "[ ] Previous versions in file managers",
                "[ ] Start at login",
                "--",
                "Quit",
            ]
        );
        m.paused = true;
        m.set_held(0, 150, 200);
        let p = labels(&plan(&m, &now()));
        assert_eq!(p[0], "(Paused)");
        // With the local page served, the status line opens it.
        m.page = true;
        let v = plan(&m, &now());
        assert_eq!(v[0].shape(), Shape::Item(Action::Overview));
        assert_eq!(labels(&v)[0], "Paused");
        assert_eq!(p[1], "Allow deletions in /mnt/bk/Documents");
        assert_eq!(p[3], "[x] Pause watching");
        assert_eq!(p[4], "Back up now (off)");
    }

    #[test]
    fn no_pairs_offers_to_add_one() {
        let mut m = Model {
            autostart: Some(true),
            ..Model::default()
        };
        m.set_pairs(&[]);
        assert_eq!(
            labels(&plan(&m, &now())),
            [
                "(No folders yet)",
                "--",
                "Add a folder…",
                "--",
                "Open log",
                "Settings",
                "[ ] Previous versions in file managers",
                "[x] Start at login",
                "--",
                "Quit",
            ]
        );
    }

    #[test]
    fn two_pairs_get_their_own_lines_and_quitting_disables_all() {
        let mut m = Model::default();
        m.set_pairs(&[
            (PathBuf::from("/a/Docs"), PathBuf::from("/b/Docs")),
            (PathBuf::from("/a/Photos"), PathBuf::from("/b/Photos")),
        ]);
        let p = labels(&plan(&m, &now()));
        assert_eq!(
            p[..3],
            ["(Starting…)", "(Docs: Starting…)", "(Photos: Starting…)"]
        );
        m.quitting = true;
        let v = plan(&m, &now());
        assert!(v.iter().all(|e| !matches!(
            e,
            Entry::Item { enabled: true, .. } | Entry::Check { enabled: true, .. }
        )));
    }
}
