//! The tray: its menu follows the engine's events (running containers grouped by compose
//! project, each with stop/restart/open-port), its entries act on the engine (checked with
//! `docker ps`), closing the window keeps the app running in the tray, and "start at login"
//! writes and removes the login entry. The menu is read through `tray_menu` (the model the tray
//! was last built from) and entries run through `tray_activate` (what a click runs).

use berth_test_support::free_port;
use serde_json::{json, Value};

use crate::app::invoke;
use crate::harness::{Gui, WAIT};

/// Every id in the tray menu, submenus included, depth first.
fn ids(entries: &Value) -> Vec<String> {
    let mut out = vec![];
    for e in entries.as_array().into_iter().flatten() {
        if let Some(id) = e["id"].as_str() {
            out.push(id.to_string());
        }
        out.extend(ids(&e["items"]));
    }
    out
}

/// Waits until the shown tray satisfies `cond`; returns it.
async fn tray_until(gui: &Gui, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let end = std::time::Instant::now() + WAIT;
    loop {
        let v = invoke(gui, "tray_menu", json!({})).await;
        if cond(&v) {
            return v;
        }
        assert!(
            std::time::Instant::now() < end,
            "timed out waiting for the tray to show {what}; it shows:\n{v:#}\n{}",
            gui.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
}

fn has(v: &Value, id: &str) -> bool {
    ids(&v["shown"]["items"]).iter().any(|i| i == id)
}

fn running_names(gui: &Gui) -> Vec<String> {
    let out = gui.cli(&["ps", "--format", "{{.Names}}"]);
    out.lines().map(str::to_string).collect()
}

/// `docker run -d --name <name> <extra> busybox` of a shell that exits on SIGTERM; its id.
pub(crate) fn run(gui: &Gui, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "busybox",
        "sh",
        "-c",
        "trap 'exit 0' TERM; while true; do sleep 1; done",
    ]);
    gui.cli(&args).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tray_menu_follows_events_and_its_actions_reach_the_engine() {
    let gui = Gui::start().await;
    let t = tray_until(&gui, "the running engine", |v| {
        v["shown"]["icon"] == "running" && has(v, "containers")
    })
    .await;
    assert_eq!(t["windowVisible"], true, "{t:#}");
    let status = &t["shown"]["items"][0];
    assert!(
        status["label"]
            .as_str()
            .unwrap_or("")
            .starts_with("Berth: running"),
        "{t:#}"
    );

    // Two services of a compose project and a loose container with a published port.
    let port = free_port();
    let project = ["--label", "com.docker.compose.project=trayproj"];
    let db = run(&gui, "trayproj-db-1", &project);
    let web = run(&gui, "trayproj-web-1", &project);
    let loose = run(&gui, "tray-loose", &["-p", &format!("127.0.0.1:{port}:80")]);
    let open = format!("open:http://localhost:{port}");
    let t = tray_until(&gui, "the three containers", |v| {
        has(v, "project:trayproj") && has(v, &format!("container:{loose}")) && has(v, &open)
    })
    .await;
    let items = t["shown"]["items"].as_array().expect("items").clone();
    let proj = items
        .iter()
        .find(|e| e["id"] == "project:trayproj")
        .expect("project submenu");
    assert_eq!(proj["label"], "trayproj (2)", "{proj:#}");
    assert_eq!(
        ids(&proj["items"])
            .into_iter()
            .filter(|i| i.starts_with("container:") || i.starts_with("project-"))
            .collect::<Vec<_>>(),
        [
            format!("container:{db}"),
            format!("container:{web}"),
            "project-stop:trayproj".into(),
            "project-restart:trayproj".into()
        ]
    );

    // Stop from the tray: the CLI sees it stopped, and the menu drops it by itself.
    invoke(
        &gui,
        "tray_activate",
        json!({ "id": format!("stop:{loose}") }),
    )
    .await;
    assert!(!running_names(&gui).contains(&"tray-loose".to_string()));
    tray_until(&gui, "the stopped container gone", |v| {
        !has(v, &format!("container:{loose}")) && has(v, "project:trayproj")
    })
    .await;

    // Restart the project: both containers start again (a new StartedAt), still running.
    let started = |id: &str| gui.cli(&["inspect", "-f", "{{.State.StartedAt}}", id]);
    let before = (started(&db), started(&web));
    invoke(
        &gui,
        "tray_activate",
        json!({ "id": "project-restart:trayproj" }),
    )
    .await;
    assert_ne!(started(&db), before.0);
    assert_ne!(started(&web), before.1);
    let mut names = running_names(&gui);
    names.sort();
    assert_eq!(names, ["trayproj-db-1", "trayproj-web-1"]);

    // Stop the project: nothing runs, and the tray says so.
    invoke(
        &gui,
        "tray_activate",
        json!({ "id": "project-stop:trayproj" }),
    )
    .await;
    assert!(running_names(&gui).is_empty());
    let t = tray_until(&gui, "no running containers", |v| {
        !has(v, "project:trayproj")
    })
    .await;
    let count = t["shown"]["items"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["id"] == "containers"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(count["label"], "No running containers", "{t:#}");
    // A container started with the CLI appears by itself.
    gui.cli(&["start", "tray-loose"]);
    tray_until(&gui, "the restarted container", |v| {
        has(v, &format!("container:{loose}"))
    })
    .await;

    // Closing the window hides it; the app keeps running and the tray opens it again.
    gui.js(
        "window.__TAURI__.window.getCurrentWindow().close(); return true;",
        vec![],
    )
    .await;
    tray_until(&gui, "the window hidden", |v| v["windowVisible"] == false).await;
    invoke(&gui, "tray_activate", json!({ "id": "dashboard" })).await;
    tray_until(&gui, "the window shown", |v| v["windowVisible"] == true).await;

    // Start at login: the setting writes the XDG autostart entry, and removes it.
    let entry = gui.home().join("config/autostart/dev.berth.app.desktop");
    gui.nav("settings").await;
    gui.wait_text("[data-testid=settings-login-item]", "dev.berth.app.desktop")
        .await;
    gui.click("[data-testid=settings-login]").await;
    gui.click("[data-testid=settings-save]").await;
    gui.wait_text("[data-testid=notice]", "Settings saved")
        .await;
    let text = std::fs::read_to_string(&entry).unwrap_or_else(|e| panic!("{entry:?}: {e}"));
    assert!(
        text.contains("berth-app\" --hidden"),
        "the entry starts the app hidden: {text}"
    );
    assert_eq!(
        gui.js(
            "return document.querySelector('[data-testid=settings-login]').checked;",
            vec![]
        )
        .await,
        true
    );
    gui.click("[data-testid=settings-login]").await;
    gui.click("[data-testid=settings-save]").await;
    gui.cli_until("the login entry removed", || !entry.exists());
    gui.finish().await;
}
