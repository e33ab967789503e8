//! `berth doctor`: the diagnostics bundle written to a file holds the engine's own `docker
//! info` and version, Berth's config and status, and the tails of the logs in its home; `berth
//! reset` lists, then deletes, what a reset to factory defaults removes.

use std::path::PathBuf;
use std::process::Command;

use berth_test_support::{run_bounded, Engine};

/// `berth`: `$BERTH_CLI`, else as cargo built it next to this test binary.
fn berth_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_CLI") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("test binary");
    let bin = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target profile dir")
        .join("berth");
    assert!(
        bin.exists(),
        "{} not found: cargo build -p berth-cli",
        bin.display()
    );
    bin
}

#[test]
fn doctor_writes_versions_config_status_docker_info_and_logs() {
    let e = Engine::start_offline();
    let home = tempfile::tempdir().expect("home");
    let logs = home.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let console: String = (0..500).map(|i| format!("console line {i}\n")).collect();
    std::fs::write(logs.join("console.log"), console).unwrap();
    std::fs::write(home.path().join("config.json"), r#"{"cpus": 3}"#).unwrap();
    std::fs::write(home.path().join("daemon.json"), r#"{"debug": true}"#).unwrap();
    let out = home.path().join("bundle.json");

    let mut cmd = Command::new(berth_bin());
    cmd.arg("--home")
        .arg(home.path())
        .args(["doctor", "--docker-host", &e.host(), "--output"])
        .arg(&out);
    let run = run_bounded(cmd, std::time::Duration::from_secs(60));
    let said = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        said.contains("bundle.json") && said.contains("answering"),
        "{said}"
    );

    let b: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).expect("bundle written")).expect("json");
    // The engine's own answers, the same as the docker CLI gets.
    let id = e.docker_ok(&["info", "--format", "{{.ID}}"]);
    assert_eq!(b["docker"]["info"]["ID"], id.trim(), "{:#}", b["docker"]);
    let server = e.docker_ok(&["version", "--format", "{{.Server.Version}}"]);
    assert_eq!(b["docker"]["version"]["Version"], server.trim());
    assert_eq!(b["docker"]["endpoint"], e.host());
    // Berth's side: versions, config files, no supervisor.
    assert_eq!(b["versions"]["berth"], env!("CARGO_PKG_VERSION"));
    assert_eq!(b["config"]["cpus"], 3);
    assert_eq!(b["daemon_json"]["debug"], true);
    assert_eq!(b["supervisor_pid"], serde_json::Value::Null);
    assert_eq!(b["home"], home.path().display().to_string());
    // The console log's last 200 lines.
    let lines = b["logs"]["console"].as_array().expect("console log");
    assert_eq!(lines.len(), 200);
    assert_eq!(lines[199], "console line 499");
    assert_eq!(lines[0], "console line 300");
}

#[test]
fn doctor_says_when_the_engine_does_not_answer() {
    let home = tempfile::tempdir().expect("home");
    let out = home.path().join("b.json");
    let sock = home.path().join("none.sock");
    let mut cmd = Command::new(berth_bin());
    cmd.arg("--home")
        .arg(home.path())
        .args(["doctor", "--docker-host"])
        .arg(format!("unix://{}", sock.display()))
        .arg("-o")
        .arg(&out);
    let run = run_bounded(cmd, std::time::Duration::from_secs(60));
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(String::from_utf8_lossy(&run.stdout).contains("not answering"));
    let b: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let err = b["docker"]["info"]["error"].as_str().expect("an error");
    assert!(err.contains("none.sock"), "{err}");
    assert_eq!(b["config"], serde_json::Value::Null);
}

/// `berth reset`: without `--yes` it only lists; with it, the listed paths are gone; refused
/// while a supervisor runs.
#[test]
fn reset_lists_then_deletes_and_refuses_while_the_vm_runs() {
    let home = tempfile::tempdir().expect("home");
    let h = home.path();
    for d in ["disk", "logs", "run"] {
        std::fs::create_dir_all(h.join(d)).unwrap();
    }
    std::fs::write(h.join("disk/data.qcow2"), "disk").unwrap();
    std::fs::write(h.join("config.json"), "{}").unwrap();
    let berth = |args: &[&str]| {
        let mut cmd = Command::new(berth_bin());
        cmd.arg("--home").arg(h).args(args);
        run_bounded(cmd, std::time::Duration::from_secs(30))
    };
    let listed = berth(&["reset"]);
    let said = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success(), "{said}");
    assert!(
        said.contains(&h.join("disk").display().to_string()) && said.contains("every image"),
        "{said}"
    );
    assert!(
        h.join("disk/data.qcow2").exists(),
        "listing deletes nothing"
    );

    std::fs::write(h.join("run/supervisor.pid"), std::process::id().to_string()).unwrap();
    let refused = berth(&["reset", "--yes"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("berth stop"));
    assert!(h.join("disk/data.qcow2").exists());
    std::fs::remove_file(h.join("run/supervisor.pid")).unwrap();

    let done = berth(&["reset", "--yes"]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    for p in ["disk", "config.json", "logs", "run"] {
        assert!(!h.join(p).exists(), "{p} left");
    }
}
