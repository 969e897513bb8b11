//! The batch close: reconcile, judge lateness, book, and answer idempotently.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use settlement_wire::batches::BatchView;
use settlement_wire::close::CloseAnswer;
use settlement_wire::problem;
use settlement_wire::ProblemCode;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use settlement_domain::batch::BatchClose;
use settlement_domain::batch_number::ReuseWindow;
use settlement_domain::close_plan::{self, plan_close, BatchPlan, ClosePlan};
use settlement_domain::exception::AttemptOutcome;
use settlement_domain::host_match::{match_lines, HostMatching, Mismatch};
use settlement_domain::lateness::BatchOrigin;
use settlement_domain::lateness::BatchStatus;
use settlement_domain::ledger::JournalEntry;
use settlement_domain::money::format_amount;
use settlement_domain::presentment::presented_rrns;
use settlement_domain::presentment::presents;
use settlement_store::batches::{self, BatchRow};
use settlement_store::close as close_store;
use settlement_store::merchants::MerchantRow;
use settlement_store::presentments::{self, Repeat};
use settlement_store::{close_attempts, idempotency, is_constraint_violation, ledger, locks};

use crate::db::{in_transaction, Plans};
use crate::error::EngineError;
use crate::events;
use crate::profile::{host_matching_of, profile_of};
use crate::settlement;
use crate::views::{timestamp, ReadRow, Reader};
use settlement_i18n::Lang;

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
    /// The language the answer is written in.
    pub lang: &'a Lang,
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
    let rrns: Vec<&str> = presented_rrns(&close.lines).collect();
    let presenting: Vec<&settlement_domain::batch::TransactionLine> =
        close.lines.iter().filter(|l| presents(l)).collect();
    let stans: Vec<&str> = presenting.iter().map(|l| l.stan.as_str()).collect();
    let amounts: Vec<i64> = presenting.iter().map(|l| l.amount_minor).collect();
    let types: Vec<&str> = presenting.iter().map(|l| l.line_type.as_str()).collect();
    let auth_codes: Vec<Option<&str>> = presenting.iter().map(|l| l.auth_code.as_deref()).collect();
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
            rrns: &rrns,
            stans: &stans,
            amounts: &amounts,
            types: &types,
            auth_codes: &auth_codes,
        },
    )
    .await?;
    if let Some(stored) = state.key {
        if stored.request_hash != req.digest {
            return Err(EngineError::IdempotencyKeyReused);
        }
        // The stored answer was written in the language its request chose (the
        // retry's, when it asks for the same), else in the merchant's own.
        req.lang.choose(merchant.locale.parse().unwrap_or_default());
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
            let reader = Reader::of_merchant(
                conn,
                &merchant,
                req.lang,
                req.received_at,
                existing.cycle_date,
            )
            .await?;
            let view = BatchView::read_row(&existing, &reader)?;
            let outcome = response_for_batch(&existing, view, CloseAnswer::SameContent)?;
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
    // the repeats (one statement), to name them and keep the attempt. Repeats of a
    // host batch (auto-close) are the one exception: the terminal closed what the host
    // had closed for it, so those lines are recognised as settled, not refused.
    let mut settled: Vec<Repeat> = Vec::new();
    let mut batch = batch;
    if repeats == Repeats::FoundFirst {
        let found = presentments::find_presented(conn, req.terminal_id, &rrns).await?;
        if !all_settled_by_host(&close.lines, &found) {
            let outcome = record_duplicates(conn, req, merchant_id, batch_number, &found).await?;
            return store_answer(conn, req, outcome).await;
        }
        if !found.is_empty() {
            let set: HashSet<&str> = found.iter().map(|r| r.rrn.as_str()).collect();
            let profile = profile_of(&merchant)?;
            batch = match plan_close(merchant_id, close, &profile, req.received_at, &set)? {
                ClosePlan::Batch(b) => b,
                ClosePlan::OutOfBalance(_) => {
                    return Err(EngineError::Internal(anyhow::anyhow!(
                        "a balanced close no longer balances"
                    )))
                }
            };
            settled = found;
        }
    }

    // Matched against the host: lines it did not authorize as presented are listed
    // on the batch (`report`) or refuse the close (`enforce`).
    // The read returned only the lines that do not match (nearly always none); their
    // reasons are the domain's.
    let settled_rrns: HashSet<&str> = settled.iter().map(|r| r.rrn.as_str()).collect();
    let flagged: HashSet<&str> = state
        .unmatched
        .iter()
        .map(|(rrn, _)| rrn.as_str())
        .collect();
    let on_file: Vec<_> = state
        .unmatched
        .iter()
        .filter_map(|(_, auth)| auth.clone())
        .collect();
    let mismatches = match_lines(&close.lines, &on_file, |l| {
        settled_rrns.contains(l.rrn.as_str()) || !flagged.contains(l.rrn.trim_end())
    });
    if !mismatches.is_empty() && host_matching_of(&merchant)? == HostMatching::Enforce {
        return Err(EngineError::UnauthorizedTransactions {
            detail: unauthorized_detail(mismatches.len()),
            unmatched: to_json(&mismatches)?,
        });
    }
    let reader = Reader::of_merchant(
        conn,
        &merchant,
        req.lang,
        req.received_at,
        batch.lateness.cycle_date,
    )
    .await?;
    // The merchant's event is in its own language, whatever the terminal asked for.
    let own = reader.in_locale(merchant.locale.parse().unwrap_or_default());
    book(
        conn,
        req,
        (merchant_id, &reader, &own),
        batch,
        Booking {
            batch_number,
            number_use,
            closed_cycles: &state.closed_cycles,
            account_ids: state.account_ids,
            settled: &settled,
            mismatches: &mismatches,
        },
    )
    .await
}

/// True when every repeat is a host batch's line (auto-close) that the close's line
/// repeats exactly (type, STAN, amount) and that no void of the close cancels: those
/// are recognised as settled. Any other repeat (a terminal's batch, a line that
/// differs from what the host batch paid, a sale the terminal voided after the host
/// paid it) refuses the close whole, as a duplicate, so no amount is lost or paid twice.
fn all_settled_by_host(
    lines: &[settlement_domain::batch::TransactionLine],
    found: &[Repeat],
) -> bool {
    let voided: HashSet<&str> = lines
        .iter()
        .filter_map(|l| l.original_stan.as_deref())
        .collect();
    found.iter().all(|r| {
        let Some(host_line) = r.presenting.as_ref().filter(|_| r.by_auto_close()) else {
            return false;
        };
        lines.iter().filter(|l| presents(l)).any(|l| {
            l.rrn == r.rrn
                && l.stan == host_line.stan
                && l.line_type.as_str() == host_line.line_type
                && l.amount_minor == host_line.amount_minor
                && !voided.contains(l.stan.as_str())
        })
    })
}

/// What a terminal reads when its close is refused for lines the host did not
/// authorize.
fn unauthorized_detail(count: usize) -> String {
    let lines = if count == 1 {
        "1 line of this batch does".to_owned()
    } else {
        format!("{count} lines of this batch do")
    };
    format!(
        "{lines} not match a transaction the card host authorized (listed in unmatched_lines); \
         this merchant's closes must match the host, so nothing was booked. Check them, or \
         close again once the host has reported them; the same Idempotency-Key may be used."
    )
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, EngineError> {
    serde_json::to_value(value).map_err(|e| EngineError::Internal(e.into()))
}

/// What a booking needs besides the plan: the number's use, what the read found,
/// and what matching found.
struct Booking<'a> {
    batch_number: i32,
    number_use: i32,
    closed_cycles: &'a [NaiveDate],
    account_ids: Vec<Option<i64>>,
    /// Lines a host batch settled already, by RRN.
    settled: &'a [Repeat],
    /// Lines the host did not authorize as presented.
    mismatches: &'a [Mismatch],
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
        &HashSet::new(),
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
async fn book(
    conn: &mut PgConnection,
    req: &CloseRequest<'_>,
    (merchant_id, reader, own): (&str, &Reader, &Reader),
    plan: BatchPlan,
    booking: Booking<'_>,
) -> Result<CloseOutcome, EngineError> {
    let Booking {
        batch_number,
        number_use,
        closed_cycles,
        account_ids,
        settled,
        mismatches,
    } = booking;
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
    let postings = posting_ids(conn, plan.entry.as_ref(), account_ids).await?;
    // Per line, the host batch that settled it already (none when nothing was).
    let by_rrn: HashMap<&str, &Repeat> = settled.iter().map(|r| (r.rrn.as_str(), r)).collect();
    let settled_by: Vec<Option<Uuid>> = if settled.is_empty() {
        Vec::new()
    } else {
        close
            .lines
            .iter()
            .map(|l| {
                presents(l)
                    .then(|| by_rrn.get(l.rrn.as_str()).map(|r| r.batch_id))
                    .flatten()
            })
            .collect()
    };
    let already_settled: Vec<Value> = close
        .lines
        .iter()
        .zip(&settled_by)
        .enumerate()
        .filter_map(|(i, (l, by))| {
            by.map(|batch_id| json!({"line_no": i + 1, "stan": l.stan, "rrn": l.rrn, "batch_id": batch_id}))
        })
        .collect();
    let row = BatchRow {
        id: Uuid::now_v7(),
        terminal_id: req.terminal_id.to_owned(),
        merchant_id: merchant_id.to_owned(),
        batch_number: Some(batch_number),
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
        origin: BatchOrigin::Terminal,
        unmatched_lines: (!mismatches.is_empty())
            .then(|| to_json(&mismatches))
            .transpose()?,
        already_settled_lines: (!already_settled.is_empty())
            .then_some(Value::Array(already_settled)),
    };
    let event_type = match lateness.status {
        BatchStatus::Accepted | BatchStatus::AcceptedByOperator => events::BATCH_ACCEPTED,
        BatchStatus::AcceptedLate => events::BATCH_ACCEPTED_LATE,
        BatchStatus::RejectedOutsideGrace => events::BATCH_REJECTED,
        BatchStatus::Declined => events::BATCH_DECLINED,
        BatchStatus::AutoClosed => events::BATCH_AUTO_CLOSED,
    };
    let view = BatchView::read_row(&row, reader)?;
    let event = if own.locale == reader.locale {
        events::event_row(Uuid::now_v7(), merchant_id, event_type, &view)?
    } else {
        let own_view = BatchView::read_row(&row, own)?;
        events::event_row(Uuid::now_v7(), merchant_id, event_type, &own_view)?
    };
    let outcome = response_for_batch(&row, view, CloseAnswer::Booked)?;
    write_presenting(
        conn,
        &close_store::NewClose {
            batch: &row,
            lines: &close.lines,
            settled_by: &settled_by,
            entry: plan.entry.as_ref().map(|_| close_store::BookedEntry {
                description: &description,
                postings: &postings,
            }),
            resolution: &format!("batch {} was closed afterwards ({})", row.id, row.status),
            event: &event,
            answer: Some(close_store::StoredAnswer {
                idempotency_key: req.idempotency_key,
                response_status: outcome.status,
                response_body: &outcome.body,
            }),
        },
    )
    .await?;
    if let (Some(unmatched), true) = (&row.unmatched_lines, row.status.is_booked()) {
        // An exception for operations, about the batch just booked (a held batch is
        // one already, and lists its unmatched lines itself).
        close_attempts::insert_close_attempt(
            conn,
            AttemptOutcome::UnmatchedTransactions,
            req.terminal_id,
            merchant_id,
            batch_number,
            currency.code(),
            unmatched,
            req.received_at,
            Some(row.id),
        )
        .await?;
    }
    tracing::info!(
        batch_id = %row.id,
        terminal_id = req.terminal_id,
        batch_number,
        status = row.status.as_str(),
        unmatched = mismatches.len(),
        already_settled = settled.len(),
        "batch closed"
    );
    Ok(outcome)
}

/// Writes a close (a terminal's or the host's); a line presented already by another
/// batch answers [`EngineError::Presented`].
pub(crate) async fn write_presenting(
    conn: &mut PgConnection,
    close: &close_store::NewClose<'_>,
) -> Result<(), EngineError> {
    close_store::write_close(conn, close).await.map_err(|e| {
        if is_constraint_violation(&e, presentments::PRESENTED_INDEX) {
            EngineError::Presented
        } else {
            e.into()
        }
    })
}

/// The account id of each posting of the entry with its amount; an account's first
/// booking creates it.
pub(crate) async fn posting_ids(
    conn: &mut PgConnection,
    entry: Option<&JournalEntry>,
    account_ids: Vec<Option<i64>>,
) -> Result<Vec<(i64, i64)>, EngineError> {
    let Some(entry) = entry else {
        return Ok(Vec::new());
    };
    let ids = if !account_ids.is_empty() && account_ids.iter().all(Option::is_some) {
        account_ids.into_iter().flatten().collect()
    } else {
        let accounts: Vec<_> = entry.postings().iter().map(|p| &p.account).collect();
        ledger::account_ids(conn, &accounts).await?
    };
    Ok(ids
        .into_iter()
        .zip(entry.postings().iter().map(|p| p.amount_minor))
        .collect())
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
        None,
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
    let mut by_host: Vec<uuid::Uuid> = repeats
        .iter()
        .filter(|r| r.by_auto_close())
        .map(|r| r.batch_id)
        .collect();
    by_host.sort_unstable();
    by_host.dedup();
    if !by_host.is_empty() {
        let ids: Vec<String> = by_host.iter().map(ToString::to_string).collect();
        detail.push_str(&format!(
            " Some were closed by the host's auto-close (batch {}): a line is recognised as \
             settled there only when it repeats the host's line exactly (type, STAN, amount) and \
             is not voided in this batch; these are not, so close again without them.",
            ids.join(", ")
        ));
    }
    // Held batches are terminals' own, so each has a number.
    let mut held_batches: Vec<(i32, uuid::Uuid)> = held
        .iter()
        .map(|r| (r.batch_number.unwrap_or_default(), r.batch_id))
        .collect();
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
        None,
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
fn response_for_batch(
    row: &BatchRow,
    view: BatchView,
    success: CloseAnswer,
) -> Result<CloseOutcome, EngineError> {
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
