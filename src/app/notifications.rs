//! notifications: which worker notices become desktop popups, and showing
//! them without ever blocking the event loop.
//!
//! Two halves:
//! - [`Alerts`] decides (pure, with the time passed in, unit-tested). No
//!   popup storm: errors are grouped in *episodes* — the first failure of a
//!   pair pops up at once with the count and the first path; failures of
//!   paths already announced (the worker retries them) stay quiet; new
//!   failures during the episode are summed into one follow-up at most every
//!   [`FOLLOW_UP`]. The episode ends when the pair is clean again. A source
//!   that goes missing, held deletions, a watch limit, a stale pair: once per
//!   occurrence. "Backups resumed" when a pair recovers.
//! - [`Notifier`] shows them on its own thread (a D-Bus call can take a
//!   while), at most one every [`MIN_GAP`]; popups that queue up meanwhile
//!   are merged by key, so a burst ends as one popup per subject. With no
//!   notification daemon the failure is logged once and the app goes on:
//!   the tray line and the log still say everything.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};
use mirrortray::engine::error::show;
use mirrortray::engine::watch::{Notice, State};

/// Follow-up popups for one pair's errors come at most this often.
pub const FOLLOW_UP: Duration = Duration::from_secs(5 * 60);
/// At most one popup this often, whatever its subject.
pub const MIN_GAP: Duration = Duration::from_secs(2);
/// Popups waiting beyond this many are dropped (oldest first).
const QUEUE_MAX: usize = 5;

/// How loud a popup is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Error,
}

/// One desktop notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Popup {
    /// Popups with the same key replace each other while queued.
    pub key: String,
    pub summary: String,
    pub body: String,
    pub level: Level,
}

impl Popup {
    pub fn new(
        key: impl Into<String>,
        level: Level,
        summary: impl Into<String>,
        body: impl Into<String>,
    ) -> Popup {
        Popup {
            key: key.into(),
            summary: summary.into(),
            body: body.into(),
            level,
        }
    }
}

#[derive(Debug, Default)]
struct PairAlerts {
    /// An error episode is on: its first popup was shown.
    episode: bool,
    /// Paths named in a popup of this episode.
    announced: HashSet<PathBuf>,
    /// New failures since the last popup: count and first one.
    pending: usize,
    pending_first: Option<String>,
    last_popup: Option<Instant>,
    /// A problem (source missing, held deletions) was announced; a clean
    /// state afterwards says "Backups resumed".
    troubled: bool,
    held_shown: bool,
    /// Keys of this pair's problem popups shown and not yet resolved.
    open: HashSet<String>,
}

/// Decides which notices become popups.
#[derive(Debug, Default)]
pub struct Alerts {
    pairs: HashMap<usize, PairAlerts>,
    /// When each subject last popped up (for [`REPEAT`]).
    shown: HashMap<String, Instant>,
    /// Popups whose problem is resolved, to be closed.
    closes: Vec<String>,
}

/// The same subject (a source missing, resumed...) pops up at most this
/// often: a flapping mount is one popup, not one per flap.
pub const REPEAT: Duration = Duration::from_secs(10 * 60);

impl Alerts {
    /// Forgets the pairs' episodes (the pairs were reloaded; indexes may
    /// now name other pairs).
    pub fn reset(&mut self) {
        self.pairs.clear();
        self.shown.clear();
    }

    /// Keys of popups to close now: their problem is resolved.
    pub fn take_closes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.closes)
    }

    /// The popup for a notice from pair `index`, named `name`, if any.
    pub fn notice(&mut self, now: Instant, index: usize, name: &str, n: &Notice) -> Option<Popup> {
        let p = self.decide(now, index, name, n)?;
        // The offsite copy's popups are closed by its own recovery, not by
        // the local mirror's.
        if p.level != Level::Info
            && !p.key.starts_with("offsite-")
            && let Some(a) = self.pairs.get_mut(&index)
        {
            a.open.insert(p.key.clone());
        }
        if p.key.starts_with("errors-") {
            // Error episodes have their own pacing.
            return Some(p);
        }
        if self
            .shown
            .get(&p.key)
            .is_some_and(|t| now.duration_since(*t) < REPEAT)
        {
            log::debug!("notification not repeated so soon: {}", p.summary);
            return None;
        }
        self.shown.insert(p.key.clone(), now);
        Some(p)
    }

    fn decide(&mut self, now: Instant, index: usize, name: &str, n: &Notice) -> Option<Popup> {
        let a = self.pairs.entry(index).or_default();
        match n {
            Notice::Failures { count, first, .. } => {
                if !a.episode {
                    a.episode = true;
                    a.announced.clear();
                    a.announced.insert(first.path.clone());
                    a.last_popup = Some(now);
                    a.pending = 0;
                    a.pending_first = None;
                    return Some(errors_popup(index, name, *count, &first.to_string(), false));
                }
                if !a.announced.contains(&first.path) {
                    a.announced.insert(first.path.clone());
                    a.pending += count;
                    a.pending_first.get_or_insert_with(|| first.to_string());
                }
                None
            }
            Notice::SourceMissing { src, reason, .. } => {
                a.troubled = true;
                Some(Popup::new(
                    format!("missing-{index}"),
                    Level::Error,
                    format!("Source folder missing: {name}"),
                    format!(
                        "{reason}\nBackups of {} are paused and nothing in the backup was deleted. They resume by themselves when the folder is back.",
                        show(src)
                    ),
                ))
            }
            Notice::MassDeleteHeld {
                dst, count, total, ..
            } => {
                if a.held_shown {
                    return None;
                }
                a.held_shown = true;
                a.troubled = true;
                Some(Popup::new(
                    format!("held-{index}"),
                    Level::Warning,
                    format!("Deletions held: {name}"),
                    format!(
                        "{count} of the {total} entries in the backup {} are gone from the source, so nothing was deleted. If you removed them on purpose, choose \"Allow deletions in …\" in the mirrortray menu (or run `mirrortray sync --allow-mass-delete`). If not, check the source folder.",
                        show(dst)
                    ),
                ))
            }
            Notice::Stale { since, .. } => {
                a.troubled = true;
                let when = match since {
                    Some(t) => format!(
                        "The last complete backup was at {}.",
                        t.strftime("%Y-%m-%d %H:%M UTC")
                    ),
                    None => "There has been no complete backup since mirrortray started.".into(),
                };
                Some(Popup::new(
                    format!("stale-{index}"),
                    Level::Error,
                    format!("No backup for a long time: {name}"),
                    format!("{when} See the mirrortray menu and the log for why."),
                ))
            }
            Notice::Recovered { .. } => {
                // The clean status that follows must not say it again.
                a.troubled = false;
                self.closes.extend(a.open.drain());
                Some(resumed(index, name))
            }
            Notice::VersionsPruned { text, .. } => Some(Popup::new(
                format!("pruned-{index}"),
                Level::Warning,
                format!("Old versions removed: {name}"),
                text.clone(),
            )),
            Notice::WatchLimit { message, .. } => Some(Popup::new(
                format!("limit-{index}"),
                Level::Warning,
                format!("Too many folders to watch live: {name}"),
                message.clone(),
            )),
            Notice::Status(s) => {
                if let State::Error(msg) = &s.state {
                    // A stop not announced by a notice of its own (a missing
                    // backup folder, say): said once, with the worker's words.
                    if !a.troubled {
                        a.troubled = true;
                        return Some(Popup::new(
                            format!("stopped-{index}"),
                            Level::Error,
                            format!("Backups stopped: {name}"),
                            format!(
                                "{msg}. mirrortray tries again by itself; the log says why (Open log in the menu)."
                            ),
                        ));
                    }
                    return None;
                }
                let clean = s.failing == 0 && s.state == State::Idle;
                if clean {
                    let episode = std::mem::take(&mut a.episode);
                    a.pending = 0;
                    a.pending_first = None;
                    a.announced.clear();
                    a.held_shown = false;
                    let had_open = !a.open.is_empty();
                    self.closes.extend(a.open.drain());
                    if std::mem::take(&mut a.troubled) || episode || had_open {
                        return Some(resumed(index, name));
                    }
                }
                None
            }
            Notice::OffsiteFailed {
                repository,
                reason,
                next_try,
                ..
            } => Some(Popup::new(
                format!("offsite-failed-{index}"),
                Level::Error,
                format!("Offsite copy failed: {name}"),
                format!(
                    "{repository}: {reason}.\nmirrortray tries again at {} by itself; the backup on this machine goes on.",
                    mirrortray::engine::words::clock(*next_try, &jiff::ZonedDateTime::now())
                ),
            )),
            Notice::OffsiteOverdue {
                repository, since, ..
            } => Some(Popup::new(
                format!("offsite-overdue-{index}"),
                Level::Warning,
                format!("Offsite copy overdue: {name}"),
                format!(
                    "Changes since {} are not in {repository} yet. See the mirrortray menu and the log for why.",
                    mirrortray::engine::words::clock(*since, &jiff::ZonedDateTime::now())
                ),
            )),
            Notice::OffsiteRecovered { .. } => {
                for key in [
                    format!("offsite-failed-{index}"),
                    format!("offsite-overdue-{index}"),
                ] {
                    // A new failure later pops up again at once.
                    self.shown.remove(&key);
                    self.closes.push(key);
                }
                None
            }
            Notice::Overflow { .. } | Notice::Stopped { .. } | Notice::Offsite(_) => None,
        }
    }

    /// Follow-ups that are due at `now`; `names` gives each pair's name.
    pub fn tick(&mut self, now: Instant, names: &dyn Fn(usize) -> String) -> Vec<Popup> {
        let mut out = Vec::new();
        for (&index, a) in self.pairs.iter_mut() {
            if a.episode
                && a.pending > 0
                && a.last_popup
                    .is_none_or(|t| now.duration_since(t) >= FOLLOW_UP)
            {
                let first = a.pending_first.take().unwrap_or_default();
                out.push(errors_popup(index, &names(index), a.pending, &first, true));
                a.pending = 0;
                a.last_popup = Some(now);
            }
        }
        out
    }

    /// When [`tick`](Self::tick) next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pairs
            .values()
            .filter(|a| a.episode && a.pending > 0)
            .filter_map(|a| a.last_popup.map(|t| t + FOLLOW_UP))
            .min()
    }
}

fn errors_popup(index: usize, name: &str, count: usize, first: &str, more: bool) -> Popup {
    let what = match (count, more) {
        (1, false) => "1 item could not be backed up".to_string(),
        (n, false) => format!("{n} items could not be backed up"),
        (1, true) => "1 more item could not be backed up".to_string(),
        (n, true) => format!("{n} more items could not be backed up"),
    };
    Popup::new(
        format!("errors-{index}"),
        Level::Error,
        format!("Backup errors: {name}"),
        format!(
            "{what}. First: {first}\nmirrortray retries by itself; details in the log (Open log in the menu)."
        ),
    )
}

fn resumed(index: usize, name: &str) -> Popup {
    Popup::new(
        format!("resumed-{index}"),
        Level::Info,
        format!("Backups resumed: {name}"),
        "The backup is complete again.",
    )
}

/// What the notification thread is asked to do.
enum Msg {
    Show(Popup),
    /// Close the popup of this key (its problem is resolved).
    Close(String),
    /// Close every popup still on screen (the app quits: they spoke of
    /// this run's state).
    CloseAll,
}

/// Shows popups on its own thread. A popup replaces the one of the same
/// key still on screen (the daemon's `replaces_id`), and is closed when its
/// problem is resolved (`CloseNotification`).
#[derive(Clone)]
pub struct Notifier {
    tx: Sender<Msg>,
}

impl Notifier {
    /// Starts the notification thread.
    pub fn start() -> Notifier {
        let (tx, rx) = unbounded();
        let spawned = std::thread::Builder::new()
            .name("notifications".into())
            .spawn(move || run(rx));
        if let Err(e) = spawned {
            log::warn!("cannot start the notification thread ({e}); no desktop notifications");
        }
        Notifier { tx }
    }

    /// Queues `p` (never blocks).
    pub fn show(&self, p: Popup) {
        log::debug!("notification: {}: {}", p.summary, p.body);
        let _ = self.tx.send(Msg::Show(p));
    }

    /// Closes the popup of `key`, or drops it if still queued.
    pub fn close(&self, key: &str) {
        let _ = self.tx.send(Msg::Close(key.to_string()));
    }

    /// Closes every popup of this run (at quit).
    pub fn close_all(&self) {
        let _ = self.tx.send(Msg::CloseAll);
    }
}

fn run(rx: Receiver<Msg>) {
    let mut warned = false;
    // The popups on screen (or that were: a daemon may have expired them),
    // by key: replaced by the next of their key, closed when resolved.
    let mut on_screen: HashMap<String, Handle> = HashMap::new();
    // Markup in bodies is escaped only for servers that interpret it.
    let markup = capabilities().iter().any(|c| c == "body-markup");
    let mut queue: Vec<Popup> = Vec::new();
    let mut last: Option<Instant> = None;
    loop {
        // Wait for the first popup, or for the gap to pass with some queued.
        let wait = match (queue.is_empty(), last) {
            (true, _) => None,
            (false, Some(t)) => Some((t + MIN_GAP).saturating_duration_since(Instant::now())),
            (false, None) => Some(Duration::ZERO),
        };
        let got = match wait {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(d) => rx.recv_timeout(d),
        };
        match got {
            Ok(Msg::Close(key)) => {
                queue.retain(|q| q.key != key);
                if let Some(h) = on_screen.remove(&key) {
                    log::debug!("notification closed: {key}");
                    close(h);
                }
                continue;
            }
            Ok(Msg::CloseAll) => {
                queue.clear();
                for (_, h) in on_screen.drain() {
                    close(h);
                }
                continue;
            }
            Ok(Msg::Show(p)) => {
                queue.retain(|q| q.key != p.key);
                queue.push(p);
                if queue.len() > QUEUE_MAX {
                    let dropped = queue.remove(0);
                    log::info!(
                        "too many notifications at once; not shown: {}",
                        dropped.summary
                    );
                }
                if last.is_some_and(|t| t.elapsed() < MIN_GAP) {
                    continue;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if queue.is_empty() {
            continue;
        }
        let p = queue.remove(0);
        last = Some(Instant::now());
        match display(&p, markup, on_screen.remove(&p.key)) {
            Ok(h) => {
                on_screen.insert(p.key.clone(), h);
            }
            Err(e) if !warned => {
                warned = true;
                log::warn!(
                    "cannot show desktop notifications ({e}); is a notification daemon running? mirrortray goes on: its menu and the log show every problem"
                );
            }
            _ => {}
        }
    }
}

#[cfg(all(unix, not(target_os = "macos")))]
fn capabilities() -> Vec<String> {
    notify_rust::get_capabilities().unwrap_or_default()
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
fn capabilities() -> Vec<String> {
    Vec::new()
}

#[cfg(all(unix, not(target_os = "macos")))]
type Handle = notify_rust::NotificationHandle;
#[cfg(not(all(unix, not(target_os = "macos"))))]
type Handle = ();

#[cfg(all(unix, not(target_os = "macos")))]
fn close(h: Handle) {
    h.close();
}
#[cfg(not(all(unix, not(target_os = "macos"))))]
fn close(_: Handle) {}

/// Shows `p`, in place of `old` (the popup of its key still on screen).
fn display(p: &Popup, markup: bool, old: Option<Handle>) -> Result<Handle, String> {
    let mut n = notify_rust::Notification::new();
    #[cfg(all(unix, not(target_os = "macos")))]
    if let Some(old) = &old {
        n.id(old.id());
    }
    #[cfg(not(all(unix, not(target_os = "macos"))))]
    let _ = old;
    let body = if markup {
        escape(&p.body)
    } else {
        p.body.clone()
    };
    n.appname("mirrortray").summary(&p.summary).body(&body);
    n.icon(match p.level {
        Level::Info => "dialog-information",
        Level::Warning => "dialog-warning",
        Level::Error => "dialog-error",
    });
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        n.urgency(match p.level {
            Level::Info => notify_rust::Urgency::Low,
            Level::Warning => notify_rust::Urgency::Normal,
            Level::Error => notify_rust::Urgency::Critical,
        });
        // Errors stay until seen; the rest go away by themselves.
        if p.level != Level::Error {
            n.timeout(notify_rust::Timeout::Milliseconds(10_000));
        }
    }
    #[cfg(all(unix, not(target_os = "macos")))]
    return n.show().map_err(|e| e.to_string());
    #[cfg(not(all(unix, not(target_os = "macos"))))]
    n.show().map(drop).map_err(|e| e.to_string())
}

/// Escapes the characters the notification body markup reserves.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use mirrortray::engine::error::EntryError;
    use mirrortray::engine::watch::PairStatus;

    fn fail(path: &str) -> Notice {
        Notice::Failures {
            index: 0,
            count: 1,
            first: EntryError {
                path: path.into(),
                action: "copy",
                reason: "permission denied".into(),
                transient: true,
            },
        }
    }

    fn status(state: State, failing: usize) -> Notice {
        Notice::Status(PairStatus {
            index: 0,
            src: "/s".into(),
            dst: "/d".into(),
            state,
            last_ok: None,
            verified_at: None,
            failing,
            failures: Vec::new(),
            progress: None,
            being_written: Vec::new(),
            copied_per_hour: Vec::new(),
        })
    }

    #[test]
    fn one_popup_per_error_episode_then_a_follow_up() {
        let mut a = Alerts::default();
        let t0 = Instant::now();
        let p = a.notice(t0, 0, "Docs", &fail("/d/x")).unwrap();
        assert_eq!(p.summary, "Backup errors: Docs");
        assert!(
            p.body.starts_with(
                "1 item could not be backed up. First: /d/x: cannot copy: permission denied"
            ),
            "{}",
            p.body
        );
        // Retries of the same path, and new ones: quiet for now.
        assert_eq!(a.notice(t0, 0, "Docs", &fail("/d/x")), None);
        assert_eq!(a.notice(t0, 0, "Docs", &fail("/d/y")), None);
        assert_eq!(a.notice(t0, 0, "Docs", &fail("/d/z")), None);
        assert_eq!(a.notice(t0, 0, "Docs", &status(State::Idle, 3)), None);
        assert!(
            a.tick(t0 + Duration::from_secs(10), &|_| "Docs".into())
                .is_empty()
        );
        assert_eq!(a.next_deadline(), Some(t0 + FOLLOW_UP));
        let later = a.tick(t0 + FOLLOW_UP, &|_| "Docs".into());
        assert_eq!(later.len(), 1);
        assert!(
            later[0]
                .body
                .starts_with("2 more items could not be backed up. First: /d/y"),
            "{}",
            later[0].body
        );
        assert!(a.tick(t0 + FOLLOW_UP * 2, &|_| "Docs".into()).is_empty());
        // Clean again: the error popup is closed, one short "resumed"
        // popup says so, and the next failure is news.
        let resumed = a.notice(t0, 0, "Docs", &status(State::Idle, 0)).unwrap();
        assert_eq!(resumed.summary, "Backups resumed: Docs");
        assert_eq!(resumed.level, Level::Info);
        assert_eq!(a.take_closes(), vec!["errors-0".to_string()]);
        assert_eq!(a.notice(t0, 0, "Docs", &status(State::Idle, 0)), None);
        assert!(a.take_closes().is_empty());
        assert!(a.notice(t0, 0, "Docs", &fail("/d/x")).is_some());
    }

    #[test]
    fn missing_source_then_resumed() {
        let mut a = Alerts::default();
        let t = Instant::now();
        let n = Notice::SourceMissing {
            index: 0,
            src: "/home/me/Docs".into(),
            reason: "/home/me/Docs: the source folder is missing".into(),
        };
        let p = a.notice(t, 0, "Docs", &n).unwrap();
        assert_eq!(p.summary, "Source folder missing: Docs");
        assert!(
            p.body.contains("/home/me/Docs")
                && p.body.contains("nothing in the backup was deleted")
        );
        assert_eq!(
            a.notice(
                t,
                0,
                "Docs",
                &status(State::Error("Source missing".into()), 0)
            ),
            None
        );
        assert_eq!(
            a.notice(t, 0, "Docs", &status(State::Busy { pending: 0 }, 0)),
            None
        );
        let p = a.notice(t, 0, "Docs", &status(State::Idle, 0)).unwrap();
        assert_eq!(p.summary, "Backups resumed: Docs");
        // The "missing" popup is closed, not left on screen.
        assert_eq!(a.take_closes(), vec!["missing-0".to_string()]);
        // Only once.
        assert_eq!(a.notice(t, 0, "Docs", &status(State::Idle, 0)), None);
        // A flapping source: not one popup per flap.
        assert_eq!(a.notice(t + Duration::from_secs(5), 0, "Docs", &n), None);
        assert_eq!(
            a.notice(
                t + Duration::from_secs(6),
                0,
                "Docs",
                &status(State::Idle, 0)
            ),
            None
        );
        assert!(a.notice(t + REPEAT, 0, "Docs", &n).is_some());
    }

    #[test]
    fn other_stops_are_said_once_and_not_twice_for_a_missing_source() {
        let mut a = Alerts::default();
        let t = Instant::now();
        let stopped = status(State::Error("Cannot back up /s".into()), 0);
        let p = a.notice(t, 0, "Docs", &stopped).unwrap();
        assert_eq!(p.summary, "Backups stopped: Docs");
        assert!(p.body.starts_with("Cannot back up /s."), "{}", p.body);
        assert_eq!(a.notice(t, 0, "Docs", &stopped), None);
        assert_eq!(
            a.notice(t, 0, "Docs", &status(State::Idle, 0))
                .unwrap()
                .summary,
            "Backups resumed: Docs"
        );
        // A missing source has its own popup; its error status adds none.
        let mut b = Alerts::default();
        let missing = Notice::SourceMissing {
            index: 0,
            src: "/s".into(),
            reason: "gone".into(),
        };
        assert!(b.notice(t, 0, "Docs", &missing).is_some());
        assert_eq!(
            b.notice(
                t,
                0,
                "Docs",
                &status(State::Error("Source missing: /s".into()), 0)
            ),
            None
        );
    }

    #[test]
    fn held_deletions_once_with_the_way_out() {
        let mut a = Alerts::default();
        let t = Instant::now();
        let n = Notice::MassDeleteHeld {
            index: 0,
            dst: "/mnt/bk".into(),
            count: 150,
            total: 200,
        };
        let p = a.notice(t, 0, "Docs", &n).unwrap();
        assert!(
            p.body.contains("150 of the 200") && p.body.contains("Allow deletions in"),
            "{}",
            p.body
        );
        assert_eq!(a.notice(t, 0, "Docs", &n), None);
    }

    #[test]
    fn stale_and_recovered() {
        let mut a = Alerts::default();
        let t = Instant::now();
        let p = a
            .notice(
                t,
                1,
                "Photos",
                &Notice::Stale {
                    index: 1,
                    since: None,
                },
            )
            .unwrap();
        assert_eq!(p.summary, "No backup for a long time: Photos");
        // The worker says Recovered, then sends its clean status: one
        // "resumed", not two.
        assert_eq!(
            a.notice(t, 1, "Photos", &Notice::Recovered { index: 1 })
                .unwrap()
                .summary,
            "Backups resumed: Photos"
        );
        let clean = Notice::Status(PairStatus {
            index: 1,
            src: "/s".into(),
            dst: "/d".into(),
            state: State::Idle,
            last_ok: None,
            verified_at: None,
            failing: 0,
            failures: Vec::new(),
            progress: None,
            being_written: Vec::new(),
            copied_per_hour: Vec::new(),
        });
        assert_eq!(a.notice(t, 1, "Photos", &clean), None);
    }

    #[test]
    fn an_offsite_failure_pops_up_and_only_its_own_recovery_closes_it() {
        let mut a = Alerts::default();
        let t = Instant::now();
        let failed = Notice::OffsiteFailed {
            index: 0,
            repository: "rest:http://nas:8000/".into(),
            reason: "unreachable: the connection was refused".into(),
            next_try: jiff::Timestamp::UNIX_EPOCH,
        };
        let p = a.notice(t, 0, "Docs", &failed).unwrap();
        assert_eq!(p.summary, "Offsite copy failed: Docs");
        assert_eq!(p.level, Level::Error);
        assert!(
            p.body.starts_with(
                "rest:http://nas:8000/: unreachable: the connection was refused.\nmirrortray tries again at "
            ),
            "{}",
            p.body
        );
        // The local mirror is clean: it neither closes the offsite popup
        // nor says "resumed".
        assert_eq!(a.notice(t, 0, "Docs", &status(State::Idle, 0)), None);
        assert!(a.take_closes().is_empty());
        assert_eq!(
            a.notice(t, 0, "Docs", &Notice::OffsiteRecovered { index: 0 }),
            None
        );
        assert_eq!(
            a.take_closes(),
            vec![
                "offsite-failed-0".to_string(),
                "offsite-overdue-0".to_string()
            ]
        );
        // A new failure pops up at once (not held back as a repeat).
        assert!(a.notice(t, 0, "Docs", &failed).is_some());
        let overdue = Notice::OffsiteOverdue {
            index: 0,
            repository: "rest:http://nas:8000/".into(),
            since: jiff::Timestamp::UNIX_EPOCH,
        };
        let p = a.notice(t, 0, "Docs", &overdue).unwrap();
        assert_eq!(p.summary, "Offsite copy overdue: Docs");
        assert_eq!(p.level, Level::Warning);
    }

    #[test]
    fn markup_is_escaped() {
        assert_eq!(escape("a&b <c>"), "a&amp;b &lt;c&gt;");
    }
}
