//! Restore after an engine restart: reload every record, reconnect to the shims of running
//! containers, finish starts the engine died in, and revive restart-policy containers.

use std::sync::Arc;
use std::time::Duration;

use std::collections::HashSet;
use std::path::Path;

use super::record::{Paths, Stored};
use super::{Container, Svc};
use crate::Result;

/// What a container was after its restore.
#[derive(Debug, PartialEq)]
enum Restored {
    /// Monitored as running, or its exit (while the engine was down) handled.
    Running,
    /// Not running, and not being started.
    Stopped,
}

/// A container dockerd restarts when it comes up: `always` or `unless-stopped`, started once,
/// not stopped by the user, not running.
fn should_revive(s: &Stored) -> bool {
    let policy = s.host.restart_policy.name.as_str();
    !s.state.state.running
        && s.state.has_been_started
        && !s.state.manually_stopped
        && (policy == "always" || policy == "unless-stopped")
}

/// Reads every container record under `dir`, emptying what removals and creates cut short
/// left behind (blocking).
fn load_all(data_root: &Path, dir: &Path) -> Result<Vec<Stored>> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(".rm-") {
            if let Err(err) = std::fs::remove_dir_all(e.path()) {
                tracing::warn!(dir = %name, error = %err, "cannot empty a removed container");
            }
            continue;
        }
        let paths = Paths::new(data_root, &name);
        crate::fsutil::remove_interrupted_writes(&paths.dir);
        match Stored::load(&paths) {
            Ok(Some(s)) => out.push(s),
            Ok(None) => {
                // `config.json` is written last at create: a create cut short.
                tracing::info!(id = %name, "removing half-created container");
                if let Err(e) = std::fs::remove_dir_all(&paths.dir) {
                    tracing::warn!(id = %name, error = %e, "cannot remove half-created container");
                }
            }
            Err(e) => tracing::error!(id = %name, error = %e, "skipping unreadable container"),
        }
    }
    Ok(out)
}

impl Svc {
    /// Reloads every container record and reconnects to the shims of running ones.
    pub(crate) async fn restore(self: &Arc<Self>) -> Result<()> {
        let dir = self.config.data_root.join("containers");
        let data_root = self.config.data_root.clone();
        let loaded = tokio::task::spawn_blocking(move || load_all(&data_root, &dir))
            .await
            .map_err(super::start::join_error)??;
        // Containers whose record holds their network; the rest of the network state is
        // released once all are loaded, before the restart-policy starts run.
        let holders: HashSet<String> = loaded
            .iter()
            .filter(|s| s.attachment.is_some())
            .map(|s| s.record.id.clone())
            .collect();
        let mut revived = Vec::new();
        for stored in loaded {
            let revive = should_revive(&stored);
            let c = Container::new(stored, self.tasks.child_token());
            self.insert(c.clone());
            if self.restore_one(&c).await == Restored::Stopped && revive {
                revived.push(c);
            }
        }
        self.networks.release_orphans(&holders).await;
        for c in revived {
            // dockerd restarts these when it comes up.
            let svc = self.clone();
            let id = c.id.clone();
            self.tasks.spawn_until(&c.tasks, async move {
                if let Err(e) = svc.start(&id).await {
                    tracing::warn!(%id, error = %e, "restart at engine start failed");
                }
            });
        }
        Ok(())
    }

    /// Brings one loaded container back: ends a `restarting` state cut short, adopts a start
    /// the engine died in, reconnects to a running container's shim or records its exit.
    async fn restore_one(self: &Arc<Self>, c: &Arc<Container>) -> Restored {
        let paths = self.paths(&c.id);
        let st = c.snapshot().state.state;
        if st.restarting {
            if let Err(e) = c.update(&paths, |s| {
                s.state.state.restarting = false;
                s.state.state.status = "exited".into();
            }) {
                tracing::warn!(id = %c.id, error = %e, "cannot record the end of a restart");
            }
        }
        if !st.running {
            return if self.adopt_half_started(c).await {
                Restored::Running
            } else {
                Restored::Stopped
            };
        }
        let shim = self.shim(&c.id);
        if shim.alive().await {
            match shim.hello().await {
                Ok(v) if v > crate::shim::PROTOCOL_VERSION => {
                    tracing::warn!(id = %c.id, version = v, "the shim speaks a newer protocol")
                }
                Ok(v) => tracing::debug!(id = %c.id, version = v, "shim protocol"),
                Err(e) => tracing::warn!(id = %c.id, error = %e.chain(), "shim hello failed"),
            }
            if let Some(att) = c.snapshot().attachment {
                if let Err(e) = self.networks.restore(&c.id, &att).await {
                    tracing::warn!(id = %c.id, error = %e, "network restore failed");
                }
            }
            tracing::info!(id = %c.id, "reconnected to running container");
            self.spawn_monitor(c.clone(), shim);
            self.spawn_health(c);
        } else {
            tracing::info!(id = %c.id, "container exited while the engine was down");
            self.handle_exit(c, None).await;
        }
        Restored::Running
    }

    /// At restore, a container recorded as not running whose monitor still answers (and has
    /// not recorded an exit) was being started when the engine died: the shim was spawned,
    /// maybe the runtime too, but the state was not written. Finish that start, as the last
    /// request asked, instead of leaving a process (or a shim waiting for `start`) that nothing
    /// tracks. Returns whether the container is now monitored as running.
    async fn adopt_half_started(self: &Arc<Self>, c: &Arc<Container>) -> bool {
        let paths = self.paths(&c.id);
        let shim = self.shim(&c.id);
        if paths.exit_file().exists() || !shim.alive().await {
            return false;
        }
        let pid = match shim.start().await {
            Ok(pid) => pid,
            // Started already: the runtime writes the init's pid once it runs.
            Err(e) => {
                let pid_file = paths.bundle().join("init.pid");
                // Absent or half-written until the runtime has written it: not yet.
                let read_pid = || {
                    std::fs::read_to_string(&pid_file)
                        .ok()
                        .and_then(|p| p.trim().parse().ok())
                };
                let mut pid = None;
                for _ in 0..500 {
                    pid = read_pid();
                    if pid.is_some() || paths.exit_file().exists() || !shim.alive().await {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                match pid {
                    Some(pid) if !paths.exit_file().exists() => pid,
                    _ => {
                        tracing::warn!(id = %c.id, error = %e, "half-started container did not start");
                        return false;
                    }
                }
            }
        };
        tracing::warn!(id = %c.id, pid, "container was being started when the engine stopped; adopting it");
        if let Err(e) = c.update(&paths, |st| st.mark_running(pid)) {
            tracing::error!(id = %c.id, error = %e, "cannot record adopted start");
        }
        c.status.send_modify(|st| st.running = true);
        if let Some(att) = c.snapshot().attachment {
            if let Err(e) = self.networks.restore(&c.id, &att).await {
                tracing::warn!(id = %c.id, error = %e, "network restore failed");
            }
        }
        self.publish(c, "start", &[]);
        self.spawn_monitor(c.clone(), shim);
        self.spawn_health(c);
        true
    }
}
