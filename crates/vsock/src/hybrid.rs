//! Hybrid vsock: a unix socket served by vhost-device-vsock (or firecracker, cloud-hypervisor).
//! Write `CONNECT <port>\n`, read `OK <host port>\n`, then the stream is raw bytes to the guest.
//! No payload goes out before the `OK` line: the daemon may swallow bytes read past the line.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::{BoxIo, Connector};

/// Longest `OK <port>\n` line we accept.
const MAX_REPLY: usize = 64;
/// Bound on the handshake, so a wedged daemon cannot hang a caller.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct HybridConnector {
    uds: PathBuf,
}

impl HybridConnector {
    /// `uds` is the daemon's `uds-path` (e.g. `~/.berth/run/vsock.sock`).
    pub fn new(uds: impl Into<PathBuf>) -> Self {
        Self { uds: uds.into() }
    }

    /// Connects and performs the handshake; returns the plain unix stream.
    pub async fn connect_unix(&self, port: u32) -> io::Result<UnixStream> {
        let mut s = UnixStream::connect(&self.uds).await?;
        tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&mut s, port))
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("vsock handshake for port {port} timed out"),
                )
            })??;
        Ok(s)
    }
}

async fn handshake(s: &mut UnixStream, port: u32) -> io::Result<()> {
    s.write_all(format!("CONNECT {port}\n").as_bytes()).await?;
    // Byte by byte: anything after the newline is the guest's payload and must stay unread.
    let mut line = Vec::with_capacity(16);
    loop {
        let mut b = [0u8; 1];
        if s.read(&mut b).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("vsock port {port}: connection closed before OK"),
            ));
        }
        if b[0] == b'\n' {
            break;
        }
        line.push(b[0]);
        if line.len() > MAX_REPLY {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("vsock port {port}: handshake reply too long"),
            ));
        }
    }
    if line.starts_with(b"OK ") {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            format!(
                "vsock port {port}: unexpected reply {:?}",
                String::from_utf8_lossy(&line)
            ),
        ))
    }
}

impl Connector for HybridConnector {
    fn connect(&self, port: u32) -> Pin<Box<dyn Future<Output = io::Result<BoxIo>> + Send + '_>> {
        Box::pin(async move { Ok(Box::new(self.connect_unix(port).await?) as BoxIo) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncBufReadExt;
    use tokio::io::BufReader;

    /// A fake daemon: answers `OK` for port 1234 and echoes, closes for other ports.
    async fn fake_daemon(l: tokio::net::UnixListener) {
        loop {
            let (s, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let mut r = BufReader::new(s);
                let mut line = String::new();
                r.read_line(&mut line).await.unwrap();
                if line == "CONNECT 1234\n" {
                    let mut s = r.into_inner();
                    s.write_all(b"OK 1073741824\n").await.unwrap();
                    let (mut rd, mut wr) = s.split();
                    tokio::io::copy(&mut rd, &mut wr).await.unwrap();
                }
            });
        }
    }

    #[tokio::test]
    async fn connect_handshakes_then_carries_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.sock");
        tokio::spawn(fake_daemon(tokio::net::UnixListener::bind(&path).unwrap()));
        let c = HybridConnector::new(&path);
        let mut s = c.connect(1234).await.unwrap();
        s.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
    }

    #[tokio::test]
    async fn connect_fails_when_daemon_closes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.sock");
        tokio::spawn(fake_daemon(tokio::net::UnixListener::bind(&path).unwrap()));
        let err = HybridConnector::new(&path).connect(99).await.err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    }
}
