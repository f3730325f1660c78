//! verify: compare, change nothing. (being written)
use crate::cli::{Global, PairArgs};
use crate::exit_code::ExitCode;
pub fn run(_g: &Global, _args: &PairArgs, _checksum: bool) -> ExitCode {
    ExitCode::Error
}
