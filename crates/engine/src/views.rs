//! Building the API's views (defined in the wire crate) from stored rows: the
//! [`FromRow`] trait, the pager, and the helpers every view shares.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use settlement_domain::business_days::expected_arrival;
use settlement_domain::lateness::BatchStatus;
use settlement_domain::money::{format_amount, Currency};
use settlement_domain::payout::{is_account_failure, PayoutStatus};
use settlement_i18n::{fmt_date, fmt_duration, fmt_instant, fmt_money, tr, Arg, Lang, Locale};
use settlement_store::batches::{BatchRow, LineRow};
use settlement_store::close_attempts::ReviewRequestRow;
use settlement_store::cycles::CycleRow;
use settlement_store::merchants::MerchantRow;
use settlement_store::payouts::PayoutRow;
use settlement_store::{holidays, payouts};
use settlement_wire::batches::{BatchView, LineView, ReviewRequestView, TotalsView};
use settlement_wire::money::{CycleView, PayoutView};
use settlement_wire::Page;

use crate::error::EngineError;
use crate::profile::{existing_merchant, profile_of};
pub use settlement_wire::close::{timestamp, BatchCloseRequest, TotalsRequest, TransactionRequest};

/// A view the API answers with, built from a stored row.
pub trait FromRow<R>: Sized {
    /// The view of a stored row.
    fn from_row(row: &R) -> Result<Self, EngineError>;
}

/// Parses a row's currency code, which the service itself wrote.
pub fn stored_currency(code: &str) -> Result<Currency, EngineError> {
    code.parse()
        .map_err(|_| EngineError::Internal(anyhow::anyhow!("stored currency {code:?} is unknown")))
}

/// What a merchant's sentences need: the language chosen for the answer, the
/// merchant's time zone, and the inputs of the one payout-arrival rule.
#[derive(Debug, Clone)]
pub struct Reader {
    pub locale: Locale,
    pub time_zone: Tz,
    delay_business_days: u32,
    holidays: Arc<BTreeSet<NaiveDate>>,
    local_today: NaiveDate,
    /// The payout holding each closed cycle's money: its arrival date and status
    /// ([`Reader::know_payouts`]).
    payouts: HashMap<Uuid, (NaiveDate, PayoutStatus)>,
}

impl Reader {
    /// The reader of `merchant`'s answers at `now`, in the language `lang` asked for
    /// (else the merchant's own): holidays are loaded from `since` (the oldest cycle
    /// date the answer shows), and at least from as far back as a cycle whose money
    /// can still be due.
    pub async fn of_merchant(
        conn: &mut PgConnection,
        merchant: &MerchantRow,
        lang: &Lang,
        now: DateTime<Utc>,
        since: Option<NaiveDate>,
    ) -> Result<Self, EngineError> {
        let profile = profile_of(merchant)?;
        let time_zone = profile.cutoff.time_zone;
        let local_today = now.with_timezone(&time_zone).date_naive();
        // Money of a cycle is due at most the delay in business days (plus the
        // weekends and holidays between) after it.
        let back = 7 + 2 * u64::from(profile.payout_delay_business_days);
        let due_since = local_today
            .checked_sub_days(Days::new(back))
            .unwrap_or(local_today);
        let from = since.map_or(due_since, |d| d.min(due_since));
        let holidays = holidays_since(conn, from).await?;
        Ok(Reader {
            locale: lang.choose(merchant.locale.parse().unwrap_or_default()),
            time_zone,
            delay_business_days: profile.payout_delay_business_days,
            holidays,
            local_today,
            payouts: HashMap::new(),
        })
    }

    /// The same reader writing in `locale` (a merchant's event or audit record beside
    /// an answer in the language its request asked for).
    pub fn in_locale(&self, locale: Locale) -> Reader {
        Reader {
            locale,
            ..self.clone()
        }
    }

    /// Learns which payout holds the money of each closed cycle named, so that a
    /// batch of one shows its payout's arrival date.
    pub async fn know_payouts(
        &mut self,
        conn: &mut PgConnection,
        cycle_ids: impl Iterator<Item = Uuid>,
    ) -> Result<(), EngineError> {
        let mut ids: Vec<Uuid> = cycle_ids
            .filter(|id| !self.payouts.contains_key(id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(());
        }
        for (cycle, date, status) in payouts::arrival_of_cycles(conn, &ids).await? {
            self.payouts.insert(cycle, (date, status));
        }
        Ok(())
    }

    /// The reader of a merchant's answers by its id ([`Reader::of_merchant`]).
    pub async fn of_merchant_id(
        conn: &mut PgConnection,
        merchant_id: &str,
        lang: &Lang,
        now: DateTime<Utc>,
        since: Option<NaiveDate>,
    ) -> Result<Self, EngineError> {
        let merchant = existing_merchant(conn, merchant_id).await?;
        Self::of_merchant(conn, &merchant, lang, now, since).await
    }

    /// When money of a cycle dated `cycle_date` that no payout holds yet reaches the
    /// merchant's bank: the arrival rule payouts are planned with (from today once
    /// the cycle's own date has passed).
    pub fn arrival(&self, cycle_date: NaiveDate) -> NaiveDate {
        expected_arrival(
            cycle_date,
            self.local_today,
            self.delay_business_days,
            &self.holidays,
        )
    }

    /// An instant in the merchant's time zone with its offset.
    pub fn instant(&self, at: DateTime<Utc>) -> String {
        fmt_instant(self.locale, at, self.time_zone)
    }

    /// A date as a sentence writes it.
    pub fn date(&self, date: NaiveDate) -> String {
        fmt_date(self.locale, date)
    }

    /// An amount as a sentence writes it.
    pub fn money(&self, minor: i64, currency: Currency) -> String {
        fmt_money(self.locale, minor, currency)
    }

    /// Message `id` in the reader's language.
    pub fn tr(&self, id: &str, args: &[(&str, Arg<'_>)]) -> String {
        tr(self.locale, id, args)
    }
}

/// The holidays this process read last, shared by every reader: a sentence's arrival
/// date needs them, and reading them for each close would cost a statement each.
static HOLIDAYS: Mutex<Option<CachedHolidays>> = Mutex::new(None);
/// How long holidays read by this process are used before they are read again: a
/// change made through another replica shows in sentences after at most this long
/// (payouts always read them afresh).
const HOLIDAYS_FRESH: std::time::Duration = std::time::Duration::from_secs(10);

struct CachedHolidays {
    from: NaiveDate,
    read_at: std::time::Instant,
    dates: Arc<BTreeSet<NaiveDate>>,
}

/// Forgets the holidays read: this process changed them.
pub fn forget_holidays() {
    if let Ok(mut cached) = HOLIDAYS.lock() {
        *cached = None;
    }
}

/// The holidays on or after `from` (and maybe some before, which no arrival date
/// counted from `from` looks at).
async fn holidays_since(
    conn: &mut PgConnection,
    from: NaiveDate,
) -> Result<Arc<BTreeSet<NaiveDate>>, EngineError> {
    if let Ok(cached) = HOLIDAYS.lock() {
        if let Some(c) = cached.as_ref() {
            if c.from <= from && c.read_at.elapsed() < HOLIDAYS_FRESH {
                return Ok(c.dates.clone());
            }
        }
    }
    let dates = Arc::new(holidays::holidays_from(conn, from).await?);
    if let Ok(mut cached) = HOLIDAYS.lock() {
        *cached = Some(CachedHolidays {
            from,
            read_at: std::time::Instant::now(),
            dates: dates.clone(),
        });
    }
    Ok(dates)
}

/// Readers of several merchants' answers, each merchant read once: operations'
/// lists (in the language operations asked for) and what a run announces (in each
/// merchant's own, `language` none).
pub struct Readers(HashMap<String, Reader>);

impl Readers {
    /// The readers of the merchants named, at now.
    pub async fn load<'a>(
        conn: &mut PgConnection,
        merchant_ids: impl Iterator<Item = &'a str>,
        language: Option<Locale>,
    ) -> Result<Self, EngineError> {
        let now = Utc::now();
        let mut readers = HashMap::new();
        for id in merchant_ids {
            if !readers.contains_key(id) {
                let lang = Lang::new(language);
                let reader = Reader::of_merchant_id(conn, id, &lang, now, None).await?;
                readers.insert(id.to_owned(), reader);
            }
        }
        Ok(Readers(readers))
    }

    /// The reader of a merchant [`Readers::load`] was given.
    pub fn of(&self, merchant_id: &str) -> Result<&Reader, EngineError> {
        self.0.get(merchant_id).ok_or_else(|| {
            EngineError::Internal(anyhow::anyhow!(
                "no reader loaded for merchant {merchant_id}"
            ))
        })
    }
}

/// The reader of what a merchant is sent or what is recorded of it (events, audit
/// records): in the merchant's own language.
pub async fn merchant_reader(
    conn: &mut PgConnection,
    merchant_id: &str,
    since: Option<NaiveDate>,
) -> Result<Reader, EngineError> {
    Reader::of_merchant_id(conn, merchant_id, &Lang::default(), Utc::now(), since).await
}

/// When a batch's money is expected in the merchant's bank: none for a batch that
/// is not paid (held or declined).
pub fn batch_arrival(b: &BatchRow, r: &Reader) -> Option<NaiveDate> {
    if !b.status.is_booked() {
        return None;
    }
    let cycle_date = b.cycle_date?;
    // A closed cycle's money is in a payout: its date (the day it arrived, once
    // paid), unless a pending one's date has passed (payouts on hold, or waiting for
    // the export) and the rule dates it from today.
    let held = b
        .settlement_cycle_id
        .and_then(|cycle| r.payouts.get(&cycle))
        .filter(|(date, status)| *status != PayoutStatus::Pending || *date >= r.local_today);
    Some(held.map_or_else(|| r.arrival(cycle_date), |(date, _)| *date))
}

/// Why a batch has its status: a stable code and a sentence a merchant understands,
/// in its language and time zone, with the money, its arrival and the next step.
pub fn status_reason(b: &BatchRow, r: &Reader) -> Result<(&'static str, String), EngineError> {
    let (code, mut reason) = status_sentence(b, r)?;
    let settled = json_list(b.already_settled_lines.as_ref());
    if !settled.is_empty() {
        let mut by: Vec<&str> = settled
            .iter()
            .filter_map(|l| l.get("batch_id").and_then(serde_json::Value::as_str))
            .collect();
        by.sort_unstable();
        by.dedup();
        reason.push(' ');
        reason.push_str(&r.tr(
            "batch-already-settled",
            &[
                ("count", settled.len().into()),
                ("batches", by.join(", ").into()),
            ],
        ));
    }
    let unmatched = json_list(b.unmatched_lines.as_ref()).len();
    if unmatched > 0 {
        reason.push(' ');
        reason.push_str(&r.tr("batch-unmatched", &[("count", unmatched.into())]));
    }
    Ok((code, reason))
}

fn status_sentence(b: &BatchRow, r: &Reader) -> Result<(&'static str, String), EngineError> {
    let currency = stored_currency(&b.currency)?;
    let payable = r.money(b.net_amount_minor.saturating_sub(b.fee_minor), currency);
    let cycle = b.cycle_date.map(|d| r.date(d)).unwrap_or_default();
    let arrival = batch_arrival(b, r).map(|d| r.date(d)).unwrap_or_default();
    let business_date = r.date(b.business_date);
    let cutoff = r.instant(b.cutoff_at);
    let grace_deadline = r.instant(b.grace_deadline);
    let operator_reason = b.operator_reason.as_deref().unwrap_or_default();
    let paid = |id: &str, extra: &[(&'static str, Arg<'_>)]| {
        let mut args: Vec<(&str, Arg<'_>)> = vec![
            ("business_date", business_date.as_str().into()),
            ("amount", payable.as_str().into()),
            ("cycle_date", cycle.as_str().into()),
            ("arrival", arrival.as_str().into()),
        ];
        args.extend_from_slice(extra);
        r.tr(id, &args)
    };
    Ok(match b.status {
        BatchStatus::AutoClosed => (
            "auto_closed_by_host",
            paid(
                "batch-auto-closed",
                &[
                    ("terminal", b.terminal_id.as_str().into()),
                    ("count", b.line_count.into()),
                    ("cutoff", cutoff.as_str().into()),
                ],
            ),
        ),
        BatchStatus::Accepted => (
            "closed_by_cutoff",
            paid("batch-accepted", &[("cutoff", cutoff.as_str().into())]),
        ),
        BatchStatus::AcceptedLate => (
            "closed_after_cutoff",
            paid(
                "batch-accepted-late",
                &[
                    ("cutoff", cutoff.as_str().into()),
                    ("grace_deadline", grace_deadline.as_str().into()),
                    ("late_by", fmt_duration(r.locale, b.late_by_seconds).into()),
                ],
            ),
        ),
        BatchStatus::AcceptedByOperator => (
            "accepted_by_operator",
            paid(
                "batch-accepted-by-operator",
                &[
                    ("grace_deadline", grace_deadline.as_str().into()),
                    ("reason", operator_reason.into()),
                ],
            ),
        ),
        BatchStatus::Declined => (
            "declined_by_operator",
            r.tr(
                "batch-declined",
                &[
                    ("business_date", business_date.as_str().into()),
                    ("grace_deadline", grace_deadline.as_str().into()),
                    ("reason", operator_reason.into()),
                ],
            ),
        ),
        BatchStatus::RejectedOutsideGrace => (
            "closed_after_grace_deadline",
            r.tr(
                "batch-held",
                &[
                    ("received", r.instant(b.received_at).into()),
                    ("business_date", business_date.as_str().into()),
                    ("grace_deadline", grace_deadline.as_str().into()),
                    ("amount", payable.as_str().into()),
                    ("merchant", b.merchant_id.as_str().into()),
                    ("batch", b.id.to_string().into()),
                ],
            ),
        ),
    })
}

/// A view the API answers with, built from a stored row for a merchant's reader.
pub trait ReadRow<R>: Sized {
    /// The view of a stored row as `reader` reads it.
    fn read_row(row: &R, reader: &Reader) -> Result<Self, EngineError>;
}

impl ReadRow<BatchRow> for BatchView {
    fn read_row(b: &BatchRow, r: &Reader) -> Result<Self, EngineError> {
        let currency = stored_currency(&b.currency)?;
        let money = |minor| format_amount(minor, currency);
        let (reason_code, status_reason) = status_reason(b, r)?;
        Ok(BatchView {
            id: b.id,
            terminal_id: b.terminal_id.clone(),
            merchant_id: b.merchant_id.clone(),
            batch_number: b.batch_number,
            origin: b.origin.as_str().to_owned(),
            status: b.status.as_str().to_owned(),
            reason_code: reason_code.to_owned(),
            status_reason,
            business_date: b.business_date,
            cycle_date: b.cycle_date,
            expected_arrival_date: batch_arrival(b, r),
            received_at: timestamp(b.received_at),
            cutoff_at: timestamp(b.cutoff_at),
            late_by_seconds: b.late_by_seconds,
            grace_deadline: timestamp(b.grace_deadline),
            currency: b.currency.clone(),
            totals: TotalsView {
                sale_count: b.sale_count,
                sale_amount: money(b.sale_amount_minor),
                refund_count: b.refund_count,
                refund_amount: money(b.refund_amount_minor),
                void_count: b.void_count,
                void_amount: money(b.void_amount_minor),
            },
            net_amount: money(b.net_amount_minor),
            fee: money(b.fee_minor),
            settlement_id: b.settlement_cycle_id,
            line_count: b.line_count,
            unmatched_lines: json_list(b.unmatched_lines.as_ref()),
            already_settled_lines: json_list(b.already_settled_lines.as_ref()),
        })
    }
}

/// The items of a stored JSON array (none when absent).
fn json_list(value: Option<&serde_json::Value>) -> Vec<serde_json::Value> {
    value
        .and_then(serde_json::Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The view of a stored line, its amount in the batch's currency.
pub fn line_view(l: &LineRow, currency: Currency) -> LineView {
    LineView {
        line_no: l.line_no,
        stan: l.stan.clone(),
        rrn: l.rrn.clone(),
        line_type: l.line_type.clone(),
        amount: format_amount(l.amount_minor, currency),
        original_stan: l.original_stan.clone(),
        captured_at: timestamp(l.captured_at),
        card_brand: l.card_brand.clone(),
        masked_pan: l.masked_pan.clone(),
        auth_code: l.auth_code.clone(),
    }
}

/// Default and largest page sizes.
pub const DEFAULT_PAGE_LIMIT: i64 = 10;
/// Largest page a client may ask for.
pub const MAX_PAGE_LIMIT: i64 = 100;

/// Checks a `limit` query parameter.
pub fn page_limit(limit: Option<i64>) -> Result<i64, EngineError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE_LIMIT);
    if (1..=MAX_PAGE_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(EngineError::field(
            "limit",
            format!("must be between 1 and {MAX_PAGE_LIMIT}"),
        ))
    }
}

/// Reads a `cursor` query parameter naming the last row of the previous page.
pub fn cursor_id(cursor: Option<&str>) -> Result<Option<Uuid>, EngineError> {
    cursor
        .map(|c| {
            c.parse::<Uuid>()
                .map_err(|_| EngineError::field("cursor", "is not a cursor this API returned"))
        })
        .transpose()
}

/// Turns `limit + 1` fetched rows into a page, with the cursor taken from the last
/// row shown.
pub fn page<R, T, E>(
    mut rows: Vec<R>,
    limit: i64,
    cursor_of: impl Fn(&R) -> String,
    view: impl Fn(&R) -> Result<T, E>,
) -> Result<Page<T>, E> {
    let limit = usize::try_from(limit).unwrap_or(0);
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = if has_more {
        rows.last().map(&cursor_of)
    } else {
        None
    };
    Ok(Page {
        data: rows.iter().map(view).collect::<Result<_, _>>()?,
        has_more,
        next_cursor,
    })
}

impl FromRow<CycleRow> for CycleView {
    fn from_row(c: &CycleRow) -> Result<Self, EngineError> {
        let currency = stored_currency(&c.currency)?;
        let money = |minor| format_amount(minor, currency);
        Ok(CycleView {
            id: c.id,
            merchant_id: c.merchant_id.clone(),
            currency: c.currency.clone(),
            cycle_date: c.cycle_date,
            closed_at: timestamp(c.closed_at),
            batch_count: c.batch_count,
            sale_count: c.sale_count,
            sale_amount: money(c.sale_amount_minor),
            void_amount: money(c.void_amount_minor),
            refund_amount: money(c.refund_amount_minor),
            net_amount: money(c.net_amount_minor),
            fee: money(c.fee_minor),
            payable_amount: money(c.payable_minor),
        })
    }
}

/// What happened to a payout, in plain words with its next step.
pub fn payout_message(p: &PayoutRow, r: &Reader) -> Result<String, EngineError> {
    let currency = stored_currency(&p.currency)?;
    let amount = r.money(p.amount_minor, currency);
    let arrival = r.date(p.arrival_date);
    let args = |id: &str| {
        r.tr(
            id,
            &[
                ("amount", amount.as_str().into()),
                ("arrival", arrival.as_str().into()),
            ],
        )
    };
    Ok(match p.status {
        PayoutStatus::Pending => args("payout-pending"),
        PayoutStatus::InTransit => args("payout-in-transit"),
        PayoutStatus::Paid => args("payout-paid"),
        PayoutStatus::Canceled => r.tr("payout-canceled", &[("amount", amount.as_str().into())]),
        PayoutStatus::Failed => {
            let code = p.failure_code.as_deref().unwrap_or("unknown");
            let (why, next) = if is_account_failure(code) {
                ("payout-failed-account", "payout-next-account")
            } else {
                ("payout-failed-other", "payout-next-other")
            };
            r.tr(
                "payout-failed",
                &[
                    ("amount", amount.as_str().into()),
                    ("why", r.tr(why, &[("code", code.into())]).into()),
                    ("next", r.tr(next, &[]).into()),
                ],
            )
        }
    })
}

impl ReadRow<PayoutRow> for PayoutView {
    fn read_row(p: &PayoutRow, r: &Reader) -> Result<Self, EngineError> {
        let currency = stored_currency(&p.currency)?;
        Ok(PayoutView {
            id: p.id,
            merchant_id: p.merchant_id.clone(),
            amount: format_amount(p.amount_minor, currency),
            currency: p.currency.clone(),
            status: p.status.as_str().to_owned(),
            arrival_date: p.arrival_date,
            failure_code: p.failure_code.clone(),
            message: payout_message(p, r)?,
            created_at: timestamp(p.created_at),
            updated_at: timestamp(p.updated_at),
        })
    }
}

/// Serialises a view for the audit trail.
pub fn to_json<T: Serialize>(value: &T) -> Result<serde_json::Value, EngineError> {
    serde_json::to_value(value).map_err(|e| EngineError::Internal(e.into()))
}

impl FromRow<ReviewRequestRow> for ReviewRequestView {
    fn from_row(r: &ReviewRequestRow) -> Result<Self, EngineError> {
        Ok(ReviewRequestView {
            id: r.id,
            merchant_id: r.merchant_id.clone(),
            batch_id: r.batch_id,
            note: r.note.clone(),
            state: r.state,
            created_at: timestamp(r.created_at),
            decided_at: r.decided_at.map(timestamp),
            resolution: r.resolution.clone(),
        })
    }
}
