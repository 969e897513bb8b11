//! A merchant's settlements (closed cycles) and payouts, each with what it holds. The
//! read model is the engine's (`money`).

use axum::extract::State;
use axum::Json;
use uuid::Uuid;

use settlement_wire::money::{
    CycleView, ListQuery, PayoutDetail, PayoutQuery, PayoutView, SettlementDetail,
};
use settlement_wire::Page;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::language::Language;
use crate::money::{self, PayoutScope};
use crate::state::AppState;

/// `GET /v1/merchants/{merchant_id}/settlements`: closed cycles, newest first.
#[tracing::instrument(skip_all)]
pub async fn list_settlements(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(merchant_id): ApiPath<String>,
    query: ApiQuery<ListQuery>,
) -> Result<Json<Page<CycleView>>, ApiError> {
    principal.require_merchant(&merchant_id)?;
    let q = query.get()?;
    Ok(Json(
        money::list_settlements(&state.pool, &merchant_id, &q).await?,
    ))
}

/// `GET /v1/merchants/{merchant_id}/settlements/{cycle_id}`
#[tracing::instrument(skip_all)]
pub async fn get_settlement(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((merchant_id, cycle_id)): ApiPath<(String, Uuid)>,
    lang: Language,
) -> Result<Json<SettlementDetail>, ApiError> {
    principal.require_merchant(&merchant_id)?;
    Ok(Json(
        money::settlement_detail(&state.pool, &merchant_id, cycle_id, &lang).await?,
    ))
}

/// `GET /v1/merchants/{merchant_id}/payouts`: newest first.
#[tracing::instrument(skip_all)]
pub async fn list_payouts(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(merchant_id): ApiPath<String>,
    query: ApiQuery<PayoutQuery>,
    lang: Language,
) -> Result<Json<Page<PayoutView>>, ApiError> {
    principal.require_merchant(&merchant_id)?;
    let q = query.get()?;
    Ok(Json(
        money::list_payouts(
            &state.pool,
            PayoutScope::Merchant(&merchant_id),
            q.status,
            q.limit,
            q.cursor.as_deref(),
            &lang,
        )
        .await?,
    ))
}

/// `GET /v1/merchants/{merchant_id}/payouts/{payout_id}`
#[tracing::instrument(skip_all)]
pub async fn get_payout(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((merchant_id, payout_id)): ApiPath<(String, Uuid)>,
    lang: Language,
) -> Result<Json<PayoutDetail>, ApiError> {
    principal.require_merchant(&merchant_id)?;
    Ok(Json(
        money::payout_detail(&state.pool, &merchant_id, payout_id, &lang).await?,
    ))
}
