//! One mapping from engine error kinds to HTTP statuses and Docker's `{"message": ...}` body,
//! used for handler errors and extractor rejections alike.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_engine::{EngineError, ErrorKind};

/// The status dockerd answers for each error class (moby's httpstatus map).
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::NotModified => StatusCode::NOT_MODIFIED,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A handler error rendered as Docker's JSON error.
#[derive(Debug)]
pub struct ApiError(pub EngineError);

pub type ApiResult<T> = Result<T, ApiError>;

impl<E: Into<EngineError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(self.0.kind());
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self.0.chain(), "request failed");
        } else {
            tracing::debug!(error = %self.0.chain(), %status, "request rejected");
        }
        if status == StatusCode::NOT_MODIFIED {
            // 304 carries no body.
            return status.into_response();
        }
        (
            status,
            Json(serde_json::json!({ "message": self.0.message() })),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_dockers_status() {
        let table = [
            (ErrorKind::NotFound, 404),
            (ErrorKind::InvalidArgument, 400),
            (ErrorKind::Conflict, 409),
            (ErrorKind::NotModified, 304),
            (ErrorKind::Unauthorized, 401),
            (ErrorKind::Forbidden, 403),
            (ErrorKind::Unavailable, 503),
            (ErrorKind::NotImplemented, 501),
            (ErrorKind::Internal, 500),
        ];
        for (kind, code) in table {
            assert_eq!(status_of(kind).as_u16(), code, "{kind:?}");
        }
    }
}
