//! tray: the event loop's side — the tray icon and its menu, on the main
//! thread. Everything arrives as an [`AppEvent`] through the loop's proxy
//! (menu clicks, worker notices, the config's pairs, the login entry's
//! state); the loop updates the [`Model`], redraws the menu from
//! [`menu::plan`] and the icon from [`status::look`], and hands work to
//! other threads: commands to `control`, file and program jobs to
//! `actions`, popups to `notifications`. It never waits on any of them.
//!
//! The icon is created once the loop runs (`StartCause::Init`): created
//! earlier, an appindicator icon does not show. With the appindicator
//! backend there are no tooltips and no icon clicks, so the first menu line
//! carries the status.

use mirrortray::engine::error::{reason, show};
use mirrortray::engine::status_file::{StatusFile, runtime_dir};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use tao::event::{Event, StartCause};
use tao::event_loop::{ControlFlow, EventLoop, EventLoopProxy};
use tao::platform::run_return::EventLoopExtRunReturn;
use tray_icon::menu::{CheckMenuItem, IsMenuItem, Menu, MenuId, MenuItem, PredefinedMenuItem};
use tray_icon::{Icon, NativeIcon, TrayIcon, TrayIconBuilder};

use super::AppEvent;
use super::actions::{Actions, Job};
use super::control::Ctl;
use super::first_run;
use super::icons;
use super::menu::{self, Action, Entry};
use super::notifications::{Alerts, Level, Notifier, Popup};
use super::status::{self, Look, Model};
use mirrortray::engine::watch::Notice;

/// How long Quit may take before the app exits anyway (a worker stuck in a
/// dead network mount must not keep the app alive forever).
const QUIT_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the login entry is read again, so the check mark follows a
/// change made elsewhere (a settings app, a deleted file). There is no
/// "menu opened" event with appindicator to do it then.
const AUTOSTART_RECHECK: Duration = Duration::from_secs(60);

/// A realized menu entry.
enum Widget {
    Text(MenuItem),
    Separator(PredefinedMenuItem),
    Check(CheckMenuItem),
}

impl Widget {
    fn as_item(&self) -> &dyn IsMenuItem {
        match self {
            Widget::Text(i) => i,
            Widget::Separator(i) => i,
            Widget::Check(i) => i,
        }
    }
}

/// What the loop owns.
pub struct Tray {
    pub model: Model,
    generation: u64,
    tz: TimeZone,
    menu: Menu,
    shown: Vec<(Entry, Widget)>,
    ids: HashMap<MenuId, Action>,
    icon: Option<TrayIcon>,
    look: Option<Look>,
    alerts: Alerts,
    /// For `mirrortray status`; removed when the tray stops.
    status_file: StatusFile,
    /// The local page, when it started.
    page: Option<super::PageLink>,
    notifier: Notifier,
    actions: Actions,
    ctl: Sender<Ctl>,
    proxy: EventLoopProxy<AppEvent>,
    log_path: Option<PathBuf>,
    quit_by: Option<Instant>,
    recheck_autostart: Instant,
    /// The exit code once the workers have stopped (2: the icon failed).
    code_when_stopped: i32,
    exit: Option<i32>,
    /// This user's first start, until the config is read (`first_run`).
    first_start: bool,
    /// The icons at every size, for the panel to pick from (`icons`).
    theme: Option<icons::Theme>,
}

/// Menu labels: `&` marks a mnemonic in muda, so a literal one is doubled.
fn label(s: &str) -> String {
    s.replace('&', "&&")
}

impl Tray {
    pub fn new(
        model: Model,
        notifier: Notifier,
        actions: Actions,
        ctl: Sender<Ctl>,
        proxy: EventLoopProxy<AppEvent>,
        log_path: Option<PathBuf>,
        page: Option<super::PageLink>,
    ) -> Tray {
        let status_file = match &page {
            Some(p) => StatusFile::with_view("tray", p.status.clone()),
            None => StatusFile::new("tray"),
        };
        Tray {
            model,
            generation: 0,
            tz: TimeZone::system(),
            menu: Menu::new(),
            shown: Vec::new(),
            ids: HashMap::new(),
            icon: None,
            look: None,
            alerts: Alerts::default(),
            status_file,
            page,
            notifier,
            actions,
            ctl,
            proxy,
            log_path,
            quit_by: None,
            recheck_autostart: Instant::now() + AUTOSTART_RECHECK,
            code_when_stopped: 0,
            exit: None,
            first_start: first_run::pending(),
            theme: None,
        }
    }

    /// Runs the loop until Quit; returns the exit code.
    pub fn run(mut self, mut event_loop: EventLoop<AppEvent>) -> i32 {
        event_loop.run_return(move |event, _, flow| {
            match event {
                Event::NewEvents(StartCause::Init) => self.start(),
                Event::UserEvent(e) => {
                    self.event(e);
                    self.redraw();
                }
                _ => {}
            }
            self.timers();
            *flow = match (self.exit, self.next_wake()) {
                (Some(code), _) => {
                    // The icon goes away with the loop, not after it.
                    self.icon.take();
                    ControlFlow::ExitWithCode(code)
                }
                (None, Some(at)) => ControlFlow::WaitUntil(at),
                (None, None) => ControlFlow::Wait,
            };
        })
    }

    fn start(&mut self) {
        self.redraw();
        let look = status::look(&self.model);
        let dir = runtime_dir().join(format!("icons-{}", std::process::id()));
        self.theme = match icons::Theme::write(dir.clone()) {
            Ok(t) => Some(t),
            Err(e) => {
                log::warn!(
                    "{}: cannot write the tray's icons ({}); the panel scales the 32 px one",
                    show(&dir),
                    reason(&e)
                );
                None
            }
        };
        let builder = TrayIconBuilder::new()
            .with_id("mirrortray")
            .with_menu(Box::new(self.menu.clone()))
            .with_tooltip("mirrortray");
        let built = match &self.theme {
            Some(t) => builder
                .with_temp_dir_path(t.dir())
                .with_native_icon(NativeIcon::from_name(icons::name(look)))
                .build()
                .map_err(|e| e.to_string()),
            None => icons::rgba(look)
                .and_then(|i| {
                    Icon::from_rgba(i.pixels, i.width, i.height).map_err(|e| e.to_string())
                })
                .and_then(|icon| builder.with_icon(icon).build().map_err(|e| e.to_string())),
        };
        match built {
            Ok(icon) => {
                self.icon = Some(icon);
                self.look = Some(look);
                log::info!("tray icon ready");
            }
            Err(e) => {
                log::error!("cannot create the tray icon: {e}");
                eprintln!(
                    "mirrortray: cannot create the tray icon: {e}. Run `mirrortray watch` to mirror without the tray."
                );
                // Stop the workers first; `Stopped` then ends the loop.
                self.model.quitting = true;
                self.code_when_stopped = 2;
                if self.ctl.send(Ctl::Quit).is_err() {
                    self.exit = Some(2);
                }
                self.quit_by = Some(Instant::now() + QUIT_TIMEOUT);
            }
        }
        self.actions.send(Job::Autostart(None));
        self.actions.send(Job::Integrate(None));
    }

    /// The first start for this user (see `first_run`): once the config
    /// is read, so the welcome knows whether folders are set up.
    fn welcome(&mut self, folders: usize) {
        first_run::done();
        log::info!("first start: welcome shown, start at login turned on");
        self.actions.send(Job::Autostart(Some(true)));
        let (summary, body) = first_run::welcome(folders);
        self.notifier
            .show(Popup::new("welcome", Level::Info, summary, body));
        if folders == 0 {
            self.action(Action::AddFolder);
        }
    }

    fn now(&self) -> jiff::ZonedDateTime {
        Timestamp::now().to_zoned_datetime(self.tz.clone())
    }

    fn name(&self, index: usize) -> String {
        self.model
            .pairs
            .get(index)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| format!("pair {}", index + 1))
    }

    fn event(&mut self, e: AppEvent) {
        match e {
            AppEvent::Menu(id) => {
                if let Some(a) = self.ids.get(&id).copied() {
                    self.action(a);
                }
            }
            AppEvent::Pairs { generation, pairs } => {
                self.generation = generation;
                self.status_file.reset(pairs.len());
                self.model.set_pairs(&pairs);
                if std::mem::take(&mut self.first_start) {
                    self.welcome(pairs.len());
                }
                if let Some(page) = &self.page {
                    (page.set_pairs)(
                        self.model
                            .pairs
                            .iter()
                            .map(|p| (p.name.clone(), p.src.clone(), p.dst.clone()))
                            .collect(),
                    );
                }
                self.alerts.reset();
            }
            AppEvent::Notice {
                generation,
                index,
                notice,
            } => {
                if generation != self.generation {
                    return;
                }
                match notice.as_ref() {
                    Notice::Status(s) => {
                        self.model.set_status(index, s);
                        // Each pair has a supervisor of its own, whose
                        // worker counts itself pair 0.
                        let mut s = s.clone();
                        s.index = index;
                        self.status_file.set(&s);
                    }
                    Notice::MassDeleteHeld { count, total, .. } => {
                        self.model.set_held(index, *count, *total)
                    }
                    Notice::Offsite(o) => {
                        self.model.set_offsite(index, o);
                        let mut o = o.clone();
                        o.index = index;
                        self.status_file.set_offsite(&o);
                    }
                    _ => {}
                }
                let name = self.name(index);
                let popup = self.alerts.notice(Instant::now(), index, &name, &notice);
                for key in self.alerts.take_closes() {
                    self.notifier.close(&key);
                }
                if let Some(p) = popup {
                    self.notifier.show(p);
                }
            }
            AppEvent::Config(problem) => {
                if let Some(msg) = &problem {
                    self.notifier.show(Popup::new(
                        "config",
                        Level::Error,
                        "Settings not applied",
                        format!("{msg}\nChoose Settings in the mirrortray menu to fix it; it applies when saved."),
                    ));
                }
                if problem.is_none() && self.model.config_error.is_some() {
                    self.notifier.close("config");
                }
                self.model.config_error = problem;
            }
            AppEvent::Autostart(state) => match state {
                Ok(on) => self.model.autostart = Some(on),
                // Unknown: offer it anyway, so the user can try (and see why not).
                Err(_) => self.model.autostart = Some(self.model.autostart.unwrap_or(false)),
            },
            AppEvent::Integrated(state) => {
                self.model.integrated = Some(state.unwrap_or(false));
            }
            AppEvent::Chosen { src, dst } => self.actions.send(Job::AddPair { src, dst }),
            AppEvent::Quit => self.quit(),
            AppEvent::Stopped => self.exit = Some(self.code_when_stopped),
        }
    }

    fn action(&mut self, a: Action) {
        let pair = |i: usize| self.model.pairs.get(i).cloned();
        match a {
            Action::Overview => {
                if let Some(page) = &self.page {
                    self.actions.send(Job::OpenPage(page.url("/")));
                }
            }
            Action::Pause => {
                self.model.paused = !self.model.paused;
                log::info!("{}", if self.model.paused { "paused by the user" } else { "resumed by the user" });
                let _ = self.ctl.send(if self.model.paused { Ctl::Pause } else { Ctl::Resume });
            }
            Action::BackupNow => {
                log::info!("back up now (chosen by the user)");
                let _ = self.ctl.send(Ctl::BackupNow);
            }
            Action::OpenBackup(i) => {
                if let Some(p) = pair(i) {
                    self.actions.send(Job::Open {
                        path: p.dst.clone(),
                        what: format!("the backup of {}", p.name),
                    });
                }
            }
            Action::Restore(i) => match (&self.page, pair(i)) {
                (Some(page), Some(_)) => {
                    let url = page.url(&format!("/browse?pair={i}"));
                    self.actions.send(Job::OpenPage(url));
                }
                (None, Some(p)) => self.actions.send(Job::Versions { dst: p.dst, name: p.name }),
                _ => {}
            },
            Action::AllowDeletions(i) => {
                if let Some(p) = self.model.pairs.get_mut(i) {
                    log::info!("{}: deletions allowed by the user", show(&p.dst));
                    p.held = None;
                    let _ = self.ctl.send(Ctl::AllowMassDelete { generation: self.generation, index: i });
                }
            }
            Action::ShowFailing => {
                let text = super::status::failing_report(&self.model, &self.now());
                let path = runtime_dir().join("cannot-back-up.txt");
                let written = std::fs::create_dir_all(runtime_dir())
                    .and_then(|()| std::fs::write(&path, text));
                match written {
                    Ok(()) => self.actions.send(Job::Open {
                        path,
                        what: "the list of files that can't be backed up".into(),
                    }),
                    Err(e) => self.notifier.show(Popup::new(
                        "open",
                        Level::Error,
                        "Cannot show the list",
                        format!("{}: {}", show(&path), reason(&e)),
                    )),
                }
            }
            Action::AddFolder => {
                if !super::add_folder::choose(self.proxy.clone(), self.model.home.clone()) {
                    self.actions.send(Job::Settings);
                    self.notifier.show(Popup::new(
                        "add",
                        Level::Info,
                        "Add a folder",
                        "Add a [[pair]] with src and dst to the settings file that just opened, or run: mirrortray add SRC DST",
                    ));
                }
            }
            // The page shows the log's end in local time; without it, the
            // file itself (an editor opens it at the top).
            Action::OpenLog => match (&self.page, &self.log_path) {
                (Some(page), Some(_)) => {
                    self.actions
                        .send(Job::OpenPage(format!("{}#end", page.url("/log"))));
                }
                (None, Some(p)) => self.actions.send(Job::Open {
                    path: p.clone(),
                    what: "the log".into(),
                }),
                (_, None) => self.notifier.show(Popup::new(
                    "open",
                    Level::Error,
                    "No log file",
                    "mirrortray could not find a place for its log (set HOME, or start it with --log-file FILE).",
                )),
            },
            Action::Settings => self.actions.send(Job::Settings),
            Action::Autostart => {
                let want = self.model.autostart != Some(true);
                self.actions.send(Job::Autostart(Some(want)));
            }
            Action::Integrate => {
                let want = self.model.integrated != Some(true);
                self.actions.send(Job::Integrate(Some(want)));
            }
            Action::Quit => self.quit(),
        }
    }

    fn quit(&mut self) {
        if self.model.quitting {
            return;
        }
        log::info!("quitting: stopping the workers");
        // Popups speak of this run's state: none is left on screen.
        self.notifier.close_all();
        self.model.quitting = true;
        self.quit_by = Some(Instant::now() + QUIT_TIMEOUT);
        if self.ctl.send(Ctl::Quit).is_err() {
            self.exit = Some(0);
        }
    }

    fn timers(&mut self) {
        let now = Instant::now();
        let names: Vec<String> = self.model.pairs.iter().map(|p| p.name.clone()).collect();
        let name = |i: usize| names.get(i).cloned().unwrap_or_default();
        for p in self.alerts.tick(now, &name) {
            self.notifier.show(p);
        }
        if !self.model.quitting && now >= self.recheck_autostart {
            self.recheck_autostart = now + AUTOSTART_RECHECK;
            self.actions.send(Job::Autostart(None));
        }
        if self.exit.is_none() && self.quit_by.is_some_and(|t| now >= t) {
            log::warn!(
                "the workers did not stop within {} s; exiting anyway (leftover temp files are removed at the next start)",
                QUIT_TIMEOUT.as_secs()
            );
            self.exit = Some(0);
        }
    }

    fn next_wake(&self) -> Option<Instant> {
        [
            self.alerts.next_deadline(),
            self.quit_by,
            Some(self.recheck_autostart),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Brings the menu and the icon in line with the model.
    fn redraw(&mut self) {
        let now = self.now();
        let plan = menu::plan(&self.model, &now);
        let same_shape = plan.len() == self.shown.len()
            && plan
                .iter()
                .zip(&self.shown)
                .all(|(a, (b, _))| a.shape() == b.shape());
        if same_shape {
            for (new, (old, w)) in plan.into_iter().zip(self.shown.iter_mut()) {
                update(&new, old, w);
                *old = new;
            }
        } else {
            self.rebuild(plan);
        }
        let look = status::look(&self.model);
        if let Some(icon) = &mut self.icon {
            if self.look != Some(look) {
                let set = match &self.theme {
                    Some(_) => icon
                        .set_native_icon(Some(NativeIcon::from_name(icons::name(look))))
                        .map_err(|e| e.to_string()),
                    None => icons::rgba(look)
                        .and_then(|i| {
                            Icon::from_rgba(i.pixels, i.width, i.height).map_err(|e| e.to_string())
                        })
                        .and_then(|i| icon.set_icon(Some(i)).map_err(|e| e.to_string())),
                };
                if let Err(e) = set {
                    log::warn!("cannot change the tray icon: {e}");
                }
                self.look = Some(look);
            }
            let mut tip = format!("mirrortray: {}", status::status_line(&self.model, &now));
            for line in status::offsite_lines(&self.model, &now) {
                tip.push('\n');
                tip.push_str(&line);
            }
            let _ = icon.set_tooltip(Some(tip));
        }
    }

    fn rebuild(&mut self, plan: Vec<Entry>) {
        for (_, w) in self.shown.drain(..) {
            let _ = self.menu.remove(w.as_item());
        }
        self.ids.clear();
        for e in plan {
            let w = match &e {
                Entry::Line(text) => Widget::Text(MenuItem::new(label(text), false, None)),
                Entry::Separator => Widget::Separator(PredefinedMenuItem::separator()),
                Entry::Item {
                    action,
                    label: l,
                    enabled,
                } => {
                    let i = MenuItem::new(label(l), *enabled, None);
                    self.ids.insert(i.id().clone(), *action);
                    Widget::Text(i)
                }
                Entry::Check {
                    action,
                    label: l,
                    checked,
                    enabled,
                } => {
                    let i = CheckMenuItem::new(label(l), *enabled, *checked, None);
                    self.ids.insert(i.id().clone(), *action);
                    Widget::Check(i)
                }
            };
            if let Err(e) = self.menu.append(w.as_item()) {
                log::warn!("cannot add a menu entry: {e}");
            }
            self.shown.push((e, w));
        }
    }
}

/// Updates one realized entry in place (same shape).
fn update(new: &Entry, old: &Entry, w: &Widget) {
    match (new, w) {
        (Entry::Line(t), Widget::Text(i)) if new != old => i.set_text(label(t)),
        (
            Entry::Item {
                label: l, enabled, ..
            },
            Widget::Text(i),
        ) => {
            if let Entry::Item {
                label: ol,
                enabled: oe,
                ..
            } = old
            {
                if l != ol {
                    i.set_text(label(l));
                }
                if enabled != oe {
                    i.set_enabled(*enabled);
                }
            }
        }
        (
            Entry::Check {
                label: l,
                checked,
                enabled,
                ..
            },
            Widget::Check(i),
        ) => {
            if let Entry::Check {
                label: ol,
                enabled: oe,
                ..
            } = old
            {
                if l != ol {
                    i.set_text(label(l));
                }
                if enabled != oe {
                    i.set_enabled(*enabled);
                }
            }
            // Against the widget, not the old plan: a click toggles the
            // widget by itself, and the model has the last word.
            if i.is_checked() != *checked {
                i.set_checked(*checked);
            }
        }
        _ => {}
    }
}
