//! Networks: the default bridge, container network namespaces, NAT, published ports.
//! (Owned by the network work.)

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{EngineConfig, EngineError, EventBus, Result};

/// One host binding of a container port, as in `HostConfig.PortBindings`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PortBinding {
    #[serde(rename = "HostIp", default)]
    pub host_ip: String,
    #[serde(rename = "HostPort", default)]
    pub host_port: String,
}

/// What a container asks of the network when it starts.
#[derive(Debug, Clone, Default)]
pub struct AttachRequest {
    pub container_id: String,
    pub container_name: String,
    /// `HostConfig.NetworkMode`: `default`/`bridge`, `host`, `none`, or a network name.
    pub network_mode: String,
    /// `"80/tcp"` → bindings.
    pub port_bindings: BTreeMap<String, Vec<PortBinding>>,
    pub publish_all: bool,
    /// `"80/tcp"` keys of `Config.ExposedPorts` (used by `-P`).
    pub exposed_ports: Vec<String>,
}

/// The result of attaching; persisted with the container so it can be restored and detached.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Attachment {
    /// The netns to join. `None` with `network_name == "host"` shares the host's network
    /// namespace; `None` otherwise (`none`) asks the runtime for a fresh one with only `lo`.
    pub netns_path: Option<PathBuf>,
    pub network_name: String,
    pub network_id: String,
    pub endpoint_id: String,
    pub ip_address: String,
    pub ip_prefix_len: u8,
    pub gateway: String,
    pub mac_address: String,
    /// Resolved bindings, host ports filled in (for `-P` and `docker port`).
    pub ports: BTreeMap<String, Vec<PortBinding>>,
}

pub struct NetworkService {
    #[allow(dead_code)]
    config: Arc<EngineConfig>,
    #[allow(dead_code)]
    events: EventBus,
}

impl NetworkService {
    pub async fn open(config: Arc<EngineConfig>, events: EventBus) -> Result<Self> {
        Ok(Self { config, events })
    }

    /// Creates the container's network namespace, connects it, and publishes its ports.
    pub async fn attach(&self, req: &AttachRequest) -> Result<Attachment> {
        if req.network_mode == "host" || req.network_mode == "none" {
            return Ok(Attachment {
                network_name: req.network_mode.clone(),
                ..Default::default()
            });
        }
        Err(EngineError::not_implemented(
            "bridge networking is not implemented yet",
        ))
    }

    /// Re-establishes port publishing for a container that kept running across an engine restart.
    pub async fn restore(&self, _container_id: &str, _att: &Attachment) -> Result<()> {
        Ok(())
    }

    /// Unpublishes ports, removes the endpoint and the network namespace. Idempotent.
    pub async fn detach(&self, _container_id: &str, _att: &Attachment) -> Result<()> {
        Ok(())
    }

    pub async fn shutdown(&self) {}
}
