//! `POST /v1/ops/payouts/status-reports`: the bank's ISO 20022 pain.002 payment status
//! report for a payout file, applied payment by payment.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::Json;
use serde::Serialize;
use uuid::Uuid;

use settlement_bankfiles::{outcome, parse_pain002, Outcome};
use settlement_domain::payout::PayoutStatus;
use settlement_store::payouts;

use crate::auth::Principal;
use crate::db::in_transaction;
use crate::error::ApiError;
use crate::settlement::{apply_bank_outcome, BankOutcome};
use crate::state::AppState;

/// One payment of a report and what applying it did.
#[derive(Debug, Serialize)]
pub struct PaymentResult {
    /// The end-to-end id the report names (the payout id, 32 hex digits).
    pub end_to_end_id: String,
    pub payout_id: Uuid,
    /// The bank's status code (`ACSC`, `RJCT`, `ACSP`...).
    pub status: String,
    pub reason_code: Option<String>,
    /// `applied`, `already_applied`, `in_progress` (accepted or pending, nothing to
    /// change yet) or `not_applicable` (the payout's status does not allow it).
    pub result: &'static str,
    /// The payout's status after the report.
    pub payout_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The answer: the report, and each payment's result.
#[derive(Debug, Serialize)]
pub struct StatusReportResult {
    pub message_id: String,
    pub original_message_id: String,
    pub group_status: Option<String>,
    pub applied: usize,
    pub already_applied: usize,
    pub in_progress: usize,
    pub not_applicable: usize,
    pub payments: Vec<PaymentResult>,
}

/// What one payment asks of its payout.
struct Instruction {
    end_to_end_id: String,
    payout_id: Uuid,
    status: String,
    reason_code: Option<String>,
    outcome: Outcome,
}

fn refused(detail: impl Into<String>) -> ApiError {
    ApiError::Validation {
        detail: detail.into(),
        field: None,
    }
}

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
    let is_xml = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            let v = v.trim();
            v.eq_ignore_ascii_case("application/xml") || v.eq_ignore_ascii_case("text/xml")
        });
    if !is_xml {
        return Err(ApiError::UnsupportedMediaType(
            "send the pain.002 report as application/xml",
        ));
    }
    let text = std::str::from_utf8(&body).map_err(|_| refused("the report is not UTF-8"))?;
    let report = parse_pain002(text)
        .map_err(|e| refused(format!("the pain.002 report cannot be read: {e}")))?;

    let mut conn = state.pool.acquire().await?;
    let in_file = payouts::list_payout_file_items(&mut conn, &report.original_message_id).await?;
    drop(conn);
    if in_file.is_empty() {
        return Err(refused(format!(
            "the report answers payout file {:?}, which this service did not export",
            report.original_message_id
        )));
    }
    let mut instructions = Vec::new();
    if report.payments.is_empty() {
        // A group status without payment details applies to the whole file.
        let status = report
            .group_status
            .clone()
            .ok_or_else(|| refused("the report names neither a group status nor any payment"))?;
        let outcome = outcome(&status).ok_or_else(|| {
            refused(format!(
                "the group status {status:?} is not one this service knows"
            ))
        })?;
        for payout_id in &in_file {
            instructions.push(Instruction {
                end_to_end_id: payout_id.simple().to_string(),
                payout_id: *payout_id,
                status: status.clone(),
                reason_code: report.group_reason_code.clone(),
                outcome,
            });
        }
    }
    for p in &report.payments {
        let payout_id = Uuid::try_parse(&p.original_end_to_end_id)
            .ok()
            .filter(|id| in_file.contains(id))
            .ok_or_else(|| {
                refused(format!(
                    "payment {:?} is not a payout of file {:?}",
                    p.original_end_to_end_id, report.original_message_id
                ))
            })?;
        let outcome = outcome(&p.status).ok_or_else(|| {
            refused(format!(
                "payment {:?} has the status {:?}, which this service does not know",
                p.original_end_to_end_id, p.status
            ))
        })?;
        instructions.push(Instruction {
            end_to_end_id: p.original_end_to_end_id.clone(),
            payout_id,
            status: p.status.clone(),
            reason_code: p.reason_code.clone(),
            outcome,
        });
    }

    let mut results = Vec::with_capacity(instructions.len());
    for i in instructions {
        results.push(apply_payment(&state, &actor, &report.message_id, i).await?);
    }
    let count = |r: &str| results.iter().filter(|p| p.result == r).count();
    Ok(Json(StatusReportResult {
        applied: count("applied"),
        already_applied: count("already_applied"),
        in_progress: count("in_progress"),
        not_applicable: count("not_applicable"),
        message_id: report.message_id,
        original_message_id: report.original_message_id,
        group_status: report.group_status,
        payments: results,
    }))
}

/// The failure code a rejection is recorded with: the ISO reason code in lower case
/// (`ac04`), or `rejected_by_bank` when the bank gave none.
fn failure_code_of(reason_code: Option<&str>) -> String {
    reason_code
        .map(str::to_ascii_lowercase)
        .filter(|c| {
            (1..=64).contains(&c.len())
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
        .unwrap_or_else(|| "rejected_by_bank".to_owned())
}

async fn apply_payment(
    state: &AppState,
    actor: &str,
    report_id: &str,
    i: Instruction,
) -> Result<PaymentResult, ApiError> {
    let target = match i.outcome {
        Outcome::Settled => Some((PayoutStatus::Paid, None)),
        Outcome::Rejected => Some((
            PayoutStatus::Failed,
            Some(failure_code_of(i.reason_code.as_deref())),
        )),
        Outcome::Accepted | Outcome::Pending => None,
    };
    let reason = format!(
        "pain.002 {report_id}: {}{}",
        i.status,
        i.reason_code
            .as_deref()
            .map(|c| format!(" {c}"))
            .unwrap_or_default()
    );
    let applied = in_transaction!(&state.pool, |tx| {
        match &target {
            // Accepted or pending: the payment is on its way; nothing changes.
            None => {
                let current = payouts::find_payout_for_update(&mut tx, i.payout_id)
                    .await?
                    .ok_or(ApiError::NotFound("payout"))?;
                ("in_progress", current.status, None)
            }
            Some((to, code)) => {
                match apply_bank_outcome(&mut tx, actor, i.payout_id, *to, code.as_deref(), &reason)
                    .await?
                {
                    BankOutcome::Applied(view) => ("applied", view.status, None),
                    BankOutcome::AlreadyApplied { status } => ("already_applied", status, None),
                    BankOutcome::NotApplicable(illegal) => (
                        "not_applicable",
                        illegal.from.as_str().to_owned(),
                        Some(format!(
                            "the payout is {}; it cannot become {}",
                            illegal.from.as_str(),
                            illegal.to.as_str()
                        )),
                    ),
                }
            }
        }
    })?;
    let (result, payout_status, detail) = applied;
    Ok(PaymentResult {
        end_to_end_id: i.end_to_end_id,
        payout_id: i.payout_id,
        status: i.status,
        reason_code: i.reason_code,
        result,
        payout_status,
        detail,
    })
}
