//! `images_wasted`: the image detail pane's wasted space ([`crate::wasted`]), computed from the
//! `docker save` stream of the image as it arrives (`GET /images/{id}/get`, read through a
//! blocking bridge by the `tar` crate on a blocking thread).

use futures::TryStreamExt;
use tauri::State;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::error::{AppError, Result};
use crate::state::AppState;
use crate::wasted::{self, WasteReport};

#[tauri::command]
pub async fn images_wasted(state: State<'_, AppState>, id: String) -> Result<WasteReport> {
    let e = state.engine();
    let docker = e.docker()?;
    // Inspect first: an unknown image is Docker's 404, and the layers' diff ids name the rows.
    let inspect = docker.inspect_image(&id).await.map_err(|x| e.err(x))?;
    let own_id = inspect.id.clone().unwrap_or(id);
    let digests = inspect.root_fs.and_then(|r| r.layers).unwrap_or_default();
    let socket = e.clone();
    let bytes = docker
        .export_image(&own_id)
        .map_err(move |x| std::io::Error::other(socket.err(x).to_string()));
    let reader = SyncIoBridge::new(StreamReader::new(bytes));
    let span = tracing::info_span!("wasted", image = %own_id);
    let layers = tokio::task::spawn_blocking(move || span.in_scope(|| wasted::save_layers(reader)))
        .await
        .map_err(|x| AppError::Client(format!("reading the image: {x}")))?
        .map_err(|x| AppError::Client(x.to_string()))?;
    Ok(wasted::report(&layers, &digests))
}
