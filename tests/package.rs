//! package: the Debian package as a user gets it. Built by
//! `scripts/package.sh` from the binary under test; its file list checked;
//! its launcher and metainfo validated by the desktop's own tools; then
//! installed with apt into a clean Debian root (debootstrap, the same
//! release as this machine), where `mirrortray --version` and
//! `man mirrortray` must work.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::support::{bin, have, in_ci, skip};

/// Runs `cmd`; its success and everything it printed.
fn run(cmd: &mut Command) -> (bool, String) {
    match cmd.output() {
        Ok(out) => (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ),
        Err(e) => (false, format!("cannot run {cmd:?}: {e}")),
    }
}

/// The package, built once for all tests here: its path, or why not.
fn package() -> Result<&'static Path, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if !run(Command::new("cargo").args(["deb", "--version"])).0 {
                return Err("cargo-deb is not installed (scripts/install-deps.sh)".into());
            }
            // The binary under test, packaged as it is: its target folder.
            let target = bin()
                .parent()
                .and_then(Path::parent)
                .map(Path::to_path_buf)
                .ok_or("no target folder")?;
            let (ok, out) = run(Command::new("scripts/package.sh")
                .arg("--no-build")
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .env("CARGO_TARGET_DIR", &target));
            assert!(ok, "scripts/package.sh failed:\n{out}");
            let deb = out
                .lines()
                .find_map(|l| l.strip_prefix("package: built "))
                .map(PathBuf::from)
                .unwrap_or_else(|| panic!("package.sh did not say where the package is:\n{out}"));
            Ok(if deb.is_absolute() {
                deb
            } else {
                Path::new(env!("CARGO_MANIFEST_DIR")).join(deb)
            })
        })
        .as_deref()
        .map_err(Clone::clone)
}

#[test]
fn the_package_holds_the_launcher_icons_man_pages_and_completions() {
    let deb = match package() {
        Ok(d) => d,
        Err(why) => return skip(&why),
    };
    let (ok, listing) = run(Command::new("dpkg-deb").arg("--contents").arg(deb));
    assert!(ok, "{listing}");
    let mut want = vec![
        "./usr/bin/mirrortray".to_string(),
        "./usr/share/applications/io.github.mirrortray.mirrortray.desktop".into(),
        "./usr/share/metainfo/io.github.mirrortray.mirrortray.metainfo.xml".into(),
        "./usr/share/icons/hicolor/scalable/apps/mirrortray.svg".into(),
        "./usr/share/man/man1/mirrortray.1.gz".into(),
        "./usr/share/man/man1/mirrortray-restore.1.gz".into(),
        "./usr/share/bash-completion/completions/mirrortray".into(),
        "./usr/share/zsh/vendor-completions/_mirrortray".into(),
        "./usr/share/fish/vendor_completions.d/mirrortray.fish".into(),
        "./usr/share/doc/mirrortray/copyright".into(),
    ];
    for px in [16, 22, 24, 32, 48, 64, 128, 256] {
        want.push(format!(
            "./usr/share/icons/hicolor/{px}x{px}/apps/mirrortray.png"
        ));
    }
    let missing: Vec<&String> = want
        .iter()
        .filter(|w| !listing.lines().any(|l| l.ends_with(w.as_str())))
        .collect();
    assert!(missing.is_empty(), "missing {missing:?} in:\n{listing}");

    // Each icon is the size its folder says.
    let unpacked = tempfile::tempdir().unwrap();
    let (ok, out) = run(Command::new("dpkg-deb")
        .arg("--extract")
        .arg(deb)
        .arg(unpacked.path()));
    assert!(ok, "{out}");
    for px in [16u32, 22, 24, 32, 48, 64, 128, 256] {
        let p = unpacked.path().join(format!(
            "usr/share/icons/hicolor/{px}x{px}/apps/mirrortray.png"
        ));
        let d = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&p).unwrap()));
        let info = d.read_info().unwrap();
        let (w, h) = (info.info().width, info.info().height);
        assert_eq!((w, h), (px, px), "{}", p.display());
    }

    // The desktop's own validators accept the launcher and the metainfo.
    for (tool, args) in [
        ("desktop-file-validate", vec![]),
        ("appstreamcli", vec!["validate", "--no-net"]),
    ] {
        if !have(tool) {
            skip(&format!(
                "{tool} is not installed (scripts/install-deps.sh --test)"
            ));
            continue;
        }
        let file = if tool == "desktop-file-validate" {
            "usr/share/applications/io.github.mirrortray.mirrortray.desktop"
        } else {
            "usr/share/metainfo/io.github.mirrortray.mirrortray.metainfo.xml"
        };
        let (ok, out) = run(Command::new(tool)
            .args(args)
            .arg(unpacked.path().join(file)));
        assert!(ok, "{tool} rejects {file}:\n{out}");
        assert!(
            !out.contains("E:") && !out.contains("W:") && !out.contains("warning"),
            "{tool} on {file}:\n{out}"
        );
    }
}

/// A clean Debian root, unmounted and removed when dropped.
struct Root {
    dir: tempfile::TempDir,
    proc_mounted: bool,
}

impl Root {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn chroot(&self, script: &str) -> (bool, String) {
        run(Command::new("chroot")
            .arg(self.path())
            .args(["/bin/sh", "-c", script])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("LANG", "C.UTF-8")
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"))
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        if self.proc_mounted {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.path().join("proc"))
                .status();
        }
    }
}

#[test]
fn the_package_installs_into_a_clean_debian_and_runs_there() {
    if !nix_root() {
        return skip("installing into a clean root needs root (chroot, mount)");
    }
    if !have("debootstrap") {
        return skip("debootstrap is not installed (scripts/install-deps.sh --test)");
    }
    let deb = match package() {
        Ok(d) => d,
        Err(why) => return skip(&why),
    };
    let release = std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME=").map(str::to_string))
        .unwrap_or_else(|| "bookworm".into());
    // Under the target folder, not /tmp: a root is some 300 MB.
    let base = bin().parent().unwrap().join("test-roots");
    std::fs::create_dir_all(&base).unwrap();
    let mut root = Root {
        dir: tempfile::tempdir_in(&base).unwrap(),
        proc_mounted: false,
    };
    let (ok, out) = run(Command::new("debootstrap")
        .args(["--variant=minbase", &release])
        .arg(root.path())
        .arg("http://deb.debian.org/debian"));
    if !ok {
        let why = format!("debootstrap {release} failed (network?):\n{out}");
        if in_ci() {
            panic!("{why}");
        }
        return skip(&why);
    }
    root.proc_mounted = run(Command::new("mount")
        .args(["-t", "proc", "proc"])
        .arg(root.path().join("proc")))
    .0;
    std::fs::copy(deb, root.path().join("tmp/mirrortray.deb")).unwrap();

    // As the README says: apt installs the package and what it needs.
    let (ok, out) = root.chroot(
        "apt-get update -q && apt-get install -y -q --no-install-recommends /tmp/mirrortray.deb man-db",
    );
    assert!(
        ok,
        "apt-get install of the package failed in a clean root:\n{out}"
    );

    let (ok, out) = root.chroot("mirrortray --version");
    assert!(ok, "{out}");
    assert_eq!(
        out.trim(),
        format!("mirrortray {}", env!("CARGO_PKG_VERSION")),
        "{out}"
    );
    let (ok, out) = root.chroot("MANWIDTH=80 man -P cat mirrortray");
    assert!(ok, "man mirrortray failed:\n{out}");
    assert!(out.contains("mirrortray-restore(1)"), "{out}");
    assert!(out.contains("Examples:"), "{out}");
    let (ok, out) = root.chroot("man -P cat mirrortray-restore");
    assert!(ok && out.contains("--at"), "{out}");
    // The launcher names a command and an icon the package holds.
    let (ok, out) = root.chroot(
        "grep -x Exec=mirrortray /usr/share/applications/io.github.mirrortray.mirrortray.desktop && test -f /usr/share/icons/hicolor/48x48/apps/mirrortray.png",
    );
    assert!(ok, "{out}");

    // Removing it leaves nothing of it behind in the system's folders.
    let (ok, out) = root.chroot("apt-get remove -y -q --purge mirrortray && ! command -v mirrortray && ! test -e /usr/share/applications/io.github.mirrortray.mirrortray.desktop");
    assert!(ok, "{out}");
}

/// Whether this process runs as root.
fn nix_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
