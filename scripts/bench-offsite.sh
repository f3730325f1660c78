#!/usr/bin/env bash
# Offsite push benchmark (issue 15), mirrortray beside stock restic in the
# same run, on the Linux kernel source tree (Debian's linux-source-6.1):
#   scripts/bench-offsite.sh [WORKDIR] [RUNS]   (default: a folder in /tmp, 5)
# Mirrors the tree into DST with `mirrortray sync`, then times the first
# `mirrortray offsite push` and the first `restic backup` of the same DST
# (without .mirrortray/) into a fresh local repository; then RUNS rounds,
# each of: `mirrortray offsite push` with nothing changed (a snapshot of
# the last one's tree, dated now), `mirrortray offsite push
# --skip-if-unchanged` (no snapshot), and `restic backup` unchanged; then
# RUNS rounds of one file changed and both again. Prints each round and the min and
# median of each. Needs apt-get (to download the package), restic and xz.
# A WORKDIR that holds the extracted tree already is reused. The machine
# here is shared and noisy: compare only within one run.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d /tmp/bench-offsite-XXXXXX)}
runs=${2:-5}
mkdir -p "$work"
work=$(cd "$work" && pwd)
bin=${CARGO_TARGET_DIR:-$here/target}/release/mirrortray
[ -x "$bin" ] || cargo build --release --locked --manifest-path "$here/Cargo.toml"
command -v restic >/dev/null || { echo "bench-offsite: restic is not installed" >&2; exit 2; }

cd "$work"
if [ ! -e src/.extracted ]; then
    ls linux-source-6.1_*_all.deb >/dev/null 2>&1 || apt-get download linux-source-6.1
    rm -rf src
    mkdir -p src
    dpkg-deb --fsys-tarfile linux-source-6.1_*_all.deb |
        tar -x -O --wildcards '*/linux-source-6.1.tar.xz' | tar -xJ -C src
    touch src/.extracted
fi
export HOME=$work/home XDG_CONFIG_HOME=$work/home/.config XDG_CACHE_HOME=$work/home/.cache XDG_STATE_HOME=$work/home/.state
rm -rf dst home repo-mt repo-restic times
mkdir -p home/.config/mirrortray
echo "tree: $(find src -type f | wc -l) files, $(du -sh src | cut -f1)"

t() { # what command... (the seconds also go to the file times/WHAT)
    local what=$1 s e
    shift
    s=$(date +%s.%N)
    "$@" >/dev/null
    e=$(date +%s.%N)
    awk -v s="$s" -v e="$e" -v w="$what" 'BEGIN { printf "%-52s %6.2f s\n", w, e - s }'
    mkdir -p times
    awk -v s="$s" -v e="$e" 'BEGIN { printf "%.3f\n", e - s }' >>"times/$what"
}
printf 'pw\n' >pw
t "mirrortray sync (the mirror)" "$bin" sync "$work/src" "$work/dst"
printf "[[pair]]\nsrc = '%s'\ndst = '%s'\noffsite = { repository = '%s', password_file = '%s' }\n" \
    "$work/src" "$work/dst" "$work/repo-mt" "$work/pw" >home/.config/mirrortray/config.toml
"$bin" offsite init >/dev/null
restic -r repo-restic --password-file pw init >/dev/null
rbackup() { restic -r repo-restic --password-file pw backup --exclude "$work/dst/.mirrortray" "$work/dst"; }
t "mirrortray offsite push, first" "$bin" offsite push
t "restic backup, first" rbackup
for i in $(seq "$runs"); do
    t "mirrortray offsite push, nothing changed" "$bin" offsite push
    t "mirrortray offsite push --skip-if-unchanged, same" "$bin" offsite push --skip-if-unchanged
    t "restic backup, nothing changed" rbackup
done
# One file changed before each round (a line added to a Makefile), the
# mirror brought up to date, then both.
f=$(find src -name Makefile -print -quit)
for i in $(seq "$runs"); do
    echo "# changed $i" >>"$f"
    "$bin" sync "$work/src" "$work/dst" >/dev/null
    t "mirrortray offsite push, one file changed" "$bin" offsite push
    t "restic backup, one file changed" rbackup
done
echo "over $runs rounds:"
for what in "mirrortray offsite push, nothing changed" "mirrortray offsite push --skip-if-unchanged, same" "restic backup, nothing changed" \
    "mirrortray offsite push, one file changed" "restic backup, one file changed"; do
    sort -n "times/$what" | awk -v w="$what" '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "  %-52s min %6.3f s  median %6.3f s\n", w, v[1], m }'
done
echo "load: $(cat /proc/loadavg)"
