//! Reads behind the merchant's status answer ("where is my money").

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use settlement_domain::batch_number::skipped_between;

/// A terminal and its most recent close.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TerminalSummary {
    pub terminal_id: String,
    pub last_batch_number: Option<i32>,
    pub last_closed_at: Option<DateTime<Utc>>,
}

/// Every terminal of a merchant with its last close.
pub async fn terminal_summaries(
    conn: &mut PgConnection,
    merchant_id: &str,
) -> Result<Vec<TerminalSummary>, sqlx::Error> {
    sqlx::query_as!(
        TerminalSummary,
        "SELECT t.terminal_id, b.batch_number AS \"last_batch_number?\", b.received_at AS \"last_closed_at?\" \
         FROM terminals t LEFT JOIN LATERAL ( \
             SELECT batch_number, received_at FROM batches \
             WHERE terminal_id = t.terminal_id AND batch_number IS NOT NULL \
             ORDER BY received_at DESC LIMIT 1) b ON true \
         WHERE t.merchant_id = $1 ORDER BY t.terminal_id",
        merchant_id,
    )
    .fetch_all(conn)
    .await
}

/// A run of batch numbers a terminal skipped: closes that never arrived.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NumberGap {
    pub terminal_id: String,
    pub first_missing: i32,
    pub last_missing: i32,
}

/// Two closes of a terminal that arrived one after the other with numbers that do not
/// follow each other, and the highest number the terminal has used (for a number lower
/// than the one before; else the later number).
#[derive(sqlx::FromRow)]
struct NumberStep {
    terminal_id: String,
    previous: i32,
    next: i32,
    highest_seen: i32,
}

/// Gaps in each terminal's batch numbers among closes received since `since`, per
/// terminal in the order they arrived. Counters wrap (999999 then 1, or 999 then 1 for
/// a terminal that never went past 999): `batch_number::skipped_between` reads a lower
/// number as a wrap or as a late close, so a gap across a wrap is two runs, one up to
/// the wrap point and one from 1.
pub async fn batch_number_gaps(
    conn: &mut PgConnection,
    merchant_id: &str,
    since: DateTime<Utc>,
) -> Result<Vec<NumberGap>, sqlx::Error> {
    // The highest number is looked up (one index probe) only for the rare lower number.
    let steps = sqlx::query_as!(
        NumberStep,
        "SELECT terminal_id, prev AS \"previous!\", batch_number AS \"next!\", \
                CASE WHEN batch_number < prev THEN \
                    (SELECT max(x.batch_number) FROM batches x WHERE x.terminal_id = s.terminal_id) \
                ELSE batch_number END AS \"highest_seen!\" \
         FROM ( \
             SELECT terminal_id, batch_number, received_at, \
                    lag(batch_number) OVER (PARTITION BY terminal_id ORDER BY received_at, batch_number) AS prev \
             FROM batches WHERE merchant_id = $1 AND received_at >= $2 AND batch_number IS NOT NULL) s \
         WHERE prev IS NOT NULL AND batch_number <> prev + 1 \
         ORDER BY terminal_id, received_at, batch_number",
        merchant_id,
        since,
    )
    .fetch_all(conn)
    .await?;
    // The database keeps numbers inside 1..=999999, so neither conversion can fail.
    let decode = |e: std::num::TryFromIntError| sqlx::Error::Decode(Box::new(e));
    let number = |n: i32| u32::try_from(n).map_err(decode);
    let mut gaps = Vec::new();
    for step in steps {
        let runs = skipped_between(
            number(step.previous)?,
            number(step.next)?,
            number(step.highest_seen)?,
        );
        for run in runs {
            gaps.push(NumberGap {
                terminal_id: step.terminal_id.clone(),
                first_missing: i32::try_from(*run.start()).map_err(decode)?,
                last_missing: i32::try_from(*run.end()).map_err(decode)?,
            });
        }
    }
    Ok(gaps)
}

/// Booked batches waiting for their cycle, summed per currency and cycle date.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PendingCycle {
    pub currency: String,
    pub cycle_date: NaiveDate,
    pub batch_count: i64,
    pub net_amount_minor: i64,
    pub fee_minor: i64,
}

/// What is pending, by the cycle it settles in, soonest first.
pub async fn pending_by_cycle(
    conn: &mut PgConnection,
    merchant_id: &str,
) -> Result<Vec<PendingCycle>, sqlx::Error> {
    sqlx::query_as!(
        PendingCycle,
        "SELECT currency::text AS \"currency!\", cycle_date AS \"cycle_date!\", count(*) AS \"batch_count!\", \
                sum(net_amount_minor)::bigint AS \"net_amount_minor!\", sum(fee_minor)::bigint AS \"fee_minor!\" \
         FROM batches WHERE merchant_id = $1 AND settlement_cycle_id IS NULL AND status NOT IN ('rejected_outside_grace', 'declined') \
         GROUP BY currency, cycle_date ORDER BY \"cycle_date!\", \"currency!\"",
        merchant_id,
    )
    .fetch_all(conn)
    .await
}

/// Batches that need the merchant's attention: accepted late, rejected, or accepted
/// by an operator, received since `since`, newest first.
pub async fn attention_batch_ids(
    conn: &mut PgConnection,
    merchant_id: &str,
    since: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT id FROM batches WHERE merchant_id = $1 AND received_at >= $2 \
           AND status IN ('accepted_late', 'rejected_outside_grace', 'accepted_by_operator', 'declined') \
         ORDER BY received_at DESC LIMIT $3",
        merchant_id,
        since,
        limit,
    )
    .fetch_all(conn)
    .await
}
