//! Hostile input and privilege at the engine's edges: malformed requests the API fuzz smoke
//! does not send (bytes that are not UTF-8 in path segments, queries, bodies and headers)
//! get Docker's JSON error shape with a 400; the API is on TCP only when asked, and then
//! only on loopback.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use berth_test_support::{free_port, run_bounded, Engine, EngineOptions};

/// Raw requests: method, target, body.
const MALFORMED: &[(&str, &str, &[u8])] = &[
    ("GET", "/containers/%FF/json", b""),
    ("GET", "/v1.50/images/%C3%28/json", b""),
    ("DELETE", "/volumes/%FE%FF", b""),
    ("GET", "/networks/a%80b", b""),
    ("POST", "/containers/%FF/start", b""),
    ("GET", "/exec/%FF/json", b""),
    ("GET", "/containers/json?filters=%FF%FE", b""),
    ("POST", "/containers/create", b"{\"Image\":\"busy\xffbox\"}"),
    (
        "POST",
        "/containers/create",
        b"{\"Image\":\"busybox\",\"Cmd\":[\"a\"",
    ),
    (
        "POST",
        "/volumes/create",
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    ),
    ("POST", "/volumes/create", b"{\"Name\":\"\\ud800\"}"),
    ("POST", "/networks/create", b"{\"Name\":1e999}"),
];

#[test]
fn malformed_requests_get_a_json_400() {
    let e = Engine::start_offline();
    let mut wrong = vec![];
    for (method, target, body) in MALFORMED {
        let (status, text) = e.api_bytes(method, target, "application/json", body);
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string));
        match message {
            Some(m) if status == 400 && !m.is_empty() => {}
            _ => wrong.push(format!("{method} {target}: {status} {text:?}")),
        }
    }
    assert!(wrong.is_empty(), "not a JSON 400:\n{}", wrong.join("\n"));
    // Still serving, and nothing was created.
    assert_eq!(e.api("GET", "/_ping", None), (200, "OK".into()));
    assert_eq!(e.docker_ok(&["ps", "-aq"]).trim(), "");
}

/// Loopback TCP ports the process `pid` listens on (its socket inodes found in the LISTEN rows
/// of /proc/net/tcp and tcp6).
fn tcp_listen_ports(pid: u32) -> BTreeSet<String> {
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let mut found = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for row in text.lines().skip(1) {
            let cols: Vec<&str> = row.split_whitespace().collect();
            // local_address, st (0A = LISTEN), inode
            if cols.len() > 9 && cols[3] == "0A" && inodes.contains(cols[9]) {
                found.insert(cols[1].to_string());
            }
        }
    }
    found
}

#[test]
fn no_tcp_listener_unless_asked() {
    let e = Engine::start_offline();
    let ports = tcp_listen_ports(e.pid().unwrap());
    assert!(ports.is_empty(), "listening on TCP: {ports:?}");
}

#[test]
fn tcp_is_served_on_loopback_when_asked() {
    let port = free_port();
    let e = Engine::start_with(EngineOptions {
        no_mirror: true,
        args: vec!["-H".into(), format!("tcp://127.0.0.1:{port}")],
        ..Default::default()
    });
    // /proc/net/tcp: 127.0.0.1 is 0100007F, the port in hex.
    let ports = tcp_listen_ports(e.pid().unwrap());
    assert_eq!(
        ports,
        BTreeSet::from([format!("0100007F:{port:04X}")]),
        "only the asked loopback port"
    );
    let mut cmd = Command::new("docker");
    cmd.env("DOCKER_HOST", format!("tcp://127.0.0.1:{port}"))
        .args(["version", "--format", "{{.Server.APIVersion}}"]);
    let out = run_bounded(cmd, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1.50");
}

#[test]
fn tcp_beyond_loopback_is_refused_before_any_state_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    for host in ["tcp://0.0.0.0:2375", "tcp://[::]:2376"] {
        let mut cmd = Command::new(berth_test_support::agent_bin());
        cmd.args(["-H", host, "--data-root"])
            .arg(dir.path().join("data"))
            .args(["--bridge", "bnone0"]);
        let out = run_bounded(cmd, Duration::from_secs(30));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{host}: started");
        assert!(
            err.contains("refusing to listen on tcp://") && err.contains("--tlsverify"),
            "{host}: {err}"
        );
        assert!(
            !dir.path().join("data").exists(),
            "{host}: data root created"
        );
    }
}
