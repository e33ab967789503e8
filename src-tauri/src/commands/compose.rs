//! Compose projects as the Containers view groups them: start, stop or remove every container
//! labelled `com.docker.compose.project=<project>`, as `docker compose start|stop|rm -fs` do.

use std::collections::HashMap;

use bollard::query_parameters::{
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, StartContainerOptions,
    StopContainerOptions,
};
use tauri::State;

use crate::engine::Engine;
use crate::error::Result;
use crate::state::AppState;

/// Label compose puts on every container of a project.
pub const PROJECT_LABEL: &str = "com.docker.compose.project";

/// Ids of the project's containers, with whether each is running.
async fn project_containers(e: &Engine, project: &str) -> Result<Vec<(String, bool)>> {
    let filters = HashMap::from([("label", vec![format!("{PROJECT_LABEL}={project}")])]);
    let opts = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let list = e.docker()?.list_containers(Some(opts)).await;
    Ok(list
        .map_err(|x| e.err(x))?
        .into_iter()
        .filter_map(|c| {
            let running = c.state.is_some_and(|s| s.to_string() == "running");
            Some((c.id?, running))
        })
        .collect())
}

#[tauri::command]
pub async fn compose_start(state: State<'_, AppState>, project: String) -> Result<()> {
    let e = state.engine();
    let stopped = project_containers(&e, &project).await?;
    for (id, _) in stopped.into_iter().filter(|(_, running)| !running) {
        let r = e
            .docker()?
            .start_container(&id, None::<StartContainerOptions>)
            .await;
        r.map_err(|x| e.err(x))?;
    }
    Ok(())
}

#[tauri::command]
pub async fn compose_stop(state: State<'_, AppState>, project: String) -> Result<()> {
    let e = state.engine();
    let running = project_containers(&e, &project).await?;
    for (id, _) in running.into_iter().filter(|(_, running)| *running) {
        let r = e
            .docker()?
            .stop_container(&id, None::<StopContainerOptions>)
            .await;
        r.map_err(|x| e.err(x))?;
    }
    Ok(())
}

/// Removes every container of the project, running ones too (its volumes and networks stay,
/// as with `docker compose rm -fs`).
#[tauri::command]
pub async fn compose_remove(state: State<'_, AppState>, project: String) -> Result<()> {
    let e = state.engine();
    let opts = RemoveContainerOptionsBuilder::default().force(true).build();
    for (id, _) in project_containers(&e, &project).await? {
        let r = e.docker()?.remove_container(&id, Some(opts.clone())).await;
        r.map_err(|x| e.err(x))?;
    }
    Ok(())
}
