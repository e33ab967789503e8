//! Containers outlive the engine: SIGKILL the engine, start a new one, and the running
//! container is still there (ps, logs, stop work); one that exited meanwhile shows its code.
//! Twenty running containers keep running and logging across the kill, no line lost or doubled.

use std::time::Duration;

use berth_test_support::{wait_until, Engine};

use super::images::busybox_archive;

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

/// The numbers a counting container logged (`docker logs`), checked to be 1, 2, 3… with no
/// number missing or repeated; returns how many.
fn counted_lines(e: &Engine, name: &str) -> usize {
    let out = e.docker_ok(&["logs", name]);
    for (i, line) in out.lines().enumerate() {
        assert_eq!(
            line,
            (i + 1).to_string(),
            "{name}: line {} of its log",
            i + 1
        );
    }
    out.lines().count()
}

/// The size of container `id`'s log file, read from the data root (the engine may be down).
fn log_file_len(e: &Engine, id: &str) -> u64 {
    let path = e
        .data_root()
        .join("containers")
        .join(id)
        .join(format!("{id}-json.log"));
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[test]
fn twenty_running_containers_keep_running_and_logging_across_an_engine_kill() {
    const N: usize = 20;
    let mut e = Engine::start_offline();
    e.docker_ok(&["load", "-i", busybox_archive().to_str().unwrap()]);
    let count = "trap 'exit 0' TERM; i=0; while :; do i=$((i+1)); echo $i; sleep 0.05; done";
    let names: Vec<String> = (0..N).map(|i| format!("count{i}")).collect();
    for n in &names {
        e.docker_ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            n,
            "busybox",
            "sh",
            "-c",
            count,
        ]);
    }
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    let inspect = |e: &Engine, format: &str| {
        let mut args = vec!["inspect", "-f", format];
        args.extend(&all);
        e.docker_ok(&args)
    };
    let ids: Vec<String> = inspect(&e, "{{.Id}}").lines().map(String::from).collect();
    let pids = inspect(&e, "{{.State.Pid}}");
    assert!(
        wait_until(Duration::from_secs(30), || names
            .iter()
            .all(|n| counted_lines(&e, n) >= 5)),
        "not every container logs"
    );
    let before: Vec<usize> = names.iter().map(|n| counted_lines(&e, n)).collect();

    e.kill();
    // The monitors keep logging while no engine runs.
    let sizes: Vec<u64> = ids.iter().map(|id| log_file_len(&e, id)).collect();
    assert!(
        wait_until(Duration::from_secs(30), || ids
            .iter()
            .zip(&sizes)
            .all(|(id, &size)| log_file_len(&e, id) > size)),
        "a log stopped growing while the engine was down"
    );
    e.start_again();

    // Reattached, not restarted: the same processes, all running, and logging on.
    assert_eq!(inspect(&e, "{{.State.Pid}}"), pids, "{}", e.log_tail());
    let running = inspect(&e, "{{.State.Status}}");
    assert!(running.lines().all(|s| s == "running"), "{running}");
    assert!(
        wait_until(Duration::from_secs(30), || names
            .iter()
            .zip(&before)
            .all(|(n, &b)| counted_lines(&e, n) >= b + 20)),
        "a log stopped after the restart"
    );
    let mut stop = vec!["stop"];
    stop.extend(&all);
    e.docker_ok(&stop);
    let codes = inspect(&e, "{{.State.Status}} {{.State.ExitCode}}");
    assert!(codes.lines().all(|l| l == "exited 0"), "{codes}");
    // Whole logs, continuous across the kill.
    for n in &names {
        counted_lines(&e, n);
    }
    let mut rm = vec!["rm"];
    rm.extend(&all);
    e.docker_ok(&rm);
}
