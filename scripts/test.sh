#!/usr/bin/env bash
# Runs everything CI runs: installs missing packages, checks formatting and lints, builds the
# offline test ISO, then runs every test — including the ones that boot real QEMU guests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh

ensure_rust
ensure_commands "${KILN_BUILD_DEPS[@]}" "${KILN_RUNTIME_DEPS[@]}" "${KILN_ISO_DEPS[@]}" \
    "${KILN_MOTO_DEPS[@]}" \
    /usr/lib/openssh/sftp-server:openssh-sftp-server scp:openssh-client ssh-agent:openssh-client \
    /usr/sbin/sshd:openssh-server ssh-keygen:openssh-client shellcheck:shellcheck \
    ansible-playbook:ansible-core sshpass:sshpass python3:python3 \
    vagrant:vagrant /usr/share/vagrant-plugins/plugins.d/vagrant-libvirt.json:vagrant-libvirt \
    libvirtd:libvirt-daemon virtlogd:libvirt-daemon /etc/libvirt/qemu.conf:libvirt-daemon-system \
    virsh:libvirt-clients /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so:libvirt-daemon-driver-qemu \
    dnsmasq:dnsmasq-base iptables:iptables ip:iproute2 nsenter:util-linux kill:procps \
    podman:podman runc:runc docker-registry:docker-registry \
    mdir:mtools swtpm:swtpm /usr/lib/qemu/qemu-bridge-helper:qemu-system-common unshare:util-linux \
    /usr/share/qemu/keymaps/de:qemu-system-data /usr/include/X11/keysymdef.h:x11proto-dev \
    /usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64/linux:debian-installer-12-netboot-amd64

echo "==> cargo fmt --check" >&2
cargo fmt --check
echo "==> cargo clippy" >&2
cargo clippy --all-targets --locked -- -D warnings
echo "==> shellcheck" >&2
find scripts -name "*.sh" -print0 | sort -z | xargs -0 shellcheck .ci/run
echo "==> building the test ISOs" >&2
scripts/make-test-iso.sh >/dev/null
# Debian's real installer (d-i netboot) on an ISO, for tests/installer.rs.
scripts/make-debian-netboot-iso.sh >/dev/null

# moto (PyPI) in a virtualenv: the EC2 emulator of tests/amazon_ebs.rs.
scripts/moto.sh >/dev/null

echo "==> tests" >&2
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --locked --no-fail-fast
else
    cargo test --locked --no-fail-fast
fi
