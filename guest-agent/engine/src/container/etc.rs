//! The per-container `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`, written like
//! dockerd does and bind-mounted into the container.

use std::path::Path;

use berth_docker_api::container::HostConfig;

use crate::Result;

/// A container's own name-resolution settings: `--add-host`, `--dns`, `--dns-search`,
/// `--dns-option`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EtcSettings {
    /// `name:ip` (or `name=ip`) pairs; `host-gateway` stands for `gateway`.
    pub extra_hosts: Vec<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// The address `host-gateway` names (the first network's gateway).
    pub gateway: String,
    /// `--link` lines (`ip\talias hostname name`), made at start.
    pub links: Vec<String>,
    /// Names the engine maps to the host-gateway address in every container.
    pub host_aliases: Vec<String>,
}

impl EtcSettings {
    pub fn of(host: &HostConfig, gateway: &str) -> Self {
        let list = |v: &Option<Vec<String>>| v.clone().unwrap_or_default();
        Self {
            extra_hosts: list(&host.extra_hosts),
            dns: list(&host.dns),
            dns_search: list(&host.dns_search),
            dns_options: list(&host.dns_options),
            gateway: gateway.to_string(),
            links: vec![],
            host_aliases: vec![],
        }
    }

    /// `/etc/hosts` lines of `--add-host`, in dockerd's `ip\tname` form.
    fn host_lines(&self) -> String {
        self.extra_hosts
            .iter()
            .filter_map(|h| {
                let (name, ip) = h.split_once(':').or_else(|| h.split_once('='))?;
                let ip = if ip == "host-gateway" {
                    &self.gateway
                } else {
                    ip
                };
                Some(format!("{ip}\t{name}\n"))
            })
            .chain(self.links.iter().map(|l| format!("{l}\n")))
            .chain(
                self.host_aliases
                    .iter()
                    .filter(|_| !self.gateway.is_empty())
                    .map(|name| format!("{}\t{name}\n", self.gateway)),
            )
            .collect()
    }

    /// Applies `--dns-search`/`--dns-option` over a generated resolv.conf: they replace the
    /// host's `search`/`options` lines (`--dns-search .` means none).
    fn adjust(&self, text: String) -> String {
        if self.dns_search.is_empty() && self.dns_options.is_empty() {
            return text;
        }
        let mut out = String::new();
        for line in text.lines() {
            let t = line.trim_start();
            let replaced = (t.starts_with("search") && !self.dns_search.is_empty())
                || (t.starts_with("options") && !self.dns_options.is_empty());
            if !replaced {
                out.push_str(line);
                out.push('\n');
            }
        }
        let search: Vec<&str> = self
            .dns_search
            .iter()
            .filter(|d| *d != ".")
            .map(String::as_str)
            .collect();
        if !search.is_empty() {
            // First, as dockerd writes it.
            out.insert_str(0, &format!("search {}\n", search.join(" ")));
        }
        if !self.dns_options.is_empty() {
            out.push_str(&format!("options {}\n", self.dns_options.join(" ")));
        }
        out
    }
}

/// `/etc/hosts` with loopback entries and the container's own address.
pub fn hosts(ip: &str, hostname: &str) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
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

/// Writes `resolv.conf` into `dir`: the embedded DNS when `nameservers` is not empty, else
/// the host's. A plain write keeps the inode, so a running container sees the new file
/// through its bind mount.
/// `--dns` servers replace the host's (on user networks the embedded DNS stays the
/// nameserver, as with dockerd).
pub fn write_resolv_conf(
    dir: &Path,
    nameservers: &[String],
    host_network: bool,
    settings: &EtcSettings,
) -> Result<()> {
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let text = if !nameservers.is_empty() {
        resolv_conf_embedded(&host_resolv, nameservers)
    } else if !settings.dns.is_empty() {
        let own: String = settings
            .dns
            .iter()
            .map(|d| format!("nameserver {d}\n"))
            .collect();
        let search: String = host_resolv
            .lines()
            .filter(|l| {
                l.trim_start().starts_with("search") || l.trim_start().starts_with("options")
            })
            .map(|l| format!("{l}\n"))
            .collect();
        format!("{search}{own}")
    } else {
        resolv_conf(&host_resolv, host_network)
    };
    std::fs::write(dir.join("resolv.conf"), settings.adjust(text))?;
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
    settings: &EtcSettings,
) -> Result<()> {
    let write_atomic = |p: &Path, data: &[u8]| std::fs::write(p, data);
    write_atomic(&dir.join("hostname"), format!("{hostname}\n").as_bytes())?;
    let mut hosts_text = if host_network {
        std::fs::read_to_string("/etc/hosts").unwrap_or_else(|_| hosts("", hostname))
    } else {
        hosts("", hostname)
    };
    // dockerd's order: the defaults, the `--add-host` entries, then the container's own line.
    hosts_text.push_str(&settings.host_lines());
    if !host_network && !ip.is_empty() {
        hosts_text.push_str(&format!("{ip}\t{hostname}\n"));
    }
    write_atomic(&dir.join("hosts"), hosts_text.as_bytes())?;
    write_resolv_conf(dir, nameservers, host_network, settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_has_container_line() {
        let h = hosts("172.30.0.2", "abc");
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("172.30.0.2\tabc\n"));
        assert!(!hosts("", "abc").contains("abc"));
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
    fn add_host_dns_search_and_options() {
        let dir = tempfile::tempdir().unwrap();
        let settings = EtcSettings {
            extra_hosts: vec!["foo:1.2.3.4".into(), "gw:host-gateway".into()],
            dns: vec!["9.9.9.9".into()],
            dns_search: vec!["example.com".into()],
            dns_options: vec!["ndots:2".into()],
            gateway: "10.1.0.1".into(),
            links: vec!["10.1.0.3\tdb 0123456789ab other".into()],
            host_aliases: vec!["host.docker.internal".into()],
        };
        write_all(dir.path(), "10.1.0.2", "abc", false, &[], &settings).unwrap();
        let hosts = std::fs::read_to_string(dir.path().join("hosts")).unwrap();
        assert!(
            hosts.ends_with(
                "1.2.3.4\tfoo\n10.1.0.1\tgw\n10.1.0.3\tdb 0123456789ab other\n10.1.0.1\thost.docker.internal\n10.1.0.2\tabc\n"
            ),
            "{hosts}"
        );
        let r = std::fs::read_to_string(dir.path().join("resolv.conf")).unwrap();
        assert!(r.contains("nameserver 9.9.9.9\n"), "{r}");
        assert_eq!(r.matches("nameserver").count(), 1, "{r}");
        assert!(
            r.contains("search example.com\n") && r.contains("options ndots:2\n"),
            "{r}"
        );
        // On a user network the embedded DNS stays; search and options still apply.
        write_all(
            dir.path(),
            "10.1.0.2",
            "abc",
            false,
            &["127.0.0.11".into()],
            &settings,
        )
        .unwrap();
        let r = std::fs::read_to_string(dir.path().join("resolv.conf")).unwrap();
        assert!(
            r.starts_with("search example.com\nnameserver 127.0.0.11\n"),
            "{r}"
        );
        assert!(
            r.contains("options ndots:2\n") && !r.contains("ndots:0"),
            "{r}"
        );
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
