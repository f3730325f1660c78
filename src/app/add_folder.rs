//! add_folder: "Add a folder…", what a first-time user needs: two folder
//! choosers in a row (GTK, on the event-loop thread, non-modal: the loop
//! keeps running while they are open) — first the folder to back up, then
//! where its backup goes (starting at a suggestion: a removable drive, else
//! `~/Backups`). The chosen pair goes back to the loop as
//! `AppEvent::Chosen`, and from there to the actions thread, which adds it
//! to the config with the rules of `mirrortray add`; the config reload then
//! starts it. Cancel at either step adds nothing.
//!
//! Where there is no GTK (Windows, macOS builds) the settings file is opened
//! instead and a notification explains `mirrortray add SRC DST`.

use std::path::PathBuf;

use tao::event_loop::EventLoopProxy;

use super::AppEvent;

/// Title of the first chooser (the tests look for it).
pub const TITLE_SOURCE: &str = "Add a folder (1 of 2): the folder to back up";
/// Title of the second chooser starts with this.
pub const TITLE_BACKUP: &str = "Add a folder (2 of 2): where to keep the backup";

#[cfg(target_os = "linux")]
mod imp {
    use std::cell::{Cell, RefCell};
    use std::path::{Path, PathBuf};
    use std::rc::Rc;

    use gtk::prelude::*;

    use super::*;

    thread_local! {
        /// A chooser is open (a second click brings it to the front instead).
        static OPEN: RefCell<Option<gtk::FileChooserDialog>> = const { RefCell::new(None) };
    }

    pub fn choose(proxy: EventLoopProxy<AppEvent>, home: Option<PathBuf>) {
        let open = OPEN.with(|o| o.borrow().clone());
        if let Some(d) = open {
            d.present();
            return;
        }
        let start = home.clone();
        ask(TITLE_SOURCE, start.as_deref(), move |src| {
            let home = home.clone();
            let Some(src) = src else { return };
            let name = src
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| mirrortray::engine::error::show(&src));
            let title = format!("{TITLE_BACKUP} of {name}");
            let suggested = suggested_parent(home.as_deref());
            let start = suggested
                .clone()
                .or_else(|| src.parent().map(Path::to_path_buf));
            ask(&title, start.as_deref(), move |dst| {
                // The suggestion (a drive, ~/Backups) holds many backups:
                // this one goes into a folder named after the source there.
                let dst = match (dst, src.file_name()) {
                    (Some(d), Some(n)) if Some(&d) == suggested.as_ref() => Some(d.join(n)),
                    (d, _) => d,
                };
                if let Some(dst) = dst {
                    let _ = proxy.send_event(AppEvent::Chosen { src, dst });
                }
            });
        });
    }

    /// `(w, h)`, smaller where the screen's work area is smaller.
    fn fitting(w: i32, h: i32) -> (i32, i32) {
        match gtk::gdk::Display::default()
            .and_then(|dp| dp.primary_monitor().or_else(|| dp.monitor(0)))
            .map(|m| m.workarea())
        {
            Some(area) => (
                w.min(area.width() - 40).max(400),
                h.min(area.height() - 60).max(300),
            ),
            None => (w, h),
        }
    }

    /// Shows one folder chooser; `done` gets the folder, or `None` on cancel.
    fn ask(title: &str, start: Option<&Path>, done: impl FnOnce(Option<PathBuf>) + 'static) {
        let dialog = gtk::FileChooserDialog::with_buttons(
            Some(title),
            None::<&gtk::Window>,
            gtk::FileChooserAction::SelectFolder,
            &[
                ("_Cancel", gtk::ResponseType::Cancel),
                ("_Select", gtk::ResponseType::Accept),
            ],
        );
        dialog.set_create_folders(true);
        // Fits a small screen with its buttons in view. GTK's file chooser
        // resizes itself to a size of its own when it is shown (from the
        // font, or as saved last time: 1096×822 on a fresh account, taller
        // than a 1366×768 laptop screen), so the size is set again once it
        // is on screen.
        let (w, h) = fitting(760, 520);
        dialog.set_default_size(w, h);
        dialog.connect_map(move |d| {
            d.resize(w, h);
            let d = d.clone();
            gtk::glib::idle_add_local_once(move || d.resize(w, h));
        });
        dialog.set_default_response(gtk::ResponseType::Accept);
        dialog.set_position(gtk::WindowPosition::Center);
        dialog.set_keep_above(true);
        if let Some(dir) = start {
            dialog.set_current_folder(dir);
        }
        let done = Rc::new(RefCell::new(Some(done)));
        let answered = Rc::new(Cell::new(false));
        dialog.connect_response(move |d, response| {
            if answered.replace(true) {
                return;
            }
            let folder = if response == gtk::ResponseType::Accept {
                d.filename()
            } else {
                None
            };
            OPEN.with(|o| o.borrow_mut().take());
            d.hide();
            // SAFETY: the dialog is not used after this; GTK drops it.
            unsafe { d.destroy() };
            if let Some(f) = done.borrow_mut().take() {
                f(folder);
            }
        });
        OPEN.with(|o| *o.borrow_mut() = Some(dialog.clone()));
        dialog.show_all();
        dialog.present();
    }
}

/// Where the second chooser starts (the backup goes into a folder named
/// after the source inside what is chosen there): a removable drive when
/// one is mounted, as desktops mount them (`/media/USER/LABEL`,
/// `/run/media/USER/LABEL`) and writable; else `~/Backups`, made if missing.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub fn suggested_parent(home: Option<&std::path::Path>) -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut drives: Vec<PathBuf> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(1))
        .map(unescape_mount)
        .filter(|p| {
            let s = p.to_string_lossy();
            (s.starts_with("/media/") || s.starts_with("/run/media/"))
                && p.components().count() >= 4
        })
        .filter(|p| rustix::fs::access(p, rustix::fs::Access::WRITE_OK).is_ok())
        .collect();
    drives.sort();
    if let Some(d) = drives.into_iter().next() {
        return Some(d);
    }
    let backups = home?.join("Backups");
    match std::fs::create_dir_all(&backups) {
        Ok(()) => Some(backups),
        Err(e) => {
            log::warn!(
                "{}: cannot make the suggested backup folder: {}",
                mirrortray::engine::error::show(&backups),
                mirrortray::engine::error::reason(&e)
            );
            None
        }
    }
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
/// A mount point as `/proc/self/mounts` writes it (space, tab, newline and
/// backslash as octal escapes).
fn unescape_mount(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// Starts the choosers. Returns `false` where there are none.
#[cfg(target_os = "linux")]
pub fn choose(proxy: EventLoopProxy<AppEvent>, home: Option<PathBuf>) -> bool {
    imp::choose(proxy, home);
    true
}

/// Starts the choosers. Returns `false` where there are none.
#[cfg(not(target_os = "linux"))]
pub fn choose(_proxy: EventLoopProxy<AppEvent>, _home: Option<PathBuf>) -> bool {
    false
}
