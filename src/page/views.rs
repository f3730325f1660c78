//! views: the pages that only read — overview, browse as of a time, one
//! file's history with preview and diff, recently deleted, search.
//!
//! Every view opens the pair's history afresh (a request sees the backup as
//! it is at that moment) and reads only through it; a path from the request
//! has passed `guard::rel_path` first.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use mirrortray::engine::event::VersionReason;
use mirrortray::engine::fsops::Kind;
use mirrortray::engine::history::{Held, History, Origin, Stamp, Version};
use mirrortray::engine::status_file::Pair as PairStatus;
use mirrortray::engine::words::bytes_text;

use super::html::{self, esc, hidden, href, local, local_ms, local_short, rel_param};
use super::{Ask, Reply, Roots, Shared, guard};

/// Text shown in a preview or a diff, at most.
const PREVIEW_BYTES: u64 = 1 << 20;
/// Entries in the recently-deleted and search lists, at most.
const LIST_MAX: usize = 500;

/// The pair, the relative path and the history a request is about.
pub(crate) struct Target {
    pub index: usize,
    pub roots: Roots,
    pub rel: PathBuf,
    pub history: History,
}

/// Reads `pair` and `path` from the request and opens that pair's history.
pub(crate) fn target(shared: &Shared, ask: &Ask) -> Result<Target, Reply> {
    let pairs = shared.pairs();
    let index = ask
        .get("pair")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|i| *i < pairs.len())
        .ok_or_else(|| Reply::Html(404, html::problem("No such folder pair.")))?;
    let rel = guard::rel_path(ask.get("path").unwrap_or(""))
        .map_err(|e| Reply::Html(400, html::problem(&e)))?;
    let roots = pairs[index].clone();
    let history = History::open(&roots.dst).map_err(|e| {
        Reply::Html(
            500,
            html::problem(&format!("Cannot read the backup's history: {e}")),
        )
    })?;
    Ok(Target {
        index,
        roots,
        rel,
        history,
    })
}

macro_rules! target {
    ($shared:expr, $ask:expr) => {
        match target($shared, $ask) {
            Ok(t) => t,
            Err(r) => return r,
        }
    };
}

/// The navigation of a pair's pages.
fn nav(shared: &Shared, current: Option<usize>) -> String {
    let mut out = String::from(r#"<nav><a href="/">Overview</a>"#);
    for (i, p) in shared.pairs().iter().enumerate() {
        let cls = if current == Some(i) {
            " class=\"here\""
        } else {
            ""
        };
        out.push_str(&format!(
            r#" <a{cls} href="{}">{}</a>"#,
            href("/browse", &[("pair", &i.to_string())]),
            esc(&p.name)
        ));
    }
    out.push_str(r#" <a href="/settings">Settings</a> <a href="/log#end">Log</a></nav>"#);
    out
}

/// The links of one pair's page: browse, recently deleted, search.
fn pair_links(i: usize, q: &str) -> String {
    let n = i.to_string();
    format!(
        r#"<div class="links"><a href="{}">Browse</a> <a id="deleted-link" href="{}">Recently deleted</a>
<form class="search" method="get" action="/search"><input type="hidden" name="pair" value="{n}"><input type="search" name="q" value="{}" placeholder="Find a file by name in all history" aria-label="Find by name"><button>Find</button></form></div>"#,
        href("/browse", &[("pair", &n)]),
        href("/deleted", &[("pair", &n)]),
        esc(q)
    )
}

fn status_of<'a>(statuses: &'a [PairStatus], r: &Roots) -> Option<&'a PairStatus> {
    let dst = r.dst.to_string_lossy();
    let src = r.src.to_string_lossy();
    statuses
        .iter()
        .find(|p| p.dst == dst)
        .or_else(|| statuses.iter().find(|p| p.src == src))
}

fn when(text: &Option<String>) -> String {
    text.as_deref()
        .and_then(|t| t.parse::<Timestamp>().ok())
        .map_or("not yet".into(), local_short)
}

/// `/`: every pair, its state and reason, failures, space, the last day.
pub fn overview(shared: &Shared) -> Reply {
    let instance = shared.status.get();
    let statuses = instance
        .as_ref()
        .map(|i| i.pairs.clone())
        .unwrap_or_default();
    let mut body = String::from("<h1>Your backups</h1>");
    let pairs = shared.pairs();
    // Read once for every pair's policy line.
    let cfg = crate::commands::pairs::load_config(&shared.global)
        .ok()
        .map(|(_, c)| c);
    if pairs.is_empty() {
        body.push_str(r#"<p class="problem">No folders are backed up yet. Add one from the tray (Add a folder…) or with <code>mirrortray add SRC DST</code>.</p>"#);
    }
    for (i, r) in pairs.iter().enumerate() {
        let st = status_of(&statuses, r);
        let (state, headline) = st.map_or(("starting", "Starting…".to_string()), |s| {
            (s.state.as_str(), s.headline.clone())
        });
        body.push_str(&format!(
            r#"<section class="pair" id="pair-{i}"><h2>{}</h2>
<p class="state {state}" id="state-{i}">{}</p>
<dl><dt>Folder</dt><dd>{}</dd><dt>Backup</dt><dd>{}</dd>
<dt>Verified exact</dt><dd>{}</dd><dt>Last backed up</dt><dd>{}</dd>"#,
            esc(&r.name),
            esc(&headline),
            html::path(&r.src),
            html::path(&r.dst),
            st.map_or("not yet".into(), |s| when(&s.verified_at)),
            st.map_or("not yet".into(), |s| when(&s.last_ok)),
        ));
        let history = History::open(&r.dst);
        if let Ok(h) = &history
            && let Ok(u) = h.usage()
        {
            body.push_str(&format!(
                "<dt>Old versions</dt><dd>{} in {} ({} moments{})</dd>",
                bytes_text(u.bytes),
                count(u.files, "file"),
                u.stamps,
                u.oldest
                    .as_ref()
                    .map(|o| format!(", the oldest {}", local_short(o.time)))
                    .unwrap_or_default()
            ));
        }
        if let Some(o) = st.and_then(|s| s.offsite.as_ref()) {
            let line = o.status().line(&jiff::ZonedDateTime::now());
            body.push_str(&format!(
                "<dt>Offsite copy</dt><dd id=\"offsite-{i}\" class=\"offsite {}\">{} <span class=\"path\">{}</span></dd>",
                if o.ok { "ok" } else { "problem" },
                esc(line.strip_prefix("Offsite: ").unwrap_or(&line)),
                esc(&o.repository)
            ));
        }
        if let Some(policy) = cfg.as_ref().and_then(|c| policy(c, r)) {
            body.push_str(&format!(
                "<dt>Kept</dt><dd id=\"policy-{i}\">{}</dd>",
                esc(&policy)
            ));
        }
        body.push_str("</dl>");
        if let Some(s) = st
            && !s.failures.is_empty()
        {
            body.push_str(r#"<h3>Cannot be backed up</h3><ul class="failures">"#);
            for f in s.failures.iter().take(50) {
                body.push_str(&format!(
                    "<li><span class=\"path\">{}</span> — {}</li>",
                    esc(&f.path),
                    esc(&f.reason)
                ));
            }
            body.push_str("</ul>");
        }
        if let Ok(h) = &history {
            body.push_str(&chart(h, st));
        }
        body.push_str(&pair_links(i, ""));
        body.push_str("</section>");
    }
    Reply::Html(200, html::frame("Overview", &nav(shared, None), &body))
}

/// How long versions are kept and what makes room, from the config (the
/// same words as `mirrortray versions --stats`).
fn policy(cfg: &mirrortray::engine::config::Config, r: &Roots) -> Option<String> {
    let p = cfg
        .pairs
        .iter()
        .find(|p| p.dst == r.dst || p.src == r.src)?;
    if !p.versions {
        return Some("versions are off for this pair".into());
    }
    let spec = p.spec(&cfg.settings);
    let mut out = format!("{} days", spec.retention_days);
    if let Some(m) = spec.max_versions_mb {
        out.push_str(&format!(", at most {m} MB"));
    }
    if let Some(t) = &spec.thinning {
        out.push_str(&format!("; thinned: {}", t.describe()));
    }
    if spec.min_free_percent > 0 {
        out.push_str(&format!(
            "; the oldest go first when the backup disk has less than {}% free",
            spec.min_free_percent
        ));
    }
    Some(out)
}

/// The last 24 hours, three bars per hour: files copied (as counted by this
/// running instance), versions kept (what the backup replaced or lost, from
/// the versions' log), and files failing now, in the hour each started to
/// fail (of those the status carries; the caption has the exact count).
fn chart(h: &History, st: Option<&PairStatus>) -> String {
    let now = Timestamp::now();
    let this_hour = now.as_second().div_euclid(3600);
    let day = jiff::SignedDuration::from_hours(24);
    let mut kept = [0u64; 24];
    for l in h.logged() {
        let age = now.duration_since(l.stamp.time);
        if age.is_negative() || age >= day {
            continue;
        }
        kept[23 - (age.as_secs() / 3600).clamp(0, 23) as usize] += 1;
    }
    let mut fails = [0u64; 24];
    for f in st.map_or(&[][..], |s| &s.failures) {
        let Ok(since) = f.since.parse::<Timestamp>() else {
            continue;
        };
        let ago = this_hour - since.as_second().div_euclid(3600);
        fails[23 - ago.clamp(0, 23) as usize] += 1;
    }
    let failing = st.map_or(0, |s| s.failing);
    let mut copies = [0u64; 24];
    for (hour, n) in st.map_or(&[][..], |s| &s.copied_per_hour) {
        let ago = this_hour - hour;
        if (0..24).contains(&ago) {
            copies[23 - ago as usize] += n;
        }
    }
    let max = kept
        .iter()
        .chain(&copies)
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);
    let mut bars = String::new();
    for i in 0..24 {
        let ago = 23 - i;
        let when = match ago {
            0 => "this hour".to_string(),
            1 => "1 h ago".to_string(),
            n => format!("{n} h ago"),
        };
        for (series, n, dx, what) in [
            ("copied", copies[i], 0, "files copied"),
            ("kept", kept[i], 4, "kept as versions"),
            ("failed", fails[i], 8, "started failing (and still fail)"),
        ] {
            let height = (n as f64 / max as f64 * 40.0).round();
            bars.push_str(&format!(
                r#"<rect class="{series}" x="{}" y="{}" width="3.5" height="{height}"><title>{n} {what}, {when}</title></rect>"#,
                i * 12 + dx,
                44.0 - height,
            ));
        }
    }
    let failing = if failing > 0 {
        format!(
            r#"; <span class="key failed"></span><span class="bad">{} cannot be backed up now</span>"#,
            count(failing as u64, "file")
        )
    } else {
        String::new()
    };
    format!(
        r#"<figure class="chart"><svg viewBox="0 0 288 46" role="img" aria-label="files copied and versions kept per hour, last 24 hours">{bars}<line x1="0" y1="45" x2="288" y2="45"/></svg>
<figcaption>Last 24 hours: <span class="key copied"></span>{} copied, <span class="key kept"></span>{} kept as versions{failing}.</figcaption></figure>"#,
        count(copies.iter().sum(), "file"),
        count(kept.iter().sum(), "entry"),
    )
}

fn count(n: u64, what: &str) -> String {
    let plural = match what.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{what}s"),
    };
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{} {plural}", mirrortray::engine::words::count_text(n))
    }
}

/// The moment a request asks for: a time folder's name ("as it was before
/// that change"), or now.
fn moment(h: &History, ask: &Ask) -> (Timestamp, Option<Stamp>) {
    match ask.get("at").filter(|a| !a.is_empty()) {
        Some(name) => match h.stamps().iter().find(|s| s.name == name) {
            Some(s) => (s.time, Some(s.clone())),
            None => (Timestamp::now(), None),
        },
        None => (Timestamp::now(), None),
    }
}

/// The moments a folder can be seen at, as a form: newest first.
fn time_picker(t: &Target, at: &Option<Stamp>) -> String {
    let mut opts = format!(
        r#"<option value=""{}>Now</option>"#,
        if at.is_none() { " selected" } else { "" }
    );
    let from = t.history.complete_from();
    for s in t.history.stamps().iter().rev() {
        if from.is_some_and(|f| s.time < f) {
            continue;
        }
        let sel = if at.as_ref() == Some(s) {
            " selected"
        } else {
            ""
        };
        opts.push_str(&format!(
            r#"<option value="{}"{sel}>Before the change at {}</option>"#,
            esc(&s.name),
            local_ms(s.time)
        ));
    }
    format!(
        r#"<form class="moment" method="get" action="/browse"><input type="hidden" name="pair" value="{}"><input type="hidden" name="path" value="{}"><label>As it was: <select name="at" id="at" data-autosubmit>{opts}</select></label> <button id="show-at">Show</button></form>"#,
        t.index,
        esc(&rel_param(&t.rel))
    )
}

/// Breadcrumbs of a path, each a link to browse it at the same moment.
fn crumbs(t: &Target, at: &Option<Stamp>) -> String {
    let at_name = at.as_ref().map_or(String::new(), |s| s.name.clone());
    let i = t.index.to_string();
    let mut out = format!(
        r#"<p class="crumbs"><a href="{}">{}</a>"#,
        href("/browse", &[("pair", &i), ("at", &at_name)]),
        esc(&t.roots.name)
    );
    let mut acc = PathBuf::new();
    for c in t.rel.iter() {
        acc.push(c);
        out.push_str(&format!(
            r#" / <a href="{}">{}</a>"#,
            href(
                "/browse",
                &[("pair", &i), ("path", &rel_param(&acc)), ("at", &at_name)]
            ),
            html::path(Path::new(c))
        ));
    }
    out.push_str("</p>");
    out
}

/// One folder's entries as held at the moment asked for.
struct Child {
    kind: Kind,
    size: u64,
    mtime: Option<Timestamp>,
    /// DST does not hold it now.
    deleted: bool,
    /// Shown at "now" though gone: the time folder that kept it.
    kept_in: Option<String>,
    /// Its version of that moment (or one inside it) was thinned: what is
    /// shown is the nearest kept one after it.
    thinned: bool,
}

/// `/open?path=ABSOLUTE`: a path in a pair's source or backup folder (what
/// the file managers' "Previous versions" entries and `mirrortray ui PATH`
/// give), shown on its own page: a folder browsed, a file's history. The
/// path only picks the pair; what is left of it passes `guard::rel_path`.
pub fn open(shared: &Shared, ask: &Ask) -> Reply {
    let asked = PathBuf::from(ask.get("path").unwrap_or(""));
    let pairs = shared.pairs();
    let found = pairs.iter().enumerate().find_map(|(i, r)| {
        let roots = [&r.src, &r.dst];
        roots
            .iter()
            .flat_map(|root| [Some((*root).clone()), std::fs::canonicalize(root).ok()])
            .flatten()
            .find_map(|root| asked.strip_prefix(&root).ok().map(Path::to_path_buf))
            .map(|rel| (i, rel))
    });
    let Some((i, rel)) = found else {
        return Reply::Html(
            404,
            html::problem(&format!(
                "{} is not in a folder this mirrortray backs up.",
                mirrortray::engine::error::show(&asked)
            )),
        );
    };
    let rel = match guard::rel_path(&rel.to_string_lossy()) {
        Ok(r) => r,
        Err(e) => return Reply::Html(400, html::problem(&e)),
    };
    let is_dir = std::fs::symlink_metadata(&asked).map(|m| m.is_dir());
    let dst_dir = History::open(&pairs[i].dst)
        .ok()
        .and_then(|h| h.current(&rel).ok().flatten())
        .map(|m| m.kind == Kind::Dir);
    let page = match is_dir.ok().or(dst_dir) {
        Some(false) => "/file",
        _ => "/browse",
    };
    Reply::Redirect(format!(
        "{page}?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("pair", &i.to_string())
            .append_pair("path", &rel_param(&rel))
            .finish()
    ))
}

/// `/browse?pair=N&path=REL&at=STAMP`: a folder as it was.
pub fn browse(shared: &Shared, ask: &Ask) -> Reply {
    let t = target!(shared, ask);
    let (time, at) = moment(&t.history, ask);
    let tree = match t.history.tree_at(&t.rel, time) {
        Ok(tree) => tree,
        Err(e) => return Reply::Html(500, html::problem(&e.to_string())),
    };
    // A file asked as a folder: its own page.
    if let Some(first) = tree.entries.first()
        && first.rel == t.rel
        && first.meta.kind != Kind::Dir
    {
        return Reply::Redirect(format!(
            "/file?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("pair", &t.index.to_string())
                .append_pair("path", &rel_param(&t.rel))
                .finish()
        ));
    }
    let mut children: BTreeMap<PathBuf, Child> = BTreeMap::new();
    for e in &tree.entries {
        let Ok(under) = e.rel.strip_prefix(&t.rel) else {
            continue;
        };
        let Some(first) = under.iter().next() else {
            continue;
        };
        let name = PathBuf::from(first);
        let direct = under.iter().count() == 1;
        let child = children.entry(name).or_insert(Child {
            kind: Kind::Dir,
            size: 0,
            mtime: None,
            deleted: false,
            kept_in: None,
            thinned: false,
        });
        child.thinned |= tree.thinned.contains_key(&e.rel);
        if direct {
            child.kind = e.meta.kind;
            child.mtime = Some(mirrortray::engine::history::to_timestamp(e.meta.mtime));
        }
        if e.meta.kind != Kind::Dir {
            child.size += e.meta.size;
        }
    }
    for (name, c) in children.iter_mut() {
        c.deleted = matches!(t.history.current(&t.rel.join(name)), Ok(None));
    }
    // Now: what was deleted from this folder is listed too, marked, each
    // linked to how it was just before.
    if at.is_none() {
        for l in t.history.logged() {
            if l.reason != Some(VersionReason::Deleted) || l.rel.parent() != Some(t.rel.as_path()) {
                continue;
            }
            let Some(name) = l.rel.file_name() else {
                continue;
            };
            if children.contains_key(Path::new(name))
                || !matches!(t.history.current(&l.rel), Ok(None))
            {
                continue;
            }
            children.insert(
                PathBuf::from(name),
                Child {
                    kind: l.kind,
                    size: 0,
                    mtime: None,
                    deleted: true,
                    kept_in: Some(l.stamp.name.clone()),
                    thinned: false,
                },
            );
        }
    }
    let i = t.index.to_string();
    let at_name = at.as_ref().map_or(String::new(), |s| s.name.clone());
    let mut body = format!(
        "<h1>{}</h1>{}{}",
        esc(&t.roots.name),
        crumbs(&t, &at),
        time_picker(&t, &at)
    );
    body.push_str(&match &at {
        Some(s) => format!(
            r#"<p class="when" id="when">As it was just before the change at {}.</p>"#,
            local_ms(s.time)
        ),
        None => r#"<p class="when" id="when">As the backup holds it now.</p>"#.into(),
    });
    if children.is_empty() {
        body.push_str(r#"<p class="empty">Nothing here at this moment.</p>"#);
    }
    body.push_str(r#"<table class="entries" id="entries"><thead><tr><th>Name</th><th>Size</th><th>Modified</th><th></th></tr></thead><tbody>"#);
    for (name, c) in &children {
        let rel = t.rel.join(name);
        let relp = rel_param(&rel);
        let link = if c.kind == Kind::Dir {
            // A folder gone now opens as it was just before it went (every
            // batch of its deletion gathered: see `History::last_change`).
            let before = match (&at, c.deleted) {
                (None, true) => t.history.last_change(&rel).ok().flatten(),
                _ => None,
            };
            let when = before.map_or(at_name.clone(), |s| s.name);
            href("/browse", &[("pair", &i), ("path", &relp), ("at", &when)])
        } else {
            href("/file", &[("pair", &i), ("path", &relp)])
        };
        let mut mark = match (&c.kept_in, c.deleted) {
            (Some(_), _) => r#" <span class="badge deleted">deleted</span>"#,
            (None, true) => r#" <span class="badge deleted">deleted since</span>"#,
            _ => "",
        }
        .to_string();
        if c.thinned {
            mark.push_str(r#" <span class="badge thinned" title="The version of that moment was thinned as versions aged; this is the nearest one kept after it.">later version</span>"#);
        }
        let shown = match c.kind {
            Kind::Dir => format!("{}/", html::path(name)),
            Kind::Symlink => format!("{} →", html::path(name)),
            _ => html::path(name),
        };
        body.push_str(&format!(
            r#"<tr class="{}" data-name="{}"><td><a href="{link}">{shown}</a>{mark}</td><td>{}</td><td>{}</td><td></td></tr>"#,
            if c.deleted { "gone" } else { "" },
            esc(&name.to_string_lossy()),
            if c.kept_in.is_some() {
                String::new()
            } else {
                bytes_text(c.size)
            },
            c.mtime.map(local_short).unwrap_or_default(),
        ));
    }
    body.push_str("</tbody></table>");
    if at.is_some() && !children.is_empty() {
        let missed = match t.history.missed_before(&tree) {
            Ok(Some((s, n))) => format!(
                r#"<p class="warn" id="missed">This folder was being changed at that moment: {} it held a moment earlier {} missing here. <a href="{}">See it as it was before the change at {}</a>.</p>"#,
                count(n as u64, "entry"),
                if n == 1 { "is" } else { "are" },
                href(
                    "/browse",
                    &[("pair", &i), ("path", &relp_of(&t)), ("at", &s.name)]
                ),
                local(s.time)
            ),
            _ => String::new(),
        };
        body.push_str(&missed);
        body.push_str(&restore_form(
            shared,
            &t,
            Some(time),
            &format!(
                "Restore {} as it was then",
                if t.rel.as_os_str().is_empty() {
                    "this folder".to_string()
                } else {
                    format!(
                        "“{}”",
                        html::path(t.rel.file_name().map_or(Path::new(""), Path::new))
                    )
                }
            ),
        ));
    }
    body.push_str(&pair_links(t.index, ""));
    Reply::Html(
        200,
        html::frame("Browse", &nav(shared, Some(t.index)), &body),
    )
}

fn relp_of(t: &Target) -> String {
    rel_param(&t.rel)
}

/// A Restore button (and a Restore to… folder field) for the target as of
/// `at` (`None`: as it was just before its last change).
fn restore_form(shared: &Shared, t: &Target, at: Option<Timestamp>, label: &str) -> String {
    let i = t.index.to_string();
    let at_s = at.map(|a| a.to_string()).unwrap_or_default();
    let fields = hidden(
        &shared.secrets.csrf,
        &[("pair", &i), ("path", &relp_of(t)), ("at", &at_s)],
    );
    format!(
        r#"<form class="restore" method="post" action="/restore">{fields}<button class="primary" name="how" value="here">{label}</button>
<details><summary>Restore to another folder…</summary><label>Folder: <input name="to" placeholder="{}"></label> <button name="how" value="to">Restore there</button></details></form>"#,
        esc(&std::env::var("HOME").unwrap_or_default())
    )
}

fn reason_words(v: &Version) -> &'static str {
    match v.reason {
        Some(VersionReason::Modified) => "changed",
        Some(VersionReason::Deleted) => "deleted",
        Some(VersionReason::Replaced) => "replaced by another kind",
        Some(VersionReason::RenamedOver) => "renamed over",
        None => "kept",
    }
}

/// `/file?pair=N&path=REL[&v=STAMP]`: every version of one file, a
/// preview, and the ways to get it back.
pub fn file(shared: &Shared, ask: &Ask) -> Reply {
    let t = target!(shared, ask);
    let versions: Vec<Version> = match t.history.versions_of(&t.rel) {
        Ok(v) => v.into_iter().filter(|v| v.rel == t.rel).collect(),
        Err(e) => return Reply::Html(500, html::problem(&e.to_string())),
    };
    let current = t.history.current(&t.rel).ok().flatten();
    if versions.is_empty() && current.is_none() {
        return Reply::Html(
            404,
            html::problem(&format!(
                "The backup has no version of {} and does not hold it.",
                mirrortray::engine::error::show(&t.rel)
            )),
        );
    }
    let i = t.index.to_string();
    let relp = relp_of(&t);
    let parent = rel_param(t.rel.parent().unwrap_or(Path::new("")));
    let mut body = format!(
        r#"<h1>{}</h1><p class="crumbs"><a href="{}">{}</a> / {}</p>"#,
        html::path(t.rel.file_name().map_or(Path::new(""), Path::new)),
        href("/browse", &[("pair", &i), ("path", &parent)]),
        esc(&t.roots.name),
        html::path(&t.rel)
    );
    let shown = ask
        .get("v")
        .unwrap_or(if current.is_some() { "now" } else { "" });
    let shown = if shown.is_empty() {
        versions
            .first()
            .map_or("now".to_string(), |v| v.stamp.name.clone())
    } else {
        shown.to_string()
    };
    body.push_str(&match &current {
        Some(m) => format!(
            r#"<p id="now">In the backup now: {}, modified {}.</p>"#,
            bytes_text(m.size),
            local_short(mirrortray::engine::history::to_timestamp(m.mtime))
        ),
        None => r#"<p id="now" class="warn">Not in the backup now: it was deleted or moved away. Its versions are below.</p>"#.into(),
    });
    if current.is_none() {
        body.push_str(&restore_form(
            shared,
            &t,
            None,
            "Restore it as it was before it was deleted",
        ));
    }
    body.push_str(r#"<table class="versions" id="versions"><thead><tr><th>Version</th><th>Size</th><th>Why kept</th><th></th></tr></thead><tbody>"#);
    let row = |label: String,
               size: u64,
               why: &str,
               v: &str,
               restore: String,
               next: Option<&str>| {
        let cls = if v == shown { " class=\"shown\"" } else { "" };
        let diff = next.map_or(String::new(), |n| {
            format!(
                r#" <a href="{}">Compare with newer</a>"#,
                href(
                    "/diff",
                    &[("pair", &i), ("path", &relp), ("a", v), ("b", n)]
                )
            )
        });
        format!(
            r#"<tr{cls} data-v="{}"><td>{label}</td><td>{}</td><td>{why}</td><td><a class="preview" href="{}">Preview</a> <a href="{}">Download</a>{diff}{restore}</td></tr>"#,
            esc(v),
            bytes_text(size),
            href("/file", &[("pair", &i), ("path", &relp), ("v", v)]),
            href(
                "/raw",
                &[("pair", &i), ("path", &relp), ("v", v), ("download", "1")]
            ),
        )
    };
    let mut newer: Option<String> = None;
    if let Some(m) = &current {
        body.push_str(&row(
            "Now".into(),
            m.size,
            "the backup's copy",
            "now",
            String::new(),
            None,
        ));
        newer = Some("now".into());
    }
    for v in &versions {
        let restore = format!(
            r#"<form class="inline" method="post" action="/restore">{}<button name="how" value="here">Restore this version</button></form>"#,
            hidden(
                &shared.secrets.csrf,
                &[
                    ("pair", &i),
                    ("path", &relp),
                    ("at", &v.stamp.time.to_string())
                ]
            )
        );
        body.push_str(&row(
            format!("Until {}", local_ms(v.stamp.time)),
            v.bytes,
            reason_words(v),
            &v.stamp.name,
            restore,
            newer.as_deref(),
        ));
        newer = Some(v.stamp.name.clone());
    }
    body.push_str("</tbody></table>");
    if let Some(text) =
        mirrortray::engine::words::thinned_text(&t.history.thinned_of(&t.rel), local_short)
    {
        body.push_str(&format!(
            r#"<p class="note" id="thinned">{}</p>"#,
            esc(&text)
        ));
    }
    body.push_str(&preview(&t, &shown));
    Reply::Html(
        200,
        html::frame("History", &nav(shared, Some(t.index)), &body),
    )
}

/// What kind of preview a name gets.
fn image_type(rel: &Path) -> Option<&'static str> {
    let ext = rel.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        _ => return None,
    })
}

/// The entry stored for version `v` ("now" or a time folder's name).
fn stored(t: &Target, v: &str) -> Option<Held> {
    if v == "now" {
        return Some(Held {
            rel: t.rel.clone(),
            meta: t.history.current(&t.rel).ok().flatten()?,
            origin: Origin::Current,
        });
    }
    let s = t.history.stamps().iter().find(|s| s.name == v)?;
    let held = t.history.entry_at(&t.rel, s.time).ok().flatten()?;
    (held.origin == Origin::Version(s.clone())).then_some(held)
}

/// Up to `limit` bytes of a stored file, read without following links.
fn read_stored(t: &Target, h: &Held, limit: u64) -> std::io::Result<Vec<u8>> {
    if h.meta.kind == Kind::Symlink {
        return Ok(t.history.link_target(h)?.into_encoded_bytes());
    }
    let mut f = t.history.open_file(h)?;
    let mut out = Vec::new();
    (&mut f).take(limit).read_to_end(&mut out)?;
    Ok(out)
}

fn preview(t: &Target, v: &str) -> String {
    let Some(h) = stored(t, v) else {
        return String::new();
    };
    let i = t.index.to_string();
    let relp = relp_of(t);
    let title = if v == "now" {
        "Preview of the backup's copy".to_string()
    } else {
        format!(
            "Preview of the version kept at {}",
            t.history
                .stamps()
                .iter()
                .find(|s| s.name == v)
                .map_or(String::new(), |s| local_ms(s.time))
        )
    };
    let inner = if h.meta.kind == Kind::Symlink {
        match read_stored(t, &h, PREVIEW_BYTES) {
            Ok(b) => format!(
                "<p>A symbolic link to <code>{}</code></p>",
                esc(&String::from_utf8_lossy(&b))
            ),
            Err(e) => esc(&e.to_string()),
        }
    } else if image_type(&t.rel).is_some() {
        format!(
            r#"<img id="preview-image" alt="preview" src="{}">"#,
            href("/raw", &[("pair", &i), ("path", &relp), ("v", v)])
        )
    } else {
        match read_stored(t, &h, PREVIEW_BYTES) {
            Ok(b) if !b.contains(&0) => match String::from_utf8(b) {
                Ok(text) => format!(r#"<pre id="preview-text">{}</pre>"#, esc(&text)),
                Err(_) => "<p>No preview: not text.</p>".into(),
            },
            Ok(_) => "<p>No preview: not text.</p>".into(),
            Err(e) => format!(
                "<p class=\"problem\">Cannot read it: {}</p>",
                esc(&mirrortray::engine::error::reason(&e))
            ),
        }
    };
    format!(
        r#"<section class="preview" id="preview"><h2>{}</h2>{inner}</section>"#,
        esc(&title)
    )
}

/// `/raw?pair&path&v[&download=1]`: one stored version's bytes.
pub fn raw(shared: &Shared, ask: &Ask) -> Reply {
    let t = target!(shared, ask);
    let v = ask.get("v").unwrap_or("now");
    let Some(h) = stored(&t, v) else {
        return Reply::Html(404, html::problem("No such version."));
    };
    if h.meta.kind != Kind::File && h.meta.kind != Kind::Symlink {
        return Reply::Html(400, html::problem("Only files can be shown or downloaded."));
    }
    let body = match read_stored(&t, &h, u64::MAX) {
        Ok(b) => b,
        Err(e) => {
            return Reply::Html(
                500,
                html::problem(&format!(
                    "Cannot read {}: {}",
                    mirrortray::engine::error::show(&t.history.stored_path(&h)),
                    mirrortray::engine::error::reason(&e)
                )),
            );
        }
    };
    let download = ask.get("download").is_some();
    let mime = if download {
        "application/octet-stream"
    } else {
        image_type(&t.rel).unwrap_or("text/plain; charset=utf-8")
    };
    Reply::Bytes {
        body,
        mime,
        attachment: download.then(|| {
            t.rel
                .file_name()
                .map_or("file".into(), |n| n.to_string_lossy().into_owned())
        }),
    }
}

/// `/diff?pair&path&a&b`: what changed between two versions of a text.
pub fn diff(shared: &Shared, ask: &Ask) -> Reply {
    let t = target!(shared, ask);
    let read = |v: &str| -> Result<String, String> {
        let h = stored(&t, v).ok_or("no such version")?;
        let b = read_stored(&t, &h, PREVIEW_BYTES).map_err(|e| e.to_string())?;
        String::from_utf8(b).map_err(|_| "not text".to_string())
    };
    let (a, b) = (ask.get("a").unwrap_or(""), ask.get("b").unwrap_or("now"));
    let (old, new) = match (read(a), read(b)) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(e), _) | (_, Err(e)) => {
            return Reply::Html(400, html::problem(&format!("Cannot compare: {e}.")));
        }
    };
    let d = similar::TextDiff::from_lines(&old, &new);
    let mut out = String::from(r#"<pre class="diff" id="diff">"#);
    for change in d.iter_all_changes() {
        let (cls, sign) = match change.tag() {
            similar::ChangeTag::Delete => ("del", "-"),
            similar::ChangeTag::Insert => ("ins", "+"),
            similar::ChangeTag::Equal => ("same", " "),
        };
        out.push_str(&format!(
            r#"<span class="{cls}">{sign}{}</span>"#,
            esc(&change.to_string())
        ));
    }
    out.push_str("</pre>");
    let i = t.index.to_string();
    let label = |v: &str| {
        t.history
            .stamps()
            .iter()
            .find(|s| s.name == v)
            .map_or("the backup's copy now".to_string(), |s| {
                format!("the version kept at {}", local(s.time))
            })
    };
    let body = format!(
        r#"<h1>Changes in {}</h1><p>From {} to {}. <a href="{}">Back to its history</a></p>{out}"#,
        html::path(&t.rel),
        esc(&label(a)),
        esc(&label(b)),
        href("/file", &[("pair", &i), ("path", &relp_of(&t))])
    );
    Reply::Html(
        200,
        html::frame("Changes", &nav(shared, Some(t.index)), &body),
    )
}

/// `/deleted?pair=N`: what is gone from the backup, newest first; only the
/// topmost path of what went (a deleted folder, not each file in it).
pub fn deleted(shared: &Shared, ask: &Ask) -> Reply {
    let t = target!(shared, ask);
    let i = t.index.to_string();
    let mut seen = HashSet::new();
    let mut rows = String::new();
    let mut n = 0;
    for l in t.history.logged() {
        if l.reason != Some(VersionReason::Deleted) || !seen.insert(l.rel.clone()) {
            continue;
        }
        let gone = matches!(t.history.current(&l.rel), Ok(None));
        let parent = l.rel.parent().unwrap_or(Path::new(""));
        let parent_there = parent.as_os_str().is_empty()
            || matches!(t.history.current(parent), Ok(Some(m)) if m.kind == Kind::Dir);
        if !gone || !parent_there {
            continue;
        }
        n += 1;
        if n > LIST_MAX {
            break;
        }
        let relp = rel_param(&l.rel);
        let link = if l.kind == Kind::Dir {
            href(
                "/browse",
                &[("pair", &i), ("path", &relp), ("at", &l.stamp.name)],
            )
        } else {
            href("/file", &[("pair", &i), ("path", &relp)])
        };
        let restore = format!(
            r#"<form class="inline" method="post" action="/restore">{}<button name="how" value="here">Restore</button></form>"#,
            hidden(
                &shared.secrets.csrf,
                &[("pair", &i), ("path", &relp), ("at", "")]
            )
        );
        rows.push_str(&format!(
            r#"<tr data-path="{}"><td><a href="{link}">{}{}</a></td><td>{}</td><td>{restore}</td></tr>"#,
            esc(&relp),
            html::path(&l.rel),
            if l.kind == Kind::Dir { "/" } else { "" },
            local(l.stamp.time),
        ));
    }
    let body = format!(
        r#"<h1>Recently deleted from {}</h1>{}<table class="entries" id="deleted"><thead><tr><th>What</th><th>Deleted</th><th></th></tr></thead><tbody>{rows}</tbody></table>{}"#,
        esc(&t.roots.name),
        if rows.is_empty() {
            r#"<p class="empty">Nothing deleted is kept.</p>"#
        } else {
            ""
        },
        pair_links(t.index, "")
    );
    Reply::Html(
        200,
        html::frame("Recently deleted", &nav(shared, Some(t.index)), &body),
    )
}

/// `/search?pair=N&q=TEXT`: every path in the history or in the backup now
/// whose name holds TEXT (case does not matter).
pub fn search(shared: &Shared, ask: &Ask) -> Reply {
    let t = target!(shared, ask);
    let q = ask.get("q").unwrap_or("").trim().to_lowercase();
    let i = t.index.to_string();
    let mut hits: BTreeMap<PathBuf, (Kind, Option<Timestamp>)> = BTreeMap::new();
    if !q.is_empty() {
        let matches = |p: &Path| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().to_lowercase().contains(&q))
        };
        for l in t.history.logged() {
            if matches(&l.rel) {
                hits.entry(l.rel.clone())
                    .or_insert((l.kind, Some(l.stamp.time)));
            }
        }
        // What the backup holds now (never changed, so never versioned).
        for e in walkdir::WalkDir::new(&t.roots.dst)
            .min_depth(1)
            .into_iter()
            .filter_entry(|e| e.depth() != 1 || e.file_name() != ".mirrortray")
            .flatten()
        {
            if hits.len() >= LIST_MAX {
                break;
            }
            if let Ok(rel) = e.path().strip_prefix(&t.roots.dst)
                && matches(rel)
            {
                let kind = if e.file_type().is_dir() {
                    Kind::Dir
                } else if e.file_type().is_symlink() {
                    Kind::Symlink
                } else {
                    Kind::File
                };
                hits.entry(rel.to_path_buf()).or_insert((kind, None));
            }
        }
    }
    let mut rows = String::new();
    for (rel, (kind, last)) in hits.iter().take(LIST_MAX) {
        let relp = rel_param(rel);
        let link = if *kind == Kind::Dir {
            href("/browse", &[("pair", &i), ("path", &relp)])
        } else {
            href("/file", &[("pair", &i), ("path", &relp)])
        };
        let gone = matches!(t.history.current(rel), Ok(None));
        rows.push_str(&format!(
            r#"<tr data-path="{}"><td><a href="{link}">{}{}</a>{}</td><td>{}</td></tr>"#,
            esc(&relp),
            html::path(rel),
            if *kind == Kind::Dir { "/" } else { "" },
            if gone {
                r#" <span class="badge deleted">deleted</span>"#
            } else {
                ""
            },
            last.map_or("in the backup".into(), |t| format!(
                "last kept {}",
                local_short(t)
            )),
        ));
    }
    let body = format!(
        r#"<h1>Find in {}</h1>{}<table class="entries" id="found"><tbody>{rows}</tbody></table>{}"#,
        esc(&t.roots.name),
        pair_links(t.index, &q),
        if q.is_empty() {
            ""
        } else if rows.is_empty() {
            r#"<p class="empty">Nothing by that name.</p>"#
        } else {
            ""
        }
    );
    Reply::Html(200, html::frame("Find", &nav(shared, Some(t.index)), &body))
}

/// The log's end shown by `/log`: at most this many lines, from at most
/// this many bytes at the end of the file.
const LOG_LINES: usize = 500;
const LOG_BYTES: u64 = 256 * 1024;

/// `/log`: the end of the log, oldest of those lines first, the newest at
/// the bottom (where `#end` scrolls), in local time. The file keeps UTC.
pub fn log(shared: &Shared) -> Reply {
    let Some(path) = crate::logging::log_path(&shared.global) else {
        return Reply::Html(
            404,
            html::problem("There is no log file (no HOME, and no --log-file given)."),
        );
    };
    let text = match read_end(&path, LOG_BYTES) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Reply::Html(
                500,
                html::problem(&format!(
                    "Cannot read the log {}: {}",
                    mirrortray::engine::error::show(&path),
                    mirrortray::engine::error::reason(&e)
                )),
            );
        }
    };
    let lines: Vec<&str> = text.lines().collect();
    let shown = &lines[lines.len().saturating_sub(LOG_LINES)..];
    let mut rows = String::new();
    for l in shown {
        let (when, rest) = match l.split_once(' ') {
            Some((t, rest)) => match t.parse::<Timestamp>() {
                Ok(t) => (local(t), rest),
                Err(_) => (String::new(), *l),
            },
            None => (String::new(), *l),
        };
        let (level, msg) = match rest.strip_prefix('[').and_then(|r| r.split_once("] ")) {
            Some((lv, m)) => (lv.trim(), m),
            None => ("", rest),
        };
        rows.push_str(&format!(
            r#"<tr class="{}"><td class="when">{}</td><td>{}</td><td>{}</td></tr>"#,
            esc(&level.to_lowercase()),
            esc(&when),
            esc(level),
            esc(msg)
        ));
    }
    let body = format!(
        r#"<h1>Log</h1><p class="note">The last {} lines of {}, the newest at the bottom; times are local.</p>{}<table class="entries" id="log"><thead><tr><th>When</th><th>Level</th><th>What</th></tr></thead><tbody>{rows}</tbody></table><p id="end"><a href="/log#end">Show newer lines</a></p>"#,
        shown.len(),
        html::path(&path),
        if rows.is_empty() {
            r#"<p class="empty">Nothing is logged yet.</p>"#
        } else {
            ""
        },
    );
    Reply::Html(200, html::frame("Log", &nav(shared, None), &body))
}

/// The last `max` bytes of a file, from the first whole line in them.
fn read_end(path: &Path, max: u64) -> std::io::Result<String> {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(max);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    let from = if start > 0 {
        buf.iter()
            .position(|&b| b == b'\n')
            .map_or(buf.len(), |i| i + 1)
    } else {
        0
    };
    Ok(String::from_utf8_lossy(&buf[from..]).into_owned())
}
