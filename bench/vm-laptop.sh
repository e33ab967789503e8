#!/bin/sh
# The VM as a laptop citizen (issue 11), each figure beside its baseline, in one run:
#  - memory: QEMU's resident size (VmRSS, guest RAM included) idle after boot, while a container
#    holds 1 GiB, and 30 s after it exited; with free-page reporting (default) and without
#    ("free_page_reporting": false). VM of 2 GiB.
#  - disk: the qcow2's allocated size before and after writing ~1 GiB into an image
#    (docker commit) and removing it; with discard (default: the agent trims after the
#    removal) and without ("disk_discard": false); then `berth disk compact` (online trim)
#    and, VM stopped, `berth disk compact` (offline rewrite).
#  - start: `berth start -v`'s phases (second boot).
#   bench/vm-laptop.sh   (needs: cargo build -p berth-cli, vm-image/build.sh, a registry in
#                         /root/.cache/berth/dev-registry.env or REGISTRY=127.0.0.1:PORT)
# Env: BERTH_VM_CACHE (image), BERTH_TOOLS, BERTH_BIN, ALLOC_MIB (1024), FILL_MIB (1024).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
BERTH=${BERTH_BIN:-${CARGO_TARGET_DIR:-$here/../target}/debug/berth}
IMG=${BERTH_VM_CACHE:-/root/.cache/berth/vm-image}/out
TOOLS=${BERTH_TOOLS:-/root/.cache/berth/tools}
ALLOC_MIB=${ALLOC_MIB:-1024}
FILL_MIB=${FILL_MIB:-1024}
[ -n "${REGISTRY:-}" ] || . /root/.cache/berth/dev-registry.env
BIN=$(mktemp -d /tmp/berth-laptop-bin-XXXXXX)
cc -static -O2 -o "$BIN/alloc" "$here/vm-alloc.c"
H=
cleanup() { [ -z "$H" ] || { "$BERTH" --home "$H" stop >/dev/null 2>&1 || true; rm -rf "$H"; }; rm -rf "$BIN"; }
trap cleanup EXIT INT TERM

# boot <extra config json>: a fresh state dir, started; sets H, DOCKER_HOST
boot() {
    H=$(mktemp -d /tmp/berth-laptop-XXXXXX)
    cat >"$H/config.json" <<JSON
{"cpus":2,"memory_mib":2048,"disk_gib":8,"shares":["$BIN"],"image_dir":"$IMG","tools_dir":"$TOOLS",
 "accel":"auto","registry_mirrors":["http://10.0.2.2:${REGISTRY##*:}"],"max_restarts":1 $1}
JSON
    "$BERTH" --home "$H" start >/dev/null
    export DOCKER_HOST=unix://$H/run/docker.sock
}
unboot() { "$BERTH" --home "$H" stop >/dev/null; rm -rf "$H"; H=; }
rss() { awk '/^VmRSS/ {print int($2/1024)}' "/proc/$(cat "$H/run/qemu.pid")/status"; }
alloc_mib() { echo $(( $(stat -c %b "$H/disk/data.qcow2") * 512 / 1048576 )); }

memory() { # $1 label, $2 extra config
    boot "$2"
    docker pull -q busybox >/dev/null
    docker run --rm busybox true
    sleep 20; idle=$(rss)
    docker run -d --name hog -v "$BIN:$BIN" busybox "$BIN/alloc" "$ALLOC_MIB" 20 >/dev/null
    until docker logs hog 2>/dev/null | grep -q allocated; do sleep 0.5; done
    held=$(rss)
    docker wait hog >/dev/null; docker rm hog >/dev/null
    sleep 30; after=$(rss)
    echo "memory, $1: QEMU RSS idle $idle MiB, holding $ALLOC_MIB MiB $held MiB, 30 s after exit $after MiB ($(( (after - idle) * 100 / idle ))% over idle)"
    "$BERTH" --home "$H" status | grep '^memory' || true
    unboot
}

disk() { # $1 label, $2 extra config
    boot "$2"
    docker pull -q busybox >/dev/null
    sleep 3; a=$(alloc_mib)
    docker run --name fill -v "$BIN:$BIN" busybox sh -c \
        "dd if=/dev/urandom of=/r bs=1M count=1 2>/dev/null; i=0; while [ \$i -lt $FILL_MIB ]; do cat /r; i=\$((i+1)); done > /big; sync"
    docker commit fill berth-bench-big >/dev/null; docker rm fill >/dev/null
    b=$(alloc_mib)
    docker rmi berth-bench-big >/dev/null
    sleep 15; c=$(alloc_mib)
    t=$(date +%s%N); "$BERTH" --home "$H" disk compact >/dev/null; d=$(alloc_mib)
    "$BERTH" --home "$H" stop >/dev/null
    t=$(date +%s%N); "$BERTH" --home "$H" disk compact >/dev/null; e=$(alloc_mib)
    echo "disk, $1: qcow2 allocated $a MiB -> $b MiB with a $FILL_MIB MiB image -> $c MiB 15 s after docker rmi -> $d MiB after berth disk compact (online) -> $e MiB after compact (VM stopped, $(( ($(date +%s%N) - t) / 1000000 )) ms)"
    rm -rf "$H"; H=
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ) commit $(git -C "$here/.." rev-parse --short HEAD) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
memory "free-page reporting" ""
memory "baseline (no reporting)" ', "free_page_reporting": false'
disk "discard + fstrim" ""
disk "baseline (no discard)" ', "disk_discard": false'
boot ""; "$BERTH" --home "$H" stop >/dev/null
echo "start phases (second boot):"; "$BERTH" --home "$H" start -v | sed -n '/^Accelerator/,/ready/p'
unboot
