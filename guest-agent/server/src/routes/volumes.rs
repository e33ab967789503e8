//! Routes of the `volumes` resource.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_docker_api::volume::VolumeCreateOptions;
use berth_engine::EngineError;
use serde::Deserialize;
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::extract::{de_bool, parse_filters, FiltersQuery, JsonBody, Path, Query};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/volumes", get(list))
        .route("/volumes/create", post(create))
        .route("/volumes/prune", post(prune))
        .route("/volumes/{name}", get(inspect).delete(remove))
}

fn label_match(labels: &std::collections::BTreeMap<String, String>, want: &[String]) -> bool {
    want.iter().all(|w| match w.split_once('=') {
        Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
        None => labels.contains_key(w),
    })
}

async fn list(
    State(e): State<AppState>,
    Query(q): Query<FiltersQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let f = parse_filters(q.filters.as_deref())?;
    let mut out = vec![];
    for v in e.volumes.list()? {
        if let Some(names) = f.get("name").filter(|n| !n.is_empty()) {
            if !names.iter().any(|n| v.name.contains(n.as_str())) {
                continue;
            }
        }
        if !label_match(
            &v.labels,
            f.get("label").map(Vec::as_slice).unwrap_or_default(),
        ) {
            continue;
        }
        if let Some(d) = f.get("dangling").and_then(|d| d.first()) {
            let dangling = e.containers.volume_users(&v.name).is_empty();
            if (d == "true" || d == "1") != dangling {
                continue;
            }
        }
        out.push(v);
    }
    Ok(Json(json!({"Volumes": out, "Warnings": []})))
}

async fn create(
    State(e): State<AppState>,
    JsonBody(opts): JsonBody<VolumeCreateOptions>,
) -> ApiResult<Response> {
    let v = e.volumes.create(opts)?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

async fn inspect(
    State(e): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(
        serde_json::to_value(e.volumes.inspect(&name)?).map_err(EngineError::from)?,
    ))
}

#[derive(Deserialize, Default)]
struct RemoveQuery {
    #[serde(default, deserialize_with = "de_bool")]
    force: bool,
}

async fn remove(
    State(e): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> ApiResult<Response> {
    let users = e.containers.volume_users(&name);
    if !users.is_empty() {
        e.volumes.inspect(&name)?;
        return Err(ApiError(EngineError::conflict(format!(
            "remove {name}: volume is in use - [{}]",
            users.join(", ")
        ))));
    }
    match e.volumes.remove(&name) {
        Err(err) if q.force && err.kind() == berth_engine::ErrorKind::NotFound => {}
        r => r?,
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Removes unused volumes: anonymous ones only, unless `all=true` (API ≥ 1.42 behaviour).
async fn prune(
    State(e): State<AppState>,
    Query(q): Query<FiltersQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let f = parse_filters(q.filters.as_deref())?;
    let all = f
        .get("all")
        .and_then(|v| v.first())
        .is_some_and(|v| v == "true" || v == "1");
    let labels = f.get("label").cloned().unwrap_or_default();
    let mut deleted = vec![];
    let mut reclaimed: i64 = 0;
    for v in e.volumes.list()? {
        let anonymous = v.name.len() == 64 && v.name.bytes().all(|b| b.is_ascii_hexdigit());
        if (!all && !anonymous) || !label_match(&v.labels, &labels) {
            continue;
        }
        if !e.containers.volume_users(&v.name).is_empty() {
            continue;
        }
        let size = e.volumes.size(&v.name);
        if e.volumes.remove(&v.name).is_ok() {
            reclaimed += size;
            deleted.push(v.name);
        }
    }
    Ok(Json(
        json!({"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}),
    ))
}
