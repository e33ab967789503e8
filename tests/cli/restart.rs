//! Containers outlive the engine: SIGKILL the engine, start a new one, and the running
//! container is still there (ps, logs, stop work); one that exited meanwhile shows its code.

use std::time::Duration;

use berth_test_support::{wait_until, Engine};

#[test]
fn containers_survive_engine_kill() {
    let mut e = Engine::start();
    e.docker_ok(&[
        "run",
        "-d",
        "--network=none",
        "--name",
        "long",
        "busybox",
        "sh",
        "-c",
        "echo started; exec sleep 300",
    ]);
    e.docker_ok(&[
        "run",
        "-d",
        "--network=none",
        "--name",
        "short",
        "busybox",
        "sh",
        "-c",
        "sleep 2; echo bye; exit 4",
    ]);
    e.docker_ok(&["create", "--network=none", "--name", "idle", "busybox"]);
    assert!(wait_until(Duration::from_secs(5), || e
        .docker_ok(&["logs", "long"])
        == "started\n"));
    e.kill();
    std::thread::sleep(Duration::from_secs(3));
    e.start_again();
    let ps = e.docker_ok(&["ps", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(ps.trim(), "long running", "{}", e.log_tail());
    // The new engine asked the running container's shim for its protocol version.
    let hello = e
        .log()
        .lines()
        .filter(|l| l.contains("shim protocol"))
        .map(str::to_string)
        .collect::<Vec<_>>();
    assert!(
        hello.len() == 1 && hello[0].ends_with("version=1"),
        "one hello, answered with version 1: {hello:?}"
    );
    let st = e.docker_ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        "short",
    ]);
    assert_eq!(st.trim(), "exited 4");
    assert_eq!(e.docker_ok(&["logs", "short"]), "bye\n");
    assert_eq!(e.docker_ok(&["logs", "long"]), "started\n");
    let st = e.docker_ok(&["inspect", "--format", "{{.State.Status}}", "idle"]);
    assert_eq!(st.trim(), "created");
    assert_eq!(e.docker_ok(&["exec", "long", "echo", "again"]), "again\n");
    e.docker_ok(&["stop", "-t", "1", "long"]);
    let st = e.docker_ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        "long",
    ]);
    assert_eq!(st.trim(), "exited 137");
    // A graceful restart keeps the records too.
    e.restart();
    let n = e.docker_ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(n.lines().count(), 3, "{n}");
}

#[test]
fn restart_policy_applies_to_exits_while_engine_was_down() {
    let mut e = Engine::start();
    e.docker_ok(&[
        "run",
        "-d",
        "--network=none",
        "--restart",
        "always",
        "--name",
        "phoenix",
        "busybox",
        "sh",
        "-c",
        "sleep 2; exit 1",
    ]);
    e.kill();
    std::thread::sleep(Duration::from_secs(3));
    e.start_again();
    assert!(
        wait_until(Duration::from_secs(15), || {
            let out = e.docker_ok(&["inspect", "--format", "{{.RestartCount}}", "phoenix"]);
            out.trim().parse::<u32>().unwrap_or(0) >= 1
        }),
        "{}",
        e.log_tail()
    );
    e.docker_ok(&["rm", "-f", "phoenix"]);
}

/// A container on two networks keeps both endpoints (addresses, aliases, embedded DNS, the
/// second interface) across a graceful engine restart and a crash.
#[test]
fn two_network_endpoints_survive_engine_restart() {
    let mut e = Engine::start();
    e.docker_ok(&["network", "create", "r1"]);
    e.docker_ok(&["network", "create", "r2"]);
    let sleeper = |name: &str, net: &str, alias: &str| {
        e.docker_ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            net,
            "--network-alias",
            alias,
            "busybox",
            "sleep",
            "300",
        ]);
    };
    sleeper("peer", "r2", "p2");
    sleeper("multi", "r1", "m1");
    e.docker_ok(&["network", "connect", "--alias", "m2", "r2", "multi"]);
    let networks = |e: &Engine| {
        e.docker_ok(&[
            "inspect",
            "-f",
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}}/{{$v.EndpointID}} {{end}}",
            "multi",
        ])
    };
    let before = networks(&e);
    assert_eq!(before.matches('=').count(), 2, "{before}");
    let pings = |e: &Engine, from: &str, to: &str| {
        e.docker(&["exec", from, "ping", "-c", "1", "-W", "1", to])
            .status
            .success()
    };
    assert!(pings(&e, "peer", "m2"));
    for crash in [false, true] {
        if crash {
            e.kill();
            e.start_again();
        } else {
            e.restart();
        }
        assert_eq!(networks(&e), before, "crash={crash}\n{}", e.log_tail());
        assert!(pings(&e, "peer", "m2"), "crash={crash}\n{}", e.log_tail());
        assert!(pings(&e, "multi", "p2"), "crash={crash}");
        let eth1 = e.docker_ok(&["exec", "multi", "ip", "-o", "-4", "addr", "show", "eth1"]);
        assert!(!eth1.is_empty());
    }
    // The restored endpoints can be left and released as usual.
    let r2_ip = e.docker_ok(&[
        "inspect",
        "-f",
        "{{(index .NetworkSettings.Networks \"r2\").IPAddress}}",
        "multi",
    ]);
    assert!(pings(&e, "peer", r2_ip.trim()));
    e.docker_ok(&["network", "disconnect", "r2", "multi"]);
    assert!(!pings(&e, "peer", r2_ip.trim()));
    e.docker_ok(&["rm", "-f", "peer", "multi"]);
    e.docker_ok(&["network", "rm", "r1", "r2"]);
}
