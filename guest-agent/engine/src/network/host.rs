//! The real [`NetDriver`]: rtnetlink for links, addresses and routes, namespace pins under
//! the exec root, `iptables` for NAT, the userland proxy for published ports.

use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::AsFd;
use std::path::Path;

use futures::future::BoxFuture;
use ipnet::Ipv4Net;
use tokio::sync::OnceCell;

use super::driver::{Bridge, Link, NatNet, NetDriver, Publication};
use super::nat::Nat;
use super::netlink::Netlink;
use super::proxy::{BoundPort, ProxySet};
use super::{dns, netns};
use crate::{EngineError, Result};

/// The host's network, over netlink connections opened on first use.
#[derive(Default)]
pub struct HostNet {
    nl: OnceCell<Netlink>,
    /// A second connection for link deletions, which the kernel answers slowly.
    nl_slow: OnceCell<Netlink>,
}

impl HostNet {
    async fn nl(&self) -> Result<&Netlink> {
        self.nl.get_or_try_init(|| async { Netlink::host() }).await
    }

    /// The connection for link deletions (with its own thread); the main one if that fails.
    async fn slow(&self) -> Result<&Netlink> {
        let main = self.nl().await?.clone();
        Ok(self
            .nl_slow
            .get_or_init(|| async {
                Netlink::host_on_own_thread().unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "link deletions share the main netlink connection");
                    main
                })
            })
            .await)
    }

    /// Wires `link` into the namespace whose netlink connection is `ns`.
    async fn wire(
        &self,
        ns: &Netlink,
        ns_fd: std::os::fd::BorrowedFd<'_>,
        link: &Link,
    ) -> Result<()> {
        let nl = self.nl().await?;
        let bridge = nl
            .index(&link.bridge)
            .await?
            .ok_or_else(|| EngineError::internal(format!("bridge {} is missing", link.bridge)))?;
        nl.add_veth(
            &link.veth,
            bridge,
            ns_fd,
            &link.interface,
            link.mac,
            link.mtu,
        )
        .await?;
        ns.configure_interface(&link.interface, link.ip, link.prefix_len, link.gateway)
            .await
    }

    async fn create_and_wire(&self, path: &Path, links: &[Link]) -> Result<()> {
        let created = in_netns_thread(path, "create", netns::create).await?;
        let ns = Netlink::from_fd(created.netlink)?;
        ns.bring_up_lo().await?;
        for link in links {
            self.wire(&ns, created.file.as_fd(), link).await?;
        }
        Ok(())
    }
}

impl NetDriver for HostNet {
    fn prepare<'a>(&'a self, netns_dir: &'a Path) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let dir = netns_dir.to_owned();
            blocking(move || netns::prepare_dir(&dir))
                .await?
                .map_err(|e| {
                    EngineError::internal(format!("cannot prepare {}: {e}", netns_dir.display()))
                })?;
            std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
                .map_err(|e| EngineError::internal(format!("cannot enable ip_forward: {e}")))
        })
    }

    fn link_exists<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move { Ok(self.nl().await?.index(name).await?.is_some()) })
    }

    fn ensure_bridge<'a>(&'a self, b: &'a Bridge) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.nl()
                .await?
                .ensure_bridge(&b.name, b.gateway, b.prefix_len, b.mtu)
                .await
                .map(drop)
        })
    }

    fn delete_link<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { self.slow().await?.delete(name).await })
    }

    fn ipv4_in_use(&self) -> BoxFuture<'_, Result<Vec<Ipv4Net>>> {
        Box::pin(async move { self.nl().await?.ipv4_in_use().await })
    }

    fn apply_nat<'a>(
        &'a self,
        default_bridge: &'a str,
        nets: &'a [NatNet],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { Nat::new(default_bridge).apply(nets).await })
    }

    fn remove_nat<'a>(&'a self, default_bridge: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move { Nat::new(default_bridge).remove().await })
    }

    fn create_sandbox<'a>(
        &'a self,
        netns: &'a Path,
        links: &'a [Link],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.create_and_wire(netns, links))
    }

    fn add_link<'a>(&'a self, netns: &'a Path, link: &'a Link) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let ns = in_netns_thread(netns, "enter", netns::open).await?;
            let nl = Netlink::from_fd(ns.netlink)?;
            self.wire(&nl, ns.file.as_fd(), link).await
        })
    }

    fn move_default_route<'a>(
        &'a self,
        netns: &'a Path,
        interface: &'a str,
        gateway: Ipv4Addr,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let ns = in_netns_thread(netns, "enter", netns::open).await?;
            Netlink::from_fd(ns.netlink)?
                .move_default_route(interface, gateway)
                .await
        })
    }

    fn remove_sandbox<'a>(&'a self, netns: &'a Path) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let path = netns.to_owned();
            Ok(blocking(move || netns::remove(&path)).await??)
        })
    }

    fn release<'a>(&'a self, netns_dir: &'a Path) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let dir = netns_dir.to_owned();
            let _ = blocking(move || netns::release_dir(&dir)).await;
        })
    }

    fn bind_dns<'a>(&'a self, netns: &'a Path) -> BoxFuture<'a, Result<UdpSocket>> {
        Box::pin(async move {
            let path = netns.to_owned();
            blocking(move || dns::bind_in(&path))
                .await?
                .map_err(|e| EngineError::internal(format!("cannot start embedded DNS: {e}")))
        })
    }

    fn publish(&self, target: Ipv4Addr, ports: Vec<BoundPort>) -> Box<dyn Publication> {
        Box::new(ProxySet::start(ports, target))
    }
}

impl Publication for ProxySet {
    fn stop(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(ProxySet::stop(*self))
    }
}

/// Runs a blocking namespace call (`netns::create`, `netns::open`) off the runtime.
async fn in_netns_thread(
    path: &Path,
    verb: &str,
    f: fn(&Path) -> std::io::Result<netns::Created>,
) -> Result<netns::Created> {
    let p = path.to_owned();
    blocking(move || f(&p)).await?.map_err(|e| {
        EngineError::internal(format!(
            "cannot {verb} network namespace {}: {e}",
            path.display()
        ))
    })
}

/// Runs a blocking namespace or socket call on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<std::io::Result<T>> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EngineError::internal(format!("network task: {e}")))
}
