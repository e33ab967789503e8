//! What the terminal's shell picker offers for a container: `sh` and `bash` when the container
//! has them (a stat of the file through the archive API, as `docker cp` would find it: no exec,
//! so it works on containers without a shell), attaching to the container's own TTY when it was
//! started with `-it`, and the debug shell (always).

use bollard::query_parameters::InspectContainerOptions;
use serde::Serialize;
use tauri::State;

use super::files::archive;
use crate::engine::Engine;
use crate::error::{AppError, Result};
use crate::state::AppState;

/// Where each shell may be; the first one found counts.
const SH_PATHS: &[&str] = &["/bin/sh", "/usr/bin/sh"];
const BASH_PATHS: &[&str] = &["/bin/bash", "/usr/bin/bash"];

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShellChoices {
    /// The image the container was made from, as its config names it (the picker remembers
    /// the choice per image).
    pub image: String,
    /// The path of `sh` / `bash` in the container, when it has one.
    pub sh: Option<String>,
    pub bash: Option<String>,
    /// Started with `-it` (a TTY and open stdin): its own terminal can be attached.
    pub attach: bool,
    /// The image the debug shell's sidecar runs.
    pub debug_image: String,
}

/// The first of `paths` that exists in container `id`.
async fn first_present(e: &Engine, id: &str, paths: &[&str]) -> Result<Option<String>> {
    for p in paths {
        // Only the answer's status matters: the body is dropped unread.
        match archive(e, id, p).await {
            Ok(_) => return Ok(Some(p.to_string())),
            Err(AppError::Docker { status: 404, .. }) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(None)
}

/// The shells the picker offers for running container `id`.
#[tauri::command]
pub async fn containers_shells(state: State<'_, AppState>, id: String) -> Result<ShellChoices> {
    let e = state.engine();
    let c = e
        .docker()?
        .inspect_container(&id, None::<InspectContainerOptions>)
        .await
        .map_err(|x| e.err(x))?;
    let config = c.config.unwrap_or_default();
    Ok(ShellChoices {
        image: config.image.unwrap_or_default(),
        sh: first_present(&e, &id, SH_PATHS).await?,
        bash: first_present(&e, &id, BASH_PATHS).await?,
        attach: config.tty == Some(true) && config.open_stdin == Some(true),
        debug_image: state.settings().debug_image(),
    })
}
