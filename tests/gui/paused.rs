//! Paused containers everywhere: a `docker pause` from the CLI shows as "paused" in the
//! Containers list, the container detail, the Projects view and the tray (pushed by the
//! engine's pause/unpause events); Pause/Unpause from a row, the detail, the bulk bar, a
//! project card and the tray reach the engine (checked with `docker inspect`).

use serde_json::{json, Value};

use crate::app::invoke;
use crate::harness::{container_row, Gui, WAIT};
use crate::tray::run;

/// `docker inspect -f {{.State.Status}}` of `name`.
fn status(gui: &Gui, name: &str) -> String {
    gui.cli(&["inspect", "-f", "{{.State.Status}}", name])
        .trim()
        .to_string()
}

/// Waits until the CLI says `name` is `want`.
fn cli_status(gui: &Gui, name: &str, want: &str) {
    gui.cli_until(&format!("{name} {want} for the CLI"), || {
        status(gui, name) == want
    });
}

/// Waits until the row of `name` shows `state`.
async fn row_state(gui: &Gui, name: &str, state: &str) {
    gui.find(&format!("{}[data-state={state}]", container_row(name)))
        .await;
}

/// The label of tray submenu `id`, once `cond` holds for the shown menu.
async fn tray_label(gui: &Gui, id: &str, want: &str) -> Value {
    let end = std::time::Instant::now() + WAIT;
    loop {
        let v = invoke(gui, "tray_menu", json!({})).await;
        let found = find_entry(&v["shown"]["items"], id);
        if found.as_ref().and_then(|e| e["label"].as_str()) == Some(want) {
            return found.unwrap_or_default();
        }
        assert!(
            std::time::Instant::now() < end,
            "the tray never labelled {id} {want:?}:\n{v:#}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
}

fn find_entry(entries: &Value, id: &str) -> Option<Value> {
    for e in entries.as_array().into_iter().flatten() {
        if e["id"] == id {
            return Some(e.clone());
        }
        if let Some(f) = find_entry(&e["items"], id) {
            return Some(f);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_shows_everywhere_and_pause_unpause_reach_the_engine() {
    let gui = Gui::start().await;
    let solo = run(&gui, "solo", &[]);
    run(
        &gui,
        "pp-web-1",
        &[
            "--label",
            "com.docker.compose.project=pp",
            "--label",
            "com.docker.compose.service=web",
        ],
    );
    row_state(&gui, "solo", "running").await;
    row_state(&gui, "pp-web-1", "running").await;

    // Paused by the CLI: every view follows the events.
    gui.cli(&["pause", "solo", "pp-web-1"]);
    row_state(&gui, "solo", "paused").await;
    row_state(&gui, "pp-web-1", "paused").await;
    let cell = format!("{} [data-testid=container-state]", container_row("solo"));
    assert_eq!(
        gui.attr(&cell, "class").await.as_deref(),
        Some("state-paused")
    );
    assert!(gui.text(&cell).await.ends_with("paused"));
    gui.wait_text("[data-testid=project-summary]", "1 paused")
        .await;
    let menu = tray_label(&gui, &format!("container:{solo}"), "solo (paused)").await;
    assert!(
        find_entry(&menu["items"], &format!("unpause:{solo}")).is_some(),
        "{menu:#}"
    );

    gui.nav("projects").await;
    gui.find("[data-testid=project-service][data-name=pp-web-1][data-state=paused]")
        .await;
    gui.wait_text(
        "[data-testid=project-card-summary]",
        "0/1 running, 1 paused",
    )
    .await;
    // The project's Unpause, then Pause, reach its container.
    gui.click("[data-testid=projects-unpause]").await;
    cli_status(&gui, "pp-web-1", "running");
    gui.find("[data-testid=project-service][data-name=pp-web-1][data-state=running]")
        .await;
    gui.click("[data-testid=projects-pause]").await;
    cli_status(&gui, "pp-web-1", "paused");

    // The detail says paused; its Unpause runs the container again.
    gui.nav("containers").await;
    gui.click(&format!(
        "{} [data-testid=container-details]",
        container_row("solo")
    ))
    .await;
    gui.wait_text("[data-testid=detail-state]", "paused").await;
    gui.wait_text("[data-testid=overview-state]", "paused")
        .await;
    gui.click("[data-testid=detail-pause]").await;
    cli_status(&gui, "solo", "running");
    row_state(&gui, "solo", "running").await;
    gui.wait_text("[data-testid=detail-state]", "running").await;
    gui.click("[data-testid=detail-close]").await;

    // A row's Pause and Unpause.
    gui.click(&format!(
        "{} [data-testid=container-pause]",
        container_row("solo")
    ))
    .await;
    cli_status(&gui, "solo", "paused");
    row_state(&gui, "solo", "paused").await;
    gui.click(&format!(
        "{} [data-testid=container-unpause]",
        container_row("solo")
    ))
    .await;
    cli_status(&gui, "solo", "running");
    row_state(&gui, "solo", "running").await;

    // Bulk: both selected (one running, one paused); Pause pauses the running one, Unpause
    // unpauses both.
    for name in ["solo", "pp-web-1"] {
        gui.click(&format!(
            "{} [data-testid=container-select]",
            container_row(name)
        ))
        .await;
    }
    gui.click("[data-testid=bulk-pause]").await;
    cli_status(&gui, "solo", "paused");
    gui.wait_text("[data-testid=bulk-progress]", "Paused 1 of 1")
        .await;
    row_state(&gui, "solo", "paused").await;
    gui.click("[data-testid=bulk-unpause]").await;
    cli_status(&gui, "solo", "running");
    cli_status(&gui, "pp-web-1", "running");
    gui.wait_text("[data-testid=bulk-progress]", "Unpaused 2 of 2")
        .await;
    row_state(&gui, "pp-web-1", "running").await;

    // The tray's Pause and Unpause.
    tray_label(&gui, &format!("container:{solo}"), "solo").await;
    invoke(
        &gui,
        "tray_activate",
        json!({"id": format!("pause:{solo}")}),
    )
    .await;
    cli_status(&gui, "solo", "paused");
    tray_label(&gui, &format!("container:{solo}"), "solo (paused)").await;
    row_state(&gui, "solo", "paused").await;
    invoke(
        &gui,
        "tray_activate",
        json!({"id": format!("unpause:{solo}")}),
    )
    .await;
    cli_status(&gui, "solo", "running");
    row_state(&gui, "solo", "running").await;
    gui.finish().await;
}
