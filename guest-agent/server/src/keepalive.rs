//! Keep-alive after an early answer. A handler that refuses a request before reading its body
//! (a bad query, an unknown container) leaves the body unread; hyper then closes the
//! connection, and a keep-alive client that reuses it sends its next request into a reset.
//! Such answers say `Connection: close`, so the client opens a new connection instead
//! (dockerd's Go server drains a little of the body or says the same).

use axum::body::HttpBody as _;
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

pub async fn close_after_refused_upload(req: Request, next: Next) -> Response {
    let has_body = !req.body().is_end_stream();
    let mut resp = next.run(req).await;
    if has_body && (resp.status().is_client_error() || resp.status().is_server_error()) {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::put;
    use axum::Router;
    use tower::ServiceExt;

    async fn refuse() -> axum::http::StatusCode {
        axum::http::StatusCode::BAD_REQUEST
    }

    /// Found by the API fuzzer: after a 400 for `PUT /containers/x/archive` without `path`,
    /// the next request on the same connection met a reset.
    #[tokio::test]
    async fn refused_uploads_close_the_connection() {
        let app = Router::new()
            .route("/up", put(refuse))
            .layer(axum::middleware::from_fn(close_after_refused_upload));
        let send = |body: Body| app.clone().oneshot(Request::put("/up").body(body).unwrap());
        let with_body = send(Body::from("GIF87a")).await.unwrap();
        assert_eq!(with_body.headers()[header::CONNECTION], "close");
        let without = send(Body::empty()).await.unwrap();
        assert!(without.headers().get(header::CONNECTION).is_none());
    }
}
