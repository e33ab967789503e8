//! Networks: the default bridge, user-defined bridge networks, container network namespaces,
//! outbound NAT and published ports.
//!
//! A container on a bridge network gets a namespace pinned at `<exec_root>/netns/<id>`, a veth
//! pair (host end on the bridge, `eth0` inside), an address from the network's subnet, a
//! default route via the bridge, and a userland proxy per published port. Bridges and
//! namespaces outlive the engine process; after a restart [`NetworkService::restore`] brings
//! the proxies back for containers that kept running.

mod dns;
mod ipam;
mod nat;
mod netlink;
mod netns;
mod networks;
pub mod ports;
mod proxy;
mod store;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use self::dns::DnsServer;
use self::ipam::Subnet;
use self::nat::{Nat, NatNet};
use self::netlink::Netlink;
use self::ports::{HostPorts, PortKey, PortRequest, Proto};
use self::proxy::{BoundPort, ProxySet};
use self::store::{EndpointRecord, NetworkRecord, State};
use crate::{id, EngineConfig, EngineError, EventBus, Result};

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
    /// `HostConfig.NetworkMode`: `default`/`bridge`, `host`, `none`, or a network name or id.
    pub network_mode: String,
    /// `"80/tcp"` → bindings.
    pub port_bindings: BTreeMap<String, Vec<PortBinding>>,
    pub publish_all: bool,
    /// `"80/tcp"` keys of `Config.ExposedPorts` (used by `-P`).
    pub exposed_ports: Vec<String>,
    /// `--ip` (`EndpointsConfig.<net>.IPAMConfig.IPv4Address`); empty picks a free address.
    pub ipv4_address: String,
    /// `EndpointsConfig.<net>.Aliases` (`--network-alias`, compose service names): more
    /// names the embedded DNS of a user network answers for.
    pub aliases: Vec<String>,
}

/// The result of attaching; persisted with the container so it can be restored and detached.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Attachment {
    /// The netns to join: ours for bridge networks and for `none` (only `lo`, up). `None` for
    /// `host` (share the host's namespace); `None` with another name (an attachment persisted
    /// before `none` got its own namespace) asks the runtime for a fresh one.
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
    /// Nameservers for the container's resolv.conf: `["127.0.0.11"]` on user networks (the
    /// embedded DNS, with `options ndots:0`), empty otherwise (use the host's).
    #[serde(default)]
    pub dns_servers: Vec<String>,
}

/// Published ports of one container.
struct Published {
    proxies: ProxySet,
    sockets: Vec<(IpAddr, u16, Proto)>,
}

pub struct NetworkService {
    events: EventBus,
    state_dir: PathBuf,
    netns_dir: PathBuf,
    nl: Netlink,
    /// A second connection for link deletions, which the kernel answers slowly.
    nl_slow: Netlink,
    nat: Option<Nat>,
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
    pub async fn open(config: Arc<EngineConfig>, events: EventBus) -> Result<Self> {
        let state_dir = config.data_root.join("network");
        let netns_dir = config.exec_root.join("netns");
        std::fs::create_dir_all(&state_dir)?;
        let dir = netns_dir.clone();
        tokio::task::spawn_blocking(move || netns::prepare_dir(&dir))
            .await
            .map_err(|e| EngineError::internal(format!("netns setup: {e}")))?
            .map_err(|e| {
                EngineError::internal(format!("cannot prepare {}: {e}", netns_dir.display()))
            })?;
        let mut state = State::load(&state_dir)?;
        let default = Subnet::from_bip(&config.bridge_cidr)?;
        networks::ensure_predefined(&mut state, &config.bridge_name, default);
        drop_stale_endpoints(&mut state, &netns_dir);
        state.save(&state_dir)?;

        let nl = Netlink::host()?;
        for n in state.networks.iter().filter(|n| n.driver == "bridge") {
            if let Some(s) = n.subnet() {
                nl.ensure_bridge(&n.bridge, s.gateway, s.net.prefix_len())
                    .await?;
            }
        }
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
            .map_err(|e| EngineError::internal(format!("cannot enable ip_forward: {e}")))?;
        let nat = config.iptables.then(|| Nat::new(&config.bridge_name));
        let svc = Self {
            events,
            state_dir,
            netns_dir,
            nl,
            nl_slow: Netlink::host_on_own_thread()?,
            nat,
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
        let Some(nat) = &self.nat else {
            return;
        };
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
        if let Err(e) = nat.apply(&nets).await {
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

    /// Creates the container's network namespace, connects it, and publishes its ports.
    pub async fn attach(&self, req: &AttachRequest) -> Result<Attachment> {
        let mode = req.network_mode.as_str();
        let net = {
            let st = lock(&self.state);
            let key = match mode {
                "" | "default" => "bridge",
                m => m,
            };
            if key.starts_with("container:") {
                return Err(EngineError::not_implemented(
                    "network mode container:<name> is not supported",
                ));
            }
            st.find(key)?.clone()
        };
        // Each start gets a fresh namespace: drop whatever an earlier run of this container
        // left behind (an engine crash between exit and detach).
        let stale = self.netns_dir.join(&req.container_id);
        let leftover = stale.exists()
            || lock(&self.state).endpoints.contains_key(&req.container_id)
            || lock(&self.published).contains_key(&req.container_id);
        if leftover {
            tracing::info!(id = %req.container_id, "releasing a previous endpoint");
            let old = Attachment {
                netns_path: Some(stale),
                ..Default::default()
            };
            self.detach(&req.container_id, &old).await?;
        }
        if net.driver == "host" {
            return Ok(Attachment {
                network_name: net.name.clone(),
                network_id: net.id.clone(),
                ..Default::default()
            });
        }
        if net.driver == "null" {
            // A namespace of our own with `lo` up (a runtime-made one would have it down).
            let path = self.netns_dir.join(&req.container_id);
            self.loopback_only(&path).await.inspect_err(|_| {
                let _ = netns::remove(&path);
            })?;
            return Ok(Attachment {
                netns_path: Some(path),
                network_name: net.name.clone(),
                network_id: net.id.clone(),
                ..Default::default()
            });
        }
        let started = Instant::now();
        let subnet = net
            .subnet()
            .ok_or_else(|| EngineError::internal(format!("network {} has no subnet", net.name)))?;
        let endpoint_id = id::new_id();
        let veth = format!("veth{}", &endpoint_id[..7]);
        let ip = {
            let mut st = lock(&self.state);
            if let Some(old) = st.endpoints.get(&req.container_id) {
                return Err(EngineError::conflict(format!(
                    "container {} is already attached to network {}",
                    req.container_id, old.network_id
                )));
            }
            let used = st.used_ips(&net.id);
            let ip = if req.ipv4_address.is_empty() {
                subnet.allocate(&used).ok_or_else(|| {
                    EngineError::unavailable(format!(
                        "no available IPv4 addresses on network {}",
                        net.name
                    ))
                })?
            } else {
                requested_ip(&req.ipv4_address, &net, subnet, &used)?
            };
            st.endpoints.insert(
                req.container_id.clone(),
                EndpointRecord {
                    container_id: req.container_id.clone(),
                    container_name: req.container_name.trim_start_matches('/').to_string(),
                    network_id: net.id.clone(),
                    endpoint_id: endpoint_id.clone(),
                    ip,
                    mac: ipam::format_mac(&ipam::mac_for(ip)),
                    veth: veth.clone(),
                    aliases: req.aliases.clone(),
                },
            );
            ip
        };
        let netns_path = self.netns_dir.join(&req.container_id);
        match self
            .connect_bridge(req, &net, subnet, ip, &endpoint_id, &veth, &netns_path)
            .await
        {
            Ok(ports) => {
                if let Err(e) = self.save().await {
                    self.rollback(&req.container_id, &veth, &netns_path).await;
                    return Err(e);
                }
                self.publish_event("connect", &net, Some(&req.container_id));
                tracing::debug!(
                    id = %req.container_id,
                    ms = started.elapsed().as_secs_f64() * 1e3,
                    "network attached"
                );
                Ok(Attachment {
                    netns_path: Some(netns_path),
                    network_name: net.name.clone(),
                    network_id: net.id.clone(),
                    endpoint_id,
                    ip_address: ip.to_string(),
                    ip_prefix_len: subnet.net.prefix_len(),
                    gateway: subnet.gateway.to_string(),
                    mac_address: ipam::format_mac(&ipam::mac_for(ip)),
                    ports,
                    dns_servers: if net.is_predefined() {
                        vec![]
                    } else {
                        vec![dns::DNS_ADDR.to_string()]
                    },
                })
            }
            Err(e) => {
                self.rollback(&req.container_id, &veth, &netns_path).await;
                Err(e)
            }
        }
    }

    /// Binds the published ports, then creates namespace and veth and starts the proxies.
    #[allow(clippy::too_many_arguments)]
    async fn connect_bridge(
        &self,
        req: &AttachRequest,
        net: &NetworkRecord,
        subnet: Subnet,
        ip: Ipv4Addr,
        endpoint_id: &str,
        veth: &str,
        netns_path: &std::path::Path,
    ) -> Result<BTreeMap<String, Vec<PortBinding>>> {
        let plan = ports::plan(&req.port_bindings, req.publish_all, &req.exposed_ports)?;
        let bound = self
            .bind_ports(&plan)
            .await
            .map_err(|e| {
                EngineError::internal(format!(
                    "driver failed programming external connectivity on endpoint {} ({endpoint_id}): {e}",
                    req.container_name.trim_start_matches('/')
                ))
            })?;
        let bridge =
            self.nl.index(&net.bridge).await?.ok_or_else(|| {
                EngineError::internal(format!("bridge {} is missing", net.bridge))
            })?;
        let created = self.create_netns(netns_path).await?;
        self.nl
            .add_veth(veth, bridge, created.file.as_fd(), ipam::mac_for(ip))
            .await?;
        Netlink::from_fd(created.netlink)?
            .configure_container(ip, subnet.net.prefix_len(), subnet.gateway)
            .await?;
        if !net.is_predefined() {
            self.start_dns(&req.container_id, netns_path, &net.id)
                .await?;
        }
        let resolved = resolved_ports(&bound);
        self.start_proxies(&req.container_id, bound, ip);
        Ok(resolved)
    }

    /// Serves the embedded DNS at 127.0.0.11 inside the container's namespace.
    async fn start_dns(
        &self,
        container_id: &str,
        netns_path: &std::path::Path,
        network_id: &str,
    ) -> Result<()> {
        let path = netns_path.to_owned();
        let sock = tokio::task::spawn_blocking(move || dns::bind_in(&path))
            .await
            .map_err(|e| EngineError::internal(format!("dns: {e}")))?
            .map_err(|e| EngineError::internal(format!("cannot start embedded DNS: {e}")))?;
        let server = DnsServer::start(
            sock,
            self.state.clone(),
            network_id.to_string(),
            dns::host_upstreams(),
        )
        .map_err(|e| EngineError::internal(format!("cannot start embedded DNS: {e}")))?;
        lock(&self.dns).insert(container_id.to_string(), server);
        Ok(())
    }

    async fn create_netns(&self, path: &std::path::Path) -> Result<netns::Created> {
        let p = path.to_owned();
        tokio::task::spawn_blocking(move || netns::create(&p))
            .await
            .map_err(|e| EngineError::internal(format!("netns: {e}")))?
            .map_err(|e| {
                EngineError::internal(format!(
                    "cannot create network namespace {}: {e}",
                    path.display()
                ))
            })
    }

    async fn loopback_only(&self, path: &std::path::Path) -> Result<()> {
        let created = self.create_netns(path).await?;
        Netlink::from_fd(created.netlink)?.bring_up_lo().await
    }

    /// Binds every planned port, all or nothing.
    async fn bind_ports(
        &self,
        plan: &[PortRequest],
    ) -> std::result::Result<Vec<BoundPort>, proxy::BindError> {
        let mut bound: Vec<BoundPort> = Vec::new();
        for req in plan {
            let mine: Vec<(IpAddr, u16, Proto)> = bound
                .iter()
                .map(|b| (b.host_ip, b.host_port, b.key.proto))
                .collect();
            let taken = |ip: IpAddr, port: u16, proto: Proto| {
                let clash = |(i, p, pr): &(IpAddr, u16, Proto)| {
                    *p == port
                        && *pr == proto
                        && (*i == ip || i.is_unspecified() || ip.is_unspecified())
                };
                mine.iter().any(clash)
                    || lock(&self.published)
                        .values()
                        .any(|p| p.sockets.iter().any(clash))
            };
            bound.push(proxy::bind(req, taken).await?);
        }
        Ok(bound)
    }

    fn start_proxies(&self, container_id: &str, bound: Vec<BoundPort>, ip: Ipv4Addr) {
        if bound.is_empty() {
            return;
        }
        let sockets = bound
            .iter()
            .map(|b| (b.host_ip, b.host_port, b.key.proto))
            .collect();
        let proxies = ProxySet::start(bound, ip);
        lock(&self.published).insert(container_id.to_string(), Published { proxies, sockets });
    }

    async fn rollback(&self, container_id: &str, veth: &str, netns_path: &std::path::Path) {
        self.stop_services(container_id).await;
        if let Err(e) = self.nl.delete(veth).await {
            tracing::warn!(container_id, error = %e, "cannot delete veth");
        }
        let path = netns_path.to_owned();
        let _ = tokio::task::spawn_blocking(move || netns::remove(&path)).await;
        lock(&self.state).endpoints.remove(container_id);
    }

    /// Stops a container's port proxies and DNS server.
    async fn stop_services(&self, container_id: &str) {
        let published = lock(&self.published).remove(container_id);
        if let Some(p) = published {
            p.proxies.stop().await;
        }
        let dns = lock(&self.dns).remove(container_id);
        if let Some(d) = dns {
            d.stop().await;
        }
    }

    /// Re-establishes port publishing (and the embedded DNS on user networks) for a container
    /// that kept running across an engine restart.
    pub async fn restore(&self, container_id: &str, att: &Attachment) -> Result<()> {
        let Ok(ip) = att.ip_address.parse::<Ipv4Addr>() else {
            return Ok(());
        };
        if lock(&self.published).contains_key(container_id)
            || lock(&self.dns).contains_key(container_id)
        {
            return Ok(());
        }
        {
            let mut st = lock(&self.state);
            if !st.endpoints.contains_key(container_id) {
                st.endpoints.insert(
                    container_id.to_string(),
                    EndpointRecord {
                        container_id: container_id.to_string(),
                        container_name: String::new(),
                        network_id: att.network_id.clone(),
                        endpoint_id: att.endpoint_id.clone(),
                        ip,
                        mac: att.mac_address.clone(),
                        veth: format!("veth{}", &att.endpoint_id[..att.endpoint_id.len().min(7)]),
                        aliases: vec![],
                    },
                );
            }
        }
        if let (false, Some(path)) = (att.dns_servers.is_empty(), &att.netns_path) {
            self.start_dns(container_id, path, &att.network_id).await?;
        }
        let mut plan = Vec::new();
        for (key, list) in &att.ports {
            let key = PortKey::parse(key)?;
            for b in list {
                let port: u16 = b.host_port.parse().map_err(|_| {
                    EngineError::invalid(format!("invalid host port {:?}", b.host_port))
                })?;
                let host_ip = if b.host_ip.is_empty() {
                    IpAddr::from([0, 0, 0, 0])
                } else {
                    b.host_ip.parse().map_err(|_| {
                        EngineError::invalid(format!("invalid host IP {:?}", b.host_ip))
                    })?
                };
                plan.push(PortRequest {
                    key,
                    host_ip,
                    host_ports: HostPorts::Range(port, port),
                });
            }
        }
        let bound = self.bind_ports(&plan).await.map_err(|e| {
            EngineError::internal(format!(
                "cannot restore published ports of {container_id}: {e}"
            ))
        })?;
        self.start_proxies(container_id, bound, ip);
        Ok(())
    }

    /// Unpublishes ports, removes the endpoint and the network namespace. Idempotent.
    pub async fn detach(&self, container_id: &str, att: &Attachment) -> Result<()> {
        let started = Instant::now();
        self.stop_services(container_id).await;
        let record = lock(&self.state).endpoints.get(container_id).cloned();
        let veth = match &record {
            Some(r) => Some(r.veth.clone()),
            None if att.endpoint_id.len() >= 7 => Some(format!("veth{}", &att.endpoint_id[..7])),
            None => None,
        };
        if let Some(v) = veth {
            // Deleting a veth waits for an RCU grace period (~20 ms): keep it off the
            // container's exit path, and off the connection the next start uses. The name is
            // unique to the endpoint, so nothing waits on it.
            let nl = self.nl_slow.clone();
            let mut jobs = lock(&self.cleanups);
            while jobs.try_join_next().is_some() {}
            jobs.spawn(async move {
                if let Err(e) = nl.delete(&v).await {
                    tracing::warn!(veth = %v, error = %e, "cannot delete veth");
                }
            });
        }
        if let Some(path) = att.netns_path.clone() {
            tokio::task::spawn_blocking(move || netns::remove(&path))
                .await
                .map_err(|e| EngineError::internal(format!("netns: {e}")))??;
        }
        if let Some(r) = record {
            lock(&self.state).endpoints.remove(container_id);
            self.save().await?;
            let net = lock(&self.state)
                .networks
                .iter()
                .find(|n| n.id == r.network_id)
                .cloned();
            if let Some(net) = net {
                self.publish_event("disconnect", &net, Some(container_id));
            }
        }
        tracing::debug!(
            id = %container_id,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "network detached"
        );
        Ok(())
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
        if let Some(nat) = &self.nat {
            nat.remove().await;
        }
        let dir = self.netns_dir.clone();
        let _ = tokio::task::spawn_blocking(move || netns::release_dir(&dir)).await;
    }

    /// Waits for background cleanups started by `detach`.
    pub async fn settle(&self) {
        let mut jobs = std::mem::take(&mut *lock(&self.cleanups));
        while jobs.join_next().await.is_some() {}
    }
}

/// Checks a user-chosen address: only on user networks (dockerd's rule), inside the subnet,
/// not the gateway, not taken.
fn requested_ip(
    want: &str,
    net: &NetworkRecord,
    subnet: Subnet,
    used: &std::collections::HashSet<Ipv4Addr>,
) -> Result<Ipv4Addr> {
    if net.is_predefined() {
        return Err(EngineError::invalid(
            "user specified IP address is supported on user defined networks only",
        ));
    }
    let ip: Ipv4Addr = want
        .parse()
        .map_err(|_| EngineError::invalid(format!("invalid IPv4 address {want:?}")))?;
    if !subnet.net.contains(&ip) || ip == subnet.net.network() || ip == subnet.net.broadcast() {
        return Err(EngineError::invalid(format!(
            "no configured subnet or ip-range contain the IP address {ip}"
        )));
    }
    if ip == subnet.gateway || used.contains(&ip) {
        return Err(EngineError::conflict(format!(
            "Address already in use: {ip}"
        )));
    }
    Ok(ip)
}

/// Endpoints whose namespace pin is gone (the host rebooted, the exec root was wiped) belong
/// to containers that cannot be running: release their addresses.
fn drop_stale_endpoints(state: &mut State, netns_dir: &std::path::Path) {
    state.endpoints.retain(|cid, _| {
        let keep = netns_dir.join(cid).exists();
        if !keep {
            tracing::info!(container = %cid, "releasing endpoint of a container without namespace");
        }
        keep
    });
}

fn resolved_ports(bound: &[BoundPort]) -> BTreeMap<String, Vec<PortBinding>> {
    let mut out: BTreeMap<String, Vec<PortBinding>> = BTreeMap::new();
    for b in bound {
        out.entry(b.key.to_string()).or_default().push(PortBinding {
            host_ip: b.host_ip.to_string(),
            host_port: b.host_port.to_string(),
        });
    }
    out
}

#[cfg(test)]
mod tests;
