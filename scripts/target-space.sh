#!/usr/bin/env bash
# Makes room for a build in CARGO_TARGET_DIR before one starts. A full disk makes the linker die
# with SIGBUS and rustc fail mid-write, which reads as a broken commit; this turns that into a
# colder build instead. Frees in order of what is cheapest to rebuild: incremental caches (the
# suite builds with CARGO_INCREMENTAL=0 and never needs them), then every profile's output.
set -euo pipefail
target=${CARGO_TARGET_DIR:?CARGO_TARGET_DIR must be set}
# 12 GiB: what a warm build adds when the workspace crates rebuild (a clean clone), with margin.
need_gib=${BERTH_BUILD_SPACE_GIB:-12}
mkdir -p "$target"

free_gib() { df --output=avail -BG "$target" | tail -n1 | tr -dc '0-9'; }

enough() { [ "$(free_gib)" -ge "$need_gib" ]; }

if enough; then exit 0; fi
echo "target-space: $(free_gib) GiB free under $target, want $need_gib: removing incremental caches"
find "$target" -maxdepth 3 -type d -name incremental -prune -exec rm -rf {} +
if enough; then exit 0; fi
echo "target-space: $(free_gib) GiB free, still short: removing build output (next build is cold)"
find "$target" -mindepth 1 -maxdepth 1 ! -name CACHEDIR.TAG -exec rm -rf {} +
if ! enough; then
    echo "target-space: only $(free_gib) GiB free with an empty target; the build may run out of disk" >&2
fi
