//! Troubleshoot: the VM console and engine logs, the diagnostics bundle (the same document as
//! `berth doctor`, from `berth_host::doctor`), restarting the VM, and a reset to factory
//! defaults that first says exactly what it deletes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Manager, State};

use crate::error::{AppError, Result};
use crate::settings::AppSettings;
use crate::state::AppState;

/// Lines a log view shows.
const LOG_LINES: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogKind {
    /// The VM's serial console (kernel, PID 1, the engine).
    Console,
    /// The engine's own lines of the console (its tracing targets).
    Engine,
    /// This app's log.
    App,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogView {
    pub path: String,
    pub lines: Vec<String>,
    /// Why there is nothing to show.
    pub missing: Option<String>,
}

/// Whether a console line is the engine's (its tracing targets: `berth_engine`, `berth_server`).
pub fn is_engine_line(line: &str) -> bool {
    line.contains(" berth_engine") || line.contains(" berth_server")
}

fn app_log(app: &AppHandle) -> Result<PathBuf> {
    let dir = app
        .path()
        .app_log_dir()
        .map_err(|e| AppError::Client(format!("no log directory: {e}")))?;
    Ok(dir.join("berth-app.log"))
}

#[tauri::command]
pub fn troubleshoot_log(
    app: AppHandle,
    state: State<'_, AppState>,
    kind: LogKind,
) -> Result<LogView> {
    let path = match kind {
        LogKind::Console | LogKind::Engine => state.berth.console_log(),
        LogKind::App => app_log(&app)?,
    };
    let all = berth_host::doctor::tail(&path, if kind == LogKind::Engine { 20 * LOG_LINES } else { LOG_LINES });
    let Some(mut lines) = all else {
        return Ok(LogView {
            path: path.display().to_string(),
            lines: vec![],
            missing: Some(format!(
                "No log at {}: Berth's VM has not run from this home{}.",
                path.display(),
                if kind == LogKind::App { " (or the app has not logged yet)" } else { "" }
            )),
        });
    };
    if kind == LogKind::Engine {
        lines.retain(|l| is_engine_line(l));
        let keep = lines.len().saturating_sub(LOG_LINES);
        lines.drain(..keep);
    }
    Ok(LogView {
        path: path.display().to_string(),
        lines,
        missing: None,
    })
}

/// Writes the diagnostics bundle to `dir` (default: the user's Downloads folder, else home);
/// returns the file's path.
#[tauri::command]
pub async fn troubleshoot_bundle(
    app: AppHandle,
    state: State<'_, AppState>,
    dir: Option<String>,
) -> Result<String> {
    let dir = match dir.filter(|d| !d.trim().is_empty()) {
        Some(d) => PathBuf::from(d),
        None => app
            .path()
            .download_dir()
            .or_else(|_| app.path().home_dir())
            .map_err(|e| AppError::Client(format!("no folder to save to: {e}")))?,
    };
    let socket = state.engine().socket().path.clone();
    let endpoint = berth_host::endpoint::Endpoint::parse(&socket.display().to_string())
        .unwrap_or(berth_host::endpoint::Endpoint::Unix(socket));
    let extra = vec![("berth-app".to_string(), app_log(&app)?)];
    let bundle = berth_host::doctor::collect(&state.berth, &endpoint, &extra).await;
    std::fs::create_dir_all(&dir).map_err(|err| AppError::Io {
        path: dir.display().to_string(),
        err,
    })?;
    let path = dir.join(berth_host::doctor::file_name(bundle.generated));
    berth_host::doctor::write(&bundle, &path)?;
    tracing::info!(path = %path.display(), "diagnostics bundle written");
    Ok(path.display().to_string())
}

/// What a reset deletes, each path with what it holds (only those that exist).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResetItem {
    pub path: String,
    pub what: String,
}

/// The reset plan for a Berth home and the app's config dir: the VM's data disk (every image,
/// container, volume and build cache), Berth's config and daemon.json, the logs, and the app's
/// own settings and login entry.
pub fn reset_plan(berth: &berth_host::StateDir, config_dir: &Path, login_item: Option<PathBuf>) -> Vec<ResetItem> {
    let mut items = vec![
        (berth.disk_dir(), "the VM's data disk: every image, container, volume and build cache in it"),
        (berth.config_file(), "Berth's settings (CPUs, memory, disk, shared folders)"),
        (berth.daemon_json(), "the engine's daemon.json"),
        (berth.logs_dir(), "the VM's logs"),
        (AppSettings::file(config_dir), "the app's settings (the engine socket)"),
    ];
    if let Some(p) = &login_item {
        items.push((p.clone(), "the start-at-login entry"));
    }
    items
        .into_iter()
        .filter(|(p, _)| p.exists())
        .map(|(p, what)| ResetItem {
            path: p.display().to_string(),
            what: what.into(),
        })
        .collect()
}

fn login_path() -> Option<PathBuf> {
    let item = crate::autostart::login_item().ok()?;
    item.enabled().then(|| PathBuf::from(item.location()))
}

#[tauri::command]
pub fn troubleshoot_reset_plan(state: State<'_, AppState>) -> Vec<ResetItem> {
    reset_plan(&state.berth, &state.config_dir, login_path())
}

/// Stops the VM when it runs, then deletes what [`reset_plan`] lists.
#[tauri::command]
pub async fn troubleshoot_reset(state: State<'_, AppState>) -> Result<Vec<ResetItem>> {
    if crate::commands::vm::read_status(&state.berth).supervisor_pid.is_some() {
        crate::commands::vm::stop(&state).await?;
    }
    if let Ok(item) = crate::autostart::login_item() {
        item.set(false)?;
    }
    let plan = reset_plan(&state.berth, &state.config_dir, login_path());
    for item in &plan {
        let p = Path::new(&item.path);
        let r = if p.is_dir() {
            std::fs::remove_dir_all(p)
        } else {
            std::fs::remove_file(p)
        };
        r.map_err(|err| AppError::Io {
            path: item.path.clone(),
            err,
        })?;
    }
    tracing::warn!(deleted = plan.len(), "reset to factory defaults");
    state.set_settings(AppSettings::default())?;
    Ok(plan)
}

/// Restarts Berth's VM (`berth stop`, then `berth start`).
#[tauri::command]
pub async fn troubleshoot_restart_vm(
    state: State<'_, AppState>,
) -> Result<crate::commands::vm::VmStatus> {
    crate::commands::vm::stop(&state).await?;
    crate::commands::vm::start(&state).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_lines_are_its_tracing_targets() {
        assert!(is_engine_line("2026-12-05T10:00:00Z  INFO berth_engine::container: started"));
        assert!(!is_engine_line("[    0.000000] Linux version 6.1"));
    }

    #[test]
    fn the_reset_plan_lists_only_what_exists() {
        let d = tempfile::tempdir().unwrap();
        let berth = berth_host::StateDir::new(d.path().join("berth"));
        berth.create().unwrap();
        let config = d.path().join("app");
        std::fs::create_dir_all(berth.disk_dir()).unwrap();
        std::fs::write(berth.config_file(), "{}").unwrap();
        let plan = reset_plan(&berth, &config, None);
        let paths: Vec<&str> = plan.iter().map(|i| i.path.as_str()).collect();
        assert!(paths.contains(&berth.disk_dir().display().to_string().as_str()), "{paths:?}");
        assert!(paths.contains(&berth.config_file().display().to_string().as_str()));
        assert!(!paths.iter().any(|p| p.ends_with("daemon.json")), "{paths:?}");
        assert!(plan.iter().any(|i| i.what.contains("every image")));
    }
}
