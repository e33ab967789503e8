//! The per-container `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`, written like
//! dockerd does and bind-mounted into the container.

use std::path::Path;

use berth_docker_api::container::HostConfig;

use crate::Result;

/// What a container's `HostConfig` adds to these files: `--add-host`, `--dns`,
/// `--dns-search`, `--dns-option`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EtcConfig {
    /// `(address, name)`; `host-gateway` is already replaced by the gateway.
    pub extra_hosts: Vec<(String, String)>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
}

impl EtcConfig {
    /// From the container's host config; `gateway` stands in for `host-gateway`.
    pub fn new(host: &HostConfig, gateway: &str) -> Self {
        let list = |v: &Option<Vec<String>>| v.clone().unwrap_or_default();
        let extra_hosts = list(&host.extra_hosts)
            .iter()
            .filter_map(|h| {
                // `name:address` (the address may be IPv6) or, since API 1.44, `name=address`.
                let (name, addr) = h.split_once('=').or_else(|| h.split_once(':'))?;
                let addr = if addr == "host-gateway" {
                    gateway
                } else {
                    addr
                };
                Some((addr.trim_matches(['[', ']']).to_string(), name.to_string()))
            })
            .collect();
        Self {
            extra_hosts,
            dns: list(&host.dns),
            dns_search: list(&host.dns_search),
            dns_options: list(&host.dns_options),
        }
    }
}

/// `/etc/hosts` with loopback entries, `--add-host` entries and the container's own address.
pub fn hosts(ip: &str, hostname: &str, extra: &[(String, String)]) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    for (addr, name) in extra {
        s.push_str(&format!("{addr}\t{name}\n"));
    }
    if !ip.is_empty() {
        s.push_str(&format!("{ip}\t{hostname}\n"));
    }
    s
}

/// The host's resolv.conf without loopback nameservers (unreachable from a container's
/// netns); Google's servers when none remain, like dockerd.
pub fn resolv_conf(host: &str, keep_loopback: bool) -> String {
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let t = line.trim();
        if let Some(addr) = t.strip_prefix("nameserver") {
            let addr = addr.trim();
            let loopback = addr.starts_with("127.") || addr == "::1";
            if loopback && !keep_loopback {
                continue;
            }
            servers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

/// resolv.conf of a container on a user network: the embedded DNS (`nameservers`), the
/// host's search domains, and `ndots:0` so single names go to the embedded DNS first.
pub fn resolv_conf_embedded(host: &str, nameservers: &[String]) -> String {
    let mut out: String = nameservers
        .iter()
        .map(|n| format!("nameserver {n}\n"))
        .collect();
    for line in host.lines() {
        if line.trim().starts_with("search") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str("options ndots:0\n");
    out
}

/// `base` with its nameservers, search domains and options replaced by those of `cfg` that
/// are set (dockerd's `resolvconf.Build`; a search domain `.` means none).
pub fn with_overrides(base: &str, cfg: &EtcConfig) -> String {
    if cfg.dns.is_empty() && cfg.dns_search.is_empty() && cfg.dns_options.is_empty() {
        return base.to_string();
    }
    let pick = |key: &str, own: &[String]| -> Vec<String> {
        if !own.is_empty() {
            return own.to_vec();
        }
        base.lines()
            .filter_map(|l| l.trim().strip_prefix(key))
            .filter(|rest| rest.starts_with([' ', '\t']))
            .flat_map(|rest| rest.split_whitespace().map(str::to_string))
            .collect()
    };
    let mut out = String::new();
    let search: Vec<String> = pick("search", &cfg.dns_search)
        .into_iter()
        .filter(|d| d != ".")
        .collect();
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    for n in pick("nameserver", &cfg.dns) {
        out.push_str(&format!("nameserver {n}\n"));
    }
    let options = pick("options", &cfg.dns_options);
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

/// Writes `resolv.conf` into `dir`: the embedded DNS when `nameservers` is not empty, else
/// the host's, with the container's own settings over either. A plain write keeps the inode,
/// so a running container sees the new file through its bind mount.
pub fn write_resolv_conf(
    dir: &Path,
    nameservers: &[String],
    host_network: bool,
    cfg: &EtcConfig,
) -> Result<()> {
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let text = if nameservers.is_empty() {
        with_overrides(&resolv_conf(&host_resolv, host_network), cfg)
    } else {
        // The embedded DNS stays the nameserver (it forwards what it does not know).
        let own = EtcConfig {
            dns: vec![],
            ..cfg.clone()
        };
        with_overrides(&resolv_conf_embedded(&host_resolv, nameservers), &own)
    };
    std::fs::write(dir.join("resolv.conf"), text)?;
    Ok(())
}

/// Writes the three files into `dir`. They are regenerated at every start, so a plain write
/// (no fsync) is enough.
pub fn write_all(
    dir: &Path,
    ip: &str,
    hostname: &str,
    host_network: bool,
    nameservers: &[String],
    cfg: &EtcConfig,
) -> Result<()> {
    let write_atomic = |p: &Path, data: &[u8]| std::fs::write(p, data);
    write_atomic(&dir.join("hostname"), format!("{hostname}\n").as_bytes())?;
    let hosts_text = if host_network {
        let mut h =
            std::fs::read_to_string("/etc/hosts").unwrap_or_else(|_| hosts("", hostname, &[]));
        for (addr, name) in &cfg.extra_hosts {
            h.push_str(&format!("{addr}\t{name}\n"));
        }
        h
    } else {
        hosts(ip, hostname, &cfg.extra_hosts)
    };
    write_atomic(&dir.join("hosts"), hosts_text.as_bytes())?;
    write_resolv_conf(dir, nameservers, host_network, cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_has_container_line() {
        let h = hosts("172.30.0.2", "abc", &[]);
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("172.30.0.2\tabc\n"));
        assert!(!hosts("", "abc", &[]).contains("abc"));
    }

    #[test]
    fn extra_hosts_come_before_the_container_line() {
        let host = HostConfig {
            extra_hosts: Some(vec![
                "foo.local:10.9.8.7".into(),
                "gw=host-gateway".into(),
                "v6:::1".into(),
                "bad".into(),
            ]),
            ..Default::default()
        };
        let cfg = EtcConfig::new(&host, "10.0.0.1");
        let h = hosts("10.0.0.2", "abc", &cfg.extra_hosts);
        assert!(
            h.ends_with("10.9.8.7\tfoo.local\n10.0.0.1\tgw\n::1\tv6\n10.0.0.2\tabc\n"),
            "{h}"
        );
    }

    #[test]
    fn dns_settings_replace_the_hosts() {
        let base = "search lan\nnameserver 10.0.0.1\noptions edns0\n";
        assert_eq!(with_overrides(base, &EtcConfig::default()), base);
        let cfg = EtcConfig {
            dns: vec!["1.2.3.4".into()],
            dns_options: vec!["ndots:2".into()],
            ..Default::default()
        };
        assert_eq!(
            with_overrides(base, &cfg),
            "search lan\nnameserver 1.2.3.4\noptions ndots:2\n"
        );
        let cfg = EtcConfig {
            dns_search: vec![".".into()],
            ..Default::default()
        };
        assert_eq!(
            with_overrides(base, &cfg),
            "nameserver 10.0.0.1\noptions edns0\n"
        );
    }

    #[test]
    fn resolv_drops_loopback() {
        let r = resolv_conf(
            "search lan\nnameserver 127.0.0.53\nnameserver 10.0.0.1\n",
            false,
        );
        assert_eq!(r, "search lan\nnameserver 10.0.0.1\n");
        let r = resolv_conf("nameserver 127.0.0.1\n", false);
        assert!(r.contains("8.8.8.8"));
        assert!(resolv_conf("nameserver 127.0.0.1\n", true).contains("127.0.0.1"));
    }

    #[test]
    fn resolv_for_user_networks_uses_the_embedded_dns() {
        let r = resolv_conf_embedded(
            "search lan\nnameserver 10.0.0.1\noptions edns0\n",
            &["127.0.0.11".to_string()],
        );
        assert_eq!(r, "nameserver 127.0.0.11\nsearch lan\noptions ndots:0\n");
    }
}
