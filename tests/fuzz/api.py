#!/usr/bin/env python3
"""Fuzzes Berth's Docker API with Schemathesis, from Docker's own OpenAPI spec (v1.50).

Against the engine listening on --socket, or (as root) a fresh berth-agent that this script
starts with its own data root, bridge `bfz0` and 10.239.0.1/24, and stops at the end. A loopback
TCP port forwarded to the unix socket is what Schemathesis talks to (it has no unix transport).

Checks: `not_a_server_error` (no 5xx for a client's error); `--checks` adds others
(e.g. response_schema_conformance). Operations that would reach a registry or the internet,
change the host outside the engine's own directories, or stream forever are excluded (EXCLUDED
below); tests/fuzz/hooks.py strips bind mounts, devices, volume driver options and remote build
contexts from the generated requests.

  smoke (CI):  tests/fuzz/api.py --socket /path/engine.sock           (~ a few hundred requests)
  long run:    sudo tests/fuzz/api.py --long                          (>= 10 000 requests)

The venv comes from tests/fixtures/schemathesis.sh ($BERTH_SCHEMATHESIS, default
~/.cache/berth/schemathesis). The spec is the vendored crates/docker-api/spec copy
($BERTH_DOCKER_SPEC overrides). Exit status: 0 when every check passed, 1 on failures, 2 when
something needed is missing.
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "crates/docker-api/spec/docker-engine-api-v1.50.yaml"
HERE = Path(__file__).resolve().parent

# Paths never sent (regexes on the path without the base path): they are removed from the copy
# of the spec Schemathesis gets (its --exclude-* options did not keep the examples and fuzzing
# phases of 4.32.5 away from them).
EXCLUDED = [
    # Reach a registry or the internet.
    r"/images/create$",
    r"/images/\{name\}/push$",
    r"/images/search$",
    r"/distribution/",
    r"/auth$",
    r"/plugins/(pull|privileges|\{name\}/(upgrade|push))$",
    # Plugins are not supported by design: installing one answers 501.
    r"/plugins/create$",
    # Create bridges, addresses and NAT rules on the host from arbitrary subnets and options.
    r"/networks/create$",
    r"/networks/\{id\}/(connect|disconnect)$",
    # Streams that never end by themselves, and connection hijacking.
    r"/events$",
    r"/session$",
    r"/containers/\{id\}/attach(/ws)?$",
    # Swarm mode: dockerd itself answers 503 ("not a swarm manager") there.
    r"/(swarm|nodes|services|tasks|secrets|configs)(/|$)",
]


def venv_dir():
    return Path(
        os.environ.get("BERTH_SCHEMATHESIS", Path.home() / ".cache/berth/schemathesis")
    )


def fail_setup(msg):
    print(f"api fuzz: {msg}", file=sys.stderr)
    sys.exit(2)


def ping(sock_path, timeout=1.0):
    """True when the engine at `sock_path` answers GET /_ping with 200."""
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(timeout)
            s.connect(str(sock_path))
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: engine\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def wait_until(cond, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    fail_setup(f"timed out after {seconds}s waiting for {what}")


class Agent:
    """A berth-agent of its own: temp data root, bridge bfz0, 10.239.0.1/24."""

    def __init__(self, binary, bridge, bip):
        if os.geteuid() != 0:
            fail_setup("starting berth-agent needs root (or pass --socket)")
        if not binary.exists():
            fail_setup(f"no berth-agent at {binary}: build it (cargo build -p berth-agent) or pass --agent")
        self.bridge = bridge
        self.own_bridge = not Path("/sys/class/net", bridge).exists()
        self.dir = Path(tempfile.mkdtemp(prefix="berth-fuzz-"))
        self.sock = self.dir / "engine.sock"
        self.log = open(self.dir / "engine.log", "wb")
        self.proc = subprocess.Popen(
            [
                str(binary),
                "-H", f"unix://{self.sock}",
                "--data-root", str(self.dir / "data"),
                "--exec-root", str(self.dir / "run"),
                "--bridge", bridge,
                "--bip", bip,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_until(lambda: self.proc.poll() is not None or ping(self.sock), 60, "berth-agent")
        if self.proc.poll() is not None:
            fail_setup(f"berth-agent exited with {self.proc.returncode}: see {self.dir}/engine.log")

    def stop(self, keep):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        # What the engine leaves behind: mounts under its directory, the bridge it made.
        with open("/proc/self/mounts", encoding="utf-8") as f:
            mounts = [l.split()[1] for l in f if l.split()[1].startswith(str(self.dir))]
        for m in sorted(mounts, reverse=True):
            subprocess.call(["umount", "-l", m])
        if self.own_bridge:
            subprocess.call(["ip", "link", "del", self.bridge])
        if keep:
            print(f"api fuzz: engine log kept in {self.dir}/engine.log")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


class Forwarder:
    """127.0.0.1:<free port> → the unix socket, one unix connection per TCP connection."""

    def __init__(self, sock_path):
        self.sock_path = str(sock_path)
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.port = None
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(10)

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _client(self, tcp_r, tcp_w):
        engine = socket.socket(socket.AF_UNIX)
        engine.setblocking(False)
        try:
            await self.loop.sock_connect(engine, self.sock_path)
        except OSError:
            engine.close()
            tcp_w.close()
            return
        to_engine = asyncio.ensure_future(self._to_engine(tcp_r, engine))
        try:
            await self._from_engine(engine, tcp_w)
        finally:
            to_engine.cancel()
            engine.close()
            tcp_w.close()

    async def _to_engine(self, tcp_r, engine):
        """Copies the client's bytes to the engine, its end as a half close. When the engine
        stops reading (it answered without reading the whole body, and closed), the rest is
        dropped but the engine's socket stays open for reading: its answer is still on its way
        back, and an asyncio transport would lose it (a write error aborts the reading side
        too, which made the client see a connection closed without a response)."""
        while data := await tcp_r.read(65536):
            try:
                await self.loop.sock_sendall(engine, data)
            except OSError:
                while await tcp_r.read(65536):
                    pass
                return
        try:
            engine.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    async def _from_engine(self, engine, tcp_w):
        """Copies the engine's bytes to the client until the engine's end or reset (the engine
        resets a connection whose request body it did not read: passed on as a close)."""
        while True:
            try:
                data = await self.loop.sock_recv(engine, 65536)
            except OSError:
                return
            if not data:
                return
            tcp_w.write(data)
            try:
                await tcp_w.drain()
            except OSError:
                return


def forwarder_check(sock, n):
    """Sends `n` builds with a bad X-Registry-Config and a 64 KiB body through the forwarder:
    the engine answers 400 before reading the body and closes, and each answer must still
    reach the client (an earlier forwarder lost about one in six)."""
    fwd = Forwarder(sock)
    body = b"PK\x03\x04" + b"x" * 65536
    head = (b"POST /v1.50/build HTTP/1.1\r\nHost: berth\r\nContent-Type: application/x-tar\r\n"
            b"X-Registry-Config: O-&Qo\r\nContent-Length: %d\r\n\r\n" % len(body))
    lost = 0
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", fwd.port), timeout=20) as s:
            try:
                s.sendall(head + body)
            except OSError:
                pass
            answer = b""
            try:
                while chunk := s.recv(65536):
                    answer += chunk
            except OSError:
                pass
        lost += not answer.startswith(b"HTTP/1.1 400")
    print(f"forwarder check: {n - lost} of {n} answers arrived")
    return lost == 0


def schemathesis_cmd(args, port, report_dir):
    exe = venv_dir() / "bin/schemathesis"
    cmd = [
        str(exe), "run", str(report_dir / "spec.yaml"),
        "--url", f"http://127.0.0.1:{port}/v1.50",
        "--checks", args.checks,
        "--max-examples", str(args.max_examples),
        "--max-time", str(args.max_time),
        "--seed", str(args.seed),
        "--workers", "1",
        "--request-timeout", "20",
        "--suppress-health-check", "all",
        "--report", "ndjson,junit,vcr",
        "--report-dir", str(report_dir),
        "--warnings", "off",
    ]
    if args.phases:
        cmd += ["--phases", args.phases]
    return cmd + args.extra


def fuzzable_spec(spec, out):
    """Writes `spec` without the EXCLUDED paths to `out`; returns the paths removed."""
    import yaml  # from the Schemathesis venv

    with open(spec, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    removed = [p for p in doc["paths"] if any(re.match(f"^{rx}", p) for rx in EXCLUDED)]
    for p in removed:
        del doc["paths"][p]
    with open(out, "w", encoding="utf-8") as f:
        yaml.safe_dump(doc, f)
    return removed


def count_requests(report_dir):
    """Requests sent, from the NDJSON event reports (one interaction per request)."""
    n = 0
    for report in report_dir.glob("*.ndjson"):
        with open(report, encoding="utf-8") as f:
            for line in f:
                if '"ScenarioFinished"' in line:
                    ev = json.loads(line)["ScenarioFinished"]
                    n += len(ev.get("recorder", {}).get("interactions", {}))
    return n


def in_venv():
    """Re-runs this script with the Schemathesis venv's Python (for its YAML parser)."""
    python = venv_dir() / "bin/python"
    if not python.exists():
        fail_setup(f"{python} is missing: run tests/fixtures/schemathesis.sh (scripts/test.sh does)")
    if Path(sys.prefix).resolve() != venv_dir().resolve():
        os.execv(python, [str(python), __file__, *sys.argv[1:]])


def main():
    in_venv()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--socket", help="engine socket to fuzz (default: start a berth-agent)")
    p.add_argument("--agent", default=os.environ.get("BERTH_AGENT_BIN"),
                   help="berth-agent binary (default: $CARGO_TARGET_DIR/debug/berth-agent)")
    p.add_argument("--bridge", default="bfz0")
    p.add_argument("--bip", default="10.239.0.1/24")
    p.add_argument("--spec", default=os.environ.get("BERTH_DOCKER_SPEC", str(SPEC)))
    p.add_argument("--long", action="store_true", help="the long run (>= 10 000 requests)")
    p.add_argument("--max-examples", type=int, default=None)
    p.add_argument("--max-time", type=int, default=None, help="seconds")
    p.add_argument("--phases", default=None)
    p.add_argument("--seed", type=int, default=int(os.environ.get("BERTH_FUZZ_SEED", "1")))
    p.add_argument("--checks", default="not_a_server_error")
    p.add_argument("--report-dir", default=None)
    p.add_argument("--forwarder-check", type=int, default=0, metavar="N",
                   help="only check the forwarder: N requests the engine answers without "
                        "reading their body must all get their answer")
    p.add_argument("extra", nargs="*", help="after --: more schemathesis options")
    args = p.parse_args()
    if args.max_examples is None:
        args.max_examples = 150 if args.long else 3
    if args.max_time is None:
        args.max_time = 3600 if args.long else 60
    if args.phases is None and not args.long:
        args.phases = "examples,fuzzing"
    if not Path(args.spec).exists():
        fail_setup(f"no API spec at {args.spec} (set BERTH_DOCKER_SPEC)")

    agent = None
    if args.socket:
        sock = Path(args.socket)
    else:
        target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
        agent = Agent(Path(args.agent or target / "debug/berth-agent"), args.bridge, args.bip)
        sock = agent.sock
    if not ping(sock):
        fail_setup(f"no engine answers on {sock}")

    if args.forwarder_check:
        sys.exit(0 if forwarder_check(sock, args.forwarder_check) else 1)
    ok = False
    try:
        ok = fuzz(args, sock)
    finally:
        if agent:
            agent.stop(keep=not ok)
    sys.exit(0 if ok else 1)


def fuzz(args, sock):
    """Runs Schemathesis against the engine on `sock`; True when all passed and it still answers."""
    report_dir = Path(args.report_dir or tempfile.mkdtemp(prefix="berth-fuzz-report-"))
    report_dir.mkdir(parents=True, exist_ok=True)
    removed = fuzzable_spec(args.spec, report_dir / "spec.yaml")
    print(f"api fuzz: {len(removed)} paths left out: {' '.join(removed)}")
    fwd = Forwarder(sock)
    env = dict(os.environ, PYTHONPATH=str(HERE), SCHEMATHESIS_HOOKS="hooks", NO_COLOR="1")
    started = time.monotonic()
    rc = subprocess.call(schemathesis_cmd(args, fwd.port, report_dir), env=env, cwd=report_dir)
    secs = time.monotonic() - started
    requests = count_requests(report_dir)
    alive = ping(sock, timeout=5)
    print(f"api fuzz: {requests} requests in {secs:.0f} s, schemathesis exit {rc}, "
          f"engine {'alive' if alive else 'DEAD'}; reports in {report_dir}")
    return rc == 0 and alive


if __name__ == "__main__":
    main()
