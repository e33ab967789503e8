"""testcontainers-python (pinned in requirements.txt) against a fresh engine, as a test suite
uses it: start a container from the local registry, wait for a log line and for the mapped
port, run a command in it, and clean up. Ryuk (the reaper container) is disabled: its image
is not available offline, so the library's own `stop` is what cleans up.

Run by tests/cli/sdk_python.rs like test_sdk.py:

    DOCKER_HOST=unix:///…/engine.sock TESTCONTAINERS_RYUK_DISABLED=true \\
        BERTH_TEST_REGISTRY=127.0.0.1:PORT python test_testcontainers.py [CHECK…]
"""

import os
import sys
import urllib.request

import docker.errors
from testcontainers.core.config import testcontainers_config
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network
from testcontainers.core.wait_strategies import HttpWaitStrategy, LogMessageWaitStrategy

import test_sdk
from test_sdk import eq, ok

client = test_sdk.client
CHECKS = []
READY = "berth-ready"
# What the fixture httpd serves (tests/fixtures/images.py).
MARKER = b"berth-httpd-ok"


def check(fn):
    CHECKS.append(fn)
    return fn


def image():
    """The fixtures' httpd image, named by the local registry's address."""
    registry = os.environ["BERTH_TEST_REGISTRY"]
    return f"{registry}/berth-test/httpd:latest"


def httpd():
    """An httpd container that logs a line once it is about to serve port 80."""
    return (
        DockerContainer(image())
        .with_command(["sh", "-c", f"echo {READY}; exec httpd -f -p 80 -h /www"])
        .with_exposed_ports(80)
        .waiting_for(LogMessageWaitStrategy(READY).with_startup_timeout(30))
    )


def gone(container_id):
    try:
        client.containers.get(container_id)
    except docker.errors.NotFound:
        return True
    return False


@check
def testcontainers_log_port_exec_cleanup():
    ok(testcontainers_config.ryuk_disabled, "TESTCONTAINERS_RYUK_DISABLED=true is seen")
    with httpd() as c:
        cid = c.get_container_id()
        stdout, _ = c.get_logs()
        ok(READY.encode() in stdout, f"log line seen: {stdout!r}")
        host = c.get_container_host_ip()
        port = c.get_exposed_port(80)
        ok(port != 80 and port > 0, f"a mapped host port: {port}")
        HttpWaitStrategy(80).for_status_code(200).with_startup_timeout(30).wait_until_ready(c)
        body = urllib.request.urlopen(f"http://{host}:{port}/", timeout=10).read()
        ok(MARKER in body, f"published port answers: {body!r}")
        r = c.exec(["sh", "-c", "echo out; echo err >&2; exit 3"])
        eq(r.exit_code, 3, "exec exit code")
        ok(b"out" in r.output, f"exec output {r.output!r}")
        eq(c.status, "running", "container status")
    ok(gone(cid), "the container is removed when the block ends")
    ok(not client.containers.list(all=True, filters={"id": cid}), "nothing left in the list")


@check
def testcontainers_network_alias():
    with Network() as net:
        with httpd().with_network(net).with_network_aliases("web") as c:
            r = c.exec(["wget", "-q", "-O", "-", "http://web/"])
            eq(r.exit_code, 0, f"reachable by alias on the network: {r.output!r}")
            ok(MARKER in r.output, f"body {r.output!r}")
            cid = c.get_container_id()
        ok(gone(cid), "container removed")
    ok(not client.networks.list(names=[net.name]), "network removed")


def main():
    test_sdk.CHECKS[:] = CHECKS
    return test_sdk.main()


if __name__ == "__main__":
    sys.exit(main())
