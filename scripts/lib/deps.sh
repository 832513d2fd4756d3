# shellcheck shell=bash
# Installs the Debian packages kiln's scripts need, only when a command is missing.
# Usage: source this file, then `ensure_commands CMD:PACKAGE ...`.

ensure_commands() {
    local missing=() pair cmd pkg
    for pair in "$@"; do
        cmd=${pair%%:*}
        pkg=${pair#*:}
        if [[ $cmd == /* ]]; then
            [[ -e $cmd ]] && continue
        else
            command -v "$cmd" >/dev/null 2>&1 && continue
        fi
        missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return 0
    # De-duplicate while keeping order.
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')
    echo "==> Installing Debian packages: ${missing[*]}" >&2
    local sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null 2>&1 || {
            echo "error: need root (or sudo) to install: ${missing[*]}" >&2
            return 1
        }
        sudo=(sudo)
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

# Everything a kiln build of the test OS needs: QEMU, qemu-img, and the ISO-making tools.
# shellcheck disable=SC2034 # used by the scripts that source this file
KILN_RUNTIME_DEPS=(
    qemu-system-x86_64:qemu-system-x86
    qemu-img:qemu-utils
    setpriv:util-linux
    /etc/ssl/certs/ca-certificates.crt:ca-certificates
)
# shellcheck disable=SC2034 # used by the scripts that source this file
KILN_ISO_DEPS=(
    xorriso:xorriso
    /usr/lib/ISOLINUX/isolinux.bin:isolinux
    /usr/lib/syslinux/mbr/mbr.bin:syslinux-common
    extlinux:extlinux
    /bin/busybox:busybox-static
    dropbear:dropbear-bin
    cpio:cpio
    depmod:kmod
)
