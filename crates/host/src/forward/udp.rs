//! UDP published ports: the host binds 127.0.0.1:<port> and gives every client address (a
//! "flow") its own multiplexed stream on FORWARD_PORT, header `{"proto":"udp"}`, then
//! length-prefixed datagrams both ways. A flow with no datagram either way for the idle
//! timeout is closed (the guest sees its stream end).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_agent_proto::{
    read_datagram, write_datagram, write_frame, ForwardHeader, Proto, MAX_DATAGRAM,
};
use berth_vsock::mux::MuxClient;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long a UDP flow lives without traffic (what Docker's userland proxy uses too).
pub(crate) const UDP_IDLE: Duration = Duration::from_secs(90);

/// Datagrams queued per flow before new ones are dropped (UDP may drop).
const FLOW_QUEUE: usize = 256;

/// Receives on `sock` until `cancel` fires, relaying each client's datagrams over its own flow.
pub(crate) async fn serve(
    sock: UdpSocket,
    port: u16,
    mux: Arc<MuxClient>,
    idle: Duration,
    cancel: CancellationToken,
) {
    let sock = Arc::new(sock);
    let mut flows: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, from) = tokio::select! {
            _ = cancel.cancelled() => break,
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    // e.g. ICMP port unreachable reported on a later receive.
                    tracing::debug!(port, error = %e, "udp receive failed");
                    continue;
                }
            },
        };
        let data = buf[..n].to_vec();
        let tx = match flows.get(&from).filter(|tx| !tx.is_closed()) {
            Some(tx) => tx.clone(),
            None => {
                flows.retain(|_, tx| !tx.is_closed());
                let (tx, rx) = mpsc::channel(FLOW_QUEUE);
                let flow = Flow {
                    sock: sock.clone(),
                    client: from,
                    port,
                    idle,
                };
                tokio::spawn(flow.run(mux.clone(), rx, cancel.child_token()));
                flows.insert(from, tx.clone());
                tx
            }
        };
        if tx.try_send(data).is_err() {
            tracing::debug!(port, client = %from, "udp flow queue full; datagram dropped");
        }
    }
}

struct Flow {
    sock: Arc<UdpSocket>,
    client: SocketAddr,
    port: u16,
    idle: Duration,
}

impl Flow {
    async fn run(
        self,
        mux: Arc<MuxClient>,
        mut rx: mpsc::Receiver<Vec<u8>>,
        cancel: CancellationToken,
    ) {
        let mut stream = match mux.open().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(port = self.port, error = %e, "cannot reach the guest for a udp port");
                return;
            }
        };
        let header = ForwardHeader {
            proto: Proto::Udp,
            port: self.port,
        };
        if write_frame(&mut stream, &header).await.is_err() {
            return;
        }
        let (mut from_guest, mut to_guest) = tokio::io::split(stream);
        let start = Instant::now();
        let last = Arc::new(AtomicU64::new(0));

        // Guest → client.
        let (sock, client, seen) = (self.sock.clone(), self.client, last.clone());
        let mut replies = tokio::spawn(async move {
            let mut buf = Vec::new();
            while let Ok(true) = read_datagram(&mut from_guest, &mut buf).await {
                seen.store(ms_since(start), Ordering::Relaxed);
                if let Err(e) = sock.send_to(&buf, client).await {
                    tracing::debug!(%client, error = %e, "udp reply not delivered");
                }
            }
        });

        // Client → guest, until idle, cancelled or either side ends.
        let idle_ms = u64::try_from(self.idle.as_millis()).unwrap_or(u64::MAX);
        loop {
            let quiet = ms_since(start).saturating_sub(last.load(Ordering::Relaxed));
            if quiet >= idle_ms {
                tracing::debug!(port = self.port, client = %self.client, "udp flow idle");
                break;
            }
            let wait = Duration::from_millis(idle_ms - quiet);
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = &mut replies => break,
                _ = tokio::time::sleep(wait) => continue,
                d = rx.recv() => match d {
                    Some(d) => {
                        last.store(ms_since(start), Ordering::Relaxed);
                        if write_datagram(&mut to_guest, &d).await.is_err() {
                            break;
                        }
                    }
                    None => break,
                },
            }
        }
        rx.close();
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut to_guest).await;
        replies.abort();
    }
}

fn ms_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}
