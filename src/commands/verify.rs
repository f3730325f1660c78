//! verify: compare each pair's SRC and DST, change nothing, list the
//! differences (stdout, one line each) and a summary.
//!
//! Exit code: 0 the same, 1 different, 2 a pair could not be checked (bad
//! setup) or some entries could not be read (listed on stderr). With `-q`,
//! nothing but errors is printed: the exit code tells.

use mirrortray::engine::error::show;
use mirrortray::engine::verify::{DiffKind, Difference, Report, verify};

use crate::cli::{Global, PairArgs};
use crate::exit_code::ExitCode;

pub fn run(g: &Global, args: &PairArgs, checksum: bool) -> ExitCode {
    let specs = match super::pairs::specs(g, args) {
        Ok(s) => s,
        Err(e) => {
            super::fail(e);
            return ExitCode::Error;
        }
    };
    let many = specs.len() > 1;
    let mut worst = ExitCode::Success;
    for spec in &specs {
        let report = match verify(spec, checksum) {
            Ok(r) => r,
            Err(e) => {
                super::fail(e);
                worst = ExitCode::Error;
                continue;
            }
        };
        for e in &report.errors {
            super::fail(e);
        }
        if !g.quiet {
            print_report(&report, many);
        }
        let code = if !report.errors.is_empty() {
            ExitCode::Error
        } else if !report.differences.is_empty() {
            ExitCode::Partial
        } else {
            ExitCode::Success
        };
        worst = worse(worst, code);
    }
    worst
}

fn worse(a: ExitCode, b: ExitCode) -> ExitCode {
    if (b as u8) > (a as u8) { b } else { a }
}

fn print_report(r: &Report, many: bool) {
    if many {
        println!("{} -> {}", show(&r.src), show(&r.dst));
    }
    for s in &r.skipped {
        println!("{:<8} {}: {}", "skipped", show(&s.rel), s.why);
    }
    for d in &r.differences {
        println!("{:<8} {}", d.kind.label(), line(d));
    }
    println!("{}", summary(r));
}

/// What follows the label: the path, and both sides where they say more.
fn line(d: &Difference) -> String {
    let src = d.src.as_deref().unwrap_or("?");
    let dst = d.dst.as_deref().unwrap_or("?");
    let path = show(&d.rel);
    match d.kind {
        DiffKind::Missing => format!("{path}{}", slash(d.src.as_deref())),
        DiffKind::Extra => format!("{path}{}", slash(d.dst.as_deref())),
        DiffKind::Content => format!("{path}: bytes differ"),
        DiffKind::Target => format!("{path}: -> {src} in source, -> {dst} in backup"),
        DiffKind::Record => format!("{path}: {src} in source, {dst} in the record"),
        DiffKind::Type
        | DiffKind::Size
        | DiffKind::Mtime
        | DiffKind::Mode
        | DiffKind::Owner
        | DiffKind::Xattrs
        | DiffKind::Link => {
            format!("{path}: {src} in source, {dst} in backup")
        }
    }
}

/// Folders are shown with a trailing `/`; other non-files with their kind.
fn slash(noun: Option<&str>) -> String {
    match noun {
        Some("folder") => "/".into(),
        Some("file") | None => String::new(),
        Some(other) => format!(" ({other})"),
    }
}

fn summary(r: &Report) -> String {
    let n = r.differences.len();
    let mut out = if n == 0 && r.errors.is_empty() {
        format!("same: {} compared", entries(r.compared))
    } else if n == 0 {
        format!("no differences found ({} compared)", entries(r.compared))
    } else {
        let word = if n == 1 { "difference" } else { "differences" };
        format!("{n} {word} ({} compared)", entries(r.compared))
    };
    if !r.errors.is_empty() {
        let k = r.errors.len();
        out.push_str(&format!(
            "; {k} {} could not be read (see the errors), so the comparison is incomplete",
            if k == 1 { "entry" } else { "entries" }
        ));
    }
    if r.granularity_ns > 1 {
        out.push_str(&format!(
            "; times compared to {}, as precisely as the backup's file system keeps them",
            precision(r.granularity_ns)
        ));
    }
    if r.times_out_of_range > 0 {
        let k = r.times_out_of_range;
        out.push_str(&format!(
            "; {k} {} dated beyond what the backup's file system can store, kept as the nearest date it can",
            if k == 1 { "entry is" } else { "entries are" }
        ));
    }
    out
}

fn entries(n: u64) -> String {
    if n == 1 {
        "1 entry".into()
    } else {
        format!("{n} entries")
    }
}

fn precision(ns: u32) -> String {
    match ns {
        n if n >= 1_000_000_000 => "the second".into(),
        n if n >= 1_000_000 => format!("{} ms", n / 1_000_000),
        n if n >= 1_000 => format!("{} µs", n / 1_000),
        n => format!("{n} ns"),
    }
}
