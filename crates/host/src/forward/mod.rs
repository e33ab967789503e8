//! Forwarding over multiplexed vsock: the Docker API socket ([`docker`]) and published ports
//! ([`ports`], TCP and UDP). Every client connection becomes one yamux stream, bytes both ways with
//! half-close, so hijacked attach/exec connections need nothing special.

pub mod docker;
pub mod ports;
mod udp;

use berth_vsock::mux::MuxStream;
use tokio::io::{AsyncRead, AsyncWrite};

/// Copies both ways until both sides have finished, passing each side's EOF on as a half-close.
pub(crate) async fn splice<C>(mut client: C, mut stream: MuxStream)
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let n = berth_vsock::mux::SPLICE_BUFFER;
    if let Err(e) = tokio::io::copy_bidirectional_with_sizes(&mut client, &mut stream, n, n).await {
        tracing::debug!(error = %e, "forwarded connection ended with error");
    }
}
