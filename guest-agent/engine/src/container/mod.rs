//! Containers: records, lifecycle, attach, logs, exec.
//!
//! Each container is an [`Container`] in memory (its persisted [`record::Stored`] behind a
//! short-held mutex, an operation lock serialising start/stop/remove, a watch channel of
//! its [`Status`], and the token of its background tasks). A per-container shim
//! (`crate::shim`) holds the running process; the engine talks to it over its socket and can
//! be restarted without disturbing it. Shims, runtimes and mounts are reached only through
//! the seams injected at [`crate::Engine::open_with`] ([`crate::Seams`]).
//!
//! One file per verb: `create` (over `image_config`, `host_config` and `mount_points`),
//! `start` (acting) over `start_plan` (pure), `stop` (stop, kill, restart), `pause`, `remove`
//! (rm, prune), `rename`, `wait`, `top` (top, resize), `exit` (monitor, exit record, restart
//! policy, AutoRemove), `state_retry` (a state write that failed, kept in memory and retried),
//! `restore` (engine start), `exec`; `usage` answers what the other services ask of the
//! containers.

pub mod archive;
pub mod changes;
pub mod commit;
pub mod create;
pub mod endpoints;
pub mod env;
pub mod etc;
pub mod exec;
mod exit;
pub mod health;
mod host_config;
pub mod image_config;
pub mod io;
mod links;
pub mod logs;
mod mount_points;
pub mod names;
mod namespaces;
pub mod net_join;
mod pause;
mod pty;
pub mod record;
mod remove;
mod rename;
mod restore;
pub mod signal;
mod spec_opts;
mod start;
pub mod start_plan;
mod state_retry;
pub mod stats;
mod stop;
mod tasks;
pub mod top;
pub mod update;
mod usage;
pub mod user;
pub mod view;
pub mod wait;

pub use usage::ContainerCounts;
pub use wait::WaitCondition;

use std::collections::HashMap;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use berth_docker_api::container::HostConfig;
use tokio::sync::watch;

use crate::id::{match_prefix, PrefixMatch};
use crate::image::ImageService;
use crate::mount::Mounter;
use crate::network::NetworkService;
use crate::runtime::{Runtime, RuntimeSpec, Runtimes};
use crate::shim::{Shim, Shims};
use crate::volume::VolumeService;
use crate::{EngineConfig, EngineError, EventBus, Result, Seams};
use record::{Paths, Stored};

/// What waiters watch.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Status {
    pub running: bool,
    /// Incremented at every exit.
    pub exits: u64,
    pub exit_code: i64,
    pub removed: bool,
}

/// An attach registered before start, connected to the shim when the container starts.
pub(crate) struct PendingAttach {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tx: tokio::sync::oneshot::Sender<tokio::net::UnixStream>,
}

/// One container in memory.
pub struct Container {
    pub id: String,
    stored: Mutex<Stored>,
    /// Serialises start, stop, restart and remove.
    op: tokio::sync::Mutex<()>,
    status: watch::Sender<Status>,
    pending: Mutex<Vec<PendingAttach>>,
    /// The network detach of the last exit, run in the background; a start awaits it.
    detaching: Mutex<Option<tokio::task::JoinHandle<Option<()>>>>,
    /// A background retry of a `state.json` write that failed is under way (`state_retry`).
    state_retry: std::sync::atomic::AtomicBool,
    /// Ends this container's background tasks (cancelled at remove and at shutdown).
    tasks: tokio_util::sync::CancellationToken,
}

impl Container {
    fn new(stored: Stored, tasks: tokio_util::sync::CancellationToken) -> Arc<Self> {
        let st = Status {
            running: stored.state.state.running,
            exits: 0,
            exit_code: stored.state.state.exit_code,
            removed: false,
        };
        Arc::new(Self {
            id: stored.record.id.clone(),
            stored: Mutex::new(stored),
            op: tokio::sync::Mutex::new(()),
            status: watch::channel(st).0,
            pending: Mutex::new(vec![]),
            detaching: Mutex::new(None),
            state_retry: Default::default(),
            tasks,
        })
    }

    /// Waits for the background network detach of the last exit, if any.
    pub(crate) async fn detached(&self) {
        let task = self
            .detaching
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(task) = task {
            if let Err(e) = task.await {
                tracing::warn!(id = %self.id, error = %e, "network detach task failed");
            }
        }
    }

    /// A copy of the persisted state.
    pub fn snapshot(&self) -> Stored {
        self.stored
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Changes the persisted state and writes it.
    fn update<T>(&self, paths: &Paths, f: impl FnOnce(&mut Stored) -> T) -> Result<T> {
        let mut g = self.stored.lock().unwrap_or_else(|e| e.into_inner());
        let out = f(&mut g);
        g.save_state(paths)?;
        Ok(out)
    }

    /// Replaces the host config and writes `hostconfig.json`.
    fn set_host(&self, paths: &Paths, host: HostConfig) -> Result<()> {
        crate::fsutil::write_json_atomic(&paths.host_config(), &host)?;
        self.stored.lock().unwrap_or_else(|e| e.into_inner()).host = host;
        Ok(())
    }

    pub fn subscribe(&self) -> watch::Receiver<Status> {
        self.status.subscribe()
    }
}

/// The container service; cheap handle over shared state so background tasks can hold it.
pub struct ContainerService {
    inner: Arc<Svc>,
}

impl Deref for ContainerService {
    type Target = Arc<Svc>;
    fn deref(&self) -> &Arc<Svc> {
        &self.inner
    }
}

pub struct Svc {
    pub(crate) config: Arc<EngineConfig>,
    pub(crate) events: EventBus,
    pub(crate) images: Arc<ImageService>,
    pub(crate) networks: Arc<NetworkService>,
    pub(crate) volumes: Arc<VolumeService>,
    /// The runtime back-ends, shims and mounts (injected at [`crate::Engine::open_with`]).
    runtimes: Arc<dyn Runtimes>,
    shims: Arc<dyn Shims>,
    mounter: Arc<dyn Mounter>,
    containers: RwLock<HashMap<String, Arc<Container>>>,
    /// Serialises name reservation.
    names: Mutex<()>,
    pub(crate) execs: exec::ExecTable,
    /// Background tasks of every container, ended by [`ContainerService::shutdown`].
    tasks: tasks::Tasks,
}

impl ContainerService {
    pub async fn open(
        config: Arc<EngineConfig>,
        events: EventBus,
        images: Arc<ImageService>,
        networks: Arc<NetworkService>,
        volumes: Arc<VolumeService>,
        seams: Seams,
    ) -> Result<Self> {
        crate::fsutil::create_hierarchy_root(&config.data_root.join("containers"))?;
        let svc = Arc::new(Svc {
            config,
            events,
            images,
            networks,
            volumes,
            runtimes: seams.runtimes,
            shims: seams.shims,
            mounter: seams.mounter,
            containers: RwLock::new(HashMap::new()),
            names: Mutex::new(()),
            execs: exec::ExecTable::default(),
            tasks: tasks::Tasks::default(),
        });
        svc.restore().await?;
        Ok(Self { inner: svc })
    }

    /// Ends every container's background tasks (exit monitors, health checks, restart
    /// timers…), waiting at most `bound`. Containers keep running: their shims hold them, and
    /// the next engine reconnects. Returns false if some task did not end in time.
    pub async fn shutdown(&self, bound: std::time::Duration) -> bool {
        let done = self.tasks.shutdown(bound).await;
        if !done {
            tracing::warn!(
                left = self.tasks.len(),
                "container tasks still running at shutdown"
            );
        }
        done
    }
}

/// dockerd's (moby 23+) conflict for an operation that needs a running container.
pub(crate) fn not_running(id: &str) -> EngineError {
    EngineError::conflict(format!("container {id} is not running"))
}

impl Svc {
    pub(crate) fn paths(&self, id: &str) -> Paths {
        Paths::new(&self.config.data_root, id)
    }

    /// The runtime a container uses (`HostConfig.Runtime` or the default).
    pub(crate) fn runtime_spec(&self, name: &str) -> Result<RuntimeSpec> {
        let name = if name.is_empty() {
            self.config.default_runtime.as_str()
        } else {
            name
        };
        let r = self.config.runtimes.get(name).ok_or_else(|| {
            EngineError::invalid(format!("unknown or invalid runtime name: {name}"))
        })?;
        Ok(RuntimeSpec {
            name: name.to_string(),
            path: PathBuf::from(&r.path),
            root: self.config.exec_root.join(name),
            args: r.runtime_args.clone(),
        })
    }

    /// The runtime back-end for `spec`.
    pub(crate) fn runtime(&self, spec: &RuntimeSpec) -> Box<dyn Runtime> {
        self.runtimes.for_spec(spec)
    }

    /// The runtime a container uses.
    pub(crate) fn runtime_for(&self, s: &Stored) -> Result<Box<dyn Runtime>> {
        Ok(self.runtime(&self.runtime_spec(&s.host.runtime)?))
    }

    /// The shim of a container (which may be gone).
    pub(crate) fn shim(&self, id: &str) -> Box<dyn Shim> {
        self.shims.connect(&self.shim_socket(id))
    }

    /// Short socket path of a container's shim (unix socket paths are limited to 108 bytes).
    pub(crate) fn shim_socket(&self, id: &str) -> PathBuf {
        self.config
            .exec_root
            .join("s")
            .join(format!("{}.sock", &id[..id.len().min(16)]))
    }

    pub(crate) fn all(&self) -> Vec<Arc<Container>> {
        let mut v: Vec<_> = self
            .containers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by_key(|c| std::cmp::Reverse(c.snapshot().record.created));
        v
    }

    fn insert(&self, c: Arc<Container>) {
        self.containers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(c.id.clone(), c);
    }

    fn forget(&self, id: &str) {
        self.containers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// Finds a container by full id, name (with or without `/`) or unique id prefix.
    pub fn get(&self, key: &str) -> Result<Arc<Container>> {
        let map = self.containers.read().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = map.get(key) {
            return Ok(c.clone());
        }
        let name = key.strip_prefix('/').unwrap_or(key);
        if let Some(c) = map.values().find(|c| {
            c.stored
                .lock()
                .map(|s| s.record.name == name)
                .unwrap_or(false)
        }) {
            return Ok(c.clone());
        }
        match match_prefix(key, map.keys().map(String::as_str)) {
            PrefixMatch::One(id) => Ok(map[id].clone()),
            PrefixMatch::Ambiguous => Err(EngineError::invalid(format!(
                "multiple IDs found with provided prefix: {key}"
            ))),
            PrefixMatch::None => Err(EngineError::not_found(format!("No such container: {key}"))),
        }
    }

    /// The id of the container that has `name`, if any.
    fn name_owner(&self, name: &str) -> Option<String> {
        self.containers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .find(|c| {
                c.stored
                    .lock()
                    .map(|s| s.record.name == name)
                    .unwrap_or(false)
            })
            .map(|c| c.id.clone())
    }

    fn name_conflict(name: &str, owner: &str) -> EngineError {
        EngineError::conflict(format!(
            "Conflict. The container name \"/{name}\" is already in use by container \"{owner}\". You have to remove (or rename) that container to be able to reuse that name."
        ))
    }

    /// Attributes of container events: name, image and labels.
    pub(crate) fn event_attrs(&self, c: &Container) -> std::collections::BTreeMap<String, String> {
        let s = c.snapshot();
        let mut a: std::collections::BTreeMap<String, String> = s
            .record
            .config
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        a.insert("name".into(), s.record.name.clone());
        a.insert("image".into(), s.record.image.clone());
        a
    }

    pub(crate) fn publish(&self, c: &Container, action: &str, extra: &[(&str, String)]) {
        let mut a = self.event_attrs(c);
        for (k, v) in extra {
            a.insert((*k).to_string(), v.clone());
        }
        self.events.publish("container", action, &c.id, a);
    }
}
