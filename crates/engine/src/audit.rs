//! Writing the audit trail of operator actions.

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use settlement_store::audit::{insert_audit_record, AuditRow};

use crate::error::EngineError;

/// One operator action to record.
pub struct Action<'a> {
    /// Who acted: the token's subject.
    pub actor: &'a str,
    /// What was done (`batch.accept`, `payout.paid`...).
    pub action: &'a str,
    /// The kind of object acted on.
    pub object_type: &'a str,
    /// Its id.
    pub object_id: String,
    /// The operator's reason, when one was given.
    pub reason: Option<&'a str>,
    /// The object before and after.
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// Records an action in the caller's transaction.
pub async fn record(conn: &mut PgConnection, a: Action<'_>) -> Result<(), EngineError> {
    insert_audit_record(
        conn,
        &AuditRow {
            id: Uuid::now_v7(),
            actor: a.actor.to_owned(),
            action: a.action.to_owned(),
            object_type: a.object_type.to_owned(),
            object_id: a.object_id,
            reason: a.reason.map(str::to_owned),
            before: a.before,
            after: a.after,
            created_at: chrono::Utc::now(),
        },
    )
    .await?;
    Ok(())
}

/// Longest reason an operator may give.
pub const MAX_REASON_LEN: usize = 1_000;

/// Checks a required reason: 1 to 1,000 characters, not blank.
pub fn check_reason(reason: &str) -> Result<&str, EngineError> {
    let trimmed = reason.trim();
    if trimmed.is_empty() || reason.chars().count() > MAX_REASON_LEN {
        return Err(EngineError::field(
            "reason",
            format!("must be 1 to {MAX_REASON_LEN} characters"),
        ));
    }
    Ok(trimmed)
}
