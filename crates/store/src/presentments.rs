//! Presentments: which batch presents each terminal's RRN now. The primary key
//! (terminal, RRN) refuses a second presentment while the first stands; the lines'
//! insert trigger writes them.

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

/// The RRNs of the list that a batch of the terminal presents now, with that batch.
/// Writing a batch's lines presents their RRNs (a trigger), so a close looks them up
/// first to answer a repeat. Two statements, so neither can be planned as a scan:
/// the presentments by primary key (one probe per RRN; nearly always none), then the
/// batches that hold any.
pub async fn find_presented(
    conn: &mut PgConnection,
    terminal_id: &str,
    rrns: &[&str],
) -> Result<Vec<Repeat>, sqlx::Error> {
    let held: Vec<(String, Uuid)> = sqlx::query_as(
        "SELECT rrn::text, batch_id FROM presentments \
         WHERE terminal_id = $1 AND rrn = ANY($2::bpchar[]) ORDER BY rrn",
    )
    .bind(terminal_id)
    .bind(rrns)
    .fetch_all(&mut *conn)
    .await?;
    if held.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = held.iter().map(|(_, id)| *id).collect();
    let batches: Vec<(Uuid, i32, String)> =
        sqlx::query_as("SELECT id, batch_number, status FROM batches WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(conn)
            .await?;
    Ok(held
        .into_iter()
        .filter_map(|(rrn, batch_id)| {
            batches
                .iter()
                .find(|(id, _, _)| *id == batch_id)
                .map(|(_, batch_number, status)| Repeat {
                    rrn,
                    batch_id,
                    batch_number: *batch_number,
                    status: status.clone(),
                })
        })
        .collect())
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
