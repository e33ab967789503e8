//! The terminal's shell picker and debug shell, against images the tests build offline: one
//! with a real bash (the host's, with the libraries `ldd` names) and one with nothing but a
//! static binary (`FROM scratch`: busybox at `/busybox`, serving a file only it has). Bash is
//! offered where it is and runs (`$BASH_VERSION`); a shell the container lacks ends the session
//! with the runtime's error; attach reaches a `-it` container's own shell and leaves it running;
//! choices are remembered per image. The debug shell's sidecar (image from Settings, pulled with
//! progress) sees the target's processes, files and network, follows a page reload, and is gone
//! (CLI) once the terminal closes.

use std::path::Path;

use crate::harness::{container_row, Gui};
use crate::terminal::{at_prompt, has_line, ENTER, KEYS, TERM};

/// The label the app puts on its debug sidecars (`src-tauri/src/commands/debug_shell.rs`).
const DEBUG_LABEL: &str = "dev.berth.debug-shell.target";

/// Keeps a container running until stopped.
const IDLE: &[&str] = &[
    "sh",
    "-c",
    "trap 'exit 0' TERM; while true; do sleep 1; done",
];

/// A build context whose image is busybox plus the host's bash and the libraries it loads.
fn bash_context(dir: &Path) {
    let bash = std::fs::canonicalize("/bin/bash").expect("the host's bash");
    let ldd = std::process::Command::new("ldd")
        .arg(&bash)
        .output()
        .expect("ldd");
    let libs: Vec<String> = String::from_utf8_lossy(&ldd.stdout)
        .lines()
        .filter_map(|l| {
            let path = l.split("=>").last()?.split_whitespace().next()?;
            path.starts_with('/').then(|| path.to_string())
        })
        .collect();
    assert!(
        !libs.is_empty(),
        "ldd named no library for {}",
        bash.display()
    );
    let root = dir.join("rootfs");
    for (from, to) in libs
        .iter()
        .map(|l| (Path::new(l).to_path_buf(), l.clone()))
        .chain([(bash.clone(), "/bin/bash".to_string())])
    {
        let dest = root.join(to.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&from, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    }
    std::fs::write(dir.join("Dockerfile"), "FROM busybox\nCOPY rootfs/ /\n").unwrap();
}

/// A build context whose image holds one static binary and a file only it has.
fn static_only_context(dir: &Path) {
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox AS tools\n\
         RUN mkdir -p /out/www && echo only-in-target > /out/www/target-only.txt\n\
         FROM scratch\n\
         COPY --from=tools /bin/busybox /busybox\n\
         COPY --from=tools /out/ /\n\
         ENTRYPOINT [\"/busybox\", \"httpd\", \"-f\", \"-p\", \"127.0.0.1:8099\", \"-h\", \"/www\"]\n",
    )
    .unwrap();
}

/// Builds the image of the context `fill` writes, tagged `tag`.
fn build(gui: &Gui, tag: &str, fill: fn(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path());
    gui.cli(&["build", "-q", "-t", tag, dir.path().to_str().unwrap()]);
}

/// Whether `<option value=…>` of the shell picker is offered (neither hidden nor disabled).
async fn offered(gui: &Gui, value: &str) -> bool {
    let v = gui
        .js(
            "const o = document.querySelector(`[data-testid=exec-shell] option[value=\"${arguments[0]}\"]`); \
             return !o.hidden && !o.disabled;",
            vec![value.into()],
        )
        .await;
    v.as_bool().expect("a boolean")
}

/// Waits until the shell picker shows `value`.
async fn picked(gui: &Gui, value: &str) {
    gui.until_js(
        &format!("the picker on {value}"),
        "return document.querySelector('[data-testid=exec-shell]').value === arguments[0];",
        vec![value.into()],
    )
    .await;
}

/// Opens the terminal of container `name` and waits for a prompt.
async fn open_terminal(gui: &Gui, name: &str) {
    let row = container_row(name);
    gui.wait_attr(&row, "data-state", "running").await;
    gui.click(&format!("{row} [data-testid=container-exec]"))
        .await;
    gui.wait_attr(TERM, "data-state", "attached").await;
}

/// Types `line` and waits until the terminal holds `want` as a whole line.
async fn run_line(gui: &Gui, line: &str, want: &str) -> Vec<String> {
    gui.until_terminal("a prompt", at_prompt).await;
    gui.send_keys(KEYS, &format!("{line}{ENTER}")).await;
    gui.until_terminal(want, |l| has_line(l, want)).await
}

/// The ids of the debug sidecars (`docker ps -a`, by label).
fn sidecars(gui: &Gui) -> Vec<String> {
    let filter = format!("label={DEBUG_LABEL}");
    let out = gui.cli(&["ps", "-aq", "--no-trunc", "--filter", &filter]);
    out.split_whitespace().map(str::to_string).collect()
}

fn host_bash_version() -> String {
    let out = std::process::Command::new("/bin/bash")
        .args(["-c", "echo $BASH_VERSION"])
        .output()
        .expect("bash");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_picker_runs_bash_where_it_is_attaches_and_says_when_a_shell_is_missing() {
    let gui = Gui::start().await;
    build(&gui, "berth-test/bash", bash_context);
    let mut run = vec!["run", "-d", "--name", "gui-bash", "berth-test/bash"];
    run.extend(IDLE);
    gui.cli(&run);
    gui.cli(&["run", "-dit", "--name", "gui-it", "busybox", "sh"]);

    // A busybox container started with -it: no bash, attach offered, sh by default.
    open_terminal(&gui, "gui-it").await;
    picked(&gui, "sh").await;
    assert!(!offered(&gui, "bash").await, "bash offered without bash");
    assert!(offered(&gui, "attach").await, "attach not offered on -it");

    // A shell it lacks: the runtime's error, in the terminal and the banner, as the CLI says.
    gui.select("[data-testid=exec-shell]", "custom").await;
    gui.type_into("[data-testid=exec-command]", "/bin/bash")
        .await;
    gui.click("[data-testid=exec-connect]").await;
    gui.wait_attr(TERM, "data-error", "not_found").await;
    let (code, message) = gui.error_shown().await;
    assert_eq!(code, "not_found");
    assert!(
        message.starts_with("OCI runtime exec failed") && message.contains("/bin/bash"),
        "{message}"
    );
    let cli = gui.cli_err(&["exec", "gui-it", "/bin/bash"]);
    assert!(cli.contains("/bin/bash"), "{cli}");
    gui.until_terminal("the error in the terminal", |l| {
        l.iter().any(|x| x.contains("OCI runtime exec failed"))
    })
    .await;
    gui.click("[data-testid=error-dismiss]").await;

    // Attach: the container's own shell; closing leaves it running (no ^C ^D sent to it).
    gui.select("[data-testid=exec-shell]", "attach").await;
    gui.wait_attr(TERM, "data-state", "attached").await;
    gui.send_keys(KEYS, &format!("echo attached-$((6*7)){ENTER}"))
        .await;
    gui.until_terminal("attached-42", |l| has_line(l, "attached-42"))
        .await;
    gui.click("[data-testid=detail-close]").await;
    // Opened again: attach was remembered for the image, and the same shell still answers.
    open_terminal(&gui, "gui-it").await;
    picked(&gui, "attach").await;
    gui.send_keys(KEYS, &format!("echo again-$((6*7)){ENTER}"))
        .await;
    gui.until_terminal("again-42", |l| has_line(l, "again-42"))
        .await;
    let running = gui.cli(&["inspect", "-f", "{{.State.Running}}", "gui-it"]);
    assert_eq!(running.trim(), "true");
    gui.click("[data-testid=detail-close]").await;

    // An image with bash: offered, and it runs.
    open_terminal(&gui, "gui-bash").await;
    assert!(offered(&gui, "bash").await, "bash not offered");
    assert!(!offered(&gui, "attach").await, "attach offered without -it");
    gui.select("[data-testid=exec-shell]", "bash").await;
    gui.wait_attr(TERM, "data-state", "attached").await;
    let want = format!("v={}", host_bash_version());
    run_line(&gui, "echo \"v=$BASH_VERSION\"", &want).await;
    gui.cli_until("bash in docker top", || {
        gui.cli(&["top", "gui-bash"]).contains("/bin/bash")
    });
    gui.click("[data-testid=detail-close]").await;
    // Remembered for that image.
    open_terminal(&gui, "gui-bash").await;
    picked(&gui, "bash").await;
    run_line(&gui, "echo \"v=$BASH_VERSION\"", &want).await;
    gui.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_shell_sees_a_shell_less_container_and_leaves_no_sidecar() {
    let gui = Gui::start().await;
    build(&gui, "berth-test/static-only", static_only_context);
    gui.cli(&[
        "run",
        "-d",
        "--name",
        "gui-static",
        "berth-test/static-only",
    ]);
    let target = gui.cli(&["inspect", "-f", "{{.Id}}", "gui-static"]);
    let target = target.trim();

    // The debug image from Settings, not pulled yet.
    let debug_image = "berth-test/httpd:latest";
    assert_eq!(gui.cli(&["image", "ls", "-q", debug_image]).trim(), "");
    gui.nav("settings").await;
    gui.type_into("[data-testid=settings-debug-image]", debug_image)
        .await;
    gui.click("[data-testid=settings-save]").await;
    gui.until_js(
        "the debug image saved",
        "return document.querySelector('[data-testid=settings-debug-image]').value === arguments[0];",
        vec![debug_image.into()],
    )
    .await;
    gui.nav("containers").await;

    // No sh in it: the debug shell is the default; the image is pulled with progress first.
    open_terminal(&gui, "gui-static").await;
    picked(&gui, "debug").await;
    assert!(offered(&gui, "debug").await);
    let lines = gui
        .until_terminal("a prompt after the pull", at_prompt)
        .await;
    assert!(
        lines.iter().any(|l| l.contains(debug_image)),
        "no pull progress: {lines:?}"
    );
    assert_ne!(gui.cli(&["image", "ls", "-q", debug_image]).trim(), "");
    let ids = sidecars(&gui);
    assert_eq!(ids.len(), 1, "{ids:?}");
    let host = gui.cli(&[
        "inspect",
        "-f",
        "{{.HostConfig.PidMode}} {{.HostConfig.NetworkMode}} {{.Config.Image}}",
        &ids[0],
    ]);
    let mut host = host.split_whitespace();
    assert_eq!(host.next(), Some(format!("container:{target}").as_str()));
    assert_eq!(host.next(), Some(format!("container:{target}").as_str()));
    assert_eq!(host.next(), Some(debug_image));

    // It starts in the target's root and sees its PID 1, its files and its sockets.
    run_line(&gui, "pwd", "/proc/1/root").await;
    gui.until_terminal("a prompt", at_prompt).await;
    gui.send_keys(KEYS, &format!("ps{ENTER}")).await;
    gui.until_terminal("the target's PID 1 in ps", |l| {
        l.iter()
            .any(|x| x.trim().starts_with("1 ") && x.contains("/busybox httpd"))
    })
    .await;
    run_line(
        &gui,
        "cat /proc/1/root/www/target-only.txt",
        "only-in-target",
    )
    .await;
    // 127.0.0.1:8099 listening, in the target's own network namespace.
    run_line(
        &gui,
        "grep -c '0100007F:1FA3 00000000:0000 0A' /proc/1/net/tcp",
        "1",
    )
    .await;
    // It shares the target's network: its loopback reaches the target's server, and the
    // sidecar's own /proc/net shows the same listening socket.
    run_line(
        &gui,
        "wget -qO- 127.0.0.1:8099/target-only.txt",
        "only-in-target",
    )
    .await;
    run_line(
        &gui,
        "grep -c '0100007F:1FA3 00000000:0000 0A' /proc/self/net/tcp",
        "1",
    )
    .await;

    // Closing the terminal removes the sidecar; the target is all that is left.
    gui.click("[data-testid=detail-close]").await;
    gui.cli_until("no sidecar after closing", || sidecars(&gui).is_empty());
    let all = gui.cli(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(all.trim(), "gui-static");

    // A page reload: the terminal opens again with a new sidecar, the old one removed.
    open_terminal(&gui, "gui-static").await;
    picked(&gui, "debug").await;
    gui.until_terminal("a prompt", at_prompt).await;
    let before = sidecars(&gui);
    assert_eq!(before.len(), 1, "{before:?}");
    let reload = gui.c().refresh();
    tokio::time::timeout(crate::harness::WAIT, reload)
        .await
        .expect("reload answered")
        .expect("reload");
    gui.wait_attr("body", "data-ready", "true").await;
    gui.wait_attr(TERM, "data-state", "attached").await;
    gui.until_terminal("a prompt after the reload", at_prompt)
        .await;
    gui.cli_until("one new sidecar after the reload", || {
        let now = sidecars(&gui);
        now.len() == 1 && now != before
    });
    run_line(
        &gui,
        "cat /proc/1/root/www/target-only.txt",
        "only-in-target",
    )
    .await;
    gui.click("[data-testid=detail-close]").await;
    gui.cli_until("no sidecar left", || sidecars(&gui).is_empty());
    gui.finish().await;
}
