//! Settings › Engine configuration: the engine's `daemon.json` (Berth's `<home>/daemon.json`)
//! edited as JSON. Checked by `berth_host::daemon_json::check`, the one validation that
//! `berth start` and `berth config daemon` use too (the parser's line and column, keys of the
//! wrong type refused, the VM's keys and keys the engine does not read warned), saved
//! atomically (nothing is written when refused), and applied by restarting only the engine in
//! the running VM (`berth restart --engine`: running containers keep running) or, with the VM
//! stopped, at its next start. Troubleshoot's "Restart engine" is the same restart.

use std::time::Duration;

use berth_host::daemon_json::{self, Invalid, Warning};
use serde::Serialize;
use tauri::State;

use super::vm::{read_status, run_cli};
use crate::error::{AppError, Result};
use crate::state::AppState;

/// `berth restart --engine` waits for the new engine up to this long.
const RESTART_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DaemonJsonCheck {
    pub valid: bool,
    pub error: Option<Invalid>,
    pub warnings: Vec<Warning>,
}

/// How a saved file takes effect now.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyPlan {
    /// `engine`: restart the engine in the running VM; `next_start`: nothing runs to restart.
    pub how: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DaemonJsonView {
    pub path: String,
    /// The file as written (empty without one).
    pub text: String,
    pub exists: bool,
    pub check: DaemonJsonCheck,
    pub apply: ApplyPlan,
}

/// Checks a text as `berth start` will; an empty text is valid (it removes the file).
pub fn check_text(text: &str) -> DaemonJsonCheck {
    if text.trim().is_empty() {
        return DaemonJsonCheck {
            valid: true,
            error: None,
            warnings: Vec::new(),
        };
    }
    match daemon_json::check(text) {
        Ok(c) => DaemonJsonCheck {
            valid: true,
            error: None,
            warnings: c.warnings,
        },
        Err(e) => DaemonJsonCheck {
            valid: false,
            error: Some(e),
            warnings: Vec::new(),
        },
    }
}

/// Whether Berth's VM runs now (its engine can be restarted alone).
fn vm_running(berth: &berth_host::StateDir) -> bool {
    read_status(berth).state == "running"
}

fn apply_plan(berth: &berth_host::StateDir) -> ApplyPlan {
    if vm_running(berth) {
        ApplyPlan {
            how: "engine",
            message: "Applying restarts the engine inside Berth's VM, not the VM: running \
                      containers keep running and are re-attached; the Docker API does not \
                      answer for a few seconds."
                .into(),
        }
    } else {
        ApplyPlan {
            how: "next_start",
            message: "Berth's VM is not running: the file applies when it starts (a native \
                      engine reads its own --config-file)."
                .into(),
        }
    }
}

fn view(berth: &berth_host::StateDir) -> Result<DaemonJsonView> {
    let text = daemon_json::read_text(berth)?;
    Ok(DaemonJsonView {
        path: berth.daemon_json().display().to_string(),
        exists: text.is_some(),
        check: check_text(text.as_deref().unwrap_or_default()),
        text: text.unwrap_or_default(),
        apply: apply_plan(berth),
    })
}

#[tauri::command]
pub fn daemon_json_get(state: State<'_, AppState>) -> Result<DaemonJsonView> {
    view(&state.berth)
}

/// The check as the user types (no file is touched).
#[tauri::command]
pub fn daemon_json_check(text: String) -> DaemonJsonCheck {
    check_text(&text)
}

/// Checks and writes the file; a refused text is `invalid` (with its position) and writes
/// nothing.
#[tauri::command]
pub fn daemon_json_save(state: State<'_, AppState>, text: String) -> Result<DaemonJsonView> {
    match daemon_json::save(&state.berth, &text) {
        Ok(saved) => tracing::info!(?saved, "daemon.json saved from the app"),
        Err(berth_host::HostError::DaemonJson { detail, .. }) => {
            return Err(AppError::Invalid(format!(
                "daemon.json not saved: {detail}"
            )))
        }
        Err(e) => return Err(e.into()),
    }
    view(&state.berth)
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EngineRestarted {
    pub message: String,
}

/// Restarts only the engine in Berth's running VM (`berth restart --engine`); the VM and its
/// running containers keep running. Without the VM there is nothing to restart it: a native
/// engine is restarted by whoever started it.
#[tauri::command]
pub async fn engine_restart(state: State<'_, AppState>) -> Result<EngineRestarted> {
    if !vm_running(&state.berth) {
        let socket = state.engine().socket().path.display().to_string();
        return Err(AppError::Unavailable(format!(
            "Restarting only the engine needs Berth's VM, whose init restarts it; the VM is not \
             running. The engine this app uses ({socket}) runs without Berth's VM: restart it \
             the way it was started."
        )));
    }
    let t = RESTART_TIMEOUT.as_secs().to_string();
    run_cli(
        &state.berth,
        &["restart", "--engine", "--timeout", &t],
        RESTART_TIMEOUT + Duration::from_secs(30),
    )
    .await?;
    state.reconnect.notify_one();
    Ok(EngineRestarted {
        message: "Engine restarted; the VM and its containers kept running.".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_text_is_valid_and_bad_text_says_where() {
        assert!(check_text("  \n").valid);
        let c = check_text("{\n  \"debug\": true,\n}");
        assert!(!c.valid);
        let e = c.error.unwrap();
        assert_eq!((e.at.unwrap().line, e.at.unwrap().column), (3, 1));
        let c = check_text(r#"{"hosts": ["tcp://0.0.0.0:2375"]}"#);
        assert!(c.valid);
        assert_eq!(c.warnings[0].key, "hosts");
    }

    #[test]
    fn without_a_vm_a_save_applies_at_the_next_start() {
        let d = tempfile::tempdir().unwrap();
        let s = berth_host::StateDir::new(d.path());
        let v = view(&s).unwrap();
        assert!(!v.exists);
        assert_eq!(v.apply.how, "next_start");
    }
}
