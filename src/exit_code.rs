//! exit_code: what the process returns (fd's `exit_codes.rs`).

/// Exit codes, as README.md documents them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Mirrored / the same / done.
    Success = 0,
    /// Some entries failed or differ (each listed), or deletions were held.
    Partial = 1,
    /// Bad setup: nothing was done.
    Error = 2,
    /// Stopped by SIGINT (Ctrl-C), cleanly: what was copied is complete.
    Interrupted = 130,
    /// Stopped by SIGTERM, cleanly.
    Terminated = 143,
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(c: ExitCode) -> Self {
        std::process::ExitCode::from(c as u8)
    }
}
