//! `GET /_ping` over the forwarded socket: the readiness check of `start` and `status`.

use std::time::Duration;

use berth_host::endpoint::{self, Endpoint};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// True when the Docker API behind `e` answers `OK`.
pub(crate) async fn ping(e: &Endpoint) -> bool {
    let fut = async {
        let mut s = endpoint::connect(e).await.ok()?;
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
