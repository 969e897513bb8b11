//! The audit trail of operator actions. Append-only: the database refuses changes.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// An audit record.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AuditRow {
    pub id: Uuid,
    pub actor: String,
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub reason: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub created_at: DateTime<Utc>,
}

/// Writes an audit record in the caller's transaction, so it exists exactly when
/// the action it describes committed.
pub async fn insert_audit_record(conn: &mut PgConnection, r: &AuditRow) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO audit_records (id, actor, action, object_type, object_id, reason, before, after, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        r.id,
        r.actor,
        r.action,
        r.object_type,
        r.object_id,
        r.reason,
        r.before,
        r.after,
        r.created_at,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Audit records newest first, older than `before_id` when given.
pub async fn list_audit_records(
    conn: &mut PgConnection,
    before_id: Option<Uuid>,
    limit: i64,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    sqlx::query_as!(
        AuditRow,
        "SELECT id, actor, action, object_type, object_id, reason, before, after, created_at FROM audit_records \
         WHERE ($1::uuid IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
        before_id,
        limit,
    )
    .fetch_all(conn)
    .await
}
