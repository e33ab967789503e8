//! Endpoints that make images from other things: `POST /build` (the classic builder; the
//! context tar streams in, progress lines stream out) and `POST /commit` (a container's
//! changes).

use std::collections::BTreeMap;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use berth_docker_api::auth::AuthConfig;
use berth_engine::build::BuildOptions;
use berth_engine::container::commit::CommitOptions;
use berth_engine::EngineError;
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::images::{progress_stream_until_gone, query_values};
use crate::error::{ApiError, ApiResult};
use crate::extract::{body_reader, de_bool, Query};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/build", post(build))
        .route("/build/prune", post(prune))
        .route("/commit", post(commit))
}

/// `POST /build/prune` (`docker builder prune`, `docker system prune`): the classic builder's
/// cache is a map of steps to images; the images themselves are pruned as images.
async fn prune(State(e): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    let engine = e.clone();
    let deleted = tokio::task::spawn_blocking(move || engine.prune_build_cache())
        .await
        .map_err(|err| ApiError(EngineError::internal(format!("build prune: {err}"))))??;
    Ok(Json(json!({"CachesDeleted": deleted, "SpaceReclaimed": 0})))
}

fn default_true() -> bool {
    true
}

#[derive(Deserialize, Default)]
struct BuildQuery {
    #[serde(default)]
    buildargs: String,
    #[serde(default)]
    labels: String,
    #[serde(default)]
    target: String,
    #[serde(default, deserialize_with = "de_bool")]
    nocache: bool,
    #[serde(default, deserialize_with = "de_bool")]
    pull: bool,
    /// Absent means true (dockerd, API ≥ 1.12).
    rm: Option<String>,
    #[serde(default, deserialize_with = "de_bool")]
    forcerm: bool,
    #[serde(default, deserialize_with = "de_bool")]
    q: bool,
    #[serde(default)]
    networkmode: String,
    #[serde(default)]
    platform: String,
    #[serde(default)]
    remote: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    cachefrom: String,
}

fn json_param<T: serde::de::DeserializeOwned + Default>(
    name: &str,
    raw: &str,
) -> Result<T, ApiError> {
    if raw.is_empty() || raw == "null" {
        return Ok(T::default());
    }
    serde_json::from_str(raw).map_err(|e| {
        ApiError(EngineError::invalid(format!(
            "invalid {name} parameter: {e}"
        )))
    })
}

/// `X-Registry-Config`: base64 JSON of registry → AuthConfig.
fn registry_config(headers: &HeaderMap) -> Result<BTreeMap<String, AuthConfig>, ApiError> {
    use base64::Engine as _;
    let Some(v) = headers.get("x-registry-config") else {
        return Ok(BTreeMap::new());
    };
    let raw = v.to_str().unwrap_or_default().trim();
    let engines = [
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
    ];
    let bytes = engines
        .iter()
        .find_map(|e| e.decode(raw).ok())
        .ok_or_else(|| ApiError(EngineError::invalid("invalid X-Registry-Config header")))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(BTreeMap::new());
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError(EngineError::invalid(format!(
            "invalid X-Registry-Config header: {e}"
        )))
    })
}

/// `POST /build?dockerfile=&t=&buildargs=&…` with a tar context.
async fn build(
    State(engine): State<AppState>,
    Query(q): Query<BuildQuery>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    if q.version == "2" {
        return Err(ApiError(EngineError::invalid(
            "BuildKit is not supported by Berth: use the classic builder (version=1)",
        )));
    }
    if !q.remote.is_empty() {
        return Err(ApiError(EngineError::not_implemented(
            "remote build contexts are not supported by Berth; send the context as the body",
        )));
    }
    let opts = BuildOptions {
        // The first of repeated values, as dockerd's `FormValue`: docker-py sends the name and
        // then the text of a Dockerfile from outside the context.
        dockerfile: query_values(&uri, "dockerfile")
            .into_iter()
            .next()
            .unwrap_or_default(),
        tags: query_values(&uri, "t"),
        extra_hosts: query_values(&uri, "extrahosts")
            .iter()
            .flat_map(|v| v.split(','))
            .filter(|h| !h.is_empty())
            .map(str::to_string)
            .collect(),
        cache_from: json_param("cachefrom", &q.cachefrom)?,
        build_args: json_param("buildargs", &q.buildargs)?,
        labels: json_param("labels", &q.labels)?,
        target: q.target,
        no_cache: q.nocache,
        pull: q.pull,
        remove: q
            .rm
            .as_deref()
            .is_none_or(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes")),
        force_remove: q.forcerm,
        quiet: q.q,
        network_mode: q.networkmode,
        platform: q.platform,
        auths: registry_config(&headers)?,
        cancel: CancellationToken::new(),
        ..BuildOptions::default()
    };
    let gone = opts.cancel.clone();
    let context = body_reader(body);
    progress_stream_until_gone(
        move |progress| async move { engine.build(opts, context, progress).await.map(|_| ()) },
        Some(gone),
    )
    .await
}

#[derive(Deserialize, Default)]
struct CommitQuery {
    #[serde(default)]
    container: String,
    #[serde(default)]
    repo: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    author: String,
    #[serde(default = "default_true", deserialize_with = "de_bool")]
    pause: bool,
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`, body: an optional
/// `ContainerConfig` whose set fields override the container's.
async fn commit(
    State(engine): State<AppState>,
    Query(q): Query<CommitQuery>,
    uri: Uri,
    body: Bytes,
) -> ApiResult<Response> {
    let config = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(
            serde_json::from_slice(&body)
                .map_err(|e| ApiError(EngineError::invalid(format!("invalid JSON: {e}"))))?,
        )
    };
    let opts = CommitOptions {
        repo: q.repo,
        tag: q.tag,
        comment: q.comment,
        author: q.author,
        pause: q.pause,
        changes: query_values(&uri, "changes"),
        config,
    };
    let id = engine.containers.commit(&q.container, opts).await?;
    Ok((StatusCode::CREATED, Json(json!({ "Id": id }))).into_response())
}
