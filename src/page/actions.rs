//! actions: the page's changes — restore, and its undo. Both go through
//! the command line's own restore (`commands::restore::perform`), so the
//! page follows exactly its rules: what a restore replaces in SRC must be
//! in the backup first (the running watcher then keeps it as a version),
//! nothing is deleted, a time inside a burst of changes is warned about.
//!
//! Undo, for a restore into SRC, is two steps: restore the path as it was
//! when the restore began (brings back what it replaced, from the versions
//! the watcher kept), then remove what the restore created, if it is still
//! as the restore left it (the watcher keeps those as versions too). So an
//! undo loses nothing either.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use mirrortray::engine::error::{EntryError, reason, show};
use mirrortray::engine::fsops::{DirHandle, Kind, Meta};
use mirrortray::engine::restore::{Action, Step};
use mirrortray::engine::words::bytes_text;

use super::html::{self, esc, hidden, href, local, rel_param};
use super::views::target;
use super::{Ask, Reply, Shared};
use crate::commands::restore::{Begin, Done, Report, perform};

/// A restore into SRC the page made, kept for its Undo button.
pub struct Undo {
    pair: usize,
    rel: PathBuf,
    started: Timestamp,
    replaced: u64,
    /// What the restore created (relative to SRC) and as what, deepest last.
    created: Vec<(PathBuf, Meta)>,
}

/// Collects what a restore says, for the page.
#[derive(Default)]
struct Collect {
    warnings: Vec<String>,
    failed: Vec<String>,
    created: Vec<(PathBuf, Meta)>,
}

impl Report for Collect {
    fn begin(&mut self, _: &Begin) {}

    fn warn(&mut self, text: String) {
        self.warnings.push(text);
    }

    fn step(&mut self, s: &Step, err: Option<&EntryError>) {
        match err {
            Some(e) => self.failed.push(e.to_string()),
            None if s.action == Action::Create => self.created.push((s.to.clone(), s.held.meta)),
            None => {}
        }
    }
}

/// POST `/restore`: pair, path, at (RFC 3339, or empty: just before its
/// last change), how (`here` or `to`), to (a folder).
pub fn restore(shared: &Shared, ask: &Ask) -> Reply {
    let t = match target(shared, ask) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let at = ask.get("at").filter(|a| !a.is_empty());
    let to = match ask.get("how") {
        Some("to") => match ask.get("to").map(str::trim).filter(|s| !s.is_empty()) {
            Some(dir) => Some(PathBuf::from(dir)),
            None => {
                return Reply::Html(
                    400,
                    html::problem("Give the folder to restore into (a full path)."),
                );
            }
        },
        _ => None,
    };
    if let Some(dir) = &to
        && !dir.is_absolute()
    {
        return Reply::Html(
            400,
            html::problem(&format!(
                "{}: give a full path (starting with /) of the folder to restore into.",
                show(dir)
            )),
        );
    }
    // The backup's path: it names the pair whether or not the config does.
    let path = t.roots.dst.join(&t.rel);
    let mut c = Collect::default();
    let done = perform(&shared.global, &path, at, to.as_deref(), false, &mut c);
    let done = match done {
        Ok(d) => d,
        Err(e) => {
            return Reply::Html(
                200,
                html::frame(
                    "Not restored",
                    "",
                    &format!(
                        r#"<h1>Nothing was restored</h1><p class="problem" id="result">{}</p><p><a href="{}">Back</a></p>"#,
                        esc(&e),
                        href("/", &[])
                    ),
                ),
            );
        }
    };
    log::info!(
        "local page: restored {} as it was at {}",
        show(&done.loc.src_path()),
        done.at
    );
    let undo_id = if done.beside || (done.outcome.replaced == 0 && c.created.is_empty()) {
        None
    } else {
        let id = next_id();
        if let Ok(mut u) = shared.undo.lock() {
            u.insert(
                id,
                Undo {
                    pair: t.index,
                    rel: t.rel.clone(),
                    started: done.started,
                    replaced: done.outcome.replaced,
                    created: c.created.clone(),
                },
            );
        }
        Some(id)
    };
    Reply::Html(200, result_page(shared, &t.roots.name, &done, &c, undo_id))
}

fn next_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn result_page(shared: &Shared, name: &str, done: &Done, c: &Collect, undo: Option<u64>) -> String {
    let o = &done.outcome;
    let written = o.created + o.replaced;
    let files = |n: u64| {
        if n == 1 {
            "1 file".to_string()
        } else {
            format!("{n} files")
        }
    };
    let mut body = format!(
        r#"<h1>Restored</h1><p id="result">{} ({}) of {} as it was at {}: {} new, {} replaced, {} folders made, {} already as they were{}.</p>"#,
        files(written),
        bytes_text(o.bytes),
        html::path(&done.loc.src_path()),
        local(done.at),
        o.created,
        o.replaced,
        o.dirs,
        o.unchanged,
        if o.failed.is_empty() {
            String::new()
        } else {
            format!(", {} failed", o.failed.len())
        }
    );
    if done.beside {
        body.push_str(&format!(
            "<p>Into {} (the folder itself was left as it is).</p>",
            html::path(done.into.as_deref().unwrap_or(Path::new("")))
        ));
    } else if o.replaced > 0 {
        body.push_str("<p>What it replaced is kept as a version.</p>");
    }
    for w in &c.warnings {
        body.push_str(&format!(r#"<p class="warn">{}</p>"#, esc(w)));
    }
    if !c.failed.is_empty() {
        body.push_str(r#"<ul class="failures" id="failed">"#);
        for f in &c.failed {
            body.push_str(&format!("<li>{}</li>", esc(f)));
        }
        body.push_str("</ul>");
    }
    if let Some(id) = undo {
        body.push_str(&format!(
            r#"<form method="post" action="/undo">{}<button class="primary" id="undo">Undo this restore</button></form>"#,
            hidden(&shared.secrets.csrf, &[("id", &id.to_string())])
        ));
    }
    body.push_str(r#"<p><a href="/">Back to the overview</a></p>"#);
    html::frame(&format!("Restored · {name}"), "", &body)
}

/// POST `/undo`: id.
pub fn undo(shared: &Shared, ask: &Ask) -> Reply {
    let rec = ask
        .get("id")
        .and_then(|i| i.parse::<u64>().ok())
        .and_then(|id| shared.undo.lock().ok()?.remove(&id));
    let Some(rec) = rec else {
        return Reply::Html(
            404,
            html::problem("This restore was already undone, or the page was restarted since."),
        );
    };
    let pairs = shared.pairs();
    let Some(roots) = pairs.get(rec.pair) else {
        return Reply::Html(404, html::problem("No such folder pair."));
    };
    let mut notes = Vec::new();
    let mut put_back = 0;
    if rec.replaced > 0 {
        let mut c = Collect::default();
        let at = rec.started.to_string();
        match perform(
            &shared.global,
            &roots.dst.join(&rec.rel),
            Some(&at),
            None,
            false,
            &mut c,
        ) {
            Ok(d) => {
                put_back = d.outcome.replaced;
                notes.extend(c.warnings);
                notes.extend(c.failed);
            }
            Err(e) => notes.push(e),
        }
    }
    let (removed, left) = remove_created(&roots.src, &rec.created, &mut notes);
    log::info!(
        "local page: undid the restore of {}: {put_back} put back, {removed} removed",
        show(&roots.src.join(&rec.rel))
    );
    let mut body = format!(
        r#"<h1>Restore undone</h1><p id="result">{} as it was before the restore: {put_back} put back, {removed} removed that the restore had brought back{}.</p>"#,
        html::path(&roots.src.join(&rec.rel)),
        if left > 0 {
            format!(", {left} left because they changed since")
        } else {
            String::new()
        }
    );
    for n in notes {
        body.push_str(&format!(r#"<p class="warn">{}</p>"#, esc(&n)));
    }
    body.push_str(&format!(
        r#"<p>Everything removed is kept as a version. <a href="{}">Browse</a> · <a href="/">Overview</a></p>"#,
        href("/browse", &[("pair", &rec.pair.to_string()), ("path", &rel_param(rec.rel.parent().unwrap_or(Path::new(""))))])
    ));
    Reply::Html(200, html::frame("Undone", "", &body))
}

/// Removes what a restore created in SRC, deepest first, if still as the
/// restore left it (files by size and time; folders only when empty).
/// Through no-follow handles: a path changed into a symlink meanwhile is
/// left alone. Returns (removed, left).
fn remove_created(src: &Path, created: &[(PathBuf, Meta)], notes: &mut Vec<String>) -> (u64, u64) {
    let Ok(root) = DirHandle::open_root(src) else {
        notes.push(format!("{}: cannot open the folder", show(src)));
        return (0, created.len() as u64);
    };
    let (mut removed, mut left) = (0, 0);
    for (rel, meta) in created.iter().rev() {
        let Some(name) = rel.file_name() else {
            continue;
        };
        let parent = rel.parent().unwrap_or(Path::new(""));
        let result = root.open_path(parent).and_then(|dir| {
            let now = dir.stat_opt(name)?;
            match now {
                Some(m) if m.kind == Kind::Dir && meta.kind == Kind::Dir => {
                    dir.rmdir(name).map(|_| true)
                }
                Some(m)
                    if m.kind == meta.kind
                        && m.kind != Kind::Dir
                        && m.size == meta.size
                        && m.mtime == meta.mtime =>
                {
                    dir.unlink(name).map(|_| true)
                }
                Some(_) => Ok(false),
                None => Ok(true),
            }
        });
        match result {
            Ok(true) => removed += u64::from(meta.kind != Kind::Dir),
            Ok(false) => left += 1,
            Err(e) => {
                // A folder that holds something new stays.
                if meta.kind != Kind::Dir {
                    notes.push(format!(
                        "{}: cannot remove: {}",
                        show(&src.join(rel)),
                        reason(&e)
                    ));
                }
                left += u64::from(meta.kind != Kind::Dir);
            }
        }
    }
    (removed, left)
}
