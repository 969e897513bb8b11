//! The audit trail and the ledger's self-check, for operations (engine::audit).

use axum::extract::State;
use axum::Json;

use settlement_wire::audit::{AuditQuery, AuditView, LedgerCheckView};
use settlement_wire::Page;

use crate::audit;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::state::AppState;

/// `GET /v1/ops/audit`: operator actions, newest first.
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    query: ApiQuery<AuditQuery>,
) -> Result<Json<Page<AuditView>>, ApiError> {
    principal.require_ops()?;
    let q = query.get()?;
    Ok(Json(audit::list_records(&state.pool, &q).await?))
}

/// `GET /v1/ops/ledger/check`: runs the ledger's invariants in one snapshot.
#[tracing::instrument(skip_all)]
pub async fn ledger_check(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<LedgerCheckView>, ApiError> {
    principal.require_ops()?;
    Ok(Json(audit::ledger_check(&state.pool).await?))
}
