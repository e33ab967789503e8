//! Compose projects as the Containers view groups them: start, stop or remove every container
//! labelled `com.docker.compose.project=<project>`, as `docker compose start|stop|rm -fs` do.

use std::collections::HashMap;

use bollard::query_parameters::{
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, StartContainerOptions,
    StopContainerOptions,
};
use tauri::State;

use crate::engine::Engine;
use crate::error::{ErrorCode, Result};
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

/// Runs `action` on every id at once (as `docker compose` does per service); the first error
/// is returned after all have finished.
async fn each<F, Fut>(ids: Vec<String>, action: F) -> Result<()>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let results = futures::future::join_all(ids.into_iter().map(action)).await;
    results.into_iter().collect()
}

fn ids(list: &[(String, bool)], running: Option<bool>) -> Vec<String> {
    list.iter()
        .filter(|(_, r)| running.is_none_or(|want| *r == want))
        .map(|(id, _)| id.clone())
        .collect()
}

/// Stops a container; one that stopped meanwhile (304) is fine.
async fn stop(e: &Engine, id: String) -> Result<()> {
    let r = e
        .docker()?
        .stop_container(&id, None::<StopContainerOptions>)
        .await;
    match r.map_err(|x| e.err(x)) {
        Err(err) if err.code() == ErrorCode::NotModified => Ok(()),
        other => other,
    }
}

#[tauri::command]
pub async fn compose_start(state: State<'_, AppState>, project: String) -> Result<()> {
    let e = state.engine();
    let list = project_containers(&e, &project).await?;
    let e = &e;
    each(ids(&list, Some(false)), |id| async move {
        let r = e
            .docker()?
            .start_container(&id, None::<StartContainerOptions>)
            .await;
        r.map_err(|x| e.err(x))
    })
    .await
}

#[tauri::command]
pub async fn compose_stop(state: State<'_, AppState>, project: String) -> Result<()> {
    let e = state.engine();
    let list = project_containers(&e, &project).await?;
    each(ids(&list, Some(true)), |id| stop(&e, id)).await
}

/// Removes every container of the project: running ones are stopped first (gracefully, all
/// at once), then all are removed, as `docker compose down` does (its volumes and networks
/// stay). The UI asks before calling this.
#[tauri::command]
pub async fn compose_remove(state: State<'_, AppState>, project: String) -> Result<()> {
    let e = state.engine();
    let list = project_containers(&e, &project).await?;
    each(ids(&list, Some(true)), |id| stop(&e, id)).await?;
    let opts = RemoveContainerOptionsBuilder::default().build();
    each(ids(&list, None), |id| {
        let (e, opts) = (&e, opts.clone());
        async move {
            let r = e.docker()?.remove_container(&id, Some(opts)).await;
            r.map_err(|x| e.err(x))
        }
    })
    .await
}
