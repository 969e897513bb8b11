//! The batch close: reconcile, judge lateness, book, and answer idempotently.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use settlement_wire::close::CloseAnswer;
use settlement_wire::problem;
use settlement_wire::ProblemCode;
use sqlx::PgConnection;
use uuid::Uuid;

use settlement_domain::batch::BatchClose;
use settlement_domain::batch_number::ReuseWindow;
use settlement_domain::fees::{batch_fee, non_voided_sales};
use settlement_domain::lateness::{judge, BatchStatus};
use settlement_domain::ledger::batch_acceptance_entry;
use settlement_domain::merchant::SettlementProfile;
use settlement_domain::money::format_amount;
use settlement_domain::presentment::presented_rrns;
use settlement_domain::reconciliation::{differences, host_totals};
use settlement_store::batches::{self, BatchRow};
use settlement_store::presentments::{self, Repeat};
use settlement_store::{close_attempts, idempotency, is_constraint_violation, ledger, locks};

use crate::error::EngineError;
use crate::events;
use crate::profile::profile_of;
use crate::settlement;
use crate::views::{timestamp, BatchView};

/// What became of a close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A batch, new or sent again with the same content, with its status.
    Batch {
        status: BatchStatus,
        late_by_seconds: i64,
    },
    /// Refused: the control totals differ from the lines.
    OutOfBalance,
    /// Refused: lines repeat transactions another batch presents.
    DuplicateTransactions,
    /// The answer stored for the idempotency key, replayed.
    Replayed,
}

/// What a close answered: the decision, and the status and body stored under the
/// idempotency key (the status as the contract sets it for each [`CloseAnswer`]).
pub struct CloseOutcome {
    pub decision: Decision,
    pub status: u16,
    pub body: Value,
}

impl CloseOutcome {
    fn new(decision: Decision, answer: CloseAnswer, body: Value) -> Self {
        CloseOutcome {
            decision,
            status: answer.status(),
            body,
        }
    }

    /// A refusal: a problem document with its code.
    fn refused(
        decision: Decision,
        code: ProblemCode,
        detail: &str,
        extensions: Map<String, Value>,
    ) -> Self {
        let answer = CloseAnswer::Refused;
        CloseOutcome::new(
            decision,
            answer,
            problem::document(answer.status(), answer.title(), code, detail, extensions),
        )
    }

    /// True when this is the stored answer of an earlier request, replayed.
    pub fn is_replay(&self) -> bool {
        self.decision == Decision::Replayed
    }

    /// Counts the close in the metrics (a replay is not counted again). Called once
    /// the close has committed.
    pub fn count(&self) {
        let metrics = &crate::metrics::METRICS;
        let outcome = match self.decision {
            Decision::Batch {
                status: BatchStatus::AcceptedLate,
                late_by_seconds,
            } => {
                metrics.batch_late_by.observe(f64::from(
                    i32::try_from(late_by_seconds).unwrap_or(i32::MAX),
                ));
                BatchStatus::AcceptedLate.as_str()
            }
            Decision::Batch { status, .. } => status.as_str(),
            Decision::OutOfBalance => "out_of_balance",
            Decision::DuplicateTransactions => "duplicate_transactions",
            Decision::Replayed => return,
        };
        metrics.batches_closed.with_label_values(&[outcome]).inc();
    }
}

/// One close request, checked and ready to be applied.
pub struct CloseRequest<'a> {
    pub terminal_id: &'a str,
    pub merchant_id: &'a str,
    pub idempotency_key: &'a str,
    pub digest: &'a [u8],
    pub close: &'a BatchClose,
    pub received_at: DateTime<Utc>,
    /// How old the last use of the batch number must be for this close to use it again.
    pub number_reuse: ReuseWindow,
    /// Look for repeated transactions before booking, to name them. Off, the lines'
    /// insert is the only check (the database refuses a second presentment) and a
    /// refusal answers [`EngineError::Presented`]: the caller applies the close again
    /// with this on. Nearly every close repeats nothing, and so reads nothing for it.
    pub find_repeats_first: bool,
}

/// Applies a close inside the caller's transaction. Every outcome that wrote
/// something (a booked or rejected batch, an out-of-balance attempt) is stored under
/// the idempotency key in the same transaction; errors write nothing.
#[tracing::instrument(name = "batch.close_transaction", skip_all, fields(terminal_id = req.terminal_id))]
pub async fn apply_close(
    conn: &mut PgConnection,
    req: &CloseRequest<'_>,
) -> Result<CloseOutcome, EngineError> {
    // One close per terminal at a time: a terminal closes its batches one after the
    // other, so this costs nothing and makes "closed already?" and "this key seen
    // already?" settled questions.
    let merchant =
        locks::lock_terminal_close_and_find_merchant(conn, req.terminal_id, req.merchant_id)
            .await?
            .ok_or(EngineError::NotFound("terminal"))?;
    if let Some(stored) = idempotency::find_key(conn, req.terminal_id, req.idempotency_key).await? {
        if stored.request_hash != req.digest {
            return Err(EngineError::IdempotencyKeyReused);
        }
        return match (stored.response_status, stored.response_body) {
            (Some(status), Some(body)) => Ok(CloseOutcome {
                decision: Decision::Replayed,
                status: u16::try_from(status).unwrap_or(500),
                body,
            }),
            _ => Err(EngineError::RequestInProgress),
        };
    }

    let close = req.close;
    let currency = close.currency;
    if currency.code() != merchant.default_currency {
        return Err(EngineError::CurrencyNotAccepted {
            expected: merchant.default_currency.clone(),
        });
    }
    let profile = profile_of(&merchant)?;

    let batch_number =
        i32::try_from(close.batch_number).map_err(|e| EngineError::Internal(e.into()))?;
    // Counters wrap, so a number is closed once per use: the latest use decides.
    let outcome =
        match batches::find_batch_by_terminal_and_number(conn, req.terminal_id, batch_number)
            .await?
        {
            // The very batch sent again, however long ago it was closed: its content
            // holds its capture times, so a new use of the number never matches it.
            Some(existing) if existing.content_hash == req.digest => {
                response_for_batch(&existing, CloseAnswer::SameContent)?
            }
            Some(existing)
                if !req
                    .number_reuse
                    .allows_reuse(existing.received_at, req.received_at) =>
            {
                return Err(EngineError::BatchAlreadyClosed {
                    batch_id: existing.id,
                })
            }
            // The counter wrapped: a new batch under the number's next use.
            Some(existing) => {
                let number_use = existing.number_use.checked_add(1).ok_or_else(|| {
                    EngineError::Internal(anyhow::anyhow!("batch number used too often"))
                })?;
                book_close(
                    conn,
                    req,
                    &merchant.merchant_id,
                    &profile,
                    batch_number,
                    number_use,
                )
                .await?
            }
            None => book_close(conn, req, &merchant.merchant_id, &profile, batch_number, 1).await?,
        };
    idempotency::store_key(
        conn,
        req.terminal_id,
        req.idempotency_key,
        req.digest,
        outcome.status,
        &outcome.body,
    )
    .await?;
    Ok(outcome)
}

async fn book_close(
    conn: &mut PgConnection,
    req: &CloseRequest<'_>,
    merchant_id: &str,
    profile: &SettlementProfile,
    batch_number: i32,
    number_use: i32,
) -> Result<CloseOutcome, EngineError> {
    let close = req.close;
    let currency = close.currency;
    let host = host_totals(&close.lines)?;
    let diffs = differences(&close.terminal_totals, &host);
    if !diffs.is_empty() {
        return record_out_of_balance(conn, req, merchant_id, batch_number, &diffs).await;
    }

    // Each transaction is paid once: the lines' insert presents their RRNs and the
    // database refuses a second presentment. Only a close refused that way looks for
    // the repeats (one statement), to name them and keep the attempt.
    if req.find_repeats_first {
        let rrns: Vec<&str> = presented_rrns(&close.lines).collect();
        let repeats = presentments::find_presented(conn, req.terminal_id, &rrns).await?;
        if !repeats.is_empty() {
            return record_duplicates(conn, req, merchant_id, batch_number, &repeats).await;
        }
    }
    let batch_id = Uuid::now_v7();

    let oldest = close
        .oldest_captured_at()
        .ok_or_else(|| EngineError::field("transactions", "must hold at least one line"))?;
    let lateness = judge(profile, oldest, req.received_at);
    let net = host
        .net_amount_minor()
        .ok_or_else(|| EngineError::field("transactions", "amounts overflow"))?;
    let (sale_count, sale_amount) = non_voided_sales(&close.lines);
    // A batch held for operations is not charged until it is booked.
    let fee_minor = if lateness.status.is_booked() {
        batch_fee(sale_count, sale_amount, profile.pricing)
            .ok_or_else(|| EngineError::field("transactions", "amounts overflow"))?
    } else {
        0
    };
    // A booked batch joins the first cycle still open from its cycle date on: if its
    // cycle closed while this close was in flight, it goes to the next one.
    let cycle_date = match lateness.cycle_date {
        Some(date) => {
            Some(settlement::open_cycle_date(conn, merchant_id, currency.code(), date).await?)
        }
        None => None,
    };
    let entry_id = match batch_acceptance_entry(merchant_id, currency, net) {
        Some(entry) if lateness.status.is_booked() => Some(
            ledger::insert_journal_entry(
                conn,
                "batch_accepted",
                Some(merchant_id),
                &format!("batch {batch_number} of terminal {}", req.terminal_id),
                &entry,
            )
            .await?,
        ),
        _ => None,
    };
    let row = BatchRow {
        id: batch_id,
        terminal_id: req.terminal_id.to_owned(),
        merchant_id: merchant_id.to_owned(),
        batch_number,
        status: lateness.status.as_str().to_owned(),
        currency: currency.code().to_owned(),
        business_date: lateness.business_date,
        cycle_date,
        received_at: req.received_at,
        cutoff_at: lateness.cutoff_at,
        grace_deadline: lateness.grace_deadline,
        late_by_seconds: lateness.late_by_seconds,
        sale_count: host.sale_count,
        sale_amount_minor: host.sale_amount_minor,
        refund_count: host.refund_count,
        refund_amount_minor: host.refund_amount_minor,
        void_count: host.void_count,
        void_amount_minor: host.void_amount_minor,
        net_amount_minor: net,
        line_count: i32::try_from(close.lines.len())
            .map_err(|e| EngineError::Internal(e.into()))?,
        content_hash: req.digest.to_vec(),
        journal_entry_id: entry_id,
        fee_minor,
        settlement_cycle_id: None,
        operator_reason: None,
        number_use,
    };
    if !batches::insert_batch(conn, &row).await? {
        // The terminal lock above makes this unreachable; refuse rather than guess.
        return Err(EngineError::Internal(anyhow::anyhow!(
            "batch {batch_number} (use {number_use}) of {} appeared while locked",
            req.terminal_id
        )));
    }
    batches::insert_batch_lines(conn, row.id, req.terminal_id, &close.lines)
        .await
        .map_err(|e| {
            if is_constraint_violation(&e, presentments::PRESENTED_INDEX) {
                EngineError::Presented
            } else {
                e.into()
            }
        })?;
    close_attempts::resolve_open_attempts(
        conn,
        req.terminal_id,
        batch_number,
        &format!("batch {} was closed afterwards ({})", row.id, row.status),
    )
    .await?;
    let event_type = match lateness.status {
        BatchStatus::Accepted | BatchStatus::AcceptedByOperator => events::BATCH_ACCEPTED,
        BatchStatus::AcceptedLate => events::BATCH_ACCEPTED_LATE,
        BatchStatus::RejectedOutsideGrace => events::BATCH_REJECTED,
        BatchStatus::Declined => events::BATCH_DECLINED,
    };
    events::emit(conn, merchant_id, event_type, &BatchView::from_row(&row)?).await?;
    tracing::info!(
        batch_id = %row.id,
        terminal_id = req.terminal_id,
        batch_number,
        status = row.status,
        "batch closed"
    );
    response_for_batch(&row, CloseAnswer::Booked)
}

async fn record_out_of_balance(
    conn: &mut PgConnection,
    req: &CloseRequest<'_>,
    merchant_id: &str,
    batch_number: i32,
    diffs: &[settlement_domain::reconciliation::TotalDifference],
) -> Result<CloseOutcome, EngineError> {
    let currency = req.close.currency;
    let shown = |total: &str, v: i64| {
        if total.ends_with("_amount") {
            format_amount(v, currency)
        } else {
            v.to_string()
        }
    };
    let listed: Vec<Value> = diffs
        .iter()
        .map(|d| json!({"total": d.total, "terminal": shown(d.total, d.terminal), "host": shown(d.total, d.host)}))
        .collect();
    let attempt_id = close_attempts::insert_close_attempt(
        conn,
        close_attempts::OUT_OF_BALANCE,
        req.terminal_id,
        merchant_id,
        batch_number,
        currency.code(),
        &Value::Array(listed.clone()),
        req.received_at,
    )
    .await?;
    tracing::info!(%attempt_id, terminal_id = req.terminal_id, batch_number, "batch out of balance");
    events::emit(
        conn,
        merchant_id,
        events::BATCH_OUT_OF_BALANCE,
        &json!({
            "attempt_id": attempt_id,
            "terminal_id": req.terminal_id,
            "batch_number": batch_number,
            "currency": currency.code(),
            "received_at": timestamp(req.received_at),
            "differences": listed,
        }),
    )
    .await?;
    let mut ext = Map::new();
    ext.insert("differences".into(), Value::Array(listed.clone()));
    ext.insert("attempt_id".into(), json!(attempt_id));
    Ok(CloseOutcome::refused(
        Decision::OutOfBalance,
        ProblemCode::OutOfBalance,
        "the terminal's control totals differ from its transaction lines; nothing was booked. \
         Correct the batch and close it again under a new Idempotency-Key.",
        ext,
    ))
}

/// The repeated lines of a close, each with the batch that presents it, as the API
/// lists them.
pub fn duplicates_json<'a>(
    lines: impl Iterator<Item = (&'a str, &'a str)>,
    repeats: &[Repeat],
) -> Value {
    let by_rrn: std::collections::HashMap<&str, &Repeat> =
        repeats.iter().map(|r| (r.rrn.as_str(), r)).collect();
    Value::Array(
        lines
            .filter_map(|(stan, rrn)| {
                by_rrn.get(rrn).map(|r| {
                    json!({
                        "stan": stan,
                        "rrn": rrn,
                        "batch": {"id": r.batch_id, "batch_number": r.batch_number, "status": r.status},
                    })
                })
            })
            .collect(),
    )
}

/// What a terminal and merchant read about repeated transactions: where they are paid
/// already, or that they wait for operations and how to ask for a review.
pub fn duplicates_detail(merchant_id: &str, repeats: &[Repeat]) -> String {
    let held: Vec<&Repeat> = repeats
        .iter()
        .filter(|r| BatchStatus::parse(&r.status).is_some_and(BatchStatus::is_held))
        .collect();
    let mut detail = match repeats.len() {
        1 => "1 of these transactions was presented already by this terminal in another batch; \
              a transaction is paid once, so nothing was booked."
            .to_owned(),
        n => format!(
            "{n} of these transactions were presented already by this terminal in another \
             batch; a transaction is paid once, so nothing was booked."
        ),
    };
    if held.len() < repeats.len() {
        detail.push_str(
            " Those in a booked batch are paid with it: close this batch again without them, \
             under a new Idempotency-Key.",
        );
    }
    let mut held_batches: Vec<(i32, uuid::Uuid)> =
        held.iter().map(|r| (r.batch_number, r.batch_id)).collect();
    held_batches.sort_unstable();
    held_batches.dedup();
    for (number, id) in held_batches {
        detail.push_str(&format!(
            " Batch {number} holds some of them: it was closed after its grace deadline and waits \
             for operations, so do not enter them again; to have it paid, ask for a review with \
             POST /v1/merchants/{merchant_id}/batches/{id}/review-requests."
        ));
    }
    detail
}

async fn record_duplicates(
    conn: &mut PgConnection,
    req: &CloseRequest<'_>,
    merchant_id: &str,
    batch_number: i32,
    repeats: &[Repeat],
) -> Result<CloseOutcome, EngineError> {
    let currency = req.close.currency;
    let listed = duplicates_json(
        req.close
            .lines
            .iter()
            .filter(|l| settlement_domain::presentment::presents(l))
            .map(|l| (l.stan.as_str(), l.rrn.as_str())),
        repeats,
    );
    let attempt_id = close_attempts::insert_close_attempt(
        conn,
        close_attempts::DUPLICATE_TRANSACTIONS,
        req.terminal_id,
        merchant_id,
        batch_number,
        currency.code(),
        &listed,
        req.received_at,
    )
    .await?;
    tracing::info!(%attempt_id, terminal_id = req.terminal_id, batch_number, "batch repeats presented transactions");
    let detail = duplicates_detail(merchant_id, repeats);
    events::emit(
        conn,
        merchant_id,
        events::BATCH_DUPLICATE_TRANSACTIONS,
        &json!({
            "attempt_id": attempt_id,
            "terminal_id": req.terminal_id,
            "batch_number": batch_number,
            "currency": currency.code(),
            "received_at": timestamp(req.received_at),
            "duplicates": listed,
            "detail": detail,
        }),
    )
    .await?;
    let mut ext = Map::new();
    ext.insert("duplicates".into(), listed);
    ext.insert("attempt_id".into(), json!(attempt_id));
    Ok(CloseOutcome::refused(
        Decision::DuplicateTransactions,
        ProblemCode::DuplicateTransactions,
        &detail,
        ext,
    ))
}

/// The answer for a stored batch: the batch for an accepted one, a problem naming the
/// missed grace deadline for a rejected one.
fn response_for_batch(row: &BatchRow, success: CloseAnswer) -> Result<CloseOutcome, EngineError> {
    let view = BatchView::from_row(row)?;
    let decision = Decision::Batch {
        status: BatchStatus::parse(&row.status).ok_or_else(|| {
            EngineError::Internal(anyhow::anyhow!("stored batch status {:?}", row.status))
        })?,
        late_by_seconds: row.late_by_seconds,
    };
    if BatchStatus::parse(&row.status) == Some(BatchStatus::RejectedOutsideGrace) {
        let mut ext = Map::new();
        ext.insert("batch_id".into(), json!(row.id));
        ext.insert(
            "grace_deadline".into(),
            json!(timestamp(row.grace_deadline)),
        );
        ext.insert(
            "batch".into(),
            serde_json::to_value(&view).map_err(|e| EngineError::Internal(e.into()))?,
        );
        return Ok(CloseOutcome::refused(
            decision,
            ProblemCode::BatchOutsideGraceWindow,
            &format!(
                "the batch was received after its grace deadline {}; it is kept for the record, not paid, \
                 and handed to operations",
                timestamp(row.grace_deadline)
            ),
            ext,
        ));
    }
    Ok(CloseOutcome::new(
        decision,
        success,
        serde_json::to_value(&view).map_err(|e| EngineError::Internal(e.into()))?,
    ))
}
