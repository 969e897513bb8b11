//! Payouts and the cycles they pay.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// A payout row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PayoutRow {
    pub id: Uuid,
    pub merchant_id: String,
    pub currency: String,
    pub amount_minor: i64,
    pub status: String,
    pub arrival_date: NaiveDate,
    pub failure_code: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const PAYOUT_COLUMNS: &str =
    "id, merchant_id, currency::text AS currency, amount_minor, status, arrival_date, \
    failure_code, created_at, updated_at";

/// Inserts a pending payout and links the cycles it pays.
pub async fn insert_payout(
    conn: &mut PgConnection,
    p: &PayoutRow,
    cycle_ids: &[Uuid],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO payouts (id, merchant_id, currency, amount_minor, status, arrival_date, failure_code, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(p.id)
    .bind(&p.merchant_id)
    .bind(&p.currency)
    .bind(p.amount_minor)
    .bind(&p.status)
    .bind(p.arrival_date)
    .bind(&p.failure_code)
    .bind(p.created_at)
    .bind(p.updated_at)
    .execute(&mut *conn)
    .await?;
    sqlx::query("INSERT INTO payout_cycles (payout_id, cycle_id) SELECT $1, unnest($2::uuid[])")
        .bind(p.id)
        .bind(cycle_ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// Finds a payout and locks it for a status change.
pub async fn find_payout_for_update(
    conn: &mut PgConnection,
    payout_id: Uuid,
) -> Result<Option<PayoutRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PAYOUT_COLUMNS} FROM payouts WHERE id = $1 FOR UPDATE"
    ))
    .bind(payout_id)
    .fetch_optional(conn)
    .await
}

/// Finds a payout of a merchant.
pub async fn find_payout_of_merchant(
    conn: &mut PgConnection,
    merchant_id: &str,
    payout_id: Uuid,
) -> Result<Option<PayoutRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PAYOUT_COLUMNS} FROM payouts WHERE merchant_id = $1 AND id = $2"
    ))
    .bind(merchant_id)
    .bind(payout_id)
    .fetch_optional(conn)
    .await
}

/// Sets a payout's status (and failure code) after its transition was checked.
pub async fn update_payout_status(
    conn: &mut PgConnection,
    payout_id: Uuid,
    status: &str,
    failure_code: Option<&str>,
    now: DateTime<Utc>,
) -> Result<PayoutRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE payouts SET status = $2, failure_code = $3, updated_at = $4 WHERE id = $1 RETURNING {PAYOUT_COLUMNS}"
    ))
    .bind(payout_id)
    .bind(status)
    .bind(failure_code)
    .bind(now)
    .fetch_one(conn)
    .await
}

/// Filters of a payout list; `None` means "any".
#[derive(Debug, Clone, Default)]
pub struct PayoutFilter {
    pub merchant_id: Option<String>,
    pub status: Option<String>,
    pub before_id: Option<Uuid>,
}

/// Payouts newest first, at most `limit`.
pub async fn list_payouts(
    conn: &mut PgConnection,
    filter: &PayoutFilter,
    limit: i64,
) -> Result<Vec<PayoutRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PAYOUT_COLUMNS} FROM payouts \
         WHERE ($1::text IS NULL OR merchant_id = $1) AND ($2::text IS NULL OR status = $2) \
           AND ($3::uuid IS NULL OR id < $3) \
         ORDER BY id DESC LIMIT $4"
    ))
    .bind(&filter.merchant_id)
    .bind(&filter.status)
    .bind(filter.before_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Pending payouts arriving on or before `through`, locked for export; payouts
/// another exporter holds are skipped rather than waited for.
pub async fn lock_due_pending_payouts(
    conn: &mut PgConnection,
    through: NaiveDate,
) -> Result<Vec<PayoutRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PAYOUT_COLUMNS} FROM payouts WHERE status = 'pending' AND arrival_date <= $1 \
         ORDER BY arrival_date, id FOR UPDATE SKIP LOCKED"
    ))
    .bind(through)
    .fetch_all(conn)
    .await
}

/// A merchant's payouts in the given statuses, by arrival date (soonest first when
/// `ascending`), at most `limit`.
pub async fn list_payouts_by_status(
    conn: &mut PgConnection,
    merchant_id: &str,
    statuses: &[&str],
    ascending: bool,
    limit: i64,
) -> Result<Vec<PayoutRow>, sqlx::Error> {
    let order = if ascending { "ASC" } else { "DESC" };
    let statuses: Vec<String> = statuses.iter().map(|s| (*s).to_owned()).collect();
    sqlx::query_as(&format!(
        "SELECT {PAYOUT_COLUMNS} FROM payouts WHERE merchant_id = $1 AND status = ANY($2) \
         ORDER BY arrival_date {order}, id {order} LIMIT $3"
    ))
    .bind(merchant_id)
    .bind(&statuses)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Merchants and currencies with closed cycles that owe money but that no payout
/// holds: money that came back from a failed or canceled payout.
pub async fn find_merchants_with_returned_money(
    conn: &mut PgConnection,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.merchant_id, c.currency::text FROM settlement_cycles c \
         WHERE EXISTS (SELECT 1 FROM payout_cycles pc JOIN payouts p ON p.id = pc.payout_id \
                       WHERE pc.cycle_id = c.id AND p.status IN ('failed', 'canceled')) \
           AND NOT EXISTS (SELECT 1 FROM payout_cycles pc JOIN payouts p ON p.id = pc.payout_id \
                           WHERE pc.cycle_id = c.id AND p.status IN ('pending', 'in_transit', 'paid')) \
         GROUP BY c.merchant_id, c.currency HAVING sum(c.payable_minor) > 0",
    )
    .fetch_all(conn)
    .await
}

/// The payouts that have paid (or tried to pay) a cycle, oldest first.
pub async fn list_payouts_of_cycle(
    conn: &mut PgConnection,
    cycle_id: Uuid,
) -> Result<Vec<PayoutRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PAYOUT_COLUMNS} FROM payouts WHERE id IN (SELECT payout_id FROM payout_cycles WHERE cycle_id = $1) \
         ORDER BY id"
    ))
    .bind(cycle_id)
    .fetch_all(conn)
    .await
}

/// The merchant's pending payout in a currency, locked; there is at most one, since
/// new settled money joins it until it is exported.
pub async fn find_pending_payout_for_update(
    conn: &mut PgConnection,
    merchant_id: &str,
    currency: &str,
) -> Result<Option<PayoutRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PAYOUT_COLUMNS} FROM payouts WHERE merchant_id = $1 AND currency = $2 AND status = 'pending' \
         ORDER BY id FOR UPDATE"
    ))
    .bind(merchant_id)
    .bind(currency)
    .fetch_optional(conn)
    .await
}

/// Grows or shrinks a pending payout to cover `cycle_ids` as well, for `amount_minor`.
pub async fn update_pending_payout(
    conn: &mut PgConnection,
    payout_id: Uuid,
    amount_minor: i64,
    arrival_date: NaiveDate,
    cycle_ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<PayoutRow, sqlx::Error> {
    sqlx::query("INSERT INTO payout_cycles (payout_id, cycle_id) SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING")
        .bind(payout_id)
        .bind(cycle_ids)
        .execute(&mut *conn)
        .await?;
    sqlx::query_as(&format!(
        "UPDATE payouts SET amount_minor = $2, arrival_date = $3, updated_at = $4 WHERE id = $1 AND status = 'pending' \
         RETURNING {PAYOUT_COLUMNS}"
    ))
    .bind(payout_id)
    .bind(amount_minor)
    .bind(arrival_date)
    .bind(now)
    .fetch_one(conn)
    .await
}
