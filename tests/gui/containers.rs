//! Containers view: a container created with the CLI shows up (pushed by `/events`), its logs
//! follow, the terminal runs commands, stats arrive, Docker's refusal to remove a running
//! container is shown as Docker words it, compose project actions reach every container of the
//! project, and stop/remove from the UI are seen by the CLI.

use crate::harness::{container_row, Gui};

/// Docker's own message in a CLI error (`Error response from daemon: <message>`).
fn daemon_message(stderr: &str) -> String {
    let line = stderr
        .lines()
        .find(|l| l.contains("Error response from daemon"))
        .unwrap_or_else(|| panic!("no daemon error in {stderr:?}"));
    line.split_once("Error response from daemon: ")
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_container_shows_up_and_ui_actions_reach_the_engine() {
    let gui = Gui::start().await;
    let row = container_row("gui-web");
    // Nothing yet; then the CLI creates one and the list follows without any UI action.
    gui.wait_visible("[data-testid=container-empty]").await;
    gui.cli(&[
        "run",
        "-d",
        "--name",
        "gui-web",
        "--label",
        "com.docker.compose.project=demo",
        "--label",
        "com.docker.compose.service=web",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 0' TERM; echo hello-from-logs; i=0; while true; do echo tick $i; i=$((i+1)); sleep 1; done",
    ]);
    gui.wait_attr(&row, "data-state", "running").await;
    gui.wait_hidden("[data-testid=container-empty]").await;
    let image = gui
        .text(&format!("{row} [data-testid=container-image]"))
        .await;
    assert_eq!(image, "busybox");
    // Compose labels name the project and service under the container's name.
    let project = gui
        .text(&format!("{row} [data-testid=container-project]"))
        .await;
    assert_eq!(project, "demo · web");

    // Logs: the early line and later ones (follow, not a snapshot).
    gui.click(&format!("{row} [data-testid=container-logs]"))
        .await;
    gui.wait_text("[data-testid=logs-output]", "hello-from-logs")
        .await;
    gui.wait_text("[data-testid=logs-output]", "tick 3").await;
    gui.snapshot("containers-logs").await;

    // Terminal: a command's output comes back through the TTY.
    gui.click(&format!("{row} [data-testid=container-exec]"))
        .await;
    gui.type_into(
        "[data-testid=exec-input]",
        "echo $((6*7))-exec-ok; hostname",
    )
    .await;
    gui.click("[data-testid=exec-send]").await;
    gui.wait_text("[data-testid=exec-output]", "42-exec-ok")
        .await;
    let hostname = gui.cli(&["inspect", "-f", "{{.Config.Hostname}}", "gui-web"]);
    gui.wait_text("[data-testid=exec-output]", hostname.trim())
        .await;

    // Stats: a memory sample arrives. Leaving the terminal hangs its shell up.
    gui.click(&format!("{row} [data-testid=container-stats]"))
        .await;
    gui.cli_until("the terminal's shell to exit", || {
        let top = gui.engine.docker_ok(&["top", "gui-web"]);
        !top.lines().any(|l| l.trim_end().ends_with("/bin/sh"))
    });
    gui.until_js(
        "a stats sample",
        "return document.querySelector('[data-testid=stats-mem]').textContent.includes('/');",
        vec![],
    )
    .await;

    // Removing it while it runs: the engine refuses, the UI shows the engine's message.
    let cli_msg = daemon_message(&gui.cli_err(&["rm", "gui-web"]));
    gui.click(&format!("{row} [data-testid=container-remove]"))
        .await;
    let (code, msg) = gui.error_shown().await;
    gui.snapshot("containers-error").await;
    assert_eq!(code, "conflict", "{msg}");
    assert_eq!(msg, cli_msg);
    gui.click("[data-testid=error-dismiss]").await;

    // A compose project: a header row whose actions reach every container of the project.
    gui.cli(&[
        "run",
        "-d",
        "--name",
        "gui-db",
        "--label",
        "com.docker.compose.project=demo",
        "--label",
        "com.docker.compose.service=db",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 0' TERM; while true; do sleep 1; done",
    ]);
    let project = "[data-testid=project-row][data-project=demo]";
    gui.wait_text(
        &format!("{project} [data-testid=project-summary]"),
        "2/2 running",
    )
    .await;
    let states = || {
        gui.engine.docker_ok(&[
            "ps",
            "-a",
            "--filter",
            "label=com.docker.compose.project=demo",
            "--format",
            "{{.State}}",
        ])
    };
    gui.click(&format!("{project} [data-testid=project-stop]"))
        .await;
    gui.cli_until("the project to stop", || {
        states().lines().all(|s| s == "exited")
    });
    gui.wait_text(
        &format!("{project} [data-testid=project-summary]"),
        "0/2 running",
    )
    .await;
    gui.click(&format!("{project} [data-testid=project-start]"))
        .await;
    gui.cli_until("the project to start", || {
        states().lines().all(|s| s == "running")
    });
    gui.wait_attr(&container_row("gui-db"), "data-state", "running")
        .await;

    // Stop from the UI: the CLI sees it exited, and the row follows.
    gui.click(&format!("{row} [data-testid=container-stop]"))
        .await;
    gui.cli_until("gui-web to exit", || {
        gui.engine
            .docker_ok(&["inspect", "-f", "{{.State.Status}}", "gui-web"])
            .trim()
            == "exited"
    });
    gui.wait_attr(&row, "data-state", "exited").await;

    // Remove from the UI: gone for the CLI and from the list.
    gui.click(&format!("{row} [data-testid=container-remove]"))
        .await;
    gui.cli_until("gui-web to be removed", || {
        gui.engine
            .docker_ok(&["ps", "-aq", "--filter", "name=^gui-web$"])
            .trim()
            .is_empty()
    });
    gui.wait_gone(&row).await;

    // Remove all: the rest of the project goes, running or not, and so does its header.
    gui.click(&format!("{project} [data-testid=project-remove]"))
        .await;
    gui.cli_until("the project to be removed", || states().trim().is_empty());
    gui.wait_gone(project).await;
    gui.finish().await;
}
