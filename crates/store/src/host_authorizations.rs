//! The host's authorizations (table `host_authorizations`): written set-based, one
//! statement per step of a request whatever its size, and a terminal's unsettled
//! transactions (authorized, not reversed, presented by no booked or held batch).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

/// An authorization as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HostAuthorizationRow {
    pub terminal_id: String,
    pub merchant_id: String,
    pub rrn: String,
    pub stan: String,
    pub auth_code: String,
    pub transaction_type: String,
    pub amount_minor: i64,
    pub currency: String,
    pub authorized_at: DateTime<Utc>,
    pub card_brand: Option<String>,
    pub masked_pan: Option<String>,
    pub reversed_at: Option<DateTime<Utc>>,
}

/// A terminal with its merchant and the merchant's settlement currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalOwner {
    pub terminal_id: String,
    pub merchant_id: String,
    pub currency: String,
}

/// The terminals among `terminal_ids` that exist, with their merchants.
pub async fn find_terminal_owners(
    conn: &mut PgConnection,
    terminal_ids: &[&str],
) -> Result<Vec<TerminalOwner>, sqlx::Error> {
    sqlx::query_as!(
        TerminalOwner,
        "SELECT t.terminal_id, t.merchant_id, m.default_currency::text AS \"currency!\" \
         FROM terminals t JOIN merchants m ON m.merchant_id = t.merchant_id \
         WHERE t.terminal_id = ANY($1::text[])",
        terminal_ids as &[&str],
    )
    .fetch_all(conn)
    .await
}

/// New authorizations, as columns (one entry per row, in the same order).
#[derive(Debug, Default)]
pub struct NewAuthorizations<'a> {
    pub terminal_ids: Vec<&'a str>,
    pub merchant_ids: Vec<&'a str>,
    pub rrns: Vec<&'a str>,
    pub stans: Vec<&'a str>,
    pub auth_codes: Vec<&'a str>,
    pub transaction_types: Vec<&'a str>,
    pub amounts_minor: Vec<i64>,
    pub currencies: Vec<&'a str>,
    pub authorized_at: Vec<DateTime<Utc>>,
    pub card_brands: Vec<Option<&'a str>>,
    pub masked_pans: Vec<Option<&'a str>>,
}

/// Inserts the authorizations whose terminal and RRN are not stored yet, in one
/// statement, in the order given (callers sort by terminal and RRN, so concurrent
/// requests take the key locks in one order); returns the keys inserted.
pub async fn insert_new_authorizations(
    conn: &mut PgConnection,
    rows: &NewAuthorizations<'_>,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let inserted = sqlx::query!(
        "INSERT INTO host_authorizations (terminal_id, merchant_id, rrn, stan, auth_code, \
             transaction_type, amount_minor, currency, authorized_at, card_brand, masked_pan) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::bpchar[], $4::bpchar[], $5::bpchar[], \
             $6::text[], $7::bigint[], $8::bpchar[], $9::timestamptz[], $10::text[], $11::text[]) \
         ON CONFLICT (terminal_id, rrn) DO NOTHING \
         RETURNING terminal_id, rrn::text AS \"rrn!\"",
        &rows.terminal_ids as &[&str],
        &rows.merchant_ids as &[&str],
        &rows.rrns as &[&str],
        &rows.stans as &[&str],
        &rows.auth_codes as &[&str],
        &rows.transaction_types as &[&str],
        &rows.amounts_minor,
        &rows.currencies as &[&str],
        &rows.authorized_at,
        &rows.card_brands as &[Option<&str>],
        &rows.masked_pans as &[Option<&str>],
    )
    .fetch_all(conn)
    .await?;
    Ok(inserted
        .into_iter()
        .map(|r| (r.terminal_id, r.rrn))
        .collect())
}

/// The stored authorizations of the given keys (terminal and RRN, pairwise), locked
/// for the rest of the transaction so a reversal decides on what it changes.
pub async fn lock_authorizations(
    conn: &mut PgConnection,
    terminal_ids: &[&str],
    rrns: &[&str],
) -> Result<Vec<HostAuthorizationRow>, sqlx::Error> {
    sqlx::query_as!(
        HostAuthorizationRow,
        "SELECT a.terminal_id, a.merchant_id, a.rrn::text AS \"rrn!\", a.stan::text AS \"stan!\", \
                a.auth_code::text AS \"auth_code!\", a.transaction_type, a.amount_minor, \
                a.currency::text AS \"currency!\", a.authorized_at, a.card_brand, a.masked_pan, \
                a.reversed_at \
         FROM host_authorizations a \
         JOIN unnest($1::text[], $2::bpchar[]) AS k(terminal_id, rrn) \
           ON a.terminal_id = k.terminal_id AND a.rrn = k.rrn \
         ORDER BY a.terminal_id, a.rrn \
         FOR UPDATE OF a",
        terminal_ids as &[&str],
        rrns as &[&str],
    )
    .fetch_all(conn)
    .await
}

/// Sets the reversal time of the given authorizations that are not reversed yet.
pub async fn reverse_authorizations(
    conn: &mut PgConnection,
    terminal_ids: &[&str],
    rrns: &[&str],
    reversed_at: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "UPDATE host_authorizations a SET reversed_at = $3 \
         FROM unnest($1::text[], $2::bpchar[]) AS k(terminal_id, rrn) \
         WHERE a.terminal_id = k.terminal_id AND a.rrn = k.rrn AND a.reversed_at IS NULL",
        terminal_ids as &[&str],
        rrns as &[&str],
        reversed_at,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// One page of a terminal's unsettled transactions, oldest first, after the cursor
/// (authorized_at and RRN of the last one shown). (The presentment check's `OFFSET 0`:
/// see [`find_unsettled_instants`].)
pub async fn list_unsettled(
    conn: &mut PgConnection,
    terminal_id: &str,
    after: Option<(DateTime<Utc>, &str)>,
    limit: i64,
) -> Result<Vec<HostAuthorizationRow>, sqlx::Error> {
    let (after_at, after_rrn) = after.unzip();
    sqlx::query_as!(
        HostAuthorizationRow,
        "SELECT a.terminal_id, a.merchant_id, a.rrn::text AS \"rrn!\", a.stan::text AS \"stan!\", \
                a.auth_code::text AS \"auth_code!\", a.transaction_type, a.amount_minor, \
                a.currency::text AS \"currency!\", a.authorized_at, a.card_brand, a.masked_pan, \
                a.reversed_at \
         FROM host_authorizations a \
         WHERE a.terminal_id = $1 AND a.reversed_at IS NULL \
           AND ($2::timestamptz IS NULL OR (a.authorized_at, a.rrn) > ($2, $3::bpchar)) \
           AND NOT EXISTS (SELECT 1 FROM batch_lines l \
                           WHERE l.rrn = a.rrn AND l.terminal_id = a.terminal_id \
                             AND l.line_type <> 'void' AND l.released_at IS NULL AND l.settled_by IS NULL \
                           OFFSET 0) \
         ORDER BY a.authorized_at, a.rrn \
         LIMIT $4",
        terminal_id,
        after_at,
        after_rrn as Option<&str>,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// A terminal's unsettled transactions summed per currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsettledSum {
    pub terminal_id: String,
    pub currency: String,
    pub count: i64,
    pub sale_amount_minor: i64,
    pub refund_amount_minor: i64,
    pub since: DateTime<Utc>,
}

/// The unsettled transactions of the given terminals, summed per terminal and
/// currency. (The presentment check's `OFFSET 0`: see [`find_unsettled_instants`].)
pub async fn sum_unsettled(
    conn: &mut PgConnection,
    terminal_ids: &[&str],
) -> Result<Vec<UnsettledSum>, sqlx::Error> {
    sqlx::query_as!(
        UnsettledSum,
        "SELECT a.terminal_id, a.currency::text AS \"currency!\", count(*) AS \"count!\", \
                coalesce(sum(a.amount_minor) FILTER (WHERE a.transaction_type = 'sale'), 0)::bigint \
                    AS \"sale_amount_minor!\", \
                coalesce(sum(a.amount_minor) FILTER (WHERE a.transaction_type = 'refund'), 0)::bigint \
                    AS \"refund_amount_minor!\", \
                min(a.authorized_at) AS \"since!\" \
         FROM host_authorizations a \
         WHERE a.terminal_id = ANY($1::text[]) AND a.reversed_at IS NULL \
           AND NOT EXISTS (SELECT 1 FROM batch_lines l \
                           WHERE l.rrn = a.rrn AND l.terminal_id = a.terminal_id \
                             AND l.line_type <> 'void' AND l.released_at IS NULL AND l.settled_by IS NULL \
                           OFFSET 0) \
         GROUP BY a.terminal_id, a.currency \
         ORDER BY a.terminal_id, a.currency",
        terminal_ids as &[&str],
    )
    .fetch_all(conn)
    .await
}

/// A terminal with unsettled transactions authorized in a window: what auto-close
/// looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsettledInstant {
    pub terminal_id: String,
    pub merchant_id: String,
    pub authorized_at: DateTime<Utc>,
}

/// The instants of the unsettled transactions of each merchant's terminals authorized
/// after its `from` and at or before its `until` (the arrays go together, one entry
/// per merchant), by terminal and instant.
///
/// The presentment check is a subquery with `OFFSET 0`, which Postgres never turns
/// into an anti-join: it stays one probe of `batch_lines_presented` by RRN and
/// terminal per authorization. As an anti-join, statistics taken while the tables
/// were small (right after a host feed of tens of thousands of authorizations, before
/// autovacuum analyzes them) made the planner expect one authorization and scan the
/// whole index for each, as a join filter: 20 to 100 s with 40,000 authorizations and
/// lines, so the settlement run (here) and a terminal's unsettled list (the sum)
/// answered 503 after the request timeout while the statement ran on.
pub async fn find_unsettled_instants(
    conn: &mut PgConnection,
    merchant_ids: &[&str],
    from: &[DateTime<Utc>],
    until: &[DateTime<Utc>],
) -> Result<Vec<UnsettledInstant>, sqlx::Error> {
    sqlx::query_as!(
        UnsettledInstant,
        "SELECT a.terminal_id, a.merchant_id, a.authorized_at \
         FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS m(merchant_id, from_at, until_at) \
         JOIN terminals t ON t.merchant_id = m.merchant_id \
         JOIN host_authorizations a ON a.terminal_id = t.terminal_id AND a.reversed_at IS NULL \
             AND a.authorized_at > m.from_at AND a.authorized_at <= m.until_at \
         WHERE NOT EXISTS (SELECT 1 FROM batch_lines l \
                           WHERE l.rrn = a.rrn AND l.terminal_id = a.terminal_id \
                             AND l.line_type <> 'void' AND l.released_at IS NULL AND l.settled_by IS NULL \
                           OFFSET 0) \
         ORDER BY a.terminal_id, a.authorized_at",
        merchant_ids as &[&str],
        from,
        until,
    )
    .fetch_all(conn)
    .await
}

/// A terminal's unsettled transactions authorized after `from` and at or before
/// `until` (one business day), by RRN: the order a reversal locks them in. The
/// caller holds the terminal's close lock, so what it reads stays unsettled until it
/// commits; the rows are locked, so a reversal waits for the batch and then sees it
/// settled. (The presentment check's `OFFSET 0`: see [`find_unsettled_instants`].)
pub async fn find_unsettled_between(
    conn: &mut PgConnection,
    terminal_id: &str,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<HostAuthorizationRow>, sqlx::Error> {
    sqlx::query_as!(
        HostAuthorizationRow,
        "SELECT a.terminal_id, a.merchant_id, a.rrn::text AS \"rrn!\", a.stan::text AS \"stan!\", \
                a.auth_code::text AS \"auth_code!\", a.transaction_type, a.amount_minor, \
                a.currency::text AS \"currency!\", a.authorized_at, a.card_brand, a.masked_pan, \
                a.reversed_at \
         FROM host_authorizations a \
         WHERE a.terminal_id = $1 AND a.reversed_at IS NULL \
           AND a.authorized_at > $2 AND a.authorized_at <= $3 \
           AND NOT EXISTS (SELECT 1 FROM batch_lines l \
                           WHERE l.rrn = a.rrn AND l.terminal_id = a.terminal_id \
                             AND l.line_type <> 'void' AND l.released_at IS NULL AND l.settled_by IS NULL \
                           OFFSET 0) \
         ORDER BY a.rrn \
         FOR SHARE OF a",
        terminal_id,
        from,
        until,
    )
    .fetch_all(conn)
    .await
}
