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

const CYCLE_COLUMNS: &str = "id, merchant_id, currency::text AS currency, cycle_date, closed_at, batch_count, \
    sale_count, sale_amount_minor, void_amount_minor, refund_amount_minor, net_amount_minor, fee_minor, \
    payable_minor, journal_entry_id";

/// Serialises the closing of a merchant's cycles against bookings into them. A
/// booking holds the lock shared, a cycle close exclusive, both until commit; so a
/// close sees every booking that committed before it, and a booking that waited
/// sees the closed cycle and moves on to the next one.
pub async fn lock_merchant_cycles(
    conn: &mut PgConnection,
    merchant_id: &str,
    exclusive: bool,
) -> Result<(), sqlx::Error> {
    let sql = if exclusive {
        "SELECT pg_advisory_xact_lock(hashtextextended('merchant-cycles:' || $1, 0))"
    } else {
        "SELECT pg_advisory_xact_lock_shared(hashtextextended('merchant-cycles:' || $1, 0))"
    };
    sqlx::query(sql).bind(merchant_id).execute(conn).await?;
    Ok(())
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
    sqlx::query_as(
        "SELECT DISTINCT merchant_id, currency::text AS currency, cycle_date FROM batches \
         WHERE settlement_cycle_id IS NULL AND status <> 'rejected_outside_grace' AND cycle_date <= $1 \
         ORDER BY cycle_date, merchant_id, currency",
    )
    .bind(until)
    .fetch_all(conn)
    .await
}

/// True when the cycle is closed.
pub async fn cycle_is_closed(
    conn: &mut PgConnection,
    merchant_id: &str,
    currency: &str,
    cycle_date: NaiveDate,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM settlement_cycles WHERE merchant_id = $1 AND currency = $2 AND cycle_date = $3)",
    )
    .bind(merchant_id)
    .bind(currency)
    .bind(cycle_date)
    .fetch_one(conn)
    .await
}

/// The sums of a cycle's unsettled booked batches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct CycleSums {
    pub batch_count: i64,
    pub sale_count: i64,
    pub sale_amount_minor: i64,
    pub void_amount_minor: i64,
    pub refund_amount_minor: i64,
    pub net_amount_minor: i64,
    pub fee_minor: i64,
}

/// Sums the unsettled booked batches of one cycle. Sums are `numeric` in Postgres
/// and cast back, so an overflow is an error rather than a wrap.
pub async fn sum_unsettled_batches(
    conn: &mut PgConnection,
    merchant_id: &str,
    currency: &str,
    cycle_date: NaiveDate,
) -> Result<CycleSums, sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*) AS batch_count, \
                COALESCE(sum(sale_count), 0)::bigint AS sale_count, \
                COALESCE(sum(sale_amount_minor), 0)::bigint AS sale_amount_minor, \
                COALESCE(sum(void_amount_minor), 0)::bigint AS void_amount_minor, \
                COALESCE(sum(refund_amount_minor), 0)::bigint AS refund_amount_minor, \
                COALESCE(sum(net_amount_minor), 0)::bigint AS net_amount_minor, \
                COALESCE(sum(fee_minor), 0)::bigint AS fee_minor \
         FROM batches WHERE merchant_id = $1 AND currency = $2 AND cycle_date = $3 \
           AND settlement_cycle_id IS NULL AND status <> 'rejected_outside_grace'",
    )
    .bind(merchant_id)
    .bind(currency)
    .bind(cycle_date)
    .fetch_one(conn)
    .await
}

/// Inserts a closed cycle; false when the fence says it is closed already.
pub async fn insert_cycle(conn: &mut PgConnection, c: &CycleRow) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO settlement_cycles (id, merchant_id, currency, cycle_date, closed_at, batch_count, sale_count, \
             sale_amount_minor, void_amount_minor, refund_amount_minor, net_amount_minor, fee_minor, payable_minor, \
             journal_entry_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT ON CONSTRAINT settlement_cycles_fence DO NOTHING",
    )
    .bind(c.id)
    .bind(&c.merchant_id)
    .bind(&c.currency)
    .bind(c.cycle_date)
    .bind(c.closed_at)
    .bind(c.batch_count)
    .bind(c.sale_count)
    .bind(c.sale_amount_minor)
    .bind(c.void_amount_minor)
    .bind(c.refund_amount_minor)
    .bind(c.net_amount_minor)
    .bind(c.fee_minor)
    .bind(c.payable_minor)
    .bind(c.journal_entry_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks a cycle's unsettled booked batches as settled in it; returns how many.
pub async fn settle_batches_into_cycle(
    conn: &mut PgConnection,
    c: &CycleRow,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE batches SET settlement_cycle_id = $1 \
         WHERE merchant_id = $2 AND currency = $3 AND cycle_date = $4 \
           AND settlement_cycle_id IS NULL AND status <> 'rejected_outside_grace'",
    )
    .bind(c.id)
    .bind(&c.merchant_id)
    .bind(&c.currency)
    .bind(c.cycle_date)
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
    sqlx::query_as(&format!(
        "SELECT {CYCLE_COLUMNS} FROM settlement_cycles WHERE merchant_id = $1 AND id = $2"
    ))
    .bind(merchant_id)
    .bind(cycle_id)
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
    sqlx::query_as(&format!(
        "SELECT {CYCLE_COLUMNS} FROM settlement_cycles WHERE merchant_id = $1 AND ($2::uuid IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3"
    ))
    .bind(merchant_id)
    .bind(before_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Closed cycles of a merchant and currency whose money no payout holds (never paid,
/// or their payout failed or was canceled), oldest first.
pub async fn list_unpaid_cycles(
    conn: &mut PgConnection,
    merchant_id: &str,
    currency: &str,
) -> Result<Vec<CycleRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {CYCLE_COLUMNS} FROM settlement_cycles c WHERE merchant_id = $1 AND currency = $2 \
           AND NOT EXISTS (SELECT 1 FROM payout_cycles pc JOIN payouts p ON p.id = pc.payout_id \
                           WHERE pc.cycle_id = c.id AND p.status IN ('pending', 'in_transit', 'paid')) \
         ORDER BY cycle_date, id"
    ))
    .bind(merchant_id)
    .bind(currency)
    .fetch_all(conn)
    .await
}

/// The cycles a payout pays.
pub async fn list_cycles_of_payout(
    conn: &mut PgConnection,
    payout_id: Uuid,
) -> Result<Vec<CycleRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {CYCLE_COLUMNS} FROM settlement_cycles WHERE id IN (SELECT cycle_id FROM payout_cycles WHERE payout_id = $1) \
         ORDER BY cycle_date, id"
    ))
    .bind(payout_id)
    .fetch_all(conn)
    .await
}
