//! One span per API request, around everything the request makes the engine do: with the
//! log's span context (the default fmt layer prints it before each line), the lines of one
//! request, the container operations it runs included, read as one story.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

/// Numbers requests so that concurrent ones with the same path stay apart in the log.
static REQUESTS: AtomicU64 = AtomicU64::new(1);

/// The outermost middleware: `request{n=… method=… path=…}` around the handler; the answer's
/// status is logged at debug.
#[tracing::instrument(
    name = "request",
    skip_all,
    fields(
        n = REQUESTS.fetch_add(1, Ordering::Relaxed),
        method = %req.method(),
        path = %req.uri().path(),
    )
)]
pub async fn request_span(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    tracing::debug!(status = res.status().as_u16(), "answered");
    res
}
