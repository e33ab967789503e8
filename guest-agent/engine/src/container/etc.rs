//! The per-container `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`, written like
//! dockerd does and bind-mounted into the container.

use std::path::Path;

use crate::Result;

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
pub fn write_resolv_conf(dir: &Path, nameservers: &[String], host_network: bool) -> Result<()> {
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let text = if nameservers.is_empty() {
        resolv_conf(&host_resolv, host_network)
    } else {
        resolv_conf_embedded(&host_resolv, nameservers)
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
) -> Result<()> {
    let write_atomic = |p: &Path, data: &[u8]| std::fs::write(p, data);
    write_atomic(&dir.join("hostname"), format!("{hostname}\n").as_bytes())?;
    let hosts_text = if host_network {
        std::fs::read_to_string("/etc/hosts").unwrap_or_else(|_| hosts("", hostname))
    } else {
        hosts(ip, hostname)
    };
    write_atomic(&dir.join("hosts"), hosts_text.as_bytes())?;
    write_resolv_conf(dir, nameservers, host_network)
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
    fn resolv_for_user_networks_uses_the_embedded_dns() {
        let r = resolv_conf_embedded(
            "search lan\nnameserver 10.0.0.1\noptions edns0\n",
            &["127.0.0.11".to_string()],
        );
        assert_eq!(r, "nameserver 127.0.0.11\nsearch lan\noptions ndots:0\n");
    }
}
