//! Container logs beyond following them ([`super::containers::containers_logs`]): the options
//! both use (`docker logs --since --tail --timestamps --follow`), and saving the logs to a file
//! in the Downloads folder (as `docker logs … > file`).

use bollard::query_parameters::{InspectContainerOptions, LogsOptions, LogsOptionsBuilder};
use futures::StreamExt;
use tauri::{AppHandle, State};
use tokio::io::AsyncWriteExt;

use super::containers::output_parts;
use super::files::{downloads_dir, unique_path};
use crate::error::{AppError, Result};
use crate::state::AppState;

/// What to ask the engine for: the last `tail` lines (all when `None`) since `since` (seconds
/// since the epoch), each prefixed with its RFC 3339 time when `timestamps`.
pub fn log_options(
    since: Option<i64>,
    tail: Option<u32>,
    follow: bool,
    timestamps: bool,
) -> LogsOptions {
    let tail = tail.map_or_else(|| "all".to_string(), |t| t.to_string());
    LogsOptionsBuilder::default()
        .follow(follow)
        .stdout(true)
        .stderr(true)
        .timestamps(timestamps)
        .since(since.unwrap_or(0).try_into().unwrap_or(0))
        .tail(&tail)
        .build()
}

/// Writes the logs of container `id` (stdout and stderr in the order the engine sends them)
/// to `<name>.log` in the Downloads folder; returns the file's path.
#[tauri::command]
pub async fn containers_logs_save(
    app: AppHandle,
    state: State<'_, AppState>,
    id: String,
    since: Option<i64>,
    tail: Option<u32>,
    timestamps: bool,
) -> Result<String> {
    let e = state.engine();
    let docker = e.docker()?;
    let c = docker
        .inspect_container(&id, None::<InspectContainerOptions>)
        .await
        .map_err(|x| e.err(x))?;
    let name = c
        .name
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_string();
    let path = unique_path(&downloads_dir(&app)?, &format!("{name}.log"));
    let io = |err| AppError::Io {
        path: path.display().to_string(),
        err,
    };
    let mut out = tokio::fs::File::create(&path).await.map_err(io)?;
    let mut logs = docker.logs(&id, Some(log_options(since, tail, false, timestamps)));
    while let Some(item) = logs.next().await {
        let o = item.map_err(|x| e.err(x))?;
        out.write_all(output_parts(&o).1).await.map_err(io)?;
    }
    out.flush().await.map_err(io)?;
    tracing::info!(container = %id, to = %path.display(), "logs saved");
    Ok(path.display().to_string())
}
