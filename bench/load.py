#!/usr/bin/env python3
"""Load on one engine, driven by the real docker CLI (docs/reliability.md, "Load").

usage: bench/load.py [--engine berth|dockerd|both] [--phases runs,pulls,conns,many,logs]
                     [--runs 50] [--pulls 10] [--conns 100] [--many 200] [--workers 8]
                     [--log-mib 1024] [--keep]

For each engine asked (default berth; `both` runs Debian's dockerd first, then berth-agent, one
after the other, never together), starts it on a temp data root, exec root and its own bridge,
with a fresh fixture registry (tests/fixtures/registry.py) as mirror, then measures:
  runs   RUNS concurrent `docker run --rm busybox true`: all succeed, latency percentiles;
  pulls  PULLS concurrent pulls of berth-test/multilayer (7 layers, 207 MB): all succeed (that
         each layer is downloaded once is counted by tests/cli/load.rs through FaultProxy);
  conns  CONNS concurrent HTTP connections to a published port (berth-test/httpd on 127.0.0.1);
  many   MANY containers on one engine: `docker run -d` of a busybox that sleeps until SIGTERM,
         WORKERS at a time, then `docker ps` with all of them running, an inspect of each, a
         stop of each and a rm of each (WORKERS at a time): latency percentiles per verb;
  logs   a container writing LOG_MIB MiB to stdout (1 KiB numbered lines), then `docker logs`
         reading it back: write and read throughput, and every line present once, in order.
After each phase: the engine's RSS (berth-agent; dockerd plus its containerd), its peak during
the phase (VmHWM, reset before the phase through /proc/PID/clear_refs), and the RSS of the
per-container shims. Everything it started is stopped by PID on exit; only loopback and its
own bridges are used.
env: BERTH_AGENT (default $CARGO_TARGET_DIR/debug/berth-agent, else target/debug/berth-agent),
     DOCKERD (default dockerd on PATH).
"""

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCKER = "/usr/local/bin/docker" if os.path.exists("/usr/local/bin/docker") else shutil.which("docker")
REGISTRY_PY = os.path.join(ROOT, "tests/fixtures/registry.py")
PHASES = ["runs", "pulls", "conns", "many", "logs"]
# A container that sleeps until `docker stop` (PID 1 ignores SIGTERM unless it traps it).
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
LINE_BYTES = 1024


def percentiles(samples):
    s = sorted(samples)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))]  # noqa: E731
    return {"p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "max": s[-1]}


def fmt_ms(p):
    return " ".join(f"{k} {v * 1000:.0f} ms" for k, v in p.items())


def status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def pids_naming(text):
    """Processes whose command line names `text` (our temp dir: containerd, shims)."""
    me = os.getpid()
    return [int(p) for p in os.listdir("/proc")
            if p.isdigit() and int(p) != me and text in cmdline(p)]


def wait_for(cond, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready within {timeout} s")


def timed(fn):
    """Runs fn() -> (ok, detail); returns (ok, seconds, detail)."""
    t0 = time.monotonic()
    try:
        ok, detail = fn()
    except Exception as e:  # reported, not raised: the figures count failures
        ok, detail = False, repr(e)
    return ok, time.monotonic() - t0, detail


def concurrently(n, fn):
    """Runs fn(i) on n threads started together; returns [(ok, seconds, detail)]."""
    out = [None] * n
    gate = threading.Barrier(n)

    def worker(i):
        gate.wait()
        out[i] = timed(lambda: fn(i))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def pooled(items, workers, fn):
    """Runs fn(item) for every item, `workers` at a time; returns [(ok, seconds, detail)]."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda it: timed(lambda: fn(it)), items))


class Daemon:
    """One engine under test: its process, socket, bridge and the CLI pointed at it."""

    def __init__(self, kind, tmp, registry):
        self.kind, self.registry = kind, registry
        self.dir = os.path.join(tmp, kind)
        os.makedirs(self.dir)
        self.sock = os.path.join(self.dir, "engine.sock")
        self.bridge = f"bl{kind[0]}{os.getpid() % 100000}"
        self.proc = None
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{self.sock}",
                    "DOCKER_CONFIG": os.path.join(self.dir, "docker-config")}

    def start(self):
        sub = f"10.{random.randint(200, 250)}.{random.randint(0, 254)}"
        common = ["-H", f"unix://{self.sock}", "--data-root", os.path.join(self.dir, "data"),
                  "--exec-root", os.path.join(self.dir, "exec"), "--registry-mirror",
                  f"http://{self.registry}", "--insecure-registry", self.registry]
        if self.kind == "dockerd":
            subprocess.run(["ip", "link", "add", self.bridge, "type", "bridge"], check=True)
            subprocess.run(["ip", "addr", "add", f"{sub}.1/24", "dev", self.bridge], check=True)
            subprocess.run(["ip", "link", "set", self.bridge, "up"], check=True)
            cmd = [os.environ.get("DOCKERD", shutil.which("dockerd") or "/usr/sbin/dockerd"),
                   *common, "--pidfile", os.path.join(self.dir, "docker.pid"),
                   "--bridge", self.bridge, "--iptables=false", "--ip-masq=false",
                   "--ip-forward=false", "--log-level", "warn"]
            env = os.environ
        else:
            target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
            agent = os.environ.get("BERTH_AGENT", os.path.join(target, "debug", "berth-agent"))
            cmd = [agent, *common, "--bridge", self.bridge, "--bip", f"{sub}.1/24"]
            env = {**os.environ, "RUST_LOG": "warn"}
        log = open(os.path.join(self.dir, "engine.log"), "w")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env)
        wait_for(lambda: self.docker("version").returncode == 0, 60, self.kind)

    def docker(self, *args, timeout=600):
        return subprocess.run([DOCKER, *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def ok(self, *args):
        r = self.docker(*args)
        return r.returncode == 0, (r.stderr or r.stdout)

    def engine_pids(self):
        """The engine's own processes: berth-agent; dockerd and the containerd it started."""
        pids = [self.proc.pid]
        if self.kind == "dockerd":
            pids += [p for p in pids_naming(self.dir) if cmdline(p).startswith("containerd ")]
        return pids

    def memory(self):
        """(engine RSS MB, engine peak MB since the last reset, shims' RSS MB, shim count)."""
        engine = self.engine_pids()
        shims = [p for p in pids_naming(self.dir) if p not in engine and "shim" in cmdline(p)]
        mb = lambda pids, f: sum(status_kb(p, f) for p in pids) / 1024  # noqa: E731
        return mb(engine, "VmRSS"), mb(engine, "VmHWM"), mb(shims, "VmRSS"), len(shims)

    def reset_peak(self):
        for p in self.engine_pids():
            try:
                with open(f"/proc/{p}/clear_refs", "w") as f:
                    f.write("5")
            except OSError:
                pass

    def stop(self):
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for p in pids_naming(self.dir):  # shims and containerd of this engine only
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        mounts = [line.split()[1] for line in open("/proc/self/mounts")]
        for m in sorted((m for m in mounts if m.startswith(self.dir)), reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


class Results:
    """Rows of (engine, measure) -> text, printed as they come and as a table at the end."""

    def __init__(self):
        self.rows, self.failed = {}, False

    def add(self, engine, measure, text):
        print(f"[{engine}] {measure}: {text}", flush=True)
        self.rows.setdefault(measure, {})[engine] = text

    def latencies(self, engine, measure, results):
        bad = [d for ok, _, d in results if not ok]
        self.failed |= bool(bad)
        text = f"{len(results) - len(bad)}/{len(results)} ok, " + fmt_ms(
            percentiles([s for _, s, _ in results]))
        self.add(engine, measure, text)
        for d in bad[:3]:
            print(f"  failure: {str(d).strip()[:200]}")

    def check(self, engine, measure, ok, text):
        self.failed |= not ok
        self.add(engine, measure, ("" if ok else "FAILED: ") + text)

    def memory(self, engine, phase, d):
        rss, peak, shims, n = d.memory()
        self.add(engine, f"{phase}: memory", f"engine {rss:.1f} MB (peak {peak:.1f}), "
                                             f"{n} shims {shims:.1f} MB")

    def table(self, engines):
        print("\n| measure | " + " | ".join(engines) + " |")
        print("|---|" + "---|" * len(engines))
        for measure, by in self.rows.items():
            print(f"| {measure} | " + " | ".join(by.get(e, "n/a") for e in engines) + " |")


def phase_runs(d, r, args):
    r.latencies(d.kind, f"{args.runs} concurrent docker run --rm busybox true",
                concurrently(args.runs, lambda _: d.ok("run", "--rm", "busybox", "true")))


def phase_pulls(d, r, args):
    image = f"{d.registry}/berth-test/multilayer:latest"
    r.latencies(d.kind, f"{args.pulls} concurrent pulls of berth-test/multilayer",
                concurrently(args.pulls, lambda _: d.ok("pull", image)))


def phase_conns(d, r, args):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ok, err = d.ok("run", "-d", "--name", "web", "-p", f"127.0.0.1:{port}:80",
                   f"{d.registry}/berth-test/httpd:latest")
    if not ok:
        r.check(d.kind, "published port", False, err)
        return

    def get(_):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as c:
            c.sendall(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := c.recv(65536):
                data += chunk
        return b"berth-httpd-ok" in data, data[:80].decode(errors="replace")

    wait_for(lambda: timed(lambda: get(0))[0], 30, "published port")
    r.latencies(d.kind, f"{args.conns} concurrent connections to a published port",
                concurrently(args.conns, get))
    d.docker("rm", "-f", "web")


def phase_many(d, r, args):
    names = [f"many{i}" for i in range(args.many)]
    w, n = args.workers, args.many
    r.latencies(d.kind, f"{n} containers: docker run -d, {w} at a time",
                pooled(names, w, lambda c: d.ok("run", "-d", "--name", c, "busybox", *SLEEPER)))
    running = d.docker("ps", "-q").stdout.split()
    r.check(d.kind, f"{n} containers: running", len(running) == n, f"{len(running)} listed")
    r.latencies(d.kind, f"{n} containers: docker ps, 20 times",
                [timed(lambda: d.ok("ps")) for _ in range(20)])
    r.latencies(d.kind, f"{n} containers: docker inspect of each",
                [timed(lambda c=c: d.ok("inspect", c)) for c in names])
    r.memory(d.kind, f"{n} containers running", d)
    r.latencies(d.kind, f"{n} containers: docker stop, {w} at a time",
                pooled(names, w, lambda c: d.ok("stop", c)))
    r.latencies(d.kind, f"{n} containers: docker rm, {w} at a time",
                pooled(names, w, lambda c: d.ok("rm", c)))
    left = d.docker("ps", "-aq").stdout.split()
    r.check(d.kind, f"{n} containers: removed", not left, f"{len(left)} left")


def read_log_stream(d, name, lines, sample):
    """`docker logs name`, checking every line: `lines` numbered lines, each once, in order.
    Calls sample() every 0.2 s while it reads. Returns (ok, detail, bytes, seconds)."""
    t0 = time.monotonic()
    p = subprocess.Popen([DOCKER, "logs", name], env=d.env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    stop = threading.Event()

    def sampler():
        sample()
        while not stop.wait(0.2):
            sample()

    threading.Thread(target=sampler, daemon=True).start()
    expect, total, bad = 1, 0, None
    for line in p.stdout:
        total += len(line)
        if bad is None:
            if len(line) != LINE_BYTES or int(line[:10]) != expect:
                bad = f"line {expect}: {line[:40]!r} ({len(line)} bytes)"
        expect += 1
    p.wait()
    stop.set()
    secs = time.monotonic() - t0
    got = expect - 1
    if p.returncode != 0:
        bad = bad or f"docker logs: exit {p.returncode}: {p.stderr.read()[:200]!r}"
    if bad is None and got != lines:
        bad = f"{got} lines of {lines}"
    return bad is None, bad or f"{got} lines, each once, in order", total, secs


def phase_logs(d, r, args):
    lines = args.log_mib * 1024 * 1024 // LINE_BYTES
    # 10 digits, a space, padding, a newline: LINE_BYTES per line.
    prog = ('BEGIN { pad = sprintf("%%%ds", ""); gsub(/ /, "x", pad); '
            'for (i = 1; i <= %d; i++) printf "%%010d %%s\\n", i, pad }'
            % (LINE_BYTES - 12, lines))
    t0 = time.monotonic()
    ok, err = d.ok("run", "-d", "--name", "biglog", "--network", "none", "busybox", "awk", prog)
    if ok:
        w = d.docker("wait", "biglog", timeout=3600)
        ok, err = w.returncode == 0 and w.stdout.strip() == "0", w.stdout + w.stderr
    secs = time.monotonic() - t0
    mib = lines * LINE_BYTES / 2**20
    r.check(d.kind, f"log of {mib:.0f} MiB: written", ok, f"{mib / secs:.1f} MiB/s ({secs:.1f} s)"
            if ok else err)
    if not ok:
        return
    d.reset_peak()
    seen = [0.0]
    sample = lambda: seen.__setitem__(0, max(seen[0], d.memory()[0]))  # noqa: E731
    good, detail, total, secs = read_log_stream(d, "biglog", lines, sample)
    r.check(d.kind, f"log of {mib:.0f} MiB: docker logs", good,
            f"{total / 2**20 / secs:.1f} MiB/s ({secs:.1f} s), {detail}, "
            f"engine RSS at most {seen[0]:.1f} MB sampled, peak {d.memory()[1]:.1f} MB")
    d.docker("rm", "-f", "biglog")


def measure(kind, tmp, registry, busybox_tar, args, results):
    d = Daemon(kind, tmp, registry)
    try:
        d.start()
        time.sleep(2)  # settle before the idle figure
        results.memory(kind, "idle", d)
        ok, err = d.ok("load", "-i", busybox_tar)
        if not ok:
            results.check(kind, "load busybox", False, err)
            return
        for phase in args.phases:
            d.reset_peak()
            globals()[f"phase_{phase}"](d, results, args)
            results.memory(kind, f"after {phase}", d)
    except Exception as e:
        results.check(kind, "engine", False, repr(e))
    finally:
        d.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", choices=["berth", "dockerd", "both"], default="berth")
    ap.add_argument("--phases", default=",".join(PHASES))
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--pulls", type=int, default=10)
    ap.add_argument("--conns", type=int, default=100)
    ap.add_argument("--many", type=int, default=200)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--log-mib", type=int, default=1024)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    args.phases = [p for p in args.phases.split(",") if p]
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        sys.exit(f"load.py: unknown phases {sorted(unknown)}")
    engines = ["dockerd", "berth"] if args.engine == "both" else [args.engine]

    tmp = tempfile.mkdtemp(prefix="berth-load-")
    reg_dir = os.path.join(tmp, "registry")
    results = Results()
    try:
        subprocess.run([sys.executable, os.path.join(ROOT, "tests/fixtures/images.py"), "build"],
                       check=True, capture_output=True)
        busybox_tar = subprocess.run(
            [sys.executable, os.path.join(ROOT, "tests/fixtures/images.py"), "path",
             "busybox:latest"], check=True, capture_output=True, text=True).stdout.strip()
        out = subprocess.run([sys.executable, REGISTRY_PY, "start", "--dir", reg_dir],
                             check=True, capture_output=True, text=True).stdout
        registry = out.strip().splitlines()[-1]
        subprocess.run([sys.executable, REGISTRY_PY, "fill", "--registry", registry],
                       check=True, capture_output=True)
        for kind in engines:
            measure(kind, tmp, registry, busybox_tar, args, results)
        results.table(engines)
    finally:
        subprocess.run([sys.executable, REGISTRY_PY, "stop", "--dir", reg_dir],
                       capture_output=True)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if results.failed else 0)


if __name__ == "__main__":
    main()
