//! Presentments: which batch presents each terminal's RRN now. The primary key
//! (terminal, RRN) refuses a second presentment while the first stands.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// The primary key that refuses a repeated presentment.
pub const PRESENTMENTS_PKEY: &str = "presentments_pkey";

/// A repeated RRN and the batch that presents it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Repeat {
    pub rrn: String,
    pub batch_id: Uuid,
    pub batch_number: i32,
    pub status: String,
}

/// Claims the RRNs for a batch about to be written, in one statement. Returns how
/// many were claimed: fewer than given means some are presented already (or repeat
/// within the list), and the caller must not write the batch.
pub async fn claim_presentments(
    conn: &mut PgConnection,
    terminal_id: &str,
    batch_id: Uuid,
    presented_at: DateTime<Utc>,
    rrns: &[&str],
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO presentments (terminal_id, rrn, batch_id, presented_at) \
         SELECT $1, r, $2, $3 FROM UNNEST($4::bpchar[]) AS r \
         ON CONFLICT ON CONSTRAINT presentments_pkey DO NOTHING",
    )
    .bind(terminal_id)
    .bind(batch_id)
    .bind(presented_at)
    .bind(rrns)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// The RRNs of the list that another batch than `batch_id` presents, with that batch.
pub async fn find_repeats(
    conn: &mut PgConnection,
    terminal_id: &str,
    batch_id: Uuid,
    rrns: &[&str],
) -> Result<Vec<Repeat>, sqlx::Error> {
    sqlx::query_as(
        "SELECT p.rrn::text AS rrn, b.id AS batch_id, b.batch_number, b.status \
         FROM presentments p JOIN batches b ON b.id = p.batch_id \
         WHERE p.terminal_id = $1 AND p.rrn = ANY($2::bpchar[]) AND p.batch_id <> $3 \
         ORDER BY p.rrn",
    )
    .bind(terminal_id)
    .bind(rrns)
    .bind(batch_id)
    .fetch_all(conn)
    .await
}

/// Gives back the claims of a batch that was not written.
pub async fn release_claims(
    conn: &mut PgConnection,
    terminal_id: &str,
    batch_id: Uuid,
    rrns: &[&str],
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM presentments WHERE terminal_id = $1 AND rrn = ANY($2::bpchar[]) AND batch_id = $3",
    )
    .bind(terminal_id)
    .bind(rrns)
    .bind(batch_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// A stored line of a batch that another batch presents, with that batch.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LineRepeat {
    pub stan: String,
    pub rrn: String,
    pub batch_id: Uuid,
    pub batch_number: i32,
    pub status: String,
}

/// Claims the RRNs of a stored batch's sales and refunds again (those it does not
/// hold yet), then lists its lines that another batch presents. An operator's accept
/// of a held batch books it only when the list is empty.
pub async fn claim_presentments_of_batch(
    conn: &mut PgConnection,
    batch_id: Uuid,
    terminal_id: &str,
    presented_at: DateTime<Utc>,
) -> Result<Vec<LineRepeat>, sqlx::Error> {
    sqlx::query(
        "INSERT INTO presentments (terminal_id, rrn, batch_id, presented_at) \
         SELECT $2, l.rrn, $1, $3 FROM batch_lines l WHERE l.batch_id = $1 AND l.line_type <> 'void' \
         ON CONFLICT ON CONSTRAINT presentments_pkey DO NOTHING",
    )
    .bind(batch_id)
    .bind(terminal_id)
    .bind(presented_at)
    .execute(&mut *conn)
    .await?;
    sqlx::query_as(
        "SELECT l.stan::text AS stan, l.rrn::text AS rrn, b.id AS batch_id, b.batch_number, b.status \
         FROM batch_lines l \
         JOIN presentments p ON p.terminal_id = $2 AND p.rrn = l.rrn \
         JOIN batches b ON b.id = p.batch_id \
         WHERE l.batch_id = $1 AND l.line_type <> 'void' AND p.batch_id <> $1 \
         ORDER BY l.line_no",
    )
    .bind(batch_id)
    .bind(terminal_id)
    .fetch_all(conn)
    .await
}

/// Releases what a batch presents (operations declined it): its transactions may be
/// presented again.
pub async fn release_presentments_of_batch(
    conn: &mut PgConnection,
    batch_id: Uuid,
    terminal_id: &str,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM presentments p USING batch_lines l \
         WHERE l.batch_id = $1 AND p.terminal_id = $2 AND p.rrn = l.rrn AND p.batch_id = $1",
    )
    .bind(batch_id)
    .bind(terminal_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Releases at most `limit` presentments made before `before` (older than the
/// presentment window); returns how many.
pub async fn release_expired_presentments(
    conn: &mut PgConnection,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM presentments WHERE ctid = ANY(ARRAY( \
             SELECT ctid FROM presentments WHERE presented_at < $1 LIMIT $2))",
    )
    .bind(before)
    .bind(limit)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
