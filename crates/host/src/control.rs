//! The host end of the control protocol: one connection to the guest's CONTROL_PORT, requests
//! matched to replies by id, guest events delivered on a channel.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_agent_proto::{
    read_frame, write_frame, Event, GuestFrame, HostFrame, Reply, Request, CONTROL_PORT,
    PROTOCOL_VERSION,
};
use berth_vsock::Connector;
use tokio::sync::{mpsc, oneshot};

use crate::error::{HostError, Result};

pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Reply>>>>;

/// A connected, greeted control channel. Cheap to clone.
#[derive(Clone)]
pub struct ControlClient {
    out: mpsc::Sender<HostFrame>,
    pending: Pending,
    next: Arc<AtomicU64>,
    /// Fired when the guest's end closes (VM gone, or its engine restarted).
    closed: tokio_util::sync::CancellationToken,
    /// What the agent's hello listed beyond the protocol version (`FEATURE_*`).
    features: Arc<[String]>,
}

impl ControlClient {
    /// Connects once and says hello; returns the client and the guest's events. The channel
    /// closes when the connection ends (VM gone).
    pub async fn connect(connector: &dyn Connector) -> Result<(Self, mpsc::Receiver<Event>)> {
        let io = connector
            .connect(CONTROL_PORT)
            .await
            .map_err(|e| HostError::Control(format!("connect: {e}")))?;
        let (mut rd, mut wr) = tokio::io::split(io);
        let (out, mut out_rx) = mpsc::channel::<HostFrame>(64);
        let (ev_tx, ev_rx) = mpsc::channel::<Event>(256);
        let pending: Pending = Arc::default();
        tokio::spawn(async move {
            while let Some(f) = out_rx.recv().await {
                if write_frame(&mut wr, &f).await.is_err() {
                    break;
                }
            }
        });
        let p = pending.clone();
        let closed = tokio_util::sync::CancellationToken::new();
        let closing = closed.clone().drop_guard();
        let reader = tokio::spawn(async move {
            let _closing = closing;
            loop {
                match read_frame::<_, GuestFrame>(&mut rd).await {
                    Ok(Some(GuestFrame::Reply { id, reply })) => {
                        let tx = p.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                        if let Some(tx) = tx {
                            let _ = tx.send(reply);
                        }
                    }
                    Ok(Some(GuestFrame::Event { event })) => {
                        if ev_tx.send(event).await.is_err() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "control channel failed");
                        break;
                    }
                }
            }
            // Wake every waiter: the connection is gone.
            p.lock().unwrap_or_else(|e| e.into_inner()).clear();
        });
        let c = Self {
            out,
            pending,
            next: Arc::new(AtomicU64::new(1)),
            closed,
            features: Arc::new([]),
        };
        let hello = c
            .request(Request::Hello {
                protocol_version: PROTOCOL_VERSION,
                host_version: env!("CARGO_PKG_VERSION").into(),
            })
            .await;
        if hello.is_err() {
            // Nothing may keep a connection that was not greeted: over virtio-serial the port
            // takes one client, and the next attempt needs it.
            reader.abort();
        }
        match hello? {
            Reply::Hello {
                protocol_version,
                agent_version,
                features,
            } => {
                tracing::info!(
                    protocol_version,
                    agent_version,
                    ?features,
                    "guest agent connected"
                );
                let c = Self {
                    features: features.into(),
                    ..c
                };
                Ok((c, ev_rx))
            }
            other => {
                reader.abort();
                Err(HostError::Control(format!(
                    "unexpected hello reply {other:?}"
                )))
            }
        }
    }

    /// Sends `req` and waits (bounded) for its reply; `Reply::Error` becomes an error.
    pub async fn request(&self, req: Request) -> Result<Reply> {
        self.request_within(req, REQUEST_TIMEOUT).await
    }

    /// [`Self::request`] with its own bound (a trim takes longer than the usual 30 s).
    pub async fn request_within(&self, req: Request, timeout: Duration) -> Result<Reply> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        self.out
            .send(HostFrame { id, request: req })
            .await
            .map_err(|_| HostError::Control("connection closed".into()))?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Reply::Error { message })) => Err(HostError::Control(message)),
            Ok(Ok(r)) => Ok(r),
            Ok(Err(_)) => Err(HostError::Control("connection closed".into())),
            Err(_) => Err(HostError::Timeout {
                what: "control reply".into(),
                secs: timeout.as_secs(),
            }),
        }
    }

    /// Whether the agent's hello listed `feature` (a `berth_agent_proto::FEATURE_*`).
    pub fn agent_has(&self, feature: &str) -> bool {
        self.features.iter().any(|f| f == feature)
    }

    /// Whether the connection is still up.
    pub fn is_open(&self) -> bool {
        !self.out.is_closed() && !self.closed.is_cancelled()
    }

    /// Resolves once the guest's end has closed the connection.
    pub async fn closed(&self) {
        self.closed.cancelled().await
    }
}

/// Connects, retrying every 200 ms until `timeout`: the guest agent is not listening until
/// the VM has booted.
pub async fn wait_for_agent(
    connector: &dyn Connector,
    timeout: Duration,
) -> Result<(ControlClient, mpsc::Receiver<Event>)> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::new();
    while tokio::time::Instant::now() < deadline {
        match ControlClient::connect(connector).await {
            Ok(c) => return Ok(c),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tracing::debug!(last, "agent did not answer");
    Err(HostError::Timeout {
        what: "the guest agent".into(),
        secs: timeout.as_secs(),
    })
}

/// How a process other than the supervisor reaches the running guest's ports, for one-off
/// requests: the hybrid-vsock socket (vhost-device-vsock's on Linux, the supervisor's own on
/// macOS). Over virtio-serial (Windows, or Linux with `"guest_ports": "virtio-serial"`, where
/// there is no such socket) each port takes one client, which the supervisor holds: the
/// requests go through the supervisor's control endpoint instead.
#[cfg(unix)]
pub fn side_connector(state: &crate::StateDir) -> Result<Box<dyn Connector>> {
    let hybrid = state.vsock_socket();
    if !hybrid.exists() {
        return Ok(Box::new(SupervisorConnector::new(state)));
    }
    Ok(Box::new(berth_vsock::HybridConnector::new(hybrid)))
}

#[cfg(windows)]
pub fn side_connector(state: &crate::StateDir) -> Result<Box<dyn Connector>> {
    Ok(Box::new(SupervisorConnector::new(state)))
}

/// The supervisor's control endpoint ([`crate::control_endpoint`]) as a [`Connector`] with one
/// port, [`CONTROL_PORT`]: the supervisor relays `health` and `trim` to the guest.
#[derive(Debug, Clone)]
pub struct SupervisorConnector {
    endpoint: crate::endpoint::Endpoint,
}

impl SupervisorConnector {
    pub fn new(state: &crate::StateDir) -> Self {
        Self {
            endpoint: state.control_endpoint(),
        }
    }
}

impl Connector for SupervisorConnector {
    fn connect(
        &self,
        port: u32,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = std::io::Result<berth_vsock::BoxIo>> + Send + '_>,
    > {
        Box::pin(async move {
            if port != CONTROL_PORT {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    format!("the supervisor relays the control port only, not {port}"),
                ));
            }
            crate::endpoint::connect(&self.endpoint).await
        })
    }
}

/// Asks the running supervisor to stop Berth in order (the guest stops its containers and
/// powers off): `berth stop` on Windows, which has no SIGTERM. Returns once the supervisor has
/// taken the request; the caller waits for its process to end.
pub async fn request_stop(state: &crate::StateDir) -> Result<()> {
    match one_request(
        &SupervisorConnector::new(state),
        Request::Shutdown,
        Duration::from_secs(10),
    )
    .await?
    {
        Reply::Ok => Ok(()),
        other => Err(HostError::Control(format!(
            "unexpected reply to shutdown: {other:?}"
        ))),
    }
}

/// One request on a connection of its own, without a hello (so the guest pushes no events on
/// it), bounded by `timeout`: for `berth status` and `berth disk compact` while the supervisor
/// holds the main connection.
pub async fn one_request(
    connector: &dyn Connector,
    request: Request,
    timeout: Duration,
) -> Result<Reply> {
    let ask = async {
        let mut io = connector
            .connect(CONTROL_PORT)
            .await
            .map_err(|e| HostError::Control(format!("connect: {e}")))?;
        write_frame(&mut io, &HostFrame { id: 1, request })
            .await
            .map_err(|e| HostError::Control(e.to_string()))?;
        loop {
            match read_frame::<_, GuestFrame>(&mut io).await {
                Ok(Some(GuestFrame::Reply { id: 1, reply })) => break Ok(reply),
                Ok(Some(_)) => continue,
                Ok(None) => break Err(HostError::Control("connection closed".into())),
                Err(e) => break Err(HostError::Control(e.to_string())),
            }
        }
    };
    match tokio::time::timeout(timeout, ask).await {
        Ok(Ok(Reply::Error { message })) => Err(HostError::Control(message)),
        Ok(r) => r,
        Err(_) => Err(HostError::Timeout {
            what: "control reply".into(),
            secs: timeout.as_secs(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    // A guest that takes the connection and never answers the hello (over virtio-serial: the
    // agent not started yet). When the hello times out nothing on the host may keep the
    // connection, or the port's single client slot stays taken.
    #[tokio::test(start_paused = true)]
    async fn a_connection_whose_hello_times_out_is_closed() {
        let c = berth_vsock::MemoryConnector::new();
        let mut guest = c.listen(CONTROL_PORT);
        let err = ControlClient::connect(&c).await.err().unwrap();
        assert!(matches!(err, HostError::Timeout { .. }), "{err}");
        let mut stream = guest.recv().await.unwrap();
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut got))
            .await
            .expect("the host's end is closed")
            .unwrap();
        assert!(!got.is_empty(), "the hello was sent");
    }
}
