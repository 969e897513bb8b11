//! The batch close: reconcile, judge lateness, book, and answer idempotently.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use settlement_wire::batches::BatchView;
use settlement_wire::close::CloseAnswer;
use settlement_wire::problem;
use settlement_wire::ProblemCode;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use chrono::NaiveDate;
use settlement_domain::batch::BatchClose;
use settlement_domain::batch_number::ReuseWindow;
use settlement_domain::close_plan::{self, plan_close, BatchPlan, ClosePlan};
use settlement_domain::exception::AttemptOutcome;
use settlement_domain::lateness::BatchStatus;
use settlement_domain::money::format_amount;
use settlement_domain::presentment::presented_rrns;
use settlement_store::batches::{self, BatchRow};
use settlement_store::close as close_store;
use settlement_store::merchants::MerchantRow;
use settlement_store::presentments::{self, Repeat};
use settlement_store::{close_attempts, idempotency, is_constraint_violation, ledger, locks};

use crate::db::{in_transaction, Plans};
use crate::error::EngineError;
use crate::events;
use crate::profile::profile_of;
use crate::settlement;
use crate::views::{timestamp, FromRow};

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
}

/// How a close finds lines that repeat transactions presented already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeats {
    /// The lines' insert is the only check (the database refuses a second
    /// presentment) and a refusal answers [`EngineError::Presented`]. Nearly every
    /// close repeats nothing, and so reads nothing for it.
    LeftToTheDatabase,
    /// Looked for before booking, to name them and keep the attempt.
    FoundFirst,
}

/// Closes a batch: applies it in its own transaction (retried on transient
/// failures), once more to name the repeats if the database refused a repeated
/// transaction, and counts it once committed.
pub async fn close_batch(
    pool: &PgPool,
    req: &CloseRequest<'_>,
) -> Result<CloseOutcome, EngineError> {
    // Every statement of a close is an index lookup or an insert of the rows given:
    // planned once per connection, not at each close.
    let outcome = match in_transaction!(pool, EngineError, Plans::Generic, |tx| {
        apply_close(&mut tx, req, Repeats::LeftToTheDatabase).await?
    }) {
        Err(EngineError::Presented) => in_transaction!(pool, EngineError, Plans::Generic, |tx| {
            apply_close(&mut tx, req, Repeats::FoundFirst).await?
        })?,
        other => other?,
    };
    outcome.count();
    Ok(outcome)
}

/// Applies a close inside the caller's transaction: reads what it needs under the
/// close's locks, decides in one pure call ([`plan_close`]), then writes. A booked
/// close is four statements: the locks with the merchant, the reads, the writes,
/// and the commit. Every outcome that wrote something (a booked or held batch, an
/// out-of-balance attempt) is stored under the idempotency key in the same
/// transaction; errors write nothing.
#[tracing::instrument(name = "batch.close_transaction", skip_all, fields(terminal_id = req.terminal_id))]
pub async fn apply_close(
    conn: &mut PgConnection,
    req: &CloseRequest<'_>,
    repeats: Repeats,
) -> Result<CloseOutcome, EngineError> {
    // One close per terminal at a time: a terminal closes its batches one after the
    // other, so this costs nothing and makes "closed already?" and "this key seen
    // already?" settled questions. The merchant's cycle lock, shared, keeps the cycle
    // the batch joins open until commit.
    let merchant = locks::lock_close_and_find_merchant(conn, req.terminal_id, req.merchant_id)
        .await?
        .ok_or(EngineError::NotFound("terminal"))?;
    let close = req.close;
    let currency = close.currency;
    let batch_number =
        i32::try_from(close.batch_number).map_err(|e| EngineError::Internal(e.into()))?;

    // The decision does not depend on what is read next; it is made first so the
    // read can ask for the cycles and accounts it needs. Its refusal is answered
    // after the idempotency key is checked, as a replay comes first.
    let planned = plan(&merchant, req);
    let wants = match &planned {
        Ok(ClosePlan::Batch(p)) => Reads {
            cycles_from: p.lateness.cycle_date,
            accounts: p.entry.as_ref().map_or_else(Vec::new, |e| {
                e.postings()
                    .iter()
                    .map(|p| (p.account.kind.as_str(), p.account.merchant_id.as_deref()))
                    .collect()
            }),
        },
        _ => Reads::default(),
    };
    let state = close_store::read_close_state(
        conn,
        &close_store::CloseQuery {
            terminal_id: req.terminal_id,
            idempotency_key: req.idempotency_key,
            batch_number,
            merchant_id: &merchant.merchant_id,
            currency: currency.code(),
            cycles_from: wants.cycles_from,
            cycle_days: i32::try_from(close_plan::CYCLE_LOOKAHEAD_DAYS).unwrap_or(i32::MAX),
            accounts: &wants.accounts,
        },
    )
    .await?;
    if let Some(stored) = state.key {
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
    let plan = planned?;

    // Counters wrap, so a number is closed once per use: the latest use decides.
    let number_use = match &state.latest {
        // The very batch sent again, however long ago it was closed: its content
        // holds its capture times, so a new use of the number never matches it.
        Some(latest) if latest.content_hash == req.digest => {
            let existing =
                batches::find_batch_by_terminal_and_number(conn, req.terminal_id, batch_number)
                    .await?
                    .ok_or_else(|| {
                        EngineError::Internal(anyhow::anyhow!("batch {} vanished", latest.batch_id))
                    })?;
            let outcome = response_for_batch(&existing, CloseAnswer::SameContent)?;
            return store_answer(conn, req, outcome).await;
        }
        Some(latest)
            if !req
                .number_reuse
                .allows_reuse(latest.received_at, req.received_at) =>
        {
            return Err(EngineError::BatchAlreadyClosed {
                batch_id: latest.batch_id,
            })
        }
        // The counter wrapped: a new batch under the number's next use.
        Some(latest) => latest
            .number_use
            .checked_add(1)
            .ok_or_else(|| EngineError::Internal(anyhow::anyhow!("batch number used too often")))?,
        None => 1,
    };
    let merchant_id = merchant.merchant_id.as_str();
    let batch = match plan {
        ClosePlan::OutOfBalance(diffs) => {
            let outcome =
                record_out_of_balance(conn, req, merchant_id, batch_number, &diffs).await?;
            return store_answer(conn, req, outcome).await;
        }
        ClosePlan::Batch(batch) => batch,
    };

    // Each transaction is paid once: the lines' insert presents their RRNs and the
    // database refuses a second presentment. Only a close refused that way looks for
    // the repeats (one statement), to name them and keep the attempt.
    if repeats == Repeats::FoundFirst {
        let rrns: Vec<&str> = presented_rrns(&close.lines).collect();
        let repeats = presentments::find_presented(conn, req.terminal_id, &rrns).await?;
        if !repeats.is_empty() {
            let outcome = record_duplicates(conn, req, merchant_id, batch_number, &repeats).await?;
            return store_answer(conn, req, outcome).await;
        }
    }
    book(
        conn,
        req,
        merchant_id,
        batch,
        batch_number,
        number_use,
        &state.closed_cycles,
        state.account_ids,
    )
    .await
}

/// What the read after the locks asks for besides the key and the batch number.
#[derive(Default)]
struct Reads<'a> {
    cycles_from: Option<NaiveDate>,
    accounts: Vec<(&'a str, Option<&'a str>)>,
}

/// The close's decision from the merchant's profile: a pure call.
fn plan(merchant: &MerchantRow, req: &CloseRequest<'_>) -> Result<ClosePlan, EngineError> {
    if req.close.currency.code() != merchant.default_currency {
        return Err(EngineError::CurrencyNotAccepted {
            expected: merchant.default_currency.clone(),
        });
    }
    let profile = profile_of(merchant)?;
    Ok(plan_close(
        &merchant.merchant_id,
        req.close,
        &profile,
        req.received_at,
    )?)
}

/// Stores a refusal's or a resend's answer under the idempotency key.
async fn store_answer(
    conn: &mut PgConnection,
    req: &CloseRequest<'_>,
    outcome: CloseOutcome,
) -> Result<CloseOutcome, EngineError> {
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

/// Writes a balanced batch, booked or held, in one statement.
#[allow(clippy::too_many_arguments)]
async fn book(
    conn: &mut PgConnection,
    req: &CloseRequest<'_>,
    merchant_id: &str,
    plan: BatchPlan,
    batch_number: i32,
    number_use: i32,
    closed_cycles: &[NaiveDate],
    account_ids: Vec<Option<i64>>,
) -> Result<CloseOutcome, EngineError> {
    let close = req.close;
    let currency = close.currency;
    let lateness = plan.lateness;
    // A booked batch joins the first cycle still open from its cycle date on: if its
    // cycle closed while this close waited for the cycle lock, it goes to the next one.
    let cycle_date = lateness
        .cycle_date
        .map(|date| settlement::first_open_cycle(merchant_id, date, closed_cycles))
        .transpose()?;
    let description = format!("batch {batch_number} of terminal {}", req.terminal_id);
    let postings: Vec<(i64, i64)> = match &plan.entry {
        Some(entry) => {
            let ids = if account_ids.iter().all(Option::is_some) {
                account_ids.into_iter().flatten().collect()
            } else {
                // An account's first booking creates it.
                let accounts: Vec<_> = entry.postings().iter().map(|p| &p.account).collect();
                ledger::account_ids(conn, &accounts).await?
            };
            ids.into_iter()
                .zip(entry.postings().iter().map(|p| p.amount_minor))
                .collect()
        }
        None => Vec::new(),
    };
    let row = BatchRow {
        id: Uuid::now_v7(),
        terminal_id: req.terminal_id.to_owned(),
        merchant_id: merchant_id.to_owned(),
        batch_number,
        status: lateness.status,
        currency: currency.code().to_owned(),
        business_date: lateness.business_date,
        cycle_date,
        received_at: req.received_at,
        cutoff_at: lateness.cutoff_at,
        grace_deadline: lateness.grace_deadline,
        late_by_seconds: lateness.late_by_seconds,
        sale_count: plan.totals.sale_count,
        sale_amount_minor: plan.totals.sale_amount_minor,
        refund_count: plan.totals.refund_count,
        refund_amount_minor: plan.totals.refund_amount_minor,
        void_count: plan.totals.void_count,
        void_amount_minor: plan.totals.void_amount_minor,
        net_amount_minor: plan.net_amount_minor,
        line_count: i32::try_from(close.lines.len())
            .map_err(|e| EngineError::Internal(e.into()))?,
        content_hash: req.digest.to_vec(),
        journal_entry_id: plan.entry.as_ref().map(|_| Uuid::now_v7()),
        fee_minor: plan.fee_minor,
        settlement_cycle_id: None,
        operator_reason: None,
        number_use,
    };
    let event_type = match lateness.status {
        BatchStatus::Accepted | BatchStatus::AcceptedByOperator => events::BATCH_ACCEPTED,
        BatchStatus::AcceptedLate => events::BATCH_ACCEPTED_LATE,
        BatchStatus::RejectedOutsideGrace => events::BATCH_REJECTED,
        BatchStatus::Declined => events::BATCH_DECLINED,
    };
    let event = events::event_row(
        Uuid::now_v7(),
        merchant_id,
        event_type,
        &BatchView::from_row(&row)?,
    )?;
    let outcome = response_for_batch(&row, CloseAnswer::Booked)?;
    close_store::write_close(
        conn,
        &close_store::NewClose {
            batch: &row,
            lines: &close.lines,
            entry: plan.entry.as_ref().map(|_| close_store::BookedEntry {
                description: &description,
                postings: &postings,
            }),
            resolution: &format!("batch {} was closed afterwards ({})", row.id, row.status),
            event: &event,
            idempotency_key: req.idempotency_key,
            response_status: outcome.status,
            response_body: &outcome.body,
        },
    )
    .await
    .map_err(|e| {
        if is_constraint_violation(&e, presentments::PRESENTED_INDEX) {
            EngineError::Presented
        } else {
            e.into()
        }
    })?;
    tracing::info!(
        batch_id = %row.id,
        terminal_id = req.terminal_id,
        batch_number,
        status = row.status.as_str(),
        "batch closed"
    );
    Ok(outcome)
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
        AttemptOutcome::OutOfBalance,
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
    let held: Vec<&Repeat> = repeats.iter().filter(|r| r.status.is_held()).collect();
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
        AttemptOutcome::DuplicateTransactions,
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
        status: row.status,
        late_by_seconds: row.late_by_seconds,
    };
    if row.status == BatchStatus::RejectedOutsideGrace {
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
