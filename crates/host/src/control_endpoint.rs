//! The supervisor's control endpoint (`run/control.sock`; on Windows the named pipe
//! `berth_control`): how another process (the CLI, the app) reaches the running guest and asks
//! for an orderly stop without a guest connection of its own. On Windows it is the only way:
//! QEMU's virtio-serial pipes take one client each, and the supervisor holds them, and there is
//! no SIGTERM for `berth stop` to send.
//!
//! One request per connection, framed as on the guest's control port ([`HostFrame`] in,
//! [`GuestFrame::Reply`] out), so [`crate::control::one_request`] talks to it unchanged:
//! - `health`, `trim` and `restart_engine` go to the guest on the supervisor's own control connection;
//! - `shutdown` stops Berth in order: the supervisor's stop token fires, the agent stops the
//!   containers, syncs and powers the guest off, then the supervisor exits;
//! - anything else (hello, mount, time sync, file events) is the supervisor's own business and is
//!   refused.

use std::sync::Arc;
use std::time::Duration;

use berth_agent_proto::{read_frame, write_frame, GuestFrame, HostFrame, Reply, Request};
use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::control::ControlClient;
use crate::endpoint::Listener;
use crate::error::Result;

/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the guest may take to trim its disk (as the CLI's own bound).
pub const TRIM_TIMEOUT: Duration = Duration::from_secs(300);

/// The guest as the endpoint reaches it: the supervisor's control connection, or a fake.
pub trait Guest: Send + Sync {
    fn request(&self, req: Request, timeout: Duration) -> BoxFuture<'_, Result<Reply>>;
}

impl Guest for ControlClient {
    fn request(&self, req: Request, timeout: Duration) -> BoxFuture<'_, Result<Reply>> {
        Box::pin(self.request_within(req, timeout))
    }
}

/// A guest whose requests first wake its VM if auto-pause stopped it ([`crate::idle`]).
pub struct Awake<G> {
    pub guest: G,
    pub gate: Arc<crate::idle::IdleGate>,
}

impl<G: Guest> Guest for Awake<G> {
    fn request(&self, req: Request, timeout: Duration) -> BoxFuture<'_, Result<Reply>> {
        Box::pin(async move {
            let _awake = self.gate.enter().await?;
            self.guest.request(req, timeout).await
        })
    }
}

/// The guest of the current boot: `None` while the VM boots, restarts or stops.
pub type CurrentGuest = watch::Receiver<Option<Arc<dyn Guest>>>;

/// What the endpoint answers to `req`.
pub async fn answer(req: Request, guest: &CurrentGuest, stop: &CancellationToken) -> Reply {
    let timeout = match req {
        Request::Shutdown => {
            tracing::info!("stop requested on the control endpoint");
            stop.cancel();
            return Reply::Ok;
        }
        Request::Health | Request::RestartEngine { .. } => crate::control::REQUEST_TIMEOUT,
        Request::Trim => TRIM_TIMEOUT,
        other => {
            return Reply::Error {
                message: format!("{other:?} is not served on the supervisor's control endpoint"),
            }
        }
    };
    // Cloned out: the receiver's borrow must not be held across the request.
    let current = guest.borrow().clone();
    let Some(g) = current else {
        return Reply::Error {
            message: "the VM is not running".into(),
        };
    };
    match g.request(req, timeout).await {
        Ok(r) => r,
        Err(e) => Reply::Error {
            message: crate::supervisor::error_chain(&e),
        },
    }
}

/// Serves `listener` until `cancel` fires: one task per client.
pub async fn serve(
    mut listener: Listener,
    guest: CurrentGuest,
    stop: CancellationToken,
    cancel: CancellationToken,
) {
    loop {
        let io = tokio::select! {
            r = listener.accept() => match r {
                Ok(io) => io,
                Err(e) => {
                    tracing::warn!(error = %e, "control endpoint: accept failed");
                    return;
                }
            },
            _ = cancel.cancelled() => return,
        };
        let (guest, stop) = (guest.clone(), stop.clone());
        tokio::spawn(async move {
            if let Err(e) = client(io, &guest, &stop).await {
                tracing::debug!(error = %e, "control endpoint client");
            }
        });
    }
}

/// Reads one request, answers it.
async fn client(
    mut io: berth_vsock::BoxIo,
    guest: &CurrentGuest,
    stop: &CancellationToken,
) -> std::io::Result<()> {
    let frame = tokio::time::timeout(READ_TIMEOUT, read_frame::<_, HostFrame>(&mut io))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no request"))?
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    let Some(HostFrame { id, request }) = frame else {
        return Ok(());
    };
    let reply = answer(request, guest, stop).await;
    write_frame(&mut io, &GuestFrame::Reply { id, reply })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    tokio::io::AsyncWriteExt::shutdown(&mut io).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A guest that answers health and trim, and records what it was asked.
    #[derive(Default)]
    struct FakeGuest {
        asked: Mutex<Vec<Request>>,
    }

    impl Guest for FakeGuest {
        fn request(&self, req: Request, _timeout: Duration) -> BoxFuture<'_, Result<Reply>> {
            self.asked.lock().unwrap().push(req.clone());
            Box::pin(async move {
                Ok(match req {
                    Request::Trim => Reply::Trimmed { bytes: 4096 },
                    _ => Reply::Health {
                        engine_ready: true,
                        uptime_secs: 7,
                        memory: None,
                        disk: None,
                        engine_pid: None,
                    },
                })
            })
        }
    }

    #[tokio::test]
    async fn guest_requests_are_relayed_only_while_a_guest_is_connected() {
        let (tx, rx) = watch::channel::<Option<Arc<dyn Guest>>>(None);
        let stop = CancellationToken::new();
        let r = answer(Request::Health, &rx, &stop).await;
        assert_eq!(
            r,
            Reply::Error {
                message: "the VM is not running".into()
            }
        );
        let fake = Arc::new(FakeGuest::default());
        tx.send_replace(Some(fake.clone()));
        assert!(matches!(
            answer(Request::Health, &rx, &stop).await,
            Reply::Health { uptime_secs: 7, .. }
        ));
        assert_eq!(
            answer(Request::Trim, &rx, &stop).await,
            Reply::Trimmed { bytes: 4096 }
        );
        assert_eq!(
            *fake.asked.lock().unwrap(),
            vec![Request::Health, Request::Trim]
        );
        assert!(!stop.is_cancelled());
    }

    #[tokio::test]
    async fn shutdown_fires_the_stop_token_and_the_supervisors_requests_are_refused() {
        let fake = Arc::new(FakeGuest::default());
        let (_tx, rx) = watch::channel::<Option<Arc<dyn Guest>>>(Some(fake.clone()));
        let stop = CancellationToken::new();
        for req in [
            Request::Mount(berth_agent_proto::Share {
                tag: "share0".into(),
                guest_path: "/x".into(),
                read_only: false,
                transport: Default::default(),
            }),
            Request::TimeSync { unix_nanos: 1 },
            Request::Hello {
                protocol_version: 1,
                host_version: "x".into(),
            },
        ] {
            assert!(matches!(answer(req, &rx, &stop).await, Reply::Error { .. }));
        }
        assert_eq!(answer(Request::Shutdown, &rx, &stop).await, Reply::Ok);
        assert!(stop.is_cancelled());
        // The guest itself is shut down by the supervisor's orderly path, not from here.
        assert!(fake.asked.lock().unwrap().is_empty());
    }

    /// The endpoint of this platform (a unix socket, or a named pipe under Windows/wine) with
    /// the CLI's client: a request in, the relayed reply out.
    #[tokio::test]
    async fn the_endpoint_carries_one_request_per_connection() {
        let d = tempfile::tempdir().unwrap();
        let state = crate::StateDir::new(d.path());
        state.create().unwrap();
        let fake: Arc<dyn Guest> = Arc::new(FakeGuest::default());
        let (_tx, rx) = watch::channel(Some(fake));
        let stop = CancellationToken::new();
        let l = Listener::bind(&state.control_endpoint()).unwrap();
        tokio::spawn(serve(l, rx, stop.clone(), CancellationToken::new()));
        let c = crate::control::SupervisorConnector::new(&state);
        for _ in 0..3 {
            let r = crate::control::one_request(&c, Request::Trim, Duration::from_secs(30))
                .await
                .unwrap();
            assert_eq!(r, Reply::Trimmed { bytes: 4096 });
        }
        crate::control::request_stop(&state).await.unwrap();
        assert!(stop.is_cancelled());
    }
}
