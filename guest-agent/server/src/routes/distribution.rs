//! `GET /distribution/{name}/json`: the registry's descriptor of an image name and its
//! platforms, without pulling (buildx reads the pushed digest from it).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use berth_engine::EngineError;

use super::images::registry_auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::Path;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/distribution/{*rest}", get(inspect))
}

async fn inspect(
    State(engine): State<AppState>,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let name = rest
        .strip_suffix("/json")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError(EngineError::not_found("page not found")))?;
    let auth = registry_auth(&headers)?;
    Ok(Json(engine.images.distribution_inspect(name, auth).await?))
}
