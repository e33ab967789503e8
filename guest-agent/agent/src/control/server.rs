//! One control connection: requests in, replies and port events out.

use std::sync::Arc;
use std::time::Instant;

use berth_agent_proto::{
    read_frame, write_frame, Event, GuestFrame, HostFrame, Reply, Request, ShareTransport,
    FEATURE_FILE_RENAME, PROTOCOL_VERSION,
};
use berth_vsock::BoxIo;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{files, system, PortTracker};

/// What control connections share.
pub(crate) struct ControlCtx {
    pub(crate) tracker: PortTracker,
    /// 9P streams the host opened for shares, until their mount request.
    pub(crate) share_streams: super::ninep::ShareStreams,
    pub(crate) started: Instant,
    /// Fired by a `shutdown` request: the agent stops and, in a VM, powers off.
    pub(crate) shutdown: CancellationToken,
    /// The engine's data root (trimmed on a `trim` request).
    pub(crate) data_root: std::path::PathBuf,
    /// Fired once a `restart_engine` reply is written, when this engine can be restarted (a
    /// VM's PID 1 supervises it); `None` otherwise.
    pub(crate) restart: Option<EngineRestart>,
}

/// How a `restart_engine` request reaches PID 1: the daemon.json the next engine reads is
/// written to `config`, then `requested` fires and the agent exits with
/// [`crate::init::RESTART_EXIT_CODE`], which PID 1 answers by starting it again at once.
pub(crate) struct EngineRestart {
    pub(crate) requested: CancellationToken,
    pub(crate) config: std::path::PathBuf,
}

impl EngineRestart {
    /// Writes (or, with `None`, removes) the daemon.json the next engine reads.
    fn stage(&self, daemon_json: Option<&str>) -> std::io::Result<()> {
        match daemon_json {
            Some(text) => {
                if let Some(dir) = self.config.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let tmp = self.config.with_extension("json.tmp");
                std::fs::write(&tmp, text)?;
                std::fs::rename(&tmp, &self.config)
            }
            None => match std::fs::remove_file(&self.config) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
        }
    }
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
    let mut restarting = false;
    while !restarting {
        let frame: HostFrame = match read_frame(&mut rd).await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(error = %e, "control connection failed");
                break;
            }
        };
        let is_hello = matches!(frame.request, Request::Hello { .. });
        let is_restart = matches!(frame.request, Request::RestartEngine { .. });
        let reply = handle(frame.request, &ctx).await;
        // The engine stops once this reply is written: read nothing more.
        restarting = is_restart && reply == Reply::Ok;
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
    // The reply is written (or the host is gone): now the engine may stop.
    if let Some(r) = ctx.restart.as_ref().filter(|_| restarting) {
        tracing::info!("engine restart requested by the host");
        r.requested.cancel();
    }
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
                features: vec![FEATURE_FILE_RENAME.into()],
            }
        }
        Request::Health => Reply::Health {
            engine_ready: true,
            uptime_secs: ctx.started.elapsed().as_secs(),
            memory: system::memory(),
            disk: system::disk(&ctx.data_root),
            engine_pid: Some(std::process::id()),
        },
        Request::Shutdown => {
            tracing::info!("shutdown requested by the host");
            ctx.shutdown.cancel();
            Reply::Ok
        }
        Request::RestartEngine { daemon_json } => match &ctx.restart {
            None => Reply::Error {
                message: "this engine is not supervised by Berth's VM init; restart it the way it was started".into(),
            },
            Some(r) => match r.stage(daemon_json.as_deref()) {
                Ok(()) => Reply::Ok,
                Err(e) => Reply::Error {
                    message: format!("cannot write {}: {e}", r.config.display()),
                },
            },
        },
        Request::TimeSync { unix_nanos } => result(system::set_clock(unix_nanos)),
        Request::Mount(share) if share.transport == ShareTransport::NineP => {
            let mounted = super::ninep::mount(&ctx.share_streams, share).await;
            if mounted.is_ok() {
                let _ = tokio::task::spawn_blocking(files::load_module).await;
            }
            result(mounted)
        }
        Request::Mount(share) => result(
            tokio::task::spawn_blocking(move || {
                system::mount_share(&share)?;
                files::load_module();
                Ok(())
            })
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

    /// A context over a fresh event bus (kept alive by the caller).
    fn context(
        bus: &EventBus,
        shutdown: CancellationToken,
        restart: Option<EngineRestart>,
    ) -> Arc<ControlCtx> {
        Arc::new(ControlCtx {
            tracker: PortTracker::start(Router::new(), bus),
            share_streams: Default::default(),
            started: Instant::now(),
            shutdown,
            data_root: std::env::temp_dir(),
            restart,
        })
    }

    #[tokio::test]
    async fn hello_then_ports_health_and_shutdown() {
        let bus = EventBus::new();
        let shutdown = CancellationToken::new();
        let ctx = context(&bus, shutdown.clone(), None);
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
        let ctx = context(&bus, CancellationToken::new(), None);
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

    #[tokio::test]
    async fn restart_engine_stages_the_config_replies_then_ends_and_fires() {
        let bus = EventBus::new();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("run/daemon.json");
        let requested = CancellationToken::new();
        let ctx = context(
            &bus,
            CancellationToken::new(),
            Some(EngineRestart {
                requested: requested.clone(),
                config: config.clone(),
            }),
        );
        let (mut host, guest) = tokio::io::duplex(64 * 1024);
        let served = tokio::spawn(serve_control(Box::new(guest), ctx.clone()));
        let text = "{\"debug\": true}";
        let r = ask(
            &mut host,
            4,
            Request::RestartEngine {
                daemon_json: Some(text.into()),
            },
        )
        .await;
        assert_eq!(
            r[0],
            GuestFrame::Reply {
                id: 4,
                reply: Reply::Ok
            }
        );
        assert_eq!(std::fs::read_to_string(&config).unwrap(), text);
        // The guest reads nothing more and closes; then the restart fires.
        let end: Option<GuestFrame> = read_frame(&mut host).await.unwrap();
        assert_eq!(end, None);
        served.await.unwrap();
        assert!(requested.is_cancelled());

        // Without a host daemon.json the staged copy goes (the guest's own applies).
        let (mut host, guest) = tokio::io::duplex(64 * 1024);
        tokio::spawn(serve_control(Box::new(guest), ctx));
        let r = ask(&mut host, 5, Request::RestartEngine { daemon_json: None }).await;
        assert!(matches!(
            &r[0],
            GuestFrame::Reply {
                reply: Reply::Ok,
                ..
            }
        ));
        assert!(!config.exists());
    }

    #[tokio::test]
    async fn restart_engine_is_refused_without_init_and_nothing_fires() {
        let bus = EventBus::new();
        let shutdown = CancellationToken::new();
        let ctx = context(&bus, shutdown.clone(), None);
        let (mut host, guest) = tokio::io::duplex(64 * 1024);
        tokio::spawn(serve_control(Box::new(guest), ctx));
        let r = ask(&mut host, 6, Request::RestartEngine { daemon_json: None }).await;
        match &r[0] {
            GuestFrame::Reply {
                reply: Reply::Error { message },
                ..
            } => assert!(message.contains("not supervised"), "{message}"),
            other => panic!("{other:?}"),
        }
        // The connection stays usable.
        let r = ask(&mut host, 7, Request::Health).await;
        assert!(matches!(&r[0], GuestFrame::Reply { id: 7, .. }));
        assert!(!shutdown.is_cancelled());
    }
}
