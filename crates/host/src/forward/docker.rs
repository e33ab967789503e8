//! The host's Docker endpoint (an owner-only unix socket, or a named pipe on Windows): every
//! client is carried to the guest's Docker API as one multiplexed stream.

use std::sync::Arc;

use berth_vsock::mux::MuxClient;
use tokio_util::sync::CancellationToken;

use crate::endpoint::Listener;
use crate::idle::IdleGate;

/// Accepts on `listener` until `cancel` fires, forwarding each client through `mux`; each
/// client keeps the VM running (resumed first if it was paused) while it is connected.
pub async fn serve(
    mut listener: Listener,
    mux: Arc<MuxClient>,
    gate: Arc<IdleGate>,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            r = listener.accept() => match r {
                Ok(client) => {
                    let (mux, gate) = (mux.clone(), gate.clone());
                    tokio::spawn(async move {
                        let _awake = match gate.enter().await {
                            Ok(a) => a,
                            Err(e) => {
                                tracing::warn!(error = %e, "cannot resume the VM for a client");
                                return;
                            }
                        };
                        match mux.open().await {
                            Ok(stream) => super::splice(client, stream).await,
                            Err(e) => tracing::warn!(error = %e, "cannot reach the guest's Docker API"),
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed on the docker endpoint");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
        }
    }
}
