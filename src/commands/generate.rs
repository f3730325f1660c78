//! generate: the man pages and shell completions, made from the same clap
//! definition as `--help` (so they cannot disagree with it). Hidden: the
//! package build runs it (`scripts/package.sh`); people read the results.

use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, Generated};
use crate::exit_code::ExitCode;
use mirrortray::engine::error::show;

pub fn run(what: Generated, dir: &Path) -> ExitCode {
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("mirrortray: cannot create {}: {e}", show(dir));
        return ExitCode::Error;
    }
    let mut cmd = Cli::command();
    let written = match what {
        Generated::Man => man_pages(cmd, dir),
        Generated::Completions => [Shell::Bash, Shell::Zsh, Shell::Fish]
            .into_iter()
            .map(|shell| clap_complete::generate_to(shell, &mut cmd, "mirrortray", dir))
            .collect::<std::io::Result<Vec<_>>>(),
    };
    match written {
        Ok(files) => {
            for f in files {
                println!("{}", show(&f));
            }
            ExitCode::Success
        }
        Err(e) => {
            eprintln!("mirrortray: cannot write into {}: {e}", show(dir));
            ExitCode::Error
        }
    }
}

/// `mirrortray.1`, then `mirrortray-COMMAND.1` for each command people use
/// (the hidden ones left out, as `--help` leaves them out).
fn man_pages(cmd: clap::Command, dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    clap_mangen::generate_to(cmd, dir)?;
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "1"))
        .collect();
    files.sort();
    Ok(files)
}
