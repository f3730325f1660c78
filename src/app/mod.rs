//! app: the tray app — what the user sees. It drives the engine's watch
//! workers through commands in and notices out, and never blocks its event
//! loop on file I/O.
//!
//! ```text
//!  main thread: tao event loop ── owns ──> tray icon + menu   (tray, menu, status, icons)
//!     ^ AppEvent (EventLoopProxy)          │ Ctl                │ Job          │ Popup
//!     │                                    v                    v              v
//!     ├── forwarders <── Notice ── control: one Supervisor   actions:      notifications:
//!     │                            per pair (workers)        open, login,  notify-rust,
//!     │                               ^ Reload               add a pair    rate-limited
//!     ├── signals (SIGINT/SIGTERM)    │
//!     └── menu clicks              config_watch
//! ```
//!
//! Start-up: with no display the caller runs headless instead
//! ([`open_display`]); a second tray says the first is running and exits 0
//! ([`single`]); then the threads start and the loop runs until Quit, which
//! stops every worker cleanly (temp files removed, locks released) and
//! exits 0.

mod actions;
mod add_folder;
mod autostart;
mod config_watch;
mod control;
mod first_run;
mod icons;
mod menu;
mod notifications;
mod single;
mod status;
mod tray;

use std::io::IsTerminal;
use std::path::PathBuf;

use mirrortray::engine::watch::Notice;
use tao::event_loop::EventLoopBuilder;
use tray_icon::menu::{MenuEvent, MenuId};

use crate::cli::Global;
use crate::exit_code::ExitCode;
use crate::logging;

/// What reaches the event loop.
#[derive(Debug)]
pub enum AppEvent {
    /// A menu entry was chosen.
    Menu(MenuId),
    /// The pairs of a new generation (sent before any of their notices).
    Pairs {
        generation: u64,
        pairs: Vec<(PathBuf, PathBuf)>,
    },
    /// A worker's notice.
    Notice {
        generation: u64,
        index: usize,
        notice: Box<Notice>,
    },
    /// The config could not be read (`Some`), or reads fine again (`None`).
    Config(Option<String>),
    /// Whether the login entry is on.
    Autostart(Result<bool, String>),
    /// Whether "Previous versions…" is in the file managers' menus.
    Integrated(Result<bool, String>),
    /// "Add a folder…": the user chose both folders.
    Chosen { src: PathBuf, dst: PathBuf },
    /// SIGINT or SIGTERM (logout).
    Quit,
    /// Every worker has stopped; exit.
    Stopped,
}

/// Checks that a display can be opened (GTK is initialised here, before
/// tao, whose own initialisation would panic without one). The error is
/// the reason, for one line.
pub fn open_display() -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
        if !set("DISPLAY") && !set("WAYLAND_DISPLAY") {
            return Err("no display (DISPLAY and WAYLAND_DISPLAY are not set)".into());
        }
        if gtk::init().is_err() {
            let which = std::env::var("DISPLAY")
                .ok()
                .filter(|d| !d.is_empty())
                .or_else(|| std::env::var("WAYLAND_DISPLAY").ok())
                .unwrap_or_default();
            return Err(format!("cannot open the display {which}"));
        }
    }
    Ok(())
}

/// Runs the tray app (a display is open) with the config file `config`.
/// A pair as the page names it: (name, SRC, DST).
pub type PagePair = (String, PathBuf, PathBuf);

/// The local page as the tray sees it: started by the caller (app and page
/// never import each other); the tray opens its address and tells it the
/// pairs.
pub struct PageLink {
    /// `http://127.0.0.1:PORT`.
    pub origin: String,
    pub token: String,
    /// The status the page reads: the tray writes it.
    pub status: mirrortray::engine::status_file::StatusView,
    /// The pairs changed: (name, SRC, DST) each.
    pub set_pairs: Box<dyn Fn(Vec<PagePair>) + Send>,
}

impl PageLink {
    /// The page's address for `path` (e.g. `/browse?pair=0`), key included.
    pub fn url(&self, path: &str) -> String {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{}{path}{sep}token={}", self.origin, self.token)
    }
}

pub fn run(g: &Global, config: Result<PathBuf, String>, page: Option<PageLink>) -> ExitCode {
    let _instance = match single::claim() {
        single::Claim::First(i) => i,
        single::Claim::Running(pid) => {
            let who = pid.map(|p| format!(" (process {p})")).unwrap_or_default();
            eprintln!(
                "mirrortray: the tray is already running{who}; its icon is in the system tray. Nothing else to do."
            );
            return ExitCode::Success;
        }
    };
    logging::init(g, std::io::stderr().is_terminal());
    let config = match config.and_then(|p| {
        std::path::absolute(&p).map_err(|e| format!("{}: {e}", mirrortray::engine::error::show(&p)))
    }) {
        Ok(p) => p,
        Err(e) => {
            log::error!("{e}");
            if !std::io::stderr().is_terminal() {
                // Not said on the terminal by the logger: say it here.
                eprintln!("mirrortray: {e}");
            }
            return ExitCode::Error;
        }
    };
    log::info!(
        "tray starting; config {}",
        mirrortray::engine::error::show(&config)
    );

    let event_loop = EventLoopBuilder::<AppEvent>::with_user_event().build();
    let proxy = event_loop.create_proxy();
    let menu_proxy = proxy.clone();
    MenuEvent::set_event_handler(Some(move |e: MenuEvent| {
        let _ = menu_proxy.send_event(AppEvent::Menu(e.id));
    }));

    let notifier = notifications::Notifier::start();
    let (ctl, control_thread) = match control::start(config.clone(), proxy.clone()) {
        Ok(c) => c,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::Error;
        }
    };
    config_watch::start(config.clone(), ctl.clone());
    let autostart = autostart::Autostart::new(autostart::Autostart::args_from(
        g.config.as_deref(),
        g.log_file.as_deref(),
    ));
    let actions = actions::Actions::start(
        config,
        autostart,
        notifier.clone(),
        proxy.clone(),
        ctl.clone(),
    );
    listen_for_signals(proxy.clone());

    let home = directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf());
    let model = status::Model {
        home,
        page: page.is_some(),
        ..status::Model::default()
    };
    let tray = tray::Tray::new(
        model,
        notifier,
        actions,
        ctl.clone(),
        proxy,
        logging::log_path(g),
        page,
    );
    let code = tray.run(event_loop);
    // Normally the workers have stopped already; if the loop ended another
    // way (the display closed), stop them now, within reason.
    let _ = ctl.send(control::Ctl::Quit);
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    let _ = std::thread::Builder::new()
        .name("join-control".into())
        .spawn(move || {
            let _ = control_thread.join();
            let _ = done_tx.send(());
        });
    if done_rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .is_err()
    {
        log::warn!("the workers did not stop in time; exiting anyway");
    }
    log::info!("tray stopped");
    match code {
        0 => ExitCode::Success,
        // The display went away (logout without a signal): not a failure
        // of ours, but said so.
        1 => {
            log::warn!("the display closed; stopped");
            ExitCode::Success
        }
        _ => ExitCode::Error,
    }
}

/// SIGINT and SIGTERM (logout, `kill`) quit as the menu's Quit does.
fn listen_for_signals(proxy: tao::event_loop::EventLoopProxy<AppEvent>) {
    #[cfg(unix)]
    {
        use signal_hook::consts::{SIGINT, SIGTERM};
        match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
            Ok(mut signals) => {
                let _ = std::thread::Builder::new()
                    .name("signals".into())
                    .spawn(move || {
                        for sig in signals.forever() {
                            log::info!("signal {sig}: quitting");
                            if proxy.send_event(AppEvent::Quit).is_err() {
                                return;
                            }
                        }
                    });
            }
            Err(e) => log::warn!("cannot listen for signals ({e}); quit from the menu"),
        }
    }
    #[cfg(not(unix))]
    let _ = proxy;
}
