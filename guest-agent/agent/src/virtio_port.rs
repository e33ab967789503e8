//! Guest ports over virtio-serial. Where the host has no vsock for the VM (QEMU on Windows:
//! `crates/host/src/vm/whpx.rs`), guest port P is the virtio-serial port named `berth.P`, whose
//! host end is a named pipe. The kernel lists ports in `/sys/class/virtio-ports/vportNpM/name`
//! and devtmpfs makes `/dev/vportNpM` (the guest runs no udev, so there is no
//! `/dev/virtio-ports/berth.P` link). The agent serves the port as it serves an accepted vsock
//! connection: the host's multiplexer runs over it.
//!
//! A port is one byte stream at a time, so "accepting" opens the device once the previous
//! stream has been dropped. While no host client is connected the device reads as end of file
//! at once; the stream then ends and the next accept opens it again, at most every
//! [`REOPEN_EVERY`].

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Where the kernel lists virtio-serial ports with their names.
pub(crate) const SYS_CLASS: &str = "/sys/class/virtio-ports";
/// Where devtmpfs puts their devices.
pub(crate) const DEV: &str = "/dev";
/// Bound on how often a port whose host end is closed is opened again.
pub(crate) const REOPEN_EVERY: Duration = Duration::from_millis(250);

/// The device of guest port `port` (the port named `berth.<port>` in `sys_class`, its node in
/// `dev`), if the VM has it.
pub(crate) fn device(sys_class: &Path, dev: &Path, port: u32) -> Option<PathBuf> {
    let want = format!("berth.{port}");
    std::fs::read_dir(sys_class)
        .ok()?
        .flatten()
        .find(|e| std::fs::read_to_string(e.path().join("name")).is_ok_and(|n| n.trim() == want))
        .map(|e| dev.join(e.file_name()))
}

/// Hands out the port's byte stream, one at a time.
pub(crate) struct PortListener {
    path: PathBuf,
    one: Arc<Semaphore>,
    last_open: Mutex<Option<Instant>>,
}

impl PortListener {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path,
            one: Arc::new(Semaphore::new(1)),
            last_open: Mutex::new(None),
        }
    }

    /// Waits until the previous stream is dropped, then opens the port.
    pub(crate) async fn accept(&self) -> io::Result<PortStream> {
        let permit = self
            .one
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| io::Error::other("virtio port listener closed"))?;
        let last = *self.last_open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(wait) = last.and_then(|t| REOPEN_EVERY.checked_sub(t.elapsed())) {
            tokio::time::sleep(wait).await;
        }
        *self.last_open.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(&self.path)?;
        // SAFETY: the File owns its descriptor and keeps it open until the AsyncFd drops it.
        let fd = unsafe { AsyncFd::register(file) }.map_err(|e| e.into_parts().1)?;
        Ok(PortStream {
            fd,
            _permit: permit,
        })
    }
}

/// An open virtio-serial port (no half-close: `shutdown` only flushes).
pub(crate) struct PortStream {
    fd: AsyncFd<File>,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for PortStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|f| f.get_ref().read(unfilled)) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for PortStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            match guard.try_io(|f| f.get_ref().write(buf)) {
                Ok(r) => return Poll::Ready(r),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn a_port_is_found_by_its_name() {
        let sys = tempfile::tempdir().unwrap();
        let dev = Path::new("/dev");
        assert_eq!(device(sys.path(), dev, 2375), None);
        assert_eq!(device(&sys.path().join("absent"), dev, 2375), None);
        for (entry, name) in [("vport1p1", "berth.2376\n"), ("vport1p2", "berth.2375\n")] {
            std::fs::create_dir(sys.path().join(entry)).unwrap();
            std::fs::write(sys.path().join(entry).join("name"), name).unwrap();
        }
        assert_eq!(
            device(sys.path(), dev, 2375),
            Some(PathBuf::from("/dev/vport1p2"))
        );
        assert_eq!(
            device(sys.path(), dev, 2376),
            Some(PathBuf::from("/dev/vport1p1"))
        );
        assert_eq!(device(sys.path(), dev, 2377), None);
    }

    // A FIFO opened read-write stands in for the port: what is written comes back.
    #[tokio::test]
    async fn one_stream_at_a_time_carrying_bytes() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("berth.2376");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let l = Arc::new(PortListener::new(path));
        let mut s = l.accept().await.unwrap();
        s.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        // While the stream lives, no second one.
        assert!(l.accept().now_or_never().is_none());
        let next = tokio::spawn({
            let l = l.clone();
            async move { l.accept().await.map(|_| ()) }
        });
        drop(s);
        tokio::time::timeout(Duration::from_secs(10), next)
            .await
            .expect("the port is opened again once the stream is dropped")
            .unwrap()
            .unwrap();
    }
}
