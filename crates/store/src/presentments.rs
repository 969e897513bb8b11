//! Presentments: the sale and refund lines that present their terminal's RRN now. A
//! partial unique index on the lines (`batch_lines_presented`: RRN and terminal, of
//! lines that are not voids and not released) refuses a second presentment while the
//! first stands.

use chrono::{DateTime, Utc};
use settlement_domain::lateness::BatchStatus;
use sqlx::PgConnection;
use uuid::Uuid;

/// The index that refuses a repeated presentment.
pub const PRESENTED_INDEX: &str = "batch_lines_presented";

/// A repeated RRN and the batch that presents it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Repeat {
    pub rrn: String,
    pub batch_id: Uuid,
    /// None for a host batch (auto-close).
    pub batch_number: Option<i32>,
    pub status: BatchStatus,
    /// The line that presents it, when read.
    pub presenting: Option<PresentingLine>,
}

/// The line of a batch that presents a transaction: what a repeat is compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentingLine {
    pub stan: String,
    pub line_type: String,
    pub amount_minor: i64,
}

impl Repeat {
    /// True when a host batch (auto-close) presents the transaction: the terminal's
    /// line is recognised as settled, not refused.
    pub fn by_auto_close(&self) -> bool {
        self.status == BatchStatus::AutoClosed
    }
}

/// The RRNs of the list that a batch of the terminal presents now, with that batch.
/// Two statements, so neither can be planned as a scan: the presented lines by the
/// index (one probe per RRN; nearly always none), then the batches that hold any.
pub async fn find_presented(
    conn: &mut PgConnection,
    terminal_id: &str,
    rrns: &[&str],
) -> Result<Vec<Repeat>, sqlx::Error> {
    let held: Vec<(String, Uuid, String, String, i64)> = sqlx::query!(
        "SELECT rrn::text AS \"rrn!\", batch_id, stan::text AS \"stan!\", line_type, amount_minor \
         FROM batch_lines \
         WHERE rrn = ANY($2::bpchar[]) AND terminal_id = $1 \
           AND line_type <> 'void' AND released_at IS NULL AND settled_by IS NULL ORDER BY \"rrn!\"",
        terminal_id,
        rrns as &[&str],
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|h| (h.rrn, h.batch_id, h.stan, h.line_type, h.amount_minor))
    .collect();
    if held.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = held.iter().map(|(_, id, ..)| *id).collect();
    let batches: Vec<(Uuid, Option<i32>, BatchStatus)> = sqlx::query!(
        "SELECT id, batch_number, status AS \"status: BatchStatus\" FROM batches WHERE id = ANY($1)",
        &ids,
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(|b| (b.id, b.batch_number, b.status))
    .collect();
    Ok(held
        .into_iter()
        .filter_map(|(rrn, batch_id, stan, line_type, amount_minor)| {
            batches
                .iter()
                .find(|(id, _, _)| *id == batch_id)
                .map(|(_, batch_number, status)| Repeat {
                    rrn,
                    batch_id,
                    batch_number: *batch_number,
                    status: *status,
                    presenting: Some(PresentingLine {
                        stan,
                        line_type,
                        amount_minor,
                    }),
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
    pub batch_number: Option<i32>,
    pub status: BatchStatus,
}

/// Makes a stored batch present its sales and refunds again (those released, say
/// past the window) unless another batch presents them; returns the lines another
/// batch presents, and then presents nothing. An operator's accept of a held batch
/// books it only when the list is empty.
pub async fn claim_presentments_of_batch(
    conn: &mut PgConnection,
    batch_id: Uuid,
    terminal_id: &str,
) -> Result<Vec<LineRepeat>, sqlx::Error> {
    let repeats = sqlx::query_as!(
        LineRepeat,
        "SELECT l.stan::text AS \"stan!\", l.rrn::text AS \"rrn!\", b.id AS batch_id, b.batch_number, b.status AS \"status: BatchStatus\" \
         FROM batch_lines l \
         JOIN batch_lines o ON o.rrn = l.rrn AND o.terminal_id = $2 AND o.line_type <> 'void' \
              AND o.released_at IS NULL AND o.settled_by IS NULL AND o.batch_id <> $1 \
         JOIN batches b ON b.id = o.batch_id \
         WHERE l.batch_id = $1 AND l.line_type <> 'void' AND l.settled_by IS NULL \
         ORDER BY l.line_no",
        batch_id,
        terminal_id,
    )
    .fetch_all(&mut *conn)
    .await?;
    if repeats.is_empty() {
        sqlx::query!(
            "UPDATE batch_lines SET released_at = NULL \
             WHERE batch_id = $1 AND line_type <> 'void' AND released_at IS NOT NULL",
            batch_id,
        )
        .execute(conn)
        .await?;
    }
    Ok(repeats)
}

/// Releases what a batch presents (operations declined it): its transactions may be
/// presented again.
pub async fn release_presentments_of_batch(
    conn: &mut PgConnection,
    batch_id: Uuid,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "UPDATE batch_lines SET released_at = now() \
         WHERE batch_id = $1 AND line_type <> 'void' AND released_at IS NULL",
        batch_id,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Releases the lines of batches received before `before` (older than the
/// presentment window), walking at most `limit_batches` batches in id order from
/// where the last call stopped; returns how many lines it released.
pub async fn release_expired_presentments(
    conn: &mut PgConnection,
    before: DateTime<Utc>,
    limit_batches: i64,
) -> Result<u64, sqlx::Error> {
    // Ids are time-ordered: the walk stops at the first batch inside the window.
    let released = sqlx::query_scalar!(
        "WITH cand AS ( \
             SELECT id, received_at FROM batches \
             WHERE id > (SELECT through_batch_id FROM presentment_release_mark FOR UPDATE) \
             ORDER BY id LIMIT $2), \
         ripe AS ( \
             SELECT id FROM cand WHERE id < COALESCE( \
                 (SELECT id FROM cand WHERE received_at >= $1 ORDER BY id LIMIT 1), \
                 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid)), \
         lines AS ( \
             UPDATE batch_lines SET released_at = now() \
             WHERE batch_id IN (SELECT id FROM ripe) AND line_type <> 'void' AND released_at IS NULL \
             RETURNING 1), \
         mark AS ( \
             UPDATE presentment_release_mark SET through_batch_id = (SELECT id FROM ripe ORDER BY id DESC LIMIT 1) \
             WHERE EXISTS (SELECT 1 FROM ripe) RETURNING 1) \
         SELECT count(*) AS \"released!\" FROM lines",
        before,
        limit_batches,
    )
    .fetch_one(conn)
    .await?;
    Ok(u64::try_from(released).unwrap_or(0))
}
