//! Operations' routes: merchants, terminals, and the exceptions to work on.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use settlement_domain::money::format_amount;
use uuid::Uuid;

use settlement_engine::held_batches;
use settlement_engine::merchants::{self, check_id, MerchantView, TerminalView};
use settlement_store::close_attempts::{self, ExceptionRow};
use settlement_wire::merchants::{
    CreateMerchantRequest, CreateTerminalRequest, UpdateMerchantRequest,
};

use crate::audit::check_reason;
use crate::auth::Principal;
use crate::db::in_transaction;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, JsonBody};
use crate::state::AppState;
use crate::wire::BatchView;
use crate::wire::{cursor_id, page, page_limit, stored_currency, timestamp, Page};

/// `POST /v1/ops/merchants`: onboard a merchant with its settlement profile.
#[tracing::instrument(skip_all)]
pub async fn create_merchant(
    State(state): State<AppState>,
    principal: Principal,
    body: JsonBody,
) -> Result<(StatusCode, Json<MerchantView>), ApiError> {
    let actor = principal.require_ops()?.to_owned();
    let req = body
        .parse_allowing_card_number_in::<CreateMerchantRequest>(Some("bank_account"))?
        .value;
    let row = merchants::new_merchant(&req, &state.bank_account_keys)?;
    let view = in_transaction!(&state.pool, |tx| {
        merchants::create_merchant(&mut tx, &row, &actor).await?
    })?;
    tracing::info!(merchant_id = view.merchant_id, "merchant created");
    Ok((StatusCode::CREATED, Json(view)))
}

/// `PATCH /v1/ops/merchants/{merchant_id}`: changes a merchant's name, settlement
/// profile, pricing or bank account, with a reason; audited with before and after.
/// Batches already booked keep their cycle and fee.
#[tracing::instrument(skip_all)]
pub async fn update_merchant(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(merchant_id): ApiPath<String>,
    body: JsonBody,
) -> Result<Json<MerchantView>, ApiError> {
    let actor = principal.require_ops()?.to_owned();
    let req = body
        .parse_allowing_card_number_in::<UpdateMerchantRequest>(Some("bank_account"))?
        .value;
    let reason = check_reason(&req.reason)?.to_owned();
    let view = in_transaction!(&state.pool, |tx| {
        merchants::update_merchant(
            &mut tx,
            &merchant_id,
            &req,
            &reason,
            &actor,
            &state.bank_account_keys,
        )
        .await?
    })?;
    Ok(Json(view))
}

/// `POST /v1/ops/batches/{batch_id}/accept` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptBatchRequest {
    pub reason: String,
}

/// `POST /v1/ops/batches/{batch_id}/accept`: books a batch rejected outside the grace
/// window into the merchant's open cycle, marked `accepted_by_operator`, with the
/// operator's reason. A batch that is not rejected answers 409.
#[tracing::instrument(skip_all)]
pub async fn accept_batch(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(batch_id): ApiPath<Uuid>,
    body: JsonBody,
) -> Result<Json<BatchView>, ApiError> {
    let actor = principal.require_ops()?.to_owned();
    let req = body.parse::<AcceptBatchRequest>()?.value;
    let reason = check_reason(&req.reason)?.to_owned();
    let now = chrono::Utc::now();
    let view = in_transaction!(&state.pool, |tx| {
        held_batches::accept(&mut tx, batch_id, &actor, &reason, now).await?
    })?;
    Ok(Json(view))
}

/// `POST /v1/ops/batches/{batch_id}/decline`: declines a batch rejected outside the
/// grace window, with the operator's reason: it is never paid, the merchant reads the
/// reason, and its transactions may be presented again. A batch that is not rejected
/// answers 409.
#[tracing::instrument(skip_all)]
pub async fn decline_batch(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(batch_id): ApiPath<Uuid>,
    body: JsonBody,
) -> Result<Json<BatchView>, ApiError> {
    let actor = principal.require_ops()?.to_owned();
    let req = body.parse::<AcceptBatchRequest>()?.value;
    let reason = check_reason(&req.reason)?.to_owned();
    let view = in_transaction!(&state.pool, |tx| {
        held_batches::decline(&mut tx, batch_id, &actor, &reason).await?
    })?;
    Ok(Json(view))
}

/// `POST /v1/ops/merchants/{merchant_id}/terminals`: register a terminal.
#[tracing::instrument(skip_all)]
pub async fn create_terminal(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(merchant_id): ApiPath<String>,
    body: JsonBody,
) -> Result<(StatusCode, Json<TerminalView>), ApiError> {
    let actor = principal.require_ops()?.to_owned();
    let req = body.parse::<CreateTerminalRequest>()?.value;
    let terminal = in_transaction!(&state.pool, |tx| {
        merchants::create_terminal(&mut tx, &merchant_id, &req.terminal_id, &actor).await?
    })?;
    Ok((StatusCode::CREATED, Json(terminal)))
}

/// Query of the exceptions list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// `open` (the default), `resolved`, `declined` or `all`.
    pub state: Option<String>,
    pub kind: Option<String>,
    pub merchant_id: Option<String>,
}

/// Most repeated lines an exception lists: a page of exceptions stays small however
/// large the refused closes were (a close holds up to 10,000 lines).
const MAX_LISTED_DUPLICATES: usize = 100;

/// Kinds of exceptions, as the list filters them.
const EXCEPTION_KINDS: &[&str] = &[
    "rejected_outside_grace",
    "out_of_balance",
    "duplicate_transactions",
    "review_request",
];
/// States of an exception, as the list filters them (`all` lists every state).
const EXCEPTION_STATES: &[&str] = &["open", "resolved", "declined", "all"];

/// One exception as the API shows it.
#[derive(Debug, Serialize)]
pub struct ExceptionView {
    pub id: Uuid,
    pub kind: String,
    /// `open` until it is resolved or declined.
    pub state: String,
    pub merchant_id: String,
    pub terminal_id: String,
    pub batch_number: i32,
    pub currency: String,
    pub received_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grace_deadline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub net_amount: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub differences: Option<Value>,
    /// For a duplicate attempt: the repeated lines, each with the batch that holds it
    /// (the first `MAX_LISTED_DUPLICATES`; `duplicates_total` counts them all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicates: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicates_total: Option<usize>,
    /// The batch it is about (a held batch, or the batch a review request names).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<Uuid>,
    /// The merchant's note of a review request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Who resolved or declined it (`system` when a later close resolved it).
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    /// Why it was resolved or declined.
    pub resolution: Option<String>,
}

impl ExceptionView {
    fn from_row(e: &ExceptionRow) -> Result<Self, ApiError> {
        let currency = stored_currency(&e.currency)?;
        let duplicate = e.kind == close_attempts::DUPLICATE_TRANSACTIONS;
        Ok(ExceptionView {
            id: e.id,
            kind: e.kind.clone(),
            state: e.state.clone(),
            merchant_id: e.merchant_id.clone(),
            terminal_id: e.terminal_id.clone(),
            batch_number: e.batch_number,
            currency: e.currency.clone(),
            received_at: timestamp(e.received_at),
            grace_deadline: e.grace_deadline.map(timestamp),
            net_amount: e.net_amount_minor.map(|n| format_amount(n, currency)),
            differences: e.details.clone().filter(|_| !duplicate),
            duplicates_total: e
                .details
                .as_ref()
                .and_then(Value::as_array)
                .filter(|_| duplicate)
                .map(Vec::len),
            duplicates: e
                .details
                .as_ref()
                .and_then(Value::as_array)
                .filter(|_| duplicate)
                .map(|all| Value::Array(all.iter().take(MAX_LISTED_DUPLICATES).cloned().collect())),
            batch_id: e.batch_id,
            note: e.note.clone(),
            decided_by: e.decided_by.clone(),
            decided_at: e.decided_at.map(timestamp),
            resolution: e.resolution.clone(),
        })
    }
}

/// `GET /v1/ops/exceptions`: batches held after their grace deadline, closes refused
/// out of balance or for duplicate transactions, and merchants' review requests,
/// newest first; open ones unless `state` says otherwise.
#[tracing::instrument(skip_all)]
pub async fn list_exceptions(
    State(state): State<AppState>,
    principal: Principal,
    query: ApiQuery<ExceptionQuery>,
) -> Result<Json<Page<ExceptionView>>, ApiError> {
    principal.require_ops()?;
    let q = query.get()?;
    let limit = page_limit(q.limit)?;
    let before = cursor_id(q.cursor.as_deref())?;
    let state_filter = q.state.as_deref().unwrap_or("open");
    if !EXCEPTION_STATES.contains(&state_filter) {
        return Err(ApiError::field(
            "state",
            "must be open, resolved, declined or all",
        ));
    }
    if let Some(kind) = q.kind.as_deref() {
        if !EXCEPTION_KINDS.contains(&kind) {
            return Err(ApiError::field(
                "kind",
                "must be rejected_outside_grace, out_of_balance, duplicate_transactions or review_request",
            ));
        }
    }
    if let Some(id) = q.merchant_id.as_deref() {
        check_id("merchant_id", id)?;
    }
    let filter = close_attempts::ExceptionFilter {
        state: Some(state_filter.to_owned()).filter(|s| s != "all"),
        kind: q.kind.clone(),
        merchant_id: q.merchant_id.clone(),
        before_id: before,
    };
    let mut conn = state.pool.acquire().await?;
    let rows = close_attempts::list_exceptions(&mut conn, &filter, limit + 1).await?;
    Ok(Json(page(
        rows,
        limit,
        |e| e.id.to_string(),
        ExceptionView::from_row,
    )?))
}
