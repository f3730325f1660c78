//! watch: headless live mirroring until SIGINT/SIGTERM.
//!
//! Every pair is checked and opened first: a bad setup exits 2 before
//! anything is watched. Then one worker per pair mirrors live; notices are
//! logged. On a signal the workers finish or abandon what is in flight,
//! remove their temp files and release their locks; exit 0.

use crossbeam_channel::unbounded;
use mirrortray::engine::error::show;
use mirrortray::engine::mirror::{Mirror, Options};
use mirrortray::engine::status_file::StatusFile;
use mirrortray::engine::watch::{Command, Notice, Start, State, Supervisor};

use crate::cli::{Global, PairArgs};
use crate::exit_code::ExitCode;

pub fn run(g: &Global, args: &PairArgs, allow_mass_delete: bool) -> ExitCode {
    let specs = match super::pairs::specs(g, args) {
        Ok(s) => s,
        Err(e) => {
            super::fail(e);
            return ExitCode::Error;
        }
    };
    let timings = super::pairs::timings(g);
    let opts = Options {
        dry_run: false,
        allow_mass_delete,
        command: "watch".into(),
        create_dst: args.src.is_some(),
        live: true,
    };
    // Signals are turned into a Quit for every worker. Listened for before
    // the pairs are opened: opening writes (the probe of what the backup
    // drive keeps), and a SIGTERM then would kill the process mid-write;
    // one that comes early is kept until the workers run.
    let signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ]);
    let mut signals = match signals {
        Ok(s) => s,
        Err(e) => {
            super::fail(format!("cannot listen for signals: {e}"));
            return ExitCode::Error;
        }
    };
    let mut starts = Vec::new();
    for spec in &specs {
        match Mirror::open(spec, &opts) {
            Ok(m) => starts.push(Start::Opened(Box::new(m))),
            Err(e) => {
                super::fail(e);
                return ExitCode::Error;
            }
        }
    }
    let (tx, rx) = unbounded();
    let sup = Supervisor::start(starts, opts, timings, tx);
    let handle = sup.handle();
    let sig_handle = signals.handle();
    let sig_thread = std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            log::info!("signal {sig}: stopping");
            handle.send(Command::Quit);
        }
    });
    let mut running = sup.len();
    let mut announced = vec![false; sup.len()];
    // For `mirrortray status`; removed when this returns.
    let mut status = StatusFile::new("watch");
    status.reset(sup.len());
    // The local page: browsing and restoring while this runs. Backing up
    // goes on without it.
    let home = directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf());
    let names = mirrortray::engine::words::pair_names(
        specs.iter().map(|s| s.src.as_path()),
        home.as_deref(),
    );
    let roots = specs
        .iter()
        .zip(names)
        .map(|(s, name)| crate::page::Roots {
            name,
            src: s.src.clone(),
            dst: s.dst.clone(),
        })
        .collect();
    let _page = match crate::page::Page::start(g, roots, status.view()) {
        Ok(p) => Some(p),
        Err(e) => {
            log::warn!("{e}; backing up goes on without the page");
            None
        }
    };
    for n in rx.iter() {
        match &n {
            Notice::Status(s) => status.set(s),
            Notice::Offsite(o) => status.set_offsite(o),
            _ => {}
        }
        match n {
            Notice::Stopped { .. } => {
                running -= 1;
                if running == 0 {
                    break;
                }
            }
            Notice::Status(s) if !announced[s.index] && s.last_ok.is_some() => {
                let how = match &s.state {
                    State::Idle => "watching for changes".to_string(),
                    State::Degraded(why) => why.clone(),
                    _ => continue,
                };
                announced[s.index] = true;
                log::info!("{} -> {}: mirrored; {how}", show(&s.src), show(&s.dst));
            }
            // Everything else was logged by the worker where it happened.
            _ => {}
        }
    }
    sup.quit();
    sig_handle.close();
    let _ = sig_thread.join();
    ExitCode::Success
}
