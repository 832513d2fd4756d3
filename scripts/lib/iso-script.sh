# shellcheck shell=bash
# The prologue the ISO-making scripts share: `log` and `die` named after the script, and
# `iso_script_args "$@"` printing the script's header comment for -h/--help and refusing more
# than one argument (the output path). Source it after setting SCRIPT_PATH.

log() { printf '%s: %s\n' "$(basename "${SCRIPT_PATH%.sh}")" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

iso_script_args() {
    case "${1:-}" in
    -h | --help)
        sed -n '2,/^$/s/^# \{0,1\}//p' "$SCRIPT_PATH" >&2
        exit 0
        ;;
    esac
    [ "$#" -le 1 ] || die "usage: $SCRIPT_PATH [OUTPUT.iso]"
}

# isolinux_iso OUTPUT VOLUME_ID ISOHDPFX_BIN TREE: a BIOS-bootable hybrid ISO of TREE (which
# holds isolinux/isolinux.bin), every file dated by its mtime and the volume by $ISO_DATE, so
# the same tree gives the same bytes.
isolinux_iso() {
    xorriso -as mkisofs -quiet \
        -o "$1" \
        -V "$2" -r \
        -b isolinux/isolinux.bin -c isolinux/boot.cat \
        -no-emul-boot -boot-load-size 4 -boot-info-table \
        -isohybrid-mbr "$3" \
        --modification-date="$ISO_DATE" --set_all_file_dates set_to_mtime \
        "$4" >&2 || die "xorriso failed"
}
