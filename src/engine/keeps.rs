//! keeps: what the backup drive's file system can hold, and the rules that
//! follow from it. Pure; the probe that learns it is `Store::probe`.
//!
//! Most USB drives are exFAT, FAT32 or NTFS, not ext4: they keep times to
//! the second or two (or only up to 2107), store no permission bits (every
//! entry reads 777), no symlinks, no hard links, no extended attributes, refuse names with
//! `: * ? " < > | \`, and cannot tell `Report` from `report`. Comparing what
//! such a drive cannot hold would make every file look changed on every pass
//! (copied again, a version kept each time) and a symlink fail forever. So a
//! pair compares only what its drive keeps; what it cannot hold (modes,
//! fine or early times, and at all: a symlink, a refused name, the second of
//! two names that differ only in case) is written down beside it instead
//! (see `record`), and said once: a note, never an error.
//!
//! What was learned is recorded in `.mirrortray/limits` (see [`Keeps::record`])
//! so that `verify`, which writes nothing, compares the same way.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use super::fsops::Meta;
use super::plan::TimeLimits;

/// What DST's file system keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keeps {
    pub times: TimeLimits,
    /// Permission bits.
    pub modes: bool,
    pub symlinks: bool,
    /// Two names for one file.
    pub hardlinks: bool,
    /// Extended attributes and ACLs.
    pub xattrs: bool,
    /// `A` and `a` are one name (exFAT, FAT; NTFS as Windows mounts it).
    pub case_blind: bool,
    /// Names with `: * ? " < > | \` or control characters are refused.
    pub windows_names: bool,
    /// Whose entries are.
    pub owners: Owners,
    /// A rename keeps the entry's times (fusefat's sets the mtime to now:
    /// they are set again after each copy is put in place).
    pub renames_keep_times: bool,
}

/// What becomes of owners and groups. Like `rsync -a`, they are kept only
/// when mirrortray runs as root: nobody else can give a file away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owners {
    /// Not kept (not root): every copy is the user's.
    Off,
    /// Set on DST's entries and compared (ext4, btrfs, XFS as root).
    Kept,
    /// The drive has none to set (exFAT refuses, NTFS without a user
    /// mapping ignores): an entry not root's is recorded (see `record`).
    Recorded,
}

impl Owners {
    fn word(self) -> &'static str {
        match self {
            Owners::Off => "off",
            Owners::Kept => "kept",
            Owners::Recorded => "recorded",
        }
    }
    fn parse(w: &str) -> Option<Owners> {
        [Owners::Off, Owners::Kept, Owners::Recorded]
            .into_iter()
            .find(|o| o.word() == w)
    }
}

/// Why an entry is not mirrored to this drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unheld {
    Symlink,
    Name,
    /// Differs only in case from a name met before it.
    Case,
}

impl Unheld {
    /// The note, in the words the log and `verify` show.
    pub fn why(self) -> &'static str {
        match self {
            Unheld::Symlink => "the backup drive's file system cannot hold symlinks",
            Unheld::Name => {
                "the backup drive's file system refuses this name (one of : * ? \" < > | \\ or a control character)"
            }
            Unheld::Case => {
                "the backup drive's file system cannot tell it from a name that differs only in case"
            }
        }
    }
}

impl Keeps {
    /// Everything: ext4, btrfs, XFS; what is assumed before a probe.
    pub const ALL: Keeps = Keeps {
        times: TimeLimits::EXACT,
        modes: true,
        symlinks: true,
        hardlinks: true,
        xattrs: true,
        case_blind: false,
        windows_names: false,
        owners: Owners::Off,
        renames_keep_times: true,
    };

    /// The time range, told apart for the FAT family (exFAT, FAT32: no
    /// modes, no symlinks), which keeps 1980 to 2107: a FUSE driver
    /// (exfat-fuse) shows the time set until the drive is mounted again,
    /// so the probe alone cannot see the range there.
    pub fn fat_range(&self) -> TimeLimits {
        const FAT_MIN: i64 = 315_532_800; // 1980-01-01
        const FAT_MAX: i64 = 4_354_819_198; // 2107-12-31 23:59:58
        let mut t = self.times;
        if !self.modes && !self.symlinks {
            t.min_sec = t.min_sec.max(FAT_MIN);
            t.max_sec = t.max_sec.min(FAT_MAX);
        }
        t
    }

    /// Whether DST's permission bits `dst` stand for SRC's `src`.
    pub fn same_mode(&self, src: u32, dst: u32) -> bool {
        !self.modes || src == dst
    }

    /// Whether DST's entry `dst` has SRC's `src` owner and group, as far
    /// as they are set on this drive.
    pub fn same_owner(&self, src: &Meta, dst: &Meta) -> bool {
        self.owners != Owners::Kept || (src.uid, src.gid) == (dst.uid, dst.gid)
    }

    /// Whether SRC's `m` has an owner or group the drive loses, and the
    /// record keeps (root's, what a restore as root makes, is not kept).
    pub fn owner_lost(&self, m: &Meta) -> bool {
        self.owners == Owners::Recorded && (m.uid, m.gid) != (0, 0)
    }

    /// Whether the drive refuses the name itself.
    pub fn refuses(&self, name: &OsStr) -> bool {
        self.windows_names
            && name
                .as_bytes()
                .iter()
                .any(|b| b"*:?\"<>|\\".contains(b) || *b < 0x20)
    }

    /// The name as a case-blind drive sees it (`None`: it tells case).
    pub fn folded(&self, name: &OsStr) -> Option<String> {
        self.case_blind
            .then(|| name.to_string_lossy().to_uppercase())
    }

    /// Everything it keeps, one `key=value` a line.
    pub fn record(&self) -> String {
        let b = |v: bool| u8::from(v);
        format!(
            "granularity_ns={}\nmin_sec={}\nmax_sec={}\nxattrs={}\nmodes={}\nsymlinks={}\nhardlinks={}\ncase_blind={}\nwindows_names={}\nowners={}\nrenames_keep_times={}\n",
            self.times.granularity_ns,
            self.times.min_sec,
            self.times.max_sec,
            b(self.xattrs),
            b(self.modes),
            b(self.symlinks),
            b(self.hardlinks),
            b(self.case_blind),
            b(self.windows_names),
            self.owners.word(),
            b(self.renames_keep_times),
        )
    }

    /// Reads [`record`](Self::record)'s text (a key missing: the value of
    /// [`ALL`](Self::ALL), so older records still read).
    pub fn parse(text: &str) -> Option<Keeps> {
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .and_then(|v| v.trim().parse::<i64>().ok())
        };
        let flag = |key: &str, default: bool| field(key).map_or(default, |v| v != 0);
        let all = Keeps::ALL;
        Some(Keeps {
            times: TimeLimits {
                granularity_ns: u32::try_from(field("granularity_ns")?).ok()?,
                min_sec: field("min_sec")?,
                max_sec: field("max_sec")?,
            },
            xattrs: flag("xattrs", all.xattrs),
            modes: flag("modes", all.modes),
            symlinks: flag("symlinks", all.symlinks),
            hardlinks: flag("hardlinks", all.hardlinks),
            case_blind: flag("case_blind", all.case_blind),
            windows_names: flag("windows_names", all.windows_names),
            owners: text
                .lines()
                .find_map(|l| l.strip_prefix("owners="))
                .and_then(|w| Owners::parse(w.trim()))
                .unwrap_or(all.owners),
            renames_keep_times: flag("renames_keep_times", all.renames_keep_times),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exfat() -> Keeps {
        Keeps {
            times: TimeLimits {
                granularity_ns: 1_000_000_000,
                min_sec: 315_532_800,
                max_sec: 4_354_819_199,
            },
            modes: false,
            symlinks: false,
            hardlinks: false,
            xattrs: false,
            case_blind: true,
            windows_names: true,
            owners: Owners::Recorded,
            renames_keep_times: true,
        }
    }

    #[test]
    fn names_a_drive_refuses() {
        let table: &[(&str, bool, bool)] = &[
            ("report.txt", false, false),
            ("a:b", false, true),
            ("what?", false, true),
            ("x.", false, false),
            ("tab\there", false, true),
            ("ünï", false, false),
        ];
        for (name, on_ext4, on_exfat) in table {
            assert_eq!(Keeps::ALL.refuses(OsStr::new(name)), *on_ext4, "{name}");
            assert_eq!(exfat().refuses(OsStr::new(name)), *on_exfat, "{name}");
        }
    }

    #[test]
    fn case_and_modes() {
        let e = exfat();
        assert_eq!(
            e.folded(OsStr::new("Report")),
            e.folded(OsStr::new("rePORT"))
        );
        assert_ne!(e.folded(OsStr::new("ä")), e.folded(OsStr::new("a")));
        assert_eq!(Keeps::ALL.folded(OsStr::new("Report")), None);
        assert!(e.same_mode(0o600, 0o777));
        let wide = Keeps {
            times: TimeLimits::EXACT,
            ..e
        };
        assert_eq!(
            (wide.fat_range().min_sec, wide.fat_range().max_sec),
            (315_532_800, 4_354_819_198)
        );
        assert_eq!(Keeps::ALL.fat_range(), TimeLimits::EXACT);
        assert!(!Keeps::ALL.same_mode(0o600, 0o777));
    }

    #[test]
    fn record_round_trip_and_older_records() {
        for k in [Keeps::ALL, exfat()] {
            assert_eq!(Keeps::parse(&k.record()), Some(k));
        }
        let old = "granularity_ns=1\nmin_sec=-5\nmax_sec=7\n";
        let k = Keeps::parse(old).unwrap();
        assert_eq!((k.times.min_sec, k.modes, k.symlinks), (-5, true, true));
        assert_eq!(Keeps::parse("nothing"), None);
    }
}
