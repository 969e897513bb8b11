//! Closes that booked nothing, review requests, and the exceptions list operations
//! work from.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use settlement_domain::exception::{AttemptOutcome, ExceptionKind, ExceptionState};

/// Records a close that booked nothing (out of balance, duplicate transactions) and
/// what differed or repeated, or a booked batch's lines the host did not authorize as
/// presented (unmatched transactions, naming the batch).
#[allow(clippy::too_many_arguments)]
pub async fn insert_close_attempt(
    conn: &mut PgConnection,
    outcome: AttemptOutcome,
    terminal_id: &str,
    merchant_id: &str,
    batch_number: i32,
    currency: &str,
    details: &Value,
    received_at: DateTime<Utc>,
    batch_id: Option<Uuid>,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO close_attempts (id, terminal_id, merchant_id, batch_number, currency, outcome, differences, \
             received_at, batch_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        id,
        terminal_id,
        merchant_id,
        batch_number,
        currency,
        outcome.as_str(),
        details,
        received_at,
        batch_id,
    )
    .execute(conn)
    .await?;
    Ok(id)
}

/// A merchant's request that operations review a held batch.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReviewRequestRow {
    pub id: Uuid,
    pub merchant_id: String,
    pub batch_id: Uuid,
    pub note: String,
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
    pub state: ExceptionState,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub resolution: Option<String>,
}

/// Opens a review request unless the batch has an open one; returns the open request
/// and whether it was created now.
pub async fn open_review_request(
    conn: &mut PgConnection,
    merchant_id: &str,
    batch_id: Uuid,
    note: &str,
    requested_by: &str,
) -> Result<(ReviewRequestRow, bool), sqlx::Error> {
    let created = sqlx::query_as!(
        ReviewRequestRow,
        "INSERT INTO review_requests (id, merchant_id, batch_id, note, requested_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, now()) \
         ON CONFLICT (batch_id) WHERE state = 'open' DO NOTHING \
         RETURNING id, merchant_id, batch_id, note, requested_by, created_at, \
             state AS \"state: ExceptionState\", \
             decided_by, decided_at, resolution",
        Uuid::now_v7(),
        merchant_id,
        batch_id,
        note,
        requested_by,
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = created {
        return Ok((row, true));
    }
    let open = sqlx::query_as!(
        ReviewRequestRow,
        "SELECT id, merchant_id, batch_id, note, requested_by, created_at, \
             state AS \"state: ExceptionState\", \
             decided_by, decided_at, resolution \
         FROM review_requests WHERE batch_id = $1 AND state = 'open'",
        batch_id,
    )
    .fetch_one(conn)
    .await?;
    Ok((open, false))
}

/// Closes the open review request of a batch (operations accepted or declined it):
/// its new state is `resolved` or `declined`.
pub async fn decide_review_requests(
    conn: &mut PgConnection,
    batch_id: Uuid,
    state: ExceptionState,
    decided_by: &str,
    resolution: &str,
) -> Result<u64, sqlx::Error> {
    debug_assert_ne!(state, ExceptionState::Open, "a decision closes the request");
    let done = sqlx::query!(
        "UPDATE review_requests SET state = $2, decided_by = $3, decided_at = now(), resolution = $4 \
         WHERE batch_id = $1 AND state = 'open'",
        batch_id,
        state.as_str(),
        decided_by,
        resolution,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Which review requests a list holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewFilter {
    Open,
    All,
}

/// A merchant's review requests, newest first, at most `limit`.
pub async fn list_review_requests_of_merchant(
    conn: &mut PgConnection,
    merchant_id: &str,
    which: ReviewFilter,
    limit: i64,
) -> Result<Vec<ReviewRequestRow>, sqlx::Error> {
    sqlx::query_as!(
        ReviewRequestRow,
        "SELECT id, merchant_id, batch_id, note, requested_by, created_at, \
             state AS \"state: ExceptionState\", \
             decided_by, decided_at, resolution \
         FROM review_requests WHERE merchant_id = $1 \
           AND (NOT $2 OR state = 'open') ORDER BY id DESC LIMIT $3",
        merchant_id,
        which == ReviewFilter::Open,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// One item of the exceptions list: a batch held (or decided) after its grace
/// deadline, a close refused out of balance or for duplicate transactions, or a
/// merchant's review request.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExceptionRow {
    pub id: Uuid,
    pub kind: ExceptionKind,
    pub state: ExceptionState,
    pub terminal_id: String,
    pub merchant_id: String,
    pub batch_number: i32,
    pub batch_id: Option<Uuid>,
    pub currency: String,
    pub received_at: DateTime<Utc>,
    pub grace_deadline: Option<DateTime<Utc>>,
    pub net_amount_minor: Option<i64>,
    pub details: Option<Value>,
    pub note: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub resolution: Option<String>,
}

/// Filters of the exceptions list; `None` means "any".
#[derive(Debug, Clone, Default)]
pub struct ExceptionFilter {
    pub state: Option<ExceptionState>,
    pub kind: Option<ExceptionKind>,
    pub merchant_id: Option<String>,
    /// Only exceptions older than this one (the page cursor).
    pub before_id: Option<Uuid>,
}

/// Exceptions newest first, filtered, at most `limit`.
pub async fn list_exceptions(
    conn: &mut PgConnection,
    filter: &ExceptionFilter,
    limit: i64,
) -> Result<Vec<ExceptionRow>, sqlx::Error> {
    // The branches of a UNION have no column of their own, so nothing is known of
    // their nullability: the columns that are never NULL are marked so.
    sqlx::query_as!(
        ExceptionRow,
        "SELECT id AS \"id!\", kind AS \"kind!: ExceptionKind\", state AS \"state!: ExceptionState\", \
                terminal_id AS \"terminal_id!\", merchant_id AS \"merchant_id!\", \
                batch_number AS \"batch_number!\", batch_id, currency AS \"currency!\", \
                received_at AS \"received_at!\", grace_deadline, net_amount_minor, \
                details, note, decided_by, decided_at, resolution \
         FROM ( \
            SELECT id, 'rejected_outside_grace' AS kind, \
                   CASE status WHEN 'rejected_outside_grace' THEN 'open' \
                               WHEN 'accepted_by_operator' THEN 'resolved' ELSE 'declined' END AS state, \
                   terminal_id, merchant_id, batch_number, id AS batch_id, currency::text AS currency, \
                   received_at, grace_deadline, net_amount_minor, NULL::jsonb AS details, NULL::text AS note, \
                   decided_by, decided_at, operator_reason AS resolution \
            FROM batches WHERE status IN ('rejected_outside_grace', 'accepted_by_operator', 'declined') \
            UNION ALL \
            SELECT id, outcome, state, terminal_id, merchant_id, batch_number, batch_id, currency::text, received_at, \
                   NULL, NULL, differences, NULL, decided_by, decided_at, resolution \
            FROM close_attempts \
            UNION ALL \
            SELECT r.id, 'review_request', r.state, b.terminal_id, r.merchant_id, b.batch_number, b.id, \
                   b.currency::text, r.created_at, b.grace_deadline, b.net_amount_minor, NULL, r.note, \
                   r.decided_by, r.decided_at, r.resolution \
            FROM review_requests r JOIN batches b ON b.id = r.batch_id \
         ) e WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR kind = $2) \
           AND ($3::text IS NULL OR merchant_id = $3) AND ($4::uuid IS NULL OR id < $4) \
         ORDER BY id DESC LIMIT $5",
        filter.state.map(ExceptionState::as_str),
        filter.kind.map(ExceptionKind::as_str),
        filter.merchant_id,
        filter.before_id,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// Resolves the open duplicate attempts whose repeated lines a held batch holds, once
/// operations decided about that batch (accepted: the transactions are paid there;
/// declined: they may be closed again); returns how many.
pub async fn resolve_attempts_held_by(
    conn: &mut PgConnection,
    merchant_id: &str,
    batch_id: Uuid,
    decided_by: &str,
    resolution: &str,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "UPDATE close_attempts SET state = 'resolved', decided_by = $3, decided_at = now(), resolution = $4 \
         WHERE merchant_id = $1 AND state = 'open' AND outcome = 'duplicate_transactions' \
           AND differences @> jsonb_build_array(jsonb_build_object('batch', jsonb_build_object('id', $2::text)))",
        merchant_id,
        // Bound as a uuid and cast in the statement (the check would infer text).
        batch_id as Uuid,
        decided_by,
        resolution,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
