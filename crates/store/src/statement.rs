//! The merchant's statement: every transaction, batch, fee, cycle and payout in a
//! date range, held and declined batches marked apart from the money, streamed row by
//! row so memory stays flat however long it is.

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::stream::BoxStream;
use sqlx::PgPool;

/// One statement row. Amounts are signed from the merchant's side: sales, batch
/// nets and settled money positive; refunds, voids and fees negative; a payout shows
/// the amount sent, positive.
///
/// The rows of a batch that is not paid keep their amounts but have kinds of their
/// own, so the money kinds add up to what the merchant gets: `held_transaction` and
/// `held_batch` for a batch received after its grace deadline that waits for
/// operations (`rejected_outside_grace`), `declined_transaction` and `declined_batch`
/// for one operations declined. Neither carries a fee.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StatementRow {
    /// `transaction`, `batch`, `fee`, `settlement` or `payout`; or, for a batch that is
    /// not paid, `held_transaction`, `held_batch`, `declined_transaction` or
    /// `declined_batch`.
    pub kind: String,
    /// Business date (transactions, batches, fees), cycle date or arrival date.
    pub entry_date: NaiveDate,
    pub occurred_at: DateTime<Utc>,
    /// STAN, batch number, cycle date or payout id, per kind.
    pub reference: String,
    /// Line type, batch status, or payout status.
    pub detail: String,
    pub batch_id: Option<String>,
    pub terminal_id: Option<String>,
    pub cycle_id: Option<String>,
    pub payout_id: Option<String>,
    pub amount_minor: i64,
    pub currency: String,
    /// Retrieval reference number of a transaction.
    pub rrn: Option<String>,
    /// Issuer's authorisation code of a transaction, when the terminal sent it.
    pub auth_code: Option<String>,
    /// Card brand of a transaction, when the terminal sent it.
    pub card_brand: Option<String>,
    /// Masked card number of a transaction (at most the first 6 and last 4 digits).
    pub masked_pan: Option<String>,
}

/// Streams a merchant's statement between two dates (inclusive), ordered by date:
/// within a date each batch's transactions, then the batch, then its fee, then the
/// settlements and payouts. Held and declined batches are listed under their own
/// kinds (see `StatementRow`).
pub fn statement_rows<'a>(
    pool: &'a PgPool,
    merchant_id: &'a str,
    from: NaiveDate,
    to: NaiveDate,
) -> BoxStream<'a, Result<StatementRow, sqlx::Error>> {
    // The branches of a UNION have no column of their own, so nothing is known of
    // their nullability: the columns that are never NULL are marked so.
    sqlx::query_as!(
        StatementRow,
        "SELECT kind AS \"kind!\", entry_date AS \"entry_date!\", occurred_at AS \"occurred_at!\", \
                reference AS \"reference!\", detail AS \"detail!\", batch_id, terminal_id, cycle_id, payout_id, \
                amount_minor AS \"amount_minor!\", currency AS \"currency!\", rrn, auth_code, card_brand, \
                masked_pan \
         FROM ( \
           SELECT CASE b.status WHEN 'rejected_outside_grace' THEN 'held_transaction' \
                      WHEN 'declined' THEN 'declined_transaction' ELSE 'transaction' END AS kind, \
                  1 AS kind_order, b.business_date AS entry_date, l.captured_at AS occurred_at, \
                  l.stan::text AS reference, l.line_type AS detail, b.id::text AS batch_id, b.terminal_id, \
                  b.settlement_cycle_id::text AS cycle_id, NULL::text AS payout_id, \
                  CASE WHEN l.line_type = 'sale' THEN l.amount_minor ELSE -l.amount_minor END AS amount_minor, \
                  b.currency::text AS currency, l.line_no AS seq, l.rrn::text AS rrn, l.auth_code, l.card_brand, \
                  l.masked_pan \
           FROM batches b JOIN batch_lines l ON l.batch_id = b.id \
           WHERE b.merchant_id = $1 AND b.business_date BETWEEN $2 AND $3 AND l.settled_by IS NULL \
           UNION ALL \
           SELECT CASE b.status WHEN 'rejected_outside_grace' THEN 'held_batch' \
                      WHEN 'declined' THEN 'declined_batch' ELSE 'batch' END, \
                  2, b.business_date, b.received_at, coalesce(b.batch_number::text, 'host'), b.status, b.id::text, b.terminal_id, \
                  b.settlement_cycle_id::text, NULL, b.net_amount_minor, b.currency::text, 0, NULL, NULL, NULL, NULL \
           FROM batches b WHERE b.merchant_id = $1 AND b.business_date BETWEEN $2 AND $3 \
           UNION ALL \
           SELECT 'fee', 3, b.business_date, b.received_at, coalesce(b.batch_number::text, 'host'), 'fee', b.id::text, b.terminal_id, \
                  b.settlement_cycle_id::text, NULL, -b.fee_minor, b.currency::text, 0, NULL, NULL, NULL, NULL \
           FROM batches b WHERE b.merchant_id = $1 AND b.business_date BETWEEN $2 AND $3 \
             AND b.status NOT IN ('rejected_outside_grace', 'declined') AND b.fee_minor > 0 \
           UNION ALL \
           SELECT 'settlement', 4, c.cycle_date, c.closed_at, c.cycle_date::text, 'closed', NULL, NULL, c.id::text, NULL, \
                  c.payable_minor, c.currency::text, 0, NULL, NULL, NULL, NULL \
           FROM settlement_cycles c WHERE c.merchant_id = $1 AND c.cycle_date BETWEEN $2 AND $3 \
           UNION ALL \
           SELECT 'payout', 5, p.arrival_date, p.updated_at, p.id::text, p.status, NULL, NULL, NULL, p.id::text, \
                  p.amount_minor, p.currency::text, 0, NULL, NULL, NULL, NULL \
           FROM payouts p WHERE p.merchant_id = $1 AND p.arrival_date BETWEEN $2 AND $3 \
         ) s ORDER BY entry_date, batch_id NULLS LAST, kind_order, seq, occurred_at",
        merchant_id,
        from,
        to,
    )
    .fetch(pool)
}
