//! A private desktop for tray tests: a real X server (Xvfb), a private D-Bus
//! session bus, a notification daemon (dunst), a StatusNotifierItem tray host
//! with its own watcher (`gtk-sni-tray-standalone --watcher`), and a
//! `dbus-monitor` that records every call to `org.freedesktop.Notifications`.
//!
//! The model: the app under test is a black box on a real desktop. We see
//! what a user would see through what the desktop itself sees:
//! - the tray menu is read and clicked over `com.canonical.dbusmenu`, the
//!   protocol the tray host uses to draw it (the app's item is found from
//!   the watcher's registry by the app's PID);
//! - notifications are the `Notify` calls the bus carried to the daemon;
//! - screenshots come from the X server, with the menu opened by a real
//!   right click on the icon.
//!
//! Every D-Bus call goes through `gdbus` (from libglib2.0-bin, which the GTK
//! build dependencies pull in anyway), and its GVariant text output is
//! parsed here, so the tests need no D-Bus crate. Every wait polls with a
//! deadline; nothing sleeps for a fixed time.
//!
//! Isolation: each `Desktop` has its own temp dir (HOME, XDG_*), display
//! number (Xvfb picks a free one) and bus socket, so tests run in parallel.
//! Each child runs in its own process group, and `Drop` ends the groups, so
//! nothing outlives the test (an app left running loses its X server and
//! bus and exits too).
#![cfg(target_os = "linux")]
#![allow(dead_code)]

use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};

/// Screen size of the virtual X server.
pub const SCREEN: (u32, u32) = (800, 600);

/// How long start-up steps may take before the desktop counts as broken.
/// Generous: a loaded CI machine can be slow, and a healthy one is fast.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// External programs the desktop needs, with the Debian package for each.
const TOOLS: &[(&str, &str)] = &[
    ("Xvfb", "xvfb"),
    ("dbus-daemon", "dbus-daemon"),
    ("dbus-monitor", "dbus-bin"),
    ("gdbus", "libglib2.0-bin"),
    ("dunst", "dunst"),
    ("dunstctl", "dunst"),
    ("gtk-sni-tray-standalone", "haskell-gtk-sni-tray-utils"),
    ("xdotool", "xdotool"),
    ("xprop", "x11-utils"),
    ("import", "imagemagick"),
];

const WATCHER: &str = "org.kde.StatusNotifierWatcher";
const NOTIFICATIONS: &str = "org.freedesktop.Notifications";

/// A running private desktop. Dropping it stops everything it started.
pub struct Desktop {
    dir: tempfile::TempDir,
    home: PathBuf,
    runtime: PathBuf,
    display: String,
    bus: String,
    /// Started children in start order, with the name used in messages.
    children: Vec<(&'static str, Child)>,
    monitor_log: PathBuf,
    /// How long `start` took (reported by tests that care).
    pub startup: Duration,
    /// How often the tray host died while starting and was restarted.
    pub host_restarts: u32,
}

impl Desktop {
    /// Starts a desktop, or panics with what is missing or what failed
    /// (including the logs of the helpers).
    #[track_caller]
    pub fn start() -> Desktop {
        match Desktop::try_start() {
            Ok(d) => d,
            Err(e) => panic!("could not start the test desktop: {e}"),
        }
    }

    /// Programs the desktop needs that are not on PATH, as
    /// "program (Debian package)".
    pub fn missing_tools() -> Vec<String> {
        TOOLS
            .iter()
            .filter(|(prog, _)| !on_path(prog))
            .map(|(prog, pkg)| format!("{prog} (package {pkg})"))
            .collect()
    }

    /// Starts a desktop; on failure the error says which step failed and
    /// carries the helpers' logs.
    pub fn try_start() -> Result<Desktop, String> {
        let missing = Desktop::missing_tools();
        if !missing.is_empty() {
            return Err(format!("missing programs: {}", missing.join(", ")));
        }
        let t0 = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("mt-desktop-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let home = dir.path().join("home");
        let runtime = dir.path().join("run");
        for d in [
            home.clone(),
            home.join(".config"),
            home.join(".local/state"),
            home.join(".local/share"),
            home.join(".cache"),
            runtime.clone(),
        ] {
            std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        // XDG_RUNTIME_DIR must be private (0700), or libraries refuse it.
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("{}: {e}", runtime.display()))?;

        let mut d = Desktop {
            home,
            runtime,
            display: String::new(),
            bus: String::new(),
            children: Vec::new(),
            monitor_log: dir.path().join("notifications.monitor"),
            startup: Duration::ZERO,
            host_restarts: 0,
            dir,
        };
        // On error `d` is dropped, which stops whatever already started.
        d.start_bus()?;
        d.start_x()?;
        d.start_rest().map_err(|e| format!("{e}\n{}", d.logs()))?;
        d.startup = t0.elapsed();
        Ok(d)
    }

    fn start_bus(&mut self) -> Result<(), String> {
        // Our own socket in our temp dir; the address is printed once the
        // bus listens, so reading it is the readiness check.
        let socket = self.runtime.join("bus");
        let mut cmd = Command::new("dbus-daemon");
        cmd.args(["--session", "--nofork", "--print-address=1"])
            .arg(format!("--address=unix:path={}", socket.display()));
        let line = self.spawn_reading_line("dbus-daemon", cmd)?;
        if !line.starts_with("unix:") {
            return Err(format!(
                "dbus-daemon printed no address ({line:?})\n{}",
                self.logs()
            ));
        }
        self.bus = line;
        Ok(())
    }

    fn start_x(&mut self) -> Result<(), String> {
        // -displayfd: Xvfb picks a free display number and writes it once
        // it accepts connections. -noreset: no server reset when the last
        // client leaves (between two helpers, say).
        let (w, h) = SCREEN;
        let mut cmd = Command::new("Xvfb");
        cmd.args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            &format!("{w}x{h}x24"),
            "-nolisten",
            "tcp",
            "-noreset",
        ]);
        let line = self.spawn_reading_line("Xvfb", cmd)?;
        if line.is_empty() || !line.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "Xvfb printed no display number ({line:?})\n{}",
                self.logs()
            ));
        }
        self.display = format!(":{line}");
        Ok(())
    }

    fn start_rest(&mut self) -> Result<(), String> {
        // The monitor first, so it sees every notification. It is ready
        // once the bus has told it its name (it then turns monitor).
        let out = File::create(&self.monitor_log).map_err(|e| e.to_string())?;
        let mut cmd = Command::new("dbus-monitor");
        cmd.arg(format!("interface='{NOTIFICATIONS}'"));
        self.spawn_with("dbus-monitor", cmd, Stdio::from(out))?;
        let log = self.monitor_log.clone();
        self.wait_ready("dbus-monitor to attach", |_| {
            std::fs::read_to_string(&log).is_ok_and(|s| s.contains("member=NameLost"))
        })?;

        // dunst is started here rather than bus-activated: activation would
        // run it without DISPLAY.
        self.spawn_logged("dunst", Command::new("dunst"))?;
        self.wait_ready("dunst to own org.freedesktop.Notifications", |d| {
            d.name_has_owner(NOTIFICATIONS)
        })?;

        // The tray host has a start-up race of its own: its host half may
        // call its watcher half before the watcher object exists, and then
        // it dies ("UnknownObject" ... "Pattern match failure"); seen under
        // load. So a host that dies while starting is started again.
        const HOST: &str = "gtk-sni-tray-standalone";
        const ATTEMPTS: u32 = 5;
        for attempt in 1..=ATTEMPTS {
            let mut host = Command::new(HOST);
            host.args(["--watcher", "--top", "--end", "--size", "32"]);
            self.spawn_with(HOST, host, Stdio::from(self.append_log(HOST)?))?;
            // The watcher appears first, then the host registers with it;
            // an app that starts in between would see "no host" and may
            // fall back to an XEmbed icon.
            let ready = self.wait_ready("the tray watcher and host", |d| {
                d.name_has_owner(WATCHER)
                    && d.call(
                        WATCHER,
                        "/StatusNotifierWatcher",
                        "org.freedesktop.DBus.Properties.Get",
                        &[WATCHER, "IsStatusNotifierHostRegistered"],
                    )
                    .is_ok_and(|v| v.first().and_then(GVariant::as_bool) == Some(true))
            });
            let host_died = self
                .children
                .last_mut()
                .is_some_and(|(_, c)| matches!(c.try_wait(), Ok(Some(_))));
            match ready {
                Ok(()) => break,
                Err(_) if host_died && attempt < ATTEMPTS => {
                    if let Some((_, mut c)) = self.children.pop() {
                        signal_group(c.id(), Signal::KILL);
                        let _ = c.wait();
                    }
                    self.host_restarts += 1;
                    let _ = writeln!(
                        self.append_log(HOST)?,
                        "--- (harness) {HOST} died while starting; starting it again"
                    );
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn append_log(&self, name: &str) -> Result<File, String> {
        let p = self.log_path(name);
        File::options()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(|e| format!("{}: {e}", p.display()))
    }

    fn wait_ready(&mut self, what: &str, cond: impl Fn(&Desktop) -> bool) -> Result<(), String> {
        let t = Instant::now();
        loop {
            if cond(self) {
                return Ok(());
            }
            if let Some(dead) = self.dead_child() {
                return Err(format!("{dead} exited while waiting for {what}"));
            }
            if t.elapsed() > START_DEADLINE {
                return Err(format!(
                    "timed out after {START_DEADLINE:?} waiting for {what}"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The first helper that has exited, with its status.
    fn dead_child(&mut self) -> Option<String> {
        self.children
            .iter_mut()
            .find_map(|(name, c)| match c.try_wait() {
                Ok(Some(st)) => Some(format!("{name} ({st})")),
                _ => None,
            })
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    fn spawn_logged(&mut self, name: &'static str, cmd: Command) -> Result<(), String> {
        let out = self.append_log(name)?;
        self.spawn_with(name, cmd, Stdio::from(out))
    }

    fn spawn_with(
        &mut self,
        name: &'static str,
        mut cmd: Command,
        stdout: Stdio,
    ) -> Result<(), String> {
        let err = self.append_log(name)?;
        self.apply(&mut cmd);
        cmd.stdin(Stdio::null())
            .stdout(stdout)
            .stderr(err)
            .process_group(0);
        let child = cmd.spawn().map_err(|e| format!("cannot run {name}: {e}"))?;
        self.children.push((name, child));
        Ok(())
    }

    /// Spawns a helper whose first stdout line is its readiness signal and
    /// returns that line (trimmed). The rest of stdout is drained.
    fn spawn_reading_line(&mut self, name: &'static str, cmd: Command) -> Result<String, String> {
        self.spawn_with(name, cmd, Stdio::piped())?;
        let stdout = self
            .children
            .last_mut()
            .and_then(|(_, c)| c.stdout.take())
            .ok_or("no stdout pipe")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let _ = tx.send(line);
            let _ = std::io::copy(&mut r, &mut std::io::sink());
        });
        match rx.recv_timeout(START_DEADLINE) {
            Ok(line) => Ok(line.trim().to_string()),
            Err(_) => Err(format!(
                "{name} gave no readiness line within {START_DEADLINE:?}\n{}",
                self.logs()
            )),
        }
    }

    /// The helpers' logs (stderr and stdout), for failure messages.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for (name, _) in &self.children {
            let text = std::fs::read_to_string(self.log_path(name)).unwrap_or_default();
            let text = text.trim();
            if !text.is_empty() {
                s.push_str(&format!("--- {name}\n{text}\n"));
            }
        }
        s
    }

    // ----- environment -------------------------------------------------

    /// The X display, e.g. ":3".
    pub fn display(&self) -> &str {
        &self.display
    }

    /// The private session bus address.
    pub fn bus_address(&self) -> &str {
        &self.bus
    }

    /// The desktop's HOME (temp dir).
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The desktop's temp dir (logs, captures).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything a program needs to live on this desktop: the session
    /// (display, bus, runtime dir) and a private HOME with XDG dirs.
    pub fn env(&self) -> Vec<(&'static str, OsString)> {
        let mut v = self.session_env();
        v.extend([
            ("HOME", self.home.clone().into_os_string()),
            (
                "XDG_CONFIG_HOME",
                self.home.join(".config").into_os_string(),
            ),
            (
                "XDG_STATE_HOME",
                self.home.join(".local/state").into_os_string(),
            ),
            (
                "XDG_DATA_HOME",
                self.home.join(".local/share").into_os_string(),
            ),
            ("XDG_CACHE_HOME", self.home.join(".cache").into_os_string()),
        ]);
        v
    }

    /// Only the session part of `env()`: display, bus, runtime dir and
    /// GUI toolkit settings. Use it with a `World`, whose HOME/XDG dirs
    /// hold the app's config: `w.isolate(&mut c); d.apply_session(&mut c)`.
    pub fn session_env(&self) -> Vec<(&'static str, OsString)> {
        vec![
            ("DISPLAY", self.display.clone().into()),
            ("DBUS_SESSION_BUS_ADDRESS", self.bus.clone().into()),
            ("XDG_RUNTIME_DIR", self.runtime.clone().into_os_string()),
            // No accessibility bus, no X11/Wayland guessing.
            ("NO_AT_BRIDGE", "1".into()),
            ("GDK_BACKEND", "x11".into()),
            // GSettings in memory: dconf would be bus-activated as a stray
            // process and write to the real user's settings.
            ("GSETTINGS_BACKEND", "memory".into()),
        ]
    }

    /// Applies `env()` to `cmd` (and removes variables that would point
    /// at the real desktop).
    pub fn apply(&self, cmd: &mut Command) {
        Self::unset_real_desktop(cmd);
        cmd.envs(self.env());
    }

    /// Applies `session_env()` to `cmd`, leaving HOME/XDG_* alone.
    pub fn apply_session(&self, cmd: &mut Command) {
        Self::unset_real_desktop(cmd);
        cmd.envs(self.session_env());
    }

    fn unset_real_desktop(cmd: &mut Command) {
        for k in [
            "WAYLAND_DISPLAY",
            "SESSION_MANAGER",
            "XAUTHORITY",
            "DESKTOP_STARTUP_ID",
        ] {
            cmd.env_remove(k);
        }
    }

    /// Runs `cmd` on this desktop in its own process group, output
    /// captured to files. The session variables are always applied; HOME
    /// and XDG_* only where `cmd` does not set them already (so a `World`'s
    /// `isolate` wins, and the real HOME is never used). The returned
    /// `App` stops the group when dropped.
    pub fn launch(&self, mut cmd: Command) -> App {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let out = self.dir.path().join(format!("app{n}.stdout"));
        let err = self.dir.path().join(format!("app{n}.stderr"));
        let set: Vec<OsString> = cmd.get_envs().map(|(k, _)| k.to_os_string()).collect();
        for (k, v) in self.env() {
            if !set.iter().any(|s| s == k) {
                cmd.env(k, v);
            }
        }
        self.apply_session(&mut cmd);
        cmd.stdin(Stdio::null()).process_group(0);
        cmd.stdout(File::create(&out).unwrap_or_else(|e| panic!("{}: {e}", out.display())));
        cmd.stderr(File::create(&err).unwrap_or_else(|e| panic!("{}: {e}", err.display())));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", cmd.get_program()));
        App {
            pid: child.id(),
            child: Some(child),
            out,
            err,
        }
    }

    // ----- D-Bus through gdbus ----------------------------------------

    /// Calls `method` (fully qualified, `interface.Member`) on the session
    /// bus and returns the reply's values (the outer tuple unpacked).
    /// Arguments are GVariant text, e.g. `"0"`, `"'clicked'"`, `"<int32 0>"`,
    /// `"[]"`; gdbus types them from the method's introspection data.
    pub fn call(
        &self,
        dest: &str,
        path: &str,
        method: &str,
        args: &[&str],
    ) -> Result<Vec<GVariant>, String> {
        let mut cmd = Command::new("gdbus");
        cmd.args([
            "call",
            "--session",
            "--timeout",
            "10",
            "--dest",
            dest,
            "--object-path",
            path,
            "--method",
            method,
            "--",
        ]);
        cmd.args(args);
        let text = self.run_tool(cmd)?;
        match GVariant::parse(&text) {
            Ok(GVariant::Tuple(v)) => Ok(v),
            Ok(other) => Ok(vec![other]),
            Err(e) => Err(format!("cannot parse gdbus output ({e}): {text}")),
        }
    }

    fn bus_call(&self, method: &str, args: &[&str]) -> Result<Vec<GVariant>, String> {
        self.call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            &format!("org.freedesktop.DBus.{method}"),
            args,
        )
    }

    /// Whether some connection owns the well-known `name`.
    pub fn name_has_owner(&self, name: &str) -> bool {
        self.bus_call("NameHasOwner", &[name])
            .is_ok_and(|v| v.first().and_then(GVariant::as_bool) == Some(true))
    }

    /// The PID behind a bus name.
    pub fn pid_of(&self, bus_name: &str) -> Option<u32> {
        let v = self
            .bus_call("GetConnectionUnixProcessID", &[bus_name])
            .ok()?;
        v.first()?.as_i64().and_then(|p| u32::try_from(p).ok())
    }

    /// Runs a helper tool on this desktop; its stdout, or an error with
    /// its stderr.
    fn run_tool(&self, mut cmd: Command) -> Result<String, String> {
        self.apply(&mut cmd);
        cmd.stdin(Stdio::null());
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "{:?} {:?} failed ({}): {}",
                cmd.get_program(),
                cmd.get_args().collect::<Vec<_>>(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    // ----- the tray item and its menu ------------------------------------

    /// Every item the watcher knows, as (bus name, object path); the path
    /// is empty when the watcher only knows the bus name.
    pub fn registered_items(&self) -> Vec<(String, String)> {
        let Ok(v) = self.call(
            WATCHER,
            "/StatusNotifierWatcher",
            "org.freedesktop.DBus.Properties.GetAll",
            &[WATCHER],
        ) else {
            return Vec::new();
        };
        let Some(props) = v.first() else {
            return Vec::new();
        };
        // gtk-sni-tray's watcher lists (bus, path) pairs; the standard
        // property has "bus" or "bus/path" strings.
        if let Some(entries) = props
            .get("RegisteredSNIEntries")
            .and_then(GVariant::as_array)
        {
            return entries
                .iter()
                .filter_map(|e| {
                    let t = e.as_tuple()?;
                    Some((
                        t.first()?.as_str()?.to_string(),
                        t.get(1)?.as_str()?.to_string(),
                    ))
                })
                .collect();
        }
        props
            .get("RegisteredStatusNotifierItems")
            .and_then(GVariant::as_array)
            .unwrap_or(&[])
            .iter()
            .filter_map(GVariant::as_str)
            .map(|s| match s.find('/') {
                Some(i) => (s[..i].to_string(), s[i..].to_string()),
                None => (s.to_string(), String::new()),
            })
            .collect()
    }

    /// The app's StatusNotifierItem: (bus name, object path).
    pub fn find_item(&self, pid: u32) -> Result<(String, String), String> {
        let registered = self.registered_items();
        for (bus, path) in &registered {
            if self.pid_of(bus) == Some(pid) {
                let path = if path.is_empty() {
                    self.sni_path(bus)?
                } else {
                    path.clone()
                };
                return Ok((bus.clone(), path));
            }
        }
        // Not (yet) registered with the watcher: look at the app's own
        // connections for an object with the item interface.
        let names = self.bus_call("ListNames", &[])?;
        let names: Vec<String> = names
            .first()
            .and_then(GVariant::as_array)
            .unwrap_or(&[])
            .iter()
            .filter_map(GVariant::as_str)
            .filter(|n| n.starts_with(':'))
            .map(str::to_string)
            .collect();
        for bus in names.iter().filter(|n| self.pid_of(n) == Some(pid)) {
            if let Ok(path) = self.sni_path(bus) {
                return Ok((bus.clone(), path));
            }
        }
        Err(format!(
            "pid {pid} has no StatusNotifierItem on the bus (watcher knows {registered:?})"
        ))
    }

    /// The object path of the first StatusNotifierItem `bus` exports.
    fn sni_path(&self, bus: &str) -> Result<String, String> {
        let mut cmd = Command::new("gdbus");
        cmd.args([
            "introspect",
            "--session",
            "--dest",
            bus,
            "--object-path",
            "/",
            "--recurse",
        ]);
        let text = self.run_tool(cmd)?;
        let mut node = String::new();
        for line in text.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("node ") {
                node = rest.trim_end_matches('{').trim().to_string();
            } else if line.starts_with("interface org.kde.StatusNotifierItem ") {
                return Ok(node);
            }
        }
        Err(format!("{bus} exports no org.kde.StatusNotifierItem"))
    }

    /// The file the app's tray icon is drawn from now: the item's
    /// `IconThemePath` joined with its `IconName` (libayatana hands the
    /// host a PNG that tray-icon wrote).
    pub fn icon_file(&self, pid: u32) -> Result<PathBuf, String> {
        let (bus, item) = self.find_item(pid)?;
        let prop = |name: &str| -> Result<String, String> {
            let v = self.call(
                &bus,
                &item,
                "org.freedesktop.DBus.Properties.Get",
                &["org.kde.StatusNotifierItem", name],
            )?;
            v.first()
                .and_then(GVariant::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("item has no {name} property: {v:?}"))
        };
        let name = prop("IconName")?;
        let dir = prop("IconThemePath").unwrap_or_default();
        let path = Path::new(&dir).join(&name);
        if path.extension().is_some() || path.is_absolute() && path.exists() {
            return Ok(path);
        }
        Ok(path.with_extension("png"))
    }

    /// Reads the app's tray menu now.
    pub fn try_menu(&self, pid: u32) -> Result<Menu, String> {
        let (bus, item) = self.find_item(pid)?;
        let v = self.call(
            &bus,
            &item,
            "org.freedesktop.DBus.Properties.Get",
            &["org.kde.StatusNotifierItem", "Menu"],
        )?;
        let path = v
            .first()
            .and_then(GVariant::as_str)
            .ok_or("item has no Menu property")?
            .to_string();
        let layout = self.call(
            &bus,
            &path,
            "com.canonical.dbusmenu.GetLayout",
            &["0", "-1", "[]"],
        )?;
        let revision = layout.first().and_then(GVariant::as_i64).unwrap_or(0);
        let root = layout.get(1).ok_or("GetLayout returned no layout")?;
        let root = Item::from_layout(root).ok_or_else(|| format!("unexpected layout: {root:?}"))?;
        Ok(Menu {
            bus,
            path,
            revision,
            items: root.children,
        })
    }

    /// The app's tray menu, if it has one on the bus now.
    pub fn menu(&self, pid: u32) -> Option<Menu> {
        self.try_menu(pid).ok()
    }

    /// Waits for the app's tray menu; panics with the last error and the
    /// helpers' logs after `deadline`.
    #[track_caller]
    pub fn wait_menu(&self, pid: u32, deadline: Duration) -> Menu {
        self.wait_menu_until(pid, deadline, |_| true)
    }

    /// Waits until the app's tray menu satisfies `pred` (the app updates
    /// its menu asynchronously); panics with the last menu seen.
    #[track_caller]
    pub fn wait_menu_until(
        &self,
        pid: u32,
        deadline: Duration,
        mut pred: impl FnMut(&Menu) -> bool,
    ) -> Menu {
        let t = Instant::now();
        let last = loop {
            let r = match self.try_menu(pid) {
                Ok(m) if pred(&m) => return m,
                r => r,
            };
            if t.elapsed() > deadline {
                break r;
            }
            std::thread::sleep(Duration::from_millis(25));
        };
        match last {
            Ok(m) => panic!("menu of pid {pid} never matched within {deadline:?}; last seen:\n{m}"),
            Err(e) => panic!(
                "no tray menu for pid {pid} within {deadline:?}: {e}\n{}",
                self.logs()
            ),
        }
    }

    /// Clicks a menu item as the tray host does when the user clicks it.
    /// The item is found by label (ids belong to the library) with
    /// `Menu::find_clickable`: the exact label, else the first enabled item
    /// whose label starts with `label`.
    pub fn try_click(&self, pid: u32, label: &str) -> Result<(), String> {
        let menu = self.try_menu(pid)?;
        let item = menu
            .find_clickable(label)
            .ok_or_else(|| format!("no item {label:?} to click in\n{menu}"))?;
        let id = item.id.to_string();
        match self.call(
            &menu.bus,
            &menu.path,
            "com.canonical.dbusmenu.Event",
            &[&id, "clicked", "<int32 0>", "0"],
        ) {
            // An app that quits on the click may exit before it replies:
            // the event was delivered, which is all a click promises.
            Err(e) if e.contains("org.freedesktop.DBus.Error.NoReply") => Ok(()),
            r => r.map(drop),
        }
    }

    /// `try_click`, panicking on failure.
    #[track_caller]
    pub fn click(&self, pid: u32, label: &str) {
        if let Err(e) = self.try_click(pid, label) {
            panic!("cannot click {label:?} in the tray menu of pid {pid}: {e}");
        }
    }

    // ----- notifications -------------------------------------------------

    /// Every `Notify` call seen on the bus since the desktop started,
    /// oldest first.
    pub fn notifications(&self) -> Vec<Notification> {
        parse_monitor(&std::fs::read_to_string(&self.monitor_log).unwrap_or_default())
    }

    /// Waits for a notification matching `pred`; `None` after `deadline`.
    pub fn wait_notification(
        &self,
        deadline: Duration,
        mut pred: impl FnMut(&Notification) -> bool,
    ) -> Option<Notification> {
        let t = Instant::now();
        loop {
            if let Some(n) = self.notifications().into_iter().find(&mut pred) {
                return Some(n);
            }
            if t.elapsed() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// How many `CloseNotification` calls were seen on the bus.
    pub fn close_calls(&self) -> usize {
        std::fs::read_to_string(&self.monitor_log)
            .unwrap_or_default()
            .matches("member=CloseNotification")
            .count()
    }

    /// How many popups dunst shows right now.
    pub fn popups_displayed(&self) -> Option<u32> {
        let mut cmd = Command::new("dunstctl");
        cmd.args(["count", "displayed"]);
        self.run_tool(cmd).ok()?.trim().parse().ok()
    }

    // ----- the screen ------------------------------------------------------

    /// Saves the whole screen as PNG at `path` (parent dirs created).
    #[track_caller]
    pub fn screenshot(&self, path: &Path) {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
        }
        let mut cmd = Command::new("import");
        cmd.args(["-window", "root"]).arg(path);
        if let Err(e) = self.run_tool(cmd) {
            panic!("screenshot to {} failed: {e}", path.display());
        }
    }

    /// The open tray menu's window on screen, if one is mapped.
    pub fn open_menu_window(&self) -> Option<Rect> {
        let mut cmd = Command::new("xdotool");
        cmd.args([
            "search",
            "--onlyvisible",
            "--class",
            "gtk-sni-tray-standalone",
        ]);
        let ids = self.run_tool(cmd).ok()?;
        ids.split_whitespace().find_map(|id| {
            let mut cmd = Command::new("xprop");
            cmd.args(["-id", id, "_NET_WM_WINDOW_TYPE"]);
            if !self
                .run_tool(cmd)
                .ok()?
                .contains("_NET_WM_WINDOW_TYPE_POPUP_MENU")
            {
                return None;
            }
            let mut cmd = Command::new("xdotool");
            cmd.args(["getwindowgeometry", "--shell", id]);
            Rect::from_shell(&self.run_tool(cmd).ok()?)
        })
    }

    /// Whether `rect` on screen has any contents (not one flat colour), so
    /// a screenshot taken now shows the window drawn.
    fn drawn(&self, r: Rect) -> bool {
        let mut cmd = Command::new("import");
        cmd.args([
            "-window",
            "root",
            "-crop",
            &format!("{}x{}+{}+{}", r.w, r.h, r.x, r.y),
            "+repage",
        ])
        .args(["-format", "%[fx:standard_deviation]", "info:"]);
        self.run_tool(cmd)
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .is_some_and(|sd| sd > 0.0)
    }

    /// Opens the tray menu with a real right click on the icon (the host
    /// packs icons at the right end of its top bar, so the last icon is at
    /// (width − 16, 16)); returns once the menu is mapped and drawn. If the
    /// menu is already open, returns at once. Retries the click while the
    /// icon is not on screen yet; panics after `deadline`.
    #[track_caller]
    pub fn open_menu_by_pointer(&self, deadline: Duration) -> Rect {
        let t = Instant::now();
        let (w, _) = SCREEN;
        loop {
            if let Some(r) = self.open_menu_window() {
                if self.drawn(r) {
                    return r;
                }
            } else {
                let mut cmd = Command::new("xdotool");
                cmd.args(["mousemove", &(w - 16).to_string(), "16", "click", "3"]);
                if let Err(e) = self.run_tool(cmd) {
                    panic!("xdotool click failed: {e}");
                }
                // Give this click a chance before clicking again (a second
                // click would close a menu that is just opening).
                let click = Instant::now();
                while self.open_menu_window().is_none() && click.elapsed() < Duration::from_secs(2)
                {
                    std::thread::sleep(Duration::from_millis(25));
                }
                continue;
            }
            if t.elapsed() > deadline {
                panic!(
                    "the tray menu did not open within {deadline:?}\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Closes an open tray menu (Escape) and waits until it is gone.
    pub fn close_menu(&self, deadline: Duration) -> bool {
        let t = Instant::now();
        while self.open_menu_window().is_some() {
            if t.elapsed() > deadline {
                return false;
            }
            let mut cmd = Command::new("xdotool");
            cmd.args(["key", "Escape"]);
            let _ = self.run_tool(cmd);
            let k = Instant::now();
            while self.open_menu_window().is_some() && k.elapsed() < Duration::from_secs(1) {
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        true
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        // TERM every group (Xvfb then removes its lock file and socket),
        // give them a moment, then KILL the groups (this also catches any
        // process a helper started in its group) and reap.
        for (_, c) in &self.children {
            signal_group(c.id(), Signal::TERM);
        }
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5)
            && self
                .children
                .iter_mut()
                .any(|(_, c)| matches!(c.try_wait(), Ok(None)))
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        for (_, c) in &mut self.children {
            signal_group(c.id(), Signal::KILL);
            let _ = c.wait();
        }
    }
}

fn signal_group(pid: u32, sig: Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = kill_process_group(pid, sig);
    }
}

fn on_path(prog: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| {
            std::fs::metadata(d.join(prog))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// A program started with `Desktop::launch`; stops its process group when
/// dropped.
pub struct App {
    pub pid: u32,
    child: Option<Child>,
    out: PathBuf,
    err: PathBuf,
}

impl App {
    /// Waits for the app to exit; `None` if it still runs after `deadline`.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let t = Instant::now();
        loop {
            let st = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if st.is_some() || t.elapsed() > deadline {
                return st;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the app is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// What the app wrote to stdout so far.
    pub fn stdout(&self) -> String {
        read_lossy(&self.out)
    }

    /// What the app wrote to stderr so far.
    pub fn stderr(&self) -> String {
        read_lossy(&self.err)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal_group(c.id(), Signal::TERM);
            let t = Instant::now();
            while matches!(c.try_wait(), Ok(None)) && t.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(10));
            }
            signal_group(c.id(), Signal::KILL);
            let _ = c.wait();
        }
    }
}

fn read_lossy(p: &Path) -> String {
    let mut buf = Vec::new();
    let _ = File::open(p).and_then(|mut f| f.read_to_end(&mut buf));
    String::from_utf8_lossy(&buf).into_owned()
}

/// A window's place on screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub w: u32,
    pub h: u32,
}

impl Rect {
    /// From `xdotool getwindowgeometry --shell` output.
    fn from_shell(s: &str) -> Option<Rect> {
        let get = |k: &str| {
            s.lines().find_map(|l| {
                l.strip_prefix(k)?
                    .strip_prefix('=')?
                    .trim()
                    .parse::<i64>()
                    .ok()
            })
        };
        Some(Rect {
            x: i32::try_from(get("X")?).ok()?,
            y: i32::try_from(get("Y")?).ok()?,
            w: u32::try_from(get("WIDTH")?).ok()?,
            h: u32::try_from(get("HEIGHT")?).ok()?,
        })
    }
}

// ----- menus ----------------------------------------------------------------

/// A tray menu as the dbusmenu protocol describes it.
#[derive(Debug, Clone)]
pub struct Menu {
    /// Bus name and object path of the dbusmenu object.
    pub bus: String,
    pub path: String,
    pub revision: i64,
    /// Top-level items in display order.
    pub items: Vec<Item>,
}

/// One menu entry. Property defaults follow the dbusmenu spec.
#[derive(Debug, Clone)]
pub struct Item {
    pub id: i32,
    /// The label as sent: `_` marks a mnemonic, `__` is a literal `_`.
    pub raw_label: String,
    /// The label as shown (mnemonic marks resolved).
    pub label: String,
    /// "standard" or "separator".
    pub kind: String,
    pub enabled: bool,
    pub visible: bool,
    /// "" (plain), "checkmark" or "radio".
    pub toggle_type: String,
    /// 0 off, 1 on, -1 indeterminate / not a toggle.
    pub toggle_state: i32,
    pub children: Vec<Item>,
}

impl Item {
    pub fn is_separator(&self) -> bool {
        self.kind == "separator"
    }

    /// A check item that is on.
    pub fn checked(&self) -> bool {
        !self.toggle_type.is_empty() && self.toggle_state == 1
    }

    /// From a layout node `(id, {props}, [<node>, ...])`.
    fn from_layout(v: &GVariant) -> Option<Item> {
        let t = v.unvariant().as_tuple()?;
        let id = i32::try_from(t.first()?.as_i64()?).ok()?;
        let props = t.get(1)?;
        let prop = |k: &str| props.get(k).map(GVariant::unvariant);
        let raw_label = prop("label")
            .and_then(GVariant::as_str)
            .unwrap_or("")
            .to_string();
        let children = t
            .get(2)?
            .as_array()?
            .iter()
            .map(Item::from_layout)
            .collect::<Option<Vec<_>>>()?;
        Some(Item {
            id,
            label: clean_label(&raw_label),
            raw_label,
            kind: prop("type")
                .and_then(GVariant::as_str)
                .unwrap_or("standard")
                .to_string(),
            enabled: prop("enabled").and_then(GVariant::as_bool).unwrap_or(true),
            visible: prop("visible").and_then(GVariant::as_bool).unwrap_or(true),
            toggle_type: prop("toggle-type")
                .and_then(GVariant::as_str)
                .unwrap_or("")
                .to_string(),
            toggle_state: prop("toggle-state")
                .and_then(GVariant::as_i64)
                .and_then(|s| i32::try_from(s).ok())
                .unwrap_or(-1),
            children,
        })
    }
}

/// Resolves dbusmenu mnemonic marks: `__` is `_`, a single `_` vanishes.
pub fn clean_label(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut it = raw.chars().peekable();
    while let Some(c) = it.next() {
        if c == '_' {
            if it.peek() == Some(&'_') {
                it.next();
                out.push('_');
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Menu {
    /// Every item, depth first, in display order.
    pub fn all(&self) -> Vec<&Item> {
        fn walk<'a>(items: &'a [Item], out: &mut Vec<&'a Item>) {
            for i in items {
                out.push(i);
                walk(&i.children, out);
            }
        }
        let mut out = Vec::new();
        walk(&self.items, &mut out);
        out
    }

    /// The visible item (depth first) whose cleaned label is `text`, else
    /// the first whose label starts with `text`. Exact first, because a
    /// status line "Paused" would otherwise shadow "Pause watching".
    pub fn find(&self, text: &str) -> Option<&Item> {
        let items: Vec<&Item> = self
            .all()
            .into_iter()
            .filter(|i| i.visible && !i.is_separator())
            .collect();
        items
            .iter()
            .find(|i| i.label == text)
            .or_else(|| items.iter().find(|i| i.label.starts_with(text)))
            .copied()
    }

    /// The item a click on `text` means: the exact label (even disabled),
    /// else the first *enabled* item whose label starts with `text`.
    pub fn find_clickable(&self, text: &str) -> Option<&Item> {
        let items: Vec<&Item> = self
            .all()
            .into_iter()
            .filter(|i| i.visible && !i.is_separator())
            .collect();
        items
            .iter()
            .find(|i| i.label == text)
            .or_else(|| {
                items
                    .iter()
                    .find(|i| i.enabled && i.label.starts_with(text))
            })
            .copied()
    }

    /// Labels of the visible top-level entries, separators left out.
    pub fn labels(&self) -> Vec<&str> {
        self.items
            .iter()
            .filter(|i| i.visible && !i.is_separator())
            .map(|i| i.label.as_str())
            .collect()
    }

    /// The first line (the status line in mirrortray).
    pub fn status(&self) -> Option<&Item> {
        self.items.iter().find(|i| i.visible && !i.is_separator())
    }
}

impl fmt::Display for Menu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn walk(items: &[Item], depth: usize, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            for i in items {
                let pad = "  ".repeat(depth + 1);
                if i.is_separator() {
                    writeln!(f, "{pad}--------")?;
                    continue;
                }
                let check = match (i.toggle_type.as_str(), i.toggle_state) {
                    ("", _) => "",
                    (_, 1) => "[x] ",
                    (_, 0) => "[ ] ",
                    _ => "[?] ",
                };
                let mut flags = String::new();
                if !i.enabled {
                    flags.push_str(" (disabled)");
                }
                if !i.visible {
                    flags.push_str(" (hidden)");
                }
                writeln!(f, "{pad}{check}{}{flags}  #{}", i.label, i.id)?;
                walk(&i.children, depth + 1, f)?;
            }
            Ok(())
        }
        walk(&self.items, 0, f)
    }
}

// ----- notifications ----------------------------------------------------------

/// One `org.freedesktop.Notifications.Notify` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub app_name: String,
    pub replaces_id: u32,
    pub icon: String,
    pub summary: String,
    pub body: String,
    pub expire_timeout: i32,
}

/// Parses `dbus-monitor` text output for `Notify` calls. dbus-monitor
/// prints strings unescaped, so a message is cut at the known layout of
/// `Notify(susssasa{sv}i)`: a summary containing `"\n   string "` or a body
/// containing `"\n   array [` would be cut wrongly (ours never do). A
/// message still being written is skipped until it is complete.
pub fn parse_monitor(text: &str) -> Vec<Notification> {
    let is_header = |l: &str| {
        [
            "method call time=",
            "method return time=",
            "signal time=",
            "error time=",
        ]
        .iter()
        .any(|p| l.starts_with(p))
    };
    // Byte offsets of header lines.
    let mut starts = Vec::new();
    let mut off = 0;
    for line in text.split_inclusive('\n') {
        if is_header(line) {
            starts.push(off);
        }
        off += line.len();
    }
    starts.push(text.len());
    starts
        .windows(2)
        .filter_map(|w| {
            let msg = &text[w[0]..w[1]];
            let (header, body) = msg.split_once('\n')?;
            if !(header.starts_with("method call ")
                && header.contains("interface=org.freedesktop.Notifications;")
                && header.ends_with("member=Notify"))
            {
                return None;
            }
            parse_notify_args(body)
        })
        .collect()
}

fn parse_notify_args(s: &str) -> Option<Notification> {
    let s = s.strip_prefix("   string \"")?;
    let (app_name, s) = s.split_once("\"\n   uint32 ")?;
    let (replaces, s) = s.split_once('\n')?;
    let s = s.strip_prefix("   string \"")?;
    let (icon, s) = s.split_once("\"\n   string \"")?;
    let (summary, s) = s.split_once("\"\n   string \"")?;
    let (body, rest) = s.split_once("\"\n   array [")?;
    // The timeout is the last line; its presence means the message is whole.
    let timeout = rest
        .trim_end()
        .rsplit('\n')
        .next()?
        .trim()
        .strip_prefix("int32 ")?
        .parse()
        .ok()?;
    Some(Notification {
        app_name: app_name.to_string(),
        replaces_id: replaces.trim().parse().ok()?,
        icon: icon.to_string(),
        summary: summary.to_string(),
        body: body.to_string(),
        expire_timeout: timeout,
    })
}

// ----- GVariant text format -------------------------------------------------

/// A value in GVariant text format (what `gdbus call` prints). Integers
/// of every width are `Int`; object paths and signatures are `Str`.
#[derive(Debug, Clone, PartialEq)]
pub enum GVariant {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Tuple(Vec<GVariant>),
    Array(Vec<GVariant>),
    Dict(Vec<(GVariant, GVariant)>),
    Variant(Box<GVariant>),
    Nothing,
}

/// Type keywords gdbus may print before a value.
const TYPE_WORDS: &[&str] = &[
    "boolean",
    "byte",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
    "handle",
    "double",
    "string",
    "objectpath",
    "signature",
];

impl GVariant {
    /// Parses one value (surrounding whitespace allowed).
    pub fn parse(text: &str) -> Result<GVariant, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("trailing text at byte {}", p.i));
        }
        Ok(v)
    }

    /// The value inside any number of variant boxes.
    pub fn unvariant(&self) -> &GVariant {
        match self {
            GVariant::Variant(v) => v.unvariant(),
            v => v,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self.unvariant() {
            GVariant::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match self.unvariant() {
            GVariant::Int(n) => Some(*n),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self.unvariant() {
            GVariant::Bool(b) => Some(*b),
            _ => None,
        }
    }
    pub fn as_tuple(&self) -> Option<&[GVariant]> {
        match self.unvariant() {
            GVariant::Tuple(v) => Some(v),
            _ => None,
        }
    }
    pub fn as_array(&self) -> Option<&[GVariant]> {
        match self.unvariant() {
            GVariant::Array(v) | GVariant::Tuple(v) => Some(v),
            // An empty dict prints as `{}`; it is an empty array too.
            GVariant::Dict(d) if d.is_empty() => Some(&[]),
            _ => None,
        }
    }
    /// The value for a string key in a dict (`a{sv}` and the like).
    pub fn get(&self, key: &str) -> Option<&GVariant> {
        match self.unvariant() {
            GVariant::Dict(d) => d
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected {:?} at byte {}", c as char, self.i))
        }
    }

    /// Comma-separated values up to `close` (a trailing comma allowed).
    fn seq(&mut self, close: u8) -> Result<Vec<GVariant>, String> {
        let mut v = Vec::new();
        loop {
            if self.eat(close) {
                return Ok(v);
            }
            v.push(self.value()?);
            if !self.eat(b',') {
                self.expect(close)?;
                return Ok(v);
            }
        }
    }

    fn value(&mut self) -> Result<GVariant, String> {
        self.ws();
        let c = self.peek().ok_or("unexpected end")?;
        match c {
            b'(' => {
                self.i += 1;
                Ok(GVariant::Tuple(self.seq(b')')?))
            }
            b'[' => {
                self.i += 1;
                Ok(GVariant::Array(self.seq(b']')?))
            }
            b'<' => {
                self.i += 1;
                let v = self.value()?;
                self.expect(b'>')?;
                Ok(GVariant::Variant(Box::new(v)))
            }
            b'{' => {
                self.i += 1;
                if self.eat(b'}') {
                    return Ok(GVariant::Dict(Vec::new()));
                }
                let k = self.value()?;
                if self.eat(b',') {
                    // A lone dict entry `{k, v}`.
                    let v = self.value()?;
                    self.expect(b'}')?;
                    return Ok(GVariant::Tuple(vec![k, v]));
                }
                self.expect(b':')?;
                let mut d = vec![(k, self.value()?)];
                while self.eat(b',') {
                    if self.eat(b'}') {
                        return Ok(GVariant::Dict(d));
                    }
                    let k = self.value()?;
                    self.expect(b':')?;
                    d.push((k, self.value()?));
                }
                self.expect(b'}')?;
                Ok(GVariant::Dict(d))
            }
            b'\'' | b'"' => self.string(),
            b'@' => {
                // A type annotation such as `@av`: skip it.
                while self.peek().is_some_and(|c| !c.is_ascii_whitespace()) {
                    self.i += 1;
                }
                self.value()
            }
            b'-' | b'+' | b'.' | b'0'..=b'9' => self.number(),
            c if c.is_ascii_alphabetic() => {
                let start = self.i;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
                {
                    self.i += 1;
                }
                let word =
                    std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
                match word {
                    "true" => Ok(GVariant::Bool(true)),
                    "false" => Ok(GVariant::Bool(false)),
                    "nothing" => Ok(GVariant::Nothing),
                    "inf" => Ok(GVariant::Float(f64::INFINITY)),
                    "nan" => Ok(GVariant::Float(f64::NAN)),
                    // A byte string b'...'.
                    "b" if matches!(self.peek(), Some(b'\'' | b'"')) => self.string(),
                    "just" => self.value(),
                    w if TYPE_WORDS.contains(&w) => self.value(),
                    w => Err(format!("unknown word {w:?} at byte {start}")),
                }
            }
            c => Err(format!("unexpected {:?} at byte {}", c as char, self.i)),
        }
    }

    fn number(&mut self) -> Result<GVariant, String> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.'))
        {
            self.i += 1;
        }
        let t = std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
        let (neg, digits) = match t.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, t.strip_prefix('+').unwrap_or(t)),
        };
        let int = if let Some(hex) = digits.strip_prefix("0x") {
            i128::from_str_radix(hex, 16).ok()
        } else {
            digits.parse::<i128>().ok()
        };
        match int {
            Some(n) => {
                let n = if neg { -n } else { n };
                // uint64 beyond i64: keep it as a float rather than fail.
                Ok(i64::try_from(n)
                    .map(GVariant::Int)
                    .unwrap_or(GVariant::Float(n as f64)))
            }
            None => t
                .parse::<f64>()
                .map(GVariant::Float)
                .map_err(|_| format!("bad number {t:?} at byte {start}")),
        }
    }

    fn string(&mut self) -> Result<GVariant, String> {
        let q = self.peek().ok_or("unexpected end")?;
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = self.peek().ok_or("unterminated string")?;
            self.i += 1;
            if c == q {
                break;
            }
            if c != b'\\' {
                out.push(c);
                continue;
            }
            let e = self.peek().ok_or("unterminated escape")?;
            self.i += 1;
            let ch = match e {
                b'n' => '\n',
                b't' => '\t',
                b'r' => '\r',
                b'a' => '\x07',
                b'b' => '\x08',
                b'f' => '\x0c',
                b'v' => '\x0b',
                b'u' | b'U' => {
                    let n = if e == b'u' { 4 } else { 8 };
                    let hex = self
                        .s
                        .get(self.i..self.i + n)
                        .ok_or("short unicode escape")?;
                    self.i += n;
                    let code = std::str::from_utf8(hex)
                        .ok()
                        .and_then(|h| u32::from_str_radix(h, 16).ok());
                    code.and_then(char::from_u32).ok_or("bad unicode escape")?
                }
                other => other as char,
            };
            let mut buf = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        }
        Ok(GVariant::Str(String::from_utf8_lossy(&out).into_owned()))
    }
}
