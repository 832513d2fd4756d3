#!/usr/bin/env bash
# Box packing: kiln's vagrant post-processor (gzip, and zstd) vs `tar | gzip -6` and `tar | pigz -6` on the same
# ~1 GiB qcow2 holding real files (an ext4 image of a system directory), in one run.
# Prints times, sizes and ratios. Run through scripts/bench.sh, or alone from the repo root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh
ensure_commands pigz:pigz mkfs.ext4:e2fsprogs qemu-img:qemu-utils bc:bc

work=target/bench/box
mkdir -p "$work"
disk="$work/disk.qcow2"
src=${KILN_BENCH_SRC:-/usr/lib/x86_64-linux-gnu}
if [ ! -f "$disk" ]; then
    echo "==> making $disk from the files in $src" >&2
    mb=$(du -sm "$src" | cut -f1)
    raw="$work/disk.raw"
    rm -f "$raw"
    mkfs.ext4 -q -F -d "$src" "$raw" "$((mb * 13 / 10 + 64))M"
    qemu-img convert -O qcow2 "$raw" "$disk.tmp"
    mv "$disk.tmp" "$disk"
    rm -f "$raw"
fi
disk_bytes=$(stat -c %s "$disk")
echo "disk: $disk, $disk_bytes bytes, $(nproc) cores" >&2

# The baselines pack the same three members kiln writes.
stage="$work/stage"
rm -rf "$stage"
mkdir -p "$stage"
ln -f "$disk" "$stage/box.img"
printf '{"provider":"libvirt","format":"qcow2","virtual_size":2,"architecture":"amd64"}\n' >"$stage/metadata.json"
printf 'Vagrant.configure("2") do |config|\nend\n' >"$stage/Vagrantfile"

now() { date +%s.%N; }
# time_of CMD...: runs CMD with stdout to $work/out, prints seconds.
time_of() {
    local t0 t1
    t0=$(now)
    "$@" >"$work/out"
    t1=$(now)
    echo "$t1 - $t0" | bc -l
}
sync
gzip_s=$(time_of sh -c "tar -C '$stage' -cf - metadata.json Vagrantfile box.img | gzip -6")
gzip_b=$(stat -c %s "$work/out")
pigz_s=$(time_of sh -c "tar -C '$stage' -cf - metadata.json Vagrantfile box.img | pigz -6")
pigz_b=$(stat -c %s "$work/out")
rm -f "$work/out"

kiln_line=$(cargo bench --locked --quiet --bench box -- "$PWD/$disk" "$PWD/$work" | tr ' ' '\n')
kv() { printf '%s\n' "$kiln_line" | sed -n "s/^$1=//p"; }
kiln_s=$(kv kiln_box_seconds)
kiln_b=$(kv kiln_box_bytes)
one_s=$(kv kiln_gzip_1thread_seconds)
zstd_s=$(kv kiln_zstd_box_seconds)
zstd_b=$(kv kiln_zstd_box_bytes)
rm -f "$work/kiln.box"

mib() { echo "scale=1; $1 / 1048576" | bc -l; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }
printf '%-28s %9s %12s\n' "box of $(mib "$disk_bytes") MiB" seconds MiB
printf '%-28s %9.2f %12s\n' "tar | gzip -6" "$gzip_s" "$(mib "$gzip_b")"
printf '%-28s %9.2f %12s\n' "tar | pigz -6" "$pigz_s" "$(mib "$pigz_b")"
printf '%-28s %9.2f %12s\n' "kiln (vagrant, level 6)" "$kiln_s" "$(mib "$kiln_b")"
printf '%-28s %9.2f %12s\n' "kiln (vagrant, zstd 3)" "$zstd_s" "$(mib "$zstd_b")"
printf '%-28s %9.2f\n' "kiln gzip, 1 thread" "$one_s"
echo "speed: kiln is $(ratio "$pigz_s" "$kiln_s")x tar|pigz -6, $(ratio "$gzip_s" "$kiln_s")x tar|gzip -6; $(ratio "$one_s" "$kiln_s")x its own 1-thread time on $(nproc) cores"
echo "size:  kiln box / pigz -6 = $(ratio "$kiln_b" "$pigz_b"), / gzip -6 = $(ratio "$kiln_b" "$gzip_b")"
echo "zstd box: $(ratio "$kiln_s" "$zstd_s")x faster than kiln's gzip box, size $(ratio "$zstd_b" "$kiln_b") of it"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
