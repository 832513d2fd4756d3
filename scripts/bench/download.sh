#!/usr/bin/env bash
# Download benchmark (issue 4): time to a verified file from a loopback HTTP server, kiln vs
# `curl -o` alone vs `curl -o` then `sha256sum`; then re-verifying the cached file,
# `kiln cache verify` vs `sha256sum`. Best of BENCH_RUNS runs each; prints ratios.
# Env: KILN (the binary, set by scripts/bench.sh), BENCH_SIZE_MIB (default 2048),
# BENCH_RUNS (default 3).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

kiln=${KILN:-target/release/kiln}
kiln=$(realpath "$kiln")
size_mib=${BENCH_SIZE_MIB:-2048}
runs=${BENCH_RUNS:-3}
# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh
ensure_commands curl:curl sha256sum:coreutils python3:python3

work=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

echo "==> making a ${size_mib} MiB file" >&2
mkdir "$work/www"
head -c "$((size_mib << 20))" /dev/urandom >"$work/www/disk.iso"
digest=$(sha256sum "$work/www/disk.iso" | cut -d' ' -f1)

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$work/www" >/dev/null 2>&1 &
server_pid=$!
url="http://127.0.0.1:$port/disk.iso"
for _ in $(seq 100); do
    curl -sfI "$url" >/dev/null && break
    sleep 0.1
done
curl -sfI "$url" >/dev/null || { echo "error: the loopback server did not start" >&2; exit 1; }

now() { date +%s.%N; }
# best CMD...: the shortest wall time of $runs runs; `reset` runs before each.
best() {
    local min='' t0 t1 t
    for _ in $(seq "$runs"); do
        reset
        t0=$(now)
        "$@" >/dev/null
        t1=$(now)
        t=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
        if [ -z "$min" ] || awk -v t="$t" -v m="$min" 'BEGIN { exit !(t < m) }'; then min=$t; fi
    done
    echo "$min"
}

fresh=1 # whether each run starts without output and cache
reset() {
    if [ "$fresh" = 1 ]; then
        rm -rf "$work/out" "$work/cache"
        mkdir "$work/out"
    fi
}
curl_only() { curl -sf -o "$work/out/disk.iso" "$url"; }
curl_sha() { curl_only && sha256sum "$work/out/disk.iso"; }
kiln_fetch() { KILN_CACHE_DIR="$work/cache" "$kiln" cache fetch --checksum "sha256:$digest" "$url"; }

# Rounds interleave the three, so a busy moment on the machine does not favour one of them.
echo "==> downloading (best of $runs rounds)" >&2
t_curl='' t_curl_sha='' t_kiln=''
min() { if [ -z "$1" ] || awk -v t="$2" -v m="$1" 'BEGIN { exit !(t < m) }'; then echo "$2"; else echo "$1"; fi; }
all_runs=$runs
runs=1
for _ in $(seq "$all_runs"); do
    t_curl=$(min "$t_curl" "$(best curl_only)")
    t_curl_sha=$(min "$t_curl_sha" "$(best curl_sha)")
    t_kiln=$(min "$t_kiln" "$(best kiln_fetch)")
done
runs=$all_runs

echo "==> re-verifying the cached file (best of $runs)" >&2
reset
kiln_fetch >/dev/null 2>&1
cached="$work/cache/sha256-$digest.iso"
cat "$cached" >/dev/null # both read from the page cache
fresh=0
t_sha=$(best sha256sum "$cached")
t_verify=$(best env KILN_CACHE_DIR="$work/cache" "$kiln" cache verify)

sha_ni=no
grep -qw sha_ni /proc/cpuinfo && sha_ni=yes
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
rate() { awk -v s="$size_mib" -v t="$1" 'BEGIN { printf "%.0f", s / t }'; }
echo "download of ${size_mib} MiB from 127.0.0.1 (python3 http.server), CPU sha_ni: $sha_ni"
printf '  %-34s %8ss %6s MiB/s\n' "curl -o" "$t_curl" "$(rate "$t_curl")"
printf '  %-34s %8ss %6s MiB/s\n' "curl -o; sha256sum" "$t_curl_sha" "$(rate "$t_curl_sha")"
printf '  %-34s %8ss %6s MiB/s\n' "kiln cache fetch (verified)" "$t_kiln" "$(rate "$t_kiln")"
echo "  kiln / curl alone:            $(ratio "$t_kiln" "$t_curl")x (goal <= 1.10)"
echo "  kiln / curl then sha256sum:   $(ratio "$t_kiln" "$t_curl_sha")x"
echo "re-verification of the cached ${size_mib} MiB file (page cache warm)"
printf '  %-34s %8ss %6s MiB/s\n' "sha256sum" "$t_sha" "$(rate "$t_sha")"
printf '  %-34s %8ss %6s MiB/s\n' "kiln cache verify" "$t_verify" "$(rate "$t_verify")"
echo "  kiln / sha256sum:             $(ratio "$t_verify" "$t_sha")x (goal <= 1.00)"
