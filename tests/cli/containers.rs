//! `docker` CLI tests: containers (run, lifecycle, logs, inspect, errors).

use std::time::Duration;

use berth_test_support::{wait_until, Engine};

/// Containers use `--network none` so these tests do not depend on bridge networking.
const NET: &str = "--network=none";

#[test]
fn run_rm_prints_and_propagates_exit_codes() {
    let e = Engine::start();
    let out = e.docker_ok(&["run", "--rm", NET, "busybox", "echo", "hi"]);
    assert_eq!(out, "hi\n");
    let o = e.docker(&[
        "run", NET, "--name", "three", "busybox", "sh", "-c", "exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    let ps = e.docker_ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.contains("three Exited (3)"), "{ps}");
    assert_eq!(ps.lines().count(), 1, "--rm container must be gone: {ps}");
    let o = e.docker(&["run", "--rm", NET, "busybox", "no-such-binary"]);
    assert_eq!(o.status.code(), Some(127), "{o:?}");
}

#[test]
fn detached_lifecycle_inspect_and_errors() {
    let e = Engine::start();
    let id = e.docker_ok(&[
        "run",
        "-d",
        NET,
        "--name",
        "web",
        "-l",
        "tier=front",
        "busybox",
        "sleep",
        "300",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64);
    let fmt = "{{.Name}} {{.State.Status}} {{.State.Running}} {{.HostConfig.LogConfig.Type}} {{.HostConfig.RestartPolicy.Name}} {{.Config.Labels.tier}}";
    let insp = e.docker_ok(&["inspect", "--format", fmt, "web"]);
    assert_eq!(insp.trim(), "/web running true json-file  front");
    // Prefix and name lookups; filters.
    e.docker_ok(&["inspect", &id[..8]]);
    let ps = e.docker_ok(&[
        "ps",
        "--filter",
        "label=tier=front",
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(ps.trim(), "web");
    let ps = e.docker_ok(&["ps", "--filter", "status=exited", "--format", "{{.Names}}"]);
    assert_eq!(ps.trim(), "");
    // Name conflicts use dockerd's text.
    let err = e.docker_err(&["create", NET, "--name", "web", "busybox"]);
    assert!(
        err.contains("Conflict. The container name \"/web\" is already in use by container"),
        "{err}"
    );
    // top, pause/unpause, rename.
    let top = e.docker_ok(&["top", "web"]);
    assert!(top.contains("sleep 300"), "{top}");
    e.docker_ok(&["pause", "web"]);
    let st = e.docker_ok(&["inspect", "--format", "{{.State.Status}}", "web"]);
    assert_eq!(st.trim(), "paused");
    e.docker_ok(&["unpause", "web"]);
    e.docker_ok(&["rename", "web", "web2"]);
    let err = e.docker_err(&["rm", "web2"]);
    assert!(
        err.contains("stop the container before removing or force remove"),
        "{err}"
    );
    e.docker_ok(&["stop", "-t", "1", "web2"]);
    let st = e.docker_ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        "web2",
    ]);
    assert_eq!(st.trim(), "exited 137");
    e.docker_ok(&["start", "web2"]);
    e.docker_ok(&["restart", "-t", "1", "web2"]);
    e.docker_ok(&["kill", "web2"]);
    e.docker_ok(&["rm", "-f", "web2"]);
    let err = e.docker_err(&["rm", "web2"]);
    assert!(err.contains("No such container: web2"), "{err}");
    let (s, body) = e.api("GET", "/v1.50/containers/nope/json", None);
    assert_eq!(s, 404);
    assert!(body.contains("No such container: nope"), "{body}");
    let (s, _) = e.api("POST", "/v1.50/containers/create", Some("{not json"));
    assert_eq!(s, 400);
}

#[test]
fn unknown_log_driver_is_refused_with_dockerds_text() {
    let e = Engine::start();
    let want = "error looking up logging plugin foo: plugin \"foo\" not found";
    let err = e.docker_err(&["run", "--rm", NET, "--log-driver", "foo", "busybox", "true"]);
    assert!(err.contains(want), "{err}");
    let body = r#"{"Image":"busybox","HostConfig":{"LogConfig":{"Type":"foo"}}}"#;
    let (status, out) = e.api("POST", "/v1.50/containers/create", Some(body));
    assert_eq!(status, 400, "{out}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["message"],
        want
    );
    let ps = e.docker_ok(&["ps", "-aq"]);
    assert!(ps.trim().is_empty(), "{ps}");
}

#[test]
fn logs_streams_tail_and_timestamps() {
    let e = Engine::start();
    e.docker_ok(&[
        "run",
        NET,
        "--name",
        "lg",
        "busybox",
        "sh",
        "-c",
        "echo one; echo two; sleep 0.2; echo err >&2",
    ]);
    let out = e.docker(&["logs", "lg"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\ntwo\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    let out = e.docker(&["logs", "--tail", "1", "lg"]);
    assert_eq!(
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        "err\n"
    );
    let ts = e.docker_ok(&["logs", "-t", "lg"]);
    assert!(ts.lines().next().unwrap().ends_with("Z one"), "{ts}");
    // The json-file format on disk.
    let id = e.docker_ok(&["inspect", "--format", "{{.Id}}", "lg"]);
    let path = e
        .data_root()
        .join("containers")
        .join(id.trim())
        .join(format!("{}-json.log", id.trim()));
    let raw = std::fs::read_to_string(&path).unwrap();
    assert!(
        raw.starts_with("{\"log\":\"one\\n\",\"stream\":\"stdout\",\"time\":\""),
        "{raw}"
    );
    // follow ends when the container exits.
    e.docker_ok(&[
        "run",
        "-d",
        NET,
        "--name",
        "fl",
        "busybox",
        "sh",
        "-c",
        "sleep 1; echo late",
    ]);
    let out = e.docker_ok(&["logs", "-f", "fl"]);
    assert_eq!(out, "late\n");
}

#[test]
fn interactive_stdin_and_tty() {
    let e = Engine::start();
    let o = e.docker_stdin(
        &["run", "-i", "--rm", NET, "busybox", "sh"],
        b"echo from-stdin; exit 7\n",
    );
    assert_eq!(o.status.code(), Some(7), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "from-stdin\n");
    // -it through a pseudo terminal made by script(1).
    let cmd = "docker run -it --rm --network=none busybox sh -c 'tty; exit 5'";
    let out = std::process::Command::new("script")
        .args(["-qec", cmd, "/dev/null"])
        .env("DOCKER_HOST", e.host())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert_eq!(out.status.code(), Some(5), "{text}");
}

#[test]
fn restart_policy_and_autoremove_wait() {
    let e = Engine::start();
    e.docker_ok(&[
        "run",
        "-d",
        NET,
        "--name",
        "rp",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 1",
    ]);
    assert!(
        wait_until(Duration::from_secs(20), || {
            e.docker_ok(&[
                "inspect",
                "--format",
                "{{.RestartCount}} {{.State.Running}}",
                "rp",
            ])
            .trim()
                == "2 false"
        }),
        "{}",
        e.docker_ok(&["inspect", "rp"])
    );
    let o = e.docker_ok(&["run", "-d", "--rm", NET, "--name", "arm", "busybox", "true"]);
    assert_eq!(o.trim().len(), 64);
    assert!(wait_until(Duration::from_secs(10), || !e
        .docker_ok(&["ps", "-a", "--format", "{{.Names}}"])
        .contains("arm")));
}

#[test]
fn host_mode_init_and_resource_flags() {
    let e = Engine::start();
    let out = e.docker_ok(&[
        "run", "--rm", "--network", "host", "--init", "-m", "64m", "--cpus", "0.5", "--pids-limit", "50",
        "--cap-drop", "ALL", "--read-only", "-u", "nobody", "-w", "/tmp", "-e", "A=b",
        "busybox", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; id -u; pwd; echo $A; touch /x 2>&1 | head -c 0; test -w / || echo ro",
    ]);
    assert!(out.starts_with("/sbin/docker-init -- sh"), "{out}");
    assert!(out.contains("65534\n/tmp\nb\nro\n"), "{out}");
    // Docker's default capability set, and --privileged getting everything the engine holds.
    let caps = |extra: &[&str]| {
        let mut args = vec!["run", "--rm", NET];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["busybox", "sh", "-c", "grep CapEff /proc/self/status"]);
        e.docker_ok(&args)
    };
    assert_eq!(caps(&[]).trim(), "CapEff:\t00000000a80425fb");
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    let bnd = own
        .lines()
        .find(|l| l.starts_with("CapBnd:"))
        .unwrap()
        .replace("CapBnd:", "CapEff:");
    assert_eq!(caps(&["--privileged"]).trim(), bnd.trim());
}

#[test]
fn groups_limits_and_runtime_errors_read_like_dockerd() {
    let e = Engine::start();
    // Supplementary groups as dockerd sets them (compared side by side with dockerd 20.10).
    for (user, want) in [
        ("", "uid=0(root) gid=0(root) groups=0(root),10(wheel)"),
        (
            "nobody",
            "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)",
        ),
        ("1000", "uid=1000 gid=0(root) groups=0(root)"),
        (
            "root:nogroup",
            "uid=0(root) gid=65534(nogroup) groups=65534(nogroup)",
        ),
    ] {
        let mut args = vec!["run", "--rm", NET];
        if !user.is_empty() {
            args.extend_from_slice(&["-u", user]);
        }
        args.extend_from_slice(&["busybox", "id"]);
        assert_eq!(e.docker_ok(&args).trim(), want, "-u {user:?}");
    }
    // Resource limits are checked at create, with dockerd's texts.
    let ncpu = std::thread::available_parallelism().unwrap().get();
    for (flags, want) in [
        (
            vec!["--cpus", "999"],
            format!(
                "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
            ),
        ),
        (
            vec!["-m", "1k"],
            "Minimum memory limit allowed is 6MB".to_string(),
        ),
        (
            vec!["-m", "64m", "--memory-swap", "32m"],
            "Minimum memoryswap limit should be larger than memory limit, see usage".to_string(),
        ),
    ] {
        let mut args = vec!["create", NET];
        args.extend_from_slice(&flags);
        args.push("busybox");
        let err = e.docker_err(&args);
        assert!(err.contains(&want), "{flags:?}: {err}");
    }
    assert_eq!(
        e.docker_ok(&["ps", "-aq"]).trim(),
        "",
        "nothing half-created"
    );
    // A runtime failure is reported once, by the daemon; the runtime's own stderr does not leak
    // into the container's output.
    let o = e.docker(&["run", "--rm", NET, "busybox", "nosuchcmd"]);
    assert_eq!(o.status.code(), Some(127));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.matches("executable file not found").count(), 1, "{err}");
    assert!(
        err.starts_with("docker: Error response from daemon:"),
        "{err}"
    );
}

#[test]
fn pid_ipc_uts_modes_host_and_container() {
    let e = Engine::start();
    let own = |ns: &str| {
        std::fs::read_link(format!("/proc/self/ns/{ns}"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    // Host namespaces: the same namespace ids as this test process (the engine's host).
    let out = e.docker_ok(&[
        "run",
        "--rm",
        NET,
        "--pid",
        "host",
        "--ipc",
        "host",
        "--uts",
        "host",
        "busybox",
        "sh",
        "-c",
        "for n in pid ipc uts; do readlink /proc/self/ns/$n; done; hostname",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..3], [own("pid"), own("ipc"), own("uts")], "{out}");
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(lines[3], host_name.trim());
    // Private by default.
    let out = e.docker_ok(&[
        "run",
        "--rm",
        NET,
        "busybox",
        "readlink",
        "/proc/self/ns/pid",
    ]);
    assert_ne!(out.trim(), own("pid"));
    // Joining another container's PID and IPC namespaces: its processes are visible.
    e.docker_ok(&[
        "run", "-d", NET, "--name", "target", "busybox", "sleep", "300",
    ]);
    let out = e.docker_ok(&[
        "run",
        "--rm",
        NET,
        "--pid",
        "container:target",
        "--ipc",
        "container:target",
        "busybox",
        "ps",
        "-o",
        "comm",
    ]);
    assert!(out.contains("sleep"), "{out}");
    let ipc = |c: &str| e.docker_ok(&["exec", c, "readlink", "/proc/self/ns/ipc"]);
    let out = e.docker_ok(&[
        "run",
        "--rm",
        NET,
        "--ipc",
        "container:target",
        "busybox",
        "readlink",
        "/proc/self/ns/ipc",
    ]);
    assert_eq!(out.trim(), ipc("target").trim());
    // --ipc none: no /dev/shm.
    let out = e.docker_ok(&[
        "run",
        "--rm",
        NET,
        "--ipc",
        "none",
        "busybox",
        "sh",
        "-c",
        "test -d /dev/shm || echo no-shm",
    ]);
    assert_eq!(out.trim(), "no-shm");
    // Errors: a bad mode at create, a stopped container to join at start.
    // (The CLI checks --uts itself; other clients reach the engine's check.)
    let (code, body) = e.api(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"busybox","HostConfig":{"UTSMode":"container:target"}}"#),
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("invalid UTS mode: container:target"),
        "{body}"
    );
    e.docker_ok(&["create", NET, "--name", "idle", "busybox"]);
    let err = e.docker_err(&[
        "run",
        "--rm",
        NET,
        "--pid",
        "container:idle",
        "busybox",
        "true",
    ]);
    assert!(
        err.contains("cannot join PID of a non running container"),
        "{err}"
    );
    let err = e.docker_err(&[
        "run",
        "--rm",
        NET,
        "--pid",
        "container:nosuch",
        "busybox",
        "true",
    ]);
    assert!(err.contains("No such container: nosuch"), "{err}");
}

#[test]
fn run_flags_devices_ulimits_hosts_dns_groups_cpuset() {
    let e = Engine::start();
    let run = |flags: &[&str], script: &str| {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["busybox", "sh", "-c", script]);
        e.docker_ok(&args)
    };
    let out = run(
        &[NET, "--device", "/dev/null:/dev/mynull"],
        "ls -l /dev/mynull; echo x >/dev/mynull && echo wrote",
    );
    assert!(
        out.starts_with("crw-rw-rw-") && out.contains("1,   3 ") && out.contains("wrote"),
        "{out}"
    );
    let err = e.docker_err(&[
        "run",
        "--rm",
        NET,
        "--device",
        "/etc/hostname",
        "busybox",
        "true",
    ]);
    assert!(err.contains("not a device node"), "{err}");
    let out = run(
        &[NET, "--ulimit", "nofile=1024:2048"],
        "ulimit -n; ulimit -Hn",
    );
    assert_eq!(out, "1024\n2048\n");
    let out = run(
        &[NET, "--group-add", "123", "--group-add", "wheel"],
        "id -G",
    );
    assert_eq!(out.trim(), "0 10 123");
    let out = run(
        &[NET, "--cpuset-cpus", "0"],
        "grep Cpus_allowed_list /proc/self/status",
    );
    assert_eq!(out.trim(), "Cpus_allowed_list:\t0");
    let out = e.docker_ok(&[
        "run",
        "--rm",
        NET,
        "--entrypoint",
        "",
        "busybox",
        "echo",
        "no-entrypoint",
    ]);
    assert_eq!(out, "no-entrypoint\n");
    // Name resolution settings on the default bridge (files only: no lookups leave the host).
    let out = run(
        &[
            "--add-host",
            "foo:1.2.3.4",
            "--add-host",
            "gw:host-gateway",
            "--dns",
            "9.9.9.9",
            "--dns-search",
            "example.com",
            "--dns-option",
            "ndots:2",
        ],
        "grep -E 'foo|gw' /etc/hosts; cat /etc/resolv.conf",
    );
    assert!(out.contains("1.2.3.4\tfoo\n"), "{out}");
    assert!(out.contains(&format!("{}\tgw\n", e.gateway())), "{out}");
    assert!(
        out.contains("search example.com\nnameserver 9.9.9.9\noptions ndots:2\n"),
        "{out}"
    );
    // --privileged sees the host's devices; --cgroupns private on any cgroup version.
    let extra = [
        "/dev/kvm",
        "/dev/loop-control",
        "/dev/kmsg",
        "/dev/vda",
        "/dev/sda",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("a host device outside the default set");
    let probe = format!("test -e {extra} && echo present || echo absent");
    assert_eq!(
        run(&[NET, "--privileged"], &probe).trim(),
        "present",
        "{extra}"
    );
    assert_eq!(run(&[NET], &probe).trim(), "absent", "{extra}");
    let out = run(
        &[NET, "--cgroupns", "private"],
        "grep -c ':/$' /proc/self/cgroup",
    );
    let lines = run(&[NET, "--cgroupns", "private"], "wc -l </proc/self/cgroup");
    assert_eq!(
        out.trim(),
        lines.trim(),
        "every hierarchy is rooted at the container's cgroup"
    );
}

#[test]
fn seccomp_default_profile_unconfined_and_custom() {
    let e = Engine::start();
    let run = |extra: &[&str], script: &str| {
        let mut args = vec!["run", "--rm", NET];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["busybox", "sh", "-c", script]);
        e.docker(&args)
    };
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    // Filter mode 2 by default; creating a user namespace needs no capability, only the
    // profile stops it (and exec'd processes inherit the filter).
    let script = "grep Seccomp: /proc/self/status; unshare -U true && echo userns-ok";
    let o = run(&[], script);
    let out = text(&o);
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
    assert!(!out.contains("userns-ok"), "{out}");
    for extra in [
        &["--security-opt", "seccomp=unconfined"][..],
        &["--privileged"][..],
    ] {
        let out = text(&run(extra, script));
        assert!(out.contains("Seccomp:\t0"), "{extra:?}: {out}");
        assert!(out.contains("userns-ok"), "{extra:?}: {out}");
    }
    let id = e.docker_ok(&["run", "-d", NET, "busybox", "sleep", "60"]);
    let out = e.docker_ok(&["exec", id.trim(), "grep", "Seccomp:", "/proc/self/status"]);
    assert_eq!(out.trim(), "Seccomp:\t2");
    // A profile in Docker's format (the CLI sends the file's content): deny mkdir.
    let profile = e.scratch().join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let out = text(&run(&["--security-opt", &opt], "mkdir /tmp/d && echo made"));
    assert!(out.contains("Operation not permitted"), "{out}");
    assert!(!out.contains("made"), "{out}");
    // Valid JSON (the CLI checks that) that is no profile: the engine refuses it at create.
    std::fs::write(&profile, r#"{"defaultAction":"SCMP_ACT_NOPE"}"#).unwrap();
    let err = e.docker_err(&["create", "--security-opt", &opt, "busybox"]);
    assert!(err.contains("decoding seccomp profile failed"), "{err}");
}

#[test]
fn attach_detach_keys_wait_and_prune() {
    let e = Engine::start();
    e.docker_ok(&["run", "-dit", NET, "--name", "att", "busybox", "sh"]);
    // Type a command, then ctrl-p ctrl-q: the server sees the keys and ends the attach.
    let script = "(sleep 1; printf 'echo marker-$((6*7))\\r'; sleep 1; printf '\\020\\021'; sleep 3) | script -qec 'docker attach att' /dev/null";
    let out = std::process::Command::new("timeout")
        .args(["20", "sh", "-c", script])
        .env("DOCKER_HOST", e.host())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("marker-42"), "{text}");
    assert!(text.contains("read escape sequence"), "{text}");
    let st = e.docker_ok(&["inspect", "--format", "{{.State.Running}}", "att"]);
    assert_eq!(st.trim(), "true", "detach must leave the container running");
    // docker wait returns the exit code once the container stops.
    e.docker_ok(&[
        "run",
        "-d",
        NET,
        "--name",
        "waiter",
        "busybox",
        "sh",
        "-c",
        "sleep 1; exit 9",
    ]);
    assert_eq!(e.docker_ok(&["wait", "waiter"]).trim(), "9");
    let ps = e.docker_ok(&["ps", "-a", "-s", "--format", "{{.Names}} {{.Size}}"]);
    assert!(ps.contains("waiter"), "{ps}");
    let out = e.docker_ok(&["container", "prune", "-f"]);
    let id = out
        .lines()
        .find(|l| l.len() == 64)
        .unwrap_or_default()
        .to_string();
    assert!(!id.is_empty(), "{out}");
    let ps = e.docker_ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(ps.trim(), "att");
    e.docker_ok(&["rm", "-f", "att"]);
}

#[test]
fn health_checks_report_status_and_events() {
    let e = Engine::start();
    e.docker_ok(&[
        "run",
        "-d",
        NET,
        "--name",
        "hc",
        "--health-cmd",
        "test -f /tmp/ok",
        "--health-interval",
        "1s",
        "--health-retries",
        "2",
        "busybox",
        "sleep",
        "300",
    ]);
    let health = || {
        e.docker_ok(&["inspect", "--format", "{{.State.Health.Status}}", "hc"])
            .trim()
            .to_string()
    };
    assert!(
        wait_until(Duration::from_secs(15), || health() == "unhealthy"),
        "{}",
        health()
    );
    e.docker_ok(&["exec", "hc", "touch", "/tmp/ok"]);
    assert!(
        wait_until(Duration::from_secs(15), || health() == "healthy"),
        "{}",
        health()
    );
    let ps = e.docker_ok(&[
        "ps",
        "--filter",
        "health=healthy",
        "--format",
        "{{.Status}}",
    ]);
    assert!(ps.trim().ends_with("(healthy)"), "{ps}");
    let log = e.docker_ok(&[
        "inspect",
        "--format",
        "{{(index .State.Health.Log 0).ExitCode}}",
        "hc",
    ]);
    assert!(matches!(log.trim(), "0" | "1"), "{log}");
    e.docker_ok(&["rm", "-f", "hc"]);

    // Within the start period probes come every start interval, not every (long) interval.
    e.docker_ok(&[
        "run",
        "-d",
        NET,
        "--name",
        "hs",
        "--health-cmd",
        "test -f /tmp/ok",
        "--health-interval",
        "60s",
        "--health-start-period",
        "30s",
        "--health-start-interval",
        "1s",
        "busybox",
        "sh",
        "-c",
        "sleep 1; touch /tmp/ok; sleep 60",
    ]);
    let healthy = wait_until(Duration::from_secs(15), || {
        e.docker_ok(&["inspect", "-f", "{{.State.Health.Status}}", "hs"])
            .trim()
            == "healthy"
    });
    assert!(
        healthy,
        "not healthy through the start interval\n{}",
        e.log_tail()
    );
    e.docker_ok(&["rm", "-f", "hs"]);
}

#[test]
fn domainname_sysctls_mac_oom_score_and_cgroup_parent() {
    let e = Engine::start();
    e.docker_ok(&["pull", "-q", "busybox"]);
    let out = e.docker_ok(&[
        "run",
        "--rm",
        "--hostname",
        "h1",
        "--domainname",
        "example.com",
        "--sysctl",
        "net.ipv4.ip_forward=0",
        "--sysctl",
        "kernel.shmmax=1048576",
        "--oom-score-adj",
        "100",
        "--mac-address",
        "02:42:ac:11:00:99",
        "busybox",
        "sh",
        "-c",
        "hostname; cat /proc/sys/kernel/domainname /proc/sys/net/ipv4/ip_forward \
         /proc/sys/kernel/shmmax /proc/self/oom_score_adj /sys/class/net/eth0/address",
    ]);
    assert_eq!(
        out,
        "h1\nexample.com\n0\n1048576\n100\n02:42:ac:11:00:99\n",
        "{}",
        e.log_tail()
    );
    // On a user network through EndpointsConfig, and as inspect shows it.
    e.docker_ok(&["network", "create", "macnet"]);
    e.docker_ok(&[
        "create",
        "--name",
        "withmac",
        "--network",
        "macnet",
        "--mac-address",
        "02:42:ac:11:00:98",
        "busybox",
        "sleep",
        "60",
    ]);
    e.docker_ok(&["start", "withmac"]);
    let mac = e.docker_ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.macnet.MacAddress}}",
        "withmac",
    ]);
    assert_eq!(mac.trim(), "02:42:ac:11:00:98");
    e.docker_ok(&["rm", "-f", "withmac"]);

    // dockerd's refusals, at create.
    let (status, body) = e.api(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"busybox","MacAddress":"zz"}"#),
    );
    assert_eq!(
        (status, body.contains("invalid MAC address: zz")),
        (400, true),
        "{body}"
    );
    let err = e.docker_err(&["create", "--oom-score-adj", "1001", "busybox"]);
    assert!(
        err.contains("Invalid value 1001, range for oom score adj is [-1000, 1000]"),
        "{err}"
    );

    // --cgroup-parent: the container's cgroup is under it; stats still read it.
    let parent = format!("berth-e2e-{}", std::process::id());
    let id = e.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--cgroup-parent",
        &parent,
        "--memory",
        "64m",
        "busybox",
        "sleep",
        "60",
    ]);
    let id = id.trim();
    let cgroup = e.docker_ok(&["exec", id, "cat", "/proc/1/cgroup"]);
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if !v2 {
        assert!(
            cgroup.contains(&format!(":memory:/{parent}/{id}")),
            "{cgroup}"
        );
    }
    let limit = e.docker_ok(&["stats", "--no-stream", "--format", "{{.MemUsage}}", id]);
    assert!(limit.trim().ends_with("/ 64MiB"), "{limit}");
    e.docker_ok(&["rm", "-f", id]);
    // The parent cgroups are ours to remove (runc leaves them, as under dockerd).
    let roots: Vec<String> = if v2 {
        vec!["/sys/fs/cgroup".into()]
    } else {
        std::fs::read_dir("/sys/fs/cgroup")
            .unwrap()
            .flatten()
            .map(|d| d.path().display().to_string())
            .collect()
    };
    for r in roots {
        let _ = std::fs::remove_dir(format!("{r}/{parent}"));
    }
}

/// Client connections open on the engine's socket (`/proc/net/unix`: accepted sockets carry
/// the listener's path; state 03 is connected).
fn engine_connections(e: &Engine) -> usize {
    let path = e.socket().to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/net/unix")
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() == 8 && f[5] == "03" && f[7] == path
        })
        .count()
}

/// `docker run -d` asks to wait for the container's exit before starting it and goes away
/// without the answer: the engine ends that request when the client leaves (dockerd does),
/// instead of holding a connection per running container.
#[test]
fn a_client_gone_mid_request_ends_it() {
    let e = Engine::start();
    e.docker_ok(&["pull", "-q", "busybox"]);
    let before = engine_connections(&e);
    for i in 0..5 {
        e.docker_ok(&[
            "run",
            "-d",
            NET,
            "--name",
            &format!("w{i}"),
            "busybox",
            "sleep",
            "600",
        ]);
    }
    let mut now = engine_connections(&e);
    let released = wait_until(Duration::from_secs(10), || {
        now = engine_connections(&e);
        now <= before
    });
    assert!(
        released,
        "{before} connections before 5 x run -d, {now} after"
    );
}

/// One `docker run` can be followed in the engine log: the start request's span holds the
/// container's start span, whose lines (the network attach, the start) name both.
#[test]
fn a_run_can_be_followed_in_the_log_by_its_request_span() {
    let e = Engine::start();
    let id = e.docker_ok(&["run", "-d", "busybox", "sleep", "60"]);
    let id = id.trim();
    let log = e.log();
    let start_path = format!("/containers/{id}/start");
    let in_request: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("request{") && l.contains(&start_path))
        .collect();
    let spans = format!("container_start{{id={id}}}");
    for what in ["network attached", "container started"] {
        assert!(
            in_request
                .iter()
                .any(|l| l.contains("method=POST") && l.contains(&spans) && l.contains(what)),
            "no {what:?} line inside the start request's span:\n{}",
            in_request.join("\n")
        );
    }
    let created = format!("container created id={id}");
    assert!(
        log.lines().any(|l| l.contains("request{")
            && l.contains("/containers/create")
            && l.contains("container_create{")
            && l.contains(&created)),
        "no create line inside the create request's span\n{}",
        e.log_tail()
    );
    e.docker_ok(&["rm", "-f", id]);
}
