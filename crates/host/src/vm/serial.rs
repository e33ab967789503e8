//! Guest ports over virtio-serial, for VMs without vsock: QEMU on Windows (no vhost-user
//! there), and QEMU on Linux with `"guest_ports": "virtio-serial"` in `config.json`, which runs
//! the Windows transport on Linux so that a real VM proves it (`tests/vm/shares.rs`).
//!
//! Guest port P is the `virtserialport` named `berth.P`. Each shared folder served over 9P
//! has a port of its own, `berth.2378.n` for share n (SHARE_PORT): a virtio-serial port is a
//! single byte stream, and QEMU's ports are fixed at launch, as the shares are. The host end
//! of a port is a named pipe QEMU serves (Windows) or a unix socket QEMU listens on (Linux);
//! either carries one client at a time.
//!
//! [`SerialPorts`] is the [`Connector`] over those host ends: `connect(P)` opens `berth.P`,
//! `connect_channel(SHARE_PORT, n)` opens share n's port. The share number travels through
//! the connector (rather than the 9P code taking a ready stream from a transport-aware
//! caller) so that mounting is the same code on every transport: over vsock each share is a
//! new connection to SHARE_PORT, here it is the n-th fixed port, and both then carry the same
//! `ShareHeader` and 9P.
//!
//! The argument building is plain code, unit-tested on every platform.

use std::ffi::OsString;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use berth_agent_proto::{CONTROL_PORT, DOCKER_API_PORT, FORWARD_PORT, SHARE_PORT};
use berth_vsock::{BoxIo, Connecting, Connector};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::endpoint::Endpoint;
use crate::StateDir;

/// Kernel argument telling the agent that its ports are virtio-serial ports, so it waits for
/// the driver to name them (a VM whose only virtio console is its own console, as on macOS,
/// must not wait).
pub const KERNEL_ARG: &str = "berth.ports=virtio-serial";

/// The agent's services carried as virtio-serial ports (shares come on top, one port each).
pub const SERVICE_PORTS: [u32; 3] = [DOCKER_API_PORT, CONTROL_PORT, FORWARD_PORT];

/// How long a connect waits for the port's previous client to go (as for a busy pipe).
const BUSY_WAIT: Duration = Duration::from_secs(2);

/// One virtio-serial port: guest port `port`, or its channel `index` (share n of SHARE_PORT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channel {
    pub port: u32,
    pub index: Option<u32>,
}

impl Channel {
    /// The port's name in the guest, which the agent looks for: `berth.2375`, `berth.2378.0`.
    pub fn name(&self) -> String {
        match self.index {
            None => format!("berth.{}", self.port),
            Some(n) => format!("berth.{}.{n}", self.port),
        }
    }

    /// The name of its QEMU chardev and host end: `port2375`, `port2378_0`.
    pub fn key(&self) -> String {
        match self.index {
            None => format!("port{}", self.port),
            Some(n) => format!("port{}_{n}", self.port),
        }
    }
}

/// The ports of a VM sharing `shares` folders over 9P: the services, then one per share.
pub fn channels(shares: usize) -> Vec<Channel> {
    let services = SERVICE_PORTS
        .iter()
        .map(|&port| Channel { port, index: None });
    let shares = (0..shares).map(|n| Channel {
        port: SHARE_PORT,
        index: Some(u32::try_from(n).unwrap_or(u32::MAX)),
    });
    services.chain(shares).collect()
}

/// Where the host end of each port is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEnds {
    pub ports: Vec<(Channel, Endpoint)>,
}

impl HostEnds {
    /// Named pipes QEMU serves (Windows): `\\.\pipe\berth_port2375…` of the state dir.
    pub fn pipes(state: &StateDir, shares: usize) -> Self {
        Self::of(shares, |c| Endpoint::Pipe(state.pipe(&c.key())))
    }

    /// Unix sockets QEMU listens on (Linux): `run/port2375.sock`, `run/port2378_0.sock`.
    pub fn sockets(state: &StateDir, shares: usize) -> Self {
        Self::of(shares, |c| {
            Endpoint::Unix(state.run_dir().join(format!("{}.sock", c.key())))
        })
    }

    fn of(shares: usize, end: impl Fn(&Channel) -> Endpoint) -> Self {
        Self {
            ports: channels(shares)
                .into_iter()
                .map(|c| {
                    let e = end(&c);
                    (c, e)
                })
                .collect(),
        }
    }

    /// The host end of `channel`, if the VM has that port.
    pub fn endpoint(&self, channel: Channel) -> Option<&Endpoint> {
        self.ports
            .iter()
            .find(|(c, _)| *c == channel)
            .map(|(_, e)| e)
    }
}

/// QEMU's `-chardev pipe,path=` takes the name without the `\\.\pipe\` prefix.
pub(crate) fn pipe_chardev_path(pipe: &str) -> &str {
    pipe.strip_prefix(r"\\.\pipe\").unwrap_or(pipe)
}

/// QEMU's arguments for the ports: the virtio-serial controller, then a chardev (the host end)
/// and a named port per channel.
pub fn args(ends: &HostEnds) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["-device".into(), "virtio-serial-pci,id=vser".into()];
    for (channel, end) in &ends.ports {
        let id = channel.key();
        let chardev = match end {
            Endpoint::Pipe(p) => format!("pipe,id={id},path={}", pipe_chardev_path(p)),
            Endpoint::Unix(p) => {
                format!("socket,id={id},path={},server=on,wait=off", p.display())
            }
        };
        a.push("-chardev".into());
        a.push(chardev.into());
        a.push("-device".into());
        a.push(
            format!(
                "virtserialport,bus=vser.0,chardev={id},name={}",
                channel.name()
            )
            .into(),
        );
    }
    a
}

/// Reaches the guest's ports through their host ends, one client per port at a time: a named
/// pipe refuses a second one, and a second client of QEMU's unix socket would wait unseen in
/// its backlog, so a connect waits (bounded) for the port's previous stream to be dropped.
#[derive(Debug, Clone)]
pub struct SerialPorts {
    ports: Arc<[(Channel, Endpoint, Arc<Semaphore>)]>,
}

impl SerialPorts {
    pub fn new(ends: &HostEnds) -> Self {
        Self {
            ports: ends
                .ports
                .iter()
                .map(|(c, e)| (*c, e.clone(), Arc::new(Semaphore::new(1))))
                .collect(),
        }
    }

    async fn open(&self, channel: Channel) -> io::Result<BoxIo> {
        let (_, end, one) = self
            .ports
            .iter()
            .find(|(c, _, _)| *c == channel)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    format!("{} is not carried over virtio-serial", channel.name()),
                )
            })?;
        let permit = tokio::time::timeout(BUSY_WAIT, one.clone().acquire_owned())
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    format!("{} is in use by another stream", channel.name()),
                )
            })?
            .map_err(io::Error::other)?;
        let io = crate::endpoint::connect(end).await?;
        Ok(Box::new(OneClient {
            io,
            _permit: permit,
        }))
    }
}

impl Connector for SerialPorts {
    fn connect(&self, port: u32) -> Connecting<'_> {
        Box::pin(self.open(Channel { port, index: None }))
    }

    fn connect_channel(&self, port: u32, channel: u32) -> Connecting<'_> {
        Box::pin(self.open(Channel {
            port,
            index: Some(channel),
        }))
    }
}

/// A port's stream, holding the port until it is dropped.
struct OneClient {
    io: BoxIo,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for OneClient {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for OneClient {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(ends: &HostEnds) -> String {
        crate::vm::joined_args(args(ends))
    }

    #[test]
    fn a_port_per_service_and_per_share_named_for_the_agent() {
        let names: Vec<String> = channels(2).iter().map(Channel::name).collect();
        assert_eq!(
            names,
            [
                "berth.2375",
                "berth.2376",
                "berth.2377",
                "berth.2378.0",
                "berth.2378.1"
            ]
        );
        assert_eq!(channels(0).len(), SERVICE_PORTS.len());
    }

    // Unix-socket host ends are the Linux mode; the paths are unix paths.
    #[cfg(unix)]
    #[test]
    fn unix_socket_host_ends_are_qemu_servers_in_the_run_dir() {
        let state = StateDir::new("/s");
        let j = joined(&HostEnds::sockets(&state, 1));
        assert!(j.starts_with("-device virtio-serial-pci,id=vser "), "{j}");
        assert!(j.contains(
            "-chardev socket,id=port2375,path=/s/run/port2375.sock,server=on,wait=off \
             -device virtserialport,bus=vser.0,chardev=port2375,name=berth.2375"
        ));
        assert!(j.contains(
            "-chardev socket,id=port2378_0,path=/s/run/port2378_0.sock,server=on,wait=off \
             -device virtserialport,bus=vser.0,chardev=port2378_0,name=berth.2378.0"
        ));
        assert!(!j.contains("port2378_1"), "{j}");
    }

    #[test]
    fn pipe_host_ends_give_qemu_the_bare_pipe_name() {
        let state = StateDir::new(r"C:\Users\u\.berth");
        let ends = HostEnds::pipes(&state, 1);
        let j = joined(&ends);
        let share = Channel {
            port: SHARE_PORT,
            index: Some(0),
        };
        let Some(Endpoint::Pipe(p)) = ends.endpoint(share) else {
            panic!("no pipe for share 0");
        };
        let bare = p.strip_prefix(r"\\.\pipe\").unwrap();
        assert!(bare.starts_with("berth_port2378_0_"), "{bare}");
        assert!(j.contains(&format!("-chardev pipe,id=port2378_0,path={bare} ")));
        assert!(!j.contains("socket,"), "{j}");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_connector_reaches_each_channel_one_stream_at_a_time() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let d = tempfile::tempdir().unwrap();
        let state = StateDir::new(d.path());
        std::fs::create_dir_all(state.run_dir()).unwrap();
        let ends = HostEnds::sockets(&state, 2);
        let share1 = Channel {
            port: SHARE_PORT,
            index: Some(1),
        };
        // Stands in for QEMU's end of share 1's port.
        let Some(Endpoint::Unix(path)) = ends.endpoint(share1) else {
            panic!("no socket for share 1");
        };
        let qemu = tokio::net::UnixListener::bind(path).unwrap();
        let c = SerialPorts::new(&ends);

        let mut first = c.connect_channel(SHARE_PORT, 1).await.unwrap();
        let (mut guest, _) = qemu.accept().await.unwrap();
        first.write_all(b"hdr").await.unwrap();
        let mut got = [0u8; 3];
        guest.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hdr");

        let busy = c.connect_channel(SHARE_PORT, 1).await.err().unwrap();
        assert!(busy.to_string().contains("in use"), "{busy}");
        drop(first);
        let _again = c.connect_channel(SHARE_PORT, 1).await.unwrap();

        let absent = c.connect_channel(SHARE_PORT, 2).await.err().unwrap();
        assert_eq!(absent.kind(), io::ErrorKind::ConnectionRefused);
        // Port 2378 itself is not a port here: shares are reached by their channel.
        assert!(c.connect(SHARE_PORT).await.is_err());
    }
}
