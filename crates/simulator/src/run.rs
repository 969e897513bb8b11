//! Talking to the service: provisioning the fleet, driving its closes, and checking
//! the outcome through the public API.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{bail, Context};
use chrono::Utc;
use futures_util::stream::{self, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use settlement_domain::money::{format_amount, parse_amount, Currency};
use settlement_wire::auth::{sign_hs256, Claims, Principal};

use crate::fleet::{
    captured_at, presented_lines, Behaviour, Fleet, Merchant, PlannedClose, Terminal,
    AUTO_CLOSE_DELAY_MINUTES, GRACE_HOURS,
};
use crate::host::{self, FeedReport, FeedRow, Found, Tally, BOOKED, MAX_RECORDS_PER_REQUEST};

/// How long one request is retried while it is answered 429 or 503, or cut (a
/// restarting database or replica is waited out, as a terminal would).
const RETRY_FOR: Duration = Duration::from_secs(60);
/// Lifetime of the tokens the simulator signs.
const TOKEN_TTL_SECONDS: u64 = 3600;

/// Signs the tokens of the fleet's principals.
pub struct Tokens {
    secret: String,
    issuer: String,
    audience: String,
}

impl Tokens {
    pub fn new(secret: String, issuer: String, audience: String) -> Self {
        Tokens {
            secret,
            issuer,
            audience,
        }
    }

    fn sign(&self, principal: &Principal) -> String {
        sign_hs256(
            &Claims::for_principal(principal, &self.issuer, &self.audience, TOKEN_TTL_SECONDS),
            self.secret.as_bytes(),
        )
        .expect("HS256 signing does not fail")
    }

    fn ops(&self) -> String {
        self.sign(&Principal::Ops {
            subject: "ops:settlement-sim".into(),
        })
    }

    fn merchant(&self, merchant_id: &str) -> String {
        self.sign(&Principal::Merchant {
            merchant_id: merchant_id.into(),
        })
    }

    fn host(&self) -> String {
        self.sign(&Principal::Host {
            subject: "host:settlement-sim".into(),
        })
    }

    fn terminal(&self, terminal_id: &str, merchant_id: &str) -> String {
        self.sign(&Principal::Terminal {
            terminal_id: terminal_id.into(),
            merchant_id: merchant_id.into(),
        })
    }
}

/// An answer: status, whether it replayed a stored one, and the JSON body.
struct Answer {
    status: StatusCode,
    replayed: bool,
    body: Value,
}

pub struct Client {
    http: reqwest::Client,
    /// The replicas' base URLs; each attempt of a request goes to the next one.
    bases: Vec<String>,
    next_base: std::sync::atomic::AtomicUsize,
    tokens: Tokens,
}

/// What happened at one planned close.
#[derive(Debug, Default)]
pub struct Outcome {
    pub requests: u32,
    /// The batch stored under the close's number.
    pub batch_id: Option<String>,
    /// The exception a close refused for duplicate transactions left.
    pub attempt_id: Option<String>,
    /// Lines a refused close repeated.
    pub repeated_lines: usize,
    pub problems: Vec<String>,
}

/// Sales as a count and an amount in minor units.
pub type Sales = (i64, i64);

/// The sales of one currency: as the fleet must have them and as the service has
/// them, booked (to be paid) and held for operations (not paid).
#[derive(Debug, Default)]
pub struct SalesAccount {
    pub booked_expected: Sales,
    pub booked_found: Sales,
    pub held_expected: Sales,
    pub held_found: Sales,
}

/// What the settlement run the simulator triggers after the closes answered.
#[derive(Debug, Default)]
pub struct SettlementRun {
    /// Ids of the batches it auto-closed.
    pub auto_closed: BTreeSet<String>,
    pub closed_cycles: usize,
    pub problems: Vec<String>,
}

/// The end-of-run checks.
#[derive(Debug, Default)]
pub struct Verdict {
    pub mismatches: Vec<String>,
    /// Whether the merchants had auto-close on.
    pub auto_close: bool,
    /// What the host feed sent and the service answered.
    pub feed: FeedReport,
    /// The host feed's authorizations by kind, and how many ended as they must.
    pub feed_rows: BTreeMap<FeedRow, Tally>,
    /// Closes (terminal, close) whose transactions did not end as they must.
    pub failed_closes: BTreeSet<(usize, usize)>,
    /// Host batches of the fleet's terminals: batches, lines, sales; and how many of
    /// the batches the simulator's settlement run made (the others, the service's
    /// scheduler made before it).
    pub host_batches: (u64, u64, i64),
    pub host_batches_by_run: u64,
    pub run_closed_cycles: usize,
    /// Late closes whose lines an auto-close had settled before they arrived.
    pub late_closed_by_host_first: u64,
    /// Unsettled transactions left, and on how many terminals.
    pub unsettled_left: u64,
    pub unsettled_terminals: u64,
    /// Exceptions for lines the host did not authorize (the feed authorized all).
    pub unmatched_exceptions: u64,
    /// Batches found, by status.
    pub by_status: BTreeMap<String, (u64, i64)>,
    /// Sales accounted, by currency.
    pub sales: BTreeMap<String, SalesAccount>,
    pub skipped_reported: usize,
    /// Duplicate-transaction exceptions of the fleet's merchants, by state.
    pub duplicate_exceptions: BTreeMap<String, u64>,
    pub ledger_checks: usize,
    pub ledger_ok: bool,
}

impl Verdict {
    /// True when the service did everything the fleet demanded.
    pub fn ok(&self) -> bool {
        self.mismatches.is_empty() && self.ledger_ok
    }
}

/// Skipped numbers the status lists per terminal (the lowest first); a terminal that
/// skips more is expected to show these.
const STATUS_SKIPPED_LISTED: usize = 100;

/// The ledger check the fleet's repeated lines put to the test.
const PAID_ONCE_CHECK: &str = "transactions_paid_once";

/// The batch a refused close's repeated lines must be listed with.
#[derive(Debug, Clone, Copy)]
pub struct Holder<'a> {
    pub batch_id: Option<&'a str>,
    pub batch_number: u32,
    pub status: &'a str,
}

/// What is wrong with an answer that must refuse a close for exactly the `expected`
/// repeated lines `(stan, rrn)`, each listed with `holder`.
pub fn duplicate_problems(
    answer: &Value,
    expected: &[(String, String)],
    holder: Holder<'_>,
) -> Vec<String> {
    let mut problems = Vec::new();
    if answer["code"] != "duplicate_transactions" {
        problems.push(format!(
            "code {}, expected duplicate_transactions",
            answer["code"]
        ));
    }
    if answer["attempt_id"].as_str().is_none() {
        problems.push("no attempt_id".into());
    }
    let listed: Vec<&Value> = answer["duplicates"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let field = |v: &Value, f: &str| v[f].as_str().unwrap_or_default().to_owned();
    let found: BTreeSet<(String, String)> = listed
        .iter()
        .map(|d| (field(d, "stan"), field(d, "rrn")))
        .collect();
    let wanted: BTreeSet<(String, String)> = expected.iter().cloned().collect();
    if found != wanted || listed.len() != expected.len() {
        problems.push(format!(
            "{} duplicates listed, expected {}: missing {:?}, not repeated {:?}",
            listed.len(),
            expected.len(),
            wanted.difference(&found).collect::<Vec<_>>(),
            found.difference(&wanted).collect::<Vec<_>>()
        ));
    }
    for d in listed {
        let b = &d["batch"];
        let right = holder.batch_id.is_some_and(|id| b["id"] == id)
            && b["batch_number"] == holder.batch_number
            && b["status"] == holder.status;
        if !right {
            problems.push(format!(
                "rrn {} listed with batch {b}, expected #{} {} {}",
                d["rrn"],
                holder.batch_number,
                holder.batch_id.unwrap_or("(unknown)"),
                holder.status
            ));
        }
    }
    problems
}

impl Client {
    pub fn new(bases: &[String], tokens: Tokens) -> anyhow::Result<Self> {
        anyhow::ensure!(!bases.is_empty(), "no base URL");
        Ok(Client {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()?,
            bases: bases
                .iter()
                .map(|b| b.trim_end_matches('/').to_owned())
                .collect(),
            next_base: std::sync::atomic::AtomicUsize::new(0),
            tokens,
        })
    }

    /// The base URL of the next attempt: the replicas in turn.
    fn base(&self) -> &str {
        let n = self
            .next_base
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        &self.bases[n % self.bases.len()]
    }

    /// Sends a request, waiting out 429 and 503 (`Retry-After`) and retrying a cut
    /// connection with the same request (and so the same idempotency key), for up to
    /// `RETRY_FOR`; each attempt goes to the next replica.
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<(Answer, u32)> {
        let mut attempt = 0;
        let started = std::time::Instant::now();
        loop {
            attempt += 1;
            let retry = started.elapsed() < RETRY_FOR;
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.base()))
                .bearer_auth(token);
            if let Some(key) = key {
                request = request.header("Idempotency-Key", key);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            match request.send().await {
                Ok(r) => {
                    let status = r.status();
                    let wait = r
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    let replayed = r.headers().contains_key("idempotent-replayed");
                    let transient = status == StatusCode::TOO_MANY_REQUESTS
                        || status == StatusCode::SERVICE_UNAVAILABLE;
                    if transient && retry {
                        tokio::time::sleep(Duration::from_secs(wait.unwrap_or(1).min(30))).await;
                        continue;
                    }
                    let text = r.text().await?;
                    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
                    return Ok((
                        Answer {
                            status,
                            replayed,
                            body,
                        },
                        attempt,
                    ));
                }
                Err(e) if retry => {
                    eprintln!("settlement-sim: {method} {path}: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e).with_context(|| format!("{method} {path}")),
            }
        }
    }

    /// Creates the fleet's merchants and terminals through the operations API. Ids are
    /// the run's own, so "exists" after a retried request (its first answer lost with
    /// a cut connection) means the first attempt created it. The
    /// merchants' closes are matched against the host (`report`), and with
    /// `auto_close` the host closes what their terminals forget, at the cutoff.
    pub async fn provision(&self, fleet: &Fleet, auto_close: bool) -> anyhow::Result<()> {
        let ops = self.tokens.ops();
        for m in &fleet.merchants {
            let body = json!({
                "merchant_id": m.id, "name": format!("Simulated shop {}", m.id),
                "currency": m.currency.code(), "time_zone": m.zone,
                "cutoff_local_time": m.cutoff,
                "grace_period_hours": GRACE_HOURS, "payout_delay_business_days": 1,
                "pricing": {"mdr_basis_points": 150, "fixed_fee": format_amount(10, m.currency)},
                "bank_account": "DE89370400440532013000",
                "host_matching": "report", "auto_close": auto_close,
                "auto_close_delay_minutes": AUTO_CLOSE_DELAY_MINUTES
            });
            let (a, attempts) = self
                .send(Method::POST, "/v1/ops/merchants", &ops, None, Some(&body))
                .await?;
            if !created(&a, attempts, "merchant_exists") {
                bail!("creating merchant {}: {} {}", m.id, a.status, a.body);
            }
        }
        for t in &fleet.terminals {
            let merchant = &fleet.merchants[t.merchant].id;
            let (a, attempts) = self
                .send(
                    Method::POST,
                    &format!("/v1/ops/merchants/{merchant}/terminals"),
                    &ops,
                    None,
                    Some(&json!({"terminal_id": t.id})),
                )
                .await?;
            if !created(&a, attempts, "terminal_exists") {
                bail!("creating terminal {}: {} {}", t.id, a.status, a.body);
            }
        }
        Ok(())
    }

    /// The host feed: `records` (authorizations), up to `MAX_RECORDS_PER_REQUEST` a
    /// request, in order. A request the service refuses is a problem of the run, not
    /// its end: the closes then show what the service makes of lines it does not know.
    pub async fn send_feed(&self, records: &[Value]) -> FeedReport {
        let token = self.tokens.host();
        let mut report = FeedReport::default();
        for (k, chunk) in records.chunks(MAX_RECORDS_PER_REQUEST).enumerate() {
            let body = json!({ "records": chunk });
            let path = "/v1/host/authorizations";
            match self
                .send(Method::POST, path, &token, None, Some(&body))
                .await
            {
                Ok((a, n)) if a.status == StatusCode::OK => {
                    report.requests += n;
                    report.add_answer(k * MAX_RECORDS_PER_REQUEST, chunk, &a.body);
                }
                Ok((a, n)) => {
                    report.requests += n;
                    report.sent += chunk.len();
                    report.problems.push(format!(
                        "host feed: {} records refused: {} {}",
                        chunk.len(),
                        a.status,
                        truncated(&a.body.to_string(), 300)
                    ));
                }
                Err(e) => report.problems.push(format!(
                    "host feed: {} records not sent: {e:#}",
                    chunk.len()
                )),
            }
        }
        report
    }

    /// Runs settlement now, as operations: the host first closes what terminals
    /// forgot of days that are due (auto-close), then the due cycles close.
    pub async fn run_settlement(&self) -> anyhow::Result<SettlementRun> {
        let (a, _) = self
            .send(
                Method::POST,
                "/v1/ops/settlement-runs",
                &self.tokens.ops(),
                None,
                Some(&json!({})),
            )
            .await?;
        let mut run = SettlementRun::default();
        if a.status != StatusCode::OK {
            run.problems
                .push(format!("settlement run: {} {}", a.status, a.body));
            return Ok(run);
        }
        run.auto_closed = a.body["auto_closed_batches"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| b["id"].as_str().map(str::to_owned))
            .collect();
        run.closed_cycles = a.body["closed_cycles"].as_array().map_or(0, Vec::len);
        for failed in a.body["failed_cycles"].as_array().into_iter().flatten() {
            run.problems
                .push(format!("settlement run: a cycle failed to close: {failed}"));
        }
        Ok(run)
    }

    /// Every terminal makes its closes in order; `concurrency` terminals at a time.
    /// Returns the outcomes per terminal and close.
    pub async fn drive(&self, fleet: &Fleet, concurrency: usize) -> Vec<Vec<Outcome>> {
        stream::iter(fleet.terminals.iter().map(|t| async move {
            let merchant = &fleet.merchants[t.merchant].id;
            let token = self.tokens.terminal(&t.id, merchant);
            let mut outcomes: Vec<Outcome> = Vec::new();
            for (n, close) in t.closes.iter().enumerate() {
                if !close.behaviour.closes() {
                    // The terminal forgot: its batch is never sent.
                    outcomes.push(Outcome::default());
                    continue;
                }
                let key = |suffix: &str| format!("{}-{}-{n}{suffix}", t.id, close.number);
                // The earlier booked batch whose lines a `duplicate_lines` close repeats.
                let source = close.repeats.as_ref().map(|r| Holder {
                    batch_id: outcomes.get(r.from).and_then(|o| o.batch_id.as_deref()),
                    batch_number: t.closes[r.from].number,
                    status: t.closes[r.from].behaviour.expected_status(),
                });
                let outcome = self
                    .close(&t.id, &token, close, source, &key)
                    .await
                    .unwrap_or_else(|e| Outcome {
                        problems: vec![format!("{e:#}")],
                        ..Outcome::default()
                    });
                outcomes.push(outcome);
            }
            outcomes
        }))
        .buffered(concurrency.max(1))
        .collect()
        .await
    }

    /// One close, as the behaviour has it. `source` is the batch a `duplicate_lines`
    /// close repeats lines of.
    async fn close(
        &self,
        terminal: &str,
        token: &str,
        close: &PlannedClose,
        source: Option<Holder<'_>>,
        key: &dyn Fn(&str) -> String,
    ) -> anyhow::Result<Outcome> {
        let (behaviour, body) = (close.behaviour, &close.body);
        let path = format!("/v1/terminals/{terminal}/batches");
        let mut out = Outcome::default();
        let post = |k: String, b: Value| {
            let path = path.clone();
            async move {
                self.send(Method::POST, &path, token, Some(&k), Some(&b))
                    .await
            }
        };
        let expect = |out: &mut Outcome, a: &Answer, status: StatusCode, what: &str| {
            if a.status != status {
                out.problems.push(format!(
                    "{terminal} {what}: expected {status}, got {} {}",
                    a.status, a.body
                ));
            }
        };
        match behaviour {
            Behaviour::OutOfBalance => {
                let mut wrong = body.clone();
                let sales = wrong["totals"]["sale_count"].as_i64().unwrap_or(0);
                wrong["totals"]["sale_count"] = json!(sales + 1);
                let (a, n) = post(key("-unbalanced"), wrong).await?;
                out.requests += n;
                expect(
                    &mut out,
                    &a,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "out-of-balance close",
                );
                if a.body["code"] != "out_of_balance" {
                    out.problems.push(format!(
                        "{terminal}: out-of-balance close answered {}",
                        a.body
                    ));
                }
            }
            Behaviour::LostResponse => {
                // The first answer is lost on the way back: the request is sent and
                // the answer never read.
                let (_, n) = post(key(""), body.clone()).await?;
                out.requests += n;
            }
            Behaviour::DuplicateLines => {
                let (repeats, source) = close
                    .repeats
                    .as_ref()
                    .zip(source)
                    .context("a duplicate_lines close without the lines it repeats")?;
                let (a, n) = post(key("-repeats"), repeats.body.clone()).await?;
                out.requests += n;
                expect(
                    &mut out,
                    &a,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "close repeating booked lines",
                );
                for p in duplicate_problems(&a.body, &repeats.lines, source) {
                    out.problems.push(format!(
                        "{terminal} #{}: close repeating booked lines: {p}",
                        close.number
                    ));
                }
                out.attempt_id = a.body["attempt_id"].as_str().map(str::to_owned);
                out.repeated_lines = repeats.lines.len();
                // Then the terminal closes the batch again without them (the
                // close below, under its own key).
            }
            _ => {}
        }
        let (a, n) = post(key(""), body.clone()).await?;
        out.requests += n;
        match behaviour {
            Behaviour::PastGrace | Behaviour::Reenter => {
                expect(
                    &mut out,
                    &a,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "close past grace",
                );
                if a.body["code"] != "batch_outside_grace_window" {
                    out.problems
                        .push(format!("{terminal}: close past grace answered {}", a.body));
                }
                out.batch_id = a.body["batch_id"].as_str().map(str::to_owned);
            }
            _ => {
                expect(&mut out, &a, StatusCode::CREATED, "close");
                if behaviour == Behaviour::LostResponse && !a.replayed {
                    out.problems.push(format!(
                        "{terminal}: the retry of a lost answer was not a replay"
                    ));
                }
                let status = a.body["status"].as_str().unwrap_or_default();
                if status != behaviour.expected_status() {
                    out.problems.push(format!(
                        "{terminal}: {behaviour} close is {status}, expected {}",
                        behaviour.expected_status()
                    ));
                }
                out.batch_id = a.body["id"].as_str().map(str::to_owned);
            }
        }
        if let Some(number) = close.reentered_as {
            // The merchant enters the held batch's lines again as a new batch.
            let mut again = body.clone();
            again["batch_number"] = json!(number);
            let (a, n) = post(key("-reentered"), again).await?;
            out.requests += n;
            expect(
                &mut out,
                &a,
                StatusCode::UNPROCESSABLE_ENTITY,
                "re-entry of a held batch",
            );
            let expected = presented_lines(body);
            let held = Holder {
                batch_id: out.batch_id.as_deref(),
                batch_number: close.number,
                status: "rejected_outside_grace",
            };
            for p in duplicate_problems(&a.body, &expected, held) {
                out.problems.push(format!(
                    "{terminal} #{number}: re-entry of held batch #{}: {p}",
                    close.number
                ));
            }
            out.attempt_id = a.body["attempt_id"].as_str().map(str::to_owned);
            out.repeated_lines = expected.len();
        }
        if behaviour == Behaviour::Duplicate {
            let (again, n) = post(key("-again"), body.clone()).await?;
            out.requests += n;
            expect(&mut out, &again, StatusCode::OK, "duplicate close");
            if again.body["id"].as_str() != out.batch_id.as_deref() {
                out.problems.push(format!(
                    "{terminal}: the duplicate named batch {}, not {:?}",
                    again.body["id"], out.batch_id
                ));
            }
        }
        Ok(out)
    }

    /// Every page of a list (`data`, `next_cursor`) at `path`, which has a query.
    async fn list_all(&self, path: &str, token: &str) -> anyhow::Result<Vec<Value>> {
        let mut rows = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = match &cursor {
                Some(c) => format!("{path}&limit=100&cursor={c}"),
                None => format!("{path}&limit=100"),
            };
            let (a, _) = self.send(Method::GET, &page, token, None, None).await?;
            if a.status != StatusCode::OK {
                bail!("GET {page}: {} {}", a.status, a.body);
            }
            rows.extend(a.body["data"].as_array().into_iter().flatten().cloned());
            cursor = a.body["next_cursor"].as_str().map(str::to_owned);
            if cursor.is_none() {
                return Ok(rows);
            }
        }
    }

    /// Every line of a batch, page by page.
    async fn batch_lines(
        &self,
        merchant: &str,
        id: &str,
        token: &str,
    ) -> anyhow::Result<Vec<Value>> {
        let mut lines = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/merchants/{merchant}/batches/{id}?limit=100&cursor={c}"),
                None => format!("/v1/merchants/{merchant}/batches/{id}?limit=100"),
            };
            let (a, _) = self.send(Method::GET, &path, token, None, None).await?;
            if a.status != StatusCode::OK {
                bail!("GET {path}: {} {}", a.status, a.body);
            }
            let page = &a.body["lines"];
            lines.extend(page["data"].as_array().into_iter().flatten().cloned());
            cursor = page["next_cursor"].as_str().map(str::to_owned);
            if cursor.is_none() {
                return Ok(lines);
            }
        }
    }

    /// Reads every merchant's batches (the host's with their lines), its terminals'
    /// unsettled transactions, its status and exceptions, and the ledger check, and
    /// compares them with what the fleet and its host did. `feed` and `run` are what
    /// the host feed and the settlement run were answered; `auto_close` whether the
    /// merchants had it on.
    pub async fn verify(
        &self,
        fleet: &Fleet,
        outcomes: &[Vec<Outcome>],
        feed: FeedReport,
        run: SettlementRun,
        auto_close: bool,
    ) -> anyhow::Result<Verdict> {
        let mut verdict = Verdict {
            auto_close,
            run_closed_cycles: run.closed_cycles,
            ..Verdict::default()
        };
        verdict.mismatches.extend(feed.problems.iter().cloned());
        verdict.mismatches.extend(run.problems.iter().cloned());
        verdict.feed = feed;
        for o in outcomes.iter().flatten() {
            verdict.mismatches.extend(o.problems.iter().cloned());
        }
        let now = Utc::now();
        let ops = self.tokens.ops();
        for (mi, m) in fleet.merchants.iter().enumerate() {
            let token = self.tokens.merchant(&m.id);
            let mut found: BTreeMap<(String, u32), Value> = BTreeMap::new();
            let mut host_batches: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            let mut unsettled_counts: BTreeMap<String, usize> = BTreeMap::new();
            let batches = self
                .list_all(&format!("/v1/merchants/{}/batches?", m.id), &token)
                .await?;
            for b in batches {
                let terminal = b["terminal_id"].as_str().unwrap_or_default().to_owned();
                if b["origin"] == "host" {
                    host_batches.entry(terminal).or_default().push(b);
                    continue;
                }
                let number = b["batch_number"].as_u64().unwrap_or_default();
                let key = (terminal, u32::try_from(number).unwrap_or_default());
                if found.insert(key.clone(), b).is_some() {
                    verdict
                        .mismatches
                        .push(format!("{} #{} is listed twice", key.0, key.1));
                }
            }
            let terminals: Vec<_> = fleet
                .terminals
                .iter()
                .zip(outcomes)
                .enumerate()
                .filter(|(_, (t, _))| t.merchant == mi)
                .collect();
            for (ti, (t, closes)) in &terminals {
                let mut stored: Vec<Option<Value>> = Vec::with_capacity(t.closes.len());
                for (close, outcome) in t.closes.iter().zip(closes.iter()) {
                    let b = self.check_close(
                        m,
                        t,
                        close,
                        outcome,
                        auto_close,
                        now,
                        &mut found,
                        &mut verdict,
                    );
                    stored.push(b);
                }
                // The sales the host closes for the terminal, booked in the end.
                let currency = m.currency.code().to_owned();
                for e in t.extras.iter().filter(|_| auto_close) {
                    if m.auto_close_due(m.business_date_of(captured_at(&e.line)), now) {
                        let account = verdict.sales.entry(currency.clone()).or_default();
                        account.booked_expected.0 += 1;
                        account.booked_expected.1 += e.amount_minor;
                    }
                }
                let mut host = Vec::new();
                for b in host_batches.remove(&t.id).unwrap_or_default() {
                    let id = b["id"].as_str().unwrap_or_default().to_owned();
                    let lines = self.batch_lines(&m.id, &id, &token).await?;
                    let sales = b["totals"]["sale_count"].as_i64().unwrap_or_default();
                    verdict.host_batches.0 += 1;
                    verdict.host_batches.1 += lines.len() as u64;
                    verdict.host_batches.2 += sales;
                    verdict.host_batches_by_run += u64::from(run.auto_closed.contains(&id));
                    let entry = verdict
                        .by_status
                        .entry("auto_closed".to_owned())
                        .or_default();
                    entry.0 += 1;
                    entry.1 += sales;
                    let account = verdict.sales.entry(currency.clone()).or_default();
                    account.booked_found.0 += sales;
                    account.booked_found.1 += parse_amount(
                        b["totals"]["sale_amount"].as_str().unwrap_or_default(),
                        m.currency,
                    )
                    .unwrap_or_default();
                    host.push((b, lines));
                }
                let unsettled: BTreeSet<String> = self
                    .list_all(
                        &format!("/v1/merchants/{}/terminals/{}/unsettled?", m.id, t.id),
                        &token,
                    )
                    .await?
                    .iter()
                    .filter_map(|u| u["rrn"].as_str().map(str::to_owned))
                    .collect();
                unsettled_counts.insert(t.id.clone(), unsettled.len());
                let found_here = Found {
                    batches: stored.iter().map(Option::as_ref).collect(),
                    host: host.iter().map(|(b, l)| (b, l.clone())).collect(),
                    unsettled,
                };
                let account = host::account(m, t, &found_here, auto_close, now);
                verdict.mismatches.extend(account.mismatches);
                verdict
                    .failed_closes
                    .extend(account.failed_closes.into_iter().map(|c| (*ti, c)));
                for (row, tally) in account.rows {
                    let sum = verdict.feed_rows.entry(row).or_default();
                    sum.records += tally.records;
                    sum.sales += tally.sales;
                    sum.ended_right += tally.ended_right;
                }
                verdict.late_closed_by_host_first += account.late_closed_by_host_first;
                verdict.unsettled_left += account.unsettled;
                verdict.unsettled_terminals += u64::from(account.unsettled > 0);
            }
            // Whatever is left was never stored by the fleet; a refused close (a
            // re-entry's number) must not be here.
            for ((t, n), _) in found {
                verdict
                    .mismatches
                    .push(format!("{t} #{n} exists but the fleet never closed it"));
            }
            for (t, batches) in host_batches {
                verdict.mismatches.push(format!(
                    "{t}: {} host batches of a terminal the fleet does not have",
                    batches.len()
                ));
            }
            let terminals: Vec<_> = terminals.into_iter().map(|(_, tc)| tc).collect();
            self.verify_status(m, &token, &terminals, &unsettled_counts, &mut verdict)
                .await?;
            self.verify_exceptions(m, &ops, &terminals, &mut verdict)
                .await?;
        }
        for (currency, a) in &verdict.sales {
            for (what, found, expected) in [
                ("booked", a.booked_found, a.booked_expected),
                ("held", a.held_found, a.held_expected),
            ] {
                if found != expected {
                    verdict.mismatches.push(format!(
                        "{what} sales in {currency}: the service has {} for {}, the fleet {} for {}",
                        found.0,
                        money(found.1, currency),
                        expected.0,
                        money(expected.1, currency)
                    ));
                }
            }
        }
        let (a, _) = self
            .send(Method::GET, "/v1/ops/ledger/check", &ops, None, None)
            .await?;
        verdict.ledger_ok = a.status == StatusCode::OK && a.body["ok"] == true;
        let checks = a.body["checks"].as_array().cloned().unwrap_or_default();
        verdict.ledger_checks = checks.len();
        for c in checks.iter().filter(|c| c["violations"] != 0) {
            verdict.mismatches.push(format!(
                "ledger check {} failed: {} violations",
                c["name"], c["violations"]
            ));
        }
        if !checks.iter().any(|c| c["name"] == PAID_ONCE_CHECK) {
            verdict.ledger_ok = false;
            verdict
                .mismatches
                .push(format!("the ledger check has no {PAID_ONCE_CHECK}"));
        }
        Ok(verdict)
    }

    /// The batch stored under a close's number, checked against the close (status,
    /// lines, sales less those a host batch settled first, no line the host did not
    /// authorize), and counted; none for a close never sent, or missing.
    #[allow(clippy::too_many_arguments)]
    fn check_close(
        &self,
        m: &Merchant,
        t: &Terminal,
        close: &PlannedClose,
        outcome: &Outcome,
        auto_close: bool,
        now: chrono::DateTime<Utc>,
        found: &mut BTreeMap<(String, u32), Value>,
        verdict: &mut Verdict,
    ) -> Option<Value> {
        let account = verdict
            .sales
            .entry(close.currency.code().to_owned())
            .or_default();
        if !close.behaviour.closes() {
            // Booked by the host when its day is due; else left unsettled.
            let day = m.business_date_of(captured_at(&close.body["transactions"][0]));
            if auto_close && m.auto_close_due(day, now) {
                // Its voided sales were reversed at the host: the host closes the rest.
                let (voided, voided_minor) =
                    crate::host::voided_sale_totals(&close.body, close.currency);
                account.booked_expected.0 += close.sales - voided;
                account.booked_expected.1 += close.sale_minor - voided_minor;
            }
            return None;
        }
        let expected = if close.behaviour.books() {
            &mut account.booked_expected
        } else {
            &mut account.held_expected
        };
        expected.0 += close.sales;
        expected.1 += close.sale_minor;
        let Some(b) = found.remove(&(t.id.clone(), close.number)) else {
            verdict
                .mismatches
                .push(format!("{} #{} is missing", t.id, close.number));
            return None;
        };
        let status = b["status"].as_str().unwrap_or_default();
        let sale_amount = b["totals"]["sale_amount"].as_str().unwrap_or_default();
        let sale_count = b["totals"]["sale_count"].as_i64().unwrap_or(-1);
        // A late batch's lines that an auto-close settled before it arrived are not
        // in its totals (the accounting checks they are in the host's batch).
        let (settled, settled_minor) = host::settled_sales(&close.body, &b, close.currency);
        let (sales, sale_minor) = (close.sales - settled, close.sale_minor - settled_minor);
        let mut wrong = Vec::new();
        if status != close.behaviour.expected_status() {
            wrong.push(format!(
                "status {status}, expected {}",
                close.behaviour.expected_status()
            ));
        }
        if sale_count != sales || sale_amount != format_amount(sale_minor, close.currency) {
            wrong.push(format!(
                "sales {sale_count} / {sale_amount}, expected {sales} / {}{}",
                format_amount(sale_minor, close.currency),
                if settled > 0 {
                    format!(" ({settled} settled already by a host batch)")
                } else {
                    String::new()
                }
            ));
        }
        if b["line_count"].as_u64() != Some(close.lines as u64) {
            wrong.push(format!(
                "{} lines, expected {}",
                b["line_count"], close.lines
            ));
        }
        if outcome.batch_id.as_deref() != b["id"].as_str() {
            wrong.push("a different batch id than the close was told".into());
        }
        let unmatched = b["unmatched_lines"].as_array().map_or(0, Vec::len);
        if unmatched > 0 {
            wrong.push(format!(
                "{unmatched} lines unmatched by the host, which authorized all: {}",
                truncated(&b["unmatched_lines"].to_string(), 300)
            ));
        }
        if !wrong.is_empty() {
            verdict.mismatches.push(format!(
                "{} #{} ({}): {}",
                t.id,
                close.number,
                close.behaviour,
                wrong.join("; ")
            ));
        }
        let entry = verdict.by_status.entry(status.to_owned()).or_default();
        entry.0 += 1;
        entry.1 += sale_count.max(0);
        // What the service holds, from its own figures.
        let account = verdict
            .sales
            .entry(close.currency.code().to_owned())
            .or_default();
        let has = if BOOKED.contains(&status) {
            &mut account.booked_found
        } else {
            &mut account.held_found
        };
        has.0 += sale_count;
        has.1 += parse_amount(sale_amount, close.currency).unwrap_or_default();
        Some(b)
    }

    /// The merchant's status must report exactly the numbers each terminal skipped,
    /// counting a re-entry's refused number once a batch above it is stored, and as
    /// many unsettled transactions as the terminal's list (`unsettled`) holds.
    async fn verify_status(
        &self,
        m: &Merchant,
        token: &str,
        terminals: &[(&Terminal, &Vec<Outcome>)],
        unsettled: &BTreeMap<String, usize>,
        verdict: &mut Verdict,
    ) -> anyhow::Result<()> {
        let (a, _) = self
            .send(
                Method::GET,
                &format!("/v1/merchants/{}/status", m.id),
                token,
                None,
                None,
            )
            .await?;
        if a.status != StatusCode::OK {
            bail!("reading {}'s status: {} {}", m.id, a.status, a.body);
        }
        for t in a.body["terminals"].as_array().into_iter().flatten() {
            let id = t["terminal_id"].as_str().unwrap_or_default();
            let count = t["unsettled"]["count"].as_u64().unwrap_or_default();
            if let Some(listed) = unsettled.get(id) {
                if count != *listed as u64 {
                    verdict.mismatches.push(format!(
                        "{id}: status reports {count} unsettled transactions, the list {listed}"
                    ));
                }
            }
        }
        let reported: BTreeMap<&str, BTreeSet<u32>> = a.body["terminals"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                let numbers = t["skipped_batch_numbers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_u64)
                    .filter_map(|n| u32::try_from(n).ok())
                    .collect();
                (t["terminal_id"].as_str().unwrap_or_default(), numbers)
            })
            .collect();
        for (t, _) in terminals {
            let expected: BTreeSet<u32> = t
                .expected_skipped_numbers()
                .into_iter()
                .take(STATUS_SKIPPED_LISTED)
                .collect();
            match reported.get(t.id.as_str()) {
                Some(r) if *r == expected => verdict.skipped_reported += expected.len(),
                Some(r) => verdict.mismatches.push(format!(
                    "{}: status reports skipped {r:?}, expected {expected:?}",
                    t.id
                )),
                None => verdict
                    .mismatches
                    .push(format!("{}: not in {}'s status", t.id, m.id)),
            }
        }
        Ok(())
    }

    /// Every close refused for duplicate transactions is an exception of its
    /// merchant: a re-entry's stays open (no batch is stored under its number), a
    /// repeat's is resolved by the corrected close of the same number; and there are
    /// no others. The list answers open exceptions only unless asked, so it is read
    /// with `state=all`.
    async fn verify_exceptions(
        &self,
        m: &Merchant,
        ops: &str,
        terminals: &[(&Terminal, &Vec<Outcome>)],
        verdict: &mut Verdict,
    ) -> anyhow::Result<()> {
        let listed = self
            .list_all(
                &format!(
                    "/v1/ops/exceptions?state=all&kind=duplicate_transactions&merchant_id={}",
                    m.id
                ),
                ops,
            )
            .await?;
        let mut states: BTreeMap<String, String> = BTreeMap::new();
        for e in &listed {
            let state = e["state"].as_str().unwrap_or_default().to_owned();
            *verdict
                .duplicate_exceptions
                .entry(state.clone())
                .or_default() += 1;
            states.insert(e["id"].as_str().unwrap_or_default().to_owned(), state);
        }
        for (t, closes) in terminals {
            for (close, outcome) in t.closes.iter().zip(closes.iter()) {
                let must_be = match close.behaviour {
                    Behaviour::Reenter => "open",
                    Behaviour::DuplicateLines => "resolved",
                    _ => continue,
                };
                let Some(id) = &outcome.attempt_id else {
                    continue; // the refusal itself is reported as a mismatch
                };
                match states.remove(id) {
                    Some(state) if state == must_be => {}
                    Some(state) => verdict.mismatches.push(format!(
                        "{} #{} ({}): exception {id} is {state}, expected {must_be}",
                        t.id, close.number, close.behaviour
                    )),
                    None => verdict.mismatches.push(format!(
                        "{} #{} ({}): exception {id} is not listed",
                        t.id, close.number, close.behaviour
                    )),
                }
            }
        }
        for (id, state) in states {
            verdict.mismatches.push(format!(
                "{}: duplicate_transactions exception {id} ({state}) from no close of the fleet",
                m.id
            ));
        }
        // The host authorized every line the fleet closed: no batch was booked with
        // lines it did not know.
        let unmatched = self
            .list_all(
                &format!(
                    "/v1/ops/exceptions?state=all&kind=unmatched_transactions&merchant_id={}",
                    m.id
                ),
                ops,
            )
            .await?;
        verdict.unmatched_exceptions += unmatched.len() as u64;
        for e in unmatched.iter().take(5) {
            verdict.mismatches.push(format!(
                "{}: unmatched_transactions exception {}",
                m.id,
                truncated(&e.to_string(), 300)
            ));
        }
        Ok(())
    }
}

/// At most `max` characters of `text`, with an ellipsis when cut.
fn truncated(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_owned(),
    }
}

/// An amount in minor units of a currency by its code, as the API writes it.
fn money(minor: i64, currency: &str) -> String {
    currency
        .parse::<Currency>()
        .map(|c| format_amount(minor, c))
        .unwrap_or_else(|_| minor.to_string())
}

/// Prints what the fleet did and what the service made of it.
pub fn print_summary(
    fleet: &Fleet,
    outcomes: &[Vec<Outcome>],
    verdict: &Verdict,
    elapsed: Duration,
) {
    let mut rows: BTreeMap<Behaviour, (u64, u64, i64, u64)> = BTreeMap::new();
    let mut requests = 0u64;
    let (mut refused, mut repeated) = (0u64, 0u64);
    let (mut sent, mut sent_lines) = (0u64, 0u64);
    for (ti, (t, closes)) in fleet.terminals.iter().zip(outcomes).enumerate() {
        for (ci, (close, outcome)) in t.closes.iter().zip(closes).enumerate() {
            refused += u64::from(outcome.attempt_id.is_some());
            repeated += outcome.repeated_lines as u64;
            let row = rows.entry(close.behaviour).or_default();
            row.0 += 1;
            row.1 += close.lines as u64;
            row.2 += close.sales;
            row.3 += u64::from(
                outcome.problems.is_empty() && !verdict.failed_closes.contains(&(ti, ci)),
            );
            requests += u64::from(outcome.requests);
            if close.behaviour.closes() {
                sent += 1;
                sent_lines += close.lines as u64;
            }
        }
    }
    let lines: u64 = rows.values().map(|r| r.1).sum();
    let closes: u64 = rows.values().map(|r| r.0).sum();
    let seconds = elapsed.as_secs_f64().max(0.001);
    let host_ends = if verdict.auto_close {
        "auto_closed on time"
    } else {
        "unsettled"
    };
    println!();
    println!(
        "{:<19} {:>7} {:>9} {:>8}  {:<24} {:>9}",
        "behaviour", "closes", "lines", "sales", "must end as", "as it did"
    );
    for (b, (n, l, s, ok)) in &rows {
        let must = match b {
            Behaviour::ForgotToClose => host_ends,
            _ => b.must_end_as(),
        };
        println!("{:<19} {n:>7} {l:>9} {s:>8}  {must:<24} {ok:>9}", b.name());
    }
    println!("{:<19} {closes:>7} {lines:>9}", "total");
    println!();
    println!(
        "{:<19} {:>7} {:>9} {:>8}  {:<24} {:>9}",
        "host feed", "", "auths", "sales", "must end as", "as it did"
    );
    for (row, tally) in &verdict.feed_rows {
        let must = match row {
            FeedRow::Closed => "in one batch, once",
            FeedRow::Forgotten | FeedRow::ExtraDueDay => host_ends,
            FeedRow::ExtraToday => "unsettled",
        };
        println!(
            "{:<19} {:>7} {:>9} {:>8}  {must:<24} {:>9}",
            row.label(),
            "",
            tally.records,
            tally.sales,
            tally.ended_right
        );
    }
    let auths: u64 = verdict.feed_rows.values().map(|t| t.records).sum();
    println!("{:<19} {:>7} {auths:>9}", "total", "");
    println!();
    let feed = &verdict.feed;
    let answered: Vec<String> = feed
        .outcomes
        .iter()
        .map(|(outcome, n)| format!("{n} {outcome}"))
        .collect();
    println!(
        "host feed: {} authorizations in {} requests ({})",
        feed.sent,
        feed.requests,
        if answered.is_empty() {
            "no answer".to_owned()
        } else {
            answered.join(", ")
        }
    );
    println!(
        "{sent} closes sent ({} forgotten), {requests} requests, {sent_lines} lines in {seconds:.1} s ({:.0} lines/s)",
        closes - sent,
        sent_lines as f64 / seconds
    );
    for (status, (n, sales)) in &verdict.by_status {
        println!("  {status:<24} {n:>6} batches {sales:>9} sales");
    }
    for (currency, a) in &verdict.sales {
        let (booked, held) = (a.booked_found, a.held_found);
        println!(
            "  sales accounted in {currency}: {} for {} booked, {} for {} held",
            booked.0,
            money(booked.1, currency),
            held.0,
            money(held.1, currency)
        );
    }
    let exceptions: Vec<String> = verdict
        .duplicate_exceptions
        .iter()
        .map(|(state, n)| format!("{n} {state}"))
        .collect();
    println!(
        "  closes refused as duplicate_transactions: {refused} ({repeated} lines repeated), \
         their exceptions: {}",
        if exceptions.is_empty() {
            "none".to_owned()
        } else {
            exceptions.join(", ")
        }
    );
    println!(
        "  skipped batch numbers reported by the status API: {}",
        verdict.skipped_reported
    );
    let (batches, host_lines, host_sales) = verdict.host_batches;
    println!(
        "  auto-close: {batches} host batches ({} by the settlement run the simulator \
         triggered, {} earlier by the service's scheduler), {host_lines} lines, {host_sales} \
         sales; late closes whose lines the host had closed first: {}",
        verdict.host_batches_by_run,
        batches - verdict.host_batches_by_run,
        verdict.late_closed_by_host_first
    );
    println!(
        "  settlement run: {} cycles closed; unsettled left: {} on {} terminals; \
         unmatched_transactions exceptions: {}",
        verdict.run_closed_cycles,
        verdict.unsettled_left,
        verdict.unsettled_terminals,
        verdict.unmatched_exceptions
    );
    println!(
        "  ledger check: {} ({} invariants)",
        if verdict.ledger_ok { "ok" } else { "FAILED" },
        verdict.ledger_checks
    );
    if verdict.ok() {
        println!("result: OK, every sale accounted exactly once, every authorized one paid once");
    } else {
        println!("result: {} MISMATCHES", verdict.mismatches.len());
        for m in verdict.mismatches.iter().take(50) {
            println!("  - {m}");
        }
    }
}

/// True when an onboarding request created its object: 201, or, after a retry, the
/// conflict saying it exists (the lost first attempt made it).
fn created(a: &Answer, attempts: u32, exists: &str) -> bool {
    a.status == StatusCode::CREATED
        || (attempts > 1 && a.status == StatusCode::CONFLICT && a.body["code"] == exists)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exists_conflict_counts_as_created_only_after_a_retry() {
        let answer = |status, code: &str| Answer {
            status,
            replayed: false,
            body: serde_json::json!({ "code": code }),
        };
        assert!(created(
            &answer(StatusCode::CREATED, ""),
            1,
            "merchant_exists"
        ));
        let exists = answer(StatusCode::CONFLICT, "merchant_exists");
        assert!(created(&exists, 2, "merchant_exists"));
        assert!(!created(&exists, 1, "merchant_exists"));
        assert!(!created(
            &answer(StatusCode::CONFLICT, "terminal_exists"),
            2,
            "merchant_exists"
        ));
    }

    fn refusal(lines: &[(&str, &str)], batch: Value) -> Value {
        json!({
            "code": "duplicate_transactions",
            "attempt_id": "0194-attempt",
            "duplicates": lines
                .iter()
                .map(|(stan, rrn)| json!({"stan": stan, "rrn": rrn, "batch": batch}))
                .collect::<Vec<_>>(),
        })
    }

    fn expected(lines: &[(&str, &str)]) -> Vec<(String, String)> {
        lines
            .iter()
            .map(|(s, r)| (s.to_string(), r.to_string()))
            .collect()
    }

    const HELD: Holder<'static> = Holder {
        batch_id: Some("b-1"),
        batch_number: 4,
        status: "rejected_outside_grace",
    };

    #[test]
    fn a_refusal_naming_exactly_the_repeated_lines_and_their_batch_passes() {
        let lines = [("000004", "000000000011"), ("000005", "000000000012")];
        let batch = json!({"id": "b-1", "batch_number": 4, "status": "rejected_outside_grace"});
        assert!(duplicate_problems(&refusal(&lines, batch), &expected(&lines), HELD).is_empty());
    }

    #[test]
    fn a_refusal_missing_a_line_or_naming_another_batch_is_a_problem() {
        let lines = [("000004", "000000000011"), ("000005", "000000000012")];
        let batch = json!({"id": "b-1", "batch_number": 4, "status": "rejected_outside_grace"});
        let short = refusal(&lines[..1], batch.clone());
        assert_eq!(duplicate_problems(&short, &expected(&lines), HELD).len(), 1);
        let booked = json!({"id": "b-1", "batch_number": 4, "status": "accepted"});
        assert_eq!(
            duplicate_problems(&refusal(&lines, booked), &expected(&lines), HELD).len(),
            2
        );
        let mut other_code = refusal(&lines, batch);
        other_code["code"] = json!("out_of_balance");
        assert_eq!(
            duplicate_problems(&other_code, &expected(&lines), HELD).len(),
            1
        );
        // A booked close is no refusal at all.
        let accepted = json!({"id": "b-2", "status": "accepted"});
        assert_eq!(
            duplicate_problems(&accepted, &expected(&lines), HELD).len(),
            3
        );
    }
}
