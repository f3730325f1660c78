//! pending: what the watcher has heard and not applied yet, and when each
//! piece is ready. Pure: time comes in as an argument, so the rules are unit
//! tests (debouncer-full's approach), not sleeps.
//!
//! Events are hints; this only decides *when* to look and *where*:
//! - a file closed after writing, an attribute change (chmod, touch), a new
//!   folder or one moved in: ready now (a new folder is looked at again a
//!   little later, because files made in it before its watch existed were
//!   never reported);
//! - a file created or written but not closed (`truncate(2)`, a log kept
//!   open): ready after a quiet period, or after `MAX_QUIET` while it keeps
//!   growing;
//! - deletions and renames make the *whole* batch wait a short settle time,
//!   so an editor's safe save (rename away, write, delete) or git's
//!   `index.lock` dance is seen as one change at its final name;
//! - a rename of a folder re-keys what is pending under the old name;
//! - an overflow asks for a full reconcile, which covers everything pending.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::engine::mirror::Dirty;

/// Quiet time after the last write to a file not yet closed (most writers
/// close long before; this is for logs kept open and `truncate(2)`).
pub const QUIET: Duration = Duration::from_secs(1);
/// A file written continuously is copied at least this often (each copy
/// keeps the previous one as a version: not too often).
pub const MAX_QUIET: Duration = Duration::from_secs(10);
/// A created file usually closes within this; else it is looked at anyway
/// (symlinks, FIFOs, `mknod` never send a close).
pub const CREATE_WAIT: Duration = Duration::from_millis(50);
/// Quiet time after the last deletion or rename before a batch is applied.
pub const SETTLE: Duration = Duration::from_millis(10);
/// A batch never waits longer than this for deletions to settle.
pub const MAX_SETTLE: Duration = Duration::from_millis(500);
/// How long a name moved away waits for the other half of its rename
/// (notify reports the two halves one after the other; a busy machine can
/// put more than SETTLE between them). Unpaired after this: moved out of SRC.
pub const PAIR_WAIT: Duration = Duration::from_millis(100);
/// A new folder is scanned again after this, once its watch surely exists.
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

#[derive(Debug, Clone)]
struct Item {
    deep: bool,
    /// Written to (closed after writing, data changed) or retried: copied
    /// even if a program still has it open. Otherwise (created, attributes,
    /// a folder that just appeared) a file another program has open for
    /// writing is left to its coming close event.
    written: bool,
    first: Instant,
    ready_at: Instant,
}

/// What to apply now.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Renames in the order they happened.
    pub renames: Vec<(PathBuf, PathBuf)>,
    pub dirty: Vec<Dirty>,
    /// Paths with no write seen (created, attributes, folders that just
    /// appeared): files in them open for writing elsewhere are left to
    /// their close events.
    pub gentle: Vec<Dirty>,
    /// A full reconcile (covers everything else).
    pub full: bool,
    /// Paths still waiting (being written): left to their own later batch.
    pub defer: Vec<PathBuf>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        !self.full && self.renames.is_empty() && self.dirty.is_empty()
    }
}

#[derive(Debug, Default)]
pub struct Pending {
    items: HashMap<PathBuf, Item>,
    renames: Vec<(PathBuf, PathBuf)>,
    /// (first, last) deletion or rename not yet settled.
    settle: Option<(Instant, Instant)>,
    /// Names moved away whose destination is not known yet, and when.
    unpaired: HashMap<PathBuf, Instant>,
    full: bool,
}

impl Pending {
    pub fn new() -> Pending {
        Pending::default()
    }

    /// Paths waiting (for the status line).
    pub fn len(&self) -> usize {
        self.items.len() + self.renames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.renames.is_empty() && !self.full
    }

    /// Forgets everything (pause: resume reconciles in full).
    pub fn clear(&mut self) {
        *self = Pending::default();
    }

    /// Asks for a full reconcile.
    pub fn want_full(&mut self) {
        self.full = true;
    }

    fn add(&mut self, rel: PathBuf, deep: bool, ready_at: Instant, now: Instant, extend: bool) {
        let e = self.items.entry(rel).or_insert(Item {
            deep,
            written: false,
            first: now,
            ready_at,
        });
        e.deep |= deep;
        if extend {
            // Still being written: wait for quiet, but not forever.
            e.ready_at = ready_at.min(e.first + MAX_QUIET);
        } else if ready_at < e.ready_at {
            e.ready_at = ready_at;
        }
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
                self.add(p.clone(), false, now, now, false);
                self.written(&p);
            }
            Hint::Attr(p) => self.add(p, false, now, now, false),
            Hint::Created(p, true) | Hint::MovedTo(p) => {
                self.add(p.clone(), true, now, now, false);
                // Looked at again once the watch surely exists.
                self.add_rescan(p, now + RESCAN_NEW_DIR);
            }
            Hint::Created(p, false) => self.add(p, false, now + CREATE_WAIT, now, false),
            Hint::Modified(p) => {
                self.add(p.clone(), false, now + QUIET, now, true);
                self.written(&p);
            }
            Hint::Removed(p, is_dir) => {
                self.add(p, is_dir, now, now, false);
                self.unsettled(now);
            }
            Hint::MovedFrom(p) => {
                self.unpaired.insert(p.clone(), now);
                self.add(p, true, now, now, false);
                self.unsettled(now);
            }
            Hint::Renamed(from, to) => {
                self.unpaired.remove(&from);
                self.rekey(&from, &to);
                // The rename itself tells DST what to do; `to` is checked
                // shallowly after it (deep if the rename does not apply).
                if let Some(it) = self.items.get_mut(&to) {
                    it.deep = false;
                }
                // The second look at `to` stays: notify drops the moved
                // folder's watches and adds them again under the new name,
                // and a file made in between is never reported.
                self.renames.push((from, to));
                self.unsettled(now);
            }
            Hint::Retry(p) => {
                self.add(p.clone(), true, now, now, false);
                self.written(&p);
            }
            Hint::Rescan => self.full = true,
        }
    }

    fn written(&mut self, p: &Path) {
        if let Some(it) = self.items.get_mut(p) {
            it.written = true;
        }
    }

    /// A folder that just appeared is scanned twice: now, and after its
    /// watch surely exists. The second look is a separate, later item.
    fn add_rescan(&mut self, p: PathBuf, at: Instant) {
        self.items.insert(
            rescan_key(&p),
            Item {
                deep: true,
                written: false,
                first: at,
                ready_at: at,
            },
        );
    }

    /// Pending entries under `from/` move to `to/` (a folder renamed).
    fn rekey(&mut self, from: &Path, to: &Path) {
        let moved: Vec<PathBuf> = self
            .items
            .keys()
            .filter(|k| k.starts_with(from) && k.as_path() != from)
            .cloned()
            .collect();
        for k in moved {
            if let (Some(it), Ok(rest)) = (self.items.remove(&k), k.strip_prefix(from)) {
                self.items.insert(to.join(rest), it);
            }
        }
    }

    /// Paths with an item not ready yet (second looks at new folders aside).
    fn waiting(&self) -> Vec<PathBuf> {
        use std::os::unix::ffi::OsStrExt;
        self.items
            .keys()
            .filter(|k| !k.as_os_str().as_bytes().ends_with(b"\0rescan"))
            .cloned()
            .collect()
    }

    /// When the next item becomes ready (for the worker's timer).
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.full {
            return Some(Instant::now());
        }
        if let Some(until) = self.settled_at() {
            return Some(until);
        }
        let ready = self.items.values().map(|i| i.ready_at).min();
        if !self.renames.is_empty() {
            return Some(Instant::now());
        }
        ready
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

    /// Takes what is ready at `now`, or `None` while deletions settle or
    /// nothing is due.
    pub fn take_ready(&mut self, now: Instant) -> Option<Batch> {
        if self.full {
            let batch = Batch {
                full: true,
                ..Batch::default()
            };
            // A full reconcile covers what is due now; later items (a
            // growing file, a second look at a new folder) stay.
            self.full = false;
            self.renames.clear();
            self.settle = None;
            self.unpaired.clear();
            self.items.retain(|_, i| i.ready_at > now);
            return Some(Batch {
                defer: self.waiting(),
                ..batch
            });
        }
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
        if ready.is_empty() && self.renames.is_empty() {
            return None;
        }
        let mut dirty: Vec<Dirty> = Vec::new();
        let mut gentle: Vec<Dirty> = Vec::new();
        for k in ready {
            let Some(it) = self.items.remove(&k) else {
                continue;
            };
            let d = Dirty {
                rel: strip_rescan(k),
                deep: it.deep,
            };
            if it.written {
                dirty.push(d)
            } else {
                gentle.push(d)
            }
        }
        for list in [&mut dirty, &mut gentle] {
            list.sort();
            list.dedup_by(|b, a| {
                if a.rel == b.rel {
                    a.deep |= b.deep;
                    true
                } else {
                    false
                }
            });
        }
        Some(Batch {
            renames: std::mem::take(&mut self.renames),
            dirty,
            gentle,
            full: false,
            defer: self.waiting(),
        })
    }
}

/// The key of a new folder's second look (not a path any file can have).
fn rescan_key(p: &Path) -> PathBuf {
    let mut key = p.as_os_str().to_os_string();
    key.push("\0rescan");
    PathBuf::from(key)
}

fn strip_rescan(k: PathBuf) -> PathBuf {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let b = k.as_os_str().as_bytes();
    match b.strip_suffix(b"\0rescan") {
        Some(s) => PathBuf::from(std::ffi::OsString::from_vec(s.to_vec())),
        None => k,
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
    fn dirty(b: &Batch) -> Vec<(String, bool)> {
        let mut all: Vec<&Dirty> = b.dirty.iter().chain(b.gentle.iter()).collect();
        all.sort();
        all.into_iter()
            .map(|d| (d.rel.display().to_string(), d.deep))
            .collect()
    }

    #[test]
    fn closed_file_is_ready_at_once() {
        let t = Instant::now();
        let mut q = Pending::new();
        q.note(Hint::Created(p("a"), false), t);
        q.note(Hint::Modified(p("a")), t);
        q.note(Hint::Closed(p("a")), t);
        let b = q.take_ready(t).unwrap();
        assert_eq!(dirty(&b), vec![("a".into(), false)]);
        assert!(q.is_empty());
    }

    #[test]
    fn open_file_waits_for_quiet_but_not_forever() {
        let t = Instant::now();
        let mut q = Pending::new();
        // truncate(2): a modify and nothing else.
        q.note(Hint::Modified(p("log")), t);
        assert!(q.take_ready(t + QUIET / 2).is_none());
        assert!(q.take_ready(t + QUIET).is_some());
        // Written every 100 ms for seconds: copied after MAX_QUIET anyway.
        let mut q = Pending::new();
        let mut now = t;
        let mut got = None;
        for _ in 0..(MAX_QUIET.as_millis() / 100 + 10) {
            q.note(Hint::Modified(p("log")), now);
            now += ms(100);
            if let Some(b) = q.take_ready(now) {
                got = Some(now);
                assert_eq!(dirty(&b), vec![("log".into(), false)]);
                break;
            }
        }
        let at = got.expect("a growing file is copied at least every MAX_QUIET");
        assert!(at - t <= MAX_QUIET + ms(100));
    }

    #[test]
    fn safe_save_is_one_batch_at_the_final_name() {
        // vim: rename f -> f~, write f, delete f~ — all within a millisecond.
        let t = Instant::now();
        let mut q = Pending::new();
        q.note(Hint::MovedFrom(p("f")), t);
        q.note(Hint::MovedTo(p("f~")), t);
        q.note(Hint::Renamed(p("f"), p("f~")), t);
        q.note(Hint::Created(p("f"), false), t);
        q.note(Hint::Closed(p("f")), t);
        // The close would be ready, but the rename makes the batch settle.
        assert!(q.take_ready(t).is_none());
        q.note(Hint::Removed(p("f~"), false), t + ms(1));
        assert!(q.take_ready(t + ms(10)).is_none());
        let b = q.take_ready(t + ms(1) + SETTLE).unwrap();
        assert_eq!(b.renames, vec![(p("f"), p("f~"))]);
        let names: Vec<String> = dirty(&b).into_iter().map(|d| d.0).collect();
        assert!(names.contains(&"f".to_string()) && names.contains(&"f~".to_string()));
    }

    #[test]
    fn settling_never_waits_past_max() {
        let t = Instant::now();
        let mut q = Pending::new();
        let mut now = t;
        loop {
            q.note(Hint::Removed(p("x"), false), now);
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
    fn a_name_moved_away_waits_for_the_other_half_of_its_rename() {
        let t = Instant::now();
        // The destination reported late (a busy machine): still one rename.
        let mut q = Pending::new();
        q.note(Hint::MovedFrom(p("b")), t);
        assert!(q.take_ready(t + SETTLE * 2).is_none());
        q.note(Hint::MovedTo(p("sub/c")), t + SETTLE * 3);
        q.note(Hint::Renamed(p("b"), p("sub/c")), t + SETTLE * 3);
        let b = q.take_ready(t + SETTLE * 4).unwrap();
        assert_eq!(b.renames, vec![(p("b"), p("sub/c"))]);
        // Moved out of SRC: a deletion, once PAIR_WAIT has passed.
        let mut q = Pending::new();
        q.note(Hint::MovedFrom(p("gone")), t);
        assert!(q.take_ready(t + SETTLE).is_none());
        assert_eq!(q.next_deadline(), Some(t + PAIR_WAIT));
        let b = q.take_ready(t + PAIR_WAIT).unwrap();
        assert!(b.renames.is_empty());
        assert_eq!(dirty(&b), vec![("gone".into(), true)]);
    }

    #[test]
    fn folder_rename_rekeys_pending_children_and_is_shallow() {
        let t = Instant::now();
        let mut q = Pending::new();
        q.note(Hint::Closed(p("d/sub/file")), t);
        q.note(Hint::MovedFrom(p("d")), t);
        q.note(Hint::MovedTo(p("e")), t);
        q.note(Hint::Renamed(p("d"), p("e")), t);
        let b = q.take_ready(t + SETTLE).unwrap();
        assert_eq!(b.renames, vec![(p("d"), p("e"))]);
        let d = dirty(&b);
        assert!(d.contains(&("e/sub/file".into(), false)), "{d:?}");
        assert!(d.contains(&("e".into(), false)), "{d:?}");
        assert!(!d.iter().any(|x| x.0.starts_with("d/")), "{d:?}");
        // A second look at the moved folder later (notify re-adds its
        // watches under the new name; a file made meanwhile is unreported).
        let b = q.take_ready(t + RESCAN_NEW_DIR).unwrap();
        assert_eq!(dirty(&b), vec![("e".into(), true)]);
    }

    #[test]
    fn new_folder_is_scanned_now_and_again_later() {
        let t = Instant::now();
        let mut q = Pending::new();
        q.note(Hint::Created(p("new"), true), t);
        let b = q.take_ready(t).unwrap();
        assert_eq!(dirty(&b), vec![("new".into(), true)]);
        assert!(q.take_ready(t + ms(10)).is_none());
        let b = q.take_ready(t + RESCAN_NEW_DIR).unwrap();
        assert_eq!(dirty(&b), vec![("new".into(), true)]);
    }

    #[test]
    fn overflow_means_one_full_reconcile() {
        let t = Instant::now();
        let mut q = Pending::new();
        q.note(Hint::Closed(p("a")), t);
        q.note(Hint::Rescan, t);
        let b = q.take_ready(t).unwrap();
        assert!(b.full && b.dirty.is_empty());
        assert!(q.take_ready(t).is_none());
    }
}
