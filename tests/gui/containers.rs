//! Containers view: a container created with the CLI shows up (pushed by `/events`), its logs
//! follow, stats arrive (the terminal has its own test, `terminal.rs`), Docker's refusal to remove a running
//! container is shown as Docker words it, compose project actions reach every container of the
//! project, and stop/remove from the UI are seen by the CLI.

use crate::harness::{container_row, Gui};

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

    // Stats: a memory sample arrives.
    gui.click(&format!("{row} [data-testid=container-stats]"))
        .await;
    gui.until_js(
        "a stats sample",
        "return document.querySelector('[data-testid=stats-mem]').textContent.includes('/');",
        vec![],
    )
    .await;

    // Removing it while it runs asks first and offers to stop it or force it; cancelled, it
    // keeps running.
    gui.click(&format!("{row} [data-testid=container-remove]"))
        .await;
    gui.wait_visible("[data-testid=confirm-alt]").await;
    assert_eq!(
        gui.text("[data-testid=confirm-alt]").await,
        "Stop and remove"
    );
    assert_eq!(gui.text("[data-testid=confirm-ok]").await, "Force remove");
    gui.snapshot("containers-confirm").await;
    gui.confirm("gui-web is running", "cancel").await;
    assert_eq!(
        gui.cli(&["inspect", "-f", "{{.State.Status}}", "gui-web"])
            .trim(),
        "running"
    );

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
    gui.confirm("Remove gui-web?", "ok").await;
    gui.cli_until("gui-web to be removed", || {
        gui.engine
            .docker_ok(&["ps", "-aq", "--filter", "name=^gui-web$"])
            .trim()
            .is_empty()
    });
    gui.wait_gone(&row).await;

    // Remove all, confirmed: the rest of the project goes, running or not, and its header.
    gui.click(&format!("{project} [data-testid=project-remove]"))
        .await;
    gui.confirm("Remove project demo?", "ok").await;
    gui.cli_until("the project to be removed", || states().trim().is_empty());
    gui.wait_gone(project).await;

    // Force remove, offered for a running container: killed and removed, as `docker rm -f`.
    gui.cli(&[
        "run",
        "-d",
        "--name",
        "gui-force",
        "busybox",
        "sleep",
        "3600",
    ]);
    let force = container_row("gui-force");
    gui.wait_attr(&force, "data-state", "running").await;
    gui.click(&format!("{force} [data-testid=container-remove]"))
        .await;
    gui.confirm("gui-force is running", "ok").await;
    gui.cli_until("gui-force to be removed", || {
        gui.engine
            .docker_ok(&["ps", "-aq", "--filter", "name=^gui-force$"])
            .trim()
            .is_empty()
    });
    gui.wait_gone(&force).await;
    gui.finish().await;
}
