//! Operations' routes: merchants, terminals, and the exceptions to work on.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use uuid::Uuid;

use settlement_engine::exceptions;
use settlement_engine::held_batches;
use settlement_engine::merchants;
use settlement_wire::batches::BatchView;
use settlement_wire::exceptions::{ExceptionQuery, ExceptionView};
use settlement_wire::merchants::{
    CreateMerchantRequest, CreateTerminalRequest, MerchantView, TerminalView, UpdateMerchantRequest,
};
use settlement_wire::Page;

use crate::audit::check_reason;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, JsonBody};
use crate::language::Language;
use crate::state::AppState;

/// `POST /v1/ops/merchants`: onboard a merchant with its settlement profile.
#[tracing::instrument(skip_all)]
pub async fn create_merchant(
    State(state): State<AppState>,
    principal: Principal,
    body: JsonBody,
) -> Result<(StatusCode, Json<MerchantView>), ApiError> {
    let actor = principal.require_ops()?.to_owned();
    let req = body.parse_allowing_card_number_in::<CreateMerchantRequest>("bank_account")?;
    let row = merchants::new_merchant(&req, &state.bank_account_keys)?;
    let view = merchants::create_merchant(&state.pool, &row, &actor).await?;
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
    let req = body.parse_allowing_card_number_in::<UpdateMerchantRequest>("bank_account")?;
    let reason = check_reason(&req.reason)?.to_owned();
    let view = merchants::update_merchant(
        &state.pool,
        &merchant_id,
        &req,
        &reason,
        &actor,
        &state.bank_account_keys,
    )
    .await?;
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
    lang: Language,
    body: JsonBody,
) -> Result<Json<BatchView>, ApiError> {
    let actor = principal.require_ops()?.to_owned();
    let req = body.parse::<AcceptBatchRequest>()?;
    let reason = check_reason(&req.reason)?.to_owned();
    let now = chrono::Utc::now();
    let view = held_batches::accept(&state.pool, batch_id, &actor, &reason, now, &lang).await?;
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
    lang: Language,
    body: JsonBody,
) -> Result<Json<BatchView>, ApiError> {
    let actor = principal.require_ops()?.to_owned();
    let req = body.parse::<AcceptBatchRequest>()?;
    let reason = check_reason(&req.reason)?.to_owned();
    let view = held_batches::decline(&state.pool, batch_id, &actor, &reason, &lang).await?;
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
    let req = body.parse::<CreateTerminalRequest>()?;
    let terminal =
        merchants::create_terminal(&state.pool, &merchant_id, &req.terminal_id, &actor).await?;
    Ok((StatusCode::CREATED, Json(terminal)))
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
    Ok(Json(exceptions::list_exceptions(&state.pool, &q).await?))
}
