//! Networks: the default bridge, user-defined bridge networks, container network namespaces,
//! outbound NAT and published ports.
//!
//! A container on a bridge network gets a namespace pinned at `<exec_root>/netns/<id>`, a veth
//! pair (host end on the bridge, `eth0` inside), an address from the network's subnet, a
//! default route via the bridge, and a userland proxy per published port. Bridges and
//! namespaces outlive the engine process; after a restart [`NetworkService::restore`] brings
//! the proxies back for containers that kept running.

mod attach;
mod connect;
mod detach;
mod dns;
pub mod driver;
mod host;
mod ipam;
mod nat;
mod netlink;
mod netns;
mod networks;
pub mod ports;
mod proxy;
mod services;
mod store;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use self::dns::DnsServer;
use self::driver::{NatNet, NetDriver, Publication};
use self::ipam::Subnet;
use self::ports::Proto;
use self::store::{NetworkRecord, State};
use crate::{EngineConfig, EngineError, EventBus, Result};

pub(crate) use self::connect::{not_connected, CONFLICT_HOST, CONFLICT_NONE};
pub use self::host::HostNet;
pub use self::ipam::parse_mac;

/// One host binding of a container port, as in `HostConfig.PortBindings`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PortBinding {
    #[serde(rename = "HostIp", default)]
    pub host_ip: String,
    #[serde(rename = "HostPort", default)]
    pub host_port: String,
}

/// A network a container is to join besides its first: `--network a --network b` at create,
/// or `docker network connect` (`EndpointsConfig.<net>`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct EndpointRequest {
    /// Network name or id.
    pub network: String,
    /// `--ip` (`IPAMConfig.IPv4Address`); empty picks a free address.
    #[serde(default)]
    pub ipv4_address: String,
    /// `--alias` / `--network-alias` (`Aliases`).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `--mac-address` (`MacAddress`); empty derives one from the address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
    /// `--ip6` (`IPAMConfig.IPv6Address`): recorded and shown, not configured (no IPv6 yet).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ipv6_address: String,
    /// `--link-local-ip` (`IPAMConfig.LinkLocalIPs`): recorded and shown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link_local_ips: Vec<String>,
    /// `network connect --link` (`Links`, `container:alias`): recorded and shown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    /// `--driver-opt` (`DriverOpts`), as the client sent it (`{}` and `null` differ).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_opts: Option<BTreeMap<String, String>>,
}

/// What a container asks of the network when it starts.
#[derive(Debug, Clone, Default)]
pub struct AttachRequest {
    pub container_id: String,
    pub container_name: String,
    /// The first network: `network` is `HostConfig.NetworkMode` (`default`/`bridge`, `host`,
    /// `none`, or a network name or id), with its `--ip`, aliases (`--network-alias`, compose
    /// service names) and `--mac-address`.
    pub first: EndpointRequest,
    /// `"80/tcp"` → bindings.
    pub port_bindings: BTreeMap<String, Vec<PortBinding>>,
    pub publish_all: bool,
    /// `"80/tcp"` keys of `Config.ExposedPorts` (used by `-P`).
    pub exposed_ports: Vec<String>,
    /// More bridge networks, joined as `eth1`, `eth2`… (the default route stays on `eth0`).
    pub extra: Vec<EndpointRequest>,
    /// `--dns` (`HostConfig.Dns`): where the embedded DNS of user networks forwards the
    /// names it does not know; empty means the host's resolvers.
    pub dns: Vec<String>,
}

/// A container's place on one network, as inspect shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Endpoint {
    #[serde(default)]
    pub network_name: String,
    #[serde(default)]
    pub network_id: String,
    #[serde(default)]
    pub endpoint_id: String,
    #[serde(default)]
    pub ip_address: String,
    #[serde(default)]
    pub ip_prefix_len: u8,
    #[serde(default)]
    pub gateway: String,
    #[serde(default)]
    pub mac_address: String,
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// The result of attaching; persisted with the container so it can be restored and detached.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Attachment {
    /// The netns to join: ours for bridge networks and for `none` (only `lo`, up). `None` for
    /// `host` (share the host's namespace); `None` with another name (an attachment persisted
    /// before `none` got its own namespace) asks the runtime for a fresh one.
    pub netns_path: Option<PathBuf>,
    /// The network of `eth0`, which has the default route (empty once the container left
    /// every network).
    #[serde(flatten)]
    pub primary: Endpoint,
    /// Resolved bindings, host ports filled in (for `-P` and `docker port`).
    #[serde(default)]
    pub ports: BTreeMap<String, Vec<PortBinding>>,
    /// Nameservers for the container's resolv.conf: `["127.0.0.11"]` when on a user network
    /// (the embedded DNS, with `options ndots:0`), empty otherwise (use the host's).
    #[serde(default)]
    pub dns_servers: Vec<String>,
    /// Where the embedded DNS forwards other names (`--dns`); empty: the host's resolvers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_upstreams: Vec<String>,
    /// Further networks (`eth1`…), in the order they were joined.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<Endpoint>,
}

impl Attachment {
    /// Every network the container is on, the one with the default route first.
    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        std::iter::once(&self.primary)
            .filter(|e| !e.network_id.is_empty())
            .chain(self.extra.iter())
    }
}

/// Published ports of one container.
struct Published {
    proxies: Box<dyn Publication>,
    sockets: Vec<(IpAddr, u16, Proto)>,
}

pub struct NetworkService {
    events: EventBus,
    state_dir: PathBuf,
    netns_dir: PathBuf,
    /// What carries the service's decisions out on the host network.
    driver: Arc<dyn NetDriver>,
    /// The default bridge, which names this engine's NAT chains.
    default_bridge: String,
    /// Whether the engine manages NAT rules (`--iptables`).
    iptables: bool,
    state: Arc<Mutex<State>>,
    /// Serialises state writes so the newest snapshot is the one that lands last.
    save_lock: tokio::sync::Mutex<()>,
    /// Serialises network create/remove (subnet choice, bridge creation).
    admin_lock: tokio::sync::Mutex<()>,
    published: Mutex<HashMap<String, Published>>,
    /// Embedded DNS servers of containers on user networks.
    dns: Mutex<HashMap<String, DnsServer>>,
    /// Background link deletions started by `detach`.
    cleanups: Mutex<JoinSet<()>>,
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl NetworkService {
    /// Loads the network state, creates or adopts the default bridge and every user bridge,
    /// and installs the NAT rules.
    pub async fn open(
        config: Arc<EngineConfig>,
        events: EventBus,
        driver: Arc<dyn NetDriver>,
    ) -> Result<Self> {
        let state_dir = config.data_root.join("network");
        let netns_dir = config.exec_root.join("netns");
        std::fs::create_dir_all(&state_dir)?;
        driver.prepare(&netns_dir).await?;
        let mut state = State::load(&state_dir)?;
        let default = Subnet::from_bip(&config.bridge_cidr)?;
        networks::ensure_predefined(&mut state, &config.bridge_name, default);
        drop_stale_endpoints(&mut state, &netns_dir);
        state.save(&state_dir)?;

        for n in state.networks.iter().filter(|n| n.driver == "bridge") {
            if let Some(b) = n.bridge() {
                driver.ensure_bridge(&b).await?;
            }
        }
        let svc = Self {
            events,
            state_dir,
            netns_dir,
            driver,
            default_bridge: config.bridge_name.clone(),
            iptables: config.iptables,
            state: Arc::new(Mutex::new(state)),
            dns: Mutex::new(HashMap::new()),
            save_lock: tokio::sync::Mutex::new(()),
            admin_lock: tokio::sync::Mutex::new(()),
            published: Mutex::new(HashMap::new()),
            cleanups: Mutex::new(JoinSet::new()),
        };
        svc.apply_nat().await;
        Ok(svc)
    }

    /// Programs NAT and forwarding for every bridge network. A failure (no iptables in a
    /// minimal VM image, say) is logged, not fatal: containers then reach only the host.
    async fn apply_nat(&self) {
        if !self.iptables {
            return;
        }
        let nets: Vec<NatNet> = lock(&self.state)
            .networks
            .iter()
            .filter_map(|n| {
                Some(NatNet {
                    bridge: n.bridge.clone(),
                    subnet: n.subnet?,
                    internal: n.internal,
                })
            })
            .collect();
        if let Err(e) = self.driver.apply_nat(&self.default_bridge, &nets).await {
            tracing::warn!(error = %e, "outbound NAT rules not installed");
        }
    }

    async fn save(&self) -> Result<()> {
        let _g = self.save_lock.lock().await;
        let snapshot = lock(&self.state).clone();
        let dir = self.state_dir.clone();
        tokio::task::spawn_blocking(move || snapshot.save(&dir))
            .await
            .map_err(|e| EngineError::internal(format!("network state save: {e}")))?
    }

    fn publish_event(&self, action: &str, net: &NetworkRecord, container: Option<&str>) {
        let mut attrs = BTreeMap::from([
            ("name".to_string(), net.name.clone()),
            ("type".to_string(), net.driver.clone()),
        ]);
        if let Some(c) = container {
            attrs.insert("container".into(), c.to_string());
        }
        self.events.publish("network", action, &net.id, attrs);
    }

    /// Stops every port proxy and removes the NAT rules. Bridges and namespaces stay so
    /// running containers keep their addresses; the next `open` adopts them.
    pub async fn shutdown(&self) {
        self.settle().await;
        let all: Vec<Published> = lock(&self.published).drain().map(|(_, p)| p).collect();
        for p in all {
            p.proxies.stop().await;
        }
        let all: Vec<DnsServer> = lock(&self.dns).drain().map(|(_, d)| d).collect();
        for d in all {
            d.stop().await;
        }
        if self.iptables {
            self.driver.remove_nat(&self.default_bridge).await;
        }
        self.driver.release(&self.netns_dir).await;
    }

    /// Waits for background cleanups started by `detach`.
    pub async fn settle(&self) {
        let mut jobs = std::mem::take(&mut *lock(&self.cleanups));
        while jobs.join_next().await.is_some() {}
    }
}

/// Endpoints whose namespace pin is gone (the host rebooted, the exec root was wiped) belong
/// to containers that cannot be running: release their addresses.
fn drop_stale_endpoints(state: &mut State, netns_dir: &std::path::Path) {
    state.endpoints.retain(|_, e| {
        let keep = netns_dir.join(&e.container_id).exists();
        if !keep {
            tracing::info!(container = %e.container_id, "releasing endpoint of a container without namespace");
        }
        keep
    });
}

#[cfg(test)]
mod tests;
