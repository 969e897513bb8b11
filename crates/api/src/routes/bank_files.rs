//! `POST /v1/ops/payouts/status-reports`: the bank's ISO 20022 pain.002 payment status
//! report for a payout file, applied payment by payment (`bank_reports` in the engine).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use settlement_wire::bank_reports::StatusReportResult;

use crate::auth::Principal;
use crate::bank_reports;
use crate::error::ApiError;
use crate::state::AppState;

/// `POST /v1/ops/payouts/status-reports`: applies a pain.002 report. The whole report
/// is checked first (well formed, a supported version, naming a payout file this
/// service exported, every payment one of that file's payouts, every status known);
/// any fault refuses it whole and changes nothing. Then settled payments mark their
/// payouts paid and rejected ones failed with the ISO reason code (an account reason
/// holds the merchant's payouts), each once: the same report again answers
/// `already_applied`.
#[tracing::instrument(skip_all)]
pub async fn apply_status_report(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<StatusReportResult>, ApiError> {
    let actor = principal.require_ops()?.to_owned();
    crate::extract::require_media_type(
        &headers,
        &["application/xml", "text/xml"],
        "send the pain.002 report as application/xml",
    )?;
    Ok(Json(
        bank_reports::apply_status_report(&state.pool, &actor, &body).await?,
    ))
}
