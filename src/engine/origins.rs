//! origins: which SRC file each of the backup's recent copies was read from.
//!
//! Why. A live batch replays SRC's renames inside DST, trusting that DST's
//! entry at the old name holds what SRC moved. But SRC runs ahead of the
//! watcher: by the time an earlier batch copied name N, SRC may already have
//! moved N's file away and put another file at N. DST's N then holds the
//! *other* file, and replaying "N -> M" would carry it to M. The check that
//! follows compares size and mtime, and file times come from a coarse clock
//! (one tick is 1 to 10 ms): two files written in the same tick with the
//! same size look the same, so the wrong content would stay (mix seed 146:
//! `x y1/new2` rewritten, `x y1/c3` written two operations later with the
//! same size, then `new2` moved into a new folder and `c3` renamed to
//! `new2`).
//!
//! Model. Each file the watcher copies is recorded by its DST path with the
//! (device, inode) of the SRC file it came from. A rename of a file is
//! replayed only if SRC's file at the new name is the one DST's old name was
//! copied from (or nothing is recorded for it, as after a restart); else it
//! is copied instead. A record that is wrong or stale can only turn a rename
//! into a copy, never the other way round. Records are keyed by a hash of
//! the path (small; a collision only costs a copy) and forgotten after
//! [`KEEP`], or all at once past [`MAX`] (memory stays bounded).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a copy's origin is remembered: far longer than events wait in
/// the watcher's queue.
const KEEP: Duration = Duration::from_secs(600);
/// Most records kept (about 50 bytes each).
const MAX: usize = 250_000;

/// A file's identity: (device, inode).
pub type Id = (u64, u64);

#[derive(Default)]
pub struct Origins {
    hasher: RandomState,
    map: Mutex<HashMap<u64, (Id, Instant)>>,
}

impl Origins {
    fn key(&self, rel: &Path) -> u64 {
        self.hasher.hash_one(rel.as_os_str().as_encoded_bytes())
    }

    /// DST's file at `rel` was just copied from SRC's file `id`.
    pub fn record(&self, rel: &Path, id: Id) {
        let key = self.key(rel);
        let Ok(mut m) = self.map.lock() else { return };
        if m.len() >= MAX {
            let now = Instant::now();
            m.retain(|_, (_, at)| now.duration_since(*at) < KEEP);
            if m.len() >= MAX {
                m.clear();
            }
        }
        m.insert(key, (id, Instant::now()));
    }

    /// Whether DST's file at `from` may be the SRC file `id`: it was not
    /// recorded as copied from another one.
    pub fn may_be(&self, from: &Path, id: Id) -> bool {
        let key = self.key(from);
        let Ok(m) = self.map.lock() else { return true };
        match m.get(&key) {
            Some((had, at)) if at.elapsed() < KEEP => *had == id,
            _ => true,
        }
    }

    /// DST's file moved from `from` to `to` (a replayed rename).
    pub fn moved(&self, from: &Path, to: &Path) {
        let (kf, kt) = (self.key(from), self.key(to));
        let Ok(mut m) = self.map.lock() else { return };
        match m.remove(&kf) {
            Some(r) => {
                m.insert(kt, r);
            }
            None => {
                m.remove(&kt);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rename_is_trusted_only_for_the_file_it_was_copied_from() {
        let o = Origins::default();
        let (a, b) = ((1, 10), (1, 11));
        // Never copied here: trusted (a restart, or a reconcile's copy).
        assert!(o.may_be(Path::new("x/new2"), a));
        // Copied when SRC's x/new2 was already b.
        o.record(Path::new("x/new2"), b);
        assert!(
            !o.may_be(Path::new("x/new2"), a),
            "would carry b to a's place"
        );
        assert!(o.may_be(Path::new("x/new2"), b));
        // Moved: the record goes along.
        o.moved(Path::new("x/new2"), Path::new("y/new2"));
        assert!(o.may_be(Path::new("x/new2"), a));
        assert!(!o.may_be(Path::new("y/new2"), a));
        // Moved over a recorded name without a record: the old one goes.
        o.record(Path::new("z"), a);
        o.moved(Path::new("unrecorded"), Path::new("z"));
        assert!(o.may_be(Path::new("z"), b));
    }
}
