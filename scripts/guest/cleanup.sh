#!/bin/sh
# Removes what must not be shared by every machine made from the box, and what
# only makes it bigger:
#   - /etc/machine-id: systemd derives DHCP client IDs and journal names from
#     it; copies with the same ID get the same IP address on one network.
#     Emptied, not deleted: an empty file makes systemd create a new ID at the
#     first boot.
#   - SSH host keys: every machine must have its own, or one machine can pose
#     as another. They are made again at the first boot (sshd-keygen on
#     Fedora/EL, OpenRC's sshd script on Alpine; on Debian/Ubuntu by the unit
#     installed below).
#   - package caches, logs, DHCP leases, shell history: size and leftovers of
#     the build.
# Idempotent: everything here may run again. Runs as root under `sh -eux`,
# over the SSH session kiln still uses (removing host keys does not end it).
set -eu

# --- package caches ---------------------------------------------------------------
if command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get -y -q autoremove --purge
    apt-get -y clean
    rm -rf /var/lib/apt/lists/*
elif command -v dnf >/dev/null 2>&1; then
    dnf -y autoremove || true # nothing to remove is not an error on every dnf version
    dnf -y clean all
elif command -v apk >/dev/null 2>&1; then
    rm -rf /var/cache/apk/*
fi

# --- machine identity ---------------------------------------------------------------
if [ -f /etc/machine-id ]; then
    : >/etc/machine-id
fi
# D-Bus keeps its own copy on some systems; a link to the new ID is made at boot.
if [ -f /var/lib/dbus/machine-id ] && [ ! -L /var/lib/dbus/machine-id ]; then
    rm -f /var/lib/dbus/machine-id
fi
rm -f /var/lib/systemd/random-seed

# --- SSH host keys, made again at the first boot -------------------------------------
rm -f /etc/ssh/ssh_host_*
has_unit() {
    for dir in /etc/systemd/system /usr/lib/systemd/system /lib/systemd/system; do
        [ -f "$dir/$1" ] && return 0
    done
    return 1
}
if command -v systemctl >/dev/null 2>&1 &&
    ! has_unit sshd-keygen.target && ! has_unit sshd-keygen@.service; then
    # Debian and Ubuntu only make host keys when openssh-server is installed.
    cat >/etc/systemd/system/kiln-ssh-host-keys.service <<'UNIT'
[Unit]
Description=Generate SSH host keys missing after the image build
ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key
Before=ssh.service sshd.service

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
UNIT
    systemctl enable kiln-ssh-host-keys.service
fi

# --- leases, logs, history --------------------------------------------------------------
rm -f /var/lib/dhcp/*.leases /var/lib/dhclient/* /var/lib/NetworkManager/*.lease 2>/dev/null || true
# Empty the log files but keep them (and their owners and modes) for the services using them.
find /var/log -type f -exec truncate -s 0 {} + 2>/dev/null ||
    find /var/log -type f -exec sh -c ': >"$1"' _ {} \;
rm -rf /var/log/journal/* /var/tmp/*
for home in /root /home/*; do
    [ -d "$home" ] || continue
    rm -f "$home/.bash_history" "$home/.ash_history" "$home/.sh_history" "$home/.lesshst" "$home/.wget-hsts"
done
