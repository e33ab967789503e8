//! Networking for QEMU user networking (slirp): the guest is 10.0.2.15/24, the gateway 10.0.2.2
//! is the host's loopback, and 10.0.2.3 is the host's DNS. Configured with iproute2's `ip`.

use std::path::Path;

use anyhow::{bail, Context};

/// Guest address and prefix on the slirp network.
pub(crate) const GUEST_CIDR: &str = "10.0.2.15/24";
/// slirp's gateway, which forwards to the host's 127.0.0.1.
pub(crate) const GATEWAY: &str = "10.0.2.2";
/// slirp's DNS forwarder.
pub(crate) const DNS: &str = "10.0.2.3";
const HOSTNAME: &str = "berth";

/// Brings up `lo` and the virtio NIC, sets the default route, DNS, hostname and IP forwarding.
pub(crate) fn configure() -> anyhow::Result<()> {
    if let Err(e) = nix::unistd::sethostname(HOSTNAME) {
        tracing::warn!("cannot set the hostname: {e}");
    }
    ip(&["link", "set", "lo", "up"])?;
    std::fs::write("/etc/resolv.conf", format!("nameserver {DNS}\n"))
        .context("failed to write /etc/resolv.conf")?;
    // Containers on the engine's bridges reach the outside through this guest.
    if let Err(e) = std::fs::write("/proc/sys/net/ipv4/ip_forward", "1") {
        tracing::warn!("cannot enable IP forwarding: {e}");
    }
    let Some(nic) = virtio_nic(Path::new("/sys/class/net")) else {
        bail!("no virtio network interface");
    };
    ip(&["link", "set", "dev", &nic, "up"])?;
    ip(&["addr", "add", GUEST_CIDR, "dev", &nic])?;
    ip(&["route", "add", "default", "via", GATEWAY, "dev", &nic])?;
    tracing::info!("network: {nic} {GUEST_CIDR} via {GATEWAY}, dns {DNS}");
    Ok(())
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = super::command("ip")
        .args(args)
        .output()
        .context("failed to run ip")?;
    if !out.status.success() {
        bail!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The first interface (by name) whose driver is virtio_net.
fn virtio_nic(class_net: &Path) -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir(class_net)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| {
            std::fs::read_link(e.path().join("device/driver"))
                .is_ok_and(|d| d.file_name().is_some_and(|n| n == "virtio_net"))
        })
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtio_nic_picks_first_virtio_interface() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (name, driver) in [
            ("lo", None),
            ("eth1", Some("virtio_net")),
            ("eth0", Some("virtio_net")),
            ("dummy0", Some("e1000")),
        ] {
            std::fs::create_dir_all(root.join(name).join("device")).unwrap();
            if let Some(d) = driver {
                std::os::unix::fs::symlink(
                    format!("../../bus/{d}"),
                    root.join(name).join("device/driver"),
                )
                .unwrap();
            }
        }
        assert_eq!(virtio_nic(root).as_deref(), Some("eth0"));
    }

    #[test]
    fn virtio_nic_none_without_virtio() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("lo")).unwrap();
        assert_eq!(virtio_nic(dir.path()), None);
    }
}
