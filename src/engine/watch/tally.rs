//! tally: how far a pair's work in hand has got, counted in the shell.
//!
//! Model: a *run* is the time a pair is busy, from the first status that
//! says so to the next that does not. Every copy in the run (live batches,
//! folder checks, whole-pair passes) adds to one count of files and bytes,
//! so the number a person reads only grows. A whole-pair pass counts its
//! work first ([`Mirror::survey`](crate::engine::mirror::Mirror::survey)),
//! which gives the run a total.
//!
//! Every copy is also counted in its hour, for the last 24 hours (the
//! page's activity chart); those counts outlive runs.
//!
//! The core knows nothing of this: its statuses pass through [`Tally::stamp`]
//! on their way out, which adds the progress, and while a pass runs (the
//! core waits for it) the tally sends the core's last status again with
//! fresh numbers, at most every [`STATUS_EVERY`].

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use crossbeam_channel::Sender;

use super::Notice;
use super::core::STATUS_EVERY;
use super::status::{PairStatus, Progress, State};
use crate::engine::event::Summary;

pub(super) struct Tally {
    notices: Sender<Notice>,
    inner: Mutex<Inner>,
    /// Files copied per hour (hours since the epoch), oldest first.
    hours: Mutex<VecDeque<(i64, u64)>>,
}

/// How many hours of counts are kept.
const HOURS: i64 = 24;

#[derive(Default)]
struct Inner {
    progress: Progress,
    /// The core's last status while busy (none: not busy), and when a
    /// status was last sent.
    busy: Option<PairStatus>,
    sent: Option<Instant>,
}

impl Tally {
    pub(super) fn new(notices: Sender<Notice>) -> Tally {
        Tally {
            notices,
            inner: Mutex::new(Inner::default()),
            hours: Mutex::new(VecDeque::new()),
        }
    }

    /// The core's status, with how far the run has got; a status that is
    /// not busy ends the run.
    pub(super) fn stamp(&self, mut s: PairStatus) -> PairStatus {
        if let Ok(h) = self.hours.lock() {
            s.copied_per_hour = h.iter().copied().collect();
        }
        let Ok(mut t) = self.inner.lock() else {
            return s;
        };
        if matches!(s.state, State::Busy { .. }) {
            s.progress = Some(t.progress);
            t.busy = Some(s.clone());
        } else {
            *t = Inner::default();
        }
        t.sent = Some(Instant::now());
        s
    }

    /// A whole-pair pass starts counting its work.
    pub(super) fn counting(&self) {
        self.update(true, |p| p.counting = true);
    }

    /// A whole-pair pass has counted what it will copy.
    pub(super) fn counted(&self, work: &Summary) {
        self.update(true, |p| {
            p.counting = false;
            p.files_total = Some(p.files_done + work.copied);
            p.bytes_total = Some(p.bytes_done + work.bytes);
        });
    }

    /// One file or symlink copied.
    pub(super) fn copied(&self, bytes: u64) {
        self.count_hour(jiff::Timestamp::now().as_second().div_euclid(3600));
        self.update(false, |p| {
            p.files_done += 1;
            p.bytes_done += bytes;
        });
    }

    /// One more copy in `hour`; hours older than a day are forgotten.
    fn count_hour(&self, hour: i64) {
        let Ok(mut h) = self.hours.lock() else {
            return;
        };
        match h.back_mut() {
            Some((last, n)) if *last == hour => *n += 1,
            _ => h.push_back((hour, 1)),
        }
        while h.front().is_some_and(|(first, _)| *first <= hour - HOURS) {
            h.pop_front();
        }
    }

    /// Changes the progress, and sends it when the pair is busy and the
    /// last status is old enough (or `now`).
    fn update(&self, now: bool, f: impl FnOnce(&mut Progress)) {
        let Ok(mut t) = self.inner.lock() else {
            return;
        };
        f(&mut t.progress);
        let due = now || t.sent.is_none_or(|at| at.elapsed() >= STATUS_EVERY);
        let progress = t.progress;
        if let (true, Some(s)) = (due, t.busy.as_mut()) {
            s.progress = Some(progress);
            let s = s.clone();
            t.sent = Some(Instant::now());
            let _ = self.notices.send(Notice::Status(s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: State) -> PairStatus {
        PairStatus {
            index: 0,
            src: "/s".into(),
            dst: "/d".into(),
            state,
            last_ok: None,
            verified_at: None,
            failing: 0,
            failures: Vec::new(),
            progress: None,
            being_written: Vec::new(),
            copied_per_hour: Vec::new(),
        }
    }

    #[test]
    fn a_run_counts_up_and_ends_when_the_pair_is_not_busy() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let t = Tally::new(tx);
        let busy = t.stamp(status(State::Busy { pending: 0 }));
        assert_eq!(busy.progress, Some(Progress::default()));
        t.counting();
        let work = Summary {
            copied: 3,
            bytes: 300,
            ..Summary::default()
        };
        t.counted(&work);
        t.copied(100);
        let sent: Vec<Option<Progress>> = rx
            .try_iter()
            .map(|n| match n {
                Notice::Status(s) => s.progress,
                _ => None,
            })
            .collect();
        let counting = Progress {
            counting: true,
            ..Progress::default()
        };
        let counted = Progress {
            files_total: Some(3),
            bytes_total: Some(300),
            ..Progress::default()
        };
        // Counting and counted are sent at once; the copy waits its turn.
        assert_eq!(sent, vec![Some(counting), Some(counted)]);
        let later = t.stamp(status(State::Busy { pending: 2 }));
        assert_eq!(
            later.progress,
            Some(Progress {
                files_done: 1,
                bytes_done: 100,
                ..counted
            })
        );
        assert_eq!(later.headline(), "Copying 1 of 3 files · 200 bytes left");
        let idle = t.stamp(status(State::Idle));
        assert_eq!(idle.progress, None);
        let next = t.stamp(status(State::Busy { pending: 4 }));
        assert_eq!(next.progress, Some(Progress::default()));
        assert_eq!(next.headline(), "Copying 4 files");
        assert_eq!(next.copied_per_hour.iter().map(|h| h.1).sum::<u64>(), 1);
    }

    #[test]
    fn copies_are_counted_per_hour_for_a_day() {
        let (tx, _rx) = crossbeam_channel::unbounded();
        let t = Tally::new(tx);
        for hour in [100, 100, 101, 110, 124, 124, 125] {
            t.count_hour(hour);
        }
        let s = t.stamp(status(State::Idle));
        // Hour 101 is a day before 125: gone, with 100.
        assert_eq!(s.copied_per_hour, vec![(110, 1), (124, 2), (125, 1)]);
    }
}
