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
    /// The engine's data root (trimmed on a `trim` request).
    pub(crate) data_root: std::path::PathBuf,
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
            memory: system::memory(),
            disk: system::disk(&ctx.data_root),
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
        Request::Trim => {
            let root = ctx.data_root.clone();
            match tokio::task::spawn_blocking(move || crate::fstrim::trim(&root)).await {
                Ok(Ok(bytes)) => {
                    tracing::info!(bytes, "fstrim: data disk trimmed on the host's request");
                    Reply::Trimmed { bytes }
                }
                Ok(Err(e)) => Reply::Error {
                    message: format!("fstrim failed: {e}"),
                },
                Err(e) => Reply::Error {
                    message: format!("fstrim task failed: {e}"),
                },
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use berth_engine::EventBus;

    async fn ask(s: &mut tokio::io::DuplexStream, id: u64, request: Request) -> Vec<GuestFrame> {
        write_frame(s, &HostFrame { id, request }).await.unwrap();
        let f: GuestFrame = read_frame(s).await.unwrap().unwrap();
        vec![f]
    }

    #[tokio::test]
    async fn hello_then_ports_health_and_shutdown() {
        let bus = EventBus::new();
        let shutdown = CancellationToken::new();
        let ctx = Arc::new(ControlCtx {
            tracker: PortTracker::start(Router::new(), &bus),
            started: Instant::now(),
            shutdown: shutdown.clone(),
            data_root: std::env::temp_dir(),
        });
        let (mut host, guest) = tokio::io::duplex(64 * 1024);
        tokio::spawn(serve_control(Box::new(guest), ctx));

        let r = ask(
            &mut host,
            1,
            Request::Hello {
                protocol_version: PROTOCOL_VERSION,
                host_version: "test".into(),
            },
        )
        .await;
        assert!(matches!(
            &r[0],
            GuestFrame::Reply {
                id: 1,
                reply: Reply::Hello {
                    protocol_version: PROTOCOL_VERSION,
                    ..
                }
            }
        ));
        let ev: GuestFrame = read_frame(&mut host).await.unwrap().unwrap();
        assert_eq!(
            ev,
            GuestFrame::Event {
                event: Event::PortsChanged {
                    published: vec![],
                    unpublished: vec![]
                }
            }
        );
        let r = ask(&mut host, 2, Request::Health).await;
        assert!(matches!(
            &r[0],
            GuestFrame::Reply {
                id: 2,
                reply: Reply::Health {
                    engine_ready: true,
                    ..
                }
            }
        ));
        let r = ask(&mut host, 3, Request::Shutdown).await;
        assert!(matches!(
            &r[0],
            GuestFrame::Reply {
                id: 3,
                reply: Reply::Ok
            }
        ));
        assert!(shutdown.is_cancelled());
    }

    #[tokio::test]
    async fn wrong_protocol_version_is_refused() {
        let bus = EventBus::new();
        let ctx = Arc::new(ControlCtx {
            tracker: PortTracker::start(Router::new(), &bus),
            started: Instant::now(),
            shutdown: CancellationToken::new(),
            data_root: std::env::temp_dir(),
        });
        let (mut host, guest) = tokio::io::duplex(64 * 1024);
        tokio::spawn(serve_control(Box::new(guest), ctx));
        let r = ask(
            &mut host,
            1,
            Request::Hello {
                protocol_version: PROTOCOL_VERSION + 1,
                host_version: "test".into(),
            },
        )
        .await;
        assert!(matches!(
            &r[0],
            GuestFrame::Reply {
                reply: Reply::Error { .. },
                ..
            }
        ));
    }
}
