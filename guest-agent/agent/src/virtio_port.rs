//! Guest ports over virtio-serial. Where the host has no vsock for the VM (QEMU on Windows, or
//! on Linux with `"guest_ports": "virtio-serial"`: `crates/host/src/vm/serial.rs`), guest port
//! P is the virtio-serial port named `berth.P`, whose host end is a named pipe (a unix socket
//! on Linux). The kernel lists ports in `/sys/class/virtio-ports/vportNpM/name`
//! and devtmpfs makes `/dev/vportNpM` (the guest runs no udev, so there is no
//! `/dev/virtio-ports/berth.P` link). The agent serves the port as it serves an accepted vsock
//! connection: the host's multiplexer runs over it.
//!
//! Shared folders over 9P have a port each, `berth.2378.n` for share n ([`channels`]; see
//! `control::ninep`).
//!
//! A port is one byte stream at a time, so "accepting" opens the device once the previous
//! stream has been dropped. While no host client is connected the device reads as end of file
//! at once; the stream then ends and the next accept opens it again, at most every
//! [`REOPEN_EVERY`]. The driver lists and names the ports asynchronously after it loads, so
//! the agent first waits for them ([`settle`]).

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
/// Bound on waiting for the VM's virtio-serial ports to be listed and named.
pub(crate) const SETTLE_WITHIN: Duration = Duration::from_secs(10);

/// Whether the host said at boot that the agent's ports are virtio-serial ports
/// (`berth.ports=virtio-serial` on the kernel command line).
pub(crate) fn ports_announced() -> bool {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    crate::init::cmdline::BootArgs::parse(&cmdline).serial_ports
}

/// Waits (bounded) until the VM's virtio-serial ports are listed and named, when the host
/// `announced` them: the driver adds the ports, then learns their names from the host,
/// asynchronously after it loads, so an agent looking at once could miss its ports and listen
/// on vsock instead. Without the announcement it returns at once (a vsock VM, or one whose
/// only virtio console is its own console, never named, as VZ's on macOS).
pub(crate) fn settle(announced: bool, sys_class: &Path, within: Duration) {
    if !announced {
        return;
    }
    let deadline = Instant::now() + within;
    while !all_named(sys_class) {
        if Instant::now() >= deadline {
            tracing::warn!(?within, "virtio-serial ports still unnamed");
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `sys_class` lists ports and every one has its name.
fn all_named(sys_class: &Path) -> bool {
    let Ok(dir) = std::fs::read_dir(sys_class) else {
        return false;
    };
    let mut any = false;
    for e in dir.flatten() {
        any = true;
        let named =
            std::fs::read_to_string(e.path().join("name")).is_ok_and(|n| !n.trim().is_empty());
        if !named {
            return false;
        }
    }
    any
}

/// The device of guest port `port` (the port named `berth.<port>` in `sys_class`, its node in
/// `dev`), if the VM has it.
pub(crate) fn device(sys_class: &Path, dev: &Path, port: u32) -> Option<PathBuf> {
    let want = format!("berth.{port}");
    named_ports(sys_class)
        .into_iter()
        .find(|(name, _)| *name == want)
        .map(|(_, node)| dev.join(node))
}

/// The channels of guest port `port`: the ports named `berth.<port>.<n>` (share n on
/// SHARE_PORT), their nodes in `dev`, ordered by n.
pub(crate) fn channels(sys_class: &Path, dev: &Path, port: u32) -> Vec<(u32, PathBuf)> {
    let prefix = format!("berth.{port}.");
    let mut found: Vec<(u32, PathBuf)> = named_ports(sys_class)
        .into_iter()
        .filter_map(|(name, node)| {
            let n = name.strip_prefix(&prefix)?.parse().ok()?;
            Some((n, dev.join(node)))
        })
        .collect();
    found.sort();
    found
}

/// Every named port in `sys_class`: its name and its device node's name.
fn named_ports(sys_class: &Path) -> Vec<(String, std::ffi::OsString)> {
    let Ok(dir) = std::fs::read_dir(sys_class) else {
        return vec![];
    };
    dir.flatten()
        .filter_map(|e| {
            let name = std::fs::read_to_string(e.path().join("name")).ok()?;
            Some((name.trim().to_string(), e.file_name()))
        })
        .collect()
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

impl PortStream {
    /// The port as a blocking file, for a thread of its own; its listener is done with it.
    pub(crate) fn into_blocking(self) -> io::Result<File> {
        use nix::fcntl::{fcntl, FcntlArg, OFlag};
        let file = self.fd.into_inner();
        let flags = OFlag::from_bits_truncate(fcntl(&file, FcntlArg::F_GETFL)?);
        fcntl(
            &file,
            FcntlArg::F_SETFL(flags.difference(OFlag::O_NONBLOCK)),
        )?;
        Ok(file)
    }
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

    #[test]
    fn settling_waits_for_names_only_when_the_host_announced_serial_ports() {
        let sys = tempfile::tempdir().unwrap();
        let quick = Duration::from_secs(30);
        // Not announced (a vsock VM, or VZ's unnamed console port): no wait, though a port is
        // unnamed.
        let console = sys.path().join("vport0p0");
        std::fs::create_dir(&console).unwrap();
        let t = Instant::now();
        settle(false, sys.path(), quick);
        assert!(t.elapsed() < Duration::from_secs(5));
        std::fs::remove_dir(&console).unwrap();

        // Announced: a port named by another thread while settling waits.
        let port = sys.path().join("vport1p1");
        std::fs::create_dir(&port).unwrap();
        std::fs::write(port.join("name"), "").unwrap();
        assert!(!all_named(sys.path()));
        let namer = std::thread::spawn(move || std::fs::write(port.join("name"), "berth.2375\n"));
        settle(true, sys.path(), quick);
        namer.join().unwrap().unwrap();
        assert!(all_named(sys.path()));

        // A port never named: settling gives up at its bound.
        std::fs::create_dir(sys.path().join("vport1p2")).unwrap();
        let t = Instant::now();
        settle(true, sys.path(), Duration::from_millis(200));
        assert!(t.elapsed() >= Duration::from_millis(200));
    }

    #[test]
    fn share_channels_are_found_by_number_beside_the_ports() {
        let sys = tempfile::tempdir().unwrap();
        let dev = Path::new("/dev");
        assert!(channels(sys.path(), dev, 2378).is_empty());
        for (entry, name) in [
            ("vport1p1", "berth.2375\n"),
            ("vport1p4", "berth.2378.1\n"),
            ("vport1p5", "berth.2378.0\n"),
            ("vport1p6", "berth.2378.x\n"),
            ("vport1p7", "berth.23780.2\n"),
        ] {
            std::fs::create_dir(sys.path().join(entry)).unwrap();
            std::fs::write(sys.path().join(entry).join("name"), name).unwrap();
        }
        assert_eq!(
            channels(sys.path(), dev, 2378),
            [
                (0, PathBuf::from("/dev/vport1p5")),
                (1, PathBuf::from("/dev/vport1p4"))
            ]
        );
        // A channel is not the port itself, nor the port a channel.
        assert_eq!(device(sys.path(), dev, 2378), None);
        assert!(channels(sys.path(), dev, 2375).is_empty());
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
