//! html: the page's frame and the small pieces every view uses. Every text
//! that comes from a user's files goes through [`esc`] (paths first through
//! the engine's `show`, which escapes control characters).

use std::path::Path;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use mirrortray::engine::error::show;

/// HTML-escaped text.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A path for people, escaped.
pub fn path(p: &Path) -> String {
    esc(&show(p))
}

/// A local time, to the second.
pub fn local(t: Timestamp) -> String {
    t.to_zoned_datetime(TimeZone::system())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// A local time to the millisecond: two moments a backup kept can be
/// within one second.
pub fn local_ms(t: Timestamp) -> String {
    t.to_zoned_datetime(TimeZone::system())
        .strftime("%Y-%m-%d %H:%M:%S%.3f")
        .to_string()
}

/// A local time without the date when it is today.
pub fn local_short(t: Timestamp) -> String {
    let tz = TimeZone::system();
    let z = t.to_zoned_datetime(tz.clone());
    if z.date() == Timestamp::now().to_zoned_datetime(tz).date() {
        z.strftime("today %H:%M:%S").to_string()
    } else {
        z.strftime("%a %Y-%m-%d %H:%M").to_string()
    }
}

/// A link: `base` with these query parameters, escaped for an attribute.
pub fn href(base: &str, params: &[(&str, &str)]) -> String {
    let q: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    if q.is_empty() {
        esc(base)
    } else {
        esc(&format!("{base}?{q}"))
    }
}

/// A relative path as a query value ("" is the folder itself).
pub fn rel_param(rel: &Path) -> String {
    rel.to_string_lossy().into_owned()
}

/// A POST form's hidden fields: the CSRF token and these values.
pub fn hidden(csrf: &str, fields: &[(&str, &str)]) -> String {
    let mut out = format!(r#"<input type="hidden" name="csrf" value="{}">"#, esc(csrf));
    for (k, v) in fields {
        out.push_str(&format!(
            r#"<input type="hidden" name="{}" value="{}">"#,
            esc(k),
            esc(v)
        ));
    }
    out
}

/// The frame of every page: title, the navigation, the body.
pub fn frame(title: &str, nav: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · mirrortray</title>
<link rel="stylesheet" href="/page.css">
<script src="/page.js" defer></script>
</head><body>
<header><a class="brand" href="/">mirrortray</a>{nav}</header>
<main>
{body}
</main>
</body></html>
"#,
        title = esc(title),
    )
}

/// A refused request, in words.
pub fn refusal(text: &str) -> String {
    frame(
        "Not allowed",
        "",
        &format!(r#"<p class="problem" id="refused">{}</p>"#, esc(text)),
    )
}

/// An error of a view, in words, with a way back.
pub fn problem(text: &str) -> String {
    frame(
        "Cannot show this",
        "",
        &format!(
            r#"<p class="problem" id="problem">{}</p><p><a href="/">Back to the overview</a></p>"#,
            esc(text)
        ),
    )
}
