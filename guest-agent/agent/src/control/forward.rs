//! Port-forward tunnels: every multiplexed stream from the host starts with a `ForwardHeader`
//! and is relayed to the published port: straight to the container when the port tracker knows
//! it, else through the engine's port proxy on the guest's loopback. A TCP stream is spliced; a
//! UDP stream carries length-prefixed datagrams of one client flow, relayed through a connected
//! UDP socket until the host closes the stream (its idle timeout) or this side's own
//! [`UDP_IDLE`] passes.

use std::net::SocketAddr;
use std::time::Duration;

use berth_agent_proto::{
    read_datagram, read_frame, write_datagram, ForwardHeader, Proto, MAX_DATAGRAM,
};
use berth_vsock::{mux, BoxIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UdpSocket};

use super::PortTracker;

/// A UDP flow with no datagram either way for this long ends (longer than the host's, which
/// normally closes first).
const UDP_IDLE: Duration = Duration::from_secs(180);

pub(crate) async fn serve_forward(io: BoxIo, tracker: PortTracker) {
    mux::serve(io, move |s| tunnel(s, tracker.clone())).await;
}

async fn tunnel(mut s: mux::MuxStream, tracker: PortTracker) {
    let h: ForwardHeader = match read_frame(&mut s).await {
        Ok(Some(h)) => h,
        Ok(None) => return,
        Err(e) => {
            tracing::debug!(error = %e, "bad forward header");
            return;
        }
    };
    // Straight to the container when we know it (one hop less in the guest), else through the
    // engine's port proxy on the guest's loopback.
    let target = tracker.target(h.proto, h.port);
    let direct: Option<SocketAddr> = target.and_then(|t| {
        let ip = t.container_ip?.parse().ok()?;
        Some(SocketAddr::new(ip, t.private_port))
    });
    let loopback = SocketAddr::from(([127, 0, 0, 1], h.port));
    match h.proto {
        Proto::Tcp => tcp(s, direct, loopback).await,
        Proto::Udp => udp(s, direct.unwrap_or(loopback)).await,
    }
}

async fn tcp(mut s: mux::MuxStream, direct: Option<SocketAddr>, loopback: SocketAddr) {
    let direct = match direct {
        Some(a) => TcpStream::connect(a).await.ok(),
        None => None,
    };
    let mut upstream = match direct {
        Some(u) => u,
        None => match TcpStream::connect(loopback).await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(%loopback, error = %e, "forward target unreachable");
                return;
            }
        },
    };
    let _ = upstream.set_nodelay(true);
    let n = mux::SPLICE_BUFFER;
    if let Err(e) = tokio::io::copy_bidirectional_with_sizes(&mut s, &mut upstream, n, n).await {
        tracing::debug!(%loopback, error = %e, "forward ended");
    }
}

async fn udp<S>(s: S, to: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let bind = if to.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let sock = match UdpSocket::bind(bind).await {
        Ok(u) => u,
        Err(e) => {
            tracing::debug!(%to, error = %e, "cannot open a udp socket");
            return;
        }
    };
    if let Err(e) = sock.connect(to).await {
        tracing::debug!(%to, error = %e, "udp forward target unreachable");
        return;
    }
    let (mut from_host, mut to_host) = tokio::io::split(s);
    // The host's datagrams come through a channel: reading a frame is not cancel-safe, a
    // channel receive is.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    let reader = tokio::spawn(async move {
        let mut buf = Vec::new();
        while let Ok(true) = read_datagram(&mut from_host, &mut buf).await {
            if tx.send(std::mem::take(&mut buf)).await.is_err() {
                break;
            }
        }
    });
    let mut out_buf = vec![0u8; MAX_DATAGRAM];
    loop {
        tokio::select! {
            d = rx.recv() => match d {
                Some(d) => {
                    if let Err(e) = sock.send(&d).await {
                        tracing::debug!(%to, error = %e, "udp forward send failed");
                    }
                }
                None => break,
            },
            r = sock.recv(&mut out_buf) => match r {
                Ok(n) => {
                    if write_datagram(&mut to_host, &out_buf[..n]).await.is_err() {
                        break;
                    }
                }
                // ICMP port unreachable from an earlier send: the target may come back.
                Err(e) => tracing::debug!(%to, error = %e, "udp forward receive failed"),
            },
            _ = tokio::time::sleep(UDP_IDLE) => break,
        }
    }
    reader.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn udp_flow_relays_datagrams_to_the_target_and_back() {
        // Target: echo with a prefix.
        let target = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = target.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = vec![0u8; MAX_DATAGRAM];
            loop {
                let (n, from) = target.recv_from(&mut buf).await.unwrap();
                let mut reply = b"echo:".to_vec();
                reply.extend_from_slice(&buf[..n]);
                target.send_to(&reply, from).await.unwrap();
            }
        });
        let (mut host, guest) = tokio::io::duplex(1 << 17);
        let flow = tokio::spawn(udp(guest, to));
        let mut buf = Vec::new();
        for msg in [&b"one"[..], b"two", &[9u8; 30_000]] {
            write_datagram(&mut host, msg).await.unwrap();
            assert!(read_datagram(&mut host, &mut buf).await.unwrap());
            assert_eq!(&buf[..5], b"echo:");
            assert_eq!(&buf[5..], msg);
        }
        // The host closing its stream ends the flow.
        drop(host);
        tokio::time::timeout(Duration::from_secs(5), flow)
            .await
            .expect("flow did not end")
            .unwrap();
    }
}
