//! BuildKit's protocol served by the engine, so `docker buildx build` (docker driver) and
//! `docker compose build` work without a `moby/buildkit` container.
//!
//! buildx hijacks two connections: `POST /grpc` (`Upgrade: h2c`), where it is the gRPC client
//! of `moby.buildkit.v1.Control` and of the gateway's `LLBBridge` ([`control`]), and
//! `POST /session`, where the roles swap: buildx serves the session's services (file sync of
//! the context, credentials) and the engine calls them ([`session`]). A build is one
//! `Control.Solve` whose result comes from the gateway's `Solve` + `Return`; the Dockerfile
//! frontend ([`frontend`]) fetches the context over the session and runs the classic
//! builder's steps, their progress streamed as vertexes on `Control.Status` ([`status`]).

mod control;
mod filesend;
mod filesync;
mod frontend;
mod registry;
mod session;
mod status;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::{Extension, Router};
use hyper_util::rt::TokioExecutor;

use crate::error::{ApiError, ApiResult};
use crate::AppState;
pub(crate) use registry::Registry;

/// `POST /grpc` and `POST /session`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/grpc", post(grpc))
        .route("/session", post(session_route))
        .layer(Extension(Arc::new(Registry::default())))
}

fn upgrade_h2c() -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
    r
}

fn take_upgrade(req: &mut Request) -> ApiResult<hyper::upgrade::OnUpgrade> {
    req.extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
        .ok_or_else(|| {
            ApiError(berth_engine::EngineError::invalid(
                "this endpoint needs a connection upgrade to h2c",
            ))
        })
}

/// `POST /grpc`: HTTP/2 with prior knowledge on the hijacked connection, serving BuildKit's
/// control API and the gateway bridge.
async fn grpc(
    State(engine): State<AppState>,
    Extension(reg): Extension<Arc<Registry>>,
    mut req: Request,
) -> ApiResult<Response> {
    let on_upgrade = take_upgrade(&mut req)?;
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "grpc upgrade failed");
                return;
            }
        };
        let svc = control::services(engine, reg);
        let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(upgraded, hyper_util::service::TowerToHyperService::new(svc));
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "grpc connection ended with error");
        }
    });
    Ok(upgrade_h2c())
}

/// `POST /session`: the client's session, whose services the engine calls over HTTP/2.
async fn session_route(
    Extension(reg): Extension<Arc<Registry>>,
    mut req: Request,
) -> ApiResult<Response> {
    let id = req
        .headers()
        .get("x-docker-expose-session-uuid")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if id.is_empty() {
        return Err(ApiError(berth_engine::EngineError::invalid(
            "X-Docker-Expose-Session-Uuid is required",
        )));
    }
    let methods: Vec<String> = req
        .headers()
        .get_all("x-docker-expose-session-grpc-method")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_string()))
        .collect();
    let on_upgrade = take_upgrade(&mut req)?;
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "session upgrade failed");
                return;
            }
        };
        session::run(reg, id, methods, upgraded).await;
    });
    Ok(upgrade_h2c())
}
