//! The Projects and Logs views with a real compose v2 project (`docker compose up`, two
//! services printing numbered lines, a published port, `stop_grace_period: 3s` and a PID 1
//! that ignores SIGTERM, so every stop takes the full 3 s). Projects shows it by itself, with
//! its folder, port link and compose.yaml; the unified Logs view follows both containers, each
//! with its own name and colour, follows a restarted one again without repeating lines,
//! highlights a search and filters by container; Stop stops both at once (their exit times
//! within a second of each other, by `docker inspect`) with both rows marked "stopping…"
//! meanwhile; Start and Restart reach both; Down asks, naming what goes, then removes the
//! containers and the project's network (checked with the CLI).

use std::path::Path;
use std::time::Instant;

use berth_test_support::free_port;
use serde_json::{json, Value};

use crate::harness::Gui;

const PROJECT: &str = "guiproj";
const CARD: &str = "[data-testid=project-card][data-project=guiproj]";

/// Each service prints `<name> says <n>` twice a second.
const COMPOSE_YAML: &str = r#"services:
  web:
    image: busybox
    command: ["sh", "-c", "i=0; while true; do echo web says $$i; i=$$((i+1)); sleep 0.5; done"]
    ports:
      - "127.0.0.1:${WEB_PORT}:80"
    stop_grace_period: 3s
  db:
    image: busybox
    command: ["sh", "-c", "i=0; while true; do echo db says $$i; i=$$((i+1)); sleep 0.5; done"]
    stop_grace_period: 3s
"#;

/// `docker compose -p guiproj <args>` in `dir`, the web port in `WEB_PORT`.
fn compose(gui: &Gui, dir: &Path, port: u16, args: &[&str]) {
    gui.compose(dir, PROJECT, &[("WEB_PORT", port.to_string())], args);
}

fn row(service: &str) -> String {
    format!("{CARD} [data-testid=project-service][data-service={service}]")
}

/// `docker inspect -f <format> <container>`, trimmed.
fn inspect(gui: &Gui, format: &str, container: &str) -> String {
    gui.cli(&["inspect", "-f", format, container])
        .trim()
        .to_string()
}

/// The states of the project's containers, by the CLI.
fn states(gui: &Gui) -> Vec<String> {
    let label = format!("label=com.docker.compose.project={PROJECT}");
    let out = gui
        .engine
        .docker_ok(&["ps", "-a", "--filter", &label, "--format", "{{.State}}"]);
    out.lines().map(str::to_string).collect()
}

/// Seconds since midnight of an RFC 3339 time (`…T21:04:02.123456789Z`).
fn day_seconds(ts: &str) -> f64 {
    let time = ts
        .split_once('T')
        .map_or(ts, |(_, t)| t)
        .trim_end_matches('Z');
    time.split(':')
        .map(|p| p.parse::<f64>().unwrap_or_else(|_| panic!("a time: {ts}")))
        .fold(0.0, |acc, p| acc * 60.0 + p)
}

/// The unified pane's lines: `(source prefix, its colour, text)` (no time stamp).
async fn unified_lines(gui: &Gui) -> Vec<(String, String, String)> {
    let v = gui.js(UNIFIED_LINES, vec![]).await;
    serde_json::from_value(v).expect("lines")
}

const UNIFIED_LINES: &str = "return [...document.querySelectorAll('[data-testid=unified-output] .ln')].map(l => { \
    const s = l.querySelector('.src'); \
    const text = [...l.childNodes].filter(n => !(n.classList && (n.classList.contains('src') || n.classList.contains('ts')))) \
      .map(n => n.textContent).join('').trim(); \
    return [s ? s.textContent : '', s ? getComputedStyle(s).color : '', text]; });";

/// How many lines of the unified pane read `db says 0`.
const DB_ZERO: &str = "return [...document.querySelectorAll('[data-testid=unified-output] .ln')] \
    .filter(l => l.textContent.endsWith(' db says 0\\n')).length";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_view_drives_a_compose_project_and_logs_follow_it() {
    let gui = Gui::start().await;
    let dir = tempfile::tempdir().expect("project dir");
    std::fs::write(dir.path().join("compose.yaml"), COMPOSE_YAML).expect("compose.yaml");
    let port = free_port();
    gui.nav("projects").await;
    gui.wait_visible("[data-testid=project-empty]").await;

    // `docker compose up`: the project shows up by itself (pushed by events).
    gui.cli(&["pull", "-q", "busybox"]);
    compose(&gui, dir.path(), port, &["up", "-d"]);
    gui.wait_text(
        &format!("{CARD} [data-testid=project-card-summary]"),
        "2/2 running",
    )
    .await;
    gui.wait_attr(&row("web"), "data-state", "running").await;
    gui.wait_attr(&row("db"), "data-state", "running").await;
    gui.wait_hidden("[data-testid=project-empty]").await;
    gui.snapshot("projects").await;

    // Its folder, as compose recorded it, opens in the file manager.
    let folder = inspect(
        &gui,
        "{{index .Config.Labels \"com.docker.compose.project.working_dir\"}}",
        "guiproj-web-1",
    );
    assert_eq!(
        Path::new(&folder).canonicalize().unwrap(),
        dir.path().canonicalize().unwrap()
    );
    assert_eq!(
        gui.text(&format!("{CARD} [data-testid=project-dir]")).await,
        folder
    );
    gui.click(&format!("{CARD} [data-testid=projects-folder]"))
        .await;
    gui.cli_until("the folder handed to the opener", || {
        gui.opened().contains(&folder)
    });

    // The published port is a link, opened in the browser.
    let link = format!("{} [data-testid=project-port-link]", row("web"));
    let url = format!("http://127.0.0.1:{port}/");
    assert_eq!(gui.attr(&link, "href").await.as_deref(), Some(&url[..]));
    gui.click(&link).await;
    gui.cli_until("the link handed to the opener", || {
        gui.opened().contains(&url)
    });

    // compose.yaml, from the config_files label, exactly as on disk.
    gui.click(&format!("{CARD} [data-testid=projects-config]"))
        .await;
    gui.wait_text(
        &format!("{CARD} [data-testid=project-config-text]"),
        "stop_grace_period",
    )
    .await;
    let shown = gui
        .js(
            "return document.querySelector(arguments[0]).textContent;",
            vec![format!("{CARD} [data-testid=project-config-text]").into()],
        )
        .await;
    assert_eq!(shown, json!(COMPOSE_YAML));

    unified_logs(&gui).await;
    stop_start_restart(&gui).await;
    down(&gui).await;
    gui.finish().await;
}

/// The project's Logs: both containers, told apart; a restarted one followed again; search;
/// the container filter.
async fn unified_logs(gui: &Gui) {
    gui.nav("projects").await;
    gui.click(&format!("{CARD} [data-testid=projects-logs]"))
        .await;
    gui.wait_attr("body", "data-view", "logs").await;
    let filter = gui
        .js(
            "return document.querySelector('[data-testid=unified-filter]').value;",
            vec![],
        )
        .await;
    assert_eq!(filter, json!("project:guiproj"));
    let out = "[data-testid=unified-output]";
    gui.wait_text(out, "web says 3").await;
    gui.wait_text(out, "db says 3").await;
    gui.wait_attr(
        "[data-testid=unified-source][data-source=guiproj-db-1]",
        "data-state",
        "following",
    )
    .await;

    // Each line carries its container's name, in that container's own colour.
    let lines = unified_lines(gui).await;
    let colour = |name: &str| {
        let prefix = format!("{name} | ");
        let of: Vec<_> = lines.iter().filter(|l| l.0 == prefix).collect();
        assert!(!of.is_empty(), "no line from {name}: {lines:?}");
        let service = name.split('-').nth(1).unwrap().to_string();
        assert!(
            of.iter()
                .all(|l| l.2.starts_with(&format!("{service} says ")) && l.1 == of[0].1),
            "{name}'s lines: {of:?}"
        );
        of[0].1.clone()
    };
    assert_ne!(colour("guiproj-web-1"), colour("guiproj-db-1"));
    gui.snapshot("logs").await;

    // A container that restarts is followed again from where it stopped: its new run's lines
    // (from 0 again) arrive, and nothing it printed before is shown twice.
    assert_eq!(gui.js(&format!("{DB_ZERO};"), vec![]).await, json!(1));
    gui.cli(&["restart", "-t", "1", "guiproj-db-1"]);
    gui.until_js(
        "the restarted db's first line",
        &format!("{DB_ZERO} === 2;"),
        vec![],
    )
    .await;
    gui.wait_attr(
        "[data-testid=unified-source][data-source=guiproj-db-1]",
        "data-state",
        "following",
    )
    .await;
    let db: Vec<String> = unified_lines(gui)
        .await
        .into_iter()
        .filter(|l| l.0.starts_with("guiproj-db-1"))
        .map(|l| l.2)
        .collect();
    let restart_at = db.iter().rposition(|t| t == "db says 0").unwrap();
    let numbers = |part: &[String]| -> Vec<u32> {
        part.iter()
            .map(|t| t.trim_start_matches("db says ").parse().unwrap())
            .collect()
    };
    for run in [&db[..restart_at], &db[restart_at..]] {
        let n = numbers(run);
        assert!(
            n.windows(2).all(|w| w[1] == w[0] + 1),
            "each run of db counts up once, no line lost or repeated: {n:?}"
        );
    }

    // Search: every match highlighted, the count said.
    gui.type_into("[data-testid=unified-search]", "SAYS 1")
        .await;
    gui.until_js(
        "matches counted",
        "const c = document.querySelector('[data-testid=unified-matches]').dataset.count; return Number(c) > 0;",
        vec![],
    )
    .await;
    // Marks and the count are read in one script: lines keep arriving, and a count read after
    // the marks can already include a line that came in between.
    let seen = gui
        .js(
            "return { marks: [...document.querySelectorAll('[data-testid=unified-output] mark')].map(m => m.textContent), \
                      count: Number(document.querySelector('[data-testid=unified-matches]').dataset.count) };",
            vec![],
        )
        .await;
    let marks: Vec<String> = serde_json::from_value(seen["marks"].clone()).unwrap();
    let count = seen["count"].as_u64().unwrap() as usize;
    assert!(
        !marks.is_empty() && marks.iter().all(|m| m == "says 1"),
        "{marks:?}"
    );
    assert!(marks.len() >= count, "{} marks, {count} lines", marks.len());

    // The container filter: only db's lines, and only db in the legend.
    gui.select("[data-testid=unified-filter]", "container:guiproj-db-1")
        .await;
    gui.until_js(
        "only db's lines",
        "const l = [...document.querySelectorAll('[data-testid=unified-output] .ln .src')]; \
         const s = [...document.querySelectorAll('[data-testid=unified-source]')].map(e => e.dataset.source); \
         return l.length > 0 && l.every(e => e.textContent === 'guiproj-db-1 | ') && s.join() === 'guiproj-db-1';",
        vec![],
    )
    .await;
}

/// Stop (concurrent, rows marked at once), Start and Restart on the whole project.
async fn stop_start_restart(gui: &Gui) {
    gui.nav("projects").await;
    let t0 = Instant::now();
    gui.click(&format!("{CARD} [data-testid=projects-stop]"))
        .await;
    // Both rows say so while the engine waits out their grace period.
    gui.wait_attr(&row("web"), "data-pending", "stopping…")
        .await;
    gui.wait_attr(&row("db"), "data-pending", "stopping…").await;
    let marked = t0.elapsed();
    gui.cli_until("both stopped", || states(gui).iter().all(|s| s == "exited"));
    let took = t0.elapsed();
    let finished = |c: &str| day_seconds(&inspect(gui, "{{.State.FinishedAt}}", c));
    let gap = (finished("guiproj-web-1") - finished("guiproj-db-1")).abs();
    eprintln!(
        "figures: stop all of 2 services with 3 s grace each: rows marked after {marked:?}, \
         both exited after {took:?}, exit times {gap:.3} s apart"
    );
    assert!(
        gap < 1.5,
        "stopped one after the other: exits {gap:.3} s apart"
    );
    gui.wait_text(
        &format!("{CARD} [data-testid=project-card-summary]"),
        "0/2 running",
    )
    .await;
    gui.wait_attr(&row("web"), "data-state", "exited").await;

    gui.click(&format!("{CARD} [data-testid=projects-start]"))
        .await;
    gui.cli_until("both running", || {
        states(gui).iter().all(|s| s == "running")
    });
    gui.wait_text(
        &format!("{CARD} [data-testid=project-card-summary]"),
        "2/2 running",
    )
    .await;

    let started = |c: &str| inspect(gui, "{{.State.StartedAt}}", c);
    let before = [started("guiproj-web-1"), started("guiproj-db-1")];
    gui.click(&format!("{CARD} [data-testid=projects-restart]"))
        .await;
    gui.cli_until("both started again", || {
        started("guiproj-web-1") != before[0]
            && started("guiproj-db-1") != before[1]
            && states(gui).iter().all(|s| s == "running")
    });
}

/// Down asks first, naming the containers and the network; cancelled, nothing goes.
async fn down(gui: &Gui) {
    let networks = || {
        gui.engine.docker_ok(&[
            "network",
            "ls",
            "--filter",
            "label=com.docker.compose.project=guiproj",
            "--format",
            "{{.Name}}",
        ])
    };
    assert_eq!(networks().trim(), "guiproj_default");
    gui.wait_attr(&row("db"), "data-state", "running").await;
    gui.click(&format!("{CARD} [data-testid=projects-down]"))
        .await;
    gui.wait_text("[data-testid=confirm-items]", "network guiproj_default")
        .await;
    let items: Value = gui
        .js(
            "return [...document.querySelectorAll('[data-testid=confirm-items] li')].map(l => l.textContent);",
            vec![],
        )
        .await;
    assert_eq!(
        items,
        json!([
            "container guiproj-db-1",
            "container guiproj-web-1",
            "network guiproj_default"
        ])
    );
    gui.confirm("Take down project guiproj?", "cancel").await;
    assert_eq!(states(gui), ["running", "running"]);

    gui.click(&format!("{CARD} [data-testid=projects-down]"))
        .await;
    gui.confirm("Take down project guiproj?", "ok").await;
    gui.cli_until("the containers and network gone", || {
        states(gui).is_empty() && networks().trim().is_empty()
    });
    gui.wait_gone(CARD).await;
    gui.wait_visible("[data-testid=project-empty]").await;
}
