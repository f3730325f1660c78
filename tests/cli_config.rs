//! `mirrortray add`, `remove`, `config`, and the config file as `sync` reads
//! it: paths stored absolute, edits atomic, a malformed file named by line
//! and field and never overwritten, overlapping pairs refused.

// Tests fail loudly on any unexpected I/O error: that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::ffi::OsStr;
use std::path::Path;

use crate::support::*;

fn add(w: &World, src: &Path, dst: &Path, extra: &[&str]) -> Run {
    let mut args: Vec<&OsStr> = vec![OsStr::new("add"), src.as_os_str(), dst.as_os_str()];
    args.extend(extra.iter().map(OsStr::new));
    w.run(args)
}

fn write_config(w: &World, text: &str) {
    std::fs::create_dir_all(w.config_file().parent().unwrap()).unwrap();
    std::fs::write(w.config_file(), text).unwrap();
}

/// Names in the config folder other than the config file (temp files left?).
fn config_dir_extras(w: &World) -> Vec<String> {
    std::fs::read_dir(w.config_file().parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "config.toml")
        .collect()
}

#[test]
fn add_config_remove_round_trip() {
    let w = World::new();
    w.run(["config"])
        .ok()
        .stdout_has("No folder pairs yet")
        .stdout_has("mirrortray add SRC DST");
    assert!(
        !w.config_file().exists(),
        "`config` must not create the file"
    );

    let r = add(
        &w,
        &w.src,
        &w.dst,
        &[
            "--ignore",
            "*.tmp",
            "--ignore",
            "cache/",
            "--no-versions",
            "--retention-days",
            "7",
        ],
    );
    r.ok()
        .no_debug_dump()
        .stdout_has("Added")
        .stdout_has(&w.config_file().display().to_string());
    let text = std::fs::read_to_string(w.config_file()).unwrap();
    assert!(
        text.contains(&format!("src = \"{}\"", w.src.display())),
        "{text}"
    );
    assert!(
        text.contains(&format!("dst = \"{}\"", w.dst.display())),
        "{text}"
    );
    assert!(text.contains("versions = false"), "{text}");
    assert!(
        config_dir_extras(&w).is_empty(),
        "temp files left: {:?}",
        config_dir_extras(&w)
    );

    let shown = w.run(["config"]);
    shown
        .ok()
        .stdout_has(&w.config_file().display().to_string())
        .stdout_has(&format!("{} -> {}", w.src.display(), w.dst.display()))
        .stdout_has("*.tmp, cache/")
        .stdout_has("versions: off");

    w.run([OsStr::new("remove"), w.src.as_os_str()])
        .ok()
        .stdout_has("Removed")
        .stdout_has("left as it is");
    w.run(["config"]).ok().stdout_has("No folder pairs yet");
}

#[test]
fn config_shows_versions_and_retention() {
    let w = World::new();
    add(&w, &w.src, &w.dst, &[]).ok();
    w.run(["config"])
        .ok()
        .stdout_has("versions: on, kept 30 days")
        .stdout_has("ignore: temporary files of well-known programs");
    let other = w.path("src2");
    std::fs::create_dir(&other).unwrap();
    add(&w, &other, &w.path("dst2"), &["--retention-days", "5"]).ok();
    w.run(["config"])
        .ok()
        .stdout_has("versions: on, kept 5 days");
}

#[test]
fn add_makes_relative_paths_absolute_then_sync_uses_the_pair() {
    let w = World::new();
    w.write("a.txt", "hello");
    w.write("d/b.txt", "world");
    let out = w
        .cmd()
        .current_dir(w.dir.path())
        .args(["add", "./src", "dst"])
        .output()
        .unwrap();
    Run::from(out).ok();
    let text = std::fs::read_to_string(w.config_file()).unwrap();
    // The temp dir may sit behind a symlink (/tmp on some systems): stored
    // paths are the resolved ones.
    let real_src = std::fs::canonicalize(&w.src).unwrap();
    assert!(
        text.contains(&format!("src = \"{}\"", real_src.display())),
        "{text}"
    );

    w.run(["sync"]).ok().no_debug_dump();
    assert_mirrored(&w.src, &w.dst);
    w.write("c.txt", "more");
    w.run(["sync"]).ok();
    assert_mirrored(&w.src, &w.dst);
}

#[test]
fn config_flag_overrides_the_default_file() {
    let w = World::new();
    w.write("a.txt", "x");
    let file = w.path("elsewhere/my.toml");
    let f = file.as_os_str();
    w.run([
        OsStr::new("--config"),
        f,
        OsStr::new("add"),
        w.src.as_os_str(),
        w.dst.as_os_str(),
    ])
    .ok()
    .stdout_has("my.toml");
    assert!(file.exists());
    assert!(
        !w.config_file().exists(),
        "the default config must not be touched"
    );
    w.run([OsStr::new("config"), OsStr::new("--config"), f])
        .ok()
        .stdout_has("my.toml")
        .stdout_has(&w.src.display().to_string());
    // The default config has no pairs; the override has one.
    w.run(["sync"]).code(2).stderr_has("no folder pairs");
    w.run([OsStr::new("sync"), OsStr::new("--config"), f]).ok();
    assert_mirrored(&w.src, &w.dst);
}

#[test]
fn duplicate_source_or_backup_refused() {
    let w = World::new();
    add(&w, &w.src, &w.dst, &[]).ok();
    let before = std::fs::read(w.config_file()).unwrap();

    add(&w, &w.src, &w.path("dst2"), &[])
        .code(2)
        .no_debug_dump()
        .stderr_has("already backed up")
        .stderr_has("mirrortray remove");
    let src2 = w.path("src2");
    std::fs::create_dir(&src2).unwrap();
    add(&w, &src2, &w.dst, &[])
        .code(2)
        .no_debug_dump()
        .stderr_has("already the backup folder");
    // Through a symlink to the same source, too.
    let link = w.path("link-to-src");
    std::os::unix::fs::symlink(&w.src, &link).unwrap();
    add(&w, &link, &w.path("dst3"), &[])
        .code(2)
        .stderr_has("already backed up");

    assert_eq!(
        std::fs::read(w.config_file()).unwrap(),
        before,
        "a refused add changed the config"
    );
}

#[test]
fn add_refuses_overlapping_folders_with_the_engines_message() {
    let w = World::new();
    add(&w, &w.src, &w.src.join("backup"), &[])
        .code(2)
        .no_debug_dump()
        .stderr_has("inside the source folder");
    std::fs::create_dir_all(w.path("outer/inner")).unwrap();
    add(&w, &w.path("outer/inner"), &w.path("outer"), &[])
        .code(2)
        .stderr_has("inside the backup folder");
    let link = w.path("same");
    std::os::unix::fs::symlink(&w.src, &link).unwrap();
    add(&w, &w.src, &link, &[])
        .code(2)
        .stderr_has("same folder");
    add(&w, &w.path("missing"), &w.dst, &[])
        .code(2)
        .stderr_has("does not exist");
    assert!(
        !w.config_file().exists(),
        "a refused add created the config"
    );
}

#[test]
fn add_refuses_a_backup_inside_another_pairs_folders() {
    let w = World::new();
    add(&w, &w.src, &w.dst, &[]).ok();
    let before = std::fs::read(w.config_file()).unwrap();
    let other = w.path("other");
    std::fs::create_dir(&other).unwrap();
    // Its backup would be backed up by the first pair.
    add(&w, &other, &w.src.join("other-backup"), &[])
        .code(2)
        .stderr_has("would back up this backup")
        .stderr_has("was not changed");
    // Its backup would be versioned away by the first pair's mirroring.
    add(&w, &other, &w.dst.join("sub"), &[])
        .code(2)
        .stderr_has("inside the backup folder");
    // Its source would be deleted or versioned by the first pair's mirroring.
    std::fs::create_dir_all(w.dst.join("inner")).unwrap();
    add(&w, &w.dst.join("inner"), &w.path("inner-backup"), &[])
        .code(2)
        .stderr_has("would delete or version this source")
        .stderr_has("was not changed");
    assert_eq!(std::fs::read(w.config_file()).unwrap(), before);
    assert!(
        !w.path("inner-backup").exists(),
        "a refused add made its backup folder"
    );
    // A backup next to the others is fine.
    add(&w, &other, &w.path("other-dst"), &[]).ok();
}

#[test]
fn remove_unknown_source_lists_the_configured_ones() {
    let w = World::new();
    w.run(["remove", "/nowhere"])
        .code(2)
        .stderr_has("no pair has the source folder /nowhere")
        .stderr_has("no pairs");
    add(&w, &w.src, &w.dst, &[]).ok();
    let before = std::fs::read(w.config_file()).unwrap();
    w.run(["remove", "/nowhere"])
        .code(2)
        .no_debug_dump()
        .stderr_has("configured sources are")
        .stderr_has(&w.src.display().to_string());
    assert_eq!(std::fs::read(w.config_file()).unwrap(), before);
}

#[test]
fn remove_works_after_the_source_is_gone_and_through_relative_paths() {
    let w = World::new();
    add(&w, &w.src, &w.dst, &[]).ok();
    std::fs::remove_dir_all(&w.src).unwrap();
    w.run(["config"]).ok().stdout_has("source folder not found");
    w.run([OsStr::new("remove"), w.src.as_os_str()]).ok();
    std::fs::create_dir(&w.src).unwrap();
    add(&w, &w.src, &w.dst, &[]).ok();
    let out = w
        .cmd()
        .current_dir(w.dir.path())
        .args(["remove", "src/"])
        .output()
        .unwrap();
    Run::from(out).ok().stdout_has("Removed");
}

/// The malformed configs a person writes by hand: (what, file text, line, field).
const MALFORMED: &[(&str, &str, usize, &str)] = &[
    (
        "syntax error (unclosed string)",
        "[settings]\nretention_days = 30\n\n[[pair]]\nsrc = \"/data\ndst = \"/backup\"\n",
        5,
        "src",
    ),
    (
        "wrong type",
        "[settings]\nalert_after_hours = 24\nretention_days = \"thirty\"\n",
        3,
        "retention_days",
    ),
    (
        "unknown field (typo)",
        "[[pair]]\nsrc = \"/data\"\ndst = \"/backup\"\nignroe = [\"*.tmp\"]\n",
        4,
        "ignroe",
    ),
    (
        "missing src",
        "[[pair]]\nsrc = \"/data\"\ndst = \"/backup\"\n\n[[pair]]\ndst = \"/backup2\"\n",
        5,
        "src",
    ),
    (
        "missing dst",
        "[settings]\n\n[[pair]]\nsrc = \"/data\"\n",
        3,
        "dst",
    ),
    (
        "single brackets",
        "[pair]\nsrc = \"/data\"\ndst = \"/backup\"\n",
        1,
        "pair",
    ),
    (
        "bad boolean",
        "[[pair]]\nsrc = \"/data\"\ndst = \"/backup\"\nversions = \"no\"\n",
        4,
        "versions",
    ),
];

#[test]
fn malformed_config_names_line_and_field_and_is_never_overwritten() {
    for (what, text, line, field) in MALFORMED {
        let w = World::new();
        write_config(&w, text);
        let path = w.config_file().display().to_string();
        let expect_line = format!("line {line}, field \"{field}\"");
        for args in [vec!["sync"], vec!["verify"], vec!["config"]] {
            w.run(&args)
                .code(2)
                .no_debug_dump()
                .stderr_has(&path)
                .stderr_has(&expect_line)
                .stderr_has("Fix the file");
        }
        let r = add(&w, &w.src, &w.dst, &[]);
        assert_eq!(r.code, 2, "{what}: add on a malformed config\n{}", r.stderr);
        r.stderr_has(&expect_line).no_debug_dump();
        w.run(["remove", "/data"]).code(2).stderr_has(&expect_line);
        assert_eq!(
            std::fs::read_to_string(w.config_file()).unwrap(),
            *text,
            "{what}: the malformed config was changed"
        );
        assert!(config_dir_extras(&w).is_empty(), "{what}: temp files left");
    }
}

#[test]
fn malformed_config_message_is_one_clear_sentence() {
    let w = World::new();
    write_config(&w, "[settings]\nretention_days = \"x\"\n");
    let r = w.run(["sync"]);
    r.code(2).stderr_has(&format!(
        "config file {}, line 2, field \"retention_days\": expected a whole number (0 to 4294967295), found the text \"x\". Fix the file (it was not changed).",
        w.config_file().display()
    ));
    assert_eq!(
        r.stderr.lines().count(),
        1,
        "one line, not a dump:\n{}",
        r.stderr
    );

    write_config(
        &w,
        "[[pair]]\nsrc = \"/data\"\ndst = \"/backup\"\nignroe = [\"*.tmp\"]\n",
    );
    w.run(["sync"])
        .code(2)
        .stderr_has("did you mean \"ignore\"?");
}

#[test]
fn explicit_pair_still_syncs_with_a_malformed_config() {
    let w = World::new();
    w.write("a.txt", "x");
    write_config(&w, "[settings\n");
    w.sync(&[]).ok();
    assert_mirrored(&w.src, &w.dst);
    assert_eq!(
        std::fs::read_to_string(w.config_file()).unwrap(),
        "[settings\n"
    );
}

#[test]
fn config_with_relative_paths_is_refused() {
    let w = World::new();
    write_config(
        &w,
        &format!(
            "[[pair]]\nsrc = \"{}\"\ndst = \"backup\"\n",
            w.src.display()
        ),
    );
    w.run(["sync"])
        .code(2)
        .no_debug_dump()
        .stderr_has("line 3, field \"dst\"")
        .stderr_has("relative path")
        .stderr_has("must be absolute");
    assert!(!w.dir.path().join("backup").exists() && !Path::new("backup").exists());
}

#[test]
fn config_with_overlapping_pairs_is_refused_naming_the_pair() {
    let w = World::new();
    let src2 = w.path("src2");
    std::fs::create_dir(&src2).unwrap();
    let cases = [
        // Same backup folder twice.
        (
            format!("{}\n{}", pair(&w.src, &w.dst), pair(&src2, &w.dst)),
            "also the backup folder",
        ),
        // A backup inside another pair's backup.
        (
            format!(
                "{}\n{}",
                pair(&w.src, &w.dst),
                pair(&src2, &w.dst.join("x"))
            ),
            "inside the backup folder",
        ),
        // A backup inside another pair's source: it would back up the backup.
        (
            format!(
                "{}\n{}",
                pair(&w.src, &w.dst),
                pair(&src2, &w.src.join("bk"))
            ),
            "would back up this backup",
        ),
        // A pair's own backup inside its source.
        (pair(&w.src, &w.src.join("bk")), "would back itself up"),
        // A source inside another pair's backup.
        (
            format!(
                "{}\n{}",
                pair(&w.src, &w.dst),
                pair(&w.dst.join("in"), &w.path("bk2"))
            ),
            "would delete or version this source",
        ),
    ];
    for (text, why) in cases {
        write_config(&w, &text);
        w.run(["sync"])
            .code(2)
            .no_debug_dump()
            .stderr_has(why)
            .stderr_has("of pair")
            .stderr_has("field \"");
        assert!(
            !w.dst.exists() && !w.src.join("bk").exists(),
            "nothing may be mirrored: {text}"
        );
    }
}

fn pair(src: &Path, dst: &Path) -> String {
    format!(
        "[[pair]]\nsrc = \"{}\"\ndst = \"{}\"\n",
        src.display(),
        dst.display()
    )
}

#[test]
fn remove_can_fix_an_invalid_config() {
    let w = World::new();
    let src2 = w.path("src2");
    std::fs::create_dir(&src2).unwrap();
    write_config(
        &w,
        &format!("{}\n{}", pair(&w.src, &w.dst), pair(&src2, &w.dst)),
    );
    // Adding to it is refused with the file's own problem...
    let src3 = w.path("src3");
    std::fs::create_dir(&src3).unwrap();
    add(&w, &src3, &w.path("dst3"), &[])
        .code(2)
        .stderr_has("line 7, field \"dst\"");
    // ...but removing the offending pair fixes it.
    w.run([OsStr::new("remove"), src2.as_os_str()]).ok();
    w.run(["config"])
        .ok()
        .stdout_has(&w.src.display().to_string());
}

#[test]
fn invalid_ignore_pattern_in_config_is_refused() {
    let w = World::new();
    write_config(
        &w,
        &format!(
            "[[pair]]\nsrc = \"{}\"\ndst = \"{}\"\nignore = [\"a{{b\"]\n",
            w.src.display(),
            w.dst.display()
        ),
    );
    w.run(["sync"])
        .code(2)
        .no_debug_dump()
        .stderr_has("line 4, field \"ignore\"")
        .stderr_has("a{b");
}

#[test]
fn sync_without_a_config_does_not_create_one() {
    let w = World::new();
    w.run(["sync"])
        .code(2)
        .stderr_has("no folder pairs")
        .stderr_has("mirrortray add");
    assert!(!w.config_file().exists());
}

#[test]
fn add_keeps_the_config_files_permissions_and_symlink() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new();
    // A dotfile manager's layout: the config is a symlink into a repo.
    let real = w.path("dotfiles/mirrortray.toml");
    std::fs::create_dir_all(real.parent().unwrap()).unwrap();
    std::fs::write(&real, "[settings]\nretention_days = 9\n").unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::create_dir_all(w.config_file().parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&real, w.config_file()).unwrap();

    add(&w, &w.src, &w.dst, &[]).ok();
    assert!(
        std::fs::symlink_metadata(w.config_file())
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let text = std::fs::read_to_string(&real).unwrap();
    assert!(
        text.contains("retention_days = 9") && text.contains("[[pair]]"),
        "{text}"
    );
    assert_eq!(
        std::fs::metadata(&real).unwrap().permissions().mode() & 0o777,
        0o600
    );
    w.run(["config"]).ok().stdout_has("kept 9 days");
}

#[test]
fn add_with_an_invalid_ignore_pattern_is_refused() {
    let w = World::new();
    add(&w, &w.src, &w.dst, &["--ignore", "a{b"])
        .code(2)
        .no_debug_dump()
        .stderr_has("a{b");
    assert!(!w.config_file().exists());
}

/// A config that cannot be saved (read-only folder) stays as it was, and
/// the message says so. Runs as nobody: root writes anywhere.
#[test]
fn unwritable_config_folder_leaves_the_old_config() {
    let w = World::new();
    add(&w, &w.src, &w.dst, &[]).ok();
    let before = std::fs::read(w.config_file()).unwrap();
    // nobody owns the world (so it can read SRC and write DST)...
    chown_nobody(w.dir.path());
    // ...but not the config folder, which it may only read.
    let conf_dir = w.config_file().parent().unwrap().to_path_buf();
    let st = std::process::Command::new("chown")
        .args(["-R", "0:0"])
        .arg(&conf_dir)
        .status()
        .unwrap();
    assert!(st.success());
    let src2 = w.path("src2");
    std::fs::create_dir(&src2).unwrap();
    chown_nobody(&src2);
    let out = as_nobody(&w)
        .arg("add")
        .arg(&src2)
        .arg(w.path("dst2"))
        .output()
        .unwrap();
    Run::from(out)
        .code(2)
        .no_debug_dump()
        .stderr_has("cannot save config file")
        .stderr_has("permission denied")
        .stderr_has("old config was not changed");
    assert_eq!(std::fs::read(w.config_file()).unwrap(), before);
    assert!(config_dir_extras(&w).is_empty());
}

/// `retention_days = 0` would delete every version at the next backup: it
/// is refused, naming the line, and nothing is deleted.
#[test]
fn zero_retention_days_is_refused_and_no_version_is_deleted() {
    let w = World::new();
    std::fs::create_dir_all(&w.dst).unwrap();
    w.write("a.txt", "one");
    w.sync(&[]).ok();
    w.write("a.txt", "two");
    w.sync(&[]).ok();
    let versions = snapshot(&w.dst.join(".mirrortray/versions"));
    write_config(
        &w,
        &format!(
            "[settings]\nretention_days = 0\n\n[[pair]]\nsrc = \"{}\"\ndst = \"{}\"\n",
            w.src.display(),
            w.dst.display()
        ),
    );
    let r = w.run(["sync"]);
    r.code(2)
        .stderr_has("line 2")
        .stderr_has("retention_days = 0 would delete every version");
    assert_eq!(snapshot(&w.dst.join(".mirrortray/versions")), versions);
    w.run([
        OsStr::new("add"),
        w.path("s2").as_os_str(),
        w.path("d2").as_os_str(),
        OsStr::new("--retention-days"),
        OsStr::new("0"),
    ])
    .code(2)
    .stderr_has("--retention-days");
}

/// A backup folder that holds other files (not a mirrortray backup) is not
/// taken without a word: the mirror would move them into its versions.
#[test]
fn add_refuses_a_backup_folder_of_other_files_unless_adopted() {
    let w = World::new();
    let backups = w.path("Backups");
    std::fs::create_dir_all(&backups).unwrap();
    std::fs::write(backups.join("old-taxes.txt"), "2019").unwrap();
    let r = w.run([OsStr::new("add"), w.src.as_os_str(), backups.as_os_str()]);
    r.code(2)
        .stderr_has(&format!(
            "the backup folder {} already holds 1 entry that is not a mirrortray backup",
            backups.display()
        ))
        .stderr_has(&backups.join("src").display().to_string())
        .stderr_has("--adopt");
    assert!(
        !w.config_file().exists()
            || !std::fs::read_to_string(w.config_file())
                .unwrap()
                .contains("[[pair]]")
    );
    // Its own folder inside is fine; so is the folder itself, adopted.
    w.run([
        OsStr::new("add"),
        w.src.as_os_str(),
        backups.join("src").as_os_str(),
    ])
    .ok();
    w.run([OsStr::new("remove"), w.src.as_os_str()]).ok();
    w.run([
        OsStr::new("add"),
        w.src.as_os_str(),
        backups.as_os_str(),
        OsStr::new("--adopt"),
    ])
    .ok();
    assert_eq!(
        std::fs::read(backups.join("old-taxes.txt")).unwrap(),
        b"2019"
    );
}

/// Issue 14: help for people: what no command does, examples everywhere,
/// and no words that do not hold (`verify` creates nothing and keeps no
/// versions).
#[test]
fn help_says_what_no_command_does_and_every_command_has_examples() {
    let w = World::new();
    let top = w.run(["--help"]);
    top.ok();
    assert!(
        top.stdout
            .contains("Without a command, mirrortray starts the tray"),
        "{}",
        top.stdout
    );
    assert!(top.stdout.contains("Examples:"), "{}", top.stdout);
    for cmd in [
        "watch",
        "sync",
        "verify",
        "add",
        "remove",
        "config",
        "versions",
        "status",
        "ui",
        "integrate",
        "restore",
    ] {
        let h = w.run([cmd, "--help"]);
        h.ok();
        assert!(
            h.stdout.contains("\nExamples:\n  mirrortray "),
            "{cmd} --help:\n{}",
            h.stdout
        );
    }
    let v = w.run(["verify", "--help"]);
    assert!(!v.stdout.contains("created if missing"), "{}", v.stdout);
    assert!(!v.stdout.contains("--no-versions"), "{}", v.stdout);
    let r = w.run(["verify", "a", "b", "--no-versions"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

/// With no instance running, `add` says how to back the pair up.
#[test]
fn add_with_nothing_running_says_to_sync_or_start_the_tray() {
    let w = World::new();
    std::fs::create_dir_all(&w.dst).unwrap();
    let r = add(&w, &w.src, &w.dst, &[]);
    r.ok();
    assert!(
        r.stdout.contains(
            "Run `mirrortray sync` to back it up now, or start the tray (`mirrortray`) to keep it backed up."
        ),
        "{}",
        r.stdout
    );
}
