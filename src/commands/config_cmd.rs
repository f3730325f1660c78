//! config_cmd: `add`, `remove`, `config` — edit or show the config file.
//!
//! Paths are made absolute (and resolved through symlinks) here, at the
//! edge, with the engine's own rules: `add` refuses what `sync` would refuse
//! (a missing SRC, SRC and DST overlapping) with the engine's message, so a
//! pair that is in the config can be mirrored. Every edit goes through
//! [`config::update`]: a config that does not parse is never overwritten, and
//! the file is replaced atomically. Each command prints the config file's
//! path, so the user knows which file was read or changed.

use std::path::{Path, PathBuf};

use mirrortray::engine::config::{self, Config, ConfigError, PairConfig};
use mirrortray::engine::error::{reason, show as shown};
use mirrortray::engine::paths;

use super::fail;
use super::pairs::config_path;
use crate::cli::Global;
use crate::exit_code::ExitCode;

/// `mirrortray add SRC DST`.
pub fn add(
    g: &Global,
    src: &Path,
    dst: &Path,
    ignore: &[String],
    no_versions: bool,
    retention_days: Option<u32>,
    adopt: bool,
) -> ExitCode {
    let path = match file(g) {
        Ok(p) => p,
        Err(e) => return error(e),
    };
    let result = config::add_pair(&path, src, dst, ignore, !no_versions, retention_days, adopt);
    match result {
        Ok((pair, default_retention)) => {
            if !g.quiet {
                println!("Added {}", pair.label());
                println!("  ignore: {}", ignore_list(&pair, false));
                println!("  {}", describe_options(&pair, default_retention));
                println!("Config file: {}", shown(&path));
                println!("{}", next_step(&mirrortray::engine::status_file::running()));
            }
            ExitCode::Success
        }
        Err(e) => error(e),
    }
}

/// What happens next to a pair just added: a running tray picks it up by
/// itself (a `sync` would only find its backup folder in use).
fn next_step(running: &[mirrortray::engine::status_file::Instance]) -> String {
    if let Some(t) = running.iter().find(|i| i.kind == "tray") {
        return format!(
            "The running tray (process {}) backs it up now; its menu shows how it goes.",
            t.pid
        );
    }
    match running.iter().find(|i| i.kind == "watch") {
        Some(w) => format!(
            "The running `mirrortray watch` (process {}) backs it up from its next start; `mirrortray sync` backs it up now.",
            w.pid
        ),
        None => "Run `mirrortray sync` to back it up now, or start the tray (`mirrortray`) to keep it backed up.".into(),
    }
}

/// `mirrortray remove SRC`.
pub fn remove(g: &Global, src: &Path) -> ExitCode {
    let path = match file(g) {
        Ok(p) => p,
        Err(e) => return error(e),
    };
    // The source may be gone (an old drive): match the absolute path as
    // given too, not only the resolved one.
    let abs = match paths::absolute(src) {
        Ok(p) => p,
        Err(e) => return error(format!("{}: {}", shown(src), reason(&e))),
    };
    let result = config::update(&path, |cfg: &mut Config| {
        let found = cfg.find_src(&abs);
        if found.is_empty() {
            let sources: Vec<String> = cfg.pairs.iter().map(|p| shown(&p.src)).collect();
            let listed = if sources.is_empty() {
                "There are no pairs in it".to_string()
            } else {
                format!("The configured sources are: {}", sources.join(", "))
            };
            return Err(refused(
                &path,
                format!("no pair has the source folder {}. {listed}", shown(&abs)),
            ));
        }
        let mut removed = Vec::new();
        for i in found.into_iter().rev() {
            removed.push(cfg.pairs.remove(i));
        }
        removed.reverse();
        Ok(removed)
    });
    match result {
        Ok(removed) => {
            if !g.quiet {
                for p in &removed {
                    println!("Removed {}", p.label());
                    println!(
                        "  The backup folder {} was left as it is (delete it yourself if you no longer need it).",
                        shown(&p.dst)
                    );
                }
                println!("Config file: {}", shown(&path));
            }
            ExitCode::Success
        }
        Err(e) => error(e),
    }
}

/// `mirrortray config`.
pub fn show(g: &Global) -> ExitCode {
    let path = match file(g) {
        Ok(p) => p,
        Err(e) => return error(e),
    };
    let exists = path.exists();
    if exists {
        println!("Config file: {}", shown(&path));
    } else {
        println!("Config file: {} (not created yet)", shown(&path));
    }
    let cfg = match config::load(&path) {
        Ok(c) => c,
        Err(e) => return error(e),
    };
    let s = &cfg.settings;
    println!(
        "Settings: versions kept {} days, drift check every {} minutes, alert after {} hours without a backup",
        s.retention_days, s.drift_check_minutes, s.alert_after_hours
    );
    println!();
    if cfg.pairs.is_empty() {
        println!("No folder pairs yet. Add one with `mirrortray add SRC DST`.");
        return ExitCode::Success;
    }
    for p in &cfg.pairs {
        // A missing source is not a config error (an unplugged drive), but
        // worth saying: `sync` will refuse the pair until it is back.
        if p.src.is_dir() {
            println!("{}", p.label());
        } else {
            println!("{}  (source folder not found: unmounted?)", p.label());
        }
        println!("  ignore: {}", ignore_list(p, s.ignore_temporary_files));
        println!("  {}", describe_options(p, s.retention_days));
    }
    ExitCode::Success
}

/// The config file in use, absolute (it is printed for the user to open).
fn file(g: &Global) -> Result<PathBuf, String> {
    let path = config_path(g)?;
    Ok(paths::absolute(&path).unwrap_or(path))
}

/// `versions: on, kept 30 days` / `versions: off`.
fn describe_options(p: &PairConfig, default_retention: u32) -> String {
    if p.versions {
        format!(
            "versions: on, kept {} days",
            p.retention_days.unwrap_or(default_retention)
        )
    } else {
        "versions: off (what the backup loses is deleted, not kept)".to_string()
    }
}

/// The pair's own patterns, and the temporary files of well-known
/// programs when the settings leave those out too.
fn ignore_list(p: &PairConfig, temporary: bool) -> String {
    match (p.ignore.is_empty(), temporary) {
        (true, false) => "nothing".to_string(),
        (true, true) => TEMPORARY_WORDS.to_string(),
        (false, false) => p.ignore.join(", "),
        (false, true) => format!("{}, and {TEMPORARY_WORDS}", p.ignore.join(", ")),
    }
}

const TEMPORARY_WORDS: &str =
    "temporary files of well-known programs (lock, swap, .part; ignore_temporary_files)";

/// Whether two paths name the same place once resolved.
fn refused(path: &Path, what: String) -> ConfigError {
    ConfigError::Refused {
        path: path.to_path_buf(),
        what,
    }
}

fn error(e: impl std::fmt::Display) -> ExitCode {
    fail(e);
    ExitCode::Error
}
