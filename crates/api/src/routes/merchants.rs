//! The merchant's routes: batches, one batch with its lines, balances.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use settlement_domain::lateness::BatchStatus;
use settlement_domain::money::format_amount;
use settlement_store::batches::{self, BatchFilter};
use settlement_store::ledger;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;
use crate::wire::{cursor_id, page, page_limit, stored_currency, BatchView, LineView, Page};

/// Query of the batch list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchListQuery {
    pub status: Option<String>,
    pub terminal_id: Option<String>,
    pub business_date_from: Option<NaiveDate>,
    pub business_date_to: Option<NaiveDate>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// `GET /v1/merchants/{merchant_id}/batches`
#[tracing::instrument(skip_all)]
pub async fn list_batches(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(merchant_id): ApiPath<String>,
    query: ApiQuery<BatchListQuery>,
) -> Result<Json<Page<BatchView>>, ApiError> {
    principal.require_merchant(&merchant_id)?;
    let q = query.get()?;
    let limit = page_limit(q.limit)?;
    if let Some(status) = &q.status {
        BatchStatus::parse(status).ok_or_else(|| {
            ApiError::field(
                "status",
                "must be accepted, accepted_late or rejected_outside_grace",
            )
        })?;
    }
    if let (Some(from), Some(to)) = (q.business_date_from, q.business_date_to) {
        if from > to {
            return Err(ApiError::field(
                "business_date_from",
                "must not be after business_date_to",
            ));
        }
    }
    let filter = BatchFilter {
        status: q.status,
        terminal_id: q.terminal_id,
        business_date_from: q.business_date_from,
        business_date_to: q.business_date_to,
        before_id: cursor_id(q.cursor.as_deref())?,
    };
    let mut conn = state.pool.acquire().await?;
    let rows =
        batches::list_batches_of_merchant(&mut conn, &merchant_id, &filter, limit + 1).await?;
    Ok(Json(page(
        rows,
        limit,
        |b| b.id.to_string(),
        BatchView::from_row,
    )?))
}

/// Query of one batch: the page of its lines.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinePageQuery {
    pub limit: Option<i64>,
    pub cursor: Option<i32>,
}

/// A batch with a page of its lines.
#[derive(Debug, Serialize)]
pub struct BatchDetail {
    #[serde(flatten)]
    pub batch: BatchView,
    pub lines: Page<LineView>,
}

/// `GET /v1/merchants/{merchant_id}/batches/{batch_id}`
#[tracing::instrument(skip_all)]
pub async fn get_batch(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((merchant_id, batch_id)): ApiPath<(String, Uuid)>,
    query: ApiQuery<LinePageQuery>,
) -> Result<Json<BatchDetail>, ApiError> {
    principal.require_merchant(&merchant_id)?;
    let q = query.get()?;
    let limit = page_limit(q.limit)?;
    let mut conn = state.pool.acquire().await?;
    let batch = batches::find_batch_of_merchant(&mut conn, &merchant_id, batch_id)
        .await?
        .ok_or(ApiError::NotFound("batch"))?;
    let currency = stored_currency(&batch.currency)?;
    let rows =
        batches::list_batch_lines(&mut conn, batch.id, q.cursor.unwrap_or(0), limit + 1).await?;
    let lines = page(
        rows,
        limit,
        |l| l.line_no.to_string(),
        |l| Ok(LineView::from_row(l, currency)),
    )?;
    Ok(Json(BatchDetail {
        batch: BatchView::from_row(&batch)?,
        lines,
    }))
}

/// A merchant's money in one currency.
#[derive(Debug, Serialize)]
pub struct CurrencyBalance {
    pub currency: String,
    /// Accepted batches not yet settled in a cycle.
    pub pending: String,
    /// Settled and waiting for a payout.
    pub payable: String,
}

/// `GET /v1/merchants/{merchant_id}/balance` body.
#[derive(Debug, Serialize)]
pub struct BalanceView {
    pub merchant_id: String,
    pub balances: Vec<CurrencyBalance>,
}

/// `GET /v1/merchants/{merchant_id}/balance`: pending and payable per currency, read
/// from the ledger's postings.
#[tracing::instrument(skip_all)]
pub async fn get_balance(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(merchant_id): ApiPath<String>,
) -> Result<Json<BalanceView>, ApiError> {
    principal.require_merchant(&merchant_id)?;
    let mut conn = state.pool.acquire().await?;
    let merchant = crate::routes::ops::find_merchant_or_404(&mut conn, &merchant_id).await?;
    let rows = ledger::merchant_balances(&mut conn, &merchant_id).await?;
    // Merchant accounts are liabilities: a credit (negative posting sum) is money owed.
    // The settlement currency is always shown, at zero before the first booking.
    let mut by_currency: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    by_currency.insert(merchant.default_currency.clone(), (0, 0));
    for r in rows {
        let owed = r
            .balance_minor
            .checked_neg()
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("balance overflow")))?;
        let slot = by_currency.entry(r.currency).or_default();
        match r.kind.as_str() {
            "merchant_pending" => slot.0 = owed,
            "merchant_payable" => slot.1 = owed,
            _ => {}
        }
    }
    let balances = by_currency
        .into_iter()
        .map(|(code, (pending, payable))| {
            let currency = stored_currency(&code)?;
            Ok(CurrencyBalance {
                currency: code,
                pending: format_amount(pending, currency),
                payable: format_amount(payable, currency),
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(Json(BalanceView {
        merchant_id,
        balances,
    }))
}
