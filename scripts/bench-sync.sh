#!/usr/bin/env bash
# One-shot copy benchmark, mirrortray beside its peers in the same run:
#   scripts/bench-sync.sh [FILES] [RUNS]      (default 20000 files, 5 runs)
# Builds a tree with ../shared/bench/corpus.py, then per run: `mirrortray
# sync`, `rsync -a` and `cp -a` into empty folders, and a second, no-op
# `mirrortray sync` / `rsync -a`. Prints min and median seconds of each.
# Needs rsync; the disk here is noisy, so compare only within one run.
set -euo pipefail
files=${1:-20000}
runs=${2:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
corpus=${CORPUS:-$here/../shared/bench/corpus.py}
bin=$here/target/release/mirrortray
[ -x "$bin" ] || cargo build --release --locked --manifest-path "$here/Cargo.toml"
work=$(mktemp -d /tmp/bench-sync-XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 "$corpus" "$work/src" "$files" >/dev/null

declare -A times
t() { # name command...
    local name=$1; shift
    local s e
    sync # each starts with no dirty pages of the one before
    s=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    e=$(date +%s.%N)
    times[$name]+="$(awk -v s="$s" -v e="$e" 'BEGIN {print e - s}') "
}
for _ in $(seq "$runs"); do
    rm -rf "$work/mt" "$work/rs" "$work/cp"
    t "mirrortray sync" "$bin" -q --log-file "$work/log" sync "$work/src" "$work/mt"
    t "rsync -a" rsync -a "$work/src/" "$work/rs/"
    t "cp -a" cp -a "$work/src" "$work/cp"
    t "mirrortray sync (no-op)" "$bin" -q --log-file "$work/log" sync "$work/src" "$work/mt"
    t "rsync -a (no-op)" rsync -a "$work/src/" "$work/rs/"
done
for name in "mirrortray sync" "rsync -a" "cp -a" "mirrortray sync (no-op)" "rsync -a (no-op)"; do
    # shellcheck disable=SC2086
    printf '%-26s %s\n' "$name" "$(printf '%s\n' ${times[$name]} | sort -n |
        awk '{a[NR]=$1} END {printf "min %.3f s  median %.3f s  (%d runs)", a[1], a[int((NR+1)/2)], NR}')"
done
