//! Networks: list, create (bridge), remove.

use bollard::models::NetworkCreateRequest;
use bollard::query_parameters::ListNetworksOptions;
use serde::Serialize;
use tauri::State;

use crate::error::{AppError, Result};
use crate::state::AppState;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkRow {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub subnet: String,
    /// The predefined networks (bridge, host, none) cannot be removed.
    pub builtin: bool,
}

#[tauri::command]
pub async fn networks_list(state: State<'_, AppState>) -> Result<Vec<NetworkRow>> {
    let e = state.engine();
    let r = e.docker()?.list_networks(None::<ListNetworksOptions>).await;
    let mut rows: Vec<NetworkRow> = r
        .map_err(|x| e.err(x))?
        .into_iter()
        .map(|n| {
            let name = n.name.unwrap_or_default();
            let subnet = n
                .ipam
                .and_then(|i| i.config)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|c| c.subnet)
                .collect::<Vec<_>>()
                .join(", ");
            NetworkRow {
                id: n.id.unwrap_or_default(),
                builtin: matches!(name.as_str(), "bridge" | "host" | "none"),
                name,
                driver: n.driver.unwrap_or_default(),
                subnet,
            }
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

/// Creates a bridge network; returns its id.
#[tauri::command]
pub async fn networks_create(state: State<'_, AppState>, name: String) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(AppError::Invalid("a network name is required".into()));
    }
    let e = state.engine();
    let req = NetworkCreateRequest {
        name: name.to_string(),
        driver: Some("bridge".into()),
        ..Default::default()
    };
    let r = e.docker()?.create_network(req).await;
    Ok(r.map_err(|x| e.err(x))?.id)
}

#[tauri::command]
pub async fn networks_remove(state: State<'_, AppState>, id: String) -> Result<()> {
    let e = state.engine();
    let r = e.docker()?.remove_network(&id).await;
    r.map_err(|x| e.err(x))
}
