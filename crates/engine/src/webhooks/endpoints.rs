//! A merchant's webhook endpoints and events: register, list, delete, rotate
//! secrets; list events, read their deliveries, deliver again; and the deliveries
//! given up, for operations.

use chrono::{Duration, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use settlement_store::events::{self, DeliveryRow, DeliveryStatus, EventRow};
use settlement_store::webhooks::{self, EndpointRow};
use settlement_wire::webhooks::{
    AttemptView, CreateEndpoint, DeliveryView, EndpointList, EndpointView, EventDetail, EventQuery,
    EventView, FailedQuery, RotateSecret,
};
use settlement_wire::{Page, ProblemCode};

use crate::db::in_transaction;
use crate::error::EngineError;
use crate::events::EVENT_TYPES;
use crate::profile::existing_merchant;
use crate::views::{cursor_id, page, page_limit, timestamp, FromRow};
use crate::webhooks::target::{self, Reach};

/// Most live endpoints one merchant may register.
pub const MAX_ENDPOINTS_PER_MERCHANT: i64 = 10;
/// Longest overlap during which the old secret still signs after a rotation.
pub const MAX_OVERLAP_HOURS: u32 = 168;
/// Overlap when the request names none.
pub const DEFAULT_OVERLAP_HOURS: u32 = 24;

/// A new endpoint secret: 256 bits from the operating system's random generator,
/// hex, with a recognisable prefix.
fn new_secret() -> Result<String, EngineError> {
    let mut bits = [0u8; 32];
    getrandom::fill(&mut bits)
        .map_err(|e| EngineError::Internal(anyhow::anyhow!("no random bits: {e}")))?;
    let mut secret = String::with_capacity(6 + 64);
    secret.push_str("whsec_");
    for byte in bits {
        secret.push_str(&format!("{byte:02x}"));
    }
    Ok(secret)
}

/// Whether an endpoint's answer shows its secret: only when it was just made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SecretShown {
    /// On creation and rotation, once.
    Once,
    /// Everywhere else.
    Never,
}

/// The view of a stored endpoint, with its secret only when it was just made.
fn endpoint_view(e: &EndpointRow, secret: SecretShown) -> EndpointView {
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

/// Registers an endpoint. The URL must be https to a public address (unless `reach`
/// allows local ones); the answer carries the signing secret, shown this once.
pub async fn create_endpoint(
    pool: &PgPool,
    reach: Reach,
    merchant_id: &str,
    req: CreateEndpoint,
) -> Result<EndpointView, EngineError> {
    let checked = target::parse(&req.url, reach)?;
    target::resolve(&checked, reach).await?;
    let mut event_types = req.event_types;
    event_types.sort();
    event_types.dedup();
    if let Some(unknown) = event_types
        .iter()
        .find(|t| !EVENT_TYPES.contains(&t.as_str()))
    {
        return Err(EngineError::field(
            "event_types",
            format!("{unknown:?} is not an event type"),
        ));
    }
    let row = EndpointRow {
        id: Uuid::now_v7(),
        merchant_id: merchant_id.to_owned(),
        url: req.url,
        event_types,
        secret: new_secret()?,
        previous_secret: None,
        previous_secret_expires_at: None,
        created_at: Utc::now(),
        deleted_at: None,
    };
    in_transaction!(pool, |tx| {
        existing_merchant(&mut tx, merchant_id).await?;
        settlement_store::locks::lock_merchant_endpoints(&mut tx, merchant_id).await?;
        if webhooks::count_live_endpoints(&mut tx, merchant_id).await? >= MAX_ENDPOINTS_PER_MERCHANT
        {
            return Err(EngineError::Conflict {
                code: ProblemCode::EndpointLimitReached,
                detail: format!(
                    "a merchant may have at most {MAX_ENDPOINTS_PER_MERCHANT} endpoints"
                ),
            });
        }
        webhooks::insert_endpoint(&mut tx, &row).await?;
    })?;
    Ok(endpoint_view(&row, SecretShown::Once))
}

/// A merchant's live endpoints, without secrets.
pub async fn list_endpoints(pool: &PgPool, merchant_id: &str) -> Result<EndpointList, EngineError> {
    let mut conn = pool.acquire().await?;
    existing_merchant(&mut conn, merchant_id).await?;
    let rows = webhooks::list_live_endpoints(&mut conn, merchant_id).await?;
    Ok(EndpointList {
        data: rows
            .iter()
            .map(|e| endpoint_view(e, SecretShown::Never))
            .collect(),
    })
}

/// Stops deliveries to an endpoint; its pending deliveries are failed.
pub async fn delete_endpoint(
    pool: &PgPool,
    merchant_id: &str,
    endpoint_id: Uuid,
) -> Result<(), EngineError> {
    in_transaction!(pool, |tx| {
        webhooks::find_live_endpoint_for_update(&mut tx, merchant_id, endpoint_id)
            .await?
            .ok_or(EngineError::NotFound("webhook endpoint"))?;
        webhooks::delete_endpoint(&mut tx, endpoint_id, Utc::now()).await?;
    })
}

/// A new secret, shown once; the old one keeps signing beside it for the overlap
/// (default 24 hours), so receivers can switch without losing an event.
pub async fn rotate_secret(
    pool: &PgPool,
    merchant_id: &str,
    endpoint_id: Uuid,
    req: RotateSecret,
) -> Result<EndpointView, EngineError> {
    let overlap = req.overlap_hours.unwrap_or(DEFAULT_OVERLAP_HOURS);
    if overlap > MAX_OVERLAP_HOURS {
        return Err(EngineError::field(
            "overlap_hours",
            format!("must be between 0 and {MAX_OVERLAP_HOURS}"),
        ));
    }
    let rotated = in_transaction!(pool, |tx| {
        webhooks::find_live_endpoint_for_update(&mut tx, merchant_id, endpoint_id)
            .await?
            .ok_or(EngineError::NotFound("webhook endpoint"))?;
        let until = Utc::now() + Duration::hours(i64::from(overlap));
        webhooks::rotate_secret(&mut tx, endpoint_id, &new_secret()?, until).await?
    })?;
    Ok(endpoint_view(&rotated, SecretShown::Once))
}

impl FromRow<EventRow> for EventView {
    fn from_row(e: &EventRow) -> Result<Self, EngineError> {
        Ok(EventView {
            id: e.id,
            event_type: e.event_type.clone(),
            created_at: timestamp(e.created_at),
            merchant_id: e.merchant_id.clone(),
            data: e.data.clone(),
        })
    }
}

/// A merchant's events, newest first, of one type when asked.
pub async fn list_events(
    pool: &PgPool,
    merchant_id: &str,
    q: &EventQuery,
) -> Result<Page<EventView>, EngineError> {
    let limit = page_limit(q.limit)?;
    if let Some(t) = &q.event_type {
        if !EVENT_TYPES.contains(&t.as_str()) {
            return Err(EngineError::field("type", "is not an event type"));
        }
    }
    let mut conn = pool.acquire().await?;
    existing_merchant(&mut conn, merchant_id).await?;
    let rows = events::list_events(
        &mut conn,
        merchant_id,
        q.event_type.as_deref(),
        cursor_id(q.cursor.as_deref())?,
        limit + 1,
    )
    .await?;
    page(rows, limit, |e| e.id.to_string(), EventView::from_row)
}

async fn delivery_view(
    conn: &mut PgConnection,
    d: &DeliveryRow,
) -> Result<DeliveryView, EngineError> {
    let attempts = events::list_attempts(conn, d.id).await?;
    Ok(DeliveryView {
        id: d.id,
        event_id: d.event_id,
        endpoint_id: d.endpoint_id,
        status: d.status.as_str().to_owned(),
        attempt_count: d.attempts,
        next_attempt_at: (d.status == DeliveryStatus::Pending)
            .then(|| timestamp(d.next_attempt_at)),
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

/// A merchant's event and every attempt to deliver it.
pub async fn event_detail(
    pool: &PgPool,
    merchant_id: &str,
    event_id: Uuid,
) -> Result<EventDetail, EngineError> {
    let mut conn = pool.acquire().await?;
    let event = events::find_event(&mut conn, merchant_id, event_id)
        .await?
        .ok_or(EngineError::NotFound("event"))?;
    let mut deliveries = Vec::new();
    for d in events::list_deliveries_of_event(&mut conn, event.id).await? {
        deliveries.push(delivery_view(&mut conn, &d).await?);
    }
    Ok(EventDetail {
        event: EventView::from_row(&event)?,
        deliveries,
    })
}

/// Queues a merchant's event again to every live endpoint that wants it, with a
/// fresh attempt count; returns how many deliveries were queued.
pub async fn redeliver(
    pool: &PgPool,
    merchant_id: &str,
    event_id: Uuid,
) -> Result<u64, EngineError> {
    in_transaction!(pool, |tx| {
        let event = events::find_event(&mut tx, merchant_id, event_id)
            .await?
            .ok_or(EngineError::NotFound("event"))?;
        events::redeliver_event(&mut tx, &event, Utc::now()).await?
    })
}

/// Deliveries given up, newest first, for operations.
pub async fn failed_deliveries(
    pool: &PgPool,
    q: &FailedQuery,
) -> Result<Page<DeliveryView>, EngineError> {
    let limit = page_limit(q.limit)?;
    let mut conn = pool.acquire().await?;
    let rows =
        events::list_failed_deliveries(&mut conn, cursor_id(q.cursor.as_deref())?, limit + 1)
            .await?;
    // The shared pager decides the page; the views need the database, so they are
    // built afterwards.
    let rows = page(
        rows,
        limit,
        |d| d.id.to_string(),
        |d| Ok::<_, EngineError>(d.clone()),
    )?;
    let mut data = Vec::with_capacity(rows.data.len());
    for d in &rows.data {
        data.push(delivery_view(&mut conn, d).await?);
    }
    Ok(Page {
        data,
        has_more: rows.has_more,
        next_cursor: rows.next_cursor,
    })
}
