//! A share's 9P server on its channel of the guest's SHARE_PORT (over vsock a connection of its
//! own, over virtio-serial the share's own port: `Connector::connect_channel`): the channel is
//! opened with a header naming the share, then the (blocking) server runs on it in a thread of
//! its own until the guest unmounts or the VM goes away. On the guest side the kernel's 9p
//! client reads the stream (see the agent's `control::ninep`).

use std::io::{self, BufReader};
use std::path::PathBuf;

use berth_agent_proto::{write_frame, ShareHeader, SHARE_PORT};
use berth_vsock::Connector;
use tokio::task::JoinHandle;
use tokio_util::io::SyncIoBridge;

use super::Server;

/// Opens the 9P channel `channel` of share `tag` to the guest and serves `dir` on it; the
/// guest mounts it when asked with a 9P `mount` request.
pub async fn serve_share(
    guest: &dyn Connector,
    channel: u32,
    tag: &str,
    dir: PathBuf,
) -> io::Result<JoinHandle<()>> {
    let mut stream = guest.connect_channel(SHARE_PORT, channel).await?;
    let header = ShareHeader {
        tag: tag.to_string(),
    };
    write_frame(&mut stream, &header)
        .await
        .map_err(io::Error::other)?;
    let (r, w) = tokio::io::split(stream);
    let rt = tokio::runtime::Handle::current();
    let tag = tag.to_string();
    Ok(tokio::task::spawn_blocking(move || {
        let r = BufReader::with_capacity(256 * 1024, SyncIoBridge::new_with_handle(r, rt.clone()));
        let w = SyncIoBridge::new_with_handle(w, rt);
        let _span = tracing::info_span!("9p share", tag, dir = %dir.display()).entered();
        match Server::new(dir).serve(r, w) {
            Ok(()) => tracing::info!("9p share closed by the guest"),
            Err(e) => tracing::warn!(error = %e, "9p share connection ended"),
        }
    }))
}
