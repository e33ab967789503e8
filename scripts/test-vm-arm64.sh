#!/usr/bin/env bash
# The arm64 guest end to end, opt-in (not in scripts/test.sh: emulating arm64 under TCG on an
# x86-64 machine takes minutes, docs/vm-image.md): builds the image with
# `vm-image/build.sh --arch arm64` (timed), then runs the ignored VM test
# `arm64_guest_runs_a_container_under_tcg` (boot, the docker CLI through the forwarded socket,
# an arm64 container, stop). Needs scripts/install-vm-tools.sh. Env: BERTH_VM_CACHE,
# CARGO_TARGET_DIR (as scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/berth/target}"
export CARGO_TERM_COLOR=never

t=$SECONDS
bash vm-image/build.sh --arch arm64 >/dev/null
echo "test-vm-arm64: image built in $((SECONDS - t)) s"
cargo build -p berth-cli --locked
cargo nextest run -p berth-e2e --test vm --profile ci --locked --run-ignored only \
    --no-capture -E 'test(arm64_guest_runs_a_container_under_tcg)'
