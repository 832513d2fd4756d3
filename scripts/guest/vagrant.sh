#!/bin/sh
# Vagrant's public "insecure" key in ~vagrant/.ssh/authorized_keys.
#
# Why: `vagrant up` logs into a new box with this well-known key pair, then
# replaces the key with one made for that machine. Without it the first login
# fails ("Authentication failure. Retrying..."). The key is public: no secret
# is baked into the box.
#
# Where from: $VAGRANT_KEY_URL (unset: Vagrant's repository on GitHub; empty:
# skipped), else kiln's HTTP server (http/vagrant.pub; for offline builds, copy
# the key from a Vagrant installation there). The file may hold several keys (RSA and
# ed25519); old Vagrant versions know only the RSA one, so all are kept.
#
# Idempotent: keys already present are not added again. Runs as root under
# `sh -eux`.
set -eu

user=${VAGRANT_USER:-vagrant}
home=$(getent passwd "$user" | cut -d: -f6)
[ -n "$home" ] || {
    echo "vagrant.sh: no user $user" >&2
    exit 1
}
group=$(id -gn "$user")
# Alpine's setup-disk copies /etc from the live system, not /home.
[ -d "$home" ] || install -d -m 0755 -o "$user" -g "$group" "$home"

fetch() { # URL -> stdout
    if command -v curl >/dev/null 2>&1; then
        curl -fsSL --retry 3 "$1"
    else
        wget -q -O - "$1"
    fi
}

keys=$(mktemp)
trap 'rm -f "$keys"' EXIT
got=
for url in ${VAGRANT_KEY_URL-https://raw.githubusercontent.com/hashicorp/vagrant/main/keys/vagrant.pub} \
    ${PACKER_HTTP_ADDR:+http://$PACKER_HTTP_ADDR/vagrant.pub}; do
    if fetch "$url" >"$keys" 2>/dev/null && grep -q '^ssh-' "$keys"; then
        got=$url
        break
    fi
done
[ -n "$got" ] || {
    echo "vagrant.sh: could not fetch Vagrant's public key (set VAGRANT_KEY_URL, or put it at http/vagrant.pub)" >&2
    exit 1
}
echo "vagrant.sh: key(s) from $got"

install -d -m 0700 -o "$user" -g "$group" "$home/.ssh"
auth=$home/.ssh/authorized_keys
touch "$auth"
# One key per line; blank lines are dropped, because Vagrant's key replacement
# trips over them.
grep '^ssh-' "$keys" | while IFS= read -r key; do
    grep -qxF "$key" "$auth" || printf '%s\n' "$key" >>"$auth"
done
sed -i '/^[[:space:]]*$/d' "$auth"
chown "$user:$group" "$auth"
chmod 0600 "$auth"

# Reverse DNS lookups of the client make every `vagrant ssh` wait when the
# host has no DNS entry; turn them off (the default already, said explicitly).
if [ -f /etc/ssh/sshd_config ] && ! grep -Eq '^UseDNS[[:space:]]+no' /etc/ssh/sshd_config; then
    printf 'UseDNS no\n' >>/etc/ssh/sshd_config
fi
