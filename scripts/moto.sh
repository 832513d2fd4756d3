#!/usr/bin/env bash
# Installs the EC2 emulator the amazon-ebs tests run against: moto (PyPI) in its own virtualenv,
# with only what its server needs for EC2 (flask), not the 300 MB `moto[server]` extra.
# Prints the path of `moto_server`. The tests find it there (or at $KILN_MOTO_SERVER).
# Usage: scripts/moto.sh   (scripts/test.sh runs it)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh

MOTO_VERSION=5.2.5
VENV=${KILN_MOTO_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln-test/moto-$MOTO_VERSION}
SERVER=$VENV/bin/moto_server

# Debian's Python with its venv module (not whatever python3 comes first on PATH);
# scripts/test.sh asks for the same packages in its own single transaction.
ensure_commands "${KILN_MOTO_DEPS[@]}"

if [[ ! -x $SERVER || ! -e $VENV/.kiln-complete ]]; then
    echo "==> installing moto $MOTO_VERSION into $VENV" >&2
    rm -rf "$VENV"
    /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "moto==$MOTO_VERSION" "flask<4" "flask-cors<7" >&2
    # The server must start and answer EC2 for the install to count.
    "$VENV/bin/python" -c 'import moto.server, moto.ec2' >&2
    touch "$VENV/.kiln-complete"
fi
echo "$SERVER"
