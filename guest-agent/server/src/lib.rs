//! berth-server: the Docker Engine API over HTTP/1.1 for any byte stream (unix socket, vsock).
//!
//! [`router`] maps unversioned paths to handlers; [`app`] adds API-version handling and the
//! common response headers; [`serve::serve_stream`] runs one connection with upgrade support
//! (attach/exec hijacks).

#![recursion_limit = "512"]

pub mod buildkit;
pub mod error;
pub mod extract;
pub mod hijack;
pub mod keepalive;
pub mod routes;
pub mod serve;
pub mod trace;
pub mod version;

use std::sync::Arc;

use axum::Router;
use berth_engine::Engine;

/// Shared state of every handler.
pub type AppState = Arc<Engine>;

/// Handlers for unversioned paths.
pub fn router(engine: AppState) -> Router {
    Router::new()
        .merge(routes::system::routes())
        .merge(routes::events::routes())
        .merge(routes::images::routes())
        .merge(routes::build::routes())
        .merge(buildkit::routes())
        .merge(routes::distribution::routes())
        .merge(routes::auth::routes())
        .merge(routes::containers::routes())
        .merge(routes::container_streams::routes())
        .merge(routes::archive::routes())
        .merge(routes::resources::routes())
        .merge(routes::exec::routes())
        .merge(routes::networks::routes())
        .merge(routes::volumes::routes())
        .fallback(routes::not_found)
        .with_state(engine)
}

/// The full API: `/v1.24`…`/v1.50` prefixes and unprefixed paths, common headers on every
/// response, a span per request ([`trace`]).
pub fn app(engine: AppState) -> Router {
    Router::new()
        .fallback_service(router(engine))
        .layer(axum::middleware::from_fn(version::api_version))
        .layer(axum::middleware::from_fn(
            keepalive::close_after_refused_upload,
        ))
        .layer(axum::middleware::from_fn(trace::request_span))
}
