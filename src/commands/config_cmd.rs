//! config_cmd: `add`, `remove`, `config`. (being written)
use std::path::Path;
use crate::cli::Global;
use crate::exit_code::ExitCode;
pub fn add(_g: &Global, _src: &Path, _dst: &Path, _ignore: &[String], _no_versions: bool, _retention_days: Option<u32>) -> ExitCode {
    ExitCode::Error
}
pub fn remove(_g: &Global, _src: &Path) -> ExitCode {
    ExitCode::Error
}
pub fn show(_g: &Global) -> ExitCode {
    ExitCode::Error
}
