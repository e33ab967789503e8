//! The engine as the app sees it: the app starts while the engine is unreachable (as when the
//! VM is stopped), says so naming the socket it points at (not Berth's VM when the socket is
//! another), puts the lists out of reach, keeps Settings consistent, answers commands with
//! `unavailable`, and connects by itself once the socket appears (the watcher's bounded
//! retry), with events flowing.

use serde_json::json;

use crate::app::try_invoke;
use crate::harness::{Gui, GuiOptions};

const INERT: &str = "return document.getElementById(arguments[0]).inert === true \
    && document.getElementById(arguments[0]).getAttribute('aria-disabled') === 'true';";
const LIVE: &str = "return document.getElementById(arguments[0]).inert === false;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_starts_with_the_engine_down_and_connects_when_it_appears() {
    let gui = Gui::start_with(GuiOptions {
        late_socket: true,
        ..GuiOptions::default()
    })
    .await;
    gui.wait_attr("[data-testid=engine-status]", "data-state", "down")
        .await;
    gui.wait_visible("[data-testid=engine-down-hint]").await;
    // The hint names the socket in use and where it came from; it is not Berth's VM.
    let socket = gui.text("[data-testid=engine-down-socket]").await;
    assert!(socket.ends_with("/late.sock"), "{socket}");
    let hint = gui.text("[data-testid=engine-down-hint]").await;
    assert!(hint.contains("BERTH_DOCKER_HOST"), "{hint}");
    assert!(!hint.contains("Berth's VM"), "{hint}");

    // Lists and their buttons are out of reach while it is down.
    for view in [
        "view-containers",
        "view-images",
        "view-volumes",
        "view-networks",
    ] {
        gui.until_js(&format!("{view} inert"), INERT, vec![view.into()])
            .await;
    }
    // Commands say why, naming the socket.
    let err = try_invoke(&gui, "volumes_create", json!({ "name": "early-vol" }))
        .await
        .expect_err("no engine");
    assert_eq!(err["code"], "unavailable", "{err}");
    assert!(
        err["message"].as_str().unwrap_or("").contains("late.sock"),
        "{err}"
    );
    // Settings stays usable and consistent: the engine does not answer, and the VM's state is
    // explained as not the one in use.
    gui.nav("settings").await;
    gui.wait_text("[data-testid=settings-engine-state]", "not answering")
        .await;
    gui.wait_text("[data-testid=vm-note]", "Not in use").await;
    gui.wait_text("[data-testid=vm-note]", "late.sock").await;
    gui.until_js("settings live", LIVE, vec!["view-settings".into()])
        .await;

    gui.connect_late_socket();
    gui.wait_attr("[data-testid=engine-status]", "data-state", "ready")
        .await;
    gui.wait_hidden("[data-testid=engine-down-hint]").await;
    gui.wait_text("[data-testid=settings-engine-state]", "running")
        .await;
    gui.until_js("volumes live", LIVE, vec!["view-volumes".into()])
        .await;
    gui.nav("volumes").await;
    gui.cli(&["volume", "create", "late-vol"]);
    gui.find("[data-testid=volume-row][data-name=late-vol]")
        .await;
    gui.finish().await;
}
