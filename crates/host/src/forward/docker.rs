//! The host's Docker socket: an owner-only unix socket whose every client is carried to the
//! guest's Docker API as one multiplexed stream.

use std::path::Path;
use std::sync::Arc;

use berth_vsock::mux::MuxClient;
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;

use crate::error::{HostError, Result};

/// Binds `path` with mode 0600, replacing a stale socket.
pub fn bind_owner_only(path: &Path) -> Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(HostError::Io {
                path: path.into(),
                source: e,
            })
        }
    }
    let l = UnixListener::bind(path).map_err(HostError::io(path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(HostError::io(path))?;
    Ok(l)
}

/// Accepts on `listener` until `cancel` fires, forwarding each client through `mux`.
pub async fn serve(listener: UnixListener, mux: Arc<MuxClient>, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            r = listener.accept() => match r {
                Ok((client, _)) => {
                    let mux = mux.clone();
                    tokio::spawn(async move {
                        match mux.open().await {
                            Ok(stream) => super::splice(client, stream).await,
                            Err(e) => tracing::warn!(error = %e, "cannot reach the guest's Docker API"),
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed on the docker socket");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
        }
    }
}
