//! Payouts and the cycles they pay.

use chrono::{DateTime, NaiveDate, Utc};
use settlement_domain::payout::PayoutStatus;
use sqlx::PgConnection;
use uuid::Uuid;

/// A payout row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PayoutRow {
    pub id: Uuid,
    pub merchant_id: String,
    pub currency: String,
    pub amount_minor: i64,
    pub status: PayoutStatus,
    pub arrival_date: NaiveDate,
    pub failure_code: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A payout and the cycles it pays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutCover {
    pub payout: PayoutRow,
    pub cycle_ids: Vec<Uuid>,
}

/// Inserts pending payouts and links the cycles each pays.
pub async fn insert_payouts(
    conn: &mut PgConnection,
    new: &[PayoutCover],
) -> Result<(), sqlx::Error> {
    let rows: Vec<&PayoutRow> = new.iter().map(|n| &n.payout).collect();
    sqlx::query!(
        "INSERT INTO payouts (id, merchant_id, currency, amount_minor, status, arrival_date, failure_code, created_at, updated_at) \
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::date[], $7::text[], \
             $8::timestamptz[], $9::timestamptz[])",
        &rows.iter().map(|p| p.id).collect::<Vec<_>>(),
        rows.iter().map(|p| p.merchant_id.as_str()).collect::<Vec<_>>() as Vec<&str>,
        rows.iter().map(|p| p.currency.as_str()).collect::<Vec<_>>() as Vec<&str>,
        &rows.iter().map(|p| p.amount_minor).collect::<Vec<_>>(),
        rows.iter().map(|p| p.status.as_str()).collect::<Vec<_>>() as Vec<&str>,
        &rows.iter().map(|p| p.arrival_date).collect::<Vec<_>>(),
        rows.iter().map(|p| p.failure_code.as_deref()).collect::<Vec<_>>() as Vec<Option<&str>>,
        &rows.iter().map(|p| p.created_at).collect::<Vec<_>>(),
        &rows.iter().map(|p| p.updated_at).collect::<Vec<_>>(),
    )
    .execute(&mut *conn)
    .await?;
    link_cycles(conn, new).await
}

/// Links each payout to the cycles it pays; links that exist are kept.
async fn link_cycles(conn: &mut PgConnection, covers: &[PayoutCover]) -> Result<(), sqlx::Error> {
    let (payouts, cycles): (Vec<Uuid>, Vec<Uuid>) = covers
        .iter()
        .flat_map(|c| c.cycle_ids.iter().map(|cycle| (c.payout.id, *cycle)))
        .unzip();
    sqlx::query!(
        "INSERT INTO payout_cycles (payout_id, cycle_id) SELECT * FROM unnest($1::uuid[], $2::uuid[]) \
         ON CONFLICT DO NOTHING",
        &payouts,
        &cycles,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Finds a payout and locks it for a status change. The merchant's cycle lock is
/// taken (shared) first: a status change posts to the merchant's accounts, and a
/// cycle close takes the merchant's lock before its payouts, so both take them in
/// the same order and never wait on each other in a ring.
pub async fn find_payout_for_update(
    conn: &mut PgConnection,
    payout_id: Uuid,
) -> Result<Option<PayoutRow>, sqlx::Error> {
    let merchant = sqlx::query_scalar!("SELECT merchant_id FROM payouts WHERE id = $1", payout_id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(merchant) = merchant else {
        return Ok(None);
    };
    crate::locks::lock_merchant_cycles(&mut *conn, &merchant, crate::locks::LockMode::Shared)
        .await?;
    sqlx::query_as!(
        PayoutRow,
        "SELECT id, merchant_id, currency::text AS \"currency!\", amount_minor, status AS \"status: PayoutStatus\", arrival_date, \
             failure_code, created_at, updated_at \
         FROM payouts WHERE id = $1 FOR UPDATE",
        payout_id,
    )
    .fetch_optional(conn)
    .await
}

/// Finds a payout of a merchant.
pub async fn find_payout_of_merchant(
    conn: &mut PgConnection,
    merchant_id: &str,
    payout_id: Uuid,
) -> Result<Option<PayoutRow>, sqlx::Error> {
    sqlx::query_as!(
        PayoutRow,
        "SELECT id, merchant_id, currency::text AS \"currency!\", amount_minor, status AS \"status: PayoutStatus\", arrival_date, \
             failure_code, created_at, updated_at \
         FROM payouts WHERE merchant_id = $1 AND id = $2",
        merchant_id,
        payout_id,
    )
    .fetch_optional(conn)
    .await
}

/// Sets a payout's status (and failure code) after its transition was checked.
pub async fn update_payout_status(
    conn: &mut PgConnection,
    payout_id: Uuid,
    status: PayoutStatus,
    failure_code: Option<&str>,
    now: DateTime<Utc>,
) -> Result<PayoutRow, sqlx::Error> {
    sqlx::query_as!(
        PayoutRow,
        "UPDATE payouts SET status = $2, failure_code = $3, updated_at = $4 WHERE id = $1 \
         RETURNING id, merchant_id, currency::text AS \"currency!\", amount_minor, status AS \"status: PayoutStatus\", arrival_date, \
             failure_code, created_at, updated_at",
        payout_id,
        status.as_str(),
        failure_code,
        now,
    )
    .fetch_one(conn)
    .await
}

/// Filters of a payout list; `None` means "any".
#[derive(Debug, Clone, Default)]
pub struct PayoutFilter {
    pub merchant_id: Option<String>,
    pub status: Option<PayoutStatus>,
    pub before_id: Option<Uuid>,
}

/// Payouts newest first, at most `limit`.
pub async fn list_payouts(
    conn: &mut PgConnection,
    filter: &PayoutFilter,
    limit: i64,
) -> Result<Vec<PayoutRow>, sqlx::Error> {
    sqlx::query_as!(
        PayoutRow,
        "SELECT id, merchant_id, currency::text AS \"currency!\", amount_minor, status AS \"status: PayoutStatus\", arrival_date, \
             failure_code, created_at, updated_at \
         FROM payouts \
         WHERE ($1::text IS NULL OR merchant_id = $1) AND ($2::text IS NULL OR status = $2) \
           AND ($3::uuid IS NULL OR id < $3) \
         ORDER BY id DESC LIMIT $4",
        filter.merchant_id,
        filter.status.map(PayoutStatus::as_str),
        filter.before_id,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// Pending payouts arriving on or before `through`, locked for export; payouts
/// another exporter holds are skipped rather than waited for. Their merchants'
/// cycle locks are taken (shared) first, as [`find_payout_for_update`] does.
pub async fn lock_due_pending_payouts(
    conn: &mut PgConnection,
    through: NaiveDate,
) -> Result<Vec<PayoutRow>, sqlx::Error> {
    let merchants = sqlx::query_scalar!(
        "SELECT DISTINCT merchant_id FROM payouts WHERE status = 'pending' AND arrival_date <= $1",
        through,
    )
    .fetch_all(&mut *conn)
    .await?;
    crate::locks::lock_merchants_cycles(&mut *conn, &merchants, crate::locks::LockMode::Shared)
        .await?;
    // A payout that fell due meanwhile, of a merchant not locked above, waits for
    // the next export.
    sqlx::query_as!(
        PayoutRow,
        "SELECT id, merchant_id, currency::text AS \"currency!\", amount_minor, status AS \"status: PayoutStatus\", arrival_date, \
             failure_code, created_at, updated_at \
         FROM payouts WHERE status = 'pending' AND arrival_date <= $1 \
           AND merchant_id = ANY($2) \
         ORDER BY arrival_date, id FOR UPDATE SKIP LOCKED",
        through,
        &merchants,
    )
    .fetch_all(conn)
    .await
}

/// In which order payouts are listed by arrival date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrivalOrder {
    SoonestFirst,
    LatestFirst,
}

/// A merchant's payouts in the given statuses, by arrival date, at most `limit`.
pub async fn list_payouts_by_status(
    conn: &mut PgConnection,
    merchant_id: &str,
    statuses: &[PayoutStatus],
    order: ArrivalOrder,
    limit: i64,
) -> Result<Vec<PayoutRow>, sqlx::Error> {
    let statuses: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
    match order {
        ArrivalOrder::SoonestFirst => sqlx::query_as!(
            PayoutRow,
            "SELECT id, merchant_id, currency::text AS \"currency!\", amount_minor, status AS \"status: PayoutStatus\", arrival_date, \
             failure_code, created_at, updated_at \
             FROM payouts WHERE merchant_id = $1 AND status = ANY($2) \
             ORDER BY arrival_date ASC, id ASC LIMIT $3",
            merchant_id,
            &statuses as &[&str],
            limit,
        )
        .fetch_all(conn)
        .await,
        ArrivalOrder::LatestFirst => sqlx::query_as!(
            PayoutRow,
            "SELECT id, merchant_id, currency::text AS \"currency!\", amount_minor, status AS \"status: PayoutStatus\", arrival_date, \
             failure_code, created_at, updated_at \
             FROM payouts WHERE merchant_id = $1 AND status = ANY($2) \
             ORDER BY arrival_date DESC, id DESC LIMIT $3",
            merchant_id,
            &statuses as &[&str],
            limit,
        )
        .fetch_all(conn)
        .await,
    }
}

/// Merchants and currencies with closed cycles that owe money but that no payout
/// holds: money that came back from a failed or canceled payout.
pub async fn find_merchants_with_returned_money(
    conn: &mut PgConnection,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let owed = sqlx::query!(
        "SELECT c.merchant_id, c.currency::text AS \"currency!\" FROM settlement_cycles c \
         WHERE EXISTS (SELECT 1 FROM payout_cycles pc JOIN payouts p ON p.id = pc.payout_id \
                       WHERE pc.cycle_id = c.id AND p.status IN ('failed', 'canceled')) \
           AND NOT EXISTS (SELECT 1 FROM payout_cycles pc JOIN payouts p ON p.id = pc.payout_id \
                           WHERE pc.cycle_id = c.id AND p.status IN ('pending', 'in_transit', 'paid')) \
           AND NOT EXISTS (SELECT 1 FROM payout_holds h WHERE h.merchant_id = c.merchant_id) \
         GROUP BY c.merchant_id, c.currency HAVING sum(c.payable_minor) > 0"
    )
    .fetch_all(conn)
    .await?;
    Ok(owed
        .into_iter()
        .map(|o| (o.merchant_id, o.currency))
        .collect())
}

/// The payouts that have paid (or tried to pay) a cycle, oldest first.
pub async fn list_payouts_of_cycle(
    conn: &mut PgConnection,
    cycle_id: Uuid,
) -> Result<Vec<PayoutRow>, sqlx::Error> {
    sqlx::query_as!(
        PayoutRow,
        "SELECT id, merchant_id, currency::text AS \"currency!\", amount_minor, status AS \"status: PayoutStatus\", arrival_date, \
             failure_code, created_at, updated_at \
         FROM payouts WHERE id IN (SELECT payout_id FROM payout_cycles WHERE cycle_id = $1) \
         ORDER BY id",
        cycle_id,
    )
    .fetch_all(conn)
    .await
}

/// The pending payouts of each (merchant, currency), locked; there is at most one
/// per merchant and currency, since new settled money joins it until it is exported.
pub async fn lock_pending_payouts(
    conn: &mut PgConnection,
    pairs: &[(String, String)],
) -> Result<Vec<PayoutRow>, sqlx::Error> {
    sqlx::query_as!(
        PayoutRow,
        "SELECT id, merchant_id, currency::text AS \"currency!\", amount_minor, status AS \"status: PayoutStatus\", arrival_date, \
             failure_code, created_at, updated_at \
         FROM payouts \
         WHERE (merchant_id, currency) IN (SELECT * FROM unnest($1::text[], $2::bpchar[])) AND status = 'pending' \
         ORDER BY id FOR UPDATE",
        pairs.iter().map(|(m, _)| m.as_str()).collect::<Vec<_>>() as Vec<&str>,
        pairs.iter().map(|(_, c)| c.as_str()).collect::<Vec<_>>() as Vec<&str>,
    )
    .fetch_all(conn)
    .await
}

/// Sets pending payouts to their new amount and arrival date, and links the cycles
/// they now cover as well; `payout` carries the new values. Returns the rows after.
pub async fn update_pending_payouts(
    conn: &mut PgConnection,
    covers: &[PayoutCover],
    now: DateTime<Utc>,
) -> Result<Vec<PayoutRow>, sqlx::Error> {
    link_cycles(&mut *conn, covers).await?;
    let updated = sqlx::query_as!(
        PayoutRow,
        "UPDATE payouts p SET amount_minor = u.amount_minor, arrival_date = u.arrival_date, updated_at = $4 \
         FROM unnest($1::uuid[], $2::bigint[], $3::date[]) AS u(id, amount_minor, arrival_date) \
         WHERE p.id = u.id AND p.status = 'pending' \
         RETURNING p.id, p.merchant_id, p.currency::text AS \"currency!\", p.amount_minor, p.status AS \"status: PayoutStatus\", \
             p.arrival_date, p.failure_code, p.created_at, p.updated_at",
        &covers.iter().map(|c| c.payout.id).collect::<Vec<_>>(),
        &covers.iter().map(|c| c.payout.amount_minor).collect::<Vec<_>>(),
        &covers.iter().map(|c| c.payout.arrival_date).collect::<Vec<_>>(),
        now,
    )
    .fetch_all(conn)
    .await?;
    if updated.len() != covers.len() {
        return Err(sqlx::Error::RowNotFound);
    }
    Ok(updated)
}

/// Why a merchant's payouts are on hold.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PayoutHold {
    pub merchant_id: String,
    pub payout_id: Uuid,
    pub failure_code: String,
    pub held_since: chrono::DateTime<chrono::Utc>,
}

/// Holds a merchant's payouts after a payout failed for an account reason; the first
/// hold stands until it is released.
pub async fn hold_payouts(
    conn: &mut PgConnection,
    merchant_id: &str,
    payout_id: Uuid,
    failure_code: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO payout_holds (merchant_id, payout_id, failure_code, held_since) \
         VALUES ($1, $2, $3, now()) ON CONFLICT (merchant_id) DO NOTHING",
        merchant_id,
        payout_id,
        failure_code,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Releases a merchant's payout hold (its bank account changed); true when one was held.
pub async fn release_payout_hold(
    conn: &mut PgConnection,
    merchant_id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "DELETE FROM payout_holds WHERE merchant_id = $1",
        merchant_id
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The payout hold of a merchant, if any.
pub async fn find_payout_hold(
    conn: &mut PgConnection,
    merchant_id: &str,
) -> Result<Option<PayoutHold>, sqlx::Error> {
    sqlx::query_as!(
        PayoutHold,
        "SELECT merchant_id, payout_id, failure_code, held_since FROM payout_holds WHERE merchant_id = $1",
        merchant_id,
    )
    .fetch_optional(conn)
    .await
}

/// Records that the payout file `message_id` carries a payout (the file is recorded
/// with its first payout).
pub async fn add_payout_file_item(
    conn: &mut PgConnection,
    message_id: &str,
    payout_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "WITH f AS (INSERT INTO payout_files (message_id) VALUES ($1) ON CONFLICT DO NOTHING) \
         INSERT INTO payout_file_items (message_id, payout_id) VALUES ($1, $2)",
        message_id,
        payout_id,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The payouts a payout file carries, in id order; empty for a file never exported.
pub async fn list_payout_file_items(
    conn: &mut PgConnection,
    message_id: &str,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT payout_id FROM payout_file_items WHERE message_id = $1 ORDER BY payout_id",
        message_id,
    )
    .fetch_all(conn)
    .await
}

/// The merchants of the list whose payouts are on hold.
pub async fn find_merchants_on_hold(
    conn: &mut PgConnection,
    merchant_ids: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT merchant_id FROM payout_holds WHERE merchant_id = ANY($1)",
        merchant_ids,
    )
    .fetch_all(conn)
    .await
}

/// Every merchant's payout hold, the longest-standing first, at most `limit`.
pub async fn list_payout_holds(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<PayoutHold>, sqlx::Error> {
    sqlx::query_as!(
        PayoutHold,
        "SELECT merchant_id, payout_id, failure_code, held_since FROM payout_holds \
         ORDER BY held_since, merchant_id LIMIT $1",
        limit,
    )
    .fetch_all(conn)
    .await
}

/// When the money of each closed cycle named is due at the merchant's bank: the
/// arrival date of the payout that holds it (pending, in transit or paid), for the
/// cycles that have one.
pub async fn arrival_of_cycles(
    conn: &mut PgConnection,
    cycle_ids: &[Uuid],
) -> Result<Vec<(Uuid, NaiveDate, PayoutStatus)>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT pc.cycle_id, p.arrival_date, p.status AS \"status: PayoutStatus\" \
         FROM payout_cycles pc JOIN payouts p ON p.id = pc.payout_id \
         WHERE pc.cycle_id = ANY($1) AND p.status IN ('pending', 'in_transit', 'paid')",
        cycle_ids,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.cycle_id, r.arrival_date, r.status))
        .collect())
}
