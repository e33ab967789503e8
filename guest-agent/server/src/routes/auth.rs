//! `POST /auth`: checks registry credentials (`docker login`).

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use berth_docker_api::auth::{AuthConfig, AuthResponse};

use crate::error::ApiResult;
use crate::extract::JsonBody;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/auth", post(login))
}

async fn login(
    State(engine): State<AppState>,
    JsonBody(cfg): JsonBody<AuthConfig>,
) -> ApiResult<Json<AuthResponse>> {
    engine.images.login(&cfg).await?;
    Ok(Json(AuthResponse {
        status: "Login Succeeded".into(),
        identity_token: String::new(),
    }))
}
