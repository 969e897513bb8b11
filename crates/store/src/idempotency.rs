//! Idempotency keys of terminal requests.

use serde_json::Value;
use sqlx::PgConnection;

/// What a key already holds.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredKey {
    pub request_hash: Vec<u8>,
    pub response_status: Option<i32>,
    pub response_body: Option<Value>,
}

/// Stores a key with the response to replay for every retry. The caller holds the
/// terminal's close lock and found no key: a key being stored by a transaction not
/// yet committed (no close of this terminal can be) waits for it and then conflicts.
pub async fn store_key(
    conn: &mut PgConnection,
    terminal_id: &str,
    key: &str,
    request_hash: &[u8],
    status: u16,
    body: &Value,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO idempotency_keys (terminal_id, idempotency_key, request_hash, \
             response_status, response_body) VALUES ($1, $2, $3, $4, $5)",
        terminal_id,
        key,
        request_hash,
        i32::from(status),
        body,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes at most `limit` keys created before `before` (past their retention);
/// returns how many.
pub async fn purge_keys_created_before(
    conn: &mut PgConnection,
    before: chrono::DateTime<chrono::Utc>,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY( \
             SELECT ctid FROM idempotency_keys WHERE created_at < $1 LIMIT $2))",
        before,
        limit,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
