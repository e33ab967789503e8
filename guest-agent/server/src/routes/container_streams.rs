//! A container's streams: `docker attach` (`POST /containers/{id}/attach`, hijacked), its
//! terminal size (`POST /containers/{id}/resize`) and `docker logs`
//! (`GET /containers/{id}/logs`).

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use berth_engine::container::io::AttachOptions;
use berth_engine::container::logs::LogOptions;
use berth_engine::stream::parse_detach_keys;
use berth_engine::EngineError;
use futures::StreamExt;
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::extract::{de_bool, Path, Query, ResizeQuery};
use crate::hijack;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/{id}/attach", post(attach))
        .route("/containers/{id}/resize", post(resize))
        .route("/containers/{id}/logs", get(logs))
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
