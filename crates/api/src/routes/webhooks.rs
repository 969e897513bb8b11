//! Webhook endpoints and events, for the merchant (and operations): register,
//! list, delete, rotate secrets; list events, see their deliveries, redeliver.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use settlement_wire::ProblemCode;
use uuid::Uuid;

use settlement_store::events::{self, DeliveryRow, EventRow};
use settlement_store::webhooks::{self, EndpointRow};

use crate::auth::Principal;
use crate::db::in_transaction;
use crate::error::ApiError;
use crate::events::EVENT_TYPES;
use crate::extract::{ApiPath, ApiQuery, JsonBody};
use crate::profile::existing_merchant;
use crate::state::AppState;
use crate::webhooks::target;
use crate::wire::{cursor_id, page, page_limit, timestamp, Page};

/// Most live endpoints one merchant may register.
pub const MAX_ENDPOINTS_PER_MERCHANT: i64 = 10;
/// Longest overlap during which the old secret still signs after a rotation.
pub const MAX_OVERLAP_HOURS: u32 = 168;
/// Overlap when the request names none.
pub const DEFAULT_OVERLAP_HOURS: u32 = 24;

/// A new endpoint secret: 256 bits from the operating system's random generator,
/// hex, with a recognisable prefix.
fn new_secret() -> Result<String, ApiError> {
    let mut bits = [0u8; 32];
    getrandom::fill(&mut bits)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("no random bits: {e}")))?;
    let mut secret = String::with_capacity(6 + 64);
    secret.push_str("whsec_");
    for byte in bits {
        secret.push_str(&format!("{byte:02x}"));
    }
    Ok(secret)
}

/// An endpoint as the API shows it; the secret only on creation and rotation.
#[derive(Debug, Serialize)]
pub struct EndpointView {
    pub id: Uuid,
    pub url: String,
    /// Empty: every event type.
    pub event_types: Vec<String>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Until when the previous secret still signs, during a rotation.
    pub previous_secret_expires_at: Option<String>,
}

/// Whether an endpoint's answer shows its secret: only when it was just made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SecretShown {
    /// On creation and rotation, once.
    Once,
    /// Everywhere else.
    Never,
}

impl EndpointView {
    fn from_row(e: &EndpointRow, secret: SecretShown) -> Self {
        EndpointView {
            id: e.id,
            url: e.url.clone(),
            event_types: e.event_types.clone(),
            created_at: timestamp(e.created_at),
            secret: (secret == SecretShown::Once).then(|| e.secret.clone()),
            previous_secret_expires_at: e
                .previous_secret_expires_at
                .filter(|until| *until > Utc::now())
                .map(timestamp),
        }
    }
}

/// `POST /v1/merchants/{merchant_id}/webhook-endpoints` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    pub url: String,
    #[serde(default)]
    pub event_types: Vec<String>,
}

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
    let req = body.parse::<CreateEndpoint>()?.value;
    let checked = target::parse(&req.url, state.webhook_reach)?;
    target::resolve(&checked, state.webhook_reach).await?;
    let mut event_types = req.event_types;
    event_types.sort();
    event_types.dedup();
    if let Some(unknown) = event_types
        .iter()
        .find(|t| !EVENT_TYPES.contains(&t.as_str()))
    {
        return Err(ApiError::field(
            "event_types",
            format!("{unknown:?} is not an event type"),
        ));
    }
    let row = EndpointRow {
        id: Uuid::now_v7(),
        merchant_id: merchant_id.clone(),
        url: req.url,
        event_types,
        secret: new_secret()?,
        previous_secret: None,
        previous_secret_expires_at: None,
        created_at: Utc::now(),
        deleted_at: None,
    };
    in_transaction!(&state.pool, |tx| {
        existing_merchant(&mut tx, &merchant_id).await?;
        settlement_store::locks::lock_merchant_endpoints(&mut tx, &merchant_id).await?;
        if webhooks::count_live_endpoints(&mut tx, &merchant_id).await?
            >= MAX_ENDPOINTS_PER_MERCHANT
        {
            return Err(ApiError::Conflict {
                code: ProblemCode::EndpointLimitReached,
                detail: format!(
                    "a merchant may have at most {MAX_ENDPOINTS_PER_MERCHANT} endpoints"
                ),
            });
        }
        webhooks::insert_endpoint(&mut tx, &row).await?;
    })?;
    Ok((
        StatusCode::CREATED,
        Json(EndpointView::from_row(&row, SecretShown::Once)),
    ))
}

/// The endpoint list.
#[derive(Debug, Serialize)]
pub struct EndpointList {
    pub data: Vec<EndpointView>,
}

/// `GET /v1/merchants/{merchant_id}/webhook-endpoints`: live endpoints, without secrets.
#[tracing::instrument(skip_all)]
pub async fn list_endpoints(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(merchant_id): ApiPath<String>,
) -> Result<Json<EndpointList>, ApiError> {
    principal.require_merchant(&merchant_id)?;
    let mut conn = state.pool.acquire().await?;
    existing_merchant(&mut conn, &merchant_id).await?;
    let rows = webhooks::list_live_endpoints(&mut conn, &merchant_id).await?;
    Ok(Json(EndpointList {
        data: rows
            .iter()
            .map(|e| EndpointView::from_row(e, SecretShown::Never))
            .collect(),
    }))
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
    in_transaction!(&state.pool, |tx| {
        webhooks::find_live_endpoint_for_update(&mut tx, &merchant_id, endpoint_id)
            .await?
            .ok_or(ApiError::NotFound("webhook endpoint"))?;
        webhooks::delete_endpoint(&mut tx, endpoint_id, Utc::now()).await?;
    })?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST .../webhook-endpoints/{endpoint_id}/rotate-secret` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    #[serde(default)]
    pub overlap_hours: Option<u32>,
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
        body.parse()?.value
    };
    let overlap = req.overlap_hours.unwrap_or(DEFAULT_OVERLAP_HOURS);
    if overlap > MAX_OVERLAP_HOURS {
        return Err(ApiError::field(
            "overlap_hours",
            format!("must be between 0 and {MAX_OVERLAP_HOURS}"),
        ));
    }
    let rotated = in_transaction!(&state.pool, |tx| {
        webhooks::find_live_endpoint_for_update(&mut tx, &merchant_id, endpoint_id)
            .await?
            .ok_or(ApiError::NotFound("webhook endpoint"))?;
        let until = Utc::now() + Duration::hours(i64::from(overlap));
        webhooks::rotate_secret(&mut tx, endpoint_id, &new_secret()?, until).await?
    })?;
    Ok(Json(EndpointView::from_row(&rotated, SecretShown::Once)))
}

/// An event as the API shows it (and as endpoints receive it).
#[derive(Debug, Serialize)]
pub struct EventView {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    pub created_at: String,
    pub merchant_id: String,
    pub data: Value,
}

impl From<&EventRow> for EventView {
    fn from(e: &EventRow) -> Self {
        EventView {
            id: e.id,
            event_type: e.event_type.clone(),
            created_at: timestamp(e.created_at),
            merchant_id: e.merchant_id.clone(),
            data: e.data.clone(),
        }
    }
}

/// Query of the event list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
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
    let limit = page_limit(q.limit)?;
    if let Some(t) = &q.event_type {
        if !EVENT_TYPES.contains(&t.as_str()) {
            return Err(ApiError::field("type", "is not an event type"));
        }
    }
    let mut conn = state.pool.acquire().await?;
    existing_merchant(&mut conn, &merchant_id).await?;
    let rows = events::list_events(
        &mut conn,
        &merchant_id,
        q.event_type.as_deref(),
        cursor_id(q.cursor.as_deref())?,
        limit + 1,
    )
    .await?;
    Ok(Json(page(
        rows,
        limit,
        |e| e.id.to_string(),
        |e| Ok::<_, ApiError>(EventView::from(e)),
    )?))
}

/// One attempt to deliver, as the API shows it; never the secret.
#[derive(Debug, Serialize)]
pub struct AttemptView {
    pub attempted_at: String,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
}

/// A delivery of an event to one endpoint.
#[derive(Debug, Serialize)]
pub struct DeliveryView {
    pub id: Uuid,
    pub event_id: Uuid,
    pub endpoint_id: Uuid,
    /// `pending`, `succeeded`, or `failed` (given up).
    pub status: String,
    pub attempt_count: i32,
    pub next_attempt_at: Option<String>,
    pub attempts: Vec<AttemptView>,
}

async fn delivery_view(
    conn: &mut sqlx::PgConnection,
    d: &DeliveryRow,
) -> Result<DeliveryView, ApiError> {
    let attempts = events::list_attempts(conn, d.id).await?;
    Ok(DeliveryView {
        id: d.id,
        event_id: d.event_id,
        endpoint_id: d.endpoint_id,
        status: d.status.clone(),
        attempt_count: d.attempts,
        next_attempt_at: (d.status == "pending").then(|| timestamp(d.next_attempt_at)),
        attempts: attempts
            .into_iter()
            .map(|a| AttemptView {
                attempted_at: timestamp(a.attempted_at),
                status_code: a.status_code,
                latency_ms: a.latency_ms,
                error: a.error,
            })
            .collect(),
    })
}

/// An event with its deliveries.
#[derive(Debug, Serialize)]
pub struct EventDetail {
    #[serde(flatten)]
    pub event: EventView,
    pub deliveries: Vec<DeliveryView>,
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
    let mut conn = state.pool.acquire().await?;
    let event = events::find_event(&mut conn, &merchant_id, event_id)
        .await?
        .ok_or(ApiError::NotFound("event"))?;
    let mut deliveries = Vec::new();
    for d in events::list_deliveries_of_event(&mut conn, event.id).await? {
        deliveries.push(delivery_view(&mut conn, &d).await?);
    }
    Ok(Json(EventDetail {
        event: EventView::from(&event),
        deliveries,
    }))
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
    let queued = in_transaction!(&state.pool, |tx| {
        let event = events::find_event(&mut tx, &merchant_id, event_id)
            .await?
            .ok_or(ApiError::NotFound("event"))?;
        events::redeliver_event(&mut tx, &event, Utc::now()).await?
    })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"event_id": event_id, "queued": queued})),
    ))
}

/// Query of the failed deliveries.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailedQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
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
    let limit = page_limit(q.limit)?;
    let mut conn = state.pool.acquire().await?;
    let rows =
        events::list_failed_deliveries(&mut conn, cursor_id(q.cursor.as_deref())?, limit + 1)
            .await?;
    // The shared pager decides the page; the views need the database, so they are
    // built afterwards.
    let rows = page(
        rows,
        limit,
        |d| d.id.to_string(),
        |d| Ok::<_, ApiError>(d.clone()),
    )?;
    let mut data = Vec::with_capacity(rows.data.len());
    for d in &rows.data {
        data.push(delivery_view(&mut conn, d).await?);
    }
    Ok(Json(Page {
        data,
        has_more: rows.has_more,
        next_cursor: rows.next_cursor,
    }))
}
