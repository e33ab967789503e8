//! Images view: pull `busybox` (a docker.io name, served by the loopback mirror) with progress,
//! run a container from it with a published port and env, and see Docker's refusal to remove
//! an image in use; a Run whose port is taken leaves no container behind.

use berth_test_support::{free_port, http_get};

use crate::harness::{container_row, daemon_message, Gui};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_then_run_with_a_published_port() {
    let gui = Gui::start().await;
    let listed = |g: &Gui| {
        g.engine
            .docker_ok(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"])
    };
    assert!(!listed(&gui).contains("busybox:latest"), "fresh engine");
    gui.nav("images").await;
    gui.type_into("[data-testid=pull-reference]", "busybox")
        .await;
    gui.click("[data-testid=pull-submit]").await;
    gui.wait_attr("[data-testid=pull-status]", "data-state", "done")
        .await;
    // Progress lines as the engine streamed them, ending with its summary line.
    let progress = gui.text("[data-testid=pull-progress]").await;
    assert!(progress.contains("busybox:latest"), "{progress}");
    let image_row = "[data-testid=image-row][data-ref=\"busybox:latest\"]";
    gui.find(image_row).await;
    assert!(listed(&gui).contains("busybox:latest"));

    // Run it: name, a loopback-published port, env and a command.
    let port = free_port();
    gui.click(&format!("{image_row} [data-testid=image-run]"))
        .await;
    gui.type_into("[data-testid=run-name]", "gui-run").await;
    gui.type_into("[data-testid=run-ports]", &format!("127.0.0.1:{port}:80"))
        .await;
    gui.type_into("[data-testid=run-cmd]", "httpd -f -p 80 -h /www")
        .await;
    gui.type_into("[data-testid=run-env]", "GREETING=from-the-gui")
        .await;
    gui.snapshot("images-run-form").await;
    gui.click("[data-testid=run-submit]").await;
    gui.cli_until("gui-run to run", || {
        gui.engine
            .docker(&["inspect", "-f", "{{.State.Status}}", "gui-run"])
            .stdout
            .starts_with(b"running")
    });
    let env = gui.cli(&["inspect", "-f", "{{json .Config.Env}}", "gui-run"]);
    assert!(env.contains("GREETING=from-the-gui"), "{env}");
    assert_eq!(
        gui.cli(&["port", "gui-run", "80"]).trim(),
        format!("127.0.0.1:{port}")
    );
    gui.cli_until("the published port to serve", || {
        http_get(&format!("127.0.0.1:{port}"), "/").is_ok_and(|r| r.contains("berth-httpd-ok"))
    });
    // The Containers view lists it with its port.
    gui.nav("containers").await;
    gui.wait_text(
        &format!("{} [data-testid=container-ports]", container_row("gui-run")),
        &format!("127.0.0.1:{port}->80/tcp"),
    )
    .await;

    // The image is in use: the engine refuses to remove it, the UI says so in its words.
    let cli_err = gui.cli_err(&["rmi", "busybox:latest"]);
    gui.nav("images").await;
    gui.click(&format!("{image_row} [data-testid=image-remove]"))
        .await;
    gui.confirm("Remove image busybox:latest?", "ok").await;
    let (code, msg) = gui.error_shown().await;
    assert_eq!(code, "conflict", "{msg}");
    assert!(
        cli_err.contains(&msg),
        "UI message {msg:?} not the CLI's {cli_err:?}"
    );
    gui.finish().await;
}

/// The bug: a Run whose start fails (the port is taken) left the created container behind, so
/// the retry failed with "name already in use", and the error read as code `internal`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_port_is_taken_leaves_nothing_and_the_retry_works() {
    let gui = Gui::start().await;
    gui.cli(&["pull", "busybox"]);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("hold a port");
    let port = taken.local_addr().expect("held port").port();
    let publish = format!("127.0.0.1:{port}:80");
    // What the CLI says for the same run.
    let cli_err = gui.cli_err(&[
        "run",
        "-d",
        "--name",
        "cli-taken",
        "-p",
        &publish,
        "busybox",
    ]);
    let cli_msg = daemon_message(&cli_err);
    gui.cli(&["rm", "-f", "cli-taken"]);

    gui.nav("images").await;
    let image_row = "[data-testid=image-row][data-ref=\"busybox:latest\"]";
    gui.click(&format!("{image_row} [data-testid=image-run]"))
        .await;
    gui.type_into("[data-testid=run-name]", "gui-taken").await;
    gui.type_into("[data-testid=run-ports]", &publish).await;
    gui.type_into("[data-testid=run-cmd]", "httpd -f -p 80 -h /www")
        .await;
    gui.click("[data-testid=run-submit]").await;
    let (code, msg) = gui.error_shown().await;
    assert_eq!(code, "conflict", "{msg}");
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    // The same words as the CLI's, past the endpoint's name and id.
    let cause = |m: &str| m.rsplit_once("): ").map(|(_, c)| c.to_string());
    assert_eq!(cause(&msg), cause(&cli_msg), "UI {msg:?}, CLI {cli_msg:?}");
    assert!(cause(&msg).is_some_and(|c| c.contains("already")), "{msg}");
    let left = gui.cli(&["ps", "-a", "-q", "--filter", "name=gui-taken"]);
    assert!(left.trim().is_empty(), "a failed run left {left:?}");

    // Port free again: the same form, the same name, runs.
    drop(taken);
    gui.click("[data-testid=error-dismiss]").await;
    gui.click("[data-testid=run-submit]").await;
    gui.cli_until("gui-taken to run", || {
        gui.engine
            .docker(&["inspect", "-f", "{{.State.Status}}", "gui-taken"])
            .stdout
            .starts_with(b"running")
    });
    assert_eq!(
        gui.cli(&["port", "gui-taken", "80"]).trim(),
        format!("127.0.0.1:{port}")
    );
    gui.finish().await;
}
