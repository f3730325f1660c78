//! config: the folder pairs and settings, in a TOML file (confy, platform
//! config dir; `--config FILE` overrides).
//!
//! STUB: load/save/error reporting are being written; the types are the API.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::mirror::PairSpec;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub settings: Settings,
    #[serde(default, rename = "pair")]
    pub pairs: Vec<PairConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Days to keep versions (per pair overridable).
    pub retention_days: u32,
    /// Minutes between light drift checks while watching.
    pub drift_check_minutes: u64,
    /// Hours without a successful backup before the user is alerted.
    pub alert_after_hours: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            retention_days: 30,
            drift_check_minutes: 60,
            alert_after_hours: 24,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairConfig {
    pub src: PathBuf,
    pub dst: PathBuf,
    #[serde(default)]
    pub ignore: Vec<String>,
    #[serde(default = "yes")]
    pub versions: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
}

fn yes() -> bool {
    true
}

impl PairConfig {
    pub fn spec(&self, settings: &Settings) -> PairSpec {
        PairSpec {
            src: self.src.clone(),
            dst: self.dst.clone(),
            ignore: self.ignore.clone(),
            versions: self.versions,
            retention_days: self.retention_days.unwrap_or(settings.retention_days),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {}", .0.display(), .1)]
    Bad(PathBuf, String),
}

pub fn default_path() -> Result<PathBuf, ConfigError> {
    confy::get_configuration_file_path("mirrortray", "config")
        .map_err(|e| ConfigError::Bad(PathBuf::from("config"), e.to_string()))
}

pub fn load(path: &Path) -> Result<Config, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| ConfigError::Bad(path.to_path_buf(), e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(e) => Err(ConfigError::Bad(path.to_path_buf(), e.to_string())),
    }
}
