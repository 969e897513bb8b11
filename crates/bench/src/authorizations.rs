//! Authorizations: records per second recorded through `POST /v1/host/authorizations`
//! (requests of 1,000 new authorizations), beside a raw `COPY` of the same rows into
//! a table `LIKE host_authorizations INCLUDING ALL` in the same Postgres.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use settlement_wire::auth::Principal;
use sqlx::PgPool;

use crate::env::{ms, percentile, token, Cluster, CpuReading, Service};
use crate::ingest::provision;

/// Records per request.
pub const RECORDS_PER_REQUEST: usize = 1_000;

/// One measured load of the service.
pub struct Run {
    pub concurrency: usize,
    pub records: u64,
    pub seconds: f64,
    pub p50: Duration,
    pub p99: Duration,
    /// CPU milliseconds per 1,000-record request: settlementd, Postgres.
    pub cpu_ms: (f64, f64),
}

impl Run {
    pub fn records_per_second(&self) -> f64 {
        self.records as f64 / self.seconds
    }
}

/// The 12-digit RRN of record `i` of request `serial`.
fn rrn(serial: u64, i: usize) -> String {
    format!("{:012}", serial * 10_000 + i as u64)
}

/// A request body of `RECORDS_PER_REQUEST` new sale authorizations of `terminal`.
fn request_body(terminal: &str, serial: u64) -> String {
    let at = (Utc::now() - chrono::Duration::minutes(5)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut out = String::with_capacity(RECORDS_PER_REQUEST * 260 + 16);
    out.push_str(r#"{"records":["#);
    for i in 0..RECORDS_PER_REQUEST {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            r#"{{"type":"authorization","terminal_id":"{terminal}","rrn":"{}","stan":"{:06}","auth_code":"A1B2C3","transaction_type":"sale","amount":"12.34","currency":"USD","authorized_at":"{at}","card_brand":"visa","masked_pan":"411111******1111"}}"#,
            rrn(serial, i),
            i % 1_000_000
        );
    }
    out.push_str("]}");
    out
}

/// Posts requests of new authorizations with `concurrency` connections for `seconds`
/// (each connection for a terminal of its own, so requests never wait on each other's
/// keys); every record must come back `recorded`.
pub async fn load(
    service: &Service,
    cluster: &Cluster,
    label: &str,
    concurrency: usize,
    seconds: f64,
) -> anyhow::Result<Run> {
    let terminals = provision(service, label, 1, concurrency).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let auth = token(&Principal::Host {
        subject: "bench-switch".to_owned(),
    });
    let url = format!("{}/v1/host/authorizations", service.base);
    let stop = Arc::new(AtomicBool::new(false));
    let records = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let cpu_before = CpuReading::take(service, cluster);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (w, (terminal, _)) in terminals.into_iter().enumerate() {
        let (client, stop, records, latencies, auth, url) = (
            client.clone(),
            stop.clone(),
            records.clone(),
            latencies.clone(),
            auth.clone(),
            url.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            let mut mine = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let body = request_body(&terminal, w as u64 * 1_000_000 + n);
                let sent = Instant::now();
                let r = client
                    .post(&url)
                    .bearer_auth(&auth)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?;
                let status = r.status();
                let answer: serde_json::Value = r.json().await?;
                anyhow::ensure!(
                    status.as_u16() == 200
                        && answer["totals"]["recorded"] == RECORDS_PER_REQUEST as u64,
                    "authorizations answered {status}: {}",
                    answer["totals"]
                );
                mine.push(sent.elapsed());
                records.fetch_add(RECORDS_PER_REQUEST as u64, Ordering::Relaxed);
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
    let seconds = started.elapsed().as_secs_f64();
    let records = records.load(Ordering::Relaxed);
    let cpu_ms = CpuReading::take(service, cluster)
        .ms_per(&cpu_before, records as f64 / RECORDS_PER_REQUEST as f64);
    let mut lat = latencies.lock().unwrap().clone();
    lat.sort();
    Ok(Run {
        concurrency,
        records,
        seconds,
        p50: percentile(&lat, 0.50),
        p99: percentile(&lat, 0.99),
        cpu_ms,
    })
}

/// A table of `host_authorizations`' shape (columns, checks, keys, indexes), empty.
pub async fn prepare_copy_table(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::query("DROP TABLE IF EXISTS bench_copy_authorizations")
        .execute(pool)
        .await?;
    sqlx::query("CREATE TABLE bench_copy_authorizations (LIKE host_authorizations INCLUDING ALL)")
        .execute(pool)
        .await?;
    Ok(())
}

/// COPY text rows of one request's records (serials stay below 10^8, so the
/// 12-digit RRNs stay distinct).
fn copy_rows(serial: u64) -> String {
    let at = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut out = String::with_capacity(RECORDS_PER_REQUEST * 110);
    for i in 0..RECORDS_PER_REQUEST {
        let _ = writeln!(
            out,
            "copy-t1\tcopy-m1\t{}\t{:06}\tA1B2C3\tsale\t1234\tUSD\t{at}\tvisa\t411111******1111",
            rrn(serial, i),
            i % 1_000_000
        );
    }
    out
}

/// The same rows through `COPY ... FROM STDIN`, one COPY and commit per 1,000
/// records, at `concurrency` connections for `seconds`. Returns rows per second.
pub async fn copy_per_request(
    pool: &PgPool,
    concurrency: usize,
    seconds: f64,
    serial_base: u64,
) -> anyhow::Result<f64> {
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
                let data = copy_rows(serial_base + w as u64 * 1_000_000 + n);
                let mut conn = pool.acquire().await?;
                let mut copy = conn
                    .copy_in_raw(
                        "COPY bench_copy_authorizations (terminal_id, merchant_id, rrn, stan, auth_code, \
                         transaction_type, amount_minor, currency, authorized_at, card_brand, masked_pan) \
                         FROM STDIN",
                    )
                    .await?;
                copy.send(data.into_bytes()).await?;
                copy.finish().await?;
                rows.fetch_add(RECORDS_PER_REQUEST as u64, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await??;
    }
    Ok(rows.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

pub fn describe(run: &Run) -> String {
    format!(
        "{:>3} connections  {:>8} records  {:>8.0} records/s  p50 {}  p99 {} per 1,000-record request, \
         CPU settlementd {:.1} ms, Postgres {:.1} ms",
        run.concurrency,
        run.records,
        run.records_per_second(),
        ms(run.p50),
        ms(run.p99),
        run.cpu_ms.0,
        run.cpu_ms.1,
    )
}
