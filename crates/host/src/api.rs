//! Plain requests to a Docker API endpoint, for what the host and the app need beyond a typed
//! client: `GET` of a whole body (`system df`, the doctor's `/version` and `/info`) and a `POST`
//! whose answer is Docker's JSON-lines progress, read line by line ([`post_lines`]: the push
//! progress, whose per-layer `id` the typed client's model drops).

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde::Deserialize;

use crate::endpoint::{self, Endpoint};
use crate::error::{HostError, Result};

/// One line of Docker's progress stream (moby's `jsonmessage.JSONMessage`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct JsonMessage {
    /// The layer (or tag) the line is about.
    pub id: Option<String>,
    pub status: Option<String>,
    #[serde(rename = "progressDetail")]
    pub progress_detail: Option<ProgressDetail>,
    #[serde(rename = "errorDetail")]
    pub error_detail: Option<ErrorDetail>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ProgressDetail {
    pub current: Option<u64>,
    pub total: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ErrorDetail {
    pub message: Option<String>,
}

impl JsonMessage {
    /// The error the line reports, if it is an error line.
    pub fn error_message(&self) -> Option<String> {
        self.error_detail
            .as_ref()
            .and_then(|d| d.message.clone())
            .or_else(|| self.error.clone())
    }
}

/// Sends `req` to the API at `e`; returns the response and the connection's driver task.
async fn send<B>(
    e: &Endpoint,
    req: hyper::Request<B>,
) -> Result<(
    hyper::Response<hyper::body::Incoming>,
    tokio::task::JoinHandle<()>,
)>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let io = endpoint::connect(e)
        .await
        .map_err(HostError::io(e.to_string()))?;
    send_on(io, req).await
}

/// Sends `req` on a connection already open (`io`).
async fn send_on<T, B>(
    io: T,
    req: hyper::Request<B>,
) -> Result<(
    hyper::Response<hyper::body::Incoming>,
    tokio::task::JoinHandle<()>,
)>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let what = format!("{} {}", req.method(), req.uri());
    let failed = |detail: String| HostError::Command {
        what: what.clone(),
        detail,
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|err| failed(err.to_string()))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let resp = sender
        .send_request(req)
        .await
        .map_err(|err| failed(err.to_string()))?;
    Ok((resp, driver))
}

/// Docker's `{"message"}` of an error body, else the body as text.
fn error_text(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Message {
        message: String,
    }
    serde_json::from_slice::<Message>(body)
        .map(|m| m.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).trim().to_string())
}

/// `GET <path>` on the Docker API at `e`: the body of a 2xx reply, else the status and body
/// as the error.
pub async fn get(e: &Endpoint, path: &str) -> Result<Bytes> {
    let io = endpoint::connect(e)
        .await
        .map_err(HostError::io(e.to_string()))?;
    get_on(io, path).await
}

/// `GET <path>` on a Docker API connection already open (`io`), as [`get`].
pub async fn get_on<T>(io: T, path: &str) -> Result<Bytes>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let req = hyper::Request::get(path)
        .header(hyper::header::HOST, "docker")
        .body(Empty::<Bytes>::new())
        .map_err(|err| HostError::Command {
            what: format!("GET {path}"),
            detail: err.to_string(),
        })?;
    let (resp, driver) = send_on(io, req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await;
    driver.abort();
    let body = body
        .map_err(|err| HostError::Command {
            what: format!("GET {path}"),
            detail: err.to_string(),
        })?
        .to_bytes();
    if !status.is_success() {
        return Err(HostError::Command {
            what: format!("GET {path}"),
            detail: format!("{status}: {}", String::from_utf8_lossy(&body).trim()),
        });
    }
    Ok(body)
}

/// Splits JSON lines as they arrive in chunks: complete lines out, the rest held.
#[derive(Debug, Default)]
struct Lines {
    held: Vec<u8>,
}

impl Lines {
    fn push(&mut self, chunk: &[u8]) -> Vec<Vec<u8>> {
        self.held.extend_from_slice(chunk);
        let Some(last) = self.held.iter().rposition(|b| *b == b'\n') else {
            return vec![];
        };
        let rest = self.held.split_off(last + 1);
        let done = std::mem::replace(&mut self.held, rest);
        done.split(|b| *b == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .map(<[u8]>::to_vec)
            .collect()
    }
}

/// `POST <path>` with `headers` on the API at `e`; each line of the JSON-lines answer is given
/// to `each` as it arrives (lines that are not a progress message are skipped). A non-2xx
/// answer is [`HostError::Api`] with Docker's message; an error *line* is for `each` to judge.
pub async fn post_lines(
    e: &Endpoint,
    path: &str,
    headers: &[(&str, &str)],
    mut each: impl FnMut(JsonMessage),
) -> Result<()> {
    let failed = |detail: String| HostError::Command {
        what: format!("POST {path}"),
        detail,
    };
    let mut req = hyper::Request::post(path).header(hyper::header::HOST, "docker");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Empty::<Bytes>::new())
        .map_err(|err| failed(err.to_string()))?;
    let (resp, driver) = send(e, req).await?;
    let status = resp.status();
    let mut body = resp.into_body();
    if !status.is_success() {
        let bytes = body.collect().await.map(|b| b.to_bytes());
        driver.abort();
        let message = bytes.map(|b| error_text(&b)).unwrap_or_default();
        return Err(HostError::Api {
            status: status.as_u16(),
            message,
        });
    }
    let mut lines = Lines::default();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| failed(err.to_string()))?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        for line in lines.push(data) {
            if let Ok(m) = serde_json::from_slice::<JsonMessage>(&line) {
                each(m);
            }
        }
    }
    driver.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_cut_between_chunks_arrive_whole() {
        let mut l = Lines::default();
        assert!(l.push(b"{\"status\":\"Push").is_empty());
        assert_eq!(
            l.push(b"ing\"}\n{\"id\":"),
            vec![b"{\"status\":\"Pushing\"}".to_vec()]
        );
        assert_eq!(
            l.push(b"\"a\"}\r\n\n"),
            vec![b"{\"id\":\"a\"}\r".to_vec()],
            "blank lines are skipped"
        );
    }

    #[test]
    fn progress_lines_parse_with_their_layer_and_errors() {
        let m: JsonMessage = serde_json::from_str(
            r#"{"status":"Pushing","progressDetail":{"current":512,"total":2048},"progress":"[==>  ]","id":"abc123"}"#,
        )
        .unwrap();
        assert_eq!(m.id.as_deref(), Some("abc123"));
        assert_eq!(m.progress_detail.unwrap().total, Some(2048));
        let e: JsonMessage =
            serde_json::from_str(r#"{"errorDetail":{"message":"denied"},"error":"denied"}"#)
                .unwrap();
        assert_eq!(e.error_message().as_deref(), Some("denied"));
    }

    #[test]
    fn error_bodies_give_dockers_message() {
        assert_eq!(
            error_text(br#"{"message":"No such image: x"}"#),
            "No such image: x"
        );
        assert_eq!(error_text(b"plain\n"), "plain");
    }
}
