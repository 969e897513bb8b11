//! Batches closed by terminals and their transaction lines.

use chrono::{DateTime, NaiveDate, Utc};
use settlement_domain::lateness::{BatchOrigin, BatchStatus};
use sqlx::PgConnection;
use uuid::Uuid;

/// A batch row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BatchRow {
    pub id: Uuid,
    pub terminal_id: String,
    pub merchant_id: String,
    /// The terminal's batch number; none for a host batch.
    pub batch_number: Option<i32>,
    pub status: BatchStatus,
    pub currency: String,
    pub business_date: NaiveDate,
    pub cycle_date: Option<NaiveDate>,
    pub received_at: DateTime<Utc>,
    pub cutoff_at: DateTime<Utc>,
    pub grace_deadline: DateTime<Utc>,
    pub late_by_seconds: i64,
    pub sale_count: i64,
    pub sale_amount_minor: i64,
    pub refund_count: i64,
    pub refund_amount_minor: i64,
    pub void_count: i64,
    pub void_amount_minor: i64,
    pub net_amount_minor: i64,
    pub line_count: i32,
    pub content_hash: Vec<u8>,
    pub journal_entry_id: Option<Uuid>,
    pub fee_minor: i64,
    pub settlement_cycle_id: Option<Uuid>,
    pub operator_reason: Option<String>,
    /// Which use of its batch number this batch is: 1, then 2 after the terminal's
    /// counter wrapped and the number was used again, and so on.
    pub number_use: i32,
    /// Who closed it: the terminal, or the host (auto-close; no batch number).
    pub origin: BatchOrigin,
    /// The lines the host did not authorize as presented, when any (merchant
    /// setting `report`): each `{line_no, stan, rrn, reasons}`.
    pub unmatched_lines: Option<serde_json::Value>,
    /// The lines a host batch had settled already, when any: each `{line_no, stan,
    /// rrn, batch_id}`; they are not in this batch's totals.
    pub already_settled_lines: Option<serde_json::Value>,
}

/// Finds the batch a terminal closed under a batch number: its latest use.
pub async fn find_batch_by_terminal_and_number(
    conn: &mut PgConnection,
    terminal_id: &str,
    batch_number: i32,
) -> Result<Option<BatchRow>, sqlx::Error> {
    sqlx::query_as!(
        BatchRow,
        "SELECT id, terminal_id, merchant_id, batch_number, status AS \"status: BatchStatus\", currency::text AS \"currency!\", \
             business_date, cycle_date, received_at, cutoff_at, grace_deadline, late_by_seconds, sale_count, \
             sale_amount_minor, refund_count, refund_amount_minor, void_count, void_amount_minor, \
             net_amount_minor, line_count, content_hash, journal_entry_id, fee_minor, settlement_cycle_id, \
             operator_reason, number_use, origin AS \"origin: BatchOrigin\", unmatched_lines, already_settled_lines \
         FROM batches WHERE terminal_id = $1 AND batch_number = $2 \
         ORDER BY number_use DESC LIMIT 1",
        terminal_id,
        batch_number,
    )
    .fetch_optional(conn)
    .await
}

/// Finds a batch by id, only when it belongs to the merchant.
pub async fn find_batch_of_merchant(
    conn: &mut PgConnection,
    merchant_id: &str,
    batch_id: Uuid,
) -> Result<Option<BatchRow>, sqlx::Error> {
    sqlx::query_as!(
        BatchRow,
        "SELECT id, terminal_id, merchant_id, batch_number, status AS \"status: BatchStatus\", currency::text AS \"currency!\", \
             business_date, cycle_date, received_at, cutoff_at, grace_deadline, late_by_seconds, sale_count, \
             sale_amount_minor, refund_count, refund_amount_minor, void_count, void_amount_minor, \
             net_amount_minor, line_count, content_hash, journal_entry_id, fee_minor, settlement_cycle_id, \
             operator_reason, number_use, origin AS \"origin: BatchOrigin\", unmatched_lines, already_settled_lines \
         FROM batches WHERE merchant_id = $1 AND id = $2",
        merchant_id,
        batch_id,
    )
    .fetch_optional(conn)
    .await
}

/// Filters of a merchant's batch list; `None` means "any".
#[derive(Debug, Clone, Default)]
pub struct BatchFilter {
    pub status: Option<BatchStatus>,
    pub terminal_id: Option<String>,
    pub business_date_from: Option<NaiveDate>,
    pub business_date_to: Option<NaiveDate>,
    /// Only batches older than this one (the page cursor).
    pub before_id: Option<Uuid>,
}

/// A merchant's batches, newest first, at most `limit`.
pub async fn list_batches_of_merchant(
    conn: &mut PgConnection,
    merchant_id: &str,
    filter: &BatchFilter,
    limit: i64,
) -> Result<Vec<BatchRow>, sqlx::Error> {
    sqlx::query_as!(
        BatchRow,
        "SELECT id, terminal_id, merchant_id, batch_number, status AS \"status: BatchStatus\", currency::text AS \"currency!\", \
             business_date, cycle_date, received_at, cutoff_at, grace_deadline, late_by_seconds, sale_count, \
             sale_amount_minor, refund_count, refund_amount_minor, void_count, void_amount_minor, \
             net_amount_minor, line_count, content_hash, journal_entry_id, fee_minor, settlement_cycle_id, \
             operator_reason, number_use, origin AS \"origin: BatchOrigin\", unmatched_lines, already_settled_lines \
         FROM batches WHERE merchant_id = $1 \
           AND ($2::text IS NULL OR status = $2) \
           AND ($3::text IS NULL OR terminal_id = $3) \
           AND ($4::date IS NULL OR business_date >= $4) \
           AND ($5::date IS NULL OR business_date <= $5) \
           AND ($6::uuid IS NULL OR id < $6) \
         ORDER BY id DESC LIMIT $7",
        merchant_id,
        filter.status.map(BatchStatus::as_str),
        filter.terminal_id,
        filter.business_date_from,
        filter.business_date_to,
        filter.before_id,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// One transaction line of a batch.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LineRow {
    pub line_no: i32,
    pub stan: String,
    pub rrn: String,
    pub line_type: String,
    pub amount_minor: i64,
    pub original_stan: Option<String>,
    pub captured_at: DateTime<Utc>,
    pub card_brand: Option<String>,
    pub masked_pan: Option<String>,
    pub auth_code: Option<String>,
}

/// Lines of a batch in line order after `after_line_no`, at most `limit`.
pub async fn list_batch_lines(
    conn: &mut PgConnection,
    batch_id: Uuid,
    after_line_no: i32,
    limit: i64,
) -> Result<Vec<LineRow>, sqlx::Error> {
    sqlx::query_as!(
        LineRow,
        "SELECT line_no, stan::text AS \"stan!\", rrn::text AS \"rrn!\", line_type, amount_minor, \
             original_stan::text AS original_stan, captured_at, card_brand, masked_pan, auth_code \
         FROM batch_lines WHERE batch_id = $1 AND line_no > $2 ORDER BY line_no LIMIT $3",
        batch_id,
        after_line_no,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// The number of the batch a terminal closed last, if any (after a counter wrap the
/// highest number is not the latest).
pub async fn find_latest_batch_number(
    conn: &mut PgConnection,
    terminal_id: &str,
) -> Result<Option<i32>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT batch_number AS \"batch_number!\" FROM batches WHERE terminal_id = $1 AND batch_number IS NOT NULL \
         ORDER BY received_at DESC, id DESC LIMIT 1",
        terminal_id,
    )
    .fetch_optional(conn)
    .await
}

/// Finds a batch by id and locks it for an operator's change.
pub async fn find_batch_for_update(
    conn: &mut PgConnection,
    batch_id: Uuid,
) -> Result<Option<BatchRow>, sqlx::Error> {
    sqlx::query_as!(
        BatchRow,
        "SELECT id, terminal_id, merchant_id, batch_number, status AS \"status: BatchStatus\", currency::text AS \"currency!\", \
             business_date, cycle_date, received_at, cutoff_at, grace_deadline, late_by_seconds, sale_count, \
             sale_amount_minor, refund_count, refund_amount_minor, void_count, void_amount_minor, \
             net_amount_minor, line_count, content_hash, journal_entry_id, fee_minor, settlement_cycle_id, \
             operator_reason, number_use, origin AS \"origin: BatchOrigin\", unmatched_lines, already_settled_lines \
         FROM batches WHERE id = $1 FOR UPDATE",
        batch_id,
    )
    .fetch_optional(conn)
    .await
}

/// Books a rejected batch by an operator's decision: its new status, cycle, fee,
/// entry and the operator's reason.
pub async fn accept_batch_by_operator(
    conn: &mut PgConnection,
    batch_id: Uuid,
    cycle_date: NaiveDate,
    fee_minor: i64,
    journal_entry_id: Option<Uuid>,
    reason: &str,
    decided_by: &str,
) -> Result<BatchRow, sqlx::Error> {
    sqlx::query_as!(
        BatchRow,
        "UPDATE batches SET status = 'accepted_by_operator', cycle_date = $2, fee_minor = $3, \
             journal_entry_id = $4, operator_reason = $5, decided_by = $6, decided_at = now() \
         WHERE id = $1 AND status = 'rejected_outside_grace' \
         RETURNING id, terminal_id, merchant_id, batch_number, status AS \"status: BatchStatus\", currency::text AS \"currency!\", \
             business_date, cycle_date, received_at, cutoff_at, grace_deadline, late_by_seconds, sale_count, \
             sale_amount_minor, refund_count, refund_amount_minor, void_count, void_amount_minor, \
             net_amount_minor, line_count, content_hash, journal_entry_id, fee_minor, settlement_cycle_id, \
             operator_reason, number_use, origin AS \"origin: BatchOrigin\", unmatched_lines, already_settled_lines",
        batch_id,
        cycle_date,
        fee_minor,
        journal_entry_id,
        reason,
        decided_by,
    )
    .fetch_one(conn)
    .await
}

/// Declines a rejected batch by an operator's decision, with the operator's reason:
/// it is never paid.
pub async fn decline_batch_by_operator(
    conn: &mut PgConnection,
    batch_id: Uuid,
    reason: &str,
    decided_by: &str,
) -> Result<BatchRow, sqlx::Error> {
    sqlx::query_as!(
        BatchRow,
        "UPDATE batches SET status = 'declined', operator_reason = $2, decided_by = $3, decided_at = now() \
         WHERE id = $1 AND status = 'rejected_outside_grace' \
         RETURNING id, terminal_id, merchant_id, batch_number, status AS \"status: BatchStatus\", currency::text AS \"currency!\", \
             business_date, cycle_date, received_at, cutoff_at, grace_deadline, late_by_seconds, sale_count, \
             sale_amount_minor, refund_count, refund_amount_minor, void_count, void_amount_minor, \
             net_amount_minor, line_count, content_hash, journal_entry_id, fee_minor, settlement_cycle_id, \
             operator_reason, number_use, origin AS \"origin: BatchOrigin\", unmatched_lines, already_settled_lines",
        batch_id,
        reason,
        decided_by,
    )
    .fetch_one(conn)
    .await
}

/// Batches settled in a cycle, oldest first.
pub async fn list_batches_of_cycle(
    conn: &mut PgConnection,
    cycle_id: Uuid,
) -> Result<Vec<BatchRow>, sqlx::Error> {
    sqlx::query_as!(
        BatchRow,
        "SELECT id, terminal_id, merchant_id, batch_number, status AS \"status: BatchStatus\", currency::text AS \"currency!\", \
             business_date, cycle_date, received_at, cutoff_at, grace_deadline, late_by_seconds, sale_count, \
             sale_amount_minor, refund_count, refund_amount_minor, void_count, void_amount_minor, \
             net_amount_minor, line_count, content_hash, journal_entry_id, fee_minor, settlement_cycle_id, \
             operator_reason, number_use, origin AS \"origin: BatchOrigin\", unmatched_lines, already_settled_lines \
         FROM batches WHERE settlement_cycle_id = $1 ORDER BY id",
        cycle_id,
    )
    .fetch_all(conn)
    .await
}

/// Count and sum of a batch's sales that no void of the batch cancels (lines a host
/// batch settled already are its, with its fee).
pub async fn non_voided_sales_of_batch(
    conn: &mut PgConnection,
    batch_id: Uuid,
) -> Result<(i64, i64), sqlx::Error> {
    let sums = sqlx::query!(
        "SELECT count(*) AS \"count!\", COALESCE(sum(amount_minor), 0)::bigint AS \"amount!\" \
         FROM batch_lines s \
         WHERE s.batch_id = $1 AND s.line_type = 'sale' AND s.settled_by IS NULL AND NOT EXISTS ( \
             SELECT 1 FROM batch_lines v WHERE v.batch_id = s.batch_id AND v.line_type = 'void' \
               AND v.original_stan = s.stan)",
        batch_id,
    )
    .fetch_one(conn)
    .await?;
    Ok((sums.count, sums.amount))
}
