//! offsite (watch): when a pair's offsite copy is pushed, as a state machine
//! without I/O (the shape of `core`). The shell (`pusher.rs`) owns the clock,
//! the thread that pushes and the repository; it tells the [`Schedule`]
//! what happened (`handle_*`), asks it what to start now (`poll_job`), what
//! to tell the user (`poll_said`) and when to ask again (`poll_timeout`).
//!
//! Rules:
//! - a push is due when DST holds changes no snapshot has ("dirty"), the
//!   pair has been idle for `settle` (its changes have settled), and the
//!   last push started at least `interval` ago — the first one of a run at
//!   once;
//! - a run starts dirty: what the mirror wrote while nothing pushed is not
//!   known. That first push skips the snapshot when the tree is the parent's
//!   (the shell asks for `push_if_changed`): it costs a list of the
//!   repository's snapshots when DST's marker says the mirror wrote nothing
//!   since (`offsite_clean`), a walk of DST's metadata otherwise, and
//!   writes nothing;
//! - changes made while a push runs stay for the next push;
//! - a failed push is tried again after `first_backoff`, then twice that
//!   each time, at most `interval`; the user is told when it first fails
//!   and when the reason changes, not at every try;
//! - forget + prune (the keep policy) after a push that made a snapshot, at
//!   most once per `forget_every`; a failed one is tried again an interval
//!   later;
//! - overdue: a change older than `overdue` is still in no snapshot. Said
//!   once, until a push succeeds ("recovered" then, as after a failure).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};

/// The schedule's durations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    /// Between the starts of two pushes, at least.
    pub interval: Duration,
    /// The pair idle this long before a push.
    pub settle: Duration,
    /// The first pause after a failed push (doubled at each failure).
    pub first_backoff: Duration,
    /// Between two forget + prune, at least.
    pub forget_every: Duration,
    /// Changes in no snapshot for this long: overdue.
    pub overdue: Duration,
}

impl Timing {
    /// The timing of a config: `interval_minutes` and `overdue_hours`, with
    /// `minute` as long as a minute is (a real one, except in tests).
    pub fn new(interval_minutes: u32, overdue_hours: u32, minute: Duration) -> Timing {
        let interval = minute * interval_minutes.max(1);
        Timing {
            interval,
            // Ten seconds, but never longer than the interval (tests).
            settle: (minute / 6).min(interval),
            first_backoff: minute.min(interval),
            forget_every: minute * 60 * 24,
            overdue: minute * 60 * overdue_hours.max(1),
        }
    }
}

/// What to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    Push,
    /// Forget + prune with the keep policy.
    Forget,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `snapshot`: the time of the pair's latest snapshot now; `new`: this
    /// push made it (otherwise nothing had changed since it).
    Pushed {
        snapshot: Timestamp,
        new: bool,
    },
    Forgot,
    /// The reason, in words.
    Failed(String),
    /// Another mirrortray on this machine is writing to the repository (a
    /// push by hand, or the push of a run the tray restarted): tried
    /// again after the first back-off, and not told as a failure.
    Locked(String),
}

/// What the user is to be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Said {
    /// A push failed (first time, or for another reason than before).
    Failed { reason: String, next_try: Timestamp },
    /// Changes made at `since` are still in no snapshot.
    Overdue { since: Timestamp },
    /// A push succeeded after a failure or while overdue.
    Recovered,
}

/// The schedule's state as shown (the shell adds the repository).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// The pair's latest snapshot, when one is known.
    pub last_copy: Option<Timestamp>,
    /// A push running, since.
    pub pushing: Option<Timestamp>,
    /// The last push failed: when, why, and when it is tried again.
    pub failed: Option<(Timestamp, String, Timestamp)>,
    /// Changes in no snapshot since this time, for longer than allowed.
    pub overdue_since: Option<Timestamp>,
    /// Changes in no snapshot yet (a push will follow).
    pub waiting: bool,
}

#[derive(Debug, Clone, Copy)]
struct Moment {
    at: Instant,
    wall: Timestamp,
}

#[derive(Debug, Clone, Copy)]
struct Running {
    job: Job,
    started: Moment,
    /// The dirt the push takes (restored if it fails).
    took: Option<Moment>,
}

/// One pair's offsite schedule.
#[derive(Debug)]
pub struct Schedule {
    timing: Timing,
    /// The first change no snapshot holds.
    dirty: Option<Moment>,
    idle_since: Option<Instant>,
    running: Option<Running>,
    /// Start of the last push that succeeded.
    last_push: Option<Instant>,
    failures: u32,
    retry_at: Option<Moment>,
    failed: Option<(Timestamp, String)>,
    /// The reason last told to the user.
    told: Option<String>,
    last_copy: Option<Timestamp>,
    forget_wanted: bool,
    next_forget: Instant,
    overdue_said: bool,
    said: VecDeque<Said>,
}

fn later(w: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| w.checked_add(d).ok())
        .unwrap_or(w)
}

impl Schedule {
    /// A run that starts at `now` (dirty: see the module doc).
    pub fn new(timing: Timing, now: Instant, wall: Timestamp) -> Schedule {
        Schedule {
            timing,
            dirty: Some(Moment { at: now, wall }),
            idle_since: None,
            running: None,
            last_push: None,
            failures: 0,
            retry_at: None,
            failed: None,
            told: None,
            last_copy: None,
            forget_wanted: false,
            next_forget: now,
            overdue_said: false,
            said: VecDeque::new(),
        }
    }

    /// New timing (the config changed).
    pub fn set_timing(&mut self, timing: Timing) {
        self.timing = timing;
    }

    /// The mirror wrote into DST.
    pub fn handle_changed(&mut self, now: Instant, wall: Timestamp) {
        self.dirty.get_or_insert(Moment { at: now, wall });
    }

    /// Whether the pair is idle (nothing pending, not paused, no problem).
    pub fn handle_idle(&mut self, idle: bool, now: Instant) {
        match (idle, self.idle_since) {
            (true, None) => self.idle_since = Some(now),
            (false, Some(_)) => self.idle_since = None,
            _ => {}
        }
    }

    /// Time passed (overdue is found here).
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(d) = self.dirty_since()
            && !self.overdue_said
            && now >= d.at + self.timing.overdue
        {
            self.overdue_said = true;
            self.said.push_back(Said::Overdue { since: d.wall });
        }
    }

    /// The oldest change in no snapshot (a running push's included).
    fn dirty_since(&self) -> Option<Moment> {
        let took = self.running.and_then(|r| r.took);
        match (took, self.dirty) {
            (Some(a), Some(b)) => Some(if a.at <= b.at { a } else { b }),
            (a, b) => a.or(b),
        }
    }

    /// A job ended.
    pub fn handle_done(&mut self, outcome: Outcome, now: Instant, wall: Timestamp) {
        let Some(run) = self.running.take() else {
            return;
        };
        match (run.job, outcome) {
            (Job::Push, Outcome::Pushed { snapshot, new }) => {
                self.last_push = Some(run.started.at);
                self.last_copy = Some(snapshot);
                self.failures = 0;
                self.retry_at = None;
                self.forget_wanted |= new;
                let was_failing = self.failed.take().is_some();
                self.told = None;
                let was_overdue = std::mem::take(&mut self.overdue_said);
                if was_failing || was_overdue {
                    self.said.push_back(Said::Recovered);
                }
            }
            (Job::Push, Outcome::Failed(reason)) => {
                self.restore_dirt(run.took);
                self.failures = self.failures.saturating_add(1);
                let backoff = self
                    .timing
                    .first_backoff
                    .saturating_mul(1 << (self.failures - 1).min(20))
                    .min(self.timing.interval);
                let next = Moment {
                    at: now + backoff,
                    wall: later(wall, backoff),
                };
                self.retry_at = Some(next);
                if self.told.as_deref() != Some(reason.as_str()) {
                    self.told = Some(reason.clone());
                    self.said.push_back(Said::Failed {
                        reason: reason.clone(),
                        next_try: next.wall,
                    });
                }
                self.failed = Some((wall, reason));
            }
            (Job::Push, Outcome::Locked(_)) => {
                self.restore_dirt(run.took);
                self.retry_at = Some(Moment {
                    at: now + self.timing.first_backoff,
                    wall: later(wall, self.timing.first_backoff),
                });
            }
            (Job::Forget, Outcome::Forgot) => {
                self.forget_wanted = false;
                self.next_forget = now + self.timing.forget_every;
            }
            (Job::Forget, _) => {
                self.next_forget = now + self.timing.interval;
            }
            // A push answered as a forget, or the reverse: not made by the
            // shell; taken as a failure of nothing.
            (Job::Push, Outcome::Forgot) => {}
        }
    }

    /// What a push that did not end took goes back to wait for the next.
    fn restore_dirt(&mut self, took: Option<Moment>) {
        if let Some(took) = took {
            self.dirty = Some(match self.dirty {
                Some(d) if d.at < took.at => d,
                _ => took,
            });
        }
    }

    /// When the next push may start (`None`: none wanted).
    fn push_at(&self) -> Option<Instant> {
        self.dirty?;
        let settled = self.idle_since? + self.timing.settle;
        let gate = match (self.retry_at, self.last_push) {
            (Some(r), _) => Some(r.at),
            (None, Some(l)) => Some(l + self.timing.interval),
            (None, None) => None,
        };
        Some(gate.map_or(settled, |g| g.max(settled)))
    }

    fn forget_at(&self) -> Option<Instant> {
        self.idle_since?;
        self.forget_wanted.then_some(self.next_forget)
    }

    /// The job to start now, if any (it counts as running until
    /// [`handle_done`](Self::handle_done)).
    pub fn poll_job(&mut self, now: Instant, wall: Timestamp) -> Option<Job> {
        if self.running.is_some() {
            return None;
        }
        let started = Moment { at: now, wall };
        if self.push_at().is_some_and(|t| t <= now) {
            self.running = Some(Running {
                job: Job::Push,
                started,
                took: self.dirty.take(),
            });
            return Some(Job::Push);
        }
        if self.forget_at().is_some_and(|t| t <= now) {
            self.running = Some(Running {
                job: Job::Forget,
                started,
                took: None,
            });
            return Some(Job::Forget);
        }
        None
    }

    /// Something to tell the user.
    pub fn poll_said(&mut self) -> Option<Said> {
        self.said.pop_front()
    }

    /// When to be asked again (`None`: only when something happens).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let overdue = self
            .dirty_since()
            .filter(|_| !self.overdue_said)
            .map(|d| d.at + self.timing.overdue);
        let jobs = if self.running.is_some() {
            None
        } else {
            [self.push_at(), self.forget_at()]
                .into_iter()
                .flatten()
                .min()
        };
        [overdue, jobs].into_iter().flatten().min()
    }

    /// What is shown.
    pub fn seen(&self) -> Seen {
        Seen {
            last_copy: self.last_copy,
            pushing: self
                .running
                .filter(|r| r.job == Job::Push)
                .map(|r| r.started.wall),
            failed: self
                .failed
                .as_ref()
                .zip(self.retry_at)
                .map(|((at, why), next)| (*at, why.clone(), next.wall)),
            overdue_since: self
                .dirty_since()
                .filter(|_| self.overdue_said)
                .map(|d| d.wall),
            waiting: self.dirty.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Scenario tables: inputs at times (seconds from the start, a minute
    //! being 60 s) and what each must give: the job started, what is said.
    use super::*;

    #[derive(Debug, Clone)]
    enum In {
        Changed,
        Idle(bool),
        Done(Outcome),
        /// Only time passes.
        Tick,
    }

    fn pushed(new: bool) -> In {
        In::Done(Outcome::Pushed {
            snapshot: Timestamp::UNIX_EPOCH,
            new,
        })
    }

    fn failed(why: &str) -> In {
        In::Done(Outcome::Failed(why.into()))
    }

    /// The interval is 60 minutes, overdue 24 hours.
    fn timing() -> Timing {
        Timing::new(60, 24, Duration::from_secs(60))
    }

    const M: u64 = 60;
    const H: u64 = 3600;

    /// Runs `steps` (at s, input, expected outputs as labels: "Push",
    /// "Forget", "Failed(why)", "Overdue", "Recovered") and checks the next
    /// deadline after each when one is given.
    fn run(name: &str, steps: &[(u64, In, &[&str], Option<u64>)]) -> Schedule {
        let t0 = Instant::now();
        let w0 = Timestamp::UNIX_EPOCH;
        let mut s = Schedule::new(timing(), t0, w0);
        for (i, (at, input, want, next)) in steps.iter().enumerate() {
            let now = t0 + Duration::from_secs(*at);
            let wall = later(w0, Duration::from_secs(*at));
            match input.clone() {
                In::Changed => s.handle_changed(now, wall),
                In::Idle(b) => s.handle_idle(b, now),
                In::Done(o) => s.handle_done(o, now, wall),
                In::Tick => {}
            }
            s.handle_timeout(now);
            let mut got = Vec::new();
            while let Some(said) = s.poll_said() {
                got.push(match said {
                    Said::Failed { reason, .. } => format!("Failed({reason})"),
                    Said::Overdue { .. } => "Overdue".into(),
                    Said::Recovered => "Recovered".into(),
                });
            }
            if let Some(j) = s.poll_job(now, wall) {
                got.push(format!("{j:?}"));
            }
            assert_eq!(got, *want, "{name}: step {i} at {at} s");
            if let Some(n) = next {
                assert_eq!(
                    s.poll_timeout(),
                    Some(t0 + Duration::from_secs(*n)),
                    "{name}: deadline after step {i} at {at} s"
                );
            }
        }
        s
    }

    #[test]
    fn a_push_waits_for_the_changes_to_settle_and_for_the_interval() {
        run(
            "first push of a run, then only after changes and the interval",
            &[
                // Starting: dirty, but not idle yet.
                (0, In::Tick, &[], Some(24 * H)),
                (5, In::Idle(true), &[], Some(15)),
                (14, In::Tick, &[], Some(15)),
                (15, In::Tick, &["Push"], Some(24 * H)),
                (20, pushed(true), &["Forget"], None),
                (30, In::Done(Outcome::Forgot), &[], None),
                // Nothing changed: nothing to do, however long.
                (10 * H, In::Tick, &[], None),
                // A change: pushed once settled (the interval is long past).
                (10 * H, In::Idle(false), &[], None),
                (10 * H, In::Changed, &[], None),
                (10 * H + 1, In::Idle(true), &[], Some(10 * H + 11)),
                (10 * H + 11, In::Tick, &["Push"], None),
                (10 * H + 12, pushed(true), &[], None),
                // Forgot less than a day ago: not yet.
                (10 * H + 13, In::Tick, &[], None),
            ],
        );
        run(
            "changes within the interval wait for its end",
            &[
                (0, In::Idle(true), &[], Some(10)),
                (10, In::Tick, &["Push"], None),
                (11, pushed(false), &[], None),
                (12, In::Idle(false), &[], None),
                (12, In::Changed, &[], None),
                (13, In::Idle(true), &[], Some(10 + H)),
                (10 + H, In::Tick, &["Push"], None),
            ],
        );
        run(
            "busy again before settling: the settle starts over",
            &[
                (0, In::Idle(true), &[], Some(10)),
                (5, In::Idle(false), &[], None),
                (6, In::Idle(true), &[], Some(16)),
                (16, In::Tick, &["Push"], None),
            ],
        );
        run(
            "a push with nothing new forgets nothing",
            &[
                (0, In::Idle(true), &[], None),
                (10, In::Tick, &["Push"], None),
                (11, pushed(false), &[], None),
                (12, In::Tick, &[], None),
            ],
        );
    }

    #[test]
    fn changes_during_a_push_go_in_the_next() {
        run(
            "changed while pushing",
            &[
                (0, In::Idle(true), &[], None),
                (10, In::Tick, &["Push"], None),
                (11, In::Idle(false), &[], None),
                (11, In::Changed, &[], None),
                (12, In::Idle(true), &[], None),
                // No second push while one runs.
                (30, In::Tick, &[], None),
                (40, pushed(true), &["Forget"], None),
                (41, In::Done(Outcome::Forgot), &[], Some(10 + H)),
                (10 + H, In::Tick, &["Push"], None),
            ],
        );
    }

    #[test]
    fn a_failed_push_is_retried_with_back_off_up_to_the_interval() {
        let s = run(
            "server down",
            &[
                (0, In::Idle(true), &[], None),
                (10, In::Tick, &["Push"], None),
                (
                    11,
                    failed("unreachable"),
                    &["Failed(unreachable)"],
                    Some(11 + M),
                ),
                (11 + M, In::Tick, &["Push"], None),
                // Said once for the same reason.
                (12 + M, failed("unreachable"), &[], Some(12 + 3 * M)),
                (12 + 3 * M, In::Tick, &["Push"], None),
                (13 + 3 * M, failed("unreachable"), &[], Some(13 + 7 * M)),
                (13 + 7 * M, In::Tick, &["Push"], None),
                (14 + 7 * M, failed("unreachable"), &[], Some(14 + 15 * M)),
                (14 + 15 * M, In::Tick, &["Push"], None),
                (15 + 15 * M, failed("unreachable"), &[], Some(15 + 31 * M)),
                (15 + 31 * M, In::Tick, &["Push"], None),
                (16 + 31 * M, failed("unreachable"), &[], Some(16 + 63 * M)),
                (16 + 63 * M, In::Tick, &["Push"], None),
                // Capped at the interval.
                (17 + 63 * M, failed("unreachable"), &[], Some(17 + 123 * M)),
                (17 + 123 * M, In::Tick, &["Push"], None),
                // Another reason is said.
                (
                    18 + 123 * M,
                    failed("disk full"),
                    &["Failed(disk full)"],
                    None,
                ),
            ],
        );
        let seen = s.seen();
        let (_, why, _) = seen.failed.unwrap();
        assert_eq!(why, "disk full");
        assert!(seen.waiting, "the changes wait for the next try");
        run(
            "another mirrortray holds the repository: tried again, not told",
            &[
                (0, In::Idle(true), &[], None),
                (10, In::Tick, &["Push"], None),
                (
                    11,
                    In::Done(Outcome::Locked("locked".into())),
                    &[],
                    Some(11 + M),
                ),
                (11 + M, In::Tick, &["Push"], None),
                (12 + M, pushed(true), &["Forget"], None),
            ],
        );
        run(
            "back after a failure",
            &[
                (0, In::Idle(true), &[], None),
                (10, In::Tick, &["Push"], None),
                (11, failed("unreachable"), &["Failed(unreachable)"], None),
                (11 + M, In::Tick, &["Push"], None),
                (12 + M, pushed(true), &["Recovered", "Forget"], None),
            ],
        );
        run(
            "a failed push is retried even without new changes, and only when idle",
            &[
                (0, In::Idle(true), &[], None),
                (10, In::Tick, &["Push"], None),
                (11, In::Idle(false), &[], None),
                (12, failed("unreachable"), &["Failed(unreachable)"], None),
                (12 + M, In::Tick, &[], None),
                (13 + M, In::Idle(true), &[], Some(23 + M)),
                (23 + M, In::Tick, &["Push"], None),
            ],
        );
    }

    #[test]
    fn changes_in_no_snapshot_for_too_long_are_overdue_once() {
        let s = run(
            "failing for a day",
            &[
                (0, In::Idle(true), &[], None),
                (10, In::Tick, &["Push"], None),
                (11, failed("unreachable"), &["Failed(unreachable)"], None),
                (24 * H - 1, In::Tick, &["Push"], None),
                (24 * H - 1, failed("unreachable"), &[], None),
                (24 * H, In::Tick, &["Overdue"], None),
                (24 * H + 10, In::Tick, &[], None),
            ],
        );
        assert_eq!(s.seen().overdue_since, Some(Timestamp::UNIX_EPOCH));
        let s = run(
            "overdue, then copied",
            &[
                // Never idle for a day (a pair busy all the time).
                (0, In::Idle(false), &[], Some(24 * H)),
                (24 * H, In::Tick, &["Overdue"], None),
                (24 * H + 1, In::Idle(true), &[], None),
                (24 * H + 11, In::Tick, &["Push"], None),
                (24 * H + 12, pushed(true), &["Recovered", "Forget"], None),
            ],
        );
        assert_eq!(s.seen().overdue_since, None);
        assert!(s.seen().failed.is_none());
    }

    #[test]
    fn forget_failing_is_tried_again_an_interval_later() {
        run(
            "forget fails",
            &[
                (0, In::Idle(true), &[], None),
                (10, In::Tick, &["Push"], None),
                (11, pushed(true), &["Forget"], None),
                (12, failed("locked"), &[], Some(12 + H)),
                (12 + H, In::Tick, &["Forget"], None),
                (13 + H, In::Done(Outcome::Forgot), &[], None),
                // A day later, after another push with news.
                (14 + H, In::Idle(false), &[], None),
                (14 + H, In::Changed, &[], None),
                (15 + H, In::Idle(true), &[], Some(25 + H)),
                (25 + H, In::Tick, &["Push"], None),
                (26 + H, pushed(true), &[], Some(13 + H + 24 * H)),
            ],
        );
    }

    #[test]
    fn scaled_minutes_scale_the_whole_schedule() {
        let t = Timing::new(2, 1, Duration::from_millis(600));
        assert_eq!(t.interval, Duration::from_millis(1200));
        assert_eq!(t.settle, Duration::from_millis(100));
        assert_eq!(t.first_backoff, Duration::from_millis(600));
        assert_eq!(t.overdue, Duration::from_secs(36));
    }
}
