//! Settlement cycles: one per merchant, currency and cycle date.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// A settlement cycle row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CycleRow {
    pub id: Uuid,
    pub merchant_id: String,
    pub currency: String,
    pub cycle_date: NaiveDate,
    pub closed_at: DateTime<Utc>,
    pub batch_count: i32,
    pub sale_count: i64,
    pub sale_amount_minor: i64,
    pub void_amount_minor: i64,
    pub refund_amount_minor: i64,
    pub net_amount_minor: i64,
    pub fee_minor: i64,
    pub payable_minor: i64,
    pub journal_entry_id: Option<Uuid>,
}

/// A (merchant, currency, cycle date) with booked batches waiting to be settled.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UnsettledCycle {
    pub merchant_id: String,
    pub currency: String,
    pub cycle_date: NaiveDate,
}

/// Cycles with unsettled booked batches dated up to `until`, oldest first.
pub async fn find_unsettled_cycles(
    conn: &mut PgConnection,
    until: NaiveDate,
) -> Result<Vec<UnsettledCycle>, sqlx::Error> {
    sqlx::query_as!(
        UnsettledCycle,
        "SELECT DISTINCT merchant_id, currency::text AS \"currency!\", cycle_date AS \"cycle_date!\" FROM batches \
         WHERE settlement_cycle_id IS NULL AND status NOT IN ('rejected_outside_grace', 'declined') AND cycle_date <= $1 \
         ORDER BY \"cycle_date!\", merchant_id, \"currency!\"",
        until,
    )
    .fetch_all(conn)
    .await
}

/// The merchant's closed cycle dates of a currency from `from` on, for `days` days.
pub async fn closed_cycle_dates(
    conn: &mut PgConnection,
    merchant_id: &str,
    currency: &str,
    from: NaiveDate,
    days: u32,
) -> Result<Vec<NaiveDate>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT cycle_date FROM settlement_cycles \
         WHERE merchant_id = $1 AND currency = $2::bpchar AND cycle_date >= $3 AND cycle_date < $3 + $4::int",
        merchant_id,
        currency,
        from,
        i32::try_from(days).unwrap_or(i32::MAX),
    )
    .fetch_all(conn)
    .await
}

/// The sums of a cycle's unsettled booked batches.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CycleSums {
    pub merchant_id: String,
    pub currency: String,
    pub cycle_date: NaiveDate,
    pub batch_count: i64,
    pub sale_count: i64,
    pub sale_amount_minor: i64,
    pub void_amount_minor: i64,
    pub refund_amount_minor: i64,
    pub net_amount_minor: i64,
    pub fee_minor: i64,
}

/// Sums the unsettled booked batches of each of `cycles` that is not closed yet,
/// oldest first; cycles with nothing to settle are left out. Sums are `numeric` in
/// Postgres and cast back, so an overflow is an error rather than a wrap.
pub async fn sum_unsettled_cycles(
    conn: &mut PgConnection,
    cycles: &[UnsettledCycle],
) -> Result<Vec<CycleSums>, sqlx::Error> {
    let (merchants, currencies, dates) = unzip_cycles(cycles);
    sqlx::query_as!(
        CycleSums,
        "SELECT b.merchant_id, b.currency::text AS \"currency!\", b.cycle_date AS \"cycle_date!\", \
                count(*) AS \"batch_count!\", \
                sum(b.sale_count)::bigint AS \"sale_count!\", \
                sum(b.sale_amount_minor)::bigint AS \"sale_amount_minor!\", \
                sum(b.void_amount_minor)::bigint AS \"void_amount_minor!\", \
                sum(b.refund_amount_minor)::bigint AS \"refund_amount_minor!\", \
                sum(b.net_amount_minor)::bigint AS \"net_amount_minor!\", \
                sum(b.fee_minor)::bigint AS \"fee_minor!\" \
         FROM unnest($1::text[], $2::bpchar[], $3::date[]) AS d(merchant_id, currency, cycle_date) \
         JOIN batches b ON b.merchant_id = d.merchant_id AND b.currency = d.currency \
              AND b.cycle_date = d.cycle_date \
         WHERE b.settlement_cycle_id IS NULL AND b.status NOT IN ('rejected_outside_grace', 'declined') \
           AND NOT EXISTS (SELECT 1 FROM settlement_cycles c WHERE c.merchant_id = d.merchant_id \
                           AND c.currency = d.currency AND c.cycle_date = d.cycle_date) \
         GROUP BY b.merchant_id, b.currency, b.cycle_date \
         ORDER BY b.cycle_date, b.merchant_id, b.currency",
        &merchants as &[&str],
        &currencies as &[&str],
        &dates,
    )
    .fetch_all(conn)
    .await
}

fn unzip_cycles(cycles: &[UnsettledCycle]) -> (Vec<&str>, Vec<&str>, Vec<NaiveDate>) {
    let mut merchants = Vec::with_capacity(cycles.len());
    let mut currencies = Vec::with_capacity(cycles.len());
    let mut dates = Vec::with_capacity(cycles.len());
    for c in cycles {
        merchants.push(c.merchant_id.as_str());
        currencies.push(c.currency.as_str());
        dates.push(c.cycle_date);
    }
    (merchants, currencies, dates)
}

/// Inserts closed cycles; returns how many the fence let in (a cycle closed already
/// is left as it is).
pub async fn insert_cycles(conn: &mut PgConnection, rows: &[CycleRow]) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "INSERT INTO settlement_cycles (id, merchant_id, currency, cycle_date, closed_at, batch_count, sale_count, \
             sale_amount_minor, void_amount_minor, refund_amount_minor, net_amount_minor, fee_minor, payable_minor, \
             journal_entry_id) \
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::date[], $5::timestamptz[], $6::int[], \
             $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], \
             $14::uuid[]) \
         ON CONFLICT ON CONSTRAINT settlement_cycles_fence DO NOTHING",
        &rows.iter().map(|c| c.id).collect::<Vec<_>>(),
        rows.iter().map(|c| c.merchant_id.as_str()).collect::<Vec<_>>() as Vec<&str>,
        rows.iter().map(|c| c.currency.as_str()).collect::<Vec<_>>() as Vec<&str>,
        &rows.iter().map(|c| c.cycle_date).collect::<Vec<_>>(),
        &rows.iter().map(|c| c.closed_at).collect::<Vec<_>>(),
        &rows.iter().map(|c| c.batch_count).collect::<Vec<_>>(),
        &rows.iter().map(|c| c.sale_count).collect::<Vec<_>>(),
        &rows.iter().map(|c| c.sale_amount_minor).collect::<Vec<_>>(),
        &rows.iter().map(|c| c.void_amount_minor).collect::<Vec<_>>(),
        &rows.iter().map(|c| c.refund_amount_minor).collect::<Vec<_>>(),
        &rows.iter().map(|c| c.net_amount_minor).collect::<Vec<_>>(),
        &rows.iter().map(|c| c.fee_minor).collect::<Vec<_>>(),
        &rows.iter().map(|c| c.payable_minor).collect::<Vec<_>>(),
        rows.iter().map(|c| c.journal_entry_id).collect::<Vec<_>>() as Vec<Option<Uuid>>,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Marks each cycle's unsettled booked batches as settled in it; returns how many.
pub async fn settle_batches_into_cycles(
    conn: &mut PgConnection,
    rows: &[CycleRow],
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "UPDATE batches b SET settlement_cycle_id = c.id \
         FROM unnest($1::uuid[], $2::text[], $3::bpchar[], $4::date[]) AS c(id, merchant_id, currency, cycle_date) \
         WHERE b.merchant_id = c.merchant_id AND b.currency = c.currency AND b.cycle_date = c.cycle_date \
           AND b.settlement_cycle_id IS NULL AND b.status NOT IN ('rejected_outside_grace', 'declined')",
        &rows.iter().map(|c| c.id).collect::<Vec<_>>(),
        rows.iter().map(|c| c.merchant_id.as_str()).collect::<Vec<_>>() as Vec<&str>,
        rows.iter().map(|c| c.currency.as_str()).collect::<Vec<_>>() as Vec<&str>,
        &rows.iter().map(|c| c.cycle_date).collect::<Vec<_>>(),
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Finds a cycle of a merchant.
pub async fn find_cycle_of_merchant(
    conn: &mut PgConnection,
    merchant_id: &str,
    cycle_id: Uuid,
) -> Result<Option<CycleRow>, sqlx::Error> {
    sqlx::query_as!(
        CycleRow,
        "SELECT id, merchant_id, currency::text AS \"currency!\", cycle_date, closed_at, batch_count, \
             sale_count, sale_amount_minor, void_amount_minor, refund_amount_minor, net_amount_minor, fee_minor, \
             payable_minor, journal_entry_id \
         FROM settlement_cycles WHERE merchant_id = $1 AND id = $2",
        merchant_id,
        cycle_id,
    )
    .fetch_optional(conn)
    .await
}

/// A merchant's cycles, newest first, older than `before_id` when given.
pub async fn list_cycles_of_merchant(
    conn: &mut PgConnection,
    merchant_id: &str,
    before_id: Option<Uuid>,
    limit: i64,
) -> Result<Vec<CycleRow>, sqlx::Error> {
    sqlx::query_as!(
        CycleRow,
        "SELECT id, merchant_id, currency::text AS \"currency!\", cycle_date, closed_at, batch_count, \
             sale_count, sale_amount_minor, void_amount_minor, refund_amount_minor, net_amount_minor, fee_minor, \
             payable_minor, journal_entry_id \
         FROM settlement_cycles WHERE merchant_id = $1 AND ($2::uuid IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3",
        merchant_id,
        before_id,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// The closed cycles of each (merchant, currency) whose money is not on its way:
/// no payout holds them, or only the pending one (there is at most one per merchant
/// and currency), or their payout failed or was canceled. Oldest first.
pub async fn list_cycles_not_sent(
    conn: &mut PgConnection,
    pairs: &[(String, String)],
) -> Result<Vec<CycleRow>, sqlx::Error> {
    sqlx::query_as!(
        CycleRow,
        "SELECT id, merchant_id, currency::text AS \"currency!\", cycle_date, closed_at, batch_count, \
             sale_count, sale_amount_minor, void_amount_minor, refund_amount_minor, net_amount_minor, fee_minor, \
             payable_minor, journal_entry_id \
         FROM settlement_cycles c \
         WHERE (merchant_id, currency) IN (SELECT * FROM unnest($1::text[], $2::bpchar[])) \
           AND NOT EXISTS (SELECT 1 FROM payout_cycles pc JOIN payouts p ON p.id = pc.payout_id \
                           WHERE pc.cycle_id = c.id AND p.status IN ('in_transit', 'paid')) \
         ORDER BY cycle_date, id",
        pairs.iter().map(|(m, _)| m.as_str()).collect::<Vec<_>>() as Vec<&str>,
        pairs.iter().map(|(_, c)| c.as_str()).collect::<Vec<_>>() as Vec<&str>,
    )
    .fetch_all(conn)
    .await
}

/// The cycles a payout pays.
pub async fn list_cycles_of_payout(
    conn: &mut PgConnection,
    payout_id: Uuid,
) -> Result<Vec<CycleRow>, sqlx::Error> {
    sqlx::query_as!(
        CycleRow,
        "SELECT id, merchant_id, currency::text AS \"currency!\", cycle_date, closed_at, batch_count, \
             sale_count, sale_amount_minor, void_amount_minor, refund_amount_minor, net_amount_minor, fee_minor, \
             payable_minor, journal_entry_id \
         FROM settlement_cycles WHERE id IN (SELECT cycle_id FROM payout_cycles WHERE payout_id = $1) \
         ORDER BY cycle_date, id",
        payout_id,
    )
    .fetch_all(conn)
    .await
}
