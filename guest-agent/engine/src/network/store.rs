//! The persisted network state: every network (predefined and user-defined) and every
//! endpoint, in one JSON file written atomically after each change. Addresses in use are the
//! endpoints' addresses, so an address is never handed out twice, across restarts too.

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use berth_docker_api::network::{Ipam, IpamConfig, Network, NetworkContainer};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::ipam::Subnet;
use crate::fsutil;
use crate::id::{match_prefix, PrefixMatch};
use crate::{EngineError, Result};

pub(crate) const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

/// The network option that sets the MTU of the bridge and the veths.
pub(crate) const MTU_OPTION: &str = "com.docker.network.driver.mtu";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct NetworkRecord {
    pub(crate) id: String,
    pub(crate) name: String,
    /// `bridge`, `host` or `null`.
    pub(crate) driver: String,
    /// Interface name of the bridge (empty for `host`/`none`).
    #[serde(default)]
    pub(crate) bridge: String,
    #[serde(default)]
    pub(crate) subnet: Option<Ipv4Net>,
    #[serde(default)]
    pub(crate) gateway: Option<Ipv4Addr>,
    pub(crate) created: String,
    #[serde(default)]
    pub(crate) internal: bool,
    #[serde(default)]
    pub(crate) attachable: bool,
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) options: BTreeMap<String, String>,
    /// `None` when the create request gave none (inspect shows `null`).
    #[serde(default)]
    pub(crate) ipam_options: Option<BTreeMap<String, String>>,
    /// The subnet came from the create request (`--subnet`): only then may containers ask
    /// for a fixed address (`--ip`), as with dockerd.
    #[serde(default)]
    pub(crate) user_subnet: bool,
    /// `--ip-range`: the part of the subnet that addresses are allocated from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ip_range: Option<Ipv4Net>,
}

impl NetworkRecord {
    pub(crate) fn is_predefined(&self) -> bool {
        PREDEFINED.contains(&self.name.as_str())
    }

    /// `com.docker.network.driver.mtu` when it differs from the kernel's 1500 (validated at
    /// create).
    pub(crate) fn mtu(&self) -> Option<u32> {
        self.options
            .get(MTU_OPTION)
            .and_then(|m| m.parse().ok())
            .filter(|m| *m != 0 && *m != 1500)
    }

    pub(crate) fn subnet(&self) -> Option<Subnet> {
        Some(Subnet {
            net: self.subnet?,
            gateway: self.gateway?,
        })
    }

    /// The network's bridge on the host, for networks with a subnet (bridge networks).
    pub(crate) fn bridge(&self) -> Option<super::driver::Bridge> {
        let s = self.subnet()?;
        Some(super::driver::Bridge {
            name: self.bridge.clone(),
            gateway: s.gateway,
            prefix_len: s.net.prefix_len(),
            mtu: self.mtu(),
        })
    }

    /// Docker's `Network` object, with the endpoints in `Containers`.
    pub(crate) fn to_api(&self, endpoints: &[&EndpointRecord]) -> Network {
        let config = match (self.subnet, self.gateway) {
            (Some(s), Some(g)) => vec![IpamConfig {
                subnet: s.to_string(),
                gateway: g.to_string(),
                ip_range: self.ip_range.map(|r| r.to_string()).unwrap_or_default(),
                ..Default::default()
            }],
            _ => vec![],
        };
        let prefix = self.subnet.map(|s| s.prefix_len()).unwrap_or(32);
        Network {
            name: self.name.clone(),
            id: self.id.clone(),
            created: self.created.clone(),
            scope: "local".into(),
            driver: self.driver.clone(),
            enable_ipv4: self.driver == "bridge",
            enable_ipv6: false,
            ipam: Ipam {
                driver: "default".into(),
                config,
                options: self.ipam_options.clone(),
            },
            internal: self.internal,
            attachable: self.attachable,
            containers: endpoints
                .iter()
                .map(|e| {
                    (
                        e.container_id.clone(),
                        NetworkContainer {
                            name: e.container_name.clone(),
                            endpoint_id: e.endpoint_id.clone(),
                            mac_address: e.mac.clone(),
                            ipv4_address: format!("{}/{prefix}", e.ip),
                            ipv6_address: String::new(),
                        },
                    )
                })
                .collect(),
            options: self.options.clone(),
            labels: self.labels.clone(),
            ..Default::default()
        }
    }
}

/// A container's connection to a bridge network.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct EndpointRecord {
    pub(crate) container_id: String,
    pub(crate) container_name: String,
    pub(crate) network_id: String,
    pub(crate) endpoint_id: String,
    pub(crate) ip: Ipv4Addr,
    pub(crate) mac: String,
    /// Host end of the veth pair.
    pub(crate) veth: String,
    /// Extra names the embedded DNS answers for (`--network-alias`, compose service names).
    #[serde(default)]
    pub(crate) aliases: Vec<String>,
    /// The container end: `eth0` for the first network, `eth1`… for networks joined later.
    #[serde(default = "eth0")]
    pub(crate) interface: String,
}

fn eth0() -> String {
    "eth0".into()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct State {
    #[serde(default)]
    pub(crate) networks: Vec<NetworkRecord>,
    /// By endpoint id (a container has one per network it is on).
    #[serde(default)]
    pub(crate) endpoints: BTreeMap<String, EndpointRecord>,
}

impl State {
    pub(crate) fn path(dir: &Path) -> PathBuf {
        dir.join("state.json")
    }

    pub(crate) fn load(dir: &Path) -> Result<Self> {
        fsutil::remove_interrupted_writes(dir);
        let mut st: Self = fsutil::read_json_or_set_aside(&Self::path(dir))?.unwrap_or_default();
        // Files written before containers could join several networks keyed by container id.
        st.endpoints = std::mem::take(&mut st.endpoints)
            .into_values()
            .map(|e| (e.endpoint_id.clone(), e))
            .collect();
        Ok(st)
    }

    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        fsutil::write_json_atomic(&Self::path(dir), self)
            .map_err(|e| EngineError::internal(format!("cannot save network state: {e}")))
    }

    pub(crate) fn by_name(&self, name: &str) -> Option<&NetworkRecord> {
        self.networks.iter().find(|n| n.name == name)
    }

    /// By full id, then name, then unique id prefix (dockerd's order).
    pub(crate) fn find(&self, key: &str) -> Result<&NetworkRecord> {
        if let Some(n) = self.networks.iter().find(|n| n.id == key) {
            return Ok(n);
        }
        if let Some(n) = self.by_name(key) {
            return Ok(n);
        }
        match match_prefix(key, self.networks.iter().map(|n| n.id.as_str())) {
            PrefixMatch::One(id) => self
                .networks
                .iter()
                .find(|n| n.id == id)
                .ok_or_else(|| EngineError::not_found(format!("network {key} not found"))),
            PrefixMatch::Ambiguous => {
                Err(EngineError::invalid(format!("network {key} is ambiguous")))
            }
            PrefixMatch::None => Err(EngineError::not_found(format!("network {key} not found"))),
        }
    }

    pub(crate) fn endpoints_of(&self, network_id: &str) -> Vec<&EndpointRecord> {
        self.endpoints
            .values()
            .filter(|e| e.network_id == network_id)
            .collect()
    }

    /// The container's endpoints, the one with the default route (`eth0`) first.
    pub(crate) fn endpoints_of_container(&self, container_id: &str) -> Vec<&EndpointRecord> {
        let mut v: Vec<&EndpointRecord> = self
            .endpoints
            .values()
            .filter(|e| e.container_id == container_id)
            .collect();
        v.sort_by_key(|e| iface_index(&e.interface));
        v
    }

    /// The container's endpoint on `network_id`.
    pub(crate) fn endpoint_on(
        &self,
        container_id: &str,
        network_id: &str,
    ) -> Option<&EndpointRecord> {
        self.endpoints
            .values()
            .find(|e| e.container_id == container_id && e.network_id == network_id)
    }

    /// Removes and returns every endpoint of the container.
    pub(crate) fn take_container(&mut self, container_id: &str) -> Vec<EndpointRecord> {
        let ids: Vec<String> = self
            .endpoints
            .values()
            .filter(|e| e.container_id == container_id)
            .map(|e| e.endpoint_id.clone())
            .collect();
        ids.iter()
            .filter_map(|id| self.endpoints.remove(id))
            .collect()
    }

    /// The first `ethN` the container does not use yet.
    pub(crate) fn free_interface(&self, container_id: &str) -> String {
        let used: HashSet<u32> = self
            .endpoints_of_container(container_id)
            .iter()
            .map(|e| iface_index(&e.interface))
            .collect();
        let n = (0..).find(|n| !used.contains(n)).unwrap_or(0);
        format!("eth{n}")
    }

    pub(crate) fn used_ips(&self, network_id: &str) -> HashSet<Ipv4Addr> {
        self.endpoints_of(network_id).iter().map(|e| e.ip).collect()
    }
}

/// `N` of `ethN` (unknown names last).
fn iface_index(name: &str) -> u32 {
    name.strip_prefix("eth")
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(id: &str, name: &str) -> NetworkRecord {
        NetworkRecord {
            id: id.into(),
            name: name.into(),
            driver: "bridge".into(),
            subnet: Some("10.7.0.0/24".parse().unwrap()),
            gateway: Some(Ipv4Addr::new(10, 7, 0, 1)),
            ..Default::default()
        }
    }

    #[test]
    fn find_by_id_name_and_prefix() {
        let s = State {
            networks: vec![net("abc123", "one"), net("abd456", "abc")],
            ..Default::default()
        };
        assert_eq!(s.find("abc123").unwrap().name, "one");
        assert_eq!(s.find("abc").unwrap().name, "abc", "name wins over prefix");
        assert_eq!(s.find("abd").unwrap().name, "abc");
        assert!(s.find("ab").is_err());
        assert_eq!(
            s.find("zzz").unwrap_err().to_string(),
            "network zzz not found"
        );
    }

    #[test]
    fn state_round_trips_and_tracks_used_ips() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State {
            networks: vec![net("n1", "one")],
            ..Default::default()
        };
        s.endpoints.insert(
            "e1".into(),
            EndpointRecord {
                container_id: "c1".into(),
                container_name: "web".into(),
                network_id: "n1".into(),
                endpoint_id: "e1".into(),
                ip: Ipv4Addr::new(10, 7, 0, 2),
                mac: "02:42:0a:07:00:02".into(),
                veth: "veth1".into(),
                aliases: vec![],
                interface: "eth0".into(),
            },
        );
        s.save(dir.path()).unwrap();
        let back = State::load(dir.path()).unwrap();
        assert_eq!(back, s);
        assert!(back.used_ips("n1").contains(&Ipv4Addr::new(10, 7, 0, 2)));
        assert_eq!(back.endpoint_on("c1", "n1").unwrap().endpoint_id, "e1");
        assert_eq!(back.free_interface("c1"), "eth1");
        assert_eq!(back.free_interface("c2"), "eth0");
        let api = back.networks[0].to_api(&back.endpoints_of("n1"));
        assert_eq!(api.containers["c1"].ipv4_address, "10.7.0.2/24");
        assert_eq!(api.ipam.config[0].gateway, "10.7.0.1");
    }

    #[test]
    fn old_files_keyed_by_container_are_rekeyed_by_endpoint() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            State::path(dir.path()),
            r#"{"networks":[],"endpoints":{"c1":{"container_id":"c1","container_name":"w",
               "network_id":"n1","endpoint_id":"e1","ip":"10.7.0.2","mac":"m","veth":"v"}}}"#,
        )
        .unwrap();
        let st = State::load(dir.path()).unwrap();
        assert_eq!(st.endpoints["e1"].interface, "eth0");
        assert_eq!(st.endpoints_of_container("c1").len(), 1);
    }
}
