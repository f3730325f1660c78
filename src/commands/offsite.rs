//! offsite: `mirrortray offsite init|push|snapshots|restore|check`, the
//! offsite copies of the configured pairs (`engine::offsite`).
//!
//! Without SRC, a command acts on every pair whose config has an
//! `offsite = { ... }` table. Exit codes: 0 done for every pair; 1 some
//! pairs done and some not, or `check` found damage; 2 nothing done (bad
//! config, no such pair, or the repository failed: wrong password,
//! unreachable, ...), each failure one sentence naming the repository and
//! the reason.

use std::path::{Path, PathBuf};

use indicatif::HumanBytes;

use mirrortray::engine::config::{Config, PairConfig};
use mirrortray::engine::error::show;
use mirrortray::engine::offsite::{Init, Offsite, OffsiteError, Reason};
use mirrortray::engine::{paths, words};

use super::versions::{both, parse_time};
use crate::cli::{Global, OffsiteCommand};
use crate::exit_code::ExitCode;

pub fn run(g: &Global, cmd: OffsiteCommand) -> ExitCode {
    match cmd {
        OffsiteCommand::Init { src } => each(g, src.as_deref(), |o, name| {
            let what = o.init()?;
            if !g.quiet {
                match what {
                    Init::Created => {
                        println!("{name}: created the restic repository {}", o.repository())
                    }
                    Init::Existing => println!(
                        "{name}: {} is a restic repository already and the password opens it; using it",
                        o.repository()
                    ),
                }
            }
            Ok(Done::Ok)
        }),
        OffsiteCommand::Push {
            src,
            skip_if_unchanged,
        } => each(g, src.as_deref(), |o, name| {
            let p = if skip_if_unchanged {
                o.push_if_changed()?
            } else {
                o.push()?
            };
            if !g.quiet && !p.new {
                println!(
                    "{name}: {} is as snapshot {} of {} in {} holds it{}; no new snapshot, in {:.1} s",
                    show(o.dst()),
                    p.snap.short_id,
                    both(p.snap.time),
                    o.repository(),
                    if p.walked {
                        ""
                    } else {
                        " (the mirror wrote nothing since; no file read)"
                    },
                    p.took.as_secs_f64()
                );
            } else if !g.quiet {
                let parent = match &p.parent {
                    Some(id) => format!(", compared with {}", &id[..id.len().min(8)]),
                    None => ", the first one".into(),
                };
                if p.walked {
                    println!(
                        "{name}: snapshot {} of {} in {}: {} new, {} changed, {} unchanged files, {} added, in {:.1} s{parent}",
                        p.snap.short_id,
                        show(o.dst()),
                        o.repository(),
                        p.files_new,
                        p.files_changed,
                        p.files_unmodified,
                        HumanBytes(p.bytes_added),
                        p.took.as_secs_f64()
                    );
                } else {
                    println!(
                        "{name}: snapshot {} of {} in {}: nothing changed since snapshot {} (the mirror wrote nothing since; no file read), {} files, in {:.1} s",
                        p.snap.short_id,
                        show(o.dst()),
                        o.repository(),
                        p.parent.as_deref().map_or("", |id| &id[..id.len().min(8)]),
                        p.files_unmodified,
                        p.took.as_secs_f64()
                    );
                }
            }
            Ok(Done::Ok)
        }),
        OffsiteCommand::Snapshots { src } => each(g, src.as_deref(), |o, name| {
            let snaps = o.snapshots()?;
            println!(
                "{name}: {} of {} in {}",
                match snaps.len() {
                    1 => "1 snapshot".to_string(),
                    n => format!("{n} snapshots"),
                },
                show(o.dst()),
                o.repository()
            );
            for s in &snaps {
                let size = match s.files {
                    Some(1) => "1 file".to_string(),
                    Some(f) => format!("{f} files"),
                    None => String::new(),
                };
                println!("  {}  {}  {}  {size}", s.short_id, both(s.time), s.host);
            }
            Ok(Done::Ok)
        }),
        OffsiteCommand::Check { src, read_data } => {
            each(g, src.as_deref(), |o, name| match o.check(read_data) {
                Ok(c) => {
                    for w in &c.warnings {
                        log::warn!("offsite repository {}: {w}", o.repository());
                    }
                    if !g.quiet {
                        println!(
                            "{name}: {} has no errors ({} snapshots{})",
                            o.repository(),
                            c.snapshots,
                            if read_data {
                                ", every byte read and verified"
                            } else {
                                ""
                            }
                        );
                    }
                    Ok(Done::Ok)
                }
                Err(e) if matches!(e.reason, Reason::Damaged(_)) => {
                    super::fail(&e);
                    Ok(Done::Damaged)
                }
                Err(e) => Err(e),
            })
        }
        OffsiteCommand::Forget { src } => each(g, src.as_deref(), |o, name| {
            let f = o.forget()?;
            if !g.quiet {
                println!(
                    "{name}: kept {} of {} snapshots in {}, forgot {}{}",
                    f.kept.len(),
                    f.kept.len() + f.forgotten.len(),
                    o.repository(),
                    f.forgotten.len(),
                    if f.bytes_freed > 0 {
                        format!(", {} freed", HumanBytes(f.bytes_freed))
                    } else {
                        String::new()
                    }
                );
                for s in &f.forgotten {
                    println!("  forgot {}  {}", s.short_id, both(s.time));
                }
            }
            Ok(Done::Ok)
        }),
        OffsiteCommand::Restore { path, at, to } => restore(g, &path, at.as_deref(), &to),
    }
}

/// How one pair's command ended, short of an error.
enum Done {
    Ok,
    /// `check` found damage (already said).
    Damaged,
}

/// Runs `f` for the chosen pairs (see the module doc for the exit code).
fn each(
    g: &Global,
    src: Option<&Path>,
    mut f: impl FnMut(&Offsite, &str) -> Result<Done, OffsiteError>,
) -> ExitCode {
    let chosen = match choose(g, src) {
        Ok(c) => c,
        Err(e) => {
            super::fail(e);
            return ExitCode::Error;
        }
    };
    let (mut ok, mut failed, mut damaged) = (0, 0, 0);
    for (name, o) in &chosen {
        match f(o, name) {
            Ok(Done::Ok) => ok += 1,
            Ok(Done::Damaged) => damaged += 1,
            Err(e) => {
                super::fail(format!("{name}: {e}"));
                failed += 1;
            }
        }
    }
    if failed == 0 && damaged == 0 {
        ExitCode::Success
    } else if ok == 0 && damaged == 0 {
        ExitCode::Error
    } else {
        ExitCode::Partial
    }
}

/// The pairs to act on, named as the tray names them, with their offsite
/// copies.
fn choose(g: &Global, src: Option<&Path>) -> Result<Vec<(String, Offsite)>, String> {
    let (path, cfg) = super::pairs::load_config(g)?;
    let names = names(&cfg);
    let how = format!(
        "add `offsite = {{ repository = \"...\", password_file = \"...\" }}` to its [[pair]] table in {}",
        show(&path)
    );
    let picked: Vec<usize> = match src {
        Some(src) => {
            let abs = std::path::absolute(src).map_err(|e| format!("{}: {e}", show(src)))?;
            let found = cfg.find_src(&abs);
            let Some(&i) = found.first() else {
                return Err(format!(
                    "{} is not the source folder of a pair in {} (see `mirrortray config`)",
                    show(src),
                    show(&path)
                ));
            };
            if cfg.pairs[i].offsite.is_none() {
                return Err(format!(
                    "the pair {} has no offsite copy: {how}",
                    cfg.pairs[i].label()
                ));
            }
            vec![i]
        }
        None => {
            let with: Vec<usize> = (0..cfg.pairs.len())
                .filter(|&i| cfg.pairs[i].offsite.is_some())
                .collect();
            if with.is_empty() {
                return Err(format!(
                    "no pair in {} has an offsite copy: {how}",
                    show(&path)
                ));
            }
            with
        }
    };
    Ok(picked
        .into_iter()
        .filter_map(|i| {
            let p = &cfg.pairs[i];
            let o = p.offsite.as_ref()?;
            Some((
                names[i].clone(),
                Offsite::new(&names[i], &p.dst, o, cache_dir()),
            ))
        })
        .collect())
}

fn names(cfg: &Config) -> Vec<String> {
    let home = directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf());
    words::pair_names(cfg.pairs.iter().map(|p| p.src.as_path()), home.as_deref())
}

fn cache_dir() -> Option<PathBuf> {
    paths::cache_dir().map(|d| d.join("offsite"))
}

/// The configured pair PATH is in (its source or backup folder, as written
/// or resolved), and PATH relative to it.
fn locate<'a>(cfg: &'a Config, path: &Path) -> Option<(usize, &'a PairConfig, PathBuf)> {
    let abs = mirrortray::engine::paths::fold_dots(&std::path::absolute(path).ok()?);
    let mut candidates = vec![abs.clone()];
    if let Some(parent) = abs.parent()
        && let Ok(real) = std::fs::canonicalize(parent)
        && let Some(name) = abs.file_name()
    {
        candidates.push(real.join(name));
    }
    if let Ok(real) = std::fs::canonicalize(&abs) {
        candidates.push(real);
    }
    for cand in &candidates {
        for (i, p) in cfg.pairs.iter().enumerate() {
            for root in [&p.src, &p.dst] {
                let real = std::fs::canonicalize(root).ok();
                for r in std::iter::once(root.clone()).chain(real) {
                    if let Ok(rel) = cand.strip_prefix(&r) {
                        return Some((i, p, rel.to_path_buf()));
                    }
                }
            }
        }
    }
    None
}

fn restore(g: &Global, path: &Path, at: Option<&str>, to: &Path) -> ExitCode {
    match try_restore(g, path, at, to) {
        Ok(()) => ExitCode::Success,
        Err(e) => {
            super::fail(e);
            ExitCode::Error
        }
    }
}

fn try_restore(g: &Global, path: &Path, at: Option<&str>, to: &Path) -> Result<(), String> {
    let at = at.map(parse_time).transpose()?;
    let (config_path, cfg) = super::pairs::load_config(g)?;
    let Some((i, pair, rel)) = locate(&cfg, path) else {
        return Err(format!(
            "{} is in no source or backup folder of a pair in {}",
            show(path),
            show(&config_path)
        ));
    };
    if rel
        .components()
        .next()
        .is_some_and(|c| c.as_os_str() == mirrortray::engine::filter::RESERVED)
    {
        return Err(format!(
            "{}: the backup's own folder is not part of the offsite copy",
            show(path)
        ));
    }
    let Some(o) = &pair.offsite else {
        return Err(format!(
            "the pair {} has no offsite copy (no offsite = {{ ... }} in {})",
            pair.label(),
            show(&config_path)
        ));
    };
    let to = mirrortray::engine::paths::fold_dots(
        &std::path::absolute(to).map_err(|e| format!("{}: {e}", show(to)))?,
    );
    for root in [
        Some(pair.dst.clone()),
        std::fs::canonicalize(&pair.dst).ok(),
    ]
    .into_iter()
    .flatten()
    {
        if to.starts_with(&root) {
            return Err(format!(
                "{} is inside the backup folder {}: restore into a folder outside it",
                show(&to),
                show(&pair.dst)
            ));
        }
    }
    let shown_src = if rel.as_os_str().is_empty() {
        pair.src.clone()
    } else {
        pair.src.join(&rel)
    };
    let name = shown_src
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("restored"));
    let target = to.join(name);
    let names = names(&cfg);
    let offsite = Offsite::new(&names[i], &pair.dst, o, cache_dir());
    let r = offsite
        .restore(&rel, at, &target)
        .map_err(|e| e.to_string())?;
    if !g.quiet {
        println!(
            "restored {} as snapshot {} of {} held it, to {}: {} files, {} folders, {}",
            show(&shown_src),
            r.snap.short_id,
            both(r.snap.time),
            show(&r.target),
            r.files,
            r.dirs,
            HumanBytes(r.bytes)
        );
    }
    Ok(())
}
