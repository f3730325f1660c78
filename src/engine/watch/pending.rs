//! pending: what the watcher has heard and not applied yet, and when each
//! piece is ready. Pure: time comes in as an argument, so the rules are
//! scenario tables (debouncer-full's approach), not sleeps.
//!
//! Events are hints; this only decides *when* to look and *where*, and how
//! (a [`Look`]):
//! - a file closed after writing, an attribute change, a new folder or one
//!   moved in: ready now;
//! - a file created and not closed yet: ready after a moment (most writers
//!   close first; symlinks and `mknod` never send a close); one the mirror
//!   found empty and made a moment ago (its creator may still be inside
//!   `open(2)`, not yet counted as a writer) is looked at again after
//!   `MADE_WAIT`, and copied then unless someone has it open for writing;
//! - a file written and not closed (`truncate(2)`, a log kept open): ready
//!   after a moment too; at that look it is copied if nobody has it open
//!   for writing, else it is *busy*: copied when closed, or once quiet for
//!   `QUIET` (even while open), and at least every `MAX_QUIET` while it
//!   keeps changing;
//! - a file closed again and again (rewritten in a loop: `HOT_CLOSES`
//!   closes, each within `HOT_WINDOW` of the last) is *hot*: it is copied
//!   once quiet for `HOT_QUIET`, and at least every `MAX_QUIET`, not at
//!   every close (a burst of changes is batched, not copied over and over,
//!   and the backup keeps no version of each fleeting state);
//! - deletions and renames make the *whole* batch wait a short settle time,
//!   so an editor's safe save (rename away, write, delete) or git's
//!   `index.lock` dance is seen as one change at its final name;
//! - a rename of a folder re-keys what is pending under the old name;
//! - an overflow asks for a full reconcile, which covers everything pending.
//!
//! With notify's backend (not Linux's), two things differ, said by
//! [`Quirks`]: a new folder is looked at again once its watch surely exists,
//! and a name moved away waits for the other half of its rename.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::engine::batch::{Batch, Dirty, Look};

/// Quiet time before a busy file (open for writing elsewhere) is looked at
/// again without a close event.
pub const QUIET: Duration = Duration::from_secs(1);
/// A file written continuously is copied at least this often (each copy
/// keeps the previous one as a version: not too often).
pub const MAX_QUIET: Duration = Duration::from_secs(10);
/// A file closed this many times, each within `HOT_WINDOW` of the last, is
/// hot (rewritten in a loop).
pub const HOT_CLOSES: u32 = 3;
pub const HOT_WINDOW: Duration = Duration::from_secs(1);
/// A hot file is copied once it has been quiet this long.
pub const HOT_QUIET: Duration = Duration::from_millis(100);
/// A created file usually closes within this; else it is looked at anyway.
pub const CREATE_WAIT: Duration = Duration::from_millis(10);
/// An empty file made a moment ago is looked at again after this: its
/// creator is surely past `open(2)` by then, and shows as a writer if it
/// still is one.
pub const MADE_WAIT: Duration = Duration::from_millis(50);
/// Writes without a close are gathered this long before a look (a program
/// writing in many small `write()`s is looked at once).
pub const WRITE_WAIT: Duration = Duration::from_millis(20);
/// Quiet time after the last deletion or rename before a batch is applied.
pub const SETTLE: Duration = Duration::from_millis(10);
/// A batch never waits longer than this for deletions to settle.
pub const MAX_SETTLE: Duration = Duration::from_millis(100);
/// notify's backend: how long a name moved away waits for the other half
/// of its rename. Unpaired after this: moved out of SRC.
pub const PAIR_WAIT: Duration = Duration::from_millis(100);
/// notify's backend: a new folder is scanned again after this, once its
/// watch surely exists.
pub const RESCAN_NEW_DIR: Duration = Duration::from_millis(300);

/// One hint, relative to the pair's SRC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// Closed after writing.
    Closed(PathBuf),
    /// Permissions, times, links changed.
    Attr(PathBuf),
    /// Created; `true` for a folder.
    Created(PathBuf, bool),
    /// Data written (file still open, or `truncate`).
    Modified(PathBuf),
    /// Deleted; `true` for a folder.
    Removed(PathBuf, bool),
    /// Renamed away (to outside SRC, or the first half of a rename).
    MovedFrom(PathBuf),
    /// Renamed in (from outside SRC, or the second half of a rename).
    MovedTo(PathBuf),
    /// Both halves of a rename inside SRC.
    Renamed(PathBuf, PathBuf),
    /// A failed path is tried again: its whole subtree, now.
    Retry(PathBuf),
    /// Events were lost: reconcile everything.
    Rescan,
}

/// How the hint source behaves (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quirks {
    /// New folders are watched after they are reported: look again later.
    pub second_look: bool,
    /// The halves of a rename may come apart: wait for the second.
    pub late_pairs: bool,
}

#[derive(Debug, Clone)]
struct Item {
    deep: bool,
    look: Look,
    ready_at: Instant,
    /// Created, deleted or moved: its folder's listing changes.
    structural: bool,
}

#[derive(Debug, Default)]
pub struct Pending {
    quirks: Quirks,
    items: HashMap<PathBuf, Item>,
    renames: Vec<(PathBuf, PathBuf)>,
    /// (first, last) deletion or rename not yet settled.
    settle: Option<(Instant, Instant)>,
    /// notify: names moved away whose destination is not known yet.
    unpaired: HashMap<PathBuf, Instant>,
    /// notify: folders to look at again (deep) at a time.
    later: HashMap<PathBuf, Instant>,
    /// Files found busy (being written elsewhere), since when.
    busy: HashMap<PathBuf, Instant>,
    /// Files closed lately: how often in a row, since when, and last.
    closes: HashMap<PathBuf, Closes>,
    full: bool,
}

/// A file's recent closes (see [`HOT_CLOSES`]).
#[derive(Debug, Clone, Copy)]
struct Closes {
    count: u32,
    since: Instant,
    last: Instant,
}

impl Pending {
    pub fn new(quirks: Quirks) -> Pending {
        Pending {
            quirks,
            ..Pending::default()
        }
    }

    /// Paths waiting (for the status line).
    pub fn len(&self) -> usize {
        self.items.len() + self.renames.len() + self.later.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.renames.is_empty() && self.later.is_empty() && !self.full
    }

    /// Forgets everything (pause: resume reconciles in full).
    pub fn clear(&mut self) {
        *self = Pending::new(self.quirks);
    }

    /// Asks for a full reconcile.
    pub fn want_full(&mut self) {
        self.full = true;
    }

    /// Whether changes heard are waiting for a batch (not files left to
    /// their writers, which may write on for hours).
    pub fn changes_coming(&self) -> bool {
        !self.renames.is_empty()
            || !self.unpaired.is_empty()
            || !self.later.is_empty()
            || self.items.keys().any(|p| !self.busy.contains_key(p))
    }

    /// Whether a full reconcile is asked for.
    pub fn wants_full(&self) -> bool {
        self.full
    }

    /// Adds or merges a look at `rel`, ready at `ready_at` (the earliest of
    /// two asks wins; the deeper and stronger look wins).
    fn add(&mut self, rel: PathBuf, deep: bool, look: Look, ready_at: Instant) {
        let e = self.items.entry(rel).or_insert(Item {
            deep,
            look,
            ready_at,
            structural: false,
        });
        e.deep |= deep;
        e.look = e.look.max(look);
        e.ready_at = e.ready_at.min(ready_at);
    }

    fn unsettled(&mut self, now: Instant) {
        self.settle = Some(match self.settle {
            Some((first, _)) => (first, now),
            None => (now, now),
        });
    }

    pub fn note(&mut self, hint: Hint, now: Instant) {
        match hint {
            Hint::Closed(p) => {
                self.busy.remove(&p);
                match self.closed(&p, now) {
                    Some(at) => {
                        let e = self.items.entry(p).or_insert(Item {
                            deep: false,
                            look: Look::Written,
                            ready_at: at,
                            structural: false,
                        });
                        e.look = e.look.max(Look::Written);
                        e.ready_at = at;
                    }
                    None => self.add(p, false, Look::Written, now),
                }
            }
            Hint::Attr(p) => self.add(p, false, Look::Gentle, now),
            Hint::Created(p, true) | Hint::MovedTo(p) => {
                if self.quirks.second_look {
                    self.later.insert(p.clone(), now + RESCAN_NEW_DIR);
                }
                self.add(p.clone(), true, Look::Gentle, now);
                self.structural(&p);
            }
            Hint::Created(p, false) => {
                self.add(p.clone(), false, Look::Gentle, now + CREATE_WAIT);
                self.structural(&p);
            }
            Hint::Modified(p) => match self.busy.get(&p).copied() {
                // Known busy: copied once quiet (even while open), and at
                // least every MAX_QUIET while it keeps changing.
                Some(since) => {
                    let at = (now + QUIET).min(since + MAX_QUIET).max(now);
                    let e = self.items.entry(p).or_insert(Item {
                        deep: false,
                        look: Look::Forced,
                        ready_at: at,
                        structural: false,
                    });
                    e.look = Look::Forced;
                    e.ready_at = at;
                }
                None => self.add(p, false, Look::Open, now + WRITE_WAIT),
            },
            Hint::Removed(p, is_dir) => {
                self.add(p.clone(), is_dir, Look::Gentle, now);
                self.structural(&p);
                self.unsettled(now);
            }
            Hint::MovedFrom(p) => {
                if self.quirks.late_pairs {
                    self.unpaired.insert(p.clone(), now);
                }
                self.add(p.clone(), true, Look::Gentle, now);
                self.structural(&p);
                self.unsettled(now);
            }
            Hint::Renamed(from, to) => {
                self.unpaired.remove(&from);
                self.rekey(&from, &to);
                // The rename itself tells DST what to do; `to` is looked at
                // shallowly after it (deeply if the rename does not apply).
                if let Some(it) = self.items.get_mut(&to) {
                    it.deep = false;
                }
                self.renames.push((from, to));
                self.unsettled(now);
            }
            Hint::Retry(p) => self.add(p, true, Look::Forced, now),
            Hint::Rescan => self.full = true,
        }
    }

    /// Counts a close of `p`; when it is hot, the time it is ready (quiet
    /// for `HOT_QUIET`, or `MAX_QUIET` since its streak began).
    fn closed(&mut self, p: &Path, now: Instant) -> Option<Instant> {
        let c = self.closes.entry(p.to_path_buf()).or_insert(Closes {
            count: 0,
            since: now,
            last: now,
        });
        if now.saturating_duration_since(c.last) > HOT_WINDOW {
            *c = Closes {
                count: 0,
                since: now,
                last: now,
            };
        }
        c.count += 1;
        c.last = now;
        if c.count < HOT_CLOSES {
            return None;
        }
        let at = (now + HOT_QUIET).min(c.since + MAX_QUIET);
        if at <= now {
            // Copied now after MAX_QUIET of rewrites: a new streak.
            c.since = now;
        }
        Some(at.max(now))
    }

    fn structural(&mut self, p: &Path) {
        if let Some(it) = self.items.get_mut(p) {
            it.structural = true;
        }
    }

    /// The folders whose listings something pending will change (an entry
    /// in it created, deleted or moved): their comparison waits for the
    /// batch that brings that change.
    pub fn unsettled_folders(&self) -> std::collections::HashSet<PathBuf> {
        let parent = |p: &Path| p.parent().unwrap_or(Path::new("")).to_path_buf();
        self.items
            .iter()
            .filter(|(_, i)| i.structural)
            .map(|(p, _)| parent(p))
            .chain(
                self.renames
                    .iter()
                    .flat_map(|(f, t)| [parent(f), parent(t)]),
            )
            .chain(self.later.keys().map(|p| parent(p)))
            .collect()
    }

    /// Paths pending that are files being written (a scan leaves them).
    pub fn waiting(&self) -> std::collections::HashSet<PathBuf> {
        self.items.keys().cloned().collect()
    }

    /// The mirror left `rel` because it is being written elsewhere (or it
    /// kept changing while copied): it is copied when closed, or once quiet
    /// for `QUIET` (even while open), and at least every `MAX_QUIET` while
    /// it keeps changing.
    pub fn busy(&mut self, rel: PathBuf, now: Instant) {
        let since = self.busy.entry(rel.clone()).or_insert(now);
        if now >= *since + MAX_QUIET {
            // A forced look just ran and the file still kept changing: the
            // next one is MAX_QUIET from now (never a tight loop).
            *since = now;
        }
        let at = (now + QUIET).min(*since + MAX_QUIET);
        self.add(rel, false, Look::Forced, at);
    }

    /// The mirror left `rel`, an empty file made a moment ago whose
    /// creator may not show as a writer yet: looked at again in a moment,
    /// copied then unless someone has it open for writing.
    pub fn just_made(&mut self, rel: PathBuf, now: Instant) {
        self.add(rel, false, Look::Open, now + MADE_WAIT);
    }

    /// Files another program is writing, waiting for it (at most `max`).
    pub fn busy_paths(&self, max: usize) -> Vec<PathBuf> {
        let mut v: Vec<&PathBuf> = self.busy.keys().collect();
        v.sort();
        v.into_iter().take(max).cloned().collect()
    }

    /// `rel` was looked at and not found busy.
    pub fn done(&mut self, rel: &Path) {
        self.busy.remove(rel);
    }

    /// Pending entries under `from/` move to `to/` (a folder renamed).
    fn rekey(&mut self, from: &Path, to: &Path) {
        let moved = |p: &Path| -> Option<PathBuf> {
            let rest = p.strip_prefix(from).ok()?;
            (!rest.as_os_str().is_empty()).then(|| to.join(rest))
        };
        for map in [&mut self.later, &mut self.busy] {
            let keys: Vec<PathBuf> = map.keys().filter(|k| moved(k).is_some()).cloned().collect();
            for k in keys {
                if let (Some(v), Some(n)) = (map.remove(&k), moved(&k)) {
                    map.insert(n, v);
                }
            }
        }
        let keys: Vec<PathBuf> = self
            .items
            .keys()
            .filter(|k| moved(k).is_some())
            .cloned()
            .collect();
        for k in keys {
            if let (Some(it), Some(n)) = (self.items.remove(&k), moved(&k)) {
                self.items.insert(n, it);
            }
        }
        // A second look at the folder itself follows it too.
        if let Some(at) = self.later.remove(from) {
            self.later.insert(to.to_path_buf(), at);
        }
    }

    /// When the next piece becomes ready (for the worker's timer).
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        if self.full || !self.renames.is_empty() {
            return Some(self.settled_at().unwrap_or(now));
        }
        if let Some(until) = self.settled_at() {
            return Some(until);
        }
        self.items
            .values()
            .map(|i| i.ready_at)
            .chain(self.later.values().copied())
            .min()
    }

    /// When the deletions and renames seen so far have settled: SETTLE after
    /// the last one, longer while a name moved away awaits its destination,
    /// never past MAX_SETTLE.
    fn settled_at(&self) -> Option<Instant> {
        let (first, last) = self.settle?;
        let pairing = self.unpaired.values().max().map(|t| *t + PAIR_WAIT);
        let until = pairing.map_or(last + SETTLE, |p| p.max(last + SETTLE));
        Some(until.min(first + MAX_SETTLE))
    }

    /// Whether a batch is ready at `now` (what `take_ready` would take).
    pub fn due(&self, now: Instant) -> bool {
        if self.settled_at().is_some_and(|until| now < until) {
            return false;
        }
        !self.renames.is_empty()
            || self.items.values().any(|i| i.ready_at <= now)
            || self.later.values().any(|t| *t <= now)
    }

    /// A full reconcile, when asked for: it covers what is due now; later
    /// pieces (a busy file, a second look at a new folder) stay.
    pub fn take_full(&mut self, now: Instant) -> bool {
        if !self.full {
            return false;
        }
        self.full = false;
        self.renames.clear();
        self.settle = None;
        self.unpaired.clear();
        self.items.retain(|_, i| i.ready_at > now);
        self.later.retain(|_, t| *t > now);
        true
    }

    /// Takes what is ready at `now`, or `None` while deletions settle or
    /// nothing is due.
    pub fn take_ready(&mut self, now: Instant) -> Option<Batch> {
        if let Some(until) = self.settled_at() {
            if now < until {
                return None;
            }
            self.settle = None;
            self.unpaired.clear();
        }
        let ready: Vec<PathBuf> = self
            .items
            .iter()
            .filter(|(_, i)| i.ready_at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        let later: Vec<PathBuf> = self
            .later
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(k, _)| k.clone())
            .collect();
        if ready.is_empty() && later.is_empty() && self.renames.is_empty() {
            return None;
        }
        self.closes
            .retain(|_, c| now.saturating_duration_since(c.last) <= HOT_WINDOW);
        let mut paths = Vec::with_capacity(ready.len() + later.len());
        for k in ready {
            if let Some(it) = self.items.remove(&k) {
                paths.push(Dirty::new(k, it.deep, it.look));
            }
        }
        for k in later {
            self.later.remove(&k);
            paths.push(Dirty::new(k, true, Look::Gentle));
        }
        Some(Batch {
            renames: std::mem::take(&mut self.renames),
            paths,
            // Files still being written are left to their own later batch.
            deferred: self.waiting(),
            recent: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }
    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }
    /// The batch's paths as (path, deep, look), sorted.
    fn paths(b: &Batch) -> Vec<(String, bool, Look)> {
        let mut v: Vec<(String, bool, Look)> = b
            .paths
            .iter()
            .map(|d| (d.rel.display().to_string(), d.deep, d.look))
            .collect();
        v.sort();
        v
    }

    /// A path expected in a batch: (path, deep, look).
    type Expect = (&'static str, bool, Look);

    /// One scenario: hints at times (ms from t0), then the batches taken at
    /// times, each as its paths.
    struct Case {
        name: &'static str,
        quirks: Quirks,
        hints: Vec<(u64, Hint)>,
        /// (take at ms, expected paths; `None`: nothing ready)
        takes: Vec<(u64, Option<Vec<Expect>>)>,
    }

    fn run(c: Case) {
        let t0 = Instant::now();
        let mut q = Pending::new(c.quirks);
        let mut hints = c.hints.into_iter().peekable();
        for (at, want) in c.takes {
            while let Some((h_at, _)) = hints.peek() {
                if *h_at > at {
                    break;
                }
                let (h_at, h) = hints.next().unwrap();
                q.note(h, t0 + ms(h_at));
            }
            let got = q.take_ready(t0 + ms(at)).map(|b| paths(&b));
            let want = want.map(|v| {
                let mut v: Vec<(String, bool, Look)> = v
                    .into_iter()
                    .map(|(s, d, l)| (s.to_string(), d, l))
                    .collect();
                v.sort();
                v
            });
            assert_eq!(got, want, "{}: take at {at} ms", c.name);
        }
    }

    use Hint::*;
    use Look::*;

    #[test]
    fn scenarios() {
        let linux = Quirks::default();
        let cases = vec![
            Case {
                name: "a closed file is ready at once",
                quirks: linux,
                hints: vec![
                    (0, Created(p("a"), false)),
                    (0, Modified(p("a"))),
                    (0, Closed(p("a"))),
                ],
                takes: vec![(0, Some(vec![("a", false, Written)])), (100, None)],
            },
            Case {
                name: "truncate(2): written, not closed, looked at after a moment",
                quirks: linux,
                hints: vec![(0, Modified(p("log")))],
                takes: vec![
                    (5, None),
                    (
                        WRITE_WAIT.as_millis() as u64,
                        Some(vec![("log", false, Open)]),
                    ),
                ],
            },
            Case {
                name: "a created file waits a moment for its close; the close makes it ready",
                quirks: linux,
                hints: vec![(0, Created(p("f"), false)), (8, Closed(p("f")))],
                takes: vec![(5, None), (8, Some(vec![("f", false, Written)]))],
            },
            Case {
                name: "a symlink (no close) is looked at after CREATE_WAIT",
                quirks: linux,
                hints: vec![(0, Created(p("l"), false))],
                takes: vec![
                    (5, None),
                    (
                        CREATE_WAIT.as_millis() as u64,
                        Some(vec![("l", false, Gentle)]),
                    ),
                ],
            },
            Case {
                name: "safe save: rename away, write, delete -> one batch at the final name",
                quirks: linux,
                hints: vec![
                    (0, Renamed(p("f"), p("f~"))),
                    (0, Created(p("f"), false)),
                    (0, Closed(p("f"))),
                    (1, Removed(p("f~"), false)),
                ],
                takes: vec![
                    (0, None),
                    (10, None),
                    (
                        1 + SETTLE.as_millis() as u64,
                        Some(vec![("f", false, Written), ("f~", false, Gentle)]),
                    ),
                ],
            },
            Case {
                name: "a folder rename re-keys pending children; the folder is looked at shallowly",
                quirks: linux,
                hints: vec![(0, Closed(p("d/sub/file"))), (0, Renamed(p("d"), p("e")))],
                takes: vec![(
                    SETTLE.as_millis() as u64,
                    Some(vec![("e/sub/file", false, Written)]),
                )],
            },
            Case {
                name: "a new folder is looked at deeply, once (Linux watches before it reports)",
                quirks: linux,
                hints: vec![(0, Created(p("new"), true))],
                takes: vec![(0, Some(vec![("new", true, Gentle)])), (1000, None)],
            },
            Case {
                name: "notify: a new folder is looked at again once its watch exists",
                quirks: Quirks {
                    second_look: true,
                    late_pairs: true,
                },
                hints: vec![(0, Created(p("new"), true))],
                takes: vec![
                    (0, Some(vec![("new", true, Gentle)])),
                    (10, None),
                    (
                        RESCAN_NEW_DIR.as_millis() as u64,
                        Some(vec![("new", true, Gentle)]),
                    ),
                ],
            },
            Case {
                name: "notify: a name moved away waits for the other half of its rename",
                quirks: Quirks {
                    second_look: false,
                    late_pairs: true,
                },
                hints: vec![(0, MovedFrom(p("gone")))],
                takes: vec![
                    (SETTLE.as_millis() as u64, None),
                    (
                        PAIR_WAIT.as_millis() as u64,
                        Some(vec![("gone", true, Gentle)]),
                    ),
                ],
            },
            Case {
                name: "Linux: moved out of SRC is final at once (paired in the watcher)",
                quirks: linux,
                hints: vec![(0, MovedFrom(p("gone")))],
                takes: vec![(
                    SETTLE.as_millis() as u64,
                    Some(vec![("gone", true, Gentle)]),
                )],
            },
            Case {
                name: "a retry is deep and forced",
                quirks: linux,
                hints: vec![(0, Retry(p("x")))],
                takes: vec![(0, Some(vec![("x", true, Forced)]))],
            },
        ];
        for c in cases {
            run(c);
        }
    }

    #[test]
    fn a_busy_file_waits_for_its_close_or_quiet_and_is_forced_every_max_quiet() {
        let t = Instant::now();
        let mut q = Pending::new(Quirks::default());
        q.note(Modified(p("log")), t);
        let b = q.take_ready(t + WRITE_WAIT).unwrap();
        assert_eq!(paths(&b), vec![("log".into(), false, Open)]);
        // The mirror found it open for writing elsewhere.
        q.busy(p("log"), t + WRITE_WAIT);
        // Written again and again, every 100 ms: no look until quiet...
        let mut now = t + WRITE_WAIT;
        let mut looks = Vec::new();
        while now < t + MAX_QUIET * 2 {
            now += ms(100);
            q.note(Modified(p("log")), now);
            if let Some(b) = q.take_ready(now) {
                let (_, _, look) = paths(&b)[0];
                looks.push((now - t, look));
                q.busy(p("log"), now);
            }
        }
        // ...but a forced look at least every MAX_QUIET.
        assert!(!looks.is_empty(), "never looked at");
        assert_eq!(looks[0].1, Forced, "{looks:?}");
        assert!(looks[0].0 <= MAX_QUIET + WRITE_WAIT + ms(100), "{looks:?}");
        // A close makes it ready at once (copied), and it is no longer busy.
        q.note(Closed(p("log")), now);
        let b = q.take_ready(now).unwrap();
        let (name, _, look) = paths(&b)[0].clone();
        assert!(name == "log" && look >= Written, "{b:?}");
        q.note(Modified(p("log")), now);
        assert!(q.take_ready(now + WRITE_WAIT).is_some());
    }

    #[test]
    fn an_empty_file_just_made_is_looked_at_again_in_a_moment_not_after_the_quiet_time() {
        let t = Instant::now();
        let mut q = Pending::new(Quirks::default());
        q.note(Created(p("new"), false), t);
        let b = q.take_ready(t + CREATE_WAIT).unwrap();
        assert_eq!(paths(&b), vec![("new".into(), false, Gentle)]);
        // The mirror left it: empty, made a moment ago.
        q.just_made(p("new"), t + CREATE_WAIT);
        assert!(q.take_ready(t + CREATE_WAIT + MADE_WAIT - ms(1)).is_none());
        let b = q.take_ready(t + CREATE_WAIT + MADE_WAIT).unwrap();
        // Copied then unless someone has it open for writing.
        assert_eq!(paths(&b), vec![("new".into(), false, Open)]);
        assert!(MADE_WAIT * 10 < QUIET);
        // Its close meanwhile makes it ready at once.
        let mut q = Pending::new(Quirks::default());
        q.just_made(p("new"), t);
        q.note(Closed(p("new")), t + ms(1));
        let b = q.take_ready(t + ms(1)).unwrap();
        assert_eq!(paths(&b), vec![("new".into(), false, Written)]);
    }

    #[test]
    fn a_file_rewritten_in_a_loop_is_copied_when_quiet_not_at_every_close() {
        let t = Instant::now();
        let mut q = Pending::new(Quirks::default());
        // 2,000 rewrites, one a millisecond, each taken as soon as ready.
        let mut taken = Vec::new();
        let mut now = t;
        for _ in 0..2000 {
            now += ms(1);
            q.note(Closed(p("hot.txt")), now);
            if q.take_ready(now).is_some() {
                taken.push(now - t);
            }
        }
        // The first closes are copied at once; then it is hot.
        assert_eq!(taken.len(), HOT_CLOSES as usize - 1, "{taken:?}");
        let end = now;
        assert!(q.take_ready(end + HOT_QUIET - ms(1)).is_none());
        let b = q.take_ready(end + HOT_QUIET).expect("ready once quiet");
        assert_eq!(paths(&b), vec![("hot.txt".into(), false, Written)]);
        // Rewritten for longer than MAX_QUIET: copied at least that often.
        let mut looks = 0;
        let start = now + ms(5000);
        now = start;
        while now < start + MAX_QUIET * 3 {
            now += ms(10);
            q.note(Closed(p("hot.txt")), now);
            if q.take_ready(now).is_some() {
                looks += 1;
            }
        }
        assert!((3..=6).contains(&looks), "{looks} looks in 3 × MAX_QUIET");
        // Another file closed once is not held back by it.
        q.note(Closed(p("cold.txt")), now);
        let b = q.take_ready(now).expect("a single close is ready at once");
        assert!(paths(&b).iter().any(|(p, _, _)| p == Path::new("cold.txt")));
    }

    #[test]
    fn settling_never_waits_past_max() {
        let t = Instant::now();
        let mut q = Pending::new(Quirks::default());
        let mut now = t;
        loop {
            q.note(Removed(p("x"), false), now);
            if q.take_ready(now).is_some() {
                break;
            }
            now += ms(10);
            assert!(
                now - t <= MAX_SETTLE + ms(10),
                "a stream of deletions must not starve the batch"
            );
        }
    }

    #[test]
    fn overflow_means_one_full_reconcile_that_covers_what_is_due() {
        let t = Instant::now();
        let mut q = Pending::new(Quirks::default());
        q.note(Closed(p("a")), t);
        q.note(Modified(p("b")), t);
        q.note(Rescan, t);
        assert!(q.take_full(t));
        assert!(!q.take_full(t));
        // The file still being written stays for its own look.
        let b = q.take_ready(t + WRITE_WAIT).unwrap();
        assert_eq!(paths(&b), vec![("b".into(), false, Open)]);
    }
}
