//! The benchmark's world: a private Postgres cluster, the release `settlementd serve`
//! process against it, tokens, and the machine's description.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use settlement_store::local_postgres::{free_port, DataFolder, LocalPostgres};
use settlement_wire::auth::{sign_hs256, Claims, Principal};
use sqlx::PgPool;

pub const SECRET: &str = "bench-secret-0123456789abcdef0123456789abcdef";

/// Server settings of the benchmark cluster: durable (fsync and synchronous commit
/// stay on), with room for the service's pool and the baselines' connections.
const SETTINGS: &[&str] = &[
    "max_connections=100",
    "shared_buffers=512MB",
    "max_wal_size=4GB",
    "checkpoint_timeout=30min",
    // Per-statement timings, printed as the profile of each measurement.
    "shared_preload_libraries=pg_stat_statements",
    "pg_stat_statements.track_planning=on",
];

pub struct Cluster {
    pub pg: LocalPostgres,
}

impl Cluster {
    pub async fn start(dir: &Path) -> anyhow::Result<Cluster> {
        let _ = std::fs::remove_dir_all(dir);
        let dir = dir.to_owned();
        let pg = tokio::task::spawn_blocking(move || {
            LocalPostgres::start(&dir, free_port()?, SETTINGS, DataFolder::Keep)
        })
        .await??;
        settlement_store::create_database_if_absent(&pg.url("postgres"), "settlement").await?;
        Ok(Cluster { pg })
    }

    pub fn url(&self) -> String {
        self.pg.url("settlement")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.pg.stop("fast");
        let _ = std::fs::remove_dir_all(&self.pg.data_dir);
    }
}

/// `settlementd serve`, built in the same profile as this program.
pub struct Service {
    child: tokio::process::Child,
    pub pid: u32,
    pub base: String,
}

impl Service {
    pub async fn start(database_url: &str, extra: &[(&str, &str)]) -> anyhow::Result<Service> {
        let bin = sibling("settlementd")?;
        let port = free_port()?;
        let mut cmd = tokio::process::Command::new(&bin);
        cmd.arg("serve")
            .env_clear()
            .env("DATABASE_URL", database_url)
            .env("AUTH_HS256_SECRET", SECRET)
            .env(
                "BANK_ACCOUNT_KEYS",
                "bench-k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            )
            .env("SETTLEMENT_LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("METRICS_LISTEN_ADDR", "off")
            .env("SETTLEMENT_RUN_INTERVAL_SECONDS", "0")
            .env("WEBHOOK_POLL_INTERVAL_MS", "0")
            // The load generator is one client; per-caller limits would meter it.
            .env("RATE_LIMIT_TERMINAL_PER_MINUTE", "0")
            .env("RATE_LIMIT_MERCHANT_PER_MINUTE", "0")
            .env("RUST_LOG", "warn")
            .envs(extra.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id().context("service pid")?;
        let service = Service {
            child,
            pid,
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if client
                .get(format!("{}/readyz", service.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(service);
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("settlementd was not ready within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn status_field(&self, field: &str) -> Option<f64> {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let line = text.lines().find(|l| l.starts_with(field))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024.0)
    }

    /// Peak resident memory since start or the last reset, in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        self.status_field("VmHWM:").unwrap_or(f64::NAN)
    }

    /// Starts a new peak-resident-memory measurement (Linux `clear_refs` 5).
    pub fn reset_peak_rss(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5");
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A program built next to this one (`target/release/<name>`).
fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name(name);
    anyhow::ensure!(
        path.is_file(),
        "{} not found: build it first (cargo build --release -p settlementd)",
        path.display()
    );
    Ok(path)
}

pub fn token(principal: &Principal) -> String {
    sign_hs256(
        &Claims::for_principal(principal, "settlement", "settlement-api", 6 * 3600),
        SECRET.as_bytes(),
    )
    .expect("signing")
}

pub fn ops_token() -> String {
    token(&Principal::Ops {
        subject: "ops:bench".into(),
    })
}

/// The value below which `p` (0..=1) of the sorted samples fall.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Cores and CPU model of this machine.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores ({model})")
}

/// The `limit` statements with the most time since pg_stat_statements was last
/// reset, with calls and mean execution and planning time.
pub async fn statement_profile(pool: &PgPool, limit: i64) -> anyhow::Result<()> {
    let rows: Vec<(i64, f64, f64, f64, String)> = sqlx::query_as(
        "SELECT calls, total_exec_time, mean_exec_time, mean_plan_time, \
                left(regexp_replace(query, '\\s+', ' ', 'g'), 90) \
         FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND query NOT LIKE '%pg_stat_statements%' \
         ORDER BY total_exec_time + total_plan_time DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    for (calls, total, exec, plan, query) in rows {
        println!(
            "      {calls:>7} calls  {total:>8.1} ms  exec {exec:.3} ms  plan {plan:.3} ms  {query}"
        );
    }
    Ok(())
}

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds (user + system) a process has used, with those of its children
/// that have exited and been waited for when `with_waited_children`.
fn process_cpu_seconds(pid: u32, with_waited_children: bool) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // state is field 3 of stat, so utime (14) is at 11 here, stime 12, cutime 13, cstime 14.
    let mut ticks = num(11)? + num(12)?;
    if with_waited_children {
        ticks += num(13)? + num(14)?;
    }
    Some(ticks / TICKS_PER_SECOND)
}

/// The parent pid of a process.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU seconds used so far by settlementd and by the whole Postgres cluster
/// (postmaster, backends, WAL writer, checkpointer, autovacuum), read from `/proc`.
#[derive(Debug, Clone, Copy)]
pub struct CpuReading {
    pub service: f64,
    pub postgres: f64,
}

impl CpuReading {
    pub fn take(service: &Service, cluster: &Cluster) -> CpuReading {
        let postmaster = std::fs::read_to_string(cluster.pg.data_dir.join("postmaster.pid"))
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<u32>().ok()));
        let mut postgres = 0.0;
        if let Some(pm) = postmaster {
            postgres += process_cpu_seconds(pm, true).unwrap_or(0.0);
            for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<u32>().ok())
                else {
                    continue;
                };
                if parent_of(pid) == Some(pm) {
                    postgres += process_cpu_seconds(pid, false).unwrap_or(0.0);
                }
            }
        }
        CpuReading {
            service: process_cpu_seconds(service.pid, false).unwrap_or(f64::NAN),
            postgres,
        }
    }

    /// CPU milliseconds of each side per `units` since `earlier`.
    pub fn ms_per(&self, earlier: &CpuReading, units: f64) -> (f64, f64) {
        (
            (self.service - earlier.service) * 1000.0 / units,
            (self.postgres - earlier.postgres) * 1000.0 / units,
        )
    }
}

/// CPU seconds this benchmark process (the load generator) has used so far.
pub fn own_cpu_seconds() -> f64 {
    process_cpu_seconds(std::process::id(), false).unwrap_or(f64::NAN)
}
