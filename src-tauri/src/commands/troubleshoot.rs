//! Troubleshoot: the VM console log and the engine's lines in it (`berth_host::doctor`), the
//! diagnostics bundle (the same document `berth doctor` writes, plus the app's own log), and a
//! reset to factory defaults (`berth_host::reset`, which refuses while the VM runs) that first
//! lists what it deletes. Restarting the VM is `vm_restart` (`berth restart`).

use std::path::PathBuf;

use berth_host::reset::Item;
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Manager, State};

use super::files::{downloads_dir, unique_path};
use crate::error::{AppError, Result};
use crate::settings::AppSettings;
use crate::state::AppState;

/// Lines a log view shows.
const LOG_LINES: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogKind {
    /// The VM's serial console: kernel, PID 1 and the engine.
    Console,
    /// The engine's own lines of the console.
    Engine,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogView {
    pub path: String,
    pub lines: Vec<String>,
    /// Why there is nothing to show.
    pub missing: Option<String>,
}

/// The last lines of a log of Berth's VM, or why there are none.
pub fn read_log(berth: &berth_host::StateDir, kind: LogKind) -> LogView {
    let path = berth.console_log();
    let lines = match kind {
        LogKind::Console => berth_host::doctor::tail(&path, LOG_LINES),
        LogKind::Engine => berth_host::doctor::engine_tail(berth, LOG_LINES),
    };
    let missing = match &lines {
        None => Some(format!(
            "No VM console log at {}: Berth's VM has not run from {}.",
            path.display(),
            berth.root().display()
        )),
        Some(l) if l.is_empty() => Some(format!("Nothing logged yet in {}.", path.display())),
        Some(_) => None,
    };
    LogView {
        path: path.display().to_string(),
        lines: lines.unwrap_or_default(),
        missing,
    }
}

/// Async, so reading a long console log never holds the main thread.
#[tauri::command]
pub async fn troubleshoot_log(state: State<'_, AppState>, kind: LogKind) -> Result<LogView> {
    Ok(read_log(&state.berth, kind))
}

fn app_log(app: &AppHandle) -> Result<PathBuf> {
    let dir = app
        .path()
        .app_log_dir()
        .map_err(|e| AppError::Client(format!("no app log directory: {e}")))?;
    Ok(dir.join("berth-app.log"))
}

/// Writes the diagnostics bundle (what `berth doctor --docker-host <the app's socket>` writes,
/// with the app's log too) to `path`, or to `berth-doctor-<time>.json` in the Downloads folder
/// when `path` is empty; returns where.
#[tauri::command]
pub async fn troubleshoot_bundle(
    app: AppHandle,
    state: State<'_, AppState>,
    path: Option<String>,
) -> Result<String> {
    let extra = [("berth-app".to_string(), app_log(&app)?)];
    let bundle = berth_host::doctor::collect(&state.berth, &state.host_endpoint(), &extra).await;
    let path = match path.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => unique_path(
            &downloads_dir(&app)?,
            &berth_host::doctor::file_name(bundle.generated),
        ),
    };
    berth_host::doctor::write(&bundle, &path)?;
    tracing::info!(path = %path.display(), "diagnostics bundle written");
    Ok(path.display().to_string())
}

/// What a reset would delete now, and why it cannot run when the VM runs.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResetPlan {
    pub items: Vec<Item>,
    pub refusal: Option<String>,
}

/// The app's own part of a reset: its settings file, put back to defaults.
fn app_plan(state: &AppState) -> Vec<Item> {
    let settings = AppSettings::file(&state.config_dir);
    settings
        .exists()
        .then(|| Item {
            path: settings,
            what: "the app's settings (the engine socket goes back to automatic)".into(),
        })
        .into_iter()
        .collect()
}

#[tauri::command]
pub fn troubleshoot_reset_plan(state: State<'_, AppState>) -> ResetPlan {
    ResetPlan {
        items: [berth_host::reset::plan(&state.berth), app_plan(&state)].concat(),
        refusal: berth_host::reset::refusal(&state.berth),
    }
}

/// Deletes what the plan lists (refused while the VM runs); returns what it deleted. Async:
/// deleting a large data disk must not hold the main thread.
#[tauri::command]
pub async fn troubleshoot_reset(state: State<'_, AppState>) -> Result<Vec<Item>> {
    let app = app_plan(&state);
    let mut done = berth_host::reset::reset(&state.berth)?;
    if !app.is_empty() {
        state.set_settings(AppSettings::default())?;
        done.extend(app);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_say_why_they_are_empty() {
        let d = tempfile::tempdir().unwrap();
        let s = berth_host::StateDir::new(d.path());
        s.create().unwrap();
        let none = read_log(&s, LogKind::Console);
        assert!(none.missing.unwrap().contains("has not run"));
        std::fs::write(s.console_log(), "[ 0.0] Linux\n").unwrap();
        assert_eq!(read_log(&s, LogKind::Console).lines, ["[ 0.0] Linux"]);
        let engine = read_log(&s, LogKind::Engine);
        assert!(engine.lines.is_empty() && engine.missing.unwrap().contains("Nothing logged"));
    }
}
