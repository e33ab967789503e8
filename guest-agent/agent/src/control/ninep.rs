//! Shares over 9P: the host serves a folder's files as 9P2000.L on a forward stream that names
//! the share ([`ForwardHeader::share`]); a `mount` request with the 9P transport then hands
//! that stream to the kernel's 9p client. The kernel reads and writes a file descriptor
//! (`trans=fd`): one end of a socket pair, whose other end is relayed to the stream.
//!
//! [`ForwardHeader::share`]: berth_agent_proto::ForwardHeader

use std::collections::HashMap;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_agent_proto::Share;
use berth_vsock::mux::MuxStream;
use tokio::sync::Notify;

/// How long a mount waits for its share's stream (the host opens it just before asking).
const STREAM_WAIT: Duration = Duration::from_secs(15);
/// The largest 9P message the client asks for (the host's server takes up to this).
const MSIZE: u32 = 512 * 1024;

/// Streams the host opened for shares, waiting for their mount request.
#[derive(Clone, Default)]
pub(crate) struct ShareStreams {
    waiting: Arc<Mutex<HashMap<String, MuxStream>>>,
    arrived: Arc<Notify>,
}

impl ShareStreams {
    /// Keeps `stream` for the mount of share `tag` (a later stream for the tag replaces it).
    pub(crate) fn offer(&self, tag: String, stream: MuxStream) {
        self.waiting
            .lock()
            .expect("share streams")
            .insert(tag, stream);
        self.arrived.notify_waiters();
    }

    /// The stream for `tag`, waiting for it at most [`STREAM_WAIT`].
    async fn take(&self, tag: &str) -> Option<MuxStream> {
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

/// Mounts `share` from its 9P stream at its guest path; a mounted path is left as is.
pub(super) async fn mount(streams: &ShareStreams, share: Share) -> io::Result<()> {
    if super::system::is_mountpoint(Path::new(&share.guest_path)) {
        return Ok(());
    }
    let stream = streams.take(&share.tag).await.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no 9p stream arrived for share {}", share.tag),
        )
    })?;
    let (kernel_end, relay_end) = std::os::unix::net::UnixStream::pair()?;
    relay_end.set_nonblocking(true)?;
    let mut relay_end = tokio::net::UnixStream::from_std(relay_end)?;
    let tag = share.tag.clone();
    tokio::spawn(async move {
        let mut stream = stream;
        let r = tokio::io::copy_bidirectional(&mut stream, &mut relay_end).await;
        tracing::info!(tag, result = ?r, "9p share stream ended");
    });
    // mount(2) returns once the kernel has spoken version and attach over the relay above;
    // the kernel holds its own reference to the descriptor, so ours closes afterwards.
    tokio::task::spawn_blocking(move || {
        let fd = kernel_end.as_raw_fd();
        let options =
            format!("trans=fd,rfdno={fd},wfdno={fd},version=9p2000.L,msize={MSIZE},cache=mmap,access=client");
        super::system::mount_fs(&share, "9p", "9p", &options)
    })
    .await
    .map_err(io::Error::other)?
}
