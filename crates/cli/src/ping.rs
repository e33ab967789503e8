//! `GET /_ping` over the forwarded socket: the readiness check of `start` and `status`.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// True when the Docker API behind `socket` answers `OK`.
pub(crate) async fn ping(socket: &Path) -> bool {
    let fut = async {
        let mut s = tokio::net::UnixStream::connect(socket).await.ok()?;
        s.write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf);
        Some(text.starts_with("HTTP/1.1 200") && text.ends_with("OK"))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(10), fut).await,
        Ok(Some(true))
    )
}
