#!/usr/bin/env bash
# A newcomer's machine, checked (issue 15; not part of the tests): makes a clean Debian 12 root
# with mmdebstrap from the package mirror, copies the repository in (its tracked files, as they
# are in the work tree), and runs README's two commands there exactly as written:
# `scripts/demo.sh`, then `scripts/test.sh`, as root. The host's Rust toolchain (rustup's home
# and cargo's bin directory) is bind-mounted read-only, since README says Rust is a
# prerequisite; nothing else comes from the host but the kernel's /dev, /proc and /sys, and
# what the machine's network needs: DNS settings, apt options for the mirror, and the local CA
# certificates (/usr/local/share/ca-certificates, e.g. an HTTPS proxy's; trusted once the
# scripts install ca-certificates). Prints the wall time of each command; exits non-zero if
# either fails.
#
# Usage: sudo scripts/check-fresh.sh [WORKDIR]
#   WORKDIR (default: a new directory under ${TMPDIR:-/tmp}) holds the root and the logs
#   (demo.log, test.log). It is removed afterwards when both commands pass, unless KEEP=1.
# Environment: KILN_FRESH_MIRROR (default http://deb.debian.org/debian) and
# KILN_FRESH_SECURITY (default http://deb.debian.org/debian-security).
#
# The root gets /usr/sbin/policy-rc.d refusing service starts: the root shares the host's
# network, so a package's postinst must not start its daemon (sshd, libvirtd) there. The
# whole check runs in a private mount namespace, so its mounts go away with it.

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD

die() {
    echo "check-fresh: error: $*" >&2
    exit 1
}
log() { echo "==> check-fresh: $*" >&2; }

[[ $EUID -eq 0 ]] || die "run as root (mounts, pivot_root): sudo $0 $*"
(($# <= 1)) || die "usage: $0 [WORKDIR]"

# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh
ensure_rust
ensure_commands mmdebstrap:mmdebstrap unshare:util-linux pivot_root:util-linux git:git

# rustup's proxies (cargo, rustc, ...) live in cargo's bin directory, the toolchains in
# RUSTUP_HOME.
cargo_bin=$(dirname "$(command -v cargo)")
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
[[ -d $rustup_home ]] || die "no rustup home at $rustup_home (set RUSTUP_HOME)"

work=${1:-$(mktemp -d "${TMPDIR:-/tmp}/kiln-fresh.XXXXXX")}
mkdir -p "$work"
work=$(cd "$work" && pwd -P)
root=$work/root
[[ ! -e $root ]] || die "$root exists: give an empty WORKDIR"

mirror=${KILN_FRESH_MIRROR:-http://deb.debian.org/debian}
security=${KILN_FRESH_SECURITY:-http://deb.debian.org/debian-security}
aptopts=()
# This kind of machine's mirror serves snapshots whose Release files have expired; the host's
# apt is told so, and the fresh root must be too.
if [[ $(apt-config dump Acquire::Check-Valid-Until) == *'"false"'* ]]; then
    aptopts+=(--aptopt='Acquire::Check-Valid-Until "false"')
fi

t0=$SECONDS
log "making a clean Debian 12 root in $root"
mmdebstrap --variant=minbase --mode=root "${aptopts[@]}" \
    bookworm "$root" \
    "deb $mirror bookworm main" \
    "deb $mirror bookworm-updates main" \
    "deb $security bookworm-security main" >"$work/mmdebstrap.log" 2>&1 ||
    die "mmdebstrap failed (see $work/mmdebstrap.log)"
bootstrap_time=$((SECONDS - t0))
printf '#!/bin/sh\n# check-fresh.sh: no daemon starts in this root\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"

log "copying the repository's tracked files to /root/kiln"
mkdir -p "$root/root/kiln"
git -C "$REPO" ls-files -z | tar -C "$REPO" --null -T - -cf - | tar -C "$root/root/kiln" -xf -
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
if [[ -d /usr/local/share/ca-certificates ]]; then
    mkdir -p "$root/usr/local/share/ca-certificates"
    cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
fi

# The mounts and the two commands, in a private mount namespace.
inner=$(
    cat <<'EOF'
set -euo pipefail
root=$1 cargo_bin=$2 rustup_home=$3 work=$4
# The root must be a mount point, as / is on a real machine: `ip netns exec` (the vagrant up
# test) runs `mount --make-rslave /` and podman remounts /, both refused (EINVAL) when / is a
# plain directory; pivot_root needs it too.
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=0755 tmpfs "$root/run"
for dir in "$cargo_bin" "$rustup_home"; do
    mkdir -p "$root$dir"
    mount --bind "$dir" "$root$dir"
    mount -o remount,bind,ro "$root$dir"
done
# The root becomes this namespace's / (pivot_root, not chroot): in a chroot, runc's own
# pivot_root put the docker tests' containers on the host's root filesystem instead of their
# image, so `podman cp` and the container disagreed. The logs are opened first.
exec 3>"$work/demo.log" 4>"$work/test.log"
mkdir -p "$root/.old-root"
cd "$root"
pivot_root . .old-root
umount -l /.old-root
rmdir /.old-root
cd /
run() { # NAME FD COMMAND: runs README's COMMAND in the root, timed, its output to FD
    local start=$SECONDS status=0
    /usr/bin/env -i HOME=/root TERM="${TERM:-dumb}" LANG=C.UTF-8 \
        PATH="$cargo_bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        RUSTUP_HOME="$rustup_home" \
        bash -c "cd /root/kiln && $3" >&"$2" 2>&1 3>&- 4>&- || status=$?
    echo "$1 $status $((SECONDS - start))"
}
run demo 3 scripts/demo.sh
run test 4 scripts/test.sh
EOF
)
log "running scripts/demo.sh, then scripts/test.sh in the root (logs: $work/demo.log, $work/test.log)"
results=$(unshare --mount --propagation private bash -c "$inner" inner "$root" "$cargo_bin" "$rustup_home" "$work")

fmt() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
echo "fresh Debian 12 root (mmdebstrap minbase): $(fmt "$bootstrap_time")"
failed=0
while read -r name status seconds; do
    echo "scripts/$name.sh: $(fmt "$seconds"), exit status $status"
    if [[ $status != 0 ]]; then
        failed=1
        echo "--- last lines of $work/$name.log" >&2
        tail -n 30 "$work/$name.log" >&2
    fi
done <<<"$results"
if ((failed)) || [[ ${KEEP:-0} == 1 ]]; then
    echo "kept: $work"
else
    rm -rf "$work"
fi
exit "$failed"
