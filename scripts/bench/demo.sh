#!/usr/bin/env bash
# The demo build (boot-configs/testos) before and after waiting for the screen: "before" is the
# same template with Packer's fixed `boot_wait = "10s"` and no `<waitFor 'boot:'>`, "after" is
# the template as shipped. Alternating, best of N of each; prints the wall time and the phases
# of both, the boot-command phase and the ratio, with the load average. Run through
# scripts/bench.sh, or alone from the repo root (KILN=path/to/kiln). KILN_BENCH_RUNS sets N
# (default 2).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh
ensure_commands "${KILN_RUNTIME_DEPS[@]}" "${KILN_ISO_DEPS[@]}" bc:bc

kiln=$(realpath "${KILN:-target/release/kiln}")
runs=${KILN_BENCH_RUNS:-2}
iso=$(realpath "$(scripts/make-test-iso.sh | tail -n 1)")
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-demo.XXXXXX")
# The "before" template sits beside the shipped one so that its relative paths still hold.
before=$PWD/boot-configs/.bench-demo-before-$$
trap 'rm -rf "$work" "$before"' EXIT
mkdir -p "$before"
sed -e 's/boot_wait = "-1s"/boot_wait = "10s"/' -e "s/<waitFor 'boot:'>//" \
    boot-configs/testos/testos.pkr.hcl >"$before/testos.pkr.hcl"
if ! grep -q 'boot_wait = "10s"' "$before/testos.pkr.hcl" || grep -q "<waitFor 'boot:'>" "$before/testos.pkr.hcl"; then
    echo "could not derive the fixed-wait template from boot-configs/testos" >&2
    exit 1
fi

now() { date +%s.%N; }
# build NAME TEMPLATE_DIR: one build; prints its seconds; its log is $work/NAME.log.
build() {
    local t0 t1
    t0=$(now)
    (cd "$work" && "$kiln" build -var "iso_path=$iso" -var "output_directory=$work/$1" "$2") \
        >"$work/$1.log" 2>&1 || {
        echo "kiln build $1 failed:" >&2
        tail -n 20 "$work/$1.log" >&2
        return 1
    }
    t1=$(now)
    rm -rf "${work:?}/$1"
    echo "$t1 - $t0" | bc -l
}
phase() { sed -n "s/.*phases: .*$1 \([0-9.]*\)s.*/\1/p" "$2"; }

best_before="" best_after=""
for i in $(seq 1 "$runs"); do
    b=$(build "before-$i" "$before")
    echo "  run $i fixed boot_wait: ${b}s (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    a=$(build "after-$i" "$PWD/boot-configs/testos")
    echo "  run $i waitFor: ${a}s (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    if [ -z "$best_before" ] || (($(echo "$b < $best_before" | bc -l))); then
        best_before=$b before_log=$work/before-$i.log
    fi
    if [ -z "$best_after" ] || (($(echo "$a < $best_after" | bc -l))); then
        best_after=$a after_log=$work/after-$i.log
    fi
done

printf 'demo build, best of %s alternating runs\n' "$runs"
printf '%-40s %8.2f s (boot_command phase %ss)\n' 'before: boot_wait = "10s"' "$best_before" "$(phase boot_command "$before_log")"
printf '%-40s %8.2f s (boot_command phase %ss)\n' "after: <waitFor 'boot:'>, no boot_wait" "$best_after" "$(phase boot_command "$after_log")"
echo "before phases: $(sed -n 's/.*phases: //p' "$before_log")"
echo "after phases:  $(sed -n 's/.*phases: //p' "$after_log")"
echo "after / before = $(echo "scale=3; $best_after / $best_before" | bc -l)"
# The install itself (wait_ssh) varies by tens of seconds on a loaded machine; the rest is what
# the boot wait changes.
b_rest=$(echo "$best_before - $(phase wait_ssh "$before_log")" | bc -l)
a_rest=$(echo "$best_after - $(phase wait_ssh "$after_log")" | bc -l)
printf 'outside the install (wall minus wait_ssh): before %.2f s, after %.2f s, after / before = %s\n' \
    "$b_rest" "$a_rest" "$(echo "scale=3; $a_rest / $b_rest" | bc -l)"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
