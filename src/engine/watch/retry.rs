//! retry: paths that failed, and when to try them again (exponential
//! back-off, 1 s doubling up to 5 min). A path leaves when a try succeeds;
//! a failing path that succeeds brings the other failing ones forward.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jiff::Timestamp;

const FIRST: Duration = Duration::from_secs(1);
const MAX: Duration = Duration::from_secs(300);

/// One path to try again.
#[derive(Debug)]
struct Entry {
    tries: u32,
    next: Instant,
    /// Why it failed and since when; `None`: not a failure, only a look
    /// again (DST lost a folder under a write).
    failure: Option<(String, Timestamp)>,
}

#[derive(Debug, Default)]
pub struct Retry {
    paths: HashMap<PathBuf, Entry>,
}

impl Retry {
    /// Records a failure of `rel` (`reason` in words, first seen at `wall`);
    /// `transient` false waits the longest.
    pub fn failed(
        &mut self,
        rel: &Path,
        transient: bool,
        now: Instant,
        reason: String,
        wall: Timestamp,
    ) {
        let e = self.entry(rel, transient, now);
        let since = e.failure.as_ref().map_or(wall, |f| f.1);
        e.failure = Some((reason, since));
    }

    /// Schedules `rel` for another look, without counting it as failing.
    pub fn again(&mut self, rel: &Path, now: Instant) {
        self.entry(rel, true, now);
    }

    fn entry(&mut self, rel: &Path, transient: bool, now: Instant) -> &mut Entry {
        let e = self.paths.entry(rel.to_path_buf()).or_insert(Entry {
            tries: 0,
            next: now,
            failure: None,
        });
        let wait = if transient {
            FIRST.saturating_mul(1 << e.tries.min(16)).min(MAX)
        } else {
            MAX
        };
        e.tries += 1;
        e.next = now + wait;
        e
    }

    /// `rel` went through. If it was failing, what blocked it may be gone
    /// for the others too (a folder made writable again, space freed):
    /// they are tried now rather than at the end of their back-off.
    pub fn succeeded(&mut self, rel: &Path, now: Instant) {
        if self.paths.remove(rel).is_some_and(|e| e.failure.is_some()) {
            for e in self.paths.values_mut().filter(|e| e.failure.is_some()) {
                e.next = e.next.min(now);
            }
        }
    }

    pub fn clear(&mut self) {
        self.paths.clear();
    }

    /// Nothing to try again.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// How many paths are failing (looks again not counted).
    pub fn failing(&self) -> usize {
        self.paths.values().filter(|e| e.failure.is_some()).count()
    }

    /// The failing paths, oldest first (then by path), at most `max`: the
    /// path, the reason, since when.
    pub fn failures(&self, max: usize) -> Vec<(&Path, &str, Timestamp)> {
        let mut v: Vec<(&Path, &str, Timestamp)> = self
            .paths
            .iter()
            .filter_map(|(p, e)| {
                e.failure
                    .as_ref()
                    .map(|(r, t)| (p.as_path(), r.as_str(), *t))
            })
            .collect();
        v.sort_by(|a, b| (a.2, a.0).cmp(&(b.2, b.0)));
        v.truncate(max);
        v
    }

    /// Every path to try again.
    pub fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.paths.keys()
    }

    pub fn contains(&self, rel: &Path) -> bool {
        self.paths.contains_key(rel)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.paths.values().map(|v| v.next).min()
    }

    /// The paths due at `now` (they stay recorded until they succeed).
    pub fn due(&self, now: Instant) -> Vec<PathBuf> {
        self.paths
            .iter()
            .filter(|(_, v)| v.next <= now)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Pushes a path's next try out without counting a failure (it is being
    /// tried now).
    pub fn trying(&mut self, rel: &Path, now: Instant) {
        if let Some(e) = self.paths.get_mut(rel) {
            e.next = now + FIRST.saturating_mul(1 << e.tries.min(16)).min(MAX);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_and_forgets_on_success() {
        let t = Instant::now();
        let mut r = Retry::default();
        let p = Path::new("a");
        let first = Timestamp::UNIX_EPOCH;
        r.failed(p, true, t, "full".into(), first);
        assert_eq!(r.next_deadline(), Some(t + Duration::from_secs(1)));
        r.failed(p, true, t, "full".into(), Timestamp::now());
        assert_eq!(r.next_deadline(), Some(t + Duration::from_secs(2)));
        for _ in 0..20 {
            r.failed(p, true, t, "full".into(), Timestamp::now());
        }
        // Since when: the first failure.
        assert_eq!(r.failures(10), vec![(p, "full", first)]);
        assert_eq!(r.next_deadline(), Some(t + MAX));
        assert!(r.due(t + MAX).contains(&p.to_path_buf()));
        r.succeeded(p, t + MAX);
        assert!(r.is_empty());
    }

    #[test]
    fn a_failing_path_that_succeeds_brings_the_others_forward() {
        let t = Instant::now();
        let mut r = Retry::default();
        let (a, b, c) = (Path::new("a"), Path::new("b"), Path::new("c"));
        for _ in 0..8 {
            r.failed(a, true, t, "denied".into(), Timestamp::UNIX_EPOCH);
        }
        r.failed(b, true, t, "denied".into(), Timestamp::UNIX_EPOCH);
        r.again(c, t);
        // `a` waits 128 s; `b` succeeds after 1 s: `a` is due at once.
        let later = t + Duration::from_secs(1);
        assert!(!r.due(later).contains(&a.to_path_buf()));
        r.succeeded(b, later);
        assert!(r.due(later).contains(&a.to_path_buf()));
        // A look again that goes through is not news about a failure.
        let mut r = Retry::default();
        for _ in 0..8 {
            r.failed(a, true, t, "denied".into(), Timestamp::UNIX_EPOCH);
        }
        r.again(c, t);
        r.succeeded(c, later);
        assert!(!r.due(later).contains(&a.to_path_buf()));
    }

    #[test]
    fn looks_again_are_not_failures() {
        let t = Instant::now();
        let mut r = Retry::default();
        r.again(Path::new("a"), t);
        assert_eq!(r.failing(), 0);
        assert!(!r.is_empty());
        r.failed(
            Path::new("b"),
            true,
            t,
            "denied".into(),
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(r.failing(), 1);
    }
}
