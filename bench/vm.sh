#!/bin/sh
# Benchmarks of Berth's VM path (TCG here): boot to Docker API, API latency forwarded vs in the
# guest, 1000 forwarded pings 8-way with failures, raw hybrid-vsock churn (no mux), and
# port-forward throughput vs in-VM direct.
#   bench/vm.sh            (needs: cargo build -p berth-cli, vm-image/build.sh, a registry in
#                           /root/.cache/berth/dev-registry.env or REGISTRY=127.0.0.1:PORT)
# Env: BERTH_VM_CACHE (image), BERTH_TOOLS, BERTH_BIN, KEEP=1 keeps the state dir.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
BERTH=${BERTH_BIN:-${CARGO_TARGET_DIR:-$here/../target}/debug/berth}
IMG=${BERTH_VM_CACHE:-/root/.cache/berth/vm-image}/out
TOOLS=${BERTH_TOOLS:-/root/.cache/berth/tools}
[ -n "${REGISTRY:-}" ] || . /root/.cache/berth/dev-registry.env
H=$(mktemp -d /tmp/berth-bench-XXXXXX)
SHARE=$H/share
mkdir -p "$SHARE"
cleanup() { "$BERTH" --home "$H" stop >/dev/null 2>&1 || true; [ "${KEEP:-}" = 1 ] || rm -rf "$H"; }
trap cleanup EXIT INT TERM
cat >"$H/config.json" <<JSON
{"cpus":2,"memory_mib":1024,"disk_gib":4,"shares":["$SHARE"],"image_dir":"$IMG","tools_dir":"$TOOLS",
 "accel":"auto","registry_mirrors":["http://10.0.2.2:${REGISTRY##*:}"],"max_restarts":1}
JSON
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
export DOCKER_HOST=unix://$H/run/docker.sock
SOCK=$H/run/docker.sock

t=$(date +%s%N); "$BERTH" --home "$H" start >/dev/null; echo "berth start (first boot, formats disk) -> API ready: $(ms $t) ms"
"$BERTH" --home "$H" stop >/dev/null
t=$(date +%s%N); "$BERTH" --home "$H" start >/dev/null; echo "berth start (second boot) -> API ready: $(ms $t) ms"

cc -static -O2 -o "$SHARE/apiclient" "$here/vm-apiclient.c"
docker pull -q busybox >/dev/null
for i in 1 2 3; do docker run -d busybox sleep 600 >/dev/null; done
echo "GET /containers/json x200, new connection each (3 containers):"
echo "  host, forwarded socket: $("$SHARE/apiclient" "$SOCK" /containers/json 200)"
echo "  in the guest (container, engine socket): $(docker run --rm -v "$SHARE:$SHARE" -v /run/berth/engine.sock:/engine.sock busybox "$SHARE/apiclient" /engine.sock /containers/json 200)"
t=$(date +%s%N); for i in $(seq 10); do docker ps >/dev/null; done; echo "docker ps via forwarded socket: $(( $(ms $t) / 10 )) ms each (10 runs)"

t=$(date +%s%N)
ok=$(seq 1000 | xargs -P8 -I{} curl -s -m 10 --unix-socket "$SOCK" http://d/_ping -o /dev/null -w '%{http_code}\n' | grep -c '^200$' || true)
echo "1000 forwarded /_ping 8-way (curl): $(ms $t) ms, $((1000 - ok)) failures"

python3 - "$H/run/vsock.sock" <<'PY'
import socket, sys, threading
uds = sys.argv[1]
for run in range(3):
    fails = [0]
    def worker():
        for _ in range(20):
            s = socket.socket(socket.AF_UNIX); s.settimeout(5)
            try:
                s.connect(uds); s.sendall(b"CONNECT 2375\n"); line = b""
                while not line.endswith(b"\n"):
                    c = s.recv(1)
                    if not c: break
                    line += c
                if not line.startswith(b"OK "): fails[0] += 1
            except OSError:
                fails[0] += 1
            finally:
                s.close()
    ts = [threading.Thread(target=worker) for _ in range(8)]
    [t.start() for t in ts]; [t.join() for t in ts]
    print(f"raw hybrid CONNECT churn 8x20 (no mux), run {run + 1}: {fails[0]}/160 failed")
PY

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
docker run -d --name berth-bench-web -p "$PORT:80" busybox sh -c 'mkdir -p /w && dd if=/dev/zero of=/w/big bs=1M count=64 2>/dev/null && httpd -f -p 80 -h /w' >/dev/null
sleep 2
IP=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' berth-bench-web)
for i in 1 2; do
  echo "port forward 64 MiB, host curl 127.0.0.1:$PORT: $(curl -s -o /dev/null -w '%{speed_download}' "127.0.0.1:$PORT/big" | awk '{printf "%.1f MiB/s", $1/1048576}')"
done
# busybox date has no %N: centiseconds from /proc/uptime.
for i in 1 2; do
  docker run --rm busybox sh -c "s=\$(cut -d' ' -f1 /proc/uptime | tr -d .); wget -q -O /dev/null http://$IP/big; e=\$(cut -d' ' -f1 /proc/uptime | tr -d .); echo \"in-VM direct 64 MiB (container to container): \$((6400 / (e - s + 1))) MiB/s\""
done
docker rm -f berth-bench-web >/dev/null
docker ps -q | xargs -r docker rm -f >/dev/null
