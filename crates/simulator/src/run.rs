//! Talking to the service: provisioning the fleet, driving its closes, and checking
//! the outcome through the public API.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use settlement_api::auth::{sign_hs256, Claims, Principal};
use settlement_domain::money::format_amount;

use crate::fleet::{cutoff_for, Behaviour, Fleet, GRACE_HOURS};

/// Attempts of one request that is answered 429 or 503, or cut.
const MAX_ATTEMPTS: u32 = 8;
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
    base: String,
    tokens: Tokens,
}

/// What happened at one planned close.
#[derive(Debug, Default)]
pub struct Outcome {
    pub requests: u32,
    pub batch_id: Option<String>,
    pub problems: Vec<String>,
}

/// The end-of-run checks.
#[derive(Debug, Default)]
pub struct Verdict {
    pub mismatches: Vec<String>,
    /// Batches found, by status.
    pub by_status: BTreeMap<String, (u64, i64)>,
    /// Sales accounted, by currency: (count, minor units).
    pub sales: BTreeMap<String, (i64, i64)>,
    pub skipped_reported: usize,
    pub ledger_checks: usize,
    pub ledger_ok: bool,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.mismatches.is_empty() && self.ledger_ok
    }
}

impl Client {
    pub fn new(base: &str, tokens: Tokens) -> anyhow::Result<Self> {
        Ok(Client {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()?,
            base: base.trim_end_matches('/').to_owned(),
            tokens,
        })
    }

    /// Sends a request, waiting out 429 and 503 (`Retry-After`) and retrying a cut
    /// connection with the same request (and so the same idempotency key).
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<(Answer, u32)> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
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
                    if transient && attempt < MAX_ATTEMPTS {
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
                Err(e) if attempt < MAX_ATTEMPTS => {
                    eprintln!("settlement-sim: {method} {path}: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e).with_context(|| format!("{method} {path}")),
            }
        }
    }

    /// Creates the fleet's merchants and terminals through the operations API.
    pub async fn provision(&self, fleet: &Fleet, now: DateTime<Utc>) -> anyhow::Result<()> {
        let ops = self.tokens.ops();
        for m in &fleet.merchants {
            let body = json!({
                "merchant_id": m.id, "name": format!("Simulated shop {}", m.id),
                "currency": m.currency.code(), "time_zone": m.zone,
                "cutoff_local_time": cutoff_for(m.zone, now),
                "grace_period_hours": GRACE_HOURS, "payout_delay_business_days": 1,
                "pricing": {"mdr_basis_points": 150, "fixed_fee": format_amount(10, m.currency)},
                "bank_account": "DE89370400440532013000"
            });
            let (a, _) = self
                .send(Method::POST, "/v1/ops/merchants", &ops, None, Some(&body))
                .await?;
            if a.status != StatusCode::CREATED {
                bail!("creating merchant {}: {} {}", m.id, a.status, a.body);
            }
        }
        for t in &fleet.terminals {
            let merchant = &fleet.merchants[t.merchant].id;
            let (a, _) = self
                .send(
                    Method::POST,
                    &format!("/v1/ops/merchants/{merchant}/terminals"),
                    &ops,
                    None,
                    Some(&json!({"terminal_id": t.id})),
                )
                .await?;
            if a.status != StatusCode::CREATED {
                bail!("creating terminal {}: {} {}", t.id, a.status, a.body);
            }
        }
        Ok(())
    }

    /// Every terminal makes its closes in order; `concurrency` terminals at a time.
    /// Returns the outcomes per terminal and close.
    pub async fn drive(&self, fleet: &Fleet, concurrency: usize) -> Vec<Vec<Outcome>> {
        stream::iter(fleet.terminals.iter().map(|t| async move {
            let merchant = &fleet.merchants[t.merchant].id;
            let token = self.tokens.terminal(&t.id, merchant);
            let mut outcomes = Vec::new();
            for (n, close) in t.closes.iter().enumerate() {
                let key = |suffix: &str| format!("{}-{}-{n}{suffix}", t.id, close.number);
                let outcome = self
                    .close(&t.id, &token, close.behaviour, &close.body, &key)
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

    /// One close, as the behaviour has it.
    async fn close(
        &self,
        terminal: &str,
        token: &str,
        behaviour: Behaviour,
        body: &Value,
        key: &dyn Fn(&str) -> String,
    ) -> anyhow::Result<Outcome> {
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
            _ => {}
        }
        let (a, n) = post(key(""), body.clone()).await?;
        out.requests += n;
        match behaviour {
            Behaviour::PastGrace => {
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

    /// Reads every merchant's batches and status, and the ledger check, and compares
    /// them with what the fleet did.
    pub async fn verify(
        &self,
        fleet: &Fleet,
        outcomes: &[Vec<Outcome>],
    ) -> anyhow::Result<Verdict> {
        let mut verdict = Verdict::default();
        for o in outcomes.iter().flatten() {
            verdict.mismatches.extend(o.problems.iter().cloned());
        }
        for (mi, m) in fleet.merchants.iter().enumerate() {
            let token = self.tokens.merchant(&m.id);
            let mut found: BTreeMap<(String, u32), Value> = BTreeMap::new();
            let mut cursor: Option<String> = None;
            loop {
                let path = match &cursor {
                    Some(c) => format!("/v1/merchants/{}/batches?limit=100&cursor={c}", m.id),
                    None => format!("/v1/merchants/{}/batches?limit=100", m.id),
                };
                let (a, _) = self.send(Method::GET, &path, &token, None, None).await?;
                if a.status != StatusCode::OK {
                    bail!("listing {}'s batches: {} {}", m.id, a.status, a.body);
                }
                for b in a.body["data"].as_array().into_iter().flatten() {
                    let terminal = b["terminal_id"].as_str().unwrap_or_default().to_owned();
                    let number = b["batch_number"].as_u64().unwrap_or_default();
                    let key = (terminal, u32::try_from(number).unwrap_or_default());
                    if found.insert(key.clone(), b.clone()).is_some() {
                        verdict
                            .mismatches
                            .push(format!("{} #{} is listed twice", key.0, key.1));
                    }
                }
                cursor = a.body["next_cursor"].as_str().map(str::to_owned);
                if cursor.is_none() {
                    break;
                }
            }
            let mut expected_skips: BTreeMap<&str, BTreeSet<i64>> = BTreeMap::new();
            for (t, closes) in fleet
                .terminals
                .iter()
                .zip(outcomes)
                .filter(|(t, _)| t.merchant == mi)
            {
                for (close, outcome) in t.closes.iter().zip(closes) {
                    if let Some(s) = close.skipped {
                        expected_skips
                            .entry(&t.id)
                            .or_default()
                            .insert(i64::from(s));
                    }
                    let Some(b) = found.remove(&(t.id.clone(), close.number)) else {
                        verdict
                            .mismatches
                            .push(format!("{} #{} is missing", t.id, close.number));
                        continue;
                    };
                    let status = b["status"].as_str().unwrap_or_default();
                    let sale_amount = b["totals"]["sale_amount"].as_str().unwrap_or_default();
                    let sale_count = b["totals"]["sale_count"].as_i64().unwrap_or(-1);
                    let mut wrong = Vec::new();
                    if status != close.behaviour.expected_status() {
                        wrong.push(format!(
                            "status {status}, expected {}",
                            close.behaviour.expected_status()
                        ));
                    }
                    if sale_count != close.sales
                        || sale_amount != format_amount(close.sale_minor, close.currency)
                    {
                        wrong.push(format!(
                            "sales {sale_count} / {sale_amount}, expected {} / {}",
                            close.sales,
                            format_amount(close.sale_minor, close.currency)
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
                    entry.1 += close.sales;
                    let sales = verdict
                        .sales
                        .entry(close.currency.code().to_owned())
                        .or_default();
                    sales.0 += sale_count;
                    sales.1 += close.sale_minor;
                }
            }
            for ((t, n), _) in found {
                verdict
                    .mismatches
                    .push(format!("{t} #{n} exists but the fleet never closed it"));
            }
            // Skipped numbers are reported by the merchant's status.
            if !expected_skips.is_empty() {
                let (a, _) = self
                    .send(
                        Method::GET,
                        &format!("/v1/merchants/{}/status", m.id),
                        &token,
                        None,
                        None,
                    )
                    .await?;
                for t in a.body["terminals"].as_array().into_iter().flatten() {
                    let id = t["terminal_id"].as_str().unwrap_or_default();
                    let Some(expected) = expected_skips.remove(id) else {
                        continue;
                    };
                    let reported: BTreeSet<i64> = t["skipped_batch_numbers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_i64)
                        .collect();
                    if reported.is_superset(&expected) {
                        verdict.skipped_reported += expected.len();
                    } else {
                        verdict.mismatches.push(format!(
                            "{id}: status reports skipped {reported:?}, expected {expected:?}"
                        ));
                    }
                }
                for (id, expected) in expected_skips {
                    verdict
                        .mismatches
                        .push(format!("{id}: skipped {expected:?} not in the status"));
                }
            }
        }
        let (a, _) = self
            .send(
                Method::GET,
                "/v1/ops/ledger/check",
                &self.tokens.ops(),
                None,
                None,
            )
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
        Ok(verdict)
    }
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
    for (t, closes) in fleet.terminals.iter().zip(outcomes) {
        for (close, outcome) in t.closes.iter().zip(closes) {
            let row = rows.entry(close.behaviour).or_default();
            row.0 += 1;
            row.1 += close.lines as u64;
            row.2 += close.sales;
            row.3 += u64::from(outcome.problems.is_empty());
            requests += u64::from(outcome.requests);
        }
    }
    let lines: u64 = rows.values().map(|r| r.1).sum();
    let closes: u64 = rows.values().map(|r| r.0).sum();
    let seconds = elapsed.as_secs_f64().max(0.001);
    println!();
    println!(
        "{:<16} {:>7} {:>9} {:>8}  {:<24} {:>9}",
        "behaviour", "closes", "lines", "sales", "must end as", "as it did"
    );
    for (b, (n, l, s, ok)) in &rows {
        println!(
            "{:<16} {n:>7} {l:>9} {s:>8}  {:<24} {ok:>9}",
            b.name(),
            b.expected_status()
        );
    }
    println!("{:<16} {closes:>7} {lines:>9}", "total");
    println!();
    println!(
        "{closes} closes, {requests} requests, {lines} lines in {seconds:.1} s ({:.0} lines/s)",
        lines as f64 / seconds
    );
    for (status, (n, sales)) in &verdict.by_status {
        println!("  {status:<24} {n:>6} batches {sales:>9} sales");
    }
    for (currency, (count, minor)) in &verdict.sales {
        let amount = currency
            .parse()
            .map(|c| format_amount(*minor, c))
            .unwrap_or_else(|_| minor.to_string());
        println!("  sales accounted in {currency}: {count} for {amount}");
    }
    println!(
        "  skipped batch numbers reported by the status API: {}",
        verdict.skipped_reported
    );
    println!(
        "  ledger check: {} ({} invariants)",
        if verdict.ledger_ok { "ok" } else { "FAILED" },
        verdict.ledger_checks
    );
    if verdict.ok() {
        println!("result: OK, every sale accounted exactly once");
    } else {
        println!("result: {} MISMATCHES", verdict.mismatches.len());
        for m in verdict.mismatches.iter().take(50) {
            println!("  - {m}");
        }
    }
}
