//! Published ports: on a `ports_changed` event the host listens where `docker ps` says (at
//! once, no polling) and tunnels each connection (TCP) or client flow (UDP, [`super::udp`]) over
//! the FORWARD_PORT multiplexer; an unpublished port's listeners are closed.
//!
//! Where: a port published on every address (`-p 8080:80`) is bound on `0.0.0.0` and `[::]`
//! as Docker Desktop does (`127.0.0.1` and `[::1]` with the `ports_on_localhost` setting); one
//! published on an address (`-p 127.0.0.1:8080:80`) on that address only.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_agent_proto::{write_frame, Event, ForwardHeader, Proto, PublishedPort};
use berth_vsock::mux::MuxClient;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

/// A published port as the host forwards it: the addresses actually bound.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardedPort {
    pub proto: Proto,
    pub host_port: u16,
    pub addresses: Vec<IpAddr>,
}

struct Open {
    token: CancellationToken,
    addresses: Vec<IpAddr>,
}

/// The set of forwarded ports.
pub struct PortForwarder {
    mux: Arc<MuxClient>,
    open: Mutex<HashMap<PublishedPort, Open>>,
    udp_idle: Duration,
    record: Option<PathBuf>,
    localhost_only: bool,
}

/// The host addresses for `p`: its own address, else every address of both families (the
/// loopback ones when `localhost_only`).
pub fn bind_addresses(p: &PublishedPort, localhost_only: bool) -> Vec<IpAddr> {
    match p.host_ip {
        Some(ip) => vec![ip],
        None if localhost_only => vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()],
        None => vec![Ipv4Addr::UNSPECIFIED.into(), Ipv6Addr::UNSPECIFIED.into()],
    }
}

impl PortForwarder {
    pub fn new(mux: Arc<MuxClient>) -> Self {
        Self {
            mux,
            open: Mutex::default(),
            udp_idle: super::udp::UDP_IDLE,
            record: None,
            localhost_only: false,
        }
    }

    /// Keeps ports published on every address on the host's loopback (`ports_on_localhost`).
    pub fn localhost_only(mut self, yes: bool) -> Self {
        self.localhost_only = yes;
        self
    }

    /// Sets how long a UDP flow lives without traffic (default 90 s).
    pub fn with_udp_idle(mut self, idle: Duration) -> Self {
        self.udp_idle = idle;
        self
    }

    /// Keeps `path` current with the forwarded ports (a JSON list, for `berth status`).
    pub fn with_record(mut self, path: PathBuf) -> Self {
        self.record = Some(path);
        self
    }

    /// Applies a guest event.
    pub async fn apply(&self, ev: &Event) {
        let Event::PortsChanged {
            published,
            unpublished,
        } = ev;
        for p in unpublished {
            if let Some(o) = self.lock().remove(p) {
                o.token.cancel();
                tracing::info!(port = p.host_port, "port forward closed");
            }
        }
        for p in published {
            self.open_port(p).await;
        }
        self.write_record();
    }

    /// Ports currently forwarded.
    pub fn ports(&self) -> Vec<PublishedPort> {
        let mut v: Vec<_> = self.lock().keys().cloned().collect();
        v.sort();
        v
    }

    /// The forwarded ports with the addresses bound for each.
    pub fn forwarded(&self) -> Vec<ForwardedPort> {
        let mut v: Vec<_> = self
            .lock()
            .iter()
            .map(|(p, o)| ForwardedPort {
                proto: p.proto,
                host_port: p.host_port,
                addresses: o.addresses.clone(),
            })
            .collect();
        v.sort_by_key(|f| (f.host_port, f.proto, f.addresses.clone()));
        v
    }

    /// Closes every listener (the VM went away).
    pub fn clear(&self) {
        for (_, o) in self.lock().drain() {
            o.token.cancel();
        }
        self.write_record();
    }

    fn write_record(&self) {
        if let Some(path) = &self.record {
            crate::state::write_json_atomic(path, &self.forwarded());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PublishedPort, Open>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn open_port(&self, p: &PublishedPort) {
        if self.lock().contains_key(p) {
            return;
        }
        let port = p.host_port;
        let token = CancellationToken::new();
        let mut addresses = Vec::new();
        for ip in bind_addresses(p, self.localhost_only) {
            let addr = SocketAddr::new(ip, port);
            let bound = match p.proto {
                Proto::Tcp => bind_tcp(addr).map(|l| {
                    tokio::spawn(accept_loop(l, port, self.mux.clone(), token.clone()));
                }),
                Proto::Udp => bind_udp(addr).map(|s| {
                    let (mux, idle) = (self.mux.clone(), self.udp_idle);
                    tokio::spawn(super::udp::serve(s, port, mux, idle, token.clone()));
                }),
            };
            match bound {
                Ok(()) => addresses.push(ip),
                // A host without IPv6 still forwards on IPv4.
                Err(e) if ip.is_ipv6() && p.host_ip.is_none() => {
                    tracing::debug!(%addr, error = %e, "no IPv6 listener for published port");
                }
                Err(e) => {
                    tracing::warn!(%addr, proto = ?p.proto, error = %e, "cannot forward published port");
                }
            }
        }
        if addresses.is_empty() {
            return;
        }
        tracing::info!(port, proto = ?p.proto, ?addresses, "port forward open");
        self.lock().insert(p.clone(), Open { token, addresses });
    }
}

/// A socket for `addr`; an IPv6 one is IPv6-only, so `[::]` and `0.0.0.0` can both be bound.
fn socket(addr: SocketAddr, ty: socket2::Type) -> io::Result<socket2::Socket> {
    let s = socket2::Socket::new(socket2::Domain::for_address(addr), ty, None)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    Ok(s)
}

fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let s = socket(addr, socket2::Type::STREAM)?;
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    TcpListener::from_std(s.into())
}

fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let s = socket(addr, socket2::Type::DGRAM)?;
    s.bind(&addr.into())?;
    UdpSocket::from_std(s.into())
}

/// The ports a supervisor's record file lists (empty when there is none).
pub fn read_record(path: &std::path::Path) -> Vec<ForwardedPort> {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// How a forwarded port shows to the user: `0.0.0.0:18080/tcp, [::]:18080/tcp`.
pub fn describe(p: &ForwardedPort) -> String {
    let proto = match p.proto {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
    };
    p.addresses
        .iter()
        .map(|ip| format!("{}/{proto}", SocketAddr::new(*ip, p.host_port)))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Drop for PortForwarder {
    fn drop(&mut self) {
        self.clear();
    }
}

async fn accept_loop(l: TcpListener, port: u16, mux: Arc<MuxClient>, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            r = l.accept() => match r {
                Ok((client, _)) => {
                    let _ = client.set_nodelay(true);
                    tokio::spawn(tunnel(client, port, mux.clone()));
                }
                Err(e) => {
                    tracing::warn!(port, error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
        }
    }
}

async fn tunnel(client: tokio::net::TcpStream, port: u16, mux: Arc<MuxClient>) {
    let mut stream = match mux.open().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(port, error = %e, "cannot reach the guest for a forwarded port");
            return;
        }
    };
    let header = ForwardHeader {
        proto: Proto::Tcp,
        port,
    };
    if write_frame(&mut stream, &header).await.is_err() {
        return;
    }
    super::splice(client, stream).await;
}
