//! A berth-agent started for one test, with its own data root, socket, bridge and subnet, and
//! the real docker CLI pointed at it.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::net_slot::NetSlot;
use crate::registry::Registry;
use crate::wait::wait_until;

/// How to start an engine.
#[derive(Default, Clone)]
pub struct EngineOptions {
    /// Do not point docker.io at the fixture registry.
    pub no_mirror: bool,
    /// Extra berth-agent flags.
    pub args: Vec<String>,
    /// Put the data root on a tmpfs of this many MiB (a disk that fills up); unmounted with
    /// the rest of the test's directory.
    pub data_root_mib: Option<u64>,
}

pub struct Engine {
    dir: tempfile::TempDir,
    sock: PathBuf,
    child: Option<Child>,
    slot: NetSlot,
    opts: EngineOptions,
}

impl Engine {
    /// A fresh engine with the fixture registry as docker.io mirror.
    pub fn start() -> Engine {
        Self::start_with(EngineOptions::default())
    }

    /// A fresh engine that never talks to a registry.
    pub fn start_offline() -> Engine {
        Self::start_with(EngineOptions {
            no_mirror: true,
            ..Default::default()
        })
    }

    pub fn start_with(opts: EngineOptions) -> Engine {
        let dir = tempfile::Builder::new()
            .prefix("berth-e2e-")
            .tempdir()
            .expect("engine temp dir");
        let sock = dir.path().join("engine.sock");
        let mut e = Engine {
            dir,
            sock,
            child: None,
            slot: NetSlot::claim(),
            opts,
        };
        if let Some(mib) = e.opts.data_root_mib {
            std::fs::create_dir_all(e.data_root()).expect("data root");
            e.mount_data_root("", mib);
        }
        e.spawn();
        e
    }

    /// Changes the size of the data root's tmpfs (see [`EngineOptions::data_root_mib`]):
    /// space returns, or runs out.
    pub fn resize_data_root(&self, mib: u64) {
        self.mount_data_root("remount,", mib);
    }

    fn mount_data_root(&self, remount: &str, mib: u64) {
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("{remount}size={mib}m,mode=0711"),
            ])
            .arg("berth-e2e-data")
            .arg(self.data_root())
            .status()
            .expect("run mount");
        assert!(st.success(), "mount tmpfs on the data root failed");
    }

    /// The engine's data root.
    pub fn data_root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A scratch directory owned by this engine's test.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// `unix:///…/engine.sock`, for DOCKER_HOST.
    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    /// The bridge gateway address of this engine's default network (e.g. `10.231.7.1`).
    pub fn gateway(&self) -> String {
        self.slot
            .bip
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("engine.log")
    }

    fn spawn(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("engine log");
        let mut cmd = Command::new(crate::agent_bin());
        cmd.arg("-H")
            .arg(self.host())
            .arg("--data-root")
            .arg(self.data_root())
            .arg("--exec-root")
            .arg(self.dir.path().join("run"))
            .args(["--bridge", &self.slot.bridge, "--bip", &self.slot.bip]);
        if !self.opts.no_mirror {
            let reg = Registry::shared();
            cmd.args(["--registry-mirror", &format!("http://{}", reg.addr)]);
        }
        cmd.args(&self.opts.args)
            .env(
                "RUST_LOG",
                std::env::var("BERTH_TEST_LOG").unwrap_or_else(|_| "debug".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log);
        let child = cmd.spawn().expect("spawn berth-agent");
        self.child = Some(child);
        let sock = self.sock.clone();
        let ok = wait_until(Duration::from_secs(30), || ping(&sock));
        if !ok {
            let log = self.log_tail();
            self.kill();
            panic!("berth-agent did not answer /_ping within 30 s\n{log}");
        }
    }

    /// The whole engine log so far, without its terminal colour sequences.
    pub fn log(&self) -> String {
        without_colours(&std::fs::read_to_string(self.log_path()).unwrap_or_default())
    }

    /// The last lines of the engine log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(40);
        format!("--- engine log (tail) ---\n{}", lines[from..].join("\n"))
    }

    /// Stops the engine with SIGTERM (SIGKILL after 15 s) and returns how it exited (`None` when
    /// it had to be killed or was not running). Containers keep running.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        // SAFETY: signalling a child we spawned, by its PID.
        unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
        let mut status = None;
        let done = wait_until(Duration::from_secs(15), || {
            status = c.try_wait().ok().flatten();
            status.is_some()
        });
        if !done {
            let _ = c.kill();
            let _ = c.wait();
        }
        status
    }

    /// The engine's API socket path.
    pub fn socket(&self) -> &Path {
        &self.sock
    }

    /// Kills the engine with SIGKILL, as a crash would. Containers keep running.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the engine again on the same data root (after `stop` or `kill`).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "engine still running");
        self.spawn();
    }

    /// `stop` then `start_again`.
    pub fn restart(&mut self) {
        let _ = self.stop();
        self.start_again();
    }

    /// Restarts the engine with `args` as its extra flags (for flags that name this engine's
    /// own addresses, known only once it runs).
    pub fn restart_with_args(&mut self, args: &[&str]) {
        let _ = self.stop();
        self.opts.args = args.iter().map(|a| a.to_string()).collect();
        self.start_again();
    }

    /// A docker CLI command pointed at this engine (own DOCKER_CONFIG, no contexts).
    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        self.client_cmd("docker", args)
    }

    /// Any Docker client (`docker`, `docker-compose`…) pointed at this engine, with the
    /// environment `docker_cmd` uses.
    pub fn client_cmd(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        c.args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .env_remove("DOCKER_CONTEXT")
            .env("DOCKER_BUILDKIT", "0")
            .stdin(Stdio::null());
        c
    }

    /// A docker CLI command with the named CLI plugins (`compose`, `buildx`: folders of
    /// [`crate::docker_plugins`]) and BuildKit on, as on any current install; its own
    /// `DOCKER_CONFIG` lists the plugin folders in `cliPluginsExtraDirs`.
    pub fn docker_with_plugins(&self, plugins: &[&str], args: &[&str]) -> Command {
        let config = docker_plugin_config(
            &self
                .scratch()
                .join(format!("docker-config-{}", plugins.join("-"))),
            plugins,
        );
        let mut c = self.docker_cmd(args);
        c.env("DOCKER_CONFIG", &config)
            .env_remove("DOCKER_BUILDKIT");
        c
    }

    /// Runs the docker CLI (bounded to 120 s).
    pub fn docker(&self, args: &[&str]) -> Output {
        run_bounded(self.docker_cmd(args), Duration::from_secs(120))
    }

    /// Runs the docker CLI with `input` on stdin.
    pub fn docker_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut c = self.docker_cmd(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn docker");
        let mut stdin = child.stdin.take().expect("stdin");
        let data = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
        let out = wait_output(child, Duration::from_secs(120));
        let _ = writer.join();
        out
    }

    /// Runs the docker CLI and returns stdout; panics with stderr and the engine log on failure.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        if !out.status.success() {
            panic!(
                "docker {args:?} failed ({}):\nstdout: {}\nstderr: {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.log_tail()
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `docker events` from the start up to a second from now (so it ends by itself) with
    /// `filter` (`type=image`…) and `format`; returns stdout.
    pub fn past_events(&self, filter: &str, format: &str) -> String {
        let until = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            + 1;
        let until = until.to_string();
        self.docker_ok(&[
            "events", "--since", "0", "--until", &until, "--filter", filter, "--format", format,
        ])
    }

    /// Runs the docker CLI expecting failure; returns stderr.
    pub fn docker_err(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            !out.status.success(),
            "docker {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// A raw HTTP/1.1 request on the engine socket; returns (status, body).
    pub fn api(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let body = body.unwrap_or("");
        self.api_bytes(method, path, "application/json", body.as_bytes())
    }

    /// A raw HTTP/1.1 request with a binary body of `content_type` (an archive for
    /// `/images/load`); returns (status, body).
    pub fn api_bytes(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> (u16, String) {
        let mut s = UnixStream::connect(&self.sock).expect("connect engine socket");
        s.set_read_timeout(Some(Duration::from_secs(60))).ok();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).expect("write request");
        s.write_all(body).expect("write request body");
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(rest)
        } else {
            rest.to_string()
        };
        (status, body)
    }

    fn cleanup_containers(&self) {
        if self.child.is_none() {
            return;
        }
        let out = self.docker(&["ps", "-aq", "--no-trunc"]);
        let ids = String::from_utf8_lossy(&out.stdout).into_owned();
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(ids);
            let _ = self.docker(&args);
        }
    }
}

impl Engine {
    /// Deletes the bridges of this engine's user networks that are still there (a test that
    /// killed its engine, or left networks with endpoints): bridges outlive the engine by
    /// design, and leaked ones would use up the address pools of later tests. Only names this
    /// engine recorded, except the slot's default bridge (the next test on the slot reuses it).
    fn remove_user_bridges(&self) {
        // state.json, and any copy the engine set aside as torn (`state.json.corrupt-…`).
        let dir = self.data_root().join("network");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        // Read as text, not JSON: a torn copy is not valid JSON but still names its bridges.
        let texts: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("state.json"))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect();
        let bridges: std::collections::BTreeSet<&str> = texts
            .iter()
            .flat_map(|t| t.split("\"bridge\":").skip(1))
            .filter_map(|rest| rest.trim_start().strip_prefix('"')?.split('"').next())
            .filter(|b| {
                !b.is_empty()
                    && *b != self.slot.bridge
                    && Path::new("/sys/class/net").join(b).join("bridge").exists()
            })
            .collect();
        for b in bridges {
            let _ = Command::new("ip").args(["link", "del", b]).status();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.cleanup_containers();
        let _ = self.docker(&["network", "prune", "-f"]);
        let _ = self.stop();
        self.remove_user_bridges();
        // Unmount anything left under the test's directory (rootfs overlays, netns files).
        let root = self.dir.path().to_string_lossy().into_owned();
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") {
            let mut targets: Vec<&str> = mounts
                .lines()
                .filter_map(|l| l.split_whitespace().nth(1))
                .filter(|t| t.starts_with(&root))
                .collect();
            targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
            for t in targets {
                let _ = Command::new("umount").args(["-l", t]).status();
            }
        }
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
    }
}

fn ping(sock: &Path) -> bool {
    let Ok(mut s) = UnixStream::connect(sock) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 64];
    matches!(s.read(&mut buf), Ok(n) if n > 12 && buf[..n].starts_with(b"HTTP/1.1 200"))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(len.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// `text` without terminal colour sequences (`ESC [ … m`).
fn without_colours(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            chars.by_ref().find(|&d| d == 'm');
        } else {
            out.push(c);
        }
    }
    out
}

/// A finished command's stdout then stderr, as text.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `cmd` with stdout and stderr captured; killed after `timeout`.
pub fn run_bounded(mut cmd: Command, timeout: Duration) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn command");
    wait_output(child, timeout)
}

/// Waits for `child` with a deadline, killing it (by its PID) when the deadline passes.
fn wait_output(child: Child, timeout: Duration) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => out.expect("wait for command"),
        Err(_) => {
            // SAFETY: killing the child we spawned, by its PID.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            let out = rx
                .recv()
                .expect("command output")
                .expect("wait for command");
            panic!(
                "command timed out after {timeout:?}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// A docker CLI config folder at `config` whose `cliPluginsExtraDirs` lists the named plugins'
/// folders of [`crate::docker_plugins`] (`buildx`, `compose`), keeping what else the CLI wrote
/// in its `config.json` (a `docker login`'s `auths`); a plugin not installed fails the test,
/// naming the installer. Returns `config`, for `DOCKER_CONFIG`.
pub fn docker_plugin_config(config: &Path, plugins: &[&str]) -> PathBuf {
    let dir = crate::docker_plugins();
    std::fs::create_dir_all(config).expect("docker config dir");
    let dirs: Vec<PathBuf> = plugins.iter().map(|p| dir.join(p)).collect();
    for (name, d) in plugins.iter().zip(&dirs) {
        assert!(
            d.join(format!("docker-{name}")).exists(),
            "docker-{name} is missing from {}: run scripts/install-docker-plugins.sh",
            d.display()
        );
    }
    let path = config.join("config.json");
    let mut json = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::json!({}));
    json["cliPluginsExtraDirs"] = serde_json::json!(dirs);
    write_config_once(&path, &json.to_string());
    config.to_path_buf()
}

/// Writes a CLI config file that a docker process started earlier may be reading right now (a
/// spawned `compose events` while the next `compose restart` is set up): left alone when it
/// already holds `text`, else replaced whole by a rename, so no reader ever sees it truncated. A
/// truncated config has no plugin folders, and the CLI then reads `compose --ansi` as its own
/// unknown flag.
fn write_config_once(path: &Path, text: &str) {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return;
    }
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp-{}-{n}", std::process::id()));
    std::fs::write(&tmp, text).expect("docker config");
    std::fs::rename(&tmp, path).expect("docker config in place");
}

#[cfg(test)]
mod tests {
    use super::dechunk;

    #[test]
    fn dechunk_joins_chunks() {
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }
}
