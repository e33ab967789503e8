//! Many logical streams over one long-lived connection (yamux).
//!
//! vhost-device-vsock 0.3.0 loses connections when they are opened and closed quickly
//! (`docs/design/host.md`, "Transport robustness"), and the docker CLI opens one connection per
//! command, more for attach/exec. So the host opens one vsock connection per guest service and
//! carries every client connection as a yamux stream: half-close and hijacked streams work
//! because a yamux stream is a full byte stream with its own FIN.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures::future::poll_fn;
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};

use crate::{BoxIo, Connector};

/// One logical stream, as a tokio byte stream.
pub type MuxStream = Compat<yamux::Stream>;

type OpenReply = oneshot::Sender<io::Result<yamux::Stream>>;

/// How often a new connection is tried before `open` gives up, and the pause between tries.
const CONNECT_ATTEMPTS: u32 = 5;
const CONNECT_BACKOFF: Duration = Duration::from_millis(100);

/// Largest yamux data frame.
const SPLIT_SEND_SIZE: usize = 64 * 1024;
/// Copy buffer for splicing a stream to a socket.
pub const SPLICE_BUFFER: usize = 64 * 1024;

fn config() -> yamux::Config {
    let mut c = yamux::Config::default();
    c.set_max_num_streams(4096);
    // Fewer, larger frames: under TCG the guest pays per frame (default 16 KiB).
    c.set_split_send_size(SPLIT_SEND_SIZE);
    c
}

/// The host end: opens streams to one guest port, (re)connecting lazily.
pub struct MuxClient {
    connector: Arc<dyn Connector>,
    port: u32,
    conn: Mutex<Option<mpsc::Sender<OpenReply>>>,
}

impl MuxClient {
    pub fn new(connector: Arc<dyn Connector>, port: u32) -> Self {
        Self {
            connector,
            port,
            conn: Mutex::new(None),
        }
    }

    /// Opens a new logical stream; reconnects once if the connection died.
    pub async fn open(&self) -> io::Result<MuxStream> {
        let mut last = None;
        for _ in 0..2 {
            let tx = self.sender().await?;
            let (rtx, rrx) = oneshot::channel();
            if tx.send(rtx).await.is_ok() {
                match rrx.await {
                    Ok(Ok(s)) => return Ok(s.compat()),
                    Ok(Err(e)) => last = Some(e),
                    Err(_) => {}
                }
            }
            self.conn.lock().await.take();
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::ConnectionReset,
                format!("vsock port {}: multiplexed connection lost", self.port),
            )
        }))
    }

    /// Whether a connection is up (it may still die before the next `open`).
    pub async fn is_connected(&self) -> bool {
        self.conn
            .lock()
            .await
            .as_ref()
            .is_some_and(|tx| !tx.is_closed())
    }

    /// Drops the connection; the next `open` reconnects.
    pub async fn reset(&self) {
        self.conn.lock().await.take();
    }

    async fn sender(&self) -> io::Result<mpsc::Sender<OpenReply>> {
        let mut g = self.conn.lock().await;
        if let Some(tx) = g.as_ref().filter(|tx| !tx.is_closed()) {
            return Ok(tx.clone());
        }
        let io = connect_with_retry(self.connector.as_ref(), self.port).await?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(drive_client(io, rx, self.port));
        *g = Some(tx.clone());
        Ok(tx)
    }
}

/// Connects, retrying: the churn bug also hits single connects right after a burst.
pub async fn connect_with_retry(c: &dyn Connector, port: u32) -> io::Result<BoxIo> {
    let mut last = None;
    for attempt in 0..CONNECT_ATTEMPTS {
        match c.connect(port).await {
            Ok(io) => return Ok(io),
            Err(e) => {
                tracing::debug!(port, attempt, error = %e, "vsock connect failed");
                last = Some(e);
                tokio::time::sleep(CONNECT_BACKOFF * (attempt + 1)).await;
            }
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no connect attempt")))
}

async fn drive_client(io: BoxIo, mut rx: mpsc::Receiver<OpenReply>, port: u32) {
    let mut conn = yamux::Connection::new(io.compat(), config(), yamux::Mode::Client);
    let mut pending: Option<OpenReply> = None;
    let mut requests_open = true;
    poll_fn(|cx| {
        loop {
            if pending.is_none() && requests_open {
                match rx.poll_recv(cx) {
                    Poll::Ready(Some(r)) => pending = Some(r),
                    Poll::Ready(None) => requests_open = false,
                    Poll::Pending => {}
                }
            }
            let Some(reply) = pending.take() else { break };
            match conn.poll_new_outbound(cx) {
                Poll::Ready(Ok(s)) => {
                    let _ = reply.send(Ok(s));
                }
                Poll::Ready(Err(e)) => {
                    let _ = reply.send(Err(io::Error::other(e)));
                    return Poll::Ready(());
                }
                Poll::Pending => {
                    pending = Some(reply);
                    break;
                }
            }
        }
        // Drives the connection's I/O; the guest never opens streams to us.
        loop {
            match conn.poll_next_inbound(cx) {
                Poll::Ready(Some(Ok(_unexpected))) => continue,
                Poll::Ready(Some(Err(e))) => {
                    tracing::debug!(port, error = %e, "multiplexed connection failed");
                    return Poll::Ready(());
                }
                Poll::Ready(None) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await;
    tracing::debug!(port, "multiplexed connection closed");
}

/// The guest end: serves every stream the host opens on `io` with `handler`, each on its own task,
/// until the connection ends.
pub async fn serve<H, F>(io: BoxIo, handler: H)
where
    H: Fn(MuxStream) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let mut conn = yamux::Connection::new(io.compat(), config(), yamux::Mode::Server);
    loop {
        match poll_fn(|cx| conn.poll_next_inbound(cx)).await {
            Some(Ok(s)) => {
                tokio::spawn(handler(s.compat()));
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "multiplexed connection failed");
                break;
            }
            None => break,
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::UnixDirConnector;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Guest side for tests: every stream echoes until the client half-closes, then says "bye".
    fn spawn_echo_guest(dir: &std::path::Path, port: u32) {
        let l = tokio::net::UnixListener::bind(UnixDirConnector::path(dir, port)).unwrap();
        tokio::spawn(async move {
            loop {
                let (s, _) = l.accept().await.unwrap();
                tokio::spawn(serve(Box::new(s), |mut st: MuxStream| async move {
                    let mut buf = Vec::new();
                    st.read_to_end(&mut buf).await.unwrap();
                    st.write_all(&buf).await.unwrap();
                    st.write_all(b"bye").await.unwrap();
                    st.shutdown().await.unwrap();
                }));
            }
        });
    }

    #[tokio::test]
    async fn streams_keep_half_close_and_run_concurrently() {
        let dir = tempfile::tempdir().unwrap();
        spawn_echo_guest(dir.path(), 7);
        let client = Arc::new(MuxClient::new(
            Arc::new(UnixDirConnector::new(dir.path())),
            7,
        ));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..50u32 {
            let c = client.clone();
            tasks.spawn(async move {
                let mut s = c.open().await.unwrap();
                let msg = format!("hello {i}");
                s.write_all(msg.as_bytes()).await.unwrap();
                s.shutdown().await.unwrap();
                let mut back = String::new();
                s.read_to_string(&mut back).await.unwrap();
                assert_eq!(back, format!("{msg}bye"));
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
    }

    #[tokio::test]
    async fn client_reconnects_after_guest_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = UnixDirConnector::path(dir.path(), 9);
        let client = MuxClient::new(Arc::new(UnixDirConnector::new(dir.path())), 9);
        // First guest: accepts one connection, serves it, then goes away.
        let l = tokio::net::UnixListener::bind(&path).unwrap();
        let first = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            serve(Box::new(s), |mut st: MuxStream| async move {
                st.write_all(b"one").await.unwrap();
                st.shutdown().await.unwrap();
            })
            .await;
        });
        // yamux announces a stream with its first frame, so the client speaks first.
        let mut s = client.open().await.unwrap();
        s.write_all(b"hi").await.unwrap();
        s.flush().await.unwrap();
        let mut b = String::new();
        tokio::time::timeout(Duration::from_secs(3), s.read_to_string(&mut b))
            .await
            .expect("read one")
            .unwrap();
        assert_eq!(b, "one");
        first.abort();
        let _ = first.await;
        for _ in 0..100 {
            if !client.is_connected().await {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            !client.is_connected().await,
            "client did not notice the lost connection"
        );
        std::fs::remove_file(&path).unwrap();
        spawn_echo_guest(dir.path(), 9);
        let mut s = client.open().await.unwrap();
        s.write_all(b"x").await.unwrap();
        s.shutdown().await.unwrap();
        let mut b = String::new();
        tokio::time::timeout(Duration::from_secs(3), s.read_to_string(&mut b))
            .await
            .expect("read bye")
            .unwrap();
        assert_eq!(b, "xbye");
    }
}
