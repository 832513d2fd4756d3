# shellcheck shell=bash
# Installs the Debian packages a script needs, all of them in one apt transaction, then checks
# that every command and file is really there.
# Usage: source this file, then `ensure_commands CMD:PACKAGE ...` (CMD is a command name, or an
# absolute path to a file the package ships).
#
# When anything is missing, the *whole* package set is asked for in one `apt-get install`, never
# only the missing part: apt then sees every package the script relies on and cannot remove one
# of them to satisfy another. A package installed from outside the configured archives (a
# backport `.deb` installed by hand, say `qemu-utils` 10 beside bookworm's `qemu-system-x86`
# 7.2) is asked for at the archive's version, so the set stays consistent; apt says so when it
# downgrades. After installing, every entry is checked again and a missing one fails, naming
# its package.
#
# KILN_APT (default `apt-get`) and KILN_APT_CACHE (default `apt-cache`) name the tools; the
# tests point them at a fake apt that records its calls.

# _deps_present CMD: whether the command (or absolute path) exists. Commands are also looked for
# in the sbin directories, which a non-root user's PATH often lacks (depmod, mkfs.ext4, ...).
_deps_present() {
    if [[ $1 == /* ]]; then
        [[ -e $1 ]]
    else
        PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin command -v "$1" >/dev/null 2>&1
    fi
}

# _deps_archive_version PKG: prints the version to ask for when PKG is installed at a version no
# configured archive offers and an archive offers another one; prints nothing otherwise.
_deps_archive_version() {
    local policy installed
    policy=$("${KILN_APT_CACHE:-apt-cache}" policy "$1" 2>/dev/null) || return 0
    installed=$(awk '/^ *Installed:/ {print $2; exit}' <<<"$policy")
    [[ -n $installed && $installed != "(none)" ]] || return 0
    # The version table: a version line ("***" marks the installed one), then its sources.
    awk -v inst="$installed" '
        /^ *Version table:/ { table = 1; next }
        !table { next }
        /^ +(\*\*\* )?[^ ]+ [0-9-]+$/ {
            v = ($1 == "***") ? $2 : $1
            if (!(v in seen)) { order[++n] = v; seen[v] = 1 }
            next
        }
        /^ +[0-9-]+ / && v != "" {
            if ($2 != "/var/lib/dpkg/status") archive[v] = 1
        }
        END {
            if (inst in archive) exit
            for (i = 1; i <= n; i++) if (order[i] in archive) { print order[i]; exit }
        }' <<<"$policy"
}

ensure_commands() {
    local pair cmd pkg missing=() packages=()
    for pair in "$@"; do
        cmd=${pair%%:*}
        pkg=${pair#*:}
        packages+=("$pkg")
        _deps_present "$cmd" || missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return 0
    # The whole set, de-duplicated in order.
    mapfile -t packages < <(printf '%s\n' "${packages[@]}" | awk '!seen[$0]++')
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')
    echo "==> Missing: ${missing[*]}; installing the whole set in one transaction: ${packages[*]}" >&2
    local sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null 2>&1 || {
            echo "error: need root (or sudo) to install: ${packages[*]}" >&2
            return 1
        }
        sudo=(sudo)
    fi
    local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive "${KILN_APT:-apt-get}")
    "${apt[@]}" update -q >&2 || {
        echo "error: apt-get update failed" >&2
        return 1
    }
    local request=() version
    for pkg in "${packages[@]}"; do
        version=$(_deps_archive_version "$pkg")
        if [[ -n $version ]]; then
            echo "==> $pkg is installed at a version no configured archive has; asking for the archive's $version so the set stays consistent" >&2
            request+=("$pkg=$version")
        else
            request+=("$pkg")
        fi
    done
    "${apt[@]}" install -y -q --no-install-recommends --allow-downgrades "${request[@]}" >&2 || {
        echo "error: apt-get install ${request[*]} failed" >&2
        return 1
    }
    local failed=0
    for pair in "$@"; do
        cmd=${pair%%:*}
        pkg=${pair#*:}
        if ! _deps_present "$cmd"; then
            echo "error: \`$cmd\` is still missing after installing; it comes from the Debian package \`$pkg\`" >&2
            failed=1
        fi
    done
    return "$failed"
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
    ckbcomp:console-setup
    loadkeys:kbd
)
# shellcheck disable=SC2034 # used by the scripts that source this file
# Debian's Python and its venv module (bookworm: python3.11-venv behind python3-venv), for the
# EC2 emulator the amazon-ebs tests run (scripts/moto.sh).
KILN_MOTO_DEPS=(
    /usr/bin/python3:python3
    /usr/lib/python3.11/ensurepip/__init__.py:python3-venv
)

# What building kiln needs besides Rust: a C compiler and the C library's development files
# (aws-lc-sys and libdeflate-sys compile C code; rustc links with cc).
# shellcheck disable=SC2034 # used by the scripts that source this file
KILN_BUILD_DEPS=(
    cc:gcc
    /usr/lib/x86_64-linux-gnu/crt1.o:libc6-dev
)

# ensure_rust: fails, saying what to install, unless cargo and a rustc at least as new as the
# crate's rust-version (Cargo.toml) are on PATH. Rust is a prerequisite (installed with
# rustup), not a Debian package: Debian 12's rustc is older than the MSRV.
ensure_rust() {
    local manifest msrv have
    manifest=$(dirname "${BASH_SOURCE[0]}")/../../Cargo.toml
    msrv=$(sed -n 's/^rust-version *= *"\(.*\)"/\1/p' "$manifest")
    if ! command -v cargo >/dev/null 2>&1 || ! command -v rustc >/dev/null 2>&1; then
        echo "error: cargo is not on PATH: kiln needs Rust $msrv or newer; install it with rustup (https://rustup.rs), then open a new shell" >&2
        return 1
    fi
    have=$(rustc --version | awk '{print $2}')
    if [[ $(printf '%s\n%s\n' "$msrv" "$have" | sort -V | head -n 1) != "$msrv" ]]; then
        echo "error: rustc $have is older than kiln's minimum, $msrv: run \`rustup update\`" >&2
        return 1
    fi
}
