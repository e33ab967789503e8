//! Disk and clean-up: the view shows what `system df` counts per kind; a prune says what it
//! will free, frees that (checked with `docker system df` and the engine's `/system/df`), and
//! says what it freed; without a Berth VM the compact control says why it is unavailable.

use serde_json::Value;

use crate::harness::Gui;

fn row(kind: &str) -> String {
    format!("[data-testid=disk-row][data-kind={kind}]")
}

/// Bytes of stopped containers' writable layers and of unused volumes, per the engine.
fn reclaimable(gui: &Gui) -> (u64, u64) {
    let (status, body) = tokio::task::block_in_place(|| gui.engine.api("GET", "/system/df", None));
    assert_eq!(status, 200, "{body}");
    let df: Value = serde_json::from_str(&body).expect("df json");
    let containers = df["Containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["State"] != "running")
        .map(|c| c["SizeRw"].as_u64().unwrap_or(0))
        .sum();
    let volumes = df["Volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["UsageData"]["RefCount"] == 0)
        .map(|v| v["UsageData"]["Size"].as_u64().unwrap_or(0))
        .sum();
    (containers, volumes)
}

/// `docker system df`'s line for `kind` (`Containers`, `Local Volumes`): total count and size.
fn cli_df(gui: &Gui, kind: &str) -> String {
    let out = gui.cli(&[
        "system",
        "df",
        "--format",
        "{{.Type}}={{.TotalCount}} {{.Size}}",
    ]);
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{kind}=")))
        .unwrap_or_else(|| panic!("no {kind} in {out}"))
        .to_string()
}

async fn num(gui: &Gui, css: &str, attr: &str) -> u64 {
    let v = gui.attr(css, attr).await.unwrap_or_default();
    v.parse()
        .unwrap_or_else(|_| panic!("{css} [{attr}] = {v:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prunes_free_what_they_said_and_compact_says_why_not() {
    let gui = Gui::start().await;
    // Two stopped containers that wrote 3 MiB each, and an unused volume holding 2 MiB.
    for name in ["gui-fat-1", "gui-fat-2"] {
        gui.cli(&[
            "run",
            "--name",
            name,
            "busybox",
            "dd",
            "if=/dev/zero",
            "of=/fat",
            "bs=1M",
            "count=3",
        ]);
    }
    gui.cli(&["volume", "create", "gui-fat-vol"]);
    gui.cli(&[
        "run",
        "--rm",
        "-v",
        "gui-fat-vol:/v",
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/v/x",
        "bs=1M",
        "count=2",
    ]);
    let (ctr_bytes, vol_bytes) = reclaimable(&gui);
    assert!(ctr_bytes >= 6 << 20, "{ctr_bytes}");
    assert!(vol_bytes >= 2 << 20, "{vol_bytes}");

    gui.nav("disk").await;
    gui.wait_attr("[data-testid=view-disk]", "data-state", "loaded")
        .await;
    gui.wait_attr(
        &row("containers"),
        "data-reclaimable",
        &ctr_bytes.to_string(),
    )
    .await;
    gui.wait_attr(&row("volumes"), "data-reclaimable", &vol_bytes.to_string())
        .await;
    gui.snapshot("disk").await;

    // Cancelled: nothing goes.
    gui.click(&format!("{} [data-testid=disk-prune]", row("containers")))
        .await;
    gui.confirm("Prune containers?", "cancel").await;
    assert!(cli_df(&gui, "Containers").starts_with("2 "));

    // Containers: the dialog says how much, the prune frees exactly that.
    gui.click(&format!("{} [data-testid=disk-prune]", row("containers")))
        .await;
    gui.confirm("Prune containers?", "ok").await;
    let result = format!("{} [data-testid=disk-result]", row("containers"));
    gui.find(&format!("{result}[data-freed]")).await;
    assert_eq!(num(&gui, &result, "data-expected").await, ctr_bytes);
    assert_eq!(num(&gui, &result, "data-freed").await, ctr_bytes);
    assert_eq!(num(&gui, &result, "data-deleted").await, 2);
    assert_eq!(cli_df(&gui, "Containers"), "0 0B");
    gui.wait_attr(&row("containers"), "data-bytes", "0").await;

    // Volumes (named ones too, as `docker volume prune -a`).
    gui.click(&format!("{} [data-testid=disk-prune]", row("volumes")))
        .await;
    gui.confirm("Prune volumes?", "ok").await;
    let result = format!("{} [data-testid=disk-result]", row("volumes"));
    gui.find(&format!("{result}[data-freed]")).await;
    assert_eq!(num(&gui, &result, "data-expected").await, vol_bytes);
    assert_eq!(num(&gui, &result, "data-freed").await, vol_bytes);
    assert_eq!(cli_df(&gui, "Local Volumes"), "0 0B");
    assert!(gui.cli(&["volume", "ls", "-q"]).trim().is_empty());

    // No Berth VM behind this engine: compaction is unavailable, and says why.
    let compact = gui
        .js(
            "return document.querySelector('[data-testid=disk-compact]').disabled;",
            vec![],
        )
        .await;
    assert_eq!(compact, Value::Bool(true));
    let why = gui.text("[data-testid=disk-compact-reason]").await;
    assert!(why.contains("No Berth VM"), "{why}");
    assert!(
        why.contains(&gui.engine.socket().display().to_string()),
        "{why}"
    );
    gui.finish().await;
}
