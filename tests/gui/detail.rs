//! Container detail: the Overview shows what the container was made with (env, ports as links
//! that answer, mounts, labels, restart policy), its `docker run` line recreates the container
//! (run through a shell, the new one inspects the same), and Inspect holds the engine's JSON.

use berth_test_support::{free_port, http_get, run_bounded};

use crate::harness::{container_row, Gui, WAIT};

/// What a recreated container must have the same.
const SAME: &str = "{{json .Config.Image}} {{json .Config.Env}} {{json .Config.Cmd}} \
    {{json .Config.Labels}} {{json .HostConfig.RestartPolicy}} {{json .HostConfig.PortBindings}} \
    {{json .HostConfig.Binds}}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_links_ports_and_its_run_line_recreates_the_container() {
    let gui = Gui::start().await;
    let port = free_port();
    gui.cli(&[
        "run",
        "-d",
        "--name",
        "gui-detail",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        "-e",
        "GREETING=hi there",
        "-l",
        "team=blue",
        "--restart",
        "unless-stopped",
        "-v",
        "gui-data:/data:ro",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ]);
    let row = container_row("gui-detail");
    gui.wait_attr(&row, "data-state", "running").await;
    gui.click(&format!("{row} [data-testid=container-details]"))
        .await;
    gui.wait_attr("[data-testid=overview]", "data-state", "ready")
        .await;

    // The published port is a link to where it answers.
    let href = gui
        .attr("[data-testid=overview-port-link]", "href")
        .await
        .expect("href");
    assert_eq!(href, format!("http://127.0.0.1:{port}/"));
    gui.cli_until("the linked port to answer", || {
        http_get(&format!("127.0.0.1:{port}"), "/").is_ok_and(|r| r.contains("berth-httpd-ok"))
    });
    for (testid, want) in [
        ("overview-env", "GREETING=hi there"),
        ("overview-restart", "unless-stopped"),
        ("overview-mounts", "gui-data → /data (read-only)"),
        ("overview-labels", "team=blue"),
        ("overview-command", "httpd -f -p 80 -h /www"),
        ("overview-state", "running"),
    ] {
        gui.wait_text(&format!("[data-testid={testid}]"), want)
            .await;
    }
    gui.snapshot("container-overview").await;

    // Inspect: the engine's JSON, whole.
    let id = gui.cli(&["inspect", "-f", "{{.Id}}", "gui-detail"]);
    gui.click("[data-testid=detail-tab-inspect]").await;
    gui.wait_attr("[data-testid=inspect-json]", "data-state", "ready")
        .await;
    let shown = gui
        .js(
            "const j = JSON.parse(document.querySelector('[data-testid=inspect-json]').textContent); \
             return [j.Id, j.HostConfig.RestartPolicy.Name];",
            vec![],
        )
        .await;
    assert_eq!(shown, serde_json::json!([id.trim(), "unless-stopped"]));

    // The `docker run` line, run by a shell after the container is removed, makes the same one.
    gui.click("[data-testid=detail-tab-overview]").await;
    gui.wait_attr("[data-testid=overview]", "data-state", "ready")
        .await;
    let line = gui.text("[data-testid=overview-run]").await;
    assert!(
        line.starts_with("docker run -d --name gui-detail "),
        "{line}"
    );
    let before = gui.cli(&["inspect", "-f", SAME, "gui-detail"]);
    gui.cli(&["rm", "-f", "gui-detail"]);
    let out = tokio::task::block_in_place(|| {
        run_bounded(gui.engine.client_cmd("sh", &["-c", &line]), WAIT)
    });
    assert!(
        out.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = gui.cli(&["inspect", "-f", SAME, "gui-detail"]);
    assert_eq!(after, before, "recreated by: {line}");
    gui.cli_until("the recreated container to serve", || {
        http_get(&format!("127.0.0.1:{port}"), "/").is_ok_and(|r| r.contains("berth-httpd-ok"))
    });
    gui.finish().await;
}
