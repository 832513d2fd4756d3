#!/usr/bin/env bash
# Boot-command typing: kiln types a ~450-character payload (every printable ASCII character,
# shifted symbols, literal <x> forms, a <bs> correction) at the test ISO's isolinux boot:
# prompt under TCG, N times. Prints kiln's typing time per driver, Packer's time for the same
# key events at its fixed 100 ms per event, the ratio, and how many runs reached the kernel
# exactly. Run through scripts/bench.sh, or alone from the repo root (KILN=path/to/kiln).
# KILN_BENCH_RUNS sets N (default 20), KILN_BENCH_DRIVERS the drivers (default "qmp vnc").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh
ensure_commands qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils bc:bc

kiln=${KILN:-target/release/kiln}
runs=${KILN_BENCH_RUNS:-20}
read -r -a drivers <<<"${KILN_BENCH_DRIVERS:-qmp vnc}"
iso=$(scripts/make-test-iso.sh)
fixtures=tests/fixtures/e2e
payload=$(cat "$fixtures/typing-payload.txt")
expected=$(cat "$fixtures/typing-expected.txt")
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-typing.XXXXXX")
trap 'rm -rf "$work"' EXIT

# hex_decode HEX: the bytes HEX spells, on stdout.
hex_decode() { printf '%b' "$(printf '%s' "$1" | sed 's/../\\x&/g')"; }

# run_once DRIVER: one build; prints "SECONDS EVENTS exact|wrong".
run_once() {
    local out=$work/out log=$work/log line hex cmdline typed verdict=wrong
    rm -rf "$out"
    if ! "$kiln" build -var "iso_path=$iso" -var "output_directory=$out" \
        -var "payload=$payload" -var "boot_key_driver=$1" "$fixtures/typing.pkr.hcl" >"$log" 2>&1; then
        echo "kiln build failed:" >&2
        tail -n 20 "$log" >&2
        echo "0 0 wrong"
        return
    fi
    line=$(grep -o 'Typed the boot command: [0-9]* key events in [0-9.]*s ([^;]*' "$log")
    case "$line" in *"paced by the guest's reads"*) ;; *) echo "not guest-paced: $line" >&2 ;; esac
    hex=$(sed -n 's/.*kiln-testos: cmdline-hex: \([0-9a-f]*\).*/\1/p' "$out/serial.log" | head -n 1)
    cmdline=$(hex_decode "$hex")
    typed=${cmdline#* kiln.typing }
    [ "$typed" = "$expected" ] && verdict=exact
    local _w1 _w2 _w3 _w4 events _w6 _w7 _w8 secs _rest
    read -r _w1 _w2 _w3 _w4 events _w6 _w7 _w8 secs _rest <<<"$line"
    echo "${secs%s} $events $verdict"
}

echo "typing bench: $runs runs per driver, payload ${#payload} characters, $(nproc) cores" >&2
results=()
for driver in "${drivers[@]}"; do
    exact=0 times=()
    for i in $(seq 1 "$runs"); do
        read -r secs events verdict < <(run_once "$driver")
        echo "  $driver run $i: ${secs}s, $events events, $verdict (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
        [ "$verdict" = exact ] && exact=$((exact + 1))
        times+=("$secs")
    done
    sorted=$(printf '%s\n' "${times[@]}" | sort -n)
    median=$(printf '%s\n' "$sorted" | sed -n "$(((runs + 1) / 2))p")
    slowest=$(printf '%s\n' "$sorted" | tail -n 1)
    packer=$(echo "scale=1; $events / 10" | bc -l)
    results+=("$(printf 'kiln (%s): median %ss, slowest %ss; Packer %ss -> %sx (median), %sx (slowest); exact %s/%s' \
        "$driver" "$median" "$slowest" "$packer" \
        "$(echo "scale=1; $packer / $median" | bc -l)" "$(echo "scale=1; $packer / $slowest" | bc -l)" \
        "$exact" "$runs")")
done

echo "payload: ${#payload} characters typed as $events key events; Packer: $events x 100 ms"
printf '%s\n' "${results[@]}"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
