//! Volumes: list, create, remove.

use bollard::models::VolumeCreateRequest;
use bollard::query_parameters::{ListVolumesOptions, RemoveVolumeOptionsBuilder};
use serde::Serialize;
use tauri::State;

use crate::error::Result;
use crate::state::AppState;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeRow {
    pub name: String,
    pub driver: String,
    pub mountpoint: String,
}

#[tauri::command]
pub async fn volumes_list(state: State<'_, AppState>) -> Result<Vec<VolumeRow>> {
    let e = state.engine();
    let r = e.docker()?.list_volumes(None::<ListVolumesOptions>).await;
    let mut rows: Vec<VolumeRow> = r
        .map_err(|x| e.err(x))?
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| VolumeRow {
            name: v.name,
            driver: v.driver,
            mountpoint: v.mountpoint,
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

/// Creates a volume (`name` empty = the engine picks one); returns its name.
#[tauri::command]
pub async fn volumes_create(state: State<'_, AppState>, name: String) -> Result<String> {
    let e = state.engine();
    let name = name.trim();
    let req = VolumeCreateRequest {
        name: (!name.is_empty()).then(|| name.to_string()),
        ..Default::default()
    };
    let r = e.docker()?.create_volume(req).await;
    Ok(r.map_err(|x| e.err(x))?.name)
}

#[tauri::command]
pub async fn volumes_remove(state: State<'_, AppState>, name: String) -> Result<()> {
    let e = state.engine();
    let opts = RemoveVolumeOptionsBuilder::default().force(false).build();
    let r = e.docker()?.remove_volume(&name, Some(opts)).await;
    r.map_err(|x| e.err(x))
}
