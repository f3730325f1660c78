//! mirrortray: parse the command line, run the command, map to an exit code.

#[cfg(feature = "tray")]
mod app;
mod cli;
mod commands;
mod exit_code;
mod integrate;
mod logging;
mod page;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // --help and --version are not errors.
            let code = if e.use_stderr() {
                exit_code::ExitCode::Error
            } else {
                exit_code::ExitCode::Success
            };
            let _ = e.print();
            return code.into();
        }
    };
    commands::run(cli).into()
}
