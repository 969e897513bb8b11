//! The exceptions operations work on: batches held after their grace deadline,
//! closes refused out of balance or for duplicate transactions, and merchants'
//! review requests.

use serde_json::Value;
use sqlx::PgPool;

use settlement_domain::exception::ExceptionKind;
use settlement_domain::money::format_amount;
use settlement_store::close_attempts::{self, ExceptionRow};
use settlement_wire::exceptions::{ExceptionQuery, ExceptionView};
use settlement_wire::Page;

use crate::error::EngineError;
use crate::merchants::check_id;
use crate::views::{cursor_id, page, page_limit, stored_currency, timestamp, FromRow};

/// Most repeated lines an exception lists: a page of exceptions stays small however
/// large the refused closes were (a close holds up to 10,000 lines).
const MAX_LISTED_DUPLICATES: usize = 100;

impl FromRow<ExceptionRow> for ExceptionView {
    fn from_row(e: &ExceptionRow) -> Result<Self, EngineError> {
        let currency = stored_currency(&e.currency)?;
        let duplicate = e.kind == ExceptionKind::DuplicateTransactions;
        Ok(ExceptionView {
            id: e.id,
            kind: e.kind,
            state: e.state,
            merchant_id: e.merchant_id.clone(),
            terminal_id: e.terminal_id.clone(),
            batch_number: e.batch_number,
            currency: e.currency.clone(),
            received_at: timestamp(e.received_at),
            grace_deadline: e.grace_deadline.map(timestamp),
            net_amount: e.net_amount_minor.map(|n| format_amount(n, currency)),
            differences: e
                .details
                .clone()
                .filter(|_| e.kind == ExceptionKind::OutOfBalance),
            unmatched_lines: e
                .details
                .as_ref()
                .and_then(Value::as_array)
                .filter(|_| e.kind == ExceptionKind::UnmatchedTransactions)
                .map(|all| Value::Array(all.iter().take(MAX_LISTED_DUPLICATES).cloned().collect())),
            duplicates_total: e
                .details
                .as_ref()
                .and_then(Value::as_array)
                .filter(|_| duplicate)
                .map(Vec::len),
            duplicates: e
                .details
                .as_ref()
                .and_then(Value::as_array)
                .filter(|_| duplicate)
                .map(|all| Value::Array(all.iter().take(MAX_LISTED_DUPLICATES).cloned().collect())),
            batch_id: e.batch_id,
            note: e.note.clone(),
            decided_by: e.decided_by.clone(),
            decided_at: e.decided_at.map(timestamp),
            resolution: e.resolution.clone(),
        })
    }
}

/// Exceptions newest first; open ones unless the query asks for another state.
pub async fn list_exceptions(
    pool: &PgPool,
    q: &ExceptionQuery,
) -> Result<Page<ExceptionView>, EngineError> {
    let limit = page_limit(q.limit)?;
    let before = cursor_id(q.cursor.as_deref())?;
    let state = q.state_filter()?;
    let kind = q.kind_filter()?;
    if let Some(id) = q.merchant_id.as_deref() {
        check_id("merchant_id", id)?;
    }
    let filter = close_attempts::ExceptionFilter {
        state,
        kind,
        merchant_id: q.merchant_id.clone(),
        before_id: before,
    };
    let mut conn = pool.acquire().await?;
    let rows = close_attempts::list_exceptions(&mut conn, &filter, limit + 1).await?;
    page(rows, limit, |e| e.id.to_string(), ExceptionView::from_row)
}
