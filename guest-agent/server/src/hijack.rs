//! Hijacked connections for attach and exec: the `101 UPGRADED` answer, then raw bytes both
//! ways with stdin half-close and server-side detach keys.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use berth_engine::container::io::{Session, SessionFuture};
use berth_engine::stream::{DetachScanner, Scan};
use bytes::Bytes;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Content type of a stream: raw for a TTY, multiplexed frames otherwise.
pub fn stream_content_type(tty: bool) -> &'static str {
    if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}

/// The `101 UPGRADED` response that hands the connection over.
pub fn upgrade_response(tty: bool) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(stream_content_type(tty)),
    );
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    r
}

/// A session whose whole output is `text` (an error told inside the stream).
pub fn told(text: Vec<u8>) -> Session {
    Session {
        output: Box::pin(std::io::Cursor::new(text)),
        input: None,
    }
}

/// The answer to a stream request sent without `Upgrade` headers. dockerd hijacks the plain
/// connection and answers `200 OK` with a raw-stream content type, then the stream until it
/// closes the connection. hyper hands a connection over only on an upgrade, so the stream is
/// the body of an HTTP/1.0 response: ended by closing the connection, with no chunked framing
/// in the bytes. The client cannot write to the process then: its stdin is closed.
pub fn plain_response(session: Session) -> Response {
    let Session { output, input } = session;
    drop(input);
    let mut r = Response::new(Body::from_stream(tokio_util::io::ReaderStream::new(output)));
    *r.version_mut() = axum::http::Version::HTTP_10;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(stream_content_type(true)),
    );
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// How long the replayed logs of an `attach?logs=1` wait after the `101` head. docker-py
/// reads the head through a buffered reader and then reads the raw socket, so bytes that
/// arrive together with the head are lost (docker/docker-py#2466); dockerd's replay starts
/// late enough (it reads the log file first) that they never do.
const PRELUDE_GRACE: std::time::Duration = std::time::Duration::from_millis(50);

/// Runs the hijacked connection: `prelude` first (attach `logs=1`), then the session's
/// output to the client and the client's bytes to its stdin until the output ends or the
/// client detaches.
pub fn spawn(
    on_upgrade: OnUpgrade,
    prelude: Vec<Bytes>,
    session: SessionFuture,
    detach_keys: Vec<u8>,
) {
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "upgrade failed");
                return;
            }
        };
        let (mut cr, mut cw) = tokio::io::split(TokioIo::new(upgraded));
        if !prelude.is_empty() {
            tokio::time::sleep(PRELUDE_GRACE).await;
        }
        for chunk in prelude {
            if cw.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = cw.flush().await;
        let Some(Session { mut output, input }) = session.await else {
            let _ = cw.shutdown().await;
            return;
        };
        let out = async {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match output.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if cw.write_all(&buf[..n]).await.is_err() || cw.flush().await.is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = cw.shutdown().await;
        };
        let inp = async {
            let mut scanner = DetachScanner::new(detach_keys);
            let mut input = input;
            let mut buf = vec![0u8; 8 * 1024];
            loop {
                match cr.read(&mut buf).await {
                    Ok(0) | Err(_) => {
                        if let Some(mut i) = input.take() {
                            let _ = i.shutdown().await;
                        }
                        // Half-closed: keep streaming output until the process ends.
                        std::future::pending::<()>().await;
                    }
                    Ok(n) => {
                        let (data, detach) = match scanner.feed(&buf[..n]) {
                            Scan::Data(d) => (d, false),
                            Scan::Detach(d) => (d, true),
                        };
                        if let Some(i) = input.as_mut() {
                            if !data.is_empty() && i.write_all(&data).await.is_err() {
                                input = None;
                            } else {
                                let _ = i.flush().await;
                            }
                        }
                        if detach {
                            return;
                        }
                    }
                }
            }
        };
        tokio::select! {
            _ = out => {}
            _ = inp => {}
        }
    });
}
