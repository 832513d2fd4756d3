#!/usr/bin/env bash
# Build a BIOS-bootable installer ISO from Debian's real netboot installer.
#
# Usage: scripts/make-debian-netboot-iso.sh [OUTPUT.iso]
#   default OUTPUT: <repo>/target/test-iso/debian-12-netboot.iso
#
# The ISO carries the kernel, initrd and syslinux menus of the Debian package
# debian-installer-12-netboot-amd64 (the same d-i that Debian's netinst ISO
# boots), with isolinux from the isolinux package. It shows d-i's boot menu
# like the official ISO does, so the Debian 12 boot-config's real
# boot_command (<esc> to the boot: prompt, then the `auto` label with
# preseed/url=...) works on it. kiln's smoke test (tests/installer.rs) builds
# boot-configs/debian against it and watches d-i fetch the preseed file.
#
# It cannot install Debian here: netboot d-i loads its remaining components
# (.udeb files) from a Debian mirror, and this project's package mirror does
# not serve .udeb files.
#
# Beside the ISO, a SHA256SUMS file lists it (so the template's `file:`
# checksum mode can be used), and OUTPUT.stamp records the inputs (this
# script, the package version, the isolinux version): when they have not
# changed, the script does nothing. The last line on stdout is the absolute
# path of the ISO; progress goes to stderr.
#
# Why a copy with symlinks dereferenced: the netboot tree links ldlinux.c32,
# pxelinux.cfg and others; isolinux cannot follow Rock Ridge symlinks and hangs
# after its banner.

set -euo pipefail

SCRIPT_PATH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/$(basename "${BASH_SOURCE[0]}")
REPO_ROOT=$(cd "${SCRIPT_PATH%/*}/.." && pwd -P)

PACKAGE=debian-installer-12-netboot-amd64
TREE=/usr/lib/debian-installer/images/12/amd64/text
ISOLINUX_BIN=/usr/lib/ISOLINUX/isolinux.bin
ISOHDPFX=/usr/lib/ISOLINUX/isohdpfx.bin
VOLUME_ID=KILN_DEBIAN12_NETBOOT
# Fixed timestamp of every file (2024-01-01 00:00:00 UTC): same inputs, same ISO.
EPOCH=1704067200
ISO_DATE=2024010100000000
export SOURCE_DATE_EPOCH=$EPOCH LC_ALL=C TZ=UTC
umask 022

# shellcheck source=scripts/lib/iso-script.sh
source "${SCRIPT_PATH%/*}/lib/iso-script.sh"
iso_script_args "$@"

# --- packages -------------------------------------------------------------------
# The netboot tree and isolinux come from Debian packages, installed when missing.
# shellcheck source=scripts/lib/deps.sh
source "${SCRIPT_PATH%/*}/lib/deps.sh"
ensure_commands "$TREE/debian-installer/amd64/linux:$PACKAGE" "$ISOLINUX_BIN:isolinux" \
    "$ISOHDPFX:isolinux" xorriso:xorriso flock:util-linux sha256sum:coreutils ||
    die "missing packages (see above)"

OUT=${1:-$REPO_ROOT/target/test-iso/debian-12-netboot.iso}
case "$OUT" in
*/) die "OUTPUT must be a file name, not a directory: $OUT" ;;
esac
mkdir -p "$(dirname "$OUT")"
OUT=$(cd "$(dirname "$OUT")" && pwd -P)/$(basename "$OUT")
STAMP_FILE=$OUT.stamp
SUMS=$(dirname "$OUT")/SHA256SUMS

# One build per output at a time (tests may run this concurrently).
exec 9>"$OUT.lock"
flock 9

stamp() {
    echo "kiln debian netboot iso v1"
    sha256sum "$SCRIPT_PATH" | cut -d' ' -f1
    dpkg-query -W -f '${Package} ${Version}\n' "$PACKAGE" isolinux xorriso 2>/dev/null || true
}
STAMP=$(stamp | sha256sum | cut -d' ' -f1)
if [ -f "$OUT" ] && [ -f "$SUMS" ] && [ "$(cat "$STAMP_FILE" 2>/dev/null)" = "$STAMP" ]; then
    log "up to date: $OUT"
    printf '%s\n' "$OUT"
    exit 0
fi

log "building $OUT from $PACKAGE $(dpkg-query -W -f '${Version}' "$PACKAGE" 2>/dev/null || echo '?')"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kiln-d-i-iso.XXXXXX")
TMP_ISO=$OUT.tmp.$$
trap 'rm -rf "$WORK"; rm -f "$TMP_ISO"' EXIT
S=$WORK/iso

# The netboot tree with every symlink replaced by the file it points to. The
# graphical (gtk) flavour is left out: the text installer is all the preseed
# needs, and it keeps the ISO at ~55 MB.
cp -rL "$TREE" "$S"
[ -z "$(find "$S" -type l)" ] || die "symlinks left in the copied tree"

# isolinux reads /isolinux/isolinux.cfg; it hands over to d-i's own PXE menu
# (syslinux.cfg) with the ISO root as working directory, because d-i's menus
# name every file relative to the root (debian-installer/amd64/...).
# ldlinux.c32 must be the same syslinux build as isolinux.bin: the package's
# own copy is (both are syslinux 6.04 from bookworm); check it.
mkdir -p "$S/isolinux"
install -m 0644 "$ISOLINUX_BIN" "$S/isolinux/isolinux.bin"
install -m 0644 "$S/ldlinux.c32" "$S/isolinux/ldlinux.c32"
if [ -f /usr/lib/syslinux/modules/bios/ldlinux.c32 ] &&
    ! cmp -s /usr/lib/syslinux/modules/bios/ldlinux.c32 "$S/ldlinux.c32"; then
    log "note: the netboot tree's ldlinux.c32 differs from syslinux-common's; using syslinux-common's"
    install -m 0644 /usr/lib/syslinux/modules/bios/ldlinux.c32 "$S/isolinux/ldlinux.c32"
fi
cat >"$S/isolinux/isolinux.cfg" <<'EOF'
# kiln: boot d-i's own menu, with the ISO root as working directory.
prompt 0
timeout 0
default d-i
label d-i
	config /debian-installer/amd64/boot-screens/syslinux.cfg /
EOF
find "$S" -exec touch -h -d "@$EPOCH" {} +

isolinux_iso "$TMP_ISO" "$VOLUME_ID" "$ISOHDPFX" "$S"

rm -f "$STAMP_FILE"
mv -f "$TMP_ISO" "$OUT"
(cd "$(dirname "$OUT")" && sha256sum "$(basename "$OUT")") >"$SUMS.tmp"
mv -f "$SUMS.tmp" "$SUMS"
printf '%s\n' "$STAMP" >"$STAMP_FILE"
log "done: $OUT ($(du -h "$OUT" | cut -f1))"
printf '%s\n' "$OUT"
