//! status: what every running tray or `watch` of this user is doing, read
//! from the status files they keep (see `engine::status_file`).
//!
//! Exit codes: 0 every pair up to date, 1 something outstanding (a problem,
//! failing files, changes being copied, paused, starting, no pairs at all),
//! 2 no instance running.

use std::path::Path;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use mirrortray::engine::error::show;
use mirrortray::engine::status_file::{self, Instance};

use crate::exit_code::ExitCode;

pub fn run(json: bool) -> ExitCode {
    let running = status_file::running();
    if json {
        let out = serde_json::json!({ "instances": running });
        println!("{out}");
    }
    if running.is_empty() {
        if !json {
            eprintln!(
                "mirrortray: no mirrortray is running (start the tray with `mirrortray`, or `mirrortray watch`)"
            );
        }
        return ExitCode::Error;
    }
    if !json {
        let tz = TimeZone::system();
        for i in &running {
            print_instance(i, &tz);
        }
    }
    let all_ok = running.iter().all(Instance::up_to_date);
    if all_ok {
        ExitCode::Success
    } else {
        ExitCode::Partial
    }
}

fn print_instance(i: &Instance, tz: &TimeZone) {
    println!(
        "mirrortray {} (pid {}), updated {}",
        i.kind,
        i.pid,
        local(&i.updated, tz)
    );
    match (i.pairs.is_empty(), i.starting) {
        (true, 0) => println!("  no folder pairs yet"),
        (_, 0) => {}
        (_, 1) => println!("  1 pair starting"),
        (_, n) => println!("  {n} pairs starting"),
    }
    let now = jiff::ZonedDateTime::now().with_time_zone(tz.clone());
    for p in &i.pairs {
        let mut line = format!(
            "  {} -> {}: {}",
            show(Path::new(&p.src)),
            show(Path::new(&p.dst)),
            p.headline
        );
        if p.up_to_date
            && let Some(t) = &p.last_ok
        {
            line.push_str(&format!(" · {}", local(t, tz)));
        }
        println!("{line}");
        if let Some(o) = &p.offsite {
            println!("    {} ({})", o.status().line(&now), o.repository);
        }
        if let Some(t) = &p.verified_at {
            println!("    verified exact at {}", local(t, tz));
        }
        for f in &p.failures {
            println!(
                "    {}: {} (since {})",
                show(Path::new(&f.path)),
                f.reason,
                local(&f.since, tz)
            );
        }
        for b in &p.being_written {
            println!(
                "    {}: being written by another program; copied when it is closed or quiet",
                show(Path::new(b))
            );
        }
        if p.failing > p.failures.len() {
            println!("    … and {} more", p.failing - p.failures.len());
        }
    }
}

/// An RFC 3339 time as local date and time, to the second.
fn local(t: &str, tz: &TimeZone) -> String {
    match t.parse::<Timestamp>() {
        Ok(ts) => ts
            .to_zoned_datetime(tz.clone())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Err(_) => t.to_string(),
    }
}
