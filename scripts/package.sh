#!/usr/bin/env bash
# Build mirrortray's Debian package with cargo-deb, and optionally install it.
#
#   scripts/package.sh              build target/debian/mirrortray_VERSION-1_ARCH.deb
#   scripts/package.sh --install    ... and install it (apt-get, with sudo when not root)
#   scripts/package.sh --no-build   package the release binary already built
#
# The package holds the binary, the application-menu launcher, the icons in
# the hicolor theme (16 to 256 px and scalable), the AppStream metainfo, man
# pages and bash/zsh/fish completions. Man pages and completions are made by
# the binary itself from its command-line definition (`mirrortray generate`).
# Needs cargo-deb and dpkg-dev: scripts/install-deps.sh installs both.

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() {
	echo "package: error: $*" >&2
	exit 1
}

build=1
install=0
for arg in "$@"; do
	case "$arg" in
	--install) install=1 ;;
	--no-build) build=0 ;;
	-h | --help)
		sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*) die "unknown argument '$arg' (expected --install, --no-build or nothing)" ;;
	esac
done

cargo deb --version >/dev/null 2>&1 ||
	die "cargo-deb is not installed; run scripts/install-deps.sh (or: cargo install --locked cargo-deb)"

target=${CARGO_TARGET_DIR:-target}
if ((build)); then
	cargo build --release --locked
fi
bin="$target/release/mirrortray"
[[ -x "$bin" ]] || die "$bin is missing; build it first (cargo build --release --locked)"

# Generated assets live beside the binary: cargo-deb maps target/release/
# to the real target folder (CARGO_TARGET_DIR).
generated="$target/release/generated"
rm -rf "$generated"
"$bin" generate man "$generated/man" >/dev/null
gzip -9n "$generated"/man/*.1 # Debian keeps man pages compressed
"$bin" generate completions "$generated/completions" >/dev/null

out=$(cargo deb --no-build --locked 2>&1) || die "cargo deb failed:
$out"
deb=$(printf '%s\n' "$out" | tail -n 1)
[[ -f "$deb" ]] || die "cargo deb did not say where the package is:
$out"
echo "package: built $deb"

if ((install)); then
	as_root=()
	((EUID == 0)) || as_root=(sudo)
	# apt-get (not dpkg -i) so that missing libraries are installed too.
	"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --reinstall "$(realpath "$deb")" ||
		die "installing $deb failed (see apt's message above)"
	echo "package: installed; start it from the application menu, or run: mirrortray"
fi
