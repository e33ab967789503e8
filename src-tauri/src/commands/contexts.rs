//! Settings › Docker context: the docker CLI's contexts as the CLI stores them
//! (`berth_host::docker_context`: `$DOCKER_CONFIG` or `~/.docker`), switching the current one
//! (what `docker context use` writes) and creating the `berth` context (what `berth start`
//! does) pointing at this Berth home's socket.

use berth_host::docker_context::{ContextStore, DockerContext};
use serde::Serialize;
use tauri::State;

use crate::error::Result;
use crate::state::AppState;

/// The context Berth creates.
const BERTH: &str = "berth";

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextsView {
    /// The docker CLI config dir read.
    pub dir: String,
    pub contexts: Vec<DockerContext>,
    pub current: String,
    /// An environment variable of the app that overrides the current context for CLIs started
    /// with the same environment (`DOCKER_CONTEXT`, `DOCKER_HOST`).
    pub overridden_by: Option<String>,
    /// The endpoint the `berth` context should have.
    pub berth_host: String,
}

fn overridden_by() -> Option<String> {
    ["DOCKER_CONTEXT", "DOCKER_HOST"]
        .into_iter()
        .find(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
        .map(str::to_string)
}

fn view(store: &ContextStore, berth: &berth_host::StateDir) -> Result<ContextsView> {
    Ok(ContextsView {
        dir: store.dir().display().to_string(),
        contexts: store.list()?,
        current: store.current()?,
        overridden_by: overridden_by(),
        berth_host: berth.docker_endpoint().url(),
    })
}

#[tauri::command]
pub fn contexts_list(state: State<'_, AppState>) -> Result<ContextsView> {
    view(&ContextStore::from_env(), &state.berth)
}

/// Makes `name` the docker CLI's current context (`not_found` for one that does not exist).
#[tauri::command]
pub fn contexts_use(state: State<'_, AppState>, name: String) -> Result<ContextsView> {
    let store = ContextStore::from_env();
    store.use_context(&name)?;
    view(&store, &state.berth)
}

/// Creates the `berth` context (or points it at this home's socket again).
#[tauri::command]
pub fn contexts_create_berth(state: State<'_, AppState>) -> Result<ContextsView> {
    let store = ContextStore::from_env();
    let host = state.berth.docker_endpoint().url();
    let done = store.ensure(BERTH, &host, "Berth's VM")?;
    tracing::info!(?done, host, "berth docker context");
    view(&store, &state.berth)
}
