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
