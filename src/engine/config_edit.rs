//! config_edit: writes a changed config into the user's own text, keeping
//! their comments, blank lines, order and quoting.
//!
//! Model. An edit is made on the parsed [`Config`] (where the rules live);
//! what is written is the old text (a `toml_edit` document) with only what
//! changed replaced:
//! - `[settings]`: each key whose value changed is set (or removed, for an
//!   optional key now unset); keys that did not change keep their text, an
//!   absent key stays absent.
//! - `[[pair]]`: tables are matched to pairs by their (src, dst); a kept
//!   pair keeps its table (and the comments in and above it) with changed
//!   keys set; a new pair gets a new table; a removed pair's table goes.
//!   Pairs are written in the new config's order.
//!
//! The caller checks that the text parses back to exactly the new config
//! (`config::save`), so a case missed here can never write a wrong file.

use std::path::Path;

use toml_edit::{ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value};

use super::config::{Config, PairConfig, Settings};
use super::offsite::OffsiteConfig;

/// `old_text` (may be empty) with `new` written in; `old` is what
/// `old_text` parses to.
pub fn render(old_text: &str, old: &Config, new: &Config) -> Option<String> {
    let mut doc: DocumentMut = old_text.parse().ok()?;
    settings(&mut doc, &old.settings, &new.settings)?;
    pairs(&mut doc, old, new)?;
    Some(doc.to_string())
}

fn settings(doc: &mut DocumentMut, old: &Settings, new: &Settings) -> Option<()> {
    if old == new {
        return Some(());
    }
    let t = doc
        .entry("settings")
        .or_insert_with(|| {
            // Made now: at the end, so a comment at the top of the file
            // stays at the top (toml_edit keeps it with the first table).
            let mut t = Table::new();
            t.set_position(Some(isize::MAX));
            Item::Table(t)
        })
        .as_table_mut()?;
    macro_rules! set {
        ($field:ident, $v:expr) => {
            if old.$field != new.$field {
                set(t, stringify!($field), $v);
            }
        };
    }
    set!(retention_days, i64::from(new.retention_days));
    set!(drift_check_minutes, new.drift_check_minutes);
    set!(alert_after_hours, new.alert_after_hours);
    set!(poll_seconds, new.poll_seconds);
    set!(min_free_percent, i64::from(new.min_free_percent));
    set!(thin_versions, new.thin_versions);
    set!(keep_all_hours, i64::from(new.keep_all_hours));
    set!(keep_hourly_days, i64::from(new.keep_hourly_days));
    set!(keep_daily_days, i64::from(new.keep_daily_days));
    set!(ignore_temporary_files, new.ignore_temporary_files);
    if old.max_versions_mb != new.max_versions_mb {
        match new.max_versions_mb {
            Some(m) => {
                set(t, "max_versions_mb", i64::try_from(m).ok()?);
            }
            None => {
                t.remove("max_versions_mb");
            }
        }
    }
    Some(())
}

/// Sets `key` to `v`, keeping the comment and spacing around its old value.
fn set(t: &mut Table, key: &str, v: impl Into<Value>) {
    let mut v = v.into();
    match t.get_mut(key) {
        Some(Item::Value(old)) => {
            *v.decor_mut() = old.decor().clone();
            *old = v;
        }
        _ => {
            t.insert(key, Item::Value(v));
        }
    }
}

fn path_text(p: &Path) -> Option<String> {
    p.to_str().map(String::from)
}

fn pairs(doc: &mut DocumentMut, old: &Config, new: &Config) -> Option<()> {
    if old.pairs == new.pairs {
        return Some(());
    }
    // The old tables, in the old pairs' order.
    let mut tables: Vec<Option<Table>> = match doc.remove("pair") {
        Some(Item::ArrayOfTables(a)) => a.into_iter().map(Some).collect(),
        Some(_) => return None,
        None => Vec::new(),
    };
    if tables.len() != old.pairs.len() {
        return None;
    }
    let mut out = ArrayOfTables::new();
    for p in &new.pairs {
        let found = old
            .pairs
            .iter()
            .position(|o| o.src == p.src && o.dst == p.dst)
            .and_then(|i| tables[i].take().map(|t| (old.pairs[i].clone(), t)));
        let table = match found {
            Some((before, mut t)) => {
                pair_keys(&mut t, Some(&before), p)?;
                t
            }
            None => {
                let mut t = Table::new();
                pair_keys(&mut t, None, p)?;
                t
            }
        };
        out.push(table);
    }
    if !out.is_empty() {
        doc.insert("pair", Item::ArrayOfTables(out));
    }
    Some(())
}

fn pair_keys(t: &mut Table, old: Option<&PairConfig>, new: &PairConfig) -> Option<()> {
    if old.is_none_or(|o| o.src != new.src) {
        set(t, "src", path_text(&new.src)?);
    }
    if old.is_none_or(|o| o.dst != new.dst) {
        set(t, "dst", path_text(&new.dst)?);
    }
    if old.is_none_or(|o| o.ignore != new.ignore) {
        if new.ignore.is_empty() && old.is_none() {
            // Left out of a new table, as confy wrote it.
        } else {
            let mut a = toml_edit::Array::new();
            for p in &new.ignore {
                a.push(p.as_str());
            }
            set(t, "ignore", a);
        }
    }
    if old.is_none_or(|o| o.versions != new.versions) {
        set(t, "versions", new.versions);
    }
    if old.is_none_or(|o| o.retention_days != new.retention_days) {
        match new.retention_days {
            Some(d) => {
                set(t, "retention_days", i64::from(d));
            }
            None => {
                t.remove("retention_days");
            }
        }
    }
    if old.is_none_or(|o| o.offsite != new.offsite) {
        match &new.offsite {
            Some(o) => {
                set(t, "offsite", offsite_table(o)?);
            }
            None => {
                t.remove("offsite");
            }
        }
    }
    Some(())
}

/// `offsite = { ... }` as one inline table: the keys that differ from the
/// defaults, so a user's short line stays short.
fn offsite_table(o: &OffsiteConfig) -> Option<InlineTable> {
    let mut t = InlineTable::new();
    t.insert("repository", o.repository.as_str().into());
    if let Some(f) = &o.password_file {
        t.insert("password_file", path_text(f)?.into());
    }
    if let Some(c) = &o.password_command {
        t.insert("password_command", c.as_str().into());
    }
    if !o.options.is_empty() {
        let mut opts = InlineTable::new();
        for (k, v) in &o.options {
            opts.insert(k, v.as_str().into());
        }
        t.insert("options", Value::InlineTable(opts));
    }
    if let Some(kib) = o.limit_upload {
        t.insert("limit_upload", i64::from(kib).into());
    }
    let d = OffsiteConfig::new("", "");
    for (key, v, default) in [
        ("interval_minutes", o.interval_minutes, d.interval_minutes),
        ("overdue_hours", o.overdue_hours, d.overdue_hours),
        ("keep_hourly", o.keep_hourly, d.keep_hourly),
        ("keep_daily", o.keep_daily, d.keep_daily),
        ("keep_weekly", o.keep_weekly, d.keep_weekly),
        ("keep_monthly", o.keep_monthly, d.keep_monthly),
    ] {
        if v != default {
            t.insert(key, i64::from(v).into());
        }
    }
    Some(t)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::engine::config::parse;

    const TEXT: &str = r#"# My backups. Keep this comment!
[settings]
retention_days = 30   # a month is plenty
# min_free_percent = 2

# Work first.
[[pair]]
src = "/home/me/Work"
dst = "/mnt/b/Work"
ignore = ["*.tmp"]  # editor junk

# Photos: big.
[[pair]]
src = "/home/me/Photos"
dst = "/mnt/b/Photos"
versions = false
"#;

    fn edited(f: impl FnOnce(&mut Config)) -> String {
        let p = Path::new("/c.toml");
        let old = parse(p, TEXT).unwrap();
        let mut new = old.clone();
        f(&mut new);
        let text = render(TEXT, &old, &new).unwrap();
        assert_eq!(parse(p, &text).unwrap(), new, "{text}");
        text
    }

    #[test]
    fn a_setting_changed_keeps_every_comment() {
        let t = edited(|c| c.settings.retention_days = 90);
        assert!(
            t.contains("retention_days = 90   # a month is plenty"),
            "{t}"
        );
        for keep in [
            "# My backups. Keep this comment!",
            "# min_free_percent = 2",
            "# Work first.",
            "# editor junk",
            "# Photos: big.",
        ] {
            assert!(t.contains(keep), "{keep} lost:\n{t}");
        }
        // Nothing else moved.
        assert_eq!(t.lines().count(), TEXT.lines().count(), "{t}");
    }

    #[test]
    fn table_of_edits() {
        type Edit = fn(&mut Config);
        let table: &[(&str, Edit, &[&str], &[&str])] = &[
            (
                "a floor set",
                |c| c.settings.min_free_percent = 5,
                &["min_free_percent = 5", "# min_free_percent = 2"],
                &[],
            ),
            (
                "a size limit set, then gone",
                |c| c.settings.max_versions_mb = Some(500),
                &["max_versions_mb = 500"],
                &[],
            ),
            (
                "thinning off",
                |c| c.settings.thin_versions = false,
                &["thin_versions = false", "# min_free_percent = 2"],
                &[],
            ),
            (
                "ignore patterns of the second pair",
                |c| c.pairs[1].ignore = vec!["*.xmp".into(), "cache/".into()],
                &[r#"ignore = ["*.xmp", "cache/"]"#, "# Photos: big."],
                &[],
            ),
            (
                "the first pair removed",
                |c| {
                    c.pairs.remove(0);
                },
                &["# Photos: big.", "/home/me/Photos"],
                &["/home/me/Work", "# editor junk"],
            ),
            (
                "a pair added",
                |c| {
                    c.pairs.push(PairConfig {
                        src: "/home/me/Music".into(),
                        dst: "/mnt/b/Music".into(),
                        ignore: vec![],
                        versions: true,
                        retention_days: None,
                        offsite: None,
                    })
                },
                &["/home/me/Music", "# Work first.", "# Photos: big."],
                &[],
            ),
            (
                "versions back on",
                |c| c.pairs[1].versions = true,
                &["versions = true", "# Photos: big."],
                &["versions = false"],
            ),
        ];
        for (what, f, has, lacks) in table {
            let t = edited(*f);
            for h in *has {
                assert!(t.contains(h), "{what}: {h:?} missing in\n{t}");
            }
            for l in *lacks {
                assert!(!t.contains(l), "{what}: {l:?} still in\n{t}");
            }
        }
    }

    #[test]
    fn a_settings_table_made_for_a_file_without_one_leaves_the_top_comment_on_top() {
        let p = Path::new("/c.toml");
        let text = "# Mine.\n[[pair]]\nsrc = \"/a\"\ndst = \"/b\"\n";
        let old = parse(p, text).unwrap();
        let mut new = old.clone();
        new.settings.retention_days = 45;
        let t = render(text, &old, &new).unwrap();
        assert!(t.starts_with("# Mine.\n[[pair]]"), "{t}");
        assert_eq!(parse(p, &t).unwrap(), new, "{t}");
    }

    #[test]
    fn an_offsite_copy_is_written_as_one_short_line_and_kept_by_other_edits() {
        let p = Path::new("/c.toml");
        let old = parse(p, TEXT).unwrap();
        let mut new = old.clone();
        let mut o = OffsiteConfig::new("rest:http://nas:8000/", "/home/me/.pw");
        o.keep_daily = 30;
        new.pairs[0].offsite = Some(o);
        let text = render(TEXT, &old, &new).unwrap();
        assert_eq!(parse(p, &text).unwrap(), new, "{text}");
        assert!(
            text.contains(r#"offsite = { repository = "rest:http://nas:8000/", password_file = "/home/me/.pw", keep_daily = 30 }"#),
            "{text}"
        );
        // Another edit leaves it as it is.
        let mut third = new.clone();
        third.settings.retention_days = 60;
        let again = render(&text, &new, &third).unwrap();
        assert_eq!(parse(p, &again).unwrap(), third, "{again}");
        assert!(again.contains("keep_daily = 30 }"), "{again}");
    }

    #[test]
    fn from_an_empty_file() {
        let p = Path::new("/c.toml");
        let old = Config::default();
        let mut new = old.clone();
        new.pairs.push(PairConfig {
            src: "/a".into(),
            dst: "/b".into(),
            ignore: vec![],
            versions: true,
            retention_days: Some(7),
            offsite: None,
        });
        let text = render("", &old, &new).unwrap();
        assert_eq!(parse(p, &text).unwrap(), new, "{text}");
    }
}
