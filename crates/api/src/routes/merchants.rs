//! The merchant's routes: batches, one batch with its lines, balances, review
//! requests, a terminal's unsettled transactions. The use cases are the engine's
//! (`batches`, `money`, `host`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use uuid::Uuid;

use settlement_engine::host;
use settlement_wire::batches::{
    BatchDetail, BatchListQuery, BatchView, LinePageQuery, ReviewRequestBody, ReviewRequestView,
};
use settlement_wire::host::{UnsettledList, UnsettledQuery};
use settlement_wire::money::BalanceView;
use settlement_wire::Page;

use crate::auth::Principal;
use crate::batches::{self, Review};
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, JsonBody};
use crate::language::Language;
use crate::money;
use crate::state::AppState;

/// `GET /v1/merchants/{merchant_id}/batches`
#[tracing::instrument(skip_all)]
pub async fn list_batches(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(merchant_id): ApiPath<String>,
    query: ApiQuery<BatchListQuery>,
    lang: Language,
) -> Result<Json<Page<BatchView>>, ApiError> {
    principal.require_merchant(&merchant_id)?;
    let q = query.get()?;
    Ok(Json(
        batches::list_batches(&state.pool, &merchant_id, q, &lang).await?,
    ))
}

/// `GET /v1/merchants/{merchant_id}/batches/{batch_id}`
#[tracing::instrument(skip_all)]
pub async fn get_batch(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((merchant_id, batch_id)): ApiPath<(String, Uuid)>,
    query: ApiQuery<LinePageQuery>,
    lang: Language,
) -> Result<Json<BatchDetail>, ApiError> {
    principal.require_merchant(&merchant_id)?;
    let q = query.get()?;
    Ok(Json(
        batches::batch_detail(&state.pool, &merchant_id, batch_id, &q, &lang).await?,
    ))
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
    Ok(Json(money::balance(&state.pool, &merchant_id).await?))
}

/// `POST /v1/merchants/{merchant_id}/batches/{batch_id}/review-requests`: the merchant
/// asks operations to review a batch held after its grace deadline. Asking again
/// while one is open answers that one (200) instead of opening another (201).
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
    let req = body.parse::<ReviewRequestBody>()?;
    let (view, review) = batches::request_review(
        &state.pool,
        &merchant_id,
        batch_id,
        &req.note,
        &requested_by,
    )
    .await?;
    let status = match review {
        Review::Opened => StatusCode::CREATED,
        Review::AlreadyOpen => StatusCode::OK,
    };
    Ok((status, Json(view)))
}

/// `GET /v1/merchants/{merchant_id}/terminals/{terminal_id}/unsettled`: a terminal's
/// transactions authorized by the host and not yet presented in a close; read by
/// the merchant, operations, or the terminal itself.
#[tracing::instrument(skip_all)]
pub async fn list_unsettled(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((merchant_id, terminal_id)): ApiPath<(String, String)>,
    query: ApiQuery<UnsettledQuery>,
    lang: Language,
) -> Result<Json<UnsettledList>, ApiError> {
    principal.require_terminal_reader(&merchant_id, &terminal_id)?;
    let q = query.get()?;
    Ok(Json(
        host::unsettled(&state.pool, &merchant_id, &terminal_id, q, &lang).await?,
    ))
}
