//! The settlement scheduler: every interval, close the cycles that are due and send
//! the reminders to close that are due.
//!
//! Several replicas may run it. Each tick first tries a transaction-scoped advisory
//! lock; a replica that does not get it skips the tick, so replicas do not fight over
//! the same cycles. Correctness does not rest on that lock: each cycle still closes
//! under the merchant's exclusive cycle lock and behind the unique fence.

use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch;

use crate::settlement::run_settlement;

/// How long an idempotency key replays its answer: a week, well beyond any terminal's
/// retries (Stripe keeps keys at least 24 hours). A close retried after it is judged
/// afresh, and the same content under the same batch number still answers the
/// stored batch.
pub const IDEMPOTENCY_KEY_RETENTION_DAYS: i64 = 7;
/// Most rows each housekeeping step deletes per tick: a tick stays short however
/// much has piled up, and the backlog drains over the following ticks.
const PURGE_ROWS_PER_TICK: i64 = 10_000;
/// Most batches whose lines a tick releases past the presentment window (a batch
/// holds up to 10,000 lines; most hold a few hundred).
const RELEASE_BATCHES_PER_TICK: i64 = 50;

/// Runs ticks every `every` until `stop` turns true; a tick in progress finishes.
pub async fn run(
    pool: PgPool,
    every: Duration,
    reminder_delay: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if let Err(e) = tick(&pool, reminder_delay).await {
                    tracing::warn!(error = format!("{e:#}"), "settlement run failed; retrying next tick");
                }
            }
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
    }
    tracing::info!("scheduler stopped");
}

/// One tick: close what is due, unless another replica is already doing so. A tick
/// that finds nothing to do leaves no trace; the work it does is traced on its own
/// (`settlement.close_cycles`, `payout.transition`, ...).
pub async fn tick(pool: &PgPool, reminder_delay: Duration) -> anyhow::Result<()> {
    // The lock lives as long as this transaction; it ends with it, however the tick ends.
    let mut guard = pool.begin().await?;
    if !settlement_store::locks::try_lock_settlement_run(&mut guard).await? {
        tracing::debug!("another replica is running settlement");
        return Ok(());
    }
    let now = chrono::Utc::now();
    // Settlement and reminders run independently: a failure of one never holds up
    // the other.
    match run_settlement(pool, now).await {
        Ok(outcome) if !outcome.cycles.is_empty() || !outcome.payouts.is_empty() => {
            tracing::info!(
                cycles = outcome.cycles.len(),
                payouts = outcome.payouts.len(),
                "settlement run"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "settlement run failed; retrying next tick"),
    }
    match crate::reminders::send_due(pool, now, reminder_delay).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(reminders = n, "reminders to close sent"),
        Err(e) => tracing::warn!(error = %e, "reminders failed; retrying next tick"),
    }
    match housekeeping(pool, now).await {
        Ok((0, 0)) => {}
        Ok((keys, presentments)) => {
            tracing::info!(
                keys,
                presentments,
                "expired idempotency keys and presentments released"
            )
        }
        Err(e) => tracing::warn!(error = %e, "housekeeping failed; retrying next tick"),
    }
    guard.rollback().await?;
    Ok(())
}

/// Deletes idempotency keys past their retention and releases presentments older
/// than the presentment window, each bounded per tick; returns how many of each.
pub async fn housekeeping(
    pool: &PgPool,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<(u64, u64)> {
    let mut conn = pool.acquire().await?;
    let keys = settlement_store::idempotency::purge_keys_created_before(
        &mut conn,
        now - chrono::Duration::days(IDEMPOTENCY_KEY_RETENTION_DAYS),
        PURGE_ROWS_PER_TICK,
    )
    .await?;
    let presentments = settlement_store::presentments::release_expired_presentments(
        &mut conn,
        now - chrono::Duration::days(settlement_domain::presentment::PRESENTMENT_WINDOW_DAYS),
        RELEASE_BATCHES_PER_TICK,
    )
    .await?;
    Ok((keys, presentments))
}
