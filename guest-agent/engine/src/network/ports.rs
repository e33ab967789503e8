//! Published ports: `"80/tcp"` keys, `HostConfig.PortBindings`, `-P`, and the concrete
//! host sockets they resolve to.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use super::PortBinding;
use crate::{EngineError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// A container port with its protocol, written `80/tcp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortKey {
    pub port: u16,
    pub proto: Proto,
}

impl PortKey {
    /// Parses `80`, `80/tcp`, `53/udp`.
    pub fn parse(s: &str) -> Result<Self> {
        let (port, proto) = s.split_once('/').unwrap_or((s, "tcp"));
        let proto = match proto.to_ascii_lowercase().as_str() {
            "tcp" | "" => Proto::Tcp,
            "udp" => Proto::Udp,
            other => {
                return Err(EngineError::invalid(format!(
                    "invalid proto '{other}' in port {s}"
                )))
            }
        };
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| EngineError::invalid(format!("invalid port specification: {s:?}")))?;
        Ok(Self { port, proto })
    }
}

impl fmt::Display for PortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.port, self.proto)
    }
}

/// Host ports a binding may take: one port, a range (`8000-8010`), or any (ephemeral).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostPorts {
    Any,
    Range(u16, u16),
}

/// One host socket to open for a container port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRequest {
    pub key: PortKey,
    pub host_ip: IpAddr,
    pub host_ports: HostPorts,
}

fn parse_host_ports(s: &str) -> Result<HostPorts> {
    let bad = || EngineError::invalid(format!("invalid hostPort: {s}"));
    if s.is_empty() || s == "0" {
        return Ok(HostPorts::Any);
    }
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a.parse().map_err(|_| bad())?;
    let b: u16 = b.parse().map_err(|_| bad())?;
    if a == 0 || b < a {
        return Err(bad());
    }
    Ok(HostPorts::Range(a, b))
}

fn parse_host_ip(s: &str) -> Result<IpAddr> {
    let s = s.trim_start_matches('[').trim_end_matches(']');
    if s.is_empty() {
        return Ok(IpAddr::from([0, 0, 0, 0]));
    }
    s.parse()
        .map_err(|_| EngineError::invalid(format!("invalid host IP address {s:?}")))
}

/// What to publish: every explicit binding, plus with `-P` each exposed port that has none,
/// on an ephemeral host port.
pub fn plan(
    bindings: &BTreeMap<String, Vec<PortBinding>>,
    publish_all: bool,
    exposed: &[String],
) -> Result<Vec<PortRequest>> {
    let mut out = Vec::new();
    let mut keys: BTreeMap<PortKey, Vec<PortBinding>> = BTreeMap::new();
    for (k, list) in bindings {
        keys.entry(PortKey::parse(k)?)
            .or_default()
            .extend(list.iter().cloned());
    }
    if publish_all {
        for k in exposed {
            let key = PortKey::parse(k)?;
            let list = keys.entry(key).or_default();
            if list.is_empty() {
                list.push(PortBinding::default());
            }
        }
    }
    for (key, list) in keys {
        for b in list {
            out.push(PortRequest {
                key,
                host_ip: parse_host_ip(&b.host_ip)?,
                host_ports: parse_host_ports(&b.host_port)?,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(ip: &str, port: &str) -> PortBinding {
        PortBinding {
            host_ip: ip.into(),
            host_port: port.into(),
        }
    }

    #[test]
    fn port_keys_parse() {
        assert_eq!(
            PortKey::parse("80").unwrap(),
            PortKey {
                port: 80,
                proto: Proto::Tcp
            }
        );
        assert_eq!(PortKey::parse("53/udp").unwrap().proto, Proto::Udp);
        assert_eq!(PortKey::parse("53/udp").unwrap().to_string(), "53/udp");
        assert!(PortKey::parse("0/tcp").is_err());
        assert!(PortKey::parse("x/tcp").is_err());
        assert!(PortKey::parse("80/sctpx").is_err());
    }

    #[test]
    fn plan_resolves_ips_ranges_and_publish_all() {
        let mut m = BTreeMap::new();
        m.insert("80/tcp".to_string(), vec![b("", "8080")]);
        m.insert("53/udp".to_string(), vec![b("127.0.0.1", "")]);
        m.insert("81".to_string(), vec![b("", "9000-9010")]);
        let exposed = vec!["80/tcp".to_string(), "443/tcp".to_string()];
        let p = plan(&m, true, &exposed).unwrap();
        assert_eq!(p.len(), 4, "{p:?}");
        let find = |port| p.iter().find(|r| r.key.port == port).unwrap();
        assert_eq!(find(80).host_ports, HostPorts::Range(8080, 8080));
        assert_eq!(find(80).host_ip.to_string(), "0.0.0.0");
        assert_eq!(find(53).host_ip.to_string(), "127.0.0.1");
        assert_eq!(find(53).host_ports, HostPorts::Any);
        assert_eq!(find(81).host_ports, HostPorts::Range(9000, 9010));
        assert_eq!(find(443).host_ports, HostPorts::Any);
    }

    #[test]
    fn plan_without_publish_all_ignores_exposed() {
        let p = plan(&BTreeMap::new(), false, &["80/tcp".to_string()]).unwrap();
        assert!(p.is_empty());
    }

    #[test]
    fn plan_rejects_bad_host_port() {
        let mut m = BTreeMap::new();
        m.insert("80/tcp".to_string(), vec![b("", "abc")]);
        assert!(plan(&m, false, &[]).is_err());
        m.insert("80/tcp".to_string(), vec![b("nope", "80")]);
        assert!(plan(&m, false, &[]).is_err());
    }
}
