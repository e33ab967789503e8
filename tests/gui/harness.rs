//! One GUI session per test: a private Xvfb display, `tauri-driver` on free loopback ports
//! (in its own process group, under `dbus-run-session`), a WebDriver session that launches
//! `berth-app`, and a fresh engine. Every wait is bounded; teardown stops exactly the
//! processes started here, by PID.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_test_support::{free_port, wait_until, Engine};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};

use crate::screen;

/// The longest any single wait in these tests may take.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

pub(crate) struct Gui {
    pub(crate) engine: Engine,
    pub(crate) client: Option<Client>,
    xvfb: Option<Child>,
    /// The Xvfb display number (`:N`).
    display: u32,
    driver: Option<Child>,
    dir: tempfile::TempDir,
}

/// `target/<profile>/<name>` next to the running test binary, or `$<env>`.
pub(crate) fn built_bin(name: &str, env: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current test binary");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile dir")
        .join(name);
    assert!(
        bin.exists(),
        "{} not found: build it first (cargo build -p berth-app) or set {env}",
        bin.display()
    );
    bin
}

/// `tauri-driver`: `$TAURI_DRIVER`, else `$BERTH_TOOLS/bin` (default `~/.cache/berth/tools`,
/// where `scripts/install-gui-deps.sh` puts it), else `PATH`.
fn tauri_driver() -> PathBuf {
    if let Some(p) = std::env::var_os("TAURI_DRIVER") {
        return PathBuf::from(p);
    }
    let tools = std::env::var_os("BERTH_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            Path::new(&home).join(".cache/berth/tools")
        });
    let p = tools.join("bin/tauri-driver");
    if p.exists() {
        p
    } else {
        PathBuf::from("tauri-driver")
    }
}

/// Starts Xvfb on the first display number that is free (no lock file, no socket, and our
/// server comes up on it); returns the child and the number.
fn start_xvfb(log: &Path) -> (Child, u32) {
    let base = 150 + std::process::id() % 400;
    for n in (0..100).map(|i| base + i * 7 % 400) {
        if Path::new(&format!("/tmp/.X{n}-lock")).exists()
            || Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
        {
            continue;
        }
        let out = File::create(log).expect("xvfb log");
        let mut child = Command::new("Xvfb")
            .arg(format!(":{n}"))
            .args([
                "-screen",
                "0",
                "1280x900x24",
                "-nolisten",
                "tcp",
                "-noreset",
            ])
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log fd"))
            .stderr(out)
            .spawn()
            .expect("spawn Xvfb (apt-get install xvfb)");
        let sock = format!("/tmp/.X11-unix/X{n}");
        let mut exited = false;
        let up = wait_until(Duration::from_secs(10), || {
            exited = child.try_wait().ok().flatten().is_some();
            exited || Path::new(&sock).exists()
        });
        if up && !exited {
            return (child, n);
        }
        // Lost a race for this number (or Xvfb failed): try the next one.
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("no free X display found");
}

/// The PIDs of every descendant of `pid` (children first scanned from /proc).
fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
                continue;
            };
            // pid (comm) state ppid …: comm may hold spaces, so split after the last ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|x| x.parse::<u32>().ok());
            if let Some(pp) = ppid {
                parent_of.push((p, pp));
            }
        }
    }
    let mut out = vec![];
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for &(c, pp) in &parent_of {
            if pp == p && !out.contains(&c) {
                out.push(c);
                frontier.push(c);
            }
        }
    }
    out
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: signalling a process this test started (directly or through its driver).
    unsafe { libc::kill(pid as libc::pid_t, sig) };
}

/// How to start a session.
#[derive(Default)]
pub(crate) struct GuiOptions {
    /// Point the app at `<session dir>/late.sock`, which does not exist until
    /// [`Gui::connect_late_socket`]: the app starts with the engine down.
    pub(crate) late_socket: bool,
    /// The app to launch instead of `target/<profile>/berth-app` (an installed package's).
    pub(crate) application: Option<PathBuf>,
}

impl Gui {
    /// Starts the engine, the display, the driver and the app; returns once the UI is loaded
    /// and shows the engine as ready.
    pub(crate) async fn start() -> Gui {
        Self::start_with(GuiOptions::default()).await
    }

    /// The socket path a `late_socket` session's app uses.
    fn late_socket(&self) -> PathBuf {
        self.dir.path().join("late.sock")
    }

    /// Makes the late socket lead to the engine (a symlink to its socket).
    pub(crate) fn connect_late_socket(&self) {
        std::os::unix::fs::symlink(self.engine.socket(), self.late_socket())
            .expect("link the late socket");
    }

    /// As [`Gui::start`]; with `late_socket` it returns once the UI is loaded, whatever the
    /// engine state.
    pub(crate) async fn start_with(opts: GuiOptions) -> Gui {
        let engine = tokio::task::block_in_place(Engine::start);
        let dir = tempfile::Builder::new()
            .prefix("berth-gui-")
            .tempdir()
            .expect("gui temp dir");
        let mut gui = Gui {
            engine,
            client: None,
            xvfb: None,
            display: 0,
            driver: None,
            dir,
        };
        let (xvfb, display) = start_xvfb(&gui.dir.path().join("xvfb.log"));
        gui.xvfb = Some(xvfb);
        gui.display = display;

        let port = free_port();
        let native_port = loop {
            let p = free_port();
            if p != port {
                break p;
            }
        };
        let home = gui.dir.path().join("home");
        for d in ["config", "data", "cache", "berth", "downloads", "docker"] {
            std::fs::create_dir_all(home.join(d)).expect("app dirs");
        }
        // Where the app saves downloads (the desktop's own setting, read through XDG).
        let user_dirs = format!(
            "XDG_DOWNLOAD_DIR=\"{}\"\n",
            home.join("downloads").display()
        );
        std::fs::write(home.join("config/user-dirs.dirs"), user_dirs).expect("user-dirs.dirs");
        let opener = gui.write_opener();
        let docker_host = if opts.late_socket {
            format!("unix://{}", gui.late_socket().display())
        } else {
            gui.engine.host()
        };
        let log = File::create(gui.driver_log()).expect("driver log");
        let driver = Command::new("dbus-run-session")
            .arg("--")
            .arg(tauri_driver())
            .args(["--port", &port.to_string()])
            .args(["--native-port", &native_port.to_string()])
            .args(["--native-host", "127.0.0.1"])
            .env("DISPLAY", format!(":{display}"))
            .env("BERTH_DOCKER_HOST", docker_host)
            .env("BERTH_HOME", home.join("berth"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CACHE_HOME", home.join("cache"))
            .env("BERTH_APP_LOG", "debug")
            .env("BERTH_OPENER", opener)
            // The docker CLI's contexts the app reads and switches: the test's own.
            .env("DOCKER_CONFIG", home.join("docker"))
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_HOST")
            // WebKit's GPU paths have nothing to use under Xvfb.
            .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            // Same process group as the test: if the test runner kills a hung test's group,
            // the driver, WebKitWebDriver and the app go with it (Drop does it otherwise).
            .spawn()
            .expect("spawn dbus-run-session tauri-driver (scripts/install-gui-deps.sh)");
        gui.driver = Some(driver);
        // Both must listen: tauri-driver forwards the session request to WebKitWebDriver.
        let addr = format!("127.0.0.1:{port}");
        for a in [addr.clone(), format!("127.0.0.1:{native_port}")] {
            let listening = wait_until(WAIT, || std::net::TcpStream::connect(&a).is_ok());
            assert!(listening, "nothing listens on {a}\n{}", gui.logs());
        }

        let application = opts
            .application
            .unwrap_or_else(|| built_bin("berth-app", "BERTH_APP_BIN"));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "tauri:options".into(),
            serde_json::json!({ "application": application }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let session = tokio::time::timeout(
            WAIT,
            ClientBuilder::new(connector)
                .capabilities(caps)
                .connect(&format!("http://{addr}")),
        )
        .await;
        let client = match session {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => panic!("WebDriver session failed: {e}\n{}", gui.logs()),
            Err(_) => panic!(
                "WebDriver session not created within {WAIT:?}\n{}",
                gui.logs()
            ),
        };
        gui.client = Some(client);
        gui.wait_attr("body", "data-ready", "true").await;
        if !opts.late_socket {
            gui.wait_attr("[data-testid=engine-status]", "data-state", "ready")
                .await;
        }
        gui
    }

    pub(crate) fn c(&self) -> &Client {
        self.client.as_ref().expect("webdriver session")
    }

    /// The private home of the app under test: `berth/` (BERTH_HOME), `config/`, `data/`, `cache/`.
    pub(crate) fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// The app's Downloads folder (saved logs and files land here).
    pub(crate) fn downloads(&self) -> PathBuf {
        self.home().join("downloads")
    }

    /// The opener the app hands links and folders to (`BERTH_OPENER`): a script that writes
    /// each target on a line of `opened.txt`, so nothing opens on the test machine and the
    /// test sees what the app asked for ([`Gui::opened`]).
    fn write_opener(&self) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let script = self.dir.path().join("opener.sh");
        let log = self.dir.path().join("opened.txt");
        let body = format!("#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\n", log.display());
        std::fs::write(&script, body).expect("opener script");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .expect("opener mode");
        script
    }

    /// What the app opened so far (links, folders), in order.
    pub(crate) fn opened(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("opened.txt"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn driver_log(&self) -> PathBuf {
        self.dir.path().join("tauri-driver.log")
    }

    /// The driver/app log and the app's own log, for failure messages.
    pub(crate) fn logs(&self) -> String {
        let tail = |p: &Path| {
            let t = std::fs::read_to_string(p).unwrap_or_default();
            let lines: Vec<&str> = t.lines().collect();
            lines[lines.len().saturating_sub(60)..].join("\n")
        };
        let app_log = self
            .dir
            .path()
            .join("home/data/dev.berth.app/logs/berth-app.log");
        format!(
            "--- tauri-driver + app stderr ---\n{}\n--- berth-app.log ---\n{}",
            tail(&self.driver_log()),
            tail(&app_log)
        )
    }

    /// Runs the docker CLI against the test engine (blocking, off the async workers).
    pub(crate) fn cli(&self, args: &[&str]) -> String {
        tokio::task::block_in_place(|| self.engine.docker_ok(args))
    }

    /// Runs the docker CLI expecting failure; returns its stderr.
    pub(crate) fn cli_err(&self, args: &[&str]) -> String {
        tokio::task::block_in_place(|| self.engine.docker_err(args))
    }

    /// `docker compose --project-name <project> <args>` in `dir` with `env` (compose v2, the
    /// CLI plugin), bounded to 3 minutes; panics with its output when it fails.
    pub(crate) fn compose(&self, dir: &Path, project: &str, env: &[(&str, String)], args: &[&str]) {
        let mut full = vec!["compose", "--project-name", project, "--ansi", "never"];
        full.extend_from_slice(args);
        let mut c = self.engine.docker_with_plugins(&["compose"], &full);
        c.current_dir(dir).envs(env.iter().map(|(k, v)| (k, v)));
        let out = tokio::task::block_in_place(|| {
            berth_test_support::run_bounded(c, Duration::from_secs(180))
        });
        assert!(
            out.status.success(),
            "docker compose {args:?} failed:\n{}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.engine.log_tail()
        );
    }

    /// Polls `cond` (CLI side) up to [`WAIT`].
    pub(crate) fn cli_until(&self, what: &str, mut cond: impl FnMut() -> bool) {
        let ok = tokio::task::block_in_place(|| wait_until(WAIT, &mut cond));
        assert!(
            ok,
            "timed out after {WAIT:?} waiting for {what}\n{}",
            self.logs()
        );
    }

    /// Waits for an element matching `css` and returns it.
    pub(crate) async fn find(&self, css: &str) -> Element {
        let find = self
            .c()
            .wait()
            .at_most(WAIT)
            .every(Duration::from_millis(100))
            .for_element(Locator::Css(css));
        // The wait only checks its deadline between requests: bound a hung request too.
        match tokio::time::timeout(WAIT + Duration::from_secs(5), find).await {
            Ok(Ok(e)) => e,
            Ok(Err(e)) => panic!("no element {css} within {WAIT:?}: {e}\n{}", self.logs()),
            Err(_) => panic!(
                "finding {css}: no answer from the WebDriver\n{}",
                self.logs()
            ),
        }
    }

    /// Awaits one WebDriver call, bounded by [`WAIT`]: a hung driver fails the test instead of
    /// hanging it.
    async fn bounded<T, E: std::fmt::Display>(
        &self,
        what: &str,
        call: impl std::future::Future<Output = Result<T, E>>,
    ) -> T {
        match tokio::time::timeout(WAIT, call).await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => panic!("{what}: {e}\n{}", self.logs()),
            Err(_) => panic!("{what}: no answer within {WAIT:?}\n{}", self.logs()),
        }
    }

    /// Clicks the element matching `css` (waiting for it). A list re-rendered between finding
    /// and clicking (stale element) is looked up again, within [`WAIT`].
    pub(crate) async fn click(&self, css: &str) {
        let end = Instant::now() + WAIT;
        loop {
            let el = self.find(css).await;
            let clicked = tokio::time::timeout(WAIT, el.click())
                .await
                .unwrap_or_else(|_| panic!("click {css}: no answer within {WAIT:?}"));
            match clicked {
                Ok(()) => return,
                Err(e) if Instant::now() < end => {
                    note(&format!("retrying click {css}: {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("click {css}: {e}\n{}", self.logs()),
            }
        }
    }

    /// Types `text` into the input matching `css` (cleared first).
    pub(crate) async fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        self.bounded(&format!("clear {css}"), el.clear()).await;
        self.bounded(&format!("type into {css}"), el.send_keys(text))
            .await;
    }

    /// Sends keys to the element matching `css` as typed (nothing cleared first).
    pub(crate) async fn send_keys(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        self.bounded(&format!("type into {css}"), el.send_keys(text))
            .await;
    }

    /// Picks the option with `value` in the `<select>` matching `css` (as a user's click on it).
    pub(crate) async fn select(&self, css: &str, value: &str) {
        let el = self.find(css).await;
        self.bounded(
            &format!("select {value} in {css}"),
            el.select_by_value(value),
        )
        .await;
    }

    /// Runs a JS snippet once (bounded) and returns its value.
    pub(crate) async fn js(&self, script: &str, args: Vec<serde_json::Value>) -> serde_json::Value {
        self.bounded(
            &format!("script {script:.60}"),
            self.c().execute(script, args),
        )
        .await
    }

    /// The attribute `attr` of the element matching `css` (`None` when absent).
    pub(crate) async fn attr(&self, css: &str, attr: &str) -> Option<String> {
        self.read(css, Some(attr)).await
    }

    /// Reads attribute `attr` (or the text, with `None`) of the element matching `css`, waiting
    /// for it. A view re-rendered between finding and reading (the element went stale: an
    /// event-driven reload replaced it) is looked up again, within [`WAIT`].
    async fn read(&self, css: &str, attr: Option<&str>) -> Option<String> {
        let what = match attr {
            Some(a) => format!("{css} [{a}]"),
            None => format!("text of {css}"),
        };
        let end = Instant::now() + WAIT;
        loop {
            let el = self.find(css).await;
            let read = async {
                match attr {
                    Some(a) => el.attr(a).await,
                    None => el.text().await.map(Some),
                }
            };
            match tokio::time::timeout(WAIT, read).await {
                Ok(Ok(v)) => return v,
                Ok(Err(e)) if Instant::now() < end => {
                    note(&format!("reading {what} again: {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(Err(e)) => panic!("{what}: {e}\n{}", self.logs()),
                Err(_) => panic!("{what}: no answer within {WAIT:?}\n{}", self.logs()),
            }
        }
    }

    /// The lines held by the exec terminal's buffer (xterm.js `buffer.active`: what the session
    /// wrote, scrollback included, whether or not the rows are painted yet); empty when there
    /// is no terminal.
    pub(crate) async fn terminal_lines(&self) -> Vec<String> {
        let v = self.js(TERMINAL_LINES, vec![]).await;
        serde_json::from_value(v).unwrap_or_default()
    }

    /// Polls the terminal's buffer until `cond` holds for its lines (bounded by [`WAIT`]);
    /// returns them.
    pub(crate) async fn until_terminal(
        &self,
        what: &str,
        cond: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        let end = Instant::now() + WAIT;
        let mut lines = vec![];
        while Instant::now() < end {
            lines = self.terminal_lines().await;
            if cond(&lines) {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "timed out after {WAIT:?} waiting for {what} in the terminal; it holds:\n{}\n{}",
            lines.join("\n").trim_end(),
            self.logs()
        );
    }

    /// Polls a JS expression until it returns `true` (bounded by [`WAIT`]).
    pub(crate) async fn until_js(&self, what: &str, script: &str, args: Vec<serde_json::Value>) {
        let end = Instant::now() + WAIT;
        let mut last = serde_json::Value::Null;
        while Instant::now() < end {
            let left = end.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.c().execute(script, args.clone())).await {
                Ok(Ok(serde_json::Value::Bool(true))) => return,
                Ok(Ok(v)) => last = v,
                Ok(Err(e)) => last = serde_json::Value::String(e.to_string()),
                Err(_) => last = "no answer from the WebDriver".into(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "timed out after {WAIT:?} waiting for {what} (last: {last})\n{}",
            self.logs()
        );
    }

    /// Waits until the element matching `css` has attribute `attr` = `value`.
    pub(crate) async fn wait_attr(&self, css: &str, attr: &str, value: &str) {
        self.until_js(
            &format!("{css} [{attr}={value}]"),
            "const e = document.querySelector(arguments[0]); return !!e && e.getAttribute(arguments[1]) === arguments[2];",
            vec![css.into(), attr.into(), value.into()],
        )
        .await;
    }

    /// Waits until the text of the element matching `css` contains `needle`.
    pub(crate) async fn wait_text(&self, css: &str, needle: &str) {
        self.until_js(
            &format!("{needle:?} in {css}"),
            "const e = document.querySelector(arguments[0]); return !!e && e.textContent.includes(arguments[1]);",
            vec![css.into(), needle.into()],
        )
        .await;
    }

    /// Waits until the element matching `css` is rendered (not `hidden`, has a box).
    pub(crate) async fn wait_visible(&self, css: &str) {
        self.until_js(
            &format!("{css} visible"),
            "const e = document.querySelector(arguments[0]); return !!e && !e.hidden && e.getClientRects().length > 0;",
            vec![css.into()],
        )
        .await;
    }

    /// Waits until the element matching `css` exists but is not rendered.
    pub(crate) async fn wait_hidden(&self, css: &str) {
        self.until_js(
            &format!("{css} hidden"),
            "const e = document.querySelector(arguments[0]); return !!e && e.getClientRects().length === 0;",
            vec![css.into()],
        )
        .await;
    }

    /// Waits until no element matches `css`.
    pub(crate) async fn wait_gone(&self, css: &str) {
        self.until_js(
            &format!("{css} gone"),
            "return document.querySelector(arguments[0]) === null;",
            vec![css.into()],
        )
        .await;
    }

    /// The text of the element matching `css`.
    pub(crate) async fn text(&self, css: &str) -> String {
        self.read(css, None).await.unwrap_or_default()
    }

    /// Opens a view from the navigation bar.
    pub(crate) async fn nav(&self, view: &str) {
        self.click(&format!("[data-testid=nav-{view}]")).await;
        self.wait_attr("body", "data-view", view).await;
    }

    /// Clicks Download on the file browser row `row` and waits until the browser's status
    /// (`status`: its `files-status` element) says it saved `name` in the Downloads folder;
    /// returns that path.
    pub(crate) async fn download_entry(&self, row: &str, status: &str, name: &str) -> PathBuf {
        self.click(&format!("{row} [data-testid=files-download]"))
            .await;
        let saved = self.downloads().join(name);
        self.wait_attr(status, "data-saved", &saved.display().to_string())
            .await;
        saved
    }

    /// Waits for the error banner and returns `(code, message)`.
    pub(crate) async fn error_shown(&self) -> (String, String) {
        self.until_js(
            "the error banner",
            // Shown and actually rendered (not only un-hidden in the DOM).
            "const b = document.querySelector('[data-testid=error-banner]'); return !b.hidden && b.getClientRects().length > 0;",
            vec![],
        )
        .await;
        (
            self.text("[data-testid=error-code]").await,
            self.text("[data-testid=error-message]").await,
        )
    }

    /// Waits for the confirmation dialog, checks its title holds `title`, answers with the
    /// button `answer` (`ok`, `alt` or `cancel`) and waits until it has closed.
    pub(crate) async fn confirm(&self, title: &str, answer: &str) {
        let dialog = "[data-testid=confirm-dialog]";
        self.until_js(
            "the confirmation dialog",
            "const d = document.querySelector(arguments[0]); return !!d && d.open;",
            vec![dialog.into()],
        )
        .await;
        self.wait_text("[data-testid=confirm-title]", title).await;
        self.click(&format!("[data-testid=confirm-{answer}]")).await;
        self.until_js(
            "the confirmation dialog to close",
            "return !document.querySelector(arguments[0]).open;",
            vec![dialog.into()],
        )
        .await;
    }

    /// Saves a PNG of the app's window as `$BERTH_GUI_SCREENSHOTS/<name>.png` when that variable
    /// is set (`scripts/screenshots.sh` sets it to `docs/screenshots`); otherwise does nothing.
    /// The picture is read from the X server (`screen.rs`) once the page has painted two frames
    /// since the last change.
    pub(crate) async fn snapshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("BERTH_GUI_SCREENSHOTS") else {
            return;
        };
        // No caret or focus ring in the picture, and two animation frames so the last DOM
        // change is on screen.
        let painted = "if (document.activeElement) document.activeElement.blur(); \
            const done = arguments[arguments.length - 1]; \
            requestAnimationFrame(() => requestAnimationFrame(() => done(true)));";
        let _ = tokio::time::timeout(WAIT, self.c().execute_async(painted, vec![])).await;
        let display = self.display;
        let png = tokio::task::spawn_blocking(move || screen::capture_window(display, "Berth"))
            .await
            .expect("capture task");
        match png {
            Ok(png) => {
                let dir = PathBuf::from(dir);
                std::fs::create_dir_all(&dir).expect("screenshot dir");
                std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
            }
            Err(e) => panic!("screenshot {name}: {e}"),
        }
    }

    /// CPU time (user + system, in clock ticks) used so far by each process of the app under
    /// test: `berth-app` and WebKit's web process, by name (`comm`) among the driver's
    /// descendants.
    pub(crate) fn app_cpu_ticks(&self) -> Vec<(String, u64)> {
        let Some(d) = self.driver.as_ref() else {
            return vec![];
        };
        descendants(d.id())
            .into_iter()
            .filter_map(|p| {
                let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
                let (head, rest) = stat.rsplit_once(')')?;
                let comm = head.split_once('(')?.1.to_string();
                if comm != "berth-app" && !comm.starts_with("WebKitWebProces") {
                    return None;
                }
                // After ')': state ppid … utime is field 14 of the line, 12th after ')'.
                let f: Vec<&str> = rest.split_whitespace().collect();
                let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
                Some((comm, ticks))
            })
            .collect()
    }

    /// Ends the session (the app quits), then stops everything. Call at the end of a test;
    /// `Drop` does the same without the orderly session end.
    pub(crate) async fn finish(mut self) {
        if let Some(c) = self.client.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), c.close()).await;
        }
        tokio::task::block_in_place(|| self.stop_processes());
    }

    fn stop_processes(&mut self) {
        if let Some(mut d) = self.driver.take() {
            // The driver, WebKitWebDriver, the app and the session bus: all started by us.
            let mut pids = descendants(d.id());
            pids.push(d.id());
            for &p in &pids {
                signal(p, libc::SIGTERM);
            }
            let gone = wait_until(Duration::from_secs(5), || {
                d.try_wait().ok().flatten().is_some()
                    && pids
                        .iter()
                        .all(|p| !Path::new(&format!("/proc/{p}")).exists())
            });
            if !gone {
                for &p in &pids {
                    signal(p, libc::SIGKILL);
                }
                let _ = d.wait();
            }
        }
        if let Some(mut x) = self.xvfb.take() {
            signal(x.id(), libc::SIGTERM);
            if !wait_until(Duration::from_secs(5), || {
                x.try_wait().ok().flatten().is_some()
            }) {
                let _ = x.kill();
                let _ = x.wait();
            }
        }
    }
}

impl Drop for Gui {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        self.client.take();
        self.stop_processes();
    }
}

fn note(msg: &str) {
    eprintln!("gui: {msg}");
}

/// Reads the exec terminal's buffer, one string a line.
const TERMINAL_LINES: &str = "const box = document.querySelector('[data-testid=exec-terminal]'); \
    const t = box && box.term; if (!t) return []; const b = t.buffer.active; const out = []; \
    for (let i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true)); \
    return out;";

/// Docker's own message in a CLI error (`Error response from daemon: <message>`).
pub(crate) fn daemon_message(stderr: &str) -> String {
    let line = stderr
        .lines()
        .find(|l| l.contains("Error response from daemon"))
        .unwrap_or_else(|| panic!("no daemon error in {stderr:?}"));
    line.split_once("Error response from daemon: ")
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_default()
}

/// CSS for the row of the container named `name`.
pub(crate) fn container_row(name: &str) -> String {
    format!("[data-testid=container-row][data-name=\"{name}\"]")
}
