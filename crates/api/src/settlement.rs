//! Settlement: closing cycles at each merchant's cutoff, creating payouts, and
//! moving payouts through their life. Used by the scheduler and by operations.

use std::collections::HashMap;

use chrono::{DateTime, Days, NaiveDate, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use settlement_domain::business_days::add_business_days;
use settlement_domain::ledger::{
    cycle_settlement_entry, house_account_ref, merchant_account_ref, transfer_entry, AccountKind,
    AccountRef,
};
use settlement_domain::merchant::SettlementProfile;
use settlement_domain::money::Currency;
use settlement_domain::payout::{transition, PayoutStatus};
use settlement_store::cycles::{self, CycleRow};
use settlement_store::payouts::{self, PayoutRow};
use settlement_store::{holidays, ledger, merchants};

use crate::close_batch::profile_of;
use crate::db::in_transaction;
use crate::error::ApiError;
use crate::events;
use crate::wire::{stored_currency, CycleView, PayoutView};

/// Most days a booking looks ahead for an open cycle; cycles close once a day, so
/// more than a few closed in a row means something is wrong.
const MAX_CYCLE_LOOKAHEAD_DAYS: u32 = 31;

/// The first cycle date from `date` on whose cycle is still open. The caller holds
/// the merchant's cycle lock shared (taken here), so no cycle closes meanwhile.
pub async fn open_cycle_date(
    conn: &mut PgConnection,
    merchant_id: &str,
    currency: &str,
    date: NaiveDate,
) -> Result<NaiveDate, ApiError> {
    cycles::lock_merchant_cycles(conn, merchant_id, false).await?;
    let mut candidate = date;
    for _ in 0..MAX_CYCLE_LOOKAHEAD_DAYS {
        if !cycles::cycle_is_closed(conn, merchant_id, currency, candidate).await? {
            return Ok(candidate);
        }
        candidate = candidate
            .checked_add_days(Days::new(1))
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("cycle date overflow")))?;
    }
    Err(ApiError::Internal(anyhow::anyhow!(
        "no open cycle within {MAX_CYCLE_LOOKAHEAD_DAYS} days of {date} for {merchant_id}"
    )))
}

/// The ledger account of a kind for a merchant and currency.
pub fn account_for(kind: AccountKind, merchant_id: &str, currency: Currency) -> AccountRef {
    if kind.is_merchant_account() {
        merchant_account_ref(kind, merchant_id, currency)
    } else {
        house_account_ref(kind, currency)
    }
}

/// What one settlement run did.
#[derive(Debug, Default)]
pub struct RunOutcome {
    /// Cycles closed, oldest first.
    pub cycles: Vec<CycleRow>,
    /// Payouts created, or pending payouts that new money joined.
    pub payouts: Vec<PayoutRow>,
    /// Cycles that were due but failed to close; the next run tries again.
    pub failed: Vec<cycles::UnsettledCycle>,
}

/// The cycles due at `now` (their cutoff has passed and booked batches wait in them),
/// with their cutoff instants, oldest cutoff first, and the merchants' profiles.
async fn due_cycles(
    pool: &PgPool,
    now: DateTime<Utc>,
) -> Result<
    (
        Vec<(DateTime<Utc>, cycles::UnsettledCycle)>,
        HashMap<String, SettlementProfile>,
    ),
    ApiError,
> {
    // No time zone is more than 14 hours ahead of UTC, so no due cycle is dated
    // later than tomorrow in UTC.
    let latest = now
        .date_naive()
        .checked_add_days(Days::new(1))
        .unwrap_or(NaiveDate::MAX);
    let candidates = {
        let mut conn = pool.acquire().await?;
        cycles::find_unsettled_cycles(&mut conn, latest).await?
    };
    let mut profiles: HashMap<String, SettlementProfile> = HashMap::new();
    let mut due: Vec<(DateTime<Utc>, cycles::UnsettledCycle)> = Vec::new();
    for candidate in candidates {
        if !profiles.contains_key(&candidate.merchant_id) {
            let mut conn = pool.acquire().await?;
            let merchant = merchants::find_merchant(&mut conn, &candidate.merchant_id)
                .await?
                .ok_or(ApiError::NotFound("merchant"))?;
            profiles.insert(candidate.merchant_id.clone(), profile_of(&merchant)?);
        }
        let cutoff_at = profiles[&candidate.merchant_id]
            .cutoff
            .instant_on(candidate.cycle_date);
        if cutoff_at <= now {
            due.push((cutoff_at, candidate));
        }
    }
    due.sort_by_key(|(cutoff_at, _)| *cutoff_at);

    Ok((due, profiles))
}

/// Closes every cycle whose cutoff has passed at `now`, oldest first, each in its own
/// transaction, and creates the payouts that follow. Safe to run from several
/// replicas at once: each cycle closes under the merchant's exclusive cycle lock and
/// behind the unique (merchant, currency, cycle date) fence.
pub async fn run_settlement(pool: &PgPool, now: DateTime<Utc>) -> Result<RunOutcome, ApiError> {
    let (due, mut profiles) = due_cycles(pool, now).await?;
    // How far behind the oldest due cycle is, as this run starts.
    let lag = due
        .first()
        .map_or(0, |(cutoff_at, _)| (now - *cutoff_at).num_seconds().max(0));
    crate::metrics::METRICS.scheduler_lag.set(lag);
    let mut outcome = RunOutcome::default();
    for (_, cycle) in due {
        let profile = &profiles[&cycle.merchant_id];
        let closed = match in_transaction!(pool, |tx| close_cycle(&mut tx, &cycle, profile, now)
            .await?)
        {
            Ok(closed) => closed,
            Err(e) => {
                // One cycle that cannot close must not hold up every later one.
                tracing::error!(
                    merchant_id = cycle.merchant_id,
                    cycle_date = %cycle.cycle_date,
                    error = %e,
                    "settlement cycle failed to close; retrying next run"
                );
                outcome.failed.push(cycle.clone());
                continue;
            }
        };
        if let Some((cycle_row, payout)) = closed {
            tracing::info!(
                cycle_id = %cycle_row.id,
                merchant_id = cycle_row.merchant_id,
                cycle_date = %cycle_row.cycle_date,
                batches = cycle_row.batch_count,
                "settlement cycle closed"
            );
            crate::metrics::METRICS.cycles_closed.inc();
            outcome.cycles.push(cycle_row);
            outcome.payouts.extend(payout);
        }
    }
    outcome
        .payouts
        .extend(repay_returned_money(pool, now, &mut profiles).await?);
    Ok(outcome)
}

/// Closes one cycle: sums its batches, books pending to payable and the fees to
/// revenue, marks the batches settled, and creates a payout when money is owed.
/// `None` when another run closed it first or nothing is left to settle.
#[tracing::instrument(name = "settlement.close_cycle", skip_all, fields(merchant_id = %cycle.merchant_id, cycle_date = %cycle.cycle_date))]
async fn close_cycle(
    conn: &mut PgConnection,
    cycle: &cycles::UnsettledCycle,
    profile: &SettlementProfile,
    now: DateTime<Utc>,
) -> Result<Option<(CycleRow, Option<PayoutRow>)>, ApiError> {
    let (merchant_id, currency_code, cycle_date) =
        (&cycle.merchant_id, &cycle.currency, cycle.cycle_date);
    cycles::lock_merchant_cycles(conn, merchant_id, true).await?;
    if cycles::cycle_is_closed(conn, merchant_id, currency_code, cycle_date).await? {
        return Ok(None);
    }
    let sums = cycles::sum_unsettled_batches(conn, merchant_id, currency_code, cycle_date).await?;
    if sums.batch_count == 0 {
        return Ok(None);
    }
    let currency = stored_currency(currency_code)?;
    let overflow = || ApiError::Internal(anyhow::anyhow!("cycle amounts overflow"));
    let payable = sums
        .net_amount_minor
        .checked_sub(sums.fee_minor)
        .ok_or_else(overflow)?;
    let entry_id = match cycle_settlement_entry(
        merchant_id,
        currency,
        sums.net_amount_minor,
        sums.fee_minor,
    ) {
        Some(entry) => Some(
            ledger::insert_journal_entry(
                conn,
                "cycle_settled",
                Some(merchant_id),
                &format!("settlement cycle {cycle_date} {currency_code}"),
                &entry,
            )
            .await?,
        ),
        None => None,
    };
    let row = CycleRow {
        id: Uuid::now_v7(),
        merchant_id: merchant_id.clone(),
        currency: currency_code.clone(),
        cycle_date,
        closed_at: now,
        batch_count: i32::try_from(sums.batch_count).map_err(|_| overflow())?,
        sale_count: sums.sale_count,
        sale_amount_minor: sums.sale_amount_minor,
        void_amount_minor: sums.void_amount_minor,
        refund_amount_minor: sums.refund_amount_minor,
        net_amount_minor: sums.net_amount_minor,
        fee_minor: sums.fee_minor,
        payable_minor: payable,
        journal_entry_id: entry_id,
    };
    if !cycles::insert_cycle(conn, &row).await? {
        // The exclusive lock makes this unreachable; refuse rather than book twice.
        return Err(ApiError::Internal(anyhow::anyhow!(
            "cycle {cycle_date} of {merchant_id} closed twice"
        )));
    }
    let settled = cycles::settle_batches_into_cycle(conn, &row).await?;
    // Under the exclusive lock nothing else posts to the merchant's accounts: a good
    // moment to checkpoint their balances.
    ledger::checkpoint_merchant_accounts(conn, merchant_id).await?;
    if i64::try_from(settled).ok() != Some(sums.batch_count) {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "cycle {cycle_date} of {merchant_id} summed {} batches but settled {settled}",
            sums.batch_count
        )));
    }
    events::emit(
        conn,
        merchant_id,
        events::SETTLEMENT_CLOSED,
        &CycleView::from_row(&row)?,
    )
    .await?;
    let payout = create_payout_if_owed(conn, merchant_id, currency, profile, now).await?;
    Ok(Some((row, payout)))
}

/// Makes the merchant's pending payout in a currency cover every closed cycle whose
/// money no sent payout holds. New money joins the pending payout (there is at most
/// one, until it is exported); a refund-heavy cycle shrinks it, and when the total is
/// no longer positive the pending payout is canceled, so nothing is paid while the
/// merchant owes. The caller holds the merchant's cycle lock exclusively.
async fn create_payout_if_owed(
    conn: &mut PgConnection,
    merchant_id: &str,
    currency: Currency,
    profile: &SettlementProfile,
    now: DateTime<Utc>,
) -> Result<Option<PayoutRow>, ApiError> {
    let pending =
        payouts::find_pending_payout_for_update(conn, merchant_id, currency.code()).await?;
    let mut covered = cycles::list_unpaid_cycles(conn, merchant_id, currency.code()).await?;
    if let Some(p) = &pending {
        covered.extend(cycles::list_cycles_of_payout(conn, p.id).await?);
    }
    let total = covered
        .iter()
        .try_fold(0_i64, |sum, c| sum.checked_add(c.payable_minor))
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("payout amount overflow")))?;
    if total <= 0 {
        if let Some(p) = pending {
            transition_payout(conn, p.id, PayoutStatus::Canceled, None, now).await?;
            tracing::info!(payout_id = %p.id, merchant_id, "pending payout canceled: the merchant owes");
        }
        return Ok(None);
    }
    let latest_cycle = covered
        .iter()
        .map(|c| c.cycle_date)
        .max()
        .unwrap_or(now.date_naive());
    let local_today = now.with_timezone(&profile.cutoff.time_zone).date_naive();
    let holidays = holidays::holidays_from(conn, latest_cycle.min(local_today)).await?;
    let delay = profile.payout_delay_business_days;
    let mut arrival_date = add_business_days(latest_cycle, delay, &holidays);
    if arrival_date < local_today {
        // Catching up, or paying again money that came back: count from today.
        arrival_date = add_business_days(local_today, delay, &holidays);
    }
    let cycle_ids: Vec<Uuid> = covered.iter().map(|c| c.id).collect();
    if let Some(p) = pending {
        let updated =
            payouts::update_pending_payout(conn, p.id, total, arrival_date, &cycle_ids, now)
                .await?;
        tracing::info!(payout_id = %p.id, merchant_id, %arrival_date, "pending payout updated");
        return Ok(Some(updated));
    }
    let payout = PayoutRow {
        id: Uuid::now_v7(),
        merchant_id: merchant_id.to_owned(),
        currency: currency.code().to_owned(),
        amount_minor: total,
        status: PayoutStatus::Pending.as_str().to_owned(),
        arrival_date,
        failure_code: None,
        created_at: now,
        updated_at: now,
    };
    payouts::insert_payout(conn, &payout, &cycle_ids).await?;
    crate::metrics::METRICS.payout("pending", &payout.currency, payout.amount_minor);
    tracing::info!(payout_id = %payout.id, merchant_id, %arrival_date, "payout created");
    Ok(Some(payout))
}

/// Pays again money that came back: for each merchant and currency with unpaid
/// cycles that owe money (a failed or canceled payout), a new payout.
async fn repay_returned_money(
    pool: &PgPool,
    now: DateTime<Utc>,
    profiles: &mut HashMap<String, SettlementProfile>,
) -> Result<Vec<PayoutRow>, ApiError> {
    let owed = {
        let mut conn = pool.acquire().await?;
        payouts::find_merchants_with_returned_money(&mut conn).await?
    };
    let mut created = Vec::new();
    for (merchant_id, currency_code) in owed {
        if !profiles.contains_key(&merchant_id) {
            let mut conn = pool.acquire().await?;
            let merchant = merchants::find_merchant(&mut conn, &merchant_id)
                .await?
                .ok_or(ApiError::NotFound("merchant"))?;
            profiles.insert(merchant_id.clone(), profile_of(&merchant)?);
        }
        let profile = &profiles[&merchant_id];
        let currency = stored_currency(&currency_code)?;
        let payout = in_transaction!(pool, |tx| {
            cycles::lock_merchant_cycles(&mut tx, &merchant_id, true).await?;
            create_payout_if_owed(&mut tx, &merchant_id, currency, profile, now).await?
        })?;
        created.extend(payout);
    }
    Ok(created)
}

/// Moves a payout to `to`, booking the ledger movement of that step. Illegal steps
/// are 409. Returns the payout before and after.
#[tracing::instrument(name = "payout.transition", skip_all, fields(%payout_id, to = to.as_str()))]
pub async fn transition_payout(
    conn: &mut PgConnection,
    payout_id: Uuid,
    to: PayoutStatus,
    failure_code: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(PayoutRow, PayoutRow), ApiError> {
    let before = payouts::find_payout_for_update(conn, payout_id)
        .await?
        .ok_or(ApiError::NotFound("payout"))?;
    let from = PayoutStatus::parse(&before.status).ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!("stored payout status {:?}", before.status))
    })?;
    let movement = transition(from, to).map_err(|e| ApiError::Conflict {
        code: "illegal_payout_transition",
        detail: e.to_string(),
    })?;
    if let Some((debit, credit)) = movement {
        let currency = stored_currency(&before.currency)?;
        let entry = transfer_entry(
            &account_for(debit, &before.merchant_id, currency),
            &account_for(credit, &before.merchant_id, currency),
            before.amount_minor,
        )
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("payout amount cannot be booked")))?;
        ledger::insert_journal_entry(
            conn,
            &format!("payout_{}", to.as_str()),
            Some(&before.merchant_id),
            &format!("payout {payout_id} {} -> {}", from.as_str(), to.as_str()),
            &entry,
        )
        .await?;
    }
    let failure_code = if to == PayoutStatus::Failed {
        failure_code
    } else {
        None
    };
    let after =
        payouts::update_payout_status(conn, payout_id, to.as_str(), failure_code, now).await?;
    let event_type = match to {
        PayoutStatus::InTransit => Some(events::PAYOUT_IN_TRANSIT),
        PayoutStatus::Paid => Some(events::PAYOUT_PAID),
        PayoutStatus::Failed => Some(events::PAYOUT_FAILED),
        PayoutStatus::Canceled => Some(events::PAYOUT_CANCELED),
        PayoutStatus::Pending => None,
    };
    if let Some(event_type) = event_type {
        events::emit(
            conn,
            &after.merchant_id,
            event_type,
            &PayoutView::from_row(&after)?,
        )
        .await?;
    }
    crate::metrics::METRICS.payout(to.as_str(), &after.currency, after.amount_minor);
    tracing::info!(%payout_id, from = from.as_str(), to = to.as_str(), "payout moved");
    Ok((before, after))
}
