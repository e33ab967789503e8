//! Routes of the `networks` resource: list, inspect, create, remove, prune, connect and
//! disconnect.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_docker_api::network::{
    NetworkConnectRequest, NetworkCreateRequest, NetworkCreateResponse, NetworkPruneResponse,
};

use crate::error::ApiResult;
use crate::extract::{parse_filters, FiltersQuery, JsonBody, Path, Query};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/networks", get(list))
        .route("/networks/create", post(create))
        .route("/networks/prune", post(prune))
        .route("/networks/{id}", get(inspect).delete(remove))
        .route("/networks/{id}/connect", post(connect))
        .route("/networks/{id}/disconnect", post(disconnect))
}

async fn list(
    State(engine): State<AppState>,
    Query(q): Query<FiltersQuery>,
) -> ApiResult<Response> {
    let filters = parse_filters(q.filters.as_deref())?;
    Ok(Json(engine.networks.list(&filters)?).into_response())
}

async fn inspect(State(engine): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(Json(engine.networks.inspect(&id)?).into_response())
}

async fn create(
    State(engine): State<AppState>,
    JsonBody(req): JsonBody<NetworkCreateRequest>,
) -> ApiResult<Response> {
    let (id, warning) = engine.networks.create(req).await?;
    Ok((
        StatusCode::CREATED,
        Json(NetworkCreateResponse { id, warning }),
    )
        .into_response())
}

async fn remove(State(engine): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    engine.networks.remove(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn prune(
    State(engine): State<AppState>,
    Query(q): Query<FiltersQuery>,
) -> ApiResult<Response> {
    let filters = parse_filters(q.filters.as_deref())?;
    let deleted = engine.networks.prune(&filters).await?;
    Ok(Json(NetworkPruneResponse {
        networks_deleted: (!deleted.is_empty()).then_some(deleted),
    })
    .into_response())
}

async fn connect(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<NetworkConnectRequest>,
) -> ApiResult<StatusCode> {
    let settings = req.endpoint_config.unwrap_or_default();
    engine
        .containers
        .network_connect(&id, &req.container, &settings)
        .await?;
    Ok(StatusCode::OK)
}

async fn disconnect(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<NetworkConnectRequest>,
) -> ApiResult<StatusCode> {
    engine
        .containers
        .network_disconnect(&id, &req.container, req.force)
        .await?;
    Ok(StatusCode::OK)
}
