//! Building the API's views (defined in the wire crate) from stored rows: the
//! [`FromRow`] trait, the pager, and the helpers every view shares.

use serde::Serialize;
use uuid::Uuid;

use settlement_domain::lateness::BatchStatus;
use settlement_domain::money::{format_amount, Currency};
use settlement_store::batches::{BatchRow, LineRow};
use settlement_store::close_attempts::ReviewRequestRow;
use settlement_store::cycles::CycleRow;
use settlement_store::payouts::PayoutRow;
use settlement_wire::batches::{BatchView, LineView, ReviewRequestView, TotalsView};
use settlement_wire::money::{CycleView, PayoutView};
use settlement_wire::Page;

use crate::error::EngineError;
pub use settlement_wire::close::{timestamp, BatchCloseRequest, TotalsRequest, TransactionRequest};

/// A view the API answers with, built from a stored row.
pub trait FromRow<R>: Sized {
    /// The view of a stored row.
    fn from_row(row: &R) -> Result<Self, EngineError>;
}

/// Parses a row's currency code, which the service itself wrote.
pub fn stored_currency(code: &str) -> Result<Currency, EngineError> {
    code.parse()
        .map_err(|_| EngineError::Internal(anyhow::anyhow!("stored currency {code:?} is unknown")))
}

/// Why a batch has its status: a stable code and a sentence a merchant understands.
pub fn status_reason(b: &BatchRow) -> (&'static str, String) {
    let (code, mut reason) = status_sentence(b);
    let settled = json_list(b.already_settled_lines.as_ref());
    if !settled.is_empty() {
        let mut by: Vec<&str> = settled
            .iter()
            .filter_map(|l| l.get("batch_id").and_then(serde_json::Value::as_str))
            .collect();
        by.sort_unstable();
        by.dedup();
        reason.push_str(&format!(
            " {} of its transactions had been settled already by the host's auto-close \
             (batch {}); they are not paid again, and its totals leave them out.",
            settled.len(),
            by.join(", ")
        ));
    }
    let unmatched = json_list(b.unmatched_lines.as_ref()).len();
    if unmatched > 0 {
        reason.push_str(&format!(
            " {unmatched} of its transactions do not match what the card host authorized; \
             operations will check them."
        ));
    }
    (code, reason)
}

fn status_sentence(b: &BatchRow) -> (&'static str, String) {
    let cutoff = timestamp(b.cutoff_at);
    let cycle = b.cycle_date.map(|d| d.to_string()).unwrap_or_default();
    match b.status {
        BatchStatus::AutoClosed => (
            "auto_closed_by_host",
            format!(
                "Terminal {} did not close its batch for business date {}, so the card host \
                 closed it on the terminal's behalf with the {} it had authorized; paid in the \
                 cycle of {cycle} as if closed by the cutoff ({cutoff}). If the terminal closes \
                 these transactions later, they are recognised and not paid twice.",
                b.terminal_id,
                b.business_date,
                if b.line_count == 1 {
                    "1 transaction".to_owned()
                } else {
                    format!("{} transactions", b.line_count)
                }
            ),
        ),
        BatchStatus::Accepted => (
            "closed_by_cutoff",
            format!(
                "Closed by the cutoff of business date {} ({cutoff}); paid in the cycle of {cycle}.",
                b.business_date
            ),
        ),
        BatchStatus::AcceptedLate => (
            "closed_after_cutoff",
            format!(
                "Closed {} s after the cutoff of business date {} ({cutoff}) but inside the grace window; \
                 accepted late and paid in the cycle of {cycle} instead of {}.",
                b.late_by_seconds, b.business_date, b.business_date
            ),
        ),
        BatchStatus::AcceptedByOperator => (
            "accepted_by_operator",
            format!(
                "Closed after the grace deadline {} of business date {}, then accepted by operations \
                 (\"{}\"); paid in the cycle of {cycle}.",
                timestamp(b.grace_deadline),
                b.business_date,
                b.operator_reason.as_deref().unwrap_or_default()
            ),
        ),
        BatchStatus::Declined => (
            "declined_by_operator",
            format!(
                "Closed after the grace deadline {} of business date {}, then declined by operations \
                 (\"{}\"); not paid. Its transactions may be closed again in a new batch if they \
                 are due.",
                timestamp(b.grace_deadline),
                b.business_date,
                b.operator_reason.as_deref().unwrap_or_default()
            ),
        ),
        BatchStatus::RejectedOutsideGrace => (
            "closed_after_grace_deadline",
            format!(
                "Closed after the grace deadline {} of business date {}; held for operations and \
                 not paid unless they accept it. Ask for a review with \
                 POST /v1/merchants/{}/batches/{}/review-requests.",
                timestamp(b.grace_deadline),
                b.business_date,
                b.merchant_id,
                b.id
            ),
        ),
    }
}

impl FromRow<BatchRow> for BatchView {
    fn from_row(b: &BatchRow) -> Result<Self, EngineError> {
        let currency = stored_currency(&b.currency)?;
        let money = |minor| format_amount(minor, currency);
        let (reason_code, status_reason) = status_reason(b);
        Ok(BatchView {
            id: b.id,
            terminal_id: b.terminal_id.clone(),
            merchant_id: b.merchant_id.clone(),
            batch_number: b.batch_number,
            origin: b.origin.as_str().to_owned(),
            status: b.status.as_str().to_owned(),
            reason_code: reason_code.to_owned(),
            status_reason,
            business_date: b.business_date,
            cycle_date: b.cycle_date,
            received_at: timestamp(b.received_at),
            cutoff_at: timestamp(b.cutoff_at),
            late_by_seconds: b.late_by_seconds,
            grace_deadline: timestamp(b.grace_deadline),
            currency: b.currency.clone(),
            totals: TotalsView {
                sale_count: b.sale_count,
                sale_amount: money(b.sale_amount_minor),
                refund_count: b.refund_count,
                refund_amount: money(b.refund_amount_minor),
                void_count: b.void_count,
                void_amount: money(b.void_amount_minor),
            },
            net_amount: money(b.net_amount_minor),
            fee: money(b.fee_minor),
            settlement_id: b.settlement_cycle_id,
            line_count: b.line_count,
            unmatched_lines: json_list(b.unmatched_lines.as_ref()),
            already_settled_lines: json_list(b.already_settled_lines.as_ref()),
        })
    }
}

/// The items of a stored JSON array (none when absent).
fn json_list(value: Option<&serde_json::Value>) -> Vec<serde_json::Value> {
    value
        .and_then(serde_json::Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The view of a stored line, its amount in the batch's currency.
pub fn line_view(l: &LineRow, currency: Currency) -> LineView {
    LineView {
        line_no: l.line_no,
        stan: l.stan.clone(),
        rrn: l.rrn.clone(),
        line_type: l.line_type.clone(),
        amount: format_amount(l.amount_minor, currency),
        original_stan: l.original_stan.clone(),
        captured_at: timestamp(l.captured_at),
        card_brand: l.card_brand.clone(),
        masked_pan: l.masked_pan.clone(),
        auth_code: l.auth_code.clone(),
    }
}

/// Default and largest page sizes.
pub const DEFAULT_PAGE_LIMIT: i64 = 10;
/// Largest page a client may ask for.
pub const MAX_PAGE_LIMIT: i64 = 100;

/// Checks a `limit` query parameter.
pub fn page_limit(limit: Option<i64>) -> Result<i64, EngineError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE_LIMIT);
    if (1..=MAX_PAGE_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(EngineError::field(
            "limit",
            format!("must be between 1 and {MAX_PAGE_LIMIT}"),
        ))
    }
}

/// Reads a `cursor` query parameter naming the last row of the previous page.
pub fn cursor_id(cursor: Option<&str>) -> Result<Option<Uuid>, EngineError> {
    cursor
        .map(|c| {
            c.parse::<Uuid>()
                .map_err(|_| EngineError::field("cursor", "is not a cursor this API returned"))
        })
        .transpose()
}

/// Turns `limit + 1` fetched rows into a page, with the cursor taken from the last
/// row shown.
pub fn page<R, T, E>(
    mut rows: Vec<R>,
    limit: i64,
    cursor_of: impl Fn(&R) -> String,
    view: impl Fn(&R) -> Result<T, E>,
) -> Result<Page<T>, E> {
    let limit = usize::try_from(limit).unwrap_or(0);
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = if has_more {
        rows.last().map(&cursor_of)
    } else {
        None
    };
    Ok(Page {
        data: rows.iter().map(view).collect::<Result<_, _>>()?,
        has_more,
        next_cursor,
    })
}

impl FromRow<CycleRow> for CycleView {
    fn from_row(c: &CycleRow) -> Result<Self, EngineError> {
        let currency = stored_currency(&c.currency)?;
        let money = |minor| format_amount(minor, currency);
        Ok(CycleView {
            id: c.id,
            merchant_id: c.merchant_id.clone(),
            currency: c.currency.clone(),
            cycle_date: c.cycle_date,
            closed_at: timestamp(c.closed_at),
            batch_count: c.batch_count,
            sale_count: c.sale_count,
            sale_amount: money(c.sale_amount_minor),
            void_amount: money(c.void_amount_minor),
            refund_amount: money(c.refund_amount_minor),
            net_amount: money(c.net_amount_minor),
            fee: money(c.fee_minor),
            payable_amount: money(c.payable_minor),
        })
    }
}

impl FromRow<PayoutRow> for PayoutView {
    fn from_row(p: &PayoutRow) -> Result<Self, EngineError> {
        let currency = stored_currency(&p.currency)?;
        Ok(PayoutView {
            id: p.id,
            merchant_id: p.merchant_id.clone(),
            amount: format_amount(p.amount_minor, currency),
            currency: p.currency.clone(),
            status: p.status.as_str().to_owned(),
            arrival_date: p.arrival_date,
            failure_code: p.failure_code.clone(),
            created_at: timestamp(p.created_at),
            updated_at: timestamp(p.updated_at),
        })
    }
}

/// Serialises a view for the audit trail.
pub fn to_json<T: Serialize>(value: &T) -> Result<serde_json::Value, EngineError> {
    serde_json::to_value(value).map_err(|e| EngineError::Internal(e.into()))
}

impl FromRow<ReviewRequestRow> for ReviewRequestView {
    fn from_row(r: &ReviewRequestRow) -> Result<Self, EngineError> {
        Ok(ReviewRequestView {
            id: r.id,
            merchant_id: r.merchant_id.clone(),
            batch_id: r.batch_id,
            note: r.note.clone(),
            state: r.state,
            created_at: timestamp(r.created_at),
            decided_at: r.decided_at.map(timestamp),
            resolution: r.resolution.clone(),
        })
    }
}
