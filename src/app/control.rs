//! control: the thread that owns the workers, so the event loop never waits
//! for them. It reads the config, starts one watch `Supervisor` per pair,
//! forwards every worker notice to the loop (tagged with the pair and a
//! *generation*), and carries out the menu's commands.
//!
//! ```text
//!  loop ──Ctl──> control ──Command──> Supervisor(pair i) ──> worker
//!   ^                                        | Notice
//!   └──── AppEvent::Notice{generation, i} <── forwarder thread i
//! ```
//!
//! - One supervisor per pair (not one for all) so that "Allow deletions in
//!   DST" reaches only the pair that holds them.
//! - Reload (the config file changed): the new config is read here; if it
//!   does not parse, the running pairs go on and the loop is told why. If
//!   the pairs or timings changed, every worker is stopped cleanly (temp
//!   files removed, locks released) and new ones start; a generation number
//!   lets the loop drop notices that old workers sent late. The loop hears
//!   of the new pairs before any of their notices.
//! - Pause is remembered: pairs started while paused start paused.
//! - Quit stops every worker, then tells the loop, which exits.

use std::path::PathBuf;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, unbounded};
use mirrortray::engine::config;
use mirrortray::engine::mirror::{Options, PairSpec};
use mirrortray::engine::watch::{Command, Start, Supervisor, Timings};
use tao::event_loop::EventLoopProxy;

use super::AppEvent;

/// What the loop asks of the workers.
#[derive(Debug, Clone)]
pub enum Ctl {
    Pause,
    Resume,
    BackupNow,
    /// Let pair `index` of generation `generation` delete what its guard holds.
    AllowMassDelete {
        generation: u64,
        index: usize,
    },
    /// The config file may have changed.
    Reload,
    Quit,
}

struct Running {
    sup: Supervisor,
    forwarder: Option<JoinHandle<()>>,
}

struct Control {
    config: PathBuf,
    proxy: EventLoopProxy<AppEvent>,
    generation: u64,
    running: Vec<Running>,
    current: Option<(Vec<PairSpec>, Timings)>,
    paused: bool,
    last_error: Option<String>,
}

/// Starts the control thread; `Ctl::Quit` (or dropping every sender) stops
/// the workers, and then `AppEvent::Stopped` is sent and the thread ends.
pub fn start(
    config: PathBuf,
    proxy: EventLoopProxy<AppEvent>,
) -> Result<(Sender<Ctl>, JoinHandle<()>), String> {
    let (tx, rx) = unbounded();
    let c = Control {
        config,
        proxy,
        generation: 0,
        running: Vec::new(),
        current: None,
        paused: false,
        last_error: None,
    };
    let thread = std::thread::Builder::new()
        .name("control".into())
        .spawn(move || c.run(rx))
        .map_err(|e| format!("cannot start the control thread: {e}"))?;
    Ok((tx, thread))
}

impl Control {
    fn run(mut self, rx: Receiver<Ctl>) {
        self.reload();
        for ctl in rx.iter() {
            match ctl {
                Ctl::Pause => {
                    self.paused = true;
                    self.send_all(Command::Pause);
                }
                Ctl::Resume => {
                    self.paused = false;
                    self.send_all(Command::Resume);
                }
                Ctl::BackupNow => self.send_all(Command::BackupNow),
                Ctl::AllowMassDelete { generation, index } => {
                    // An index of an older generation may name another pair now.
                    if let Some(r) = self
                        .running
                        .get(index)
                        .filter(|_| generation == self.generation)
                    {
                        r.sup.handle().send(Command::AllowMassDelete);
                    }
                }
                Ctl::Reload => self.reload(),
                Ctl::Quit => break,
            }
        }
        self.stop_all();
        log::info!("stopped");
        let _ = self.proxy.send_event(AppEvent::Stopped);
    }

    fn send_all(&self, cmd: Command) {
        for r in &self.running {
            r.sup.handle().send(cmd.clone());
        }
    }

    /// Reads the config and applies it.
    fn reload(&mut self) {
        let cfg = match config::load(&self.config) {
            Ok(c) => c,
            Err(e) => {
                let msg = e.to_string();
                if self.last_error.as_ref() != Some(&msg) {
                    log::error!("{msg}");
                    if !self.running.is_empty() {
                        log::info!(
                            "the folder pairs already running go on with the previous settings"
                        );
                    }
                    self.last_error = Some(msg.clone());
                    let _ = self.proxy.send_event(AppEvent::Config(Some(msg)));
                }
                if self.current.is_none() {
                    // Nothing to keep running: say so with an empty list.
                    self.start(Vec::new(), Timings::default());
                }
                return;
            }
        };
        if self.last_error.take().is_some() {
            let _ = self.proxy.send_event(AppEvent::Config(None));
        }
        let specs: Vec<PairSpec> = cfg.specs();
        let timings = Timings::from_settings(&cfg.settings);
        match &self.current {
            Some((s, t)) if *s == specs && *t == timings => {}
            Some((s, _)) if *s == specs => {
                log::info!("settings changed: new check intervals");
                self.send_all(Command::Timings(timings.clone()));
                self.current = Some((specs, timings));
            }
            previous => {
                if previous.is_some() {
                    log::info!(
                        "settings changed: restarting with {} folder pair{}",
                        specs.len(),
                        if specs.len() == 1 { "" } else { "s" }
                    );
                }
                self.start(specs, timings);
            }
        }
    }

    /// Stops what runs, then starts `specs` as a new generation.
    fn start(&mut self, specs: Vec<PairSpec>, timings: Timings) {
        self.stop_all();
        self.generation += 1;
        let generation = self.generation;
        // Before any worker runs, so the loop knows the pairs first.
        let pairs = specs
            .iter()
            .map(|s| (s.src.clone(), s.dst.clone()))
            .collect();
        let _ = self.proxy.send_event(AppEvent::Pairs { generation, pairs });
        // `create_dst` stays off: a configured backup folder that is missing
        // is most likely an unmounted drive; the pair waits for it.
        let opts = Options {
            command: "tray".into(),
            ..Options::default()
        };
        for (index, spec) in specs.iter().enumerate() {
            let (tx, rx) = unbounded();
            let sup = Supervisor::start(
                vec![Start::Spec(spec.clone())],
                opts.clone(),
                timings.clone(),
                tx,
            );
            if self.paused {
                sup.handle().send(Command::Pause);
            }
            let proxy = self.proxy.clone();
            let forwarder = std::thread::Builder::new()
                .name(format!("notices-{index}"))
                .spawn(move || {
                    for notice in rx.iter() {
                        if proxy
                            .send_event(AppEvent::Notice {
                                generation,
                                index,
                                notice: Box::new(notice),
                            })
                            .is_err()
                        {
                            break;
                        }
                    }
                })
                .map_err(|e| {
                    log::error!(
                        "cannot start a thread for the notices of {}: {e}",
                        mirrortray::engine::error::show(&spec.src)
                    )
                })
                .ok();
            self.running.push(Running { sup, forwarder });
        }
        self.current = Some((specs, timings));
    }

    /// Stops every worker cleanly and waits for them.
    fn stop_all(&mut self) {
        // Every worker hears Quit first, so they stop side by side.
        self.send_all(Command::Quit);
        for r in self.running.drain(..) {
            r.sup.quit();
            if let Some(f) = r.forwarder {
                let _ = f.join();
            }
        }
    }
}
