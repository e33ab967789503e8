//! `docker rm` and `docker container prune`.

use std::sync::Arc;
use std::time::Duration;

use berth_docker_api::container::ContainersPruneReport;

use super::record::Stored;
use super::{Container, Svc};
use crate::{EngineError, Result};

impl Svc {
    /// `DELETE /containers/{id}`.
    #[tracing::instrument(name = "container_remove", skip_all, fields(id = %key))]
    pub async fn remove(self: &Arc<Self>, key: &str, force: bool, volumes: bool) -> Result<()> {
        let c = self.get(key)?;
        let _op = c.op.lock().await;
        if c.status.borrow().removed {
            return Err(EngineError::not_found(format!("No such container: {key}")));
        }
        let s = c.snapshot();
        if s.state.state.restarting && !force {
            return Err(EngineError::conflict(format!(
                "You cannot remove a restarting container {}. Stop the container before attempting removal or force remove",
                c.id
            )));
        }
        if s.state.state.running {
            if !force {
                let what = if s.state.state.paused {
                    "paused"
                } else {
                    "running"
                };
                return Err(EngineError::conflict(format!(
                    "cannot remove container \"/{}\": container is {what}: stop the container before removing or force remove",
                    s.record.name
                )));
            }
            self.kill_for_remove(&c, s.state.state.paused).await?;
        }
        self.release_all(&c, &s).await?;
        self.forget(&c.id);
        self.execs.forget_container(&c.id);
        self.remove_files(&c).await;
        if volumes {
            for v in &s.record.anonymous_volumes {
                if self.volume_users(v).is_empty() {
                    if let Err(e) = self.volumes.remove(v) {
                        // dockerd does not fail `rm -v` over a volume it cannot remove.
                        tracing::warn!(volume = %v, error = %e, "anonymous volume kept");
                    }
                }
            }
        }
        self.publish(&c, "destroy", &[]);
        c.status.send_modify(|st| st.removed = true);
        // Its monitor, health checks and restart timer have nothing left to do.
        c.tasks.cancel();
        Ok(())
    }

    /// `rm -f` of a running container: SIGKILL (and thaw if paused), then wait for the exit.
    async fn kill_for_remove(&self, c: &Arc<Container>, paused: bool) -> Result<()> {
        c.update(&self.paths(&c.id), |st| st.state.manually_stopped = true)?;
        let mut rx = c.subscribe();
        // Already gone is fine: the wait below is what matters.
        let _ = self
            .runtime_call(c, |rt, id| rt.kill(id, libc::SIGKILL, true))
            .await;
        if paused {
            let _ = self.runtime_call(c, |rt, id| rt.resume(id)).await;
        }
        if !Self::wait_stopped(&mut rx, Duration::from_secs(15)).await {
            return Err(EngineError::internal(format!(
                "could not kill running container {}, cannot remove",
                c.id
            )));
        }
        Ok(())
    }

    /// Releases what the container holds: its rootfs mount, its network endpoints, and the
    /// runtime state a shim that died left behind.
    async fn release_all(&self, c: &Container, s: &Stored) -> Result<()> {
        let (rootfs, mounter) = (self.paths(&c.id).rootfs(), self.mounter.clone());
        tokio::task::spawn_blocking(move || mounter.unmount(&rootfs))
            .await
            .map_err(super::start::join_error)?;
        // `docker rm` returns with the endpoint released (`network rm` may follow at once).
        c.detached().await;
        if let Some(att) = c.snapshot().attachment {
            if let Err(e) = self.networks.detach(&c.id, &att).await {
                tracing::warn!(id = %c.id, error = %e, "network detach at remove failed");
            }
        }
        // The shim deletes the runtime's container when it exits (a shim still answering is
        // doing so now); only leftovers of a shim that died need it.
        let rt_spec = self.runtime_spec(&s.host.runtime)?;
        if tokio::fs::try_exists(rt_spec.root.join(&c.id)).await? && !self.shim(&c.id).alive().await
        {
            let rt = self.runtime(&rt_spec);
            let id = c.id.clone();
            let r = tokio::task::spawn_blocking(move || rt.delete(&id, true))
                .await
                .map_err(super::start::join_error)?;
            if let Err(e) = r {
                tracing::warn!(id = %c.id, error = %e, "runtime leftovers not deleted");
            }
        }
        Ok(())
    }

    /// Takes the container's directory out of the store (a rename), then deletes it in the
    /// background; `restore` empties leftovers after a crash.
    async fn remove_files(&self, c: &Container) {
        let dir = self.paths(&c.id).dir;
        let trash = self
            .config
            .data_root
            .join("containers")
            .join(format!(".rm-{}", c.id));
        match tokio::fs::rename(&dir, &trash).await {
            Ok(()) => {
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = std::fs::remove_dir_all(&trash) {
                        tracing::warn!(dir = %trash.display(), error = %e, "removed container's files left");
                    }
                });
            }
            Err(e) => tracing::warn!(id = %c.id, error = %e, "container directory not renamed"),
        }
    }

    /// `POST /containers/prune`: removes stopped containers; returns their ids and the size
    /// of their writable layers.
    pub async fn prune(self: &Arc<Self>, labels: &[String]) -> Result<ContainersPruneReport> {
        let mut deleted = vec![];
        let mut reclaimed: u64 = 0;
        for c in self.all() {
            let s = c.snapshot();
            if s.state.state.running || !super::view::labels_match(&s, labels) {
                continue;
            }
            let upper = self.paths(&c.id).upper();
            let size = tokio::task::spawn_blocking(move || crate::fsutil::dir_size(&upper))
                .await
                .unwrap_or(0);
            if self.remove(&c.id, false, false).await.is_ok() {
                deleted.push(c.id.clone());
                reclaimed += size;
            }
        }
        Ok(ContainersPruneReport {
            containers_deleted: (!deleted.is_empty()).then_some(deleted),
            space_reclaimed: i64::try_from(reclaimed).unwrap_or(i64::MAX),
        })
    }
}
