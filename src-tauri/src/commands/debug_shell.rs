//! The debug shell: a shell for containers that have none (an image of one static binary), as
//! `docker run --rm -it --pid container:X --network container:X busybox` would give. A sidecar
//! container of the debug image (Settings; `busybox:latest` by default, pulled with progress when
//! missing) joins the target's PID and network namespaces; its shell starts in the target's
//! root through `/proc/1/root`, with the debug image's own tools first on `PATH`.
//!
//! The sidecar belongs to the terminal session: it is removed when the terminal closes (tab
//! change, page reload, quit: the session's cleanup) or when its shell ends (`AutoRemove`). It
//! carries [`DEBUG_LABEL`], so one left by a crashed app is removed at the next page load
//! ([`remove_leftover_sidecars`]).

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, RemoveContainerOptionsBuilder,
    StartContainerOptions,
};
use tauri::ipc::Channel;
use tauri::State;

use super::exec::{attach_tty, first_resize, spawn_session, TERMINAL_ENV};
use super::images::{pull_with_progress, split_reference};
use crate::engine::Engine;
use crate::error::{AppError, Result};
use crate::state::AppState;
use crate::streams::{StreamEvent, StreamId};

/// The label on every sidecar; its value is the target container's id.
pub const DEBUG_LABEL: &str = "dev.berth.debug-shell.target";

/// The debug image when Settings name none.
pub const DEFAULT_DEBUG_IMAGE: &str = "busybox:latest";

/// The sidecar's shell: into the target's root, then an interactive shell there.
const SHELL_SCRIPT: &str = "cd /proc/1/root || echo \"berth: cannot enter the container's root at /proc/1/root\" >&2; exec sh";

/// The debug image's tools first, then the target's own (usable when they are static).
const DEBUG_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:\
/proc/1/root/usr/local/bin:/proc/1/root/usr/bin:/proc/1/root/bin";

/// The sidecar's create body for `target` (an id) from `image`: in the target's PID and
/// network namespaces.
pub fn sidecar_body(target: &str, image: &str) -> ContainerCreateBody {
    let env = TERMINAL_ENV
        .iter()
        .map(|v| v.to_string())
        .chain([DEBUG_PATH.to_string()])
        .collect();
    ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(vec!["sh".into(), "-c".into(), SHELL_SCRIPT.into()]),
        entrypoint: Some(vec![]),
        env: Some(env),
        tty: Some(true),
        open_stdin: Some(true),
        stdin_once: Some(true),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        labels: Some(HashMap::from([(
            DEBUG_LABEL.to_string(),
            target.to_string(),
        )])),
        host_config: Some(HostConfig {
            pid_mode: Some(format!("container:{target}")),
            network_mode: Some(format!("container:{target}")),
            auto_remove: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Force-removes container `id`; one already gone (its `AutoRemove`) is not an error.
async fn remove_sidecar(e: &Engine, id: &str) {
    let opts = RemoveContainerOptionsBuilder::default().force(true).build();
    let r = match e.docker() {
        Ok(d) => d
            .remove_container(id, Some(opts))
            .await
            .map_err(|x| e.err(x)),
        Err(err) => Err(err),
    };
    match r {
        Ok(()) => tracing::debug!(id, "debug sidecar removed"),
        Err(AppError::Docker { status: 404, .. }) => {}
        // `removal of container … is already in progress` (its AutoRemove).
        Err(AppError::Docker { status: 409, .. }) => {}
        Err(err) => tracing::warn!(id, error = %err, "removing a debug sidecar"),
    }
}

/// Pulls `image` when the engine does not have it, its progress sent on `channel`.
async fn ensure_image(e: &Engine, image: &str, channel: &Channel<StreamEvent>) -> Result<()> {
    match e.docker()?.inspect_image(image).await {
        Ok(_) => return Ok(()),
        Err(x) => match e.err(x) {
            AppError::Docker { status: 404, .. } => {}
            other => return Err(other),
        },
    }
    let (name, tag) = split_reference(image)?;
    pull_with_progress(e, &name, &tag, |ev| {
        let _ = channel.send(ev);
    })
    .await
}

/// Creates and starts the sidecar in the target's network namespace, attached. Returns the
/// sidecar's id and its connected TTY.
async fn start_sidecar(e: &Engine, target: &str, image: &str) -> Result<super::exec::Attached> {
    let docker = e.docker()?;
    let body = sidecar_body(target, image);
    let created = docker
        .create_container(None::<CreateContainerOptions>, body)
        .await
        .map_err(|x| e.err(x))?;
    let id = created.id;
    let engine = e.clone();
    let sidecar = id.clone();
    let cleanup = Box::pin(async move { remove_sidecar(&engine, &sidecar).await });
    let attached = match attach_tty(e, &id, true, Some(cleanup)).await {
        Ok(a) => a,
        Err(err) => {
            remove_sidecar(e, &id).await;
            return Err(err);
        }
    };
    let started = docker
        .start_container(&id, None::<StartContainerOptions>)
        .await
        .map_err(|x| e.err(x));
    if let Err(err) = started {
        remove_sidecar(e, &id).await;
        return Err(err);
    }
    tracing::info!(target, sidecar = %id, "debug shell started");
    Ok(attached)
}

/// Opens a debug shell on running container `id` (see the module comment); resolves once the
/// sidecar's shell runs and its TTY is attached and sized. The stream's `progress` events are
/// the debug image's pull, when it was missing.
#[tauri::command]
pub async fn containers_debug_shell(
    state: State<'_, AppState>,
    id: String,
    cols: Option<u16>,
    rows: Option<u16>,
    channel: Channel<StreamEvent>,
) -> Result<StreamId> {
    let e = state.engine();
    let image = state.settings().debug_image();
    let target = e
        .docker()?
        .inspect_container(&id, None::<InspectContainerOptions>)
        .await
        .map_err(|x| e.err(x))?
        .id
        .unwrap_or(id);
    ensure_image(&e, &image, &channel).await?;
    let session = start_sidecar(&e, &target, &image).await?;
    first_resize(&e, &session.tty, cols, rows).await;
    Ok(spawn_session(&state, channel, session, |_| async {
        Ok(())
    }))
}

/// Removes every sidecar still there (an app that crashed left it): called at page load, once
/// the previous page's sessions were ended.
pub async fn remove_leftover_sidecars(e: &Engine) -> Result<()> {
    let left = super::compose::labelled_containers(e, DEBUG_LABEL.to_string()).await?;
    for c in left {
        if let Some(id) = c.id {
            tracing::info!(%id, "removing a debug sidecar left behind");
            remove_sidecar(e, &id).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sidecar_joins_the_target_and_removes_itself() {
        let b = sidecar_body("abc", "busybox:latest");
        let host = b.host_config.unwrap();
        assert_eq!(host.pid_mode.as_deref(), Some("container:abc"));
        assert_eq!(host.network_mode.as_deref(), Some("container:abc"));
        assert_eq!(host.auto_remove, Some(true));
        assert_eq!(b.labels.unwrap()[DEBUG_LABEL], "abc");
        assert_eq!(b.tty, Some(true));
        assert_eq!(b.open_stdin, Some(true));
        let cmd = b.cmd.unwrap();
        assert_eq!(cmd[..2], ["sh", "-c"]);
        assert!(cmd[2].starts_with("cd /proc/1/root "), "{}", cmd[2]);
        let env = b.env.unwrap();
        assert!(env.iter().any(|v| v == "TERM=xterm-256color"));
        let path = env.iter().find(|v| v.starts_with("PATH=")).unwrap();
        assert!(
            path.starts_with("PATH=/usr/local/sbin:"),
            "the image's tools first"
        );
    }
}
