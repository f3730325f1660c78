//! pusher: the I/O around a pair's offsite [`Schedule`]. The pair's worker
//! (`shell`) tells it after each turn whether the pair is idle and whether
//! the mirror wrote into DST; it starts the pushes and the forgets the
//! schedule asks for, each on a thread of its own at low CPU and I/O
//! priority, so the worker goes on mirroring while a push runs (the
//! repository is read and written by rustic; DST only read, but for the
//! marker in its `.mirrortray/`, see `offsite_clean`). Their ends
//! come back through [`Pusher::done`].
//!
//! A push still running when the worker stops is left to the process's
//! end: rustic writes packs, then the index, then the snapshot, so one cut
//! off leaves a repository restic accepts, and the next push reuses what
//! reached it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};
use jiff::Timestamp;

use super::offsite::{Job, Outcome, Said, Schedule, Timing};
use super::{Notice, OffsiteFailure, OffsiteStatus};
use crate::engine::error::show;
use crate::engine::offsite::{Offsite, OffsiteSpec, Reason};

/// How long a minute of the schedule is: a real one, unless a test sets
/// `MIRRORTRAY_TEST_MINUTE_MS` (the whole schedule — interval, back-off,
/// settling, forget, overdue — then runs in that scale).
fn minute() -> Duration {
    std::env::var("MIRRORTRAY_TEST_MINUTE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map_or(Duration::from_secs(60), Duration::from_millis)
}

/// How often a push's progress is said.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

pub(super) struct Pusher {
    index: usize,
    schedule: Schedule,
    offsite: Arc<Offsite>,
    done_tx: Sender<Outcome>,
    /// Where the jobs' ends arrive.
    pub(super) done: Receiver<Outcome>,
    shown: Option<OffsiteStatus>,
}

impl Pusher {
    pub(super) fn new(index: usize, spec: &OffsiteSpec, dst: &Path) -> Pusher {
        let c = &spec.config;
        let timing = Timing::new(c.interval_minutes, c.overdue_hours, minute());
        let cache = crate::engine::paths::cache_dir().map(|d| d.join("offsite"));
        let (done_tx, done) = unbounded();
        Pusher {
            index,
            schedule: Schedule::new(timing, Instant::now(), Timestamp::now()),
            offsite: Arc::new(Offsite::new(&spec.name, dst, c, cache)),
            done_tx,
            done,
            shown: None,
        }
    }

    /// When to be asked again (every second while pushing, to say how
    /// far it has got).
    pub(super) fn deadline(&self) -> Option<Instant> {
        let next = self.schedule.poll_timeout();
        if self.schedule.seen().pushing.is_some() {
            let soon = Instant::now() + PROGRESS_EVERY;
            return Some(next.map_or(soon, |n| n.min(soon)));
        }
        next
    }

    /// One turn: what the worker saw (`idle`, `changed`: the mirror wrote
    /// into DST, `done`: a job ended); starts what is due. Returns the
    /// notices for the app.
    pub(super) fn step(&mut self, idle: bool, changed: bool, done: Option<Outcome>) -> Vec<Notice> {
        let (now, wall) = (Instant::now(), Timestamp::now());
        if changed {
            self.schedule.handle_changed(now, wall);
        }
        if let Some(o) = done {
            self.schedule.handle_done(o, now, wall);
        }
        self.schedule.handle_idle(idle, now);
        self.schedule.handle_timeout(now);
        if let Some(job) = self.schedule.poll_job(now, wall) {
            self.start(job);
        }
        let mut out = Vec::new();
        while let Some(s) = self.schedule.poll_said() {
            out.push(match s {
                Said::Failed { reason, next_try } => Notice::OffsiteFailed {
                    index: self.index,
                    repository: self.offsite.repository().to_string(),
                    reason,
                    next_try,
                },
                Said::Overdue { since } => Notice::OffsiteOverdue {
                    index: self.index,
                    repository: self.offsite.repository().to_string(),
                    since,
                },
                Said::Recovered => Notice::OffsiteRecovered { index: self.index },
            });
        }
        let status = self.status();
        if self.shown.as_ref() != Some(&status) {
            self.shown = Some(status.clone());
            out.push(Notice::Offsite(status));
        }
        out
    }

    fn status(&self) -> OffsiteStatus {
        let seen = self.schedule.seen();
        OffsiteStatus {
            index: self.index,
            repository: self.offsite.repository().to_string(),
            last_copy: seen.last_copy,
            pushing: seen.pushing,
            progress: seen.pushing.map(|_| self.offsite.progress().get()),
            failed: seen.failed.map(|(at, reason, next_try)| OffsiteFailure {
                at,
                reason,
                next_try,
            }),
            overdue_since: seen.overdue_since,
            waiting: seen.waiting,
        }
    }

    fn start(&mut self, job: Job) {
        let offsite = self.offsite.clone();
        let tx = self.done_tx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("offsite-{}", self.index))
            .spawn(move || {
                let _ = tx.send(in_background(|| run(&offsite, job)));
            });
        if let Err(e) = spawned {
            let _ = self.done_tx.send(Outcome::Failed(format!(
                "cannot start a thread for the offsite copy: {e}"
            )));
        }
    }
}

/// Does one job (on its own thread), logged as the commands say it.
fn run(o: &Offsite, job: Job) -> Outcome {
    let dst = show(o.dst());
    match job {
        Job::Push => match o.push_if_changed() {
            Ok(p) if p.new => {
                log::info!(
                    "offsite: snapshot {} of {dst} in {}: {} new, {} changed, {} unchanged files, {} added, in {:.1} s",
                    p.snap.short_id,
                    o.repository(),
                    p.files_new,
                    p.files_changed,
                    p.files_unmodified,
                    crate::engine::words::bytes_text(p.bytes_added),
                    p.took.as_secs_f64()
                );
                Outcome::Pushed {
                    snapshot: p.snap.time,
                    new: true,
                }
            }
            Ok(p) => {
                log::info!(
                    "offsite: {dst} is as its snapshot {} in {} holds it{}; no new snapshot",
                    p.snap.short_id,
                    o.repository(),
                    if p.walked {
                        ""
                    } else {
                        " (the mirror wrote nothing since; not walked)"
                    }
                );
                Outcome::Pushed {
                    snapshot: p.snap.time,
                    new: false,
                }
            }
            Err(e) if matches!(e.reason, Reason::Locked(_)) => {
                log::info!("offsite push of {dst} waits: {e}");
                Outcome::Locked(e.brief())
            }
            Err(e) => {
                log::error!("offsite push of {dst}: {e}");
                Outcome::Failed(e.brief())
            }
        },
        Job::Forget => match o.forget() {
            Ok(f) => {
                if !f.forgotten.is_empty() {
                    log::info!(
                        "offsite: kept {} of {} snapshots of {dst} in {}, forgot {}{}",
                        f.kept.len(),
                        f.kept.len() + f.forgotten.len(),
                        o.repository(),
                        f.forgotten.len(),
                        if f.bytes_freed > 0 {
                            format!(
                                ", {} freed",
                                crate::engine::words::bytes_text(f.bytes_freed)
                            )
                        } else {
                            String::new()
                        }
                    );
                }
                Outcome::Forgot
            }
            Err(e) => {
                log::warn!("offsite forget of {dst}: {e}");
                Outcome::Failed(e.brief())
            }
        },
    }
}

/// Runs `work` on this thread lowered (see [`lower_priority`]), with its
/// rayon work on a pool of lowered threads of its own: rustic sorts and
/// decrypts on rayon, and rayon's global pool belongs to the mirror (its
/// full passes made it, at normal priority, before any push).
pub(crate) fn in_background<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    lower_priority();
    match rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("offsite-work-{i}"))
        .start_handler(|_| lower_priority())
        .build()
    {
        Ok(pool) => pool.install(work),
        Err(e) => {
            log::debug!(
                "offsite: no low-priority pool of its own ({e}); rustic's parallel work runs at normal priority"
            );
            work()
        }
    }
}

/// This thread (and the threads it starts, which inherit both) at the
/// lowest CPU priority and in the idle I/O class: a push takes what the
/// machine does not use. Linux only: elsewhere `setpriority` would lower
/// the whole process, the mirror too.
pub(crate) fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid, setpriority and ioprio_set take plain integers and
        // change only this thread's scheduling.
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            if libc::setpriority(libc::PRIO_PROCESS, tid, 19) != 0 {
                log::debug!(
                    "offsite: cannot lower the CPU priority: {}",
                    std::io::Error::last_os_error()
                );
            }
            // include/uapi/linux/ioprio.h: who 1 = IOPRIO_WHO_PROCESS (a
            // thread id), class 3 = IOPRIO_CLASS_IDLE, shifted by 13.
            const IOPRIO_WHO_PROCESS: libc::c_long = 1;
            const IOPRIO_CLASS_IDLE: libc::c_long = 3;
            let prio = IOPRIO_CLASS_IDLE << 13;
            if libc::syscall(
                libc::SYS_ioprio_set,
                IOPRIO_WHO_PROCESS,
                tid as libc::c_long,
                prio,
            ) != 0
            {
                log::debug!(
                    "offsite: cannot lower the I/O priority: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    /// This thread's nice value and I/O priority.
    fn priority() -> (i32, libc::c_long) {
        // SAFETY: plain integers in and out.
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            *libc::__errno_location() = 0;
            let nice = libc::getpriority(libc::PRIO_PROCESS, tid);
            let ioprio =
                libc::syscall(libc::SYS_ioprio_get, 1 as libc::c_long, tid as libc::c_long);
            (nice, ioprio)
        }
    }

    #[test]
    fn a_push_s_parallel_work_runs_lowered_though_the_global_pool_is_not() {
        use rayon::prelude::*;
        // The mirror's passes made the global pool first, at normal
        // priority.
        let global: Vec<i32> = (0..64).into_par_iter().map(|_| priority().0).collect();
        assert!(global.iter().all(|&n| n < 19));
        let seen = std::thread::spawn(|| {
            super::in_background(|| {
                (0..256)
                    .into_par_iter()
                    .map(|_| priority())
                    .collect::<Vec<_>>()
            })
        })
        .join()
        .unwrap_or_default();
        assert!(!seen.is_empty());
        for (nice, ioprio) in seen {
            assert_eq!(nice, 19);
            assert_eq!(ioprio >> 13, 3, "idle I/O class");
        }
    }

    #[test]
    fn a_push_thread_runs_at_the_lowest_cpu_and_io_priority() {
        let (nice, ioprio) = std::thread::spawn(|| {
            super::lower_priority();
            // A thread it starts inherits both (rustic's own threads).
            std::thread::spawn(|| unsafe {
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                *libc::__errno_location() = 0;
                let nice = libc::getpriority(libc::PRIO_PROCESS, tid);
                let ioprio =
                    libc::syscall(libc::SYS_ioprio_get, 1 as libc::c_long, tid as libc::c_long);
                (nice, ioprio)
            })
            .join()
            .unwrap_or((0, 0))
        })
        .join()
        .unwrap_or((0, 0));
        assert_eq!(nice, 19);
        assert_eq!(ioprio >> 13, 3, "idle I/O class");
        // SAFETY: as above; the test's own thread was not lowered.
        let own = unsafe {
            libc::getpriority(
                libc::PRIO_PROCESS,
                libc::syscall(libc::SYS_gettid) as libc::id_t,
            )
        };
        assert!(own < 19, "only the push thread is lowered");
    }
}
