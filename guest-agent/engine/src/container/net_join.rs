//! `--network container:<name|id>`: the container joins another running container's network
//! namespace (`/proc/<pid>/ns/net` of the target's init) and has no endpoint, address or port
//! of its own, as with dockerd. Create refuses the options that would need them, with
//! dockerd's texts; start resolves the target.

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_docker_api::container::{ContainerConfig, HostConfig};
use serde_json::Value;

use crate::network::Attachment;
use crate::{EngineError, Result};

use super::Svc;

/// The target named by a `container:<name|id>` network mode (possibly empty), if that is the
/// form.
pub(crate) fn target(network_mode: &str) -> Option<&str> {
    network_mode.strip_prefix("container:")
}

/// dockerd's create-time checks of a container network mode (`validateNetContainerMode`),
/// in its order and words. `cfg` is the request's config, before the image's defaults.
pub(super) fn check_create(
    cfg: &ContainerConfig,
    host: &HostConfig,
    endpoints: Option<&BTreeMap<String, Value>>,
) -> Result<()> {
    let Some(name) = target(&host.network_mode) else {
        return Ok(());
    };
    let conflict = |what: &str| Err(EngineError::invalid(format!("conflicting options: {what}")));
    if name.is_empty() {
        return Err(EngineError::invalid(
            "Invalid network mode: invalid container format container:<name|id>",
        ));
    }
    let some = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
    if !cfg.hostname.is_empty() {
        return conflict("hostname and the network mode");
    }
    if some(&host.links) {
        return conflict(
            "container type network can't be used with links. This would result in undefined behavior",
        );
    }
    if some(&host.dns) {
        return conflict("dns and the network mode");
    }
    if some(&host.extra_hosts) {
        return conflict("custom host-to-IP mapping and the network mode");
    }
    if cfg.mac_address.as_ref().is_some_and(|m| !m.is_empty()) {
        return conflict("mac-address and the network mode");
    }
    let published = host.port_bindings.as_ref().is_some_and(|p| !p.is_empty());
    if published || host.publish_all_ports {
        return conflict("port publishing and the container type network mode");
    }
    if cfg.exposed_ports.as_ref().is_some_and(|p| !p.is_empty()) {
        return conflict("port exposing and the container type network mode");
    }
    let endpoints = endpoints.map(|e| e.keys().collect::<Vec<_>>());
    match endpoints.as_deref() {
        Some([]) | None => Ok(()),
        Some([only]) if **only == host.network_mode => Ok(()),
        Some(names) => Err(EngineError::invalid(format!(
            "Container cannot be connected to network endpoints: {}",
            names
                .iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// What a start takes from the container whose network it joins.
#[derive(Debug, Clone)]
pub struct NetJoin {
    /// The target's network namespace (`/proc/<pid>/ns/net`).
    pub netns: PathBuf,
    /// The target's hostname, which the joining container gets (as with dockerd).
    pub hostname: String,
    /// The target's attachment: its address and nameservers for the `/etc` files. Never
    /// recorded as the joining container's own.
    pub target: Attachment,
}

impl Svc {
    /// `container:<name|id>` as sent, made `container:<full id>` when that container exists,
    /// as dockerd stores it (a missing one is only an error at start).
    pub(super) fn resolve_net_target(&self, network_mode: &str) -> String {
        match target(network_mode).and_then(|n| self.get(n).ok()) {
            Some(other) => format!("container:{}", other.id),
            None => network_mode.to_string(),
        }
    }

    /// The network namespace a start of `id` joins, if its mode is `container:<name|id>`:
    /// that container must exist, be another one, and run.
    pub(super) fn net_join(&self, id: &str, host: &HostConfig) -> Result<Option<NetJoin>> {
        let Some(name) = target(&host.network_mode) else {
            return Ok(None);
        };
        let other = self.get(name)?;
        if other.id == id {
            return Err(EngineError::invalid("cannot join own network"));
        }
        let s = other.snapshot();
        let st = &s.state.state;
        if !st.running || st.pid <= 0 {
            return Err(EngineError::conflict(format!(
                "cannot join network of a non running container: {}",
                other.id
            )));
        }
        Ok(Some(NetJoin {
            netns: format!("/proc/{}/ns/net", st.pid).into(),
            hostname: s.record.config.hostname.clone(),
            target: s.attachment.clone().unwrap_or_default(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(name: &str) -> HostConfig {
        HostConfig {
            network_mode: format!("container:{name}"),
            ..Default::default()
        }
    }

    fn refusal(cfg: &ContainerConfig, host: &HostConfig) -> String {
        check_create(cfg, host, None).unwrap_err().to_string()
    }

    #[test]
    fn other_modes_are_not_checked_here() {
        let host = HostConfig {
            network_mode: "bridge".into(),
            dns: Some(vec!["1.1.1.1".into()]),
            ..Default::default()
        };
        let cfg = ContainerConfig {
            hostname: "h".into(),
            ..Default::default()
        };
        assert!(check_create(&cfg, &host, None).is_ok());
        assert_eq!(target("bridge"), None);
        assert_eq!(target("container:web"), Some("web"));
    }

    #[test]
    fn options_that_need_an_own_network_are_refused_in_dockerds_words() {
        let none = ContainerConfig::default();
        assert!(check_create(&none, &joined("web"), None).is_ok());
        let named = ContainerConfig {
            hostname: "h".into(),
            ..Default::default()
        };
        let exposed = ContainerConfig {
            exposed_ports: Some(BTreeMap::from([("80/tcp".to_string(), Default::default())])),
            ..Default::default()
        };
        let mut ports = joined("web");
        ports.port_bindings = Some(BTreeMap::from([("80/tcp".to_string(), None)]));
        let mut all = joined("web");
        all.publish_all_ports = true;
        let mut dns = joined("web");
        dns.dns = Some(vec!["1.1.1.1".into()]);
        let mut hosts = joined("web");
        hosts.extra_hosts = Some(vec!["a:1.2.3.4".into()]);
        let mut links = joined("web");
        links.links = Some(vec!["web:w".into()]);
        let publishing = "conflicting options: port publishing and the container type network mode";
        for (cfg, host, said) in [
            (&none, &joined(""), "Invalid network mode: invalid container format container:<name|id>"),
            (&named, &joined("web"), "conflicting options: hostname and the network mode"),
            (&none, &ports, publishing),
            (&none, &all, publishing),
            (&exposed, &joined("web"), "conflicting options: port exposing and the container type network mode"),
            (&none, &dns, "conflicting options: dns and the network mode"),
            (&none, &hosts, "conflicting options: custom host-to-IP mapping and the network mode"),
            (&none, &links, "conflicting options: container type network can't be used with links. This would result in undefined behavior"),
        ] {
            assert_eq!(refusal(cfg, host), said);
        }
    }

    #[test]
    fn only_the_modes_own_endpoint_entry_is_accepted() {
        let cfg = ContainerConfig::default();
        let own = BTreeMap::from([("container:web".to_string(), Value::Null)]);
        assert!(check_create(&cfg, &joined("web"), Some(&own)).is_ok());
        let two = BTreeMap::from([
            ("container:web".to_string(), Value::Null),
            ("net1".to_string(), Value::Null),
        ]);
        let e = check_create(&cfg, &joined("web"), Some(&two)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Container cannot be connected to network endpoints: container:web, net1"
        );
    }
}
