//! thinning: which old versions go, so that versions stay useful and bounded.
//!
//! Model (Time Machine's): every version is kept for `keep_all`; after that,
//! one per hour until `hourly_until`, one per day until `daily_until`, and one
//! per week after that, until the retention removes it. "One per hour" is per
//! path: of the versions of one path whose time folders fall in the same
//! hour, the newest stays (what the path held at the end of that hour) and
//! the others go. Buckets are whole UTC hours, days and weeks since the
//! epoch, so a version never changes bucket except to a coarser one as it
//! ages: thinning twice is thinning once, and the newest version of a path
//! always stays (it is the newest in its bucket).
//!
//! Only a file or symlink with its own line in `versions.log` is a
//! candidate (the caller, [`super::history::History::thinnable`], says
//! which): never a folder kept as a whole, nor anything inside one (it is one
//! state, and a restore brings it back whole). A version kept because SRC
//! deleted the path is never thinned either: it is the last content of a
//! deleted file, what people come back for, and there is one per deletion
//! rather than one per save. What goes is recorded in `thinned.log` (see
//! `store.rs`), so history can say "the version of that time was thinned;
//! the nearest kept one is from …" instead of pretending.
//!
//! This file is pure: the plan is a function of the policy, the time and the
//! candidates, tested with tables.

use std::collections::HashMap;
use std::path::Path;

use jiff::{SignedDuration, Timestamp};

use super::event::VersionReason;

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;
const WEEK: i64 = 7 * DAY;

/// How versions are thinned as they age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Every version is kept this long.
    pub keep_all: SignedDuration,
    /// Then one per hour up to this age.
    pub hourly_until: SignedDuration,
    /// Then one per day up to this age; one per week after.
    pub daily_until: SignedDuration,
}

impl Policy {
    /// The default: everything for 24 h, hourly for a week, daily for a
    /// month (30 days), weekly after.
    pub const DEFAULT: Policy = Policy {
        keep_all: SignedDuration::from_hours(24),
        hourly_until: SignedDuration::from_hours(7 * 24),
        daily_until: SignedDuration::from_hours(30 * 24),
    };

    /// From the config's whole numbers (validated there).
    pub fn from_config(keep_all_hours: u32, hourly_days: u32, daily_days: u32) -> Policy {
        Policy {
            keep_all: SignedDuration::from_hours(i64::from(keep_all_hours)),
            hourly_until: SignedDuration::from_hours(24 * i64::from(hourly_days)),
            daily_until: SignedDuration::from_hours(24 * i64::from(daily_days)),
        }
    }

    /// The policy for people, as the config says it.
    pub fn describe(&self) -> String {
        format!(
            "every version for {}, then one an hour up to {}, one a day up to {}, one a week after",
            age(self.keep_all),
            age(self.hourly_until),
            age(self.daily_until)
        )
    }

    /// The bucket a version made at `t` falls in at `now` (`None`: too
    /// young to be thinned).
    fn bucket(&self, now: Timestamp, t: Timestamp) -> Option<(i64, i64)> {
        let age = now.duration_since(t);
        if age < self.keep_all {
            return None;
        }
        let width = if age < self.hourly_until {
            HOUR
        } else if age < self.daily_until {
            DAY
        } else {
            WEEK
        };
        Some((width, t.as_second().div_euclid(width)))
    }
}

/// "24 hours", "7 days".
fn age(d: SignedDuration) -> String {
    let h = d.as_hours();
    if h % 24 == 0 && h >= 48 {
        format!("{} days", h / 24)
    } else if h == 1 {
        "1 hour".into()
    } else {
        format!("{h} hours")
    }
}

/// One kept version that may be thinned.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// Its time folder's time.
    pub time: Timestamp,
    pub rel: &'a Path,
    pub reason: Option<VersionReason>,
}

/// Which candidates go (indices into `candidates`, in their order).
pub fn plan(policy: &Policy, now: Timestamp, candidates: &[Candidate<'_>]) -> Vec<usize> {
    // Per path and bucket, the newest candidate so far.
    let mut newest: HashMap<(&Path, (i64, i64)), usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, c) in candidates.iter().enumerate() {
        let Some(b) = policy.bucket(now, c.time) else {
            continue;
        };
        let loser = match newest.get_mut(&(c.rel, b)) {
            None => {
                newest.insert((c.rel, b), i);
                continue;
            }
            Some(j) if candidates[*j].time < c.time => std::mem::replace(j, i),
            Some(_) => i,
        };
        // A deletion counts as its bucket's newest, but always stays.
        if candidates[loser].reason != Some(VersionReason::Deleted) {
            out.push(loser);
        }
    }
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use VersionReason::*;

    /// `now` is a whole hour (2026-12-01T12:00Z), so the tables can say
    /// which bucket a time is in.
    fn now() -> Timestamp {
        "2026-12-01T12:00:00Z"
            .parse()
            .unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn ago(minutes: i64) -> Timestamp {
        now() - SignedDuration::from_mins(minutes)
    }

    const H: i64 = 60;
    const D: i64 = 24 * H;

    /// Rows: the candidates (path, minutes ago, reason), and the indices
    /// that go.
    #[test]
    fn the_newest_version_per_path_and_bucket_stays() {
        type Row<'a> = (&'a str, i64, VersionReason);
        let table: &[(&str, &[Row], &[usize])] = &[
            (
                "everything younger than a day stays",
                &[
                    ("a", 10, Modified),
                    ("a", 20, Modified),
                    ("a", 23 * H, Modified),
                ],
                &[],
            ),
            (
                "two saves in one hour, two days ago: the newer stays",
                &[("a", 2 * D + 10, Modified), ("a", 2 * D + 20, RenamedOver)],
                &[1],
            ),
            (
                "the same, listed newest first",
                &[("a", 2 * D + 20, Modified), ("a", 2 * D + 10, Modified)],
                &[0],
            ),
            (
                "saves in two different hours both stay",
                &[("a", 2 * D + 10, Modified), ("a", 2 * D + 70, Modified)],
                &[],
            ),
            (
                "two paths in one hour: each keeps its own",
                &[("a", 2 * D + 10, Modified), ("b", 2 * D + 20, Modified)],
                &[],
            ),
            (
                "a deletion is never thinned",
                &[("a", 2 * D + 10, Modified), ("a", 2 * D + 20, Deleted)],
                &[],
            ),
            (
                "ten days ago, one a day: of three saves that day, the newest",
                &[
                    ("a", 10 * D + 60, Modified),
                    ("a", 10 * D + 5 * H, Modified),
                    ("a", 10 * D + 9 * H, Replaced),
                ],
                &[1, 2],
            ),
            (
                // Weeks start on Thursdays (the epoch's): 41 days ago was a
                // Wednesday, 40 days ago a Thursday.
                "past a month, one a week",
                &[
                    ("a", 40 * D, Modified),
                    ("a", 41 * D, Modified),
                    ("a", 35 * D, Modified),
                ],
                &[0],
            ),
            (
                "an hourly bucket and a daily one are different buckets",
                &[("a", 7 * D - 30, Modified), ("a", 7 * D + 30, Modified)],
                &[],
            ),
        ];
        for (what, rows, want) in table {
            let paths: Vec<std::path::PathBuf> = rows.iter().map(|r| r.0.into()).collect();
            let c: Vec<Candidate> = rows
                .iter()
                .zip(&paths)
                .map(|(r, p)| Candidate {
                    time: ago(r.1),
                    rel: p,
                    reason: Some(r.2),
                })
                .collect();
            assert_eq!(plan(&Policy::DEFAULT, now(), &c), *want, "{what}");
        }
    }

    #[test]
    fn thinning_twice_is_thinning_once() {
        let paths: Vec<std::path::PathBuf> = (0..3).map(|i| format!("p{i}").into()).collect();
        let mut c = Vec::new();
        for m in (0..60 * D).step_by(37) {
            c.push(Candidate {
                time: ago(m),
                rel: &paths[(m % 3) as usize],
                reason: Some(Modified),
            });
        }
        let gone = plan(&Policy::DEFAULT, now(), &c);
        let left: Vec<Candidate> = c
            .iter()
            .enumerate()
            .filter(|(i, _)| gone.binary_search(i).is_err())
            .map(|(_, c)| *c)
            .collect();
        assert!(plan(&Policy::DEFAULT, now(), &left).is_empty());
        // Every path keeps its newest.
        for p in &paths {
            let newest = c.iter().filter(|c| c.rel == p).map(|c| c.time).max();
            let kept = left.iter().filter(|c| c.rel == p).map(|c| c.time).max();
            assert_eq!(newest, kept);
        }
        // A day ago to a week: at most one per path and hour.
        let hourly = left
            .iter()
            .filter(|c| {
                let a = now().duration_since(c.time);
                a >= SignedDuration::from_hours(24) && a < SignedDuration::from_hours(7 * 24)
            })
            .count();
        assert!(hourly <= 3 * 6 * 24 + 3, "{hourly}");
    }

    #[test]
    fn the_policy_reads_as_the_config_says_it() {
        assert_eq!(
            Policy::DEFAULT.describe(),
            "every version for 24 hours, then one an hour up to 7 days, one a day up to 30 days, one a week after"
        );
        assert_eq!(Policy::from_config(24, 7, 30), Policy::DEFAULT);
    }
}
