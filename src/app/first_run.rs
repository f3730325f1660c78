//! first_run: the tray's first start for a user leads the way. With no
//! folder set up yet, the icon is the set-up one (`status::look`); here: a
//! welcome popup, start at login turned on (a tray people rely on must come
//! back after a restart; its menu entry turns it off), and the "Add a
//! folder…" choosers opened by themselves, the second one in a suggested
//! place (`add_folder::suggested_parent`). A marker in the state folder
//! records that this was done: nothing is asked twice on later starts, even
//! when the user cancelled the choosers (the menu still has the entry).

use std::path::PathBuf;

use mirrortray::engine::error::{reason, show};

/// `~/.local/state/mirrortray/welcomed` (`None`: no state folder here).
fn marker() -> Option<PathBuf> {
    Some(mirrortray::engine::paths::state_dir()?.join("welcomed"))
}

/// Whether this is the user's first start of the tray.
pub fn pending() -> bool {
    marker().is_some_and(|m| !m.exists())
}

/// Records that the first start was handled. A failure is logged: the
/// welcome would then come again at the next start, nothing worse.
pub fn done() {
    let Some(m) = marker() else { return };
    let written = m
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&m, "the first-run welcome was shown\n"));
    if let Err(e) = written {
        log::warn!(
            "{}: cannot record the first start: {}",
            show(&m),
            reason(&e)
        );
    }
}

/// The welcome popup's words (`folders`: how many are set up already).
pub fn welcome(folders: usize) -> (String, String) {
    let login = "mirrortray now starts when you log in (turn that off in its menu).";
    if folders == 0 {
        (
            "Welcome to mirrortray".into(),
            format!(
                "Choose a folder to back up, then where its backup goes: a USB drive, or the Backups folder in your home. {login}"
            ),
        )
    } else {
        (
            "mirrortray is backing up your folders".into(),
            format!(
                "{folders} folder{} set up; the icon says when all is backed up. {login}",
                if folders == 1 { " is" } else { "s are" }
            ),
        )
    }
}
