//! The authorization host's side of the fleet: the feed of authorizations it sends
//! before the terminals close (every sale and refund they will close, and a few sales
//! they never close), and the accounting that checks, per terminal, that each
//! authorized transaction ended where it must: in exactly one batch (the terminal's,
//! or the host's auto-close), or still unsettled when its day is not due.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};

use settlement_domain::money::{parse_amount, Currency};

use crate::fleet::{captured_at, Behaviour, Fleet, Merchant, Terminal};

/// Most records one `POST /v1/host/authorizations` takes.
pub const MAX_RECORDS_PER_REQUEST: usize = 10_000;

/// Statuses of a booked batch; a batch in any other status is not paid.
pub const BOOKED: [&str; 4] = [
    "accepted",
    "accepted_late",
    "accepted_by_operator",
    "auto_closed",
];

/// The host's authorization of a close's sale or refund line (voids are not
/// authorized: they cancel a sale of their own batch).
pub fn authorization(terminal_id: &str, currency: Currency, line: &Value) -> Option<Value> {
    let kind = line["type"].as_str()?;
    if kind == "void" {
        return None;
    }
    Some(json!({
        "type": "authorization",
        "terminal_id": terminal_id,
        "rrn": line["rrn"],
        "stan": line["stan"],
        "auth_code": line["auth_code"],
        "transaction_type": kind,
        "amount": line["amount"],
        "currency": currency.code(),
        "authorized_at": line["captured_at"],
        "card_brand": line["card_brand"],
        "masked_pan": line["masked_pan"],
    }))
}

/// Every authorization of the fleet, oldest first, as the host would send them: the
/// sales and refunds of every batch the terminals will close (or forget to), each
/// once, and the sales they never close.
pub fn feed(fleet: &Fleet) -> Vec<Value> {
    let mut records: Vec<(DateTime<Utc>, Value)> = Vec::new();
    for t in &fleet.terminals {
        let currency = fleet.merchants[t.merchant].currency;
        let lines = t
            .closes
            .iter()
            .flat_map(|c| c.body["transactions"].as_array().into_iter().flatten())
            .chain(t.extras.iter().map(|e| &e.line));
        for line in lines {
            if let Some(record) = authorization(&t.id, currency, line) {
                records.push((captured_at(line), record));
            }
        }
        // A terminal voids a sale online: the host reverses its authorization, so
        // the host never closes a sale its terminal voided.
        for c in &t.closes {
            for (void, sale) in voided_sales(&c.body) {
                records.push((
                    captured_at(void),
                    json!({"type": "reversal", "terminal_id": t.id, "rrn": sale["rrn"]}),
                ));
            }
        }
    }
    // Chronological, as a switch logs them: the earlier days' authorizations are
    // all sent before today's.
    records.sort_by_key(|r| r.0);
    records.into_iter().map(|(_, r)| r).collect()
}

/// The voids of a close with the sale each cancels.
fn voided_sales(body: &Value) -> Vec<(&Value, &Value)> {
    let lines: Vec<&Value> = body["transactions"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    lines
        .iter()
        .filter(|l| l["type"] == "void")
        .filter_map(|v| {
            lines
                .iter()
                .find(|s| s["type"] == "sale" && s["stan"] == v["original_stan"])
                .map(|s| (*v, *s))
        })
        .collect()
}

/// How many sales of a close its voids cancel, and their amount: reversed at the
/// host, they are not in the host's batch when the terminal forgets the close.
pub fn voided_sale_totals(body: &Value, currency: Currency) -> (i64, i64) {
    let voided = voided_sales(body);
    let amount = voided
        .iter()
        .filter_map(|(_, s)| s["amount"].as_str())
        .filter_map(|a| parse_amount(a, currency).ok())
        .sum();
    (i64::try_from(voided.len()).unwrap_or(i64::MAX), amount)
}

/// What became of the feed's records, from the service's answers.
#[derive(Debug, Default, Clone)]
pub struct FeedReport {
    pub requests: u32,
    pub sent: usize,
    /// Outcomes as the service counted them (`recorded`, `unchanged`, ...).
    pub outcomes: BTreeMap<String, usize>,
    pub problems: Vec<String>,
}

impl FeedReport {
    /// Adds one answer of the service to `records` sent (their first index in the
    /// feed is `offset`); anything but `recorded`, `unchanged` or `reversed` (a voided
    /// sale's reversal) is a problem.
    pub fn add_answer(&mut self, offset: usize, records: &[Value], answer: &Value) {
        self.sent += records.len();
        let results = answer["records"].as_array().cloned().unwrap_or_default();
        if results.len() != records.len() {
            self.problems.push(format!(
                "host feed: {} results for {} records",
                results.len(),
                records.len()
            ));
        }
        for r in &results {
            let outcome = r["outcome"].as_str().unwrap_or("(none)").to_owned();
            if !matches!(outcome.as_str(), "recorded" | "unchanged" | "reversed") {
                let i = r["index"].as_u64().and_then(|i| usize::try_from(i).ok());
                let record = i.and_then(|i| records.get(i));
                self.problems.push(format!(
                    "host feed record {}: {outcome} {} {} (terminal {}, rrn {})",
                    i.map_or_else(|| "?".to_owned(), |i| (offset + i).to_string()),
                    r["code"],
                    r["detail"],
                    record.map_or(&Value::Null, |v| &v["terminal_id"]),
                    record.map_or(&Value::Null, |v| &v["rrn"]),
                ));
            }
            *self.outcomes.entry(outcome).or_default() += 1;
        }
    }
}

/// Where the host's records must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Expect {
    /// In the terminal's batch of its close, booked or held.
    Terminal { booked: bool },
    /// A late close's line: in its batch, or, when an auto-close ran before the close
    /// arrived, in a host batch on time (the late batch lists it as settled already).
    TerminalOrHost,
    /// In one host batch (auto-close), on time: its cycle is its business date.
    Host,
    /// In no batch, listed by the terminal's unsettled transactions.
    Unsettled,
}

impl Expect {
    fn describe(self) -> &'static str {
        match self {
            Expect::Terminal { booked: true } => "booked once",
            Expect::Terminal { booked: false } => "held once",
            Expect::TerminalOrHost => "booked once",
            Expect::Host => "auto_closed on time",
            Expect::Unsettled => "unsettled",
        }
    }
}

/// The rows of the host feed in the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FeedRow {
    /// Lines of the batches the terminals close.
    Closed,
    /// Lines of the batches `forgot_to_close` terminals never close.
    Forgotten,
    /// Sales never closed, of the previous business day.
    ExtraDueDay,
    /// Sales never closed, of the run's own business day.
    ExtraToday,
}

impl FeedRow {
    pub fn label(self) -> &'static str {
        match self {
            FeedRow::Closed => "closed lines",
            FeedRow::Forgotten => "forgotten lines",
            FeedRow::ExtraDueDay => "never closed, due",
            FeedRow::ExtraToday => "never closed, today",
        }
    }
}

/// Authorizations, sales among them, and those that ended as they must.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub records: u64,
    pub sales: u64,
    pub ended_right: u64,
}

/// One authorization of a terminal, as the fleet made it.
#[derive(Debug)]
struct Auth<'a> {
    rrn: &'a str,
    sale: bool,
    amount: &'a str,
    /// The close it belongs to (by index), or none for a sale never closed.
    close: Option<usize>,
    business_date: NaiveDate,
    expect: Expect,
    row: FeedRow,
}

/// Where the service has a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    /// In the terminal's batch of close `close`.
    Terminal { close: usize, booked: bool },
    /// In a host batch; `on_time` when its cycle is its business date, which is the
    /// transaction's.
    Host { batch: String, on_time: bool },
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Terminal { close, booked } => write!(
                f,
                "the terminal's close {close} ({})",
                if *booked { "booked" } else { "held" }
            ),
            Place::Host { batch, on_time } => write!(
                f,
                "host batch {batch}{}",
                if *on_time { "" } else { " (not on time)" }
            ),
        }
    }
}

/// What the service holds for one terminal, as read back through the API.
#[derive(Debug, Default)]
pub struct Found<'a> {
    /// Per close, in order, the batch stored under its number (none for a close
    /// never sent or missing).
    pub batches: Vec<Option<&'a Value>>,
    /// The terminal's host batches (auto-close), each with all its lines.
    pub host: Vec<(&'a Value, Vec<Value>)>,
    /// RRNs of the terminal's unsettled transactions.
    pub unsettled: BTreeSet<String>,
}

/// The accounting of one terminal's authorizations.
#[derive(Debug, Default)]
pub struct Account {
    pub mismatches: Vec<String>,
    /// Closes (by index) any of whose transactions did not end as it must.
    pub failed_closes: BTreeSet<usize>,
    pub rows: BTreeMap<FeedRow, Tally>,
    /// Late closes whose lines an auto-close had settled before they arrived.
    pub late_closed_by_host_first: u64,
    /// Unsettled transactions left.
    pub unsettled: u64,
}

/// The sales of a close that its stored batch lists as settled already by a host
/// batch: their count and amount in minor units.
pub fn settled_sales(body: &Value, batch: &Value, currency: Currency) -> (i64, i64) {
    let settled = settled_rrns(batch);
    body["transactions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["type"] == "sale")
        .filter(|l| l["rrn"].as_str().is_some_and(|r| settled.contains_key(r)))
        .fold((0, 0), |(n, sum), l| {
            let amount = l["amount"]
                .as_str()
                .and_then(|a| parse_amount(a, currency).ok())
                .unwrap_or_default();
            (n + 1, sum + amount)
        })
}

/// RRN to the host batch a stored batch lists it as settled by.
fn settled_rrns(batch: &Value) -> BTreeMap<&str, &str> {
    batch["already_settled_lines"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| Some((s["rrn"].as_str()?, s["batch_id"].as_str().unwrap_or(""))))
        .collect()
}

/// Where an authorization of a day must end: closed by the host when auto-close is
/// on and its day is due at `now`, else left unsettled.
fn host_or_unsettled(
    m: &Merchant,
    date: NaiveDate,
    auto_close: bool,
    now: DateTime<Utc>,
) -> Expect {
    if auto_close && m.auto_close_due(date, now) {
        Expect::Host
    } else {
        Expect::Unsettled
    }
}

/// The authorizations of a terminal, with where each must end.
fn authorizations<'a>(
    m: &Merchant,
    t: &'a Terminal,
    auto_close: bool,
    now: DateTime<Utc>,
) -> Vec<Auth<'a>> {
    let mut out = Vec::new();
    let lines = t
        .closes
        .iter()
        .enumerate()
        .flat_map(|(i, c)| {
            c.body["transactions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |l| (Some(i), false, l))
        })
        .chain(t.extras.iter().map(|e| (None, e.due_day, &e.line)));
    let voided: BTreeSet<(usize, String)> = t
        .closes
        .iter()
        .enumerate()
        .flat_map(|(i, c)| {
            voided_sales(&c.body)
                .into_iter()
                .map(move |(_, s)| (i, s["stan"].as_str().unwrap_or_default().to_owned()))
        })
        .collect();
    for (close, due_day, line) in lines {
        let kind = line["type"].as_str().unwrap_or_default();
        if kind == "void" {
            continue;
        }
        // A voided sale of a forgotten batch was reversed at the host: nobody pays it.
        let stan = line["stan"].as_str().unwrap_or_default().to_owned();
        if let Some(i) = close {
            if t.closes[i].behaviour == Behaviour::ForgotToClose && voided.contains(&(i, stan)) {
                continue;
            }
        }
        let business_date = m.business_date_of(captured_at(line));
        let (expect, row) = match close.map(|i| t.closes[i].behaviour) {
            Some(Behaviour::PastGrace | Behaviour::Reenter) => {
                (Expect::Terminal { booked: false }, FeedRow::Closed)
            }
            Some(Behaviour::Late) => (
                match host_or_unsettled(m, business_date, auto_close, now) {
                    Expect::Host => Expect::TerminalOrHost,
                    _ => Expect::Terminal { booked: true },
                },
                FeedRow::Closed,
            ),
            Some(Behaviour::ForgotToClose) => (
                host_or_unsettled(m, business_date, auto_close, now),
                FeedRow::Forgotten,
            ),
            Some(_) => (Expect::Terminal { booked: true }, FeedRow::Closed),
            None => (
                host_or_unsettled(m, business_date, auto_close, now),
                if due_day {
                    FeedRow::ExtraDueDay
                } else {
                    FeedRow::ExtraToday
                },
            ),
        };
        out.push(Auth {
            rrn: line["rrn"].as_str().unwrap_or_default(),
            sale: kind == "sale",
            amount: line["amount"].as_str().unwrap_or_default(),
            close,
            business_date,
            expect,
            row,
        });
    }
    out
}

/// Checks that every authorization of terminal `t` (of merchant `m`) ended where it
/// must, from what the service holds (`found`), at `now`: each transaction in exactly
/// one batch (a terminal's, or a host batch on time), those of days not due (or with
/// auto-close off) unsettled, and nothing in a host batch the host never authorized
/// or a terminal's batch presents.
pub fn account(
    m: &Merchant,
    t: &Terminal,
    found: &Found<'_>,
    auto_close: bool,
    now: DateTime<Utc>,
) -> Account {
    let mut out = Account::default();
    let auths = authorizations(m, t, auto_close, now);
    let by_rrn: BTreeMap<&str, usize> = auths.iter().enumerate().map(|(i, a)| (a.rrn, i)).collect();
    let mut places: Vec<Vec<Place>> = vec![Vec::new(); auths.len()];
    // RRN to the host batch a terminal's batch says settled it.
    let mut settled_by: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
    for (i, batch) in found.batches.iter().enumerate() {
        let Some(batch) = batch else { continue };
        let Some(close) = t.closes.get(i) else {
            continue;
        };
        let status = batch["status"].as_str().unwrap_or_default();
        let settled = settled_rrns(batch);
        if !settled.is_empty() {
            if close.behaviour == Behaviour::Late && auto_close {
                out.late_closed_by_host_first += 1;
            } else {
                out.mismatches.push(format!(
                    "{} #{} ({}): {} lines listed as settled already by a host batch",
                    t.id,
                    close.number,
                    close.behaviour,
                    settled.len()
                ));
                out.failed_closes.insert(i);
            }
        }
        let presented: BTreeSet<&str> = close.body["transactions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|l| l["type"] != "void")
            .filter_map(|l| l["rrn"].as_str())
            .collect();
        for (rrn, host_batch) in &settled {
            if !presented.contains(rrn) {
                out.mismatches.push(format!(
                    "{} #{}: rrn {rrn} listed as settled already is not a line of the close",
                    t.id, close.number
                ));
                out.failed_closes.insert(i);
            }
            settled_by.insert(rrn, (i, host_batch));
        }
        for rrn in presented.into_iter().filter(|r| !settled.contains_key(r)) {
            if let Some(&a) = by_rrn.get(rrn) {
                places[a].push(Place::Terminal {
                    close: i,
                    booked: BOOKED.contains(&status),
                });
            }
        }
    }
    for (batch, lines) in &found.host {
        let id = batch["id"].as_str().unwrap_or_default();
        let business_date = batch["business_date"].as_str().unwrap_or_default();
        let shape_ok = batch["origin"] == "host"
            && batch["status"] == "auto_closed"
            && batch["batch_number"].is_null();
        if !shape_ok {
            out.mismatches.push(format!(
                "{}: host batch {id} has origin {}, status {}, number {}",
                t.id, batch["origin"], batch["status"], batch["batch_number"]
            ));
        }
        let on_time = batch["cycle_date"].as_str() == Some(business_date);
        if lines.len() as u64 != batch["line_count"].as_u64().unwrap_or(0) {
            out.mismatches.push(format!(
                "{}: host batch {id} shows {} lines of {}",
                t.id,
                lines.len(),
                batch["line_count"]
            ));
        }
        for line in lines {
            let rrn = line["rrn"].as_str().unwrap_or_default();
            let Some(&a) = by_rrn.get(rrn) else {
                out.mismatches.push(format!(
                    "{}: host batch {id} closed rrn {rrn}, which the fleet's host never authorized for it",
                    t.id
                ));
                continue;
            };
            let auth = &auths[a];
            let agrees = line["amount"].as_str() == Some(auth.amount)
                && line["type"] == if auth.sale { "sale" } else { "refund" };
            let right_day = business_date == auth.business_date.to_string();
            if !agrees || !right_day {
                out.mismatches.push(format!(
                    "{}: host batch {id} (business date {business_date}) has rrn {rrn} as {} {}, \
                     authorized as {} {} on business date {}",
                    t.id,
                    line["type"],
                    line["amount"],
                    if auth.sale { "sale" } else { "refund" },
                    auth.amount,
                    auth.business_date
                ));
            }
            if let Some((close, named)) = settled_by.get(rrn) {
                if *named != id {
                    out.mismatches.push(format!(
                        "{}: close {close} lists rrn {rrn} as settled by {named}, but host batch {id} holds it",
                        t.id
                    ));
                }
            }
            places[a].push(Place::Host {
                batch: id.to_owned(),
                on_time: on_time && right_day && agrees && shape_ok,
            });
        }
    }
    for (a, auth) in auths.iter().enumerate() {
        let here = &places[a];
        let unsettled = found.unsettled.contains(auth.rrn);
        let right = match auth.expect {
            Expect::Terminal { booked } => {
                matches!(here.as_slice(), [Place::Terminal { close, booked: b }]
                    if Some(*close) == auth.close && *b == booked)
            }
            Expect::TerminalOrHost => match here.as_slice() {
                [Place::Terminal { close, booked }] => Some(*close) == auth.close && *booked,
                [Place::Host { on_time, .. }] => *on_time,
                _ => false,
            },
            Expect::Host => matches!(here.as_slice(), [Place::Host { on_time: true, .. }]),
            Expect::Unsettled => here.is_empty(),
        } && unsettled == (auth.expect == Expect::Unsettled);
        let tally = out.rows.entry(auth.row).or_default();
        tally.records += 1;
        tally.sales += u64::from(auth.sale);
        tally.ended_right += u64::from(right);
        out.unsettled += u64::from(unsettled);
        if !right {
            if let Some(c) = auth.close {
                out.failed_closes.insert(c);
            }
            let whence = match auth.close {
                Some(c) => format!("#{} ({})", t.closes[c].number, t.closes[c].behaviour),
                None => "never closed".to_owned(),
            };
            let mut at: Vec<String> = here.iter().map(ToString::to_string).collect();
            if unsettled {
                at.push("the unsettled list".into());
            }
            out.mismatches.push(format!(
                "{} {whence}: rrn {} of business date {} must end {}, is in {}",
                t.id,
                auth.rrn,
                auth.business_date,
                auth.expect.describe(),
                if at.is_empty() {
                    "nothing".to_owned()
                } else {
                    at.join(" and ")
                }
            ));
        }
    }
    for rrn in &found.unsettled {
        if !by_rrn.contains_key(rrn.as_str()) {
            out.mismatches.push(format!(
                "{}: rrn {rrn} is unsettled, but the fleet's host never authorized it",
                t.id
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::fleet::{Plan, Shares};

    fn fleet(shares: &str, seed: u64, now: DateTime<Utc>) -> Fleet {
        let shares: Shares = shares.parse().unwrap();
        Fleet::generate(
            &Plan {
                run_id: "test",
                merchants: 6,
                terminals: 12,
                closes_per_terminal: 3,
                min_lines: 1,
                max_lines: 30,
                shares: &shares,
            },
            &mut StdRng::seed_from_u64(seed),
            now,
        )
    }

    fn lines(body: &Value) -> Vec<&Value> {
        body["transactions"].as_array().unwrap().iter().collect()
    }

    #[test]
    fn the_feed_authorizes_every_sale_and_refund_once_oldest_first() {
        let now = Utc::now();
        let f = fleet(
            "on_time=2,late=1,past_grace=1,forgot_to_close=1,reenter=1,duplicate_lines=1",
            3,
            now,
        );
        let records = feed(&f);
        let mut wanted = 0;
        for t in &f.terminals {
            for c in &t.closes {
                wanted += lines(&c.body)
                    .iter()
                    .filter(|l| l["type"] != "void")
                    .count();
            }
            wanted += t.extras.len();
        }
        let authorizations: Vec<&Value> = records
            .iter()
            .filter(|r| r["type"] == "authorization")
            .collect();
        assert_eq!(authorizations.len(), wanted);
        // Each voided sale is reversed, after its authorization.
        let reversals = records.len() - authorizations.len();
        let voids: usize = f
            .terminals
            .iter()
            .flat_map(|t| &t.closes)
            .map(|c| voided_sales(&c.body).len())
            .sum();
        assert_eq!(reversals, voids);
        let keys: BTreeSet<(&str, &str)> = authorizations
            .iter()
            .map(|r| {
                (
                    r["terminal_id"].as_str().unwrap(),
                    r["rrn"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            keys.len(),
            authorizations.len(),
            "one authorization per terminal and rrn"
        );
        let times: Vec<DateTime<Utc>> = authorizations
            .iter()
            .map(|r| {
                DateTime::parse_from_rfc3339(r["authorized_at"].as_str().unwrap())
                    .unwrap()
                    .into()
            })
            .collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        for r in &authorizations {
            let code = r["auth_code"].as_str().unwrap();
            assert_eq!(code.len(), 6);
            assert!(code.bytes().all(|b| b.is_ascii_alphanumeric()));
            assert!(matches!(
                r["transaction_type"].as_str(),
                Some("sale" | "refund")
            ));
            assert!(r["stan"].as_str().unwrap().len() == 6);
        }
    }

    #[test]
    fn an_authorization_carries_the_line_as_closed() {
        let line = json!({"stan": "000007", "rrn": "000000000042", "type": "refund",
            "amount": "3.10", "captured_at": "2026-12-01T10:00:00.250Z", "card_brand": "visa",
            "masked_pan": "411111******1111", "auth_code": "0A1B2C"});
        let r = authorization("t1", Currency::Eur, &line).unwrap();
        assert_eq!(
            r,
            json!({"type": "authorization", "terminal_id": "t1", "rrn": "000000000042",
                "stan": "000007", "auth_code": "0A1B2C", "transaction_type": "refund",
                "amount": "3.10", "currency": "EUR", "authorized_at": "2026-12-01T10:00:00.250Z",
                "card_brand": "visa", "masked_pan": "411111******1111"})
        );
        let mut void = line.clone();
        void["type"] = json!("void");
        assert!(authorization("t1", Currency::Eur, &void).is_none());
    }

    #[test]
    fn a_day_of_one_terminal_never_repeats_a_trace_number() {
        // The host closes a terminal's unsettled transactions of a day as one batch,
        // whose STANs must be distinct: the fleet's STANs run on per terminal.
        let now = Utc::now();
        let f = fleet(
            "late=1,forgot_to_close=1,duplicate_lines=1,on_time=1",
            5,
            now,
        );
        for t in &f.terminals {
            let m = &f.merchants[t.merchant];
            let mut seen: BTreeSet<(NaiveDate, String)> = BTreeSet::new();
            let all = t
                .closes
                .iter()
                .flat_map(|c| lines(&c.body))
                .chain(t.extras.iter().map(|e| &e.line));
            for l in all {
                let day = m.business_date_of(captured_at(l));
                assert!(
                    seen.insert((day, l["stan"].as_str().unwrap().to_owned())),
                    "{}",
                    t.id
                );
            }
        }
    }

    #[test]
    fn forgotten_batches_and_due_extras_fall_on_a_day_the_host_closes() {
        // Today, and runs around the DST changes of the fleet's zones.
        let nows = [
            Utc::now(),
            "2026-03-08T09:30:00Z".parse().unwrap(),
            "2026-03-29T00:40:00Z".parse().unwrap(),
            "2026-04-05T14:00:00Z".parse().unwrap(),
            "2026-10-04T15:59:00Z".parse().unwrap(),
            "2026-11-01T05:10:00Z".parse().unwrap(),
        ];
        for now in nows {
            let f = fleet("forgot_to_close=1,late=1,on_time=1,past_grace=1", 9, now);
            let mut due = 0;
            for t in &f.terminals {
                let m = &f.merchants[t.merchant];
                for c in &t.closes {
                    let first = captured_at(lines(&c.body)[0]);
                    let day = m.business_date_of(first);
                    let last = captured_at(lines(&c.body).last().unwrap());
                    assert_eq!(day, m.business_date_of(last), "a batch within one day");
                    let expected =
                        matches!(c.behaviour, Behaviour::ForgotToClose | Behaviour::Late);
                    assert_eq!(
                        m.auto_close_due(day, now),
                        expected,
                        "{} {day} {now}",
                        m.zone
                    );
                    due += u32::from(expected);
                }
                for e in &t.extras {
                    let day = m.business_date_of(captured_at(&e.line));
                    assert_eq!(m.auto_close_due(day, now), e.due_day, "{} {now}", m.zone);
                }
            }
            assert!(due > 5);
        }
    }

    /// A terminal with one on-time close, one forgotten close, one late close and one
    /// extra sale of each day, and what a correct service holds for it.
    struct Case {
        fleet: Fleet,
        now: DateTime<Utc>,
    }

    fn case() -> Case {
        let now = Utc::now();
        for seed in 0..200 {
            let f = fleet("on_time=1,late=1,forgot_to_close=1", seed, now);
            let found = f.terminals.iter().position(|t| {
                let kinds: BTreeSet<Behaviour> = t.closes.iter().map(|c| c.behaviour).collect();
                kinds.len() == 3
                    && t.extras.iter().any(|e| e.due_day)
                    && t.extras.iter().any(|e| !e.due_day)
            });
            if let Some(i) = found {
                let mut f = f;
                let t = f.terminals.swap_remove(i);
                f.terminals = vec![t];
                return Case { fleet: f, now };
            }
        }
        panic!("no terminal with every kind of close");
    }

    fn batch(status: &str, number: Option<u32>, origin: &str) -> Value {
        json!({"id": format!("b-{origin}-{number:?}"), "status": status, "batch_number": number,
            "origin": origin, "business_date": "", "cycle_date": null,
            "already_settled_lines": [], "line_count": 0})
    }

    /// The service's answer for the case: terminal batches for the closes sent; one
    /// host batch of the previous day with the forgotten lines and the due extra (and
    /// the late lines when `host_first`); the unsettled extra of today.
    fn service(c: &Case, host_first: bool) -> (Vec<Value>, Value, Vec<Value>, BTreeSet<String>) {
        let t = &c.fleet.terminals[0];
        let m = &c.fleet.merchants[t.merchant];
        let mut host_lines: Vec<Value> = Vec::new();
        let mut batches = Vec::new();
        for close in &t.closes {
            let own: Vec<Value> = lines(&close.body)
                .into_iter()
                .filter(|l| l["type"] != "void")
                .cloned()
                .collect();
            match close.behaviour {
                Behaviour::ForgotToClose => {
                    // Its voided sales were reversed: the host closes the rest.
                    let voided: Vec<&Value> = voided_sales(&close.body)
                        .into_iter()
                        .map(|(_, s)| s)
                        .collect();
                    host_lines.extend(own.into_iter().filter(|l| !voided.contains(&l)));
                    batches.push(Value::Null);
                }
                Behaviour::Late if host_first => {
                    let mut b = batch("accepted_late", Some(close.number), "terminal");
                    b["already_settled_lines"] = own
                        .iter()
                        .map(|l| json!({"rrn": l["rrn"], "stan": l["stan"], "batch_id": "host-1"}))
                        .collect();
                    host_lines.extend(own);
                    batches.push(b);
                }
                b => batches.push(batch(b.expected_status(), Some(close.number), "terminal")),
            }
        }
        let mut unsettled = BTreeSet::new();
        for e in &t.extras {
            if e.due_day {
                host_lines.push(e.line.clone());
            } else {
                unsettled.insert(e.line["rrn"].as_str().unwrap().to_owned());
            }
        }
        let day = m.business_date_of(c.now - Duration::hours(30)).to_string();
        let mut host = batch("auto_closed", None, "host");
        host["id"] = json!("host-1");
        host["business_date"] = json!(day);
        host["cycle_date"] = json!(day);
        host["line_count"] = json!(host_lines.len());
        (batches, host, host_lines, unsettled)
    }

    fn run(
        c: &Case,
        batches: &[Value],
        host: &Value,
        host_lines: Vec<Value>,
        unsettled: BTreeSet<String>,
    ) -> Account {
        let found = Found {
            batches: batches
                .iter()
                .map(|b| (!b.is_null()).then_some(b))
                .collect(),
            host: vec![(host, host_lines)],
            unsettled,
        };
        let t = &c.fleet.terminals[0];
        account(&c.fleet.merchants[t.merchant], t, &found, true, c.now)
    }

    #[test]
    fn a_service_that_pays_each_authorization_once_passes_whoever_closed_the_late_batch() {
        let c = case();
        for host_first in [false, true] {
            let (batches, host, host_lines, unsettled) = service(&c, host_first);
            let a = run(&c, &batches, &host, host_lines, unsettled);
            assert!(a.mismatches.is_empty(), "{:#?}", a.mismatches);
            assert!(a.failed_closes.is_empty());
            assert_eq!(a.late_closed_by_host_first, u64::from(host_first));
            for (row, tally) in &a.rows {
                assert_eq!(tally.records, tally.ended_right, "{row:?}");
            }
            assert_eq!(a.rows[&FeedRow::ExtraToday].records, a.unsettled);
            assert!(a.rows[&FeedRow::Forgotten].records > 0);
            assert!(a.rows[&FeedRow::ExtraDueDay].records > 0);
        }
    }

    #[test]
    fn a_transaction_paid_twice_missing_or_late_for_its_cycle_is_a_mismatch() {
        let c = case();
        let t = &c.fleet.terminals[0];
        let forgot = t
            .closes
            .iter()
            .position(|c| c.behaviour == Behaviour::ForgotToClose)
            .unwrap();
        let on_time = t
            .closes
            .iter()
            .position(|c| c.behaviour == Behaviour::OnTime)
            .unwrap();

        // The host closes an on-time line too: it is paid twice.
        let (batches, host, mut host_lines, unsettled) = service(&c, false);
        host_lines.push(lines(&t.closes[on_time].body)[0].clone());
        let mut host = host;
        host["line_count"] = json!(host_lines.len());
        let a = run(&c, &batches, &host, host_lines, unsettled);
        assert!(a.failed_closes.contains(&on_time));
        assert!(
            a.mismatches
                .iter()
                .any(|m| m.contains("must end booked once")),
            "{:#?}",
            a.mismatches
        );

        // A forgotten line the host did not close: paid nowhere.
        let (batches, host, mut host_lines, unsettled) = service(&c, false);
        let forgotten: Vec<Value> = lines(&t.closes[forgot].body)
            .iter()
            .map(|l| l["rrn"].clone())
            .collect();
        let gone = host_lines
            .iter()
            .find(|l| forgotten.contains(&l["rrn"]))
            .map(|l| l["rrn"].clone())
            .unwrap();
        host_lines.retain(|l| l["rrn"] != gone);
        let mut host = host;
        host["line_count"] = json!(host_lines.len());
        let a = run(&c, &batches, &host, host_lines, unsettled);
        assert!(a.failed_closes.contains(&forgot));
        assert!(
            a.mismatches.iter().any(|m| m.contains("is in nothing")),
            "{:#?}",
            a.mismatches
        );

        // The host batch booked in a later cycle: not on time.
        let (batches, mut host, host_lines, unsettled) = service(&c, false);
        host["cycle_date"] = json!("2099-01-01");
        let a = run(&c, &batches, &host, host_lines, unsettled);
        assert!(a.failed_closes.contains(&forgot));
        assert_eq!(a.rows[&FeedRow::ExtraDueDay].ended_right, 0);

        // Today's extra closed by the host, not left unsettled.
        let (batches, host, mut host_lines, _) = service(&c, false);
        host_lines.extend(
            t.extras
                .iter()
                .filter(|e| !e.due_day)
                .map(|e| e.line.clone()),
        );
        let mut host = host;
        host["line_count"] = json!(host_lines.len());
        let a = run(&c, &batches, &host, host_lines, BTreeSet::new());
        assert_eq!(a.rows[&FeedRow::ExtraToday].ended_right, 0);
        assert_eq!(a.unsettled, 0);
    }

    #[test]
    fn lines_listed_as_settled_must_name_the_host_batch_that_holds_them() {
        let c = case();
        let (mut batches, host, host_lines, unsettled) = service(&c, true);
        let late = c.fleet.terminals[0]
            .closes
            .iter()
            .position(|c| c.behaviour == Behaviour::Late)
            .unwrap();
        batches[late]["already_settled_lines"][0]["batch_id"] = json!("host-2");
        let a = run(&c, &batches, &host, host_lines, unsettled);
        assert_eq!(a.mismatches.len(), 1, "{:#?}", a.mismatches);
        assert!(a.mismatches[0].contains("host-2"));
        // With auto-close off, a batch listing lines settled by the host is wrong.
        let (batches, host, host_lines, unsettled) = service(&c, true);
        let found = Found {
            batches: batches
                .iter()
                .map(|b| (!b.is_null()).then_some(b))
                .collect(),
            host: vec![(&host, host_lines)],
            unsettled,
        };
        let t = &c.fleet.terminals[0];
        let a = account(&c.fleet.merchants[t.merchant], t, &found, false, c.now);
        assert!(a.failed_closes.contains(&late));
    }

    #[test]
    fn settled_sales_count_only_the_listed_sales() {
        let body = json!({"transactions": [
            {"type": "sale", "rrn": "1", "amount": "1.00"},
            {"type": "sale", "rrn": "2", "amount": "2.50"},
            {"type": "refund", "rrn": "3", "amount": "4.00"}]});
        let batch = json!({"already_settled_lines": [
            {"rrn": "2", "batch_id": "h"}, {"rrn": "3", "batch_id": "h"}]});
        assert_eq!(settled_sales(&body, &batch, Currency::Usd), (1, 250));
        assert_eq!(settled_sales(&body, &json!({}), Currency::Usd), (0, 0));
    }
}
