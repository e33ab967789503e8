#!/usr/bin/env bash
# Side-by-side benchmark: Debian's dockerd vs berth-agent, driven by the real docker CLI.
#
# usage: bench/run.sh [-n RUNS] [-p PULLS] [--only dockerd|berth] [--keep]
#   -n RUNS      `docker run --rm busybox true` / `docker ps` samples per daemon (default 20, env BENCH_RUNS)
#   -p PULLS     pulls of berth-test/multilayer per daemon, rmi in between (default 3, env BENCH_PULLS)
#                (env BENCH_BUILDS: uncached builds of a 6-step Dockerfile per daemon, default 5)
#   --only SIDE  measure one daemon only (the other column prints n/a)
#   --keep       keep the temp dir (logs) after the run
#                BuildKit builds of the same Dockerfile go through the real buildx plugin (docker driver) when
#                BUILDX_DIR (default ~/.cache/berth/docker-plugins/buildx) has it, else print n/a
# env: BERTH_AGENT (default target/release/berth-agent), DOCKERD (default dockerd on PATH),
#      DOCKER (default /usr/local/bin/docker, else docker on PATH), BENCH_SETTLE (idle RSS settle, default 5 s)
#
# Each daemon gets its own data-root, exec-root, pidfile, socket and uniquely named bridge; a fresh registry
# from tests/fixtures/registry.py serves the fixture images (mirror for docker.io names, and direct pulls).
# The daemons run one after the other, never together. Everything started here is stopped by PID on exit.
# A metric that fails prints n/a and its error instead of aborting the run. See docs/dev/fixtures.md.

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${BENCH_RUNS:-20}
PULLS=${BENCH_PULLS:-3}
BUILDS=${BENCH_BUILDS:-5}
SETTLE=${BENCH_SETTLE:-5}
ONLY=""
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        -n) RUNS=$2; shift 2 ;;
        -p) PULLS=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

BERTH_AGENT=${BERTH_AGENT:-$ROOT/target/release/berth-agent}
DOCKERD=${DOCKERD:-$(command -v dockerd || echo /usr/sbin/dockerd)}
if [ -z "${DOCKER:-}" ]; then
    if [ -x /usr/local/bin/docker ]; then DOCKER=/usr/local/bin/docker; else DOCKER=$(command -v docker); fi
fi
FIXTURES=$ROOT/tests/fixtures

TMP=$(mktemp -d /tmp/berth-bench.XXXXXX)
TAG=$(basename "$TMP" | tr -dc 'a-zA-Z0-9' | tail -c 6 | tr 'A-Z' 'a-z')
export DOCKER_CONFIG=$TMP/docker-config
mkdir -p "$DOCKER_CONFIG"
BUILDX_DIR=${BUILDX_DIR:-$HOME/.cache/berth/docker-plugins/buildx}
# buildx is found through the private config only: `DOCKER_BUILDKIT=0 docker build` stays classic.
printf '{"cliPluginsExtraDirs": ["%s"]}\n' "$BUILDX_DIR" >"$DOCKER_CONFIG/config.json"
DAEMON_PID=""
CREATED_BRIDGES=()
REGISTRY_DIR=$TMP/registry

log() { echo "bench: $*" >&2; }

# ---------------------------------------------------------------------------------------------------------------
# cleanup: everything by PID, plus processes whose command line names our unique temp dir (containerd, shims).

pids_under() { # dir: processes whose command line names dir (containerd, shims of one daemon)
    local p
    for p in /proc/[0-9]*; do
        [ "${p#/proc/}" = "$$" ] && continue
        { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF -- "$1" && echo "${p#/proc/}"
    done
}

stop_pid() { # pid [timeout seconds]
    local pid=$1 limit=$(( ${2:-20} * 10 )) i=0
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt $limit ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

unmount_under_tmp() {
    local m
    for m in $(awk -v t="$TMP" 'index($2, t) == 1 { print $2 }' /proc/self/mounts | sort -r); do
        umount -l "$m" 2>/dev/null
    done
}

stop_daemon() {
    stop_pid "$DAEMON_PID" 20
    DAEMON_PID=""
    local p
    for p in $(pids_under "$TMP/dockerd/") $(pids_under "$TMP/berth/"); do stop_pid "$p" 5; done
    unmount_under_tmp
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_daemon
    python3 "$FIXTURES/registry.py" stop --dir "$REGISTRY_DIR" 2>/dev/null
    local br
    for br in "${CREATED_BRIDGES[@]}"; do ip link del "$br" 2>/dev/null; done
    unmount_under_tmp
    if [ "$KEEP" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP" 2>/dev/null; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------------------------
# results

declare -A VAL=() ERR=()

set_val() { VAL[$1]=$2; }
set_err() { ERR[$1]=$2; log "$1: $2"; }

now_ns() { date +%s%N; }

stats() { # reads one number per line; prints "median p90"
    python3 -c '
import math, statistics, sys
xs = sorted(float(x) for x in sys.stdin.read().split())
if not xs:
    sys.exit(1)
p90 = xs[max(0, math.ceil(0.9 * len(xs)) - 1)]  # nearest rank
print(f"{statistics.median(xs):.1f} {p90:.1f}")'
}

tree_rss_kb() { # root-pid extra-substring -> "kB processes"
    python3 - "$1" "$2" <<'EOF'
import os, sys
root, extra = int(sys.argv[1]), sys.argv[2]
ppid, cmd = {}, {}
for p in os.listdir("/proc"):
    if not p.isdigit():
        continue
    try:
        with open(f"/proc/{p}/stat") as f:
            ppid[int(p)] = int(f.read().rsplit(")", 1)[1].split()[1])
        with open(f"/proc/{p}/cmdline", "rb") as f:
            cmd[int(p)] = f.read().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, IndexError, ValueError):
        pass
want = {root}
want |= {p for p, c in cmd.items() if extra and extra in c and p != os.getpid() and p != os.getppid()}
grew = True
while grew:
    new = {p for p, pp in ppid.items() if pp in want} - want
    grew = bool(new)
    want |= new
total = 0
for p in want:
    try:
        with open(f"/proc/{p}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    except OSError:
        pass
print(total, len(want))
EOF
}

# ---------------------------------------------------------------------------------------------------------------
# setup

free_subnet() { # prints X.Y for an unused 10.X.Y.0/24
    local i x y
    for i in $(seq 1 50); do
        x=$(( 200 + RANDOM % 50 )); y=$(( RANDOM % 256 ))
        if ! ip -4 addr | grep -q " 10\.$x\.$y\." && ! ip -4 route | grep -q "^10\.$x\.$y\."; then
            echo "$x.$y"; return 0
        fi
    done
    return 1
}

wait_ping() { # socket
    local i
    for i in $(seq 1 300); do
        [ "$(curl -s --max-time 1 --unix-socket "$1" http://d/_ping 2>/dev/null)" = "OK" ] && return 0
        kill -0 "$DAEMON_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

log "temp dir $TMP"
python3 "$FIXTURES/images.py" build >/dev/null || { log "building fixture images failed"; exit 1; }
BUSYBOX_TAR=$(python3 "$FIXTURES/images.py" path busybox:latest)
REGISTRY=$(python3 "$FIXTURES/registry.py" start --dir "$REGISTRY_DIR") || { log "registry failed"; exit 1; }
python3 "$FIXTURES/registry.py" fill --dir "$REGISTRY_DIR" 2>/dev/null || { log "registry fill failed"; exit 1; }
log "registry $REGISTRY"
MULTI=$REGISTRY/berth-test/multilayer:latest

start_dockerd() {
    local sub br=bbd$TAG
    sub=$(free_subnet) || { echo "no free subnet"; return 1; }
    ip link add "$br" type bridge && CREATED_BRIDGES+=("$br") || { echo "cannot create bridge $br"; return 1; }
    ip addr add "10.$sub.1/24" dev "$br" && ip link set "$br" up || { echo "cannot configure $br"; return 1; }
    SOCK=$TMP/dockerd/docker.sock
    mkdir -p "$TMP/dockerd"
    "$DOCKERD" --data-root "$TMP/dockerd/data" --exec-root "$TMP/dockerd/exec" --pidfile "$TMP/dockerd/docker.pid" \
        -H "unix://$SOCK" --bridge "$br" --iptables=false --ip-masq=false --ip-forward=false \
        --registry-mirror "http://$REGISTRY" --insecure-registry "$REGISTRY" --log-level warn \
        >"$TMP/dockerd/dockerd.log" 2>&1 &
    DAEMON_PID=$!
    wait_ping "$SOCK" || { echo "dockerd did not answer /_ping: $(tail -3 "$TMP/dockerd/dockerd.log" | tr '\n' ' ')"; return 1; }
}

start_berth() {
    local sub br=bba$TAG
    [ -x "$BERTH_AGENT" ] || { echo "no berth-agent at $BERTH_AGENT"; return 1; }
    sub=$(free_subnet) || { echo "no free subnet"; return 1; }
    CREATED_BRIDGES+=("$br") # berth creates it; we delete it if it is left behind
    SOCK=$TMP/berth/engine.sock
    mkdir -p "$TMP/berth"
    local extra=()
    "$BERTH_AGENT" --help 2>/dev/null | grep -q -- '--iptables' && extra+=(--iptables=false)
    "$BERTH_AGENT" -H "unix://$SOCK" --data-root "$TMP/berth/data" --exec-root "$TMP/berth/exec" \
        --pidfile "$TMP/berth/berth.pid" --registry-mirror "http://$REGISTRY" --insecure-registry "$REGISTRY" \
        --bridge "$br" --bip "10.$sub.1/24" "${extra[@]}" >"$TMP/berth/berth.log" 2>&1 &
    DAEMON_PID=$!
    wait_ping "$SOCK" || { echo "berth-agent did not answer /_ping: $(tail -3 "$TMP/berth/berth.log" | tr '\n' ' ')"; return 1; }
}

dk() { timeout 600 "$DOCKER" -H "unix://$SOCK" "$@"; }

# ---------------------------------------------------------------------------------------------------------------
# metrics (each records VAL or ERR and never aborts the run)

measure_rss() { # side key
    local out kb n
    out=$(tree_rss_kb "$DAEMON_PID" "$TMP/$1/") || { set_err "$1.$2" "cannot read /proc"; return; }
    read -r kb n <<<"$out"
    set_val "$1.$2" "$(awk -v k="$kb" 'BEGIN { printf "%.1f", k / 1024 }')"
    set_val "$1.$2.procs" "$n"
}

load_busybox() { # side: get busybox:latest into the daemon without leaving loopback
    local e
    e=$(dk load -i "$BUSYBOX_TAR" 2>&1 >/dev/null) && dk image inspect busybox:latest >/dev/null 2>&1 && return 0
    log "$1: docker load failed ($e); pulling from $REGISTRY instead"
    e=$(dk pull -q "$REGISTRY/library/busybox:latest" 2>&1 >/dev/null && dk tag "$REGISTRY/library/busybox:latest" busybox:latest 2>&1) && return 0
    log "$1: direct pull + tag failed ($e); pulling busybox through the mirror"
    e=$(dk pull -q busybox:latest 2>&1 >/dev/null) && return 0
    echo "$e"
    return 1
}

sample() { # side key count command...: time `count` runs (after 2 warm-ups) in ms
    local side=$1 key=$2 count=$3 i t0 t1 e
    shift 3
    : >"$TMP/$side.$key.samples"
    for i in $(seq 1 $((count + 2))); do
        t0=$(now_ns)
        if ! e=$("$@" 2>&1 >/dev/null); then
            set_err "$side.$key" "$(echo "$e" | head -2 | tr '\n' ' ')"
            return 1
        fi
        t1=$(now_ns)
        [ "$i" -gt 2 ] && awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1e6 }' >>"$TMP/$side.$key.samples"
    done
    local med p90
    read -r med p90 < <(stats <"$TMP/$side.$key.samples") || { set_err "$side.$key" "no samples"; return 1; }
    set_val "$side.$key" "$med"
    set_val "$side.$key.p90" "$p90"
}

api_ps() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 --unix-socket "$SOCK" "http://d/containers/json?all=1")
    [ "$code" = 200 ] || { echo "GET /containers/json: HTTP $code" >&2; return 1; }
}

measure_pull() { # side
    local side=$1 i t0 t1 e ref=$MULTI
    : >"$TMP/$side.pull.samples"
    for i in $(seq 1 "$PULLS"); do
        dk rmi -f "$ref" >/dev/null 2>&1
        # Same start for both daemons: no dirty data of earlier work still being written back.
        sync
        t0=$(now_ns)
        if ! e=$(dk pull -q "$ref" 2>&1 >/dev/null); then
            set_err "$side.pull" "$(echo "$e" | head -2 | tr '\n' ' ')"
            return 1
        fi
        t1=$(now_ns)
        awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1e6 }' >>"$TMP/$side.pull.samples"
    done
    local med p90
    read -r med p90 < <(stats <"$TMP/$side.pull.samples")
    set_val "$side.pull" "$med"
    set_val "$side.pull.p90" "$p90"
}

check_pull() { # side: the whiteouts and the opaque dir of berth-test/multilayer must show
    local side=$1 out
    out=$(dk run --rm "$MULTI" sh -c '
        test ! -e /data/text/delete-me.txt || echo "delete-me.txt present"
        test ! -e /data/small/d03/f005 || echo "d03/f005 present"
        [ "$(ls /data/small/d03 | wc -l)" = 99 ] || echo "d03 has $(ls /data/small/d03 | wc -l) files"
        [ "$(ls -A /data/small/d07)" = only-this.txt ] || echo "d07 not opaque: $(ls -A /data/small/d07 | head -3)"
        [ "$(cat /data/random/blob3.bin)" = "blob3 was replaced by layer 7" ] || echo "blob3.bin not replaced"
        [ "$(cat /data/added-by-layer6.txt)" = "layer 6 was here" ] || echo "layer 6 file missing"
        [ "$(wc -c </data/text/log4.txt)" = 10485760 ] || echo "log4.txt wrong size"
        echo done' 2>&1)
    if [ "$out" = "done" ]; then set_val "$side.pullcheck" ok; else set_err "$side.pullcheck" "$(echo "$out" | tr '\n' ';')"; fi
}

BUILD_CTX=$TMP/build-context
make_build_context() { # a small Dockerfile and context: RUN steps, COPY of a directory, ENV, CMD
    mkdir -p "$BUILD_CTX/app/conf"
    for i in $(seq 1 20); do echo "file $i" >"$BUILD_CTX/app/f$i.txt"; done
    echo "key=value" >"$BUILD_CTX/app/conf/settings.ini"
    cat >"$BUILD_CTX/Dockerfile" <<'DOCKERFILE'
FROM busybox
ENV APP=/app
RUN mkdir -p /app/data && echo built >/app/data/stamp
COPY app /app
WORKDIR /app
RUN ls -R /app >/app/listing && rm /app/f1.txt
CMD ["cat", "/app/listing"]
DOCKERFILE
}

build_cold() { DOCKER_BUILDKIT=0 dk build -q --no-cache -t bench-build "$BUILD_CTX"; }
build_cached() { DOCKER_BUILDKIT=0 dk build -q -t bench-build "$BUILD_CTX"; }
buildkit_cold() { dk buildx build -q --no-cache -t bench-build-bk "$BUILD_CTX"; }
buildkit_cached() { dk buildx build -q -t bench-build-bk "$BUILD_CTX"; }

stop_one() { # `docker stop` of a container that ignores SIGTERM
    local id
    id=$(dk run -d --stop-timeout 1 busybox sleep 300) || return 1
    local t0 t1
    t0=$(now_ns)
    dk stop -t 0 "$id" >/dev/null || return 1
    t1=$(now_ns)
    dk rm "$id" >/dev/null
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1e6 }' >>"$TMP/$SIDE_NOW.stop.samples"
}

measure_stop() { # side
    local side=$1 i
    SIDE_NOW=$side
    : >"$TMP/$side.stop.samples"
    for i in $(seq 1 "$RUNS"); do
        stop_one || { set_err "$side.stop" "docker stop failed"; return 1; }
    done
    local med p90
    read -r med p90 < <(stats <"$TMP/$side.stop.samples")
    set_val "$side.stop" "$med"
}

run_side() { # side
    local side=$1 e k
    log "== $side"
    if [ -n "$ONLY" ] && [ "$ONLY" != "$side" ]; then
        for k in $METRICS; do ERR[$side.$k]="skipped (--only $ONLY)"; done
        return
    fi
    "start_$side" >"$TMP/$side.start.err" 2>&1
    if [ $? -ne 0 ] || [ -z "$DAEMON_PID" ]; then
        e=$(tr '\n' ' ' <"$TMP/$side.start.err")
        for k in $METRICS; do set_err "$side.$k" "${e:-start failed}"; done
        stop_daemon
        return
    fi
    sleep "$SETTLE"
    measure_rss "$side" rss
    if e=$(load_busybox "$side"); then
        sample "$side" run "$RUNS" dk run --rm busybox true
        local cid
        if cid=$(dk run -d busybox sleep 600 2>&1); then
            sample "$side" exec "$RUNS" dk exec "$cid" true
            dk rm -f "$cid" >/dev/null 2>&1
        else
            set_err "$side.exec" "$cid"
        fi
        measure_stop "$side"
        sample "$side" build "$BUILDS" build_cold
        sample "$side" build_cached "$RUNS" build_cached
        if [ -x "$BUILDX_DIR/docker-buildx" ]; then
            sample "$side" buildkit "$BUILDS" buildkit_cold
            sample "$side" buildkit_cached "$RUNS" buildkit_cached
        else
            for k in buildkit buildkit_cached; do set_err "$side.$k" "no buildx plugin in $BUILDX_DIR"; done
        fi
    else
        for k in run exec stop build build_cached buildkit buildkit_cached; do set_err "$side.$k" "cannot get busybox: $e"; done
    fi
    sample "$side" ps "$RUNS" dk ps
    sample "$side" api_ps "$RUNS" api_ps
    measure_pull "$side" && check_pull "$side"
    [ -n "${VAL[$side.pull]:-}" ] || ERR[$side.pullcheck]=${ERR[$side.pullcheck]:-"no pull"}
    sleep "$SETTLE"
    measure_rss "$side" rss_after
    stop_daemon
}

METRICS="run exec stop build build_cached buildkit buildkit_cached ps api_ps pull pullcheck rss rss_after"
make_build_context
run_side dockerd
run_side berth

# ---------------------------------------------------------------------------------------------------------------
# report

cell() { # key -> value or n/a
    if [ -n "${VAL[$1]:-}" ]; then echo "${VAL[$1]}"; else echo "n/a"; fi
}

ratio() { # metric -> berth/dockerd
    local b=${VAL[berth.$1]:-} d=${VAL[dockerd.$1]:-}
    if [ -n "$b" ] && [ -n "$d" ] && [ "$d" != "0" ] && [ "$d" != "0.0" ]; then
        awk -v b="$b" -v d="$d" 'BEGIN { printf "%.2fx", b / d }'
    else
        echo "n/a"
    fi
}

dockerd_version=$("$DOCKERD" --version 2>/dev/null | head -1)
berth_version=$("$BERTH_AGENT" --version 2>/dev/null | head -1)
echo
echo "Berth benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ)  $(uname -r)  $(nproc) CPUs  runs=$RUNS pulls=$PULLS"
echo "  dockerd: ${dockerd_version:-?}"
echo "  berth:   ${berth_version:-n/a} ($BERTH_AGENT)"
echo "  client:  $("$DOCKER" --version 2>/dev/null)"
echo
printf '%-38s %12s %12s %14s  %s\n' "metric" "dockerd" "berth" "berth/dockerd" "target"
printf '%-38s %12s %12s %14s  %s\n' "------" "-------" "-----" "-------------" "------"
row() { # label key target show-ratio
    local r="" ; [ "$4" = 1 ] && r=$(ratio "$2")
    printf '%-38s %12s %12s %14s  %s\n' "$1" "$(cell "dockerd.$2")" "$(cell "berth.$2")" "$r" "$3"
}
row "docker run --rm busybox true, median ms" run "<= 0.25x" 1
row "docker run --rm busybox true, p90 ms" run.p90 "" 1
row "docker exec <running> true, median ms" exec "" 1
row "docker stop -t 0, median ms" stop "" 1
row "docker build, no cache (6 steps), median ms" build "" 1
row "docker build, all cached, median ms" build_cached "" 1
row "buildx build, no cache, median ms" buildkit "<= 1.00x" 1
row "buildx build, all cached, median ms" buildkit_cached "<= 1.00x" 1
row "docker ps, median ms" ps "" 1
row "GET /containers/json (curl), median ms" api_ps "" 1
row "pull berth-test/multilayer, median ms" pull "<= 0.50x" 1
row "pull berth-test/multilayer, p90 ms" pull.p90 "" 1
row "pulled image content (whiteouts)" pullcheck "ok" 0
row "idle RSS after ${SETTLE}s settle, MB" rss "berth <= 15 MB" 1
row "  processes counted" rss.procs "" 0
row "idle RSS after the workload, MB" rss_after "" 1
echo
if [ ${#ERR[@]} -gt 0 ]; then
    echo "errors:"
    for k in $(printf '%s\n' "${!ERR[@]}" | sort); do
        echo "  $k: ${ERR[$k]}"
    done
fi
