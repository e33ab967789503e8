#!/usr/bin/env bash
# Regenerates docs/screenshots/*.png: the GUI tour test (tests/gui/tour.rs) runs the real app
# under Xvfb against a fresh engine holding a small real workload (a compose project, logging
# containers, images, volumes, networks) and saves a picture of every view it checks.
#
#   scripts/screenshots.sh        (needs the GUI packages: scripts/install-gui-deps.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/berth/target}"

bash scripts/install-gui-deps.sh
python3 tests/fixtures/images.py build >/dev/null
regdir=$(mktemp -d /tmp/berth-shots-registry.XXXXXX)
cleanup() { python3 "$root/tests/fixtures/registry.py" stop --dir "$regdir" >/dev/null 2>&1 || true; rm -rf "$regdir"; }
trap cleanup EXIT
BERTH_TEST_REGISTRY=$(python3 tests/fixtures/registry.py start --dir "$regdir" | tail -n1)
export BERTH_TEST_REGISTRY
python3 tests/fixtures/registry.py fill --registry "$BERTH_TEST_REGISTRY" >/dev/null

cargo build --locked -p berth-app -p berth-agent
out=$root/docs/screenshots
rm -rf "$out.new"
BERTH_GUI_SCREENSHOTS=$out.new cargo nextest run --locked -p berth-e2e --test gui -E 'test(=tour::every_view_shows_a_real_workload)'
rm -rf "$out"
mv "$out.new" "$out"
ls -1 "$out"
