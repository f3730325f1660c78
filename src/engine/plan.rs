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
use super::keeps::{Keeps, Unheld};

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
    /// The backup drive cannot hold it (a symlink on exFAT): not mirrored,
    /// said as a note; DST's entry, if any, goes.
    Unheld(Unheld),
}

/// What DST's file system keeps of a time: its precision and its range.
/// A time SRC holds outside the range is stored as the nearest end (ext4
/// keeps up to 2446, exFAT 1980 to 2107), and compared as that, so a file
/// dated 2500 is not copied again on every pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeLimits {
    /// 1 for nanoseconds, 1e9 for whole seconds, 2e9 for FAT's two seconds.
    pub granularity_ns: u32,
    /// The earliest and latest second it keeps.
    pub min_sec: i64,
    pub max_sec: i64,
}

impl TimeLimits {
    /// Nanoseconds, any date: what a dry run and the tests assume.
    pub const EXACT: TimeLimits = TimeLimits {
        granularity_ns: 1,
        min_sec: i64::MIN,
        max_sec: i64::MAX,
    };

    /// The time DST holds for SRC's time `t` (its range only; precision
    /// is [`same`](Self::same)'s business).
    pub fn clamp(&self, t: Time) -> Time {
        if t.sec > self.max_sec {
            Time {
                sec: self.max_sec,
                nsec: 0,
            }
        } else if t.sec < self.min_sec {
            Time {
                sec: self.min_sec,
                nsec: 0,
            }
        } else {
            t
        }
    }

    /// Whether DST's time `dst` is what the file system keeps of SRC's `src`.
    pub fn same(&self, src: Time, dst: Time) -> bool {
        let s = self.clamp(src);
        // Stored as the end of the range, the seconds say it; or shown as
        // set (a FUSE driver, until the drive is mounted again).
        (s != src && s.sec == dst.sec) || same_time(src, dst, self.granularity_ns)
    }

    /// Whether SRC's time lies outside what DST keeps.
    pub fn out_of_range(&self, t: Time) -> bool {
        self.clamp(t) != t
    }

    /// The limits from a probe: a fine time set and read back, and the
    /// furthest future and past set and read back (the kernel stores the
    /// nearest end of the range). A far time that reads back as another
    /// nearer one than now is not trusted (a file system that wraps).
    pub fn from_probe(fine: (Time, Time), future: Time, past: Time, now_sec: i64) -> TimeLimits {
        TimeLimits {
            granularity_ns: granularity_from(fine.0, fine.1),
            max_sec: if future.sec > now_sec {
                future.sec
            } else {
                i64::MAX
            },
            min_sec: if past.sec < now_sec {
                past.sec
            } else {
                i64::MIN
            },
        }
    }
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
pub fn decide(src: Option<&Meta>, dst: Option<&Meta>, links_equal: bool, keeps: &Keeps) -> Step {
    let limits = keeps.times;
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
                if d.size == s.size && limits.same(s.mtime, d.mtime) {
                    if keeps.same_mode(s.mode, d.mode) && keeps.same_owner(s, d) {
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
        Kind::Symlink if !keeps.symlinks => Step::Unheld(Unheld::Symlink),
        Kind::Symlink => match dst {
            None => Step::Copy { replace: None },
            Some(d) if d.kind == Kind::Symlink => {
                if !links_equal {
                    Step::Copy {
                        replace: Some(VersionReason::Modified),
                    }
                } else if limits.same(s.mtime, d.mtime) && keeps.same_owner(s, d) {
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
pub fn dir_meta_differs(src: &Meta, dst: &Meta, keeps: &Keeps) -> bool {
    !keeps.same_mode(src.mode, dst.mode)
        || !keeps.times.same(src.mtime, dst.mtime)
        || !keeps.same_owner(src, dst)
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
            nlink: 1,
            uid: 0,
            gid: 0,
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
            assert_eq!(decide(*s, *d, *le, &Keeps::ALL), *want, "case {i}");
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

    #[test]
    fn times_beyond_the_file_system_s_range() {
        // ext4 with large inodes: 1901 to 2446, nanoseconds.
        let ext4 = TimeLimits {
            granularity_ns: 1,
            min_sec: -(1 << 31),
            max_sec: 16_725_225_600,
        };
        let y2500 = Time {
            sec: 16_725_225_600 + 1_700_000_000,
            nsec: 5,
        };
        let kept = Time {
            sec: ext4.max_sec,
            nsec: 0,
        };
        let cases: &[(TimeLimits, Time, Time, bool)] = &[
            (ext4, y2500, kept, true),
            (ext4, y2500, Time { sec: 0, nsec: 0 }, false),
            (TimeLimits::EXACT, y2500, kept, false),
            (
                ext4,
                Time { sec: 5, nsec: 1 },
                Time { sec: 5, nsec: 1 },
                true,
            ),
            (
                ext4,
                Time { sec: 5, nsec: 1 },
                Time { sec: 5, nsec: 2 },
                false,
            ),
            (
                ext4,
                Time {
                    sec: -(1 << 40),
                    nsec: 0,
                },
                Time {
                    sec: -(1 << 31),
                    nsec: 0,
                },
                true,
            ),
        ];
        for (i, (limits, src, dst, want)) in cases.iter().enumerate() {
            assert_eq!(limits.same(*src, *dst), *want, "case {i}");
        }
        let f = meta(Kind::File, 3, y2500.sec, 5, 0o644);
        let d = meta(Kind::File, 3, kept.sec, 0, 0o644);
        let on_ext4 = Keeps {
            times: ext4,
            ..Keeps::ALL
        };
        assert_eq!(decide(Some(&f), Some(&d), false, &on_ext4), Step::Keep);
    }

    #[test]
    fn range_probe() {
        let fine = Time { sec: 11, nsec: 7 };
        let now = 1_700_000_000;
        let l = TimeLimits::from_probe(
            (fine, fine),
            Time {
                sec: 16_725_225_600,
                nsec: 0,
            },
            Time {
                sec: -(1 << 31),
                nsec: 0,
            },
            now,
        );
        assert_eq!(
            (l.granularity_ns, l.min_sec, l.max_sec),
            (1, -(1 << 31), 16_725_225_600)
        );
        // A file system that wrapped the far future round to the past.
        let w = TimeLimits::from_probe(
            (fine, fine),
            Time { sec: 12, nsec: 0 },
            Time {
                sec: now + 5,
                nsec: 0,
            },
            now,
        );
        assert_eq!((w.min_sec, w.max_sec), (i64::MIN, i64::MAX));
    }

    #[test]
    fn a_drive_without_modes_or_symlinks() {
        let exfat = Keeps {
            modes: false,
            symlinks: false,
            ..Keeps::ALL
        };
        let f = meta(Kind::File, 3, 100, 0, 0o600);
        let on_drive = meta(Kind::File, 3, 100, 0, 0o777);
        let l = meta(Kind::Symlink, 3, 100, 0, 0o777);
        let d = meta(Kind::Dir, 0, 100, 0, 0o755);
        let d_on_drive = meta(Kind::Dir, 0, 100, 0, 0o777);
        assert_eq!(decide(Some(&f), Some(&on_drive), false, &exfat), Step::Keep);
        assert_eq!(
            decide(Some(&f), Some(&on_drive), false, &Keeps::ALL),
            Step::FixMeta
        );
        assert_eq!(
            decide(Some(&l), None, false, &exfat),
            Step::Unheld(Unheld::Symlink)
        );
        assert!(!dir_meta_differs(&d, &d_on_drive, &exfat));
        assert!(dir_meta_differs(&d, &d_on_drive, &Keeps::ALL));
    }

    /// Owners: set and compared as root on a drive that holds them; a
    /// change of owner alone is metadata, never a copy.
    #[test]
    fn owners() {
        use super::super::keeps::Owners;
        let as_root = Keeps {
            owners: Owners::Kept,
            ..Keeps::ALL
        };
        let recorded = Keeps {
            owners: Owners::Recorded,
            ..Keeps::ALL
        };
        let theirs = |m: Meta| Meta {
            uid: 1234,
            gid: 5678,
            ..m
        };
        let f = meta(Kind::File, 3, 100, 0, 0o644);
        let l = meta(Kind::Symlink, 3, 100, 0, 0o777);
        let d = meta(Kind::Dir, 0, 100, 0, 0o755);
        let table: &[(Keeps, Meta, Meta, Step)] = &[
            (as_root, theirs(f), f, Step::FixMeta),
            (as_root, theirs(f), theirs(f), Step::Keep),
            (as_root, theirs(l), l, Step::FixMeta),
            (Keeps::ALL, theirs(f), f, Step::Keep),
            (recorded, theirs(f), f, Step::Keep),
        ];
        for (i, (k, s, dm, want)) in table.iter().enumerate() {
            assert_eq!(decide(Some(s), Some(dm), true, k), *want, "case {i}");
        }
        assert!(dir_meta_differs(&theirs(d), &d, &as_root));
        assert!(!dir_meta_differs(&theirs(d), &d, &recorded));
        assert!(recorded.owner_lost(&theirs(f)) && !recorded.owner_lost(&f));
        assert!(!as_root.owner_lost(&theirs(f)));
    }
}
