//! The local page in a real browser: Debian's Chromium, headless, driven
//! over W3C WebDriver (chromedriver) against the real `mirrortray watch`
//! and its page, as a user would use it: find what was deleted, look at it,
//! get it back, undo that; see a folder as it was before a change and
//! restore it; restore an older version of a changed file.
//!
//! Every test starts its own watcher (a pair from the config, in its own
//! World), its own chromedriver on a free port, and polls for what it
//! expects, on the page and on disk; nothing sleeps a fixed time.
//! Screenshots of the file-history and browse pages are kept in
//! `target/page-screenshots/`.

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use crate::support::browser::{self, Browser, eventually};
use crate::support::tree::is_mirrored;
use crate::support::*;

/// `mirrortray watch` of the World's configured pair, with its page;
/// stopped with SIGTERM (then waited for) on drop.
struct Watcher {
    child: Child,
    /// The page's address with its key (`mirrortray ui --print-url`).
    url: String,
    out: PathBuf,
    err: PathBuf,
}

impl Watcher {
    /// Adds SRC → DST to the config, starts `watch`, waits for its page's
    /// address and for DST to hold SRC.
    async fn start(w: &World) -> Watcher {
        std::fs::create_dir_all(&w.dst).unwrap();
        w.run([OsStr::new("add"), w.src.as_os_str(), w.dst.as_os_str()])
            .ok();
        let (out, err) = (w.path("watch.out"), w.path("watch.err"));
        let child = w
            .cmd()
            .arg("watch")
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let mut me = Watcher {
            child,
            url: String::new(),
            out,
            err,
        };
        let mut url = String::new();
        let mut exited = false;
        eventually(
            "`mirrortray ui --print-url` prints the page's address",
            || {
                exited = matches!(me.child.try_wait(), Ok(Some(_)));
                let r = w.run(["ui", "--print-url"]);
                let line = r.stdout.trim();
                if r.code == 0 && line.starts_with("http://127.0.0.1:") && line.contains("token=") {
                    url = line.to_string();
                }
                exited || !url.is_empty()
            },
        )
        .await;
        assert!(!exited, "watch exited:\n{}", me.output());
        me.url = url;
        eventually("DST holds SRC (the first backup)", || {
            is_mirrored(&w.src, &w.dst)
        })
        .await;
        me
    }

    /// `http://127.0.0.1:PORT`: the page's origin.
    fn origin(&self) -> String {
        let rest = self.url.trim_start_matches("http://");
        let host = rest.split('/').next().unwrap_or(rest);
        format!("http://{host}")
    }

    fn output(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            std::fs::read_to_string(&self.out).unwrap_or_default(),
            std::fs::read_to_string(&self.err).unwrap_or_default()
        )
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// DST's copy of `rel` is `want` now.
fn dst_is(w: &World, rel: &str, want: &[u8]) -> bool {
    std::fs::read(w.dst.join(rel)).is_ok_and(|b| b == want)
}

/// SRC's `rel` is `want` now.
fn src_is(w: &World, rel: &str, want: &[u8]) -> bool {
    std::fs::read(w.src.join(rel)).is_ok_and(|b| b == want)
}

/// Nothing (not even a dangling link) at `p`.
fn absent(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_err()
}

#[tokio::test]
async fn a_deleted_file_is_found_previewed_restored_and_the_restore_undone() {
    browser::tools();
    let w = World::new();
    w.write("notes/plan.txt", "version one\n");
    w.write("notes/ideas.txt", "more ideas\n");
    w.write("readme.txt", "hello\n");
    let watch = Watcher::start(&w).await;

    // Changed, backed up; then deleted, gone from the backup too.
    w.write("notes/plan.txt", "version two\n");
    eventually("DST has the second version", || {
        dst_is(&w, "notes/plan.txt", b"version two\n")
    })
    .await;
    std::fs::remove_file(w.src.join("notes/plan.txt")).unwrap();
    eventually("DST no longer has notes/plan.txt", || {
        absent(&w.dst.join("notes/plan.txt"))
    })
    .await;

    let b = Browser::start(w.dir.path()).await;
    b.open(&watch.url).await;
    b.element("section#pair-0").await;
    assert!(
        !b.url().await.contains("token="),
        "the key stays in the address bar: {}",
        b.url().await
    );
    b.element("p#state-0").await;

    // Recently deleted lists it; its page shows the last version.
    b.click("#deleted-link").await;
    b.element("table#deleted").await;
    b.click(r#"table#deleted tr[data-path="notes/plan.txt"] a"#)
        .await;
    b.element("table#versions").await;
    b.text_with("p#now.warn", "Not in the backup now").await;
    let preview = b.text_with("pre#preview-text", "version two").await;
    assert!(!preview.contains("version one"), "{preview}");
    b.screenshot("file-history-of-a-deleted-file").await;

    // Restore it.
    let button = b
        .text_with(
            "form.restore button.primary",
            "Restore it as it was before it was deleted",
        )
        .await;
    assert!(!button.is_empty());
    b.click("form.restore button.primary").await;
    b.text_with("h1", "Restored").await;
    let result = b.text_with("p#result", "1 file (").await;
    assert!(result.contains("1 new"), "{result}");
    eventually("SRC has notes/plan.txt back, as version two", || {
        src_is(&w, "notes/plan.txt", b"version two\n")
    })
    .await;
    eventually("DST backs up the restored file", || {
        dst_is(&w, "notes/plan.txt", b"version two\n")
    })
    .await;

    // Undo: the file the restore brought back goes again, nothing is lost.
    b.click("button#undo").await;
    let result = b
        .text_with("p#result", "as it was before the restore")
        .await;
    assert!(result.contains("1 removed"), "{result}");
    eventually("SRC no longer has notes/plan.txt", || {
        absent(&w.src.join("notes/plan.txt"))
    })
    .await;
    assert!(src_is(&w, "notes/ideas.txt", b"more ideas\n"));
    eventually("DST follows the undo", || {
        absent(&w.dst.join("notes/plan.txt"))
    })
    .await;
    assert!(
        w.all_version_contents()
            .iter()
            .any(|c| c == b"version two\n"),
        "version two is lost from DST's versions"
    );
    assert!(
        w.all_version_contents()
            .iter()
            .any(|c| c == b"version one\n"),
        "version one is lost from DST's versions"
    );

    b.close().await;
    drop(watch);
}

/// The bytes of photo `i` of sub-folder `sub`: distinct for every file.
fn photo(sub: u8, i: u32) -> Vec<u8> {
    (0..3000u32)
        .map(|k| (k.wrapping_mul(31) ^ i.wrapping_mul(97) ^ (u32::from(sub) * 7)) as u8)
        .chain(format!("{sub}/{i}").into_bytes())
        .collect()
}

#[tokio::test]
async fn browse_as_of_a_time_and_restore_a_folder_deleted_in_two_batches() {
    browser::tools();
    let w = World::new();
    let subs = [(b'a', "photos/2019"), (b'b', "photos/2020")];
    for (sub, dir) in subs {
        for i in 0..30 {
            w.write(&format!("{dir}/img{i:02}.jpg"), photo(sub, i));
        }
    }
    w.write("keep.txt", "not part of it\n");
    let watch = Watcher::start(&w).await;

    // Deleted in two goes: one sub-folder, later the rest.
    std::fs::remove_dir_all(w.src.join("photos/2019")).unwrap();
    eventually("DST no longer has photos/2019", || {
        absent(&w.dst.join("photos/2019"))
    })
    .await;
    std::fs::remove_dir_all(w.src.join("photos")).unwrap();
    eventually("DST no longer has photos", || absent(&w.dst.join("photos"))).await;
    let batches = std::fs::read_dir(w.dst.join(".mirrortray/versions"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("photos").exists())
        .count();
    assert!(
        batches >= 2,
        "the deletion was kept as {batches} batch(es), not 2 or more"
    );

    let b = Browser::start(w.dir.path()).await;
    b.open(&watch.url).await;
    b.element("section#pair-0").await;

    // Recently deleted names the folder once, not each thing in it.
    b.open(&format!("{}/deleted?pair=0", watch.origin())).await;
    b.element(r#"table#deleted tr[data-path="photos"]"#).await;
    let inside = b
        .elements(r#"table#deleted tr[data-path^="photos/"]"#)
        .await;
    assert!(
        inside.is_empty(),
        "{}",
        b.report(&format!(
            "Recently deleted lists {} entries inside the deleted folder photos",
            inside.len()
        ))
        .await
    );

    // Now: the backup holds no photos; the rest is there, and photos is
    // listed as deleted (linked to how it was just before).
    b.open(&format!("{}/browse?pair=0", watch.origin())).await;
    b.text_with("p#when", "As the backup holds it now").await;
    b.element(r#"table#entries tr[data-name="keep.txt"]"#).await;
    b.text_with(
        r#"table#entries tr.gone[data-name="photos"] span.badge.deleted"#,
        "deleted",
    )
    .await;
    // Its link opens it as it was before the first batch of its deletion:
    // both sub-folders, nothing said missing.
    b.click(r#"table#entries tr[data-name="photos"] a"#).await;
    b.text_with("p#when", "As it was just before the change at")
        .await;
    b.element(r#"table#entries tr[data-name="2019"]"#).await;
    b.element(r#"table#entries tr[data-name="2020"]"#).await;
    assert!(
        b.elements("p#missed").await.is_empty(),
        "{}",
        b.report("the deleted folder's link").await
    );
    b.open(&format!("{}/browse?pair=0", watch.origin())).await;

    // The oldest moment: before anything of photos was deleted.
    let mut moments = Vec::new();
    for o in b.elements("select#at option").await {
        let v = o.attr("value").await.unwrap().unwrap_or_default();
        let t = o.text().await.unwrap();
        if !v.is_empty() {
            assert!(t.starts_with("Before the change at "), "{t}");
            moments.push(v);
        }
    }
    assert!(
        moments.len() >= 2,
        "{}",
        b.report(&format!("the time picker offers {moments:?}"))
            .await
    );
    let oldest = moments.last().unwrap().clone();
    b.element("select#at")
        .await
        .select_by_value(&oldest)
        .await
        .unwrap();
    // The picker shows the folder at that moment at once.
    b.text_with("p#when", "As it was just before the change at")
        .await;
    let picked = b
        .element("select#at option:checked")
        .await
        .attr("value")
        .await
        .unwrap();
    assert_eq!(picked.as_deref(), Some(oldest.as_str()));
    // photos is there then, marked as deleted since.
    b.element(r#"table#entries tr[data-name="photos"] span.badge.deleted"#)
        .await;

    // Into photos at that moment: both sub-folders, each with its 30.
    b.click(r#"table#entries tr[data-name="photos"] a"#).await;
    b.element(r#"table#entries tr[data-name="2020"]"#).await;
    b.click(r#"table#entries tr[data-name="2019"] a"#).await;
    b.element(r#"table#entries tr[data-name="img29.jpg"]"#)
        .await;
    let rows = b.elements("table#entries tbody tr").await.len();
    assert_eq!(rows, 30, "{}", b.report("photos/2019 then").await);
    b.click("p.crumbs a:nth-last-of-type(2)").await;
    b.element(r#"table#entries tr[data-name="2019"]"#).await;
    b.element(r#"table#entries tr[data-name="2020"]"#).await;
    b.text_with("p#when", "As it was just before the change at")
        .await;
    b.screenshot("browse-a-deleted-folder-as-it-was").await;

    // Restore it as it was then.
    b.text_with(
        "form.restore button.primary",
        "Restore “photos” as it was then",
    )
    .await;
    b.click("form.restore button.primary").await;
    b.text_with("h1", "Restored").await;
    let result = b.text_with("p#result", "60 files (").await;
    assert!(
        result.contains("60 files") && result.contains("60 new"),
        "{result}"
    );
    eventually("SRC has all 60 photos back, byte for byte", || {
        subs.iter().all(|(sub, dir)| {
            (0..30).all(|i| src_is(&w, &format!("{dir}/img{i:02}.jpg"), &photo(*sub, i)))
        })
    })
    .await;
    for (_, dir) in subs {
        let n = std::fs::read_dir(w.src.join(dir)).unwrap().count();
        assert_eq!(n, 30, "{dir} holds {n} entries");
    }
    assert!(src_is(&w, "keep.txt", b"not part of it\n"));
    eventually("DST backs up the restored folder", || {
        is_mirrored(&w.src, &w.dst)
    })
    .await;

    b.close().await;
    drop(watch);
}

#[tokio::test]
async fn a_restored_version_of_a_changed_file() {
    browser::tools();
    let w = World::new();
    let (one, two, three) = (
        b"first draft\n".as_slice(),
        b"second draft\n".as_slice(),
        b"third draft, the newest\n".as_slice(),
    );
    w.write("letters/doc.txt", one);
    let watch = Watcher::start(&w).await;
    for v in [two, three] {
        w.write("letters/doc.txt", v);
        eventually("DST has the new content", || {
            dst_is(&w, "letters/doc.txt", v)
        })
        .await;
    }
    let kept: Vec<Vec<u8>> = w
        .versions_of("letters/doc.txt")
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    assert_eq!(kept, vec![one.to_vec(), two.to_vec()]);

    let b = Browser::start(w.dir.path()).await;
    b.open(&watch.url).await;
    b.element("section#pair-0").await;
    b.open(&format!(
        "{}/file?pair=0&path=letters/doc.txt",
        watch.origin()
    ))
    .await;
    b.element("table#versions").await;
    let mut vs = Vec::new();
    for r in b.elements("table#versions tbody tr[data-v]").await {
        vs.push(r.attr("data-v").await.unwrap().unwrap_or_default());
    }
    assert_eq!(
        vs.len(),
        3,
        "{}",
        b.report(&format!("versions {vs:?}")).await
    );
    assert_eq!(vs[0], "now");
    let oldest = vs[2].clone();
    b.text_with("pre#preview-text", "third draft").await;

    // The oldest, previewed, then restored.
    let row = format!(r#"table#versions tr[data-v="{oldest}"]"#);
    b.click(&format!("{row} a.preview")).await;
    b.text_with("pre#preview-text", "first draft").await;
    b.element(&format!("{row}.shown")).await;
    b.screenshot("file-history").await;
    b.text_with(&format!("{row} form.inline button"), "Restore this version")
        .await;
    b.click(&format!("{row} form.inline button")).await;
    b.text_with("h1", "Restored").await;
    let result = b.text_with("p#result", "1 file (").await;
    assert!(result.contains("1 replaced"), "{result}");
    eventually("SRC holds the oldest version", || {
        src_is(&w, "letters/doc.txt", one)
    })
    .await;
    eventually("DST backs up the restored version", || {
        dst_is(&w, "letters/doc.txt", one)
    })
    .await;

    // Undo: the newest comes back.
    b.click("button#undo").await;
    let result = b
        .text_with("p#result", "as it was before the restore")
        .await;
    assert!(result.contains("1 put back"), "{result}");
    eventually("SRC holds the newest version again", || {
        src_is(&w, "letters/doc.txt", three)
    })
    .await;
    eventually("DST follows", || dst_is(&w, "letters/doc.txt", three)).await;
    let all = w.all_version_contents();
    for v in [one, two] {
        assert!(all.iter().any(|c| c == v), "a version is lost");
    }

    b.close().await;
    drop(watch);
}

/// Another folder backed up from the page, and a pair removed there: the
/// removal asks first (Cancel keeps it), and the backup folder stays.
#[tokio::test]
async fn a_folder_pair_is_added_and_removed_in_the_page() {
    browser::tools();
    let w = World::new();
    w.write("notes.txt", "hello\n");
    let photos = w.path("photos");
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::write(photos.join("cat.jpg"), "meow").unwrap();
    let backup = w.path("photos-backup");
    let watch = Watcher::start(&w).await;
    let b = Browser::start(w.dir.path()).await;
    // The address with its key first (it becomes a cookie), as the tray opens it.
    b.open(&watch.url).await;
    b.open(&format!("{}/settings", watch.origin())).await;
    b.element("input#add_src")
        .await
        .send_keys(&photos.to_string_lossy())
        .await
        .unwrap();
    b.element("input#add_dst")
        .await
        .send_keys(&backup.to_string_lossy())
        .await
        .unwrap();
    b.click("button#add").await;
    b.text_with("p#saved", "Added.").await;
    let cfg = std::fs::read_to_string(w.config_file()).unwrap();
    assert!(cfg.contains(&*photos.to_string_lossy()), "{cfg}");
    assert!(backup.is_dir());
    b.text_with("fieldset#pair-settings-1 legend", "photos")
        .await;
    b.screenshot("settings_pair_added").await;

    // Stop backing it up: asked first; Cancel keeps it.
    let ask = |b: &Browser| {
        let c = b.client().clone();
        async move {
            let mut text = None;
            for _ in 0..100 {
                if let Ok(t) = c.get_alert_text().await {
                    text = Some(t);
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            text.expect("no question was asked")
        }
    };
    b.click("button#remove_1").await;
    let q = ask(&b).await;
    assert!(
        q.contains("Stop backing up") && q.contains("stays as it is"),
        "{q}"
    );
    b.client().dismiss_alert().await.unwrap();
    let cfg = std::fs::read_to_string(w.config_file()).unwrap();
    assert!(
        cfg.contains(&*photos.to_string_lossy()),
        "cancelled, yet: {cfg}"
    );
    b.click("button#remove_1").await;
    ask(&b).await;
    b.client().accept_alert().await.unwrap();
    b.text_with("p#saved", "Removed.").await;
    let cfg = std::fs::read_to_string(w.config_file()).unwrap();
    assert!(!cfg.contains(&*photos.to_string_lossy()), "{cfg}");
    assert!(cfg.contains(&*w.src.to_string_lossy()), "{cfg}");
    assert!(backup.is_dir(), "the backup folder went with the pair");
    b.close().await;
    drop(watch);
}

/// Issue 12: a setting changed in the page's form is saved into the
/// user's config and applied: the overview and `versions --stats` tell the
/// new policy.
#[tokio::test]
async fn a_setting_changed_in_the_page_is_saved_and_applied() {
    browser::tools();
    let w = World::new();
    w.write("notes.txt", "hello\n");
    let watch = Watcher::start(&w).await;
    let b = Browser::start(w.dir.path()).await;
    b.open(&watch.url).await;
    b.text_with("#policy-0", "30 days; thinned: every version for 24 hours")
        .await;

    b.open(&format!("{}/settings", watch.origin())).await;
    let days = b.element("input#retention_days").await;
    days.clear().await.unwrap();
    days.send_keys("45").await.unwrap();
    b.click("input#thin_versions").await;
    b.click("button#save").await;
    b.text_with("p#saved", "Saved").await;
    let cfg = std::fs::read_to_string(w.config_file()).unwrap();
    assert!(
        cfg.contains("retention_days = 45") && cfg.contains("thin_versions = false"),
        "{cfg}"
    );

    b.open(&watch.url).await;
    let policy = b.text_with("#policy-0", "45 days").await;
    assert!(!policy.contains("thinned"), "{policy}");
    let stats = w.run(["versions", "--stats"]);
    stats.ok();
    assert!(
        stats.stdout.contains("kept for 45 days")
            && stats.stdout.contains("not thinned: every version stays"),
        "{}",
        stats.stdout
    );
    b.close().await;
    drop(watch);
}

/// Find a file by name across history, compare two of its versions,
/// download one, and bring a deleted one back into another folder with
/// "Restore to…" (SRC untouched).
#[tokio::test]
async fn find_compare_download_and_restore_into_another_folder() {
    browser::tools();
    let w = World::new();
    let (one, two) = (
        b"first draft\nsame line\n".as_slice(),
        b"second draft\nsame line\n".as_slice(),
    );
    w.write("letters/doc.txt", one);
    w.write("letters/old-recipe.txt", "flour, water, salt\n");
    let watch = Watcher::start(&w).await;
    w.write("letters/doc.txt", two);
    eventually("DST has the new content", || {
        dst_is(&w, "letters/doc.txt", two)
    })
    .await;
    std::fs::remove_file(w.src.join("letters/old-recipe.txt")).unwrap();
    eventually("the deletion backed up", || {
        absent(&w.dst.join("letters/old-recipe.txt"))
    })
    .await;

    let b = Browser::start(w.dir.path()).await;
    b.open(&watch.url).await;
    // Find: by part of its name, case not mattering; the deleted one marked.
    let q = b.element("form.search input[name=q]").await;
    q.send_keys("RECIPE").await.unwrap();
    b.click("form.search button").await;
    let hit = b
        .text_with(r#"tr[data-path="letters/old-recipe.txt"]"#, "deleted")
        .await;
    assert!(hit.contains("old-recipe.txt"), "{hit}");
    b.screenshot("search").await;

    // Its page: Restore to another folder.
    b.click(r#"tr[data-path="letters/old-recipe.txt"] a"#).await;
    b.text_with("p#now.warn", "Not in the backup now").await;
    b.click("form.restore details summary").await;
    let elsewhere = w.path("restored-here");
    std::fs::create_dir_all(&elsewhere).unwrap();
    b.element("form.restore input[name=to]")
        .await
        .send_keys(&elsewhere.to_string_lossy())
        .await
        .unwrap();
    b.click(r#"form.restore button[value="to"]"#).await;
    b.text_with("h1", "Restored").await;
    let brought: Vec<PathBuf> = walkdir::WalkDir::new(&elsewhere)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    assert_eq!(brought.len(), 1, "{brought:?}");
    assert!(brought[0].ends_with("old-recipe.txt"), "{brought:?}");
    assert_eq!(std::fs::read(&brought[0]).unwrap(), b"flour, water, salt\n");
    assert!(
        absent(&w.src.join("letters/old-recipe.txt")),
        "Restore to… wrote into SRC"
    );

    // Compare: the older version with the newer one.
    b.open(&format!(
        "{}/file?pair=0&path=letters/doc.txt",
        watch.origin()
    ))
    .await;
    let mut vs = Vec::new();
    for r in b.elements("table#versions tbody tr[data-v]").await {
        vs.push(r.attr("data-v").await.unwrap().unwrap_or_default());
    }
    assert_eq!(vs.len(), 2, "{vs:?}");
    let row = format!(r#"table#versions tr[data-v="{}"]"#, vs[1]);
    b.click(&format!(r#"{row} a[href^="/diff"]"#)).await;
    let d = b.text_with("pre#diff", "+second draft").await;
    assert!(
        d.contains("-first draft") && d.contains(" same line"),
        "{d}"
    );
    b.screenshot("diff").await;

    // Download: the version's bytes, as an attachment named after the file.
    b.open(&format!(
        "{}/file?pair=0&path=letters/doc.txt",
        watch.origin()
    ))
    .await;
    let link = b
        .element(&format!(r#"{row} a[href*="download=1"]"#))
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap_or_default();
    let got = b
        .client()
        .execute_async(
            "const [href, done] = arguments; fetch(href).then(async r => done([r.status, r.headers.get('content-disposition') || '', await r.text()]));",
            vec![serde_json::Value::String(link)],
        )
        .await
        .unwrap();
    assert_eq!(got[0], 200, "{got}");
    let disposition = got[1].as_str().unwrap_or_default();
    assert!(
        disposition.starts_with("attachment") && disposition.contains("doc.txt"),
        "{got}"
    );
    assert_eq!(got[2].as_str().unwrap_or_default().as_bytes(), one);
    b.close().await;
    drop(watch);
}
