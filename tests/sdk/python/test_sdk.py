"""The official Docker SDK for Python (docker-py) against a Berth engine, end to end.

Run by tests/cli/sdk_python.rs with the venv from tests/fixtures/python-sdk.sh:

    DOCKER_HOST=unix:///…/engine.sock python test_sdk.py [CHECK…]

The engine must pull docker.io names through a mirror holding the fixture images (busybox,
berth-test/httpd). Talks only to the engine socket and to loopback ports the engine publishes.
Every check runs even when an earlier one failed; the exit status is 1 if any failed.
"""

import io
import json
import socket
import sys
import tarfile
import time
import traceback
import urllib.request

import os
import tempfile

import docker
import docker.errors
from docker.types import EndpointConfig, Healthcheck, Mount, Ulimit
from docker.utils.socket import frames_iter

PREFIX = "sdkpy"
CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def eq(got, want, what=""):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


def ok(cond, what):
    if not cond:
        raise AssertionError(what)


def raises(exc, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc as e:
        return e
    raise AssertionError(f"{getattr(fn, '__name__', fn)} did not raise {exc.__name__}")


def wait_for(what, cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def tar_of(files):
    """An in-memory tar of {name: bytes}."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 1700000000
            t.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def untar(chunks):
    """{name: bytes or None for non-files} of a tar given as an iterable of byte chunks."""
    data = b"".join(chunks)
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        for m in t.getmembers():
            f = t.extractfile(m) if m.isfile() else None
            out[m.name] = f.read() if f else None
    return out


client = docker.from_env(timeout=60)
api = client.api


def run(cmd, **kw):
    """A detached busybox container named sdkpy-…, removed at the end by the cleanup check."""
    kw.setdefault("detach", True)
    return client.containers.run("busybox", cmd, **kw)


# ---------------------------------------------------------------------------------------------
# System


@check
def system_ping_version_info():
    eq(client.ping(), True, "ping")
    v = client.version()
    eq(v["ApiVersion"], "1.50", "ApiVersion")
    eq(api.api_version, "1.50", "negotiated api version")
    ok(v["Components"], "version Components")
    info = client.info()
    for key in ("Containers", "Images", "OSType", "Architecture", "Driver", "Name", "ID"):
        ok(key in info, f"info has {key}")
    eq(info["OSType"], "linux", "OSType")
    df = client.df()
    ok("LayersSize" in df and "Images" in df, f"df keys {list(df)}")


# ---------------------------------------------------------------------------------------------
# Images


@check
def images_pull_get_list_tag_remove():
    img = client.images.pull("busybox", tag="latest")
    ok(isinstance(img, docker.models.images.Image), f"pull returns an Image: {img!r}")
    ok("busybox:latest" in img.tags, f"tags {img.tags}")
    eq(img.id.startswith("sha256:"), True, "image id")
    # pull without a tag pulls :latest (docker-py adds it) and returns the Image
    img2 = client.images.pull("busybox")
    eq(img2.id, img.id, "pull without tag")
    # the low-level stream decodes to progress dicts ending in a Status line
    events = list(api.pull("berth-test/httpd", tag="latest", stream=True, decode=True))
    ok(any(str(e.get("status", "")).startswith("Status:") for e in events), f"{events[-3:]}")

    got = client.images.get("busybox")
    eq(got.id, img.id, "images.get")
    eq(got.attrs["Config"]["Cmd"], ["sh"], "Config.Cmd")
    eq(got.short_id, img.id[:19], "short_id")
    ok(img.id in [i.id for i in client.images.list()], "images.list")
    eq([i.id for i in client.images.list(name="busybox")], [img.id], "images.list(name)")
    ok(
        all(i.id != img.id for i in client.images.list(filters={"dangling": True})),
        "busybox is not dangling",
    )

    ok(img.tag("sdkpy/tagged", tag="v1"), "tag returns True")
    img.reload()
    ok("sdkpy/tagged:v1" in img.tags, f"tags after tag {img.tags}")
    eq(client.images.get("sdkpy/tagged:v1").id, img.id, "get by new tag")
    hist = img.history()
    ok(len(hist) >= 1, "history")
    for key in ("Id", "Created", "CreatedBy", "Tags", "Size", "Comment"):
        ok(key in hist[0], f"history entry has {key}: {hist[0]}")
    client.images.remove("sdkpy/tagged:v1")
    raises(docker.errors.ImageNotFound, client.images.get, "sdkpy/tagged:v1")
    e = raises(docker.errors.ImageNotFound, client.images.get, "sdkpy/nope")
    eq(e.status_code, 404, "missing image status")
    e = raises(docker.errors.NotFound, client.images.pull, "sdkpy/not-in-registry")
    ok("sdkpy/not-in-registry" in str(e), f"pull error names the image: {e}")


@check
def images_build_from_memory():
    dockerfile = (
        b"FROM busybox\n"
        b"ARG GREETING=hi\n"
        b"LABEL org.berth.sdk=py\n"
        b"COPY hello.txt /hello.txt\n"
        b"RUN echo \"$GREETING from build\" > /built.txt\n"
        b"ENV SDK=python\n"
        b'CMD ["cat", "/hello.txt", "/built.txt"]\n'
    )
    ctx = tar_of({"Dockerfile": dockerfile, "hello.txt": b"hello from context\n"})
    img, logs = client.images.build(
        fileobj=ctx,
        custom_context=True,
        tag="sdkpy/built:1",
        buildargs={"GREETING": "hey"},
        labels={"org.berth.extra": "x"},
        rm=True,
    )
    logs = list(logs)
    ok(any("Successfully built" in l.get("stream", "") for l in logs), f"build log {logs}")
    eq(img.labels.get("org.berth.sdk"), "py", "LABEL")
    eq(img.labels.get("org.berth.extra"), "x", "labels=")
    ok("SDK=python" in img.attrs["Config"]["Env"], "ENV")
    out = client.containers.run("sdkpy/built:1", remove=True)
    eq(out, b"hello from context\nhey from build\n", "built image output")

    # A bare Dockerfile as fileobj (docker-py wraps it into a context itself).
    img2, _ = client.images.build(
        fileobj=io.BytesIO(b"FROM busybox\nRUN echo two > /two\n"), tag="sdkpy/built:2"
    )
    eq(client.containers.run(img2.id, ["cat", "/two"], remove=True), b"two\n", "fileobj build")

    # A failing RUN is a BuildError carrying the log.
    ctx = tar_of({"Dockerfile": b"FROM busybox\nRUN exit 3\n"})
    e = raises(docker.errors.BuildError, client.images.build, fileobj=ctx, custom_context=True)
    ok("3" in e.msg, f"BuildError message names the exit code: {e.msg}")


# ---------------------------------------------------------------------------------------------
# Containers


@check
def containers_run_foreground_and_remove():
    out = client.containers.run(
        "busybox",
        ["sh", "-c", "echo $FOO-$BAR; echo err >&2"],
        environment={"FOO": "foo", "BAR": "bar"},
        remove=True,
        name="sdkpy-fg",
    )
    eq(out, b"foo-bar\n", "stdout of a foreground run")
    wait_for("auto-removed container", lambda: not client.containers.list(all=True, filters={"name": "sdkpy-fg"}))
    out = client.containers.run(
        "busybox", entrypoint=["echo"], command=["a", "b"], stdout=True, stderr=True, remove=True
    )
    eq(out, b"a b\n", "entrypoint + command")
    out = client.containers.run("busybox", ["sh", "-c", "ulimit -Sn; ulimit -Hn"], remove=True,
                                ulimits=[Ulimit(name="nofile", soft=1024, hard=2048)])
    eq(out, b"1024\n2048\n", "ulimits")
    out = client.containers.run("busybox", "sh -c 'echo o; echo e >&2'", stderr=True, stdout=False, remove=True)
    eq(out, b"e\n", "stderr only")
    e = raises(
        docker.errors.ContainerError,
        client.containers.run,
        "busybox",
        ["sh", "-c", "echo bad >&2; exit 3"],
        remove=True,
    )
    eq(e.exit_status, 3, "ContainerError exit status")
    ok(b"bad" in e.stderr, f"ContainerError stderr {e.stderr!r}")
    # create → 404 "No such image" → pull → the registry's 404 (NotFound, as dockerd with a
    # private registry; Docker Hub's "repository does not exist" text would make it ImageNotFound)
    raises(docker.errors.NotFound, client.containers.run, "sdkpy/none:latest", "true")


@check
def containers_run_detached_with_options():
    vol = client.volumes.create("sdkpy-data")
    c = client.containers.run(
        "berth-test/httpd",
        name="sdkpy-web",
        detach=True,
        ports={"80/tcp": ("127.0.0.1", None)},
        volumes={"sdkpy-data": {"bind": "/data", "mode": "rw"}},
        labels={"org.berth.sdk": "py"},
        environment=["A=1"],
        working_dir="/www",
        hostname="webhost",
    )
    ok(isinstance(c, docker.models.containers.Container), "run(detach) returns a Container")
    c.reload()
    eq(c.status, "running", "status")
    eq(c.name, "sdkpy-web", "name")
    eq(c.labels, {"org.berth.sdk": "py"}, "labels")
    eq(c.image.id, client.images.get("berth-test/httpd").id, "container.image")
    ok("A=1" in c.attrs["Config"]["Env"], "env")
    eq(c.attrs["Config"]["Hostname"], "webhost", "hostname")
    eq(c.attrs["Config"]["WorkingDir"], "/www", "working dir")
    mounts = c.attrs["Mounts"]
    eq([(m["Type"], m["Name"], m["Destination"]) for m in mounts], [("volume", vol.name, "/data")], "mounts")
    port = c.ports["80/tcp"][0]
    eq(port["HostIp"], "127.0.0.1", "published host ip")
    hp = int(port["HostPort"])
    eq(api.port(c.id, 80), [port], "APIClient.port")
    body = b""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{hp}/", timeout=2).read()
            break
        except OSError:
            time.sleep(0.1)
    ok(b"berth-httpd-ok" in body, f"published port answers: {body!r}")
    eq([x.id for x in client.containers.list(filters={"label": "org.berth.sdk=py"})], [c.id], "list by label")
    eq(client.containers.get("sdkpy-web").id, c.id, "get by name")
    eq(client.containers.get(c.short_id).id, c.id, "get by short id")
    c.remove(force=True)
    raises(docker.errors.NotFound, client.containers.get, "sdkpy-web")


@check
def containers_logs_stream_follow_and_wait():
    c = run(["sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.2; done; echo err >&2; exit 4"], name="sdkpy-logs")
    lines = []
    for chunk in c.logs(stream=True, follow=True):
        lines.append(chunk)
    text = b"".join(lines)
    eq(text, b"line1\nline2\nline3\nerr\n", "followed logs until exit")
    eq(c.wait(), {"StatusCode": 4, "Error": None}, "wait")
    eq(c.wait(timeout=5)["StatusCode"], 4, "wait again on an exited container")
    eq(c.logs(stdout=False), b"err\n", "stderr logs")
    eq(c.logs(tail=1), b"err\n", "tail")
    ts = c.logs(timestamps=True).splitlines()
    ok(len(ts) == 4 and ts[0].split(b" ", 1)[1] == b"line1", f"timestamps {ts}")
    eq(c.logs(since=int(time.time()) + 10), b"", "since in the future")
    c.remove()


@check
def containers_wait_timeout_and_conditions():
    c = run(["sleep", "30"], name="sdkpy-waiter")
    import requests

    raises(requests.exceptions.ConnectionError, c.wait, timeout=1)
    c.kill()
    eq(c.wait(timeout=10)["StatusCode"], 137, "killed exit code")
    c.remove()
    c = client.containers.create("busybox", ["true"], name="sdkpy-next")
    c.start()
    eq(c.wait(condition="not-running", timeout=10)["StatusCode"], 0, "not-running")
    c.remove()


@check
def exec_run_variants():
    c = run(["sleep", "60"], name="sdkpy-exec")
    r = c.exec_run(["sh", "-c", "echo out; echo err >&2; exit 5"])
    eq(r.exit_code, 5, "exec exit code")
    eq(sorted(r.output.splitlines()), [b"err", b"out"], "exec combined output")
    r = c.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True)
    eq(r.output, (b"out\n", b"err\n"), "demux")
    eq(r.exit_code, 0, "demux exit code")
    r = c.exec_run("sh -c 'echo $X in $(pwd) as $(id -u)'", environment={"X": "y"}, workdir="/tmp", user="nobody")
    eq(r.output, b"y in /tmp as 65534\n", "env, workdir, user")
    r = c.exec_run(["sh", "-c", "echo a; sleep 0.2; echo b"], stream=True)
    eq(r.exit_code, None, "stream has no exit code")
    eq(b"".join(r.output), b"a\nb\n", "streamed exec")
    r = c.exec_run(["sh", "-c", "echo o; echo e >&2"], stream=True, demux=True)
    got = list(r.output)
    eq(b"".join(o for o, _ in got if o), b"o\n", "stream+demux stdout")
    eq(b"".join(e for _, e in got if e), b"e\n", "stream+demux stderr")
    r = c.exec_run(["sh", "-c", "echo hi"], socket=True)
    sock = r.output
    eq(b"".join(d for _, d in frames_iter(sock, False)), b"hi\n", "exec socket")
    sock.close()
    r = c.exec_run(["tty"], tty=True)
    ok(r.output.startswith(b"/dev/pts/"), f"tty exec {r.output!r}")
    r = c.exec_run(["sh", "-c", "touch /tmp/detached"], detach=True)
    ok(not r.output, f"detached exec output {r.output!r}")
    wait_for("detached exec", lambda: c.exec_run(["test", "-e", "/tmp/detached"]).exit_code == 0)
    # low-level: create, start, inspect
    eid = api.exec_create(c.id, ["sh", "-c", "exit 9"])["Id"]
    api.exec_start(eid)
    ins = api.exec_inspect(eid)
    eq((ins["ExitCode"], ins["Running"], ins["ContainerID"]), (9, False, c.id), "exec_inspect")
    raises(docker.errors.NotFound, api.exec_inspect, "nope")
    c.stop(timeout=0)
    e = raises(docker.errors.APIError, c.exec_run, ["true"])
    eq(e.status_code, 409, "exec in a stopped container")
    c.remove()


@check
def attach_socket_and_attach():
    c = client.containers.create(
        "busybox", ["sh", "-c", "read line; echo got:$line; echo bye >&2"], name="sdkpy-attach",
        stdin_open=True,
    )
    sock = c.attach_socket(params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
    raw = sock._sock
    c.start()
    raw.sendall(b"hello\n")
    raw.shutdown(socket.SHUT_WR)
    frames = docker.utils.socket.frames_iter(raw, tty=False)
    got = {1: b"", 2: b""}
    for stream, data in frames:
        got[stream] += data
    raw.close()
    eq(got, {1: b"got:hello\n", 2: b"bye\n"}, "attach socket frames")
    eq(c.wait(timeout=10)["StatusCode"], 0, "after attach")
    c.remove()

    # Container.attach(stream=True, logs=True) on a running container
    c = run(["sh", "-c", "echo first; sleep 0.3; echo second"], name="sdkpy-attach2")
    out = b"".join(c.attach(stream=True, logs=True, stdout=True, stderr=True))
    eq(out, b"first\nsecond\n", "attach stream with logs")
    eq(c.wait(timeout=10)["StatusCode"], 0, "after attach with logs")
    c.remove()


@check
def archive_put_get():
    c = run(["sleep", "60"], name="sdkpy-archive")
    ok(c.put_archive("/tmp", tar_of({"a.txt": b"A\n", "dir/b.txt": b"B\n"}).getvalue()), "put_archive")
    eq(c.exec_run(["cat", "/tmp/a.txt", "/tmp/dir/b.txt"]).output, b"A\nB\n", "files arrived")
    bits, stat = c.get_archive("/tmp/dir")
    eq(stat["name"], "dir", "stat name")
    ok(stat["mode"] & (1 << 31), f"stat mode is a Go FileMode dir: {stat['mode']:#x}")
    files = untar(bits)
    eq(files.get("dir/b.txt"), b"B\n", f"get_archive contents {list(files)}")
    bits, stat = c.get_archive("/tmp/a.txt", encode_stream=True)
    eq(untar(bits), {"a.txt": b"A\n"}, "single file")
    eq(stat["size"], 2, "file size")
    raises(docker.errors.NotFound, c.get_archive, "/nope")
    raises(docker.errors.NotFound, c.put_archive, "/nope", tar_of({"x": b""}).getvalue())
    c.remove(force=True)


@check
def stats_update_top_diff_export_commit():
    c = run(["sh", "-c", "echo data > /new.txt; rm /etc/group; sleep 60"], name="sdkpy-misc")
    wait_for("file written", lambda: c.exec_run(["test", "-e", "/new.txt"]).exit_code == 0)
    s = c.stats(stream=False)
    for key in ("read", "preread", "cpu_stats", "precpu_stats", "memory_stats", "pids_stats", "networks", "name", "id"):
        ok(key in s, f"stats has {key}")
    eq(s["id"], c.id, "stats id")
    ok(s["memory_stats"].get("usage", 0) > 0, f"memory usage {s['memory_stats']}")
    ok(s["cpu_stats"]["cpu_usage"]["total_usage"] > 0, "cpu usage")
    one = next(c.stats(decode=True, stream=True))
    eq(one["id"], c.id, "streamed stats")
    one = api.stats(c.id, stream=False, one_shot=True)
    eq(one["id"], c.id, "one-shot stats")

    r = c.update(mem_limit="64m", memswap_limit="128m", cpu_shares=512, cpu_quota=50000, cpu_period=100000)
    ok("Warnings" in r, f"update result {r}")
    c.reload()
    hc = c.attrs["HostConfig"]
    eq((hc["Memory"], hc["MemorySwap"], hc["CpuShares"], hc["CpuQuota"], hc["CpuPeriod"]),
       (64 << 20, 128 << 20, 512, 50000, 100000), "updated")
    c.update(restart_policy={"Name": "on-failure", "MaximumRetryCount": 2})
    c.reload()
    eq(c.attrs["HostConfig"]["RestartPolicy"], {"Name": "on-failure", "MaximumRetryCount": 2}, "restart policy")

    top = c.top()
    eq(top["Titles"][:2], ["UID", "PID"], f"top titles {top['Titles']}")
    ok(any("sleep 60" in " ".join(p) for p in top["Processes"]), f"top {top['Processes']}")
    top = c.top(ps_args="-o pid,comm")
    eq(top["Titles"], ["PID", "COMMAND"], "top ps_args")

    diff = {(d["Path"], d["Kind"]) for d in c.diff()}
    for want in [("/new.txt", 1), ("/etc", 0), ("/etc/group", 2)]:
        ok(want in diff, f"diff has {want}: {sorted(diff)}")

    exported = untar(c.export())
    eq(exported.get("new.txt"), b"data\n", "export has the new file")
    ok("etc/group" not in exported and "bin/busybox" in exported, "export is the container fs")

    img = c.commit(repository="sdkpy/committed", tag="v1", message="from sdk", author="py",
                   changes=["ENV COMMITTED=1"], conf={"Labels": {"c": "1"}})
    eq(img.tags, ["sdkpy/committed:v1"], "commit tag")
    eq(img.attrs["Comment"], "from sdk", "commit message")
    eq(img.attrs["Author"], "py", "commit author")
    ok("COMMITTED=1" in img.attrs["Config"]["Env"], "commit changes")
    eq(img.labels.get("c"), "1", "commit conf labels")
    out = client.containers.run(img.id, ["cat", "/new.txt"], remove=True)
    eq(out, b"data\n", "committed image has the file")
    c.remove(force=True)


@check
def lifecycle_rename_pause_kill_restart():
    # PID 1 ignores signals it has no handler for: trap TERM so kill(signal=) is observable.
    c = run(["sh", "-c", "trap 'exit 7' TERM; while :; do sleep 0.1; done"], name="sdkpy-life")
    c.rename("sdkpy-life2")
    c.reload()
    eq(c.name, "sdkpy-life2", "renamed")
    other = client.containers.create("busybox", name="sdkpy-life3")
    e = raises(docker.errors.APIError, c.rename, "sdkpy-life3")
    eq(e.status_code, 409, "rename onto a taken name")
    other.remove()

    c.pause()
    c.reload()
    eq((c.status, c.attrs["State"]["Paused"]), ("paused", True), "paused")
    e = raises(docker.errors.APIError, c.pause)
    eq(e.status_code, 409, "pause twice")
    c.unpause()
    c.reload()
    eq(c.status, "running", "unpaused")

    pid1 = c.attrs["State"]["Pid"]
    c.restart(timeout=0)
    c.reload()
    eq(c.status, "running", "restarted")
    ok(c.attrs["State"]["Pid"] != pid1, "new pid after restart")

    c.kill(signal="SIGTERM")
    eq(c.wait(timeout=10)["StatusCode"], 7, "SIGTERM handled by the trap")
    c.start()
    c.kill()
    eq(c.wait(timeout=10)["StatusCode"], 137, "SIGKILL exit status")
    e = raises(docker.errors.APIError, c.kill)
    eq(e.status_code, 409, "kill a stopped container")
    c.start()
    c.stop(timeout=1)
    c.reload()
    eq(c.status, "exited", "stopped")
    c.remove()
    raises(docker.errors.NotFound, c.reload)


@check
def containers_run_host_config_options():
    c = client.containers.run(
        "busybox", ["sleep", "60"], detach=True, name="sdkpy-opts",
        mounts=[Mount("/m", None, type="tmpfs", tmpfs_size=1 << 20), Mount("/v", "sdkpy-mv", type="volume")],
        tmpfs={"/t": "size=2m"}, read_only=True, user="nobody", cap_add=["NET_ADMIN"], cap_drop=["CHOWN"],
        dns=["192.0.2.53"], dns_search=["example.test"], dns_opt=["ndots:3"],
        extra_hosts={"foo.local": "10.9.8.7"}, init=True, shm_size="16m",
        ulimits=[Ulimit(name="nofile", soft=1024, hard=2048)], mem_limit="64m",
        restart_policy={"Name": "unless-stopped"}, publish_all_ports=True,
        ports={"8080/tcp": None, "9000/udp": ("127.0.0.1", 19000)},
        healthcheck=Healthcheck(test=["CMD", "true"], interval=100_000_000, retries=2),
        hostname="h1", stop_signal="SIGUSR1",
    )
    c.reload()
    eq(c.exec_run(["id", "-u"]).output, b"65534\n", "user")
    hosts = c.exec_run(["cat", "/etc/hosts"]).output
    ok(b"10.9.8.7\tfoo.local\n" in hosts, f"extra_hosts in /etc/hosts: {hosts!r}")
    eq(c.exec_run(["cat", "/etc/resolv.conf"]).output,
       b"search example.test\nnameserver 192.0.2.53\noptions ndots:3\n", "dns, dns_search, dns_opt")
    # (the soft limit of an exec by a non-root user is runc's business: its Go runtime raises it)
    eq(c.exec_run(["sh", "-c", "ulimit -Hn"]).output, b"2048\n", "ulimit in exec")
    ok(c.exec_run(["touch", "/x"]).exit_code != 0, "read-only root")
    eq(c.exec_run(["touch", "/t/x", "/m/x"]).exit_code, 0, "tmpfs mounts are writable")
    eq(c.exec_run(["sh", "-c", "echo $(( $(stat -f -c '%b*%S' /dev/shm) ))"]).output, b"16777216\n", "shm size")
    hc = c.attrs["HostConfig"]
    eq((hc["RestartPolicy"]["Name"], hc["Init"], hc["Memory"], hc["ReadonlyRootfs"]),
       ("unless-stopped", True, 64 << 20, True), "host config")
    eq(sorted(hc["CapAdd"]), ["NET_ADMIN"], "cap add")
    eq(c.ports["9000/udp"], [{"HostIp": "127.0.0.1", "HostPort": "19000"}], "udp port")
    ok(int(c.ports["8080/tcp"][0]["HostPort"]) > 0, f"publish_all {c.ports}")
    eq(c.attrs["Config"]["StopSignal"], "SIGUSR1", "stop signal")
    # as in dockerd, HostConfig.Tmpfs mounts are not listed in Mounts, --mount ones are
    eq({m["Destination"] for m in c.attrs["Mounts"]}, {"/m", "/v"}, "mounts")
    eq(hc["Tmpfs"], {"/t": "size=2m"}, "tmpfs")
    wait_for("healthy", lambda: (c.reload() or c.health) == "healthy", 10)
    c.remove(force=True)
    client.volumes.get("sdkpy-mv").remove()


@check
def containers_run_stream_tty_auto_remove():
    out = client.containers.run("busybox", ["sh", "-c", "echo a; sleep 0.2; echo b"], stream=True, remove=True)
    eq(b"".join(out), b"a\nb\n", "run(stream=True)")
    # run(detach=True) starts before the wait is asked for: a container that exits at once
    # can be gone already (404, with dockerd too), so it lives long enough to be waited on.
    c = client.containers.run("busybox", ["sleep", "1"], detach=True, auto_remove=True)
    eq(c.wait(condition="removed", timeout=10)["StatusCode"], 0, "wait(condition=removed)")
    raises(docker.errors.NotFound, c.reload)
    c = client.containers.run("busybox", ["sh", "-c", "echo tty; tty"], tty=True, detach=True)
    c.wait(timeout=10)
    eq(c.logs(), b"tty\r\n/dev/pts/0\r\n", "tty logs are raw")
    c.remove()
    c = client.containers.create("busybox", ["sh", "-c", "read l; echo got $l; stty size"], tty=True,
                                 stdin_open=True, name="sdkpy-ttyatt")
    sock = c.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1})
    c.start()
    c.resize(30, 100)
    sock._sock.sendall(b"hello\n")
    out = b"".join(d for _, d in frames_iter(sock._sock, True))
    sock._sock.close()
    ok(b"got hello\r\n30 100\r\n" in out, f"tty attach and resize: {out!r}")
    c.remove(force=True)
    out = client.containers.run("busybox", ["ip", "-o", "link"], network_mode="none", remove=True)
    eq([l.split(b":")[1].strip() for l in out.splitlines()], [b"lo"], "network_mode=none")


@check
def images_save_load_import():
    img = client.images.get("busybox")
    data = b"".join(img.save(named=True))
    client.images.remove("busybox", force=True)
    loaded = client.images.load(data)
    eq([i.id for i in loaded], [img.id], "load returns the images")
    ok("busybox:latest" in client.images.get(img.id).tags, "tag restored by load")
    c = client.containers.create("busybox", name="sdkpy-imp")
    exported = b"".join(c.export())
    c.remove()
    api.import_image_from_data(exported, repository="sdkpy/imported", tag="x")
    im = client.images.get("sdkpy/imported:x")
    eq(client.containers.run(im.id, ["/bin/busybox", "echo", "i"], remove=True), b"i\n", "imported image")


@check
def images_build_from_directory():
    d = tempfile.mkdtemp(prefix="sdkpy-build-")
    files = {
        "Dockerfile": "FROM busybox AS base\nRUN echo base > /b\nFROM base AS final\nCOPY . /ctx/\n",
        ".dockerignore": "ignored.txt\n",
        "keep.txt": "k",
        "ignored.txt": "i",
    }
    for name, text in files.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    img, _ = client.images.build(path=d, tag="sdkpy/dir:1", target="final", nocache=True)
    out = client.containers.run(img.id, ["ls", "-A", "/ctx"], remove=True)
    eq(out, b".dockerignore\nDockerfile\nkeep.txt\n", "context honours .dockerignore")
    img2, _ = client.images.build(path=d, tag="sdkpy/dir:base", target="base", quiet=True)
    eq(client.containers.run(img2.id, ["cat", "/b"], remove=True), b"base\n", "target")
    logs = list(api.build(path=d, tag="sdkpy/dir:2", decode=True))
    ok(any("aux" in l and l["aux"]["ID"] == img.id for l in logs), f"cached rebuild, aux ID: {logs}")


@check
def networks_create_connect_disconnect():
    net = client.networks.create("sdkpy-net", driver="bridge", labels={"l": "1"}, check_duplicate=True)
    ok(net.id and len(net.id) == 64, f"network id {net.id}")
    eq(net.name, "sdkpy-net", "name")
    net.reload()
    eq(net.attrs["Labels"], {"l": "1"}, "labels")
    eq(net.attrs["Driver"], "bridge", "driver")
    eq([n.id for n in client.networks.list(names=["sdkpy-net"])], [net.id], "list by name")
    eq([n.id for n in client.networks.list(filters={"label": "l=1"})], [net.id], "list by label")
    ok({"bridge", "host", "none"} <= {n.name for n in client.networks.list()}, "default networks")

    server = run(["sleep", "60"], name="sdkpy-srv")
    net.connect(server, aliases=["db", "database"])
    net.reload()
    eq([c.id for c in net.containers], [server.id], "network.containers")
    server.reload()
    ep = server.attrs["NetworkSettings"]["Networks"]["sdkpy-net"]
    ok("db" in ep["Aliases"] and "database" in ep["Aliases"], f"aliases {ep['Aliases']}")
    ip = ep["IPAddress"]
    ok(ip, "connected container has an address")

    client_c = client.containers.run(
        "busybox", ["sleep", "60"], name="sdkpy-cli", detach=True, network="sdkpy-net"
    )
    r = client_c.exec_run(["nslookup", "database"])
    ok(ip.encode() in r.output, f"alias resolves: {r.output!r}")
    r = client_c.exec_run(["ping", "-c", "1", "-W", "2", "db"])
    eq(r.exit_code, 0, f"ping alias: {r.output!r}")

    # low-level connect with an EndpointConfig-style call and a fixed address is refused
    # on a network without a configured subnet, as dockerd does
    e = raises(docker.errors.APIError, api.connect_container_to_network, "sdkpy-cli", "bridge", ipv4_address="10.99.0.5")
    ok(e.status_code in (400, 403), f"fixed ip on default bridge: {e.status_code} {e}")

    net.disconnect(server)
    server.reload()
    ok("sdkpy-net" not in server.attrs["NetworkSettings"]["Networks"], "disconnected")
    e = raises(docker.errors.APIError, net.disconnect, server)
    # dockerd answers a plain error (500) here
    ok("is not connected to network" in str(e), f"disconnect twice: {e}")
    e = raises(docker.errors.APIError, net.remove)
    eq(e.status_code, 403, "remove a network in use")
    net.disconnect(client_c, force=True)
    net.remove()
    raises(docker.errors.NotFound, client.networks.get, "sdkpy-net")
    server.remove(force=True)
    client_c.remove(force=True)

    # run with networking_config / EndpointConfig aliases
    net2 = client.networks.create("sdkpy-net2", ipam=docker.types.IPAMConfig(
        pool_configs=[docker.types.IPAMPool(subnet="10.199.7.0/24", gateway="10.199.7.1")]))
    c = client.containers.run(
        "busybox", ["sleep", "60"], name="sdkpy-ep", detach=True, network="sdkpy-net2",
        networking_config={"sdkpy-net2": EndpointConfig(api.api_version, aliases=["ep-alias"], ipv4_address="10.199.7.9")},
    )
    c.reload()
    ep = c.attrs["NetworkSettings"]["Networks"]["sdkpy-net2"]
    eq(ep["IPAddress"], "10.199.7.9", "fixed ip from networking_config")
    ok("ep-alias" in ep["Aliases"], f"aliases from networking_config {ep['Aliases']}")
    c.remove(force=True)
    net2.remove()
    pruned = client.networks.prune()
    ok("NetworksDeleted" in pruned, f"prune result {pruned}")


@check
def volumes_create_list_remove_prune():
    v = client.volumes.create("sdkpy-vol", driver="local", labels={"k": "v"})
    eq(v.name, "sdkpy-vol", "name")
    eq(v.attrs["Labels"], {"k": "v"}, "labels")
    eq(v.attrs["Driver"], "local", "driver")
    ok(v.attrs["Mountpoint"], "mountpoint")
    eq(client.volumes.get("sdkpy-vol").id, v.id, "get")
    eq([x.name for x in client.volumes.list(filters={"label": "k=v"})], ["sdkpy-vol"], "list by label")
    anon = client.volumes.create()
    ok(len(anon.name) == 64, f"anonymous volume name {anon.name}")
    out = client.containers.run("busybox", ["sh", "-c", "echo x > /v/f; cat /v/f"],
                                volumes=["sdkpy-vol:/v"], remove=True)
    eq(out, b"x\n", "volume mounted by list syntax")
    v.remove()
    raises(docker.errors.NotFound, client.volumes.get, "sdkpy-vol")
    used = client.volumes.create("sdkpy-used")
    holder = client.containers.create("busybox", volumes={"sdkpy-used": {"bind": "/u"}}, name="sdkpy-holder")
    e = raises(docker.errors.APIError, used.remove)
    eq(e.status_code, 409, "remove a volume in use")
    r = client.volumes.prune()
    ok(anon.name in (r["VolumesDeleted"] or []), f"prune removed the anonymous volume {r}")
    ok("sdkpy-used" not in (r["VolumesDeleted"] or []), "prune keeps a used volume")
    ok("SpaceReclaimed" in r, "SpaceReclaimed")
    holder.remove()
    used.remove(force=True)


@check
def events_decode_until():
    since = time.time()
    c = client.containers.run("busybox", ["true"], name="sdkpy-ev", labels={"ev": "1"}, detach=True)
    c.wait(timeout=10)
    c.remove()
    until = time.time() + 0.5
    evs = list(client.events(since=since, until=until, decode=True, filters={"container": "sdkpy-ev"}))
    actions = [e["Action"] for e in evs]
    for want in ("create", "start", "die", "destroy"):
        ok(want in actions, f"event {want} in {actions}")
    die = next(e for e in evs if e["Action"] == "die")
    eq(die["Type"], "container", "type")
    eq(die["Actor"]["Attributes"]["exitCode"], "0", "die exitCode")
    eq(die["Actor"]["Attributes"]["ev"], "1", "label in attributes")
    eq(die["Actor"]["Attributes"]["name"], "sdkpy-ev", "name attribute")
    ok(isinstance(die["timeNano"], int), "timeNano")
    # a label filter, a type filter
    evs = list(client.events(since=since, until=time.time(), decode=True,
                             filters={"type": "container", "label": "ev=1", "event": "start"}))
    eq([e["Action"] for e in evs], ["start"], "filtered events")
    # an open stream delivers live events and can be closed
    stream = client.events(decode=True, filters={"type": "volume"})
    client.volumes.create("sdkpy-evvol").remove()
    first = next(stream)
    eq((first["Type"], first["Action"], first["Actor"]["ID"]), ("volume", "create", "sdkpy-evvol"), "live event")
    stream.close()


@check
def containers_prune_and_list_filters():
    a = client.containers.create("busybox", ["true"], name="sdkpy-pa", labels={"p": "1"})
    b = run(["sleep", "60"], name="sdkpy-pb", labels={"p": "1"})
    ok(a.id in [x.id for x in client.containers.list(all=True, filters={"status": "created"})], "status filter")
    eq([x.id for x in client.containers.list(filters={"label": "p=1"})], [b.id], "running only by default")
    eq(len(client.containers.list(all=True, filters={"label": "p"})), 2, "label key filter")
    eq(len(client.containers.list(all=True, limit=1)), 1, "limit")
    r = client.containers.prune(filters={"label": "p=1"})
    eq(r["ContainersDeleted"], [a.id], "prune deletes stopped containers only")
    ok("SpaceReclaimed" in r, "SpaceReclaimed")
    b.remove(force=True)
    r = client.images.prune(filters={"dangling": True})
    ok("ImagesDeleted" in r and "SpaceReclaimed" in r, f"images.prune {r}")


@check
def errors_are_docker_style():
    e = raises(docker.errors.NotFound, client.containers.get, "sdkpy-missing")
    eq(e.status_code, 404, "status")
    ok("No such container: sdkpy-missing" in e.explanation, f"explanation {e.explanation!r}")
    c = run(["sleep", "60"], name="sdkpy-err")
    e = raises(docker.errors.APIError, client.containers.create, "busybox", name="sdkpy-err")
    eq(e.status_code, 409, "name conflict")
    e = raises(docker.errors.APIError, c.remove)
    eq(e.status_code, 409, "remove a running container")
    e = raises(docker.errors.APIError, client.images.remove, "busybox")
    eq(e.status_code, 409, "remove an image in use")
    c.remove(force=True)


@check
def cleanup():
    for c in client.containers.list(all=True):
        if c.name.startswith(PREFIX):
            c.remove(force=True)


def main():
    """Runs the checks whose names start with one of the arguments (all without any)."""
    only = tuple(sys.argv[1:])
    failed = []
    for fn in CHECKS:
        if only and not fn.__name__.startswith(only):
            continue
        start = time.monotonic()
        try:
            fn()
            print(f"ok   {fn.__name__} ({time.monotonic() - start:.1f}s)", flush=True)
        except Exception:
            failed.append(fn.__name__)
            print(f"FAIL {fn.__name__} ({time.monotonic() - start:.1f}s)", flush=True)
            traceback.print_exc(file=sys.stdout)
    print(f"{len(failed)} failed: {' '.join(failed)}" if failed else "all checks passed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
