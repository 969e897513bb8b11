//! Operations on settlement and payouts: run settlement now, list payouts, export
//! the instruction file, and record what the bank says.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use settlement_domain::payout::PayoutStatus;
use settlement_store::payouts::{self, PayoutFilter};

use crate::audit::check_reason;
use crate::auth::Principal;
use crate::db::in_transaction;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, JsonBody};
use crate::routes::payout_status_filter;
use crate::settlement::{
    apply_bank_outcome, apply_payout_outcome, run_settlement_for, BankOutcome, SettlementRunView,
};
use crate::state::AppState;
use crate::wire::{cursor_id, page, page_limit, Page, PayoutView};
use settlement_engine::payout_files::{self, Export, ExportedFile, FileFormat};
use settlement_wire::ProblemCode;

/// Most lines one confirmation file may hold.
pub const MAX_CONFIRMATION_LINES: usize = 10_000;

/// `POST /v1/ops/settlement-runs`: closes every cycle due now and answers with what
/// it closed.
#[tracing::instrument(skip_all)]
pub async fn run_now(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<SettlementRunView>, ApiError> {
    let actor = principal.require_ops()?.to_owned();
    Ok(Json(
        run_settlement_for(&state.pool, &actor, Utc::now()).await?,
    ))
}

/// Query of the ops payout list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayoutListQuery {
    pub status: Option<String>,
    pub merchant_id: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// `GET /v1/ops/payouts`
#[tracing::instrument(skip_all)]
pub async fn list_payouts(
    State(state): State<AppState>,
    principal: Principal,
    query: ApiQuery<PayoutListQuery>,
) -> Result<Json<Page<PayoutView>>, ApiError> {
    principal.require_ops()?;
    let q = query.get()?;
    let limit = page_limit(q.limit)?;
    let filter = PayoutFilter {
        merchant_id: q.merchant_id,
        status: payout_status_filter(q.status)?,
        before_id: cursor_id(q.cursor.as_deref())?,
    };
    let mut conn = state.pool.acquire().await?;
    let rows = payouts::list_payouts(&mut conn, &filter, limit + 1).await?;
    Ok(Json(page(
        rows,
        limit,
        |p| p.id.to_string(),
        PayoutView::from_row,
    )?))
}

/// Query of the export.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// Export pending payouts arriving on or before this date; default: the next
    /// business day after today (UTC), so the bank has a day to move the money.
    pub through: Option<NaiveDate>,
    /// `csv` (the default, masked accounts) or `pain.001` (ISO 20022, whole accounts).
    pub format: Option<String>,
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
    let exported = in_transaction!(&state.pool, |tx| {
        payout_files::export(
            &mut tx,
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
        .await?
    })?;
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

fn check_failure_code(code: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::field(
            "failure_code",
            "must be 1 to 64 lower-case letters, digits or '_'",
        ))
    }
}

/// Reads an optional JSON body: none at all is the default.
fn optional_body<T: serde::de::DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: &JsonBody,
) -> Result<T, ApiError> {
    if body.is_empty() && !headers.contains_key(header::CONTENT_TYPE) {
        return Ok(T::default());
    }
    Ok(body.parse::<T>()?.value)
}

/// `POST /v1/ops/payouts/{payout_id}/paid`: the bank confirmed the payout.
#[tracing::instrument(skip_all)]
pub async fn mark_paid(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(payout_id): ApiPath<Uuid>,
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
    let view = in_transaction!(&state.pool, |tx| {
        apply_payout_outcome(&mut tx, &actor, payout_id, PayoutStatus::Paid, None, reason).await?
    })?;
    Ok(Json(view))
}

/// `POST /v1/ops/payouts/{payout_id}/failed`: the bank returned the payout; its
/// money is payable again and goes out with the next payout.
#[tracing::instrument(skip_all)]
pub async fn mark_failed(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(payout_id): ApiPath<Uuid>,
    body: JsonBody,
) -> Result<Json<PayoutView>, ApiError> {
    let actor = principal.require_ops()?.to_owned();
    let req = body.parse::<ConfirmRequest>()?.value;
    let code = req
        .failure_code
        .ok_or_else(|| ApiError::field("failure_code", "is required"))?;
    check_failure_code(&code)?;
    let reason = req.reason.as_deref().map(check_reason).transpose()?;
    let view = in_transaction!(&state.pool, |tx| {
        apply_payout_outcome(
            &mut tx,
            &actor,
            payout_id,
            PayoutStatus::Failed,
            Some(&code),
            reason,
        )
        .await?
    })?;
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
    body: JsonBody,
) -> Result<Json<PayoutView>, ApiError> {
    let actor = principal.require_ops()?.to_owned();
    let req = body.parse::<CancelRequest>()?.value;
    let reason = check_reason(&req.reason)?;
    let view = in_transaction!(&state.pool, |tx| {
        apply_payout_outcome(
            &mut tx,
            &actor,
            payout_id,
            PayoutStatus::Canceled,
            None,
            Some(reason),
        )
        .await?
    })?;
    Ok(Json(view))
}

/// The result of one line of a confirmation file.
#[derive(Debug, Serialize)]
pub struct LineResult {
    pub line: usize,
    pub payout_id: Option<String>,
    pub outcome: Option<String>,
    /// `applied`, `already_applied` or `rejected`.
    pub result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
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
) -> Result<Json<serde_json::Value>, ApiError> {
    let actor = principal.require_ops()?.to_owned();
    let is_csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("text/csv"));
    if !is_csv {
        return Err(ApiError::UnsupportedMediaType(
            "send the confirmations as text/csv",
        ));
    }
    std::str::from_utf8(&body).map_err(|_| ApiError::field("body", "must be UTF-8 text"))?;
    // RFC 4180 records of 2 or 3 fields, blank lines and a header line skipped.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(&body[..]);
    let mut records = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, csv::Position::line);
            ApiError::field("body", format!("line {line} is not valid CSV"))
        })?;
        let line = line_of(&body, record.position());
        let blank = record.iter().all(str::is_empty);
        if blank || record.get(0) == Some("payout_id") {
            continue;
        }
        records.push((line, record));
        if records.len() > MAX_CONFIRMATION_LINES {
            break;
        }
    }
    // A card number in any field refuses the whole file before a line is applied,
    // so it is neither echoed back nor kept in the audit trail.
    if records
        .iter()
        .any(|(_, r)| r.iter().any(settlement_domain::pan::contains_pan))
    {
        return Err(ApiError::PanNotAllowed);
    }
    if records.len() > MAX_CONFIRMATION_LINES {
        return Err(ApiError::field(
            "body",
            format!("holds more than {MAX_CONFIRMATION_LINES} lines"),
        ));
    }
    let mut results = Vec::with_capacity(records.len());
    for (line, record) in &records {
        let fields: Vec<&str> = record.iter().collect();
        results.push(apply_confirmation_line(&state, &actor, *line, &fields).await?);
    }
    let applied = results.iter().filter(|r| r.result == "applied").count();
    Ok(Json(serde_json::json!({
        "applied": applied,
        "already_applied": results.iter().filter(|r| r.result == "already_applied").count(),
        "rejected": results.iter().filter(|r| r.result == "rejected").count(),
        "lines": results,
    })))
}

/// The line (from 1) a record starts on. The reader's own line count is off after
/// CRLF line ends and blank lines, so it is counted from the record's byte offset,
/// past the line ends that precede the record.
fn line_of(body: &[u8], position: Option<&csv::Position>) -> usize {
    let mut start = position
        .and_then(|p| usize::try_from(p.byte()).ok())
        .unwrap_or(0)
        .min(body.len());
    while body.get(start).is_some_and(|b| matches!(b, b'\r' | b'\n')) {
        start += 1;
    }
    1 + body[..start].iter().filter(|b| **b == b'\n').count()
}

async fn apply_confirmation_line(
    state: &AppState,
    actor: &str,
    line: usize,
    fields: &[&str],
) -> Result<LineResult, ApiError> {
    let rejected =
        |payout_id: Option<&str>, outcome: Option<&str>, code, detail: String| LineResult {
            line,
            payout_id: payout_id.map(str::to_owned),
            outcome: outcome.map(str::to_owned),
            result: "rejected",
            code: Some(code),
            detail: Some(detail),
        };
    let (id_text, outcome) = match fields {
        [id, outcome] | [id, outcome, _] => (*id, *outcome),
        _ => {
            return Ok(rejected(
                None,
                None,
                "validation_failed",
                "expected payout_id,outcome[,failure_code]".into(),
            ))
        }
    };
    let Ok(payout_id) = id_text.parse::<Uuid>() else {
        return Ok(rejected(
            Some(id_text),
            Some(outcome),
            "validation_failed",
            "payout_id is not an id".into(),
        ));
    };
    let (to, code) = match (outcome, fields.get(2).copied().filter(|c| !c.is_empty())) {
        ("paid", None) => (PayoutStatus::Paid, None),
        ("failed", Some(code)) if check_failure_code(code).is_ok() => (PayoutStatus::Failed, Some(code)),
        _ => {
            return Ok(rejected(
                Some(id_text),
                Some(outcome),
                "validation_failed",
                "outcome must be paid, or failed with a failure_code of lower-case letters, digits or '_'".into(),
            ))
        }
    };
    let result = in_transaction!(&state.pool, |tx| {
        apply_bank_outcome(
            &mut tx,
            actor,
            payout_id,
            to,
            code,
            "bank confirmation file",
        )
        .await?
    });
    let done = |result: &'static str| LineResult {
        line,
        payout_id: Some(id_text.to_owned()),
        outcome: Some(outcome.to_owned()),
        result,
        code: None,
        detail: None,
    };
    Ok(match result {
        Ok(BankOutcome::Applied(_)) => done("applied"),
        Ok(BankOutcome::AlreadyApplied { .. }) => done("already_applied"),
        Ok(BankOutcome::NotApplicable(illegal)) => rejected(
            Some(id_text),
            Some(outcome),
            ProblemCode::IllegalPayoutTransition.as_str(),
            illegal.to_string(),
        ),
        Err(
            e @ (ApiError::NotFound(_) | ApiError::Conflict { .. } | ApiError::RequestInProgress),
        ) => rejected(Some(id_text), Some(outcome), e.code(), e.to_string()),
        Err(e) => return Err(e),
    })
}
