//! The tray app on a real desktop: Xvfb, a private D-Bus session, a
//! StatusNotifierItem tray host and a notification daemon (see
//! `support::desktop`). The real `mirrortray` binary runs with a temp config
//! (`--config`) and log (`--log-file`); each test has its own world and its
//! own desktop, so they run side by side.
//!
//! What a user sees is what is checked: the menu as the tray host reads it
//! over `com.canonical.dbusmenu` (labels, the status line, check marks),
//! clicks as the host sends them, popups as they cross the bus, and
//! screenshots of the menu opened by a real right click (kept in
//! `<target>/tray-screenshots/<test>.png`). "Open …" entries go through
//! `xdg-open`; a stand-in `xdg-open` first on PATH records what it was asked
//! to open.
//!
//! Every wait polls with a generous deadline (a loaded 2-core CI machine
//! runs these side by side with the other tests); no fixed wait: that a
//! paused tray does not copy is checked after the worker said (in its
//! debug log) that it heard the change and left it. The icon is checked as
//! the host reads it (the item's `IconName`), by its pixels.
#![cfg(target_os = "linux")]

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::desktop::{App, Desktop, Menu, Notification, Rect};
use crate::support::tree::is_mirrored;
use crate::support::*;

/// Deadline for anything the app does (start, mirror, react to a click).
const LONG: Duration = Duration::from_secs(90);

/// One test's world, desktop and running tray.
struct Tray {
    w: World,
    d: Desktop,
    app: App,
    config: PathBuf,
    log: PathBuf,
    /// What the stand-in `xdg-open` was asked to open, one per line.
    opened: PathBuf,
}

impl Tray {
    /// A tray backing up the world's SRC to DST.
    fn with_pair(w: World) -> Tray {
        Tray::with_pair_run_by(w, bin())
    }

    /// [`Tray::with_pair`], launched through `program` (a wrapper).
    fn with_pair_run_by(w: World, program: PathBuf) -> Tray {
        std::fs::create_dir_all(&w.dst).unwrap();
        let config = w.path("config.toml");
        std::fs::write(
            &config,
            format!(
                "[[pair]]\nsrc = \"{}\"\ndst = \"{}\"\n",
                w.src.display(),
                w.dst.display()
            ),
        )
        .unwrap();
        Tray::launch(w, Desktop::start(), program)
    }

    /// A tray whose config file does not exist yet.
    fn without_pairs(w: World) -> Tray {
        Tray::launch(w, Desktop::start(), bin())
    }

    /// The user's very first start: no config, and no record of a welcome.
    fn first_start(w: World) -> Tray {
        Tray::launch_as(w, Desktop::start(), bin(), true)
    }

    /// Launches `program`; the first-start welcome is taken as done (the
    /// other tests start where a returning user does).
    fn launch(w: World, d: Desktop, program: PathBuf) -> Tray {
        Tray::launch_as(w, d, program, false)
    }

    fn launch_as(w: World, d: Desktop, program: PathBuf, first: bool) -> Tray {
        if !first {
            let marker = w.home.join(".local/state/mirrortray/welcomed");
            std::fs::create_dir_all(marker.parent().unwrap()).unwrap();
            std::fs::write(marker, "").unwrap();
        }
        let config = w.path("config.toml");
        let log = w.path("mirrortray.log");
        let opened = w.path("opened.txt");
        let fake = w.path("fakebin");
        std::fs::create_dir_all(&fake).unwrap();
        let xdg_open = fake.join("xdg-open");
        write_program(
            &xdg_open,
            "#!/bin/sh\nprintf '%s\\n' \"$1\" >> \"$MT_OPENED\"\n",
        );
        let mut t = Tray {
            app: spawn(&w, &d, &program, &config, &log, &fake, &opened),
            w,
            d,
            config,
            log,
            opened,
        };
        t.wait_started();
        t
    }

    fn wait_started(&mut self) {
        let pid = self.app.pid;
        let m = self.d.wait_menu_until(pid, LONG, |m| m.status().is_some());
        assert!(!m.items.is_empty());
    }

    /// Launches `program` (the binary or a copy) on this desktop again.
    fn relaunch(&mut self, program: &Path) {
        let fake = self.w.path("fakebin");
        self.app = spawn(
            &self.w,
            &self.d,
            program,
            &self.config,
            &self.log,
            &fake,
            &self.opened,
        );
        self.wait_started();
    }

    #[track_caller]
    fn menu_until(&self, what: &str, pred: impl Fn(&Menu) -> bool) -> Menu {
        let t = Instant::now();
        let mut last = None;
        while t.elapsed() < LONG {
            if let Some(m) = self.d.menu(self.app.pid) {
                if pred(&m) {
                    return m;
                }
                last = Some(m);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "the tray menu never showed {what} within {LONG:?}; last seen:\n{}\n--- log\n{}\n--- stderr\n{}",
            last.map(|m| m.to_string())
                .unwrap_or_else(|| "(no menu)".into()),
            self.log_text(),
            self.app.stderr()
        );
    }

    /// Waits for the status line to be `want` (exactly) and returns the menu.
    #[track_caller]
    fn status_is(&self, want: &str) -> Menu {
        self.menu_until(&format!("the status {want:?}"), |m| status(m) == want)
    }

    /// Waits for "Up to date · HH:MM".
    #[track_caller]
    fn up_to_date(&self) -> Menu {
        self.menu_until("the status \"Up to date · HH:MM\"", |m| {
            is_up_to_date(&status(m))
        })
    }

    /// Waits for the tray icon to be the one drawn for `look` (idle, busy,
    /// paused, error), as the tray host reads it from the bus.
    #[track_caller]
    fn icon_is(&self, look: &str) {
        let mut last = String::new();
        let seen = wait_for(LONG, || {
            last = match self.d.icon_file(self.app.pid) {
                Ok(file) => icon_look(&file).unwrap_or_else(|e| e),
                Err(e) => e,
            };
            last == look
        });
        assert!(seen, "the icon never became {look:?}; last: {last}");
    }

    #[track_caller]
    fn click(&self, label: &str) {
        self.d.click(self.app.pid, label);
    }

    #[track_caller]
    fn notification(&self, what: &str, pred: impl Fn(&Notification) -> bool) -> Notification {
        match self.d.wait_notification(LONG, pred) {
            Some(n) => n,
            None => panic!(
                "no notification {what} within {LONG:?}; seen: {:#?}\n--- log\n{}",
                self.d.notifications(),
                self.log_text()
            ),
        }
    }

    /// `mirrortray status` in this tray's session: exit code and stdout.
    fn status_command(&self) -> (i32, String) {
        let mut c = Command::new(bin());
        self.w.isolate(&mut c);
        self.d.apply_session(&mut c);
        let out = c.arg("status").output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// What the stand-in `xdg-open` was asked to open.
    fn opened(&self) -> Vec<PathBuf> {
        std::fs::read_to_string(&self.opened)
            .unwrap_or_default()
            .lines()
            .map(PathBuf::from)
            .collect()
    }

    #[track_caller]
    fn wait_opened(&self, want: &Path) {
        let ok = wait_for(LONG, || self.opened().iter().any(|p| p == want));
        assert!(
            ok,
            "xdg-open was never asked to open {}; it got {:?}\n--- log\n{}",
            want.display(),
            self.opened(),
            self.log_text()
        );
    }

    /// Opens the menu with a real right click, saves the screen as
    /// `<target>/tray-screenshots/<name>.png`, and closes the menu.
    fn screenshot(&self, name: &str) -> (PathBuf, Rect) {
        let menu = self.d.open_menu_by_pointer(LONG);
        let path = screenshots().join(format!("{name}.png"));
        self.d.screenshot(&path);
        self.d.close_menu(LONG);
        (path, menu)
    }

    #[track_caller]
    fn quit(&mut self) {
        self.click("Quit");
        match self.app.wait_exit(LONG) {
            Some(st) => assert!(
                st.success(),
                "exit status {st}\n--- stderr\n{}\n--- log\n{}",
                self.app.stderr(),
                self.log_text()
            ),
            None => panic!(
                "the tray did not exit within {LONG:?} after Quit\n--- log\n{}",
                self.log_text()
            ),
        }
    }
}

fn spawn(
    w: &World,
    d: &Desktop,
    program: &Path,
    config: &Path,
    log: &Path,
    fake: &Path,
    opened: &Path,
) -> App {
    let mut cmd = Command::new(program);
    w.isolate(&mut cmd);
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![fake.to_path_buf()];
    paths.extend(std::env::split_paths(&path));
    cmd.env("PATH", std::env::join_paths(paths).unwrap())
        .env("MT_OPENED", opened)
        .arg("--config")
        .arg(config)
        .arg("--log-file")
        .arg(log)
        // Debug lines in the log file: some tests wait for them as barriers.
        .arg("-vv");
    d.launch(cmd)
}

/// Where screenshots are kept: `<target dir>/tray-screenshots`.
fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("tray-screenshots")
}

fn status(m: &Menu) -> String {
    m.status().map(|i| i.label.clone()).unwrap_or_default()
}

/// "Up to date · 14:02".
fn is_up_to_date(s: &str) -> bool {
    let Some(t) = s.strip_prefix("Up to date · ") else {
        return false;
    };
    let b = t.as_bytes();
    b.len() == 5 && b[2] == b':' && [0, 1, 3, 4].iter().all(|&i| b[i].is_ascii_digit())
}

/// Which of `icons/` the PNG at `file` shows, by its pixels (the tray
/// re-encodes the icon it is given).
fn icon_look(file: &Path) -> Result<String, String> {
    let shown = rgba(file)?;
    let icons = Path::new(env!("CARGO_MANIFEST_DIR")).join("icons");
    for look in ["idle", "busy", "paused", "error", "setup"] {
        if rgba(&icons.join(format!("{look}.png")))? == shown {
            return Ok(look.into());
        }
    }
    Err(format!("{} is none of the five icons", file.display()))
}

/// A PNG's size and 8-bit RGBA pixels.
fn rgba(file: &Path) -> Result<(u32, u32, Vec<u8>), String> {
    let f = std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut d = png::Decoder::new(std::io::BufReader::new(f));
    d.set_transformations(
        png::Transformations::normalize_to_color8() | png::Transformations::ALPHA,
    );
    let mut r = d
        .read_info()
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let mut buf = vec![0; r.output_buffer_size().unwrap_or(0)];
    let info = r
        .next_frame(&mut buf)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    buf.truncate(info.buffer_size());
    Ok((info.width, info.height, buf))
}

fn checked(m: &Menu, label: &str) -> bool {
    let i = m
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in\n{m}"));
    assert_eq!(
        i.toggle_type, "checkmark",
        "{label:?} is not a check item:\n{m}"
    );
    i.checked()
}

/// Runs an X tool on the desktop; its stdout.
fn x_tool(d: &Desktop, prog: &str, args: &[&str]) -> Result<String, String> {
    let mut c = Command::new(prog);
    c.args(args);
    d.apply(&mut c);
    let out = c.stdin(Stdio::null()).output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `text` as a regular expression that matches it literally (xdotool's
/// `--name` takes a regex).
fn literal(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

/// The visible window whose title contains `title`.
fn wait_window(d: &Desktop, title: &str) -> String {
    let mut id = String::new();
    let found = wait_for(LONG, || {
        id = x_tool(
            d,
            "xdotool",
            &["search", "--onlyvisible", "--name", &literal(title)],
        )
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
        !id.is_empty()
    });
    assert!(found, "no window titled {title:?} appeared\n{}", d.logs());
    id
}

/// Types a folder into a GTK folder chooser and accepts it.
fn choose_folder(d: &Desktop, title: &str, folder: &Path) {
    let id = wait_window(d, title);
    // It fits the test screen (800×600), so a 1366×768 laptop screen too.
    let (sw, sh) = crate::support::desktop::SCREEN;
    let mut geometry = String::new();
    let fits = wait_for(LONG, || {
        geometry = x_tool(d, "xdotool", &["getwindowgeometry", "--shell", &id]).unwrap();
        let size = |key: &str| -> u32 {
            geometry
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(u32::MAX)
        };
        size("WIDTH=") <= sw && size("HEIGHT=") <= sh
    });
    assert!(
        fits,
        "the chooser {title:?} does not fit a {sw}×{sh} screen: {geometry}"
    );
    x_tool(d, "xdotool", &["windowfocus", "--sync", &id]).unwrap();
    // A trailing slash: GTK completes nothing, and Return accepts the folder.
    let text = format!("{}/", folder.display());
    x_tool(d, "xdotool", &["type", "--delay", "20", &text]).unwrap();
    return_closes(d, title, &id);
}

/// Presses Return in the chooser `id` and waits for it to close.
fn return_closes(d: &Desktop, title: &str, id: &str) {
    x_tool(d, "xdotool", &["key", "Return"]).unwrap();
    let gone = wait_for(LONG, || {
        x_tool(
            d,
            "xdotool",
            &["search", "--onlyvisible", "--name", &literal(title)],
        )
        .unwrap_or_default()
        .split_whitespace()
        .all(|w| w != id)
    });
    assert!(gone, "the chooser {title:?} did not close after Return");
}

/// The argument vector of a desktop entry's `Exec=` line, unquoted as the
/// Desktop Entry spec says (string escapes first, then quoting).
fn exec_argv(entry: &str) -> Vec<OsString> {
    let line = entry
        .lines()
        .find_map(|l| l.strip_prefix("Exec="))
        .unwrap_or_else(|| panic!("no Exec= line in\n{entry}"));
    let mut value = String::new();
    let mut it = line.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('s') => value.push(' '),
                Some('n') => value.push('\n'),
                Some('t') => value.push('\t'),
                Some('r') => value.push('\r'),
                Some(o) => value.push(o),
                None => {}
            }
        } else {
            value.push(c);
        }
    }
    let mut argv = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut it = value.chars();
    while let Some(c) = it.next() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            '\\' if quoted => cur.extend(it.next()),
            ' ' | '\t' if !quoted => {
                if in_word {
                    argv.push(OsString::from(std::mem::take(&mut cur)));
                    in_word = false;
                }
            }
            // `%%` is a `%`; a field code (%f, %u...) expands to nothing here.
            '%' => {
                if it.next() == Some('%') {
                    cur.push('%');
                    in_word = true;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    assert!(!quoted, "unbalanced quotes in Exec={line}");
    if in_word {
        argv.push(OsString::from(cur));
    }
    argv
}

/// Makes a folder immutable (`chattr +i`): not even root can write in it.
/// Undone on drop, so the temp dir can be removed.
/// A folder root cannot write into: immutable (`chattr +i`) where the file
/// system has the flag, else a read-only bind mount of itself (tmpfs, as
/// /tmp is on Debian 13).
pub(crate) enum Immutable {
    Flag(PathBuf),
    ReadOnly(PathBuf),
}

impl Immutable {
    pub(crate) fn set(p: &Path) -> Result<Immutable, String> {
        let run = |args: &[&str]| -> Result<(), String> {
            let out = Command::new(args[0])
                .args(&args[1..])
                .arg(p)
                .output()
                .map_err(|e| e.to_string())?;
            if out.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
            }
        };
        if run(&["chattr", "+i"]).is_ok() {
            return Ok(Immutable::Flag(p.to_path_buf()));
        }
        let dir = p.to_string_lossy().to_string();
        run(&["mount", "--bind", &dir])?;
        match run(&["mount", "-o", "remount,bind,ro"]) {
            Ok(()) => Ok(Immutable::ReadOnly(p.to_path_buf())),
            Err(e) => {
                let _ = Command::new("umount").arg(p).status();
                Err(e)
            }
        }
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        match self {
            Immutable::Flag(p) => {
                let _ = Command::new("chattr").arg("-i").arg(p).status();
            }
            Immutable::ReadOnly(p) => {
                let _ = Command::new("umount").arg(p).status();
            }
        }
    }
}

// ----- the tests ------------------------------------------------------------

#[test]
fn menu_shows_status_entries_and_check_marks() {
    let mut w = World::new();
    // Names as a user has them: the menu names a pair by its folder.
    w.src = w.path("Documents");
    w.dst = w.path("Backup/Documents");
    w.write("notes.txt", "hello");
    w.write("photos/cat.jpg", "meow");
    let t = Tray::with_pair(w);
    let m = t.up_to_date();
    // The panel is offered each size as drawn: the icon is named from a
    // small theme holding 16, 22, 24 and 32 px (not one scaled picture).
    t.icon_is("idle");
    let shown = t.d.icon_file(t.app.pid).unwrap();
    let theme = shown.parent().unwrap().join("hicolor");
    let icons = Path::new(env!("CARGO_MANIFEST_DIR")).join("icons");
    for (size, drawn) in [
        (16, "idle-16.png"),
        (22, "idle-22.png"),
        (24, "idle-24.png"),
        (32, "idle.png"),
    ] {
        let offered = theme
            .join(format!("{size}x{size}/apps"))
            .join(shown.file_name().unwrap());
        assert_eq!(
            rgba(&offered).unwrap(),
            rgba(&icons.join(drawn)).unwrap(),
            "{}",
            offered.display()
        );
    }
    assert_eq!(
        m.labels(),
        [
            m.labels()[0],
            "Pause watching",
            "Back up now",
            "Open backup: Documents",
            "Restore: Documents…",
            "Add a folder…",
            "Open log",
            "Settings",
            "Previous versions in file managers",
            "Start at login",
            "Quit",
        ],
        "\n{m}"
    );
    let first = m.status().unwrap();
    assert!(
        first.enabled,
        "the status line does not open the page:\n{m}"
    );
    assert!(!checked(&m, "Pause watching"));
    assert!(!checked(&m, "Start at login"));
    assert_mirrored(&t.w.src, &t.w.dst);
    let (shot, menu) = t.screenshot("menu_shows_status_entries_and_check_marks");
    // The README's picture (the icon and the open menu, cropped from the
    // screen) is refreshed on request only.
    if std::env::var_os("MIRRORTRAY_UPDATE_DOCS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/tray-menu.png");
        std::fs::create_dir_all(docs.parent().unwrap()).unwrap();
        let x = (menu.x - 24).max(0);
        let (w, _) = crate::support::desktop::SCREEN;
        let crop = format!("{}x{}+{x}+0", w as i32 - x, menu.y + menu.h as i32 + 16);
        let st = Command::new("convert")
            .arg(&shot)
            .args(["-crop", &crop, "+repage"])
            .arg(&docs)
            .status()
            .unwrap();
        assert!(st.success());
    }

    // "Previous versions in file managers" puts the right-click entries in
    // place, and takes them away again.
    let script =
        t.w.home
            .join(".local/share/nautilus/scripts/mirrortray: Previous versions…");
    let dolphin =
        t.w.home
            .join(".local/share/kio/servicemenus/mirrortray-versions.desktop");
    assert!(!checked(&m, "Previous versions in file managers"));
    t.click("Previous versions in file managers");
    t.menu_until("the file manager entries on", |m| {
        checked(m, "Previous versions in file managers")
    });
    assert!(script.exists() && dolphin.exists());
    t.click("Previous versions in file managers");
    t.menu_until("the file manager entries off", |m| {
        !checked(m, "Previous versions in file managers")
    });
    assert!(!script.exists() && !dolphin.exists());
}

#[test]
fn pause_holds_changes_until_resumed() {
    let w = World::new();
    w.write("a.txt", "a");
    let t = Tray::with_pair(w);
    t.up_to_date();
    t.icon_is("idle");
    t.click("Pause watching");
    let m = t.status_is("Paused");
    t.icon_is("paused");
    assert!(checked(&m, "Pause watching"), "\n{m}");
    assert!(
        !m.find("Back up now").unwrap().enabled,
        "Back up now is off while paused:\n{m}"
    );
    // The menu says "Paused" at once; the worker takes the command a moment
    // later, and says so in the log.
    let paused = format!("{}: paused", t.w.src.display());
    assert!(
        wait_for(LONG, || t.log_text().contains(&paused)),
        "{}",
        t.log_text()
    );
    t.w.write("made-while-paused.txt", "wait for me");
    // The barrier: the worker heard the change and left it for the resume
    // (it is then in no list of work, so no later timer can copy it).
    assert!(
        wait_for(LONG, || {
            let log = t.log_text();
            log.contains("paused; left for the resume") && log.contains("made-while-paused.txt")
        }),
        "the change made while paused was never heard\n{}",
        t.log_text()
    );
    assert!(
        !t.w.dst.join("made-while-paused.txt").exists(),
        "a paused tray copied a new file\n--- log\n{}",
        t.log_text()
    );
    // `mirrortray status` says so too, and that something is outstanding.
    let (code, out) = t.status_command();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("mirrortray tray (pid ") && out.contains(": Paused"),
        "{out}"
    );
    t.screenshot("paused");
    t.click("Pause watching");
    let m = t.menu_until("Pause watching unchecked", |m| {
        !checked(m, "Pause watching")
    });
    assert_ne!(status(&m), "Paused");
    // Resuming reconciles: what was made during the pause arrives.
    assert!(
        wait_for(LONG, || is_mirrored(&t.w.src, &t.w.dst)),
        "not mirrored after resume\n--- log\n{}",
        t.log_text()
    );
    t.up_to_date();
    assert!(
        wait_for(LONG, || t.status_command().0 == 0),
        "status never said up to date after the resume: {:?}",
        t.status_command()
    );
    // And live mirroring is back.
    t.w.write("after.txt", "live again");
    assert!(wait_for(LONG, || t.w.dst.join("after.txt").exists()));
}

/// A desktop with no program for folders: xdg-open says so and exits 3,
/// as it does when no file manager is installed. The entry says so in a
/// popup instead of doing nothing.
#[test]
fn open_backup_without_a_file_manager_says_so() {
    let w = World::new();
    w.write("a.txt", "a");
    let t = Tray::with_pair(w);
    t.up_to_date();
    write_program(
        &t.w.path("fakebin/xdg-open"),
        "#!/bin/sh\necho \"xdg-open: no method available for opening '$1'\" >&2\nexit 3\n",
    );
    t.click("Open backup: src");
    let n = t.notification("saying the folder cannot be opened", |n| {
        n.summary.contains("Cannot open") && n.body.contains("no method available")
    });
    assert!(n.body.contains("Is a file manager installed?"), "{n:?}");
    assert!(n.body.contains(&*t.w.dst.to_string_lossy()), "{n:?}");
}

#[test]
fn back_up_now_repairs_a_hand_edited_backup() {
    let w = World::new();
    w.write("a.txt", "original");
    w.write("b.txt", "bee");
    let t = Tray::with_pair(w);
    t.up_to_date();
    // Someone edits the backup by hand: nothing watches DST.
    std::fs::write(t.w.dst.join("a.txt"), "edited by hand").unwrap();
    std::fs::remove_file(t.w.dst.join("b.txt")).unwrap();
    std::fs::write(t.w.dst.join("stray.txt"), "not in the source").unwrap();
    t.click("Back up now");
    assert!(
        wait_for(LONG, || is_mirrored(&t.w.src, &t.w.dst)),
        "Back up now did not repair the backup\n--- log\n{}",
        t.log_text()
    );
    assert_mirrored(&t.w.src, &t.w.dst);
    // What the hand edit put there was kept as a version, not destroyed.
    let versions = t.w.all_version_contents();
    assert!(
        versions.contains(&b"edited by hand".to_vec()),
        "{versions:?}"
    );
    t.up_to_date();
}

#[test]
fn unwritable_backup_folder_raises_a_notification_with_the_path() {
    let w = World::new();
    w.write("locked/old.txt", "old");
    let t = Tray::with_pair(w);
    t.up_to_date();
    // Root writes anywhere, except into an immutable folder.
    let guard = match Immutable::set(&t.w.dst.join("locked")) {
        Ok(g) => g,
        Err(e) => {
            return skip(&format!(
                "cannot make a folder unwritable for root here: {e}"
            ));
        }
    };
    // A name with a terminal escape in it fails first: the popup shows it
    // escaped.
    t.w.write("locked/a\x1b[31mred.txt", "cannot land");
    t.w.write("locked/new.txt", "cannot land");
    // 50 more failing files in the same episode: still one popup.
    for i in 0..50 {
        t.w.write(&format!("locked/more{i}.txt"), "cannot land either");
    }
    let n = t.notification("about the failed file", |n| {
        n.summary == "Backup errors: src" && n.body.contains("locked/")
    });
    assert!(n.body.contains("could not be backed up"), "{n:?}");
    assert!(!n.body.contains('\x1b'), "a raw escape in the popup: {n:?}");
    if n.body.contains("locked/a") {
        assert!(n.body.contains("locked/a\\x1B[31mred.txt"), "{n:?}");
    }
    // Named by the user's file, not by the backup's copy.
    assert!(
        n.body
            .contains(&t.w.src.join("locked").display().to_string()),
        "{n:?}"
    );
    // The first line says how many and why, not "see log".
    let m = t.menu_until("the failure and its reason", |m| {
        status(m).contains(" can't be backed up: ")
    });
    let line = status(&m);
    assert!(
        line.ends_with("permission denied") || line.ends_with("the file system is read-only"),
        "\n{m}"
    );
    t.icon_is("error");
    t.screenshot("backup_error");
    // The log names the path and the reason.
    assert!(t.log_text().contains("locked/new.txt"), "{}", t.log_text());
    let errors = |t: &Tray| {
        t.d.notifications()
            .iter()
            .filter(|n| n.summary == "Backup errors: src")
            .count()
    };
    t.menu_until("all 51 files failing", |m| {
        status(m)
            .split(' ')
            .next()
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| n >= 51)
    });
    assert_eq!(errors(&t), 1, "{:#?}", t.d.notifications());
    let closes_before = t.d.close_calls();
    // Writable again: the retry alone completes the backup.
    drop(guard);
    assert!(
        wait_for(LONG, || is_mirrored(&t.w.src, &t.w.dst)),
        "\n--- log\n{}",
        t.log_text()
    );
    t.up_to_date();
    // The error popup is closed, one short "resumed" popup follows.
    t.notification("saying the backup is complete again", |n| {
        n.summary == "Backups resumed: src"
    });
    assert!(
        wait_for(LONG, || t.d.close_calls() > closes_before),
        "the error popup was never closed"
    );
    assert!(
        wait_for(LONG, || t.d.popups_displayed().is_some_and(|n| n <= 1)),
        "popups still on screen: {:?}",
        t.d.popups_displayed()
    );
    assert_eq!(errors(&t), 1, "{:#?}", t.d.notifications());
}

/// A file the user's own account cannot read, on the desktop: the tray
/// runs as root without the capabilities that let root read anything
/// (`setpriv`), so a mode-000 file fails as it does for a user. The first
/// line and the icon turn to the reason, the popup names the file; made
/// readable, it is copied and everything clears by itself.
#[test]
fn an_unreadable_file_shows_its_reason_and_clears_by_itself() {
    let w = World::new();
    w.write("notes.txt", "readable");
    let wrapper = w.path("without-dac");
    write_program(
        &wrapper,
        &format!(
            "#!/bin/sh\nexec setpriv --bounding-set -dac_override,-dac_read_search --inh-caps -dac_override,-dac_read_search '{}' \"$@\"\n",
            bin().display()
        ),
    );
    let t = Tray::with_pair_run_by(w, wrapper);
    t.up_to_date();
    // Made unreadable before it enters SRC, so no copy can win a race.
    let outside = t.w.path("private.txt");
    std::fs::write(&outside, "only its owner's eyes").unwrap();
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o000)).unwrap();
    let private = t.w.src.join("private.txt");
    let failed_at = Instant::now();
    std::fs::rename(&outside, &private).unwrap();
    let m = t.menu_until("the unreadable file and why", |m| {
        status(m) == "1 file can't be backed up: permission denied"
    });
    assert!(!m.items.is_empty());
    // Measured, not asserted (a loaded machine may take longer).
    eprintln!(
        "the status line showed the failure after {:?}",
        failed_at.elapsed()
    );
    t.icon_is("error");
    let shown = private.display().to_string();
    t.notification("naming the file", |n| {
        n.summary == "Backup errors: src" && n.body.contains(&shown)
    });
    t.screenshot("unreadable_file");
    assert!(!t.w.dst.join("private.txt").exists());
    let closes_before = t.d.close_calls();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o644)).unwrap();
    t.up_to_date();
    t.icon_is("idle");
    assert_eq!(
        std::fs::read(t.w.dst.join("private.txt")).unwrap(),
        b"only its owner's eyes"
    );
    t.notification("saying the backup is complete again", |n| {
        n.summary == "Backups resumed: src"
    });
    assert!(
        wait_for(LONG, || t.d.close_calls() > closes_before),
        "the error popup was never closed"
    );
}

/// The backup drive pulled while the tray watches (`umount -l`, as a
/// desktop does): the first line names the missing drive, the icon and a
/// popup say so, nothing lands on the system disk; plugged in again, the
/// pair resumes by itself.
#[test]
fn a_backup_drive_pulled_is_shown_missing_and_resumes_when_back() {
    let w = World::new();
    w.write("photo.jpg", "pixels");
    std::fs::create_dir_all(&w.dst).unwrap();
    let Some(m) = crate::cli_sync::mount_image(&w, &[], 64, &w.dst) else {
        return;
    };
    let img = crate::cli_sync::image_for(&w, &w.dst);
    let loop_opts = ["-o", "loop", &img.to_string_lossy()];
    std::fs::remove_dir(w.dst.join("lost+found")).unwrap();
    let t = Tray::with_pair(w);
    t.up_to_date();
    let st = Command::new("umount")
        .arg("-l")
        .arg(&t.w.dst)
        .status()
        .unwrap();
    assert!(st.success());
    std::mem::forget(m);
    t.w.write("while-away.txt", "made while the drive was away");
    let dst = t.w.dst.display().to_string();
    t.menu_until("the missing drive", |m| {
        status(m) == format!("Backup drive missing: {dst}")
    });
    t.icon_is("error");
    t.notification("about the missing drive", |n| {
        n.summary == "Backups stopped: src"
            && n.body.contains(&format!("Backup drive missing: {dst}"))
    });
    t.screenshot("drive_missing");
    let on_system_disk: Vec<_> = std::fs::read_dir(&t.w.dst)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(on_system_disk.is_empty(), "{on_system_disk:?}");
    let Some(_m) = crate::safety::mount(&loop_opts, &t.w.dst) else {
        return;
    };
    t.up_to_date();
    t.icon_is("idle");
    assert_eq!(
        std::fs::read(t.w.dst.join("while-away.txt")).unwrap(),
        b"made while the drive was away"
    );
    t.notification("saying the backup is complete again", |n| {
        n.summary == "Backups resumed: src"
    });
}

/// The backup disk full while the tray watches: the first line turns to
/// the error with its reason, naming no log; the error popup names
/// the user's file; removing the file from SRC alone clears it.
#[test]
fn a_full_backup_disk_shows_the_reason_and_clears_by_itself() {
    let w = World::new();
    let Some(_m) = crate::safety::mount(&["-t", "tmpfs", "-o", "size=2m", "tmpfs"], &w.dst) else {
        return;
    };
    w.write("small.txt", "fits");
    let t = Tray::with_pair(w);
    t.up_to_date();
    t.w.write("big.bin", vec![9u8; 4 << 20]);
    let m = t.menu_until("the disk-full reason", |m| {
        let s = status(m);
        s.starts_with("1 file can't be backed up: backup disk full — ")
            && s.ends_with(" free, needs 4.2 MB")
    });
    assert!(!m.items.is_empty());
    t.icon_is("error");
    let big = t.w.src.join("big.bin").display().to_string();
    t.notification("naming the file", |n| {
        n.summary == "Backup errors: src" && n.body.contains(&big)
    });
    t.screenshot("disk_full");
    // The list, with what helps.
    t.click("Show what can't be backed up…");
    let mut report = None;
    let seen = wait_for(LONG, || {
        report = t
            .opened()
            .into_iter()
            .find(|p| p.ends_with("mirrortray/cannot-back-up.txt"));
        report.is_some()
    });
    assert!(seen, "the list was never opened: {:?}", t.opened());
    let text = std::fs::read_to_string(report.unwrap()).unwrap();
    assert!(
        text.contains(&format!("{big}: cannot copy: backup disk full — ")),
        "{text}"
    );
    assert!(
        text.contains("What helps: free space on the backup disk"),
        "{text}"
    );
    std::fs::remove_file(t.w.src.join("big.bin")).unwrap();
    let m = t.up_to_date();
    assert!(m.find("Show what can't be backed up…").is_none(), "\n{m}");
    t.icon_is("idle");
}

/// Old versions fill the backup disk: the oldest go to make room for a new
/// file, and a popup says what went.
#[test]
fn a_full_backup_disk_removes_the_oldest_versions_and_says_so() {
    let w = World::new();
    let Some(_m) = crate::safety::mount(&["-t", "tmpfs", "-o", "size=4m", "tmpfs"], &w.dst) else {
        return;
    };
    w.write("a.bin", vec![0u8; 1 << 20]);
    let t = Tray::with_pair(w);
    t.up_to_date();
    for b in [1u8, 2] {
        t.w.write("a.bin", vec![b; 1 << 20]);
        let dst = t.w.dst.join("a.bin");
        assert!(
            wait_for(LONG, || std::fs::read(&dst).is_ok_and(|c| c[0] == b)),
            "\n--- log\n{}",
            t.log_text()
        );
    }
    t.w.write("b.bin", vec![3u8; 1_200_000]);
    let n = t.notification("about the versions removed", |n| {
        n.summary == "Old versions removed: src"
    });
    assert!(
        n.body.contains("the backup disk was short of space: removed the oldest version folder (1.0 MB) to make room"),
        "{n:?}"
    );
    t.up_to_date();
    assert!(is_mirrored(&t.w.src, &t.w.dst));
}

/// Versions below the free-space floor (`min_free_percent`, raised in the
/// settings while the tray runs): the oldest go at the next pass, never
/// the newest, and one popup says what went.
#[test]
fn versions_below_the_free_space_floor_go_with_one_popup() {
    let w = World::new();
    let Some(_m) = crate::safety::mount(&["-t", "tmpfs", "-o", "size=8m", "tmpfs"], &w.dst) else {
        return;
    };
    w.write("a.bin", vec![0u8; 1_500_000]);
    let t = Tray::with_pair(w);
    t.up_to_date();
    for b in [1u8, 2, 3] {
        t.w.write("a.bin", vec![b; 1_500_000]);
        let dst = t.w.dst.join("a.bin");
        assert!(
            wait_for(LONG, || std::fs::read(&dst).is_ok_and(|c| c[0] == b)),
            "\n--- log\n{}",
            t.log_text()
        );
    }
    assert_eq!(t.w.versions_of("a.bin").len(), 3);
    // Half the disk to be kept free: 6 of 8 MB are in use.
    let text = std::fs::read_to_string(&t.config).unwrap();
    std::fs::write(
        &t.config,
        format!("[settings]\nmin_free_percent = 50\n\n{text}"),
    )
    .unwrap();
    let n = t.notification("about the versions removed", |n| {
        n.summary == "Old versions removed: src"
    });
    assert!(
        n.body.contains(
            "the backup disk was short of space: removed the 2 oldest version folders (3.0 MB)"
        ),
        "{n:?}"
    );
    let kept: Vec<u8> = t.w.versions_of("a.bin").iter().map(|(_, c)| c[0]).collect();
    assert_eq!(kept, vec![2], "the newest version must stay");
    t.up_to_date();
    assert!(is_mirrored(&t.w.src, &t.w.dst));
}

#[test]
fn a_first_backup_says_how_far_it_has_got() {
    let w = World::new();
    for i in 0..30 {
        w.write(&format!("photos/img{i:02}.jpg"), vec![b'x'; 10_000]);
    }
    // Its copy waits on the test's lease: the first backup stays busy with
    // everything else copied, for as long as the test looks.
    let held = w.write("photos/zz-held.jpg", vec![b'y'; 10_000]);
    let lease = match Lease::take(&held) {
        Ok(l) => l,
        Err(e) => return skip(&e),
    };
    let t = Tray::with_pair(w);
    t.status_is("Copying 30 of 31 files · 10 kB left");
    t.icon_is("busy");
    t.screenshot("progress");
    drop(lease);
    t.up_to_date();
    t.icon_is("idle");
    assert!(is_mirrored(&t.w.src, &t.w.dst));
}

#[test]
fn missing_source_notifies_and_leaves_the_backup_alone() {
    let w = World::new();
    w.write("a.txt", "a");
    w.write("deep/b.txt", "b");
    let t = Tray::with_pair(w);
    t.up_to_date();
    let before = snapshot(&t.w.dst);
    let keep = t.w.path("src-copy");
    let cp = Command::new("cp")
        .arg("-a")
        .arg(&t.w.src)
        .arg(&keep)
        .status()
        .unwrap();
    assert!(cp.success());
    std::fs::remove_dir_all(&t.w.src).unwrap();
    let n = t.notification("about the missing source", |n| {
        n.summary == "Source folder missing: src"
    });
    assert!(n.body.contains(&t.w.src.display().to_string()), "{n:?}");
    assert!(
        n.body.contains("nothing in the backup was deleted"),
        "{n:?}"
    );
    t.status_is(&format!("Source missing: {}", t.w.src.display()));
    t.screenshot("source_missing");
    assert_eq!(
        snapshot(&t.w.dst),
        before,
        "the backup changed while its source was missing"
    );
    // The folder comes back: backups resume by themselves.
    std::fs::rename(&keep, &t.w.src).unwrap();
    t.notification("that backups resumed", |n| {
        n.summary == "Backups resumed: src"
    });
    t.up_to_date();
    assert_mirrored(&t.w.src, &t.w.dst);
}

#[test]
fn a_pair_without_a_backup_for_too_long_is_announced_and_so_is_its_recovery() {
    let w = World::new();
    w.write("a.txt", "a");
    std::fs::create_dir_all(&w.dst).unwrap();
    // "No backup for 24 h", shrunk to the watcher's minimum of a second.
    std::fs::write(
        w.path("config.toml"),
        format!(
            "[settings]\nalert_after_hours = 0.0001\n\n[[pair]]\nsrc = \"{}\"\ndst = \"{}\"\n",
            w.src.display(),
            w.dst.display()
        ),
    )
    .unwrap();
    let t = Tray::launch(w, Desktop::start(), bin());
    t.up_to_date();
    t.click("Pause watching");
    let n = t.notification("about the stale pair", |n| {
        n.summary == "No backup for a long time: src"
    });
    assert!(n.body.contains("The last complete backup was at"), "{n:?}");
    t.click("Pause watching");
    t.notification("that backups resumed", |n| {
        n.summary == "Backups resumed: src"
    });
    t.up_to_date();
}

#[test]
fn without_a_notification_daemon_the_tray_goes_on_and_says_so_once() {
    let w = World::new();
    w.write("a.txt", "a");
    let mut t = Tray::with_pair(w);
    t.up_to_date();
    // Stop the daemon (the process that owns the name, nothing else).
    let daemon =
        t.d.pid_of("org.freedesktop.Notifications")
            .expect("a notification daemon runs");
    let pid = rustix::process::Pid::from_raw(i32::try_from(daemon).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert!(wait_for(LONG, || !t
        .d
        .name_has_owner("org.freedesktop.Notifications")));
    // Two occasions for a popup: the source goes, and comes back.
    let keep = t.w.path("away");
    std::fs::rename(&t.w.src, &keep).unwrap();
    t.status_is(&format!("Source missing: {}", t.w.src.display()));
    std::fs::rename(&keep, &t.w.src).unwrap();
    t.up_to_date();
    let tried = wait_for(LONG, || {
        t.d.notifications()
            .iter()
            .any(|n| n.summary == "Backups resumed: src")
    });
    assert!(
        tried,
        "the tray never tried the second popup: {:#?}",
        t.d.notifications()
    );
    t.quit();
    let log = t.log_text();
    assert_eq!(
        log.matches("cannot show desktop notifications").count(),
        1,
        "said once, in the log:\n{log}"
    );
}

#[test]
fn quit_stops_the_workers_cleanly() {
    let w = World::new();
    for i in 0..50 {
        w.write(&format!("f{i}.txt"), format!("file {i}"));
    }
    let mut t = Tray::with_pair(w);
    t.up_to_date();
    t.w.write("last.txt", "x".repeat(1 << 20));
    t.quit();
    assert_eq!(
        t.w.temp_leftovers(),
        Vec::<String>::new(),
        "temp files left in DST"
    );
    // The lock is released: a one-shot sync can take it.
    t.w.sync(&[]).ok();
    assert_mirrored(&t.w.src, &t.w.dst);
    // Nothing of the tray is left on the bus.
    let pid = t.app.pid;
    assert!(t.d.menu(pid).is_none());
    assert!(t.log_text().contains("tray stopped"), "{}", t.log_text());
}

#[test]
fn start_at_login_writes_and_removes_the_entry_even_with_a_space_in_the_path() {
    let w = World::new();
    w.write("a.txt", "a");
    std::fs::create_dir_all(&w.dst).unwrap();
    // The binary in a folder with a space, as in "~/My Apps".
    let apps = w.path("My Apps");
    std::fs::create_dir_all(&apps).unwrap();
    let program = apps.join("mirrortray");
    if std::fs::hard_link(bin(), &program).is_err() {
        std::fs::copy(bin(), &program).unwrap();
    }
    std::fs::write(
        w.path("config.toml"),
        format!(
            "[[pair]]\nsrc = \"{}\"\ndst = \"{}\"\n",
            w.src.display(),
            w.dst.display()
        ),
    )
    .unwrap();
    let mut t = Tray::launch(w, Desktop::start(), program.clone());
    let entry = t.w.home.join(".config/autostart/mirrortray.desktop");
    let m = t.up_to_date();
    assert!(!checked(&m, "Start at login"));
    assert!(!entry.exists());

    t.click("Start at login");
    t.menu_until("Start at login checked", |m| checked(m, "Start at login"));
    let text = std::fs::read_to_string(&entry).unwrap();
    assert!(text.starts_with("[Desktop Entry]\n"), "{text}");
    assert!(
        text.contains(&format!("\nExec=\"{}\" --config ", program.display())),
        "the program path must be quoted:\n{text}"
    );
    let argv = exec_argv(&text);
    assert_eq!(
        argv,
        [
            program.clone().into_os_string(),
            "--config".into(),
            t.config.clone().into_os_string(),
            "--log-file".into(),
            t.log.clone().into_os_string(),
        ]
    );

    t.click("Start at login");
    t.menu_until("Start at login unchecked", |m| {
        !checked(m, "Start at login")
    });
    assert!(!entry.exists(), "the entry is removed when switched off");

    // On again, then log out (Quit) and "log in": run the Exec line as the
    // session would. The tray comes up, and shows the entry as on.
    t.click("Start at login");
    t.menu_until("Start at login checked", |m| checked(m, "Start at login"));
    t.quit();
    let argv = exec_argv(&std::fs::read_to_string(&entry).unwrap());
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    t.w.isolate(&mut cmd);
    t.app = t.d.launch(cmd);
    t.wait_started();
    t.menu_until(
        "a tray started from the login entry, with the entry on",
        |m| is_up_to_date(&status(m)) && checked(m, "Start at login"),
    );
}

#[test]
fn a_second_tray_says_the_first_is_running() {
    let w = World::new();
    let t = Tray::with_pair(w);
    t.up_to_date();
    let mut cmd = Command::new(bin());
    t.w.isolate(&mut cmd);
    t.d.apply_session(&mut cmd);
    cmd.arg("--config")
        .arg(&t.config)
        .arg("--log-file")
        .arg(&t.log);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let exited = wait_for(LONG, || matches!(child.try_wait(), Ok(Some(_))));
    if !exited {
        let _ = child.kill();
        panic!("the second tray did not exit");
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("already running"), "{stderr}");
    assert!(
        stderr.contains(&t.app.pid.to_string()),
        "names the running tray's process: {stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    // Still one icon, and the first tray is unaffected.
    let items = t.d.registered_items();
    assert_eq!(items.len(), 1, "{items:?}");
    t.up_to_date();
}

#[test]
fn no_folders_yet_then_add_a_folder_with_the_choosers() {
    let w = World::new();
    w.write("report.txt", "q3");
    // The chosen backup folder holds a file of the user's: the backup gets
    // a folder of its own inside, and the file stays where it is.
    let chosen = w.path("Backups");
    std::fs::create_dir_all(&chosen).unwrap();
    std::fs::write(chosen.join("old-taxes.txt"), "2019").unwrap();
    let backup = chosen.join("src");
    let t = Tray::without_pairs(w);
    let m = t.status_is("No folders yet");
    assert_eq!(
        m.labels(),
        [
            "No folders yet",
            "Add a folder…",
            "Open log",
            "Settings",
            "Previous versions in file managers",
            "Start at login",
            "Quit"
        ],
        "\n{m}"
    );
    t.screenshot("no_folders_yet");
    t.click("Add a folder…");
    choose_folder(&t.d, "Add a folder (1 of 2)", &t.w.src);
    choose_folder(&t.d, "Add a folder (2 of 2)", &chosen);
    t.menu_until("the new pair", |m| m.find("Open backup: src").is_some());
    assert!(
        wait_for(LONG, || is_mirrored(&t.w.src, &backup)),
        "the added pair was not backed up\n--- log\n{}",
        t.log_text()
    );
    t.up_to_date();
    let n = t.notification("confirming the new pair", |n| {
        n.summary.starts_with("Backing up")
    });
    assert!(n.body.contains(&backup.display().to_string()), "{n:?}");
    assert!(n.body.contains("holds other files"), "{n:?}");
    assert_eq!(
        std::fs::read(chosen.join("old-taxes.txt")).unwrap(),
        b"2019"
    );
    let cfg = std::fs::read_to_string(&t.config).unwrap();
    assert!(
        cfg.contains(&format!("src = \"{}\"", t.w.src.display())),
        "{cfg}"
    );
}

/// Accepts the folder a chooser shows (its suggestion) with Return.
fn accept_shown_folder(d: &Desktop, title: &str) {
    let id = wait_window(d, title);
    x_tool(d, "xdotool", &["windowfocus", "--sync", &id]).unwrap();
    return_closes(d, title, &id);
}

#[test]
fn the_first_start_welcomes_sets_up_a_folder_and_asks_nothing_twice() {
    let w = World::new();
    w.write("report.txt", "the first backup");
    let mut t = Tray::first_start(w);
    // Nothing is backed up yet: the set-up icon, not the paused one.
    t.status_is("No folders yet");
    t.icon_is("setup");
    let n = t.notification("the welcome", |n| n.summary == "Welcome to mirrortray");
    assert!(n.body.contains("starts when you log in"), "{n:?}");
    // The choosers open by themselves; the second one starts at the
    // suggested place (no drive plugged in here: ~/Backups), and Return
    // takes it.
    choose_folder(&t.d, "Add a folder (1 of 2)", &t.w.src);
    wait_window(&t.d, "Add a folder (2 of 2)");
    t.d.screenshot(&screenshots().join("first_start_backup_chooser.png"));
    accept_shown_folder(&t.d, "Add a folder (2 of 2)");
    let backup = t.w.home.join("Backups/src");
    assert!(
        wait_for(LONG, || is_mirrored(&t.w.src, &backup)),
        "the first folder was not backed up into {}\n--- log\n{}",
        backup.display(),
        t.log_text()
    );
    t.up_to_date();
    t.icon_is("idle");
    // Start at login is on, its entry written.
    t.menu_until("Start at login checked", |m| checked(m, "Start at login"));
    assert!(
        t.w.home
            .join(".config/autostart/mirrortray.desktop")
            .is_file(),
        "no autostart entry"
    );
    t.screenshot("first_start_done");

    // The next start asks nothing again.
    t.quit();
    t.relaunch(&bin());
    t.up_to_date();
    let welcomes =
        t.d.notifications()
            .iter()
            .filter(|n| n.summary == "Welcome to mirrortray")
            .count();
    assert_eq!(welcomes, 1, "{:#?}", t.d.notifications());
    let choosers = x_tool(
        &t.d,
        "xdotool",
        &["search", "--onlyvisible", "--name", "Add a folder"],
    )
    .unwrap_or_default();
    assert!(choosers.trim().is_empty(), "a chooser opened again");
    // Reading the config is no change to it: no reload after reload (it
    // spun, reloading three times a second, once a pair was added).
    let reloads = t.log_text().matches("changed; reloading").count();
    assert!(reloads < 10, "{reloads} reloads\n{}", t.log_text());
}

#[test]
fn settings_opens_the_config_and_edits_apply_without_a_restart() {
    let w = World::new();
    w.write("a.txt", "a");
    std::fs::create_dir_all(&w.dst).unwrap();
    let t = Tray::without_pairs(w);
    t.status_is("No folders yet");
    // Settings: a commented template is written, then opened.
    t.click("Settings");
    t.wait_opened(&t.config);
    let template = std::fs::read_to_string(&t.config).unwrap();
    assert!(
        template.contains("# [[pair]]") && template.contains("mirrortray add SRC DST"),
        "{template}"
    );
    // The user adds a pair in the editor and saves (write, then rename).
    let text = format!(
        "{template}\n[[pair]]\nsrc = \"{}\"\ndst = \"{}\"\n",
        t.w.src.display(),
        t.w.dst.display()
    );
    let tmp = t.w.path(".config.toml.swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &t.config).unwrap();
    t.menu_until("the pair from the edited settings", |m| {
        m.find("Open backup: src").is_some()
    });
    assert!(
        wait_for(LONG, || is_mirrored(&t.w.src, &t.w.dst)),
        "\n--- log\n{}",
        t.log_text()
    );
    t.up_to_date();

    // The open entries hand the right paths to the desktop's opener.
    t.click("Open backup: src");
    t.wait_opened(&t.w.dst);
    // Restore opens the local page at that pair's folder, key included.
    t.click("Restore: src…");
    let page = |p: &PathBuf| {
        let s = p.to_string_lossy();
        s.starts_with("http://127.0.0.1:") && s.contains("/browse?pair=0&token=")
    };
    assert!(
        wait_for(LONG, || t.opened().iter().any(page)),
        "the page was never opened; xdg-open got {:?}\n--- log\n{}",
        t.opened(),
        t.log_text()
    );
    // The status line opens the page's overview, key included.
    // (Its words hold the time: read and clicked again if the minute turns.)
    let clicked = wait_for(LONG, || {
        let line = status(&t.up_to_date());
        t.d.try_click(t.app.pid, &line).is_ok()
    });
    assert!(clicked, "the status line could not be clicked");
    let overview = |p: &PathBuf| {
        let s = p.to_string_lossy();
        s.starts_with("http://127.0.0.1:") && s.contains("/?token=")
    };
    assert!(
        wait_for(LONG, || t.opened().iter().any(overview)),
        "the overview was never opened; xdg-open got {:?}",
        t.opened()
    );
    // Open log: the page at the log's end (the file keeps UTC; the page
    // shows local times, the newest line at the bottom).
    t.click("Open log");
    let log_page = |p: &PathBuf| {
        let s = p.to_string_lossy();
        s.starts_with("http://127.0.0.1:") && s.contains("/log?token=") && s.ends_with("#end")
    };
    assert!(
        wait_for(LONG, || t.opened().iter().any(log_page)),
        "the log page was never opened; xdg-open got {:?}",
        t.opened()
    );

    // A broken edit: the running pair goes on, the user is told where.
    std::fs::write(&t.config, "[[pair]]\nsrc = \"/x\n").unwrap();
    let n = t.notification("about the broken settings", |n| {
        n.summary == "Settings not applied"
    });
    assert!(n.body.contains("line 2"), "{n:?}");
    t.status_is("Settings not applied — see log");
    t.w.write("still.txt", "mirrored");
    assert!(wait_for(LONG, || t.w.dst.join("still.txt").exists()));
}

#[test]
fn held_mass_deletion_is_allowed_from_the_menu() {
    let w = World::new();
    for i in 0..120 {
        w.write(&format!("f{i:03}.txt"), format!("{i}"));
    }
    let mut t = Tray::with_pair(w);
    t.up_to_date();
    t.quit();
    // While the tray is not running, most of the source goes away.
    for i in 0..110 {
        std::fs::remove_file(t.w.src.join(format!("f{i:03}.txt"))).unwrap();
    }
    t.relaunch(&bin());
    let n = t.notification("about held deletions", |n| {
        n.summary == "Deletions held: src"
    });
    assert!(n.body.contains("Allow deletions in"), "{n:?}");
    let allow = format!("Allow deletions in {}", t.w.dst.display());
    t.menu_until("the allow entry", |m| m.find(&allow).is_some());
    assert_eq!(
        snapshot(&t.w.dst).len(),
        120,
        "nothing is deleted while held"
    );
    t.screenshot("deletions_held");
    t.click(&allow);
    assert!(
        wait_for(LONG, || is_mirrored(&t.w.src, &t.w.dst)),
        "the allowed deletions did not go through\n--- log\n{}",
        t.log_text()
    );
    t.menu_until("the allow entry gone", |m| m.find(&allow).is_none());
    // Deleted from the mirror, kept as versions.
    assert_eq!(t.w.all_version_contents().len(), 110);
}

/// Deletions made while paused are seen by the pass that resuming starts,
/// and that pass is held by the guard like any other.
#[test]
fn a_mass_deletion_while_paused_is_held_when_resumed() {
    let w = World::new();
    for i in 0..120 {
        w.write(&format!("f{i:03}.txt"), format!("{i}"));
    }
    let t = Tray::with_pair(w);
    t.up_to_date();
    t.click("Pause watching");
    t.menu_until("paused", |m| status(m) == "Paused");
    for i in 0..110 {
        std::fs::remove_file(t.w.src.join(format!("f{i:03}.txt"))).unwrap();
    }
    t.click("Pause watching");
    t.notification("about held deletions", |n| {
        n.summary == "Deletions held: src"
    });
    let allow = format!("Allow deletions in {}", t.w.dst.display());
    t.menu_until("the allow entry", |m| m.find(&allow).is_some());
    assert_eq!(
        snapshot(&t.w.dst).len(),
        120,
        "nothing is deleted while held"
    );
}

#[test]
fn without_a_display_it_says_so_and_mirrors_headless() {
    let w = World::new();
    w.write("a.txt", "a");
    std::fs::create_dir_all(&w.dst).unwrap();
    let config = w.path("config.toml");
    std::fs::write(
        &config,
        format!(
            "[[pair]]\nsrc = \"{}\"\ndst = \"{}\"\n",
            w.src.display(),
            w.dst.display()
        ),
    )
    .unwrap();
    let err = w.path("stderr.txt");
    let mut cmd = w.cmd();
    cmd.arg("--config")
        .arg(&config)
        .arg("--log-file")
        .arg(w.path("log.txt"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap());
    let mut child = cmd.spawn().unwrap();
    assert!(wait_for(LONG, || is_mirrored(&w.src, &w.dst)));
    w.write("live.txt", "watching");
    assert!(
        wait_for(LONG, || w.dst.join("live.txt").exists()),
        "headless mode does not mirror live"
    );
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let exited = wait_for(LONG, || matches!(child.try_wait(), Ok(Some(_))));
    assert!(exited, "headless mode did not stop on SIGTERM");
    assert!(child.wait().unwrap().success());
    let text = std::fs::read_to_string(&err).unwrap();
    let first = text.lines().next().unwrap_or_default();
    assert!(
        first.contains("no display") && first.contains("headless"),
        "{text}"
    );
    assert_eq!(w.temp_leftovers(), Vec::<String>::new());
}

/// Issue 14: `mirrortray add` while the tray runs says the tray backs the
/// pair up (a `sync` would find it in use), and the tray does.
#[test]
fn add_while_the_tray_runs_says_the_tray_backs_it_up() {
    let w = World::new();
    w.write("a.txt", "a");
    let t = Tray::with_pair(w);
    t.up_to_date();
    let src2 = t.w.path("Music");
    let dst2 = t.w.path("Backup/Music");
    std::fs::create_dir_all(&src2).unwrap();
    std::fs::write(src2.join("song.ogg"), "la").unwrap();
    let mut c = t.w.cmd();
    t.d.apply(&mut c);
    let out = c
        .arg("--config")
        .arg(&t.config)
        .arg("add")
        .arg(&src2)
        .arg(&dst2)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("The running tray (process ") && stdout.contains(") backs it up now"),
        "{stdout}"
    );
    t.menu_until("the new pair in the menu", |m| {
        m.find("Open backup: Music").is_some()
    });
    assert!(
        wait_for(LONG, || is_mirrored(&src2, &dst2)),
        "the added pair was not backed up\n--- log\n{}",
        t.log_text()
    );
}

/// Issue 15, item 5: an offsite copy that cannot be pushed (no server
/// where the repository is) pops up once with the repository and the
/// reason, and the menu says it under the status line — while the local
/// backup stays up to date; a change left out of every snapshot for longer
/// than `overdue_hours` pops up as overdue. The offsite schedule runs with
/// a minute of 0.3 s (through a wrapper that sets
/// `MIRRORTRAY_TEST_MINUTE_MS`).
#[test]
fn a_failing_offsite_copy_pops_up_and_shows_in_the_menu() {
    let w = World::new();
    w.write("a.txt", "a");
    std::fs::create_dir_all(&w.dst).unwrap();
    let pw = w.path("password");
    std::fs::write(&pw, "secret\n").unwrap();
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("rest:http://127.0.0.1:{port}/");
    std::fs::write(
        w.path("config.toml"),
        format!(
            "[[pair]]\nsrc = \"{}\"\ndst = \"{}\"\noffsite = {{ repository = \"{url}\", password_file = \"{}\", interval_minutes = 1, overdue_hours = 1 }}\n",
            w.src.display(),
            w.dst.display(),
            pw.display()
        ),
    )
    .unwrap();
    let wrapper = w.path("mirrortray-fast-offsite");
    write_program(
        &wrapper,
        &format!(
            "#!/bin/sh\nMIRRORTRAY_TEST_MINUTE_MS=300 exec '{}' \"$@\"\n",
            bin().display()
        ),
    );
    let t = Tray::launch(w, Desktop::start(), wrapper);
    t.up_to_date();
    let n = t.notification("about the failed offsite copy", |n| {
        n.summary == "Offsite copy failed: src"
    });
    assert!(n.body.contains(&url), "{n:?}");
    assert!(n.body.contains("unreachable"), "{n:?}");
    assert!(n.body.contains("tries again at"), "{n:?}");
    let m = t.menu_until("the offsite line", |m| {
        m.labels()
            .iter()
            .any(|l| l.starts_with("Offsite: failed at") && l.contains("unreachable"))
    });
    assert!(is_up_to_date(&status(&m)), "{:?}", m.labels());
    let (code, out) = t.status_command();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Offsite: failed at"), "{out}");

    // A change that waits longer than `overdue_hours` (an hour of 18 s
    // here) for a snapshot pops up too, naming when it was made.
    t.w.write("b.txt", "b");
    let n = t.notification("about the overdue offsite copy", |n| {
        n.summary == "Offsite copy overdue: src"
    });
    assert!(
        n.body.contains("are not in") && n.body.contains(&url),
        "{n:?}"
    );
    let (code, out) = t.status_command();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not copied (overdue)"), "{out}");
}
