//! `mirrortray integrate [--remove]`: see `crate::integrate`.

use mirrortray::engine::error::show;

use crate::exit_code::ExitCode;

pub fn run(remove: bool) -> ExitCode {
    let report = match crate::integrate::apply(remove) {
        Ok(r) => r,
        Err(e) => {
            super::fail(e);
            return ExitCode::Error;
        }
    };
    for p in &report.changed {
        println!("{} {}", if remove { "removed" } else { "wrote" }, show(p));
    }
    for (p, why) in &report.failed {
        super::fail(format!("{}: {why}", show(p)));
    }
    if !remove {
        println!(
            "Right-click a file in Files (Scripts), Dolphin or Nemo: \"mirrortray: Previous versions…\"; on a folder: \"mirrortray: Restore missing files here…\". They open the page of the running mirrortray. Undo with `mirrortray integrate --remove`."
        );
    }
    if report.failed.is_empty() {
        ExitCode::Success
    } else {
        ExitCode::Partial
    }
}
