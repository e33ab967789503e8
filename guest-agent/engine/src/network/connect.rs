//! `docker network connect` and `disconnect` on a running container, a rename seen by the
//! embedded DNS, and the checks of an endpoint asked for at create.

use super::attach::{endpoint_view, joinable, link_for, requested_ip};
use super::{dns, lock, Attachment, Endpoint, EndpointRequest, NetworkService};
use crate::{EngineError, Result};

impl NetworkService {
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
}

pub(crate) const CONFLICT_HOST: &str =
    "container cannot be disconnected from host network or connected to host network";

pub(crate) const CONFLICT_NONE: &str =
    "container cannot be connected to multiple networks with one of the networks in private (none) mode";

pub(super) const USER_IP_ON_USER_NETWORKS: &str =
    "user specified IP address is supported on user defined networks only";

/// dockerd's (unclassified, hence 500) error for leaving a network one is not on.
pub(crate) fn not_connected(container_id: &str, network: &str) -> EngineError {
    EngineError::internal(format!(
        "container {container_id} is not connected to network {network}"
    ))
}
