//! `POST /containers/create`: merge the request with the image config
//! ([`super::image_config`]), plan the networks, complete and check the host config
//! ([`super::host_config`]), resolve the mounts ([`super::mount_points`]), reserve the name
//! and persist the record.

use berth_docker_api::container::{ContainerConfig, ContainerCreateRequest, HostConfig};

use super::mount_points::MountPoints;
use super::record::{Record, StateRecord, Stored};
use super::{image_config, names, Container, Svc};
use crate::image::ResolvedImage;
use crate::network::EndpointRequest;
use crate::{EngineError, Result};

/// What a create stores, before the name is reserved.
struct Draft {
    id: String,
    path: String,
    args: Vec<String>,
    image_id: String,
    config: ContainerConfig,
    host: HostConfig,
    networks: Vec<EndpointRequest>,
    mounts: MountPoints,
}

impl Svc {
    /// Creates a container; returns its id.
    #[tracing::instrument(name = "container_create", skip_all, fields(name = name.unwrap_or("")))]
    pub async fn create(
        &self,
        name: Option<&str>,
        platform: Option<&str>,
        req: ContainerCreateRequest,
    ) -> Result<String> {
        let cfg = &req.config;
        if cfg.image.is_empty() {
            return Err(EngineError::invalid(
                "config cannot be empty in order to create a container",
            ));
        }
        super::net_join::check_create(
            cfg,
            &req.host_config,
            req.networking_config.endpoints_config.as_ref(),
        )?;
        if let Some(p) = platform.filter(|p| !p.is_empty()) {
            self.images.check_platform(&cfg.image, p)?;
        }
        let image = self.images.resolve(&cfg.image).await?;
        // `docker run` starts right after the create: let the start find the lock warm.
        crate::runtime::cgroup::warm_attach_lock();
        let draft = self.draft(req, &image)?;
        self.store_new(name, draft)
    }

    /// Merges the request with the image, plans the networks, checks the host config and
    /// resolves the mounts (creating the volumes they name).
    fn draft(&self, req: ContainerCreateRequest, image: &ResolvedImage) -> Result<Draft> {
        let (mut config, mut host) = (req.config, req.host_config);
        let id = crate::id::new_id();
        let (path, args) = image_config::merge(&mut config, &image.config, &id)?;
        if host.network_mode.is_empty() || host.network_mode == "default" {
            host.network_mode = "bridge".into();
        }
        host.network_mode = self.resolve_net_target(&host.network_mode);
        let networks = self.network_plan(
            &host.network_mode,
            req.networking_config.endpoints_config.as_ref(),
            config.mac_address.as_deref(),
        )?;
        self.complete_host_config(&mut host)?;
        self.check_links(&host)?;
        let mounts = self.mount_points(&host, config.volumes.as_ref())?;
        Ok(Draft {
            id,
            path,
            args,
            image_id: image.id.clone(),
            config,
            host,
            networks,
            mounts,
        })
    }

    /// Reserves the name, writes the record and makes the container known.
    fn store_new(&self, name: Option<&str>, d: Draft) -> Result<String> {
        let _names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        let stored = Stored {
            record: Record {
                id: d.id.clone(),
                name: self.free_name(name)?,
                created: crate::shim::jsonlog::now_rfc3339(),
                path: d.path,
                args: d.args,
                image: d.config.image.clone(),
                image_id: d.image_id,
                config: d.config,
                mounts: d.mounts.mounts,
                anonymous_volumes: d.mounts.anonymous,
                networks: Some(d.networks),
            },
            host: d.host,
            state: created_state(),
            attachment: None,
        };
        let paths = self.paths(&d.id);
        std::fs::create_dir_all(&paths.dir)?;
        if let Err(e) = stored.save_all(&paths) {
            let _ = std::fs::remove_dir_all(&paths.dir);
            return Err(e);
        }
        let c = Container::new(stored, self.tasks.child_token());
        self.insert(c.clone());
        drop(_names);
        self.publish(&c, "create", &[]);
        tracing::debug!(id = %d.id, "container created");
        Ok(d.id)
    }

    /// The requested name (checked, and free), or a generated free one. The caller holds the
    /// names lock until the container is inserted.
    fn free_name(&self, name: Option<&str>) -> Result<String> {
        let Some(n) = name.filter(|n| !n.is_empty()) else {
            return Ok(loop {
                let n = names::generate();
                if self.name_owner(&n).is_none() {
                    break n;
                }
            });
        };
        let n = n.strip_prefix('/').unwrap_or(n);
        if !names::valid(n) {
            return Err(EngineError::invalid(format!(
                "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        if let Some(owner) = self.name_owner(n) {
            return Err(Self::name_conflict(n, &owner));
        }
        Ok(n.to_string())
    }
}

/// The state of a container that never ran.
fn created_state() -> StateRecord {
    StateRecord {
        state: berth_docker_api::container::ContainerState {
            status: "created".into(),
            started_at: "0001-01-01T00:00:00Z".into(),
            finished_at: "0001-01-01T00:00:00Z".into(),
            ..Default::default()
        },
        ..Default::default()
    }
}
