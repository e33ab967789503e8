//! A container's networks: the list recorded at create from `NetworkingConfig` (with `--ip`
//! and aliases), and `docker network connect/disconnect`, live on a running container or
//! recorded for the next start of a stopped one.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::record::Paths;
use super::{Container, Svc};
use crate::network::{self, EndpointRequest};
use crate::{EngineError, ErrorKind, Result};

/// The parts of Docker's `EndpointSettings` a request gives (the rest is output only).
/// `null` and absent are the same, as in dockerd.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct EndpointSettings {
    #[serde(rename = "IPAMConfig")]
    ipam_config: Option<EndpointIpam>,
    aliases: Option<Vec<String>>,
    links: Option<Vec<String>>,
    mac_address: Option<String>,
    driver_opts: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EndpointIpam {
    #[serde(rename = "IPv4Address")]
    ipv4_address: Option<String>,
    #[serde(rename = "IPv6Address")]
    ipv6_address: Option<String>,
    #[serde(rename = "LinkLocalIPs")]
    link_local_ips: Option<Vec<String>>,
}

/// The request for `network` made of one `EndpointSettings` value.
fn endpoint_request(network: &str, settings: &Value) -> Result<EndpointRequest> {
    let s: EndpointSettings = if settings.is_null() {
        EndpointSettings::default()
    } else {
        EndpointSettings::deserialize(settings)
            .map_err(|e| EngineError::invalid(format!("invalid endpoint settings: {e}")))?
    };
    let ipam = s.ipam_config.unwrap_or_default();
    Ok(EndpointRequest {
        network: network.to_string(),
        ipv4_address: ipam.ipv4_address.unwrap_or_default(),
        aliases: s.aliases.unwrap_or_default(),
        mac_address: s.mac_address.unwrap_or_default(),
        ipv6_address: ipam.ipv6_address.unwrap_or_default(),
        link_local_ips: ipam.link_local_ips.unwrap_or_default(),
        links: s.links.unwrap_or_default(),
        driver_opts: s.driver_opts,
    })
}

fn is_default(name: &str) -> bool {
    matches!(name, "" | "default" | "bridge")
}

impl Svc {
    /// The networks a new container joins: its network mode (with the settings of its
    /// `EndpointsConfig` entry) first, then the other entries (`--network a --network b`).
    /// `Config.MacAddress` (`legacy_mac`, before API 1.44) is the first network's unless its
    /// entry has one. Checks `--ip`, aliases and MAC addresses like dockerd does at create.
    pub(crate) fn network_plan(
        &self,
        network_mode: &str,
        endpoints: Option<&BTreeMap<String, Value>>,
        legacy_mac: Option<&str>,
    ) -> Result<Vec<EndpointRequest>> {
        if super::net_join::target(network_mode).is_some() {
            // No endpoint of its own: it shares another container's (checked at create).
            return Ok(vec![]);
        }
        let empty = BTreeMap::new();
        let endpoints = endpoints.unwrap_or(&empty);
        let same = |key: &str| key == network_mode || (is_default(key) && is_default(network_mode));
        let mut first = endpoints
            .iter()
            .find(|(k, _)| same(k))
            .map(|(_, v)| endpoint_request(network_mode, v))
            .transpose()?
            .unwrap_or_else(|| EndpointRequest {
                network: network_mode.to_string(),
                ..Default::default()
            });
        if first.mac_address.is_empty() {
            first.mac_address = legacy_mac.unwrap_or_default().to_string();
        }
        let mut plan = vec![first];
        for (k, v) in endpoints.iter().filter(|(k, _)| !same(k)) {
            plan.push(endpoint_request(k, v)?);
        }
        if plan.len() > 1 && matches!(network_mode, "host" | "none") {
            return Err(EngineError::invalid(
                "conflicting options: cannot attach both user-defined and non-user-defined network-modes",
            ));
        }
        for r in &plan {
            if !r.mac_address.is_empty() && network::parse_mac(&r.mac_address).is_none() {
                return Err(EngineError::invalid(format!(
                    "invalid MAC address: {}",
                    r.mac_address
                )));
            }
            if !r.ipv4_address.is_empty() || !r.aliases.is_empty() {
                self.networks
                    .check_endpoint(&r.network, &r.ipv4_address, &r.aliases)?;
            }
        }
        Ok(plan)
    }

    /// `POST /networks/{id}/connect` with the request's `EndpointConfig`.
    pub async fn network_connect(
        &self,
        network: &str,
        container: &str,
        settings: &Value,
    ) -> Result<()> {
        let c = self.get(container)?;
        let (net_name, net_id) = self.networks.resolve(network)?;
        let req = endpoint_request(&net_name, settings)?;
        let _op = c.op.lock().await;
        let s = c.snapshot();
        match s.host.network_mode.as_str() {
            "host" => return Err(EngineError::invalid(network::CONFLICT_HOST)),
            "none" => return Err(EngineError::invalid(network::CONFLICT_NONE)),
            m if m.starts_with("container:") => {
                return Err(EngineError::invalid(
                    "container sharing network namespace with another container or host cannot be connected to any other network",
                ))
            }
            _ => {}
        }
        self.networks
            .check_endpoint(&net_name, &req.ipv4_address, &req.aliases)?;
        let mut plan = s.network_plan();
        if plan.iter().any(|r| self.network_id(&r.network) == net_id) {
            return Err(EngineError::new(
                ErrorKind::Forbidden,
                format!(
                    "endpoint with name {} already exists in network {net_name}",
                    s.record.name
                ),
            ));
        }
        let paths = self.paths(&c.id);
        if let (true, Some(mut att)) = (s.state.state.running, s.attachment.clone()) {
            let had_dns = !att.dns_servers.is_empty();
            self.networks
                .connect(&c.id, &s.record.name, &mut att, &req)
                .await?;
            if !had_dns && !att.dns_servers.is_empty() {
                // Joining a first user network switches the container to the embedded DNS,
                // as dockerd does (rewritten in place: the file is bind-mounted).
                let settings = super::etc::EtcSettings::of(&s.host, &att.primary.gateway);
                super::etc::write_resolv_conf(&paths.dir, &att.dns_servers, false, &settings)?;
            }
            set_live(&c, &paths, att)?;
        }
        plan.push(req);
        save_plan(&c, &paths, plan)
    }

    /// `POST /networks/{id}/disconnect`. With `force`, a network that no longer exists is
    /// dropped from a stopped container's list too.
    pub async fn network_disconnect(
        &self,
        network: &str,
        container: &str,
        force: bool,
    ) -> Result<()> {
        let c = self.get(container)?;
        let resolved = self.networks.resolve(network);
        let (net_name, net_id) = match resolved {
            Ok(v) => v,
            Err(_) if force => (network.to_string(), String::new()),
            Err(e) => return Err(e),
        };
        let _op = c.op.lock().await;
        let s = c.snapshot();
        if s.host.network_mode == "host" && net_name == "host" {
            return Err(EngineError::invalid(network::CONFLICT_HOST));
        }
        let mut plan = s.network_plan();
        let Some(pos) = plan.iter().position(|r| {
            r.network == net_name || (!net_id.is_empty() && self.network_id(&r.network) == net_id)
        }) else {
            return Err(network::not_connected(&c.id, &net_name));
        };
        let paths = self.paths(&c.id);
        if let (true, Some(mut att)) = (s.state.state.running, s.attachment.clone()) {
            if att.endpoints().any(|e| e.network_id == net_id) {
                self.networks.disconnect(&c.id, &mut att, &net_id).await?;
                set_live(&c, &paths, att)?;
            }
        }
        plan.remove(pos);
        save_plan(&c, &paths, plan)
    }

    /// The id of a network named in a plan (empty if it is gone).
    pub(super) fn network_id(&self, key: &str) -> String {
        let key = if is_default(key) { "bridge" } else { key };
        self.networks
            .resolve(key)
            .map(|(_, id)| id)
            .unwrap_or_default()
    }
}

/// Records the changed attachment of a running container; one that exited meanwhile (its
/// exit released every endpoint) keeps none.
fn set_live(c: &Container, paths: &Paths, att: network::Attachment) -> Result<()> {
    c.update(paths, |st| {
        if st.state.state.running {
            st.attachment = Some(att);
        }
    })
}

/// Records the container's network list in `config.json`.
fn save_plan(c: &Container, paths: &Paths, plan: Vec<EndpointRequest>) -> Result<()> {
    let mut g = c.stored.lock().unwrap_or_else(|e| e.into_inner());
    let mut record = g.record.clone();
    record.networks = Some(plan);
    crate::fsutil::write_json_atomic(&paths.config(), &record)?;
    g.record = record;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_settings_give_ip_and_aliases() {
        let v: Value = serde_json::from_str(
            r#"{"IPAMConfig":{"IPv4Address":"10.1.2.3","IPv6Address":"fd00::3",
                "LinkLocalIPs":["169.254.1.1"]},"Aliases":["a","b"],"Links":["c:d"],
                "DriverOpts":{"k":"v"},"MacAddress":"02:42:0a:01:02:03","NetworkID":"x"}"#,
        )
        .unwrap();
        let r = endpoint_request("n1", &v).unwrap();
        assert_eq!(r.ipv4_address, "10.1.2.3");
        assert_eq!(r.ipv6_address, "fd00::3");
        assert_eq!(r.link_local_ips, ["169.254.1.1"]);
        assert_eq!(r.aliases, ["a", "b"]);
        assert_eq!(r.links, ["c:d"]);
        assert_eq!(r.mac_address, "02:42:0a:01:02:03");
        assert_eq!(r.driver_opts.unwrap()["k"], "v");
        let r = endpoint_request("n1", &Value::Null).unwrap();
        assert!(r.ipv4_address.is_empty() && r.aliases.is_empty() && r.driver_opts.is_none());
        let nulls = serde_json::json!({"IPAMConfig": null, "Aliases": null, "Links": null});
        assert!(endpoint_request("n1", &nulls).unwrap().links.is_empty());
        let bad = serde_json::json!({"Aliases": "x"});
        assert!(endpoint_request("n1", &bad).is_err());
    }
}
