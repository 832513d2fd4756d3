# Shared shell helpers of the kiln test OS.
#
# Sourced (never executed) by busybox ash in all three stages: the installer's
# /init, the installed system's initramfs /init and its /etc/init.d/rc* scripts.
# The build script copies this file into each image at
# /usr/lib/kiln-testos/common.sh.
# shellcheck shell=sh

KILN_TAG=kiln-testos

# say MESSAGE...
# Print "kiln-testos: MESSAGE" on the serial port (kiln records it) and on the
# VGA console. /dev/console is tty0 here (the last console= wins), so the
# serial port is written to directly.
say() {
    _kiln_msg="$KILN_TAG: $*"
    for _kiln_tty in /dev/ttyS0 /dev/tty0; do
        if [ -c "$_kiln_tty" ]; then
            printf '%s\n' "$_kiln_msg" >"$_kiln_tty" 2>/dev/null
        fi
    done
    return 0
}

# rescue_shell: interactive shells on ttyS0 (foreground, forever) and tty1.
# Never returns: in an init this must not exit, or the kernel panics.
rescue_shell() {
    say "dropping to a shell on ttyS0 (and tty1); fix things by hand or power off"
    if [ -c /dev/tty1 ]; then
        (while :; do setsid -c sh -i <>/dev/tty1 >&0 2>&1; sleep 1; done) &
    fi
    while :; do
        setsid -c sh -i <>/dev/ttyS0 >&0 2>&1
        sleep 1
    done
}

# fail MESSAGE...: report an error and drop to the rescue shell (no reboot loop).
fail() {
    say "ERROR: $*"
    rescue_shell
}

# load_modules FILE: modprobe every module named in FILE (one per line,
# '#' comments allowed). Missing hardware is not an error.
load_modules() {
    [ -r "$1" ] || return 0
    while read -r _kiln_mod _kiln_rest; do
        case "$_kiln_mod" in '' | '#'*) continue ;; esac
        modprobe "$_kiln_mod" 2>/dev/null || say "warning: could not load module $_kiln_mod"
    done <"$1"
    return 0
}

# first_netdev: print the name of the first network interface that is not lo
# (eth0 here: there is no udev renaming). Waits up to 10 s for it to appear.
first_netdev() {
    _kiln_i=0
    while [ "$_kiln_i" -lt 50 ]; do
        for _kiln_dev in /sys/class/net/*; do
            _kiln_dev=${_kiln_dev##*/}
            case "$_kiln_dev" in lo | '*') continue ;; esac
            printf '%s\n' "$_kiln_dev"
            return 0
        done
        sleep 0.2
        _kiln_i=$((_kiln_i + 1))
    done
    return 1
}
