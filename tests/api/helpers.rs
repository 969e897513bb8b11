//! Spawning the application and talking to it.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;

use settlement_api::auth::{sign_hs256, Claims, Principal};
use settlement_api::{Application, Config};
use settlement_store::PoolLimits;

/// The HS256 secret of test applications.
pub const SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";
/// The bank-account key of test applications (32 bytes, AES-256).
pub const BANK_ACCOUNT_KEYS: &str = "test-k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
pub const ISSUER: &str = "settlement";
pub const AUDIENCE: &str = "settlement-api";

/// A running application and a way to reach it and its database.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub db: PgPool,
    pub db_url: String,
}

/// After every test, whatever it did, the ledger must balance: all postings sum to
/// zero per currency. Checked on a thread of its own, since `drop` cannot await.
impl Drop for TestApp {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let url = self.db_url.clone();
        let sums = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime
                .block_on(async {
                    use sqlx::Connection;
                    let mut conn = sqlx::PgConnection::connect(&url).await?;
                    settlement_store::ledger::posting_sums_by_currency(&mut conn).await
                })
                .map_err(std::io::Error::other)
        })
        .join()
        .expect("ledger check thread")
        .expect("ledger sums");
        for (currency, sum) in sums {
            assert_eq!(
                sum, 0,
                "after the test, postings in {currency} sum to {sum}"
            );
        }
    }
}

/// Starts the application on port 0 with a fresh database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts the application with extra configuration variables.
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let (app, db, db_url) = build_app_with_url(extra).await;
    let base = format!("http://{}", app.local_addr().expect("bound address"));
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestApp {
        base,
        client: reqwest::Client::new(),
        db,
        db_url,
    }
}

/// Builds (but does not run) the application; returns it with a pool of its own to
/// the same database for assertions.
pub async fn build_app(extra: &[(&str, &str)]) -> (Application, PgPool) {
    let (app, db, _) = build_app_with_url(extra).await;
    (app, db)
}

async fn build_app_with_url(extra: &[(&str, &str)]) -> (Application, PgPool, String) {
    let db_url = settlement_store::fresh_test_database()
        .await
        .expect("test database");
    build_app_on(&db_url, extra).await
}

/// Starts another replica of the application against the database of `app`.
pub async fn spawn_replica(app: &TestApp, extra: &[(&str, &str)]) -> TestApp {
    let (replica, db, db_url) = build_app_on(&app.db_url, extra).await;
    let base = format!("http://{}", replica.local_addr().expect("bound address"));
    tokio::spawn(replica.run_until_stopped(std::future::pending()));
    TestApp {
        base,
        client: reqwest::Client::new(),
        db,
        db_url,
    }
}

/// Builds the application against an existing database.
pub async fn build_app_on(db_url: &str, extra: &[(&str, &str)]) -> (Application, PgPool, String) {
    let db_url = db_url.to_owned();
    let vars: Vec<(String, String)> = [
        ("DATABASE_URL", db_url.as_str()),
        ("AUTH_HS256_SECRET", SECRET),
        ("BANK_ACCOUNT_KEYS", BANK_ACCOUNT_KEYS),
        ("SETTLEMENT_LISTEN_ADDR", "127.0.0.1:0"),
        ("METRICS_LISTEN_ADDR", "127.0.0.1:0"),
        // Tests run settlement when they choose; scheduler tests turn it on.
        ("SETTLEMENT_RUN_INTERVAL_SECONDS", "0"),
        // Tests send many requests as one caller; the rate-limit tests set their own.
        ("RATE_LIMIT_TERMINAL_PER_MINUTE", "0"),
        ("RATE_LIMIT_MERCHANT_PER_MINUTE", "0"),
    ]
    .iter()
    .chain(extra.iter())
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let config = Config::from_lookup(|name| {
        vars.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    })
    .expect("test configuration");
    let app = Application::build(config).await.expect("application");
    let db = assertion_pool(&db_url);
    (app, db, db_url)
}

/// A small pool of the test's own to a database, for assertions.
pub fn assertion_pool(db_url: &str) -> PgPool {
    settlement_store::connect_pool(
        db_url,
        PoolLimits {
            max_connections: 4,
            acquire_timeout: Duration::from_secs(10),
        },
    )
    .expect("assertion pool")
}

/// Signs a token for a principal, valid for an hour.
pub fn token(principal: &Principal) -> String {
    sign_hs256(
        &Claims::for_principal(principal, ISSUER, AUDIENCE, 3600),
        SECRET.as_bytes(),
    )
    .expect("token")
}

pub fn ops_token() -> String {
    token(&Principal::Ops {
        subject: "ops:alice".into(),
    })
}

pub fn merchant_token(merchant_id: &str) -> String {
    token(&Principal::Merchant {
        merchant_id: merchant_id.into(),
    })
}

pub fn terminal_token(terminal_id: &str, merchant_id: &str) -> String {
    token(&Principal::Terminal {
        terminal_id: terminal_id.into(),
        merchant_id: merchant_id.into(),
    })
}

/// RFC 3339 in UTC, second precision.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A merchant profile with a daily cutoff at the given local time in UTC.
pub struct MerchantSpec<'a> {
    pub merchant_id: &'a str,
    pub cutoff_local_time: String,
    pub grace_period_hours: u32,
    pub time_zone: &'a str,
    pub mdr_basis_points: u32,
    pub fixed_fee: &'a str,
}

/// A daily cutoff twelve hours from now in `zone`: closes of lines captured in the
/// last hours are on time whenever the tests run (a fixed cutoff made them late in
/// the minutes after it).
pub fn cutoff_far_from_now(zone: &str) -> String {
    let tz: chrono_tz::Tz = zone.parse().expect("zone");
    (Utc::now() + chrono::Duration::hours(12))
        .with_timezone(&tz)
        .format("%H:%M")
        .to_string()
}

impl<'a> MerchantSpec<'a> {
    pub fn new(merchant_id: &'a str) -> Self {
        MerchantSpec {
            merchant_id,
            cutoff_local_time: cutoff_far_from_now("America/New_York"),
            grace_period_hours: 72,
            time_zone: "America/New_York",
            mdr_basis_points: 150,
            fixed_fee: "0.10",
        }
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Creates a merchant through the ops API.
    pub async fn create_merchant(&self, spec: &MerchantSpec<'_>) {
        let body = json!({
            "merchant_id": spec.merchant_id,
            "name": format!("Merchant {}", spec.merchant_id),
            "currency": "USD",
            "time_zone": spec.time_zone,
            "cutoff_local_time": spec.cutoff_local_time,
            "grace_period_hours": spec.grace_period_hours,
            "payout_delay_business_days": 1,
            "pricing": {"mdr_basis_points": spec.mdr_basis_points, "fixed_fee": spec.fixed_fee},
            "bank_account": "DE89370400440532013000"
        });
        let r = self.post("/v1/ops/merchants", &ops_token(), &body).await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap_or_default()
        );
    }

    /// Creates a terminal through the ops API.
    pub async fn create_terminal(&self, merchant_id: &str, terminal_id: &str) {
        let r = self
            .post(
                &format!("/v1/ops/merchants/{merchant_id}/terminals"),
                &ops_token(),
                &json!({"terminal_id": terminal_id}),
            )
            .await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap_or_default()
        );
    }

    /// A merchant with one terminal in New York, its cutoff twelve hours away, 72 h grace.
    pub async fn merchant_with_terminal(&self, merchant_id: &str, terminal_id: &str) {
        self.create_merchant(&MerchantSpec::new(merchant_id)).await;
        self.create_terminal(merchant_id, terminal_id).await;
    }

    /// Closes a batch as the terminal.
    pub async fn close(
        &self,
        terminal_id: &str,
        merchant_id: &str,
        key: &str,
        body: &Value,
    ) -> Response {
        self.close_text(terminal_id, merchant_id, key, body.to_string())
            .await
    }

    /// Closes a batch as the terminal, with the body's text exactly as given.
    pub async fn close_text(
        &self,
        terminal_id: &str,
        merchant_id: &str,
        key: &str,
        body: String,
    ) -> Response {
        self.client
            .post(self.url(&format!("/v1/terminals/{terminal_id}/batches")))
            .bearer_auth(terminal_token(terminal_id, merchant_id))
            .header("Idempotency-Key", key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request")
    }

    /// Number of rows in a table.
    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&self.db)
            .await
            .expect("count")
    }

    /// Asserts the ledger invariant: all postings sum to zero per currency, and every
    /// entry balances on its own.
    pub async fn assert_ledger_balanced(&self) {
        let mut conn = self.db.acquire().await.expect("connection");
        let sums = settlement_store::ledger::posting_sums_by_currency(&mut conn)
            .await
            .expect("sums");
        for (currency, sum) in sums {
            assert_eq!(sum, 0, "postings in {currency} sum to {sum}");
        }
        let unbalanced: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT entry_id FROM postings GROUP BY entry_id, currency HAVING sum(amount_minor) <> 0) u",
        )
        .fetch_one(&mut *conn)
        .await
        .expect("unbalanced entries");
        assert_eq!(unbalanced, 0);
    }
}

/// A balanced batch: a 23.00 sale, a 5.00 refund, a 7.00 sale and its void; net
/// 18.00. Lines are captured from `captured_at` on, a minute apart. Each batch number
/// has RRNs of its own (`rrn_of`), so closes of different numbers present different
/// transactions.
pub fn batch_body(batch_number: u32, captured_at: DateTime<Utc>) -> Value {
    let at = |minutes: i64| rfc3339(captured_at + chrono::Duration::minutes(minutes));
    let rrn = |stan: u32| rrn_of(batch_number, stan);
    json!({
        "batch_number": batch_number,
        "currency": "USD",
        "totals": {
            "sale_count": 2, "sale_amount": "30.00",
            "refund_count": 1, "refund_amount": "5.00",
            "void_count": 1, "void_amount": "7.00"
        },
        "transactions": [
            {"stan": "000001", "rrn": rrn(1), "type": "sale", "amount": "23.00",
             "captured_at": at(0), "card_brand": "visa", "masked_pan": "411111******1111", "auth_code": "A1B2C3"},
            {"stan": "000002", "rrn": rrn(2), "type": "refund", "amount": "5.00",
             "captured_at": at(1), "card_brand": "mastercard", "masked_pan": "550000******0004"},
            {"stan": "000003", "rrn": rrn(3), "type": "sale", "amount": "7.00",
             "captured_at": at(2), "card_brand": "visa", "masked_pan": "411111******1111"},
            {"stan": "000004", "rrn": rrn(4), "type": "void", "amount": "7.00",
             "original_stan": "000003", "captured_at": at(2), "card_brand": "visa"}
        ]
    })
}

/// The RRN of line `stan` of batch `batch_number` in `batch_body`.
pub fn rrn_of(batch_number: u32, stan: u32) -> String {
    format!("{batch_number:06}{stan:06}")
}

/// Reads a JSON body, asserting the content type.
pub async fn json_of(r: Response) -> Value {
    r.json().await.expect("JSON body")
}

/// Asserts a problem+json answer with the given status and code; returns the body.
pub async fn assert_problem(r: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(r.status(), status);
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = r.json().await.expect("problem body");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status.as_u16());
    assert!(body["type"].as_str().is_some_and(|t| t.ends_with(code)));
    assert!(body["title"].is_string() && body["detail"].is_string());
    body
}

/// Runs futures concurrently on this task and collects their outputs in order.
pub async fn join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut outputs: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if outputs[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => outputs[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("every future completed"))
        .collect()
}

/// The (method, path) pairs under `paths:`, read from the document's two-space
/// indentation: paths at depth one, operations at depth two.
pub fn documented_operations(yaml: &str) -> BTreeSet<(String, String)> {
    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    let mut in_paths = false;
    let mut current: Option<String> = None;
    let mut found = BTreeSet::new();
    for line in yaml.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let text = line.trim();
        if indent == 0 {
            in_paths = text == "paths:";
            current = None;
            continue;
        }
        if !in_paths {
            continue;
        }
        if indent == 2 {
            current = text
                .strip_suffix(':')
                .map(|p| p.trim_matches(|c| c == '"' || c == '\'').to_owned());
        } else if indent == 4 {
            if let (Some(path), Some(method)) = (&current, text.strip_suffix(':')) {
                if METHODS.contains(&method) {
                    found.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
    }
    found
}

/// A token of the acquirer's authorization host.
pub fn host_token() -> String {
    token(&Principal::Host {
        subject: "switch-1".into(),
    })
}
