//! Merchants' webhook endpoints.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// A webhook endpoint row. Secrets are only ever shown once, on creation or rotation.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EndpointRow {
    pub id: Uuid,
    pub merchant_id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// Number of live endpoints of a merchant.
pub async fn count_live_endpoints(
    conn: &mut PgConnection,
    merchant_id: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT count(*) AS \"count!\" FROM webhook_endpoints WHERE merchant_id = $1 AND deleted_at IS NULL",
        merchant_id,
    )
    .fetch_one(conn)
    .await
}

/// Inserts an endpoint.
pub async fn insert_endpoint(conn: &mut PgConnection, e: &EndpointRow) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO webhook_endpoints (id, merchant_id, url, event_types, secret, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        e.id,
        e.merchant_id,
        e.url,
        &e.event_types,
        e.secret,
        e.created_at,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A merchant's live endpoints, oldest first.
pub async fn list_live_endpoints(
    conn: &mut PgConnection,
    merchant_id: &str,
) -> Result<Vec<EndpointRow>, sqlx::Error> {
    sqlx::query_as!(
        EndpointRow,
        "SELECT id, merchant_id, url, event_types, secret, previous_secret, \
             previous_secret_expires_at, created_at, deleted_at \
         FROM webhook_endpoints WHERE merchant_id = $1 AND deleted_at IS NULL ORDER BY id",
        merchant_id,
    )
    .fetch_all(conn)
    .await
}

/// Finds a live endpoint of a merchant and locks it.
pub async fn find_live_endpoint_for_update(
    conn: &mut PgConnection,
    merchant_id: &str,
    endpoint_id: Uuid,
) -> Result<Option<EndpointRow>, sqlx::Error> {
    sqlx::query_as!(
        EndpointRow,
        "SELECT id, merchant_id, url, event_types, secret, previous_secret, \
             previous_secret_expires_at, created_at, deleted_at \
         FROM webhook_endpoints WHERE merchant_id = $1 AND id = $2 AND deleted_at IS NULL FOR UPDATE",
        merchant_id,
        endpoint_id,
    )
    .fetch_optional(conn)
    .await
}

/// Finds an endpoint by id, live or not (for deliveries in flight).
pub async fn find_endpoint(
    conn: &mut PgConnection,
    endpoint_id: Uuid,
) -> Result<Option<EndpointRow>, sqlx::Error> {
    sqlx::query_as!(
        EndpointRow,
        "SELECT id, merchant_id, url, event_types, secret, previous_secret, \
             previous_secret_expires_at, created_at, deleted_at \
         FROM webhook_endpoints WHERE id = $1",
        endpoint_id,
    )
    .fetch_optional(conn)
    .await
}

/// Deletes an endpoint (kept for the record of its deliveries) and fails its
/// pending deliveries.
pub async fn delete_endpoint(
    conn: &mut PgConnection,
    endpoint_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE webhook_endpoints SET deleted_at = $2 WHERE id = $1",
        endpoint_id,
        now,
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE event_deliveries SET status = 'failed' WHERE endpoint_id = $1 AND status = 'pending'",
        endpoint_id,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces an endpoint's secret; the old one keeps signing until `overlap_until`.
pub async fn rotate_secret(
    conn: &mut PgConnection,
    endpoint_id: Uuid,
    new_secret: &str,
    overlap_until: DateTime<Utc>,
) -> Result<EndpointRow, sqlx::Error> {
    sqlx::query_as!(
        EndpointRow,
        "UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_expires_at = $3, secret = $2 \
         WHERE id = $1 \
         RETURNING id, merchant_id, url, event_types, secret, previous_secret, \
             previous_secret_expires_at, created_at, deleted_at",
        endpoint_id,
        new_secret,
        overlap_until,
    )
    .fetch_one(conn)
    .await
}
