//! A container's network services: the userland proxies of its published ports and the
//! embedded DNS of user networks; started at attach and connect, stopped at detach, brought
//! back by [`NetworkService::restore`] after an engine restart.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use super::dns::{self, DnsServer};
use super::ports::{HostPorts, PortKey, PortRequest, Proto};
use super::proxy::{self, BoundPort};
use super::store::EndpointRecord;
use super::{lock, Attachment, NetworkService, Published};
use crate::{EngineError, Result};

impl NetworkService {
    /// Serves the embedded DNS at 127.0.0.11 inside the container's namespace.
    pub(super) async fn start_dns(
        &self,
        container_id: &str,
        netns_path: &Path,
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
    pub(super) async fn bind_ports(
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

    pub(super) fn start_proxies(&self, container_id: &str, bound: Vec<BoundPort>, ip: Ipv4Addr) {
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

    /// Stops a container's port proxies and DNS server.
    pub(super) async fn stop_services(&self, container_id: &str) {
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
}
