//! page: the local web page of a running instance (tray or `watch`) for
//! status, browsing the backup as of any time, and getting files back.
//!
//! Model. One small synchronous HTTP server (`tiny_http`) on 127.0.0.1 and
//! a port the system picks, with a few threads answering requests. Every
//! request passes the rules of [`guard`] first (host, token, CSRF, paths),
//! then one route reads:
//! - the status the instance writes for `mirrortray status` ([`StatusView`]:
//!   the same truth as the tray), and
//! - each pair's history, opened fresh per request (read only, no-follow
//!   handles: `engine::history`),
//!
//! or changes something through the same calls as the command line
//! (`restore` is `commands::restore::perform`; see [`actions`]). HTML is
//! made on the server ([`views`]); the page's CSS and JavaScript are
//! embedded in the binary.
//!
//! The address with its token is written to `page-<pid>.url` in the runtime
//! folder, readable by the user alone; `mirrortray ui` reads it. The file is
//! removed when the page stops.

mod actions;
pub mod guard;
mod html;
mod settings;
mod views;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use mirrortray::engine::status_file::{StatusView, runtime_dir};
use tiny_http::{Header, Method, Request, Response, Server};

use crate::cli::Global;
use guard::{Admit, Refusal, Secrets};

/// Requests answered at once (a page loads its CSS and previews beside).
const THREADS: usize = 4;
/// The largest form the page accepts (settings, restore): 1 MB.
const MAX_FORM: u64 = 1 << 20;

/// A pair as the page shows it.
#[derive(Debug, Clone)]
pub struct Roots {
    pub name: String,
    pub src: PathBuf,
    pub dst: PathBuf,
}

/// What every request may read.
pub(crate) struct Shared {
    pub secrets: Secrets,
    pub port: u16,
    pub pairs: RwLock<Vec<Roots>>,
    pub status: StatusView,
    pub global: Global,
    /// Restores the page made, by number, for their Undo button.
    pub undo: Mutex<HashMap<u64, actions::Undo>>,
}

impl Shared {
    pub fn pairs(&self) -> Vec<Roots> {
        self.pairs.read().map(|p| p.clone()).unwrap_or_default()
    }
}

/// The running page; stops when dropped.
pub struct Page {
    shared: Arc<Shared>,
    server: Arc<Server>,
    threads: Vec<JoinHandle<()>>,
    url_file: PathBuf,
}

impl Page {
    /// Starts the page for `pairs`, reading the status from `status`.
    pub fn start(global: &Global, pairs: Vec<Roots>, status: StatusView) -> Result<Page, String> {
        let server = Server::http("127.0.0.1:0")
            .map_err(|e| format!("cannot start the local page on 127.0.0.1: {e}"))?;
        let port = server
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .ok_or("cannot start the local page: no port")?;
        let secrets = Secrets::new()?;
        let url = format!("http://127.0.0.1:{port}/?token={}", secrets.token);
        let url_file = url_file(std::process::id());
        write_private(&url_file, &format!("{url}\n"))?;
        let shared = Arc::new(Shared {
            secrets,
            port,
            pairs: RwLock::new(pairs),
            status,
            global: global.clone(),
            undo: Mutex::new(HashMap::new()),
        });
        let server = Arc::new(server);
        let threads = (0..THREADS)
            .map(|_| {
                let (server, shared) = (server.clone(), shared.clone());
                std::thread::spawn(move || {
                    while let Ok(req) = server.recv() {
                        answer(&shared, req);
                    }
                })
            })
            .collect();
        log::info!("local page at http://127.0.0.1:{port}/ (its key is in the runtime folder)");
        Ok(Page {
            shared,
            server,
            threads,
            url_file,
        })
    }

    /// `http://127.0.0.1:PORT`.
    #[cfg_attr(not(feature = "tray"), allow(dead_code))]
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.shared.port)
    }

    /// The page's key.
    #[cfg_attr(not(feature = "tray"), allow(dead_code))]
    pub fn token(&self) -> String {
        self.shared.secrets.token.clone()
    }

    /// A way to tell the page the pairs changed (the config was reloaded).
    #[cfg_attr(not(feature = "tray"), allow(dead_code))]
    pub fn pairs_setter(&self) -> impl Fn(Vec<Roots>) + Send + 'static {
        let shared = self.shared.clone();
        move |pairs| {
            if let Ok(mut p) = shared.pairs.write() {
                *p = pairs;
            }
        }
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.url_file);
        for _ in &self.threads {
            self.server.unblock();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// `page-<pid>.url` in the runtime folder.
pub fn url_file(pid: u32) -> PathBuf {
    runtime_dir().join(format!("page-{pid}.url"))
}

/// Writes a file only its owner can read (mode 0600 from the start).
fn write_private(path: &std::path::Path, text: &str) -> Result<(), String> {
    use mirrortray::engine::error::{reason, show};
    let fail = |e: std::io::Error| {
        format!(
            "{}: cannot write the page's address: {}",
            show(path),
            reason(&e)
        )
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let _ = std::fs::remove_file(path);
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(path).map_err(fail)?;
    f.write_all(text.as_bytes()).map_err(fail)
}

/// One request, as the routes see it.
pub(crate) struct Ask {
    pub path: String,
    pub query: HashMap<String, String>,
    pub form: HashMap<String, String>,
}

impl Ask {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.form
            .get(k)
            .or_else(|| self.query.get(k))
            .map(String::as_str)
    }
}

/// What a route answers.
pub(crate) enum Reply {
    Html(u16, String),
    /// Bytes with their content type; `attachment`: a download's file name.
    Bytes {
        body: Vec<u8>,
        mime: &'static str,
        attachment: Option<String>,
    },
    Redirect(String),
}

fn header(k: &str, v: &str) -> Option<Header> {
    Header::from_bytes(k.as_bytes(), v.as_bytes()).ok()
}

fn answer(shared: &Shared, mut req: Request) {
    let head = |name: &'static str| {
        req.headers()
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str().to_string())
    };
    let host = head("Host");
    let cookie = head("Cookie");
    let origin = head("Origin");
    let url = req.url().to_string();
    let (path, q) = url.split_once('?').unwrap_or((&url, ""));
    let query: HashMap<String, String> =
        form_urlencoded::parse(q.as_bytes()).into_owned().collect();
    let method = req.method().clone();

    let checked = (|| {
        if !guard::host_ok(host.as_deref(), shared.port) {
            return Err(Refusal::ForeignHost);
        }
        let admit = guard::admit(
            &shared.secrets,
            shared.port,
            query.get("token").map(String::as_str),
            cookie.as_deref(),
        )?;
        Ok(admit)
    })();
    let reply = match checked {
        Err(r) => refused(&r),
        Ok(Admit::FromUrl) => {
            // Keep the key in a cookie, and out of the address bar.
            let rest: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(query.iter().filter(|(k, _)| *k != "token"))
                .finish();
            let to = if rest.is_empty() {
                path.to_string()
            } else {
                format!("{path}?{rest}")
            };
            let cookie = format!(
                "{}={}; Path=/; HttpOnly; SameSite=Strict",
                guard::cookie_name(shared.port),
                shared.secrets.token
            );
            let mut resp = Response::empty(303);
            for (k, v) in [("Location", to.as_str()), ("Set-Cookie", cookie.as_str())] {
                if let Some(h) = header(k, v) {
                    resp.add_header(h);
                }
            }
            let _ = req.respond(with_safety(resp));
            return;
        }
        Ok(Admit::Cookie) => {
            let mut form = HashMap::new();
            let mut bad = None;
            if method == Method::Post {
                let mut body = Vec::new();
                let _ = req.as_reader().take(MAX_FORM).read_to_end(&mut body);
                form = form_urlencoded::parse(&body).into_owned().collect();
                if let Err(r) = guard::change_ok(
                    &shared.secrets,
                    shared.port,
                    form.get("csrf").map(String::as_str),
                    origin.as_deref(),
                ) {
                    bad = Some(r);
                }
            } else if method != Method::Get && method != Method::Head {
                bad = Some(Refusal::NotPost);
            }
            match bad {
                Some(r) => refused(&r),
                None => {
                    let ask = Ask {
                        path: path.to_string(),
                        query,
                        form,
                    };
                    route(shared, &method, &ask)
                }
            }
        }
    };
    respond(req, reply);
}

fn refused(r: &Refusal) -> Reply {
    Reply::Html(r.status(), html::refusal(r.text()))
}

/// Headers every answer carries: no framing by other sites, no guessing of
/// types, no scripts but the page's own, nothing cached.
fn with_safety<R: Read>(mut resp: Response<R>) -> Response<R> {
    for (k, v) in [
        ("X-Frame-Options", "DENY"),
        ("X-Content-Type-Options", "nosniff"),
        // Not "no-referrer": Chromium then sends `Origin: null` with the
        // page's own forms, which rule 3 must refuse.
        ("Referrer-Policy", "same-origin"),
        ("Cache-Control", "no-store"),
        (
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
    ] {
        if let Some(h) = header(k, v) {
            resp.add_header(h);
        }
    }
    resp
}

fn respond(req: Request, reply: Reply) {
    let result = match reply {
        Reply::Html(code, body) => {
            let mut r = Response::from_string(body).with_status_code(code);
            if let Some(h) = header("Content-Type", "text/html; charset=utf-8") {
                r.add_header(h);
            }
            req.respond(with_safety(r))
        }
        Reply::Bytes {
            body,
            mime,
            attachment,
        } => {
            let mut r = Response::from_data(body);
            if let Some(h) = header("Content-Type", mime) {
                r.add_header(h);
            }
            if let Some(name) = attachment {
                let safe: String = name
                    .chars()
                    .map(|c| {
                        if c.is_ascii_graphic() && c != '"' && c != '\\' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                let enc: String = form_urlencoded::byte_serialize(name.as_bytes()).collect();
                if let Some(h) = header(
                    "Content-Disposition",
                    &format!("attachment; filename=\"{safe}\"; filename*=UTF-8''{enc}"),
                ) {
                    r.add_header(h);
                }
            } else if let Some(h) = header("Content-Security-Policy", "sandbox") {
                // A preview shown as itself (an SVG, a text) runs nothing.
                r.add_header(h);
            }
            req.respond(with_safety(r))
        }
        Reply::Redirect(to) => {
            let mut r = Response::empty(303);
            if let Some(h) = header("Location", &to) {
                r.add_header(h);
            }
            req.respond(with_safety(r))
        }
    };
    if let Err(e) = result {
        log::debug!("local page: cannot answer: {e}");
    }
}

fn route(shared: &Shared, method: &Method, ask: &Ask) -> Reply {
    let post = *method == Method::Post;
    match (ask.path.as_str(), post) {
        ("/", false) => views::overview(shared),
        ("/browse", false) => views::browse(shared, ask),
        ("/open", false) => views::open(shared, ask),
        ("/file", false) => views::file(shared, ask),
        ("/raw", false) => views::raw(shared, ask),
        ("/diff", false) => views::diff(shared, ask),
        ("/deleted", false) => views::deleted(shared, ask),
        ("/search", false) => views::search(shared, ask),
        ("/log", false) => views::log(shared),
        ("/settings", false) => settings::show_form(shared, ask),
        ("/settings", true) => settings::save(shared, ask),
        ("/settings/add", true) => settings::add(shared, ask),
        ("/settings/remove", true) => settings::remove(shared, ask),
        ("/restore", true) => actions::restore(shared, ask),
        ("/undo", true) => actions::undo(shared, ask),
        ("/page.css", false) => Reply::Bytes {
            body: include_bytes!("assets/page.css").to_vec(),
            mime: "text/css; charset=utf-8",
            attachment: None,
        },
        ("/page.js", false) => Reply::Bytes {
            body: include_bytes!("assets/page.js").to_vec(),
            mime: "text/javascript; charset=utf-8",
            attachment: None,
        },
        (_, true) | ("/restore" | "/undo" | "/settings/add" | "/settings/remove", false) => {
            Reply::Html(405, html::refusal(Refusal::NotPost.text()))
        }
        _ => Reply::Html(404, html::refusal("There is no such page here.")),
    }
}
