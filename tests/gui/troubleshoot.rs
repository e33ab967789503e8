//! Troubleshoot: the VM console log and the engine's lines in it (the log files a booted VM
//! leaves in the Berth home; the test engine runs without a VM), the diagnostics bundle (the
//! same document `berth doctor` writes), restarting the VM through the `berth` CLI with the
//! app's home, and a reset that lists what it deletes, deletes nothing when cancelled or while
//! the VM runs, and deletes exactly that when confirmed.

use std::path::Path;

use berth_test_support::run_bounded;

use crate::harness::{built_bin, Gui, WAIT};

const KERNEL: &str = "[    0.000000] Linux version 6.1.0-berth";
const ENGINE: &str = "2026-12-05T10:00:01.5Z  INFO berth_engine::container: started gui-probe";

fn keys(v: &serde_json::Value) -> Vec<String> {
    v.as_object()
        .expect("a JSON object")
        .keys()
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn troubleshoot_reads_logs_saves_the_bundle_restarts_and_resets() {
    let gui = Gui::start().await;
    let berth = gui.home().join("berth");
    let logs = berth.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let pid1 = "2026-12-05T10:00:00.9Z  INFO engine started (pid 80) at uptime 1.2";
    std::fs::write(
        logs.join("console.log"),
        format!("{KERNEL}\n{pid1}\n{ENGINE}\n"),
    )
    .unwrap();
    std::fs::create_dir_all(berth.join("disk")).unwrap();
    std::fs::write(berth.join("disk/data.qcow2"), b"not really qcow2").unwrap();
    // A daemon.json the engine would refuse: `berth start` stops on it before any VM runs.
    std::fs::write(berth.join("daemon.json"), "[1]\n").unwrap();

    // Logs: the whole console, then only the engine's lines.
    gui.nav("troubleshoot").await;
    let log = "[data-testid=trouble-log]";
    gui.wait_attr(log, "data-state", "loaded").await;
    let all = gui.text(log).await;
    assert!(all.contains(KERNEL) && all.contains(ENGINE), "{all}");
    gui.select("[data-testid=trouble-log-kind]", "engine").await;
    gui.wait_attr(log, "data-kind", "engine").await;
    let engine = gui.text(log).await;
    assert_eq!(engine.trim(), ENGINE);
    gui.snapshot("troubleshoot").await;

    // The bundle, to a file the user names: the same document as `berth doctor`.
    let out = gui.home().join("bundle.json");
    gui.type_into(
        "[data-testid=trouble-bundle-path]",
        &out.display().to_string(),
    )
    .await;
    gui.click("[data-testid=trouble-bundle]").await;
    gui.wait_attr(
        "[data-testid=trouble-bundle-saved]",
        "data-path",
        &out.display().to_string(),
    )
    .await;
    let app: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let cli_out = gui.home().join("cli-bundle.json");
    let mut doctor = std::process::Command::new(built_bin("berth", "BERTH_CLI"));
    doctor
        .arg("--home")
        .arg(&berth)
        .args(["doctor", "--docker-host", &gui.engine.host(), "--output"])
        .arg(&cli_out);
    let done = tokio::task::block_in_place(|| run_bounded(doctor, WAIT));
    assert!(done.status.success(), "{done:?}");
    let cli: serde_json::Value = serde_json::from_slice(&std::fs::read(&cli_out).unwrap()).unwrap();
    assert_eq!(keys(&app), keys(&cli));
    assert_eq!(app["home"], cli["home"]);
    assert_eq!(
        app["docker"]["version"]["Version"],
        cli["docker"]["version"]["Version"]
    );
    assert!(
        app["docker"]["version"]["Version"].is_string(),
        "the engine answered"
    );
    assert_eq!(app["logs"]["console"], cli["logs"]["console"]);
    assert!(
        app["logs"].get("berth-app").is_some(),
        "the app's own log too"
    );

    // Restart runs `berth restart` with the app's home: its start refuses that daemon.json.
    gui.click("[data-testid=trouble-restart-vm]").await;
    gui.confirm("Restart Berth's VM?", "ok").await;
    let (code, msg) = gui.error_shown().await;
    assert!(
        msg.contains("berth restart") && msg.contains("daemon.json"),
        "{code}: {msg}"
    );
    gui.click("[data-testid=error-dismiss]").await;

    // Reset: refused while a supervisor runs (this test's pid stands in for it).
    let run = berth.join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("supervisor.pid"), std::process::id().to_string()).unwrap();
    gui.click("[data-testid=trouble-reset]").await;
    let (code, msg) = gui.error_shown().await;
    assert_eq!(code, "conflict", "{msg}");
    assert!(msg.contains("berth stop"), "{msg}");
    assert!(berth.join("disk/data.qcow2").exists());
    gui.click("[data-testid=error-dismiss]").await;
    std::fs::remove_file(run.join("supervisor.pid")).unwrap();

    // The confirmation lists every path; cancel deletes nothing.
    let listed = ["disk", "config.json", "daemon.json", "logs", "run"].map(|p| berth.join(p));
    gui.click("[data-testid=trouble-reset]").await;
    gui.wait_text("[data-testid=confirm-title]", "factory defaults")
        .await;
    let items = gui.text("[data-testid=confirm-items]").await;
    for p in &listed {
        assert!(
            items.contains(&p.display().to_string()),
            "{} not in {items}",
            p.display()
        );
    }
    assert!(items.contains("every image"), "{items}");
    gui.confirm("factory defaults", "cancel").await;
    assert!(listed.iter().all(|p: &std::path::PathBuf| p.exists()));
    // Confirmed: exactly those are gone, the home itself stays.
    gui.click("[data-testid=trouble-reset]").await;
    gui.confirm("factory defaults", "ok").await;
    gui.wait_text("[data-testid=trouble-status]", "Reset:")
        .await;
    for p in &listed {
        assert!(!Path::new(p).exists(), "{} left", p.display());
    }
    assert!(berth.exists());
    gui.select("[data-testid=trouble-log-kind]", "console")
        .await;
    gui.wait_attr(log, "data-state", "missing").await;
    gui.finish().await;
}
