//! logging: the log file (platform state dir, or `--log-file`) and the
//! terminal. Every error line names the path and the reason; the engine
//! logs through the `log` facade and never prints.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use simplelog::{
    ColorChoice, CombinedLogger, ConfigBuilder, LevelFilter, SharedLogger, TermLogger,
    TerminalMode, WriteLogger,
};

use crate::cli::Global;

/// The default log file: `$XDG_STATE_HOME/mirrortray/mirrortray.log` on
/// Linux (the original script's `dev.log`, in a place that survives).
pub fn default_log_path() -> Option<PathBuf> {
    Some(mirrortray::engine::paths::state_dir()?.join("mirrortray.log"))
}

/// The log file in use.
pub fn log_path(g: &Global) -> Option<PathBuf> {
    g.log_file.clone().or_else(default_log_path)
}

/// Starts logging. `terminal` is false for the tray app (no terminal to
/// speak to). A log file that cannot be opened is reported, not fatal.
pub fn init(g: &Global, terminal: bool) {
    let term_level = if g.quiet {
        LevelFilter::Error
    } else {
        match g.verbose {
            0 => LevelFilter::Warn,
            1 => LevelFilter::Info,
            2 => LevelFilter::Debug,
            _ => LevelFilter::Trace,
        }
    };
    let file_level = match g.verbose {
        0 | 1 => LevelFilter::Info,
        2 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    };
    let config = ConfigBuilder::new()
        .set_time_format_rfc3339()
        .set_target_level(LevelFilter::Off)
        .set_thread_level(LevelFilter::Off)
        .add_filter_allow_str("mirrortray")
        .build();
    let term_config = ConfigBuilder::new()
        .set_time_level(LevelFilter::Off)
        .set_target_level(LevelFilter::Off)
        .set_thread_level(LevelFilter::Off)
        .add_filter_allow_str("mirrortray")
        .build();
    let mut loggers: Vec<Box<dyn SharedLogger>> = Vec::new();
    if terminal {
        use std::io::IsTerminal;
        let color = if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
            ColorChoice::Auto
        } else {
            ColorChoice::Never
        };
        loggers.push(TermLogger::new(
            term_level,
            term_config,
            TerminalMode::Stderr,
            color,
        ));
    }
    let mut file_problem = None;
    if let Some(path) = log_path(g) {
        match open_log(&path) {
            // simplelog writes a line in many small pieces: one write(2)
            // per line keeps lines whole when two processes share the log.
            Ok(f) => loggers.push(WriteLogger::new(
                file_level,
                config,
                std::io::LineWriter::new(f),
            )),
            Err(e) => file_problem = Some((path, e)),
        }
    }
    let _ = CombinedLogger::init(loggers);
    if let Some((path, e)) = file_problem {
        log::warn!(
            "{}: cannot open the log file: {}; logging to the terminal only (use --log-file FILE)",
            mirrortray::engine::error::show(&path),
            mirrortray::engine::error::reason(&e)
        );
    }
}

fn open_log(path: &Path) -> std::io::Result<std::fs::File> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}
