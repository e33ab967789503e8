//! Routes of the `containers` resource.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use berth_docker_api::container::{ContainerCreateRequest, ContainersPruneReport};
use berth_engine::container::io::AttachOptions;
use berth_engine::container::logs::LogOptions;
use berth_engine::container::WaitCondition;
use berth_engine::stream::parse_detach_keys;
use berth_engine::EngineError;
use bytes::Bytes;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::extract::{de_bool, parse_filters, FiltersQuery, JsonBody, Path, Query, ResizeQuery};
use crate::hijack;
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
        .route("/containers/{id}/attach", post(attach))
        .route("/containers/{id}/resize", post(resize))
        .route("/containers/{id}/rename", post(rename))
        .route("/containers/{id}/logs", get(logs))
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
struct AttachQuery {
    #[serde(default, deserialize_with = "de_bool")]
    stream: bool,
    #[serde(default, deserialize_with = "de_bool")]
    stdin: bool,
    #[serde(default, deserialize_with = "de_bool")]
    stdout: bool,
    #[serde(default, deserialize_with = "de_bool")]
    stderr: bool,
    #[serde(default, deserialize_with = "de_bool")]
    logs: bool,
    #[serde(rename = "detachKeys")]
    detach_keys: Option<String>,
}

async fn attach(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<AttachQuery>,
    mut req: Request,
) -> ApiResult<Response> {
    let keys = parse_detach_keys(q.detach_keys.as_deref().unwrap_or(""))
        .map_err(|m| ApiError(EngineError::invalid(m)))?;
    let on_upgrade = hyper::upgrade::on(&mut req);
    let opts = AttachOptions {
        stdin: q.stdin,
        stdout: q.stdout,
        stderr: q.stderr,
    };
    let mut prelude = vec![];
    let (tty, session) = if q.stream {
        e.containers.attach(&id, opts).await?
    } else {
        let c = e.containers.get(&id)?;
        let tty = c.snapshot().record.config.tty;
        let none: berth_engine::container::io::SessionFuture = Box::pin(async { None });
        (tty, none)
    };
    if q.logs {
        let (_, mut rx) = e
            .containers
            .logs(
                &id,
                LogOptions {
                    stdout: q.stdout,
                    stderr: q.stderr,
                    ..Default::default()
                },
            )
            .await?;
        while let Some(b) = rx.recv().await {
            prelude.push(b);
        }
    }
    hijack::spawn(on_upgrade, prelude, session, keys);
    Ok(hijack::upgrade_response(tty))
}

async fn resize(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ResizeQuery>,
) -> ApiResult<Response> {
    e.containers
        .resize(&id, q.h.unwrap_or(0), q.w.unwrap_or(0))
        .await?;
    Ok(StatusCode::OK.into_response())
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
struct LogsQuery {
    #[serde(default, deserialize_with = "de_bool")]
    follow: bool,
    #[serde(default, deserialize_with = "de_bool")]
    stdout: bool,
    #[serde(default, deserialize_with = "de_bool")]
    stderr: bool,
    since: Option<String>,
    until: Option<String>,
    #[serde(default, deserialize_with = "de_bool")]
    timestamps: bool,
    tail: Option<String>,
}

/// Docker's time arguments: unix seconds (fractions allowed) or RFC 3339; `0`/empty = none.
fn parse_time(s: Option<&str>) -> ApiResult<Option<i64>> {
    let Some(s) = s.filter(|s| !s.is_empty() && *s != "0") else {
        return Ok(None);
    };
    if let Ok(f) = s.parse::<f64>() {
        return Ok(Some((f * 1e9) as i64));
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_nanos_opt())
        .map_err(|_| ApiError(EngineError::invalid(format!("invalid timestamp: {s}"))))
}

async fn logs(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<Response> {
    if !q.stdout && !q.stderr {
        return Err(ApiError(EngineError::invalid(
            "Bad parameters: you must choose at least one stream",
        )));
    }
    let tail = match q.tail.as_deref() {
        None | Some("") | Some("all") => None,
        Some(n) => Some(n.parse::<usize>().unwrap_or(usize::MAX)),
    };
    let (tty, rx) = e
        .containers
        .logs(
            &id,
            LogOptions {
                follow: q.follow,
                stdout: q.stdout,
                stderr: q.stderr,
                since: parse_time(q.since.as_deref())?,
                until: parse_time(q.until.as_deref())?,
                timestamps: q.timestamps,
                tail,
            },
        )
        .await?;
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, Infallible>);
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(hijack::stream_content_type(tty)),
    );
    Ok(r)
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
