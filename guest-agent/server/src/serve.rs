//! Serving connections: HTTP/1.1 with upgrades on any stream, and a unix-socket accept loop.

use std::path::Path;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

/// Serves one connection until the client closes it; hijacked connections are handed to
/// their handlers through `hyper::upgrade`.
///
/// A client that goes away while its request is in progress ends it, as with dockerd: no
/// half-close, so hyper notices the EOF and drops the handler. `docker run -d` asks for
/// `POST /containers/{id}/wait?condition=next-exit` before the start and exits without
/// reading the answer; with half-close allowed, that connection (and, in the VM, the host's
/// forwarded one) stayed open until the container exited.
pub async fn serve_stream<S>(app: Router, stream: S)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let svc = TowerToHyperService::new(app);
    let conn = hyper::server::conn::http1::Builder::new()
        .half_close(false)
        .serve_connection(TokioIo::new(stream), svc)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "connection ended with error");
    }
}

/// Binds a unix socket at `path` (replacing a stale one) with the given mode.
pub fn bind_unix(path: &Path, mode: u32) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let l = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(l)
}

/// Accepts on `listener` until `cancel` fires, serving each connection on its own task.
pub async fn serve_unix(
    app: Router,
    listener: tokio::net::UnixListener,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    tokio::spawn(serve_stream(app.clone(), stream));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
        }
    }
}
