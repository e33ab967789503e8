//! Routes of the `images` resource. Image names in paths hold `/` and `:` unescaped
//! (`/images/localhost:5000/x/y/json`), so everything under `/images/` that is not a fixed
//! path goes through one wildcard route that splits the action suffix off itself.

use std::collections::HashSet;
use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_docker_api::progress::ProgressMessage;
use berth_engine::image::Progress;
use berth_engine::registry::auth::decode_registry_auth;
use berth_engine::EngineError;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::error::{ApiError, ApiResult};
use crate::extract::{body_reader, de_bool, parse_filters, FiltersQuery, Path, Query};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/images/create", post(create))
        .route("/images/json", get(list))
        .route("/images/prune", post(prune))
        .route("/images/search", get(not_supported))
        .route("/images/get", get(save))
        .route("/images/load", post(load))
        .route(
            "/images/{*rest}",
            get(by_name).post(by_name).delete(by_name),
        )
}

async fn not_supported() -> ApiError {
    ApiError(EngineError::not_implemented(
        "this endpoint is not supported by Berth yet",
    ))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CreateQuery {
    #[serde(default)]
    from_image: String,
    #[serde(default)]
    from_src: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    platform: String,
    #[serde(default)]
    repo: String,
    #[serde(default)]
    message: String,
}

/// Every value of a repeated query parameter (`changes=…&changes=…`).
pub(crate) fn query_values(uri: &axum::http::Uri, key: &str) -> Vec<String> {
    uri.query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| percent_decode(v))
        .filter(|v| !v.is_empty())
        .collect()
}

/// `POST /images/create?fromSrc=-&repo=&tag=&changes=&message=`: `docker import` of the
/// body (a tar, possibly compressed) as a one-layer image.
async fn import(
    engine: AppState,
    q: CreateQuery,
    uri: &axum::http::Uri,
    body: Body,
) -> ApiResult<Response> {
    if q.from_src != "-" {
        return Err(ApiError(EngineError::not_implemented(
            "importing from a URL is not supported by Berth; pipe the archive instead",
        )));
    }
    let mut config = serde_json::json!({});
    berth_engine::image::create::apply_changes(&mut config, &query_values(uri, "changes"))?;
    let spec = berth_engine::image::create::ImageSpec {
        parent: None,
        config: Some(config),
        created_by: String::new(),
        comment: if q.message.is_empty() {
            "Imported from -".to_string()
        } else {
            q.message.clone()
        },
        ..Default::default()
    };
    let reader = body_reader(body);
    let id = {
        let engine = engine.clone();
        tokio::task::spawn_blocking(move || engine.images.create_image(spec, Some(reader)))
            .await
            .map_err(|e| ApiError(EngineError::internal(format!("import failed: {e}"))))??
    };
    if !q.repo.is_empty() {
        engine.images.tag(&id, &q.repo, &q.tag)?;
    }
    engine.images.note_import(&id);
    let mut resp = Body::from(json_line(&ProgressMessage::status(id))).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// Builds the reference a pull names: `fromImage` with `tag` (a tag or a digest) replacing
/// whatever tag it had, as dockerd does.
fn pull_reference(from_image: &str, tag: &str) -> Result<String, ApiError> {
    if from_image.is_empty() {
        return Err(ApiError(EngineError::invalid("image name is required")));
    }
    if tag.is_empty() {
        return Ok(from_image.to_string());
    }
    let r = berth_engine::image::reference::Reference::parse(from_image)?;
    Ok(if tag.starts_with("sha256:") {
        format!("{}@{tag}", r.name())
    } else {
        format!("{}:{tag}", r.name())
    })
}

pub(crate) fn registry_auth(
    headers: &HeaderMap,
) -> Result<Option<berth_docker_api::auth::AuthConfig>, ApiError> {
    match headers.get("x-registry-auth") {
        Some(v) => Ok(decode_registry_auth(v.to_str().unwrap_or_default())?),
        None => Ok(None),
    }
}

fn json_line(m: &ProgressMessage) -> Bytes {
    let mut line = serde_json::to_vec(m).unwrap_or_default();
    line.push(b'\r');
    line.push(b'\n');
    Bytes::from(line)
}

/// `POST /images/create?fromImage=&tag=&platform=`: a pull with streamed progress. Errors
/// found before the first progress line are plain HTTP errors (404 for an unknown image);
/// later ones are sent in-band.
async fn create(
    State(engine): State<AppState>,
    Query(q): Query<CreateQuery>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    if !q.from_src.is_empty() {
        return import(engine, q, &uri, body).await;
    }
    let reference = pull_reference(&q.from_image, &q.tag)?;
    let auth = registry_auth(&headers)?;
    progress_stream(move |progress| async move {
        engine
            .images
            .pull(&reference, &q.platform, auth, progress)
            .await
            .map(|_| ())
    })
    .await
}

/// Runs `op` with a progress sink and streams its lines as the response. An error before the
/// first line is a plain HTTP error; a later one is the last, in-band line. A gone client
/// does not stop the operation (a pull completes).
pub(crate) async fn progress_stream<F, Fut>(op: F) -> ApiResult<Response>
where
    F: FnOnce(Progress) -> Fut,
    Fut: std::future::Future<Output = berth_engine::Result<()>> + Send + 'static,
{
    progress_stream_until_gone(op, None).await
}

/// As [`progress_stream`], and `gone` (when given) is cancelled as soon as the client has
/// dropped the response (a build stops then, as with dockerd); the lines the operation still
/// sends are drained until it returns.
pub(crate) async fn progress_stream_until_gone<F, Fut>(
    op: F,
    gone: Option<CancellationToken>,
) -> ApiResult<Response>
where
    F: FnOnce(Progress) -> Fut,
    Fut: std::future::Future<Output = berth_engine::Result<()>> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(op(Progress::new(tx)));
    let Some(first) = rx.recv().await else {
        return match task.await {
            Ok(Ok(())) => Ok(StatusCode::OK.into_response()),
            Ok(Err(e)) => Err(ApiError(e)),
            Err(e) => Err(ApiError(EngineError::internal(format!("task failed: {e}")))),
        };
    };
    let (out_tx, out_rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(64);
    tokio::spawn(async move {
        let _ = out_tx.send(Ok(json_line(&first))).await;
        let mut watching = gone;
        loop {
            tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => {
                        let _ = out_tx.send(Ok(json_line(&m))).await;
                    }
                    None => break,
                },
                () = out_tx.closed(), if watching.is_some() => {
                    tracing::info!("client went away: cancelling");
                    if let Some(t) = watching.take() {
                        t.cancel();
                    }
                }
            }
        }
        let err = match task.await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.message().to_string()),
            Err(e) => Some(format!("task failed: {e}")),
        };
        if let Some(msg) = err {
            tracing::info!(error = %msg, "failed after streaming began");
            let _ = out_tx
                .send(Ok(json_line(&ProgressMessage::error(msg))))
                .await;
        }
    });
    let mut resp =
        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(out_rx)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// `POST /images/load`: a docker-archive body, answered with `Loaded image: …` lines. As with
/// dockerd the status is 200 once the body is read: an archive that cannot be loaded ends the
/// stream with an in-band error line (`docker load` prints it and fails).
async fn load(State(engine): State<AppState>, body: Body) -> Response {
    let reader = body_reader(body);
    let loader = {
        let engine = engine.clone();
        tokio::task::spawn_blocking(move || engine.images.load_archive(reader))
    };
    let lines = match loader.await {
        Ok(Ok(loaded)) => loaded
            .into_iter()
            .map(|line| ProgressMessage {
                stream: Some(format!("{line}\n")),
                ..ProgressMessage::default()
            })
            .collect(),
        Ok(Err(e)) => {
            tracing::info!(error = %e, "image load failed");
            vec![ProgressMessage::error(e.message())]
        }
        Err(e) => {
            tracing::error!(error = %e, "image load task failed");
            vec![ProgressMessage::error(format!("load failed: {e}"))]
        }
    };
    let out: Vec<u8> = lines.iter().flat_map(json_line).collect();
    let mut resp = Body::from(out).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// `GET /images/get?names=a&names=b`: a docker-archive of the named images.
async fn save(State(engine): State<AppState>, uri: axum::http::Uri) -> ApiResult<Response> {
    let names = query_values(&uri, "names");
    if names.is_empty() {
        return Err(ApiError(EngineError::invalid("no image names given")));
    }
    save_names(engine, names).await
}

/// `%xx` and `+` decoding for query values.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%' && i + 2 < b.len())
            .then(|| std::str::from_utf8(&b[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (_, Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (c, None) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn save_names(engine: AppState, names: Vec<String>) -> ApiResult<Response> {
    engine.images.check_saveable(&names)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(16);
    tokio::task::spawn_blocking(move || {
        let mut w = berth_engine::image::save::ChannelWriter::new(tx.clone());
        if let Err(e) = engine.images.save_archive(&names, &mut w) {
            tracing::warn!(error = %e, "save failed while streaming");
            let _ = tx.blocking_send(Err(std::io::Error::other(e.message().to_string())));
        }
    });
    let mut resp =
        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    Ok(resp)
}

#[derive(Deserialize, Default)]
struct ListQuery {
    #[serde(default, deserialize_with = "de_bool")]
    all: bool,
    filters: Option<String>,
}

async fn list(State(engine): State<AppState>, Query(q): Query<ListQuery>) -> ApiResult<Response> {
    let filters = parse_filters(q.filters.as_deref())?;
    Ok(Json(engine.images.list(q.all, &filters)?).into_response())
}

/// Ids of images some container was created from.
async fn images_in_use(engine: &AppState) -> HashSet<String> {
    let mut used = HashSet::new();
    for id in engine.images.ids() {
        if !engine.containers.image_users(&id).await.is_empty() {
            used.insert(id);
        }
    }
    used
}

async fn prune(
    State(engine): State<AppState>,
    Query(q): Query<FiltersQuery>,
) -> ApiResult<Response> {
    let filters = parse_filters(q.filters.as_deref())?;
    let dangling_only = filters
        .get("dangling")
        .and_then(|v| v.first())
        .is_none_or(|v| !matches!(v.as_str(), "false" | "0"));
    let in_use = images_in_use(&engine).await;
    Ok(Json(engine.images.prune(dangling_only, &in_use)?).into_response())
}

#[derive(Deserialize, Default)]
struct NameQuery {
    #[serde(default)]
    repo: String,
    #[serde(default)]
    tag: String,
    #[serde(default, deserialize_with = "de_bool")]
    force: bool,
}

/// `/images/{name}[/json|/history|/tag|/push|/get]`.
async fn by_name(
    State(engine): State<AppState>,
    method: Method,
    Path(rest): Path<String>,
    Query(q): Query<NameQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let rest = rest.trim_start_matches('/');
    let split = |suffix: &str| rest.strip_suffix(suffix).filter(|n| !n.is_empty());
    if method == Method::DELETE {
        let id = engine.images.image_id(rest)?;
        let users = engine.containers.image_users(&id).await;
        return Ok(Json(engine.images.remove(rest, q.force, &users)?).into_response());
    }
    if method == Method::GET {
        if let Some(name) = split("/json") {
            return Ok(Json(engine.images.inspect(name)?).into_response());
        }
        if let Some(name) = split("/history") {
            return Ok(Json(engine.images.history(name)?).into_response());
        }
        if let Some(name) = split("/get") {
            return save_names(engine, vec![name.to_string()]).await;
        }
    }
    if method == Method::POST {
        if let Some(name) = split("/tag") {
            engine.images.tag(name, &q.repo, &q.tag)?;
            return Ok(StatusCode::CREATED.into_response());
        }
        if let Some(name) = split("/push") {
            let auth = registry_auth(&headers)?;
            let (name, tag) = (name.to_string(), q.tag.clone());
            return progress_stream(move |progress| async move {
                engine.images.push(&name, &tag, auth, progress).await
            })
            .await;
        }
    }
    Err(ApiError(EngineError::not_found("page not found")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_reference_combines_like_dockerd() {
        assert_eq!(
            pull_reference("docker.io/library/busybox", "latest").unwrap(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(pull_reference("busybox:1", "").unwrap(), "busybox:1");
        assert_eq!(
            pull_reference("localhost:5000/x", "2").unwrap(),
            "localhost:5000/x:2"
        );
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            pull_reference("busybox", &d).unwrap(),
            format!("docker.io/library/busybox@{d}")
        );
        assert!(pull_reference("", "x").is_err());
    }

    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(
            percent_decode("localhost%3A5000%2Fx%3A1"),
            "localhost:5000/x:1"
        );
        assert_eq!(percent_decode("a+b%zz%"), "a b%zz%");
        assert_eq!(percent_decode("%é1"), "%é1");
    }
}
