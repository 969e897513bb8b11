//! The fleet: merchants in several time zones and currencies, their terminals, and
//! the closes each terminal will make, drawn from a seeded generator.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use chrono_tz::Tz;
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};

use settlement_domain::money::{format_amount, Currency};

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

/// Hours of grace every simulated merchant gets.
pub const GRACE_HOURS: i64 = 72;
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
}

impl Behaviour {
    pub const ALL: [Behaviour; 7] = [
        Behaviour::OnTime,
        Behaviour::Late,
        Behaviour::PastGrace,
        Behaviour::OutOfBalance,
        Behaviour::LostResponse,
        Behaviour::Duplicate,
        Behaviour::SkipNumber,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Behaviour::OnTime => "on_time",
            Behaviour::Late => "late",
            Behaviour::PastGrace => "past_grace",
            Behaviour::OutOfBalance => "out_of_balance",
            Behaviour::LostResponse => "lost_response",
            Behaviour::Duplicate => "duplicate",
            Behaviour::SkipNumber => "skip_number",
        }
    }

    /// The status the service must give the batch in the end.
    pub fn expected_status(self) -> &'static str {
        match self {
            Behaviour::Late => "accepted_late",
            Behaviour::PastGrace => "rejected_outside_grace",
            _ => "accepted",
        }
    }

    /// How long before now the terminal's lines were captured.
    fn age(self) -> Duration {
        match self {
            Behaviour::Late => Duration::hours(30),
            Behaviour::PastGrace => Duration::days(5),
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

pub struct Merchant {
    pub id: String,
    pub zone: &'static str,
    pub currency: Currency,
}

pub struct Terminal {
    pub id: String,
    pub merchant: usize,
    pub closes: Vec<PlannedClose>,
}

/// One close a terminal makes: its behaviour, number and body.
pub struct PlannedClose {
    pub behaviour: Behaviour,
    pub number: u32,
    /// A number skipped just before this one.
    pub skipped: Option<u32>,
    pub body: Value,
    pub lines: usize,
    pub sales: i64,
    pub sale_minor: i64,
    pub currency: Currency,
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
                }
            })
            .collect();
        let mut serial = 0u64;
        let terminals = (0..plan.terminals)
            .map(|i| {
                let merchant = i % merchants.len();
                let currency = merchants[merchant].currency;
                let mut number = 0;
                let closes = (0..plan.closes_per_terminal)
                    .map(|_| {
                        let behaviour = plan.shares.draw(rng);
                        // A skip shows only after a close below it: the first close
                        // of a terminal skips nothing the service could know of.
                        let skipped =
                            (behaviour == Behaviour::SkipNumber && number > 0).then(|| {
                                number += 1;
                                number
                            });
                        number += 1;
                        let lines = log_uniform(rng, plan.min_lines, plan.max_lines);
                        let batch = generate_batch(
                            rng,
                            number,
                            lines,
                            currency,
                            now - behaviour.age(),
                            &mut serial,
                        );
                        PlannedClose {
                            behaviour,
                            number,
                            skipped,
                            lines,
                            sales: batch.sales,
                            sale_minor: batch.sale_minor,
                            body: batch.body,
                            currency,
                        }
                    })
                    .collect();
                Terminal {
                    id: format!("{}-t{i}", merchants[merchant].id),
                    merchant,
                    closes,
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

fn generate_batch(
    rng: &mut StdRng,
    number: u32,
    lines: usize,
    currency: Currency,
    captured_from: DateTime<Utc>,
    serial: &mut u64,
) -> Batch {
    let money = |minor: i64| format_amount(minor, currency);
    let mut out = Vec::with_capacity(lines);
    let (mut sales, mut sale_minor, mut refunds, mut refund_minor, mut voids, mut void_minor) =
        (0i64, 0i64, 0i64, 0i64, 0i64, 0i64);
    let mut voidable: Vec<(String, i64)> = Vec::new();
    for i in 0..lines {
        *serial += 1;
        let stan = format!("{:06}", i + 1);
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
            "stan": stan, "rrn": format!("{:012}", *serial % 1_000_000_000_000),
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
            refunds += 1;
            refund_minor += amount;
        } else {
            let amount = log_uniform(rng, 100, 80_000) as i64;
            line["type"] = json!("sale");
            line["amount"] = json!(money(amount));
            line["auth_code"] = json!(format!("{:06}", *serial % 1_000_000));
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

    #[test]
    fn generated_batches_balance_and_never_void_twice() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut serial = 0;
        for lines in [1, 3, 50, 700] {
            let b = generate_batch(&mut rng, 1, lines, Currency::Jpy, Utc::now(), &mut serial);
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
        }
    }
}
