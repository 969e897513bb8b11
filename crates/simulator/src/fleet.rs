//! The fleet: merchants in several time zones and currencies, their terminals, and
//! the closes each terminal will make, drawn from a seeded generator.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Days, Duration, NaiveDate, NaiveTime, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};

use settlement_domain::money::{format_amount, parse_amount, Currency};

/// Lines of a batch are captured over at most this long (nine minutes), ending
/// before the close is sent.
const CAPTURE_WINDOW_MS: i64 = 9 * 60 * 1000;

/// Time zones and the currency their merchants settle in.
pub const ZONES: [(&str, Currency); 6] = [
    ("America/New_York", Currency::Usd),
    ("Europe/Berlin", Currency::Eur),
    ("Asia/Tokyo", Currency::Jpy),
    ("Australia/Sydney", Currency::Aud),
    ("America/Los_Angeles", Currency::Usd),
    ("UTC", Currency::Usd),
];

/// Most lines a `duplicate_lines` close repeats from an earlier batch.
pub const MAX_REPEATED_LINES: usize = 3;

/// Hours of grace every simulated merchant gets.
pub const GRACE_HOURS: i64 = 72;
/// How long after a business day's cutoff the host closes what its terminals forgot
/// (the merchants' `auto_close_delay_minutes`): at once, so the run sees it.
pub const AUTO_CLOSE_DELAY_MINUTES: i64 = 0;
/// Lines of a terminal that closes late, or forgets to close, were captured this long
/// before the run: on the business day before the run's, whose cutoff has passed
/// (the cutoff is `CUTOFF_AHEAD_HOURS` after the run starts, so 24 - 6 = 18 hours
/// before it) and whose grace deadline has not.
pub const PREVIOUS_DAY_AGE_HOURS: i64 = 30;
/// Most sales a terminal's host authorizes that the terminal never closes.
pub const MAX_EXTRAS: usize = 3;
/// The merchants' cutoff is this long after the run starts, in their own zone: every
/// on-time close of the run falls inside one business day.
pub const CUTOFF_AHEAD_HOURS: i64 = 6;

/// How a terminal behaves at one close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Behaviour {
    /// Closes before the cutoff.
    OnTime,
    /// Forgot, and closes the previous day's batch late, inside the grace window.
    Late,
    /// Forgot for days: the close arrives after the grace window and is rejected.
    PastGrace,
    /// Sends totals that disagree with the lines, then the corrected close.
    OutOfBalance,
    /// Loses the answer and sends the same request again with the same key.
    LostResponse,
    /// Sends the same batch again under a new key.
    Duplicate,
    /// Skips a batch number (a close that never arrives).
    SkipNumber,
    /// Closes a batch past the grace window (held for operations), then the merchant
    /// re-enters its lines as the next batch number: refused whole as duplicate
    /// transactions of the held batch.
    Reenter,
    /// Repeats some sales or refunds of an earlier booked batch in a new batch:
    /// refused whole as duplicate transactions, then closed again without them.
    DuplicateLines,
    /// Captures sales on the previous business day and never closes that batch: the
    /// host closes them on the terminal's behalf (auto-close), paid on time.
    ForgotToClose,
}

impl Behaviour {
    /// Every behaviour, in the order the summary lists them.
    pub const ALL: [Behaviour; 10] = [
        Behaviour::OnTime,
        Behaviour::Late,
        Behaviour::PastGrace,
        Behaviour::OutOfBalance,
        Behaviour::LostResponse,
        Behaviour::Duplicate,
        Behaviour::SkipNumber,
        Behaviour::Reenter,
        Behaviour::DuplicateLines,
        Behaviour::ForgotToClose,
    ];

    /// The name `--shares` and the summary use.
    pub fn name(self) -> &'static str {
        match self {
            Behaviour::OnTime => "on_time",
            Behaviour::Late => "late",
            Behaviour::PastGrace => "past_grace",
            Behaviour::OutOfBalance => "out_of_balance",
            Behaviour::LostResponse => "lost_response",
            Behaviour::Duplicate => "duplicate",
            Behaviour::SkipNumber => "skip_number",
            Behaviour::Reenter => "reenter",
            Behaviour::DuplicateLines => "duplicate_lines",
            Behaviour::ForgotToClose => "forgot_to_close",
        }
    }

    /// The status the service must give the stored batch in the end (for
    /// `forgot_to_close`, the batch the host closes).
    pub fn expected_status(self) -> &'static str {
        match self {
            Behaviour::Late => "accepted_late",
            Behaviour::ForgotToClose => "auto_closed",
            Behaviour::PastGrace | Behaviour::Reenter => "rejected_outside_grace",
            _ => "accepted",
        }
    }

    /// True when the stored batch is booked (to be paid), false when it is held for
    /// operations.
    pub fn books(self) -> bool {
        !matches!(self, Behaviour::PastGrace | Behaviour::Reenter)
    }

    /// True when the terminal sends the close; a `forgot_to_close` batch is never
    /// sent (and takes no batch number).
    pub fn closes(self) -> bool {
        self != Behaviour::ForgotToClose
    }

    /// True when the batch is certainly booked under the terminal's own number, so
    /// a later close may repeat its lines and be refused for them. A late batch may
    /// lose its lines to an auto-close that runs before it arrives (the service's
    /// scheduler does not wait for the fleet); a forgotten one is never sent.
    pub fn booked_by_terminal(self) -> bool {
        self.books() && !matches!(self, Behaviour::Late | Behaviour::ForgotToClose)
    }

    /// How the close must end, as the summary shows it.
    pub fn must_end_as(self) -> &'static str {
        match self {
            Behaviour::Reenter => "held; re-entry refused",
            Behaviour::DuplicateLines => "refused, then accepted",
            Behaviour::Late => "accepted_late, paid once",
            Behaviour::ForgotToClose => "auto_closed on time",
            _ => self.expected_status(),
        }
    }

    /// How long before now the terminal's lines were captured.
    fn age(self) -> Duration {
        match self {
            Behaviour::Late | Behaviour::ForgotToClose => Duration::hours(PREVIOUS_DAY_AGE_HOURS),
            Behaviour::PastGrace | Behaviour::Reenter => Duration::days(5),
            _ => Duration::minutes(10),
        }
    }
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Shares of the behaviours, e.g. `on_time=70,late=8,...`; unnamed ones get 0.
#[derive(Debug, Clone)]
pub struct Shares(pub BTreeMap<Behaviour, u32>);

impl FromStr for Shares {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut shares = BTreeMap::new();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}`: expected name=weight"))?;
            let behaviour = Behaviour::ALL
                .into_iter()
                .find(|b| b.name() == name.trim())
                .ok_or_else(|| {
                    let names: Vec<&str> = Behaviour::ALL.iter().map(|b| b.name()).collect();
                    format!("`{name}`: behaviours are {}", names.join(", "))
                })?;
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| format!("`{part}`: the weight must be a whole number"))?;
            shares.insert(behaviour, weight);
        }
        if shares.values().sum::<u32>() == 0 {
            return Err("at least one behaviour needs a weight above 0".into());
        }
        Ok(Shares(shares))
    }
}

impl Shares {
    fn draw(&self, rng: &mut StdRng) -> Behaviour {
        let total: u32 = self.0.values().sum();
        let mut pick = rng.random_range(0..total);
        for (behaviour, weight) in &self.0 {
            if pick < *weight {
                return *behaviour;
            }
            pick -= weight;
        }
        unreachable!("the draw is below the total")
    }
}

/// A simulated merchant.
pub struct Merchant {
    pub id: String,
    pub zone: &'static str,
    pub currency: Currency,
    /// Local cutoff, `HH:MM`.
    pub cutoff: String,
}

impl Merchant {
    /// The business date of a transaction at `at`: its local date if at or before
    /// that date's cutoff, else the next date.
    pub fn business_date_of(&self, at: DateTime<Utc>) -> NaiveDate {
        business_date_of(self.zone, &self.cutoff, at)
    }

    /// True when the host closes the unsettled transactions of `date` at `now`: the
    /// day's cutoff plus the delay has passed, and its grace deadline has not.
    pub fn auto_close_due(&self, date: NaiveDate, now: DateTime<Utc>) -> bool {
        let cutoff = cutoff_instant(self.zone, &self.cutoff, date);
        cutoff + Duration::minutes(AUTO_CLOSE_DELAY_MINUTES) <= now
            && now <= cutoff + Duration::hours(GRACE_HOURS)
    }
}

/// A simulated terminal, the closes it makes, in order, and the sales its host
/// authorizes that it never closes.
pub struct Terminal {
    pub id: String,
    pub merchant: usize,
    pub closes: Vec<PlannedClose>,
    pub extras: Vec<Extra>,
}

/// A sale the host authorized that the terminal never closes: on the previous
/// business day (due for auto-close) or on the run's own (still to be closed, so
/// left unsettled).
pub struct Extra {
    /// The line as a close would carry it.
    pub line: Value,
    pub amount_minor: i64,
    pub due_day: bool,
}

impl Terminal {
    /// The batch numbers the merchant's status must report this terminal skipped:
    /// those it skipped, and the number of each re-entry with a later close after it.
    /// The service stores nothing for a refused close and reads gaps from the stored
    /// batches, so a re-entry's number is a gap once a batch above it is stored, and
    /// no gap while it is the terminal's last number.
    pub fn expected_skipped_numbers(&self) -> BTreeSet<u32> {
        // A refused re-entry's number shows as skipped only once a batch above it is
        // stored: a later close that is sent (a forgotten one never is; the host's
        // batch of its lines has no number).
        let last_sent = self
            .closes
            .iter()
            .rposition(|c| c.behaviour != Behaviour::ForgotToClose);
        self.closes
            .iter()
            .enumerate()
            .flat_map(|(i, c)| {
                c.skipped.into_iter().chain(
                    c.reentered_as
                        .filter(|_| last_sent.is_some_and(|last| i < last)),
                )
            })
            .collect()
    }
}

/// One close a terminal makes: its behaviour, number and body. The figures describe
/// the batch the service must store under `number` in the end.
pub struct PlannedClose {
    pub behaviour: Behaviour,
    /// The batch number; a `forgot_to_close` batch is never sent, so its number is
    /// the one the terminal's next close takes.
    pub number: u32,
    /// A number skipped just before this one.
    pub skipped: Option<u32>,
    /// For `reenter`: the next number, under which the held batch's lines are sent
    /// again. The service refuses that close whole, so no batch is ever stored under
    /// it; the terminal's next close takes the number after it.
    pub reentered_as: Option<u32>,
    /// For `duplicate_lines`: the close first sent, with lines of an earlier batch.
    pub repeats: Option<Repeats>,
    pub body: Value,
    pub lines: usize,
    pub sales: i64,
    pub sale_minor: i64,
    pub currency: Currency,
}

/// The first close of a `duplicate_lines` batch: its own lines and some sales or
/// refunds of an earlier booked batch of the terminal.
pub struct Repeats {
    /// Index of the earlier close, among the terminal's closes.
    pub from: usize,
    /// The close as first sent (same batch number, totals that include the repeats).
    pub body: Value,
    /// `(stan, rrn)` of the repeated lines, as this close numbers them.
    pub lines: Vec<(String, String)>,
}

/// The whole fleet of a run.
pub struct Fleet {
    pub merchants: Vec<Merchant>,
    pub terminals: Vec<Terminal>,
}

/// Sizes and shapes of a run.
pub struct Plan<'a> {
    pub run_id: &'a str,
    pub merchants: usize,
    pub terminals: usize,
    pub closes_per_terminal: u32,
    pub min_lines: usize,
    pub max_lines: usize,
    pub shares: &'a Shares,
}

impl Fleet {
    pub fn generate(plan: &Plan<'_>, rng: &mut StdRng, now: DateTime<Utc>) -> Fleet {
        let merchants: Vec<Merchant> = (0..plan.merchants)
            .map(|i| {
                let (zone, currency) = ZONES[i % ZONES.len()];
                Merchant {
                    id: format!("sim-{}-m{i}", plan.run_id),
                    zone,
                    currency,
                    cutoff: cutoff_for(zone, now),
                }
            })
            .collect();
        let mut serial = 0u64;
        let terminals = (0..plan.terminals)
            .map(|i| {
                let merchant = i % merchants.len();
                let currency = merchants[merchant].currency;
                let mut number = 0;
                // The terminal's trace number counter runs on across its batches, so
                // the transactions of one day never share a STAN (the host closes a
                // day's unsettled ones as one batch).
                let mut stan = 1u32;
                let mut closes: Vec<PlannedClose> = Vec::new();
                for _ in 0..plan.closes_per_terminal {
                    let mut behaviour = plan.shares.draw(rng);
                    let booked: Vec<usize> = (0..closes.len())
                        .filter(|&c| closes[c].behaviour.booked_by_terminal())
                        .collect();
                    // Lines can be repeated only from a batch the terminal booked
                    // before: without one, the close is an ordinary one on time.
                    if behaviour == Behaviour::DuplicateLines && booked.is_empty() {
                        behaviour = Behaviour::OnTime;
                    }
                    // A skip shows only after a close below it: the first close
                    // of a terminal skips nothing the service could know of.
                    let skipped = (behaviour == Behaviour::SkipNumber && number > 0).then(|| {
                        number += 1;
                        number
                    });
                    // A batch never closed takes no number: the next close has it.
                    let this = number + 1;
                    if behaviour.closes() {
                        number = this;
                    }
                    // The merchant types the held lines in as the terminal's next
                    // batch, so the terminal's counter moves past it, and the next
                    // close takes the number after. The status then reports the
                    // re-entry's number skipped (see `expected_skipped_numbers`).
                    // Reusing the number instead would store a batch under it and so
                    // resolve the re-entry's exception as "closed afterwards", hiding
                    // from operations a merchant who tried to be paid twice.
                    let reentered_as = (behaviour == Behaviour::Reenter).then_some(number + 1);
                    let lines = log_uniform(rng, plan.min_lines, plan.max_lines);
                    let batch = generate_batch(
                        rng,
                        this,
                        lines,
                        currency,
                        now - behaviour.age(),
                        stan,
                        &mut serial,
                    );
                    stan = next_stan(stan, lines);
                    let repeats = (behaviour == Behaviour::DuplicateLines).then(|| {
                        let from = booked[rng.random_range(0..booked.len())];
                        let r = with_repeats(rng, from, &closes[from].body, &batch.body, currency);
                        stan = next_stan(stan, r.lines.len());
                        r
                    });
                    closes.push(PlannedClose {
                        behaviour,
                        number: this,
                        skipped,
                        reentered_as,
                        repeats,
                        lines,
                        sales: batch.sales,
                        sale_minor: batch.sale_minor,
                        body: batch.body,
                        currency,
                    });
                    if let Some(n) = reentered_as {
                        number = n;
                    }
                }
                let extras = (0..rng.random_range(1..=MAX_EXTRAS))
                    .map(|k| {
                        let due_day = rng.random_bool(0.5);
                        let at = if due_day {
                            now - Duration::hours(PREVIOUS_DAY_AGE_HOURS)
                        } else {
                            now - Duration::minutes(10)
                        } + Duration::seconds(i64::try_from(k).unwrap_or(0));
                        serial += 1;
                        let amount_minor = log_uniform(rng, 100, 80_000) as i64;
                        let line = json!({
                            "stan": stan_text(stan), "rrn": rrn_text(serial), "type": "sale",
                            "amount": format_amount(amount_minor, currency),
                            "captured_at": at.to_rfc3339_opts(SecondsFormat::Millis, true),
                            "card_brand": "visa", "masked_pan": BRANDS[0].1,
                            "auth_code": auth_code(serial)
                        });
                        stan = next_stan(stan, 1);
                        Extra {
                            line,
                            amount_minor,
                            due_day,
                        }
                    })
                    .collect();
                Terminal {
                    id: format!("{}-t{i}", merchants[merchant].id),
                    merchant,
                    closes,
                    extras,
                }
            })
            .collect();
        Fleet {
            merchants,
            terminals,
        }
    }
}

/// The local cutoff of a merchant: `CUTOFF_AHEAD_HOURS` after `now` in its zone.
pub fn cutoff_for(zone: &str, now: DateTime<Utc>) -> String {
    let tz: Tz = zone.parse().expect("a known zone");
    (now + Duration::hours(CUTOFF_AHEAD_HOURS))
        .with_timezone(&tz)
        .format("%H:%M")
        .to_string()
}

/// The instant of a merchant's local cutoff `HH:MM` on `date` in `zone`: in a DST gap
/// the first instant after it, in an overlap the earlier one (as the service has it).
pub fn cutoff_instant(zone: &str, cutoff: &str, date: NaiveDate) -> DateTime<Utc> {
    let tz: Tz = zone.parse().expect("a known zone");
    let time = NaiveTime::parse_from_str(cutoff, "%H:%M").expect("a cutoff HH:MM");
    let local = date.and_time(time);
    (0..=180)
        .find_map(|m| {
            tz.from_local_datetime(&(local + Duration::minutes(m)))
                .earliest()
        })
        .expect("a local time within three hours of any instant exists")
        .with_timezone(&Utc)
}

/// The business date of a transaction at `at` for a merchant in `zone` with the
/// local cutoff `cutoff`: the local date if at or before that date's cutoff, else
/// the next date.
pub fn business_date_of(zone: &str, cutoff: &str, at: DateTime<Utc>) -> NaiveDate {
    let tz: Tz = zone.parse().expect("a known zone");
    let date = at.with_timezone(&tz).date_naive();
    if at <= cutoff_instant(zone, cutoff, date) {
        date
    } else {
        date.checked_add_days(Days::new(1))
            .expect("a date before the end of time")
    }
}

/// When a generated line was captured.
pub fn captured_at(line: &Value) -> DateTime<Utc> {
    line["captured_at"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .expect("a generated line has a capture time")
}

/// A trace number as a terminal writes it: six digits, 000001 to 999999.
fn stan_text(stan: u32) -> String {
    format!("{stan:06}")
}

/// The trace number `count` after `stan`; the counter wraps from 999999 to 1.
fn next_stan(stan: u32, count: usize) -> u32 {
    let count = u32::try_from(count % 999_999).unwrap_or(0);
    (stan - 1 + count) % 999_999 + 1
}

/// The RRN of the fleet's `serial`th transaction: twelve digits.
fn rrn_text(serial: u64) -> String {
    format!("{:012}", serial % 1_000_000_000_000)
}

/// The authorization code the host gave the fleet's `serial`th transaction: six
/// letters or digits.
pub fn auth_code(serial: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut n = serial.wrapping_mul(2_654_435_761) % 36u64.pow(6);
    let mut code = [b'0'; 6];
    for c in code.iter_mut().rev() {
        *c = DIGITS[usize::try_from(n % 36).unwrap_or(0)];
        n /= 36;
    }
    String::from_utf8_lossy(&code).into_owned()
}

/// The `(stan, rrn)` of the lines of a close that present their RRN (sales and
/// refunds; voids present nothing).
pub fn presented_lines(body: &Value) -> Vec<(String, String)> {
    body["transactions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["type"] != "void")
        .map(|l| {
            let field = |f: &str| l[f].as_str().unwrap_or_default().to_owned();
            (field("stan"), field("rrn"))
        })
        .collect()
}

/// `own` with 1 to `MAX_REPEATED_LINES` sales or refunds of the earlier batch
/// `source` appended. They keep their RRN, amount and capture time, and take the
/// trace numbers (STANs) after this batch's last line, as the terminal's counter
/// runs on; the totals count them, so the close balances and is refused only for
/// the repeats.
fn with_repeats(
    rng: &mut StdRng,
    from: usize,
    source: &Value,
    own: &Value,
    currency: Currency,
) -> Repeats {
    let presented: Vec<&Value> = source["transactions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["type"] != "void")
        .collect();
    assert!(
        !presented.is_empty(),
        "a generated batch starts with a sale or refund"
    );
    let count = rng
        .random_range(1..=MAX_REPEATED_LINES)
        .min(presented.len());
    let mut pool: Vec<usize> = (0..presented.len()).collect();
    let mut picked: Vec<usize> = (0..count)
        .map(|_| pool.swap_remove(rng.random_range(0..pool.len())))
        .collect();
    picked.sort_unstable();
    let mut body = own.clone();
    let mut lines = Vec::with_capacity(count);
    let last: u32 = own["transactions"]
        .as_array()
        .and_then(|tx| tx.last())
        .and_then(|l| l["stan"].as_str())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if let Some(tx) = body["transactions"].as_array_mut() {
        for (k, i) in picked.into_iter().enumerate() {
            let mut line = presented[i].clone();
            let stan = stan_text(next_stan(last.max(1), k + 1));
            line["stan"] = json!(stan);
            lines.push((stan, line["rrn"].as_str().unwrap_or_default().to_owned()));
            tx.push(line);
        }
    }
    body["totals"] = totals_of(&body["transactions"], currency);
    Repeats { from, body, lines }
}

/// The control totals of a close's lines.
fn totals_of(lines: &Value, currency: Currency) -> Value {
    let mut sums: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for line in lines.as_array().into_iter().flatten() {
        let amount = line["amount"]
            .as_str()
            .and_then(|a| parse_amount(a, currency).ok())
            .expect("a generated line has a valid amount");
        let sum = sums
            .entry(line["type"].as_str().unwrap_or_default())
            .or_default();
        sum.0 += 1;
        sum.1 += amount;
    }
    let of = |t: &str| sums.get(t).copied().unwrap_or_default();
    let money = |minor: i64| format_amount(minor, currency);
    let ((sales, sale), (refunds, refund), (voids, void)) = (of("sale"), of("refund"), of("void"));
    json!({
        "sale_count": sales, "sale_amount": money(sale),
        "refund_count": refunds, "refund_amount": money(refund),
        "void_count": voids, "void_amount": money(void)
    })
}

fn log_uniform(rng: &mut StdRng, min: usize, max: usize) -> usize {
    let (lo, hi) = ((min.max(1)) as f64, (max.max(min).max(1)) as f64);
    let x = rng.random_range(lo.ln()..=hi.ln()).exp().round();
    // Truncation is intended: x lies within [min, max].
    (x as usize).clamp(min.max(1), max.max(min).max(1))
}

struct Batch {
    body: Value,
    sales: i64,
    sale_minor: i64,
}

const BRANDS: [(&str, &str, u32); 4] = [
    ("visa", "411111******1111", 50),
    ("mastercard", "550000******0004", 35),
    ("amex", "378282*****0005", 10),
    ("discover", "601111******1117", 5),
];

/// A balanced batch of `lines` lines captured from `captured_from` on, its trace
/// numbers from `first_stan` on. Every sale and refund carries the host's
/// authorization code.
fn generate_batch(
    rng: &mut StdRng,
    number: u32,
    lines: usize,
    currency: Currency,
    captured_from: DateTime<Utc>,
    first_stan: u32,
    serial: &mut u64,
) -> Batch {
    let money = |minor: i64| format_amount(minor, currency);
    let mut out = Vec::with_capacity(lines);
    let (mut sales, mut sale_minor, mut refunds, mut refund_minor, mut voids, mut void_minor) =
        (0i64, 0i64, 0i64, 0i64, 0i64, 0i64);
    let mut voidable: Vec<(String, i64)> = Vec::new();
    for i in 0..lines {
        *serial += 1;
        let stan = stan_text(next_stan(first_stan, i));
        // Lines are spread over the capture window, a second apart at most.
        let step_ms = (CAPTURE_WINDOW_MS / i64::try_from(lines).unwrap_or(1)).clamp(1, 1000);
        let at = (captured_from + Duration::milliseconds(step_ms * i64::try_from(i).unwrap_or(0)))
            .to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut pick = rng.random_range(0..100);
        let (brand, masked) = BRANDS
            .iter()
            .find(|(_, _, w)| {
                let hit = pick < *w;
                pick = pick.saturating_sub(*w);
                hit
            })
            .map_or(("visa", BRANDS[0].1), |(b, m, _)| (*b, *m));
        let roll = rng.random_range(0..100);
        let mut line = json!({
            "stan": stan, "rrn": rrn_text(*serial),
            "captured_at": at, "card_brand": brand, "masked_pan": masked
        });
        if roll < 7 && !voidable.is_empty() {
            let at = rng.random_range(0..voidable.len());
            let (original, amount) = voidable.swap_remove(at);
            line["type"] = json!("void");
            line["amount"] = json!(money(amount));
            line["original_stan"] = json!(original);
            voids += 1;
            void_minor += amount;
        } else if roll < 12 {
            let amount = rng.random_range(100..20_000);
            line["type"] = json!("refund");
            line["amount"] = json!(money(amount));
            line["auth_code"] = json!(auth_code(*serial));
            refunds += 1;
            refund_minor += amount;
        } else {
            let amount = log_uniform(rng, 100, 80_000) as i64;
            line["type"] = json!("sale");
            line["amount"] = json!(money(amount));
            line["auth_code"] = json!(auth_code(*serial));
            sales += 1;
            sale_minor += amount;
            voidable.push((stan, amount));
        }
        out.push(line);
    }
    Batch {
        body: json!({
            "batch_number": number,
            "currency": currency.code(),
            "totals": {
                "sale_count": sales, "sale_amount": money(sale_minor),
                "refund_count": refunds, "refund_amount": money(refund_minor),
                "void_count": voids, "void_amount": money(void_minor)
            },
            "transactions": out
        }),
        sales,
        sale_minor,
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn shares_parse_and_refuse_unknown_behaviours() {
        let s: Shares = "on_time=3,late=1".parse().unwrap();
        assert_eq!(s.0[&Behaviour::OnTime], 3);
        assert!("sometimes=1".parse::<Shares>().is_err());
        assert!("on_time=0".parse::<Shares>().is_err());
    }

    fn fleet(shares: &str, terminals: usize, closes: u32, seed: u64) -> Fleet {
        let shares: Shares = shares.parse().unwrap();
        Fleet::generate(
            &Plan {
                run_id: "test",
                merchants: 2,
                terminals,
                closes_per_terminal: closes,
                min_lines: 1,
                max_lines: 40,
                shares: &shares,
            },
            &mut StdRng::seed_from_u64(seed),
            Utc::now(),
        )
    }

    #[test]
    fn every_behaviour_is_named_in_shares() {
        let all: Vec<String> = Behaviour::ALL.iter().map(|b| format!("{b}=1")).collect();
        let s: Shares = all.join(",").parse().unwrap();
        assert_eq!(s.0.len(), Behaviour::ALL.len());
        assert_eq!(s.0[&Behaviour::Reenter], 1);
        assert_eq!(s.0[&Behaviour::DuplicateLines], 1);
    }

    #[test]
    fn a_reentry_takes_the_next_number_and_shows_as_skipped_once_a_close_follows() {
        let f = fleet("reenter=1", 1, 3, 1);
        let t = &f.terminals[0];
        let numbers: Vec<(u32, Option<u32>)> = t
            .closes
            .iter()
            .map(|c| (c.number, c.reentered_as))
            .collect();
        assert_eq!(numbers, [(1, Some(2)), (3, Some(4)), (5, Some(6))]);
        // The last re-entry has no batch above it: the service sees no gap there.
        assert_eq!(t.expected_skipped_numbers(), BTreeSet::from([2, 4]));
        for c in &t.closes {
            assert_eq!(c.behaviour.expected_status(), "rejected_outside_grace");
            assert!(!c.behaviour.books());
        }
    }

    #[test]
    fn skips_and_reentries_add_up_to_the_numbers_never_stored() {
        for seed in 0..40 {
            let f = fleet(
                "on_time=1,skip_number=1,reenter=1,forgot_to_close=1",
                4,
                6,
                seed,
            );
            for t in &f.terminals {
                // A forgotten close is never sent: no batch holds its number.
                let sent = || {
                    t.closes
                        .iter()
                        .filter(|c| c.behaviour != Behaviour::ForgotToClose)
                };
                let stored: BTreeSet<u32> = sent().map(|c| c.number).collect();
                let Some(top) = sent().map(|c| c.number).max() else {
                    assert!(t.expected_skipped_numbers().is_empty());
                    continue;
                };
                let gaps: BTreeSet<u32> = (1..=top).filter(|n| !stored.contains(n)).collect();
                // A first close that "skips" has nothing below it, so numbering may
                // start at 1 either way; every number below the last stored one that
                // holds no batch is reported.
                assert_eq!(t.expected_skipped_numbers(), gaps, "seed {seed}");
            }
        }
    }

    #[test]
    fn repeated_lines_come_from_an_earlier_booked_batch_and_are_paid_once() {
        let mut seen = 0;
        for seed in 0..10 {
            let f = fleet("past_grace=1,on_time=1,duplicate_lines=3", 6, 4, seed);
            for t in &f.terminals {
                assert_ne!(t.closes[0].behaviour, Behaviour::DuplicateLines);
                for (i, c) in t.closes.iter().enumerate() {
                    let Some(r) = &c.repeats else {
                        assert_ne!(c.behaviour, Behaviour::DuplicateLines);
                        continue;
                    };
                    seen += 1;
                    assert_eq!(c.behaviour, Behaviour::DuplicateLines);
                    assert!(r.from < i);
                    let source = &t.closes[r.from];
                    assert!(source.behaviour.books(), "{}", source.behaviour);
                    assert!((1..=MAX_REPEATED_LINES).contains(&r.lines.len()));
                    let source_rrns: Vec<String> = presented_lines(&source.body)
                        .into_iter()
                        .map(|l| l.1)
                        .collect();
                    let sent = presented_lines(&r.body);
                    let own = presented_lines(&c.body);
                    for line in &r.lines {
                        assert!(source_rrns.contains(&line.1));
                        assert!(sent.contains(line));
                        assert!(!own.iter().any(|o| o.1 == line.1));
                    }
                    // The close first sent is the batch's own lines and the repeats,
                    // balanced; the batch booked in the end counts its own sales only.
                    let all = r.body["transactions"].as_array().unwrap();
                    assert_eq!(all.len(), c.lines + r.lines.len());
                    assert_eq!(
                        r.body["totals"],
                        totals_of(&r.body["transactions"], c.currency)
                    );
                    assert_eq!(r.body["batch_number"], c.number);
                    assert_eq!(c.body["totals"]["sale_count"], c.sales);
                    let repeated_sales = all[c.lines..]
                        .iter()
                        .filter(|l| l["type"] == "sale")
                        .count();
                    assert_eq!(
                        r.body["totals"]["sale_count"].as_i64().unwrap(),
                        c.sales + i64::try_from(repeated_sales).unwrap()
                    );
                    let stans: BTreeSet<&str> =
                        all.iter().map(|l| l["stan"].as_str().unwrap()).collect();
                    assert_eq!(stans.len(), all.len(), "trace numbers are unique");
                }
            }
        }
        assert!(seen > 10, "only {seen} duplicate_lines closes were drawn");
    }

    #[test]
    fn generated_batches_balance_and_never_void_twice() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut serial = 0;
        for lines in [1, 3, 50, 700] {
            let b = generate_batch(
                &mut rng,
                1,
                lines,
                Currency::Jpy,
                Utc::now(),
                1,
                &mut serial,
            );
            let tx = b.body["transactions"].as_array().unwrap();
            assert_eq!(tx.len(), lines);
            let voided: Vec<&str> = tx
                .iter()
                .filter_map(|l| l["original_stan"].as_str())
                .collect();
            let mut unique = voided.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), voided.len());
            assert_eq!(b.body["totals"]["sale_count"], b.sales);
            assert_eq!(
                b.body["totals"],
                totals_of(&b.body["transactions"], Currency::Jpy)
            );
        }
    }
}
