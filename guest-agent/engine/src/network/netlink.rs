//! Links, addresses and routes over rtnetlink: bridges, veth pairs, the container side of a
//! veth inside its namespace, and the host's IPv4 routes (to pick free subnets).

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::sync::Arc;

use futures::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkInfo};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};
use tokio_util::task::AbortOnDropHandle;

use crate::{EngineError, Result};

/// A netlink route connection; its I/O task stops when the last clone is dropped.
#[derive(Clone)]
pub(crate) struct Netlink {
    handle: Handle,
    /// The connection's I/O task, when it runs on the caller's runtime.
    _conn: Option<Arc<AbortOnDropHandle<()>>>,
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(m.raw_code().abs()),
        _ => None,
    }
}

fn nl_err(what: impl std::fmt::Display) -> impl FnOnce(rtnetlink::Error) -> EngineError {
    move |e| {
        let detail = match &e {
            rtnetlink::Error::NetlinkError(m) => m.to_io().to_string(),
            other => other.to_string(),
        };
        EngineError::internal(format!("{what}: {detail}"))
    }
}

impl Netlink {
    /// Connects in the calling thread's network namespace (the host's).
    pub(crate) fn host() -> Result<Self> {
        let (conn, handle, _) = rtnetlink::new_connection()
            .map_err(|e| EngineError::internal(format!("cannot open netlink socket: {e}")))?;
        Ok(Self {
            handle,
            _conn: Some(Arc::new(AbortOnDropHandle::new(tokio::spawn(conn)))),
        })
    }

    /// Connects in the host namespace with the socket's I/O on a thread of its own. For
    /// requests the kernel answers slowly inside `sendmsg` (a link deletion waits for RCU
    /// grace periods, ~20 ms): on this connection they block neither a runtime worker nor
    /// requests on the main connection. The thread ends when the last clone is dropped.
    pub(crate) fn host_on_own_thread() -> Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("netlink-slow".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    match rtnetlink::new_connection() {
                        Ok((conn, handle, _)) => {
                            let _ = tx.send(Ok(handle));
                            // Ends when every handle is gone (the request channel closes).
                            conn.await;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                });
            })
            .map_err(|e| EngineError::internal(format!("cannot start netlink thread: {e}")))?;
        let handle = rx
            .recv()
            .map_err(|_| EngineError::internal("netlink thread ended early"))?
            .map_err(|e| EngineError::internal(format!("cannot open netlink socket: {e}")))?;
        Ok(Self {
            handle,
            _conn: None,
        })
    }

    /// Wraps a netlink socket opened inside another network namespace.
    pub(crate) fn from_fd(fd: OwnedFd) -> Result<Self> {
        let raw = fd.into_raw_fd();
        // SAFETY: `raw` is a netlink socket we own (from `OwnedFd::into_raw_fd`); ownership
        // passes to the TokioSocket, which closes it.
        let sock = unsafe { rtnetlink::sys::TokioSocket::from_raw_fd(raw) };
        let (conn, handle, _) = rtnetlink::from_socket(sock);
        Ok(Self {
            handle,
            _conn: Some(Arc::new(AbortOnDropHandle::new(tokio::spawn(conn)))),
        })
    }

    pub(crate) async fn index(&self, name: &str) -> Result<Option<u32>> {
        Ok(self.link(name).await?.map(|(i, _)| i))
    }

    /// Index of the link `name` and whether it is a bridge.
    async fn link(&self, name: &str) -> Result<Option<(u32, bool)>> {
        let mut s = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match s.try_next().await {
            Ok(m) => Ok(m.map(|m| {
                let bridge = m.attributes.iter().any(|a| {
                    matches!(a, LinkAttribute::LinkInfo(infos)
                        if infos.iter().any(|i| matches!(i, LinkInfo::Kind(InfoKind::Bridge))))
                });
                (m.header.index, bridge)
            })),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(nl_err(format!("cannot look up link {name}"))(e)),
        }
    }

    /// Creates the bridge `name` (with `mtu` if not the default) unless it exists, gives it
    /// `addr/prefix`, brings it up, and returns its index.
    pub(crate) async fn ensure_bridge(
        &self,
        name: &str,
        addr: Ipv4Addr,
        prefix: u8,
        mtu: Option<u32>,
    ) -> Result<u32> {
        let idx = match self.link(name).await? {
            Some((i, true)) => i,
            // Never put addresses on someone's ordinary interface.
            Some((_, false)) => {
                return Err(EngineError::invalid(format!(
                    "{name} exists and is not a bridge"
                )))
            }
            None => {
                let r = self
                    .handle
                    .link()
                    .add(with_mtu(LinkBridge::new(name), mtu).build())
                    .execute()
                    .await;
                if let Err(e) = r {
                    if errno(&e) != Some(libc::EEXIST) {
                        return Err(nl_err(format!("cannot create bridge {name}"))(e));
                    }
                }
                self.index(name)
                    .await?
                    .ok_or_else(|| EngineError::internal(format!("bridge {name} vanished")))?
            }
        };
        if !self.has_address(idx, addr).await? {
            let r = self
                .handle
                .address()
                .add(idx, IpAddr::V4(addr), prefix)
                .execute()
                .await;
            if let Err(e) = r {
                if errno(&e) != Some(libc::EEXIST) {
                    return Err(nl_err(format!("cannot add {addr}/{prefix} to {name}"))(e));
                }
            }
        }
        self.set_up(idx).await?;
        Ok(idx)
    }

    async fn has_address(&self, idx: u32, addr: Ipv4Addr) -> Result<bool> {
        let mut s = self
            .handle
            .address()
            .get()
            .set_link_index_filter(idx)
            .execute();
        while let Some(m) = s
            .try_next()
            .await
            .map_err(nl_err("cannot list addresses"))?
        {
            if m.attributes
                .iter()
                .any(|a| matches!(a, AddressAttribute::Address(IpAddr::V4(x)) if *x == addr))
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub(crate) async fn set_up(&self, idx: u32) -> Result<()> {
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(idx).up().build())
            .execute()
            .await
            .map_err(nl_err(format!("cannot bring link {idx} up")))
    }

    /// Creates a veth pair in one request: `host` enslaved to `bridge` and up, its peer created
    /// directly inside the namespace `netns` as `peer` (`eth0`, `eth1`…) with `mac`.
    pub(crate) async fn add_veth(
        &self,
        host: &str,
        bridge: u32,
        netns: BorrowedFd<'_>,
        peer: &str,
        mac: [u8; 6],
        mtu: Option<u32>,
    ) -> Result<()> {
        let peer_msg = with_mtu(LinkMessageBuilder::<LinkUnspec>::new(), mtu)
            .name(peer)
            .address(mac.to_vec())
            .setns_by_fd(netns.as_raw_fd())
            .build();
        let msg = with_mtu(LinkVeth::new(host, peer), mtu)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg)))
            .controller(bridge)
            .up()
            .build();
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(nl_err(format!("cannot create veth pair {host}")))
    }

    /// Deletes a link by name; a missing link is not an error.
    pub(crate) async fn delete(&self, name: &str) -> Result<()> {
        let Some(idx) = self.index(name).await? else {
            return Ok(());
        };
        match self.handle.link().del(idx).execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(()),
            Err(e) => Err(nl_err(format!("cannot delete link {name}"))(e)),
        }
    }

    /// Inside a container namespace: address and bring up `iface`, and with a `gateway` route
    /// everything through it.
    pub(crate) async fn configure_interface(
        &self,
        iface: &str,
        ip: Ipv4Addr,
        prefix: u8,
        gateway: Option<Ipv4Addr>,
    ) -> Result<()> {
        let idx = self.index(iface).await?.ok_or_else(|| {
            EngineError::internal(format!("{iface} missing in container namespace"))
        })?;
        self.handle
            .address()
            .add(idx, IpAddr::V4(ip), prefix)
            .execute()
            .await
            .map_err(nl_err(format!("cannot add {ip}/{prefix} to {iface}")))?;
        self.set_up(idx).await?;
        match gateway {
            Some(gw) => self.add_default_route(idx, gw).await,
            None => Ok(()),
        }
    }

    /// Routes everything via `gateway` on the link `idx` (a default route already there is
    /// kept).
    async fn add_default_route(&self, idx: u32, gateway: Ipv4Addr) -> Result<()> {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .output_interface(idx)
            .build();
        match self.handle.route().add(route).execute().await {
            Err(e) if errno(&e) != Some(libc::EEXIST) => {
                Err(nl_err(format!("cannot add default route via {gateway}"))(e))
            }
            _ => Ok(()),
        }
    }

    /// Makes `iface` carry the default route (after the interface that had it left).
    pub(crate) async fn move_default_route(&self, iface: &str, gateway: Ipv4Addr) -> Result<()> {
        let idx = self.index(iface).await?.ok_or_else(|| {
            EngineError::internal(format!("{iface} missing in container namespace"))
        })?;
        self.add_default_route(idx, gateway).await
    }

    pub(crate) async fn bring_up_lo(&self) -> Result<()> {
        let lo = self.index("lo").await?.unwrap_or(1);
        self.set_up(lo).await
    }

    /// IPv4 destinations of every route and the subnets of every address on the host.
    pub(crate) async fn ipv4_in_use(&self) -> Result<Vec<Ipv4Net>> {
        let mut out = Vec::new();
        let mut routes = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute();
        while let Some(r) = routes
            .try_next()
            .await
            .map_err(nl_err("cannot list routes"))?
        {
            let prefix = r.header.destination_prefix_length;
            for a in &r.attributes {
                if let RouteAttribute::Destination(RouteAddress::Inet(d)) = a {
                    if let Ok(n) = Ipv4Net::new(*d, prefix) {
                        out.push(n.trunc());
                    }
                }
            }
        }
        let mut addrs = self.handle.address().get().execute();
        while let Some(m) = addrs
            .try_next()
            .await
            .map_err(nl_err("cannot list addresses"))?
        {
            for a in &m.attributes {
                if let AddressAttribute::Address(IpAddr::V4(x)) = a {
                    if let Ok(n) = Ipv4Net::new(*x, m.header.prefix_len) {
                        out.push(n.trunc());
                    }
                }
            }
        }
        Ok(out)
    }
}

/// A link message with an MTU attribute when one is given (none: the kernel's default).
fn with_mtu<T>(b: LinkMessageBuilder<T>, mtu: Option<u32>) -> LinkMessageBuilder<T> {
    match mtu {
        Some(m) => b.mtu(m),
        None => b,
    }
}
