//! Settings › engine: the engine's daemon.json checked as it is typed (the parser's line and
//! column; nothing written while refused) and saved so that `berth config daemon` reads the
//! same file and finds it valid; the docker CLI's contexts listed from a private DOCKER_CONFIG,
//! the `berth` context created and switched to, as `docker context ls` then shows; the system
//! socket link (a path in the test's dir via `system_socket_path`) made, removed, and left
//! alone when something else is there; and "Restart the engine" saying why not without
//! Berth's VM (the test's engine runs natively).

use std::path::Path;
use std::process::Command;

use berth_test_support::run_bounded;

use crate::harness::{built_bin, Gui, WAIT};

const STATUS: &str = "[data-testid=daemon-json-status]";
const TEXT: &str = "[data-testid=daemon-json-text]";

/// `berth --home <berth> <args>`: (success, stdout, stderr).
fn berth(home: &Path, args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(built_bin("berth", "BERTH_CLI"));
    cmd.arg("--home").arg(home).args(args);
    let out = tokio::task::block_in_place(|| run_bounded(cmd, WAIT));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `docker context ls` with the app's DOCKER_CONFIG: (name, current) per context.
fn docker_contexts(config: &Path) -> Vec<(String, bool)> {
    let mut cmd = Command::new("docker");
    cmd.env("DOCKER_CONFIG", config)
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .args(["context", "ls", "--format", "{{.Name}} {{.Current}}"]);
    let out = tokio::task::block_in_place(|| run_bounded(cmd, WAIT));
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, c)| (n.to_string(), c == "true"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_checks_daemon_json_switches_contexts_and_links_the_system_socket() {
    let gui = Gui::start().await;
    let home = gui.home();
    let berth_home = home.join("berth");
    let daemon_json = berth_home.join("daemon.json");
    let sys = home.join("docker.sock");
    std::fs::write(
        berth_home.join("config.json"),
        serde_json::json!({ "system_socket_path": sys }).to_string(),
    )
    .unwrap();
    gui.nav("settings").await;

    // No file yet: empty, valid, applies at the next start (no VM here).
    gui.wait_attr(STATUS, "data-state", "valid").await;
    gui.wait_text(
        "[data-testid=daemon-json-path]",
        &daemon_json.display().to_string(),
    )
    .await;
    gui.wait_attr(
        "[data-testid=daemon-json-apply-note]",
        "data-how",
        "next_start",
    )
    .await;

    // A trailing comma: refused where the parser stops, Save disabled, nothing written.
    set_text(&gui, "{\n\"insecure-registries\": [\"r.test:5000\",]\n}").await;
    gui.wait_attr(STATUS, "data-state", "invalid").await;
    assert_eq!(gui.attr(STATUS, "data-line").await.as_deref(), Some("2"));
    let column = gui.attr(STATUS, "data-column").await.unwrap_or_default();
    let status = gui.text(STATUS).await;
    assert!(
        status.starts_with(&format!("Line 2, column {column}:")),
        "{status}"
    );
    assert_eq!(
        gui.attr("[data-testid=daemon-json-save]", "disabled")
            .await
            .as_deref(),
        Some("true")
    );
    // A known key of the wrong type is refused too, at the key.
    set_text(&gui, "{\"log-level\": \"info\",\n \"iptables\": \"yes\"}").await;
    gui.wait_text(STATUS, "Line 2, column 2: `iptables` must be true or false")
        .await;
    assert!(!daemon_json.exists(), "a refused text was written");

    // A good text with a key the engine does not read: valid, warned, saved as typed.
    let good = "{\n\"insecure-registries\": [\"r.test:5000\"],\n\"debug\": true\n}";
    set_text(&gui, good).await;
    gui.wait_attr(STATUS, "data-state", "valid").await;
    gui.wait_attr("[data-testid=daemon-json-warning]", "data-key", "debug")
        .await;
    gui.click("[data-testid=daemon-json-save]").await;
    gui.confirm("Save daemon.json?", "ok").await;
    gui.wait_attr(STATUS, "data-saved", "true").await;
    assert_eq!(std::fs::read_to_string(&daemon_json).unwrap(), good);
    // `berth` reads the same file and agrees: valid, with the same warning.
    let (ok, out, err) = berth(&berth_home, &["config", "daemon", "--check"]);
    assert!(ok && out.contains("is valid"), "{out}{err}");
    assert!(err.contains("`debug` is not read"), "{err}");
    let (ok, out, _) = berth(&berth_home, &["config", "daemon"]);
    assert!(ok);
    assert_eq!(out, good);

    // Docker contexts, from the app's private DOCKER_CONFIG.
    let docker_config = home.join("docker");
    let row = |name: &str| format!("[data-testid=context-row][data-name={name}]");
    gui.wait_attr(&row("default"), "data-current", "true").await;
    gui.click("[data-testid=contexts-create-berth]").await;
    gui.wait_attr(&row("berth"), "data-current", "false").await;
    let socket = berth_home.join("run/docker.sock");
    gui.wait_text(&row("berth"), &socket.display().to_string())
        .await;
    assert!(docker_contexts(&docker_config).contains(&("berth".to_string(), false)));
    gui.click(&format!("{} [data-testid=context-use]", row("berth")))
        .await;
    gui.wait_attr(&row("berth"), "data-current", "true").await;
    let ls = docker_contexts(&docker_config);
    assert!(
        ls.contains(&("berth".to_string(), true)) && ls.contains(&("default".to_string(), false)),
        "{ls:?}"
    );
    gui.click(&format!("{} [data-testid=context-use]", row("default")))
        .await;
    gui.wait_attr(&row("default"), "data-current", "true").await;
    assert!(docker_contexts(&docker_config).contains(&("default".to_string(), true)));

    // The system socket: free → linked to Berth's socket → removed.
    let st = "[data-testid=syssock-state]";
    gui.wait_attr(st, "data-state", "free").await;
    gui.wait_text("[data-testid=syssock-command]", "sudo ln -s")
        .await;
    gui.click("[data-testid=syssock-link]").await;
    gui.wait_attr(st, "data-state", "ours").await;
    assert_eq!(std::fs::read_link(&sys).unwrap(), socket);
    gui.click("[data-testid=syssock-unlink]").await;
    gui.wait_attr(st, "data-state", "free").await;
    assert!(std::fs::symlink_metadata(&sys).is_err(), "link left");
    // Something else there: shown, never replaced.
    std::fs::write(&sys, b"not ours").unwrap();
    gui.nav("containers").await;
    gui.nav("settings").await;
    gui.wait_attr(st, "data-state", "other").await;
    gui.wait_text("[data-testid=syssock-what]", "a file").await;
    assert_eq!(
        gui.attr("[data-testid=syssock-link]", "disabled")
            .await
            .as_deref(),
        Some("true")
    );
    assert_eq!(std::fs::read(&sys).unwrap(), b"not ours");

    // Restarting only the engine needs Berth's VM: said, nothing run.
    gui.nav("troubleshoot").await;
    gui.click("[data-testid=trouble-restart-engine]").await;
    gui.confirm("Restart the engine?", "ok").await;
    let (code, msg) = gui.error_shown().await;
    assert_eq!(code, "unavailable", "{msg}");
    assert!(msg.contains("needs Berth's VM"), "{msg}");
    gui.finish().await;
}

/// Puts `text` in the daemon.json editor as a paste would (value, then an `input` event):
/// WebKitWebDriver's typed keys do not insert a newline for `\n`.
async fn set_text(gui: &Gui, text: &str) {
    gui.js(
        "const a = document.querySelector(arguments[0]); a.value = arguments[1]; \
         a.dispatchEvent(new Event('input', { bubbles: true })); return true;",
        vec![TEXT.into(), text.into()],
    )
    .await;
}
