#!/usr/bin/env bash
# Builds and launches Berth's desktop app (src-tauri/ + ui/) on this machine's display.
#
#   scripts/desktop.sh            debug build (fast to build; the UI is embedded either way)
#   scripts/desktop.sh --release  optimised build (LTO: slow to build on 2 cores)
#
# The app talks to the engine socket it resolves (BERTH_DOCKER_HOST, its saved setting,
# DOCKER_HOST, else ~/.berth/run/docker.sock) and starts/stops the VM with the `berth` CLI built
# next to it. Without a display, use scripts/run.sh (headless).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/berth/target}"

if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
    echo "desktop.sh: no display (DISPLAY/WAYLAND_DISPLAY unset); run Berth headless with scripts/run.sh" >&2
    exit 1
fi

profile=debug
flags=()
if [ "${1:-}" = "--release" ]; then
    profile=release
    flags=(--release --features berth-app/custom-protocol)
fi

bash scripts/install-gui-deps.sh
cargo build --locked "${flags[@]}" -p berth-app -p berth-cli
app="$CARGO_TARGET_DIR/$profile/berth-app"
echo "desktop.sh: launching $app (logs: ~/.local/share/dev.berth.app/logs/berth-app.log)"
# A session bus when there is none (a bare X server): the tray's appindicator wants one.
if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ] && command -v dbus-run-session >/dev/null; then
    exec dbus-run-session -- "$app"
fi
exec "$app"
