//! Network wire types (`/networks*`), in the shape of Docker's `Network`, `IPAM` and
//! `NetworkCreateRequest` definitions. Responses carry every field dockerd sends, zero-valued
//! when unset, because clients index them without guards.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `GET /networks/{id}` and the items of `GET /networks`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Network {
    pub name: String,
    pub id: String,
    pub created: String,
    pub scope: String,
    pub driver: String,
    #[serde(rename = "EnableIPv4")]
    pub enable_ipv4: bool,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    pub config_from: ConfigReference,
    pub config_only: bool,
    pub containers: BTreeMap<String, NetworkContainer>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigReference {
    #[serde(default)]
    pub network: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Ipam {
    #[serde(default = "default_driver")]
    pub driver: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub config: Vec<IpamConfig>,
    /// `null` when the create request gave none, as dockerd shows it.
    #[serde(default)]
    pub options: Option<BTreeMap<String, String>>,
}

impl Default for Ipam {
    fn default() -> Self {
        Self {
            driver: default_driver(),
            config: vec![],
            options: None,
        }
    }
}

fn default_driver() -> String {
    "default".into()
}

/// One IPAM pool. Empty fields are left out, as dockerd does (`{"Subnet":"…","Gateway":"…"}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct IpamConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subnet: String,
    #[serde(default, rename = "IPRange", skip_serializing_if = "String::is_empty")]
    pub ip_range: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub auxiliary_addresses: BTreeMap<String, String>,
}

/// An endpoint in `Network.Containers`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NetworkContainer {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}

/// Body of `POST /networks/create`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkCreateRequest {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub check_duplicate: Option<bool>,
    #[serde(default)]
    pub driver: String,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub ingress: bool,
    #[serde(default)]
    pub config_only: bool,
    #[serde(default, rename = "IPAM")]
    pub ipam: Option<Ipam>,
    #[serde(default, rename = "EnableIPv4")]
    pub enable_ipv4: Option<bool>,
    #[serde(default, rename = "EnableIPv6")]
    pub enable_ipv6: Option<bool>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub options: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
}

/// Reply of `POST /networks/create`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkCreateResponse {
    pub id: String,
    pub warning: String,
}

/// Body of `POST /networks/{id}/connect` and `…/disconnect`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkConnectRequest {
    #[serde(default)]
    pub container: String,
    /// Disconnect only.
    #[serde(default)]
    pub force: bool,
    /// Connect only: `EndpointSettings` (`IPAMConfig.IPv4Address`, `Aliases`, …).
    #[serde(default)]
    pub endpoint_config: Option<serde_json::Value>,
}

/// Reply of `POST /networks/prune`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkPruneResponse {
    /// `null` when nothing was removed (dockerd's shape).
    pub networks_deleted: Option<Vec<String>>,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_request_from_cli_body() {
        let r: NetworkCreateRequest = serde_json::from_str(
            r#"{"Name":"n1","CheckDuplicate":true,"Driver":"bridge","Scope":"","EnableIPv6":false,
               "IPAM":{"Driver":"default","Options":{},"Config":[{"Subnet":"10.9.0.0/24","Gateway":"10.9.0.1"}]},
               "Internal":false,"Attachable":false,"Ingress":false,"ConfigOnly":false,
               "ConfigFrom":null,"Options":{},"Labels":{"a":"b"}}"#,
        )
        .unwrap();
        assert_eq!(r.name, "n1");
        assert_eq!(r.ipam.unwrap().config[0].subnet, "10.9.0.0/24");
        assert_eq!(r.labels["a"], "b");
    }

    #[test]
    fn network_serialises_zero_values() {
        let v = serde_json::to_value(Network::default()).unwrap();
        assert_eq!(v["IPAM"]["Driver"], "default");
        assert!(v["Containers"].as_object().unwrap().is_empty());
        assert_eq!(v["ConfigFrom"]["Network"], "");
        assert_eq!(v["EnableIPv6"], false);
    }
}
