//! Networks: the default bridge, user-defined bridge networks, container network namespaces,
//! outbound NAT and published ports.
//!
//! A container on a bridge network gets a namespace pinned at `<exec_root>/netns/<id>`, a veth
//! pair (host end on the bridge, `eth0` inside), an address from the network's subnet, a
//! default route via the bridge, and a userland proxy per published port. Bridges and
//! namespaces outlive the engine process; after a restart [`NetworkService::restore`] brings
//! the proxies back for containers that kept running.

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
mod store;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use self::dns::DnsServer;
use self::driver::{Link, NatNet, NetDriver, Publication};
use self::ipam::Subnet;
use self::ports::{HostPorts, PortKey, PortRequest, Proto};
use self::proxy::BoundPort;
use self::store::{EndpointRecord, NetworkRecord, State};
use crate::{id, EngineConfig, EngineError, ErrorKind, EventBus, Result};

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

    /// Creates the container's network namespace, connects it to its network (and to
    /// `req.extra`), and publishes its ports.
    pub async fn attach(&self, req: &AttachRequest) -> Result<Attachment> {
        let mode = req.first.network.as_str();
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
        let leftover = self.netns_dir.join(&req.container_id).exists()
            || !lock(&self.state)
                .endpoints_of_container(&req.container_id)
                .is_empty()
            || lock(&self.published).contains_key(&req.container_id);
        if leftover {
            tracing::info!(id = %req.container_id, "releasing a previous endpoint");
            self.release(&req.container_id).await?;
        }
        let named = |net: &NetworkRecord| Endpoint {
            network_name: net.name.clone(),
            network_id: net.id.clone(),
            ..Default::default()
        };
        if net.driver == "host" {
            return Ok(Attachment {
                primary: named(&net),
                ..Default::default()
            });
        }
        if net.driver == "null" {
            // A namespace of our own with `lo` up (a runtime-made one would have it down).
            let path = self.netns_dir.join(&req.container_id);
            if let Err(e) = self.driver.create_sandbox(&path, &[]).await {
                let _ = self.driver.remove_sandbox(&path).await;
                return Err(e);
            }
            return Ok(Attachment {
                netns_path: Some(path),
                primary: named(&net),
                ..Default::default()
            });
        }
        let started = Instant::now();
        let netns_path = self.netns_dir.join(&req.container_id);
        match self.attach_bridge(req, &net, &netns_path).await {
            Ok(att) => {
                tracing::debug!(
                    id = %req.container_id,
                    ms = started.elapsed().as_secs_f64() * 1e3,
                    "network attached"
                );
                Ok(att)
            }
            Err(e) => {
                self.rollback(&req.container_id, &netns_path).await;
                Err(e)
            }
        }
    }

    /// Reserves the endpoints, wires them, saves the state; the caller rolls back on error.
    async fn attach_bridge(
        &self,
        req: &AttachRequest,
        net: &NetworkRecord,
        netns_path: &std::path::Path,
    ) -> Result<Attachment> {
        let cid = req.container_id.as_str();
        let first = self.reserve(net, cid, &req.container_name, &req.first)?;
        let mut more = Vec::with_capacity(req.extra.len());
        for x in &req.extra {
            let n = lock(&self.state).find(&x.network)?.clone();
            joinable(&n)?;
            let rec = self.reserve(&n, cid, &req.container_name, x)?;
            more.push((n, rec));
        }
        let ports = self
            .connect_bridge(req, net, &first, &more, netns_path)
            .await?;
        self.save().await?;
        self.publish_event("connect", net, Some(cid));
        for (n, _) in &more {
            self.publish_event("connect", n, Some(cid));
        }
        let user_net = !net.is_predefined() || more.iter().any(|(n, _)| !n.is_predefined());
        Ok(Attachment {
            netns_path: Some(netns_path.to_owned()),
            primary: endpoint_view(net, &first),
            ports,
            dns_servers: if user_net {
                vec![dns::DNS_ADDR.to_string()]
            } else {
                vec![]
            },
            dns_upstreams: req.dns.clone(),
            extra: more.iter().map(|(n, r)| endpoint_view(n, r)).collect(),
        })
    }

    /// Takes an address on `net` for the container and records the endpoint (in memory; the
    /// caller saves). Its interface is the container's first free `ethN`.
    fn reserve(
        &self,
        net: &NetworkRecord,
        container_id: &str,
        container_name: &str,
        want: &EndpointRequest,
    ) -> Result<EndpointRecord> {
        let subnet = net
            .subnet()
            .ok_or_else(|| EngineError::internal(format!("network {} has no subnet", net.name)))?;
        let name = container_name.trim_start_matches('/');
        let endpoint_id = id::new_id();
        let mut st = lock(&self.state);
        if st.endpoint_on(container_id, &net.id).is_some() {
            return Err(EngineError::new(
                ErrorKind::Forbidden,
                format!(
                    "endpoint with name {name} already exists in network {}",
                    net.name
                ),
            ));
        }
        let used = st.used_ips(&net.id);
        let ip = if want.ipv4_address.is_empty() {
            subnet.allocate(net.ip_range, &used).ok_or_else(|| {
                EngineError::unavailable(format!(
                    "no available IPv4 addresses on network {}",
                    net.name
                ))
            })?
        } else {
            requested_ip(&want.ipv4_address, net, subnet, &used)?
        };
        let mac = match want.mac_address.as_str() {
            "" => ipam::mac_for(ip),
            m => ipam::parse_mac(m)
                .ok_or_else(|| EngineError::invalid(format!("invalid MAC address: {m}")))?,
        };
        let rec = EndpointRecord {
            container_id: container_id.to_string(),
            container_name: name.to_string(),
            network_id: net.id.clone(),
            veth: format!("veth{}", &endpoint_id[..7]),
            endpoint_id: endpoint_id.clone(),
            ip,
            mac: ipam::format_mac(&mac),
            aliases: want.aliases.clone(),
            interface: st.free_interface(container_id),
        };
        st.endpoints.insert(endpoint_id, rec.clone());
        Ok(rec)
    }

    /// Binds the published ports, then creates namespace and veths and starts the proxies.
    async fn connect_bridge(
        &self,
        req: &AttachRequest,
        net: &NetworkRecord,
        first: &EndpointRecord,
        more: &[(NetworkRecord, EndpointRecord)],
        netns_path: &std::path::Path,
    ) -> Result<BTreeMap<String, Vec<PortBinding>>> {
        let plan = ports::plan(&req.port_bindings, req.publish_all, &req.exposed_ports)?;
        let bound = self.bind_ports(&plan).await.map_err(|e| {
            EngineError::internal(format!(
                "driver failed programming external connectivity on endpoint {} ({}): {e}",
                req.container_name.trim_start_matches('/'),
                first.endpoint_id
            ))
        })?;
        let mut links = vec![link_for(net, first, true)?];
        for (n, rec) in more {
            links.push(link_for(n, rec, false)?);
        }
        self.driver.create_sandbox(netns_path, &links).await?;
        if !net.is_predefined() || more.iter().any(|(n, _)| !n.is_predefined()) {
            self.start_dns(&req.container_id, netns_path, &req.dns)
                .await?;
        }
        let resolved = resolved_ports(&bound);
        self.start_proxies(&req.container_id, bound, first.ip);
        Ok(resolved)
    }

    /// `docker network connect` on a running container: a new interface in its namespace on
    /// `req.network`, recorded in `att` (the caller persists it). The default route stays
    /// where it is; joining a first user network starts the embedded DNS.
    pub async fn connect(
        &self,
        container_id: &str,
        container_name: &str,
        att: &mut Attachment,
        req: &EndpointRequest,
    ) -> Result<()> {
        let net = lock(&self.state).find(&req.network)?.clone();
        joinable(&net)?;
        let Some(netns_path) = att.netns_path.clone() else {
            return Err(EngineError::invalid(CONFLICT_HOST));
        };
        let on_none = lock(&self.state)
            .networks
            .iter()
            .any(|n| n.driver == "null" && n.id == att.primary.network_id);
        if on_none {
            return Err(EngineError::invalid(CONFLICT_NONE));
        }
        let rec = self.reserve(&net, container_id, container_name, req)?;
        let only = lock(&self.state).endpoints_of_container(container_id).len() == 1;
        let wired = async {
            let link = link_for(&net, &rec, only)?;
            self.driver.add_link(&netns_path, &link).await?;
            if !net.is_predefined() && !lock(&self.dns).contains_key(container_id) {
                self.start_dns(container_id, &netns_path, &att.dns_upstreams)
                    .await?;
            }
            self.save().await
        }
        .await;
        if let Err(e) = wired {
            lock(&self.state).endpoints.remove(&rec.endpoint_id);
            if let Err(d) = self.driver.delete_link(&rec.veth).await {
                tracing::warn!(veth = %rec.veth, error = %d, "cannot delete veth");
            }
            return Err(e);
        }
        let ep = endpoint_view(&net, &rec);
        if att.primary.network_id.is_empty() {
            att.primary = ep;
        } else {
            att.extra.push(ep);
        }
        if !net.is_predefined() {
            att.dns_servers = vec![dns::DNS_ADDR.to_string()];
        }
        self.publish_event("connect", &net, Some(container_id));
        Ok(())
    }

    /// `docker network disconnect` on a running container: removes its interface on
    /// `network` and updates `att` (the caller persists it). When that interface had the
    /// default route, the next network's gateway takes it over.
    pub async fn disconnect(
        &self,
        container_id: &str,
        att: &mut Attachment,
        network: &str,
    ) -> Result<()> {
        let net = lock(&self.state).find(network)?.clone();
        if net.driver == "host" {
            return Err(EngineError::invalid(CONFLICT_HOST));
        }
        let (rec, next) = {
            let mut st = lock(&self.state);
            let mine = st.endpoints_of_container(container_id);
            let had_route = mine.first().map(|e| e.network_id.as_str()) == Some(net.id.as_str());
            let Some(rec) = st.endpoint_on(container_id, &net.id).cloned() else {
                return Err(not_connected(container_id, &net.name));
            };
            st.endpoints.remove(&rec.endpoint_id);
            let next = had_route
                .then(|| {
                    st.endpoints_of_container(container_id)
                        .first()
                        .map(|e| (*e).clone())
                })
                .flatten();
            (rec, next)
        };
        // Awaited (unlike at exit): the address is gone when the call returns.
        self.driver.delete_link(&rec.veth).await?;
        if let (Some(next), Some(path)) = (next, att.netns_path.clone()) {
            let gw = lock(&self.state)
                .networks
                .iter()
                .find(|n| n.id == next.network_id)
                .and_then(|n| n.gateway);
            if let Some(gw) = gw {
                self.driver
                    .move_default_route(&path, &next.interface, gw)
                    .await?;
            }
        }
        self.save().await?;
        if att.primary.network_id == net.id {
            att.primary = if att.extra.is_empty() {
                Endpoint::default()
            } else {
                att.extra.remove(0)
            };
        } else {
            att.extra.retain(|e| e.network_id != net.id);
        }
        self.publish_event("disconnect", &net, Some(container_id));
        Ok(())
    }

    /// A renamed container answers to its new name in the embedded DNS.
    pub async fn rename_container(&self, container_id: &str, name: &str) -> Result<()> {
        let changed = {
            let mut st = lock(&self.state);
            let mut changed = false;
            for e in st.endpoints.values_mut() {
                if e.container_id == container_id {
                    e.container_name = name.to_string();
                    changed = true;
                }
            }
            changed
        };
        if changed {
            self.save().await?;
        }
        Ok(())
    }

    /// Checks, before a container is created or connected, that `network` exists and that
    /// `ipv4` and `aliases` (if any) may be asked for on it.
    pub fn check_endpoint(&self, network: &str, ipv4: &str, aliases: &[String]) -> Result<()> {
        let key = match network {
            "" | "default" => "bridge",
            n => n,
        };
        let st = lock(&self.state);
        let net = st.find(key)?;
        if !aliases.is_empty() && net.is_predefined() {
            return Err(EngineError::invalid(
                "network-scoped alias is supported only for containers in user defined networks",
            ));
        }
        if ipv4.is_empty() {
            return Ok(());
        }
        match net.subnet() {
            Some(subnet) => requested_ip(ipv4, net, subnet, &Default::default()).map(|_| ()),
            None => Err(EngineError::invalid(USER_IP_ON_USER_NETWORKS)),
        }
    }

    /// Serves the embedded DNS at 127.0.0.11 inside the container's namespace.
    async fn start_dns(
        &self,
        container_id: &str,
        netns_path: &std::path::Path,
        upstreams: &[String],
    ) -> Result<()> {
        let sock = self.driver.bind_dns(netns_path).await?;
        let server = DnsServer::start(
            sock,
            self.state.clone(),
            container_id.to_string(),
            dns::upstreams(upstreams),
        )
        .map_err(|e| EngineError::internal(format!("cannot start embedded DNS: {e}")))?;
        lock(&self.dns).insert(container_id.to_string(), server);
        Ok(())
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
        let proxies = self.driver.publish(ip, bound);
        lock(&self.published).insert(container_id.to_string(), Published { proxies, sockets });
    }

    async fn rollback(&self, container_id: &str, netns_path: &std::path::Path) {
        self.stop_services(container_id).await;
        let records = lock(&self.state).take_container(container_id);
        for r in records {
            if let Err(e) = self.driver.delete_link(&r.veth).await {
                tracing::warn!(container_id, error = %e, "cannot delete veth");
            }
        }
        let _ = self.driver.remove_sandbox(netns_path).await;
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
        if lock(&self.published).contains_key(container_id)
            || lock(&self.dns).contains_key(container_id)
        {
            return Ok(());
        }
        {
            // The state file normally has them; an older one may miss a container's endpoints.
            let mut st = lock(&self.state);
            for (i, ep) in att.endpoints().enumerate() {
                let Ok(ip) = ep.ip_address.parse::<Ipv4Addr>() else {
                    continue;
                };
                if ep.endpoint_id.is_empty() || st.endpoints.contains_key(&ep.endpoint_id) {
                    continue;
                }
                st.endpoints.insert(
                    ep.endpoint_id.clone(),
                    EndpointRecord {
                        container_id: container_id.to_string(),
                        container_name: String::new(),
                        network_id: ep.network_id.clone(),
                        endpoint_id: ep.endpoint_id.clone(),
                        ip,
                        mac: ep.mac_address.clone(),
                        veth: format!("veth{}", &ep.endpoint_id[..ep.endpoint_id.len().min(7)]),
                        aliases: ep.aliases.clone(),
                        interface: format!("eth{i}"),
                    },
                );
            }
        }
        if let (false, Some(path)) = (att.dns_servers.is_empty(), &att.netns_path) {
            self.start_dns(container_id, path, &att.dns_upstreams)
                .await?;
        }
        let Ok(ip) = att.primary.ip_address.parse::<Ipv4Addr>() else {
            return Ok(());
        };
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

    /// Unpublishes ports, removes every endpoint of the container and its network namespace.
    /// Idempotent.
    pub async fn detach(&self, container_id: &str, att: &Attachment) -> Result<()> {
        let started = Instant::now();
        self.stop_services(container_id).await;
        let records: Vec<EndpointRecord> = lock(&self.state)
            .endpoints_of_container(container_id)
            .into_iter()
            .cloned()
            .collect();
        let veths: Vec<String> = if records.is_empty() {
            att.endpoints()
                .filter(|e| e.endpoint_id.len() >= 7)
                .map(|e| format!("veth{}", &e.endpoint_id[..7]))
                .collect()
        } else {
            records.iter().map(|r| r.veth.clone()).collect()
        };
        if !veths.is_empty() {
            // Deleting a veth waits for an RCU grace period (~20 ms): keep it off the
            // container's exit path, and off the connection the next start uses. The names
            // are unique to the endpoints, so nothing waits on them.
            let driver = self.driver.clone();
            let mut jobs = lock(&self.cleanups);
            while jobs.try_join_next().is_some() {}
            jobs.spawn(async move {
                for v in veths {
                    if let Err(e) = driver.delete_link(&v).await {
                        tracing::warn!(veth = %v, error = %e, "cannot delete veth");
                    }
                }
            });
        }
        if let Some(path) = &att.netns_path {
            self.driver.remove_sandbox(path).await?;
        }
        if !records.is_empty() {
            lock(&self.state).take_container(container_id);
            self.save().await?;
            for r in &records {
                let net = lock(&self.state)
                    .networks
                    .iter()
                    .find(|n| n.id == r.network_id)
                    .cloned();
                if let Some(net) = net {
                    self.publish_event("disconnect", &net, Some(container_id));
                }
            }
        }
        tracing::debug!(
            id = %container_id,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "network detached"
        );
        Ok(())
    }

    /// Detaches whatever the state and the namespace directory still have of `container_id`
    /// without its attachment at hand (a crash between an exit and its detach).
    async fn release(&self, container_id: &str) -> Result<()> {
        let att = Attachment {
            netns_path: Some(self.netns_dir.join(container_id)),
            ..Attachment::default()
        };
        self.detach(container_id, &att).await
    }

    /// Releases the endpoints and namespace pins of containers that no longer hold an
    /// attachment: an engine stopped between recording a container's exit (or removal) and
    /// detaching it leaves them behind, and they would keep the network busy and its
    /// addresses taken for ever. Called once at start-up, before any container starts.
    pub async fn release_orphans(&self, holders: &std::collections::HashSet<String>) {
        let mut orphans: std::collections::BTreeSet<String> = lock(&self.state)
            .endpoints
            .values()
            .map(|e| e.container_id.clone())
            .filter(|id| !holders.contains(id))
            .collect();
        if let Ok(dir) = std::fs::read_dir(&self.netns_dir) {
            orphans.extend(
                dir.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|id| id.len() == 64 && !holders.contains(id)),
            );
        }
        for id in orphans {
            tracing::info!(container = %id, "releasing the network of a container that no longer holds it");
            if let Err(e) = self.release(&id).await {
                tracing::warn!(container = %id, error = %e, "cannot release orphaned endpoints");
            }
        }
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

pub(crate) const CONFLICT_HOST: &str =
    "container cannot be disconnected from host network or connected to host network";
pub(crate) const CONFLICT_NONE: &str =
    "container cannot be connected to multiple networks with one of the networks in private (none) mode";
const USER_IP_ON_USER_NETWORKS: &str =
    "user specified IP address is supported on user defined networks only";

/// dockerd's refusals to add `host` or `none` to a container's networks.
fn joinable(net: &NetworkRecord) -> Result<()> {
    match net.driver.as_str() {
        "host" => Err(EngineError::invalid(CONFLICT_HOST)),
        "null" => Err(EngineError::invalid(CONFLICT_NONE)),
        _ => Ok(()),
    }
}

/// dockerd's (unclassified, hence 500) error for leaving a network one is not on.
pub(crate) fn not_connected(container_id: &str, network: &str) -> EngineError {
    EngineError::internal(format!(
        "container {container_id} is not connected to network {network}"
    ))
}

fn endpoint_view(net: &NetworkRecord, rec: &EndpointRecord) -> Endpoint {
    let (prefix, gateway) = net
        .subnet()
        .map(|s| (s.net.prefix_len(), s.gateway.to_string()))
        .unwrap_or_default();
    Endpoint {
        network_name: net.name.clone(),
        network_id: net.id.clone(),
        endpoint_id: rec.endpoint_id.clone(),
        ip_address: rec.ip.to_string(),
        ip_prefix_len: prefix,
        gateway,
        mac_address: rec.mac.clone(),
        aliases: rec.aliases.clone(),
    }
}

/// Checks a user-chosen address: only on user networks whose subnet the user gave (dockerd's
/// rules), inside the subnet, not the gateway, not taken.
fn requested_ip(
    want: &str,
    net: &NetworkRecord,
    subnet: Subnet,
    used: &std::collections::HashSet<Ipv4Addr>,
) -> Result<Ipv4Addr> {
    if net.is_predefined() {
        return Err(EngineError::invalid(USER_IP_ON_USER_NETWORKS));
    }
    if !net.user_subnet {
        return Err(EngineError::invalid(
            "user specified IP address is supported only when connecting to networks with user configured subnets",
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

/// The veth pair of endpoint `rec` on `net`; with `default_route`, the container's default
/// route goes via the network's gateway.
fn link_for(net: &NetworkRecord, rec: &EndpointRecord, default_route: bool) -> Result<Link> {
    let bridge = net
        .bridge()
        .ok_or_else(|| EngineError::internal(format!("network {} has no subnet", net.name)))?;
    Ok(Link {
        veth: rec.veth.clone(),
        interface: rec.interface.clone(),
        mac: ipam::parse_mac(&rec.mac).unwrap_or_else(|| ipam::mac_for(rec.ip)),
        mtu: bridge.mtu,
        ip: rec.ip,
        prefix_len: bridge.prefix_len,
        gateway: default_route.then_some(bridge.gateway),
        bridge: bridge.name,
    })
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
