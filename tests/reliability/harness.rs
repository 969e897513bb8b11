//! Real processes for the fault tests: a private Postgres cluster a test may crash
//! and restart, `settlementd serve` processes it may kill, and a fleet of terminals
//! that keep closing batches and retry with their idempotency keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

use settlement_store::local_postgres::{free_port, DataFolder, LocalPostgres};

use crate::helpers::{batch_body, ops_token, terminal_token, SECRET};

/// A number from the environment, for runs longer than CI's.
pub fn scale(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Prints one line of figures, tagged so the report script can collect them.
pub fn figures(test: &str, fields: &[(&str, String)]) {
    let text: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("FIGURES {test}: {}", text.join(" "));
}

/// A private cluster this test owns, so it may crash it. Commits stay synchronous
/// (unlike the shared test server): a close acknowledged to a client must survive
/// the crash. `fsync` is off, which a process crash does not need.
pub struct Cluster {
    pg: LocalPostgres,
}

const CRASHABLE_SETTINGS: &[&str] = &["fsync=off", "max_connections=100"];

/// A free loopback port below the kernel's ephemeral range (32768 and up on Linux by
/// default). A crashed cluster restarts on its port; a port from the ephemeral range
/// may meanwhile be handed to any socket bound to port 0 (a service, a client), and
/// the restart then finds it taken.
fn port_outside_ephemeral_range() -> anyhow::Result<u16> {
    for _ in 0..200 {
        let draw = uuid::Uuid::new_v4().as_u128();
        let port = 20_000 + u16::try_from(draw % 12_000).unwrap_or(0);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    anyhow::bail!("no free port between 20000 and 32000")
}

impl Cluster {
    pub async fn start() -> Cluster {
        let dir = std::env::temp_dir().join(format!(
            "settlement-crash-pg-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let pg = tokio::task::spawn_blocking(move || {
            let port = port_outside_ephemeral_range()?;
            LocalPostgres::start(&dir, port, CRASHABLE_SETTINGS, DataFolder::Keep)
        })
        .await
        .unwrap()
        .expect("private cluster");
        settlement_store::create_database_if_absent(&pg.url("postgres"), "settlement")
            .await
            .expect("database");
        Cluster { pg }
    }

    pub fn url(&self) -> String {
        self.pg.url("settlement")
    }

    /// `pg_ctl stop -m immediate`: every backend dies at once, as in a crash.
    pub async fn crash(&self) {
        let pg = self.pg.clone();
        tokio::task::spawn_blocking(move || pg.stop("immediate"))
            .await
            .unwrap()
            .expect("immediate stop");
    }

    /// Starts the crashed cluster again on the same folder and port (it recovers
    /// from its write-ahead log first).
    pub async fn restart(&self) {
        let (dir, port) = (self.pg.data_dir.clone(), self.pg.port);
        tokio::task::spawn_blocking(move || {
            LocalPostgres::start(&dir, port, CRASHABLE_SETTINGS, DataFolder::Keep)
        })
        .await
        .unwrap()
        .expect("restart");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.pg.stop("fast");
        let _ = std::fs::remove_dir_all(&self.pg.data_dir);
    }
}

/// A `settlementd serve` process on a fixed port, restarted on the same port.
pub struct Service {
    child: Option<tokio::process::Child>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    pub base: String,
}

impl Service {
    /// Starts `settlementd serve` against `database_url`, appending its output to
    /// `log`, and waits until it is ready.
    pub async fn start(database_url: &str, extra: &[(&str, &str)], log: &Path) -> Service {
        Service::start_as(&["serve"], database_url, extra, log).await
    }

    /// Starts `settlementd` with `args` (`serve ...`) the same way.
    pub async fn start_as(
        args: &[&str],
        database_url: &str,
        extra: &[(&str, &str)],
        log: &Path,
    ) -> Service {
        let port = free_port().unwrap();
        let mut env: Vec<(String, String)> = [
            ("DATABASE_URL", database_url),
            ("AUTH_HS256_SECRET", SECRET),
            (
                "BANK_ACCOUNT_KEYS",
                "test-k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            ),
            ("METRICS_LISTEN_ADDR", "off"),
            ("SETTLEMENT_RUN_INTERVAL_SECONDS", "0"),
            ("RATE_LIMIT_TERMINAL_PER_MINUTE", "0"),
            ("RATE_LIMIT_MERCHANT_PER_MINUTE", "0"),
            ("RUST_LOG", "info"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        env.push(("SETTLEMENT_LISTEN_ADDR".into(), format!("127.0.0.1:{port}")));
        let mut service = Service {
            child: None,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env,
            log: log.to_owned(),
            base: format!("http://127.0.0.1:{port}"),
        };
        service.spawn();
        service.wait_ready(Duration::from_secs(60)).await;
        service
    }

    /// Starts `settlementd worker` with this service's environment (its database,
    /// its intervals), appending to the same log; killed when dropped.
    pub fn spawn_worker(&self) -> tokio::process::Child {
        self.launch(&["worker"])
    }

    /// Runs `settlementd` with `args` and this service's environment, its output
    /// appended to the log; killed when dropped.
    fn launch(&self, args: &[&str]) -> tokio::process::Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        tokio::process::Command::new(env!("CARGO_BIN_EXE_settlementd"))
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("settlementd runs")
    }

    fn spawn(&mut self) {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.child = Some(self.launch(&args));
    }

    /// Waits until `/readyz` answers 200; returns how long that took.
    pub async fn wait_ready(&self, limit: Duration) -> Duration {
        let started = Instant::now();
        let client = reqwest::Client::new();
        loop {
            let ready = client
                .get(format!("{}/readyz", self.base))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK);
            if ready {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < limit,
                "{} not ready in {limit:?}",
                self.base
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: no shutdown, no flush, requests in flight are cut.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("SIGKILL");
        }
    }

    /// Starts the killed process again on its port; returns the time to ready.
    pub async fn restart(&mut self) -> Duration {
        let started = Instant::now();
        self.spawn();
        self.wait_ready(Duration::from_secs(60)).await;
        started.elapsed()
    }
}

/// Creates `merchants` merchants (UTC, the given daily cutoff) with `per_merchant`
/// terminals each through the ops API; returns (terminal, merchant) pairs.
pub async fn provision(
    base: &str,
    prefix: &str,
    merchants: usize,
    per_merchant: usize,
    cutoff: &str,
) -> Vec<(String, String)> {
    let client = reqwest::Client::new();
    let mut fleet = Vec::new();
    for m in 0..merchants {
        let merchant_id = format!("{prefix}m{m}");
        let r = client
            .post(format!("{base}/v1/ops/merchants"))
            .bearer_auth(ops_token())
            .json(&json!({
                "merchant_id": merchant_id, "name": "Fleet shop", "currency": "USD",
                "time_zone": "UTC", "cutoff_local_time": cutoff, "grace_period_hours": 72,
                "payout_delay_business_days": 1,
                "pricing": {"mdr_basis_points": 150, "fixed_fee": "0.10"},
                "bank_account": "DE89370400440532013000"
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap()
        );
        for t in 0..per_merchant {
            let terminal_id = format!("{merchant_id}t{t}");
            let r = client
                .post(format!("{base}/v1/ops/merchants/{merchant_id}/terminals"))
                .bearer_auth(ops_token())
                .json(&json!({"terminal_id": terminal_id}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
            fleet.push((terminal_id, merchant_id.clone()));
        }
    }
    fleet
}

/// What the fleet saw.
#[derive(Default, Debug, Clone)]
pub struct Tally {
    pub requests: u64,
    pub retries: u64,
    /// Acknowledged closes: (terminal, batch number) -> batch id.
    pub acknowledged: BTreeMap<(String, u32), String>,
    /// Closes whose outcome the client never saw and that were found in the
    /// database before the retry / not found.
    pub lost_but_committed: u64,
    pub lost_not_committed: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub transport_errors: u64,
    /// Answers no fault may produce (a 500, a body with database text, a slow 503).
    pub violations: Vec<String>,
    /// Longest wait for any answer.
    pub slowest: Duration,
}

/// Runs one terminal until `stop`: closes batch 1, 2, ... each with its own key,
/// retrying a close until it is acknowledged. A started close is always finished.
/// With `db`, a close whose answer was lost is looked up before it is retried.
pub async fn drive_terminal(
    bases: Arc<Vec<String>>,
    terminal: (String, String),
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
    db: Option<PgPool>,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let (terminal_id, merchant_id) = terminal;
    let token = terminal_token(&terminal_id, &merchant_id);
    let mut number: u32 = 0;
    let mut turn = 0usize;
    while !stop.load(Ordering::Relaxed) {
        number += 1;
        let key = format!("{terminal_id}-close-{number}");
        let body = batch_body(number, Utc::now() - chrono::Duration::minutes(10));
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            turn += 1;
            let base = &bases[turn % bases.len()];
            let started = Instant::now();
            let sent = client
                .post(format!("{base}/v1/terminals/{terminal_id}/batches"))
                .bearer_auth(&token)
                .header("Idempotency-Key", &key)
                .json(&body)
                .send()
                .await;
            let answer = match sent {
                Ok(r) => {
                    let status = r.status();
                    let retry_after = r.headers().contains_key("retry-after");
                    let text = r.text().await.unwrap_or_default();
                    Some((status, retry_after, text))
                }
                Err(_) => None,
            };
            let waited = started.elapsed();
            let label = format!("{terminal_id} #{number}");
            match record(&tally, &label, attempt, waited, answer) {
                Some(id) => {
                    let mut t = tally.lock().unwrap();
                    t.acknowledged.insert((terminal_id.clone(), number), id);
                    break;
                }
                None if !tally.lock().unwrap().violations.is_empty() => return,
                None => {}
            }
            // The outcome is unknown: was it committed before the answer was lost?
            if let Some(db) = &db {
                if let Ok(n) = sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM batches WHERE terminal_id = $1 AND batch_number = $2",
                )
                .bind(&terminal_id)
                .bind(i32::try_from(number).unwrap())
                .fetch_one(db)
                .await
                {
                    let mut t = tally.lock().unwrap();
                    match n {
                        0 => t.lost_not_committed += 1,
                        1 => t.lost_but_committed += 1,
                        _ => t
                            .violations
                            .push(format!("{terminal_id} #{number} stored {n} times")),
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Counts one answer; returns the batch id when the close was acknowledged.
fn record(
    tally: &Mutex<Tally>,
    label: &str,
    attempt: u32,
    waited: Duration,
    answer: Option<(StatusCode, bool, String)>,
) -> Option<String> {
    let mut t = tally.lock().unwrap();
    t.requests += 1;
    t.slowest = t.slowest.max(waited);
    if attempt > 1 {
        t.retries += 1;
    }
    let Some((status, retry_after, text)) = answer else {
        t.transport_errors += 1;
        return None;
    };
    *t.statuses.entry(status.as_u16()).or_default() += 1;
    if status.is_success() {
        let body: Value = serde_json::from_str(&text).unwrap();
        return Some(body["id"].as_str().unwrap().to_owned());
    }
    let transient = status == StatusCode::SERVICE_UNAVAILABLE
        || (status == StatusCode::CONFLICT && text.contains("request_in_progress"));
    if !transient {
        t.violations.push(format!("{label}: {status} {text}"));
    }
    if status == StatusCode::SERVICE_UNAVAILABLE && !retry_after {
        t.violations
            .push(format!("{label}: 503 without Retry-After: {text}"));
    }
    let lower = text.to_lowercase();
    if ["postgres", "sqlx", "connection", "sql"]
        .iter()
        .any(|w| lower.contains(w))
    {
        t.violations
            .push(format!("{label}: database text in an answer: {text}"));
    }
    None
}

/// Starts the fleet; returns its stop flag, the tally and the tasks.
pub fn start_fleet(
    bases: Vec<String>,
    fleet: &[(String, String)],
    db: Option<PgPool>,
) -> (
    Arc<AtomicBool>,
    Arc<Mutex<Tally>>,
    Vec<tokio::task::JoinHandle<()>>,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let bases = Arc::new(bases);
    let tasks = fleet
        .iter()
        .map(|t| {
            tokio::spawn(drive_terminal(
                bases.clone(),
                t.clone(),
                stop.clone(),
                tally.clone(),
                db.clone(),
            ))
        })
        .collect();
    (stop, tally, tasks)
}

/// Stops the fleet and waits for every started close to be acknowledged.
pub async fn stop_fleet(stop: Arc<AtomicBool>, tasks: Vec<tokio::task::JoinHandle<()>>) {
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(120), task)
            .await
            .expect("every close finishes once the faults stop")
            .expect("terminal task");
    }
}

/// The checks every fault test ends with: each terminal's batches are exactly the
/// ones it closed, each once, with the id it was told; no batch is half-written;
/// every ledger invariant holds.
pub async fn verify(db: &PgPool, tally: &Tally, fleet: &[(String, String)]) {
    assert!(tally.violations.is_empty(), "{:#?}", tally.violations);
    for (terminal_id, _) in fleet {
        let stored: Vec<(i32, String)> = sqlx::query_as(
            "SELECT batch_number, id::text FROM batches WHERE terminal_id = $1 ORDER BY batch_number",
        )
        .bind(terminal_id)
        .fetch_all(db)
        .await
        .unwrap();
        let acknowledged: Vec<(i32, String)> = tally
            .acknowledged
            .iter()
            .filter(|((t, _), _)| t == terminal_id)
            .map(|((_, n), id)| (i32::try_from(*n).unwrap(), id.clone()))
            .collect();
        assert_eq!(
            stored, acknowledged,
            "{terminal_id}: the database holds exactly the acknowledged closes"
        );
        let numbers: Vec<i32> = stored.iter().map(|(n, _)| *n).collect();
        let expected: Vec<i32> = (1..=i32::try_from(numbers.len()).unwrap()).collect();
        assert_eq!(numbers, expected, "{terminal_id}: no close went missing");
    }
    let mut conn = db.acquire().await.unwrap();
    for check in settlement_store::checks::run_ledger_checks(&mut conn)
        .await
        .unwrap()
    {
        assert_eq!(
            check.violations, 0,
            "ledger check {} failed: {}",
            check.name, check.description
        );
    }
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM idempotency_keys")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(
        keys,
        i64::try_from(tally.acknowledged.len()).unwrap(),
        "one stored outcome per close"
    );
}

/// A log file under the target folder for a process of `test`.
pub fn log_path(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("reliability");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{test}.log"));
    let _ = std::fs::remove_file(&path);
    path
}
