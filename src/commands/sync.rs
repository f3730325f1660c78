//! sync: one reconcile of each pair, then exit.

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
    let mut worst = ExitCode::Success;
    for spec in &specs {
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
        let ctl = Control::new();
        let result = mirror
            .reconcile(&ctl, &sink, allow_mass_delete)
            .map(|a| a.summary);
        sink.finish();
        let summary: Summary = match result {
            Ok(s) => s,
            Err(e) => {
                super::fail(e);
                worst = ExitCode::Error;
                continue;
            }
        };
        if !dry_run {
            match mirror.prune_versions() {
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
    worst
}
