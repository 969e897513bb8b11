//! Ingest: card transactions per second accepted through `POST .../batches`, beside
//! a raw `COPY` of the same rows into a table of the same shape in the same Postgres.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use serde_json::json;
use settlement_wire::auth::Principal;
use sqlx::PgPool;

use crate::env::{ms, ops_token, own_cpu_seconds, percentile, token, Cluster, CpuReading, Service};

/// One measured load.
pub struct Run {
    pub concurrency: usize,
    pub lines_per_batch: usize,
    pub batches: u64,
    pub seconds: f64,
    pub p50: Duration,
    pub p99: Duration,
    /// CPU milliseconds per batch: settlementd, Postgres, the load generator.
    pub cpu_ms: (f64, f64, f64),
}

impl Run {
    pub fn tx_per_second(&self) -> f64 {
        (self.batches * self.lines_per_batch as u64) as f64 / self.seconds
    }
}

/// The serial of close `number` of terminal `i`: its RRNs are `serial * 10,000 + line`.
fn serial_of(i: usize, number: u64) -> u64 {
    (i as u64) * 1_000_000 + number
}

/// The host's authorizations of the sales of closes with these serials (as
/// `close_body` writes them), 2,000 a request (a request of 10,000 would set the
/// service's peak memory, which the benchmark reports).
async fn feed_host(
    service: &Service,
    client: &reqwest::Client,
    terminal: &str,
    serials: &[u64],
    lines: usize,
) -> anyhow::Result<()> {
    let at = (Utc::now() - chrono::Duration::minutes(5)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let auth = token(&Principal::Host {
        subject: "bench-host".into(),
    });
    let records: Vec<String> = serials
        .iter()
        .flat_map(|serial| {
            let at = &at;
            (0..lines).map(move |i| {
                format!(
                    r#"{{"type":"authorization","terminal_id":"{terminal}","rrn":"{:012}","stan":"{:06}","auth_code":"A1B2C3","transaction_type":"sale","amount":"12.34","currency":"USD","authorized_at":"{at}"}}"#,
                    serial * 10_000 + i as u64,
                    i + 1
                )
            })
        })
        .collect();
    for chunk in records.chunks(2_000) {
        let r = client
            .post(format!("{}/v1/host/authorizations", service.base))
            .bearer_auth(&auth)
            .header("content-type", "application/json")
            .body(format!(r#"{{"records":[{}]}}"#, chunk.join(",")))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "host feed: {}", r.text().await?);
    }
    Ok(())
}

/// A balanced close body of `lines` sales, as a terminal sends it.
pub fn close_body(number: u64, lines: usize, serial: u64) -> String {
    let at = (Utc::now() - chrono::Duration::minutes(5)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut tx = String::with_capacity(lines * 220);
    for i in 0..lines {
        if i > 0 {
            tx.push(',');
        }
        let _ = write!(
            tx,
            r#"{{"stan":"{:06}","rrn":"{:012}","type":"sale","amount":"12.34","captured_at":"{at}","card_brand":"visa","masked_pan":"411111******1111","auth_code":"A1B2C3"}}"#,
            i + 1,
            serial * 10_000 + i as u64
        );
    }
    let total = 1234 * lines as u64;
    format!(
        r#"{{"batch_number":{number},"currency":"USD","totals":{{"sale_count":{lines},"sale_amount":"{}.{:02}","refund_count":0,"refund_amount":"0.00","void_count":0,"void_amount":"0.00"}},"transactions":[{tx}]}}"#,
        total / 100,
        total % 100
    )
}

/// Creates `merchants` merchants and `terminals` terminals named `{prefix}...`.
pub async fn provision(
    service: &Service,
    prefix: &str,
    merchants: usize,
    terminals: usize,
) -> anyhow::Result<Vec<(String, String)>> {
    let client = reqwest::Client::new();
    let ops = ops_token();
    for m in 0..merchants {
        let r = client
            .post(format!("{}/v1/ops/merchants", service.base))
            .bearer_auth(&ops)
            .json(&json!({
                "merchant_id": format!("{prefix}m{m}"), "name": "Bench shop", "currency": "USD",
                "time_zone": "UTC", "cutoff_local_time": "23:59:59",
                "pricing": {"mdr_basis_points": 150, "fixed_fee": "0.10"},
                "bank_account": "DE89370400440532013000"
            }))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "merchant: {}", r.text().await?);
    }
    let mut out = Vec::new();
    for t in 0..terminals {
        let merchant = format!("{prefix}m{}", t % merchants);
        let terminal = format!("{prefix}t{t}");
        let r = client
            .post(format!(
                "{}/v1/ops/merchants/{merchant}/terminals",
                service.base
            ))
            .bearer_auth(&ops)
            .json(&json!({"terminal_id": terminal}))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "terminal: {}", r.text().await?);
        out.push((terminal, merchant));
    }
    Ok(out)
}

/// Closes batches of `lines` lines with `concurrency` terminals for `seconds`.
pub async fn load(
    service: &Service,
    cluster: &Cluster,
    label: &str,
    concurrency: usize,
    lines: usize,
    seconds: f64,
) -> anyhow::Result<Run> {
    let terminals = provision(service, label, concurrency.clamp(1, 8), concurrency).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    // As with a host feed: every line the closes will carry was authorized first, so
    // each close is matched (and matches) as in production. Enough for about 120,000
    // lines a second in all; closes past it carry lines the host does not know.
    let expected = (seconds * 120_000.0 * 1.2 / (lines * concurrency) as f64).ceil() as u64;
    for (i, (terminal, _)) in terminals.iter().enumerate() {
        let serials: Vec<u64> = (1..=expected).map(|n| serial_of(i, n)).collect();
        feed_host(service, &client, terminal, &serials, lines).await?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let batches = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let (cpu_before, own_before) = (CpuReading::take(service, cluster), own_cpu_seconds());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, (terminal, merchant)) in terminals.into_iter().enumerate() {
        let (client, stop, batches, latencies) = (
            client.clone(),
            stop.clone(),
            batches.clone(),
            latencies.clone(),
        );
        let url = format!("{}/v1/terminals/{terminal}/batches", service.base);
        let auth = token(&Principal::Terminal {
            terminal_id: terminal.clone(),
            merchant_id: merchant,
        });
        tasks.push(tokio::spawn(async move {
            let mut number = 0u64;
            let mut mine = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                number += 1;
                let body = close_body(number, lines, serial_of(i, number));
                let sent = Instant::now();
                let r = client
                    .post(&url)
                    .bearer_auth(&auth)
                    .header("Idempotency-Key", format!("b{number}"))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?;
                let status = r.status();
                let answer = r.bytes().await?;
                anyhow::ensure!(
                    status.as_u16() == 201,
                    "close answered {status}: {}",
                    String::from_utf8_lossy(&answer)
                );
                mine.push(sent.elapsed());
                batches.fetch_add(1, Ordering::Relaxed);
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
    let elapsed = started.elapsed().as_secs_f64();
    let batches = batches.load(Ordering::Relaxed);
    let (service_ms, postgres_ms) =
        CpuReading::take(service, cluster).ms_per(&cpu_before, batches as f64);
    let load_ms = (own_cpu_seconds() - own_before) * 1000.0 / batches as f64;
    let mut lat = latencies.lock().unwrap().clone();
    lat.sort();
    Ok(Run {
        concurrency,
        lines_per_batch: lines,
        batches,
        seconds: elapsed,
        p50: percentile(&lat, 0.50),
        p99: percentile(&lat, 0.99),
        cpu_ms: (service_ms, postgres_ms, load_ms),
    })
}

/// COPY text rows of one batch of `lines` lines, shaped like `batch_lines` (with the
/// terminal whose RRNs they present, and not released).
fn copy_rows(lines: usize, serial: u64) -> String {
    let batch = uuid::Uuid::new_v4();
    let at = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut out = String::with_capacity(lines * 120);
    for i in 0..lines {
        let _ = writeln!(
            out,
            "{batch}\t{}\t{:06}\t{:012}\tsale\t1234\t\\N\t{at}\tvisa\t411111******1111\tA1B2C3\tcopy-t1\t\\N\t\\N",
            i + 1,
            i + 1,
            serial * 10_000 + i as u64
        );
    }
    out
}

/// A table of `batch_lines`' shape (columns, checks, keys, indexes) for the COPY
/// baselines, empty.
pub async fn prepare_copy_table(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::query("DROP TABLE IF EXISTS bench_copy_lines")
        .execute(pool)
        .await?;
    sqlx::query("CREATE TABLE bench_copy_lines (LIKE batch_lines INCLUDING ALL)")
        .execute(pool)
        .await?;
    Ok(())
}

/// The same rows through `COPY ... FROM STDIN` into a copy of `batch_lines`' shape
/// (columns, checks, keys, indexes): one COPY and commit per batch, at the same
/// concurrency as the service, for `seconds`. Returns rows per second and the rows.
pub async fn copy_per_batch(
    pool: &PgPool,
    concurrency: usize,
    lines: usize,
    seconds: f64,
    serial_base: u64,
) -> anyhow::Result<(f64, u64)> {
    let stop = Arc::new(AtomicBool::new(false));
    let rows = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (pool, stop, rows) = (pool.clone(), stop.clone(), rows.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let data = copy_rows(lines, serial_base + w as u64 * 1_000_000 + n);
                let mut conn = pool.acquire().await?;
                let mut copy = conn.copy_in_raw("COPY bench_copy_lines FROM STDIN").await?;
                copy.send(data.into_bytes()).await?;
                copy.finish().await?;
                rows.fetch_add(lines as u64, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await??;
    }
    let rows = rows.load(Ordering::Relaxed);
    Ok((rows as f64 / started.elapsed().as_secs_f64(), rows))
}

/// `rows` rows in one COPY and one commit: the most this Postgres takes in.
pub async fn copy_bulk(pool: &PgPool, rows: usize, serial_base: u64) -> anyhow::Result<f64> {
    let chunks: Vec<String> = (0..rows.div_ceil(200))
        .map(|i| copy_rows(200, serial_base + i as u64))
        .collect();
    let started = Instant::now();
    let mut conn = pool.acquire().await?;
    let mut copy = conn.copy_in_raw("COPY bench_copy_lines FROM STDIN").await?;
    for c in chunks {
        copy.send(c.into_bytes()).await?;
    }
    let n = copy.finish().await?;
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

pub fn describe(run: &Run) -> String {
    format!(
        "{:>4} terminals  {:>5} lines/batch  {:>7} batches  {:>9.0} tx/s  p50 {}  p99 {}  \
         CPU per batch: settlementd {:.2} ms, Postgres {:.2} ms",
        run.concurrency,
        run.lines_per_batch,
        run.batches,
        run.tx_per_second(),
        ms(run.p50),
        ms(run.p99),
        run.cpu_ms.0,
        run.cpu_ms.1
    )
}
