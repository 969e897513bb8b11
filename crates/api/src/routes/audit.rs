//! The audit trail and the ledger's self-check, for operations.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use settlement_store::audit::{list_audit_records, AuditRow};
use settlement_store::checks::run_ledger_checks;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::state::AppState;
use crate::wire::{cursor_id, page, page_limit, timestamp, Page};

/// Query of the audit list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// An audit record as the API shows it.
#[derive(Debug, Serialize)]
pub struct AuditView {
    pub id: Uuid,
    pub actor: String,
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub reason: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub created_at: String,
}

impl From<&AuditRow> for AuditView {
    fn from(r: &AuditRow) -> Self {
        AuditView {
            id: r.id,
            actor: r.actor.clone(),
            action: r.action.clone(),
            object_type: r.object_type.clone(),
            object_id: r.object_id.clone(),
            reason: r.reason.clone(),
            before: r.before.clone(),
            after: r.after.clone(),
            created_at: timestamp(r.created_at),
        }
    }
}

/// `GET /v1/ops/audit`: operator actions, newest first.
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    query: ApiQuery<AuditQuery>,
) -> Result<Json<Page<AuditView>>, ApiError> {
    principal.require_ops()?;
    let q = query.get()?;
    let limit = page_limit(q.limit)?;
    let mut conn = state.pool.acquire().await?;
    let rows = list_audit_records(&mut conn, cursor_id(q.cursor.as_deref())?, limit + 1).await?;
    Ok(Json(page(
        rows,
        limit,
        |r| r.id.to_string(),
        |r| Ok::<_, ApiError>(AuditView::from(r)),
    )?))
}

/// One invariant's result.
#[derive(Debug, Serialize)]
pub struct CheckView {
    pub name: &'static str,
    pub description: &'static str,
    pub ok: bool,
    pub violations: i64,
}

/// The ledger check's answer.
#[derive(Debug, Serialize)]
pub struct LedgerCheckView {
    pub ok: bool,
    pub checks: Vec<CheckView>,
}

/// `GET /v1/ops/ledger/check`: runs the ledger's invariants in one snapshot.
#[tracing::instrument(skip_all)]
pub async fn ledger_check(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<LedgerCheckView>, ApiError> {
    principal.require_ops()?;
    // One snapshot for every check, so they agree with each other.
    let mut tx = crate::db::begin_snapshot_read(&state.pool, crate::db::Plans::Chosen).await?;
    let results = run_ledger_checks(&mut tx).await?;
    tx.commit().await?;
    let checks: Vec<CheckView> = results
        .into_iter()
        .map(|r| CheckView {
            name: r.name,
            description: r.description,
            ok: r.violations == 0,
            violations: r.violations,
        })
        .collect();
    Ok(Json(LedgerCheckView {
        ok: checks.iter().all(|c| c.ok),
        checks,
    }))
}
