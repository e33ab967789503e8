//! Everyday polish the issue found broken: a container's status tooltip stays true while
//! nothing happens (no event re-renders the row), errors name containers by name rather than
//! by their 64-character id, a pull that fails before any progress leaves no empty strip, and
//! nothing runs in the page while it is idle (no animations, no timers: the cause of the idle
//! CPU with a scrolled pane).

use serde_json::json;

use crate::harness::{container_row, Gui};

/// Fires `mouseover` at the row's state cell, as a pointer reaching it, and checks its tooltip.
const TOOLTIP_AT_LEAST: &str =
    "const td = document.querySelector(arguments[0]); if (!td) return false; \
    td.dispatchEvent(new MouseEvent('mouseover', { bubbles: true })); \
    const m = /^Up (\\d+) seconds$/.exec(td.title); return !!m && Number(m[1]) >= arguments[1];";

/// Runs `containers_exec` on a container and shows its error as the UI does.
const EXEC_ERROR: &str = "const done = arguments[arguments.length - 1]; (async () => { \
    const dom = await import(new URL('js/dom.js', document.baseURI).href); \
    const channel = new window.__TAURI__.core.Channel(); \
    try { await window.__TAURI__.core.invoke('containers_exec', { id: arguments[0], cmd: ['sh'], cols: 80, rows: 24, channel }); done('no error'); } \
    catch (e) { dom.showError(e); done(e.message); } })();";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tooltips_stay_true_errors_use_names_and_idle_pages_do_nothing() {
    let gui = Gui::start().await;
    let row = container_row("gui-tip");
    let id = gui
        .cli(&[
            "run",
            "-d",
            "--name",
            "gui-tip",
            "busybox",
            "sh",
            "-c",
            "trap 'exit 0' TERM; while true; do sleep 1; done",
        ])
        .trim()
        .to_string();
    gui.wait_attr(&row, "data-state", "running").await;
    let sig = gui.attr(&row, "data-sig").await;
    // Fetched as "Up Less than a second" (or so); shown later without any event, it has aged.
    let cell = format!("{row} [data-testid=container-state]");
    gui.until_js(
        "the tooltip to age to 3 seconds",
        TOOLTIP_AT_LEAST,
        vec![cell.clone().into(), 3.into()],
    )
    .await;
    assert_eq!(
        gui.attr(&row, "data-sig").await,
        sig,
        "the row was not re-rendered: the tooltip aged by itself"
    );

    // The engine names a stopped container by its id when exec fails; the UI by its name.
    gui.cli(&["stop", "gui-tip"]);
    gui.wait_attr(&row, "data-state", "exited").await;
    let raw = gui.c().execute_async(EXEC_ERROR, vec![id.clone().into()]);
    let raw = tokio::time::timeout(crate::harness::WAIT, raw)
        .await
        .expect("exec answered")
        .expect("script ran");
    assert!(
        raw.as_str().unwrap_or("").contains(&id),
        "the engine's message has the id: {raw}"
    );
    gui.wait_text(
        "[data-testid=error-message]",
        "container gui-tip is not running",
    )
    .await;
    let shown = gui.text("[data-testid=error-message]").await;
    assert!(!shown.contains(&id), "{shown}");
    gui.click("[data-testid=error-dismiss]").await;

    // A pull that fails before any layer (nothing listens there): an error, no empty strip.
    gui.nav("images").await;
    gui.type_into(
        "[data-testid=pull-reference]",
        "127.0.0.1:1/gui-nothing:latest",
    )
    .await;
    gui.click("[data-testid=pull-submit]").await;
    gui.error_shown().await;
    gui.wait_attr("[data-testid=pull-status]", "data-state", "failed")
        .await;
    gui.wait_hidden("[data-testid=pull-progress]").await;

    // Idle with a scrolled pane open: no animation runs and no timer is pending.
    gui.nav("settings").await;
    gui.js(
        "window.scrollTo(0, document.body.scrollHeight); if (document.activeElement) document.activeElement.blur(); return true;",
        vec![],
    )
    .await;
    let idle = gui
        .js(
            "return { animations: document.getAnimations().filter((a) => a.playState === 'running').length };",
            vec![],
        )
        .await;
    assert_eq!(idle, json!({ "animations": 0 }));
    gui.finish().await;
}
