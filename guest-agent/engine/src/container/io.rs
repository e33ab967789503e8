//! Attach: streams of a running container from its shim, or registered before start.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

use super::{PendingAttach, Svc};
use crate::Result;

/// A bidirectional stream session for attach or exec. `output` is raw for a TTY and Docker's
/// multiplexed frames otherwise; shutting down `input` is the stdin half-close.
pub struct Session {
    pub output: Pin<Box<dyn AsyncRead + Send>>,
    pub input: Option<Pin<Box<dyn AsyncWrite + Send>>>,
}

/// What to attach to.
#[derive(Debug, Clone, Copy, Default)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

pub type SessionFuture = Pin<Box<dyn Future<Output = Option<Session>> + Send>>;

fn session(conn: tokio::net::UnixStream, stdin: bool) -> Session {
    let (r, w) = conn.into_split();
    Session {
        output: Box::pin(r),
        input: stdin.then(|| Box::pin(w) as Pin<Box<dyn AsyncWrite + Send>>),
    }
}

impl Svc {
    /// `POST /containers/{id}/attach`: returns whether the container has a TTY and a future
    /// for the session (ready now when running, else when the container starts).
    pub async fn attach(
        self: &Arc<Self>,
        key: &str,
        opts: AttachOptions,
    ) -> Result<(bool, SessionFuture)> {
        let c = self.get(key)?;
        let s = c.snapshot();
        let tty = s.record.config.tty;
        let stdin = opts.stdin && s.record.config.open_stdin;
        self.publish(&c, "attach", &[]);
        if s.state.state.running {
            let conn = self
                .shim(&c.id)
                .attach(stdin, opts.stdout, opts.stderr)
                .await?;
            return Ok((tty, Box::pin(async move { Some(session(conn, stdin)) })));
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        c.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(PendingAttach {
                stdin,
                stdout: opts.stdout,
                stderr: opts.stderr,
                tx,
            });
        Ok((
            tty,
            Box::pin(async move { rx.await.ok().map(|c| session(c, stdin)) }),
        ))
    }
}
