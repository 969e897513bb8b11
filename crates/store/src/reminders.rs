//! Reminders to close: which terminals are due one, and the fence that sends each once.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// A terminal that closed at least once since `active_since` but not after `closed_after`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SilentTerminal {
    pub terminal_id: String,
    pub last_closed_at: DateTime<Utc>,
}

/// A merchant's terminals that closed since `active_since` but not after `closed_after`.
pub async fn silent_terminals(
    conn: &mut PgConnection,
    merchant_id: &str,
    closed_after: DateTime<Utc>,
    active_since: DateTime<Utc>,
) -> Result<Vec<SilentTerminal>, sqlx::Error> {
    sqlx::query_as!(
        SilentTerminal,
        "SELECT terminal_id, max(received_at) AS \"last_closed_at!\" FROM batches \
         WHERE merchant_id = $1 AND received_at >= $3 GROUP BY terminal_id \
         HAVING max(received_at) <= $2 ORDER BY terminal_id",
        merchant_id,
        closed_after,
        active_since,
    )
    .fetch_all(conn)
    .await
}

/// Records a reminder; false when it was sent already (by this or another replica).
pub async fn insert_terminal_reminder(
    conn: &mut PgConnection,
    terminal_id: &str,
    business_date: NaiveDate,
    kind: &str,
    event_id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "INSERT INTO terminal_reminders (terminal_id, business_date, kind, event_id, sent_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        terminal_id,
        business_date,
        kind,
        event_id,
        now,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a batch-number gap announcement; false when it was announced already. An
/// announcement of the same run sent before `earlier_than` was of an earlier skip of
/// those numbers (counters wrap), and is replaced by this one.
pub async fn insert_gap_reminder(
    conn: &mut PgConnection,
    terminal_id: &str,
    first_missing: i32,
    last_missing: i32,
    event_id: Uuid,
    now: DateTime<Utc>,
    earlier_than: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "INSERT INTO batch_gap_reminders AS g (terminal_id, first_missing, last_missing, event_id, sent_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (terminal_id, first_missing, last_missing) DO UPDATE \
             SET event_id = EXCLUDED.event_id, sent_at = EXCLUDED.sent_at WHERE g.sent_at < $6",
        terminal_id,
        first_missing,
        last_missing,
        event_id,
        now,
        earlier_than,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A reminder sent, for the merchant's status.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SentReminder {
    pub terminal_id: String,
    pub kind: String,
    pub business_date: Option<NaiveDate>,
    pub first_missing: Option<i32>,
    pub last_missing: Option<i32>,
    pub event_id: Uuid,
    pub sent_at: DateTime<Utc>,
}

/// Reminders sent to a merchant's terminals since `since`, newest first.
pub async fn list_sent_reminders(
    conn: &mut PgConnection,
    merchant_id: &str,
    since: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<SentReminder>, sqlx::Error> {
    // The branches of a UNION have no column of their own, so nothing is known of
    // their nullability: the columns that are never NULL are marked so.
    sqlx::query_as!(
        SentReminder,
        "SELECT terminal_id AS \"terminal_id!\", kind AS \"kind!\", business_date, first_missing, \
                last_missing, event_id AS \"event_id!\", sent_at AS \"sent_at!\" \
         FROM ( \
           SELECT r.terminal_id, r.kind, r.business_date, NULL::int AS first_missing, NULL::int AS last_missing, \
                  r.event_id, r.sent_at \
           FROM terminal_reminders r JOIN terminals t ON t.terminal_id = r.terminal_id \
           WHERE t.merchant_id = $1 AND r.sent_at >= $2 \
           UNION ALL \
           SELECT g.terminal_id, 'batch_number_gap', NULL, g.first_missing, g.last_missing, g.event_id, g.sent_at \
           FROM batch_gap_reminders g JOIN terminals t ON t.terminal_id = g.terminal_id \
           WHERE t.merchant_id = $1 AND g.sent_at >= $2 \
         ) r ORDER BY sent_at DESC LIMIT $3",
        merchant_id,
        since,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// Merchants with at least one terminal that closed since `active_since`.
pub async fn active_merchants(
    conn: &mut PgConnection,
    active_since: DateTime<Utc>,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT DISTINCT merchant_id FROM batches WHERE received_at >= $1 ORDER BY merchant_id",
        active_since,
    )
    .fetch_all(conn)
    .await
}
