//! actions: what menu entries do that touches files or starts programs —
//! opening folders and the log with the desktop's opener (`xdg-open` via
//! the `opener` crate), writing the config template, switching the login
//! entry, adding a folder pair — done on a thread of their own, so the
//! event loop never waits on a disk or a program. Every failure is logged
//! and shown as a popup with the path and the reason.

use std::path::{Path, PathBuf};

use crossbeam_channel::{Receiver, Sender, unbounded};
use mirrortray::engine::config::{self, PairConfig};
use mirrortray::engine::error::{reason, show};
use mirrortray::engine::filter::RESERVED;
use tao::event_loop::EventLoopProxy;

use super::AppEvent;
use super::autostart::Autostart;
use super::control::Ctl;
use super::notifications::{Level, Notifier, Popup};

/// A job for the actions thread.
#[derive(Debug, Clone)]
pub enum Job {
    /// Open a folder or file; `what` names it in messages ("the log").
    Open { path: PathBuf, what: String },
    /// Open a pair's versions folder (the "Restore…" entry).
    Versions { dst: PathBuf, name: String },
    /// Open the local page at this address (key included) in a browser.
    OpenPage(String),
    /// Open the config file, writing a commented template first if missing.
    Settings,
    /// Read (`None`) or set the login entry; the real state goes back to
    /// the loop.
    Autostart(Option<bool>),
    /// Read (`None`) or set whether "Previous versions…" is in the file
    /// managers' menus; the real state goes back to the loop.
    Integrate(Option<bool>),
    /// Add a folder pair to the config (from "Add a folder…").
    AddPair { src: PathBuf, dst: PathBuf },
}

/// Sends jobs to the actions thread.
#[derive(Clone)]
pub struct Actions {
    tx: Sender<Job>,
}

impl Actions {
    pub fn start(
        config: PathBuf,
        autostart: Result<Autostart, String>,
        notifier: Notifier,
        proxy: EventLoopProxy<AppEvent>,
        ctl: Sender<Ctl>,
    ) -> Actions {
        let (tx, rx) = unbounded();
        let worker = Worker {
            config,
            autostart,
            notifier,
            proxy,
            ctl,
        };
        if let Err(e) = std::thread::Builder::new()
            .name("actions".into())
            .spawn(move || worker.run(rx))
        {
            log::error!("cannot start the thread for menu actions: {e}");
        }
        Actions { tx }
    }

    /// Queues `job` (never blocks).
    pub fn send(&self, job: Job) {
        let _ = self.tx.send(job);
    }
}

struct Worker {
    config: PathBuf,
    autostart: Result<Autostart, String>,
    notifier: Notifier,
    proxy: EventLoopProxy<AppEvent>,
    ctl: Sender<Ctl>,
}

impl Worker {
    fn run(self, rx: Receiver<Job>) {
        for job in rx.iter() {
            match job {
                Job::Open { path, what } => self.open(&path, &what),
                Job::Versions { dst, name } => self.versions(&dst, &name),
                Job::OpenPage(url) => self.open_page(&url),
                Job::Settings => self.settings(),
                Job::Autostart(want) => self.autostart(want),
                Job::Integrate(want) => self.integrate(want),
                Job::AddPair { src, dst } => self.add_pair(&src, &dst),
            }
        }
    }

    fn problem(&self, key: &str, summary: &str, body: String) {
        log::error!("{summary}: {body}");
        self.notifier
            .show(Popup::new(key, Level::Error, summary, body));
    }

    fn open(&self, path: &Path, what: &str) {
        match std::fs::metadata(path) {
            Ok(_) => {}
            Err(e) => {
                return self.problem(
                    "open",
                    &format!("Cannot open {what}"),
                    format!("{}: {}", show(path), reason(&e)),
                );
            }
        }
        log::info!("opening {what}: {}", show(path));
        if let Err(why) = launch(path) {
            self.problem(
                "open",
                &format!("Cannot open {what}"),
                format!("{}: {why}", show(path)),
            );
        }
    }

    fn open_page(&self, url: &str) {
        log::info!("opening the local page");
        if let Err(e) = opener::open_browser(url) {
            // No browser: say where the page is instead of doing nothing.
            let shown = url.split("token=").next().unwrap_or(url);
            self.problem(
                "open",
                "Cannot open a web browser",
                format!(
                    "{e}. The restore page is at {shown}…; `mirrortray ui --print-url` prints its whole address."
                ),
            );
        }
    }

    fn versions(&self, dst: &Path, name: &str) {
        let dir = dst.join(RESERVED).join("versions");
        if std::fs::symlink_metadata(&dir).is_err() {
            log::info!("{}: no versions kept yet", show(&dir));
            self.notifier.show(Popup::new(
                "versions",
                Level::Info,
                format!("No earlier versions yet: {name}"),
                format!(
                    "mirrortray keeps the old version each time a file in the backup is replaced or deleted, in {}, one folder per date. None so far. From a terminal: mirrortray versions PATH, mirrortray restore PATH.",
                    show(&dir)
                ),
            ));
            return;
        }
        self.open(&dir, &format!("the versions of {name}"));
    }

    fn settings(&self) {
        if let Err(e) = write_template(&self.config) {
            return self.problem(
                "settings",
                "Cannot create the settings file",
                format!("{}: {e}", show(&self.config)),
            );
        }
        self.open(&self.config, "the settings file");
    }

    fn autostart(&self, want: Option<bool>) {
        let result = match &self.autostart {
            Err(e) => Err(e.clone()),
            Ok(a) => {
                let set = match want {
                    Some(on) => a.set(on),
                    None => Ok(()),
                };
                match set {
                    Ok(()) => a.is_enabled(),
                    Err(e) => Err(e),
                }
            }
        };
        match (&result, want) {
            (Ok(on), Some(_)) => log::info!("start at login: {}", if *on { "on" } else { "off" }),
            (Err(e), Some(_)) => {
                self.problem("autostart", "Cannot change \"Start at login\"", e.clone())
            }
            (Err(e), None) => log::warn!("cannot tell whether mirrortray starts at login: {e}"),
            (Ok(_), None) => {}
        }
        let _ = self.proxy.send_event(AppEvent::Autostart(result));
    }

    fn integrate(&self, want: Option<bool>) {
        if let Some(on) = want {
            match crate::integrate::apply(!on) {
                Ok(r) if r.failed.is_empty() => {
                    log::info!(
                        "\"Previous versions\" in file managers: {}",
                        if on { "on" } else { "off" }
                    );
                    self.notifier.close("integrate");
                }
                Ok(r) => self.problem(
                    "integrate",
                    "Cannot change \"Previous versions\" in file managers",
                    r.problems(),
                ),
                Err(e) => self.problem(
                    "integrate",
                    "Cannot change \"Previous versions\" in file managers",
                    e,
                ),
            }
        }
        let state = crate::integrate::installed();
        if let Err(e) = &state {
            log::warn!("cannot tell whether the file manager entries are installed: {e}");
        }
        let _ = self.proxy.send_event(AppEvent::Integrated(state));
    }

    fn add_pair(&self, src: &Path, dst: &Path) {
        // A chosen folder that holds other files gets the backup in a
        // folder of its own inside (named after the source): never mixed
        // with, and never moving away, what is there.
        let inside = (mirrortray::engine::paths::foreign_entries(dst) > 0)
            .then(|| src.file_name().map(|n| dst.join(n)))
            .flatten();
        match add_pair(&self.config, src, inside.as_deref().unwrap_or(dst)) {
            Ok(pair) => {
                log::info!("added {} to {}", pair.label(), show(&self.config));
                let note = match &inside {
                    Some(_) => format!(
                        " ({} holds other files, so the backup has a folder of its own there)",
                        show(dst)
                    ),
                    None => String::new(),
                };
                self.notifier.show(Popup::new(
                    "added",
                    Level::Info,
                    format!("Backing up {}", show(&pair.src)),
                    format!(
                        "to {}{note}. The first copy starts now; the menu shows how it goes. To change it later, choose Settings.",
                        show(&pair.dst)
                    ),
                ));
                let _ = self.ctl.send(Ctl::Reload);
            }
            Err(e) => self.problem("added", "Folder not added", e),
        }
    }
}

/// How long an opener that fails is given to say so (xdg-open exits at
/// once when no program handles the file; one that works may run as long
/// as the program it started).
#[cfg(target_os = "linux")]
const OPENER_VERDICT: std::time::Duration = std::time::Duration::from_secs(3);

/// Opens a file or folder with the desktop's program for it. On Linux,
/// `xdg-open` is run and its exit status read (the opener crate does not
/// wait for it): "no program for this" becomes a popup, not silence.
#[cfg(target_os = "linux")]
fn launch(path: &Path) -> Result<(), String> {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new("xdg-open")
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                "no file manager can be started: xdg-open is not installed (Debian/Ubuntu package xdg-utils)".to_string()
            }
            _ => format!("cannot start xdg-open: {}", reason(&e)),
        })?;
    let deadline = std::time::Instant::now() + OPENER_VERDICT;
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return Ok(()),
            Ok(Some(st)) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                let said = err.lines().next().unwrap_or("").trim();
                return Err(if said.is_empty() {
                    format!(
                        "no program opened it (xdg-open exited with {st}). Is a file manager installed?"
                    )
                } else {
                    format!("no program opened it ({said}). Is a file manager installed?")
                });
            }
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            // Still running: the program it started is up. Reaped aside.
            _ => {
                let _ = std::thread::Builder::new()
                    .name("opener".into())
                    .spawn(move || child.wait());
                return Ok(());
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn launch(path: &Path) -> Result<(), String> {
    opener::open(path).map_err(|e| opener_reason(&e))
}

#[cfg_attr(target_os = "linux", allow(dead_code))]
fn opener_reason(e: &opener::OpenError) -> String {
    match e {
        opener::OpenError::Io(io) => reason(io),
        other => other.to_string(),
    }
}

/// The config file's starting text: every setting, commented.
pub fn template(home: Option<&Path>) -> String {
    let home = home.map(show).unwrap_or_else(|| "/home/me".into());
    format!(
        r#"# mirrortray settings. Saved changes apply at once; no restart needed.
#
# Each folder pair is a [[pair]] table. Add one here, or with the menu's
# "Add a folder…", or from a terminal: mirrortray add SRC DST
#
# [[pair]]
# src = "{home}/Documents"          # the folder to back up
# dst = "/media/backup/Documents"   # where its mirror is kept
# ignore = ["*.tmp", "node_modules/"]  # gitignore-style patterns (optional)
# versions = true                   # keep what the backup loses (default)
# retention_days = 30               # this pair's own retention (optional)

[settings]
# Days to keep old versions (DST/.mirrortray/versions).
retention_days = 30
# Minutes between light checks for changes missed while watching (0: off;
# large trees are checked less often, at most 0.1 % of a core).
drift_check_minutes = 5
# Hours without a complete backup before a notification says so.
alert_after_hours = 24
"#
    )
}

/// Writes the template unless the file exists.
fn write_template(config: &Path) -> Result<(), String> {
    if std::fs::symlink_metadata(config).is_ok() {
        return Ok(());
    }
    if let Some(dir) = config.parent() {
        std::fs::create_dir_all(dir).map_err(|e| reason(&e))?;
    }
    let home = directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf());
    let text = template(home.as_deref());
    use std::io::Write;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(config)
    {
        Ok(mut f) => f.write_all(text.as_bytes()).map_err(|e| reason(&e)),
        // Created meanwhile (by `mirrortray add`?): theirs wins.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(reason(&e)),
    }
}

/// Adds SRC -> DST to the config with the rules of `mirrortray add`:
/// absolute, resolved paths; no overlap; not already configured; the
/// backup folder created now, while the user is here.
pub fn add_pair(config_file: &Path, src: &Path, dst: &Path) -> Result<PairConfig, String> {
    config::add_pair(config_file, src, dst, &[], true, None, false)
        .map(|(pair, _)| pair)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_a_valid_empty_config() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/config.toml");
        write_template(&p).unwrap();
        let cfg = config::load(&p).unwrap();
        assert!(cfg.pairs.is_empty());
        assert_eq!(cfg.settings, config::Settings::default());
        // Never overwrites.
        std::fs::write(&p, "[settings]\nretention_days = 5\n").unwrap();
        write_template(&p).unwrap();
        assert_eq!(config::load(&p).unwrap().settings.retention_days, 5);
    }

    #[test]
    fn add_pair_writes_the_config_and_refuses_overlaps() {
        let dir = tempfile::tempdir().unwrap();
        let cfgp = dir.path().join("config.toml");
        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        let pair = add_pair(&cfgp, &src, &dir.path().join("bk")).unwrap();
        assert!(pair.dst.is_dir());
        assert_eq!(config::load(&cfgp).unwrap().pairs, vec![pair]);
        let e = add_pair(&cfgp, &src, &dir.path().join("bk2")).unwrap_err();
        assert!(e.contains("already backed up"), "{e}");
        let e = add_pair(&cfgp, &src, &src.join("inside")).unwrap_err();
        assert!(e.contains("inside"), "{e}");
    }
}
