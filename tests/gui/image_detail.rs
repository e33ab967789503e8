//! Image detail: the layers `docker history` lists (size and the command that made each),
//! which layers a derived image shares, tags and the containers made from it; tag (a refused
//! name says why and tags nothing; a good one shows in `docker image ls`), push to the loopback
//! registry with per-layer progress (the registry lists the tag), remove (asked first; gone for
//! the CLI).

use berth_test_support::{http_get, Registry};

use crate::harness::Gui;

fn image_row(r: &str) -> String {
    format!("[data-testid=image-row][data-ref=\"{r}\"]")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_detail_shows_shared_layers_tags_pushes_and_removes() {
    let gui = Gui::start().await;
    gui.cli(&["pull", "busybox"]);
    // A container of busybox, and an image made on it (so sharing busybox's layers).
    gui.cli(&[
        "run",
        "--name",
        "gui-maker",
        "busybox",
        "sh",
        "-c",
        "echo made > /made.txt",
    ]);
    gui.cli(&["commit", "gui-maker", "gui-derived:1"]);

    gui.nav("images").await;
    gui.click(&format!(
        "{} [data-testid=image-details]",
        image_row("busybox:latest")
    ))
    .await;
    gui.wait_attr("[data-testid=image-detail-body]", "data-state", "loaded")
        .await;
    // One row per history step, newest first, with the command that made it.
    let steps = gui.cli(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "busybox",
    ]);
    let steps: Vec<&str> = steps.lines().collect();
    let rows = "[data-testid=image-layer]";
    let count = |css: &str| format!("return document.querySelectorAll({css:?}).length;");
    assert_eq!(gui.js(&count(rows), vec![]).await, steps.len(), "{steps:?}");
    // The whole command (the cell may show it cut with an ellipsis).
    let newest = gui
        .js(
            "return document.querySelector(arguments[0]).textContent;",
            vec![format!("{rows}[data-index=\"0\"] [data-testid=image-layer-command]").into()],
        )
        .await;
    assert_eq!(newest.as_str().map(str::trim), Some(steps[0].trim()));
    // As many layer rows as the RootFS has layers, every one shared with the derived image.
    let layers: usize = gui
        .cli(&[
            "image",
            "inspect",
            "-f",
            "{{len .RootFS.Layers}}",
            "busybox",
        ])
        .trim()
        .parse()
        .expect("layer count");
    let made = format!("{rows}:not([data-digest=\"\"])");
    assert_eq!(gui.js(&count(&made), vec![]).await, layers);
    let shared = format!("{rows}[data-shared=\"true\"]");
    assert_eq!(gui.js(&count(&shared), vec![]).await, layers);
    let with = gui
        .text(&format!("{shared} [data-testid=image-layer-shared]"))
        .await;
    assert!(with.contains("gui-derived:1"), "{with}");
    gui.find("[data-testid=image-tag][data-tag=\"busybox:latest\"]")
        .await;
    gui.find("[data-testid=image-container][data-name=\"gui-maker\"]")
        .await;
    gui.snapshot("image-detail").await;

    // Tag: a name the reference grammar refuses is said in the dialog; nothing is tagged.
    let listed = |g: &Gui| g.cli(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]);
    gui.click("[data-testid=image-tag-open]").await;
    gui.type_into("[data-testid=tag-target]", "Team/App:v1")
        .await;
    gui.click("[data-testid=tag-submit]").await;
    gui.wait_visible("[data-testid=tag-error]").await;
    assert_eq!(
        gui.attr("[data-testid=tag-error]", "data-code")
            .await
            .as_deref(),
        Some("invalid")
    );
    assert!(gui
        .text("[data-testid=tag-error]")
        .await
        .contains("lowercase"));
    assert!(!listed(&gui).to_lowercase().contains("team/app"));
    // A registry name: tagged for the CLI, and the pane lists it (pushed by the tag event).
    let reg = &Registry::shared().addr;
    let target = format!("{reg}/gui-images/busybox:pushed");
    gui.type_into("[data-testid=tag-target]", &target).await;
    gui.click("[data-testid=tag-submit]").await;
    gui.cli_until("the new tag in docker image ls", || {
        listed(&gui).contains(&target)
    });
    gui.find(&format!("[data-testid=image-tag][data-tag=\"{target}\"]"))
        .await;

    // Push it: progress per layer, then the registry has the tag.
    gui.select("[data-testid=push-ref]", &target).await;
    gui.click("[data-testid=push-submit]").await;
    gui.wait_attr("[data-testid=push-status]", "data-state", "done")
        .await;
    let layer_rows = "[data-testid=push-progress] [data-testid=progress-row]:not([data-id=\"\"])";
    let per_layer = gui
        .js(
            &format!(
                "return [...document.querySelectorAll({layer_rows:?})].map(r => r.dataset.status);"
            ),
            vec![],
        )
        .await;
    let per_layer: Vec<String> = serde_json::from_value(per_layer).unwrap_or_default();
    assert!(per_layer.len() >= layers, "{per_layer:?}");
    let tags = http_get(reg, "/v2/gui-images/busybox/tags/list").expect("registry tag list");
    assert!(tags.contains("\"pushed\""), "{tags}");

    // Remove the derived image from its pane: asked first (cancel keeps it), then gone.
    gui.click("[data-testid=image-detail-close]").await;
    gui.click(&format!(
        "{} [data-testid=image-details]",
        image_row("gui-derived:1")
    ))
    .await;
    gui.wait_text("[data-testid=image-detail-title]", "gui-derived:1")
        .await;
    gui.click("[data-testid=image-detail-remove]").await;
    gui.confirm("Remove image gui-derived:1?", "cancel").await;
    assert!(listed(&gui).contains("gui-derived:1"));
    gui.click("[data-testid=image-detail-remove]").await;
    gui.confirm("Remove image gui-derived:1?", "ok").await;
    gui.cli_until("gui-derived:1 to be gone", || {
        !listed(&gui).contains("gui-derived:1")
    });
    gui.wait_hidden("[data-testid=image-detail]").await;
    gui.wait_gone(&image_row("gui-derived:1")).await;
    gui.finish().await;
}
