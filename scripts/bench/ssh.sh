#!/usr/bin/env bash
# SSH: a 512 MiB upload by kiln vs `scp` to the same local sshd, and the delay from sshd
# accepting connections to kiln's first successful command (Packer polls every 5 s).
# Starts its own sshd on 127.0.0.1 (root, key login, own host key and config) and stops it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh
# shellcheck source=scripts/lib/sshd.sh
source scripts/lib/sshd.sh
ensure_commands /usr/sbin/sshd:openssh-server scp:openssh-client bc:bc

work=$(mktemp -d)
sshd_pid=""
cleanup() {
    if [ -n "$sshd_pid" ]; then kill "$sshd_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
sshd_setup "$work"
port=$sshd_port

# 1. Upload.
sshd_start "$work"
head -c $((512 << 20)) /dev/urandom >"$work/payload"
now() { date +%s.%N; }
t0=$(now)
scp -q -i "$work/client_key" -P "$port" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    "$work/payload" "root@127.0.0.1:$work/by-scp"
t1=$(now)
scp_s=$(echo "$t1 - $t0" | bc -l)
kiln_s=$(cargo bench --locked --quiet --bench ssh -- upload "$port" "$work/client_key" "$work/payload" "$work/by-kiln" |
    sed -n 's/^kiln_upload_seconds=//p')
cmp "$work/payload" "$work/by-kiln"
kill "$sshd_pid"
wait "$sshd_pid" 2>/dev/null || true
sshd_pid=""
rm -f "$work/payload" "$work/by-scp" "$work/by-kiln"

# 2. Readiness: sshd starts 2 s after kiln begins waiting.
printf '#!/bin/sh\nsleep 2\nexec /usr/sbin/sshd -D -f %s -E %s\n' "$work/sshd_config" "$work/sshd2.log" >"$work/start.sh"
ready_s=$(cargo bench --locked --quiet --bench ssh -- ready "$port" "$work/client_key" "$work/start.sh" |
    sed -n 's/^kiln_ready_after_accept_seconds=//p')
if [ -f "$work/sshd.pid" ]; then kill "$(cat "$work/sshd.pid")" 2>/dev/null || true; fi

printf '%-36s %8s\n' "512 MiB upload to 127.0.0.1" seconds
printf '%-36s %8.2f\n' "scp" "$scp_s"
printf '%-36s %8.2f\n' "kiln (upload_file)" "$kiln_s"
echo "upload: kiln / scp = $(echo "scale=2; $kiln_s / $scp_s" | bc -l) (goal <= 1.2)"
echo "readiness: kiln's first command ran ${ready_s}s after sshd accepted connections (goal <= 1 s; Packer polls every 5 s)"
