//! Routes of the `exec` resource.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_docker_api::container::{ExecConfig, ExecStartConfig};
use berth_engine::stream::{framed, parse_detach_keys};
use berth_engine::EngineError;
use serde_json::json;
use tokio::io::AsyncReadExt;

use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Path, Query, ResizeQuery};
use crate::hijack;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/{id}/exec", post(create))
        .route("/exec/{id}/start", post(start))
        .route("/exec/{id}/resize", post(resize))
        .route("/exec/{id}/json", get(inspect))
}

async fn create(
    State(e): State<AppState>,
    Path(id): Path<String>,
    JsonBody(cfg): JsonBody<ExecConfig>,
) -> ApiResult<Response> {
    if !cfg.detach_keys.is_empty() {
        parse_detach_keys(&cfg.detach_keys).map_err(|m| ApiError(EngineError::invalid(m)))?;
    }
    let id = e.containers.exec_create(&id, cfg).await?;
    Ok((StatusCode::CREATED, Json(json!({"Id": id}))).into_response())
}

/// Reads the JSON body by hand: the request itself is kept for the upgrade. Like dockerd,
/// the process starts once the connection is handed over (so its first output never rides
/// with the response head, which clients reading the head through a buffer would lose), and
/// the stream's framing follows this request's `Tty`, not the exec's.
async fn start(
    State(e): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let (mut parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|e| ApiError(EngineError::invalid(e.to_string())))?;
    let cfg: ExecStartConfig = if bytes.iter().all(u8::is_ascii_whitespace) {
        ExecStartConfig::default()
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|err| ApiError(EngineError::invalid(format!("invalid JSON: {err}"))))?
    };
    let (_, keys) = e.containers.exec_info(&id)?;
    let keys = parse_detach_keys(&keys).map_err(|m| ApiError(EngineError::invalid(m)))?;
    if cfg.detach {
        let session = e
            .containers
            .exec_start(&id, cfg.console_size, false)
            .await?;
        tokio::spawn(async move {
            let mut out = session.output;
            let mut buf = vec![0u8; 8192];
            while matches!(out.read(&mut buf).await, Ok(n) if n > 0) {}
        });
        return Ok(StatusCode::OK.into_response());
    }
    let mux = !cfg.tty;
    let svc = e.containers.clone();
    let session = async move {
        match svc.exec_start(&id, cfg.console_size, mux).await {
            Ok(s) => s,
            // Like dockerd, a start that fails once the exec exists is told inside the
            // stream (on stdout), and the exec's exit code is 126: the CLI prints it and
            // exits so.
            Err(err) => {
                let text = format!("{}\r\n", err.message());
                hijack::told(framed(mux, 1, text.as_bytes()))
            }
        }
    };
    match parts.extensions.remove::<hyper::upgrade::OnUpgrade>() {
        Some(on_upgrade) => {
            hijack::spawn(
                on_upgrade,
                vec![],
                Box::pin(async move { Some(session.await) }),
                keys,
            );
            Ok(hijack::upgrade_response(cfg.tty))
        }
        None => Ok(hijack::plain_response(session.await)),
    }
}

async fn resize(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ResizeQuery>,
) -> ApiResult<Response> {
    e.containers
        .exec_resize(&id, q.h.unwrap_or(0), q.w.unwrap_or(0))?;
    Ok(StatusCode::OK.into_response())
}

async fn inspect(
    State(e): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(e.containers.exec_inspect(&id)?))
}
