//! Operations on settlement and payouts: run settlement now, list payouts, export
//! the instruction file, and record what the bank says.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use uuid::Uuid;

use settlement_domain::payout::PayoutStatus;
use settlement_wire::bank_reports::ConfirmationReport;
use settlement_wire::money::{ExportQuery, OpsPayoutQuery, PayoutView};
use settlement_wire::settlement::SettlementRunView;
use settlement_wire::Page;

use crate::audit::check_reason;
use crate::auth::Principal;
use crate::bank_reports::{self, check_failure_code};
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, JsonBody};
use crate::language::Language;
use crate::money::{self, PayoutScope};
use crate::payout_files::{self, Export, ExportedFile, FileFormat};
use crate::settlement::{record_payout_outcome, run_settlement_for};
use crate::state::AppState;

/// `POST /v1/ops/settlement-runs`: closes every cycle due now and answers with what
/// it closed.
#[tracing::instrument(skip_all)]
pub async fn run_now(
    State(state): State<AppState>,
    principal: Principal,
    lang: Language,
) -> Result<Json<SettlementRunView>, ApiError> {
    let actor = principal.require_ops()?.to_owned();
    Ok(Json(
        run_settlement_for(&state.pool, &actor, Utc::now(), &lang).await?,
    ))
}

/// `GET /v1/ops/payouts`
#[tracing::instrument(skip_all)]
pub async fn list_payouts(
    State(state): State<AppState>,
    principal: Principal,
    query: ApiQuery<OpsPayoutQuery>,
    lang: Language,
) -> Result<Json<Page<PayoutView>>, ApiError> {
    principal.require_ops()?;
    let q = query.get()?;
    Ok(Json(
        money::list_payouts(
            &state.pool,
            PayoutScope::Operations(q.merchant_id.as_deref()),
            q.status,
            q.limit,
            q.cursor.as_deref(),
            &lang,
        )
        .await?,
    ))
}

/// `POST /v1/ops/payouts/export`: marks due pending payouts in transit (booking
/// payable to clearing) and answers with the instruction file as CSV.
#[tracing::instrument(skip_all)]
pub async fn export(
    State(state): State<AppState>,
    principal: Principal,
    query: ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let actor = principal.require_ops()?.to_owned();
    let q = query.get()?;
    let format = match q.format.as_deref() {
        None | Some("csv") => FileFormat::Csv,
        Some("pain.001") => FileFormat::Pain001,
        Some(_) => return Err(ApiError::field("format", "must be csv or pain.001")),
    };
    let now = Utc::now();
    let message_id = format!("P{}", Uuid::now_v7().simple());
    let exported = payout_files::export_payouts(
        &state.pool,
        &Export {
            format,
            through: q.through,
            now,
            message_id: &message_id,
            actor: &actor,
            debtor: &state.payout_debtor,
            keys: &state.bank_account_keys,
        },
    )
    .await?;
    let ExportedFile { document, withheld } = exported;
    let counts = [
        (
            HeaderName::from_static(WITHHELD_NO_BANK_ACCOUNT),
            withheld.no_bank_account.to_string(),
        ),
        (
            HeaderName::from_static(WITHHELD_ON_HOLD),
            withheld.on_hold.to_string(),
        ),
    ];
    Ok(match (format, document) {
        (_, None) => (StatusCode::NO_CONTENT, counts).into_response(),
        (FileFormat::Csv, Some(csv)) => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned())],
            counts,
            csv,
        )
            .into_response(),
        (FileFormat::Pain001, Some(xml)) => (
            [
                (
                    header::CONTENT_TYPE,
                    "application/xml; charset=utf-8".to_owned(),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{message_id}.xml\""),
                ),
            ],
            counts,
            xml,
        )
            .into_response(),
    })
}

/// Header of the export answer: due payouts left pending because their merchant has
/// no bank account.
pub const WITHHELD_NO_BANK_ACCOUNT: &str = "payouts-withheld-no-bank-account";
/// Header of the export answer: due payouts left pending because their merchant's
/// payouts are on hold after an account failure.
pub const WITHHELD_ON_HOLD: &str = "payouts-withheld-on-hold";

/// Body of a payout confirmation; `failure_code` only for failed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    #[serde(default)]
    pub failure_code: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Reads an optional JSON body: none at all is the default.
fn optional_body<T: serde::de::DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: &JsonBody,
) -> Result<T, ApiError> {
    if body.is_empty() && !headers.contains_key(header::CONTENT_TYPE) {
        return Ok(T::default());
    }
    body.parse::<T>()
}

/// `POST /v1/ops/payouts/{payout_id}/paid`: the bank confirmed the payout.
#[tracing::instrument(skip_all)]
pub async fn mark_paid(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(payout_id): ApiPath<Uuid>,
    lang: Language,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Json<PayoutView>, ApiError> {
    let actor = principal.require_ops()?.to_owned();
    let req: ConfirmRequest = optional_body(&headers, &body)?;
    if req.failure_code.is_some() {
        return Err(ApiError::field(
            "failure_code",
            "only a failed payout has one",
        ));
    }
    let reason = req.reason.as_deref().map(check_reason).transpose()?;
    let view = record_payout_outcome(
        &state.pool,
        &actor,
        payout_id,
        PayoutStatus::Paid,
        None,
        reason,
        &lang,
    )
    .await?;
    Ok(Json(view))
}

/// `POST /v1/ops/payouts/{payout_id}/failed`: the bank returned the payout; its
/// money is payable again and goes out with the next payout.
#[tracing::instrument(skip_all)]
pub async fn mark_failed(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(payout_id): ApiPath<Uuid>,
    lang: Language,
    body: JsonBody,
) -> Result<Json<PayoutView>, ApiError> {
    let actor = principal.require_ops()?.to_owned();
    let req = body.parse::<ConfirmRequest>()?;
    let code = req
        .failure_code
        .ok_or_else(|| ApiError::field("failure_code", "is required"))?;
    check_failure_code(&code)?;
    let reason = req.reason.as_deref().map(check_reason).transpose()?;
    let view = record_payout_outcome(
        &state.pool,
        &actor,
        payout_id,
        PayoutStatus::Failed,
        Some(&code),
        reason,
        &lang,
    )
    .await?;
    Ok(Json(view))
}

/// Body of a cancellation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    pub reason: String,
}

/// `POST /v1/ops/payouts/{payout_id}/cancel`: withdraws a pending payout before it is
/// exported; its money is payable again and joins the next payout.
#[tracing::instrument(skip_all)]
pub async fn cancel(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(payout_id): ApiPath<Uuid>,
    lang: Language,
    body: JsonBody,
) -> Result<Json<PayoutView>, ApiError> {
    let actor = principal.require_ops()?.to_owned();
    let req = body.parse::<CancelRequest>()?;
    let reason = check_reason(&req.reason)?;
    let view = record_payout_outcome(
        &state.pool,
        &actor,
        payout_id,
        PayoutStatus::Canceled,
        None,
        Some(reason),
        &lang,
    )
    .await?;
    Ok(Json(view))
}

/// `POST /v1/ops/payouts/confirmations` body: CSV lines `payout_id,outcome[,failure_code]`
/// with `outcome` `paid` or `failed`; a header line is optional. Each line is applied
/// once in its own transaction: a line whose payout is already in that state reports
/// `already_applied`, so the same file can be uploaded again safely.
#[tracing::instrument(skip_all)]
pub async fn upload_confirmations(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ConfirmationReport>, ApiError> {
    let actor = principal.require_ops()?.to_owned();
    crate::extract::require_media_type(
        &headers,
        &["text/csv"],
        "send the confirmations as text/csv",
    )?;
    Ok(Json(
        bank_reports::apply_confirmations(&state.pool, &actor, &body).await?,
    ))
}
