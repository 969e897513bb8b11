//! Auto-close: the host closes what a terminal forgot. For a merchant with
//! `auto_close` on, once a business day's cutoff plus the delay has passed, each
//! terminal's unsettled authorizations of that day become one batch with origin
//! `host` and status `auto_closed`, booked in that day's cycle with the merchant's
//! fees. It runs in the settlement run, before the cycles close (their closing waits
//! for the same delay), so the batch joins its own day's cycle.
//!
//! Exactly once across replicas and against the terminal's own close: each batch is
//! written under the terminal's close lock (the lock a terminal's close takes), and
//! the authorizations are read after the lock is held, so a second run finds them
//! presented already and closes nothing; the presentment index refuses a second
//! presentment whatever happens.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Days, NaiveDate, Utc};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use settlement_domain::batch::{LineType, TransactionLine};
use settlement_domain::close_plan::{plan_auto_close, CYCLE_LOOKAHEAD_DAYS};
use settlement_domain::lateness::{BatchOrigin, BatchStatus};
use settlement_domain::merchant::SettlementProfile;
use settlement_domain::money::Currency;
use settlement_store::batches::BatchRow;
use settlement_store::close as close_store;
use settlement_store::host_authorizations::{self, HostAuthorizationRow};
use settlement_store::merchants::{self, MerchantRow};
use settlement_store::{cycles, locks};
use settlement_wire::batches::BatchView;

use crate::audit::{self, Action};
use crate::close_batch::{posting_ids, write_presenting};
use crate::db::in_transaction;
use crate::error::EngineError;
use crate::events;
use crate::profile::profile_of;
use crate::settlement;
use crate::views::{stored_currency, to_json, ReadRow, Reader};
use settlement_i18n::Lang;

/// Who the audit names for an auto-close.
pub const AUTO_CLOSE_ACTOR: &str = "host-auto-close";

/// The last cutoff whose auto-close is due at `now` (cutoff plus delay passed).
fn last_due_cutoff(profile: &SettlementProfile, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let delay = profile.auto_close_after?;
    let t = now.checked_sub_signed(delay)?;
    let date = profile.cutoff.business_date_of(t);
    let cutoff_at = profile.cutoff.instant_on(date);
    if cutoff_at <= t {
        return Some(cutoff_at);
    }
    Some(
        profile
            .cutoff
            .instant_on(date.checked_sub_days(Days::new(1))?),
    )
}

/// Closes, for every merchant with auto-close on, each terminal's unsettled
/// authorizations of every business day that is due at `now` and still inside its
/// grace window; returns the batches written. A terminal day that fails is logged and
/// left for the next run; it holds up no other.
pub async fn run_auto_close(
    pool: &PgPool,
    now: DateTime<Utc>,
) -> Result<Vec<BatchRow>, EngineError> {
    let mut conn = pool.acquire().await?;
    let merchants = merchants::find_auto_close_merchants(&mut conn).await?;
    let mut windows = Vec::new();
    for m in &merchants {
        // One merchant's bad profile holds up no other merchant's settlement.
        let profile = match profile_of(m) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, merchant_id = m.merchant_id, "auto-close skipped a merchant");
                continue;
            }
        };
        if let Some(until) = last_due_cutoff(&profile, now) {
            // Older than the grace window, nothing is closed by the host any more.
            let from = until
                - chrono::Duration::hours(i64::from(profile.grace_period_hours))
                - chrono::Duration::days(2);
            windows.push((m, profile, from, until));
        }
    }
    if windows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = windows
        .iter()
        .map(|(m, ..)| m.merchant_id.as_str())
        .collect();
    let from: Vec<DateTime<Utc>> = windows.iter().map(|w| w.2).collect();
    let until: Vec<DateTime<Utc>> = windows.iter().map(|w| w.3).collect();
    let found =
        host_authorizations::find_unsettled_instants(&mut conn, &ids, &from, &until).await?;
    drop(conn);
    // One batch per terminal and business day, oldest day first.
    let mut days: BTreeSet<(NaiveDate, String, usize)> = BTreeSet::new();
    for f in &found {
        let Some(i) = windows
            .iter()
            .position(|w| w.0.merchant_id == f.merchant_id)
        else {
            continue;
        };
        let date = windows[i].1.cutoff.business_date_of(f.authorized_at);
        if windows[i].1.auto_close_due(date, now) {
            days.insert((date, f.terminal_id.clone(), i));
        }
    }
    let mut written = Vec::new();
    for (date, terminal_id, i) in days {
        let (merchant, profile, ..) = &windows[i];
        match auto_close_day(pool, merchant, profile, &terminal_id, date, now).await {
            Ok(rows) => written.extend(rows),
            Err(e) => tracing::error!(
                error = %e,
                terminal_id,
                business_date = %date,
                "auto-close of a terminal's day failed; the next run tries again"
            ),
        }
    }
    Ok(written)
}

/// Closes one terminal's unsettled authorizations of one business day, in a
/// transaction of its own (retried on transient failures): usually one batch, more
/// when STANs repeat within the day (a batch's STANs are distinct) or the day has more
/// lines than a batch holds; none when nothing was left to close.
pub async fn auto_close_day(
    pool: &PgPool,
    merchant: &MerchantRow,
    profile: &SettlementProfile,
    terminal_id: &str,
    date: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Vec<BatchRow>, EngineError> {
    let rows = in_transaction!(pool, |tx| {
        write_auto_close(&mut tx, merchant, profile, terminal_id, date, now).await?
    })?;
    for row in &rows {
        crate::metrics::METRICS
            .batches_closed
            .with_label_values(&[BatchStatus::AutoClosed.as_str()])
            .inc();
        tracing::info!(
            batch_id = %row.id,
            terminal_id,
            business_date = %date,
            lines = row.line_count,
            "terminal's unsettled transactions closed by the host"
        );
    }
    Ok(rows)
}

#[tracing::instrument(name = "batch.auto_close", skip_all, fields(terminal_id, business_date = %date))]
async fn write_auto_close(
    conn: &mut PgConnection,
    merchant: &MerchantRow,
    profile: &SettlementProfile,
    terminal_id: &str,
    date: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Vec<BatchRow>, EngineError> {
    // The terminal's close lock and the merchant's cycle lock, shared: as a close.
    let Some(merchant) =
        locks::lock_close_and_find_merchant(conn, terminal_id, &merchant.merchant_id).await?
    else {
        return Ok(Vec::new());
    };
    let day_starts = profile
        .cutoff
        .instant_on(date.checked_sub_days(Days::new(1)).unwrap_or(date));
    let day_ends = profile.cutoff.instant_on(date);
    let currency = stored_currency(&merchant.default_currency)?;
    let mut auths: Vec<HostAuthorizationRow> =
        host_authorizations::find_unsettled_between(conn, terminal_id, day_starts, day_ends)
            .await?
            .into_iter()
            .filter(|a| a.currency == currency.code())
            .collect();
    // Lines in the order the sales happened.
    auths.sort_by(|a, b| (a.authorized_at, &a.rrn).cmp(&(b.authorized_at, &b.rrn)));
    if auths.is_empty() {
        return Ok(Vec::new());
    }
    let lines: Vec<TransactionLine> = auths.iter().map(line_of).collect::<Result<_, _>>()?;
    let merchant_id = merchant.merchant_id.as_str();
    let closed = cycles::closed_cycle_dates(
        conn,
        merchant_id,
        currency.code(),
        date,
        CYCLE_LOOKAHEAD_DAYS,
    )
    .await?;
    let cycle_date = settlement::first_open_cycle(merchant_id, date, &closed)?;
    let mut rows = Vec::new();
    for batch_lines in host_batches(lines) {
        let day = HostDay {
            merchant_id,
            terminal_id,
            date,
            cycle_date,
            currency,
            now,
        };
        rows.push(write_host_batch(conn, profile, &day, &batch_lines).await?);
    }
    Ok(rows)
}

/// Where a host batch belongs.
struct HostDay<'a> {
    merchant_id: &'a str,
    terminal_id: &'a str,
    date: NaiveDate,
    cycle_date: NaiveDate,
    currency: Currency,
    now: DateTime<Utc>,
}

/// Most lines of a batch (the database's bound on `line_count`).
const MAX_BATCH_LINES: usize = 10_000;

/// Splits a day's lines into batches whose STANs are distinct (a STAN's second use
/// goes to the second batch, and so on: terminals that restart their STAN counter
/// repeat STANs within a day) and of at most [`MAX_BATCH_LINES`] lines, in order.
fn host_batches(lines: Vec<TransactionLine>) -> Vec<Vec<TransactionLine>> {
    let mut groups: Vec<Vec<TransactionLine>> = Vec::new();
    let mut uses: HashMap<String, usize> = HashMap::new();
    for line in lines {
        let n = uses.entry(line.stan.clone()).or_insert(0);
        if *n == groups.len() {
            groups.push(Vec::new());
        }
        groups[*n].push(line);
        *n += 1;
    }
    groups
        .into_iter()
        .flat_map(|g| {
            g.chunks(MAX_BATCH_LINES)
                .map(<[TransactionLine]>::to_vec)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Writes one host batch of `lines`, audited and announced.
async fn write_host_batch(
    conn: &mut PgConnection,
    profile: &SettlementProfile,
    day: &HostDay<'_>,
    lines: &[TransactionLine],
) -> Result<BatchRow, EngineError> {
    let HostDay {
        merchant_id,
        terminal_id,
        date,
        cycle_date,
        currency,
        now,
    } = *day;
    let plan = plan_auto_close(merchant_id, currency, lines, profile, date)?;
    let postings = posting_ids(conn, plan.entry.as_ref(), Vec::new()).await?;
    let row = BatchRow {
        id: Uuid::now_v7(),
        terminal_id: terminal_id.to_owned(),
        merchant_id: merchant_id.to_owned(),
        batch_number: None,
        status: BatchStatus::AutoClosed,
        currency: currency.code().to_owned(),
        business_date: date,
        cycle_date: Some(cycle_date),
        received_at: now,
        cutoff_at: plan.lateness.cutoff_at,
        grace_deadline: plan.lateness.grace_deadline,
        late_by_seconds: 0,
        sale_count: plan.totals.sale_count,
        sale_amount_minor: plan.totals.sale_amount_minor,
        refund_count: plan.totals.refund_count,
        refund_amount_minor: plan.totals.refund_amount_minor,
        void_count: plan.totals.void_count,
        void_amount_minor: plan.totals.void_amount_minor,
        net_amount_minor: plan.net_amount_minor,
        line_count: i32::try_from(lines.len()).map_err(|e| EngineError::Internal(e.into()))?,
        content_hash: content_hash(terminal_id, lines),
        journal_entry_id: plan.entry.as_ref().map(|_| Uuid::now_v7()),
        fee_minor: plan.fee_minor,
        settlement_cycle_id: None,
        operator_reason: None,
        number_use: 1,
        origin: BatchOrigin::Host,
        unmatched_lines: None,
        already_settled_lines: None,
    };
    let reader =
        Reader::of_merchant_id(conn, merchant_id, &Lang::default(), now, Some(cycle_date)).await?;
    let view = BatchView::read_row(&row, &reader)?;
    let event = events::event_row(
        Uuid::now_v7(),
        merchant_id,
        events::BATCH_AUTO_CLOSED,
        &view,
    )?;
    let description = format!("auto-close of terminal {terminal_id} for {date}");
    write_presenting(
        conn,
        &close_store::NewClose {
            batch: &row,
            lines,
            settled_by: &[],
            entry: plan.entry.as_ref().map(|_| close_store::BookedEntry {
                description: &description,
                postings: &postings,
            }),
            resolution: "",
            event: &event,
            answer: None,
        },
    )
    .await?;
    audit::record(
        conn,
        Action {
            actor: AUTO_CLOSE_ACTOR,
            action: "batch.auto_close",
            object_type: "batch",
            object_id: row.id.to_string(),
            reason: Some("the terminal did not close its unsettled transactions of the day"),
            before: None,
            after: Some(to_json(&view)?),
        },
    )
    .await?;
    Ok(row)
}

/// The batch line of an authorization: a sale or refund as the host approved it.
fn line_of(a: &HostAuthorizationRow) -> Result<TransactionLine, EngineError> {
    let line_type = match a.transaction_type.as_str() {
        "sale" => LineType::Sale,
        "refund" => LineType::Refund,
        other => {
            return Err(EngineError::Internal(anyhow::anyhow!(
                "stored transaction type {other:?} is unknown"
            )))
        }
    };
    Ok(TransactionLine {
        stan: a.stan.clone(),
        rrn: a.rrn.clone(),
        line_type,
        amount_minor: a.amount_minor,
        captured_at: a.authorized_at,
        original_stan: None,
        card_brand: a.card_brand.clone(),
        masked_pan: a.masked_pan.clone(),
        auth_code: Some(a.auth_code.clone()),
    })
}

/// A host batch's content hash: its terminal and RRNs.
fn content_hash(terminal_id: &str, lines: &[TransactionLine]) -> Vec<u8> {
    let mut hash = Sha256::new();
    hash.update(b"auto-close\0");
    hash.update(terminal_id.as_bytes());
    for l in lines {
        hash.update(b"\0");
        hash.update(l.rrn.as_bytes());
    }
    hash.finalize().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use settlement_domain::merchant::Pricing;

    fn line(stan: &str, rrn: &str) -> TransactionLine {
        TransactionLine {
            stan: stan.into(),
            rrn: rrn.into(),
            line_type: LineType::Sale,
            amount_minor: 100,
            captured_at: Utc::now(),
            original_stan: None,
            card_brand: None,
            masked_pan: None,
            auth_code: Some("A1B2C3".into()),
        }
    }

    #[test]
    fn a_days_lines_split_into_batches_of_distinct_stans_in_order() {
        let lines = vec![
            line("000001", "R1"),
            line("000002", "R2"),
            line("000001", "R3"),
            line("000001", "R4"),
            line("000003", "R5"),
        ];
        let rrns: Vec<Vec<String>> = host_batches(lines)
            .iter()
            .map(|b| b.iter().map(|l| l.rrn.clone()).collect())
            .collect();
        assert_eq!(rrns, vec![vec!["R1", "R2", "R5"], vec!["R3"], vec!["R4"]]);
        let many: Vec<TransactionLine> = (0..10_001)
            .map(|i| line(&format!("{:06}", i % 1_000_000), &format!("R{i}")))
            .collect();
        let sizes: Vec<usize> = host_batches(many).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![10_000, 1]);
    }

    #[test]
    fn the_last_due_cutoff_waits_for_the_delay() {
        let profile = SettlementProfile::new(
            "Europe/Berlin",
            "22:00",
            72,
            1,
            Pricing {
                mdr_basis_points: 0,
                fixed_fee_minor: 0,
            },
        )
        .unwrap()
        .with_auto_close(60)
        .unwrap();
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        // 22:00 Berlin on 2 December is 21:00 UTC; due an hour later.
        assert_eq!(
            last_due_cutoff(&profile, at("2026-12-02T21:59:59Z")),
            Some(at("2026-12-01T21:00:00Z"))
        );
        assert_eq!(
            last_due_cutoff(&profile, at("2026-12-02T22:00:00Z")),
            Some(at("2026-12-02T21:00:00Z"))
        );
        let off = SettlementProfile {
            auto_close_after: None,
            ..profile
        };
        assert_eq!(last_due_cutoff(&off, at("2026-12-02T22:00:00Z")), None);
    }
}
