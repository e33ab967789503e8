//! Port-forward tunnels: every multiplexed stream from the host starts with a `ForwardHeader`
//! and is spliced to the published port, first on the guest's loopback (the engine's port
//! proxy), else straight to the container.

use berth_agent_proto::{read_frame, ForwardHeader, Proto, PublishedPort};
use berth_vsock::{mux, BoxIo};
use tokio::net::TcpStream;

use super::PortTracker;

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
    if h.proto != Proto::Tcp {
        return;
    }
    let mut upstream = match TcpStream::connect(("127.0.0.1", h.port)).await {
        Ok(u) => u,
        Err(e) => {
            let target = tracker.target(&PublishedPort {
                proto: h.proto,
                host_port: h.port,
            });
            let direct = match target.and_then(|t| Some((t.container_ip?, t.private_port))) {
                Some((ip, p)) => TcpStream::connect((ip.as_str(), p)).await,
                None => Err(e),
            };
            match direct {
                Ok(u) => u,
                Err(e) => {
                    tracing::debug!(port = h.port, error = %e, "forward target unreachable");
                    return;
                }
            }
        }
    };
    let _ = upstream.set_nodelay(true);
    if let Err(e) = tokio::io::copy_bidirectional(&mut s, &mut upstream).await {
        tracing::debug!(port = h.port, error = %e, "forward ended");
    }
}
