//! integrate: "Previous versions…" where the files are, in the file
//! managers' right-click menus; installed and removed by `mirrortray
//! integrate [--remove]` and by the tray's check entry.
//!
//! Each entry runs `mirrortray ui PATH`, which opens the running instance's
//! page at that file's history or that folder. Installed per user, in the
//! folders each file manager reads its own extensions from (under
//! `$XDG_DATA_HOME`, default `~/.local/share`):
//! - Nautilus (GNOME Files): two scripts in `nautilus/scripts/` (its
//!   Scripts submenu);
//! - Dolphin (KDE): service menus in `kio/servicemenus/` (KF6, and KF5 from
//!   5.85), executable as KF6 asks;
//! - Nemo (Cinnamon): actions in `nemo/actions/`.
//!
//! Thunar keeps its custom actions in one shared `uca.xml` of the user's
//! own; it is not edited. `--remove` removes exactly the files this wrote
//! (each carries a mark), nothing else.

use std::path::{Path, PathBuf};

use mirrortray::engine::error::{reason, show};

/// Every file this writes holds this line, so `--remove` knows its own.
const MARK: &str = "Installed by `mirrortray integrate`";

struct Entry {
    rel: &'static str,
    text: String,
    executable: bool,
}

fn entries(exe: &str) -> Vec<Entry> {
    let sh = shell_quote(exe);
    let de = desktop_quote(exe);
    vec![
        Entry {
            rel: "nautilus/scripts/mirrortray: Previous versions…",
            text: format!(
                "#!/bin/sh\n# mirrortray: the selected file's versions (or the folder as it was) on mirrortray's page.\n# {MARK}; `mirrortray integrate --remove` removes it.\nexec {sh} ui \"${{1:-$PWD}}\"\n"
            ),
            executable: true,
        },
        Entry {
            rel: "nautilus/scripts/mirrortray: Restore missing files here…",
            text: format!(
                "#!/bin/sh\n# mirrortray: this folder as it was, deleted files marked, on mirrortray's page.\n# {MARK}; `mirrortray integrate --remove` removes it.\nexec {sh} ui \"$PWD\"\n"
            ),
            executable: true,
        },
        Entry {
            rel: "kio/servicemenus/mirrortray-versions.desktop",
            text: format!(
                "# {MARK}; `mirrortray integrate --remove` removes it.\n[Desktop Entry]\nType=Service\nMimeType=application/octet-stream;all/allfiles;\nActions=versions;\nX-KDE-Priority=TopLevel\n\n[Desktop Action versions]\nName=mirrortray: Previous versions…\nIcon=document-open-recent\nExec={de} ui %f\n"
            ),
            executable: true,
        },
        Entry {
            rel: "kio/servicemenus/mirrortray-restore-here.desktop",
            text: format!(
                "# {MARK}; `mirrortray integrate --remove` removes it.\n[Desktop Entry]\nType=Service\nMimeType=inode/directory;\nActions=restore;\nX-KDE-Priority=TopLevel\n\n[Desktop Action restore]\nName=mirrortray: Restore missing files here…\nIcon=document-revert\nExec={de} ui %f\n"
            ),
            executable: true,
        },
        Entry {
            rel: "nemo/actions/mirrortray-versions.nemo_action",
            text: format!(
                "# {MARK}; `mirrortray integrate --remove` removes it.\n[Nemo Action]\nName=mirrortray: Previous versions…\nComment=Earlier versions of this file, kept by mirrortray\nExec={de} ui %F\nIcon-Name=document-open-recent\nSelection=s\nExtensions=any;\n"
            ),
            executable: false,
        },
        Entry {
            rel: "nemo/actions/mirrortray-restore-here.nemo_action",
            text: format!(
                "# {MARK}; `mirrortray integrate --remove` removes it.\n[Nemo Action]\nName=mirrortray: Restore missing files here…\nComment=This folder as it was, deleted files marked\nExec={de} ui %P\nIcon-Name=document-revert\nSelection=none\nExtensions=any;\n"
            ),
            executable: false,
        },
    ]
}

/// A word for `sh`: single quotes, a single quote written as `'\''`.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// An argument of a desktop file's `Exec` key: double quotes, with `"`,
/// `` ` ``, `$` and `\` escaped (Desktop Entry Specification), and `%` as
/// `%%`.
fn desktop_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '`' | '$' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '%' => out.push_str("%%"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn data_home() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|d| d.data_dir().to_path_buf())
}

/// What installing or removing did, file by file.
#[derive(Debug, Default)]
pub struct Report {
    /// Files written, or removed.
    pub changed: Vec<PathBuf>,
    /// Files left as they were, with the reason.
    pub failed: Vec<(PathBuf, String)>,
}

impl Report {
    /// The failures as one sentence each, for a popup or the log.
    pub fn problems(&self) -> String {
        self.failed
            .iter()
            .map(|(p, why)| format!("{}: {why}", show(p)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The folder the file managers read from, and this program's path.
fn places() -> Result<(PathBuf, String), String> {
    let base = data_home().ok_or("cannot find your home folder: HOME is not set")?;
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find mirrortray's own program file: {e}"))?;
    Ok((base, exe.to_string_lossy().into_owned()))
}

/// Installs the entries (or removes ours, with `remove`). `Err`: nothing
/// could be tried.
pub fn apply(remove: bool) -> Result<Report, String> {
    let (base, exe) = places()?;
    let mut report = Report::default();
    for e in entries(&exe) {
        let path = base.join(e.rel);
        let result = if remove {
            remove_ours(&path)
        } else {
            write(&path, &e.text, e.executable).map(|()| true)
        };
        match result {
            Ok(true) => report.changed.push(path),
            Ok(false) => {}
            Err(why) => report.failed.push((path, why)),
        }
    }
    Ok(report)
}

/// Whether the entries are installed: every one of ours is there.
pub fn installed() -> Result<bool, String> {
    let (base, exe) = places()?;
    Ok(entries(&exe)
        .iter()
        .all(|e| std::fs::read_to_string(base.join(e.rel)).is_ok_and(|t| t.contains(MARK))))
}

fn write(path: &Path, text: &str, executable: bool) -> Result<(), String> {
    if let Ok(old) = std::fs::read_to_string(path)
        && !old.contains(MARK)
    {
        return Err("a file of that name is there and is not mirrortray's: left as it is".into());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| reason(&e))?;
    }
    std::fs::write(path, text).map_err(|e| reason(&e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if executable { 0o755 } else { 0o644 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| reason(&e))?;
    }
    #[cfg(not(unix))]
    let _ = executable;
    Ok(())
}

/// Removes the file if it is ours; `Ok(false)` when there is none.
fn remove_ours(path: &Path) -> Result<bool, String> {
    match std::fs::read_to_string(path) {
        Ok(t) if t.contains(MARK) => std::fs::remove_file(path)
            .map(|()| true)
            .map_err(|e| reason(&e)),
        Ok(_) => Err("not written by mirrortray: left as it is".into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(reason(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(
            shell_quote("/opt/my apps/mirrortray"),
            "'/opt/my apps/mirrortray'"
        );
        assert_eq!(shell_quote("/o'k"), r"'/o'\''k'");
        assert_eq!(desktop_quote("/opt/a b/m"), "\"/opt/a b/m\"");
        assert_eq!(desktop_quote(r#"/x$"`\%"#), r#""/x\$\"\`\\%%""#);
    }
}
