//! Berth's VM: status from `berth-host` (the supervisor's pid file and `status.json`, as
//! `berth status` reads them), start and stop through the `berth` CLI. The CLI owns the
//! supervisor daemon (`berth start` spawns `berth daemon` detached and waits for the API;
//! `berth stop` signals it and cleans up), so the app runs the same binary rather than a second
//! copy of that logic: Berth works the same with or without the app.

use std::path::PathBuf;
use std::time::Duration;

use berth_host::process::live_pid;
use berth_host::supervisor::{Status, VmState};
use serde::Serialize;
use tauri::State;

use crate::error::{AppError, Result};
use crate::state::AppState;

/// The pid file name `berth` gives its supervisor daemon.
const SUPERVISOR: &str = "supervisor";
/// `berth start` waits for the Docker API up to this long (its `--timeout`).
const START_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VmStatus {
    pub supervisor_pid: Option<u32>,
    /// `starting`, `running`, … as the supervisor reports it; `stopped` with no supervisor.
    pub state: String,
    pub message: Option<String>,
    pub docker_socket: String,
}

/// Reads the VM state (no I/O beyond two small files).
pub fn read_status(berth: &berth_host::StateDir) -> VmStatus {
    let pid = live_pid(&berth.pid_file(SUPERVISOR));
    let st = Status::read(berth);
    let state = match (&pid, &st) {
        (Some(_), Some(s)) => s.state,
        (Some(_), None) => VmState::Starting,
        (None, Some(s)) if s.state == VmState::Failed => VmState::Failed,
        (None, _) => VmState::Stopped,
    };
    VmStatus {
        supervisor_pid: pid,
        state: serde_json::to_value(state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        message: st.and_then(|s| s.message),
        docker_socket: berth.docker_socket().display().to_string(),
    }
}

/// The `berth` CLI: `$BERTH_CLI`, else next to this binary (one cargo target dir), else `PATH`.
pub fn berth_cli() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_CLI") {
        return p.into();
    }
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("berth")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("berth"))
}

/// Runs `berth <args> --home <state>` and fails with what it printed when it fails.
pub(crate) async fn run_cli(
    berth: &berth_host::StateDir,
    args: &[&str],
    timeout: Duration,
) -> Result<()> {
    let what = format!("berth {}", args.join(" "));
    let cli = berth_cli();
    let mut cmd = tokio::process::Command::new(&cli);
    cmd.arg("--home")
        .arg(berth.root())
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    tracing::info!(cli = %cli.display(), %what, "running");
    let out = tokio::time::timeout(timeout, cmd.output())
        .await
        .map_err(|_| AppError::Vm {
            what: what.clone(),
            detail: format!("no answer within {} s", timeout.as_secs()),
        })?
        .map_err(|err| AppError::Io {
            path: cli.display().to_string(),
            err,
        })?;
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stderr);
    let detail = text
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("exited with an error")
        .trim_start_matches("berth: ")
        .to_string();
    Err(AppError::Vm { what, detail })
}

#[tauri::command]
pub fn vm_status(state: State<'_, AppState>) -> VmStatus {
    read_status(&state.berth)
}

/// Boots the VM (`berth start`), waiting until the Docker API answers.
#[tauri::command]
pub async fn vm_start(state: State<'_, AppState>) -> Result<VmStatus> {
    start(&state).await
}

/// Shuts the VM down in order (`berth stop`).
#[tauri::command]
pub async fn vm_stop(state: State<'_, AppState>) -> Result<VmStatus> {
    stop(&state).await
}

/// Restarts the VM and with it the engine (`berth restart`: an orderly stop, then a start
/// waiting for the Docker API).
#[tauri::command]
pub async fn vm_restart(state: State<'_, AppState>) -> Result<VmStatus> {
    boot(&state, "restart").await
}

pub async fn start(state: &AppState) -> Result<VmStatus> {
    boot(state, "start").await
}

/// `berth start` or `berth restart` (both wait for the Docker API), then reconnects at once.
async fn boot(state: &AppState, verb: &str) -> Result<VmStatus> {
    let t = START_TIMEOUT.as_secs().to_string();
    // A restart first stops the VM in order (up to 90 s).
    let bound = START_TIMEOUT + Duration::from_secs(100);
    run_cli(&state.berth, &[verb, "--timeout", &t], bound).await?;
    state.reconnect.notify_one();
    Ok(read_status(&state.berth))
}

pub async fn stop(state: &AppState) -> Result<VmStatus> {
    run_cli(&state.berth, &["stop"], Duration::from_secs(90)).await?;
    Ok(read_status(&state.berth))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_supervisor_reads_as_stopped() {
        let d = tempfile::tempdir().unwrap();
        let s = berth_host::StateDir::new(d.path());
        s.create().unwrap();
        let st = read_status(&s);
        assert_eq!(st.state, "stopped");
        assert_eq!(st.supervisor_pid, None);
    }
}
