//! API versions: strips `/v{major}.{minor}` prefixes, rejects versions outside the supported
//! range with dockerd's messages, and adds the headers every response carries.

use axum::extract::Request;
use axum::http::{HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use berth_engine::EngineError;

use crate::error::ApiError;

pub const API_VERSION: &str = "1.50";
pub const MIN_API_VERSION: &str = "1.24";

/// The API version a request was made with (the newest when the path had no prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

impl ApiVersion {
    pub const MAX: Self = Self(1, 50);
    pub const MIN: Self = Self(1, 24);
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// Splits `/v1.41/containers/json` into (1.41, `/containers/json`).
fn split_version(path: &str) -> Option<(ApiVersion, &str)> {
    let rest = path.strip_prefix("/v")?;
    let end = rest.find('/').unwrap_or(rest.len());
    let (ver, tail) = rest.split_at(end);
    let (maj, min) = ver.split_once('.')?;
    let v = ApiVersion(maj.parse().ok()?, min.parse().ok()?);
    Some((v, if tail.is_empty() { "/" } else { tail }))
}

pub async fn api_version(mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let version = match split_version(&path) {
        Some((v, tail)) => {
            if v < ApiVersion::MIN {
                return with_headers(ApiError(EngineError::invalid(format!(
                    "client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
                ))).into_response());
            }
            if v > ApiVersion::MAX {
                return with_headers(
                    ApiError(EngineError::invalid(format!(
                    "client version {v} is too new. Maximum supported API version is {API_VERSION}"
                )))
                    .into_response(),
                );
            }
            let pq = match req.uri().query() {
                Some(q) => format!("{tail}?{q}"),
                None => tail.to_string(),
            };
            if let Ok(uri) = pq.parse::<Uri>() {
                *req.uri_mut() = uri;
            }
            v
        }
        None => ApiVersion::MAX,
    };
    req.extensions_mut().insert(version);
    with_headers(next.run(req).await)
}

fn with_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert("api-version", HeaderValue::from_static(API_VERSION));
    h.insert("ostype", HeaderValue::from_static("linux"));
    h.insert("docker-experimental", HeaderValue::from_static("false"));
    h.insert(
        "server",
        HeaderValue::from_str(&format!("Docker/{} (linux)", berth_engine::VERSION))
            .unwrap_or(HeaderValue::from_static("Docker")),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_version_forms() {
        assert_eq!(
            split_version("/v1.41/containers/json"),
            Some((ApiVersion(1, 41), "/containers/json"))
        );
        assert_eq!(split_version("/v1.50"), Some((ApiVersion(1, 50), "/")));
        assert_eq!(split_version("/version"), None);
        assert_eq!(split_version("/volumes/x"), None);
    }
}
