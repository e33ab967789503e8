//! Shares over 9P: the host serves a folder's files as 9P2000.L on a stream that starts with a
//! [`ShareHeader`] naming the share; a `mount` request with the 9P transport then hands a
//! socket carrying that stream to the kernel's 9p client (`trans=fd`).
//!
//! Over vsock the stream is a connection to SHARE_PORT and the kernel gets that very socket:
//! it reads and writes it itself, with no relay in this process, whose async threads may be
//! the ones waiting on the share (an engine `stat` of a bind source), so a relay on them could
//! deadlock.
//!
//! Over virtio-serial (no vsock: QEMU on Windows) share n has a port of its own,
//! `berth.2378.n`. The kernel cannot be given the port itself: its 9p client reads and writes
//! with `kernel_read`/`kernel_write`, which need a file with `read_iter`/`write_iter`, and the
//! virtio console driver has only plain `read`/`write` (the mount fails with EINVAL). So the
//! kernel gets one end of a socket pair and two threads of their own, never the async ones,
//! copy between the other end and the port ([`relay`]). The relay lives in this process: a
//! share mounted this way does not outlive an engine restart.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_agent_proto::{read_frame, Share, ShareHeader, HOST_CID, SHARE_PORT};
use berth_vsock::{VsockListener, CID_ANY};
use tokio::sync::Notify;

use crate::virtio_port::{
    ports_announced, PortListener, PortStream, DEV, SETTLE_WITHIN, SYS_CLASS,
};

/// How long a mount waits for its share's connection (the host opens it just before asking).
const STREAM_WAIT: Duration = Duration::from_secs(15);
/// The largest 9P message the client asks for (the host's server takes up to this).
const MSIZE: u32 = 512 * 1024;
/// Copy buffer of the virtio-serial relay (the port driver moves at most 32 KiB per write).
const RELAY_BUFFER: usize = 128 * 1024;

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

/// Takes the host's share streams and keeps each, by the tag its header names, for its mount:
/// from each share's virtio-serial port when the VM has them, else as connections on the vsock
/// SHARE_PORT (host only).
pub(crate) fn listen(streams: ShareStreams) {
    crate::virtio_port::settle(ports_announced(), SYS_CLASS.as_ref(), SETTLE_WITHIN);
    let ports = crate::virtio_port::channels(SYS_CLASS.as_ref(), DEV.as_ref(), SHARE_PORT);
    if ports.is_empty() {
        listen_vsock(streams);
        return;
    }
    for (n, device) in ports {
        tracing::info!(share = n, device = %device.display(), "9p share port over virtio-serial");
        tokio::spawn(take_port(device, streams.clone()));
    }
}

/// Waits for the host's stream on a share's port, then offers it through a [`relay`]. The port
/// reads as end of file until the host opens its end, so it is opened again (at most every
/// `REOPEN_EVERY`) until a header comes.
async fn take_port(device: PathBuf, streams: ShareStreams) {
    let port = PortListener::new(device.clone());
    loop {
        let mut stream = match port.accept().await {
            Ok(s) => s,
            Err(e) => {
                // EBUSY: a mount of an earlier engine still holds it.
                tracing::warn!(device = %device.display(), error = %e, "share port not opened");
                return;
            }
        };
        match read_frame::<_, ShareHeader>(&mut stream).await {
            Ok(Some(h)) => {
                match relay(stream) {
                    Ok(socket) => streams.offer(h.tag, socket),
                    Err(e) => tracing::warn!(tag = %h.tag, error = %e, "share relay not started"),
                }
                return;
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "bad share header"),
        }
    }
}

/// The kernel's end of a socket pair whose other end two threads copy to and from `port`
/// (why: the module doc).
fn relay(port: PortStream) -> io::Result<OwnedFd> {
    let port = port.into_blocking()?;
    let (kernel, ours) = UnixStream::pair()?;
    let (port_out, ours_in) = (port.try_clone()?, ours.try_clone()?);
    std::thread::Builder::new()
        .name("9p-from-host".into())
        .spawn(move || {
            let r = copy(port, &ours_in);
            tracing::debug!(result = ?r, "9p share: the host's end closed");
            let _ = ours_in.shutdown(std::net::Shutdown::Write);
        })?;
    std::thread::Builder::new()
        .name("9p-to-host".into())
        .spawn(move || {
            let r = copy(&ours, port_out);
            tracing::debug!(result = ?r, "9p share: the kernel's end closed");
        })?;
    Ok(kernel.into())
}

/// Copies until end of file, with a plain read/write loop (a device file and a socket: no
/// splice tricks).
fn copy(mut from: impl Read, mut to: impl Write) -> io::Result<()> {
    let mut buf = vec![0u8; RELAY_BUFFER];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
    }
}

/// Accepts the host's share connections on the vsock SHARE_PORT (host only).
fn listen_vsock(streams: ShareStreams) {
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

#[cfg(test)]
mod tests {
    use super::*;

    // A FIFO opened read-write stands in for the port: what the relay writes to it comes back,
    // so bytes the kernel's end sends return to it through both threads.
    #[tokio::test]
    async fn the_relay_carries_the_kernels_socket_to_the_port_and_back() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("berth.2378.0");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let port = PortListener::new(path).accept().await.unwrap();
        let mut kernel = UnixStream::from(relay(port).unwrap());
        kernel
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let msg: Vec<u8> = (0..300 * 1024u32).map(|i| (i % 251) as u8).collect();
        let echo = {
            let mut k = kernel.try_clone().unwrap();
            let len = msg.len();
            std::thread::spawn(move || {
                let mut back = vec![0u8; len];
                k.read_exact(&mut back).map(|()| back)
            })
        };
        kernel.write_all(&msg).unwrap();
        assert_eq!(echo.join().unwrap().unwrap(), msg);
    }
}
