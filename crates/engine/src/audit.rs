//! Writing the audit trail of operator actions.

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use settlement_store::audit::{insert_audit_record, AuditRow};
use settlement_wire::audit::{AuditView, CheckView, LedgerCheckView};
use settlement_wire::Page;

use crate::error::EngineError;
use crate::views::FromRow;

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

impl FromRow<AuditRow> for AuditView {
    fn from_row(r: &AuditRow) -> Result<Self, EngineError> {
        Ok(AuditView {
            id: r.id,
            actor: r.actor.clone(),
            action: r.action.clone(),
            object_type: r.object_type.clone(),
            object_id: r.object_id.clone(),
            reason: r.reason.clone(),
            before: r.before.clone(),
            after: r.after.clone(),
            created_at: crate::views::timestamp(r.created_at),
        })
    }
}

/// Operator actions, newest first.
pub async fn list_records(
    pool: &sqlx::PgPool,
    q: &settlement_wire::audit::AuditQuery,
) -> Result<Page<AuditView>, EngineError> {
    let limit = crate::views::page_limit(q.limit)?;
    let mut conn = pool.acquire().await?;
    let rows = settlement_store::audit::list_audit_records(
        &mut conn,
        crate::views::cursor_id(q.cursor.as_deref())?,
        limit + 1,
    )
    .await?;
    crate::views::page(rows, limit, |r| r.id.to_string(), AuditView::from_row)
}

/// Runs the ledger's invariants, all in one snapshot so they agree with each other.
pub async fn ledger_check(pool: &sqlx::PgPool) -> Result<LedgerCheckView, EngineError> {
    let mut tx = crate::db::begin_snapshot_read(pool, crate::db::Plans::Chosen).await?;
    let results = settlement_store::checks::run_ledger_checks(&mut tx).await?;
    tx.commit().await?;
    let checks: Vec<CheckView> = results
        .into_iter()
        .map(|r| CheckView {
            name: r.name.to_owned(),
            description: r.description.to_owned(),
            ok: r.violations == 0,
            violations: r.violations,
        })
        .collect();
    Ok(LedgerCheckView {
        ok: checks.iter().all(|c| c.ok),
        checks,
    })
}
