#!/bin/sh
# Installs cargo-deny (the dependency policy check that scripts/test.sh runs with deny.toml),
# pinned, from Cargo's registry into $BERTH_TOOLS/bin (default ~/.cache/berth/tools), as
# install-gui-deps.sh installs tauri-driver. Skipped when that version is there.
# Usage: scripts/install-cargo-deny.sh [--print]
set -eu

TOOLS="${BERTH_TOOLS:-$HOME/.cache/berth/tools}"
CARGO_DENY_VERSION="${CARGO_DENY_VERSION:-0.20.2}"

have_deny() {
    cargo install --list --root "$TOOLS" 2>/dev/null | grep -q "^cargo-deny v$CARGO_DENY_VERSION:"
}

if [ "${1:-}" = "--print" ]; then
    if have_deny; then echo "cargo-deny $CARGO_DENY_VERSION: installed"; else echo "cargo-deny $CARGO_DENY_VERSION: missing"; fi
    exit 0
fi

if ! have_deny; then
    # Its own build directory: the workspace's target dir keeps only the workspace.
    build=$(mktemp -d /tmp/berth-cargo-deny.XXXXXX)
    trap 'rm -rf "$build"' EXIT
    cargo install --locked --root "$TOOLS" --target-dir "$build" "cargo-deny@$CARGO_DENY_VERSION"
fi
