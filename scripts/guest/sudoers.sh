#!/bin/sh
# Passwordless sudo for the vagrant user.
#
# Why: Vagrant runs its own setup commands (hostname, networks, synced folders)
# with `sudo` and no terminal to type a password in. The answer files already
# grant it; this script makes every box get the same rule, whatever its
# answer file did. Idempotent: the file is rewritten with the same content.
# Runs as root (through sudo) under `sh -eux`.
set -eu

user=${VAGRANT_USER:-vagrant}
rule_file=/etc/sudoers.d/$user

# Alpine installs sudo only on request; the others have it from their answer files.
if ! command -v sudo >/dev/null 2>&1 && command -v apk >/dev/null 2>&1; then
    apk add --no-cache sudo
fi

mkdir -p /etc/sudoers.d
# Only files in sudoers.d without '.' or '~' in their names are read: use the user name.
tmp=$(mktemp /etc/sudoers.d/.kiln.XXXXXX)
printf '%s ALL=(ALL:ALL) NOPASSWD: ALL\n' "$user" >"$tmp"
# Some distributions (older EL) required a tty for sudo; Vagrant has none.
printf 'Defaults:%s !requiretty\n' "$user" >>"$tmp"
chmod 0440 "$tmp"
# A broken sudoers file locks everyone out of sudo: check before installing it.
if command -v visudo >/dev/null 2>&1; then
    visudo -c -f "$tmp"
fi
mv -f "$tmp" "$rule_file"

# sudoers.d must be included (it is by default on every supported distribution;
# Alpine's sudo package ships the line commented out in some versions).
if ! grep -Eq '^[@#]includedir[[:space:]]+/etc/sudoers.d' /etc/sudoers; then
    printf '@includedir /etc/sudoers.d\n' >>/etc/sudoers
fi
