#!/usr/bin/env bash
# kiln's main job, offline: builds kiln, builds the small test installer ISO from Debian
# packages, then runs `kiln build` on the test-OS template (boot_command typed at the ISO's
# boot prompt, answer file over HTTP, install, SSH, provisioning, shutdown, compaction) and
# turns the disk into a Vagrant box listed in a versioned catalog.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh

ensure_rust
ensure_commands "${KILN_BUILD_DEPS[@]}" "${KILN_RUNTIME_DEPS[@]}" "${KILN_ISO_DEPS[@]}"

echo "==> Building kiln (release)" >&2
cargo build --release --locked
echo "==> Building the test ISO" >&2
iso=$(scripts/make-test-iso.sh | tail -n 1)

echo "==> kiln build boot-configs/testos" >&2
target/release/kiln build -force -var "iso_path=$iso" boot-configs/testos

echo
echo "disk: $PWD/output-testos/testos.qcow2"
echo "box:  $PWD/output-testos/testos.box"
echo "catalog: $PWD/output-testos/testos.json (vagrant box add output-testos/testos.json)"
