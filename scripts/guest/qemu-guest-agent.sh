#!/bin/sh
# qemu-guest-agent: lets libvirt (vagrant-libvirt) ask the guest for its IP
# addresses, freeze file systems for snapshots, and shut it down cleanly.
#
# The agent talks over a virtio-serial port that libvirt adds when the box is
# started; it is absent during the build, so the service is enabled here but
# not started (systemd starts it when the port appears). Idempotent: package
# managers skip installed packages. Runs as root under `sh -eux`.
set -eu

if command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends qemu-guest-agent
elif command -v dnf >/dev/null 2>&1; then
    dnf install -y qemu-guest-agent
elif command -v apk >/dev/null 2>&1; then
    apk add --no-cache qemu-guest-agent
else
    echo "qemu-guest-agent.sh: no known package manager (apt-get, dnf, apk)" >&2
    exit 1
fi

# The unit file, wherever the distribution keeps it (files, not `systemctl cat`:
# this also works in a chroot).
unit_file() {
    for dir in /etc/systemd/system /usr/lib/systemd/system /lib/systemd/system; do
        if [ -f "$dir/$1" ]; then
            echo "$dir/$1"
            return 0
        fi
    done
    return 1
}

if command -v systemctl >/dev/null 2>&1; then
    # Debian and Ubuntu start the agent from udev when the port appears (their
    # unit's [Install] section is empty); Fedora and EL enable it.
    if unit=$(unit_file qemu-guest-agent.service) && grep -q '^WantedBy=' "$unit"; then
        systemctl enable qemu-guest-agent.service
    fi
elif command -v rc-update >/dev/null 2>&1; then
    rc-update add qemu-guest-agent default
fi
