//! A container's detail: its inspect data (the overview and the raw JSON are drawn from it by the
//! UI) and the `docker run` line that would recreate it ([`super::run_line`]).

use bollard::query_parameters::InspectContainerOptions;
use serde::Serialize;
use tauri::State;

use super::run_line::run_line;
use crate::error::{AppError, Result};
use crate::state::AppState;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDetail {
    /// `GET /containers/{id}/json`, in the engine's field names.
    pub inspect: serde_json::Value,
    /// `docker run …` with what differs from the image's defaults.
    pub run_command: String,
}

#[tauri::command]
pub async fn containers_inspect(state: State<'_, AppState>, id: String) -> Result<ContainerDetail> {
    let e = state.engine();
    let docker = e.docker()?;
    let c = docker
        .inspect_container(&id, None::<InspectContainerOptions>)
        .await
        .map_err(|x| e.err(x))?;
    // The defaults of the image it was made from (by id); a removed image leaves them unknown
    // and the line then spells out everything.
    let image = match c.image.as_deref() {
        Some(img) => docker.inspect_image(img).await.ok().and_then(|i| i.config),
        None => None,
    };
    let run_command = run_line(&c, image.as_ref());
    let inspect = serde_json::to_value(&c).map_err(|x| AppError::Client(x.to_string()))?;
    Ok(ContainerDetail {
        inspect,
        run_command,
    })
}
