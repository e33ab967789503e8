//! The fake [`NetDriver`]: records what the network service asks of the host network and
//! keeps only what the service reads back: a namespace's pin file (its existence tells the
//! service whether the namespace is there) and the bound host sockets of published ports
//! (held until unpublished, so a second publish of the same port conflicts as on a host).

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};

use berth_engine::network::driver::{
    BoundPort, BoxFuture, Bridge, Ipv4Net, Link, NatNet, NetDriver, Publication,
};
use berth_engine::network::ports::PortKey;
use berth_engine::Result;

use super::{Call, Log};

/// One host-network call the engine made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetCall {
    EnsureBridge(Bridge),
    DeleteLink {
        name: String,
    },
    ApplyNat {
        nets: Vec<NatNet>,
    },
    RemoveNat,
    /// A container's namespace made with these links (none: loopback only).
    CreateSandbox {
        netns: PathBuf,
        links: Vec<Link>,
    },
    AddLink {
        netns: PathBuf,
        link: Link,
    },
    MoveDefaultRoute {
        netns: PathBuf,
        interface: String,
        gateway: Ipv4Addr,
    },
    RemoveSandbox {
        netns: PathBuf,
    },
    BindDns {
        netns: PathBuf,
    },
    /// Host sockets start relaying to `target`: (host address, container port) each.
    Publish {
        target: Ipv4Addr,
        ports: Vec<(SocketAddr, PortKey)>,
    },
    /// Those sockets stop relaying and close.
    Unpublish {
        target: Ipv4Addr,
        ports: Vec<(SocketAddr, PortKey)>,
    },
}

pub(super) struct FakeNet {
    log: Log,
}

impl FakeNet {
    pub(super) fn new(log: Log) -> Self {
        Self { log }
    }

    fn push(&self, call: NetCall) {
        self.log.push(Call::Net(call));
    }
}

/// A namespace pin as the real driver leaves one: a file at `netns`.
fn pin(netns: &Path) -> Result<()> {
    std::fs::write(netns, b"")?;
    Ok(())
}

impl NetDriver for FakeNet {
    fn prepare<'a>(&'a self, netns_dir: &'a Path) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { Ok(std::fs::create_dir_all(netns_dir)?) })
    }

    fn link_exists<'a>(&'a self, _name: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async { Ok(false) })
    }

    fn ensure_bridge<'a>(&'a self, bridge: &'a Bridge) -> BoxFuture<'a, Result<()>> {
        self.push(NetCall::EnsureBridge(bridge.clone()));
        Box::pin(async { Ok(()) })
    }

    fn delete_link<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>> {
        self.push(NetCall::DeleteLink { name: name.into() });
        Box::pin(async { Ok(()) })
    }

    fn ipv4_in_use(&self) -> BoxFuture<'_, Result<Vec<Ipv4Net>>> {
        Box::pin(async { Ok(vec![]) })
    }

    fn apply_nat<'a>(&'a self, _bridge: &'a str, nets: &'a [NatNet]) -> BoxFuture<'a, Result<()>> {
        self.push(NetCall::ApplyNat {
            nets: nets.to_vec(),
        });
        Box::pin(async { Ok(()) })
    }

    fn remove_nat<'a>(&'a self, _bridge: &'a str) -> BoxFuture<'a, ()> {
        self.push(NetCall::RemoveNat);
        Box::pin(async {})
    }

    fn create_sandbox<'a>(
        &'a self,
        netns: &'a Path,
        links: &'a [Link],
    ) -> BoxFuture<'a, Result<()>> {
        self.push(NetCall::CreateSandbox {
            netns: netns.into(),
            links: links.to_vec(),
        });
        Box::pin(async move { pin(netns) })
    }

    fn add_link<'a>(&'a self, netns: &'a Path, link: &'a Link) -> BoxFuture<'a, Result<()>> {
        self.push(NetCall::AddLink {
            netns: netns.into(),
            link: link.clone(),
        });
        Box::pin(async { Ok(()) })
    }

    fn move_default_route<'a>(
        &'a self,
        netns: &'a Path,
        interface: &'a str,
        gateway: Ipv4Addr,
    ) -> BoxFuture<'a, Result<()>> {
        self.push(NetCall::MoveDefaultRoute {
            netns: netns.into(),
            interface: interface.into(),
            gateway,
        });
        Box::pin(async { Ok(()) })
    }

    fn remove_sandbox<'a>(&'a self, netns: &'a Path) -> BoxFuture<'a, Result<()>> {
        self.push(NetCall::RemoveSandbox {
            netns: netns.into(),
        });
        Box::pin(async move {
            match std::fs::remove_file(netns) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
                _ => Ok(()),
            }
        })
    }

    fn release<'a>(&'a self, _netns_dir: &'a Path) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    fn bind_dns<'a>(&'a self, netns: &'a Path) -> BoxFuture<'a, Result<UdpSocket>> {
        self.push(NetCall::BindDns {
            netns: netns.into(),
        });
        // The server needs a socket; one on loopback that nothing queries.
        Box::pin(async {
            let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
            sock.set_nonblocking(true)?;
            Ok(sock)
        })
    }

    fn publish(&self, target: Ipv4Addr, ports: Vec<BoundPort>) -> Box<dyn Publication> {
        let described: Vec<_> = ports.iter().map(|p| (p.host_addr(), p.key())).collect();
        self.push(NetCall::Publish {
            target,
            ports: described.clone(),
        });
        Box::new(FakePublication {
            log: self.log.clone(),
            target,
            ports: described,
            _sockets: ports,
        })
    }
}

/// Published ports that relay nothing but hold their sockets until stopped.
struct FakePublication {
    log: Log,
    target: Ipv4Addr,
    ports: Vec<(SocketAddr, PortKey)>,
    _sockets: Vec<BoundPort>,
}

impl Publication for FakePublication {
    fn stop(self: Box<Self>) -> BoxFuture<'static, ()> {
        self.log.push(Call::Net(NetCall::Unpublish {
            target: self.target,
            ports: self.ports.clone(),
        }));
        Box::pin(async move { drop(self) })
    }
}
