#!/usr/bin/env bash
# Offsite push benchmark (issue 15), mirrortray beside stock restic in the
# same run, on the Linux kernel source tree (Debian's linux-source-6.1):
#   scripts/bench-offsite.sh [WORKDIR]        (default: a folder in /tmp)
# Mirrors the tree into DST with `mirrortray sync`, then times: the first
# `mirrortray offsite push` and two with nothing changed, against
# `restic backup` of the same DST (without .mirrortray/) into a fresh local
# repository, first and unchanged; then one file changed and both again.
# Needs apt-get (to download the package), restic and xz. The machine here is
# shared and noisy: compare only within one run.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d /tmp/bench-offsite-XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
bin=${CARGO_TARGET_DIR:-$here/target}/release/mirrortray
[ -x "$bin" ] || cargo build --release --locked --manifest-path "$here/Cargo.toml"
command -v restic >/dev/null || { echo "bench-offsite: restic is not installed" >&2; exit 2; }

cd "$work"
ls linux-source-6.1_*_all.deb >/dev/null 2>&1 || apt-get download linux-source-6.1
export HOME=$work/home XDG_CONFIG_HOME=$work/home/.config XDG_CACHE_HOME=$work/home/.cache XDG_STATE_HOME=$work/home/.state
rm -rf src dst home repo-mt repo-restic
mkdir -p src home/.config/mirrortray
dpkg-deb --fsys-tarfile linux-source-6.1_*_all.deb |
    tar -x -O --wildcards '*/linux-source-6.1.tar.xz' | tar -xJ -C src
echo "tree: $(find src -type f | wc -l) files, $(du -sh src | cut -f1)"

t() { # what command...
    local what=$1 s
    shift
    s=$(date +%s.%N)
    "$@" >/dev/null
    awk -v s="$s" -v e="$(date +%s.%N)" -v w="$what" 'BEGIN { printf "%-40s %6.2f s\n", w, e - s }'
}
printf 'pw\n' >pw
t "mirrortray sync (the mirror)" "$bin" sync "$work/src" "$work/dst"
printf "[[pair]]\nsrc = '%s'\ndst = '%s'\noffsite = { repository = '%s', password_file = '%s' }\n" \
    "$work/src" "$work/dst" "$work/repo-mt" "$work/pw" >home/.config/mirrortray/config.toml
"$bin" offsite init >/dev/null
restic -r repo-restic --password-file pw init >/dev/null
rbackup() { restic -r repo-restic --password-file pw backup --exclude "$work/dst/.mirrortray" "$work/dst"; }
t "mirrortray offsite push, first" "$bin" offsite push
t "mirrortray offsite push, nothing changed" "$bin" offsite push
t "mirrortray offsite push, nothing changed" "$bin" offsite push
t "restic backup, first" rbackup
t "restic backup, nothing changed" rbackup
t "restic backup, nothing changed" rbackup
f=$(find src -name Makefile -print -quit)
echo "# changed" >>"$f"
"$bin" sync "$work/src" "$work/dst" >/dev/null
t "mirrortray offsite push, one file changed" "$bin" offsite push
t "restic backup, one file changed" rbackup
echo "load: $(cat /proc/loadavg)"
