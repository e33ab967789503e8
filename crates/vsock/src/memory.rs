//! An in-process stand-in for vsock, for tests on every platform: a guest "port" is a channel
//! of in-memory duplex streams (with half-close) that a test serves.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Mutex;

use tokio::io::DuplexStream;
use tokio::sync::mpsc;

use crate::{BoxIo, Connector};

/// Buffer of each in-memory stream, per direction.
const BUFFER: usize = 256 * 1024;

#[derive(Debug, Default)]
pub struct MemoryConnector {
    ports: Mutex<HashMap<u32, mpsc::UnboundedSender<DuplexStream>>>,
}

impl MemoryConnector {
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `port`: every `connect(port)` delivers the guest's end of a new stream here.
    pub fn listen(&self, port: u32) -> mpsc::UnboundedReceiver<DuplexStream> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.ports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(port, tx);
        rx
    }
}

impl Connector for MemoryConnector {
    fn connect(&self, port: u32) -> Pin<Box<dyn Future<Output = io::Result<BoxIo>> + Send + '_>> {
        let (ours, theirs) = tokio::io::duplex(BUFFER);
        let sent = self
            .ports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&port)
            .is_some_and(|tx| tx.send(theirs).is_ok());
        Box::pin(async move {
            if sent {
                Ok(Box::new(ours) as BoxIo)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    format!("nothing listens on port {port}"),
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn streams_reach_the_listener_with_half_close() {
        let c = MemoryConnector::new();
        let mut l = c.listen(7);
        assert_eq!(
            c.connect(8).await.err().unwrap().kind(),
            io::ErrorKind::ConnectionRefused
        );
        let mut s = c.connect(7).await.unwrap();
        let mut g = l.recv().await.unwrap();
        s.write_all(b"hi").await.unwrap();
        s.shutdown().await.unwrap();
        let mut got = Vec::new();
        g.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"hi");
        g.write_all(b"back").await.unwrap();
        drop(g);
        let mut back = Vec::new();
        s.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"back");
    }
}
