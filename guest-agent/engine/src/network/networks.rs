//! The `/networks` API: list, inspect, create, remove and prune, with the filters
//! dockerd takes, and the predefined `bridge`, `host` and `none` networks.

use std::collections::BTreeMap;

use berth_docker_api::network::{Network, NetworkCreateRequest};

use super::ipam::{self, Subnet};
use super::store::{self, NetworkRecord, State};
use super::{lock, now_rfc3339, NetworkService};
use crate::{id, EngineError, ErrorKind, Result};

impl NetworkService {
    /// All networks matching `filters` (`name`, `id`, `label`, `driver`, `type`, `scope`,
    /// `dangling`).
    pub fn list(&self, filters: &BTreeMap<String, Vec<String>>) -> Result<Vec<Network>> {
        let st = lock(&self.state);
        let mut out = Vec::new();
        for n in &st.networks {
            let eps = st.endpoints_of(&n.id);
            if matches_filters(n, eps.is_empty(), filters)? {
                out.push(n.to_api(&eps));
            }
        }
        Ok(out)
    }

    pub fn inspect(&self, key: &str) -> Result<Network> {
        let st = lock(&self.state);
        let n = st.find(key)?;
        Ok(n.to_api(&st.endpoints_of(&n.id)))
    }

    /// `POST /networks/create`: a user-defined bridge network with its own bridge and subnet.
    /// Returns the id and a warning (empty).
    pub async fn create(&self, req: NetworkCreateRequest) -> Result<(String, String)> {
        let _g = self.admin_lock.lock().await;
        let name = req.name.trim().to_string();
        if name.is_empty() {
            return Err(EngineError::invalid("network name is required"));
        }
        if store::PREDEFINED.contains(&name.as_str()) {
            return Err(EngineError::new(
                ErrorKind::Forbidden,
                format!("operation is not permitted on predefined {name} network "),
            ));
        }
        let driver = if req.driver.is_empty() {
            "bridge"
        } else {
            req.driver.as_str()
        };
        check_driver(driver)?;
        check_ipv6(&req)?;
        let mtu = req.options.get(store::MTU_OPTION);
        if mtu.is_some_and(|m| !m.parse::<u32>().is_ok_and(|m| (68..=65535).contains(&m))) {
            return Err(EngineError::invalid(format!(
                "invalid MTU {:?}: it must be a number from 68 to 65535",
                mtu.map(String::as_str).unwrap_or_default()
            )));
        }
        if lock(&self.state).by_name(&name).is_some() {
            return Err(EngineError::conflict(format!(
                "network with name {name} already exists"
            )));
        }
        let subnet = self.choose_subnet(&req).await?;
        let user_subnet = given_subnet(&req).is_some();
        let ip_range = match given_subnet(&req).map(|c| c.ip_range.as_str()) {
            Some(r) if !r.is_empty() => Some(subnet.range(r)?),
            _ => None,
        };
        let id = id::new_id();
        let bridge = req
            .options
            .get("com.docker.network.bridge.name")
            .cloned()
            .unwrap_or_else(|| format!("br-{}", &id[..12]));
        if bridge.is_empty() || bridge.len() > 15 {
            return Err(EngineError::invalid(format!(
                "invalid bridge name {bridge:?}"
            )));
        }
        // Never adopt an interface someone else made (another engine, dockerd).
        if self.driver.link_exists(&bridge).await? {
            return Err(EngineError::conflict(format!(
                "bridge name {bridge} is already in use"
            )));
        }
        let rec = NetworkRecord {
            id: id.clone(),
            name,
            driver: "bridge".into(),
            bridge: bridge.clone(),
            subnet: Some(subnet.net),
            gateway: Some(subnet.gateway),
            created: now_rfc3339(),
            internal: req.internal,
            attachable: req.attachable,
            labels: req.labels,
            options: req.options,
            user_subnet,
            ip_range,
            ipam_options: req.ipam.and_then(|i| i.options),
        };
        // Record first, then the bridge: a crash in between leaves a record whose bridge the
        // next start makes, never a bridge nothing knows about.
        lock(&self.state).networks.push(rec.clone());
        let made = match self.save().await {
            Ok(()) => match rec.bridge() {
                Some(b) => self.driver.ensure_bridge(&b).await,
                None => Err(EngineError::internal(format!(
                    "network {} has no subnet",
                    rec.name
                ))),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = made {
            lock(&self.state).networks.retain(|n| n.id != id);
            let _ = self.driver.delete_link(&bridge).await;
            let _ = self.save().await;
            return Err(e);
        }
        self.apply_nat().await;
        self.publish_event("create", &rec, None);
        Ok((id, String::new()))
    }

    async fn choose_subnet(&self, req: &NetworkCreateRequest) -> Result<Subnet> {
        let given = given_subnet(req);
        let ours: Vec<ipnet::Ipv4Net> = lock(&self.state)
            .networks
            .iter()
            .filter_map(|n| n.subnet)
            .collect();
        if let Some(c) = given {
            let s = Subnet::from_parts(&c.subnet, &c.gateway)?;
            if ours.iter().any(|o| o.contains(&s.net) || s.net.contains(o)) {
                return Err(EngineError::new(
                    ErrorKind::Forbidden,
                    "Pool overlaps with other one on this address space",
                ));
            }
            return Ok(s);
        }
        let mut taken = self.driver.ipv4_in_use().await?;
        taken.extend(ours);
        let net = ipam::pick_subnet(&taken).ok_or_else(|| {
            EngineError::unavailable(
                "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network",
            )
        })?;
        Subnet::from_parts(&net.to_string(), "")
    }

    /// `DELETE /networks/{id}`.
    pub async fn remove(&self, key: &str) -> Result<()> {
        let _g = self.admin_lock.lock().await;
        let net = {
            let st = lock(&self.state);
            let n = st.find(key)?.clone();
            if n.is_predefined() {
                return Err(EngineError::new(
                    ErrorKind::Forbidden,
                    format!("{} is a pre-defined network and cannot be removed", n.name),
                ));
            }
            if !st.endpoints_of(&n.id).is_empty() {
                // libnetwork's ActiveEndpointsError is a Forbidden error: 403, not 409.
                return Err(EngineError::new(
                    ErrorKind::Forbidden,
                    format!(
                        "error while removing network: network {} id {} has active endpoints",
                        n.name, n.id
                    ),
                ));
            }
            n
        };
        // The bridge first, then the record: a crash in between leaves the network listed
        // (its bridge made again at the next start), never a bridge nothing knows about.
        self.driver.delete_link(&net.bridge).await?;
        lock(&self.state).networks.retain(|n| n.id != net.id);
        self.save().await?;
        self.apply_nat().await;
        self.publish_event("destroy", &net, None);
        Ok(())
    }

    /// `POST /networks/prune`: removes unused user-defined networks (filters `label`,
    /// `label!`, `until` ignored) and returns their names.
    pub async fn prune(&self, filters: &BTreeMap<String, Vec<String>>) -> Result<Vec<String>> {
        let candidates: Vec<NetworkRecord> = {
            let st = lock(&self.state);
            st.networks
                .iter()
                .filter(|n| !n.is_predefined() && st.endpoints_of(&n.id).is_empty())
                .filter(|n| label_filters(&n.labels, filters))
                .cloned()
                .collect()
        };
        let mut deleted = Vec::new();
        for n in candidates {
            match self.remove(&n.id).await {
                Ok(()) => deleted.push(n.name),
                Err(e) => tracing::warn!(network = %n.name, error = %e, "prune skipped network"),
            }
        }
        Ok(deleted)
    }

    /// The network a container uses, for the `NetworkSettings.Networks` key.
    pub fn resolve(&self, mode: &str) -> Result<(String, String)> {
        let key = match mode {
            "" | "default" => "bridge",
            m => m,
        };
        let st = lock(&self.state);
        let n = st.find(key)?;
        Ok((n.name.clone(), n.id.clone()))
    }
}

/// The IPv4 pool of `--subnet`, if the request has one.
/// Only `bridge` networks exist here; swarm-scoped drivers get dockerd's text for a node
/// outside a swarm, others its plugin lookup error.
fn check_driver(driver: &str) -> Result<()> {
    match driver {
        "bridge" => Ok(()),
        "overlay" => Err(EngineError::unavailable(
            "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.",
        )),
        other => Err(EngineError::not_found(format!(
            "plugin \"{other}\" not found"
        ))),
    }
}

/// There is no IPv6 here: `--ipv6` without a subnet gets dockerd's pool exhaustion text,
/// with one a plain refusal.
fn check_ipv6(req: &NetworkCreateRequest) -> Result<()> {
    let v6 = req
        .ipam
        .as_ref()
        .is_some_and(|i| i.config.iter().any(|c| c.subnet.contains(':')));
    if req.enable_ipv6 == Some(true) && !v6 {
        return Err(EngineError::unavailable(
            "could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network",
        ));
    }
    if v6 {
        return Err(EngineError::not_implemented(
            "IPv6 networks are not supported by this engine",
        ));
    }
    Ok(())
}

fn given_subnet(req: &NetworkCreateRequest) -> Option<&berth_docker_api::network::IpamConfig> {
    req.ipam.as_ref().and_then(|i| {
        i.config
            .iter()
            .find(|c| !c.subnet.is_empty() && !c.subnet.contains(':'))
    })
}

pub(super) fn ensure_predefined(state: &mut State, bridge: &str, subnet: Subnet) {
    let opts = BTreeMap::from(
        [
            ("com.docker.network.bridge.default_bridge", "true"),
            ("com.docker.network.bridge.enable_icc", "true"),
            ("com.docker.network.bridge.enable_ip_masquerade", "true"),
            ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
            ("com.docker.network.bridge.name", bridge),
            ("com.docker.network.driver.mtu", "1500"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    for (name, driver) in [("bridge", "bridge"), ("host", "host"), ("none", "null")] {
        if state.by_name(name).is_none() {
            state.networks.push(NetworkRecord {
                id: id::new_id(),
                name: name.into(),
                driver: driver.into(),
                created: if name == "bridge" {
                    now_rfc3339()
                } else {
                    "0001-01-01T00:00:00Z".into()
                },
                ..Default::default()
            });
        }
    }
    if let Some(b) = state.networks.iter_mut().find(|n| n.name == "bridge") {
        b.bridge = bridge.to_string();
        b.subnet = Some(subnet.net);
        b.gateway = Some(subnet.gateway);
        b.options = opts;
    }
}

fn label_filters(
    labels: &BTreeMap<String, String>,
    filters: &BTreeMap<String, Vec<String>>,
) -> bool {
    let has = |w: &String| match w.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(w),
    };
    filters.get("label").is_none_or(|ws| ws.iter().all(has))
        && filters.get("label!").is_none_or(|ws| !ws.iter().any(has))
}

fn matches_filters(
    n: &NetworkRecord,
    unused: bool,
    filters: &BTreeMap<String, Vec<String>>,
) -> Result<bool> {
    for (key, want) in filters {
        if want.is_empty() {
            continue;
        }
        let ok = match key.as_str() {
            "name" => want.iter().any(|w| n.name.contains(w.as_str())),
            "id" => want.iter().any(|w| n.id.starts_with(w.as_str())),
            "driver" => want.contains(&n.driver),
            "scope" => want.iter().any(|w| w == "local"),
            "type" => want.iter().any(|w| match w.as_str() {
                "custom" => !n.is_predefined(),
                "builtin" => n.is_predefined(),
                _ => false,
            }),
            "dangling" => want.iter().any(|w| match w.as_str() {
                "1" | "true" => unused && !n.is_predefined(),
                _ => !unused || n.is_predefined(),
            }),
            "label" | "label!" => {
                label_filters(&n.labels, &BTreeMap::from([(key.clone(), want.clone())]))
            }
            other => {
                return Err(EngineError::invalid(format!("invalid filter '{other}'")));
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}
