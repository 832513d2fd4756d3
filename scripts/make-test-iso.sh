#!/usr/bin/env bash
# Build the kiln test installer ISO ("kiln test OS").
#
# Usage: scripts/make-test-iso.sh [OUTPUT.iso]
#   default OUTPUT: <repo>/target/test-iso/kiln-testos.iso
#
# A small, offline, reproducible installer ISO made only from Debian .deb
# packages (kernel, busybox-static, dropbear, syslinux). It behaves like a
# real installer ISO: isolinux waits at a "boot:" prompt for a boot command,
# e.g.
#     install kiln.answer=http://10.0.2.2:PORT/testos.cfg
# then the installer fetches that answer file (see http/testos.cfg), installs
# a busybox + dropbear (+ sudo, scp) system on /dev/vda and reboots into it:
# with http/testos.cfg, a Vagrant box. The files that
# go into the images are under scripts/testos/ (see its README.md).
#
# The last line on stdout is the absolute path of the ISO; progress goes to
# stderr. A stamp beside the ISO (OUTPUT.stamp) records the inputs (this
# script, scripts/testos/, the package versions, the host tools' versions):
# when they have not changed, the script does nothing.
#
# Environment:
#   KILN_TEST_CACHE   cache directory (default ~/.cache/kiln-test); the .debs
#                     are kept in $KILN_TEST_CACHE/debs
#   TMPDIR            where the (~0.5 GB, temporary) build tree goes

set -euo pipefail

SCRIPT_PATH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/$(basename "${BASH_SOURCE[0]}")
SCRIPT_DIR=${SCRIPT_PATH%/*}
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd -P)
TESTOS_DIR=$SCRIPT_DIR/testos

# Fixed timestamp of every file in the images and of the ISO volume
# (2024-01-01 00:00:00 UTC): same inputs, byte-identical ISO.
EPOCH=1704067200
ISO_DATE=2024010100000000
VOLUME_ID=KILN_TESTOS
export SOURCE_DATE_EPOCH=$EPOCH
export LC_ALL=C TZ=UTC
umask 022
PATH=$PATH:/usr/sbin:/sbin

# Runtime .debs (besides the kernel, which is resolved from linux-image-amd64).
# The libraries are those dropbear, extlinux, sudo (with two PAM modules) and
# scp link against; the build fails if ldd finds a library outside these
# packages.
PACKAGES=(busybox-static dropbear-bin isolinux syslinux-common extlinux
    libc6 libcrypt1 libtomcrypt1 libtommath1 libgmp10 zlib1g
    sudo libpam0g libpam-modules libaudit1 libcap-ng0 libselinux1 libpcre2-8-0 openssh-client)
# Host tools, as "command:Debian package".
HOST_TOOLS=(apt-get:apt apt-cache:apt dpkg-deb:dpkg dpkg-query:dpkg xorriso:xorriso
    cpio:cpio depmod:kmod gzip:gzip flock:util-linux sha256sum:coreutils find:findutils
    ckbcomp:console-setup loadkeys:kbd)
# Console keyboard layouts of the typing initrd's "kbd<layout>" labels (boot_keymap, issue
# 14): made from XKB's tables with ckbcomp, as Debian's installer does, and compiled for
# busybox's loadkmap with kbd's loadkeys.
KBD_LAYOUTS=(de fr)

# shellcheck source=scripts/lib/iso-script.sh
source "${SCRIPT_PATH%/*}/lib/iso-script.sh"
iso_script_args "$@"

OUT=${1:-$REPO_ROOT/target/test-iso/kiln-testos.iso}
case "$OUT" in
*/) die "OUTPUT must be a file name, not a directory: $OUT" ;;
esac
mkdir -p "$(dirname "$OUT")"
OUT=$(cd "$(dirname "$OUT")" && pwd -P)/$(basename "$OUT")
STAMP_FILE=$OUT.stamp
CACHE=${KILN_TEST_CACHE:-$HOME/.cache/kiln-test}
DEB_DIR=$CACHE/debs

# --- host tools ---------------------------------------------------------------
# shellcheck source=scripts/lib/deps.sh
source "$SCRIPT_DIR/lib/deps.sh"
ensure_commands "${HOST_TOOLS[@]}" || die "missing host tools (see above)"
[ "$(dpkg --print-architecture)" = amd64 ] || die "only amd64 hosts are supported"

APT_OPTS=(-q)
if [ "$(id -u)" -eq 0 ]; then
    # apt's _apt sandbox user may not be able to write into the cache.
    APT_OPTS+=(-o APT::Sandbox::User=root)
fi

# --- stamp: skip the build when nothing changed --------------------------------
# The stamp file holds two keys:
#   quick=  hash of this script, scripts/testos/ and the state of apt's package
#           lists and dpkg's database (file sizes and mtimes): no apt-cache call.
#   full=   hash of this script, scripts/testos/, the exact package versions
#           (and .deb checksums) used, and the host tools' versions.
# If the quick key matches, nothing can have changed. Otherwise the package
# versions are resolved with apt-cache (~1-3 s, apt keeps no cache on this
# kind of host); if the full key matches, only the quick key is refreshed.
testos_inputs() {
    echo "kiln-testos-iso stamp v1"
    sha256sum "$SCRIPT_PATH" | cut -d' ' -f1
    (
        cd "$SCRIPT_DIR"
        find testos \( -type f -o -type l \) -printf '%m %p\n' | sort
        find testos -type f -print0 | sort -z | xargs -0 sha256sum
    )
}

quick_key() {
    local LISTS STATUS ETC
    eval "$(apt-config shell LISTS Dir::State::lists/d STATUS Dir::State::status/f ETC Dir::Etc/d)"
    {
        testos_inputs
        { find "${LISTS:-/var/lib/apt/lists/}" "${ETC:-/etc/apt/}" -maxdepth 2 \
            -name partial -prune -o -type f ! -name lock -printf '%p %s %T@\n' 2>/dev/null || true; } | sort
        stat -c '%n %s %Y' "${STATUS:-/var/lib/dpkg/status}" 2>/dev/null || true
    } | sha256sum | cut -d' ' -f1
}

stamp_field() { # NAME: prints the NAME= value recorded in the stamp file
    [ -f "$STAMP_FILE" ] && sed -n "s/^$1=//p" "$STAMP_FILE" | head -n 1
    return 0
}

write_stamp() { # FULL QUICK
    printf 'full=%s\nquick=%s\n' "$1" "$2" >"$STAMP_FILE.tmp"
    mv -f "$STAMP_FILE.tmp" "$STAMP_FILE"
}

# One build per output at a time (tests may run this concurrently).
exec 9>"$OUT.lock"
flock 9

QUICK=$(quick_key)
if [ -f "$OUT" ] && [ "$(stamp_field quick)" = "$QUICK" ]; then
    log "up to date: $OUT"
    printf '%s\n' "$OUT"
    exit 0
fi

# --- package versions -----------------------------------------------------------
# Prints "Package Version Architecture SHA256" of the candidate versions.
package_records() {
    apt-cache show --no-all-versions "$@" 2>/dev/null | awk '
        /^Package: /      { p = $2 }
        /^Version: /      { v = $2 }
        /^Architecture: / { a = $2 }
        /^SHA256: /       { s = $2 }
        /^$/ { if (p != "" && !(p in seen)) { seen[p] = 1; print p, v, a, s }; p = v = a = s = "" }
        END  { if (p != "" && !(p in seen)) print p, v, a, s }'
}

resolve_kernel() {
    apt-cache show --no-all-versions linux-image-amd64 2>/dev/null |
        sed -n 's/^Depends: //p' | tr ',' '\n' |
        grep -o 'linux-image-6\.1\.[^ ]*-amd64' | head -n 1
}

KERNEL_PKG=$(resolve_kernel || true)
if [ -z "$KERNEL_PKG" ] && [ "$(id -u)" -eq 0 ]; then
    log "linux-image-amd64 unknown to apt; running apt-get update"
    apt-get update -q >&2 || true
    KERNEL_PKG=$(resolve_kernel || true)
    QUICK=$(quick_key)
fi
[ -n "$KERNEL_PKG" ] || die "cannot resolve the linux-image-6.1.*-amd64 package that linux-image-amd64 depends on (apt-get update?)"
KVER=${KERNEL_PKG#linux-image-}
ALL_PACKAGES=("${PACKAGES[@]}" "$KERNEL_PKG")

declare -A PKG_VERSION PKG_ARCH PKG_SHA256
while read -r p v a s; do
    PKG_VERSION[$p]=$v PKG_ARCH[$p]=$a PKG_SHA256[$p]=$s
done < <(package_records "${ALL_PACKAGES[@]}")
for p in "${ALL_PACKAGES[@]}"; do
    [ -n "${PKG_VERSION[$p]:-}" ] || die "package $p is not available from apt (apt-get update?)"
done

full_key() {
    local p
    {
        testos_inputs
        for p in "${ALL_PACKAGES[@]}"; do
            echo "$p ${PKG_VERSION[$p]} ${PKG_SHA256[$p]}"
        done
        dpkg-query -W -f '${Package} ${Version}\n' xorriso cpio gzip kmod \
            console-setup kbd xkb-data 2>/dev/null || true
    } | sha256sum | cut -d' ' -f1
}
FULL=$(full_key)
if [ -f "$OUT" ] && [ "$(stamp_field full)" = "$FULL" ]; then
    write_stamp "$FULL" "$QUICK"
    log "up to date: $OUT (package versions unchanged)"
    printf '%s\n' "$OUT"
    exit 0
fi

log "building $OUT (kernel $KVER)"

# --- download the .debs -------------------------------------------------------------
deb_path() { # PACKAGE
    local p=$1 v=${PKG_VERSION[$1]}
    printf '%s/%s_%s_%s.deb\n' "$DEB_DIR" "$p" "${v//:/%3a}" "${PKG_ARCH[$p]}"
}

mkdir -p "$DEB_DIR"
exec 8>"$CACHE/.lock"
flock 8
to_fetch=()
for p in "${ALL_PACKAGES[@]}"; do
    f=$(deb_path "$p")
    if [ -f "$f" ] && [ "$(sha256sum "$f" | cut -d' ' -f1)" = "${PKG_SHA256[$p]}" ]; then
        continue
    fi
    rm -f "$f"
    to_fetch+=("$p=${PKG_VERSION[$p]}")
done
if [ "${#to_fetch[@]}" -gt 0 ]; then
    log "downloading: ${to_fetch[*]}"
    (cd "$DEB_DIR" && apt-get download "${APT_OPTS[@]}" "${to_fetch[@]}") >&2 ||
        die "apt-get download failed"
fi
for p in "${ALL_PACKAGES[@]}"; do
    f=$(deb_path "$p")
    [ -f "$f" ] || die "apt-get download did not produce $f"
    [ "$(sha256sum "$f" | cut -d' ' -f1)" = "${PKG_SHA256[$p]}" ] || die "checksum mismatch: $f"
done
# Drop superseded versions (the kernel .deb is ~70 MB).
keep=$(for p in "${ALL_PACKAGES[@]}"; do deb_path "$p"; done)
for f in "$DEB_DIR"/*.deb; do
    [ -e "$f" ] || continue
    grep -qxF "$f" <<<"$keep" && continue
    name=${f##*/}
    name=${name%%_*}
    if [[ $name == linux-image-*-amd64 ]] || printf '%s\n' "${PACKAGES[@]}" | grep -qxF "$name"; then
        log "removing superseded $f"
        rm -f "$f"
    fi
done
flock -u 8

# --- unpack -------------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kiln-testos.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
U=$WORK/unpacked
mkdir -p "$U"
log "unpacking ${#ALL_PACKAGES[@]} packages"
for p in "${ALL_PACKAGES[@]}"; do
    dpkg-deb -x "$(deb_path "$p")" "$U"
done
[ -f "$U/boot/vmlinuz-$KVER" ] || die "$KERNEL_PKG has no /boot/vmlinuz-$KVER"
depmod -b "$U" "$KVER"

# --- kernel modules (modules.list + dependencies) ---------------------------------------
MODDIR=lib/modules/$KVER
M=$WORK/modules # a tree holding only $MODDIR
mkdir -p "$M/$MODDIR"
MODULE_NAMES=$(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$TESTOS_DIR/modules.list")
# shellcheck disable=SC2086 # one module name per word
mapfile -t MODULE_FILES < <(awk -v want="$(printf '%s ' $MODULE_NAMES)" \
    -v builtin="$U/$MODDIR/modules.builtin" '
    function modname(path,   n) { n = path; sub(/.*\//, "", n); sub(/\.ko(\.[a-z]+)?$/, "", n); gsub(/-/, "_", n); return n }
    BEGIN {
        n = split(want, w, " "); for (i = 1; i <= n; i++) { gsub(/-/, "_", w[i]); W[w[i]] = 1 }
        while ((getline line < builtin) > 0) B[modname(line)] = 1
    }
    {
        path = $1; sub(/:$/, "", path); name = modname(path)
        if (name in W) { found[name] = 1; print path; for (i = 2; i <= NF; i++) print $i }
    }
    END {
        for (k in W) if (!(k in found) && !(k in B)) { print "unknown module " k > "/dev/stderr"; bad = 1 }
        exit bad
    }' "$U/$MODDIR/modules.dep" | sort -u) || die "modules.list names a module the kernel does not have"
for f in "${MODULE_FILES[@]}"; do
    mkdir -p "$M/$MODDIR/${f%/*}"
    cp "$U/$MODDIR/$f" "$M/$MODDIR/$f"
done
cp "$U/$MODDIR/modules.builtin" "$U/$MODDIR/modules.builtin.modinfo" "$M/$MODDIR/"
printf '%s\n' "${MODULE_FILES[@]}" | grep -xFf - "$U/$MODDIR/modules.order" >"$M/$MODDIR/modules.order" || true
depmod -b "$M" "$KVER"
log "kernel modules: ${#MODULE_FILES[@]} files"

# --- helpers to assemble the image trees ---------------------------------------------------
# install_busybox ROOT: busybox and its applet symlinks.
install_busybox() {
    local root=$1 applet
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin}
    cp "$U/bin/busybox" "$root/bin/busybox"
    while read -r applet; do
        case "$applet" in bin/busybox | linuxrc | */linuxrc) continue ;; esac
        [ -e "$root/$applet" ] || [ -L "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
    done < <("$U/bin/busybox" --list-full)
}

# install_libs ROOT BINARY...: the shared libraries the binaries need, found
# by ldd (the unpacked glibc's loader, "ld.so --list", which is what ldd runs)
# among the unpacked packages only.
install_libs() {
    local root=$1 ldso=$U/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 bin soname arrow path rest
    local libpath=$U/lib/x86_64-linux-gnu:$U/usr/lib/x86_64-linux-gnu:$U/usr/libexec/sudo
    shift
    mkdir -p "$root/lib/x86_64-linux-gnu" "$root/lib64"
    for bin in "$@"; do
        "$ldso" --library-path "$libpath" --list "$bin" || die "ldd $bin failed"
    done | sort -u | while read -r soname arrow path rest; do
        [ "$arrow" = "=>" ] || continue
        case "$soname" in /*) continue ;; esac
        case "$path" in
        "$U"/*) cp -L "$path" "$root/lib/x86_64-linux-gnu/$soname" ;;
        *) die "library $soname ($path) is not in the unpacked packages; add its package to PACKAGES" ;;
        esac
    done
    cp -L "$ldso" "$root/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
    ln -sfn ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$root/lib64/ld-linux-x86-64.so.2"
}

# install_file SRC DEST: copy one file from scripts/testos with a normalised
# mode (0755 if executable in the checkout, else 0644).
install_file() {
    mkdir -p "$(dirname "$2")"
    cp "$1" "$2"
    if [ -x "$1" ]; then chmod 0755 "$2"; else chmod 0644 "$2"; fi
}

# install_tree SRC DEST: install_file for every file under SRC.
install_tree() {
    local src=$1 dest=$2 f
    while IFS= read -r -d '' f; do
        install_file "$src/$f" "$dest/$f"
    done < <(cd "$src" && find . -type f -printf '%P\0')
}

install_modules() { # ROOT
    mkdir -p "$1/lib/modules"
    cp -R "$M/$MODDIR" "$1/lib/modules/"
    sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$TESTOS_DIR/modules.list" >"$1/etc/modules"
    chmod 0644 "$1/etc/modules"
}

# make_cpio_gz DIR OUT: reproducible gzip'ed newc cpio archive of DIR.
make_cpio_gz() {
    find "$1" -exec touch -h -d "@$EPOCH" {} +
    (cd "$1" && find . -mindepth 1 -printf '%P\0' | sort -z |
        cpio --null -o -H newc -R 0:0 --reproducible --quiet) | gzip -n -9 >"$2"
}

# --- the installed system's root file system ---------------------------------------------
log "assembling the installed system"
R=$WORK/rootfs
mkdir -p "$R"/{boot,dev,etc/dropbear,home,mnt,proc,root,run,sys,tmp,var/log,usr/lib/kiln-testos}
chmod 0700 "$R/root"
chmod 1777 "$R/tmp"
ln -s ../run "$R/var/run"
install_busybox "$R"
install -m 0755 "$U/usr/sbin/dropbear" "$R/usr/sbin/dropbear"
install -m 0755 "$U/usr/bin/dropbearkey" "$R/usr/bin/dropbearkey"
# What a Vagrant box needs besides SSH: sudo (the installer gives the answer file's
# user a NOPASSWD rule) with the two PAM modules /etc/pam.d/sudo names, and scp
# (Vagrant uploads files with it).
PAM_DIR=lib/x86_64-linux-gnu/security
install -D -m 4755 "$U/usr/bin/sudo" "$R/usr/bin/sudo"
install -D -m 0644 "$U/usr/libexec/sudo/sudoers.so" "$R/usr/libexec/sudo/sudoers.so"
install -D -m 0644 "$U/$PAM_DIR/pam_permit.so" "$R/$PAM_DIR/pam_permit.so"
install -D -m 0644 "$U/$PAM_DIR/pam_deny.so" "$R/$PAM_DIR/pam_deny.so"
install -m 0755 "$U/usr/bin/scp" "$R/usr/bin/scp"
install_libs "$R" "$U/usr/sbin/dropbear" "$U/usr/bin/dropbearkey" "$U/usr/bin/sudo" \
    "$U/usr/libexec/sudo/sudoers.so" "$U/$PAM_DIR/pam_permit.so" "$U/$PAM_DIR/pam_deny.so" "$U/usr/bin/scp"
install_tree "$TESTOS_DIR/rootfs" "$R"
chmod 0440 "$R/etc/sudoers"
mkdir -p "$R/etc"
install_modules "$R"

# Its initramfs: loads the disk/ext4 modules and switch_roots to the disk.
I=$WORK/initramfs
mkdir -p "$I"/{dev,etc,newroot,proc,sys,usr/lib/kiln-testos}
install_busybox "$I"
install_file "$TESTOS_DIR/initramfs/init" "$I/init"
install_file "$TESTOS_DIR/rootfs/usr/lib/kiln-testos/common.sh" "$I/usr/lib/kiln-testos/common.sh"
install_modules "$I"
make_cpio_gz "$I" "$R/boot/initrd.img-$KVER"
chmod 0644 "$R/boot/initrd.img-$KVER"
install -m 0644 "$U/boot/vmlinuz-$KVER" "$R/boot/vmlinuz-$KVER"

# --- the installer initrd ----------------------------------------------------------------------
log "assembling the installer"
N=$WORK/installer
mkdir -p "$N"/{dev,etc,mnt/target,proc,root,run,sys,tmp,payload,usr/lib/kiln-testos}
chmod 1777 "$N/tmp"
install_busybox "$N"
install_file "$TESTOS_DIR/installer/init" "$N/init"
install_file "$TESTOS_DIR/installer/extlinux.conf.in" "$N/usr/share/kiln-testos/extlinux.conf.in"
install_file "$TESTOS_DIR/rootfs/usr/lib/kiln-testos/common.sh" "$N/usr/lib/kiln-testos/common.sh"
install_file "$TESTOS_DIR/rootfs/usr/share/udhcpc/default.script" "$N/usr/share/udhcpc/default.script"
install -m 0755 "$U/usr/bin/extlinux" "$N/usr/bin/extlinux"
install_libs "$N" "$U/usr/bin/extlinux"
install -D -m 0644 "$U/usr/lib/syslinux/mbr/mbr.bin" "$N/usr/lib/syslinux/mbr/mbr.bin"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$N/etc/passwd"
printf 'root:x:0:\n' >"$N/etc/group"
install_modules "$N"
cp -a "$R" "$N/payload/rootfs"

# --- the typing-check initrd (isolinux label "typing") ------------------------------------
T=$WORK/typing
mkdir -p "$T"/{dev,proc}
install_busybox "$T"
install_file "$TESTOS_DIR/typing/init" "$T/init"
mkdir -p "$T/usr/share/kiln-testos/keymaps"
for layout in "${KBD_LAYOUTS[@]}"; do
    ckbcomp -model pc105 "$layout" >"$WORK/$layout.kmap" || die "ckbcomp $layout failed"
    # -u: the layouts hold characters outside Latin-1 (loadkeys -b fails on them otherwise).
    loadkeys -u -b "$WORK/$layout.kmap" >"$T/usr/share/kiln-testos/keymaps/$layout.bmap" </dev/null ||
        die "loadkeys -b $layout failed"
done

# --- the fault-variant initrd (isolinux labels "panic" and "bootloop") --------------------
F=$WORK/fault
mkdir -p "$F"/{dev,etc,proc,sys,tmp,usr/lib/kiln-testos}
install_busybox "$F"
install_file "$TESTOS_DIR/fault/init" "$F/init"
install_file "$TESTOS_DIR/rootfs/usr/lib/kiln-testos/common.sh" "$F/usr/lib/kiln-testos/common.sh"
install_modules "$F"

# --- the ISO ------------------------------------------------------------------------------------------
log "writing the ISO"
S=$WORK/iso
mkdir -p "$S/isolinux"
install -m 0644 "$U/usr/lib/ISOLINUX/isolinux.bin" "$S/isolinux/isolinux.bin"
install -m 0644 "$U/usr/lib/syslinux/modules/bios/ldlinux.c32" "$S/isolinux/ldlinux.c32"
install_tree "$TESTOS_DIR/isolinux" "$S/isolinux"
install -m 0644 "$U/boot/vmlinuz-$KVER" "$S/isolinux/vmlinuz"
make_cpio_gz "$N" "$S/isolinux/initrd.gz"
chmod 0644 "$S/isolinux/initrd.gz"
make_cpio_gz "$T" "$S/isolinux/typing.gz"
chmod 0644 "$S/isolinux/typing.gz"
make_cpio_gz "$F" "$S/isolinux/fault.gz"
chmod 0644 "$S/isolinux/fault.gz"
find "$S" -exec touch -h -d "@$EPOCH" {} +

TMP_ISO=$OUT.tmp.$$
trap 'rm -rf "$WORK"; rm -f "$TMP_ISO"' EXIT
isolinux_iso "$TMP_ISO" "$VOLUME_ID" "$U/usr/lib/ISOLINUX/isohdpfx.bin" "$S"

rm -f "$STAMP_FILE"
mv -f "$TMP_ISO" "$OUT"
write_stamp "$FULL" "$QUICK"
log "done: $OUT ($(du -h "$OUT" | cut -f1))"
printf '%s\n' "$OUT"
