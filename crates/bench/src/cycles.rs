//! Cycle close: many merchants with batches due at one cutoff; the time until the
//! service's scheduler has closed every cycle, beside one set-based
//! `INSERT ... SELECT ... GROUP BY` over the same transactions.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{Timelike, Utc};
use futures_util::stream::{self, StreamExt};
use settlement_wire::auth::Principal;
use sqlx::PgPool;

use crate::env::{ops_token, token, Service};
use crate::ingest::{close_body, provision};

/// Merchants `cyc-m*` with one terminal each, and one batch of `lines` per terminal.
pub async fn seed(service: &Service, merchants: usize, lines: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    let fleet = provision(service, "cyc-", merchants, merchants).await?;
    let client = reqwest::Client::new();
    let base = service.base.clone();
    let results: Vec<anyhow::Result<()>> = stream::iter(fleet.into_iter().enumerate().map(
        |(i, (terminal, merchant))| {
            let (client, base) = (client.clone(), base.clone());
            async move {
                let r = client
                    .post(format!("{base}/v1/terminals/{terminal}/batches"))
                    .bearer_auth(token(&Principal::Terminal {
                        terminal_id: terminal.clone(),
                        merchant_id: merchant,
                    }))
                    .header("Idempotency-Key", "cycle")
                    .header("content-type", "application/json")
                    .body(close_body(1, lines, 7_000_000 + i as u64))
                    .send()
                    .await?;
                anyhow::ensure!(r.status().as_u16() == 201, "close: {}", r.status());
                Ok(())
            }
        },
    ))
    .buffer_unordered(16)
    .collect()
    .await;
    results.into_iter().collect::<anyhow::Result<()>>()?;
    Ok(started.elapsed().as_secs_f64())
}

/// Moves every `cyc-` merchant's cutoff to `lead` from now (UTC), so all their
/// cycles fall due at once; returns the cutoff instant.
pub async fn cutoff_soon(pool: &PgPool, lead: Duration) -> anyhow::Result<chrono::DateTime<Utc>> {
    // Whole seconds: cutoffs are kept to the second.
    let at = (Utc::now() + chrono::Duration::from_std(lead)?)
        .with_nanosecond(0)
        .context("a whole second")?;
    sqlx::query("UPDATE merchants SET cutoff_local_time = $1::time WHERE merchant_id LIKE 'cyc-%'")
        .bind(at.time())
        .execute(pool)
        .await?;
    Ok(at)
}

/// Once `cutoff` has passed, runs settlement once through the operations API (the
/// function the scheduler runs at each tick) and checks that it closed every
/// `cyc-` merchant's cycle; returns the seconds the run took.
pub async fn run_after(
    service: &Service,
    pool: &PgPool,
    merchants: usize,
    cutoff: chrono::DateTime<Utc>,
) -> anyhow::Result<f64> {
    let wait = (cutoff - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(50);
    tokio::time::sleep(wait).await;
    let started = Instant::now();
    let r = reqwest::Client::new()
        .post(format!("{}/v1/ops/settlement-runs", service.base))
        .bearer_auth(ops_token())
        .json(&serde_json::json!({}))
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "settlement run: {}", r.status());
    let view: serde_json::Value = r.json().await?;
    let took = started.elapsed().as_secs_f64();
    let closed = view["closed_cycles"].as_array().map_or(0, Vec::len);
    let paid = view["payouts"].as_array().map_or(0, Vec::len);
    let in_db: i64 =
        sqlx::query_scalar("SELECT count(*) FROM settlement_cycles WHERE merchant_id LIKE 'cyc-%'")
            .fetch_one(pool)
            .await?;
    anyhow::ensure!(
        closed == merchants && paid == merchants && in_db == i64::try_from(merchants)?,
        "the run closed {closed} cycles ({in_db} stored) and made {paid} payouts for {merchants} merchants"
    );
    Ok(took)
}

/// The baseline: one statement that sums every due transaction per merchant and
/// writes one row per cycle into a table of `settlement_cycles`' shape.
pub async fn set_based_baseline(pool: &PgPool) -> anyhow::Result<f64> {
    sqlx::query("DROP TABLE IF EXISTS bench_cycles")
        .execute(pool)
        .await?;
    sqlx::query(
        "CREATE TABLE bench_cycles (LIKE settlement_cycles INCLUDING DEFAULTS INCLUDING INDEXES)",
    )
    .execute(pool)
    .await?;
    let started = Instant::now();
    sqlx::query(
        "INSERT INTO bench_cycles (id, merchant_id, currency, cycle_date, closed_at, batch_count, sale_count, \
             sale_amount_minor, void_amount_minor, refund_amount_minor, net_amount_minor, fee_minor, payable_minor) \
         SELECT gen_random_uuid(), b.merchant_id, b.currency, b.cycle_date, now(), count(DISTINCT b.id), \
                count(*) FILTER (WHERE l.line_type = 'sale'), \
                COALESCE(sum(l.amount_minor) FILTER (WHERE l.line_type = 'sale'), 0), \
                COALESCE(sum(l.amount_minor) FILTER (WHERE l.line_type = 'void'), 0), \
                COALESCE(sum(l.amount_minor) FILTER (WHERE l.line_type = 'refund'), 0), \
                COALESCE(sum(l.amount_minor) FILTER (WHERE l.line_type = 'sale'), 0) \
                  - COALESCE(sum(l.amount_minor) FILTER (WHERE l.line_type IN ('void', 'refund')), 0), \
                0, \
                COALESCE(sum(l.amount_minor) FILTER (WHERE l.line_type = 'sale'), 0) \
                  - COALESCE(sum(l.amount_minor) FILTER (WHERE l.line_type IN ('void', 'refund')), 0) \
         FROM batches b JOIN batch_lines l ON l.batch_id = b.id \
         WHERE b.merchant_id LIKE 'cyc-%' \
         GROUP BY b.merchant_id, b.currency, b.cycle_date",
    )
    .execute(pool)
    .await?;
    Ok(started.elapsed().as_secs_f64())
}
