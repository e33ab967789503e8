//! Hybrid vsock: a unix socket served by vhost-device-vsock (or firecracker, cloud-hypervisor).
//! Write `CONNECT <port>\n`, read `OK <host port>\n`, then the stream is raw bytes to the guest.
//! No payload goes out before the `OK` line: the daemon may swallow bytes read past the line.
//!
//! [`serve`] is the other end of the same protocol over any [`Connector`]: where the guest's
//! ports are reachable only inside one process (macOS Virtualization.framework's socket
//! device), the supervisor serves this socket so other processes (the CLI's one-off control
//! requests) reach the guest exactly as they do through vhost-device-vsock.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

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

/// Serves the hybrid protocol on `listener`, reaching each asked port through `connector`,
/// until `cancel` fires. A port that cannot be reached closes the client's connection (what
/// vhost-device-vsock does), which [`HybridConnector`] reports as refused.
pub async fn serve(
    listener: UnixListener,
    connector: Arc<dyn Connector>,
    cancel: CancellationToken,
) {
    loop {
        let mut client = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "hybrid vsock accept failed");
                    continue;
                }
            },
            _ = cancel.cancelled() => return,
        };
        let connector = connector.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let port =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, read_connect(&mut client)).await {
                    Ok(Ok(p)) => p,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "bad hybrid vsock request");
                        return;
                    }
                    Err(_) => return,
                };
            let mut guest = match connector.connect(port).await {
                Ok(g) => g,
                Err(e) => {
                    tracing::debug!(port, error = %e, "guest port unreachable");
                    return;
                }
            };
            if client
                .write_all(format!("OK {port}\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut guest) => {}
                _ = cancel.cancelled() => {}
            }
        });
    }
}

/// Reads `CONNECT <port>\n` byte by byte (nothing past the line is consumed).
async fn read_connect(s: &mut (impl AsyncRead + Unpin)) -> io::Result<u32> {
    let mut line = Vec::with_capacity(16);
    loop {
        let b = s.read_u8().await?;
        if b == b'\n' {
            break;
        }
        line.push(b);
        if line.len() > MAX_REPLY {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request line too long",
            ));
        }
    }
    std::str::from_utf8(&line)
        .ok()
        .and_then(|l| l.strip_prefix("CONNECT "))
        .and_then(|p| p.trim().parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a CONNECT line: {:?}", String::from_utf8_lossy(&line)),
            )
        })
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
    async fn serve_carries_the_protocol_over_any_connector() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.sock");
        let guest = Arc::new(crate::MemoryConnector::new());
        let mut port = guest.listen(2376);
        tokio::spawn(async move {
            while let Some(s) = port.recv().await {
                tokio::spawn(async move {
                    let (mut rd, mut wr) = tokio::io::split(s);
                    let _ = tokio::io::copy(&mut rd, &mut wr).await;
                });
            }
        });
        let cancel = CancellationToken::new();
        tokio::spawn(serve(
            UnixListener::bind(&path).unwrap(),
            guest.clone(),
            cancel.clone(),
        ));
        let c = HybridConnector::new(&path);
        for _ in 0..3 {
            let mut s = c.connect(2376).await.unwrap();
            s.write_all(b"ping").await.unwrap();
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"ping");
        }
        let err = c.connect(9).await.err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        cancel.cancel();
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

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        /// Whatever a client writes first is a port or a refusal, never a panic, and a port
        /// only comes from a `CONNECT` line.
        #[test]
        fn any_request_line_is_a_port_or_refused(bytes in prop::collection::vec(any::<u8>(), 0..100)) {
            if let Ok(port) = block_on(read_connect(&mut &bytes[..])) {
                let line = bytes.split(|b| *b == b'\n').next().unwrap();
                let text = std::str::from_utf8(line).unwrap();
                prop_assert_eq!(text.strip_prefix("CONNECT ").unwrap().trim().parse::<u32>().unwrap(), port);
            }
        }

        /// `CONNECT <port>` reads back as the port and leaves the payload after it unread.
        #[test]
        fn connect_line_round_trips(port in any::<u32>(), payload in prop::collection::vec(any::<u8>(), 0..64)) {
            let mut wire = format!("CONNECT {port}\n").into_bytes();
            wire.extend_from_slice(&payload);
            let mut r = &wire[..];
            prop_assert_eq!(block_on(read_connect(&mut r)).unwrap(), port);
            prop_assert_eq!(r, &payload[..]);
        }
    }
}
