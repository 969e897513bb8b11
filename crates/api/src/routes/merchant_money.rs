//! A merchant's settlements (closed cycles) and payouts, each with what it holds.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use settlement_store::payouts::{self, PayoutFilter};
use settlement_store::{batches, cycles};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::profile::existing_merchant;
use crate::routes::payout_status_filter;
use crate::state::AppState;
use crate::wire::{cursor_id, page, page_limit, BatchView, CycleView, Page, PayoutView};

/// Query of a plain list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

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
    let limit = page_limit(q.limit)?;
    let mut conn = state.pool.acquire().await?;
    existing_merchant(&mut conn, &merchant_id).await?;
    let rows = cycles::list_cycles_of_merchant(
        &mut conn,
        &merchant_id,
        cursor_id(q.cursor.as_deref())?,
        limit + 1,
    )
    .await?;
    Ok(Json(page(
        rows,
        limit,
        |c| c.id.to_string(),
        CycleView::from_row,
    )?))
}

/// A closed cycle with its batches and the payouts that paid it.
#[derive(Debug, Serialize)]
pub struct SettlementDetail {
    #[serde(flatten)]
    pub cycle: CycleView,
    pub batches: Vec<BatchView>,
    pub payouts: Vec<PayoutView>,
}

/// `GET /v1/merchants/{merchant_id}/settlements/{cycle_id}`
#[tracing::instrument(skip_all)]
pub async fn get_settlement(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((merchant_id, cycle_id)): ApiPath<(String, Uuid)>,
) -> Result<Json<SettlementDetail>, ApiError> {
    principal.require_merchant(&merchant_id)?;
    let mut conn = state.pool.acquire().await?;
    let cycle = cycles::find_cycle_of_merchant(&mut conn, &merchant_id, cycle_id)
        .await?
        .ok_or(ApiError::NotFound("settlement"))?;
    let batch_rows = batches::list_batches_of_cycle(&mut conn, cycle.id).await?;
    let payout_rows = payouts::list_payouts_of_cycle(&mut conn, cycle.id).await?;
    Ok(Json(SettlementDetail {
        cycle: CycleView::from_row(&cycle)?,
        batches: batch_rows
            .iter()
            .map(BatchView::from_row)
            .collect::<Result<_, _>>()?,
        payouts: payout_rows
            .iter()
            .map(PayoutView::from_row)
            .collect::<Result<_, _>>()?,
    }))
}

/// Query of a merchant's payout list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayoutQuery {
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// `GET /v1/merchants/{merchant_id}/payouts`: newest first.
#[tracing::instrument(skip_all)]
pub async fn list_payouts(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(merchant_id): ApiPath<String>,
    query: ApiQuery<PayoutQuery>,
) -> Result<Json<Page<PayoutView>>, ApiError> {
    principal.require_merchant(&merchant_id)?;
    let q = query.get()?;
    let limit = page_limit(q.limit)?;
    let mut conn = state.pool.acquire().await?;
    existing_merchant(&mut conn, &merchant_id).await?;
    let filter = PayoutFilter {
        merchant_id: Some(merchant_id),
        status: payout_status_filter(q.status)?,
        before_id: cursor_id(q.cursor.as_deref())?,
    };
    let rows = payouts::list_payouts(&mut conn, &filter, limit + 1).await?;
    Ok(Json(page(
        rows,
        limit,
        |p| p.id.to_string(),
        PayoutView::from_row,
    )?))
}

/// A batch a payout pays, in brief.
#[derive(Debug, Serialize)]
pub struct PaidBatch {
    pub id: Uuid,
    pub terminal_id: String,
    pub batch_number: i32,
    pub status: String,
    pub net_amount: String,
    pub fee: String,
}

/// A cycle a payout pays, with its batches.
#[derive(Debug, Serialize)]
pub struct PaidCycle {
    #[serde(flatten)]
    pub cycle: CycleView,
    pub batches: Vec<PaidBatch>,
}

/// A payout with what it pays.
#[derive(Debug, Serialize)]
pub struct PayoutDetail {
    #[serde(flatten)]
    pub payout: PayoutView,
    pub cycles: Vec<PaidCycle>,
}

/// `GET /v1/merchants/{merchant_id}/payouts/{payout_id}`
#[tracing::instrument(skip_all)]
pub async fn get_payout(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((merchant_id, payout_id)): ApiPath<(String, Uuid)>,
) -> Result<Json<PayoutDetail>, ApiError> {
    principal.require_merchant(&merchant_id)?;
    let mut conn = state.pool.acquire().await?;
    let payout = payouts::find_payout_of_merchant(&mut conn, &merchant_id, payout_id)
        .await?
        .ok_or(ApiError::NotFound("payout"))?;
    let mut paid = Vec::new();
    for cycle in cycles::list_cycles_of_payout(&mut conn, payout.id).await? {
        let batch_rows = batches::list_batches_of_cycle(&mut conn, cycle.id).await?;
        let batches = batch_rows
            .iter()
            .map(|b| {
                let view = BatchView::from_row(b)?;
                Ok(PaidBatch {
                    id: view.id,
                    terminal_id: view.terminal_id,
                    batch_number: view.batch_number,
                    status: view.status,
                    net_amount: view.net_amount,
                    fee: view.fee,
                })
            })
            .collect::<Result<_, ApiError>>()?;
        paid.push(PaidCycle {
            cycle: CycleView::from_row(&cycle)?,
            batches,
        });
    }
    Ok(Json(PayoutDetail {
        payout: PayoutView::from_row(&payout)?,
        cycles: paid,
    }))
}
