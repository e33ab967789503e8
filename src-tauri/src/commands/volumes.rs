//! Volumes: list, create, remove, and the detail pane: size (`/system/df`), the containers
//! using it, its files (browse, view, download, upload), export to a tar (backup), import a tar
//! (restore into a new or an empty volume) and clone.
//!
//! Everything past list/create/remove goes through a helper container
//! ([`super::volume_helper`]) and the archive API, as the docker CLI would:
//!
//! | here | docker CLI |
//! |---|---|
//! | files, download | `docker create --name h -v VOL:/volume berth/volume-helper:1 x; docker cp h:/volume/PATH .` |
//! | upload | `docker cp FILE h:/volume/DIR/` |
//! | export | `docker cp h:/volume/. - > VOL.tar` |
//! | import | `docker volume create NEW; docker cp -a - h:/volume < backup.tar` |
//! | clone | `docker volume create NEW`, then `docker cp h1:/volume/. - \| docker cp -a - h2:/volume` |
//!
//! Archives stream (engine → file, file → engine, engine → engine) and are never held in
//! memory. An import or clone that fails removes the volume it created; one into an existing
//! volume is refused unless that volume is empty, and nothing is written before the archive
//! was read through once and found to be a tar.

use std::path::{Path, PathBuf};

use bollard::models::VolumeCreateRequest;
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListVolumesOptions, RemoveVolumeOptionsBuilder,
};
use serde::Serialize;
use tauri::{AppHandle, State};
use tokio_util::io::ReaderStream;

use super::files::{self, FileView, Listing, SaveAs, Upload};
use super::image_detail::UsedBy;
use super::volume_helper::{in_volume, is_helper, with_helper, MOUNT};
use crate::engine::Engine;
use crate::error::{AppError, Result};
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
    remove(&state.engine(), &name).await
}

async fn remove(e: &Engine, name: &str) -> Result<()> {
    let opts = RemoveVolumeOptionsBuilder::default().force(false).build();
    let r = e.docker()?.remove_volume(name, Some(opts)).await;
    r.map_err(|x| e.err(x))
}

/// What the detail pane shows.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeDetail {
    pub name: String,
    pub driver: String,
    pub mountpoint: String,
    pub created: String,
    pub labels: Vec<(String, String)>,
    /// Bytes as `/system/df` counts them; `None` when the engine did not count.
    pub size: Option<u64>,
    /// The containers mounting it (helpers left out), by name.
    pub containers: Vec<UsedBy>,
}

#[tauri::command]
pub async fn volumes_inspect(state: State<'_, AppState>, name: String) -> Result<VolumeDetail> {
    let e = state.engine();
    let docker = e.docker()?;
    let v = docker.inspect_volume(&name).await.map_err(|x| e.err(x))?;
    let size = berth_host::usage::volume_size(&state.host_endpoint(), &name).await?;
    let filters = std::collections::HashMap::from([("volume", vec![name.clone()])]);
    let opts = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let list = docker.list_containers(Some(opts)).await;
    let mut containers: Vec<UsedBy> = list
        .map_err(|x| e.err(x))?
        .into_iter()
        .filter(|c| !is_helper(c.labels.as_ref()))
        .map(UsedBy::from)
        .collect();
    containers.sort_by(|a, b| a.name.cmp(&b.name));
    let mut labels: Vec<_> = v.labels.into_iter().collect();
    labels.sort();
    Ok(VolumeDetail {
        name: v.name,
        driver: v.driver,
        mountpoint: v.mountpoint,
        created: v.created_at.map(|d| d.to_string()).unwrap_or_default(),
        labels,
        size,
        containers,
    })
}

/// Lists folder `path` (`/` = the top) of volume `volume`.
#[tauri::command]
pub async fn volumes_files_list(
    state: State<'_, AppState>,
    volume: String,
    path: String,
) -> Result<Listing> {
    let engine = state.engine();
    let e = &engine;
    let inner = in_volume(&path)?;
    let inner = &inner;
    let (entries, truncated) = with_helper(e, &volume, true, |id| async move {
        files::list_in(e, &id, inner, files::MAX_ENTRIES).await
    })
    .await?;
    Ok(Listing {
        path,
        entries,
        truncated,
    })
}

/// The start of file `path` of volume `volume`, as text when it is text.
#[tauri::command]
pub async fn volumes_files_read(
    state: State<'_, AppState>,
    volume: String,
    path: String,
) -> Result<FileView> {
    let engine = state.engine();
    let e = &engine;
    let inner = in_volume(&path)?;
    let inner = &inner;
    with_helper(e, &volume, true, |id| async move {
        files::read_in(e, &id, inner).await
    })
    .await
}

/// Saves file `path` of volume `volume` to the Downloads folder (a folder, `dir`, as a tar);
/// returns where.
#[tauri::command]
pub async fn volumes_files_save(
    app: AppHandle,
    state: State<'_, AppState>,
    volume: String,
    path: String,
    dir: bool,
) -> Result<String> {
    let inner = in_volume(&path)?;
    let base = if inner == MOUNT {
        volume.clone()
    } else {
        files::base_name(&inner)
    };
    let (how, name) = if dir {
        (SaveAs::Tar, format!("{base}.tar"))
    } else {
        (SaveAs::File, base)
    };
    let to = save(&app, &state.engine(), &volume, &inner, how, &name).await?;
    Ok(to.display().to_string())
}

async fn save(
    app: &AppHandle,
    e: &Engine,
    volume: &str,
    inner: &str,
    how: SaveAs,
    name: &str,
) -> Result<PathBuf> {
    with_helper(e, volume, true, |id| async move {
        files::save_from(app, e, &id, inner, how, name).await
    })
    .await
}

/// Uploads one file into a folder of a volume (headers: `x-berth-volume`, see [`Upload`]).
#[tauri::command]
pub async fn volumes_files_upload(
    state: State<'_, AppState>,
    request: tauri::ipc::Request<'_>,
) -> Result<()> {
    let u = Upload::from_request(&request, "x-berth-volume")?;
    let engine = state.engine();
    let e = &engine;
    let dir = in_volume(&u.dir)?;
    let (dir, name, data) = (&dir, &u.name, u.data);
    with_helper(e, &u.target, false, |id| async move {
        files::put_file(e, &id, dir, name, data).await
    })
    .await
}

/// Uploads host files and folders (dropped on the browser) into folder `dir` of a volume.
#[tauri::command]
pub async fn volumes_files_upload_paths(
    state: State<'_, AppState>,
    volume: String,
    dir: String,
    paths: Vec<PathBuf>,
) -> Result<()> {
    let engine = state.engine();
    let e = &engine;
    let dir = in_volume(&dir)?;
    let (dir, paths) = (&dir, &paths);
    with_helper(e, &volume, false, |id| async move {
        files::put_paths(e, &id, dir, paths).await
    })
    .await
}

/// Exports volume `volume` to `<volume>.tar` in the Downloads folder (entries relative to the
/// volume's top, `./…`, as `tar -C /volume -c .` writes them); returns where.
#[tauri::command]
pub async fn volumes_export(
    app: AppHandle,
    state: State<'_, AppState>,
    volume: String,
) -> Result<String> {
    let e = state.engine();
    let top = format!("{MOUNT}/.");
    let to = save(
        &app,
        &e,
        &volume,
        &top,
        SaveAs::Tar,
        &format!("{volume}.tar"),
    )
    .await?;
    tracing::info!(%volume, to = %to.display(), "volume exported");
    Ok(to.display().to_string())
}

/// Reads the tar at `path` through once (headers and sizes; a file that is not a tar, or is
/// cut short, fails here, before anything is written).
fn check_tar(path: &Path) -> Result<u64> {
    let bad = |err: std::io::Error| {
        AppError::Invalid(format!("invalid tar archive {}: {err}", path.display()))
    };
    let f = std::fs::File::open(path).map_err(|err| AppError::Io {
        path: path.display().to_string(),
        err,
    })?;
    if f.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
        return Err(AppError::Invalid(format!(
            "invalid tar archive {}: the file is empty",
            path.display()
        )));
    }
    let mut ar = tar::Archive::new(std::io::BufReader::new(f));
    let mut count = 0;
    for entry in ar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        entry.path().map_err(bad)?;
        // Reading the data (instead of skipping it) finds an archive cut short.
        std::io::copy(&mut entry, &mut std::io::sink()).map_err(bad)?;
        count += 1;
    }
    Ok(count)
}

/// Whether volume `name` exists (a `404` is `false`, other errors are errors).
async fn exists(e: &Engine, name: &str) -> Result<bool> {
    match e.docker()?.inspect_volume(name).await.map_err(|x| e.err(x)) {
        Ok(_) => Ok(true),
        Err(AppError::Docker { status: 404, .. }) => Ok(false),
        Err(x) => Err(x),
    }
}

/// Creates volume `name` (with `driver`) for an import or a clone; it must not exist yet
/// (the create call alone would return an existing volume as if made).
async fn create_new(e: &Engine, name: &str, driver: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(AppError::Invalid("a volume name is required".into()));
    }
    let req = VolumeCreateRequest {
        name: Some(name.into()),
        driver: Some(driver.into()),
        ..Default::default()
    };
    e.docker()?.create_volume(req).await.map_err(|x| e.err(x))?;
    Ok(())
}

/// Runs `fill` on the volume `name` that was just created; when it fails, the volume goes
/// again (never half-filled).
async fn fill_new<F>(e: &Engine, name: &str, fill: F) -> Result<()>
where
    F: std::future::Future<Output = Result<()>>,
{
    let r = fill.await;
    if r.is_err() {
        if let Err(err) = remove(e, name).await {
            tracing::error!(volume = %name, %err, "half-made volume not removed");
        }
    }
    r
}

/// Streams the tar at `path` into volume `volume`'s top, owners kept.
async fn restore_into(e: &Engine, id: &str, path: &Path) -> Result<()> {
    let f = tokio::fs::File::open(path)
        .await
        .map_err(|err| AppError::Io {
            path: path.display().to_string(),
            err,
        })?;
    files::put_tar(e, id, MOUNT, true, ReaderStream::new(f)).await
}

/// Imports the tar at `path` (a host file) into volume `volume`: a new volume is created; an
/// existing one must be empty (`conflict` otherwise, nothing written). Returns the volume.
#[tauri::command]
pub async fn volumes_import(
    state: State<'_, AppState>,
    path: String,
    volume: String,
) -> Result<String> {
    let engine = state.engine();
    let e = &engine;
    let volume = volume.trim().to_string();
    let file = PathBuf::from(path.trim());
    let checked = file.clone();
    let (file, name) = (&file, &volume);
    let entries = tokio::task::spawn_blocking(move || check_tar(&checked))
        .await
        .map_err(|x| AppError::Client(x.to_string()))??;
    if exists(e, name).await? {
        with_helper(e, name, false, |id| async move {
            let (top, _) = files::list_in(e, &id, MOUNT, 1).await?;
            if !top.is_empty() {
                return Err(AppError::Conflict(format!(
                    "volume {name} is not empty: import into a new or an empty volume"
                )));
            }
            restore_into(e, &id, file).await
        })
        .await?;
    } else {
        create_new(e, name, "local").await?;
        let fill = with_helper(e, name, false, |id| async move {
            restore_into(e, &id, file).await
        });
        fill_new(e, name, fill).await?;
    }
    tracing::info!(%volume, from = %path, entries, "volume imported");
    Ok(volume)
}

/// Clones volume `source` to a new volume `target` (same driver, every file with its owner
/// and mode); `target` must not exist. Returns `target`.
#[tauri::command]
pub async fn volumes_clone(
    state: State<'_, AppState>,
    source: String,
    target: String,
) -> Result<String> {
    let engine = state.engine();
    let e = &engine;
    let target = target.trim().to_string();
    let src = e
        .docker()?
        .inspect_volume(&source)
        .await
        .map_err(|x| e.err(x))?;
    if exists(e, &target).await? {
        return Err(AppError::Conflict(format!(
            "volume {target} already exists: choose a new name for the clone"
        )));
    }
    create_new(e, &target, &src.driver).await?;
    let to_volume = &target;
    let copy = with_helper(e, &source, true, |from| async move {
        with_helper(e, to_volume, false, |to| async move {
            let tar = files::archive(e, &from, &format!("{MOUNT}/.")).await?;
            files::put_tar(e, &to, MOUNT, true, tar).await
        })
        .await
    });
    fill_new(e, &target, copy).await?;
    tracing::info!(%source, %target, "volume cloned");
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_tars_pass_the_check() {
        let d = tempfile::tempdir().unwrap();
        let tar = files::tar_of_file("a.txt", &[7u8; 3000], 0).unwrap();
        let good = d.path().join("good.tar");
        std::fs::write(&good, &tar).unwrap();
        assert_eq!(check_tar(&good).unwrap(), 1);
        let cut = d.path().join("cut.tar");
        std::fs::write(&cut, &tar[..1500]).unwrap();
        let text = d.path().join("notes.txt");
        std::fs::write(&text, "just some text, not an archive\n".repeat(40)).unwrap();
        let empty = d.path().join("empty.tar");
        std::fs::write(&empty, "").unwrap();
        for bad in [&cut, &text, &empty] {
            let err = check_tar(bad).unwrap_err();
            assert!(
                matches!(err, AppError::Invalid(_))
                    && err.to_string().starts_with("invalid tar archive"),
                "{bad:?}: {err}"
            );
        }
    }
}
