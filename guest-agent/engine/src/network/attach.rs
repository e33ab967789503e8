//! A container's start on the network: its namespace, an endpoint (address, MAC, `ethN`)
//! on its first network and on each further one, the veth pairs, the published ports and, on
//! user networks, the embedded DNS; all undone when any step fails.

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Instant;

use super::connect::{CONFLICT_HOST, CONFLICT_NONE, USER_IP_ON_USER_NETWORKS};
use super::driver::Link;
use super::ipam::{self, Subnet};
use super::proxy::BoundPort;
use super::store::{EndpointRecord, NetworkRecord};
use super::{dns, lock, ports};
use super::{AttachRequest, Attachment, Endpoint, EndpointRequest, NetworkService, PortBinding};
use crate::{id, EngineError, ErrorKind, Result};

impl NetworkService {
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
        netns_path: &Path,
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
    pub(super) fn reserve(
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
        netns_path: &Path,
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

    async fn rollback(&self, container_id: &str, netns_path: &Path) {
        self.stop_services(container_id).await;
        let records = lock(&self.state).take_container(container_id);
        for r in records {
            if let Err(e) = self.driver.delete_link(&r.veth).await {
                tracing::warn!(container_id, error = %e, "cannot delete veth");
            }
        }
        let _ = self.driver.remove_sandbox(netns_path).await;
    }
}

/// dockerd's refusals to add `host` or `none` to a container's networks.
pub(super) fn joinable(net: &NetworkRecord) -> Result<()> {
    match net.driver.as_str() {
        "host" => Err(EngineError::invalid(CONFLICT_HOST)),
        "null" => Err(EngineError::invalid(CONFLICT_NONE)),
        _ => Ok(()),
    }
}

pub(super) fn endpoint_view(net: &NetworkRecord, rec: &EndpointRecord) -> Endpoint {
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
pub(super) fn requested_ip(
    want: &str,
    net: &NetworkRecord,
    subnet: Subnet,
    used: &HashSet<Ipv4Addr>,
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
pub(super) fn link_for(
    net: &NetworkRecord,
    rec: &EndpointRecord,
    default_route: bool,
) -> Result<Link> {
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
