//! The network service's seam to the host network ([`NetDriver`]): bridges, the namespaces and
//! veth pairs of containers, addresses and routes, NAT rules, the embedded DNS's socket and the
//! relaying of published ports. Injected once at [`crate::Engine::open_with`]
//! ([`crate::Seams::net`]); [`super::host::HostNet`] is the real one (rtnetlink, namespace pins,
//! iptables, the userland proxy), `berth_test_support::fake` records what the service asks.
//!
//! The service keeps every decision (addresses, interface names, which ports, the state file,
//! events); a driver only carries them out, so a fake that records the calls shows exactly
//! what a `docker run`, `network connect` or engine restart does to the host.

use std::net::{Ipv4Addr, UdpSocket};
use std::path::Path;

pub use futures::future::BoxFuture;
pub use ipnet::Ipv4Net;

pub use super::proxy::BoundPort;
use crate::Result;

/// A bridge network's bridge on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridge {
    pub name: String,
    /// The gateway address the bridge holds, with the subnet's prefix.
    pub gateway: Ipv4Addr,
    pub prefix_len: u8,
    /// `None`: the kernel's default.
    pub mtu: Option<u32>,
}

/// One bridge network to masquerade and forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatNet {
    pub bridge: String,
    pub subnet: Ipv4Net,
    /// `Internal` networks get neither NAT nor forwarding to the outside.
    pub internal: bool,
}

/// One endpoint's veth pair: the host end on `bridge`, the other end in the container's
/// namespace as `interface`, addressed, with the default route via `gateway` when given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The host end's name.
    pub veth: String,
    pub bridge: String,
    /// The name inside the namespace (`eth0`, `eth1`, …).
    pub interface: String,
    pub mac: [u8; 6],
    pub mtu: Option<u32>,
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4Addr>,
}

/// What the engine does to the host network. Paths are namespace pins under the exec root's
/// `netns/` directory; a pin exists exactly while its namespace does.
pub trait NetDriver: Send + Sync {
    /// Makes `netns_dir` ready to hold namespace pins and enables IPv4 forwarding.
    fn prepare<'a>(&'a self, netns_dir: &'a Path) -> BoxFuture<'a, Result<()>>;

    /// Whether an interface `name` exists on the host.
    fn link_exists<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool>>;

    /// Creates the bridge unless it exists, addresses it and brings it up.
    fn ensure_bridge<'a>(&'a self, bridge: &'a Bridge) -> BoxFuture<'a, Result<()>>;

    /// Deletes the host interface `name` (a bridge, or a veth with its peer); gone is fine.
    fn delete_link<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>>;

    /// The IPv4 networks the host already routes (new networks' subnets avoid them).
    fn ipv4_in_use(&self) -> BoxFuture<'_, Result<Vec<Ipv4Net>>>;

    /// (Re)writes the NAT and forwarding rules of the engine whose default bridge is
    /// `default_bridge` for exactly `nets`.
    fn apply_nat<'a>(
        &'a self,
        default_bridge: &'a str,
        nets: &'a [NatNet],
    ) -> BoxFuture<'a, Result<()>>;

    /// Removes that engine's NAT and forwarding rules.
    fn remove_nat<'a>(&'a self, default_bridge: &'a str) -> BoxFuture<'a, ()>;

    /// Creates a namespace pinned at `netns` with `lo` up and `links` wired into it, in
    /// order. On failure the caller removes what was made (links and pin).
    fn create_sandbox<'a>(
        &'a self,
        netns: &'a Path,
        links: &'a [Link],
    ) -> BoxFuture<'a, Result<()>>;

    /// Wires one more link into the existing namespace `netns`.
    fn add_link<'a>(&'a self, netns: &'a Path, link: &'a Link) -> BoxFuture<'a, Result<()>>;

    /// Inside `netns`: the default route goes via `gateway` on `interface`.
    fn move_default_route<'a>(
        &'a self,
        netns: &'a Path,
        interface: &'a str,
        gateway: Ipv4Addr,
    ) -> BoxFuture<'a, Result<()>>;

    /// Removes the namespace pinned at `netns`; missing is fine.
    fn remove_sandbox<'a>(&'a self, netns: &'a Path) -> BoxFuture<'a, Result<()>>;

    /// Undoes [`NetDriver::prepare`]'s hold on `netns_dir` at shutdown (the pins stay).
    fn release<'a>(&'a self, netns_dir: &'a Path) -> BoxFuture<'a, ()>;

    /// The embedded DNS's socket (127.0.0.11:53 inside `netns`), non-blocking.
    fn bind_dns<'a>(&'a self, netns: &'a Path) -> BoxFuture<'a, Result<UdpSocket>>;

    /// Starts relaying the bound host ports to `target` (the container's address).
    fn publish(&self, target: Ipv4Addr, ports: Vec<BoundPort>) -> Box<dyn Publication>;
}

/// The published ports of one container, relayed until stopped.
pub trait Publication: Send + Sync {
    /// Stops relaying and closes the host sockets.
    fn stop(self: Box<Self>) -> BoxFuture<'static, ()>;
}
