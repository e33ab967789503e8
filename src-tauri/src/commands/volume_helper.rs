//! The helper container through which the app reaches a volume's files.
//!
//! The Docker API has no call for a volume's contents; what the docker CLI does, and what this
//! module does, is `docker create -v VOLUME:/volume IMAGE` (a container that is never started)
//! and `docker cp` to and from it (`GET`/`PUT /containers/{id}/archive`). Berth's engine serves
//! the archive API for containers that never ran (it mounts their volumes in a private view),
//! so nothing runs and no image with a shell is needed: the helper's image is an empty one the
//! app imports once (`docker import` of an empty tar, [`HELPER_IMAGE`]). Both the image and
//! every helper container carry the label [`HELPER_LABEL`]: the Containers and Images views and
//! a volume's "used by" list leave them out, and [`with_helper`] removes the container
//! afterwards, also when the work failed.
//!
//! One helper per volume: a helper whose archive is being read holds the engine's lock of that
//! container, so a copy from one volume to another (clone) reads through one helper and writes
//! through a second.

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptions, RemoveContainerOptionsBuilder,
};
use futures::{Future, TryStreamExt};
use tracing::Instrument;

use crate::engine::Engine;
use crate::error::{AppError, Result};

/// The label (key) on the helper image and containers; its value says what for.
pub const HELPER_LABEL: &str = "dev.berth.helper";
/// The empty image helpers are made from.
pub const HELPER_IMAGE: &str = "berth/volume-helper:1";
/// Where a helper mounts its volume.
pub const MOUNT: &str = "/volume";

/// Whether a container's or image's labels mark it as one of the app's helpers.
pub fn is_helper(labels: Option<&std::collections::HashMap<String, String>>) -> bool {
    labels.is_some_and(|l| l.contains_key(HELPER_LABEL))
}

/// Imports [`HELPER_IMAGE`] (an empty tar, as `docker import`) unless the engine has it.
async fn ensure_image(e: &Engine) -> Result<()> {
    let docker = e.docker()?;
    if docker.inspect_image(HELPER_IMAGE).await.is_ok() {
        return Ok(());
    }
    let (repo, tag) = HELPER_IMAGE.split_once(':').expect("a tagged reference");
    let opts = CreateImageOptions {
        from_src: Some("-".into()),
        repo: Some(repo.into()),
        tag: Some(tag.into()),
        changes: vec![format!("LABEL {HELPER_LABEL}=volume")],
        message: Some("Berth: empty image for volume helper containers".into()),
        ..Default::default()
    };
    let empty_tar = tar::Builder::new(Vec::new())
        .into_inner()
        .map_err(|x| AppError::Client(format!("making an empty tar: {x}")))?;
    docker
        .create_image(Some(opts), Some(bollard::body_full(empty_tar.into())), None)
        .try_collect::<Vec<_>>()
        .await
        .map_err(|x| e.err(x))?;
    tracing::info!(image = HELPER_IMAGE, "volume helper image imported");
    Ok(())
}

/// Creates (never starts) a helper mounting `volume` at [`MOUNT`]; returns its id. The
/// volume must exist: it is inspected first, so a missing one is Docker's `404` here instead
/// of being created by the mount.
async fn create(e: &Engine, volume: &str, read_only: bool) -> Result<String> {
    let docker = e.docker()?;
    docker.inspect_volume(volume).await.map_err(|x| e.err(x))?;
    ensure_image(e).await?;
    let mode = if read_only { ":ro" } else { "" };
    let body = ContainerCreateBody {
        image: Some(HELPER_IMAGE.into()),
        cmd: Some(vec!["/never-started".into()]),
        labels: Some([(HELPER_LABEL.to_string(), "volume".to_string())].into()),
        network_disabled: Some(true),
        host_config: Some(HostConfig {
            binds: Some(vec![format!("{volume}:{MOUNT}{mode}")]),
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let opts = CreateContainerOptionsBuilder::default().build();
    let r = docker.create_container(Some(opts), body).await;
    Ok(r.map_err(|x| e.err(x))?.id)
}

/// Removes a helper (never its volume).
async fn remove(e: &Engine, id: &str) -> Result<()> {
    let opts = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(false)
        .build();
    let r = e.docker()?.remove_container(id, Some(opts)).await;
    r.map_err(|x| e.err(x))
}

/// Runs `work` with a helper container mounting `volume` (its id given), then removes the
/// helper whatever `work` returned. The first error wins: `work`'s, else the removal's.
pub async fn with_helper<T, F, Fut>(e: &Engine, volume: &str, read_only: bool, work: F) -> Result<T>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let id = create(e, volume, read_only).await?;
    let span = tracing::info_span!("volume_helper", %volume, helper = %id);
    let out = work(id.clone()).instrument(span).await;
    let removed = remove(e, &id).await;
    if let Err(err) = &removed {
        tracing::error!(%volume, helper = %id, %err, "volume helper not removed");
    }
    let v = out?;
    removed?;
    Ok(v)
}

/// The path inside a helper for `path` inside the volume (`/` = the volume itself); `..`
/// is refused (it would leave the volume).
pub fn in_volume(path: &str) -> Result<String> {
    if path.split('/').any(|s| s == "..") {
        return Err(AppError::Invalid(format!(
            "invalid path {path:?}: \"..\" leaves the volume"
        )));
    }
    let rest = path.trim_matches('/');
    Ok(if rest.is_empty() {
        MOUNT.to_string()
    } else {
        format!("{MOUNT}/{rest}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_paths_map_below_the_mount() {
        for (p, want) in [
            ("/", "/volume"),
            ("", "/volume"),
            ("/a/b/", "/volume/a/b"),
            ("a", "/volume/a"),
        ] {
            assert_eq!(in_volume(p).unwrap(), want);
        }
        assert!(in_volume("/a/../../etc").is_err());
    }

    #[test]
    fn helpers_are_told_by_their_label() {
        let mut l = std::collections::HashMap::new();
        assert!(!is_helper(None) && !is_helper(Some(&l)));
        l.insert(HELPER_LABEL.to_string(), "volume".to_string());
        assert!(is_helper(Some(&l)));
    }
}
