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
