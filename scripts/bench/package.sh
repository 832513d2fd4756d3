#!/usr/bin/env bash
# Packaging a ready disk image into a libvirt box, end to end: scripts/bench/package.pkr.hcl
# (disk_image, a guest that powers off at once, compaction, the vagrant post-processor) run by
# kiln and by Packer (Debian's `packer` 1.6.6, installed when missing) on the same ~1.4 GiB
# qcow2 of real files, alternating, best of N. Prints both times, kiln's phases, the ratio and
# both box sizes, with the load average. Run through scripts/bench.sh, or alone from the repo
# root (KILN=path/to/kiln). KILN_BENCH_RUNS sets N (default 2).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh
ensure_commands qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils mkfs.ext4:e2fsprogs \
    xorriso:xorriso bc:bc packer:packer

kiln=$(realpath "${KILN:-target/release/kiln}")
runs=${KILN_BENCH_RUNS:-2}
template=$PWD/scripts/bench/package.pkr.hcl
iso=$(scripts/make-test-iso.sh | tail -n 1)
work=$PWD/target/bench/package
mkdir -p "$work"

# The image: an ext4 file system holding /usr/lib/x86_64-linux-gnu and /usr/share (hard links
# in a staging tree), as qcow2. Made once and kept.
image=$work/image.qcow2
if [ ! -f "$image" ]; then
    echo "==> making $image" >&2
    stage=$work/stage
    rm -rf "$stage" "$work/image.raw"
    mkdir -p "$stage"
    cp -al /usr/lib/x86_64-linux-gnu "$stage/lib" 2>/dev/null || cp -a /usr/lib/x86_64-linux-gnu "$stage/lib"
    cp -al /usr/share "$stage/share" 2>/dev/null || cp -a /usr/share "$stage/share"
    mb=$(du -sm "$stage" | cut -f1)
    mkfs.ext4 -q -F -d "$stage" "$work/image.raw" "$((mb * 12 / 10 + 64))M"
    qemu-img convert -O qcow2 "$work/image.raw" "$image.tmp"
    mv "$image.tmp" "$image"
    rm -rf "$stage" "$work/image.raw"
fi
# The guest: the test ISO's kernel and its `typing` initrd, which powers off at once.
for f in vmlinuz typing.gz; do
    xorriso -osirrox on -indev "$iso" -extract "/isolinux/$f" "$work/$f" >/dev/null 2>&1
done
image_bytes=$(stat -c %s "$image")
echo "package bench: image $image_bytes bytes, $runs runs each, $(nproc) cores" >&2

now() { date +%s.%N; }
# run_one TOOL N: one build into $work/TOOL-N; prints "SECONDS BOX_BYTES".
run_one() {
    local tool=$1 out=$work/$1-$2 t0 t1 log=$work/$1-$2.log
    rm -rf "$out" "$out.box"
    local vars=(-var "image=$image" -var "kernel=$work/vmlinuz" -var "initrd=$work/typing.gz"
        -var "output_directory=$out")
    sync
    t0=$(now)
    if [ "$tool" = kiln ]; then
        (cd "$work" && KILN_CACHE_DIR=$work/kiln-cache "$kiln" build "${vars[@]}" "$template") >"$log" 2>&1
    else
        (cd "$work" && PACKER_CACHE_DIR=$work/packer-cache CHECKPOINT_DISABLE=1 \
            packer build "${vars[@]}" "$template") >"$log" 2>&1
    fi || {
        echo "$tool build failed:" >&2
        tail -n 20 "$log" >&2
        return 1
    }
    t1=$(now)
    echo "$(echo "$t1 - $t0" | bc -l) $(stat -c %s "$out.box")"
}

best_kiln="" best_packer="" kiln_box=0 packer_box=0 kiln_phases=""
for i in $(seq 1 "$runs"); do
    for tool in packer kiln; do
        read -r secs bytes < <(run_one "$tool" "$i")
        echo "  run $i $tool: ${secs}s, box $bytes bytes (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
        if [ "$tool" = kiln ]; then
            if [ -z "$best_kiln" ] || (($(echo "$secs < $best_kiln" | bc -l))); then
                best_kiln=$secs kiln_box=$bytes
                kiln_phases=$(sed -n 's/.*phases: //p' "$work/kiln-$i.log")
            fi
        else
            if [ -z "$best_packer" ] || (($(echo "$secs < $best_packer" | bc -l))); then
                best_packer=$secs packer_box=$bytes
            fi
        fi
        rm -rf "$work/$tool-$i" "$work/$tool-$i.box"
    done
done

mib() { echo "scale=1; $1 / 1048576" | bc -l; }
printf 'image: %s MiB qcow2; best of %s alternating runs\n' "$(mib "$image_bytes")" "$runs"
printf '%-8s %9.2f s   box %8s MiB\n' packer "$best_packer" "$(mib "$packer_box")"
printf '%-8s %9.2f s   box %8s MiB\n' kiln "$best_kiln" "$(mib "$kiln_box")"
echo "kiln phases: $kiln_phases"
echo "time: kiln / packer = $(echo "scale=3; $best_kiln / $best_packer" | bc -l) (goal <= 0.67)"
echo "size: kiln box / packer box = $(echo "scale=3; $kiln_box / $packer_box" | bc -l)"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
