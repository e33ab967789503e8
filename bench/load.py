#!/usr/bin/env python3
"""Load on one berth-agent, driven by the real docker CLI (docs/reliability.md, "Load").

usage: bench/load.py [--runs 50] [--pulls 10] [--conns 100] [--keep]

Starts its own berth-agent ($BERTH_AGENT, default $CARGO_TARGET_DIR/debug/berth-agent, else
target/debug/berth-agent) on a temp data root and bridge, and a fresh fixture registry
(tests/fixtures/registry.py), then measures:
  - RUNS concurrent `docker run --rm busybox true`: all succeed, latency percentiles;
  - PULLS concurrent pulls of berth-test/multilayer (7 layers, 207 MB): all succeed (that each
    layer is downloaded once is counted by tests/cli/load.rs through FaultProxy: the fixture
    registry keeps no access log, and socket reads do not show in /proc/PID/io);
  - CONNS concurrent HTTP connections to a published port (berth-test/httpd on 127.0.0.1):
    all answered, latency percentiles;
  - the engine's RSS (VmRSS) idle, after each phase, and its peak (VmHWM).
Everything it started is stopped by PID on exit; only loopback and its own bridge are used.
"""

import argparse
import json
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCKER = shutil.which("docker") or "/usr/local/bin/docker"


def percentiles(samples):
    s = sorted(samples)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))]  # noqa: E731
    return {"p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "max": s[-1]}


def fmt_ms(p):
    return " ".join(f"{k} {v * 1000:.0f} ms" for k, v in p.items())


def rss_kb(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def wait_for(cond, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    sys.exit(f"load.py: {what} not ready within {timeout} s")


def concurrently(n, fn):
    """Runs fn(i) on n threads started together; returns [(ok, seconds, detail)]."""
    out = [None] * n
    gate = threading.Barrier(n)

    def worker(i):
        gate.wait()
        t0 = time.monotonic()
        try:
            ok, detail = fn(i)
        except Exception as e:  # reported, not raised: the figures count failures
            ok, detail = False, repr(e)
        out[i] = (ok, time.monotonic() - t0, detail)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def report(name, results):
    failed = [d for ok, _, d in results if not ok]
    print(f"{name}: {len(results) - len(failed)}/{len(results)} succeeded, "
          f"{fmt_ms(percentiles([s for _, s, _ in results]))}")
    for d in failed[:3]:
        print(f"  failure: {d.strip()[:200]}")
    return not failed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--pulls", type=int, default=10)
    ap.add_argument("--conns", type=int, default=100)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()

    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    agent = os.environ.get("BERTH_AGENT", os.path.join(target, "debug", "berth-agent"))
    tmp = tempfile.mkdtemp(prefix="berth-load-")
    reg_dir = os.path.join(tmp, "registry")
    sock = os.path.join(tmp, "engine.sock")
    tag = f"{os.getpid() % 100000}"
    bridge, sub = f"bld{tag}", f"10.{random.randint(200, 250)}.{random.randint(0, 254)}"
    registry_py = os.path.join(ROOT, "tests/fixtures/registry.py")
    engine = None
    ok = True
    try:
        out = subprocess.run([sys.executable, registry_py, "start", "--dir", reg_dir],
                             check=True, capture_output=True, text=True).stdout
        reg = out.strip().splitlines()[-1]
        subprocess.run([sys.executable, registry_py, "fill", "--registry", reg],
                       check=True, capture_output=True)
        log = open(os.path.join(tmp, "engine.log"), "w")
        engine = subprocess.Popen(
            [agent, "-H", f"unix://{sock}", "--data-root", os.path.join(tmp, "data"),
             "--bridge", bridge, "--bip", f"{sub}.1/24", "--registry-mirror", f"http://{reg}"],
            stdout=log, stderr=log, env={**os.environ, "RUST_LOG": "warn"})
        env = {**os.environ, "DOCKER_HOST": f"unix://{sock}"}
        docker = lambda *a: subprocess.run([DOCKER, *a], env=env, capture_output=True,  # noqa: E731
                                           text=True, timeout=600)
        wait_for(lambda: docker("version").returncode == 0, 30, "berth-agent")
        time.sleep(2)
        print(f"berth-agent idle RSS: {rss_kb(engine.pid) / 1024:.1f} MB")
        docker("pull", "busybox")

        def run(_):
            r = docker("run", "--rm", "busybox", "true")
            return r.returncode == 0, r.stderr

        ok &= report(f"{args.runs} concurrent docker run --rm busybox true",
                     concurrently(args.runs, run))
        print(f"  RSS after: {rss_kb(engine.pid) / 1024:.1f} MB")

        image = f"{reg}/berth-test/multilayer:latest"

        def pull(_):
            r = docker("pull", image)
            return r.returncode == 0, r.stderr

        ok &= report(f"{args.pulls} concurrent pulls of berth-test/multilayer",
                     concurrently(args.pulls, pull))
        print(f"  RSS after: {rss_kb(engine.pid) / 1024:.1f} MB")

        port = None
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        r = docker("run", "-d", "--name", "web", "-p", f"127.0.0.1:{port}:80",
                   f"{reg}/berth-test/httpd:latest")
        if r.returncode != 0:
            sys.exit(f"load.py: httpd did not start: {r.stderr}")

        def get(_):
            with socket.create_connection(("127.0.0.1", port), timeout=30) as c:
                c.sendall(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
                data = b""
                while chunk := c.recv(65536):
                    data += chunk
            return b"berth-httpd-ok" in data, data[:80].decode(errors="replace")

        wait_for(lambda: get(0)[0], 30, "published port")
        ok &= report(f"{args.conns} concurrent connections to a published port",
                     concurrently(args.conns, get))
        print(f"berth-agent RSS now {rss_kb(engine.pid) / 1024:.1f} MB, "
              f"peak {rss_kb(engine.pid, 'VmHWM') / 1024:.1f} MB")
        docker("rm", "-f", "web")
    finally:
        if engine is not None:
            engine.send_signal(signal.SIGTERM)
            try:
                engine.wait(timeout=20)
            except subprocess.TimeoutExpired:
                engine.kill()
                engine.wait()
        subprocess.run([sys.executable, registry_py, "stop", "--dir", reg_dir], capture_output=True)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
