//! plan: given what SRC and DST hold at one name, what to do. Pure: never
//! touches the disk, so every case is a unit test.
//!
//! The rules (DESIGN.md "What mirrored means"):
//! - a file is unchanged when type, size and mtime (to the nanosecond, or to
//!   what DST's file system keeps) are equal; only then may the copy be
//!   skipped. rsync's whole-second quick check is not enough.
//! - permission bits alone differing is fixed in place, without a copy;
//! - whatever DST holds that is about to be lost is versioned first, with the
//!   reason;
//! - FIFOs, sockets and devices are never mirrored; DST's entry at such a
//!   name is stale and goes like any extra.

use super::event::VersionReason;
use super::fsops::{Kind, Meta, Time};

/// What to do at one name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Already mirrored.
    Keep,
    /// Copy the file (or make the symlink); `replace` says why DST's entry
    /// is versioned first, `None` when DST holds nothing there.
    Copy { replace: Option<VersionReason> },
    /// Same content; fix the permission bits (files) or times (symlinks).
    FixMeta,
    /// Both are folders: go inside. `create` when DST lacks the folder,
    /// `replace` when DST holds a non-folder there.
    Descend {
        create: bool,
        replace: Option<VersionReason>,
    },
    /// SRC no longer holds the name: DST's entry goes (versioned).
    Remove,
    /// Not mirrored (special file); DST's entry, if any, goes.
    Skip,
}

/// Compares two times at the precision DST's file system keeps
/// (`granularity_ns` = 1 for nanoseconds, 1e9 for whole seconds, 2e9 for
/// FAT's two seconds).
pub fn same_time(a: Time, b: Time, granularity_ns: u32) -> bool {
    if granularity_ns <= 1 {
        return a == b;
    }
    if granularity_ns >= 1_000_000_000 {
        let secs = i64::from(granularity_ns / 1_000_000_000);
        return a.sec.div_euclid(secs) == b.sec.div_euclid(secs);
    }
    a.sec == b.sec && a.nsec / granularity_ns == b.nsec / granularity_ns
}

/// The precision a file system keeps, from a time set on a file (`wanted`,
/// an odd second with nanoseconds) and the time it reads back (`got`).
pub fn granularity_from(wanted: Time, got: Time) -> u32 {
    if got == wanted {
        return 1;
    }
    if got.sec == wanted.sec {
        let mut g: u32 = 10;
        while g < 1_000_000_000 {
            if got.nsec == wanted.nsec / g * g {
                return g;
            }
            g *= 10;
        }
        return 1_000_000_000;
    }
    // FAT: two seconds, rounded down to an even second.
    2_000_000_000
}

/// Decides the step for one name. `links_equal` is whether two symlinks have
/// the same target text (read by the caller only when both are symlinks).
pub fn decide(
    src: Option<&Meta>,
    dst: Option<&Meta>,
    links_equal: bool,
    granularity_ns: u32,
) -> Step {
    let Some(s) = src else {
        return if dst.is_some() {
            Step::Remove
        } else {
            Step::Keep
        };
    };
    match s.kind {
        Kind::Special => Step::Skip,
        Kind::Dir => match dst.map(|d| d.kind) {
            Some(Kind::Dir) => Step::Descend {
                create: false,
                replace: None,
            },
            None => Step::Descend {
                create: true,
                replace: None,
            },
            Some(_) => Step::Descend {
                create: true,
                replace: Some(VersionReason::Replaced),
            },
        },
        Kind::File => match dst {
            None => Step::Copy { replace: None },
            Some(d) if d.kind == Kind::File => {
                if d.size == s.size && same_time(d.mtime, s.mtime, granularity_ns) {
                    if d.mode == s.mode {
                        Step::Keep
                    } else {
                        Step::FixMeta
                    }
                } else {
                    Step::Copy {
                        replace: Some(VersionReason::Modified),
                    }
                }
            }
            Some(_) => Step::Copy {
                replace: Some(VersionReason::Replaced),
            },
        },
        Kind::Symlink => match dst {
            None => Step::Copy { replace: None },
            Some(d) if d.kind == Kind::Symlink => {
                if !links_equal {
                    Step::Copy {
                        replace: Some(VersionReason::Modified),
                    }
                } else if same_time(d.mtime, s.mtime, granularity_ns) {
                    Step::Keep
                } else {
                    Step::FixMeta
                }
            }
            Some(_) => Step::Copy {
                replace: Some(VersionReason::Replaced),
            },
        },
    }
}

/// Whether a mirrored folder's own metadata needs setting after its content.
pub fn dir_meta_differs(src: &Meta, dst: &Meta, granularity_ns: u32) -> bool {
    src.mode != dst.mode || !same_time(src.mtime, dst.mtime, granularity_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(kind: Kind, size: u64, sec: i64, nsec: u32, mode: u32) -> Meta {
        let t = Time { sec, nsec };
        Meta {
            kind,
            size,
            mode,
            mtime: t,
            atime: t,
            ctime: t,
            dev: 1,
            ino: 1,
            raw_mode: mode,
        }
    }

    #[test]
    fn table() {
        let f = meta(Kind::File, 10, 100, 5, 0o644);
        let f_ns = meta(Kind::File, 10, 100, 6, 0o644);
        let f_mode = meta(Kind::File, 10, 100, 5, 0o600);
        let d = meta(Kind::Dir, 0, 100, 0, 0o755);
        let l = meta(Kind::Symlink, 3, 100, 0, 0o777);
        let fifo = meta(Kind::Special, 0, 100, 0, 0o644);
        let cases: &[(Option<&Meta>, Option<&Meta>, bool, Step)] = &[
            (None, None, false, Step::Keep),
            (None, Some(&f), false, Step::Remove),
            (Some(&f), None, false, Step::Copy { replace: None }),
            (Some(&f), Some(&f), false, Step::Keep),
            // Same size and second, other nanoseconds: rsync's quick check misses this one.
            (
                Some(&f_ns),
                Some(&f),
                false,
                Step::Copy {
                    replace: Some(VersionReason::Modified),
                },
            ),
            (Some(&f_mode), Some(&f), false, Step::FixMeta),
            (
                Some(&f),
                Some(&d),
                false,
                Step::Copy {
                    replace: Some(VersionReason::Replaced),
                },
            ),
            (
                Some(&d),
                Some(&f),
                false,
                Step::Descend {
                    create: true,
                    replace: Some(VersionReason::Replaced),
                },
            ),
            (
                Some(&d),
                Some(&d),
                false,
                Step::Descend {
                    create: false,
                    replace: None,
                },
            ),
            (
                Some(&d),
                None,
                false,
                Step::Descend {
                    create: true,
                    replace: None,
                },
            ),
            (Some(&l), Some(&l), true, Step::Keep),
            (
                Some(&l),
                Some(&l),
                false,
                Step::Copy {
                    replace: Some(VersionReason::Modified),
                },
            ),
            (
                Some(&l),
                Some(&d),
                false,
                Step::Copy {
                    replace: Some(VersionReason::Replaced),
                },
            ),
            (Some(&fifo), Some(&f), false, Step::Skip),
            (Some(&fifo), None, false, Step::Skip),
        ];
        for (i, (s, d, le, want)) in cases.iter().enumerate() {
            assert_eq!(decide(*s, *d, *le, 1), *want, "case {i}");
        }
    }

    #[test]
    fn coarse_file_system_times() {
        let a = Time {
            sec: 5,
            nsec: 123_456_789,
        };
        let b = Time { sec: 5, nsec: 0 };
        assert!(!same_time(a, b, 1));
        assert!(same_time(a, b, 1_000_000_000));
        assert!(!same_time(a, Time { sec: 6, nsec: 0 }, 1_000_000_000));
        // FAT: 5 s is kept as 4 s; 6 s is another time.
        assert!(same_time(a, Time { sec: 4, nsec: 0 }, 2_000_000_000));
        assert!(!same_time(a, Time { sec: 6, nsec: 0 }, 2_000_000_000));
    }

    #[test]
    fn granularity_probe() {
        let w = Time {
            sec: 1_700_000_001,
            nsec: 123_456_789,
        };
        assert_eq!(granularity_from(w, w), 1);
        assert_eq!(
            granularity_from(
                w,
                Time {
                    sec: w.sec,
                    nsec: 123_456_700
                }
            ),
            100
        );
        assert_eq!(
            granularity_from(
                w,
                Time {
                    sec: w.sec,
                    nsec: 123_456_000
                }
            ),
            1000
        );
        assert_eq!(
            granularity_from(
                w,
                Time {
                    sec: w.sec,
                    nsec: 0
                }
            ),
            1_000_000_000
        );
        assert_eq!(
            granularity_from(
                w,
                Time {
                    sec: w.sec - 1,
                    nsec: 0
                }
            ),
            2_000_000_000
        );
    }
}
