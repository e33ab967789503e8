//! Idle cost: with nothing changing, the app and its web process use (almost) no CPU, in the
//! states the issue measured 16–33 % of a core in (a scrolled Settings pane, an open container
//! detail) and with a terminal focused (xterm.js's blinking cursor repaints).

use std::time::Duration;

use crate::harness::{container_row, Gui};

/// How long each state is measured.
const WINDOW: Duration = Duration::from_secs(8);

/// The most CPU (per cent of one core) an idle app process may use.
const MAX_IDLE: f64 = 10.0;

/// Per cent of one core each app process used over [`WINDOW`].
async fn measure(gui: &Gui) -> Vec<(String, f64)> {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let before = gui.app_cpu_ticks();
    tokio::time::sleep(WINDOW).await; // the measurement window itself, not a wait for a state
    let after = gui.app_cpu_ticks();
    after
        .iter()
        .map(|(name, t)| {
            let b = before
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, b)| *b);
            let pct = (t - b) as f64 / hz / WINDOW.as_secs_f64() * 100.0;
            (name.clone(), pct)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_app_uses_almost_no_cpu() {
    let gui = Gui::start().await;
    gui.cli(&[
        "run",
        "-d",
        "--name",
        "gui-idle",
        "busybox",
        "sh",
        "-c",
        "seq 1 300; trap 'exit 0' TERM; while true; do sleep 1; done",
    ]);
    let row = container_row("gui-idle");
    gui.wait_attr(&row, "data-state", "running").await;

    let blur = "window.scrollTo(0, document.body.scrollHeight); if (document.activeElement) document.activeElement.blur(); return true;";
    gui.nav("settings").await;
    gui.js(blur, vec![]).await;
    let settings = measure(&gui).await;

    gui.nav("containers").await;
    gui.click(&format!("{row} [data-testid=container-details]"))
        .await;
    gui.click("[data-testid=detail-tab-logs]").await;
    gui.wait_text("[data-testid=logs-output]", "300").await;
    gui.js(blur, vec![]).await;
    let logs = measure(&gui).await;

    gui.click("[data-testid=detail-tab-exec]").await;
    gui.wait_attr("[data-testid=exec-terminal]", "data-state", "attached")
        .await;
    gui.click("[data-testid=exec-terminal] .xterm-helper-textarea")
        .await;
    let terminal = measure(&gui).await;

    eprintln!("idle CPU, % of a core: settings={settings:?} logs={logs:?} terminal={terminal:?}");
    // Measured at 0.75-2.5 % each (2 cores, Xvfb, software rendering); the issue saw 16-33 %.
    for (state, m) in [
        ("settings", &settings),
        ("logs", &logs),
        ("terminal", &terminal),
    ] {
        assert_eq!(m.len(), 2, "berth-app and its web process measured: {m:?}");
        for (proc_name, pct) in m {
            assert!(
                *pct < MAX_IDLE,
                "{proc_name} used {pct:.1} % of a core idle in {state}"
            );
        }
    }
    gui.finish().await;
}
