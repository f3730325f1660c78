//! autostart: "Start at login".
//!
//! On Linux this is an XDG autostart entry,
//! `$XDG_CONFIG_HOME/autostart/mirrortray.desktop` (`~/.config/...`), which
//! we write ourselves: auto-launch 0.6 writes `Exec=` unquoted, so a binary
//! in a folder with a space (`~/My Apps/mirrortray`) would not start, and it
//! ignores `XDG_CONFIG_HOME`. Here every argument is quoted as the Desktop
//! Entry spec says (double quotes; `"`, `` ` ``, `$`, `\` escaped; `%`
//! doubled), then the value is escaped for the file (`\` doubled). The
//! file is replaced atomically. Elsewhere auto-launch does the work.
//!
//! The entry starts the binary that is running now, with the same
//! `--config` and `--log-file` it was given (so the login start uses the
//! same settings). The menu's check mark always shows the real state: it is
//! read back after every change.

use std::ffi::OsString;
use std::path::Path;

/// The login entry of this program.
#[derive(Debug, Clone)]
pub struct Autostart {
    /// The program and its arguments.
    argv: Vec<OsString>,
    #[cfg(target_os = "linux")]
    entry: std::path::PathBuf,
}

impl Autostart {
    /// The entry for the running binary with `args` (absolute paths).
    pub fn new(args: Vec<OsString>) -> Result<Autostart, String> {
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find the running program: {e}"))?;
        let mut argv = vec![exe.into_os_string()];
        argv.extend(args);
        #[cfg(target_os = "linux")]
        {
            let dirs = directories::BaseDirs::new()
                .ok_or("cannot find the home folder for the autostart entry (set HOME)")?;
            let entry = dirs
                .config_dir()
                .join("autostart")
                .join("mirrortray.desktop");
            Ok(Autostart { argv, entry })
        }
        #[cfg(not(target_os = "linux"))]
        Ok(Autostart { argv })
    }

    /// The arguments for the login start from the command line given now.
    pub fn args_from(config: Option<&Path>, log_file: Option<&Path>) -> Vec<OsString> {
        let mut v = Vec::new();
        for (flag, p) in [("--config", config), ("--log-file", log_file)] {
            if let Some(p) = p {
                v.push(OsString::from(flag));
                v.push(
                    std::path::absolute(p)
                        .unwrap_or_else(|_| p.to_path_buf())
                        .into_os_string(),
                );
            }
        }
        v
    }
}

#[cfg(target_os = "linux")]
impl Autostart {
    /// Whether mirrortray starts at login: the entry exists and is not
    /// switched off (`Hidden=true`, `X-GNOME-Autostart-enabled=false`).
    pub fn is_enabled(&self) -> Result<bool, String> {
        match std::fs::read_to_string(&self.entry) {
            Ok(text) => Ok(!switched_off(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(format!(
                "{}: cannot read the login entry: {}",
                mirrortray::engine::error::show(&self.entry),
                reason(&e)
            )),
        }
    }

    /// Writes or removes the entry.
    pub fn set(&self, on: bool) -> Result<(), String> {
        let fail = |what: &str, e: std::io::Error| {
            format!(
                "{}: cannot {what}: {}",
                mirrortray::engine::error::show(&self.entry),
                reason(&e)
            )
        };
        if !on {
            return match std::fs::remove_file(&self.entry) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(fail("remove the login entry", e)),
            };
        }
        let text = desktop_entry(&self.argv)?;
        let dir = self.entry.parent().ok_or("the login entry has no folder")?;
        std::fs::create_dir_all(dir).map_err(|e| fail("create its folder", e))?;
        let tmp = dir.join(format!(".mirrortray.desktop.tmp-{}", std::process::id()));
        let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &self.entry));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(fail("write the login entry", e));
        }
        Ok(())
    }
}

#[cfg(not(target_os = "linux"))]
impl Autostart {
    fn launcher(&self) -> Result<auto_launch::AutoLaunch, String> {
        let path = self.argv[0]
            .to_str()
            .ok_or("the program's path is not valid Unicode")?;
        let args: Vec<String> = self.argv[1..]
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        auto_launch::AutoLaunchBuilder::new()
            .set_app_name("mirrortray")
            .set_app_path(path)
            .set_args(&args)
            .build()
            .map_err(|e| e.to_string())
    }

    pub fn is_enabled(&self) -> Result<bool, String> {
        self.launcher()?.is_enabled().map_err(|e| e.to_string())
    }

    pub fn set(&self, on: bool) -> Result<(), String> {
        let l = self.launcher()?;
        if on { l.enable() } else { l.disable() }.map_err(|e| e.to_string())
    }
}

#[cfg(target_os = "linux")]
fn reason(e: &std::io::Error) -> String {
    mirrortray::engine::error::reason(e)
}

/// Whether an entry's text switches it off.
pub fn switched_off(text: &str) -> bool {
    let mut in_entry = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_entry = line == "[Desktop Entry]";
            continue;
        }
        if !in_entry {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match (k.trim(), v.trim()) {
            ("Hidden", "true") | ("X-GNOME-Autostart-enabled", "false") => return true,
            _ => {}
        }
    }
    false
}

/// The text of the desktop entry that runs `argv`.
pub fn desktop_entry(argv: &[OsString]) -> Result<String, String> {
    let exec = exec_line(argv)?;
    Ok(format!(
        "[Desktop Entry]\n\
         Type=Application\n\
         Name=mirrortray\n\
         Comment=Keeps a live, versioned mirror of your folders\n\
         Exec={exec}\n\
         Terminal=false\n\
         StartupNotify=false\n\
         X-GNOME-Autostart-enabled=true\n"
    ))
}

/// The `Exec=` value for `argv`: each argument quoted where needed (Desktop
/// Entry spec, "The Exec key"), then escaped as a string value.
pub fn exec_line(argv: &[OsString]) -> Result<String, String> {
    let mut words = Vec::new();
    for a in argv {
        let s = a.to_str().ok_or_else(|| {
            format!(
                "{}: the path is not valid Unicode, which a login entry cannot hold",
                a.to_string_lossy()
            )
        })?;
        if s.contains(['\n', '\r']) {
            return Err(format!("{s:?}: a login entry cannot hold a line break"));
        }
        words.push(quote(s));
    }
    // String value escaping: a backslash is written as two.
    Ok(words.join(" ").replace('\\', "\\\\"))
}

/// One argument of an Exec key.
fn quote(s: &str) -> String {
    const RESERVED: &[char] = &[
        ' ', '\t', '"', '\'', '\\', '>', '<', '~', '|', '&', ';', '$', '*', '?', '#', '(', ')', '`',
    ];
    let s = s.replace('%', "%%");
    if !s.is_empty() && !s.contains(RESERVED) {
        return s;
    }
    let mut out = String::from('"');
    for c in s.chars() {
        if matches!(c, '"' | '`' | '$' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn line(args: &[&str]) -> String {
        exec_line(&args.iter().map(OsString::from).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn plain_paths_stay_plain() {
        assert_eq!(line(&["/usr/bin/mirrortray"]), "/usr/bin/mirrortray");
        assert_eq!(
            line(&["/usr/bin/mirrortray", "--config", "/home/me/c.toml"]),
            "/usr/bin/mirrortray --config /home/me/c.toml"
        );
    }

    #[test]
    fn spaces_and_specials_are_quoted() {
        assert_eq!(
            line(&["/home/me/My Apps/mirrortray"]),
            "\"/home/me/My Apps/mirrortray\""
        );
        // `$` and `"` escaped inside the quotes; then every backslash doubled.
        assert_eq!(line(&["/a/$x \"y\""]), r#""/a/\\$x \\"y\\"""#);
        assert_eq!(line(&["/a/b\\c"]), r#""/a/b\\\\c""#);
        assert_eq!(line(&["/a/100%"]), "/a/100%%");
        assert_eq!(line(&[""]), "\"\"");
    }

    #[test]
    fn line_breaks_are_refused() {
        assert!(exec_line(&[OsString::from("/a\nb")]).is_err());
    }

    #[test]
    fn entry_text_and_switches() {
        let t = desktop_entry(&[OsString::from("/x y/mirrortray")]).unwrap();
        assert!(t.starts_with("[Desktop Entry]\n"));
        assert!(t.contains("\nExec=\"/x y/mirrortray\"\n"));
        assert!(!switched_off(&t));
        assert!(switched_off(&format!("{t}Hidden=true\n")));
        assert!(switched_off(&t.replace(
            "X-GNOME-Autostart-enabled=true",
            "X-GNOME-Autostart-enabled=false"
        )));
    }
}
