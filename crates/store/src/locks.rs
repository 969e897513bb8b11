//! Every advisory lock the service takes, and what each serialises. Keys are a
//! namespace and an id, hashed to 64 bits by Postgres (`hashtextextended`); every
//! lock is transaction-scoped, so it ends with its transaction however that ends.
//!
//! | namespace | id | held by | serialises |
//! | --- | --- | --- | --- |
//! | `terminal-close:` | terminal | a close, exclusive | closes of one terminal, so "closed already?" and "this key seen?" are settled |
//! | `merchant-cycles:` | merchant | a booking (a close from its start) shared, a cycle close or payout export exclusive | the closing of a merchant's cycles against bookings into them |
//! | `merchant-endpoints:` | merchant | an endpoint registration | the per-merchant endpoint limit |
//! | `settlement-run` | (none) | the scheduler's tick, tried | one replica runs settlement at a time |

use sqlx::PgConnection;

use crate::merchants::MerchantRow;

/// How a lock is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Many holders at once, none while it is held exclusive.
    Shared,
    /// One holder.
    Exclusive,
}

/// Takes a close's locks, the terminal's close lock (one close of a terminal at a
/// time) and then the merchant's cycle lock shared (a booking against a cycle close),
/// and finds the merchant of the terminal, when the terminal exists and belongs to
/// it. One round trip; what the locks guard must be read by a later statement, whose
/// snapshot is taken once they are held.
pub async fn lock_close_and_find_merchant(
    conn: &mut PgConnection,
    terminal_id: &str,
    merchant_id: &str,
) -> Result<Option<MerchantRow>, sqlx::Error> {
    sqlx::query_as!(
        MerchantRow,
        "WITH locked AS MATERIALIZED ( \
             SELECT pg_advisory_xact_lock(hashtextextended('terminal-close:' || $1, 0)) AS terminal), \
         cycles AS MATERIALIZED ( \
             SELECT pg_advisory_xact_lock_shared(hashtextextended('merchant-cycles:' || $2, 0)) AS cycles \
             FROM locked) \
         SELECT m.merchant_id, m.name, m.default_currency, m.time_zone, m.cutoff_local_time, \
             m.grace_period_hours, m.payout_delay_business_days, m.mdr_basis_points, m.fixed_fee_minor, \
             m.created_at, m.bank_account_key_id, m.bank_account_sealed, m.bank_account_last4, \
             m.host_matching, m.auto_close, m.auto_close_delay_minutes, m.locale \
         FROM cycles, terminals t JOIN merchants m ON m.merchant_id = t.merchant_id \
         WHERE t.terminal_id = $1 AND t.merchant_id = $2",
        terminal_id,
        merchant_id,
    )
    .fetch_optional(conn)
    .await
}

/// Serialises the closing of a merchant's cycles against bookings into them. A
/// booking holds the lock shared, a cycle close exclusive, both until commit; so a
/// close sees every booking that committed before it, and a booking that waited
/// sees the closed cycle and moves on to the next one.
pub async fn lock_merchant_cycles(
    conn: &mut PgConnection,
    merchant_id: &str,
    mode: LockMode,
) -> Result<(), sqlx::Error> {
    lock_merchants_cycles(conn, &[merchant_id.to_owned()], mode).await
}

/// Merchant ids sorted and without repeats: every transaction locks merchants in this
/// order.
fn sorted_unique(merchant_ids: &[String]) -> Vec<&str> {
    let mut ids: Vec<&str> = merchant_ids.iter().map(String::as_str).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Takes the cycle locks of several merchants, in merchant id order, so that two
/// transactions taking overlapping sets never wait on each other in a ring.
pub async fn lock_merchants_cycles(
    conn: &mut PgConnection,
    merchant_ids: &[String],
    mode: LockMode,
) -> Result<(), sqlx::Error> {
    let ids = sorted_unique(merchant_ids);
    // `ordered` yields the merchant ids in array order: the order in which their locks
    // are taken (a volatile function is never evaluated ahead of the ordering).
    match mode {
        LockMode::Exclusive => sqlx::query!(
            "SELECT pg_advisory_xact_lock(hashtextextended('merchant-cycles:' || m, 0)) \
             FROM (SELECT m FROM unnest($1::text[]) WITH ORDINALITY AS u(m, n) ORDER BY n) AS ordered",
            &ids as &[&str],
        )
        .execute(conn)
        .await?,
        LockMode::Shared => sqlx::query!(
            "SELECT pg_advisory_xact_lock_shared(hashtextextended('merchant-cycles:' || m, 0)) \
             FROM (SELECT m FROM unnest($1::text[]) WITH ORDINALITY AS u(m, n) ORDER BY n) AS ordered",
            &ids as &[&str],
        )
        .execute(conn)
        .await?,
    };
    Ok(())
}

/// Tries to take the cycle locks of several merchants exclusively without waiting;
/// returns the merchants whose lock was taken (the others are busy: a booking, an
/// export or another close holds theirs).
pub async fn try_lock_merchants_cycles(
    conn: &mut PgConnection,
    merchant_ids: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    // In merchant id order, as `lock_merchants_cycles` takes them.
    sqlx::query_scalar!(
        "SELECT m AS \"m!\" \
         FROM (SELECT m FROM unnest($1::text[]) WITH ORDINALITY AS u(m, n) ORDER BY n) AS ordered \
         WHERE pg_try_advisory_xact_lock(hashtextextended('merchant-cycles:' || m, 0))",
        sorted_unique(merchant_ids) as Vec<&str>,
    )
    .fetch_all(conn)
    .await
}

/// Serialises endpoint changes of one merchant, so the per-merchant limit holds under
/// concurrent registrations.
pub async fn lock_merchant_endpoints(
    conn: &mut PgConnection,
    merchant_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended('merchant-endpoints:' || $1, 0))",
        merchant_id,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Tries to take the settlement run lock without waiting: true when this
/// transaction now holds it, false when another replica's run does.
pub async fn try_lock_settlement_run(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT pg_try_advisory_xact_lock(hashtextextended('settlement-run', 0)) AS \"locked!\""
    )
    .fetch_one(conn)
    .await
}
