//! Builds from the app (classic builder, as `DOCKER_BUILDKIT=0 docker build`): a folder with a
//! Dockerfile and a `.dockerignore` built from the Builds view is tagged for the CLI and runs
//! without the ignored file; its log streams live (a `RUN` that waits on a gate file the test
//! creates in the step's container shows its steps while it runs); a failing `RUN` says
//! Docker's message and tags nothing; Cancel stops a waiting build in the engine (its process
//! and container gone, nothing tagged); the history keeps every build with its log and "Build
//! again" works. The image detail's wasted space shows a file written then deleted by a later
//! layer with the size the test wrote.

use std::path::{Path, PathBuf};

use crate::harness::Gui;

/// Writes `files` (path, contents) under a new folder `name` of a temp dir.
fn folder(root: &Path, name: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let dir = root.join(name);
    for (path, body) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    dir
}

/// A `RUN` line that prints `marker` then waits until the test creates `/tmp/<marker>` in its
/// container ([`open_gate`]).
fn gated_run(marker: &str) -> String {
    format!("RUN echo {marker}-waiting && while [ ! -e /tmp/{marker} ]; do sleep 0.1; done && echo {marker}-opened\n")
}

/// The pid of the shell running the gated `RUN` with `marker`, when it runs.
fn gate_pid(marker: &str) -> Option<u32> {
    let needle = format!("echo {marker}-waiting");
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
        })
}

/// Waits (bounded) for the gated step's shell; returns its pid.
fn waiting_step(gui: &Gui, marker: &str) -> u32 {
    let mut pid = None;
    gui.cli_until("the gated RUN to be running", || {
        pid = gate_pid(marker);
        pid.is_some()
    });
    pid.unwrap()
}

/// Lets the gated step go on: the file it waits for, in its own root.
fn open_gate(pid: u32, marker: &str) {
    std::fs::write(format!("/proc/{pid}/root/tmp/{marker}"), b"go").expect("gate file");
}

/// `DOCKER_BUILDKIT=0 docker build ARGS` against the test engine.
fn classic_build(gui: &Gui, args: &[&str]) -> std::process::Output {
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    // docker_cmd sets DOCKER_BUILDKIT=0.
    let mut cmd = gui.engine.docker_cmd(&all);
    tokio::task::block_in_place(|| cmd.output().expect("docker build runs"))
}

fn tags(gui: &Gui) -> String {
    gui.cli(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"])
}

async fn fill(gui: &Gui, ctx: &Path, tags: &str) {
    gui.type_into("[data-testid=build-context]", ctx.to_str().unwrap())
        .await;
    gui.type_into("[data-testid=build-tags]", tags).await;
}

const LOG: &str = "[data-testid=build-log]";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_from_a_folder_streams_its_steps_and_honours_dockerignore() {
    let gui = Gui::start().await;
    gui.cli(&["pull", "busybox"]);
    let tmp = tempfile::tempdir().unwrap();
    let marker = format!("gate-{}", std::process::id());
    let dockerfile = format!(
        "FROM busybox\nARG GREETING\nCOPY . /ctx/\nRUN echo \"greeting=$GREETING\"\n{}",
        gated_run(&marker)
    );
    let ctx = folder(
        tmp.path(),
        "app",
        &[
            ("build/Dockerfile", dockerfile.as_bytes()),
            (".dockerignore", b"secret.txt\n*.log\n"),
            ("secret.txt", b"do not send"),
            ("debug.log", b"nor this"),
            ("app.txt", b"sent"),
        ],
    );

    // From the Images view's Build… to the Builds view.
    gui.nav("images").await;
    gui.click("[data-testid=images-build-open]").await;
    gui.wait_attr("body", "data-view", "builds").await;
    fill(&gui, &ctx, "gui-built:1, gui-built:extra").await;
    gui.type_into("[data-testid=build-dockerfile]", "build/Dockerfile")
        .await;
    gui.type_into("[data-testid=build-args]", "GREETING=hello-arg")
        .await;
    gui.click("[data-testid=build-submit]").await;

    // While the gated step runs, the log already shows the steps before it.
    let pid = waiting_step(&gui, &marker);
    gui.wait_text(LOG, &format!("{marker}-waiting")).await;
    let live = gui.text(LOG).await;
    for line in [
        "Sending build context to Docker daemon",
        "Step 1/5 : FROM busybox",
        "Step 3/5 : COPY . /ctx/",
        "greeting=hello-arg",
        "Step 5/5 : RUN",
    ] {
        assert!(live.contains(line), "{line:?} not in\n{live}");
    }
    assert_eq!(
        gui.attr("[data-testid=build-status]", "data-state")
            .await
            .as_deref(),
        Some("building")
    );
    assert_eq!(
        gui.attr("[data-testid=build-steps]", "data-step")
            .await
            .as_deref(),
        Some("5")
    );
    gui.snapshot("build-running").await;
    open_gate(pid, &marker);
    gui.wait_attr("[data-testid=build-status]", "data-state", "succeeded")
        .await;
    let done = gui.text(LOG).await;
    assert!(done.contains(&format!("{marker}-opened")), "{done}");
    assert!(done.contains("Successfully tagged gui-built:1"), "{done}");

    // Both tags for the CLI; the ignored files never reached the image.
    let listed = tags(&gui);
    assert!(
        listed.contains("gui-built:1") && listed.contains("gui-built:extra"),
        "{listed}"
    );
    let inside = gui.cli(&["run", "--rm", "gui-built:1", "ls", "-a", "/ctx"]);
    assert!(inside.contains("app.txt"), "{inside}");
    assert!(
        !inside.contains("secret.txt") && !inside.contains("debug.log"),
        "{inside}"
    );

    // The history has it, with the image id the CLI sees.
    let id = gui.cli(&["image", "inspect", "-f", "{{.Id}}", "gui-built:1"]);
    let row = "[data-testid=build-row][data-outcome=succeeded]";
    assert_eq!(
        gui.attr(row, "data-image").await.as_deref(),
        Some(id.trim())
    );
    let file = gui.home().join("data/dev.berth.app/builds.json");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).expect("builds.json")).unwrap();
    assert_eq!(saved[0]["imageId"].as_str(), Some(id.trim()));
    assert!(saved[0]["log"]
        .as_str()
        .unwrap()
        .contains("greeting=hello-arg"));
    gui.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_and_cancelled_builds_leave_nothing_and_build_again_works() {
    let gui = Gui::start().await;
    gui.cli(&["pull", "busybox"]);
    let tmp = tempfile::tempdir().unwrap();
    gui.nav("builds").await;

    // A failing RUN: Docker's message, no tag, no container left.
    let failing = folder(
        tmp.path(),
        "failing",
        &[(
            "Dockerfile",
            b"FROM busybox\nRUN echo about-to-fail && exit 3\n",
        )],
    );
    fill(&gui, &failing, "gui-fail:1").await;
    gui.click("[data-testid=build-submit]").await;
    gui.wait_attr("[data-testid=build-status]", "data-state", "failed")
        .await;
    let (code, message) = gui.error_shown().await;
    let cli = classic_build(&gui, &["-t", "gui-fail:cli", failing.to_str().unwrap()]);
    let cli_err = String::from_utf8_lossy(&cli.stderr);
    assert_eq!(code, "internal");
    assert!(message.contains("returned a non-zero code: 3"), "{message}");
    assert!(
        cli_err.contains(&message),
        "app said {message:?}, the CLI:\n{cli_err}"
    );
    assert!(gui.text(LOG).await.contains("about-to-fail"));
    assert!(!tags(&gui).contains("gui-fail"), "{}", tags(&gui));
    assert_eq!(gui.cli(&["ps", "-aq"]).trim(), "");

    // Cancel while a step waits: the step's process and container go, nothing is tagged.
    let marker = format!("cancel-{}", std::process::id());
    let waiting = folder(
        tmp.path(),
        "waiting",
        &[(
            "Dockerfile",
            format!("FROM busybox\n{}", gated_run(&marker)).as_bytes(),
        )],
    );
    fill(&gui, &waiting, "gui-cancel:1").await;
    gui.click("[data-testid=build-submit]").await;
    let pid = waiting_step(&gui, &marker);
    gui.wait_text(LOG, &format!("{marker}-waiting")).await;
    gui.click("[data-testid=build-cancel]").await;
    gui.wait_attr("[data-testid=build-status]", "data-state", "cancelled")
        .await;
    gui.cli_until("the cancelled step's process to end", || {
        !Path::new(&format!("/proc/{pid}")).exists()
    });
    gui.cli_until("the cancelled step's container to go", || {
        gui.engine.docker_ok(&["ps", "-aq"]).trim().is_empty()
    });
    assert!(!tags(&gui).contains("gui-cancel"), "{}", tags(&gui));

    // The history: the cancelled build first, the failed one with its saved log.
    gui.find("[data-testid=build-row][data-outcome=cancelled]")
        .await;
    let failed = "[data-testid=build-row][data-outcome=failed]";
    gui.click(&format!("{failed} [data-testid=build-log-open]"))
        .await;
    gui.wait_attr(LOG, "data-source", "history").await;
    gui.wait_text(LOG, "about-to-fail").await;
    gui.wait_text(LOG, "returned a non-zero code: 3").await;

    // Build again (the cancelled one): this time the test opens its gate.
    gui.click("[data-testid=build-row][data-outcome=cancelled] [data-testid=build-again]")
        .await;
    let pid = waiting_step(&gui, &marker);
    open_gate(pid, &marker);
    gui.wait_attr("[data-testid=build-status]", "data-state", "succeeded")
        .await;
    assert!(tags(&gui).contains("gui-cancel:1"), "{}", tags(&gui));
    gui.find("[data-testid=build-row][data-outcome=succeeded]")
        .await;
    let rows = gui
        .js(
            "return document.querySelectorAll('[data-testid=build-row]').length;",
            vec![],
        )
        .await;
    assert_eq!(rows, 3);
    gui.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasted_space_shows_a_file_a_later_layer_deletes() {
    let gui = Gui::start().await;
    gui.cli(&["pull", "busybox"]);
    let tmp = tempfile::tempdir().unwrap();
    // Bytes that do not compress away, of a size no other file has.
    let size = 1_234_567usize;
    let mut x: u32 = 12345;
    let blob: Vec<u8> = (0..size)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    let ctx = folder(
        tmp.path(),
        "waste",
        &[
            (
                "Dockerfile",
                b"FROM busybox\nCOPY blob.bin /data/blob.bin\nRUN rm /data/blob.bin\n",
            ),
            ("blob.bin", &blob),
        ],
    );
    let built = classic_build(&gui, &["-t", "gui-waste:1", ctx.to_str().unwrap()]);
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let layers = gui.cli(&[
        "image",
        "inspect",
        "-f",
        "{{json .RootFS.Layers}}",
        "gui-waste:1",
    ]);
    let layers: Vec<String> = serde_json::from_str(layers.trim()).unwrap();
    let copy_layer = &layers[layers.len() - 2];

    gui.nav("images").await;
    gui.click("[data-testid=image-row][data-ref=\"gui-waste:1\"] [data-testid=image-details]")
        .await;
    gui.wait_attr("[data-testid=image-detail-body]", "data-state", "loaded")
        .await;
    gui.click("[data-testid=image-wasted-compute]").await;
    gui.wait_attr("[data-testid=image-wasted]", "data-state", "done")
        .await;
    let file = "[data-testid=image-wasted-file][data-path=\"/data/blob.bin\"]";
    assert_eq!(gui.attr(file, "data-bytes").await, Some(size.to_string()));
    assert_eq!(gui.attr(file, "data-how").await.as_deref(), Some("deleted"));
    // Its layer (the COPY step's) wastes exactly that; the total is at least that.
    let cell = format!(
        "[data-testid=image-layer][data-digest=\"{copy_layer}\"] [data-testid=image-layer-wasted]"
    );
    assert_eq!(gui.attr(&cell, "data-bytes").await, Some(size.to_string()));
    let total: usize = gui
        .attr("[data-testid=image-wasted-summary]", "data-total")
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert!(total >= size, "{total}");
    gui.snapshot("image-wasted").await;
    gui.finish().await;
}
