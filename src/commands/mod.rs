//! commands: one module per command; each returns an exit code.

mod config_cmd;
mod generate;
mod integrate;
mod offsite;
pub mod pairs;
mod progress;
pub mod restore;
mod status;
mod sync;
mod ui;
mod verify;
mod versions;
mod watch;

use crate::cli::{Cli, Command};
use crate::exit_code::ExitCode;
use crate::logging;

pub fn run(cli: Cli) -> ExitCode {
    raise_open_file_limit();
    let g = cli.global.clone();
    match cli.command {
        Some(Command::Sync {
            pair,
            dry_run,
            allow_mass_delete,
        }) => {
            logging::init(&g, true);
            sync::run(&g, &pair, dry_run, allow_mass_delete)
        }
        Some(Command::Verify { pair, checksum }) => {
            logging::init(&g, true);
            verify::run(&g, &pair.into(), checksum)
        }
        Some(Command::Add {
            src,
            dst,
            ignore,
            no_versions,
            retention_days,
            adopt,
        }) => {
            logging::init(&g, true);
            config_cmd::add(&g, &src, &dst, &ignore, no_versions, retention_days, adopt)
        }
        Some(Command::Remove { src }) => {
            logging::init(&g, true);
            config_cmd::remove(&g, &src)
        }
        Some(Command::Config) => {
            logging::init(&g, true);
            config_cmd::show(&g)
        }
        Some(Command::Watch {
            pair,
            allow_mass_delete,
        }) => {
            logging::init(&g, true);
            watch::run(&g, &pair, allow_mass_delete)
        }
        Some(Command::Tray) | None => {
            #[cfg(feature = "tray")]
            match crate::app::open_display() {
                Ok(()) => {
                    let (page, link) = tray_page(&g);
                    let code = crate::app::run(&g, pairs::config_path(&g), link);
                    drop(page);
                    return code;
                }
                Err(why) => eprintln!(
                    "mirrortray: {why}; running headless without the tray (stop with Ctrl-C)"
                ),
            }
            #[cfg(not(feature = "tray"))]
            eprintln!("mirrortray: built without the tray; running headless (stop with Ctrl-C)");
            logging::init(&g, true);
            watch::run(&g, &crate::cli::PairArgs::default(), false)
        }
        Some(Command::Versions { path, json, stats }) => {
            logging::init(&g, true);
            versions::run(&g, path.as_deref(), json, stats)
        }
        Some(Command::Status { json }) => {
            logging::init(&g, true);
            status::run(json)
        }
        Some(Command::Integrate { remove }) => {
            logging::init(&g, true);
            integrate::run(remove)
        }
        Some(Command::Ui { path, print_url }) => {
            logging::init(&g, true);
            ui::run(path.as_deref(), print_url)
        }
        Some(Command::Offsite(cmd)) => {
            logging::init(&g, true);
            offsite::run(&g, cmd)
        }
        Some(Command::Generate { what, dir }) => generate::run(what, &dir),
        Some(Command::Restore {
            path,
            at,
            to,
            dry_run,
        }) => {
            logging::init(&g, true);
            restore::run(&g, &path, at.as_deref(), to.as_deref(), dry_run)
        }
    }
}

/// The tray's local page, and what the tray needs of it (`None` when it
/// could not start: the tray then opens the versions folder instead).
#[cfg(feature = "tray")]
fn tray_page(g: &crate::cli::Global) -> (Option<crate::page::Page>, Option<crate::app::PageLink>) {
    let status = mirrortray::engine::status_file::StatusView::default();
    let page = match crate::page::Page::start(g, Vec::new(), status.clone()) {
        Ok(p) => p,
        Err(e) => {
            log::warn!("{e}; the tray runs without it");
            return (None, None);
        }
    };
    let set = page.pairs_setter();
    let link = crate::app::PageLink {
        origin: page.origin(),
        token: page.token(),
        status,
        set_pairs: Box::new(move |pairs| {
            set(pairs
                .into_iter()
                .map(|(name, src, dst)| crate::page::Roots { name, src, dst })
                .collect())
        }),
    };
    (Some(page), Some(link))
}

/// Prints an error for people: `mirrortray: <sentence>`.
pub fn fail(msg: impl std::fmt::Display) {
    log::error!("{msg}");
}

/// A walk keeps two folder handles open per level of the folder it is in
/// (and a watch one per folder it adds): the usual soft limit of 1024 open
/// files is raised to the hard limit (at most a million), as file managers
/// and build tools do, so deep trees do not run out.
fn raise_open_file_limit() {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let mut l = getrlimit(Resource::Nofile);
        let want = l.maximum.map_or(1 << 20, |m| m.min(1 << 20));
        if l.current.is_some_and(|c| c < want) {
            l.current = Some(want);
            let _ = setrlimit(Resource::Nofile, l);
        }
    }
}
