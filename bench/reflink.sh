#!/usr/bin/env bash
# Issue 13's benchmark: what copy-on-write clones save.
#   1. A kernel source tree mirrored within one btrfs (copies are clones)
#      and onto a second btrfs (no clone across file systems): time and
#      space taken.
#   2. A 100 MB file edited in place 4 KiB at a time and synced after each
#      edit, N times (default 1000): the space its versions take, on one
#      btrfs (clones) and, for a first few, on ext4 (full copies).
# Usage (as root): bench/reflink.sh MIRRORTRAY KERNEL.tar [N]
set -euo pipefail
BIN=$(realpath "$1"); TAR=$(realpath "$2"); N=${3:-1000}
W=$(mktemp -d /var/tmp/reflink-bench.XXXXXX)
cleanup() { for m in "$W"/m*; do umount "$m" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT
mk() { # NAME SIZE FSTYPE
	truncate -s "$2" "$W/$1.img"
	case $3 in
	btrfs) mkfs.btrfs -q -f "$W/$1.img" >/dev/null ;;
	ext4) mkfs.ext4 -q -F "$W/$1.img" ;;
	esac
	mkdir -p "$W/m$1"; mount -o loop "$W/$1.img" "$W/m$1"
}
used_mb() { sync; df --output=used -k "$1" | tail -1 | awk '{printf "%.0f", $1/1024}'; }
secs() { local t0=$(date +%s.%N); "$@" >/dev/null; awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}'; }

mk a 12G btrfs; mk b 6G btrfs
mkdir "$W/ma/src"; tar xf "$TAR" -C "$W/ma/src"
base=$(used_mb "$W/ma"); baseb=$(used_mb "$W/mb")
t=$(secs "$BIN" sync -q "$W/ma/src" "$W/ma/dst")
echo "kernel tree, DST on the same btrfs (clones): sync ${t} s, space $(( $(used_mb "$W/ma") - base )) MB"
t=$(secs "$BIN" sync -q "$W/ma/src" "$W/mb/dst")
echo "kernel tree, DST on another btrfs (copies):  sync ${t} s, space $(( $(used_mb "$W/mb") - baseb )) MB"
umount "$W/ma" "$W/mb"; rm -f "$W/a.img" "$W/b.img"

versions() { # MOUNT COUNT
	local m=$1 n=$2 i
	mkdir -p "$m/src"
	head -c 100M /dev/urandom > "$m/src/big"
	"$BIN" sync -q "$m/src" "$m/dst"
	local base; base=$(used_mb "$m")
	local t0; t0=$(date +%s.%N)
	for ((i = 0; i < n; i++)); do
		dd if=/dev/urandom of="$m/src/big" bs=4k count=1 seek=$((RANDOM % 25600)) conv=notrunc status=none
		"$BIN" sync -q "$m/src" "$m/dst"
	done
	local took; took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
	local kept; kept=$(find "$m/dst/.mirrortray/versions" -type f -name big | wc -l)
	echo "$n edits of 4 KiB to a 100 MB file, synced after each: ${took} s, $kept versions kept, $(( $(used_mb "$m") - base )) MB more"
}
mk c 12G btrfs; echo -n "btrfs (clones): "; versions "$W/mc" "$N"
mk d 6G ext4; echo -n "ext4 (copies):  "; versions "$W/md" 20
