# shellcheck shell=bash
# A throwaway OpenSSH server on 127.0.0.1 for the benchmarks: root logs in with a key; SFTP is
# served. Usage: source this file, then
#   sshd_setup DIR   host and client keys (DIR/client_key), authorized_keys and DIR/sshd_config
#                    on a free port, which it puts in $sshd_port;
#   sshd_start DIR   runs sshd in the background ($sshd_pid) and waits until it accepts
#                    connections. The caller stops it (kill "$sshd_pid").

sshd_setup() {
    local dir=$1
    mkdir -p /run/sshd
    ssh-keygen -q -t ed25519 -N "" -f "$dir/host_key"
    ssh-keygen -q -t ed25519 -N "" -f "$dir/client_key"
    cp "$dir/client_key.pub" "$dir/authorized_keys"
    sshd_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    cat >"$dir/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $sshd_port
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
StrictModes no
UsePAM no
Subsystem sftp internal-sftp
CONF
}

sshd_start() {
    local dir=$1
    /usr/sbin/sshd -D -f "$dir/sshd_config" -E "$dir/sshd.log" &
    # shellcheck disable=SC2034 # read by the scripts that source this file
    sshd_pid=$!
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$sshd_port") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "error: sshd did not listen on 127.0.0.1:$sshd_port (see $dir/sshd.log)" >&2
    return 1
}
