//! pairs: which folder pairs a command acts on: SRC DST from the command
//! line, or every pair of the config file.

use std::path::PathBuf;

use mirrortray::engine::config::{self, Config};
use mirrortray::engine::mirror::PairSpec;
use mirrortray::engine::watch::Timings;

use crate::cli::{Global, PairArgs};

/// The config file in use.
pub fn config_path(g: &Global) -> Result<PathBuf, String> {
    match &g.config {
        Some(p) => Ok(p.clone()),
        None => config::default_path().map_err(|e| e.to_string()),
    }
}

/// Loads the config in use (a missing file is an empty config).
pub fn load_config(g: &Global) -> Result<(PathBuf, Config), String> {
    let path = config_path(g)?;
    let cfg = config::load(&path).map_err(|e| e.to_string())?;
    Ok((path, cfg))
}

/// The pairs to act on. With SRC DST, the config only gives the settings
/// (a broken config then only warns).
pub fn specs(g: &Global, args: &PairArgs) -> Result<Vec<PairSpec>, String> {
    let mut specs = match (&args.src, &args.dst) {
        (Some(src), Some(dst)) => {
            let settings = match load_config(g) {
                Ok((_, c)) => c.settings,
                Err(e) => {
                    log::warn!("{e} (using default settings)");
                    Default::default()
                }
            };
            vec![settings.spec(src, dst)]
        }
        _ => {
            let (path, cfg) = load_config(g)?;
            if cfg.pairs.is_empty() {
                return Err(format!(
                    "no folder pairs in {}: give SRC DST, or add a pair with `mirrortray add SRC DST`",
                    mirrortray::engine::error::show(&path)
                ));
            }
            cfg.specs()
        }
    };
    for s in &mut specs {
        s.ignore.extend(args.ignore.iter().cloned());
        if args.no_versions {
            s.versions = false;
        }
    }
    Ok(specs)
}

/// The watcher's timings from the config's settings (defaults if none).
pub fn timings(g: &Global) -> Timings {
    let s = load_config(g).map(|(_, c)| c.settings).unwrap_or_default();
    Timings::from_settings(&s)
}
