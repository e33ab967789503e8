#!/bin/sh
# Files at native speed (issue 11 item 4): the same workloads on the host's own filesystem, in a
# container on the guest's own disk, and in a container through a virtiofs bind mount of a
# shared folder, side by side, with the virtiofs/native ratio (native time / virtiofs time):
#   untar a tree of 10 000 small files (100 folders x 100 files of 1 KiB), find it, stat every
#   file, remove it; write and then read one large file sequentially (1 GiB by default).
# The same static busybox runs every workload on both sides (timed by its `time`, 10 ms steps).
#   bench/vm-files.sh   (needs: cargo build -p berth-cli, vm-image/build.sh, a registry in
#                        /root/.cache/berth/dev-registry.env or REGISTRY=127.0.0.1:PORT)
# Env: BERTH_VM_CACHE (image), BERTH_TOOLS, BERTH_BIN, BIG_MIB (1024), BUSYBOX (a static busybox;
# default: the fixtures' one, tests/fixtures/images.py build), CONFIG_EXTRA (more config.json
# keys, e.g. ', "virtiofs_cache": "always"').
set -eu
here=$(cd "$(dirname "$0")" && pwd)
BERTH=${BERTH_BIN:-${CARGO_TARGET_DIR:-$here/../target}/debug/berth}
IMG=${BERTH_VM_CACHE:-/root/.cache/berth/vm-image}/out
TOOLS=${BERTH_TOOLS:-/root/.cache/berth/tools}
BIG_MIB=${BIG_MIB:-1024}
REGISTRY=${REGISTRY:-${BERTH_TEST_REGISTRY:-}}
[ -n "$REGISTRY" ] || . /root/.cache/berth/dev-registry.env
BUSYBOX=${BUSYBOX:-$(find /root/.cache/berth/fixtures/busybox-static -path '*bin/busybox' -type f | head -1)}
[ -x "$BUSYBOX" ] || { echo "vm-files: no static busybox (tests/fixtures/images.py build, or BUSYBOX=)" >&2; exit 1; }

H=$(mktemp -d /tmp/berth-files-XXXXXX)
S=$H/share
cleanup() { "$BERTH" --home "$H" stop >/dev/null 2>&1 || true; rm -rf "$H"; }
trap cleanup EXIT INT TERM
mkdir -p "$S/native" "$S/virtiofs"
cp "$BUSYBOX" "$S/busybox"
BB=$S/busybox

# The tree, made once on the host and tarred into the share (read from there by every side).
mkdir -p "$H/tree"
(cd "$H/tree" && "$BB" sh -c 'mkdir t && for d in $(seq 0 99); do mkdir t/$d; for f in $(seq 0 99); do head -c 1024 /dev/urandom >t/$d/$f; done; done' &&
    "$BB" tar -cf "$S/tree.tar" t)
rm -rf "$H/tree"

cat >"$H/config.json" <<JSON
{"cpus":2,"memory_mib":2048,"disk_gib":8,"shares":["$S"],"image_dir":"$IMG","tools_dir":"$TOOLS",
 "accel":"auto","registry_mirrors":["http://10.0.2.2:${REGISTRY##*:}"],"max_restarts":1 ${CONFIG_EXTRA:-}}
JSON
"$BERTH" --home "$H" start >/dev/null
export DOCKER_HOST=unix://$H/run/docker.sock
docker pull -q busybox >/dev/null
docker run -d --name files-bench -v "$S:$S" busybox sleep 3600 >/dev/null

# Each workload: a shell line on folder $D; prints its seconds.
workload() {
    case $1 in
    untar) echo "$BB tar -xf $S/tree.tar -C \$D" ;;
    find) echo "$BB find \$D >/dev/null" ;;
    stat) echo "$BB find \$D -type f -exec $BB stat -c %s {} + >/dev/null" ;;
    rm) echo "$BB rm -rf \$D/t" ;;
    write) echo "$BB dd if=/dev/zero of=\$D/big bs=1M count=$BIG_MIB conv=fsync 2>/dev/null" ;;
    read) echo "$BB dd if=\$D/big of=/dev/null bs=1M 2>/dev/null" ;;
    esac
}
# time_on <where: host|container> <folder> <workload>
time_on() {
    line="D=$2; $(workload "$3")"
    if [ "$1" = host ]; then
        "$BB" time -f %e "$BB" sh -c "$line" 2>&1 | tail -1
    else
        docker exec files-bench "$BB" time -f %e "$BB" sh -c "$line" 2>&1 | tail -1
    fi
}
docker exec files-bench mkdir -p /tmp/guest

echo "# $(date -u +%Y-%m-%dT%H:%MZ) commit $(git -C "$here/.." rev-parse --short HEAD), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), config extra: ${CONFIG_EXTRA:-none}"
printf '%-8s %10s %12s %12s %10s\n' workload "host (s)" "guest disk" "virtiofs" "virtiofs/host"
for w in untar find stat rm write read; do
    n=$(time_on host "$S/native" "$w")
    g=$(time_on container /tmp/guest "$w")
    v=$(time_on container "$S/virtiofs" "$w")
    r=$(awk -v n="$n" -v v="$v" 'BEGIN { if (v > 0) printf "%.0f %%", 100 * n / v; else print "-" }')
    printf '%-8s %10s %12s %12s %10s\n' "$w" "$n" "$g" "$v" "$r"
done
echo "large file: $BIG_MIB MiB; small files: 10 000 x 1 KiB in 100 folders"
