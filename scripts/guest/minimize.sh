#!/bin/sh
# Makes the disk image small: the free blocks of the guest's file systems are
# handed back, so the compacted qcow2 (and the box) holds only used data.
#
# How: fstrim tells the virtual disk which blocks are free; with the
# boot-configs' disk_discard = "unmap" QEMU punches them out of the qcow2. If
# fstrim is missing or the file system cannot trim, free space is overwritten
# with zeros instead; disk_detect_zeroes = "unmap" turns those zero writes into
# holes too, so the image does not grow to its full size on the way. Either
# way kiln's compaction (qemu-img convert) then leaves the holes out.
# Idempotent. Runs as root under `sh -eux`; last, after cleanup.sh.
set -eu

sync
if command -v fstrim >/dev/null 2>&1 && fstrim -av; then
    exit 0
fi

echo "minimize.sh: fstrim unavailable; zero-filling free space"
for mount_point in / /boot; do
    [ -d "$mount_point" ] || continue
    fill=$mount_point/.kiln-zero-fill
    # dd stops with "No space left on device": expected, not an error.
    dd if=/dev/zero of="$fill" bs=1M 2>/dev/null || true
    sync
    rm -f "$fill"
done
sync
