//! ui: `mirrortray ui [--print-url]`: the running instance's local page.
//!
//! A running tray or `watch` writes its page's address, with its key, to a
//! file only the user can read (`page::url_file`); the instances are found
//! the way `mirrortray status` finds them. With several running, the oldest
//! is opened (the others are named).

use mirrortray::engine::status_file::running;

use crate::exit_code::ExitCode;

pub fn run(path: Option<&std::path::Path>, print_url: bool) -> ExitCode {
    let urls: Vec<(u32, String)> = running()
        .iter()
        .filter_map(|i| {
            let text = std::fs::read_to_string(crate::page::url_file(i.pid)).ok()?;
            Some((i.pid, text.trim().to_string()))
        })
        .filter(|(_, u)| u.starts_with("http://127.0.0.1:"))
        .collect();
    let Some((pid, url)) = urls.first() else {
        super::fail(
            "no mirrortray is running with its page: start the tray (`mirrortray`) or `mirrortray watch`",
        );
        return ExitCode::Error;
    };
    let url = match path {
        None => url.clone(),
        Some(p) => {
            let abs = match std::path::absolute(p) {
                Ok(a) => a,
                Err(e) => {
                    super::fail(format!("{}: {e}", mirrortray::engine::error::show(p)));
                    return ExitCode::Error;
                }
            };
            let (origin, token) = url.split_once("/?token=").unwrap_or((url, ""));
            let q: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("path", &abs.to_string_lossy())
                .append_pair("token", token)
                .finish();
            format!("{origin}/open?{q}")
        }
    };
    let url = &url;
    for (other, _) in &urls[1..] {
        log::warn!("another mirrortray (process {other}) has a page too; showing process {pid}'s");
    }
    if print_url {
        println!("{url}");
        return ExitCode::Success;
    }
    open(url)
}

#[cfg(feature = "tray")]
fn open(url: &str) -> ExitCode {
    match opener::open_browser(url) {
        Ok(()) => ExitCode::Success,
        Err(e) => {
            super::fail(format!(
                "cannot open a web browser ({e}); open this address in one: {url}"
            ));
            ExitCode::Error
        }
    }
}

#[cfg(not(feature = "tray"))]
fn open(url: &str) -> ExitCode {
    println!("Open this address in a web browser: {url}");
    ExitCode::Success
}
