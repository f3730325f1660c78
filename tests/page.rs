//! The local page's security rules, each from outside the browser: plain
//! HTTP requests to the real watcher's page, as another program on the
//! machine (or a web site through the browser) would send them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::World;

/// A watcher of a configured pair, and its page's address.
struct Running {
    child: Child,
    port: u16,
    token: String,
    url: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        // Reaped already: its number may belong to another test's process
        // by now (a stray SIGTERM killed a sibling test's watch once).
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = std::process::Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn start(w: &World) -> Running {
    start_in(w, None)
}

/// `start`, with the watch in the time zone `tz` (TZ) when given.
#[allow(clippy::zombie_processes)] // waited for by `Running`'s drop
fn start_in(w: &World, tz: Option<&str>) -> Running {
    let r = w.run(["add".as_ref(), w.src.as_os_str(), w.dst.as_os_str()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut cmd = w.cmd();
    if let Some(tz) = tz {
        cmd.env("TZ", tz);
    }
    let child = cmd
        .arg("watch")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(w.path("watch.err")).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = w.run(["ui", "--print-url"]);
        if r.code == 0 {
            let url = r.stdout.trim().to_string();
            let rest = url.strip_prefix("http://127.0.0.1:").unwrap();
            let (port, tail) = rest.split_once('/').unwrap();
            let token = tail.strip_prefix("?token=").unwrap().to_string();
            return Running {
                child,
                port: port.parse().unwrap(),
                token,
                url,
            };
        }
        assert!(
            Instant::now() < deadline,
            "the page never came up: {}\n{}",
            r.stderr,
            std::fs::read_to_string(w.path("watch.err")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An answer: status, headers (lowercase names), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one raw request (`\n` line ends are made `\r\n`).
fn send(port: u16, raw: &str) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let raw = raw.replace("\r\n", "\n").replace('\n', "\r\n");
    s.write_all(raw.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

fn get(r: &Running, path: &str, extra: &str) -> Answer {
    send(
        r.port,
        &format!(
            "GET {path} HTTP/1.1\nHost: 127.0.0.1:{}\n{extra}Connection: close\n\n",
            r.port
        ),
    )
}

fn cookie(r: &Running) -> String {
    format!("Cookie: mirrortray-{}={}\n", r.port, r.token)
}

fn post(r: &Running, path: &str, extra: &str, body: &str) -> Answer {
    send(
        r.port,
        &format!(
            "POST {path} HTTP/1.1\nHost: 127.0.0.1:{}\n{extra}Content-Type: application/x-www-form-urlencoded\nContent-Length: {}\nConnection: close\n\n{body}",
            r.port,
            body.len()
        ),
    )
}

/// The CSRF token the page puts in its forms (read from a page that has
/// one).
fn csrf(r: &Running, page: &str) -> String {
    let a = get(r, page, &cookie(r));
    let at = a
        .body
        .find(r#"name="csrf" value=""#)
        .unwrap_or_else(|| panic!("no form in {page}: {}", a.body));
    let rest = &a.body[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A world with `notes.txt` changed once (so it has a version) and being
/// watched.
fn watched() -> (World, Running) {
    let w = World::new();
    w.write("notes.txt", "first\n");
    w.write("docs/a.txt", "a\n");
    let r = start(&w);
    wait_until("the first backup", || {
        std::fs::read(w.dst.join("docs/a.txt")).is_ok_and(|b| b == b"a\n")
    });
    w.write("notes.txt", "second\n");
    wait_until("the change backed up", || {
        std::fs::read(w.dst.join("notes.txt")).is_ok_and(|b| b == b"second\n")
    });
    (w, r)
}

#[test]
fn ui_with_nothing_running_exits_2_and_says_how_to_start_one() {
    let w = World::new();
    let r = w.run(["ui", "--print-url"]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        r.stderr.contains("no mirrortray is running"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty(), "{}", r.stdout);
}

#[test]
fn the_address_file_is_the_users_alone_the_key_has_128_bits_and_the_port_is_loopback_only() {
    let (w, r) = watched();
    assert_eq!(r.token.len(), 32, "{}", r.url);
    assert!(r.token.chars().all(|c| c.is_ascii_hexdigit()), "{}", r.url);
    let file = w
        .home
        .join(".run/mirrortray")
        .join(format!("page-{}.url", r.child.id()));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", file.display());
    // Bound to 127.0.0.1 only: /proc/net/tcp lists the listening socket
    // with local address 0100007F (no 0.0.0.0, no IPv6 socket).
    let port_hex = format!(":{:04X}", r.port);
    let listening: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .filter(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.len() > 3 && cols[1].ends_with(&port_hex) && cols[3] == "0A"
        })
        .collect();
    assert_eq!(listening.len(), 1, "{listening:?}");
    assert!(
        listening[0]
            .split_whitespace()
            .nth(1)
            .unwrap()
            .starts_with("0100007F:"),
        "{listening:?}"
    );
}

#[test]
fn without_the_key_or_with_a_wrong_one_nothing_is_shown() {
    let (_w, r) = watched();
    for (path, extra) in [
        ("/", String::new()),
        ("/file?pair=0&path=notes.txt", String::new()),
        ("/raw?pair=0&path=notes.txt&v=now", String::new()),
        ("/?token=00000000000000000000000000000000", String::new()),
        (
            "/raw?pair=0&path=notes.txt&v=now",
            format!(
                "Cookie: mirrortray-{}=0123456789abcdef0123456789abcdef\n",
                r.port
            ),
        ),
        // The right key under another instance's cookie name.
        (
            "/raw?pair=0&path=notes.txt&v=now",
            format!("Cookie: mirrortray-1={}\n", r.token),
        ),
    ] {
        let a = get(&r, path, &extra);
        assert_eq!(a.status, 403, "{path} {extra}: {}", a.body);
        assert!(!a.body.contains("second"), "{path}: {}", a.body);
        assert!(a.body.contains("mirrortray ui"), "{path}: {}", a.body);
    }
    // With the cookie: the overview, with the versions kept and the policy.
    let a = get(&r, "/", &cookie(&r));
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("id=\"state-0\""), "{}", a.body);
    assert!(
        a.body
            .contains("30 days; thinned: every version for 24 hours, then one an hour up to 7 days, one a day up to 30 days, one a week after; the oldest go first when the backup disk has less than 2% free"),
        "{}",
        a.body
    );
    // The activity chart counts what this instance copied: two files at
    // the start, then notes.txt again.
    wait_until("the chart to count the copies", || {
        get(&r, "/", &cookie(&r))
            .body
            .contains("</span>3 files copied, ")
    });
    // And the same file is shown.
    let a = get(&r, "/raw?pair=0&path=notes.txt&v=now", &cookie(&r));
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body, "second\n");
}

#[test]
fn the_key_in_the_address_becomes_a_strict_http_only_cookie_and_leaves_the_address() {
    let (_w, r) = watched();
    let a = get(&r, &format!("/browse?pair=0&token={}", r.token), "");
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(a.header("location"), Some("/browse?pair=0"));
    let c = a.header("set-cookie").unwrap();
    assert!(
        c.starts_with(&format!("mirrortray-{}={};", r.port, r.token)),
        "{c}"
    );
    assert!(c.contains("HttpOnly"), "{c}");
    assert!(c.contains("SameSite=Strict"), "{c}");
    // And pages are not framed by other sites, nor cached.
    let a = get(&r, "/", &cookie(&r));
    assert_eq!(a.status, 200);
    assert_eq!(a.header("x-frame-options"), Some("DENY"));
    assert_eq!(a.header("cache-control"), Some("no-store"));
    assert!(
        a.header("content-security-policy")
            .is_some_and(|c| c.contains("frame-ancestors 'none'")),
        "{:?}",
        a.headers
    );
}

#[test]
fn a_foreign_host_name_is_refused_even_with_the_key() {
    let (_w, r) = watched();
    for host in [
        "evil.example".to_string(),
        format!("evil.example:{}", r.port),
        format!("127.0.0.1.evil.example:{}", r.port),
        format!("127.0.0.1:{}", r.port + 1),
    ] {
        let a = send(
            r.port,
            &format!(
                "GET /raw?pair=0&path=notes.txt&v=now HTTP/1.1\nHost: {host}\n{}Connection: close\n\n",
                cookie(&r)
            ),
        );
        assert_eq!(a.status, 421, "{host}: {}", a.body);
        assert!(!a.body.contains("second"), "{host}");
    }
    // localhost is the loopback too.
    let a = send(
        r.port,
        &format!(
            "GET / HTTP/1.1\nHost: localhost:{}\n{}Connection: close\n\n",
            r.port,
            cookie(&r)
        ),
    );
    assert_eq!(a.status, 200, "{}", a.body);
}

#[test]
fn a_change_without_the_forms_token_or_from_another_site_is_refused_and_changes_nothing() {
    let (w, r) = watched();
    let token = csrf(&r, "/file?pair=0&path=notes.txt");
    let restore = "pair=0&path=notes.txt&at=&how=here";
    for (extra, body) in [
        // No CSRF token: what a cross-site form would send.
        (cookie(&r), restore.to_string()),
        (
            cookie(&r),
            format!("{restore}&csrf=0123456789abcdef0123456789abcdef"),
        ),
        // The right token, from another origin.
        (
            format!("{}Origin: http://evil.example\n", cookie(&r)),
            format!("{restore}&csrf={token}"),
        ),
        // The right token without the key.
        (String::new(), format!("{restore}&csrf={token}")),
    ] {
        let a = post(&r, "/restore", &extra, &body);
        assert!(a.status == 403, "{extra} {body}: {} {}", a.status, a.body);
    }
    // A change by GET is not one.
    let a = get(&r, &format!("/restore?{restore}&csrf={token}"), &cookie(&r));
    assert_eq!(a.status, 405, "{}", a.body);
    assert_eq!(std::fs::read(w.src.join("notes.txt")).unwrap(), b"second\n");
    // The same request from the page restores.
    let a = post(
        &r,
        "/restore",
        &format!("{}Origin: http://127.0.0.1:{}\n", cookie(&r), r.port),
        &format!("{restore}&csrf={token}"),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("id=\"result\""), "{}", a.body);
    assert_eq!(std::fs::read(w.src.join("notes.txt")).unwrap(), b"first\n");
}

#[test]
fn paths_outside_the_pair_are_refused_and_links_are_not_followed() {
    let (w, r) = watched();
    std::fs::write(w.path("secret.txt"), "outside\n").unwrap();
    std::os::unix::fs::symlink(w.path("secret.txt"), w.src.join("link")).unwrap();
    std::os::unix::fs::symlink(w.path(""), w.src.join("up")).unwrap();
    wait_until("the links backed up", || {
        std::fs::symlink_metadata(w.dst.join("up")).is_ok()
    });
    let c = cookie(&r);
    for path in [
        "..",
        "../secret.txt",
        "%2e%2e/secret.txt",
        "docs/..%2f..%2fsecret.txt",
        "docs%2f..%2f..%2fsecret.txt",
        "/..",
        "docs/./a.txt",
        ".mirrortray/versions",
        "%2Emirrortray",
    ] {
        for page in ["raw", "file", "browse"] {
            let a = get(&r, &format!("/{page}?pair=0&path={path}&v=now"), &c);
            assert_eq!(a.status, 400, "/{page} {path}: {}", a.body);
            assert!(!a.body.contains("outside"), "/{page} {path}");
        }
    }
    // Through a symlink: its target text, never the file it points to.
    let a = get(&r, "/raw?pair=0&path=link&v=now", &c);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body, w.path("secret.txt").to_string_lossy());
    for path in ["up/secret.txt", "up%2fsecret.txt", "link/x"] {
        let a = get(&r, &format!("/raw?pair=0&path={path}&v=now"), &c);
        assert_ne!(a.status, 200, "{path}: {}", a.body);
        assert!(!a.body.contains("outside"), "{path}: {}", a.body);
    }
    // A restore of such a path is refused too, and SRC is untouched.
    let token = csrf(&r, "/file?pair=0&path=notes.txt");
    let a = post(
        &r,
        "/restore",
        &c,
        &format!("pair=0&path=../secret.txt&at=&how=here&csrf={token}"),
    );
    assert_eq!(a.status, 400, "{}", a.body);
    // Restore to another folder inside the backup is refused by the same
    // rule as the command's.
    let a = post(
        &r,
        "/restore",
        &c,
        &format!(
            "pair=0&path=notes.txt&at=&how=to&to={}&csrf={token}",
            w.dst.join("x").display()
        ),
    );
    assert!(a.body.contains("inside"), "{}", a.body);
    assert!(!Path::new(&w.dst.join("x")).exists());
    assert_eq!(std::fs::read(w.src.join("notes.txt")).unwrap(), b"second\n");
}

#[test]
fn settings_are_saved_into_the_users_file_with_its_comments_and_bad_values_change_nothing() {
    let (w, r) = watched();
    let cfg = w.config_file();
    let text = std::fs::read_to_string(&cfg).unwrap();
    let commented = format!("# My backups: keep this line.\n{text}");
    std::fs::write(&cfg, &commented).unwrap();
    let token = csrf(&r, "/settings");
    let c = cookie(&r);
    let form_with = |retention: &str, floor: &str, thin: &str| {
        format!(
            "csrf={token}&retention_days={retention}&max_versions_mb=&min_free_percent={floor}{thin}&drift_check_minutes=5&alert_after_hours=24&ignore_0=*.tmp%0D%0Acache%2F&versions_0=on&retention_0="
        )
    };
    let as_now = "&ignore_temporary_files=on&thin_versions=on&keep_all_hours=24&keep_hourly_days=7&keep_daily_days=30";
    let form = |retention: &str, floor: &str| form_with(retention, floor, as_now);
    // Thinning that would end its daily part before its hourly one.
    let a = post(
        &r,
        "/settings",
        &c,
        &form_with(
            "30",
            "2",
            "&thin_versions=on&keep_all_hours=24&keep_hourly_days=7&keep_daily_days=3",
        ),
    );
    assert!(
        a.body
            .contains("keep_daily_days = 3 ends before keep_hourly_days = 7"),
        "{}",
        a.body
    );
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), commented);
    // Refused by the config's own rule, with its words; the file unchanged.
    let a = post(&r, "/settings", &c, &form("0", "2"));
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("Not saved"), "{}", a.body);
    assert!(a.body.contains("would delete every version"), "{}", a.body);
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), commented);
    // Not a number: the field is named.
    let a = post(&r, "/settings", &c, &form("30", "lots"));
    assert!(
        a.body.contains("Keep free on the backup disk (%)"),
        "{}",
        a.body
    );
    assert!(a.body.contains("not a whole number"), "{}", a.body);
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), commented);
    // Saved: only what changed, the comment kept.
    let a = post(&r, "/settings", &c, &form("45", "2"));
    assert_eq!(a.status, 303, "{}", a.body);
    let now = std::fs::read_to_string(&cfg).unwrap();
    assert!(now.starts_with("# My backups: keep this line.\n"), "{now}");
    assert!(now.contains("retention_days = 45"), "{now}");
    assert!(
        !now.contains("thin_versions"),
        "unchanged, not written: {now}"
    );
    assert!(now.contains(r#"ignore = ["*.tmp", "cache/"]"#), "{now}");
    let shown = w.run(["config"]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    // And the form shows it.
    let a = get(&r, "/settings?saved=1", &c);
    assert!(a.body.contains(r#"id="saved""#), "{}", a.body);
    assert!(a.body.contains(r#"value="45""#), "{}", a.body);
}

/// Pairs added and removed in the page, by the same rule as `mirrortray
/// add` and `remove`: a backup folder holding other files is refused with
/// what would happen to them, a pair is removed by its source and its backup
/// folder stays; both only by POST with the form's token.
#[test]
fn pairs_are_added_and_removed_in_the_page_with_the_rules_of_add_and_remove() {
    let (w, r) = watched();
    let cfg = w.config_file();
    let c = cookie(&r);
    let token = csrf(&r, "/settings");
    let photos = w.path("photos");
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::write(photos.join("cat.jpg"), "meow").unwrap();
    let stuff = w.path("stuff");
    std::fs::create_dir_all(&stuff).unwrap();
    std::fs::write(stuff.join("old-taxes.txt"), "keep me").unwrap();
    let add = |src: &str, dst: &str| {
        post(
            &r,
            "/settings/add",
            &c,
            &format!("csrf={token}&add_src={src}&add_dst={dst}"),
        )
    };
    let before = std::fs::read_to_string(&cfg).unwrap();
    // A folder of other files: refused, saying what would happen to them.
    let a = add(&photos.to_string_lossy(), &stuff.to_string_lossy());
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("Not saved"), "{}", a.body);
    assert!(a.body.contains("already holds 1 entry"), "{}", a.body);
    assert!(a.body.contains("into its versions"), "{}", a.body);
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), before);
    assert_eq!(
        std::fs::read(stuff.join("old-taxes.txt")).unwrap(),
        b"keep me"
    );
    // Half a pair, or a relative path: said, nothing written.
    let a = add(&photos.to_string_lossy(), "");
    assert!(a.body.contains("give both folders"), "{}", a.body);
    let a = add("photos", "photos-backup");
    assert!(a.body.contains("full paths"), "{}", a.body);
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), before);
    // A new, empty backup folder: added, and made.
    let backup = w.path("photos-backup");
    let a = add(&photos.to_string_lossy(), &backup.to_string_lossy());
    assert_eq!(a.status, 303, "{}", a.body);
    let now = std::fs::read_to_string(&cfg).unwrap();
    assert!(now.contains(&*photos.to_string_lossy()), "{now}");
    assert!(backup.is_dir());
    let shown = get(&r, "/settings?added=1", &c);
    assert!(shown.body.contains("Added."), "{}", shown.body);
    // Twice: the second is refused as `add` refuses it.
    let a = add(
        &photos.to_string_lossy(),
        &w.path("elsewhere").to_string_lossy(),
    );
    assert!(a.body.contains("is already backed up"), "{}", a.body);
    // Removing: only by POST with the form's token...
    let remove = format!("remove={}", photos.to_string_lossy());
    let a = post(&r, "/settings/remove", &c, &remove);
    assert_eq!(a.status, 403, "{}", a.body);
    let a = get(&r, &format!("/settings/remove?{remove}&csrf={token}"), &c);
    assert_eq!(a.status, 405, "{}", a.body);
    assert!(
        std::fs::read_to_string(&cfg)
            .unwrap()
            .contains(&*photos.to_string_lossy())
    );
    // ...then the pair goes, its backup folder stays.
    let a = post(
        &r,
        "/settings/remove",
        &c,
        &format!("{remove}&csrf={token}"),
    );
    assert_eq!(a.status, 303, "{}", a.body);
    let after = std::fs::read_to_string(&cfg).unwrap();
    assert!(!after.contains(&*photos.to_string_lossy()), "{after}");
    assert!(after.contains(&*w.src.to_string_lossy()), "{after}");
    assert!(backup.is_dir());
    let shown = get(&r, "/settings?removed=1", &c);
    assert!(
        shown.body.contains("Its backup folder was left as it is"),
        "{}",
        shown.body
    );
    // A pair that is not there (any more): said.
    let a = post(
        &r,
        "/settings/remove",
        &c,
        &format!("{remove}&csrf={token}"),
    );
    assert!(
        a.body.contains("no pair has the source folder"),
        "{}",
        a.body
    );
}

#[test]
fn previous_versions_in_the_file_managers_open_the_page_at_that_file() {
    let (w, r) = watched();
    let run = w.run(["integrate"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let base = w.home.join(".local/share");
    let script = base.join("nautilus/scripts/mirrortray: Previous versions…");
    let bin = crate::support::bin();
    use std::os::unix::fs::PermissionsExt;
    for (rel, exec) in [
        ("nautilus/scripts/mirrortray: Previous versions…", true),
        (
            "nautilus/scripts/mirrortray: Restore missing files here…",
            true,
        ),
        ("kio/servicemenus/mirrortray-versions.desktop", true),
        ("kio/servicemenus/mirrortray-restore-here.desktop", true),
        ("nemo/actions/mirrortray-versions.nemo_action", false),
        ("nemo/actions/mirrortray-restore-here.nemo_action", false),
    ] {
        let p = base.join(rel);
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert!(text.contains(&*bin.to_string_lossy()), "{rel}: {text}");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o111 != 0, exec, "{rel}: {mode:o}");
    }
    let dolphin =
        std::fs::read_to_string(base.join("kio/servicemenus/mirrortray-versions.desktop")).unwrap();
    assert!(
        dolphin.contains(&format!("Exec=\"{}\" ui %f", bin.display())),
        "{dolphin}"
    );

    // Nautilus runs the script with the selected file; the page opens in
    // the browser (here one that writes the address down).
    let got = w.path("opened.txt");
    let browser = w.path("browser.sh");
    crate::support::write_program(
        &browser,
        // Written aside, then renamed: the test never reads it half-written
        // (a CI failure read it between the shell's create and its write).
        &format!(
            "#!/bin/sh\nprintf '%s' \"$1\" > '{0}.part' && mv '{0}.part' '{0}'\n",
            got.display()
        ),
    );
    let mut c = std::process::Command::new(&script);
    w.isolate(&mut c);
    let out = c
        .arg(w.src.join("notes.txt"))
        .env("BROWSER", &browser)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("the browser to be asked", || got.exists());
    let url = std::fs::read_to_string(&got).unwrap();
    let prefix = format!("http://127.0.0.1:{}/open?path=", r.port);
    assert!(url.starts_with(&prefix), "{url}");
    assert!(url.contains(&format!("&token={}", r.token)), "{url}");
    // The address: the key into the cookie, then that file's history.
    let path_and_query = &url["http://127.0.0.1:".len() + r.port.to_string().len()..];
    let a = get(&r, path_and_query, "");
    assert_eq!(a.status, 303, "{}", a.body);
    let back = a.header("location").unwrap().to_string();
    let a = get(&r, &back, &cookie(&r));
    assert_eq!(a.status, 303, "{back}: {}", a.body);
    assert_eq!(a.header("location"), Some("/file?pair=0&path=notes.txt"));
    let a = get(&r, "/file?pair=0&path=notes.txt", &cookie(&r));
    assert!(a.body.contains("preview-text"), "{}", a.body);

    // A path outside every pair is said so.
    let a = get(&r, "/open?path=%2Fetc%2Fpasswd", &cookie(&r));
    assert_eq!(a.status, 404, "{}", a.body);
    assert!(
        a.body.contains("not in a folder this mirrortray backs up"),
        "{}",
        a.body
    );

    // Removed: exactly what it wrote; a file of the user's is left.
    let mine = base.join("nautilus/scripts/my own script");
    std::fs::write(&mine, "#!/bin/sh\n").unwrap();
    let run = w.run(["integrate", "--remove"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(!script.exists());
    assert!(
        !base
            .join("kio/servicemenus/mirrortray-versions.desktop")
            .exists()
    );
    assert!(mine.exists());
}

/// Issue 12: a file's page says how many of its versions were thinned, and
/// a folder seen at a moment whose version of a file was thinned marks that
/// file as showing a later version.
#[test]
fn thinned_versions_are_told_on_the_file_page_and_marked_when_browsing() {
    let w = World::new();
    w.write("notes/plan.txt", "now");
    w.sync(&[]).ok();
    let planted = crate::restore::plant_hour(
        &w,
        72,
        &[
            (600, "notes/plan.txt", "first", "modified"),
            (1100, "notes/old.txt", "old", "deleted"),
            (1200, "notes/plan.txt", "second", "modified"),
            (1800, "notes/plan.txt", "third", "modified"),
        ],
    );
    let r = start(&w);
    wait_until("thinning at the first pass", || {
        w.dst.join(".mirrortray/thinned.log").exists() && !planted[2].exists()
    });
    let c = cookie(&r);
    let a = get(&r, "/file?pair=0&path=notes/plan.txt", &c);
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains(r#"id="thinned""#), "{}", a.body);
    assert!(a.body.contains("2 older versions, from "), "{}", a.body);
    // Just before the change that kept old.txt, plan.txt held "second",
    // which was thinned: "third" is shown, marked.
    let stamp = planted[1]
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let a = get(&r, &format!("/browse?pair=0&path=notes&at={stamp}"), &c);
    assert_eq!(a.status, 200, "{}", a.body);
    let row = a
        .body
        .split("<tr")
        .find(|t| t.contains(r#"data-name="plan.txt""#))
        .unwrap_or_else(|| panic!("{}", a.body));
    assert!(row.contains("later version"), "{row}");
    let row = a
        .body
        .split("<tr")
        .find(|t| t.contains(r#"data-name="old.txt""#))
        .unwrap_or_else(|| panic!("{}", a.body));
    assert!(!row.contains("later version"), "{row}");
}

/// A killed instance cannot remove its address file; the next reader of
/// the instances does, and `ui` says nothing runs.
#[test]
fn a_killed_instances_address_is_cleared_and_ui_says_nothing_runs() {
    let (w, mut r) = watched();
    let file = w
        .home
        .join(".run/mirrortray")
        .join(format!("page-{}.url", r.child.id()));
    assert!(file.exists());
    r.child.kill().unwrap();
    r.child.wait().unwrap();
    assert!(file.exists(), "SIGKILL leaves it");
    let u = w.run(["ui", "--print-url"]);
    assert_eq!(u.code, 2, "{}{}", u.stdout, u.stderr);
    assert!(!file.exists(), "the dead instance's address is still there");
}

#[test]
fn the_log_page_shows_the_end_of_the_log_in_local_time() {
    let w = World::new();
    // A long log from earlier runs, in UTC as the file keeps it.
    let log = w.home.join(".local/state/mirrortray/mirrortray.log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let old: String = (0..2000)
        .map(|i| format!("2026-11-30T12:00:00.000000000Z [INFO] old line {i}\n"))
        .collect();
    std::fs::write(&log, old).unwrap();
    let r = start_in(&w, Some("IST-5:30"));
    wait_until("the watch's start in the log", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("watching for changes"))
    });

    let a = get(&r, "/log", &cookie(&r));
    assert_eq!(a.status, 200, "{}", a.body);
    // Only the end: the newest old lines, then this run's, the last last.
    assert!(!a.body.contains("old line 1000<"), "{}", a.body);
    assert!(a.body.contains("old line 1999<"), "{}", a.body);
    let at = |s: &str| {
        a.body
            .find(s)
            .unwrap_or_else(|| panic!("no {s:?} in {}", a.body))
    };
    assert!(at("old line 1999<") < at("watching for changes"));
    assert!(at("watching for changes") < at(r#"id="end""#));
    // 12:00 UTC is 17:30 in India (UTC+05:30).
    assert!(a.body.contains("2026-11-30 17:30:00"), "{}", a.body);
    // Reached from every page's navigation.
    assert!(
        get(&r, "/", &cookie(&r))
            .body
            .contains(r#"href="/log#end""#)
    );
    // The log names the user's files: without the key, or asked for under
    // another host name, it is not shown.
    let a = get(&r, "/log", "");
    assert_ne!(a.status, 200, "{}", a.body);
    assert!(!a.body.contains("watching for changes"), "{}", a.body);
    let a = send(
        r.port,
        &format!(
            "GET /log HTTP/1.1\nHost: evil.example:{}\n{}Connection: close\n\n",
            r.port,
            cookie(&r)
        ),
    );
    assert_ne!(a.status, 200, "{}", a.body);
    assert!(!a.body.contains("watching for changes"), "{}", a.body);
}
