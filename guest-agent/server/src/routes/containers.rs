//! Routes of the `containers` resource: create, start, wait and the rest of a container's
//! life (its streams are in [`super::container_streams`]).

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use berth_docker_api::container::{ContainerCreateRequest, ContainersPruneReport};
use berth_engine::container::WaitCondition;
use berth_engine::EngineError;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::extract::{de_bool, parse_filters, FiltersQuery, JsonBody, Path, Query};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/create", post(create))
        .route("/containers/json", get(list))
        .route("/containers/prune", post(prune))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}/start", post(start))
        .route("/containers/{id}/stop", post(stop))
        .route("/containers/{id}/restart", post(restart))
        .route("/containers/{id}/kill", post(kill))
        .route("/containers/{id}/pause", post(pause))
        .route("/containers/{id}/unpause", post(unpause))
        .route("/containers/{id}/wait", post(wait))
        .route("/containers/{id}/rename", post(rename))
        .route("/containers/{id}/top", get(top))
        .route("/containers/{id}", delete(remove))
        .route("/containers/{id}/{alias}", delete(remove_link))
}

#[derive(Deserialize, Default)]
struct CreateQuery {
    name: Option<String>,
    platform: Option<String>,
}

async fn create(
    State(e): State<AppState>,
    Query(q): Query<CreateQuery>,
    JsonBody(body): JsonBody<ContainerCreateRequest>,
) -> ApiResult<Response> {
    let id = e
        .containers
        .create(q.name.as_deref(), q.platform.as_deref(), body)
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"Id": id, "Warnings": []}))).into_response())
}

#[derive(Deserialize, Default)]
struct ListQuery {
    #[serde(default, deserialize_with = "de_bool")]
    all: bool,
    limit: Option<i64>,
    #[serde(default, deserialize_with = "de_bool")]
    size: bool,
    filters: Option<String>,
}

async fn list(
    State(e): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let f = parse_filters(q.filters.as_deref())?;
    let limit = q.limit.filter(|l| *l > 0).map(|l| l as usize);
    Ok(Json(json!(e.containers.list(q.all, limit, q.size, &f)?)))
}

#[derive(Deserialize, Default)]
struct InspectQuery {
    #[serde(default, deserialize_with = "de_bool")]
    size: bool,
}

async fn inspect(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<InspectQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(e.containers.inspect(&id, q.size)?))
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

async fn start(State(e): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    e.containers.start(&id).await?;
    Ok(no_content())
}

#[derive(Deserialize, Default)]
struct StopQuery {
    t: Option<i64>,
    signal: Option<String>,
}

async fn stop(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<StopQuery>,
) -> ApiResult<Response> {
    e.containers.stop(&id, q.signal.as_deref(), q.t).await?;
    Ok(no_content())
}

async fn restart(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<StopQuery>,
) -> ApiResult<Response> {
    e.containers.restart(&id, q.signal.as_deref(), q.t).await?;
    Ok(no_content())
}

#[derive(Deserialize, Default)]
struct KillQuery {
    signal: Option<String>,
}

async fn kill(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<KillQuery>,
) -> ApiResult<Response> {
    e.containers.kill(&id, q.signal.as_deref()).await?;
    Ok(no_content())
}

async fn pause(State(e): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    e.containers.pause(&id, true).await?;
    Ok(no_content())
}

async fn unpause(State(e): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    e.containers.pause(&id, false).await?;
    Ok(no_content())
}

#[derive(Deserialize, Default)]
struct WaitQuery {
    condition: Option<String>,
}

async fn wait(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<WaitQuery>,
) -> ApiResult<Response> {
    let cond = match q.condition.as_deref().unwrap_or("") {
        "" | "not-running" => WaitCondition::NotRunning,
        "next-exit" => WaitCondition::NextExit,
        "removed" => WaitCondition::Removed,
        other => {
            return Err(ApiError(EngineError::invalid(format!(
                "invalid condition: \"{other}\""
            ))))
        }
    };
    let fut = e.containers.wait(&id, cond)?;
    // Headers go out at once; the body follows when the condition holds.
    let body = futures::stream::once(async move {
        let code = fut.await;
        Ok::<_, Infallible>(Bytes::from(format!(
            "{}\n",
            json!({"StatusCode": code, "Error": null})
        )))
    });
    let mut r = Response::new(Body::from_stream(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

#[derive(Deserialize, Default)]
struct RenameQuery {
    name: Option<String>,
}

async fn rename(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<RenameQuery>,
) -> ApiResult<Response> {
    e.containers
        .rename(&id, q.name.as_deref().unwrap_or(""))
        .await?;
    Ok(no_content())
}

#[derive(Deserialize, Default)]
struct TopQuery {
    ps_args: Option<String>,
}

async fn top(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<TopQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(
        e.containers
            .top(&id, q.ps_args.as_deref().unwrap_or(""))
            .await?,
    ))
}

#[derive(Deserialize, Default)]
struct RemoveQuery {
    #[serde(default, deserialize_with = "de_bool")]
    force: bool,
    #[serde(default, deserialize_with = "de_bool")]
    v: bool,
    #[serde(default, deserialize_with = "de_bool")]
    link: bool,
}

async fn remove(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> ApiResult<Response> {
    if q.link {
        // `docker rm --link name`: a link is `parent/alias`; dockerd's text.
        return Err(ApiError(EngineError::conflict(
            "Conflict, cannot remove the default link name of the container",
        )));
    }
    e.containers.remove(&id, q.force, q.v).await?;
    Ok(no_content())
}

#[derive(Deserialize, Default)]
struct RemoveLinkQuery {
    #[serde(default, deserialize_with = "de_bool")]
    link: bool,
}

/// `DELETE /containers/{parent}/{alias}?link=true` (`docker rm --link`). Without `link` the
/// path names no container.
async fn remove_link(
    State(e): State<AppState>,
    Path((id, alias)): Path<(String, String)>,
    Query(q): Query<RemoveLinkQuery>,
) -> ApiResult<Response> {
    if !q.link {
        return Err(ApiError(EngineError::not_found(format!(
            "No such container: {id}/{alias}"
        ))));
    }
    e.containers.remove_link(&id, &alias).await?;
    Ok(no_content())
}

async fn prune(
    State(e): State<AppState>,
    Query(q): Query<FiltersQuery>,
) -> ApiResult<Json<ContainersPruneReport>> {
    let f = parse_filters(q.filters.as_deref())?;
    let labels = f.get("label").cloned().unwrap_or_default();
    Ok(Json(e.containers.prune(&labels).await?))
}
