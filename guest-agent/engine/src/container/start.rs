//! `docker start` (and the start of `docker run`), the acting half. In order:
//! 1. clear what the previous run left (its network detach, its shim, a stale runtime state);
//! 2. gather the [`HostFacts`] (image layers, user, links, namespaces, init, devices);
//! 3. attach the network and record the attachment;
//! 4. plan ([`start_plan::plan`], pure);
//! 5. write the `/etc` files, the OCI `config.json` and the shim's config;
//! 6. hold the volumes (mount their devices, copy the image's files up);
//! 7. spawn the shim, connect the attaches waiting for the start, start the container;
//! 8. record it running and start its exit monitor and health checks.
//!
//! A failure at any step is undone by [`Svc::undo_start`]: the attachment is released and the
//! error is recorded, as dockerd does (exit code 128).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::namespaces::NsKind;
use super::record::{Paths, Stored};
use super::start_plan::{self, HostFacts, StartPlan, VolumeUse};
use super::{etc, spec_opts, user, Container, Svc};
use crate::runtime::{self, RuntimeSpec};
use crate::shim::Shim;
use crate::{EngineError, Result};

/// Where `--init` finds its binary on the host, first match wins.
const INIT_BINARIES: [&str; 2] = ["/usr/bin/tini-static", "/usr/bin/tini"];

/// The error of a blocking task that panicked or was cancelled.
pub(super) fn join_error(e: tokio::task::JoinError) -> EngineError {
    EngineError::internal(e.to_string())
}

/// Finds `etc/passwd` in the top-most layer that has it.
fn passwd_root(upper: &Path, layers: &[PathBuf]) -> PathBuf {
    std::iter::once(upper.to_path_buf())
        .chain(layers.iter().rev().cloned())
        .find(|d| d.join("etc/passwd").exists())
        .unwrap_or_else(|| upper.to_path_buf())
}

impl Svc {
    /// `POST /containers/{id}/start`.
    pub async fn start(self: &Arc<Self>, key: &str) -> Result<()> {
        let c = self.get(key)?;
        let _op = c.op.lock().await;
        self.start_locked(&c).await
    }

    #[tracing::instrument(name = "container_start", skip_all, fields(id = %c.id))]
    pub(super) async fn start_locked(self: &Arc<Self>, c: &Arc<Container>) -> Result<()> {
        let s = c.snapshot();
        if s.state.state.running {
            return Err(EngineError::not_modified("container already started"));
        }
        let paths = self.paths(&c.id);
        match self.start_inner(c, &s, &paths).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.undo_start(c, &paths, &e).await;
                Err(e)
            }
        }
    }

    /// After a failed start: drops the attaches waiting for it, records the error (in memory
    /// at least: a full disk must not keep `docker run --rm` waiting), releases the network;
    /// `--rm` removes the container (`docker run --rm` waits for that).
    async fn undo_start(self: &Arc<Self>, c: &Arc<Container>, paths: &Paths, e: &EngineError) {
        c.pending.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let att = self.record_state(c, paths, "failed start", |st| {
            st.state.state.error = e.message().to_string();
            st.state.state.exit_code = 128;
            st.attachment.take()
        });
        if let Some(att) = att {
            if let Err(e) = self.networks.detach(&c.id, &att).await {
                tracing::warn!(id = %c.id, error = %e, "network detach after a failed start");
            }
        }
        if c.snapshot().host.auto_remove {
            let svc = self.clone();
            let id = c.id.clone();
            self.tasks.spawn(async move {
                // Gone already (a concurrent `rm`) is the wanted outcome.
                let _ = svc.remove(&id, true, true).await;
            });
        }
    }

    async fn start_inner(
        self: &Arc<Self>,
        c: &Arc<Container>,
        s: &Stored,
        paths: &Paths,
    ) -> Result<()> {
        let t0 = std::time::Instant::now();
        runtime::cgroup::warm_attach_lock();
        let image = self.images.resolve(&s.record.image_id).await?;
        let rt_spec = self.runtime_spec(&s.host.runtime)?;
        self.clear_previous_run(c, paths, &rt_spec).await?;
        let facts = self
            .host_facts(s, paths, image.layer_dirs.clone(), rt_spec)
            .await?;
        let att = match &facts.net_join {
            // Planned with the target's addresses; nothing of its own to attach. Its hostname
            // is the target's (inspect and exec's HOSTNAME say so too, as with dockerd).
            Some(join) => {
                c.update(paths, |st| {
                    st.record.config.hostname = join.hostname.clone()
                })?;
                join.target.clone()
            }
            None => {
                let att = self.networks.attach(&start_plan::attach_request(s)).await?;
                c.update(paths, |st| st.attachment = Some(att.clone()))?;
                att
            }
        };
        let plan = start_plan::plan(s, paths, &att, facts, &self.config)?;
        write_start_files(paths, &plan).await?;
        self.hold_volumes(&plan.volumes, &image.layer_dirs).await?;
        let t_prep = t0.elapsed();
        let (shim, pid) = self.launch(c, paths, plan.shim.socket.clone()).await?;
        tracing::debug!(id = %c.id, prepare = ?t_prep, started = ?t0.elapsed(), "container started");
        // The container runs: a state that cannot be written does not undo that (a restarted
        // engine adopts the start, `restore`).
        self.record_state(c, paths, "start", |st| st.mark_running(pid));
        c.status.send_modify(|st| st.running = true);
        self.publish(c, "start", &[]);
        self.spawn_monitor(c.clone(), shim);
        self.spawn_health(c);
        Ok(())
    }

    /// Makes the bundle, socket and runtime directories, then clears what the previous run
    /// left: its background network detach, its shim (which answers `wait` before it cleans
    /// up), and a runtime container an engine crash left behind (it would block create).
    async fn clear_previous_run(
        &self,
        c: &Container,
        paths: &Paths,
        rt: &RuntimeSpec,
    ) -> Result<()> {
        let socket = self.shim_socket(&c.id);
        let dirs: Vec<PathBuf> = [Some(paths.bundle()), socket.parent().map(Path::to_path_buf)]
            .into_iter()
            .flatten()
            .chain([rt.root.clone()])
            .collect();
        tokio::task::spawn_blocking(move || dirs.iter().try_for_each(std::fs::create_dir_all))
            .await
            .map_err(join_error)??;
        c.detached().await;
        self.shims.connect(&socket).wait_gone().await;
        if tokio::fs::try_exists(rt.root.join(&c.id)).await? {
            let rt = self.runtime(rt);
            let id = c.id.clone();
            let r = tokio::task::spawn_blocking(move || rt.delete(&id, true))
                .await
                .map_err(join_error)?;
            if let Err(e) = r {
                // The create that follows reports what is still in the way.
                tracing::warn!(id = %c.id, error = %e, "cannot delete a stale runtime container");
            }
        }
        Ok(())
    }

    /// Reads what the plan needs from the host and from other containers.
    async fn host_facts(
        &self,
        s: &Stored,
        paths: &Paths,
        layers: Vec<PathBuf>,
        runtime: RuntimeSpec,
    ) -> Result<HostFacts> {
        let host = &s.host;
        let links = self.link_settings(&s.record.name, host)?;
        let pid_ns = self.ns_mode(NsKind::Pid, &host.pid_mode)?;
        let ipc_ns = self.ns_mode(NsKind::Ipc, &host.ipc_mode)?;
        let uts_ns = self.ns_mode(NsKind::Uts, &host.uts_mode)?;
        let net_join = self.net_join(&s.record.id, host)?;
        let mut facts = HostFacts {
            layers,
            link_hosts: links.hosts,
            link_env: links.env,
            pid_ns,
            ipc_ns,
            uts_ns,
            net_join,
            runtime,
            socket: self.shim_socket(&s.record.id),
            ..Default::default()
        };
        let (upper, user_spec) = (paths.upper(), s.record.config.user.clone());
        let group_add = host.group_add.clone().unwrap_or_default();
        let host_net = start_plan::host_network(host);
        let (init, privileged) = (host.init == Some(true), host.privileged);
        tokio::task::spawn_blocking(move || -> Result<HostFacts> {
            facts.user =
                user::resolve(&passwd_root(&upper, &facts.layers), &user_spec, &group_add)?;
            if host_net {
                // Unreadable (no procfs): the container gets an empty hostname, as before.
                facts.host_hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_default();
            }
            if init {
                let tini = INIT_BINARIES
                    .into_iter()
                    .find(|p| Path::new(p).exists())
                    .ok_or_else(|| {
                        EngineError::invalid("no init binary (tini) installed for --init")
                    })?;
                facts.init = Some(tini.into());
            }
            if privileged {
                facts.host_devices = spec_opts::privileged_devices();
            }
            Ok(facts)
        })
        .await
        .map_err(join_error)?
    }

    /// Mounts the devices of the run's volumes and fills empty ones from the image.
    async fn hold_volumes(&self, volumes: &[VolumeUse], layers: &[PathBuf]) -> Result<()> {
        for v in volumes {
            let (svc, name) = (self.volumes.clone(), v.name.clone());
            tokio::task::spawn_blocking(move || svc.acquire(&name))
                .await
                .map_err(join_error)??;
            copy_up(layers, &v.destination, &v.source).await;
        }
        Ok(())
    }

    /// Spawns the shim, connects the attaches waiting for the start, and starts the container;
    /// returns the shim and the container's init pid.
    async fn launch(
        &self,
        c: &Container,
        paths: &Paths,
        socket: PathBuf,
    ) -> Result<(Box<dyn Shim>, i32)> {
        self.shims
            .spawn(
                &self.config.self_exe,
                &paths.shim_config(),
                &paths.shim_log(),
            )
            .await?;
        let shim = self.shims.connect(&socket);
        let pending: Vec<_> =
            std::mem::take(&mut *c.pending.lock().unwrap_or_else(|e| e.into_inner()));
        for p in pending {
            match shim.attach(p.stdin, p.stdout, p.stderr).await {
                // A client gone meanwhile has dropped its receiver: nothing to tell.
                Ok(conn) => drop(p.tx.send(conn)),
                // Dropping the sender ends that attach request with an error.
                Err(e) => tracing::debug!(id = %c.id, error = %e, "attach before start failed"),
            }
        }
        let pid = shim.start().await?;
        Ok((shim, pid))
    }
}

/// Writes the `/etc` files, the runtime's `config.json` and the shim's config, and removes
/// the previous exit file. Derived files, rewritten at every start: no fsync needed.
async fn write_start_files(paths: &Paths, plan: &StartPlan) -> Result<()> {
    let oci = serde_json::to_vec(&crate::runtime::spec::build_spec(&plan.spec)?)?;
    let shim = serde_json::to_vec(&plan.shim)?;
    let (paths, e, sources) = (paths.clone(), plan.etc.clone(), plan.mount_sources.clone());
    tokio::task::spawn_blocking(move || -> Result<()> {
        etc::write_all(
            &paths.dir,
            &e.ip,
            &e.hostname,
            e.host_network,
            &e.nameservers,
            &e.settings,
        )?;
        for src in &sources {
            if let Err(err) = std::fs::create_dir_all(src) {
                // A bind of a file, or a source we cannot make: the runtime's mount reports it.
                tracing::debug!(source = %src.display(), error = %err, "mount source not made");
            }
        }
        std::fs::write(paths.bundle().join("config.json"), oci)?;
        std::fs::write(paths.shim_config(), shim)?;
        match std::fs::remove_file(paths.exit_file()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    })
    .await
    .map_err(join_error)?
}

/// The top-most layer directory holding a non-empty `dest`, when `volume` is empty.
fn copy_up_source(layers: &[PathBuf], dest: &str, volume: &Path) -> Option<PathBuf> {
    let non_empty = |p: &Path| {
        std::fs::read_dir(p)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    };
    // An unreadable volume is left alone.
    let empty = std::fs::read_dir(volume)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false);
    if !empty {
        return None;
    }
    let rel = dest.trim_start_matches('/');
    layers
        .iter()
        .rev()
        .map(|l| l.join(rel))
        .find(|p| p.is_dir() && non_empty(p))
}

/// Fills an empty volume with what the image has at its mount path (Docker's copy-up), from
/// the top-most layer holding that directory. Whiteouts below it are not considered.
async fn copy_up(layers: &[PathBuf], dest: &str, volume: &Path) {
    let (l, d, v) = (layers.to_vec(), dest.to_string(), volume.to_path_buf());
    let src = match tokio::task::spawn_blocking(move || copy_up_source(&l, &d, &v)).await {
        Ok(Some(src)) => src,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(volume = %volume.display(), error = %e, "volume copy-up check failed");
            return;
        }
    };
    let mut from = src.into_os_string();
    from.push("/.");
    let out = tokio::process::Command::new("cp")
        .arg("-a")
        .arg(&from)
        .arg(volume)
        .output()
        .await;
    let err = match out {
        Ok(o) if o.status.success() => return,
        Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
        Err(e) => e.to_string(),
    };
    tracing::warn!(volume = %volume.display(), error = %err, "volume copy-up failed");
}
