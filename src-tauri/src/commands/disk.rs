//! Disk and clean-up: the engine's `system df` per kind (what `docker system df` shows), a prune
//! per kind (what `docker container|image|volume|builder prune` do) reporting what it freed as
//! the engine's accounting saw it before and after, and Berth's VM data disk on the host with
//! `berth disk compact` (trim online, or rewrite the qcow2 when the VM is stopped).

use std::collections::HashMap;

use berth_host::usage::{Category, EngineUsage};
use bollard::query_parameters::{
    PruneBuildOptionsBuilder, PruneContainersOptions, PruneImagesOptionsBuilder,
    PruneVolumesOptionsBuilder,
};
use serde::{Deserialize, Serialize};
use tauri::State;

use crate::engine::socket::SocketSource;
use crate::error::{AppError, Result};
use crate::state::AppState;

/// The kinds `system df` counts and a prune removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Images,
    Containers,
    Volumes,
    BuildCache,
}

impl Kind {
    fn of(self, u: &EngineUsage) -> Category {
        match self {
            Self::Images => u.images,
            Self::Containers => u.containers,
            Self::Volumes => u.volumes,
            Self::BuildCache => u.build_cache,
        }
    }
}

/// Berth's data disk as the Disk view shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VmDisk {
    pub path: String,
    /// `qemu-img info`: virtual size and what it takes on the host.
    pub image: Option<berth_host::disk::ImageSize>,
    /// The guest's data filesystem (VM running): total and available bytes.
    pub guest: Option<GuestFs>,
    /// Why "compact" cannot run here, or `None` when it can.
    pub compact_unavailable: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GuestFs {
    pub total_bytes: u64,
    pub available_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiskView {
    /// The engine's accounting, or why it could not be read.
    pub engine: Option<EngineUsage>,
    pub engine_error: Option<String>,
    pub vm: VmDisk,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneResult {
    pub kind: Kind,
    /// What `system df` counted as reclaimable before the prune.
    pub expected: u64,
    /// How much the kind's bytes went down (`system df` before minus after).
    pub freed: u64,
    /// What the engine itself reported (`SpaceReclaimed`; 0 when it does not count).
    pub engine_reported: u64,
    pub deleted: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompactResult {
    pub before: u64,
    pub after: u64,
}

async fn engine_usage(state: &AppState) -> Result<EngineUsage> {
    Ok(berth_host::usage::engine_usage(&state.host_endpoint()).await?)
}

/// Why compaction cannot run, given whether the data disk exists and where the app points.
pub fn compact_unavailable(
    disk: &std::path::Path,
    exists: bool,
    source: SocketSource,
    socket: &std::path::Path,
) -> Option<String> {
    if exists {
        return None;
    }
    Some(if source == SocketSource::BerthVm {
        format!(
            "No VM data disk at {} yet: Berth's VM has never started.",
            disk.display()
        )
    } else {
        format!(
            "No Berth VM here: the app uses the engine at {} and there is no VM data disk at {}.",
            socket.display(),
            disk.display()
        )
    })
}

async fn vm_disk(state: &AppState) -> VmDisk {
    let disk = state.berth.data_disk();
    let exists = disk.exists();
    let running = crate::commands::vm::read_status(&state.berth).state == "running";
    let usage = if exists {
        berth_host::usage::read(&state.berth, running).await
    } else {
        Default::default()
    };
    let socket = state.engine().socket().clone();
    VmDisk {
        path: disk.display().to_string(),
        image: usage.image,
        guest: usage.guest.map(|g| GuestFs {
            total_bytes: g.total_bytes,
            available_bytes: g.available_bytes,
        }),
        compact_unavailable: compact_unavailable(&disk, exists, socket.source, &socket.path),
    }
}

#[tauri::command]
pub async fn disk_usage(state: State<'_, AppState>) -> Result<DiskView> {
    let (engine, engine_error) = match engine_usage(&state).await {
        Ok(u) => (Some(u), None),
        Err(e) => (None, Some(e.to_string())),
    };
    Ok(DiskView {
        engine,
        engine_error,
        vm: vm_disk(&state).await,
    })
}

/// Prunes one kind as the docker CLI's `prune` with `--all` does (every unused image, named
/// volumes too, all idle build cache); reports what `system df` saw go.
#[tauri::command]
pub async fn disk_prune(state: State<'_, AppState>, kind: Kind) -> Result<PruneResult> {
    let before = kind.of(&engine_usage(&state).await?);
    let e = state.engine();
    let docker = e.docker()?;
    tracing::info!(?kind, expected = before.reclaimable, "prune");
    let (reported, deleted) = match kind {
        Kind::Containers => {
            let r = docker
                .prune_containers(None::<PruneContainersOptions>)
                .await
                .map_err(|x| e.err(x))?;
            (
                r.space_reclaimed,
                r.containers_deleted.map_or(0, |d| d.len()),
            )
        }
        Kind::Images => {
            let filters = HashMap::from([("dangling", vec!["false"])]);
            let opts = PruneImagesOptionsBuilder::new().filters(&filters).build();
            let r = docker
                .prune_images(Some(opts))
                .await
                .map_err(|x| e.err(x))?;
            (r.space_reclaimed, r.images_deleted.map_or(0, |d| d.len()))
        }
        Kind::Volumes => {
            let filters = HashMap::from([("all", vec!["true"])]);
            let opts = PruneVolumesOptionsBuilder::new().filters(&filters).build();
            let r = docker
                .prune_volumes(Some(opts))
                .await
                .map_err(|x| e.err(x))?;
            (r.space_reclaimed, r.volumes_deleted.map_or(0, |d| d.len()))
        }
        Kind::BuildCache => {
            let opts = PruneBuildOptionsBuilder::new().all(true).build();
            let r = docker.prune_build(Some(opts)).await.map_err(|x| e.err(x))?;
            (r.space_reclaimed, r.caches_deleted.map_or(0, |d| d.len()))
        }
    };
    let after = kind.of(&engine_usage(&state).await?);
    Ok(PruneResult {
        kind,
        expected: before.reclaimable,
        freed: before.bytes.saturating_sub(after.bytes),
        engine_reported: reported.and_then(|r| u64::try_from(r).ok()).unwrap_or(0),
        deleted,
    })
}

/// Compacts the VM's data disk (`berth disk compact`); returns its size on the host before and
/// after.
#[tauri::command]
pub async fn disk_compact(state: State<'_, AppState>) -> Result<CompactResult> {
    let disk = state.berth.data_disk();
    let socket = state.engine().socket().clone();
    if let Some(why) = compact_unavailable(&disk, disk.exists(), socket.source, &socket.path) {
        return Err(AppError::Invalid(why));
    }
    let size = || berth_host::disk::allocated_bytes(&disk).map_err(AppError::from);
    let before = size()?;
    crate::commands::vm::run_cli(
        &state.berth,
        &["disk", "compact"],
        std::time::Duration::from_secs(600),
    )
    .await?;
    Ok(CompactResult {
        before,
        after: size()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn compaction_says_why_it_cannot_run() {
        let disk = Path::new("/h/.berth/disk/data.qcow2");
        let sock = Path::new("/tmp/engine.sock");
        assert_eq!(
            compact_unavailable(disk, true, SocketSource::BerthDockerHost, sock),
            None
        );
        let other = compact_unavailable(disk, false, SocketSource::BerthDockerHost, sock).unwrap();
        assert!(
            other.contains("/tmp/engine.sock") && other.contains("No Berth VM"),
            "{other}"
        );
        let never = compact_unavailable(disk, false, SocketSource::BerthVm, sock).unwrap();
        assert!(never.contains("never started"), "{never}");
    }

    #[test]
    fn kinds_read_their_category() {
        let u = EngineUsage {
            volumes: Category {
                count: 2,
                bytes: 10,
                reclaimable: 4,
            },
            ..Default::default()
        };
        assert_eq!(Kind::Volumes.of(&u).reclaimable, 4);
        assert_eq!(Kind::Images.of(&u).bytes, 0);
        let k: Kind = serde_json::from_str("\"build_cache\"").unwrap();
        assert_eq!(k, Kind::BuildCache);
    }
}
