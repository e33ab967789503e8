#!/bin/sh
# Idle at zero (issue 11, item 3), each figure beside its baseline, in one run:
#  - QEMU's CPU time (utime+stime from /proc) over WINDOW s with no container and no client:
#    awake (auto-pause off, the baseline) and paused (auto-pause after 5 s);
#  - the resume latency: `docker version` on a paused VM against the same call on an awake one
#    (median of ROUNDS), and the guest clock's offset from the host's right after a resume.
#   bench/vm-idle.sh   (needs: cargo build -p berth-cli, vm-image/build.sh, a registry in
#                       /root/.cache/berth/dev-registry.env or REGISTRY=127.0.0.1:PORT)
# Env: BERTH_VM_CACHE (image), BERTH_TOOLS, BERTH_BIN, WINDOW (60), ROUNDS (5).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
BERTH=${BERTH_BIN:-${CARGO_TARGET_DIR:-$here/../target}/debug/berth}
IMG=${BERTH_VM_CACHE:-/root/.cache/berth/vm-image}/out
TOOLS=${BERTH_TOOLS:-/root/.cache/berth/tools}
WINDOW=${WINDOW:-60}
ROUNDS=${ROUNDS:-5}
[ -n "${REGISTRY:-}" ] || . /root/.cache/berth/dev-registry.env
H=
cleanup() { [ -z "$H" ] || { "$BERTH" --home "$H" stop >/dev/null 2>&1 || true; rm -rf "$H"; }; }
trap cleanup EXIT INT TERM

# boot <auto_pause_secs>: a fresh state dir, started; sets H, DOCKER_HOST
boot() {
    H=$(mktemp -d /tmp/berth-idle-XXXXXX)
    cat >"$H/config.json" <<JSON
{"cpus":2,"memory_mib":1024,"disk_gib":4,"shares":[],"image_dir":"$IMG","tools_dir":"$TOOLS",
 "accel":"auto","registry_mirrors":["http://10.0.2.2:${REGISTRY##*:}"],"max_restarts":1,
 "auto_pause_secs":$1}
JSON
    "$BERTH" --home "$H" start >/dev/null
    export DOCKER_HOST=unix://$H/run/docker.sock
}
unboot() { "$BERTH" --home "$H" stop >/dev/null; rm -rf "$H"; H=; }
# QEMU's CPU time so far, in ms (clock ticks of 10 ms).
cpu_ms() { awk '{print ($14 + $15) * 10}' "/proc/$(cat "$H/run/qemu.pid")/stat"; }
paused() { grep -q '"paused": *true' "$H/run/status.json"; }
wait_paused() { i=0; until paused; do i=$((i+1)); [ $i -lt 600 ] || { echo "never paused" >&2; exit 1; }; sleep 0.1; done; }
ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# idle_cpu <label>: QEMU CPU over WINDOW s, no client connected meanwhile.
idle_cpu() {
    a=$(cpu_ms); sleep "$WINDOW"; b=$(cpu_ms)
    echo "idle CPU, $1: $(( b - a )) ms of QEMU CPU over $WINDOW s ($(awk "BEGIN {printf \"%.2f\", ($b - $a) / ($WINDOW * 10)}")% of a core)"
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ) commit $(git -C "$here/.." rev-parse --short HEAD) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
boot 0
docker version >/dev/null; sleep 10
idle_cpu "awake (auto-pause off, baseline)"
awake=$(for i in $(seq "$ROUNDS"); do t=$(ms); docker version >/dev/null; echo $(( $(ms) - t )); done | median)
unboot

boot 5
docker pull -q busybox >/dev/null
wait_paused
idle_cpu "paused (auto-pause after 5 s)"
resumed=$(for i in $(seq "$ROUNDS"); do wait_paused; t=$(ms); docker version >/dev/null; echo $(( $(ms) - t )); done | median)
wait_paused; sleep 5
host=$(date +%s); guest=$(docker run --rm busybox date +%s 2>/dev/null || echo "$host")
echo "resume: docker version on a paused VM ${resumed} ms (median of $ROUNDS) vs ${awake} ms awake; guest clock after a resume $(( guest - host )) s from the host's"
unboot
