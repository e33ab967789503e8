//! `docker stats` and `docker update`.

use berth_test_support::{assert_response, Engine};
use serde_json::Value;

fn stats_json(e: &Engine, name: &str) -> Value {
    let (status, body) = e.api(
        "GET",
        &format!("/containers/{name}/stats?stream=false"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_response("GET", "/containers/{id}/stats", 200, &v);
    v
}

#[test]
fn stats_of_running_and_stopped_containers() {
    let e = Engine::start();
    e.docker_ok(&[
        "run", "-d", "--name", "idle", "--memory", "64m", "busybox", "sleep", "1000",
    ]);
    e.docker_ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        "--network=none",
        "busybox",
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    e.docker_ok(&["create", "--name", "never", "busybox"]);

    let out = e.docker_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.MemUsage}}|{{.PIDs}}|{{.NetIO}}",
        "idle",
    ]);
    let f: Vec<&str> = out.trim().split('|').collect();
    assert_eq!(f[0], "idle", "{out}");
    assert!(
        f[1].ends_with(" / 64MiB") && !f[1].starts_with("0B"),
        "{out}"
    );
    assert_eq!(f[2], "1", "{out}");
    assert!(f[3].contains(" / "), "{out}");

    let out = e.docker_ok(&["stats", "--no-stream", "--format", "{{.CPUPerc}}", "busy"]);
    let cpu: f64 = out.trim().trim_end_matches('%').parse().unwrap();
    assert!(cpu > 1.0, "a spinning container shows {cpu}% CPU");

    let v = stats_json(&e, "idle");
    assert_eq!(v["name"], "/idle");
    assert_eq!(v["memory_stats"]["limit"], 64 << 20);
    assert_eq!(v["pids_stats"]["current"], 1);
    assert!(v["networks"]["eth0"]["rx_bytes"].is_u64(), "{v}");
    assert!(v["cpu_stats"]["system_cpu_usage"].as_u64().unwrap() > 0);
    assert!(v["precpu_stats"]["system_cpu_usage"].as_u64().unwrap() > 0);
    assert_ne!(v["preread"], "0001-01-01T00:00:00Z");

    // Without names: every running container.
    let out = e.docker_ok(&["stats", "--no-stream", "--format", "{{.Name}}"]);
    let mut names: Vec<&str> = out.lines().collect();
    names.sort();
    assert_eq!(names, vec!["busy", "idle"], "{out}");

    // Not running: dockerd's zero sample.
    let v = stats_json(&e, "never");
    assert_eq!(v["read"], "0001-01-01T00:00:00Z");
    assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 0);
    let out = e.docker_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.MemUsage}} {{.PIDs}}",
        "never",
    ]);
    assert_eq!(out.trim(), "0B / 0B 0");

    // A stream sends one sample per second.
    let mut c = e.docker_cmd(&["stats", "--format", "{{.Name}} {{.PIDs}}", "idle"]);
    c.stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.matches("idle 1").count() >= 2, "{text}");
}

/// A file of the container's cgroup for `controller` (v1 hierarchy name), on v1 or v2.
fn cgroup_file(id: &str, controller: &str, v1: &str, v2: &str) -> String {
    let p = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        format!("/sys/fs/cgroup/berth/{id}/{v2}")
    } else {
        format!("/sys/fs/cgroup/{controller}/berth/{id}/{v1}")
    };
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{p}: {e}"))
        .trim()
        .to_string()
}

#[test]
fn update_changes_limits_and_restart_policy() {
    let e = Engine::start();
    let id = e
        .docker_ok(&[
            "run",
            "-d",
            "--name",
            "upd",
            "--network=none",
            "--memory",
            "64m",
            "busybox",
            "sleep",
            "1000",
        ])
        .trim()
        .to_string();
    let mem = || cgroup_file(&id, "memory", "memory.limit_in_bytes", "memory.max");
    assert_eq!(mem(), (64u64 << 20).to_string());

    assert_eq!(
        e.docker_ok(&["update", "--memory", "128m", "--memory-swap", "256m", "upd"])
            .trim(),
        "upd"
    );
    assert_eq!(mem(), (128u64 << 20).to_string());
    e.docker_ok(&["update", "--cpus", "0.5", "--pids-limit", "50", "upd"]);
    let quota = cgroup_file(&id, "cpu", "cpu.cfs_quota_us", "cpu.max");
    assert!(quota == "50000" || quota == "50000 100000", "{quota}");
    assert_eq!(cgroup_file(&id, "pids", "pids.max", "pids.max"), "50");
    e.docker_ok(&["update", "--restart", "on-failure:3", "upd"]);
    let inspect = e.docker_ok(&[
        "inspect",
        "--format",
        "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
        "upd",
    ]);
    assert_eq!(
        inspect.trim(),
        format!(
            "{} {} 500000000 50 on-failure:3",
            128u64 << 20,
            256u64 << 20
        )
    );
    // The API answer matches the spec.
    let (status, body) = e.api(
        "POST",
        "/containers/upd/update",
        Some(r#"{"CpuShares":512}"#),
    );
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_response("POST", "/containers/{id}/update", 200, &v);
    assert_eq!(v["Warnings"], serde_json::json!([]));
    // Refusals leave the limits alone.
    let err = e.docker_err(&["update", "--memory", "1m", "upd"]);
    assert!(err.contains("Minimum memory limit allowed is 6MB"), "{err}");
    assert_eq!(mem(), (128u64 << 20).to_string());

    // A stopped container gets the new limits at its next start; the restart policy applies.
    let id2 = e
        .docker_ok(&[
            "create",
            "--name",
            "later",
            "--network=none",
            "busybox",
            "sleep",
            "2",
        ])
        .trim()
        .to_string();
    e.docker_ok(&["update", "--memory", "32m", "--restart", "always", "later"]);
    e.docker_ok(&["start", "later"]);
    assert_eq!(
        cgroup_file(&id2, "memory", "memory.limit_in_bytes", "memory.max"),
        (32u64 << 20).to_string()
    );
    let restarted = berth_test_support::wait_until(std::time::Duration::from_secs(20), || {
        let n = e.docker_ok(&["inspect", "--format", "{{.RestartCount}}", "later"]);
        n.trim().parse::<u32>().unwrap_or(0) >= 1
    });
    assert!(
        restarted,
        "the always policy set by update did not restart the container"
    );
}
