#!/bin/sh
# Alpine installer driver for kiln's boot-configs/alpine.
#
# The boot command logs into the live ISO as root, starts DHCP and runs
#     wget -O /tmp/install.sh http://HTTPIP:HTTPPORT/alpine/install.sh
#     KILN_HTTP=http://HTTPIP:HTTPPORT/alpine sh /tmp/install.sh
# This script answers setup-alpine with the `answers` file, prepares the live
# system (vagrant user, sudo, sshd enabled), installs it on /dev/vda with
# setup-disk (which copies the live configuration), and reboots into it.
set -eux

: "${KILN_HTTP:?set KILN_HTTP to the URL of http/alpine on the build server}"
DISK=${KILN_DISK:-/dev/vda}

wget -q -O /tmp/answers "$KILN_HTTP/answers"
setup-alpine -e -f /tmp/answers

# setup-sshd started sshd in the live system: stop it at once, or kiln would
# log into the live system (where vagrant is about to exist) instead of the
# installed one. It stays enabled, so the installed system starts it.
rc-service sshd stop || true

apk add sudo
adduser -D -s /bin/sh vagrant
echo 'vagrant:vagrant' | chpasswd
passwd -l root
mkdir -p /etc/sudoers.d
echo 'vagrant ALL=(ALL:ALL) NOPASSWD: ALL' >/etc/sudoers.d/vagrant
chmod 0440 /etc/sudoers.d/vagrant

# setup-disk copies /etc (users, sudoers) but not /home: vagrant.sh makes the
# home directory again in the installed system.
# setup-disk erases the disk without asking when ERASE_DISKS names it; on UEFI
# firmware it makes an EFI system partition and installs GRUB there.
ERASE_DISKS=$DISK setup-disk -m sys -s 0 "$DISK"
reboot
