//! The userland port proxy: host sockets for published ports, relaying to the container's
//! address. TCP connections are copied both ways with half-close; UDP keeps one upstream
//! socket per client address until it idles out. Every task belongs to a [`ProxySet`], which
//! stops them all when stopped or dropped.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ports::{HostPorts, PortKey, PortRequest, Proto};

/// How long a UDP flow without traffic in either direction is kept.
const UDP_IDLE: Duration = Duration::from_secs(90);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A host socket bound for one published port, not yet serving.
#[derive(Debug)]
pub struct BoundPort {
    pub(crate) key: PortKey,
    pub(crate) host_ip: IpAddr,
    pub(crate) host_port: u16,
    sock: Sock,
}

impl BoundPort {
    /// The container port (and protocol) the socket relays to.
    pub fn key(&self) -> PortKey {
        self.key
    }

    /// The host address and port the socket is bound to.
    pub fn host_addr(&self) -> SocketAddr {
        SocketAddr::new(self.host_ip, self.host_port)
    }
}

#[derive(Debug)]
enum Sock {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

/// Why a port could not be bound; the text is dockerd's.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BindError {
    #[error("Bind for {0}:{1} failed: port is already allocated")]
    Allocated(IpAddr, u16),
    #[error("Error starting userland proxy: listen {proto}{fam} {addr}: bind: {reason}")]
    Os {
        proto: Proto,
        fam: &'static str,
        addr: SocketAddr,
        reason: String,
    },
}

fn os_reason(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EADDRINUSE) => "address already in use".into(),
        Some(libc::EACCES) => "permission denied".into(),
        Some(libc::EADDRNOTAVAIL) => "cannot assign requested address".into(),
        _ => e.to_string(),
    }
}

async fn bind_one(key: PortKey, ip: IpAddr, port: u16) -> Result<BoundPort, BindError> {
    let addr = SocketAddr::new(ip, port);
    let os = |e: io::Error| BindError::Os {
        proto: key.proto,
        fam: if ip.is_ipv4() { "4" } else { "6" },
        addr,
        reason: os_reason(&e),
    };
    let sock = match key.proto {
        Proto::Tcp => {
            let s = if ip.is_ipv4() {
                TcpSocket::new_v4()
            } else {
                TcpSocket::new_v6()
            }
            .map_err(os)?;
            s.set_reuseaddr(true).map_err(os)?;
            s.bind(addr).map_err(os)?;
            Sock::Tcp(s.listen(1024).map_err(os)?)
        }
        Proto::Udp => Sock::Udp(UdpSocket::bind(addr).await.map_err(os)?),
    };
    let host_port = match &sock {
        Sock::Tcp(l) => l.local_addr(),
        Sock::Udp(u) => u.local_addr(),
    }
    .map_err(os)?
    .port();
    Ok(BoundPort {
        key,
        host_ip: ip,
        host_port,
        sock,
    })
}

/// Binds the host socket for `req`. `taken(ip, port, proto)` tells whether the engine already
/// publishes that port (then dockerd's "port is already allocated"); ranges take the first
/// port that is free.
pub(crate) async fn bind(
    req: &PortRequest,
    taken: impl Fn(IpAddr, u16, Proto) -> bool,
) -> Result<BoundPort, BindError> {
    match req.host_ports {
        HostPorts::Any => bind_one(req.key, req.host_ip, 0).await,
        HostPorts::Range(a, b) => {
            let mut last = None;
            for port in a..=b {
                if taken(req.host_ip, port, req.key.proto) {
                    last = Some(BindError::Allocated(req.host_ip, port));
                    continue;
                }
                match bind_one(req.key, req.host_ip, port).await {
                    Ok(p) => return Ok(p),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or(BindError::Allocated(req.host_ip, a)))
        }
    }
}

/// The serving tasks of one container's published ports.
pub(crate) struct ProxySet {
    cancel: CancellationToken,
    tasks: JoinSet<()>,
}

impl ProxySet {
    /// Starts relaying every bound port to `target` (the container's address).
    pub(crate) fn start(ports: Vec<BoundPort>, target: Ipv4Addr) -> Self {
        let cancel = CancellationToken::new();
        let mut tasks = JoinSet::new();
        for p in ports {
            let to = SocketAddr::new(IpAddr::V4(target), p.key.port);
            let c = cancel.child_token();
            match p.sock {
                Sock::Tcp(l) => tasks.spawn(serve_tcp(l, to, c)),
                Sock::Udp(u) => tasks.spawn(serve_udp(Arc::new(u), to, c)),
            };
        }
        Self { cancel, tasks }
    }

    /// Stops every task and waits until their sockets are closed.
    pub(crate) async fn stop(mut self) {
        self.cancel.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

impl Drop for ProxySet {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn serve_tcp(listener: TcpListener, to: SocketAddr, cancel: CancellationToken) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            r = listener.accept() => match r {
                Ok((inbound, peer)) => {
                    conns.spawn(relay_tcp(inbound, peer, to));
                }
                Err(e) => {
                    tracing::warn!(%to, error = %e, "port proxy accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

async fn relay_tcp(mut inbound: TcpStream, peer: SocketAddr, to: SocketAddr) {
    let _ = inbound.set_nodelay(true);
    let mut outbound = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(to)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, %to, error = %e, "port proxy connect failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, %to, "port proxy connect timed out");
            return;
        }
    };
    let _ = outbound.set_nodelay(true);
    if let Err(e) = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await {
        tracing::trace!(%peer, %to, error = %e, "port proxy connection ended");
    }
}

/// Milliseconds since `base`, for idle tracking shared between a flow's two directions.
fn millis_since(base: Instant) -> u64 {
    u64::try_from(base.elapsed().as_millis()).unwrap_or(u64::MAX)
}

struct Flow {
    upstream: Arc<UdpSocket>,
    last: Arc<AtomicU64>,
}

async fn serve_udp(sock: Arc<UdpSocket>, to: SocketAddr, cancel: CancellationToken) {
    let base = Instant::now();
    let mut flows: HashMap<SocketAddr, Flow> = HashMap::new();
    let mut readers: JoinSet<SocketAddr> = JoinSet::new();
    let mut buf = vec![0u8; 65536];
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            Some(done) = readers.join_next(), if !readers.is_empty() => {
                if let Ok(client) = done {
                    flows.remove(&client);
                }
            }
            r = sock.recv_from(&mut buf) => {
                let (n, client) = match r {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::debug!(%to, error = %e, "udp proxy receive failed");
                        continue;
                    }
                };
                let flow = match flows.entry(client) {
                    Entry::Occupied(o) => o.into_mut(),
                    Entry::Vacant(v) => {
                        let Some(flow) = open_flow(to, base).await else {
                            continue;
                        };
                        readers.spawn(udp_replies(flow.upstream.clone(), sock.clone(), client, flow.last.clone(), base));
                        v.insert(flow)
                    }
                };
                flow.last.store(millis_since(base), Ordering::Relaxed);
                if let Err(e) = flow.upstream.send(&buf[..n]).await {
                    tracing::debug!(%to, error = %e, "udp proxy send failed");
                }
            }
        }
    }
}

async fn open_flow(to: SocketAddr, base: Instant) -> Option<Flow> {
    let upstream = match UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], 0))).await {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(%to, error = %e, "udp proxy cannot open upstream socket");
            return None;
        }
    };
    if let Err(e) = upstream.connect(to).await {
        tracing::debug!(%to, error = %e, "udp proxy connect failed");
        return None;
    }
    Some(Flow {
        upstream: Arc::new(upstream),
        last: Arc::new(AtomicU64::new(millis_since(base))),
    })
}

/// Relays a flow's replies to its client until the flow has been idle for [`UDP_IDLE`].
async fn udp_replies(
    upstream: Arc<UdpSocket>,
    down: Arc<UdpSocket>,
    client: SocketAddr,
    last: Arc<AtomicU64>,
    base: Instant,
) -> SocketAddr {
    let mut buf = vec![0u8; 65536];
    loop {
        match tokio::time::timeout(UDP_IDLE, upstream.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                last.store(millis_since(base), Ordering::Relaxed);
                let _ = down.send_to(&buf[..n], client).await;
            }
            // ICMP port unreachable from the container: keep the flow, it may start listening.
            Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(_) => {
                let idle = millis_since(base).saturating_sub(last.load(Ordering::Relaxed));
                if u128::from(idle) >= UDP_IDLE.as_millis() {
                    return client;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn req(proto: Proto, port: u16, host_ports: HostPorts) -> PortRequest {
        PortRequest {
            key: PortKey { port, proto },
            host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            host_ports,
        }
    }

    async fn tcp_echo() -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn tcp_proxy_relays_with_half_close() {
        let echo = tcp_echo().await;
        let bound = bind(&req(Proto::Tcp, echo, HostPorts::Any), |_, _, _| false)
            .await
            .unwrap();
        let host_port = bound.host_port;
        assert_ne!(host_port, 0);
        let set = ProxySet::start(vec![bound], Ipv4Addr::LOCALHOST);
        let mut c = TcpStream::connect(("127.0.0.1", host_port)).await.unwrap();
        c.write_all(b"hello proxy").await.unwrap();
        c.shutdown().await.unwrap();
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, b"hello proxy");
        set.stop().await;
        assert!(
            TcpStream::connect(("127.0.0.1", host_port)).await.is_err(),
            "listener closed after stop"
        );
    }

    #[tokio::test]
    async fn udp_proxy_relays_replies_per_client() {
        let echo = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let echo_port = echo.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            loop {
                let (n, from) = echo.recv_from(&mut buf).await.unwrap();
                echo.send_to(&buf[..n], from).await.unwrap();
            }
        });
        let bound = bind(&req(Proto::Udp, echo_port, HostPorts::Any), |_, _, _| false)
            .await
            .unwrap();
        let host_port = bound.host_port;
        let set = ProxySet::start(vec![bound], Ipv4Addr::LOCALHOST);
        for msg in [&b"one"[..], b"two"] {
            let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            c.connect(("127.0.0.1", host_port)).await.unwrap();
            c.send(msg).await.unwrap();
            let mut buf = [0u8; 64];
            let n = tokio::time::timeout(Duration::from_secs(5), c.recv(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(&buf[..n], msg);
        }
        set.stop().await;
    }

    #[tokio::test]
    async fn bind_reports_docker_errors() {
        let holder = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = holder.local_addr().unwrap().port();
        let e = bind(
            &req(Proto::Tcp, 80, HostPorts::Range(port, port)),
            |_, _, _| false,
        )
        .await
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "Error starting userland proxy: listen tcp4 127.0.0.1:{port}: bind: address already in use"
            )
        );
        let e = bind(
            &req(Proto::Tcp, 80, HostPorts::Range(port, port)),
            |_, p, _| p == port,
        )
        .await
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("Bind for 127.0.0.1:{port} failed: port is already allocated")
        );
    }
}
