#!/bin/sh
# Boot-to-API of the amd64 and the arm64 guest under TCG on this machine, each figure beside the
# other, in one run: `berth start` (first boot, formats the data disk) and again (second boot),
# and each image's file sizes.
#   bench/vm-arch.sh   (needs: cargo build -p berth-cli, vm-image/build.sh and
#                       vm-image/build.sh --arch arm64)
# Env: BERTH_VM_CACHE (images), BERTH_TOOLS, BERTH_BIN.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
BERTH=${BERTH_BIN:-${CARGO_TARGET_DIR:-$here/../target}/debug/berth}
CACHE=${BERTH_VM_CACHE:-/root/.cache/berth/vm-image}
TOOLS=${BERTH_TOOLS:-/root/.cache/berth/tools}
H=
cleanup() { [ -z "$H" ] || { "$BERTH" --home "$H" stop >/dev/null 2>&1 || true; rm -rf "$H"; }; }
trap cleanup EXIT INT TERM
ms() { echo $((($(date +%s%N) - $1) / 1000000)); }

for arch in amd64 arm64; do
    img=$CACHE/out
    [ "$arch" = amd64 ] || img=$CACHE/$arch/out
    echo "$arch image ($img):"
    jq -r '.artifacts | to_entries[] | "  \(.key): \(.value.size / 1048576 * 10 | floor / 10) MiB"' "$img/manifest.json"
    H=$(mktemp -d /tmp/berth-arch-XXXXXX)
    cat >"$H/config.json" <<JSON
{"cpus":2,"memory_mib":1024,"disk_gib":4,"shares":[],"image_dir":"$img","tools_dir":"$TOOLS",
 "accel":"tcg","registry_mirrors":[],"max_restarts":1,"auto_pause_secs":0}
JSON
    for boot in "first boot, formats disk" "second boot"; do
        t=$(date +%s%N)
        "$BERTH" --home "$H" start --timeout 900 >/dev/null
        echo "  berth start ($boot) -> API ready: $(ms "$t") ms"
        "$BERTH" --home "$H" stop >/dev/null
    done
    rm -rf "$H"
    H=
done
