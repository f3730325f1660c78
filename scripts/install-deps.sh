#!/usr/bin/env bash
# Install the Debian/Ubuntu packages mirrortray needs (checked on Debian 12 bookworm).
#
#   scripts/install-deps.sh           what the build and the package need (GTK,
#                                     appindicator, xdo, dpkg-dev, and cargo-deb
#                                     through cargo)
#   scripts/install-deps.sh --test    ... and what the tests need: a virtual X server,
#                                     a private D-Bus, a tray host, a notification
#                                     daemon, screenshot and pointer tools, git, python3,
#                                     the desktop-file and AppStream validators and
#                                     debootstrap (the package is installed in a clean root),
#                                     restic, rclone and OpenSSH (the offsite copies),
#                                     and moto's S3 server from PyPI, in a virtual
#                                     environment in target/test-tools/moto
#   scripts/install-deps.sh --bench   ... and lsyncd + rsync, to compare against
#
# Idempotent: when every package is already installed it says so and touches
# nothing (so it also works offline); otherwise it runs `apt-get update` and
# `apt-get install` for the whole set (and, for --test, fetches moto once).
# Uses sudo only when not run as root.
# setpriv (used by the permission tests) comes from util-linux, which is
# essential on Debian; it is listed anyway so a trimmed image is caught.

set -euo pipefail

BUILD_PKGS=(
	pkg-config
	build-essential
	libgtk-3-dev
	libxdo-dev
	libayatana-appindicator3-dev # bookworm has no libappindicator3-dev
	dpkg-dev                     # dpkg-shlibdeps: the package's library dependencies
)

TEST_PKGS=(
	xvfb                       # Xvfb: the display for tray tests
	xauth
	dbus                       # dbus-run-session: a private session bus
	dbus-x11
	libglib2.0-bin             # gdbus: drive the tray menu over D-Bus by hand
	x11-utils                  # xwininfo, xprop
	xdotool                    # real pointer clicks
	imagemagick                # import: screenshots
	dunst                      # notification daemon
	libnotify-bin              # notify-send
	fonts-dejavu-core
	haskell-gtk-sni-tray-utils # gtk-sni-tray-standalone: StatusNotifierItem host + watcher
	trayer                     # XEmbed tray host (fallback mode)
	util-linux                 # setpriv: run a test as an unprivileged user
	mount                      # mount/umount: the unmounted-source safety tests
	fuse3                      # FUSE mounts for the file-system tests
	exfatprogs                 # mkfs.exfat: a source (or backup) on exFAT
	exfat-fuse
	ntfs-3g                    # NTFS backup drives
	dosfstools                 # mkfs.fat: FAT32 backup drives
	fusefat                    # FAT32 through FUSE (a kernel without vfat)
	btrfs-progs                # mkfs.btrfs: a loop-mounted btrfs for reflink copies
	xfsprogs                   # mkfs.xfs: a loop-mounted XFS with reflink, the same
	attr                       # setfattr/getfattr: extended attributes in the fidelity tests
	acl                        # setfacl/getfacl: ACLs in the fidelity tests
	git
	python3
	python3-venv               # a virtual environment for moto (S3 server, from PyPI)
	chromium                   # the local page in a real browser (WebDriver)
	chromium-driver
	desktop-file-utils         # desktop-file-validate: the package's launcher
	appstream                  # appstreamcli validate: the package's metainfo
	debootstrap                # a clean Debian root to install the package into
	rsync                      # a folder copied in as rsync does (temp names)
	restic                     # stock restic reads the offsite repositories mirrortray writes
	rclone                     # rclone serve restic: a REST server for the offsite tests
	openssh-server             # sshd on a loopback port: an SFTP server for the offsite tests
	openssh-client             # ssh, ssh-keygen: restic's own SFTP, the test's keys
	sshfs                      # a backup folder on a NAS: sshfs against that sshd
)

BENCH_PKGS=(
	lsyncd
)

usage() {
	sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
	echo "install-deps: error: $*" >&2
	exit 1
}

want_test=0
want_bench=0
for arg in "$@"; do
	case "$arg" in
	--test) want_test=1 ;;
	--bench)
		want_test=1
		want_bench=1
		;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		usage >&2
		die "unknown argument '$arg' (expected --test, --bench or nothing)"
		;;
	esac
done

pkgs=("${BUILD_PKGS[@]}")
what="build"
if ((want_test)); then
	pkgs+=("${TEST_PKGS[@]}")
	what="build and tests"
fi
if ((want_bench)); then
	pkgs+=("${BENCH_PKGS[@]}")
	what="build, tests and benchmarks"
fi

if ! { command -v dpkg-query && command -v apt-get; } >/dev/null 2>&1; then
	die "this script needs a Debian or Ubuntu system (dpkg and apt-get not found); install the equivalents of: ${pkgs[*]}"
fi

# Which packages are not installed yet?
missing=()
for p in "${pkgs[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[[ "$status" == installed ]] || missing+=("$p")
done

# cargo-deb builds the Debian package (scripts/package.sh); it comes from
# crates.io through cargo, built once.
ensure_cargo_deb() {
	if cargo deb --version >/dev/null 2>&1; then
		return 0
	fi
	command -v cargo >/dev/null 2>&1 ||
		die "cargo is not installed; install Rust from https://rustup.rs, then run this again"
	echo "install-deps: cargo install --locked cargo-deb"
	cargo install --locked cargo-deb ||
		die "'cargo install cargo-deb' failed (network? see cargo's message above)"
}

# moto_server, an S3-compatible server for the offsite S3 test; Debian has
# none, so it comes from PyPI into a virtual environment of the checkout's
# own (nothing installed system-wide). Pinned: the test knows this one.
MOTO=moto[server]==5.2.1
ensure_moto() {
	((want_test)) || return 0
	local here venv
	here=$(cd "$(dirname "$0")/.." && pwd)
	venv=$here/target/test-tools/moto
	if "$venv/bin/python" -m pip show moto 2>/dev/null | grep -qx 'Version: 5.2.1'; then
		return 0
	fi
	echo "install-deps: $MOTO from PyPI into $venv"
	python3 -m venv "$venv" ||
		die "cannot make a Python virtual environment in $venv (python3-venv installed?)"
	"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$MOTO" ||
		die "'pip install $MOTO' failed (network? see pip's message above)"
}

extras() {
	ensure_cargo_deb
	ensure_moto
}

if ((${#missing[@]} == 0)); then
	echo "install-deps: all ${#pkgs[@]} packages for the $what are already installed."
	extras
	exit 0
fi

as_root=()
if ((EUID != 0)); then
	command -v sudo >/dev/null 2>&1 ||
		die "not root and sudo is not installed; run this script as root, or install these packages: ${missing[*]}"
	as_root=(sudo)
fi
apt_env=(env DEBIAN_FRONTEND=noninteractive)

echo "install-deps: missing for the $what: ${missing[*]}"
echo "install-deps: apt-get update"
"${as_root[@]}" "${apt_env[@]}" apt-get update ||
	die "'apt-get update' failed (network, proxy or apt sources?); the packages above are still missing"

# Say which names this distribution does not have, rather than letting
# apt-get fail with "Unable to locate package" in the middle of a long log.
unknown=()
for p in "${missing[@]}"; do
	candidate=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ { print $2 }')
	[[ -n "$candidate" && "$candidate" != "(none)" ]] || unknown+=("$p")
done
((${#unknown[@]} == 0)) ||
	die "this distribution has no package named: ${unknown[*]} (the list is made for Debian 12 bookworm; install an equivalent by hand)"

echo "install-deps: apt-get install ${missing[*]}"
"${as_root[@]}" "${apt_env[@]}" apt-get install -y --no-install-recommends "${missing[@]}" ||
	die "'apt-get install' failed for: ${missing[*]} (see apt's message above)"

extras
echo "install-deps: done; the $what dependencies are installed."
