//! retry: paths that failed, and when to try them again (exponential
//! back-off, 1 s doubling up to 5 min). A path leaves when a try succeeds.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const FIRST: Duration = Duration::from_secs(1);
const MAX: Duration = Duration::from_secs(300);

#[derive(Debug, Default)]
pub struct Retry {
    paths: HashMap<PathBuf, (u32, Instant)>,
}

impl Retry {
    /// Records a failure of `rel`; `transient` false waits the longest.
    pub fn failed(&mut self, rel: &Path, transient: bool, now: Instant) {
        let e = self.paths.entry(rel.to_path_buf()).or_insert((0, now));
        let wait = if transient {
            FIRST.saturating_mul(1 << e.0.min(16)).min(MAX)
        } else {
            MAX
        };
        e.0 += 1;
        e.1 = now + wait;
    }

    pub fn succeeded(&mut self, rel: &Path) {
        self.paths.remove(rel);
    }

    pub fn clear(&mut self) {
        self.paths.clear();
    }

    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Every path failing now.
    pub fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.paths.keys()
    }

    pub fn contains(&self, rel: &Path) -> bool {
        self.paths.contains_key(rel)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.paths.values().map(|v| v.1).min()
    }

    /// The paths due at `now` (they stay recorded until they succeed).
    pub fn due(&self, now: Instant) -> Vec<PathBuf> {
        self.paths
            .iter()
            .filter(|(_, v)| v.1 <= now)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Pushes a path's next try out without counting a failure (it is being
    /// tried now).
    pub fn trying(&mut self, rel: &Path, now: Instant) {
        if let Some(e) = self.paths.get_mut(rel) {
            e.1 = now + FIRST.saturating_mul(1 << e.0.min(16)).min(MAX);
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
        r.failed(p, true, t);
        assert_eq!(r.next_deadline(), Some(t + Duration::from_secs(1)));
        r.failed(p, true, t);
        assert_eq!(r.next_deadline(), Some(t + Duration::from_secs(2)));
        for _ in 0..20 {
            r.failed(p, true, t);
        }
        assert_eq!(r.next_deadline(), Some(t + MAX));
        assert!(r.due(t + MAX).contains(&p.to_path_buf()));
        r.succeeded(p);
        assert!(r.is_empty());
    }
}
