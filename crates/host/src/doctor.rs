//! The diagnostics bundle of `berth doctor` and the app's Troubleshoot view: versions, Berth's
//! config and the engine's `daemon.json`, the VM's status, the data disk's usage, the Docker
//! API's `/version` and `/info`, and the last lines of every log under `~/.berth/logs` (the VM
//! console, the supervisor, QEMU, helpers). One JSON document, each part read on its own: a part
//! that cannot be read says why instead of failing the whole bundle.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

use crate::endpoint::Endpoint;
use crate::error::{HostError, Result};
use crate::StateDir;

/// Lines kept from the end of each log.
pub const LOG_LINES: usize = 200;
/// How long each Docker API request may take.
const API_BOUND: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Serialize)]
pub struct Versions {
    pub berth: String,
    pub os: String,
    pub arch: String,
    /// The host kernel (`/proc/sys/kernel/osrelease`) on Linux.
    pub kernel: Option<String>,
    /// `qemu-img --version`'s first line, when it is installed.
    pub qemu_img: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DockerPart {
    pub endpoint: String,
    /// `GET /version`, or `{"error": …}`.
    pub version: Value,
    /// `GET /info`, or `{"error": …}`.
    pub info: Value,
}

/// The whole bundle.
#[derive(Debug, Clone, Serialize)]
pub struct Bundle {
    /// Unix seconds when it was collected.
    pub generated: u64,
    pub versions: Versions,
    pub home: String,
    /// `config.json` as stored (`null` when there is none yet).
    pub config: Value,
    /// The user's `daemon.json` (`null` when there is none).
    pub daemon_json: Value,
    /// The supervisor's pid when it runs, and its last `status.json`.
    pub supervisor_pid: Option<u32>,
    pub status: Value,
    /// `berth disk usage`'s lines.
    pub disk: Vec<String>,
    pub docker: DockerPart,
    /// Log name (file stem) → its last [`LOG_LINES`] lines.
    pub logs: BTreeMap<String, Vec<String>>,
}

/// A JSON file's content: `null` when missing, `{"error": …}` when unreadable or not JSON.
fn json_file(path: &Path) -> Value {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .unwrap_or_else(|e| json!({ "error": format!("{}: {e}", path.display()) })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Value::Null,
        Err(e) => json!({ "error": format!("{}: {e}", path.display()) }),
    }
}

/// The last `n` lines of the text file at `path` (`None` when it cannot be read).
pub fn tail(path: &Path, n: usize) -> Option<Vec<String>> {
    let bytes = std::fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    Some(
        lines[lines.len().saturating_sub(n)..]
            .iter()
            .map(|l| l.to_string())
            .collect(),
    )
}

/// Whether a VM console line is the engine's: the engine's tracing lines name their target
/// (`berth_engine::…`, `berth_server::…`, `berth_agent::…`); the kernel's and PID 1's do not.
pub fn is_engine_line(line: &str) -> bool {
    [" berth_engine", " berth_server", " berth_agent"]
        .iter()
        .any(|t| line.contains(t))
}

/// The engine's last `n` lines in the VM console log (`None` when there is no console log).
pub fn engine_tail(state: &StateDir, n: usize) -> Option<Vec<String>> {
    let mut lines = tail(&state.console_log(), usize::MAX)?;
    lines.retain(|l| is_engine_line(l));
    let cut = lines.len().saturating_sub(n);
    lines.drain(..cut);
    Some(lines)
}

/// Every `*.log` in `dir` plus `extra` (name, path), each as its last [`LOG_LINES`] lines.
pub fn logs(dir: &Path, extra: &[(String, PathBuf)]) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .filter_map(|p| Some((p.file_stem()?.to_string_lossy().into_owned(), p)))
        .collect();
    files.extend(extra.iter().cloned());
    for (name, path) in files {
        if let Some(lines) = tail(&path, LOG_LINES) {
            out.insert(name, lines);
        }
    }
    out
}

async fn api_json(e: &Endpoint, path: &str) -> Value {
    match tokio::time::timeout(API_BOUND, crate::api::get(e, path)).await {
        Ok(Ok(body)) => serde_json::from_slice(&body)
            .unwrap_or_else(|err| json!({ "error": format!("GET {path}: {err}") })),
        Ok(Err(err)) => json!({ "error": crate::supervisor::error_chain(&err) }),
        Err(_) => json!({ "error": format!("GET {path}: no answer within {API_BOUND:?}") }),
    }
}

async fn first_line(program: &str, arg: &str) -> Option<String> {
    let out = tokio::process::Command::new(program)
        .arg(arg)
        .stdin(std::process::Stdio::null())
        .output();
    let out = tokio::time::timeout(Duration::from_secs(5), out)
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(|l| l.trim().to_string())
}

fn versions_now(qemu_img: Option<String>) -> Versions {
    Versions {
        berth: env!("CARGO_PKG_VERSION").into(),
        os: std::env::consts::OS.into(),
        arch: std::env::consts::ARCH.into(),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .map(|s| s.trim().to_string()),
        qemu_img,
    }
}

/// Collects the bundle. `docker` is the engine to ask (Berth's own endpoint, or the socket the
/// caller uses); `extra_logs` are logs outside `~/.berth/logs` (the app's own).
pub async fn collect(
    state: &StateDir,
    docker: &Endpoint,
    extra_logs: &[(String, PathBuf)],
) -> Bundle {
    let supervisor_pid = crate::process::live_pid(&state.pid_file("supervisor"));
    let status = json_file(&state.run_dir().join("status.json"));
    let vm_running = supervisor_pid.is_some() && status["state"] == "running";
    let usage = crate::usage::read(state, vm_running).await;
    Bundle {
        generated: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default(),
        versions: versions_now(first_line("qemu-img", "--version").await),
        home: state.root().display().to_string(),
        config: json_file(&state.config_file()),
        daemon_json: json_file(&state.daemon_json()),
        supervisor_pid,
        status,
        disk: crate::usage::describe(&usage),
        docker: DockerPart {
            endpoint: docker.to_string(),
            version: api_json(docker, "/version").await,
            info: api_json(docker, "/info").await,
        },
        logs: logs(&state.logs_dir(), extra_logs),
    }
}

/// The default file name for a bundle collected at `generated` (Unix seconds).
pub fn file_name(generated: u64) -> String {
    format!("berth-doctor-{generated}.json")
}

/// Writes the bundle as pretty JSON to `path` (its directory must exist).
pub fn write(bundle: &Bundle, path: &Path) -> Result<()> {
    let body = serde_json::to_vec_pretty(bundle).map_err(|e| HostError::Command {
        what: "serialising the diagnostics".into(),
        detail: e.to_string(),
    })?;
    std::fs::write(path, body).map_err(HostError::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.log");
        std::fs::write(&p, "a\nb\nc\n").unwrap();
        assert_eq!(tail(&p, 2).unwrap(), ["b", "c"]);
        assert_eq!(tail(&p, 10).unwrap(), ["a", "b", "c"]);
        assert!(tail(&d.path().join("none"), 2).is_none());
    }

    #[test]
    fn logs_take_every_log_file_and_the_extra_ones() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("console.log"), "boot\n").unwrap();
        std::fs::write(d.path().join("notes.txt"), "skip\n").unwrap();
        let app = d.path().join("app.txt");
        std::fs::write(&app, "app line\n").unwrap();
        let got = logs(d.path(), &[("berth-app".into(), app)]);
        assert_eq!(got.keys().collect::<Vec<_>>(), ["berth-app", "console"]);
        assert_eq!(got["console"], ["boot"]);
    }

    #[test]
    fn engine_lines_are_those_naming_an_engine_target() {
        let d = tempfile::tempdir().unwrap();
        let s = StateDir::new(d.path());
        s.create().unwrap();
        assert!(engine_tail(&s, 5).is_none(), "no console log yet");
        let console = [
            "[    0.000000] Linux version 6.1.0",
            "2026-12-05T10:00:00.1Z  INFO engine started (pid 80) at uptime 1.2",
            "2026-12-05T10:00:01.1Z  INFO berth_agent: listening on /run/docker.sock",
            "2026-12-05T10:00:02.1Z DEBUG request{method=GET}: berth_server::routes: done",
            "2026-12-05T10:00:03.1Z  WARN berth_engine::image::pull: retrying",
        ];
        std::fs::write(s.console_log(), console.join("\n")).unwrap();
        assert_eq!(engine_tail(&s, 10).unwrap(), console[2..].to_vec());
        assert_eq!(engine_tail(&s, 1).unwrap(), [console[4]]);
    }

    #[test]
    fn json_files_say_why_they_are_missing() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(json_file(&d.path().join("none.json")), Value::Null);
        let bad = d.path().join("bad.json");
        std::fs::write(&bad, "{nope").unwrap();
        assert!(json_file(&bad)["error"]
            .as_str()
            .unwrap()
            .contains("bad.json"));
    }
}
