//! Volumes, Networks and Settings views: create and remove from the UI (checked with the CLI),
//! CLI changes pushed to the UI, and the socket the app resolved.

use crate::harness::Gui;

fn names(g: &Gui, args: &[&str]) -> Vec<String> {
    g.engine
        .docker_ok(args)
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_and_networks_are_created_and_removed_from_the_ui() {
    let gui = Gui::start().await;
    let vols = ["volume", "ls", "--format", "{{.Name}}"];
    let nets = ["network", "ls", "--format", "{{.Name}}"];

    gui.nav("volumes").await;
    gui.type_into("[data-testid=volume-name]", "gui-vol").await;
    gui.click("[data-testid=volume-create]").await;
    let vrow = "[data-testid=volume-row][data-name=gui-vol]";
    gui.find(vrow).await;
    assert!(names(&gui, &vols).contains(&"gui-vol".to_string()));
    // A volume made with the CLI appears by itself.
    gui.cli(&["volume", "create", "cli-vol"]);
    gui.find("[data-testid=volume-row][data-name=cli-vol]")
        .await;
    // Removing asks first: cancelled, nothing happens; confirmed, it goes.
    gui.click(&format!("{vrow} [data-testid=volume-remove]"))
        .await;
    gui.confirm("Remove volume gui-vol?", "cancel").await;
    assert!(names(&gui, &vols).contains(&"gui-vol".to_string()));
    gui.click(&format!("{vrow} [data-testid=volume-remove]"))
        .await;
    gui.confirm("Remove volume gui-vol?", "ok").await;
    gui.wait_gone(vrow).await;
    assert!(!names(&gui, &vols).contains(&"gui-vol".to_string()));

    gui.nav("networks").await;
    gui.type_into("[data-testid=network-name]", "gui-net").await;
    gui.click("[data-testid=network-create]").await;
    let nrow = "[data-testid=network-row][data-name=gui-net]";
    gui.find(nrow).await;
    assert!(names(&gui, &nets).contains(&"gui-net".to_string()));
    // Creating it again: Docker's conflict, shown.
    gui.type_into("[data-testid=network-name]", "gui-net").await;
    gui.click("[data-testid=network-create]").await;
    let (code, msg) = gui.error_shown().await;
    assert_eq!(code, "conflict", "{msg}");
    assert!(msg.contains("gui-net"), "{msg}");
    gui.click(&format!("{nrow} [data-testid=network-remove]"))
        .await;
    gui.confirm("Remove network gui-net?", "ok").await;
    gui.wait_gone(nrow).await;
    assert!(!names(&gui, &nets).contains(&"gui-net".to_string()));

    // Settings: the socket came from BERTH_DOCKER_HOST.
    gui.nav("settings").await;
    let sock = gui.engine.socket().display().to_string();
    gui.wait_text("[data-testid=settings-socket]", &sock).await;
    gui.wait_text("[data-testid=settings-socket-source]", "BERTH_DOCKER_HOST")
        .await;
    // No supervisor in this private BERTH_HOME: the VM reads as stopped.
    gui.wait_text("[data-testid=vm-state]", "stopped").await;
    gui.snapshot("settings").await;
    // Saving writes the VM resources to Berth's config.json and the socket to the app's file.
    let host = gui.engine.host();
    gui.type_into("[data-testid=settings-docker-host]", &host)
        .await;
    gui.type_into("[data-testid=settings-cpus]", "3").await;
    gui.type_into("[data-testid=settings-memory]", "2048").await;
    gui.click("[data-testid=settings-save]").await;
    gui.wait_text("[data-testid=notice]", "Settings saved")
        .await;
    let read = |p: std::path::PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{p:?}: {e}")))
            .expect("json")
    };
    let vm = read(gui.home().join("berth/config.json"));
    assert_eq!(
        (vm["cpus"].as_u64(), vm["memory_mib"].as_u64()),
        (Some(3), Some(2048)),
        "{vm}"
    );
    let app = read(gui.home().join("config/dev.berth.app/settings.json"));
    assert_eq!(app["dockerHost"], serde_json::Value::String(host), "{app}");
    // Out-of-range input is refused with the app's own `invalid` error.
    gui.type_into("[data-testid=settings-cpus]", "0").await;
    gui.click("[data-testid=settings-save]").await;
    let (code, msg) = gui.error_shown().await;
    assert_eq!(code, "invalid", "{msg}");
    assert_eq!(
        read(gui.home().join("berth/config.json"))["cpus"].as_u64(),
        Some(3)
    );
    gui.finish().await;
}
