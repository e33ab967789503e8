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
