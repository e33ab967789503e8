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
source tests/fixtures/registry.sh berth-shots

cargo build --locked -p berth-app -p berth-agent
out=$root/docs/screenshots
rm -rf "$out.new"
BERTH_GUI_SCREENSHOTS=$out.new cargo nextest run --locked -p berth-e2e --test gui -E 'test(=tour::every_view_shows_a_real_workload)'
rm -rf "$out"
mv "$out.new" "$out"
ls -1 "$out"
