//! Closes that booked nothing, and the exceptions list operations work from.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// Records an out-of-balance close with the totals that differed.
pub async fn insert_out_of_balance_attempt(
    conn: &mut PgConnection,
    terminal_id: &str,
    merchant_id: &str,
    batch_number: i32,
    currency: &str,
    differences: &Value,
    received_at: DateTime<Utc>,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO close_attempts (id, terminal_id, merchant_id, batch_number, currency, outcome, differences, received_at) \
         VALUES ($1, $2, $3, $4, $5, 'out_of_balance', $6, $7)",
    )
    .bind(id)
    .bind(terminal_id)
    .bind(merchant_id)
    .bind(batch_number)
    .bind(currency)
    .bind(differences)
    .bind(received_at)
    .execute(conn)
    .await?;
    Ok(id)
}

/// One item of the exceptions list: a batch rejected outside grace, or an
/// out-of-balance close.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExceptionRow {
    pub id: Uuid,
    pub kind: String,
    pub terminal_id: String,
    pub merchant_id: String,
    pub batch_number: i32,
    pub currency: String,
    pub received_at: DateTime<Utc>,
    pub grace_deadline: Option<DateTime<Utc>>,
    pub net_amount_minor: Option<i64>,
    pub differences: Option<Value>,
}

/// Exceptions newest first, older than `before_id` when given, at most `limit`.
pub async fn list_exceptions(
    conn: &mut PgConnection,
    before_id: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ExceptionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM ( \
            SELECT id, 'rejected_outside_grace' AS kind, terminal_id, merchant_id, batch_number, \
                   currency::text AS currency, received_at, grace_deadline, net_amount_minor, NULL::jsonb AS differences \
            FROM batches WHERE status = 'rejected_outside_grace' AND ($1::uuid IS NULL OR id < $1) \
            UNION ALL \
            SELECT id, outcome, terminal_id, merchant_id, batch_number, currency::text, received_at, \
                   NULL, NULL, differences \
            FROM close_attempts WHERE ($1::uuid IS NULL OR id < $1) \
         ) e ORDER BY id DESC LIMIT $2",
    )
    .bind(before_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}
