//! hints: notify's events (the portable backend, see `source`), turned
//! into [`Hint`]s relative to SRC.
//!
//! Only what can change DST matters: writes closed, data, attributes,
//! creates, deletes, renames, overflow. Opens and read-only closes (our own
//! reads of SRC cause them) are dropped here. An event on SRC's root itself
//! (deleted, moved away) means the source is gone.

use std::path::Path;

use notify::event::{
    AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RemoveKind, RenameMode,
};

use super::pending::Hint;
use crate::engine::filter::is_reserved;

/// What the watch of SRC tells the worker (from either backend).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    Hint(Hint),
    /// SRC's root was deleted or moved.
    RootGone,
    /// The system's limit of watches is reached: live watching cannot go on.
    WatchLimit,
    /// A folder (relative to SRC) cannot be watched: it is not readable.
    Unwatched(std::path::PathBuf),
    /// The watch failed in another way (the words say how); events may be
    /// lost.
    Failed(String),
}

/// Whether an event only says a file was read (opened, closed unchanged):
/// nothing to copy. notify watches opens; our own reads of SRC, and any
/// program reading the tree, cause one each.
pub fn is_read_only(ev: &notify::Event) -> bool {
    matches!(ev.kind, EventKind::Access(k) if k != AccessKind::Close(AccessMode::Write))
        && !ev.need_rescan()
}

/// Translates one event; `root` is SRC as it was watched.
pub fn translate(ev: &notify::Event, root: &Path) -> Vec<Heard> {
    if ev.need_rescan() {
        return vec![Heard::Hint(Hint::Rescan)];
    }
    let rel = |i: usize| -> Option<std::path::PathBuf> {
        let p = ev.paths.get(i)?;
        let r = p.strip_prefix(root).ok()?;
        Some(r.to_path_buf())
    };
    let Some(first) = rel(0) else {
        return Vec::new();
    };
    let at_root = first.as_os_str().is_empty();
    if !at_root && is_reserved(&first) {
        // SRC's own top-level `.mirrortray` is never mirrored.
        return Vec::new();
    }
    let hint = match &ev.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => Hint::Closed(first),
        EventKind::Access(_) => return Vec::new(),
        EventKind::Create(CreateKind::Folder) => Hint::Created(first, true),
        EventKind::Create(_) => Hint::Created(first, false),
        EventKind::Modify(ModifyKind::Data(_)) => Hint::Modified(first),
        EventKind::Modify(ModifyKind::Metadata(_)) => Hint::Attr(first),
        EventKind::Modify(ModifyKind::Name(RenameMode::From)) => {
            if at_root {
                return vec![Heard::RootGone];
            }
            Hint::MovedFrom(first)
        }
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => Hint::MovedTo(first),
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => match rel(1) {
            Some(to) if !to.as_os_str().is_empty() && !is_reserved(&to) => Hint::Renamed(first, to),
            // Renamed onto SRC's own reserved name: gone from the mirror.
            _ => Hint::MovedFrom(first),
        },
        EventKind::Modify(_) => Hint::Modified(first),
        EventKind::Remove(kind) => {
            if at_root {
                return vec![Heard::RootGone];
            }
            Hint::Removed(first, matches!(kind, RemoveKind::Folder))
        }
        EventKind::Any | EventKind::Other => Hint::Attr(first),
    };
    if at_root {
        // Root's own attributes: its mode and mtime are not mirrored.
        return Vec::new();
    }
    vec![Heard::Hint(hint)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::Event;
    use std::path::PathBuf;

    fn ev(kind: EventKind, paths: &[&str]) -> Event {
        let mut e = Event::new(kind);
        for p in paths {
            e = e.add_path(PathBuf::from(p));
        }
        e
    }

    #[test]
    fn table() {
        let root = Path::new("/s");
        let cases: Vec<(Event, Vec<Heard>)> = vec![
            (
                ev(
                    EventKind::Access(AccessKind::Close(AccessMode::Write)),
                    &["/s/a"],
                ),
                vec![Heard::Hint(Hint::Closed("a".into()))],
            ),
            (
                ev(
                    EventKind::Access(AccessKind::Close(AccessMode::Read)),
                    &["/s/a"],
                ),
                vec![],
            ),
            (
                ev(
                    EventKind::Access(AccessKind::Open(AccessMode::Any)),
                    &["/s/a"],
                ),
                vec![],
            ),
            (
                ev(EventKind::Create(CreateKind::Folder), &["/s/d"]),
                vec![Heard::Hint(Hint::Created("d".into(), true))],
            ),
            (
                ev(EventKind::Remove(RemoveKind::Folder), &["/s"]),
                vec![Heard::RootGone],
            ),
            (
                ev(
                    EventKind::Modify(ModifyKind::Name(RenameMode::From)),
                    &["/s"],
                ),
                vec![Heard::RootGone],
            ),
            (
                ev(
                    EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
                    &["/s/a", "/s/b/c"],
                ),
                vec![Heard::Hint(Hint::Renamed("a".into(), "b/c".into()))],
            ),
            (
                ev(EventKind::Create(CreateKind::File), &["/s/.mirrortray"]),
                vec![],
            ),
            (
                ev(EventKind::Create(CreateKind::File), &["/elsewhere/x"]),
                vec![],
            ),
            (
                ev(EventKind::Other, &[]).set_flag(notify::event::Flag::Rescan),
                vec![Heard::Hint(Hint::Rescan)],
            ),
        ];
        for (i, (e, want)) in cases.into_iter().enumerate() {
            // What the callback drops is exactly what translates to nothing
            // for a reason other than the path.
            if is_read_only(&e) {
                assert!(want.is_empty(), "case {i} dropped early");
            }
            assert_eq!(translate(&e, root), want, "case {i}");
        }
        let open = ev(
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            &["/s/a"],
        );
        assert!(is_read_only(&open));
        let closed = ev(
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            &["/s/a"],
        );
        assert!(!is_read_only(&closed));
    }
}
