//! Per-project stats in the Projects view: a real compose v2 project with a service that burns
//! CPU (a busybox shell loop) and an idle one. Its card sums the engine's stats streams of both
//! running containers: CPU above zero, memory within what `docker stats --no-stream` sums
//! around the same moment, and its charts get points. Stopping a service leaves one stream;
//! leaving the view ends every stats stream (the app log's stream count).

use std::time::Duration;

use crate::harness::Gui;

const PROJECT: &str = "statsproj";
const CARD: &str = "[data-testid=project-card][data-project=statsproj]";
const STATS: &str =
    "[data-testid=project-card][data-project=statsproj] [data-testid=project-stats]";

const COMPOSE_YAML: &str = r#"services:
  burn:
    image: busybox
    command: ["sh", "-c", "while :; do :; done"]
    stop_grace_period: 1s
  idle:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
"#;

/// A size as `docker stats` prints it (`352KiB`, `1.23MiB`, `0B`), in bytes.
fn parse_size(s: &str) -> f64 {
    let s = s.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().unwrap_or_else(|_| panic!("not a size: {s:?}"));
    let scale = match unit {
        "B" => 1.0,
        "KiB" | "kB" => 1024.0,
        "MiB" | "MB" => 1024.0 * 1024.0,
        "GiB" | "GB" => 1024.0 * 1024.0 * 1024.0,
        other => panic!("unit {other:?} in {s:?}"),
    };
    n * scale
}

/// The memory `docker stats --no-stream` gives the project's containers, summed.
fn cli_memory(gui: &Gui) -> f64 {
    let label = format!("label=com.docker.compose.project={PROJECT}");
    let ids = gui.cli(&["ps", "-q", "--filter", &label]);
    let mut args = vec!["stats", "--no-stream", "--format", "{{.MemUsage}}"];
    args.extend(ids.lines());
    let out = gui.cli(&args);
    out.lines()
        .map(|l| parse_size(l.split(" / ").next().unwrap_or("")))
        .sum()
}

async fn stat(gui: &Gui, key: &str) -> f64 {
    gui.attr(STATS, key)
        .await
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_view_sums_the_stats_streams_of_a_projects_containers() {
    let gui = Gui::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("compose.yaml"), COMPOSE_YAML).expect("compose.yaml");
    gui.compose(dir.path(), PROJECT, &[], &["up", "-d"]);

    gui.nav("projects").await;
    gui.find(&format!("{CARD}[data-running=\"2\"]")).await;
    gui.find(&format!("{STATS}[data-sampled=\"2\"]")).await;
    // The burning service shows: the sum's CPU rises above zero.
    gui.until_js(
        "the project's CPU above 1 %",
        "const e = document.querySelector(arguments[0]); return !!e && Number(e.dataset.cpu) > 1;",
        vec![STATS.into()],
    )
    .await;
    // Memory: the CLI's sums taken before and after the app's value bound it (with 25 %
    // slack for the pages a shell loop touches between samples).
    let before = cli_memory(&gui);
    let shown = stat(&gui, "data-mem").await;
    let after = cli_memory(&gui);
    let (lo, hi) = (before.min(after) * 0.75, before.max(after) * 1.25);
    assert!(
        shown > 0.0 && shown >= lo && shown <= hi,
        "app {shown} B, docker stats {before} and {after} B"
    );
    let text = gui.text(STATS).await;
    assert!(
        text.starts_with("CPU ") && text.contains("2 running"),
        "{text}"
    );
    // The charts get a point a second.
    for chart in ["project-chart-cpu", "project-chart-mem"] {
        let css = format!("{CARD} [data-testid={chart}]");
        gui.until_js(
            &format!("3 points on {chart}"),
            "const e = document.querySelector(arguments[0]); return !!e && Number(e.dataset.samples) >= 3;",
            vec![css.into()],
        )
        .await;
    }

    // A stopped service leaves the sum (its stream is closed): only the idle one is summed.
    gui.compose(dir.path(), PROJECT, &[], &["stop", "burn"]);
    gui.find(&format!("{STATS}[data-sampled=\"1\"]")).await;
    gui.until_js(
        "the project's CPU near zero without the burner",
        "const e = document.querySelector(arguments[0]); return !!e && Number(e.dataset.cpu) < 5;",
        vec![STATS.into()],
    )
    .await;
    streams_until(&gui, 1).await;
    // Leaving the view ends them all.
    gui.nav("containers").await;
    streams_until(&gui, 0).await;
    gui.finish().await;
}

/// Waits until the app runs `n` streams (the Projects view's stats streams, nothing else
/// being open).
async fn streams_until(gui: &Gui, n: u64) {
    let end = std::time::Instant::now() + crate::harness::WAIT;
    loop {
        let v = crate::app::invoke(gui, "system_streams_running", serde_json::json!({})).await;
        if v.as_u64() == Some(n) {
            return;
        }
        assert!(
            std::time::Instant::now() < end,
            "the app runs {v} streams, not {n}\n{}",
            gui.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
