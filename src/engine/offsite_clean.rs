//! offsite_clean: what lets a push with nothing changed skip the walk of
//! DST — a marker in DST's `.mirrortray/` that says "DST holds exactly the
//! tree of snapshot S, as walked at time W", kept true by
//! every writer of DST's mirrored tree taking it away before it writes.
//! Checking it needs no key: a push that makes no snapshot (the
//! background's, or `offsite push --skip-if-unchanged`) lists the
//! repository's snapshots and reads nothing else.
//!
//! Files (in DST's `.mirrortray/`, which no snapshot holds):
//! - `offsite-clean`: the marker ([`Mark`], a few lines of text);
//! - `offsite-clean.pending`: a push's marker while it walks, renamed to
//!   `offsite-clean` once its snapshot is saved;
//! - `offsite-writing`: a pass or batch of the mirror is writing (left
//!   behind when its process dies in the middle).
//!
//! Rules:
//! - A writer ([`Writing`]) makes `offsite-writing` and removes both markers
//!   before its first write, and removes both markers, then
//!   `offsite-writing`, after its last one. The mirror opens one per pass or
//!   batch that writes (`Mirror::ctx`): every write into DST's tree goes
//!   through such a pass. One that wrote nothing after all puts back the
//!   marker it removed (before removing `offsite-writing`): this process
//!   asked no file system for any change during it (`fsops`'s count, which
//!   every change goes through), and it was DST's only writer (the DST
//!   lock keeps other processes' out). A change by another thread, to any
//!   folder, counts as a write: only ever a walk too many.
//! - A walking push makes a new `.pending` before its walk starts; one that
//!   trusts the marker renames `offsite-clean` to `.pending` (the claim)
//!   before it writes its snapshot. Either one then seals ([`Pending::seal`]):
//!   writes the new snapshot's id into `.pending`, and renames it to
//!   `offsite-clean` only if `offsite-writing` is absent. A writer that
//!   began or ended since the `.pending` was made removed it (the rename
//!   fails), or is still writing, or died writing (`offsite-writing` is
//!   there): no marker then, and the next push walks. A writer that begins
//!   after the rename removes the marker it made. So a marker is never
//!   there while DST differs from its snapshot through a mirrortray write
//!   (table-tested over every order of the steps below).
//! - The marker is trusted ([`plan`]) only by a push of the same folder on
//!   the same host, while the repository still lists its snapshot, and for
//!   [`TRUST`] after the walk it comes from: a change made to DST by
//!   something else than mirrortray (by hand, an older mirrortray) is not
//!   seen by it, and is taken in by the next walk at the latest. A marker
//!   dated in the future (a clock set back) is not trusted.
//! - Anything unreadable or unexpected: no trust, a walk. A missed change
//!   in the offsite copy is the one outcome never allowed; a walk too many
//!   only costs time.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use jiff::Timestamp;

use super::error::{reason, show};
use super::fsops::{self, DirHandle};

/// The marker.
pub const CLEAN: &str = "offsite-clean";
/// A push's marker until its snapshot is saved.
pub const PENDING: &str = "offsite-clean.pending";
/// A writer is at work in DST's tree.
pub const WRITING: &str = "offsite-writing";

/// How long after its walk a marker is trusted: changes made to DST by
/// something other than mirrortray reach the offsite copy within this.
pub const TRUST: Duration = Duration::from_secs(24 * 3600);

const HEADER: &str = "mirrortray offsite-clean 1";

/// A symlink planted at a marker's name is not followed (std opens with
/// `O_CLOEXEC` already).
const NOFOLLOW: i32 = rustix::fs::OFlags::NOFOLLOW.bits() as i32;

/// What a marker says: DST (`dst`, on `host`) is exactly the tree of
/// `snapshot` (dated `time`), as walked from `walked`. The repository is
/// not named: a snapshot's id is the hash of its encrypted file, found in
/// no other repository than the one it was written to (or a copy of it,
/// which holds the same tree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub snapshot: String,
    pub time: Timestamp,
    pub host: String,
    pub dst: String,
    pub walked: Timestamp,
}

impl Mark {
    pub fn to_text(&self) -> String {
        format!(
            "{HEADER}\nsnapshot {}\ntime {}\nwalked {}\nhost {}\ndst {}\n",
            self.snapshot, self.time, self.walked, self.host, self.dst
        )
    }

    /// `None` for anything but a whole marker of this format.
    pub fn parse(text: &str) -> Option<Mark> {
        let mut lines = text.split('\n');
        if lines.next()? != HEADER {
            return None;
        }
        let mut found: [Option<&str>; 5] = [None; 5];
        let mut ended = false;
        for line in lines {
            if ended {
                return None;
            }
            if line.is_empty() {
                ended = true;
                continue;
            }
            let (key, value) = line.split_once(' ')?;
            let i = ["snapshot", "time", "walked", "host", "dst"]
                .iter()
                .position(|k| *k == key)?;
            if found[i].replace(value).is_some() {
                return None;
            }
        }
        let [
            Some(snapshot),
            Some(time),
            Some(walked),
            Some(host),
            Some(dst),
        ] = found
        else {
            return None;
        };
        if !ended || snapshot.len() != 64 || !snapshot.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(Mark {
            snapshot: snapshot.to_string(),
            time: time.parse().ok()?,
            walked: walked.parse().ok()?,
            host: host.to_string(),
            dst: dst.to_string(),
        })
    }
}

/// What a push does, given the marker it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// DST is the tree of the marker's snapshot, if the repository still
    /// has it: no walk.
    Trust(Mark),
    /// Walk DST, for this reason.
    Walk(Why),
}

/// Why a push walks DST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// No marker: the mirror wrote since the last push, or none sealed one.
    NoMark,
    /// A marker that does not parse.
    Unreadable,
    /// The marker is of another host or path (a backup folder moved, or
    /// copied with its `.mirrortray/`).
    OtherFolder,
    /// Its walk is older than [`TRUST`]: changes made to DST by hand would
    /// not have been seen.
    Old,
    /// Its walk is in the future: the clock was set back.
    Future,
}

impl Why {
    pub fn words(self) -> &'static str {
        match self {
            Why::NoMark => "the mirror may have written into it since the last snapshot",
            Why::Unreadable => "its offsite-clean marker cannot be read",
            Why::OtherFolder => "its offsite-clean marker is of another host or folder",
            Why::Old => {
                "its last walk is a day old or more (changes made by hand are found by a walk)"
            }
            Why::Future => "its last walk is dated in the future (was the clock set back?)",
        }
    }
}

/// Whether a push of `dst` on `host` may trust the marker whose text is
/// `text` (`None`: no marker), at `now`.
pub fn plan(text: Option<&str>, host: &str, dst: &str, now: Timestamp, trust: Duration) -> Plan {
    let Some(text) = text else {
        return Plan::Walk(Why::NoMark);
    };
    let Some(mark) = Mark::parse(text) else {
        return Plan::Walk(Why::Unreadable);
    };
    if mark.host != host || mark.dst != dst {
        return Plan::Walk(Why::OtherFolder);
    }
    if mark.walked > now {
        return Plan::Walk(Why::Future);
    }
    if now.duration_since(mark.walked).unsigned_abs() >= trust {
        return Plan::Walk(Why::Old);
    }
    Plan::Trust(mark)
}

/// The writers of one DST in this process (one per `Store`): a writer
/// that wrote nothing puts the marker back only if it was alone.
#[derive(Debug, Default)]
pub struct Writers {
    /// Writers begun so far.
    began: AtomicU64,
    /// Writers at work now.
    active: AtomicUsize,
}

/// One pass or batch of the mirror writing into DST's tree: the markers
/// go before its first write and again after its last one (see the module
/// doc). Made by [`Writing::begin`], ended when dropped. One that wrote
/// nothing after all (nothing changed in SRC) puts back the marker it took
/// away, so a push after it walks no more than one before it: the
/// process's count of changes ([`fsops::changes`]) is the same at its end
/// as at its start, and no other writer of DST began meanwhile.
pub struct Writing<'a> {
    /// DST's `.mirrortray/`.
    dir: &'a DirHandle,
    /// DST, for messages.
    dst: &'a Path,
    writers: &'a Writers,
    /// This writer's number in `writers.began`.
    ours: u64,
    /// The marker it took away, to put back if nothing was written.
    mark: Option<String>,
    /// [`fsops::changes`] once the markers were taken away.
    changes: u64,
}

impl<'a> Writing<'a> {
    pub fn begin(dir: &'a DirHandle, dst: &'a Path, writers: &'a Writers) -> Writing<'a> {
        let ours = writers.began.fetch_add(1, Ordering::SeqCst) + 1;
        writers.active.fetch_add(1, Ordering::SeqCst);
        let mut w = Writing {
            dir,
            dst,
            writers,
            ours,
            mark: None,
            changes: 0,
        };
        // A backup folder that is gone holds no marker either (the mirror
        // says it is gone in its own words).
        match dir.touch(WRITING.as_ref()) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => w.said(WRITING, &e),
            _ => {}
        }
        w.mark = w.read_mark();
        w.remove_marks();
        w.changes = fsops::changes();
        w
    }

    /// The marker's text, if it is a whole one.
    fn read_mark(&self) -> Option<String> {
        let mut text = String::new();
        self.dir
            .open_read(CLEAN.as_ref())
            .ok()?
            .read_to_string(&mut text)
            .ok()?;
        Mark::parse(&text).map(|_| text)
    }

    /// Nothing was written into DST by this process since [`begin`], and
    /// no other writer of it began.
    fn wrote_nothing(&self) -> bool {
        fsops::changes() == self.changes
            && self.writers.began.load(Ordering::SeqCst) == self.ours
            && self.writers.active.load(Ordering::SeqCst) == 1
    }

    /// Puts the marker back (through `tmp/`: a push never reads half of
    /// one).
    fn put_back(&self, text: &str) -> io::Result<()> {
        super::store::write_whole(self.dir, CLEAN, text.as_bytes())
    }

    fn remove_marks(&self) {
        for name in [CLEAN, PENDING] {
            match self.dir.unlink(name.as_ref()) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => self.said(name, &e),
            }
        }
    }

    fn said(&self, name: &str, e: &io::Error) {
        log::warn!(
            "{}: {}; the next offsite push walks the whole backup folder",
            show(&self.dst.join(super::filter::RESERVED).join(name)),
            reason(e)
        );
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        let back = self.mark.take().filter(|_| self.wrote_nothing());
        // A push that began meanwhile seals no marker of its own.
        self.remove_marks();
        if let Some(text) = back
            && let Err(e) = self.put_back(&text)
        {
            log::debug!("cannot put the offsite marker back: {}", reason(&e));
            let _ = self.dir.unlink(CLEAN.as_ref());
        }
        match self.dir.unlink(WRITING.as_ref()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => self.said(WRITING, &e),
        }
        self.writers.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The marker's text, if there is one (`dir`: DST's `.mirrortray/`).
pub fn read(dir: &Path) -> io::Result<Option<String>> {
    let mut text = String::new();
    match open(&dir.join(CLEAN), false) {
        Ok(mut f) => {
            f.read_to_string(&mut text)?;
            Ok(Some(text))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn open(path: &Path, write: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(NOFOLLOW)
        .open(path)
}

/// A push's marker, made before its walk or claimed before its snapshot;
/// [`Pending::seal`] makes it the marker.
#[derive(Debug)]
pub struct Pending {
    file: File,
    /// DST's `.mirrortray/`.
    dir: PathBuf,
}

/// How a seal ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealed {
    /// The marker now vouches for the snapshot.
    Clean,
    /// The mirror wrote (or is writing) into DST meanwhile: no marker.
    Written,
}

impl Pending {
    /// A walk starts now: the old marker goes, a new `.pending` is made.
    pub fn start(dir: &Path) -> io::Result<Pending> {
        for name in [CLEAN, PENDING] {
            match std::fs::remove_file(dir.join(name)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(NOFOLLOW)
            .open(dir.join(PENDING))?;
        Ok(Pending {
            file,
            dir: dir.to_path_buf(),
        })
    }

    /// Takes the marker over (renamed to `.pending`) for a push that makes
    /// a snapshot of it; `None` when a writer took it away meanwhile.
    pub fn claim(dir: &Path) -> io::Result<Option<Pending>> {
        match std::fs::rename(dir.join(CLEAN), dir.join(PENDING)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        }
        match open(&dir.join(PENDING), true) {
            Ok(file) => Ok(Some(Pending {
                file,
                dir: dir.to_path_buf(),
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Makes it the marker for `mark`, unless the mirror wrote meanwhile.
    pub fn seal(mut self, mark: &Mark) -> io::Result<Sealed> {
        self.file.set_len(0)?;
        self.file.write_all(mark.to_text().as_bytes())?;
        match std::fs::symlink_metadata(self.dir.join(WRITING)) {
            Ok(_) => return Ok(Sealed::Written),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        match std::fs::rename(self.dir.join(PENDING), self.dir.join(CLEAN)) {
            Ok(()) => Ok(Sealed::Clean),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Sealed::Written),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn mark(walked: Timestamp) -> Mark {
        Mark {
            snapshot: "cd".repeat(32),
            time: "2026-12-03T05:00:00Z".parse().unwrap(),
            host: "vm".into(),
            dst: "/b/dst dir".into(),
            walked,
        }
    }

    #[test]
    fn a_mark_reads_back_and_nothing_else_reads_as_one() {
        let m = mark("2026-12-03T06:00:00.123456789Z".parse().unwrap());
        assert_eq!(Mark::parse(&m.to_text()), Some(m.clone()));
        let text = m.to_text();
        let table: &[(&str, String)] = &[
            ("empty", String::new()),
            ("torn", text[..text.len() - 4].to_string()),
            ("no last newline", text.trim_end().to_string()),
            ("other header", text.replace("clean 1", "clean 2")),
            ("short id", text.replace(&"cd".repeat(32), "cdcd")),
            ("not hex", text.replace(&"cd".repeat(32), &"zz".repeat(32))),
            ("bad time", text.replace("2026-12-03", "2026-13-03")),
            ("unknown key", format!("{text}tree 1\n")),
            ("after the end", format!("{text}\n")),
            ("twice", text.replace("host vm\n", "host vm\nhost vm\n")),
            ("no walked", text.replace("walked", "walk")),
        ];
        for (what, t) in table {
            assert_eq!(Mark::parse(t), None, "{what}");
        }
    }

    #[test]
    fn a_push_trusts_only_a_recent_mark_of_its_folder() {
        let now: Timestamp = "2026-12-03T06:00:00Z".parse().unwrap();
        let hours = |h: i64| now - jiff::SignedDuration::from_hours(h);
        let text = |walked| mark(walked).to_text();
        let table: &[(&str, Option<String>, Plan)] = &[
            ("no mark", None, Plan::Walk(Why::NoMark)),
            ("garbage", Some("x".into()), Plan::Walk(Why::Unreadable)),
            ("fresh", Some(text(hours(1))), Plan::Trust(mark(hours(1)))),
            ("just now", Some(text(now)), Plan::Trust(mark(now))),
            ("23 h", Some(text(hours(23))), Plan::Trust(mark(hours(23)))),
            ("24 h", Some(text(hours(24))), Plan::Walk(Why::Old)),
            ("a week", Some(text(hours(24 * 7))), Plan::Walk(Why::Old)),
            ("future", Some(text(hours(-1))), Plan::Walk(Why::Future)),
            (
                "other host",
                Some(text(hours(1)).replace("host vm", "host pc")),
                Plan::Walk(Why::OtherFolder),
            ),
            (
                "other folder",
                Some(text(hours(1)).replace("dst dir", "dst")),
                Plan::Walk(Why::OtherFolder),
            ),
        ];
        for (what, t, want) in table {
            assert_eq!(
                &plan(t.as_deref(), "vm", "/b/dst dir", now, TRUST),
                want,
                "{what}"
            );
        }
    }

    /// One step of a push or a writer.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Step {
        /// The push makes `.pending` (start of its walk, or its claim).
        PushStart,
        /// The push seals.
        PushSeal,
        /// The writer's first write is after this.
        WriterBegin,
        /// The writer's last write was before this.
        WriterEnd,
    }

    /// Every order of the push's two steps among the writer's, the writer
    /// ending or dying before its end: the marker is there at the end only
    /// when no write fell between the push's start and its seal, and none
    /// is still going on.
    #[test]
    fn a_mark_is_never_left_by_a_push_that_a_write_overlapped() {
        use Step::*;
        let orders: Vec<Vec<Step>> = {
            let mut all = Vec::new();
            for dies in [false, true] {
                let writer: Vec<Step> = if dies {
                    vec![WriterBegin]
                } else {
                    vec![WriterBegin, WriterEnd]
                };
                let n = writer.len() + 2;
                for i in 0..n {
                    for j in i + 1..n {
                        let mut order = Vec::new();
                        let mut w = writer.iter();
                        for k in 0..n {
                            order.push(if k == i {
                                PushStart
                            } else if k == j {
                                PushSeal
                            } else {
                                *w.next().unwrap()
                            });
                        }
                        all.push(order);
                    }
                }
            }
            all
        };
        assert_eq!(orders.len(), 6 + 3);
        for claim in [false, true] {
            for order in &orders {
                let tmp = tempfile::tempdir().unwrap();
                let dir = tmp.path();
                let handle = DirHandle::open_root(dir).unwrap();
                let dst = Path::new("/dst");
                if claim {
                    std::fs::write(dir.join(CLEAN), mark(Timestamp::now()).to_text()).unwrap();
                }
                let writers = Writers::default();
                let mut pending = None;
                let mut writing = None;
                let mut sealed = None;
                for step in order {
                    match step {
                        PushStart if claim => pending = Pending::claim(dir).unwrap(),
                        PushStart => pending = Some(Pending::start(dir).unwrap()),
                        PushSeal => {
                            sealed = Some(match pending.take() {
                                Some(p) => p.seal(&mark(Timestamp::now())).unwrap(),
                                None => Sealed::Written,
                            })
                        }
                        WriterBegin => {
                            writing = Some(Writing::begin(&handle, dst, &writers));
                            // It writes (one that does not is the integration tests').
                            fsops::changing();
                        }
                        WriterEnd => drop(writing.take()),
                    }
                }
                // A writer that dies leaves its file behind (no drop).
                std::mem::forget(writing);
                let start = order.iter().position(|s| *s == PushStart).unwrap();
                let seal = order.iter().position(|s| *s == PushSeal).unwrap();
                let begin = order.iter().position(|s| *s == WriterBegin).unwrap();
                let end = order.iter().position(|s| *s == WriterEnd);
                // The writer wrote at some time in (begin, end), or from
                // begin on when it died.
                let overlapped = begin < seal && end.is_none_or(|e| e > start);
                let before = end.is_some_and(|e| e < start);
                // A claim finds no marker once a writer began.
                let want_sealed = if claim { begin > seal } else { !overlapped };
                assert_eq!(
                    sealed == Some(Sealed::Clean),
                    want_sealed,
                    "claim {claim}, {order:?}"
                );
                // A writer that begins after the seal takes the marker away.
                assert_eq!(
                    dir.join(CLEAN).exists(),
                    want_sealed && before,
                    "claim {claim}, {order:?}"
                );
            }
        }
    }
}
