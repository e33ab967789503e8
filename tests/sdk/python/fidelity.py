"""API fidelity checks with the Docker SDK for Python: behaviours where Berth must answer as
dockerd does (exec framing and hijacking, build parameters and streams, networks, containers).

Run by tests/cli/sdk_python.rs like test_sdk.py, one area per test:

    DOCKER_HOST=unix:///…/engine.sock python fidelity.py [CHECK…]
"""

import io
import os
import socket
import struct
import sys
import tempfile
import time

import docker
import docker.errors
from docker.utils.socket import next_frame_header, read_exactly

import test_sdk
from test_sdk import eq, ok, raises, wait_for

client = test_sdk.client
api = test_sdk.api
CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def fresh(name, cmd, **kw):
    """A detached busybox container `name` (a leftover of that name is removed first)."""
    try:
        client.containers.get(name).remove(force=True)
    except docker.errors.NotFound:
        pass
    return client.containers.run("busybox", cmd, detach=True, name=name, **kw)


def sleeper(name, **kw):
    return fresh(name, ["sleep", "300"], **kw)


def remove_quietly(c):
    """Removes `c`, only reporting a failure: a container whose TTY exec was detached from has
    been seen not to report its exit within the engine's 15 s after SIGKILL on a loaded
    machine (a removal issue, not what these checks test)."""
    try:
        c.remove(force=True)
    except docker.errors.APIError as e:
        print(f"warning: removing {c.name}: {e}", flush=True)


def frame(stream, data):
    return struct.pack(">BxxxL", stream, len(data)) + data


def engine_socket():
    host = os.environ["DOCKER_HOST"]
    ok(host.startswith("unix://"), f"DOCKER_HOST {host}")
    return host[len("unix://"):]


def read_to_end(sock, timeout=20.0):
    sock.settimeout(timeout)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


# ---------------------------------------------------------------------------------------------
# Exec


@check
def exec_framing_follows_the_start_request():
    c = sleeper("fid-exec-framing")
    # A TTY exec started with Tty false (the SDK's default) is multiplexed, as on a raw socket.
    ex = api.exec_create(c.id, ["printf", "yay, interactive exec!"], tty=True)
    sock = api.exec_start(ex["Id"], socket=True)
    raw = sock._sock
    stream, size = next_frame_header(raw)
    eq(stream, 1, "stream of the first frame")
    eq(read_exactly(raw, size), b"yay, interactive exec!", "first frame")
    sock.close()
    ex = api.exec_create(c.id, ["echo", "hello"], tty=True)
    # (The terminal's line ending may reach the stream as \r\r\n: not about framing.)
    eq(api.exec_start(ex["Id"]).replace(b"\r", b""), b"hello\n", "TTY exec read as frames")
    # A plain exec started with Tty true is raw.
    ex = api.exec_create(c.id, ["echo", "plain"])
    eq(api.exec_start(ex["Id"], tty=True), b"plain\n", "plain exec read raw")
    c.remove(force=True)


@check
def exec_start_without_upgrade_hijacks_the_connection():
    c = sleeper("fid-exec-noupgrade")
    ex = api.exec_create(c.id, ["echo", "hello"])
    body = b'{"Detach":false,"Tty":false}'
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(engine_socket())
    s.sendall(
        f"POST /v1.41/exec/{ex['Id']}/start HTTP/1.1\r\nHost: docker\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    )
    data = read_to_end(s)
    s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    ok(head.split(b"\r\n")[0].split(b" ")[1] == b"200", f"status line of {head!r}")
    ok(b"application/vnd.docker.raw-stream" in head.lower(), f"content type in {head!r}")
    eq(rest, frame(1, b"hello\n"), "the exec's output, framed, to the end of the connection")
    eq(api.exec_inspect(ex["Id"])["ExitCode"], 0, "exit code")
    c.remove(force=True)


@check
def exec_detach_keys_from_the_config_file():
    c = fresh("fid-exec-keys", ["cat"], stdin_open=True, tty=True)
    api._general_configs["detachKeys"] = "ctrl-p"
    try:
        ex = api.exec_create(c.id, "cat", tty=True, stdin=True)
        sock = api.exec_start(ex["Id"], tty=True, socket=True)
        raw = sock._sock
        raw.sendall(b"\x10")
        # Detached: the engine closes the connection.
        rest = read_to_end(raw, 10)
        ok(rest == b"" or rest.endswith(b"read escape sequence\r\n"), f"after detaching: {rest!r}")
        sock.close()
        eq(api.exec_inspect(ex["Id"])["Running"], True, "the detached exec runs on")
    finally:
        api._general_configs.pop("detachKeys", None)
    remove_quietly(c)


# ---------------------------------------------------------------------------------------------
# Build


def build_log(**kw):
    lines = []
    for chunk in api.build(decode=True, **kw):
        if "error" in chunk:
            raise AssertionError(f"build error: {chunk}")
        lines.append(chunk.get("stream"))
    return lines


def run_output(image, cmd):
    return client.containers.run(image, cmd, remove=True).decode()


@check
def build_dockerfile_outside_the_context():
    ctx = tempfile.mkdtemp()
    outside = tempfile.mkdtemp()
    with open(os.path.join(ctx, "data"), "w") as f:
        f.write("in context\n")
    with open(os.path.join(outside, "Dockerfile.out"), "w") as f:
        f.write("FROM busybox\nCOPY data /data\n")
    build_log(path=ctx, dockerfile=os.path.join(outside, "Dockerfile.out"), tag="fid-outside")
    eq(run_output("fid-outside", ["cat", "/data"]), "in context\n", "file from the context")
    client.images.remove("fid-outside")


@check
def build_dockerignore_with_exceptions():
    base = tempfile.mkdtemp()
    files = {
        "Dockerfile": "FROM busybox\nADD . /test\n",
        ".dockerignore": "ignored\nDockerfile\n.dockerignore\n!ignored/subdir/excepted-file\n\n#*\n",
        "not-ignored": "kept",
        "#file.txt": "kept",
        "ignored/subdir/file": "dropped",
        "ignored/subdir/excepted-file": "kept",
    }
    for name, text in files.items():
        os.makedirs(os.path.dirname(os.path.join(base, name)), exist_ok=True)
        with open(os.path.join(base, name), "w") as f:
            f.write(text)
    build_log(path=base, tag="fid-ignore")
    out = run_output("fid-ignore", ["find", "/test", "-type", "f"])
    eq(sorted(filter(None, out.split("\n"))),
       ["/test/#file.txt", "/test/ignored/subdir/excepted-file", "/test/not-ignored"], "files")
    client.images.remove("fid-ignore")


def dockerfile(*lines):
    return io.BytesIO("\n".join(lines).encode())


@check
def build_cache_from():
    lines = ("FROM busybox", "ENV FOO=bar", "RUN touch baz", "RUN touch bax")
    build_log(fileobj=dockerfile(*lines), tag="fid-build1")
    hits = sum("Using cache" in (s or "") for s in
               build_log(fileobj=dockerfile(*lines), tag="fid-build2", cache_from=["fid-build1"]))
    eq(hits, 3, "steps from the cache of fid-build1")
    client.images.remove("fid-build2")
    hits = sum("Using cache" in (s or "") for s in
               build_log(fileobj=dockerfile(*lines), tag="fid-build2", cache_from=["nosuchtag"]))
    eq(hits, 0, "steps from the cache with only a missing cache source")
    client.images.remove("fid-build2")
    client.images.remove("fid-build1")


@check
def build_extra_hosts():
    build_log(fileobj=dockerfile("FROM busybox", "RUN ping -c1 hello.world.test",
                                 "RUN cp /etc/hosts /hosts-file"),
              tag="fid-extrahost", extra_hosts={"hello.world.test": "127.0.0.1"})
    out = run_output("fid-extrahost", ["cat", "/hosts-file"])
    ok("127.0.0.1\thello.world.test" in out, f"hosts file {out!r}")
    client.images.remove("fid-extrahost")


@check
def build_run_stderr_in_red():
    snippet = "Ancient Temple (Mystic Oriental Dream ~ Ancient Temple)"
    lines = build_log(fileobj=dockerfile("FROM busybox", f"RUN sh -c \">&2 echo '{snippet}'\""),
                      nocache=True)
    ok(f"\x1b[91m{snippet}\n\x1b[0m" in lines, f"stream lines {lines!r}")


def main():
    test_sdk.CHECKS[:] = CHECKS
    return test_sdk.main()


if __name__ == "__main__":
    sys.exit(main())
