#!/bin/sh
# Makes the network come up in the box whatever its network card is called.
#
# Why: installers write the network configuration for the card's name during
# the build (enp0s2 on kiln's q35 machine). Under vagrant-libvirt the same
# card sits at another PCI slot and gets another name (ens5, ...); a
# configuration bound to the old name leaves the box without network, and
# `vagrant up` waits for an IP address forever.
#   - netplan (Ubuntu): one DHCP configuration matching every en*/eth* card,
#     instead of the installer's, and cloud-init told not to write its own.
#   - ifupdown (Debian): the kernel's classic names (net.ifnames=0), so the
#     first card is always eth0, and /etc/network/interfaces names eth0.
#   - NetworkManager (Fedora, AlmaLinux, Rocky Linux) gives a card it has no
#     profile for an automatic DHCP connection; Alpine keeps the name eth0.
#     Nothing to do there.
# Idempotent. Runs as root under `sh -eux`; the new names apply from the next
# boot, so the build's own SSH connection is not disturbed.
set -eu

if [ -d /etc/netplan ] && command -v netplan >/dev/null 2>&1; then
    for f in /etc/netplan/*.yaml; do
        [ -e "$f" ] || continue
        [ "$f" = /etc/netplan/01-kiln-dhcp.yaml ] || rm -f "$f"
    done
    cat >/etc/netplan/01-kiln-dhcp.yaml <<'YAML'
# Written by kiln's scripts/guest/networking.sh: DHCP on any wired card.
network:
  version: 2
  ethernets:
    wired:
      match:
        name: "e*"
      dhcp4: true
      # The DHCP client ID from the MAC address, not from /etc/machine-id
      # (emptied by cleanup.sh and made anew at the first boot).
      dhcp-identifier: mac
YAML
    chmod 0600 /etc/netplan/01-kiln-dhcp.yaml
    if [ -d /etc/cloud/cloud.cfg.d ]; then
        printf 'network: {config: disabled}\n' >/etc/cloud/cloud.cfg.d/99-kiln-no-network-config.cfg
    fi
elif [ -f /etc/network/interfaces ] && [ -f /etc/default/grub ] && command -v update-grub >/dev/null 2>&1; then
    if ! grep -q 'net.ifnames=0' /etc/default/grub; then
        sed -i 's/^GRUB_CMDLINE_LINUX="\(.*\)"/GRUB_CMDLINE_LINUX="\1 net.ifnames=0 biosdevname=0"/' /etc/default/grub
        update-grub
    fi
    # The card the installer configured: the one of the default route now.
    card=$(ip -o route show default | awk '{ print $5; exit }')
    if [ -n "$card" ] && [ "$card" != eth0 ]; then
        sed -i "s/\([[:space:]]\)$card\([[:space:]]\|$\)/\1eth0\2/g" /etc/network/interfaces
    fi
fi
