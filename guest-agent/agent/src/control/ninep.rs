//! Shares over 9P: the host serves a folder's files as 9P2000.L on a vsock connection to
//! SHARE_PORT that starts with a [`ShareHeader`] naming the share; a `mount` request with the
//! 9P transport then hands that very socket to the kernel's 9p client (`trans=fd`). The kernel
//! reads and writes it itself: no relay in this process, whose async threads may be the ones
//! waiting on the share (an engine `stat` of a bind source), so a relay here could deadlock.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_agent_proto::{read_frame, Share, ShareHeader, HOST_CID, SHARE_PORT};
use berth_vsock::{VsockListener, CID_ANY};
use tokio::sync::Notify;

/// How long a mount waits for its share's connection (the host opens it just before asking).
const STREAM_WAIT: Duration = Duration::from_secs(15);
/// The largest 9P message the client asks for (the host's server takes up to this).
const MSIZE: u32 = 512 * 1024;

/// Connections the host opened for shares, waiting for their mount request.
#[derive(Clone, Default)]
pub(crate) struct ShareStreams {
    waiting: Arc<Mutex<HashMap<String, OwnedFd>>>,
    arrived: Arc<Notify>,
}

impl ShareStreams {
    /// Keeps `socket` for the mount of share `tag` (a later one for the tag replaces it).
    fn offer(&self, tag: String, socket: OwnedFd) {
        self.waiting
            .lock()
            .expect("share streams")
            .insert(tag, socket);
        self.arrived.notify_waiters();
    }

    /// The socket for `tag`, waiting for it at most [`STREAM_WAIT`].
    async fn take(&self, tag: &str) -> Option<OwnedFd> {
        let wait = async {
            loop {
                let arrived = self.arrived.notified();
                if let Some(s) = self.waiting.lock().expect("share streams").remove(tag) {
                    return s;
                }
                arrived.await;
            }
        };
        tokio::time::timeout(STREAM_WAIT, wait).await.ok()
    }
}

/// Accepts the host's share connections on SHARE_PORT (host only) and keeps each, by the tag
/// its header names, for its mount.
pub(crate) fn listen(streams: ShareStreams) {
    tokio::spawn(async move {
        let listener = match VsockListener::bind(CID_ANY, SHARE_PORT, Some(HOST_CID)) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, port = SHARE_PORT, "no 9p share listener");
                return;
            }
        };
        loop {
            let (mut conn, _, _) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "9p share listener stopped");
                    return;
                }
            };
            match read_frame::<_, ShareHeader>(&mut conn).await {
                Ok(Some(h)) => streams.offer(h.tag, conn.into_owned_fd()),
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "bad share header"),
            }
        }
    });
}

/// Mounts `share` from its 9P connection at its guest path; a mounted path is left as is.
pub(super) async fn mount(streams: &ShareStreams, share: Share) -> io::Result<()> {
    if super::system::is_mountpoint(Path::new(&share.guest_path)) {
        return Ok(());
    }
    let socket = streams.take(&share.tag).await.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no 9p connection arrived for share {}", share.tag),
        )
    })?;
    // mount(2) returns once the kernel has spoken version and attach on the socket; the kernel
    // holds its own reference to it, so ours closes afterwards.
    tokio::task::spawn_blocking(move || {
        // The fd transport is a module of its own; the kernel would ask for it by alias too.
        let _ = std::process::Command::new("modprobe")
            .args(["-a", "9p", "9pnet_fd"])
            .status();
        let fd = socket.as_raw_fd();
        let options = format!(
            "trans=fd,rfdno={fd},wfdno={fd},version=9p2000.L,msize={MSIZE},cache=mmap,access=client"
        );
        super::system::mount_fs(&share, "9p", "9p", &options)
    })
    .await
    .map_err(io::Error::other)?
}
