//! The client's session on `/session`: the engine speaks HTTP/2 as the client on the hijacked
//! connection and calls the services buildx exposes there (file sync, credentials).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioExecutor;

use super::Registry;

/// gRPC methods the session's owner serves, as `/package.Service/Method`.
#[derive(Clone)]
pub(crate) struct SessionClient {
    pub(crate) channel: H2Channel,
    methods: Arc<Vec<String>>,
}

impl SessionClient {
    pub(crate) fn supports(&self, method: &str) -> bool {
        self.methods.iter().any(|m| m == method)
    }
}

/// An HTTP/2 client connection as the service tonic's generated clients call.
#[derive(Clone)]
pub(crate) struct H2Channel(SendRequest<tonic::body::Body>);

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<Incoming>, hyper::Error>> + Send>>;

impl tower::Service<http::Request<tonic::body::Body>> for H2Channel {
    type Response = http::Response<Incoming>;
    type Error = hyper::Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(self.0.send_request(req))
    }
}

/// The origin tonic's clients put in their requests' URIs.
pub(crate) fn origin() -> http::Uri {
    http::Uri::from_static("http://buildkit-session")
}

/// Runs the session until its connection closes; builds find it in `reg` meanwhile.
pub(crate) async fn run(reg: Arc<Registry>, id: String, methods: Vec<String>, io: Upgraded) {
    let handshake = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, tonic::body::Body>(io)
        .await;
    let (send, conn) = match handshake {
        Ok(x) => x,
        Err(e) => {
            tracing::debug!(error = %e, session = %id, "session handshake failed");
            return;
        }
    };
    tracing::debug!(session = %id, ?methods, "session connected");
    reg.add_session(
        &id,
        SessionClient {
            channel: H2Channel(send),
            methods: Arc::new(methods),
        },
    );
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, session = %id, "session ended with error");
    }
    reg.remove_session(&id);
}
