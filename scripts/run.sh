#!/usr/bin/env bash
# Sets up and runs Berth on this machine (root, Debian 12), headless.
#
#   scripts/run.sh            boot Berth's VM and forward its Docker socket (needs the VM parts)
#   scripts/run.sh --native   run the engine directly on this Linux host, no VM
#
# Then: docker --context berth ps   (or DOCKER_HOST=unix://$HOME/.berth/run/docker.sock)
# The desktop app is separate and optional: scripts/desktop.sh (needs a display).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/berth/target}"
mode=vm
[ "${1:-}" = "--native" ] && mode=native

bash tests/fixtures/deps.sh
cargo build --release --locked -p berth-agent
if [ "$mode" = vm ]; then
    bash scripts/install-vm-tools.sh
    bash vm-image/build.sh
    cargo build --release --locked -p berth-cli
    # Boots the VM under a background supervisor, waits for the Docker API, creates the `berth`
    # docker context. `berth stop` shuts it down; `berth logs -f` shows the console.
    "$CARGO_TARGET_DIR/release/berth" start
    exec "$CARGO_TARGET_DIR/release/berth" status
fi

state="$HOME/.berth"
mkdir -p "$state/run" "$state/native"
sock="$state/run/docker.sock"
echo "Berth engine (native) on unix://$sock"
docker context rm -f berth >/dev/null 2>&1 || true
docker context create berth --docker "host=unix://$sock" >/dev/null
echo "Use it with: docker --context berth ps   (or: docker context use berth)"
exec "$CARGO_TARGET_DIR/release/berth-agent" -H "unix://$sock" --data-root "$state/native/data" \
    --exec-root "$state/native/run" --pidfile "$state/native/berth-agent.pid"
