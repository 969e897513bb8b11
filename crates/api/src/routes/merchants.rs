//! The merchant's routes: batches, one batch with its lines, balances.

use settlement_wire::ProblemCode;
use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use settlement_domain::lateness::BatchStatus;
use settlement_domain::money::format_amount;
use settlement_store::batches::{self, BatchFilter};
use settlement_store::{close_attempts, ledger};

use crate::auth::Principal;
use crate::db::in_transaction;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, JsonBody};
use crate::state::AppState;
use crate::wire::ReviewRequestView;
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
                "must be accepted, accepted_late, rejected_outside_grace, accepted_by_operator or declined",
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
        |l| Ok::<_, ApiError>(LineView::from_row(l, currency)),
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
    let merchant = crate::profile::existing_merchant(&mut conn, &merchant_id).await?;
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

/// `POST /v1/merchants/{merchant_id}/batches/{batch_id}/review-requests` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequestBody {
    /// What the merchant wants operations to know.
    pub note: String,
}

/// Longest note of a review request.
const MAX_REVIEW_NOTE_CHARS: usize = 1000;

/// `POST /v1/merchants/{merchant_id}/batches/{batch_id}/review-requests`: the merchant
/// asks operations to review a batch held after its grace deadline. Operations see it
/// in the exceptions list; it is resolved or declined with the batch. Asking again
/// while one is open answers that one (200) instead of opening another.
#[tracing::instrument(skip_all)]
pub async fn request_review(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((merchant_id, batch_id)): ApiPath<(String, Uuid)>,
    body: JsonBody,
) -> Result<(StatusCode, Json<ReviewRequestView>), ApiError> {
    principal.require_merchant(&merchant_id)?;
    let requested_by = match &principal {
        Principal::Ops { subject } => subject.clone(),
        _ => merchant_id.clone(),
    };
    let req = body.parse::<ReviewRequestBody>()?.value;
    let note = req.note.trim();
    if !(1..=MAX_REVIEW_NOTE_CHARS).contains(&note.chars().count()) {
        return Err(ApiError::field("note", "must be 1 to 1000 characters"));
    }
    let (row, created) = in_transaction!(&state.pool, |tx| {
        let batch = batches::find_batch_of_merchant(&mut tx, &merchant_id, batch_id)
            .await?
            .ok_or(ApiError::NotFound("batch"))?;
        if BatchStatus::parse(&batch.status) != Some(BatchStatus::RejectedOutsideGrace) {
            return Err(ApiError::Conflict {
                code: ProblemCode::BatchNotHeld,
                detail: format!(
                    "the batch is {}; only a batch held after its grace deadline \
                     (rejected_outside_grace) can be reviewed",
                    batch.status
                ),
            });
        }
        close_attempts::open_review_request(&mut tx, &merchant_id, batch_id, note, &requested_by)
            .await?
    })?;
    if created {
        tracing::info!(review_request_id = %row.id, %batch_id, "review requested");
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(ReviewRequestView::from_row(&row))))
}
