//! drives: which device each backup folder was on, kept outside it.
//!
//! A backup folder on a drive that is unplugged (or unmounted with `umount
//! -l`, as a desktop does when a drive is pulled) becomes the empty mount
//! point folder on the disk that held it. Refilling it would write a whole
//! second backup onto the system disk. The backup's own `.mirrortray/` went
//! with the drive, so the device is recorded here, in the user's state
//! folder (`~/.local/state/mirrortray/drives`, one `device<TAB>path` line per
//! backup folder): a backup folder that has no `.mirrortray/` and is on
//! another device than recorded is "backup drive missing", and is left
//! alone until the drive is back (safety rule 4, for DST).
//!
//! A folder on the same device as recorded is taken as emptied by the user
//! (its backup is made again); with no record at all it is a new backup.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// The file the records live in (`None`: no state folder on this system).
pub fn records_path() -> Option<PathBuf> {
    Some(super::paths::state_dir()?.join("drives"))
}

fn read_all(file: &Path) -> BTreeMap<PathBuf, u64> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return BTreeMap::new();
    };
    text.lines()
        .filter_map(|l| {
            let (dev, path) = l.split_once('\t')?;
            Some((PathBuf::from(path), dev.parse().ok()?))
        })
        .collect()
}

/// The device `dst` was on when it last held a backup.
pub fn recorded(dst: &Path) -> Option<u64> {
    read_all(&records_path()?).get(dst).copied()
}

/// Records that `dst` holds a backup on device `dev` (written atomically;
/// a failure only costs the protection, so it is returned for a warning).
pub fn record(dst: &Path, dev: u64) -> io::Result<()> {
    let Some(file) = records_path() else {
        return Ok(());
    };
    let mut all = read_all(&file);
    if all.get(dst) == Some(&dev) {
        return Ok(());
    }
    all.insert(dst.to_path_buf(), dev);
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut text = String::new();
    for (p, d) in &all {
        // A path with a newline or tab cannot be a line of its own here:
        // such a backup folder simply goes unrecorded.
        let s = p.to_string_lossy();
        if !s.contains(['\n', '\t']) {
            text.push_str(&format!("{d}\t{s}\n"));
        }
    }
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &file)
}
