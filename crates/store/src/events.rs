//! The event outbox and its deliveries to webhook endpoints.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// An event row.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct EventRow {
    pub id: Uuid,
    pub merchant_id: String,
    #[sqlx(rename = "type")]
    pub event_type: String,
    pub created_at: DateTime<Utc>,
    pub data: Value,
    /// The W3C traceparent of what caused the event, when traces are exported.
    pub trace_parent: Option<String>,
}

/// Writes an event and one pending delivery to each live endpoint of the merchant
/// that wants its type, in the caller's transaction: the event exists exactly when
/// the change it describes commits.
pub async fn insert_event(conn: &mut PgConnection, e: &EventRow) -> Result<(), sqlx::Error> {
    insert_events(conn, std::slice::from_ref(e)).await
}

/// Writes events and their pending deliveries, one statement per table whatever
/// their number.
pub async fn insert_events(
    conn: &mut PgConnection,
    events: &[EventRow],
) -> Result<(), sqlx::Error> {
    let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    let merchants: Vec<&str> = events.iter().map(|e| e.merchant_id.as_str()).collect();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    let created: Vec<DateTime<Utc>> = events.iter().map(|e| e.created_at).collect();
    let data: Vec<&Value> = events.iter().map(|e| &e.data).collect();
    let trace_parents: Vec<Option<&str>> =
        events.iter().map(|e| e.trace_parent.as_deref()).collect();
    // One statement: the events, then their pending deliveries, one per live endpoint
    // of the merchant that takes the event's type (the foreign key is checked at the
    // end of the statement, when the events are there). `close::write_close` writes
    // an event's deliveries with the same statement.
    sqlx::query!(
        "WITH e AS ( \
             INSERT INTO events (id, merchant_id, type, created_at, data, trace_parent) \
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::jsonb[], $6::text[]) \
             RETURNING id, merchant_id, type, created_at) \
         INSERT INTO event_deliveries (id, event_id, endpoint_id, status, next_attempt_at, created_at) \
         SELECT uuid_v7(), e.id, w.id, 'pending', e.created_at, e.created_at \
         FROM e JOIN webhook_endpoints w ON w.merchant_id = e.merchant_id AND w.deleted_at IS NULL \
             AND (cardinality(w.event_types) = 0 OR e.type = ANY(w.event_types)) \
         ORDER BY e.id, w.id",
        &ids,
        &merchants as &[&str],
        &types as &[&str],
        &created,
        &data as &[&Value],
        &trace_parents as &[Option<&str>],
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A merchant's events newest first, of one type when given.
pub async fn list_events(
    conn: &mut PgConnection,
    merchant_id: &str,
    event_type: Option<&str>,
    before_id: Option<Uuid>,
    limit: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as!(
        EventRow,
        "SELECT id, merchant_id, type AS event_type, created_at, data, trace_parent FROM events \
         WHERE merchant_id = $1 AND ($2::text IS NULL OR type = $2) AND ($3::uuid IS NULL OR id < $3) \
         ORDER BY id DESC LIMIT $4",
        merchant_id,
        event_type,
        before_id,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// Finds an event of a merchant.
pub async fn find_event(
    conn: &mut PgConnection,
    merchant_id: &str,
    event_id: Uuid,
) -> Result<Option<EventRow>, sqlx::Error> {
    sqlx::query_as!(
        EventRow,
        "SELECT id, merchant_id, type AS event_type, created_at, data, trace_parent FROM events \
         WHERE merchant_id = $1 AND id = $2",
        merchant_id,
        event_id,
    )
    .fetch_optional(conn)
    .await
}

/// Finds an event by id.
pub async fn find_event_by_id(
    conn: &mut PgConnection,
    event_id: Uuid,
) -> Result<Option<EventRow>, sqlx::Error> {
    sqlx::query_as!(
        EventRow,
        "SELECT id, merchant_id, type AS event_type, created_at, data, trace_parent FROM events WHERE id = $1",
        event_id,
    )
    .fetch_optional(conn)
    .await
}

/// Where a delivery of an event to an endpoint stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Due for an attempt (again).
    Pending,
    /// The endpoint answered 2xx.
    Succeeded,
    /// Given up after its attempts, or its endpoint was deleted.
    Failed,
}

impl DeliveryStatus {
    /// The stable name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// The status of a stable name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(DeliveryStatus::Pending),
            "succeeded" => Some(DeliveryStatus::Succeeded),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

settlement_domain::text_column!(DeliveryStatus);

/// A delivery row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: Uuid,
    pub event_id: Uuid,
    pub endpoint_id: Uuid,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Claims up to `limit` due pending deliveries for `lease`: their next attempt moves
/// past the lease, so no other worker takes them while this one works, and a worker
/// that dies releases them when the lease ends. Rows other workers are claiming are
/// skipped, not waited for.
pub async fn claim_due_deliveries(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    sqlx::query_as!(
        DeliveryRow,
        "UPDATE event_deliveries SET next_attempt_at = $2 WHERE id IN ( \
             SELECT id FROM event_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
         RETURNING id, event_id, endpoint_id, status AS \"status: DeliveryStatus\", attempts, next_attempt_at, last_attempt_at, created_at",
        now,
        lease_until,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// The receiver accepted the event.
    Succeeded,
    /// It failed; tried again at the retry instant unless the attempt limit is reached.
    Failed,
    /// It failed and trying again cannot help (the endpoint is gone).
    FailedForGood,
}

/// Records one attempt of a claimed delivery and its new state: `succeeded`, `failed`
/// (for good, or the attempt limit reached) or `pending` again at `retry_at`. Only
/// while the claim still holds (the delivery is pending with the lease this worker
/// set): a delivery redelivered or reclaimed meanwhile is left as it is, and false is
/// returned. Run it in a transaction, so the attempt and the state commit together.
#[allow(clippy::too_many_arguments)]
pub async fn record_attempt(
    conn: &mut PgConnection,
    delivery_id: Uuid,
    claimed_until: DateTime<Utc>,
    attempt: &AttemptRow,
    result: AttemptResult,
    max_attempts: i32,
    retry_at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query!(
        "UPDATE event_deliveries SET \
             status = CASE WHEN $4 THEN 'succeeded' WHEN $5 OR attempts + 1 >= $6 THEN 'failed' ELSE 'pending' END, \
             attempts = attempts + 1, last_attempt_at = $3, \
             next_attempt_at = CASE WHEN $4 OR $5 OR attempts + 1 >= $6 THEN $3::timestamptz ELSE $7::timestamptz END \
         WHERE id = $1 AND status = 'pending' AND next_attempt_at = $2",
        delivery_id,
        claimed_until,
        attempt.attempted_at,
        result == AttemptResult::Succeeded,
        result == AttemptResult::FailedForGood,
        max_attempts,
        retry_at,
    )
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query!(
        "INSERT INTO delivery_attempts (delivery_id, attempted_at, status_code, latency_ms, error) \
         VALUES ($1, $2, $3, $4, $5)",
        delivery_id,
        attempt.attempted_at,
        attempt.status_code,
        attempt.latency_ms,
        attempt.error,
    )
    .execute(conn)
    .await?;
    Ok(true)
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AttemptRow {
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
}

/// The deliveries of an event.
pub async fn list_deliveries_of_event(
    conn: &mut PgConnection,
    event_id: Uuid,
) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    sqlx::query_as!(
        DeliveryRow,
        "SELECT id, event_id, endpoint_id, status AS \"status: DeliveryStatus\", attempts, next_attempt_at, last_attempt_at, created_at \
         FROM event_deliveries WHERE event_id = $1 ORDER BY id",
        event_id,
    )
    .fetch_all(conn)
    .await
}

/// The attempts of a delivery, in order.
pub async fn list_attempts(
    conn: &mut PgConnection,
    delivery_id: Uuid,
) -> Result<Vec<AttemptRow>, sqlx::Error> {
    sqlx::query_as!(
        AttemptRow,
        "SELECT attempted_at, status_code, latency_ms, error FROM delivery_attempts WHERE delivery_id = $1 ORDER BY id",
        delivery_id,
    )
    .fetch_all(conn)
    .await
}

/// Queues an event again: every delivery to a live endpoint goes back to pending
/// now with a fresh attempt count, and live endpoints that want the event but never
/// had it get a delivery. Returns how many deliveries are queued.
pub async fn redeliver_event(
    conn: &mut PgConnection,
    e: &EventRow,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let reset = sqlx::query!(
        "UPDATE event_deliveries d SET status = 'pending', attempts = 0, next_attempt_at = $2 \
         FROM webhook_endpoints w WHERE d.event_id = $1 AND w.id = d.endpoint_id AND w.deleted_at IS NULL",
        e.id,
        now,
    )
    .execute(&mut *conn)
    .await?;
    let added = sqlx::query!(
        "INSERT INTO event_deliveries (id, event_id, endpoint_id, status, next_attempt_at, created_at) \
         SELECT uuid_v7(), $1, w.id, 'pending', $3, $3 FROM webhook_endpoints w \
         WHERE w.merchant_id = $2 AND w.deleted_at IS NULL \
           AND (cardinality(w.event_types) = 0 OR $4 = ANY(w.event_types)) \
         ON CONFLICT ON CONSTRAINT event_deliveries_once DO NOTHING",
        e.id,
        e.merchant_id,
        now,
        e.event_type,
    )
    .execute(conn)
    .await?;
    Ok(reset.rows_affected() + added.rows_affected())
}

/// Deliveries that were given up, newest first (for operations).
pub async fn list_failed_deliveries(
    conn: &mut PgConnection,
    before_id: Option<Uuid>,
    limit: i64,
) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    sqlx::query_as!(
        DeliveryRow,
        "SELECT id, event_id, endpoint_id, status AS \"status: DeliveryStatus\", attempts, next_attempt_at, last_attempt_at, created_at \
         FROM event_deliveries WHERE status = 'failed' AND ($1::uuid IS NULL OR id < $1) \
         ORDER BY id DESC LIMIT $2",
        before_id,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// How many deliveries are due now, and when the oldest of them became due.
pub async fn due_backlog(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
) -> Result<(i64, Option<DateTime<Utc>>), sqlx::Error> {
    let backlog = sqlx::query!(
        "SELECT count(*) AS \"due!\", min(next_attempt_at) AS oldest \
         FROM event_deliveries WHERE status = 'pending' AND next_attempt_at <= $1",
        now,
    )
    .fetch_one(conn)
    .await?;
    Ok((backlog.due, backlog.oldest))
}

/// How many of a merchant's deliveries were given up since `since`.
pub async fn count_failed_deliveries_of_merchant(
    conn: &mut PgConnection,
    merchant_id: &str,
    since: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT count(*) AS \"count!\" FROM event_deliveries d JOIN events e ON e.id = d.event_id \
         WHERE e.merchant_id = $1 AND d.status = 'failed' AND d.created_at >= $2",
        merchant_id,
        since,
    )
    .fetch_one(conn)
    .await
}
