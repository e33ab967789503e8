//! One control connection: requests in, replies and port events out.

use std::sync::Arc;
use std::time::Instant;

use berth_agent_proto::{
    read_frame, write_frame, Event, GuestFrame, HostFrame, Reply, Request, PROTOCOL_VERSION,
};
use berth_vsock::BoxIo;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{files, system, PortTracker};

/// What control connections share.
pub(crate) struct ControlCtx {
    pub(crate) tracker: PortTracker,
    pub(crate) started: Instant,
    /// Fired by a `shutdown` request: the agent stops and, in a VM, powers off.
    pub(crate) shutdown: CancellationToken,
}

/// Serves one control connection until the host closes it.
pub(crate) async fn serve_control(io: BoxIo, ctx: Arc<ControlCtx>) {
    let (mut rd, mut wr) = tokio::io::split(io);
    let (out_tx, mut out_rx) = mpsc::channel::<GuestFrame>(64);
    let writer = tokio::spawn(async move {
        while let Some(f) = out_rx.recv().await {
            if let Err(e) = write_frame(&mut wr, &f).await {
                tracing::debug!(error = %e, "control write failed");
                break;
            }
        }
    });
    let mut ports_task: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        let frame: HostFrame = match read_frame(&mut rd).await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(error = %e, "control connection failed");
                break;
            }
        };
        let is_hello = matches!(frame.request, Request::Hello { .. });
        let reply = handle(frame.request, &ctx).await;
        if out_tx
            .send(GuestFrame::Reply {
                id: frame.id,
                reply,
            })
            .await
            .is_err()
        {
            break;
        }
        if is_hello && ports_task.is_none() {
            ports_task = Some(tokio::spawn(push_ports(
                ctx.tracker.clone(),
                out_tx.clone(),
            )));
        }
    }
    if let Some(t) = ports_task {
        t.abort();
    }
    drop(out_tx);
    let _ = writer.await;
}

/// Pushes the full published set, then every change, as `ports_changed` events.
async fn push_ports(tracker: PortTracker, out: mpsc::Sender<GuestFrame>) {
    let (now, mut rx) = tracker.subscribe();
    let first = Event::PortsChanged {
        published: now,
        unpublished: vec![],
    };
    if out.send(GuestFrame::Event { event: first }).await.is_err() {
        return;
    }
    loop {
        match rx.recv().await {
            Ok(d) => {
                let event = Event::PortsChanged {
                    published: d.published,
                    unpublished: d.unpublished,
                };
                if out.send(GuestFrame::Event { event }).await.is_err() {
                    return;
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                // Resend the whole set; the host treats `published` as idempotent.
                let (now, _) = tracker.subscribe();
                let event = Event::PortsChanged {
                    published: now,
                    unpublished: vec![],
                };
                if out.send(GuestFrame::Event { event }).await.is_err() {
                    return;
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn handle(req: Request, ctx: &ControlCtx) -> Reply {
    match req {
        Request::Hello {
            protocol_version,
            host_version,
        } => {
            tracing::info!(protocol_version, host_version, "host connected");
            if protocol_version != PROTOCOL_VERSION {
                return Reply::Error {
                    message: format!(
                        "unsupported protocol version {protocol_version}, agent speaks {PROTOCOL_VERSION}"
                    ),
                };
            }
            Reply::Hello {
                protocol_version: PROTOCOL_VERSION,
                agent_version: env!("CARGO_PKG_VERSION").to_string(),
            }
        }
        Request::Health => Reply::Health {
            engine_ready: true,
            uptime_secs: ctx.started.elapsed().as_secs(),
        },
        Request::Shutdown => {
            tracing::info!("shutdown requested by the host");
            ctx.shutdown.cancel();
            Reply::Ok
        }
        Request::TimeSync { unix_nanos } => result(system::set_clock(unix_nanos)),
        Request::Mount(share) => result(
            tokio::task::spawn_blocking(move || system::mount_share(&share))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e))),
        ),
        Request::FileEvents { events } => {
            let _ = tokio::task::spawn_blocking(move || files::apply(&events)).await;
            Reply::Ok
        }
    }
}

fn result(r: std::io::Result<()>) -> Reply {
    match r {
        Ok(()) => Reply::Ok,
        Err(e) => Reply::Error {
            message: e.to_string(),
        },
    }
}
