//! A tour of every view with a small, real workload: a compose project (a web server with a
//! published port and a volume, and a worker that logs), a standalone container that logs, one
//! that has exited, a few images, a volume and a network, all made with the docker CLI. Each
//! view must show that data (its rows, its loaded state) before the next is opened, so the test
//! proves every view renders real engine data; with `BERTH_GUI_SCREENSHOTS` set it also leaves a
//! picture of each (`scripts/screenshots.sh` writes `docs/screenshots/*.png` this way).

use berth_test_support::free_port;

use crate::harness::{container_row, Gui};

const COMPOSE_YAML: &str = r#"services:
  web:
    image: berth-test/httpd
    ports:
      - "127.0.0.1:${WEB_PORT}:80"
    volumes:
      - site:/www/data
  worker:
    image: busybox
    command: ["sh", "-c", "i=0; while true; do echo job $$i done in $$((i % 7 + 3)) ms; i=$$((i+1)); sleep 1; done"]
volumes:
  site:
"#;

/// `docker compose -p shop up -d` of [`COMPOSE_YAML`] in a temp folder (compose v2 plugin).
fn compose_up(gui: &Gui, dir: &std::path::Path, port: u16) {
    std::fs::write(dir.join("compose.yaml"), COMPOSE_YAML).expect("compose.yaml");
    gui.compose(
        dir,
        "shop",
        &[("WEB_PORT", port.to_string())],
        &["up", "-d"],
    );
}

/// Containers, images, a volume and a network, as someone's machine might hold them.
fn make_workload(gui: &Gui, dir: &std::path::Path) {
    for image in [
        "busybox",
        "berth-test/httpd",
        "hello-world",
        "berth-test/multilayer",
    ] {
        gui.cli(&["pull", "-q", image]);
    }
    compose_up(gui, dir, free_port());
    gui.cli(&["volume", "create", "pgdata"]);
    gui.cli(&["network", "create", "backend"]);
    gui.cli(&[
        "run",
        "-d",
        "--name",
        "api",
        "--network",
        "backend",
        "-v",
        "pgdata:/var/lib/data",
        "-e",
        "MODE=production",
        "--restart",
        "unless-stopped",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /var/lib/data/base/1 && echo 16 > /var/lib/data/PG_VERSION && seq 1 40000 > /var/lib/data/base/1/16384 && echo listening on :8080; i=0; while true; do echo GET /items/$i 200; i=$((i+1)); sleep 1; done",
    ]);
    gui.cli(&["run", "--name", "hello", "hello-world"]);
}

/// Scrolls the element into view (the detail panes open below their lists).
async fn scroll_to(gui: &Gui, css: &str) {
    gui.js(
        "document.querySelector(arguments[0]).scrollIntoView({block: 'start'}); return true;",
        vec![css.into()],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_view_shows_a_real_workload() {
    let gui = Gui::start().await;
    let dir = tempfile::tempdir().expect("project dir");
    make_workload(&gui, dir.path());

    // Containers: the project's two, the standalone one and the exited one.
    for (name, state) in [
        ("shop-web-1", "running"),
        ("shop-worker-1", "running"),
        ("api", "running"),
        ("hello", "exited"),
    ] {
        gui.wait_attr(&container_row(name), "data-state", state)
            .await;
    }
    gui.snapshot("containers").await;

    // The detail of one container, tab by tab.
    gui.click(&format!(
        "{} [data-testid=container-details]",
        container_row("api")
    ))
    .await;
    gui.wait_attr("[data-testid=overview]", "data-state", "ready")
        .await;
    gui.wait_text("[data-testid=overview-env]", "MODE=production")
        .await;
    scroll_to(&gui, "[data-testid=container-detail]").await;
    gui.snapshot("container-overview").await;
    gui.click("[data-testid=detail-tab-logs]").await;
    gui.wait_text("[data-testid=logs-output]", "GET /items/2 200")
        .await;
    gui.snapshot("container-logs").await;
    gui.click("[data-testid=detail-tab-stats]").await;
    gui.until_js(
        "8 samples in the CPU chart",
        "return Number(document.querySelector(arguments[0]).dataset.samples) >= 8;",
        vec!["[data-testid=chart-cpu]".into()],
    )
    .await;
    gui.snapshot("container-stats").await;
    gui.click("[data-testid=detail-tab-files]").await;
    gui.wait_attr("[data-testid=files-list]", "data-state", "ready")
        .await;
    gui.find("[data-testid=files-row][data-name=\"etc\"]").await;
    gui.snapshot("container-files").await;
    gui.click("[data-testid=detail-tab-inspect]").await;
    gui.wait_text("[data-testid=inspect-json]", "\"MODE=production\"")
        .await;
    gui.snapshot("container-inspect").await;
    gui.click("[data-testid=detail-close]").await;

    // Projects: the compose project with both services.
    gui.nav("projects").await;
    let card = "[data-testid=project-card][data-project=shop]";
    gui.wait_attr(card, "data-running", "2").await;
    // Its stats: both containers sampled and a few points on the charts.
    gui.find(&format!(
        "{card} [data-testid=project-stats][data-sampled=\"2\"]"
    ))
    .await;
    gui.until_js(
        "5 points on the project's CPU chart",
        "const e = document.querySelector(arguments[0]); return !!e && Number(e.dataset.samples) >= 5;",
        vec![format!("{card} [data-testid=project-chart-cpu]").into()],
    )
    .await;
    gui.snapshot("projects").await;

    // Unified logs: both of the project's containers and the standalone one follow.
    gui.nav("logs").await;
    for source in ["shop-worker-1", "api"] {
        gui.wait_attr(
            &format!("[data-testid=unified-source][data-source=\"{source}\"]"),
            "data-state",
            "following",
        )
        .await;
    }
    gui.wait_text("[data-testid=unified-output]", "done in")
        .await;
    gui.wait_text("[data-testid=unified-output]", "GET /items/")
        .await;
    gui.snapshot("logs").await;

    // Images, and the detail of the one with several layers.
    gui.nav("images").await;
    let multilayer = "[data-testid=image-row][data-ref=\"berth-test/multilayer:latest\"]";
    gui.find(multilayer).await;
    gui.snapshot("images").await;
    gui.click(&format!("{multilayer} [data-testid=image-details]"))
        .await;
    gui.wait_attr("[data-testid=image-detail-body]", "data-state", "loaded")
        .await;
    gui.find("[data-testid=image-layer][data-index=\"1\"]")
        .await;
    gui.snapshot("image-detail").await;
    gui.click("[data-testid=image-detail-close]").await;

    // Volumes and networks, the CLI's and the project's.
    gui.nav("volumes").await;
    for v in ["pgdata", "shop_site"] {
        gui.find(&format!("[data-testid=volume-row][data-name={v}]"))
            .await;
    }
    gui.snapshot("volumes").await;
    gui.click("[data-testid=volume-row][data-name=pgdata] [data-testid=volume-details]")
        .await;
    gui.wait_attr("[data-testid=volume-detail-body]", "data-state", "loaded")
        .await;
    gui.find("[data-testid=volume-container][data-name=api]")
        .await;
    scroll_to(&gui, "[data-testid=volume-detail]").await;
    gui.snapshot("volume-detail").await;
    gui.nav("networks").await;
    for n in ["backend", "shop_default"] {
        gui.find(&format!("[data-testid=network-row][data-name={n}]"))
            .await;
    }
    gui.snapshot("networks").await;

    // Builds: one small build from the app (a folder with a Dockerfile), its log and the
    // history row it leaves.
    gui.nav("builds").await;
    gui.wait_visible("[data-testid=build-history-empty]").await;
    let ctx = tempfile::tempdir().expect("build folder");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nCOPY motd /etc/motd\nRUN echo built by berth > /built.txt\nCMD [\"cat\", \"/etc/motd\"]\n",
    )
    .expect("Dockerfile");
    std::fs::write(ctx.path().join("motd"), "welcome to the shop\n").expect("motd");
    gui.type_into("[data-testid=build-context]", ctx.path().to_str().unwrap())
        .await;
    gui.type_into("[data-testid=build-tags]", "shop/motd:1")
        .await;
    gui.click("[data-testid=build-submit]").await;
    gui.wait_attr("[data-testid=build-status]", "data-state", "succeeded")
        .await;
    gui.find("[data-testid=build-row][data-outcome=succeeded]")
        .await;
    assert_ne!(gui.cli(&["image", "ls", "-q", "shop/motd:1"]).trim(), "");
    // The log's end and the history row below it in the picture.
    gui.js(
        "document.querySelector('[data-testid=build-history]').scrollIntoView({block: 'end'}); return true;",
        vec![],
    )
    .await;
    gui.snapshot("builds").await;

    // Disk: the engine's usage per kind.
    gui.nav("disk").await;
    gui.wait_attr("[data-testid=view-disk]", "data-state", "loaded")
        .await;
    gui.snapshot("disk").await;

    // Settings and Troubleshoot.
    gui.nav("settings").await;
    gui.wait_text("[data-testid=settings-socket-source]", "BERTH_DOCKER_HOST")
        .await;
    gui.snapshot("settings").await;
    gui.nav("troubleshoot").await;
    gui.find("[data-testid=trouble-bundle]").await;
    gui.snapshot("troubleshoot").await;

    gui.finish().await;
}
