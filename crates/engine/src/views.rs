//! Wire types: request bodies as clients send them, and the JSON views the API
//! answers with. Requests become domain types through `into_domain`; past that
//! line nothing is unvalidated.

use chrono::NaiveDate;
use serde::Serialize;
use uuid::Uuid;

use settlement_domain::lateness::BatchStatus;
use settlement_domain::money::{format_amount, Currency};
use settlement_store::batches::{BatchRow, LineRow};

use crate::error::EngineError;
pub use settlement_wire::close::{timestamp, BatchCloseRequest, TotalsRequest, TransactionRequest};

/// Parses a row's currency code, which the service itself wrote.
pub fn stored_currency(code: &str) -> Result<Currency, EngineError> {
    code.parse()
        .map_err(|_| EngineError::Internal(anyhow::anyhow!("stored currency {code:?} is unknown")))
}

/// Control totals as the API shows them.
#[derive(Debug, Clone, Serialize)]
pub struct TotalsView {
    pub sale_count: i64,
    pub sale_amount: String,
    pub refund_count: i64,
    pub refund_amount: String,
    pub void_count: i64,
    pub void_amount: String,
}

/// A batch as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct BatchView {
    pub id: Uuid,
    pub terminal_id: String,
    pub merchant_id: String,
    pub batch_number: i32,
    pub status: String,
    pub reason_code: &'static str,
    pub status_reason: String,
    pub business_date: NaiveDate,
    pub cycle_date: Option<NaiveDate>,
    pub received_at: String,
    pub cutoff_at: String,
    pub late_by_seconds: i64,
    pub grace_deadline: String,
    pub currency: String,
    pub totals: TotalsView,
    pub net_amount: String,
    pub fee: String,
    pub settlement_id: Option<Uuid>,
    pub line_count: i32,
}

/// Why a batch has its status: a stable code and a sentence a merchant understands.
pub fn status_reason(b: &BatchRow) -> (&'static str, String) {
    let cutoff = timestamp(b.cutoff_at);
    let cycle = b.cycle_date.map(|d| d.to_string()).unwrap_or_default();
    match b.status {
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

impl BatchView {
    /// The view of a stored batch.
    pub fn from_row(b: &BatchRow) -> Result<Self, EngineError> {
        let currency = stored_currency(&b.currency)?;
        let money = |minor| format_amount(minor, currency);
        let (reason_code, status_reason) = status_reason(b);
        Ok(BatchView {
            id: b.id,
            terminal_id: b.terminal_id.clone(),
            merchant_id: b.merchant_id.clone(),
            batch_number: b.batch_number,
            status: b.status.as_str().to_owned(),
            reason_code,
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
        })
    }
}

/// A transaction line as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct LineView {
    pub line_no: i32,
    pub stan: String,
    pub rrn: String,
    #[serde(rename = "type")]
    pub line_type: String,
    pub amount: String,
    pub original_stan: Option<String>,
    pub captured_at: String,
    pub card_brand: Option<String>,
    pub masked_pan: Option<String>,
    pub auth_code: Option<String>,
}

impl LineView {
    /// The view of a stored line.
    pub fn from_row(l: &LineRow, currency: Currency) -> Self {
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
}

/// One page of a list.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub has_more: bool,
    pub next_cursor: Option<String>,
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

/// A settlement cycle as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CycleView {
    pub id: Uuid,
    pub merchant_id: String,
    pub currency: String,
    pub cycle_date: NaiveDate,
    pub closed_at: String,
    pub batch_count: i32,
    pub sale_count: i64,
    pub sale_amount: String,
    pub void_amount: String,
    pub refund_amount: String,
    pub net_amount: String,
    pub fee: String,
    pub payable_amount: String,
}

impl CycleView {
    /// The view of a stored cycle.
    pub fn from_row(c: &settlement_store::cycles::CycleRow) -> Result<Self, EngineError> {
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

/// A payout as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PayoutView {
    pub id: Uuid,
    pub merchant_id: String,
    pub amount: String,
    pub currency: String,
    pub status: String,
    pub arrival_date: NaiveDate,
    pub failure_code: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl PayoutView {
    /// The view of a stored payout.
    pub fn from_row(p: &settlement_store::payouts::PayoutRow) -> Result<Self, EngineError> {
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

/// A review request as the API shows it.
#[derive(Debug, Serialize)]
pub struct ReviewRequestView {
    pub id: Uuid,
    pub merchant_id: String,
    pub batch_id: Uuid,
    pub note: String,
    /// `open` until operations accept (`resolved`) or decline (`declined`) the batch.
    pub state: String,
    pub created_at: String,
    pub decided_at: Option<String>,
    pub resolution: Option<String>,
}

impl ReviewRequestView {
    /// The view of a stored review request.
    pub fn from_row(r: &settlement_store::close_attempts::ReviewRequestRow) -> Self {
        ReviewRequestView {
            id: r.id,
            merchant_id: r.merchant_id.clone(),
            batch_id: r.batch_id,
            note: r.note.clone(),
            state: r.state.clone(),
            created_at: timestamp(r.created_at),
            decided_at: r.decided_at.map(timestamp),
            resolution: r.resolution.clone(),
        }
    }
}
