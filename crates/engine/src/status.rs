//! A merchant's status: "where is my money", in one answer.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, Utc};
use sqlx::PgPool;

use settlement_domain::lateness::earliest_open_deadline;
use settlement_domain::ledger::AccountKind;
use settlement_domain::money::format_amount;
use settlement_domain::payout::PayoutStatus;
use settlement_store::close_attempts::ReviewFilter;
use settlement_store::payouts::ArrivalOrder;
use settlement_store::{batches, ledger, payouts, reminders, status};
use settlement_wire::batches::ReviewRequestView;
use settlement_wire::host::UnsettledStatus;
use settlement_wire::money::PayoutView;
use settlement_wire::status::{
    AttentionItem, PayableView, PayoutsWithheldView, PendingCycleView, PendingView, ReminderView,
    StatusView, TerminalStatus,
};

use crate::db;
use crate::error::EngineError;
use crate::host;
use crate::profile::{existing_merchant, profile_of};
use crate::views::{
    batch_arrival, status_reason, stored_currency, timestamp, FromRow, ReadRow, Reader,
};
use settlement_domain::calendar::add_hours;
use settlement_domain::merchant::SettlementProfile;
use settlement_i18n::Lang;

/// How far back the status looks for late and rejected batches and number gaps.
const LOOKBACK_DAYS: u64 = 30;
/// Most skipped batch numbers listed per terminal; a longer gap is summarised.
const MAX_SKIPPED_LISTED: usize = 100;
/// Most items per list in the status answer.
const MAX_ITEMS: i64 = 20;

fn skipped_numbers(gaps: &[status::NumberGap], terminal_id: &str) -> Vec<i32> {
    gaps.iter()
        .filter(|g| g.terminal_id == terminal_id)
        .flat_map(|g| g.first_missing..=g.last_missing)
        .take(MAX_SKIPPED_LISTED)
        .collect()
}

/// What a sent reminder said, in plain words with the next step.
fn reminder_message(
    r: &reminders::SentReminder,
    profile: &SettlementProfile,
    reader: &Reader,
) -> String {
    let terminal = r.terminal_id.as_str();
    let deadline = |date| {
        reader.instant(add_hours(
            profile.cutoff.instant_on(date),
            profile.grace_period_hours,
        ))
    };
    match (r.kind.as_str(), r.business_date) {
        ("after_cutoff", Some(date)) => reader.tr(
            "reminder-after-cutoff",
            &[
                ("terminal", terminal.into()),
                ("business_date", reader.date(date).into()),
                ("grace_deadline", deadline(date).into()),
            ],
        ),
        ("before_grace_deadline", Some(date)) => reader.tr(
            "reminder-before-grace-deadline",
            &[
                ("terminal", terminal.into()),
                ("business_date", reader.date(date).into()),
                ("grace_deadline", deadline(date).into()),
            ],
        ),
        _ => {
            let numbers: Vec<String> = r
                .first_missing
                .zip(r.last_missing)
                .map(|(a, b)| {
                    (a..=b)
                        .take(MAX_SKIPPED_LISTED)
                        .map(|n| n.to_string())
                        .collect()
                })
                .unwrap_or_default();
            let count = match (r.first_missing, r.last_missing) {
                (Some(a), Some(b)) => i64::from(b) - i64::from(a) + 1,
                _ => 0,
            };
            reader.tr(
                "reminder-batch-number-gap",
                &[
                    ("terminal", terminal.into()),
                    ("numbers", numbers.join(", ").into()),
                    ("count", count.into()),
                ],
            )
        }
    }
}

/// Where a merchant's money is at `now`: terminals, what needs attention, pending
/// money by cycle with its arrival dates, payable money, payouts, reminders, failed
/// webhook deliveries, review requests and held payouts.
pub async fn merchant_status(
    pool: &PgPool,
    merchant_id: String,
    now: DateTime<Utc>,
    lang: &Lang,
) -> Result<StatusView, EngineError> {
    // One snapshot, so the figures agree with each other. Every statement of the
    // answer is an index lookup bounded by the merchant (and a time window or the
    // latest checkpoint): cached plans, the same whatever the history's size.
    let mut tx = db::begin_snapshot_read(pool, db::Plans::Generic).await?;
    let merchant = existing_merchant(&mut tx, &merchant_id).await?;
    let profile = profile_of(&merchant)?;
    let mut reader = Reader::of_merchant(&mut tx, &merchant, lang, now, None).await?;
    let cutoff = profile.cutoff;
    let today = cutoff.business_date_of(now);
    let next_cutoff_at = cutoff.instant_on(today);
    let last_cutoff_at = cutoff.instant_on(today.checked_sub_days(Days::new(1)).unwrap_or(today));
    let since: DateTime<Utc> =
        now - chrono::Duration::days(i64::try_from(LOOKBACK_DAYS).unwrap_or(30));

    let gaps = status::batch_number_gaps(&mut tx, &merchant_id, since).await?;
    let terminal_rows = status::terminal_summaries(&mut tx, &merchant_id).await?;
    let terminal_ids: Vec<&str> = terminal_rows
        .iter()
        .map(|t| t.terminal_id.as_str())
        .collect();
    let mut unsettled = host::summaries(&mut tx, &terminal_ids).await?;
    let terminals = terminal_rows
        .into_iter()
        .map(|t| {
            let summary = unsettled.remove(&t.terminal_id).unwrap_or_default();
            let oldest = summary
                .since
                .as_deref()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|s| s.with_timezone(&Utc));
            let next_step = oldest.map(|at| host::next_step(&profile, &summary, at, now, &reader));
            let closed_since = t.last_closed_at.is_some_and(|at| at > last_cutoff_at);
            // The open batch may hold sales from right after the last close: quote the
            // earliest grace deadline that can still be met (none once all passed).
            let opened = t
                .last_closed_at
                .map_or(today, |at| cutoff.business_date_of(at));
            let deadline = earliest_open_deadline(&profile, opened, today, now);
            TerminalStatus {
                skipped_batch_numbers: skipped_numbers(&gaps, &t.terminal_id),
                closed_since_last_cutoff: closed_since,
                close_deadline: if closed_since {
                    None
                } else {
                    deadline.map(timestamp)
                },
                can_still_close: !closed_since && deadline.is_some(),
                unsettled: UnsettledStatus { summary, next_step },
                last_batch_number: t.last_batch_number,
                last_closed_at: t.last_closed_at.map(timestamp),
                terminal_id: t.terminal_id,
            }
        })
        .collect();

    let mut attention_batches = Vec::new();
    for id in status::attention_batch_ids(&mut tx, &merchant_id, since, MAX_ITEMS).await? {
        if let Some(b) = batches::find_batch_of_merchant(&mut tx, &merchant_id, id).await? {
            attention_batches.push(b);
        }
    }
    reader
        .know_payouts(
            &mut tx,
            attention_batches
                .iter()
                .filter_map(|b| b.settlement_cycle_id),
        )
        .await?;
    let mut attention = Vec::new();
    for b in attention_batches {
        let (reason_code, reason) = status_reason(&b, &reader)?;
        attention.push(AttentionItem {
            batch_id: b.id,
            terminal_id: b.terminal_id.clone(),
            batch_number: b.batch_number,
            status: b.status.as_str().to_owned(),
            reason_code: reason_code.to_owned(),
            reason,
            business_date: b.business_date,
            cycle_date: b.cycle_date,
            expected_arrival_date: batch_arrival(&b, &reader),
            received_at: timestamp(b.received_at),
            net_amount: format_amount(b.net_amount_minor, stored_currency(&b.currency)?),
        });
    }

    let mut pending: BTreeMap<String, (i64, Vec<PendingCycleView>)> = BTreeMap::new();
    for p in status::pending_by_cycle(&mut tx, &merchant_id).await? {
        let currency = stored_currency(&p.currency)?;
        let payable = p.net_amount_minor.saturating_sub(p.fee_minor);
        let arrival = reader.arrival(p.cycle_date);
        let slot = pending.entry(p.currency.clone()).or_default();
        slot.0 = slot.0.saturating_add(p.net_amount_minor);
        slot.1.push(PendingCycleView {
            cycle_date: p.cycle_date,
            settles_at: timestamp(cutoff.instant_on(p.cycle_date)),
            batch_count: p.batch_count,
            net_amount: format_amount(p.net_amount_minor, currency),
            fee: format_amount(p.fee_minor, currency),
            payable_amount: format_amount(payable, currency),
            expected_arrival_date: arrival,
        });
    }
    let pending = pending
        .into_iter()
        .map(|(code, (amount, cycles))| {
            Ok(PendingView {
                amount: format_amount(amount, stored_currency(&code)?),
                currency: code,
                cycles,
            })
        })
        .collect::<Result<_, EngineError>>()?;

    // The settlement currency is always shown, at zero before the first cycle.
    let mut payable_by_currency: BTreeMap<String, i64> =
        BTreeMap::from([(merchant.default_currency.clone(), 0)]);
    for b in ledger::merchant_balances(&mut tx, &merchant_id).await? {
        if b.kind == AccountKind::MerchantPayable {
            payable_by_currency.insert(b.currency, b.balance_minor.saturating_neg());
        }
    }
    let payable = payable_by_currency
        .into_iter()
        .map(|(code, owed)| {
            Ok(PayableView {
                amount: format_amount(owed, stored_currency(&code)?),
                currency: code,
            })
        })
        .collect::<Result<_, EngineError>>()?;
    let next_payouts = payouts::list_payouts_by_status(
        &mut tx,
        &merchant_id,
        &[PayoutStatus::Pending, PayoutStatus::InTransit],
        ArrivalOrder::SoonestFirst,
        MAX_ITEMS,
    )
    .await?
    .iter()
    .map(|p| PayoutView::read_row(p, &reader))
    .collect::<Result<_, _>>()?;
    let last_payouts = payouts::list_payouts_by_status(
        &mut tx,
        &merchant_id,
        &[
            PayoutStatus::Paid,
            PayoutStatus::Failed,
            PayoutStatus::Canceled,
        ],
        ArrivalOrder::LatestFirst,
        MAX_ITEMS,
    )
    .await?
    .iter()
    .map(|p| PayoutView::read_row(p, &reader))
    .collect::<Result<_, _>>()?;
    let reminders = reminders::list_sent_reminders(&mut tx, &merchant_id, since, MAX_ITEMS)
        .await?
        .into_iter()
        .map(|r| ReminderView {
            message: reminder_message(&r, &profile, &reader),
            missing_batch_numbers: r
                .first_missing
                .zip(r.last_missing)
                .map(|(a, b)| (a..=b).take(MAX_SKIPPED_LISTED).collect()),
            terminal_id: r.terminal_id,
            kind: r.kind,
            business_date: r.business_date,
            event_id: r.event_id,
            sent_at: timestamp(r.sent_at),
        })
        .collect();
    let failed_webhook_deliveries =
        settlement_store::events::count_failed_deliveries_of_merchant(&mut tx, &merchant_id, since)
            .await?;
    let payouts_withheld = match payouts::find_payout_hold(&mut tx, &merchant_id).await? {
        Some(hold) => Some(PayoutsWithheldView {
            reason: "account_failure".to_owned(),
            message: reader.tr(
                "payouts-held-account",
                &[
                    ("since", reader.instant(hold.held_since).into()),
                    ("payout", hold.payout_id.to_string().into()),
                    ("code", hold.failure_code.as_str().into()),
                ],
            ),
            payout_id: Some(hold.payout_id),
            failure_code: Some(hold.failure_code),
            since: Some(timestamp(hold.held_since)),
        }),
        None if merchant.bank_account_last4.is_none() => Some(PayoutsWithheldView {
            reason: "no_bank_account".to_owned(),
            message: reader.tr("payouts-held-no-account", &[]),
            payout_id: None,
            failure_code: None,
            since: None,
        }),
        None => None,
    };
    let review_requests = settlement_store::close_attempts::list_review_requests_of_merchant(
        &mut tx,
        &merchant_id,
        ReviewFilter::All,
        MAX_ITEMS,
    )
    .await?
    .iter()
    .map(ReviewRequestView::from_row)
    .collect::<Result<_, _>>()?;
    tx.commit().await?;

    Ok(StatusView {
        merchant_id,
        as_of: timestamp(now),
        time_zone: merchant.time_zone,
        last_cutoff_at: timestamp(last_cutoff_at),
        next_cutoff_at: timestamp(next_cutoff_at),
        terminals,
        attention,
        pending,
        payable,
        next_payouts,
        last_payouts,
        reminders,
        failed_webhook_deliveries,
        review_requests,
        payouts_withheld,
    })
}
