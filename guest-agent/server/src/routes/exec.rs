//! Routes of the `exec` resource.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_docker_api::container::{ExecConfig, ExecStartConfig};
use berth_engine::container::stream::parse_detach_keys;
use berth_engine::EngineError;
use serde_json::json;
use tokio::io::AsyncReadExt;

use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Query, ResizeQuery};
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

/// Reads the JSON body by hand: the request itself is kept for the upgrade.
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
    let (tty, keys) = e.containers.exec_info(&id)?;
    let keys = parse_detach_keys(&keys).map_err(|m| ApiError(EngineError::invalid(m)))?;
    let session = match e.containers.exec_start(&id, cfg.console_size).await {
        Ok(s) => s,
        // Like dockerd, a start that fails once the exec exists is told inside the hijacked
        // stream (on stdout), and the exec's exit code is 126: the CLI prints it and exits so.
        Err(err) if !cfg.detach && err.kind() != berth_engine::ErrorKind::NotFound => {
            let Some(on_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
                return Err(ApiError(err));
            };
            let text = format!("{}\r\n", err.message());
            let prelude = if tty {
                text.into_bytes()
            } else {
                berth_engine::container::stream::frame(1, text.as_bytes())
            };
            hijack::spawn(
                on_upgrade,
                vec![prelude.into()],
                Box::pin(async { None }),
                keys,
            );
            return Ok(hijack::upgrade_response(tty));
        }
        Err(err) => return Err(ApiError(err)),
    };
    if cfg.detach {
        tokio::spawn(async move {
            let mut out = session.output;
            let mut buf = vec![0u8; 8192];
            while matches!(out.read(&mut buf).await, Ok(n) if n > 0) {}
        });
        return Ok(StatusCode::OK.into_response());
    }
    let Some(on_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
        return Err(ApiError(EngineError::invalid(
            "exec start needs an upgradable connection",
        )));
    };
    hijack::spawn(
        on_upgrade,
        vec![],
        Box::pin(async move { Some(session) }),
        keys,
    );
    Ok(hijack::upgrade_response(tty))
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
