//! guard: who may use the page, and which paths it may touch. Pure.
//!
//! Model. The page listens on 127.0.0.1 only, but any program of any user
//! on the machine, and any web site the user visits (through the browser),
//! can send it requests. So every request passes, in this order:
//! 1. **Host**: the `Host` header must be the loopback address and our port
//!    (`127.0.0.1:PORT` or `localhost:PORT`). A site that rebinds its own
//!    name to 127.0.0.1 (DNS rebinding) sends its own name, and is refused.
//! 2. **Token**: a 128-bit secret, made at start and written only to a file
//!    the user alone can read. It comes once in the URL (`?token=…`, what the
//!    tray and `mirrortray ui` open); the page answers with a cookie holding
//!    it (`HttpOnly`, `SameSite=Strict`) and a redirect to the same address
//!    without it, so it does not stay in the address bar or the history.
//!    Every other request must carry the cookie.
//! 3. **Changes**: only by POST, carrying a second secret (the CSRF token,
//!    put in every form of the page), and, when the browser says where the
//!    request comes from (`Origin`), from the page itself. `SameSite=Strict`
//!    already keeps the cookie off cross-site requests; this is the second
//!    lock.
//! 4. **Paths**: a path in a request is relative to a pair's folders, made
//!    of plain names only: no `..`, no `.`, no root, no empty name, no NUL,
//!    not mirrortray's own folder. Reading and writing then goes through the
//!    engine's no-follow folder handles, so a symlink cannot lead out either.
//!
//! Secrets are compared in constant time.

use std::path::{Component, Path, PathBuf};

/// The two secrets of one running page.
#[derive(Clone)]
pub struct Secrets {
    pub token: String,
    pub csrf: String,
}

impl Secrets {
    /// Fresh secrets from the system's random source (128 bits each).
    pub fn new() -> Result<Secrets, String> {
        Ok(Secrets {
            token: random_hex()?,
            csrf: random_hex()?,
        })
    }
}

fn random_hex() -> Result<String, String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| format!("cannot make a secret for the page: {e}"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not addressed to 127.0.0.1/localhost and our port.
    ForeignHost,
    /// No token in the URL, nor the cookie.
    NoToken,
    WrongToken,
    /// A change not made by POST.
    NotPost,
    /// A POST without the page's CSRF token, or from another origin.
    CrossSite,
}

impl Refusal {
    pub fn status(&self) -> u16 {
        match self {
            Refusal::ForeignHost => 421,
            Refusal::NoToken | Refusal::WrongToken => 403,
            Refusal::NotPost => 405,
            Refusal::CrossSite => 403,
        }
    }

    pub fn text(&self) -> &'static str {
        match self {
            Refusal::ForeignHost => {
                "This page answers only at 127.0.0.1 (the address mirrortray printed)."
            }
            Refusal::NoToken => {
                "Open this page from the tray (its status line, or Restore: …) or with `mirrortray ui`: the address they open carries its key."
            }
            Refusal::WrongToken => {
                "This key is not the running mirrortray's (it changes at every start): open the page again from the tray or with `mirrortray ui`."
            }
            Refusal::NotPost => "Changes are made with the page's buttons only.",
            Refusal::CrossSite => {
                "Refused: this change did not come from mirrortray's own page. Reload the page and try again."
            }
        }
    }
}

/// The name of the cookie: one per port, so two instances do not clash.
pub fn cookie_name(port: u16) -> String {
    format!("mirrortray-{port}")
}

/// Rule 1.
pub fn host_ok(host: Option<&str>, port: u16) -> bool {
    let Some(h) = host else { return false };
    let h = h.trim().to_ascii_lowercase();
    h == format!("127.0.0.1:{port}") || h == format!("localhost:{port}")
}

/// What rule 2 decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// The cookie holds the token.
    Cookie,
    /// The URL holds the token: set the cookie and redirect.
    FromUrl,
}

/// Rule 2: `url_token` is the `token` query parameter, `cookie` the
/// request's `Cookie` header.
pub fn admit(
    secrets: &Secrets,
    port: u16,
    url_token: Option<&str>,
    cookie: Option<&str>,
) -> Result<Admit, Refusal> {
    if let Some(t) = url_token {
        return if same(t, &secrets.token) {
            Ok(Admit::FromUrl)
        } else {
            Err(Refusal::WrongToken)
        };
    }
    let name = cookie_name(port);
    let found = cookie
        .into_iter()
        .flat_map(|c| c.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then_some(v)
        });
    match found {
        Some(v) if same(v, &secrets.token) => Ok(Admit::Cookie),
        Some(_) => Err(Refusal::WrongToken),
        None => Err(Refusal::NoToken),
    }
}

/// Rule 3, for a POST: the form's `csrf` field, and the `Origin` header if
/// the browser sent one.
pub fn change_ok(
    secrets: &Secrets,
    port: u16,
    csrf: Option<&str>,
    origin: Option<&str>,
) -> Result<(), Refusal> {
    if let Some(o) = origin {
        let o = o.trim().to_ascii_lowercase();
        if o != format!("http://127.0.0.1:{port}") && o != format!("http://localhost:{port}") {
            return Err(Refusal::CrossSite);
        }
    }
    match csrf {
        Some(c) if same(c, &secrets.csrf) => Ok(()),
        _ => Err(Refusal::CrossSite),
    }
}

/// Rule 4: a path from a request, as a relative path of plain names ("" is
/// the pair's folder itself).
pub fn rel_path(text: &str) -> Result<PathBuf, String> {
    if text.contains('\0') {
        return Err("a path may not hold a NUL character".into());
    }
    let trimmed = text.trim_matches('/');
    if text.starts_with('/') && !trimmed.is_empty() && text != format!("/{trimmed}") {
        return Err("not a path inside the folder".into());
    }
    let mut out = PathBuf::new();
    if trimmed.is_empty() {
        return Ok(out);
    }
    for part in trimmed.split('/') {
        match Path::new(part).components().next() {
            _ if part.is_empty() || part == "." || part == ".." => {
                return Err(format!(
                    "{part:?} is not a name: only paths inside the folder can be shown"
                ));
            }
            Some(Component::Normal(_)) => out.push(part),
            _ => return Err("not a path inside the folder".into()),
        }
    }
    if mirrortray::engine::history::is_reserved(&out) {
        return Err("mirrortray's own folder is not part of the backup".into());
    }
    Ok(out)
}

/// Equal, in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Secrets {
        Secrets {
            token: "t0k3n".into(),
            csrf: "c5rf".into(),
        }
    }

    #[test]
    fn hosts() {
        let table: &[(Option<&str>, bool)] = &[
            (Some("127.0.0.1:8080"), true),
            (Some("localhost:8080"), true),
            (Some("LOCALHOST:8080"), true),
            (Some("127.0.0.1:8081"), false),
            (Some("127.0.0.1"), false),
            (Some("evil.example:8080"), false),
            (Some("127.0.0.1.evil.example:8080"), false),
            (Some("[::1]:8080"), false),
            (None, false),
        ];
        for (h, want) in table {
            assert_eq!(host_ok(*h, 8080), *want, "{h:?}");
        }
    }

    #[test]
    fn tokens() {
        let s = secrets();
        type Row<'a> = (Option<&'a str>, Option<&'a str>, Result<Admit, Refusal>);
        let table: &[Row] = &[
            (Some("t0k3n"), None, Ok(Admit::FromUrl)),
            (Some("t0k3n"), Some("mirrortray-9=bad"), Ok(Admit::FromUrl)),
            (
                Some("t0k3m"),
                Some("mirrortray-9=t0k3n"),
                Err(Refusal::WrongToken),
            ),
            (None, Some("mirrortray-9=t0k3n"), Ok(Admit::Cookie)),
            (None, Some("a=b; mirrortray-9=t0k3n"), Ok(Admit::Cookie)),
            (None, Some("mirrortray-8=t0k3n"), Err(Refusal::NoToken)),
            (None, Some("mirrortray-9=t0k3"), Err(Refusal::WrongToken)),
            (None, None, Err(Refusal::NoToken)),
        ];
        for (u, c, want) in table {
            assert_eq!(&admit(&s, 9, *u, *c), want, "{u:?} {c:?}");
        }
    }

    #[test]
    fn changes() {
        let s = secrets();
        let table: &[(Option<&str>, Option<&str>, bool)] = &[
            (Some("c5rf"), None, true),
            (Some("c5rf"), Some("http://127.0.0.1:9"), true),
            (Some("c5rf"), Some("http://localhost:9"), true),
            (Some("c5rf"), Some("http://evil.example"), false),
            // What a browser sends from an opaque origin (a sandboxed
            // frame, a file: page): never the page itself.
            (Some("c5rf"), Some("null"), false),
            (Some("c5r"), None, false),
            (None, Some("http://127.0.0.1:9"), false),
        ];
        for (c, o, want) in table {
            assert_eq!(change_ok(&s, 9, *c, *o).is_ok(), *want, "{c:?} {o:?}");
        }
    }

    #[test]
    fn paths() {
        let ok: &[(&str, &str)] = &[
            ("", ""),
            ("/", ""),
            ("a", "a"),
            ("a/b c/ünï", "a/b c/ünï"),
            ("a/b/", "a/b"),
            ("/a/b", "a/b"),
            ("..a/b..", "..a/b.."),
        ];
        for (t, want) in ok {
            assert_eq!(rel_path(t).as_deref(), Ok(Path::new(want)), "{t:?}");
        }
        for t in [
            "..",
            "a/../b",
            "a/./b",
            "a//b",
            "../etc/passwd",
            "a\0b",
            ".mirrortray",
            ".mirrortray/versions",
            "//etc",
        ] {
            assert!(rel_path(t).is_err(), "{t:?} was accepted");
        }
    }
}
