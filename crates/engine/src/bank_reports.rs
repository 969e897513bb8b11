//! What the bank says about payouts, applied payment by payment: an ISO 20022 pain.002
//! payment status report for a payout file, or a confirmation CSV of operations.
//! Each payment is applied once, in its own transaction, so the same file can be
//! applied again safely.

use settlement_bankfiles::{outcome, parse_pain002, Outcome};
use settlement_domain::payout::PayoutStatus;
use settlement_store::payouts;
use settlement_wire::bank_reports::{
    ConfirmationReport, LineResult, PaymentResult, StatusReportResult,
};
use settlement_wire::ProblemCode;
use sqlx::PgPool;
use uuid::Uuid;

use crate::db::in_transaction;
use crate::error::EngineError;
use crate::settlement::{apply_bank_outcome, BankOutcome};

/// What one payment asks of its payout.
struct Instruction {
    end_to_end_id: String,
    payout_id: Uuid,
    status: String,
    reason_code: Option<String>,
    outcome: Outcome,
}

fn refused(detail: impl Into<String>) -> EngineError {
    EngineError::Validation {
        detail: detail.into(),
        field: None,
    }
}

/// Applies a pain.002 report. The whole report is checked first (well formed, a
/// supported version, naming a payout file this service exported, every payment one
/// of that file's payouts, every status known); any fault refuses it whole and
/// changes nothing. Then settled payments mark their payouts paid and rejected ones
/// failed with the ISO reason code (an account reason holds the merchant's payouts),
/// each once: the same report again answers `already_applied`.
pub async fn apply_status_report(
    pool: &PgPool,
    actor: &str,
    body: &[u8],
) -> Result<StatusReportResult, EngineError> {
    let text = std::str::from_utf8(body).map_err(|_| refused("the report is not UTF-8"))?;
    let report = parse_pain002(text)
        .map_err(|e| refused(format!("the pain.002 report cannot be read: {e}")))?;

    let mut conn = pool.acquire().await?;
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
        results.push(apply_payment(pool, actor, &report.message_id, i).await?);
    }
    let count = |r: &str| results.iter().filter(|p| p.result == r).count();
    Ok(StatusReportResult {
        applied: count("applied"),
        already_applied: count("already_applied"),
        in_progress: count("in_progress"),
        not_applicable: count("not_applicable"),
        message_id: report.message_id,
        original_message_id: report.original_message_id,
        group_status: report.group_status,
        payments: results,
    })
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
    pool: &PgPool,
    actor: &str,
    report_id: &str,
    i: Instruction,
) -> Result<PaymentResult, EngineError> {
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
    let applied = in_transaction!(pool, |tx| {
        match &target {
            // Accepted or pending: the payment is on its way; nothing changes.
            None => {
                let current = payouts::find_payout_for_update(&mut tx, i.payout_id)
                    .await?
                    .ok_or(EngineError::NotFound("payout"))?;
                ("in_progress", current.status.as_str().to_owned(), None)
            }
            Some((to, code)) => {
                match apply_bank_outcome(&mut tx, actor, i.payout_id, *to, code.as_deref(), &reason)
                    .await?
                {
                    BankOutcome::Applied(view) => ("applied", view.status, None),
                    BankOutcome::AlreadyApplied { status } => {
                        ("already_applied", status.as_str().to_owned(), None)
                    }
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
        result: result.to_owned(),
        payout_status,
        detail,
    })
}

/// Most lines one confirmation file may hold.
pub const MAX_CONFIRMATION_LINES: usize = 10_000;

/// Applies a confirmation file: CSV lines `payout_id,outcome[,failure_code]` with
/// `outcome` `paid` or `failed`; a header line is optional. Each line is applied once
/// in its own transaction: a line whose payout is already in that state reports
/// `already_applied`, so the same file can be uploaded again safely.
pub async fn apply_confirmations(
    pool: &PgPool,
    actor: &str,
    body: &[u8],
) -> Result<ConfirmationReport, EngineError> {
    std::str::from_utf8(body).map_err(|_| EngineError::field("body", "must be UTF-8 text"))?;
    // RFC 4180 records of 2 or 3 fields, blank lines and a header line skipped.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(body);
    let mut records = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, csv::Position::line);
            EngineError::field("body", format!("line {line} is not valid CSV"))
        })?;
        let line = line_of(body, record.position());
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
        return Err(EngineError::PanNotAllowed);
    }
    if records.len() > MAX_CONFIRMATION_LINES {
        return Err(EngineError::field(
            "body",
            format!("holds more than {MAX_CONFIRMATION_LINES} lines"),
        ));
    }
    let mut results = Vec::with_capacity(records.len());
    for (line, record) in &records {
        let fields: Vec<&str> = record.iter().collect();
        results.push(apply_confirmation_line(pool, actor, *line, &fields).await?);
    }
    let count = |r: &str| results.iter().filter(|l| l.result == r).count();
    Ok(ConfirmationReport {
        applied: count("applied"),
        already_applied: count("already_applied"),
        rejected: count("rejected"),
        lines: results,
    })
}

/// The line (from 1) a record starts on. The reader's own line count is off after
/// CRLF line ends and blank lines, so it is counted from the record's byte offset,
/// past the line ends that precede the record.
pub(crate) fn line_of(body: &[u8], position: Option<&csv::Position>) -> usize {
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
    pool: &PgPool,
    actor: &str,
    line: usize,
    fields: &[&str],
) -> Result<LineResult, EngineError> {
    let rejected =
        |payout_id: Option<&str>, outcome: Option<&str>, code: &str, detail: String| LineResult {
            line,
            payout_id: payout_id.map(str::to_owned),
            outcome: outcome.map(str::to_owned),
            result: "rejected".to_owned(),
            code: Some(code.to_owned()),
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
    let result = in_transaction!(pool, |tx| {
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
    let done = |result: &str| LineResult {
        line,
        payout_id: Some(id_text.to_owned()),
        outcome: Some(outcome.to_owned()),
        result: result.to_owned(),
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
        Err(e @ EngineError::NotFound(_)) => rejected(
            Some(id_text),
            Some(outcome),
            ProblemCode::NotFound.as_str(),
            e.to_string(),
        ),
        Err(EngineError::Conflict { code, detail }) => {
            rejected(Some(id_text), Some(outcome), code.as_str(), detail)
        }
        Err(e @ EngineError::RequestInProgress) => rejected(
            Some(id_text),
            Some(outcome),
            ProblemCode::RequestInProgress.as_str(),
            e.to_string(),
        ),
        Err(e) => return Err(e),
    })
}

/// Checks a failure code: 1 to 64 lower-case letters, digits or '_'.
pub fn check_failure_code(code: &str) -> Result<(), EngineError> {
    let ok = (1..=64).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(EngineError::field(
            "failure_code",
            "must be 1 to 64 lower-case letters, digits or '_'",
        ))
    }
}
