//! The engine as a whole: status (ping + version) and stopping streams.

use std::ffi::OsStr;
use std::process::{Command, Stdio};

use serde::Serialize;
use tauri::State;

use crate::engine::SocketChoice;
use crate::error::{AppError, Result};
use crate::state::AppState;
use crate::streams::StreamId;

/// What the status indicator shows.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EngineStatus {
    /// `ready` or `down`.
    pub state: &'static str,
    pub socket: SocketChoice,
    pub version: Option<String>,
    pub api_version: Option<String>,
    /// Why it is down.
    pub message: Option<String>,
}

impl EngineStatus {
    /// Pings the current engine; never fails (a failure is the `down` state).
    pub async fn probe(state: &AppState) -> Self {
        let e = state.engine();
        let socket = e.socket().clone();
        let version = match e.docker() {
            Ok(d) => d.version().await.map_err(|x| e.err(x)),
            Err(err) => Err(err),
        };
        match version {
            Ok(v) => Self {
                state: "ready",
                socket,
                version: v.version,
                api_version: v.api_version,
                message: None,
            },
            Err(err) => Self {
                state: "down",
                socket,
                version: None,
                api_version: None,
                message: Some(err.to_string()),
            },
        }
    }

    /// One line for the tray.
    pub fn summary(&self) -> String {
        match (self.state, &self.version) {
            ("ready", Some(v)) => format!("Engine: running ({v})"),
            ("ready", None) => "Engine: running".into(),
            _ => "Engine: stopped".into(),
        }
    }
}

#[tauri::command]
pub async fn system_status(state: State<'_, AppState>) -> Result<EngineStatus> {
    Ok(EngineStatus::probe(&state).await)
}

/// Stops a stream started by another command (logs, stats, pull, exec).
#[tauri::command]
pub fn system_stream_stop(state: State<'_, AppState>, id: StreamId) {
    state.streams.stop(id);
}

/// How many streams run now (logs, stats, pulls, terminals): what the Troubleshoot log and
/// the GUI tests read to see that a view closed the streams it opened.
#[tauri::command]
pub fn system_streams_running(state: State<'_, AppState>) -> usize {
    state.streams.running()
}

/// Stops every stream: the UI calls it when it (re)loads, so a reloaded page leaves no stream
/// of its previous instance running, then removes debug shell sidecars a crashed app left.
#[tauri::command]
pub async fn system_stream_stop_all(state: State<'_, AppState>) -> Result<()> {
    state.streams.stop_all_current();
    let e = state.engine();
    if e.docker().is_err() {
        return Ok(()); // no engine yet: nothing to sweep
    }
    // Bounded: the page waits for this before it shows anything.
    let sweep = super::debug_shell::remove_leftover_sidecars(&e);
    match tokio::time::timeout(std::time::Duration::from_secs(3), sweep).await {
        Ok(Err(err)) => tracing::debug!(error = %err, "sweeping debug sidecars"),
        Err(_) => tracing::warn!("sweeping debug sidecars timed out"),
        Ok(Ok(())) => {}
    }
    Ok(())
}

/// Opens an `http(s)://` address (a published port) in the user's browser.
#[tauri::command]
pub fn system_open_url(url: String) -> Result<()> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(AppError::Invalid(format!("not a web address: {url}")));
    }
    open_with_system(OsStr::new(&url))
}

/// Hands `target` (a web address or a folder) to the desktop's opener: `$BERTH_OPENER` when
/// set (tests record what was opened with it), else `xdg-open`, `open` or `explorer`.
pub fn open_with_system(target: &OsStr) -> Result<()> {
    let mut cmd = match std::env::var_os("BERTH_OPENER") {
        Some(program) => Command::new(program),
        None => Command::new(OPENER),
    };
    cmd.arg(target)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().map_err(|err| AppError::Io {
        path: format!("{:?}", cmd.get_program()),
        err,
    })?;
    // Reaped off the command's thread: the opener hands the target over and exits.
    std::thread::spawn(move || child.wait());
    Ok(())
}

/// The desktop's own opener of addresses and folders.
#[cfg(target_os = "macos")]
const OPENER: &str = "open";
#[cfg(windows)]
const OPENER: &str = "explorer";
#[cfg(not(any(target_os = "macos", windows)))]
const OPENER: &str = "xdg-open";
