//! The engine as the app sees it: the app starts while the engine is unreachable (as when the
//! VM is stopped), says so, answers commands with `unavailable`, and connects by itself once
//! the socket appears (the watcher's bounded retry), with events flowing.

use crate::harness::{Gui, GuiOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_starts_with_the_engine_down_and_connects_when_it_appears() {
    let gui = Gui::start_with(GuiOptions { late_socket: true }).await;
    gui.wait_attr("[data-testid=engine-status]", "data-state", "down")
        .await;
    gui.wait_visible("[data-testid=engine-down-hint]").await;

    gui.nav("volumes").await;
    gui.type_into("[data-testid=volume-name]", "early-vol")
        .await;
    gui.click("[data-testid=volume-create]").await;
    let (code, msg) = gui.error_shown().await;
    assert_eq!(code, "unavailable", "{msg}");
    assert!(msg.contains("late.sock"), "names the socket: {msg}");

    gui.connect_late_socket();
    gui.wait_attr("[data-testid=engine-status]", "data-state", "ready")
        .await;
    gui.wait_hidden("[data-testid=engine-down-hint]").await;
    gui.cli(&["volume", "create", "late-vol"]);
    gui.find("[data-testid=volume-row][data-name=late-vol]")
        .await;
    gui.finish().await;
}
