//! settings: the config file as a form. It writes the same file the tray's
//! Settings entry opens, through `config::update` — so the same checks and
//! messages as `mirrortray add`, and the user's comments kept (toml_edit).
//! A form value that is not a number is refused here, naming the field;
//! nothing is written then. Pairs are added through `config::add_pair`, the
//! one rule `mirrortray add` and the tray's "Add a folder…" use, and removed
//! by their source folder as `mirrortray remove` does (the backup folder is
//! left as it is).

use std::collections::HashMap;

use mirrortray::engine::config::{self, Config};
use mirrortray::engine::error::show;

use super::html::{self, esc, hidden};
use super::{Ask, Reply, Shared};

fn config_path(shared: &Shared) -> Result<std::path::PathBuf, String> {
    crate::commands::pairs::config_path(&shared.global)
}

/// `GET /settings`.
pub fn show_form(shared: &Shared, ask: &Ask) -> Reply {
    let path = match config_path(shared) {
        Ok(p) => p,
        Err(e) => return Reply::Html(500, html::problem(&e)),
    };
    let cfg = match config::load(&path) {
        Ok(c) => c,
        Err(e) => return Reply::Html(200, page(shared, &path, None, Some(&e.to_string()), None)),
    };
    let note = if ask.get("saved").is_some() {
        Some("Saved.")
    } else if ask.get("added").is_some() {
        Some("Added. The tray backs it up at once; a running `mirrortray watch` at its next start.")
    } else if ask.get("removed").is_some() {
        Some(
            "Removed. Its backup folder was left as it is (delete it yourself if you no longer need it).",
        )
    } else {
        None
    };
    Reply::Html(200, page(shared, &path, Some(&cfg), None, note))
}

/// `POST /settings/add`: a new pair from the form's two folders.
pub fn add(shared: &Shared, ask: &Ask) -> Reply {
    let path = match config_path(shared) {
        Ok(p) => p,
        Err(e) => return Reply::Html(500, html::problem(&e)),
    };
    let field = |k: &str| ask.form.get(k).map(|v| v.trim()).unwrap_or("");
    let (src, dst) = (field("add_src"), field("add_dst"));
    let refused = |e: String| {
        let cfg = config::load(&path).ok();
        Reply::Html(200, page(shared, &path, cfg.as_ref(), Some(&e), None))
    };
    if src.is_empty() || dst.is_empty() {
        return refused(
            "give both folders: the folder to back up, and where its backup goes".into(),
        );
    }
    let (src, dst) = (std::path::Path::new(src), std::path::Path::new(dst));
    if !src.is_absolute() || !dst.is_absolute() {
        return refused(format!(
            "give both folders as full paths, starting with / (got {} and {})",
            show(src),
            show(dst)
        ));
    }
    match config::add_pair(&path, src, dst, &[], true, None, false) {
        Ok((pair, _)) => {
            log::info!("local page: added {}", pair.label());
            Reply::Redirect("/settings?added=1".into())
        }
        Err(e) => refused(e.to_string()),
    }
}

/// `POST /settings/remove`: the pair whose source folder is `remove`.
pub fn remove(shared: &Shared, ask: &Ask) -> Reply {
    let path = match config_path(shared) {
        Ok(p) => p,
        Err(e) => return Reply::Html(500, html::problem(&e)),
    };
    let src = std::path::PathBuf::from(ask.form.get("remove").map(String::as_str).unwrap_or(""));
    let result = config::update(&path, |cfg: &mut Config| -> Result<Vec<_>, NotSaved> {
        let before = cfg.pairs.len();
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut cfg.pairs)
            .into_iter()
            .partition(|p| p.src == src);
        cfg.pairs = kept;
        if cfg.pairs.len() == before {
            return Err(NotSaved(format!(
                "no pair has the source folder {} (any more)",
                show(&src)
            )));
        }
        Ok(gone)
    });
    match result {
        Ok(gone) => {
            for p in gone {
                log::info!("local page: removed {}", p.label());
            }
            Reply::Redirect("/settings?removed=1".into())
        }
        Err(NotSaved(e)) => {
            let cfg = config::load(&path).ok();
            Reply::Html(200, page(shared, &path, cfg.as_ref(), Some(&e), None))
        }
    }
}

/// `POST /settings`.
pub fn save(shared: &Shared, ask: &Ask) -> Reply {
    let path = match config_path(shared) {
        Ok(p) => p,
        Err(e) => return Reply::Html(500, html::problem(&e)),
    };
    let result = config::update(&path, |cfg: &mut Config| -> Result<(), NotSaved> {
        apply(cfg, &ask.form).map_err(NotSaved)
    });
    match result {
        Ok(()) => {
            log::info!("local page: settings saved to {}", show(&path));
            Reply::Redirect("/settings?saved=1".into())
        }
        Err(NotSaved(e)) => {
            let cfg = config::load(&path).ok();
            Reply::Html(200, page(shared, &path, cfg.as_ref(), Some(&e), None))
        }
    }
}

/// Why the form was not saved: the config's own message, or a field's.
struct NotSaved(String);

impl From<config::ConfigError> for NotSaved {
    fn from(e: config::ConfigError) -> NotSaved {
        NotSaved(e.to_string())
    }
}

/// The form's values written into `cfg`.
fn apply(cfg: &mut Config, form: &HashMap<String, String>) -> Result<(), String> {
    let get = |k: &str| form.get(k).map(|v| v.trim()).unwrap_or("");
    fn whole<T: std::str::FromStr>(field: &str, v: &str) -> Result<T, String> {
        v.parse()
            .map_err(|_| format!("{field}: {v:?} is not a whole number"))
    }
    fn number(field: &str, v: &str) -> Result<f64, String> {
        v.parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && *x >= 0.0)
            .ok_or_else(|| format!("{field}: {v:?} is not a number of 0 or more"))
    }
    let s = &mut cfg.settings;
    s.retention_days = whole("Keep versions (days)", get("retention_days"))?;
    s.max_versions_mb = match get("max_versions_mb") {
        "" => None,
        v => Some(whole("Most space for versions (MB)", v)?),
    };
    s.min_free_percent = whole("Keep free on the backup disk (%)", get("min_free_percent"))?;
    s.thin_versions = form.contains_key("thin_versions");
    s.ignore_temporary_files = form.contains_key("ignore_temporary_files");
    s.keep_all_hours = whole("Keep every version for (hours)", get("keep_all_hours"))?;
    s.keep_hourly_days = whole("Then one an hour up to (days)", get("keep_hourly_days"))?;
    s.keep_daily_days = whole("Then one a day up to (days)", get("keep_daily_days"))?;
    s.drift_check_minutes = number(
        "Check for missed changes (minutes)",
        get("drift_check_minutes"),
    )?;
    s.alert_after_hours = number("Warn after no backup for (hours)", get("alert_after_hours"))?;
    for (i, p) in cfg.pairs.iter_mut().enumerate() {
        if let Some(text) = form.get(&format!("ignore_{i}")) {
            p.ignore = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect();
        }
        p.versions = form.contains_key(&format!("versions_{i}"));
        p.retention_days = match get(&format!("retention_{i}")) {
            "" => None,
            v => Some(whole(&format!("{}: keep versions (days)", p.label()), v)?),
        };
    }
    Ok(())
}

fn page(
    shared: &Shared,
    path: &std::path::Path,
    cfg: Option<&Config>,
    problem: Option<&str>,
    note: Option<&str>,
) -> String {
    let applies = match shared.status.get().map(|i| i.kind) {
        Some(k) if k == "tray" => "The tray applies it at once.",
        _ => "A running `mirrortray watch` applies it at its next start; the tray at once.",
    };
    let mut body = format!(
        r#"<h1>Settings</h1><p>Saved in {} (comments in it are kept). {applies}</p>"#,
        html::path(path)
    );
    if let Some(n) = note {
        body.push_str(&format!(r#"<p class="ok" id="saved">{}</p>"#, esc(n)));
    }
    if let Some(p) = problem {
        body.push_str(&format!(
            r#"<p class="problem" id="problem">Not saved: {}</p>"#,
            esc(p)
        ));
    }
    let Some(cfg) = cfg else {
        return html::frame("Settings", r#"<nav><a href="/">Overview</a></nav>"#, &body);
    };
    let s = &cfg.settings;
    let field = |name: &str, label: &str, value: String, help: &str| {
        format!(
            r#"<label class="field"><span>{}</span><input name="{name}" id="{name}" value="{}" inputmode="decimal"><small>{}</small></label>"#,
            esc(label),
            esc(&value),
            esc(help)
        )
    };
    body.push_str(r#"<form method="post" action="/settings" class="settings">"#);
    body.push_str(&hidden(&shared.secrets.csrf, &[]));
    body.push_str("<fieldset><legend>Versions</legend>");
    body.push_str(&field(
        "retention_days",
        "Keep versions (days)",
        s.retention_days.to_string(),
        "At least 1. Older versions are removed.",
    ));
    body.push_str(&field(
        "max_versions_mb",
        "Most space for versions (MB)",
        s.max_versions_mb.map(|m| m.to_string()).unwrap_or_default(),
        "Empty: no limit. Past it, the oldest go first.",
    ));
    body.push_str(&field(
        "min_free_percent",
        "Keep free on the backup disk (%)",
        s.min_free_percent.to_string(),
        "Below it the oldest versions go first (never the newest). 0: off.",
    ));
    body.push_str(&format!(
        r#"<label class="check"><input type="checkbox" name="thin_versions" id="thin_versions"{}> Thin older versions (like Time Machine)</label>"#,
        if s.thin_versions { " checked" } else { "" }
    ));
    body.push_str(&field(
        "keep_all_hours",
        "Keep every version for (hours)",
        s.keep_all_hours.to_string(),
        "At least 1.",
    ));
    body.push_str(&field(
        "keep_hourly_days",
        "Then one an hour up to (days)",
        s.keep_hourly_days.to_string(),
        "",
    ));
    body.push_str(&field(
        "keep_daily_days",
        "Then one a day up to (days)",
        s.keep_daily_days.to_string(),
        "After that, one a week. A deleted file's last version always stays.",
    ));
    body.push_str(&format!(
        r#"<label class="check"><input type="checkbox" name="ignore_temporary_files" id="ignore_temporary_files"{}> Leave out the temporary files of well-known programs (lock, swap and part-downloaded files)</label>"#,
        if s.ignore_temporary_files { " checked" } else { "" }
    ));
    body.push_str("</fieldset><fieldset><legend>Watching</legend>");
    body.push_str(&field(
        "drift_check_minutes",
        "Check for missed changes (minutes)",
        s.drift_check_minutes.to_string(),
        "A light comparison of both folders; 0: off.",
    ));
    body.push_str(&field(
        "alert_after_hours",
        "Warn after no backup for (hours)",
        s.alert_after_hours.to_string(),
        "",
    ));
    body.push_str("</fieldset>");
    for (i, p) in cfg.pairs.iter().enumerate() {
        body.push_str(&format!(
            r#"<fieldset id="pair-settings-{i}"><legend>{} → {}</legend>
<label class="field"><span>Leave alone (one pattern per line, as in .gitignore)</span><textarea name="ignore_{i}" id="ignore_{i}" rows="4">{}</textarea></label>
<label class="check"><input type="checkbox" name="versions_{i}" id="versions_{i}"{}> Keep versions of what the backup replaces or loses</label>
{}<p><button class="danger" id="remove_{i}" formaction="/settings/remove" name="remove" value="{}" data-confirm="{}">Stop backing up this folder</button></p></fieldset>"#,
            html::path(&p.src),
            html::path(&p.dst),
            esc(&p.ignore.join("\n")),
            if p.versions { " checked" } else { "" },
            field(
                &format!("retention_{i}"),
                "Keep its versions (days)",
                p.retention_days.map(|d| d.to_string()).unwrap_or_default(),
                "Empty: as above.",
            ),
            esc(&p.src.to_string_lossy()),
            esc(&format!(
                "Stop backing up {}? Its backup folder {} stays as it is, with its versions.",
                show(&p.src),
                show(&p.dst)
            )),
        ));
    }
    if cfg.pairs.is_empty() {
        body.push_str(r#"<p class="empty">No folder pairs yet: add one below, from the tray (Add a folder…) or with <code>mirrortray add SRC DST</code>.</p>"#);
    }
    body.push_str(r#"<fieldset id="add-pair"><legend>Back up another folder</legend>"#);
    body.push_str(&format!(
        r#"<label class="field"><span>Folder to back up</span><input name="add_src" id="add_src" placeholder="/home/me/Documents"></label>
<label class="field"><span>Its backup folder</span><input name="add_dst" id="add_dst" placeholder="/media/me/Backup/Documents"><small>{}</small></label>
<p><button id="add" formaction="/settings/add">Add</button></p></fieldset>"#,
        esc("Made if missing. An empty folder, or a mirrortray backup: a folder of other files is refused, because mirroring into it would move them into its versions.")
    ));
    body.push_str(r#"<p><button class="primary" id="save">Save</button></p></form>"#);
    html::frame(
        "Settings",
        r#"<nav><a href="/">Overview</a> <a class="here" href="/settings">Settings</a></nav>"#,
        &body,
    )
}
