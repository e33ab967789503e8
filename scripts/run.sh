#!/usr/bin/env bash
# Sets up and runs Berth on this machine (root, Debian 12).
#
#   scripts/run.sh              boot Berth's VM, forward its Docker socket, then open the desktop
#                               app when there is a display (headless otherwise)
#   scripts/run.sh --headless   the same, never the app
#   scripts/run.sh --native     run the engine directly on this Linux host, no VM (headless)
#
# Then: docker --context berth ps   (or DOCKER_HOST=unix://$HOME/.berth/run/docker.sock)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/berth/target}"
mode=vm
gui=auto
case "${1:-}" in
    --native) mode=native ;;
    --headless) gui=no ;;
    "") ;;
    *) echo "run.sh: unknown argument $1 (--native, --headless)" >&2; exit 2 ;;
esac
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then gui=no; fi

bash tests/fixtures/deps.sh
cargo build --release --locked -p berth-agent
if [ "$mode" = vm ]; then
    bash scripts/install-vm-tools.sh
    bash vm-image/build.sh
    cargo build --release --locked -p berth-cli
    # Boots the VM under a background supervisor, waits for the Docker API, creates the `berth`
    # docker context. `berth stop` shuts it down; `berth logs -f` shows the console.
    "$CARGO_TARGET_DIR/release/berth" start
    if [ "$gui" = auto ]; then
        # The app and its tray show the VM's state and start/stop it; the VM keeps running
        # when the app quits (`berth stop` ends it).
        exec bash scripts/desktop.sh
    fi
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
