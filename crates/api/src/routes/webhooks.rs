//! Webhook endpoints and events, for the merchant (and operations): register,
//! list, delete, rotate secrets; list events, see their deliveries, redeliver. The
//! use cases are the engine's (`webhooks::endpoints`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::Value;
use uuid::Uuid;

use settlement_wire::webhooks::{
    CreateEndpoint, DeliveryView, EndpointList, EndpointView, EventDetail, EventQuery, EventView,
    FailedQuery, RotateSecret,
};
use settlement_wire::Page;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, JsonBody};
use crate::state::AppState;
use crate::webhooks::endpoints;

/// `POST /v1/merchants/{merchant_id}/webhook-endpoints`: registers an endpoint. The
/// URL must be https to a public address; the answer carries the signing secret,
/// shown this once.
#[tracing::instrument(skip_all)]
pub async fn create_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(merchant_id): ApiPath<String>,
    body: JsonBody,
) -> Result<(StatusCode, Json<EndpointView>), ApiError> {
    principal.require_merchant(&merchant_id)?;
    let req = body.parse::<CreateEndpoint>()?;
    let view =
        endpoints::create_endpoint(&state.pool, state.webhook_reach, &merchant_id, req).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// `GET /v1/merchants/{merchant_id}/webhook-endpoints`: live endpoints, without secrets.
#[tracing::instrument(skip_all)]
pub async fn list_endpoints(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(merchant_id): ApiPath<String>,
) -> Result<Json<EndpointList>, ApiError> {
    principal.require_merchant(&merchant_id)?;
    Ok(Json(
        endpoints::list_endpoints(&state.pool, &merchant_id).await?,
    ))
}

/// `DELETE /v1/merchants/{merchant_id}/webhook-endpoints/{endpoint_id}`: stops
/// deliveries to it; its pending deliveries are failed.
#[tracing::instrument(skip_all)]
pub async fn delete_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((merchant_id, endpoint_id)): ApiPath<(String, Uuid)>,
) -> Result<StatusCode, ApiError> {
    principal.require_merchant(&merchant_id)?;
    endpoints::delete_endpoint(&state.pool, &merchant_id, endpoint_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/merchants/{merchant_id}/webhook-endpoints/{endpoint_id}/rotate-secret`:
/// a new secret, shown once; the old one keeps signing beside it for the overlap
/// (default 24 hours), so receivers can switch without losing an event.
#[tracing::instrument(skip_all)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((merchant_id, endpoint_id)): ApiPath<(String, Uuid)>,
    body: JsonBody,
) -> Result<Json<EndpointView>, ApiError> {
    principal.require_merchant(&merchant_id)?;
    let req: RotateSecret = if body.is_empty() {
        RotateSecret::default()
    } else {
        body.parse()?
    };
    Ok(Json(
        endpoints::rotate_secret(&state.pool, &merchant_id, endpoint_id, req).await?,
    ))
}

/// `GET /v1/merchants/{merchant_id}/events`: newest first.
#[tracing::instrument(skip_all)]
pub async fn list_events(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(merchant_id): ApiPath<String>,
    query: ApiQuery<EventQuery>,
) -> Result<Json<Page<EventView>>, ApiError> {
    principal.require_merchant(&merchant_id)?;
    let q = query.get()?;
    Ok(Json(
        endpoints::list_events(&state.pool, &merchant_id, &q).await?,
    ))
}

/// `GET /v1/merchants/{merchant_id}/events/{event_id}`: the event and every attempt to
/// deliver it.
#[tracing::instrument(skip_all)]
pub async fn get_event(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((merchant_id, event_id)): ApiPath<(String, Uuid)>,
) -> Result<Json<EventDetail>, ApiError> {
    principal.require_merchant(&merchant_id)?;
    Ok(Json(
        endpoints::event_detail(&state.pool, &merchant_id, event_id).await?,
    ))
}

/// `POST /v1/merchants/{merchant_id}/events/{event_id}/redeliver`: queues the event
/// again to every live endpoint that wants it, with a fresh attempt count.
#[tracing::instrument(skip_all)]
pub async fn redeliver(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((merchant_id, event_id)): ApiPath<(String, Uuid)>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    principal.require_merchant(&merchant_id)?;
    let queued = endpoints::redeliver(&state.pool, &merchant_id, event_id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"event_id": event_id, "queued": queued})),
    ))
}

/// `GET /v1/ops/webhook-deliveries/failed`: deliveries given up, newest first.
#[tracing::instrument(skip_all)]
pub async fn list_failed(
    State(state): State<AppState>,
    principal: Principal,
    query: ApiQuery<FailedQuery>,
) -> Result<Json<Page<DeliveryView>>, ApiError> {
    principal.require_ops()?;
    let q = query.get()?;
    Ok(Json(endpoints::failed_deliveries(&state.pool, &q).await?))
}
