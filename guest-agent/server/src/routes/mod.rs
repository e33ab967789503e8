//! One module per Docker API resource.

pub mod archive;
pub mod auth;
pub mod build;
pub mod container_streams;
pub mod containers;
pub mod distribution;
pub mod events;
pub mod exec;
pub mod images;
pub mod networks;
pub mod resources;
pub mod system;
pub mod volumes;

use axum::http::Uri;

use crate::error::ApiError;

/// Unknown paths: dockerd's `page not found`.
pub async fn not_found(uri: Uri) -> ApiError {
    tracing::debug!(%uri, "no route");
    ApiError(berth_engine::EngineError::not_found("page not found"))
}
