//! A real browser for the local page's tests: Debian's Chromium driven by
//! its chromedriver over W3C WebDriver (`fantoccini`), headless, on a free
//! loopback port of its own. The driver is started per test and ended by
//! its process id when the [`Browser`] is dropped, with the browsers it
//! started (they share its process group).
//!
//! Every wait polls with a generous deadline, never a fixed sleep; a wait
//! that runs out says what it waited for and what the page showed then.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};

/// How long any wait in a browser test may take: generous, for a loaded
/// CI machine; a passing wait returns as soon as its condition holds.
pub const DEADLINE: Duration = Duration::from_secs(60);
/// The page's answers that end a path: a refused request, a view that
/// cannot show what it was asked (`html::refusal`, `html::problem`).
pub const DEAD_ENDS: &str = "p#refused, p#problem";
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(50);

/// Where the browser and its driver are, or a failure that says how to get
/// them (CI installs them with the test dependencies).
pub fn tools() -> (PathBuf, PathBuf) {
    let find = |names: &[&str]| names.iter().find_map(|n| in_path(n));
    let chromium = find(&["chromium", "chromium-browser"]);
    let driver = find(&["chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => (c, d),
        (c, d) => panic!(
            "the browser tests need Chromium and its WebDriver ({}{}): install them with \
             `scripts/install-deps.sh --test` (Debian packages chromium and chromium-driver)",
            if c.is_none() { "no chromium" } else { "" },
            match (c.is_none(), d.is_none()) {
                (true, true) => ", no chromedriver",
                (false, true) => "no chromedriver",
                _ => "",
            }
        ),
    }
}

fn in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file()))
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// chromedriver, running; ended (with its browsers) on drop.
struct Driver {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Driver {
    /// Starts chromedriver on a free port and waits until it says it is
    /// ready. Its home and temp folders (the browser's profile) are made
    /// in `dir`, and its log is `dir/chromedriver.log`.
    fn start(driver: &Path, dir: &Path) -> Driver {
        let home = dir.join("browser-home");
        let tmp = dir.join("browser-tmp");
        for d in [&home, &tmp] {
            std::fs::create_dir_all(d).unwrap();
        }
        let log = dir.join("chromedriver.log");
        let log = log.as_path();
        let mut last = String::new();
        // A port can be taken between looking and binding: try a few.
        for _ in 0..3 {
            let port = free_port();
            let child = Command::new(driver)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .env("HOME", &home)
                .env("TMPDIR", &tmp)
                .env_remove("DISPLAY")
                .env_remove("WAYLAND_DISPLAY")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own process group, so the browsers it starts end with it.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
            let mut d = Driver {
                child,
                port,
                log: log.to_path_buf(),
            };
            let start = Instant::now();
            loop {
                if let Ok(Some(st)) = d.child.try_wait() {
                    // Perhaps the port was taken meanwhile: another one.
                    last = format!("chromedriver exited ({st})");
                    break;
                }
                if d.ready() {
                    return d;
                }
                if start.elapsed() > DEADLINE {
                    panic!(
                        "chromedriver did not become ready within {DEADLINE:?}; its log:\n{}",
                        tail(log)
                    );
                }
                std::thread::sleep(POLL);
            }
        }
        panic!("{last}; its log:\n{}", tail(log));
    }

    /// GET /status answers `"ready": true`.
    fn ready(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let req = format!(
            "GET /status HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        );
        if s.write_all(req.as_bytes()).is_err() {
            return false;
        }
        // It may keep the connection open: read until the answer says it.
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return false,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
            if String::from_utf8_lossy(&out)
                .replace(' ', "")
                .contains("\"ready\":true")
            {
                return true;
            }
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        // The group first (the browsers), then the driver itself.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{pid}")])
            .stderr(Stdio::null())
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(POLL);
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One headless Chromium session on its own chromedriver.
pub struct Browser {
    // Dropped before the driver.
    client: Option<Client>,
    driver: Driver,
    /// Where screenshots go.
    shots: PathBuf,
}

impl Browser {
    /// Starts chromedriver (its log, home and temp folders in `dir`) and
    /// opens a session of headless Chromium with the capabilities that
    /// work as root on CI.
    pub async fn start(dir: &Path) -> Browser {
        let (chromium, driver) = tools();
        let driver = Driver::start(&driver, dir);
        let caps = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--window-size=1280,900",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-dev-shm-usage",
                ],
            },
        });
        let caps = match caps {
            serde_json::Value::Object(m) => m,
            _ => unreachable!(),
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url())
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot open a Chromium session through chromedriver: {e}\n--- its log:\n{}",
                    tail(&driver.log)
                )
            });
        let shots = crate::support::bin()
            .parent()
            .and_then(Path::parent)
            .map(|t| t.join("page-screenshots"))
            .unwrap_or_else(|| PathBuf::from("target/page-screenshots"));
        Browser {
            client: Some(client),
            driver,
            shots,
        }
    }

    /// The WebDriver client.
    pub fn client(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    /// Goes to `url` (waits for the load).
    pub async fn open(&self, url: &str) {
        self.client()
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// The address shown now.
    pub async fn url(&self) -> String {
        self.client()
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    /// What the page shows now (its body's text), for failure messages.
    pub async fn body_text(&self) -> String {
        match self.client().find(Locator::Css("body")).await {
            Ok(b) => b.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// `what`, with where the browser is and what the page shows: a
    /// failure's message.
    pub async fn report(&self, what: &str) -> String {
        format!(
            "{what}\n--- at {}\n--- the page shows:\n{}",
            self.url().await,
            self.body_text().await
        )
    }

    /// The first element matching `css`, waited for.
    pub async fn element(&self, css: &str) -> Element {
        let start = Instant::now();
        loop {
            if let Ok(e) = self.client().find(Locator::Css(css)).await {
                return e;
            }
            self.not_a_dead_end(&format!("no element {css:?}")).await;
            if start.elapsed() > DEADLINE {
                let msg = format!("no element {css:?} within {DEADLINE:?}");
                panic!("{}", self.report(&msg).await);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Fails at once when the browser shows one of the page's refusals or
    /// problems ([`DEAD_ENDS`]): what a wait waits for will not come.
    async fn not_a_dead_end(&self, what: &str) {
        if let Ok(e) = self.client().find(Locator::Css(DEAD_ENDS)).await {
            let said = e.text().await.unwrap_or_default();
            let msg = format!("{what}: the page refused or could not answer: {said}");
            panic!("{}", self.report(&msg).await);
        }
    }

    /// Every element matching `css` (none is not waited for).
    pub async fn elements(&self, css: &str) -> Vec<Element> {
        self.client()
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_default()
    }

    /// The text of the element matching `css`, once it holds `want`.
    pub async fn text_with(&self, css: &str, want: &str) -> String {
        let start = Instant::now();
        let mut last = String::new();
        loop {
            if let Ok(e) = self.client().find(Locator::Css(css)).await
                && let Ok(t) = e.text().await
            {
                if t.contains(want) {
                    return t;
                }
                last = t;
            } else {
                self.not_a_dead_end(&format!("no element {css:?}")).await;
            }
            if start.elapsed() > DEADLINE {
                let msg =
                    format!("{css:?} never said {want:?} within {DEADLINE:?}; last: {last:?}");
                panic!("{}", self.report(&msg).await);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Clicks the element matching `css` (waited for).
    pub async fn click(&self, css: &str) {
        let e = self.element(css).await;
        e.click()
            .await
            .unwrap_or_else(|err| panic!("cannot click {css:?}: {err}"));
    }

    /// Saves a screenshot as `target/page-screenshots/NAME.png`; returns
    /// its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .client()
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("cannot take a screenshot: {e}"));
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        std::fs::create_dir_all(&self.shots).unwrap();
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Ends the session (the browser quits); the driver ends on drop.
    pub async fn close(mut self) {
        if let Some(c) = self.client.take() {
            let _ = c.close().await;
        }
    }
}

/// The last lines of a log, for failure messages.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Polls `cond` (without blocking the runtime) until it holds, or fails
/// after [`DEADLINE`] saying `what` did not happen.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < DEADLINE,
            "{what}: not within {DEADLINE:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}
