#!/usr/bin/env bash
# Sets up and runs Berth's whole test suite on a fresh Debian 12 machine (root):
# packages, VM tools and image, build, static checks, then every test tier (unit, component,
# end-to-end with the real docker CLI, VM under QEMU, the desktop app in a real webview under Xvfb),
# then the macOS and Windows builds (scripts/test-xplat.sh).
#
# Build output is cached outside the clone (CARGO_TARGET_DIR, default ~/.cache/berth/target) so
# repeated runs and CI are incremental.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/berth/target}"
export CARGO_TERM_COLOR=never
# Clean clones rebuild the workspace crates anyway; incremental caches only cost disk (~8 GB).
export CARGO_INCREMENTAL=0
export RUST_BACKTRACE=1

step() { printf '\n==> %s (%ss)\n' "$*" "$SECONDS"; }

step "packages"
bash tests/fixtures/deps.sh
bash scripts/install-gui-deps.sh
bash scripts/install-docker-plugins.sh
sh tests/fixtures/devcontainers-cli.sh
bash scripts/install-cargo-deny.sh
if [ -x scripts/install-vm-tools.sh ]; then bash scripts/install-vm-tools.sh; fi

step "disk space for the build"
bash scripts/target-space.sh

step "static checks: fmt, clippy, cargo deny"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Licences, bans and sources of the dependency graph (deny.toml says why no advisories). Not
# --offline: the graph of every platform needs crates (Android, macOS, Windows) that Linux
# builds never download; cargo fetches them from the default registry as a build would.
"${BERTH_TOOLS:-$HOME/.cache/berth/tools}/bin/cargo-deny" check licenses bans sources

step "build"
cargo build --workspace --all-targets --locked
if [ -x vm-image/build.sh ]; then
    step "VM image"
    bash vm-image/build.sh
fi

step "fixtures: offline images and a loopback registry"
source tests/fixtures/registry.sh berth-ci
echo "registry: $BERTH_TEST_REGISTRY"

step "fixtures self-test"
# Only what failed is shown (and the count); the exit status says whether all passed.
bash tests/fixtures/selftest.sh | grep -v '^ok '

step "tests"
cargo nextest run --workspace --profile ci --locked "$@"

step "other OSes: clippy for macOS, the Windows build and its host tests under wine"
bash scripts/test-xplat.sh
step "done"
