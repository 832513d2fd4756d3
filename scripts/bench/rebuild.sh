#!/usr/bin/env bash
# The edit-and-rebuild loop: the demo template (boot-configs/testos) built cold with the install
# cache on (an empty cache: install, keep the installed system, provision, box), then again with
# only the provisioning script changed (the installed system is resumed from the cache).
# Alternating, best of N of each; prints both times, their phases, the speed-up and the layer's
# size, with the load average. Run through scripts/bench.sh, or alone from the repo root
# (KILN=path/to/kiln). KILN_BENCH_RUNS sets N (default 2).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh
ensure_commands "${KILN_RUNTIME_DEPS[@]}" "${KILN_ISO_DEPS[@]}" bc:bc

kiln=$(realpath "${KILN:-target/release/kiln}")
runs=${KILN_BENCH_RUNS:-2}
iso=$(realpath "$(scripts/make-test-iso.sh | tail -n 1)")
template=$PWD/boot-configs/testos
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-rebuild.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The changed provisioning script: the demo's, plus one more line.
changed=$work/provision-changed.sh
cp scripts/testos-provision.sh "$changed"
echo 'echo "changed after the first build" >> /etc/kiln-provisioned' >>"$changed"

now() { date +%s.%N; }
# build NAME CACHE [VAR...]: one build; prints its seconds; its log is $work/NAME.log.
build() {
    local name=$1 cache=$2 t0 t1
    shift 2
    rm -rf "${work:?}/$name"
    t0=$(now)
    (cd "$work" && KILN_CACHE_DIR=$cache "$kiln" build -install-cache -var "iso_path=$iso" \
        -var "output_directory=$work/$name" "$@" "$template") >"$work/$name.log" 2>&1 || {
        echo "kiln build $name failed:" >&2
        tail -n 20 "$work/$name.log" >&2
        return 1
    }
    t1=$(now)
    echo "$t1 - $t0" | bc -l
}

best_cold="" best_warm="" cold_phases="" warm_phases="" layer=0
for i in $(seq 1 "$runs"); do
    cache=$work/cache-$i
    cold=$(build "cold-$i" "$cache")
    echo "  run $i cold: ${cold}s (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    warm=$(build "warm-$i" "$cache" -var "provision_script=$changed")
    echo "  run $i rebuild: ${warm}s (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    grep -q "Install cache: resuming" "$work/warm-$i.log" || {
        echo "the rebuild did not resume the install cache" >&2
        exit 1
    }
    if [ -z "$best_cold" ] || (($(echo "$cold < $best_cold" | bc -l))); then
        best_cold=$cold cold_phases=$(sed -n 's/.*phases: //p' "$work/cold-$i.log")
    fi
    if [ -z "$best_warm" ] || (($(echo "$warm < $best_warm" | bc -l))); then
        best_warm=$warm warm_phases=$(sed -n 's/.*phases: //p' "$work/warm-$i.log")
    fi
    layer=$(du -sb "$cache/install" | cut -f1)
    rm -rf "$cache" "$work/cold-$i" "$work/warm-$i"
done

printf 'demo template, best of %s alternating runs\n' "$runs"
printf '%-34s %8.2f s\n' "cold (install, keep, provision)" "$best_cold"
printf '%-34s %8.2f s\n' "rebuild (provisioning changed)" "$best_warm"
echo "cold phases:    $cold_phases"
echo "rebuild phases: $warm_phases"
echo "speed-up: rebuild is $(echo "scale=1; $best_cold / $best_warm" | bc -l)x faster (goal >= 5x)"
echo "install layer: $(echo "scale=1; $layer / 1048576" | bc -l) MiB"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
