//! Status reads: the merchant's status, batch list and balance, p50/p99 under
//! concurrent load, with 1 million and then 10 million card transactions of settled
//! history in the database.
//!
//! History is written set-based in SQL (it would take the API minutes): per day, one
//! batch of `LINES` sales per terminal, booked with its journal entry, closed into the
//! merchant's cycle of that day with the cycle's entry, exactly the rows and postings
//! the service itself writes, balance checkpoints included (payouts of the history
//! are left out).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{Duration as Days, NaiveDate, Utc};
use settlement_wire::auth::Principal;
use sqlx::PgPool;

use crate::env::{ms, percentile, statement_profile, token, Service};
use crate::ingest::{close_body, provision};

/// Lines in each history batch.
pub const LINES: i64 = 200;
/// Merchants with history, two terminals each.
pub const MERCHANTS: usize = 100;

/// Writes the history of `day` (all history merchants, every terminal).
async fn seed_day(pool: &PgPool, day: NaiveDate, number: i32) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    for sql in [
        "CREATE TEMP TABLE seed_b ON COMMIT DROP AS \
         SELECT t.terminal_id, t.merchant_id, gen_random_uuid() AS batch_id, gen_random_uuid() AS entry_id \
         FROM terminals t WHERE t.merchant_id LIKE 'hist-%'",
        "CREATE TEMP TABLE seed_c ON COMMIT DROP AS \
         SELECT merchant_id, gen_random_uuid() AS cycle_id, gen_random_uuid() AS entry_id, count(*)::int AS batches \
         FROM seed_b GROUP BY merchant_id",
    ] {
        sqlx::query(sql).execute(&mut *tx).await?;
    }
    // Amounts: every line a 12.34 sale; fee 150 bp rounded per batch plus 0.10 a sale.
    let statements = [
        "INSERT INTO journal_entries (id, kind, merchant_id, description, created_at) \
         SELECT entry_id, 'batch_accepted', merchant_id, 'batch booked', $1::date + time '20:00' FROM seed_b \
         UNION ALL \
         SELECT entry_id, 'cycle_settled', merchant_id, 'cycle settled', $1::date + time '23:59:59' FROM seed_c",
        "INSERT INTO postings (entry_id, account_id, currency, amount_minor, created_at) \
         SELECT b.entry_id, a.id, 'USD', x.amount, $1::date + time '20:00' \
         FROM seed_b b \
         CROSS JOIN LATERAL (VALUES ('scheme_receivable', NULL, 1234 * $2::bigint), \
                                    ('merchant_pending', b.merchant_id, -1234 * $2::bigint)) x(kind, owner, amount) \
         JOIN accounts a ON a.kind = x.kind AND a.merchant_id IS NOT DISTINCT FROM x.owner AND a.currency = 'USD'",
        "INSERT INTO postings (entry_id, account_id, currency, amount_minor, created_at) \
         SELECT c.entry_id, a.id, 'USD', x.amount, $1::date + time '23:59:59' \
         FROM (SELECT c.*, c.batches * 1234 * $2::bigint AS net, \
                      c.batches * ((1234 * $2::bigint * 150 + 5000) / 10000 + 10 * $2::bigint) AS fee \
               FROM seed_c c) c \
         CROSS JOIN LATERAL (VALUES ('merchant_pending', c.merchant_id, c.net), \
                                    ('merchant_payable', c.merchant_id, c.fee - c.net), \
                                    ('fee_revenue', NULL, -c.fee)) x(kind, owner, amount) \
         JOIN accounts a ON a.kind = x.kind AND a.merchant_id IS NOT DISTINCT FROM x.owner AND a.currency = 'USD'",
        "INSERT INTO settlement_cycles (id, merchant_id, currency, cycle_date, closed_at, batch_count, sale_count, \
             sale_amount_minor, void_amount_minor, refund_amount_minor, net_amount_minor, fee_minor, payable_minor, journal_entry_id) \
         SELECT cycle_id, merchant_id, 'USD', $1::date, $1::date + time '23:59:59', batches, batches * $2::bigint, \
                net, 0, 0, net, fee, net - fee, entry_id \
         FROM (SELECT c.*, c.batches * 1234 * $2::bigint AS net, \
                      c.batches * ((1234 * $2::bigint * 150 + 5000) / 10000 + 10 * $2::bigint) AS fee \
               FROM seed_c c) c",
        "INSERT INTO batches (id, terminal_id, merchant_id, batch_number, status, currency, business_date, cycle_date, \
             received_at, cutoff_at, grace_deadline, late_by_seconds, sale_count, sale_amount_minor, refund_count, \
             refund_amount_minor, void_count, void_amount_minor, net_amount_minor, line_count, content_hash, \
             journal_entry_id, fee_minor, settlement_cycle_id) \
         SELECT b.batch_id, b.terminal_id, b.merchant_id, $3, 'accepted', 'USD', $1::date, $1::date, \
                $1::date + time '20:00', $1::date + time '23:59:59', $1::date + time '23:59:59' + interval '72 hours', 0, \
                $2::bigint, 1234 * $2::bigint, 0, 0, 0, 0, 1234 * $2::bigint, $2::int, decode(md5(b.batch_id::text), 'hex'), \
                b.entry_id, (1234 * $2::bigint * 150 + 5000) / 10000 + 10 * $2::bigint, c.cycle_id \
         FROM seed_b b JOIN seed_c c USING (merchant_id)",
        "INSERT INTO batch_lines (batch_id, terminal_id, line_no, stan, rrn, line_type, amount_minor, captured_at, card_brand, masked_pan, auth_code) \
         SELECT b.batch_id, b.terminal_id, n, lpad(n::text, 6, '0'), lpad((n + $3 * 1000)::text, 12, '0'), 'sale', 1234, \
                $1::date + time '19:00', 'visa', '411111******1111', 'A1B2C3' \
         FROM seed_b b CROSS JOIN generate_series(1, $2::int) n",
    ];
    for sql in statements {
        sqlx::query(sql)
            .bind(day)
            .bind(LINES)
            .bind(number)
            .execute(&mut *tx)
            .await?;
    }
    // The checkpoint the service writes when it closes a cycle, by the same code.
    for m in 0..MERCHANTS {
        settlement_store::ledger::checkpoint_merchant_accounts(&mut tx, &[format!("hist-m{m}")])
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Extra terminals of `hist-m0`, the merchant whose statement is exported: with its
/// two it has 20, so 250 days of history are a million statement rows.
pub const BIG_MERCHANT_EXTRA_TERMINALS: usize = 18;

/// Creates the history merchants (through the API) and the house accounts.
pub async fn provision_history(service: &Service, pool: &PgPool) -> anyhow::Result<()> {
    provision(service, "hist-", MERCHANTS, MERCHANTS * 2).await?;
    let client = reqwest::Client::new();
    for i in 0..BIG_MERCHANT_EXTRA_TERMINALS {
        let r = client
            .post(format!(
                "{}/v1/ops/merchants/hist-m0/terminals",
                service.base
            ))
            .bearer_auth(crate::env::ops_token())
            .json(&serde_json::json!({"terminal_id": format!("hist-x{i}")}))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "terminal: {}", r.status());
    }
    sqlx::query(
        "INSERT INTO accounts (kind, merchant_id, currency) \
         SELECT k, m, 'USD' FROM (VALUES ('scheme_receivable', NULL), ('fee_revenue', NULL)) h(k, m) \
         UNION ALL \
         SELECT k, merchant_id, 'USD' FROM merchants, (VALUES ('merchant_pending'), ('merchant_payable')) v(k) \
         WHERE merchant_id LIKE 'hist-%' \
         ON CONFLICT DO NOTHING",
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Adds days of history until `days` days are written; returns the seconds taken.
pub async fn seed_until(pool: &PgPool, from_day: u32, days: u32) -> anyhow::Result<f64> {
    let started = Instant::now();
    let today = Utc::now().date_naive();
    for d in from_day..=days {
        // Day `d` of history lies `d` days back; numbers rise with time.
        let day = today - Days::days(i64::from(d));
        seed_day(pool, day, 1_000 - i32::try_from(d)?).await?;
    }
    // Steady state: history that has been vacuumed, so no autovacuum of the fresh
    // rows competes with the measurement.
    sqlx::query("VACUUM ANALYZE").execute(pool).await?;
    // ...and written out: no checkpoint of the load's dirty pages runs meanwhile.
    sqlx::query("CHECKPOINT").execute(pool).await?;
    Ok(started.elapsed().as_secs_f64())
}

/// Today's closes of every history terminal, through the API, so status has pending
/// money and a last close to show.
pub async fn close_today(service: &Service) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    for t in 0..MERCHANTS * 2 {
        let terminal = format!("hist-t{t}");
        let merchant = format!("hist-m{}", t % MERCHANTS);
        let r = client
            .post(format!("{}/v1/terminals/{terminal}/batches", service.base))
            .bearer_auth(token(&Principal::Terminal {
                terminal_id: terminal.clone(),
                merchant_id: merchant,
            }))
            .header("Idempotency-Key", "today")
            .header("content-type", "application/json")
            .body(close_body(1_000, 200, 5_000_000 + t as u64))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "today's close: {}", r.status());
    }
    Ok(())
}

/// p50 and p99 of one read under `concurrency` clients for `seconds`, merchants
/// taken in turn.
pub async fn read_load(
    service: &Service,
    what: &str,
    concurrency: usize,
    seconds: f64,
) -> anyhow::Result<(Duration, Duration, usize)> {
    let client = reqwest::Client::new();
    let stop = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (client, stop, latencies) = (client.clone(), stop.clone(), latencies.clone());
        let (base, what) = (service.base.clone(), what.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let mut i = w;
            while !stop.load(Ordering::Relaxed) {
                let merchant = format!("hist-m{}", i % MERCHANTS);
                i += concurrency;
                let path = match what.as_str() {
                    "status" => format!("/v1/merchants/{merchant}/status"),
                    "batches" => format!("/v1/merchants/{merchant}/batches?limit=50"),
                    _ => format!("/v1/merchants/{merchant}/balance"),
                };
                let auth = token(&Principal::Merchant {
                    merchant_id: merchant,
                });
                let sent = Instant::now();
                let r = client
                    .get(format!("{base}{path}"))
                    .bearer_auth(auth)
                    .send()
                    .await?;
                let status = r.status();
                let _ = r.bytes().await?;
                anyhow::ensure!(status.is_success(), "{path}: {status}");
                mine.push(sent.elapsed());
            }
            latencies.lock().unwrap().extend(mine);
            anyhow::Ok(())
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await??;
    }
    let mut lat = latencies.lock().unwrap().clone();
    lat.sort();
    Ok((percentile(&lat, 0.5), percentile(&lat, 0.99), lat.len()))
}

/// Measures the three reads; returns the status call's p99. With `profile`, the
/// statements behind each read are listed.
pub async fn measure(
    service: &Service,
    pool: &PgPool,
    label: &str,
    concurrency: usize,
    seconds: f64,
    with_profile: bool,
) -> anyhow::Result<Duration> {
    sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .execute(pool)
        .await?;
    let mut status_p99 = Duration::ZERO;
    for what in ["status", "batches", "balance"] {
        sqlx::query("SELECT pg_stat_statements_reset()")
            .execute(pool)
            .await?;
        let (p50, p99, n) = read_load(service, what, concurrency, seconds).await?;
        println!(
            "  {label:<24} {what:<8} {n:>6} reads  p50 {}  p99 {}",
            ms(p50),
            ms(p99)
        );
        if with_profile {
            statement_profile(pool, 6).await?;
        }
        if what == "status" {
            status_p99 = p99;
        }
    }
    Ok(status_p99)
}

/// Shared-buffer hits and reads (from the operating system) of a database so far.
#[derive(Debug, Clone, Copy)]
pub struct Blocks {
    hit: i64,
    read: i64,
}

impl Blocks {
    /// Hits and reads per `calls` since `earlier`.
    pub fn since(self, earlier: Blocks, calls: usize) -> (f64, f64) {
        let per = |n: i64| n as f64 / calls.max(1) as f64;
        (per(self.hit - earlier.hit), per(self.read - earlier.read))
    }
}

pub async fn blocks(pool: &PgPool) -> anyhow::Result<Blocks> {
    // The statistics of the current transaction are flushed at its end: read afresh.
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(pool)
        .await?;
    let (hit, read): (i64, i64) = sqlx::query_as(
        "SELECT blks_hit, blks_read FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await?;
    Ok(Blocks { hit, read })
}

pub async fn transactions(pool: &PgPool) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM batch_lines")
        .fetch_one(pool)
        .await?)
}

/// Streams the merchant's CSV statement over the last `days` days, reading it as it
/// arrives; returns (rows, bytes, seconds, peak RSS of settlementd in MiB).
pub async fn export(
    service: &Service,
    merchant: &str,
    days: i64,
) -> anyhow::Result<(u64, u64, f64, f64)> {
    let to = Utc::now().date_naive();
    let from = to - Days::days(days);
    service.reset_peak_rss();
    let started = Instant::now();
    let mut r = reqwest::Client::new()
        .get(format!(
            "{}/v1/merchants/{merchant}/statement?from={from}&to={to}&format=csv",
            service.base
        ))
        .bearer_auth(token(&Principal::Merchant {
            merchant_id: merchant.into(),
        }))
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "statement: {}", r.status());
    let (mut rows, mut bytes) = (0u64, 0u64);
    while let Some(chunk) = r.chunk().await? {
        bytes += chunk.len() as u64;
        rows += chunk.iter().filter(|b| **b == b'\n').count() as u64;
    }
    Ok((
        rows.saturating_sub(1),
        bytes,
        started.elapsed().as_secs_f64(),
        service.peak_rss_mib(),
    ))
}
