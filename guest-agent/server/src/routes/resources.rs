//! Container resources: `docker stats` (`GET /containers/{id}/stats`) and `docker update`
//! (`POST /containers/{id}/update`).

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_docker_api::container::ContainerUpdate;
use berth_engine::container::stats::StatsOptions;
use bytes::Bytes;
use futures::StreamExt;
use serde::Deserialize;

use crate::error::ApiResult;
use crate::extract::{de_bool, JsonBody, Path, Query};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/{id}/stats", get(stats))
        .route("/containers/{id}/update", post(update))
}

async fn update(
    State(e): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ContainerUpdate>,
) -> ApiResult<Json<serde_json::Value>> {
    let warnings = e.containers.update_container(&id, body).await?;
    Ok(Json(serde_json::json!({ "Warnings": warnings })))
}

#[derive(Deserialize)]
struct StatsQuery {
    #[serde(default = "yes", deserialize_with = "de_bool")]
    stream: bool,
    #[serde(default, rename = "one-shot", deserialize_with = "de_bool")]
    one_shot: bool,
}

fn yes() -> bool {
    true
}

async fn stats(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<StatsQuery>,
) -> ApiResult<Response> {
    let opts = StatsOptions {
        stream: q.stream,
        one_shot: q.one_shot,
    };
    let samples = e.containers.stats(&id, opts)?;
    let body = samples.map(|s| {
        let mut line = serde_json::to_vec(&s).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, Infallible>(Bytes::from(line))
    });
    let mut r = Body::from_stream(body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}
