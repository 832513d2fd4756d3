#!/usr/bin/env bash
# Ansible: one playbook (facts, copy, template, handler, commands) run by `kiln build` of a
# `null` source through `provisioner "ansible"`, against `ansible-playbook` run by hand on the
# same host and playbook: once as a user types it (Ansible's defaults), once with the settings
# kiln uses (pipelining), which leaves kiln's own overhead. Best of RUNS (default 3) each; every
# run starts without an SSH control master (each run's masters are stopped after it).
# Starts its own sshd on 127.0.0.1 (root, key login, SFTP) and stops it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh
# shellcheck source=scripts/lib/sshd.sh
source scripts/lib/sshd.sh
ensure_commands /usr/sbin/sshd:openssh-server ssh:openssh-client ansible-playbook:ansible-core bc:bc
kiln=${KILN:-target/release/kiln}
runs=${RUNS:-3}

work=$(mktemp -d)
sshd_pid=""
cleanup() {
    if [ -n "$sshd_pid" ]; then kill "$sshd_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/out"
sshd_setup "$work"
port=$sshd_port
sshd_start "$work"

cat >"$work/play.yml" <<'YAML'
- hosts: default
  tasks:
    - copy: { content: "{{ ansible_facts['hostname'] }} {{ packer_build_name }}\n", dest: "{{ out }}/facts" }
    - template: { src: motd.j2, dest: "{{ out }}/motd" }
      notify: handled
    - command: uname -a
    - command: id
    - file: { path: "{{ out }}/dir", state: directory, mode: "0755" }
    - lineinfile: { path: "{{ out }}/motd", line: "one more line" }
    - stat: { path: "{{ out }}/facts" }
  handlers:
    - name: handled
      command: touch {{ out }}/handled
YAML
echo 'welcome to {{ ansible_facts["hostname"] }}' >"$work/motd.j2"
echo "default ansible_host=127.0.0.1 ansible_user=root ansible_port=$port" >"$work/inventory"
cat >"$work/bench.pkr.hcl" <<HCL
source "null" "bench" {
  ssh_host             = "127.0.0.1"
  ssh_port             = $port
  ssh_username         = "root"
  ssh_private_key_file = "$work/client_key"
}
build {
  sources = ["source.null.bench"]
  provisioner "ansible" {
    playbook_file   = "$work/play.yml"
    extra_arguments = ["-e", "out=$work/out"]
  }
}
HCL

now() { date +%s.%N; }
# Stops the SSH control masters a hand run left in its control directory.
stop_masters() {
    local socket
    for socket in "$1"/*; do
        [ -S "$socket" ] && ssh -o ControlPath="$socket" -O exit x 2>/dev/null
    done
    rm -rf "$1"
}
# by_hand EXTRA_ENV...: one hand run's seconds.
by_hand() {
    local cp="$work/cp.$RANDOM" t0 t1
    t0=$(now)
    env ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_SSH_CONTROL_PATH_DIR="$cp" "$@" \
        ansible-playbook -i "$work/inventory" --private-key "$work/client_key" \
        -e "{\"packer_build_name\": \"bench\", \"packer_builder_type\": \"null\", \"out\": \"$work/out\"}" \
        "$work/play.yml" >"$work/hand.log" 2>&1
    t1=$(now)
    stop_masters "$cp"
    echo "$t1 - $t0" | bc -l
}
by_kiln() {
    local t0 t1
    t0=$(now)
    "$kiln" build "$work/bench.pkr.hcl" >"$work/kiln.log" 2>&1
    t1=$(now)
    echo "$t1 - $t0" | bc -l
}
best() { printf '%s\n' "$@" | sort -g | head -1; }

hand=() hand_pipelined=() kiln_s=()
for _ in $(seq "$runs"); do
    hand+=("$(by_hand)")
    hand_pipelined+=("$(by_hand ANSIBLE_PIPELINING=True)")
    kiln_s+=("$(by_kiln)")
done
h=$(best "${hand[@]}")
hp=$(best "${hand_pipelined[@]}")
k=$(best "${kiln_s[@]}")
printf '%-52s %8s\n' "one playbook, 10 tasks, best of $runs" seconds
printf '%-52s %8.2f\n' "ansible-playbook by hand (Ansible's defaults)" "$h"
printf '%-52s %8.2f\n' "ansible-playbook by hand (pipelining, as kiln runs it)" "$hp"
printf '%-52s %8.2f\n' "kiln build (null source, provisioner \"ansible\")" "$k"
echo "overhead: kiln / by hand with the same settings = $(echo "scale=2; $k / $hp" | bc -l) (goal <= 1.1)"
echo "as users see it: kiln / by hand with Ansible's defaults = $(echo "scale=2; $k / $h" | bc -l)"
