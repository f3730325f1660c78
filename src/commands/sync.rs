//! sync: one reconcile of each pair, then exit.
//!
//! SIGINT or SIGTERM stops it cleanly, as `watch` stops: the copy under way
//! is abandoned (every file in DST is whole: copies are renamed into place
//! only when complete), temp files are removed, the lock is released, one
//! line says what was done, and the exit code is the shell's for that
//! signal (130, 143). A second signal kills at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Instant;

use mirrortray::engine::error::show;
use mirrortray::engine::event::{Control, Summary};
use mirrortray::engine::mirror::{Mirror, Options};

use super::progress::{CliSink, summary_line};
use crate::cli::{Global, PairArgs};
use crate::exit_code::ExitCode;

pub fn run(g: &Global, args: &PairArgs, dry_run: bool, allow_mass_delete: bool) -> ExitCode {
    let specs = match super::pairs::specs(g, args) {
        Ok(s) => s,
        Err(e) => {
            super::fail(e);
            return ExitCode::Error;
        }
    };
    let opts = Options {
        dry_run,
        allow_mass_delete,
        command: "sync".into(),
        create_dst: args.src.is_some(),
        live: false,
    };
    let ctl = Arc::new(Control::new());
    let caught = Arc::new(AtomicI32::new(0));
    let signals = match stop_on_signals(&ctl, &caught) {
        Ok(s) => s,
        Err(e) => {
            super::fail(format!("cannot listen for signals: {e}"));
            return ExitCode::Error;
        }
    };
    let mut worst = ExitCode::Success;
    for spec in &specs {
        if ctl.stopped() {
            break;
        }
        let start = Instant::now();
        let mirror = match Mirror::open(spec, &opts) {
            Ok(m) => m,
            Err(e) => {
                super::fail(e);
                worst = ExitCode::Error;
                continue;
            }
        };
        let sink = CliSink::new(g, mirror.src(), mirror.dst(), dry_run);
        if sink.shows_bar() {
            // The bar's total: a walk that writes nothing, before the pass.
            if let Ok(work) = mirror.survey(&ctl) {
                sink.set_total(work.copied, work.bytes);
            }
        }
        let result = mirror
            .reconcile(&ctl, &sink, allow_mass_delete)
            .map(|a| a.summary);
        sink.finish();
        let sig = caught.load(Ordering::SeqCst);
        if sig != 0 {
            mirror.clean_tmp();
            let done = match &result {
                Ok(s) => summary_line(s, start.elapsed(), dry_run),
                Err(_) => "nothing done yet".into(),
            };
            eprintln!(
                "{}: stopped by {}: {done}. Every file copied is complete; run again to finish.",
                show(mirror.src()),
                signal_name(sig)
            );
            worst = if sig == signal_hook::consts::SIGTERM {
                ExitCode::Terminated
            } else {
                ExitCode::Interrupted
            };
            break;
        }
        let summary: Summary = match result {
            Ok(s) => s,
            Err(e) => {
                super::fail(e);
                worst = ExitCode::Error;
                continue;
            }
        };
        if !dry_run {
            match mirror.prune_versions(&sink) {
                Ok(0) => {}
                Ok(n) => log::info!(
                    "{}: pruned {n} version folders older than {} days",
                    show(&mirror.versions_path()),
                    spec.retention_days
                ),
                Err(e) => log::warn!(
                    "{}: cannot prune old versions: {}",
                    show(&mirror.versions_path()),
                    mirrortray::engine::error::reason(&e)
                ),
            }
        }
        if !g.quiet {
            let prefix = if specs.len() > 1 {
                format!("{} -> {}: ", show(mirror.src()), show(mirror.dst()))
            } else {
                String::new()
            };
            println!(
                "{prefix}{}",
                summary_line(&summary, start.elapsed(), dry_run)
            );
        }
        if !summary.clean() && worst == ExitCode::Success {
            worst = ExitCode::Partial;
        }
    }
    signals.close();
    worst
}

/// Stops `ctl` at the first SIGINT or SIGTERM (recorded in `caught`); a
/// second one kills the process as if nothing had been installed.
fn stop_on_signals(
    ctl: &Arc<Control>,
    caught: &Arc<AtomicI32>,
) -> std::io::Result<signal_hook::iterator::Handle> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    let handle = signals.handle();
    let (ctl, caught) = (Arc::clone(ctl), Arc::clone(caught));
    std::thread::spawn(move || {
        for sig in signals.forever() {
            if caught.swap(sig, Ordering::SeqCst) != 0 {
                let _ = signal_hook::low_level::emulate_default_handler(sig);
            }
            log::info!("{}: stopping", signal_name(sig));
            ctl.stop();
        }
    });
    Ok(handle)
}

fn signal_name(sig: i32) -> &'static str {
    if sig == signal_hook::consts::SIGTERM {
        "SIGTERM"
    } else {
        "SIGINT (Ctrl-C)"
    }
}
