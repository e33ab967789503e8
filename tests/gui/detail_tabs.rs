//! Container detail, Logs and Files tabs. Logs: stdout and stderr told apart, search with
//! highlighting (plain and regex, only-matching lines), follow, timestamps as `docker logs -t`
//! prints them, tail as `docker logs --tail`, and the download holds what `docker logs` prints.
//! Files: browse the container's folders through the archive API, view a text file, download a
//! file and a folder, and a file dropped on the list is read back with `docker exec cat`.

use std::collections::BTreeSet;

use berth_test_support::{free_port, http_get};

use crate::harness::{container_row, Gui};

/// The detail of container `name`, on tab `tab`.
async fn open_tab(gui: &Gui, name: &str, tab: &str) {
    let row = container_row(name);
    gui.wait_attr(&row, "data-state", "running").await;
    gui.click(&format!("{row} [data-testid=container-details]"))
        .await;
    gui.click(&format!("[data-testid=detail-tab-{tab}]")).await;
}

/// The texts of the elements matching `css`.
async fn texts(gui: &Gui, css: &str) -> Vec<String> {
    let v = gui
        .js(
            "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent);",
            vec![css.into()],
        )
        .await;
    serde_json::from_value(v).expect("texts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_tab_searches_follows_and_saves_what_docker_logs_prints() {
    let gui = Gui::start().await;
    gui.cli(&[
        "run",
        "-d",
        "--name",
        "gui-logs",
        "busybox",
        "sh",
        "-c",
        "seq 1 150 | sed 's/^/n /'; echo alpha one; echo beta two >&2; echo alpha three; \
         while [ ! -f /tmp/go ]; do sleep 0.1; done; echo after follow; exec sleep 3600",
    ]);
    open_tab(&gui, "gui-logs", "logs").await;
    let out = "[data-testid=logs-output]";
    gui.wait_text(out, "alpha three").await;
    gui.wait_text(out, "beta two").await;

    // stderr lines are marked and coloured apart from stdout.
    let stderr = texts(&gui, "[data-testid=logs-output] [data-stream=stderr]").await;
    assert!(
        stderr.len() == 1 && stderr[0].ends_with("beta two\n"),
        "{stderr:?}"
    );
    let colours = gui
        .js(
            "const c = s => getComputedStyle(document.querySelector(s)).color; \
             return c('[data-testid=logs-output] [data-stream=stderr]') !== c('[data-testid=logs-output] [data-stream=stdout]');",
            vec![],
        )
        .await;
    assert_eq!(
        colours,
        serde_json::json!(true),
        "stderr has its own colour"
    );

    // Follow: a line written after the tab opened arrives.
    gui.cli(&["exec", "gui-logs", "touch", "/tmp/go"]);
    gui.wait_text(out, "after follow").await;

    // Search: plain text, case-insensitive, each match highlighted.
    gui.type_into("[data-testid=logs-search]", "ALPHA").await;
    gui.wait_attr("[data-testid=logs-matches]", "data-count", "2")
        .await;
    assert_eq!(
        texts(&gui, "[data-testid=logs-output] mark").await,
        ["alpha", "alpha"]
    );
    // A regular expression, then only the matching lines.
    gui.click("[data-testid=logs-regex]").await;
    gui.type_into("[data-testid=logs-search]", "^(alpha|beta) t")
        .await;
    gui.wait_attr("[data-testid=logs-matches]", "data-count", "2")
        .await;
    let marks: BTreeSet<String> = texts(&gui, "[data-testid=logs-output] mark")
        .await
        .into_iter()
        .collect();
    assert_eq!(
        marks,
        BTreeSet::from(["alpha t".to_string(), "beta t".to_string()])
    );
    gui.click("[data-testid=logs-only-matches]").await;
    gui.until_js(
        "only the 2 matching lines shown",
        "return [...document.querySelectorAll('[data-testid=logs-output] .ln')].filter(l => l.getClientRects().length > 0).length === 2;",
        vec![],
    )
    .await;
    // A broken expression says so and keeps the view.
    gui.type_into("[data-testid=logs-search]", "(alpha").await;
    gui.wait_visible("[data-testid=logs-search-error]").await;
    gui.wait_text("[data-testid=logs-search-error]", "Not a valid expression")
        .await;
    // Erased with Backspace, as a user would.
    gui.send_keys("[data-testid=logs-search]", &"\u{E003}".repeat(6))
        .await;
    gui.wait_attr("[data-testid=logs-matches]", "data-count", "154")
        .await;
    gui.click("[data-testid=logs-only-matches]").await;
    gui.wait_hidden("[data-testid=logs-search-error]").await;

    // Timestamps: shown on demand, the engine's own (as `docker logs -t` prints them).
    let stamped = gui.cli(&["logs", "-t", "gui-logs"]);
    let want = stamped
        .lines()
        .find(|l| l.ends_with(" alpha one"))
        .and_then(|l| l.split_once(' '))
        .map(|(ts, _)| ts.to_string())
        .expect("docker logs -t has the line");
    let first_ts = "const l = [...document.querySelectorAll('[data-testid=logs-output] .ln')].find(l => l.textContent.endsWith('alpha one\\n')); \
         const t = l && l.querySelector('.ts'); return t ? [t.textContent.trim(), t.getClientRects().length > 0] : null;";
    assert_eq!(
        gui.js(first_ts, vec![]).await,
        serde_json::json!([want, false])
    );
    gui.click("[data-testid=logs-timestamps]").await;
    assert_eq!(
        gui.js(first_ts, vec![]).await,
        serde_json::json!([want, true])
    );

    // Tail: the last 100 lines, as `docker logs --tail 100`; then all of them again.
    gui.select("[data-testid=logs-tail]", "100").await;
    let tail = gui.cli(&["logs", "--tail", "100", "gui-logs"]);
    assert!(!tail.contains("n 1\n"), "{tail}");
    gui.wait_attr("[data-testid=logs-matches]", "data-count", "100")
        .await;
    gui.wait_text(out, "after follow").await;
    let shown = texts(&gui, out).await.concat();
    assert!(
        !shown.contains("n 1\n"),
        "the first line is not in the tail"
    );
    gui.select("[data-testid=logs-tail]", "all").await;
    gui.wait_attr("[data-testid=logs-matches]", "data-count", "154")
        .await;

    // Download: the file in Downloads holds every line `docker logs` prints (stdout + stderr).
    gui.click("[data-testid=logs-timestamps]").await;
    gui.click("[data-testid=logs-download]").await;
    gui.wait_text("[data-testid=logs-saved]", "gui-logs.log")
        .await;
    let saved = gui.text("[data-testid=logs-saved]").await;
    assert_eq!(
        std::path::Path::new(&saved),
        gui.downloads().join("gui-logs.log")
    );
    let file = std::fs::read_to_string(&saved).expect("saved logs");
    let out = tokio::task::block_in_place(|| gui.engine.docker(&["logs", "gui-logs"]));
    let mut cli: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
        .map(str::to_string)
        .collect();
    let mut got: Vec<String> = file.lines().map(str::to_string).collect();
    cli.sort();
    got.sort();
    assert_eq!(got, cli);
    gui.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_tab_browses_views_downloads_and_uploads_a_dropped_file() {
    let gui = Gui::start().await;
    gui.cli(&[
        "run",
        "-d",
        "--name",
        "gui-files",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /srv/app && echo 'hello files' > /srv/app/readme.txt && \
         ln -s app /srv/current && exec sleep 3600",
    ]);
    gui.cli_until("the container's files", || {
        gui.engine
            .docker(&["exec", "gui-files", "test", "-L", "/srv/current"])
            .status
            .success()
    });
    open_tab(&gui, "gui-files", "files").await;
    let list = "[data-testid=files-list]";
    let entry = |name: &str| format!("[data-testid=files-row][data-name=\"{name}\"]");
    gui.wait_attr(list, "data-path", "/").await;
    gui.wait_attr(list, "data-state", "ready").await;
    assert_eq!(
        gui.attr(&entry("etc"), "data-kind").await.as_deref(),
        Some("dir")
    );

    // Down into /srv, then through the symbolic link to /srv/app.
    gui.click(&format!("{} [data-testid=files-open]", entry("srv")))
        .await;
    gui.wait_attr(list, "data-path", "/srv").await;
    gui.wait_text(&entry("current"), "→ app").await;
    gui.click(&format!("{} [data-testid=files-open]", entry("current")))
        .await;
    gui.wait_attr(list, "data-path", "/srv/app").await;
    gui.wait_attr(list, "data-state", "ready").await;

    // View a text file.
    gui.click(&format!("{} [data-testid=files-open]", entry("readme.txt")))
        .await;
    gui.wait_attr("[data-testid=files-viewer-text]", "data-state", "ready")
        .await;
    assert_eq!(
        gui.text("[data-testid=files-viewer-path]").await,
        "/srv/app/readme.txt"
    );
    gui.wait_text("[data-testid=files-viewer-text]", "hello files")
        .await;

    // Download the file: its bytes land in Downloads.
    let status = "[data-testid=files-status]";
    let saved = gui
        .download_entry(&entry("readme.txt"), status, "readme.txt")
        .await;
    assert_eq!(std::fs::read_to_string(&saved).unwrap(), "hello files\n");

    // Drop a file on the list: it is uploaded into the open folder.
    let content = "dropped ü file\nsecond line\n";
    gui.js(
        "const dt = new DataTransfer(); \
         dt.items.add(new File([arguments[0]], arguments[1], { type: 'text/plain' })); \
         const ev = new Event('drop', { bubbles: true, cancelable: true }); \
         Object.defineProperty(ev, 'dataTransfer', { value: dt }); \
         document.querySelector('[data-testid=files-drop]').dispatchEvent(ev); return true;",
        vec![content.into(), "note one.txt".into()],
    )
    .await;
    gui.wait_attr(&entry("note one.txt"), "data-kind", "file")
        .await;
    assert_eq!(
        gui.cli(&["exec", "gui-files", "cat", "/srv/app/note one.txt"]),
        content
    );

    // Download a folder: a tar of it, as `docker cp` makes.
    gui.click("[data-testid=files-up]").await;
    gui.wait_attr(list, "data-path", "/srv").await;
    let tar_path = gui.download_entry(&entry("app"), status, "app.tar").await;
    let mut ar = tar::Archive::new(std::fs::File::open(&tar_path).unwrap());
    let mut names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path().unwrap().display().to_string();
            p.trim_end_matches('/').to_string()
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["app", "app/note one.txt", "app/readme.txt"],
        "{names:?}"
    );
    gui.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_tab_charts_the_engine_stream_with_network_traffic() {
    let gui = Gui::start().await;
    let port = free_port();
    gui.cli(&[
        "run",
        "-d",
        "--name",
        "gui-stats",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/zero of=/www/big bs=1024 count=2048 && exec httpd -f -p 80 -h /www",
    ]);
    open_tab(&gui, "gui-stats", "stats").await;
    // Samples arrive from the stream and each chart draws them.
    for chart in ["cpu", "mem", "net", "blk"] {
        gui.until_js(
            &format!("3 samples in the {chart} chart"),
            "return Number(document.querySelector(arguments[0]).dataset.samples) >= 3;",
            vec![format!("[data-testid=chart-{chart}]").into()],
        )
        .await;
    }
    gui.wait_text("[data-testid=stats-mem]", "/").await;
    let label = gui.attr("[data-testid=chart-mem]", "aria-label").await;
    assert!(
        label
            .as_deref()
            .is_some_and(|l| l.starts_with("Memory: now used ")),
        "{label:?}"
    );
    // 2 MiB fetched from the container: its sent-bytes total (what the network chart's rate
    // is drawn from) grows by at least that much.
    let before: u64 = gui
        .attr("[data-testid=stats-totals]", "data-net-tx")
        .await
        .and_then(|v| v.parse().ok())
        .expect("a sent-bytes total");
    gui.cli_until("the big file to be served", || {
        http_get(&format!("127.0.0.1:{port}"), "/big").is_ok_and(|r| r.len() > 2 * 1024 * 1024)
    });
    gui.until_js(
        "the sent total to grow by 2 MiB",
        "return Number(document.querySelector('[data-testid=stats-totals]').dataset.netTx) >= arguments[0];",
        vec![(before + 2 * 1024 * 1024).into()],
    )
    .await;
    gui.finish().await;
}
