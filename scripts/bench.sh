#!/usr/bin/env bash
# Benchmarks (never part of the test suite). Each scripts/bench/NAME.sh measures kiln against a
# baseline in the same run and prints ratios. Usage: scripts/bench.sh [NAME ...] (default: all).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for f in scripts/bench/*.sh; do
        names+=("$(basename "$f" .sh)")
    done
fi

echo "==> cargo build --release" >&2
cargo build --release --locked --quiet
for name in "${names[@]}"; do
    script="scripts/bench/$name.sh"
    if [ ! -f "$script" ]; then
        echo "error: no benchmark named '$name' (see scripts/bench/)" >&2
        exit 2
    fi
    echo "==> bench: $name" >&2
    KILN=target/release/kiln bash "$script"
done
