//! Container files: `docker cp` (`HEAD`/`GET`/`PUT /containers/{id}/archive`),
//! `docker diff` (`GET /containers/{id}/changes`) and `docker export` (`GET …/export`).

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use berth_docker_api::files::{FilesystemChange, PathStat};
use berth_engine::container::archive::PutOptions;
use berth_engine::EngineError;
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::extract::{body_channel, de_bool, Path, Query};
use crate::AppState;

const PATH_STAT: HeaderName = HeaderName::from_static("x-docker-container-path-stat");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/containers/{id}/archive",
            get(get_archive).head(head_archive).put(put_archive),
        )
        .route("/containers/{id}/export", get(export))
        .route("/containers/{id}/changes", get(changes))
}

async fn changes(
    State(e): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<FilesystemChange>>> {
    Ok(Json(e.containers.changes(&id).await?))
}

#[derive(Deserialize, Default)]
struct ArchiveQuery {
    path: Option<String>,
    #[serde(default, rename = "noOverwriteDirNonDir", deserialize_with = "de_bool")]
    no_overwrite_dir_non_dir: bool,
    #[serde(default, rename = "copyUIDGID", deserialize_with = "de_bool")]
    copy_uid_gid: bool,
}

impl ArchiveQuery {
    fn path(&self) -> ApiResult<&str> {
        match self.path.as_deref() {
            Some(p) if !p.is_empty() => Ok(p),
            _ => Err(ApiError(EngineError::invalid("path is empty"))),
        }
    }
}

/// The stat header: standard base64 of the stat's JSON.
fn stat_headers(stat: &PathStat) -> ApiResult<HeaderMap> {
    let json = serde_json::to_vec(stat).map_err(|e| ApiError(EngineError::from(e)))?;
    let value = base64::engine::general_purpose::STANDARD.encode(json);
    let mut h = HeaderMap::new();
    h.insert(
        PATH_STAT,
        HeaderValue::from_str(&value).map_err(|e| ApiError(EngineError::internal(e)))?,
    );
    Ok(h)
}

async fn head_archive(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ArchiveQuery>,
) -> ApiResult<Response> {
    let stat = e.containers.archive_stat(&id, q.path()?).await?;
    Ok((StatusCode::OK, stat_headers(&stat)?).into_response())
}

async fn get_archive(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ArchiveQuery>,
) -> ApiResult<Response> {
    let (stat, tar) = e.containers.archive_get(&id, q.path()?).await?;
    let mut h = stat_headers(&stat)?;
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    Ok((h, Body::from_stream(tar)).into_response())
}

async fn put_archive(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ArchiveQuery>,
    body: Body,
) -> ApiResult<StatusCode> {
    let opts = PutOptions {
        no_overwrite_dir_non_dir: q.no_overwrite_dir_non_dir,
        copy_uid_gid: q.copy_uid_gid,
    };
    e.containers
        .archive_put(
            &id,
            q.path()?,
            opts,
            tokio_stream::wrappers::ReceiverStream::new(body_channel(body)),
        )
        .await?;
    Ok(StatusCode::OK)
}

async fn export(State(e): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let tar = e.containers.export(&id).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-tar"),
        )],
        Body::from_stream(tar),
    )
        .into_response())
}
