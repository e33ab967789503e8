//! Published ports: on a `ports_changed` event the host listens on 127.0.0.1:<port> (at once,
//! no polling) and tunnels each connection (TCP) or client flow (UDP, [`super::udp`]) over the
//! FORWARD_PORT multiplexer; an unpublished port's listener is closed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_agent_proto::{write_frame, Event, ForwardHeader, Proto, PublishedPort};
use berth_vsock::mux::MuxClient;
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

/// The set of forwarded ports.
pub struct PortForwarder {
    mux: Arc<MuxClient>,
    open: Mutex<HashMap<PublishedPort, CancellationToken>>,
    udp_idle: Duration,
    record: Option<PathBuf>,
}

impl PortForwarder {
    pub fn new(mux: Arc<MuxClient>) -> Self {
        Self {
            mux,
            open: Mutex::default(),
            udp_idle: super::udp::UDP_IDLE,
            record: None,
        }
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
            if let Some(t) = self.lock().remove(p) {
                t.cancel();
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

    /// Closes every listener (the VM went away).
    pub fn clear(&self) {
        for (_, t) in self.lock().drain() {
            t.cancel();
        }
        self.write_record();
    }

    fn write_record(&self) {
        if let Some(path) = &self.record {
            crate::state::write_json_atomic(path, &self.ports());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PublishedPort, CancellationToken>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn open_port(&self, p: &PublishedPort) {
        if self.lock().contains_key(p) {
            return;
        }
        let port = p.host_port;
        let token = CancellationToken::new();
        let bound = match p.proto {
            Proto::Tcp => TcpListener::bind(("127.0.0.1", port)).await.map(|l| {
                tokio::spawn(accept_loop(l, port, self.mux.clone(), token.clone()));
            }),
            Proto::Udp => UdpSocket::bind(("127.0.0.1", port)).await.map(|s| {
                let (mux, idle) = (self.mux.clone(), self.udp_idle);
                tokio::spawn(super::udp::serve(s, port, mux, idle, token.clone()));
            }),
        };
        match bound {
            Ok(()) => {
                self.lock().insert(p.clone(), token);
                tracing::info!(port, proto = ?p.proto, "port forward open");
            }
            Err(e) => {
                tracing::warn!(port, proto = ?p.proto, error = %e, "cannot forward published port");
            }
        }
    }
}

/// The ports a supervisor's record file lists (empty when there is none).
pub fn read_record(path: &std::path::Path) -> Vec<PublishedPort> {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// How a forwarded port shows to the user: `127.0.0.1:18080/tcp`.
pub fn describe(p: &PublishedPort) -> String {
    let proto = match p.proto {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
    };
    format!("127.0.0.1:{}/{proto}", p.host_port)
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
