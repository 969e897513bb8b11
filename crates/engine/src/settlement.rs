//! Settlement: closing cycles at each merchant's cutoff, creating payouts, and
//! moving payouts through their life. Used by the scheduler and by operations.

use settlement_wire::ProblemCode;
use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Days, NaiveDate, Utc};
use futures_util::stream::{self, StreamExt};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use settlement_domain::business_days::expected_arrival;
use settlement_domain::close_plan;
use settlement_domain::ledger::{
    cycle_settlement_entry, house_account_ref, merchant_account_ref, transfer_entry, AccountKind,
    AccountRef,
};
use settlement_domain::merchant::SettlementProfile;
use settlement_domain::money::Currency;
use settlement_domain::payout::{is_account_failure, transition, IllegalTransition, PayoutStatus};
use settlement_store::batches::BatchRow;
use settlement_store::cycles::{self, CycleRow};
use settlement_store::locks::{self, LockMode};
use settlement_store::payouts::{self, PayoutCover, PayoutRow};
use settlement_store::{holidays, ledger, merchants};
use settlement_wire::batches::BatchView;
use settlement_wire::money::{CycleView, PayoutView};
use settlement_wire::settlement::SettlementRunView;

use crate::audit::{self, Action};
use crate::db::in_transaction;
use crate::error::EngineError;
use crate::events;
use crate::profile::{existing_merchant, profile_of};
use crate::views::{merchant_reader, stored_currency, to_json, FromRow, ReadRow, Reader, Readers};
use settlement_i18n::{Lang, Locale};

/// The first cycle date from `date` on whose cycle is still open. The caller holds
/// the merchant's cycle lock shared (taken here), so no cycle closes meanwhile.
pub async fn open_cycle_date(
    conn: &mut PgConnection,
    merchant_id: &str,
    currency: &str,
    date: NaiveDate,
) -> Result<NaiveDate, EngineError> {
    locks::lock_merchant_cycles(conn, merchant_id, LockMode::Shared).await?;
    let closed = cycles::closed_cycle_dates(
        conn,
        merchant_id,
        currency,
        date,
        close_plan::CYCLE_LOOKAHEAD_DAYS,
    )
    .await?;
    first_open_cycle(merchant_id, date, &closed)
}

/// The first open cycle date from `date` on, given the closed ones; an error when
/// cycles are closed for the whole lookahead (they close once a day, so more than a
/// few in a row means something is wrong).
pub fn first_open_cycle(
    merchant_id: &str,
    date: NaiveDate,
    closed: &[NaiveDate],
) -> Result<NaiveDate, EngineError> {
    close_plan::open_cycle_date(date, closed).ok_or_else(|| {
        EngineError::Internal(anyhow::anyhow!(
            "no open cycle within {} days of {date} for {merchant_id}",
            close_plan::CYCLE_LOOKAHEAD_DAYS
        ))
    })
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
    /// Batches the host closed for terminals that forgot (auto-close), before the
    /// cycles closed.
    pub auto_closed: Vec<BatchRow>,
    /// Cycles closed, oldest first.
    pub cycles: Vec<CycleRow>,
    /// Payouts created, or pending payouts that new money joined.
    pub payouts: Vec<PayoutRow>,
    /// Cycles that were due but failed to close; the next run tries again.
    pub failed: Vec<cycles::UnsettledCycle>,
}

/// Most merchants whose due cycles close in one transaction. Each step of a close is
/// one statement for the whole set; a set this size holds the merchants' bookings
/// back for a fraction of a second.
const MERCHANTS_PER_CLOSE: usize = 500;

/// Sets closing at once, each on its own connection.
const CONCURRENT_CLOSES: usize = 2;

/// Loads the settlement profiles of the merchants not in `profiles` yet.
async fn load_profiles(
    pool: &PgPool,
    merchant_ids: impl Iterator<Item = &String>,
    profiles: &mut HashMap<String, SettlementProfile>,
) -> Result<(), EngineError> {
    let mut missing: Vec<String> = merchant_ids
        .filter(|id| !profiles.contains_key(*id))
        .cloned()
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    let mut conn = pool.acquire().await?;
    for merchant in merchants::find_merchants(&mut conn, &missing).await? {
        profiles.insert(merchant.merchant_id.clone(), profile_of(&merchant)?);
    }
    match missing.iter().find(|id| !profiles.contains_key(*id)) {
        Some(_) => Err(EngineError::NotFound("merchant")),
        None => Ok(()),
    }
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
    EngineError,
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
    load_profiles(
        pool,
        candidates.iter().map(|c| &c.merchant_id),
        &mut profiles,
    )
    .await?;
    let mut due: Vec<(DateTime<Utc>, cycles::UnsettledCycle)> = candidates
        .into_iter()
        .map(|c| (profiles[&c.merchant_id].cycle_due_at(c.cycle_date), c))
        .filter(|(cutoff_at, _)| *cutoff_at <= now)
        .collect();
    due.sort_by_key(|(cutoff_at, _)| *cutoff_at);
    Ok((due, profiles))
}

/// Groups due cycles (oldest cutoff first) into sets of at most `per_set` merchants;
/// all of a merchant's due cycles fall in one set, and the sets follow the order in
/// which the merchants' oldest cycles fell due.
fn merchant_sets(
    due: Vec<(DateTime<Utc>, cycles::UnsettledCycle)>,
    per_set: usize,
) -> Vec<Vec<cycles::UnsettledCycle>> {
    let mut order: Vec<String> = Vec::new();
    let mut by_merchant: HashMap<String, Vec<cycles::UnsettledCycle>> = HashMap::new();
    for (_, cycle) in due {
        let merchant_cycles = by_merchant.entry(cycle.merchant_id.clone()).or_default();
        if merchant_cycles.is_empty() {
            order.push(cycle.merchant_id.clone());
        }
        merchant_cycles.push(cycle);
    }
    order
        .chunks(per_set.max(1))
        .map(|merchants| {
            merchants
                .iter()
                .flat_map(|m| by_merchant.remove(m).unwrap_or_default())
                .collect()
        })
        .collect()
}

/// Closes every cycle whose cutoff has passed at `now`, oldest first, a set of
/// merchants per transaction, and creates the payouts that follow. Safe to run from
/// several replicas at once: cycles close under their merchants' exclusive cycle
/// locks and behind the unique (merchant, currency, cycle date) fence.
pub async fn run_settlement(pool: &PgPool, now: DateTime<Utc>) -> Result<RunOutcome, EngineError> {
    // What terminals forgot is closed by the host first, so it joins its day's cycle.
    let auto_closed = crate::auto_close::run_auto_close(pool, now).await?;
    let (due, mut profiles) = due_cycles(pool, now).await?;
    // How far behind the oldest due cycle is, as this run starts.
    let lag = due
        .first()
        .map_or(0, |(cutoff_at, _)| (now - *cutoff_at).num_seconds().max(0));
    crate::metrics::METRICS.scheduler_lag.set(lag);
    // Sets hold disjoint merchants, so two close side by side without waiting on
    // each other; results are taken in the order the sets fell due.
    let profiles_ref = &profiles;
    let mut closes = stream::iter(merchant_sets(due, MERCHANTS_PER_CLOSE))
        .map(|set| close_set(pool, set, profiles_ref, now))
        .buffered(CONCURRENT_CLOSES);
    let mut outcome = RunOutcome {
        auto_closed,
        ..RunOutcome::default()
    };
    while let Some(set_outcome) = closes.next().await {
        outcome.cycles.extend(set_outcome.cycles);
        outcome.payouts.extend(set_outcome.payouts);
        outcome.failed.extend(set_outcome.failed);
    }
    drop(closes);
    outcome
        .payouts
        .extend(repay_returned_money(pool, now, &mut profiles).await?);
    Ok(outcome)
}

/// Closes one set of merchants' due cycles in a transaction. Merchants whose cycle
/// lock is busy (a booking or an export in flight) are not waited for inside the set:
/// they are closed afterwards one at a time, waiting for their lock. When the set
/// fails, its cycles are closed one by one, so that one cycle that cannot close holds
/// up no other.
async fn close_set(
    pool: &PgPool,
    set: Vec<cycles::UnsettledCycle>,
    profiles: &HashMap<String, SettlementProfile>,
    now: DateTime<Utc>,
) -> RunOutcome {
    let mut outcome = RunOutcome::default();
    let busy = match in_transaction!(pool, |tx| close_cycles(
        &mut tx,
        &set,
        profiles,
        now,
        Locking::SkipBusy
    )
    .await?)
    {
        Ok(closed) => outcome.record(closed),
        Err(e) => {
            if set.len() > 1 {
                tracing::warn!(error = %e, cycles = set.len(), "a set of cycles failed to close; closing them one by one");
            }
            set
        }
    };
    // Oldest cutoff first, as the set is.
    for cycle in busy {
        let single = [cycle];
        match in_transaction!(pool, |tx| close_cycles(
            &mut tx,
            &single,
            profiles,
            now,
            Locking::Wait
        )
        .await?)
        {
            Ok(closed) => {
                outcome.record(closed);
            }
            Err(e) => outcome.fail(single.into(), &e),
        }
    }
    outcome
}

/// How a close takes its merchants' cycle locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Locking {
    /// Wait for each lock (bounded by the transaction's lock timeout).
    Wait,
    /// Take the locks that are free; leave the busy merchants' cycles for later.
    SkipBusy,
}

/// What a close did: the cycles closed, the payouts created or grown, and the due
/// cycles left because their merchant's lock was busy.
#[derive(Debug, Default)]
struct Closed {
    cycles: Vec<CycleRow>,
    payouts: Vec<PayoutRow>,
    busy: Vec<cycles::UnsettledCycle>,
}

impl RunOutcome {
    /// Adds what a close did; returns the cycles it left because their merchant was
    /// busy.
    fn record(
        &mut self,
        Closed {
            cycles,
            payouts,
            busy,
        }: Closed,
    ) -> Vec<cycles::UnsettledCycle> {
        crate::metrics::METRICS
            .cycles_closed
            .inc_by(cycles.len() as u64);
        if !cycles.is_empty() {
            tracing::info!(
                cycles = cycles.len(),
                batches = cycles.iter().map(|c| i64::from(c.batch_count)).sum::<i64>(),
                payouts = payouts.len(),
                "settlement cycles closed"
            );
        }
        self.cycles.extend(cycles);
        self.payouts.extend(payouts);
        busy
    }

    fn fail(&mut self, cycles: Vec<cycles::UnsettledCycle>, error: &EngineError) {
        for cycle in &cycles {
            tracing::error!(
                merchant_id = cycle.merchant_id,
                cycle_date = %cycle.cycle_date,
                error = %error,
                "settlement cycle failed to close; retrying next run"
            );
        }
        self.failed.extend(cycles);
    }
}

/// Closes a set of due cycles: sums their batches, books pending to payable and the
/// fees to revenue, marks the batches settled, checkpoints the merchants' balances
/// and makes their payouts cover the new money. Each step is one statement for the
/// whole set. Cycles another run closed first, or with nothing left to settle, are
/// skipped. Returns the cycles closed and the payouts created or grown.
#[tracing::instrument(name = "settlement.close_cycles", skip_all, fields(cycles = due.len()))]
async fn close_cycles(
    conn: &mut PgConnection,
    due: &[cycles::UnsettledCycle],
    profiles: &HashMap<String, SettlementProfile>,
    now: DateTime<Utc>,
    locking: Locking,
) -> Result<Closed, EngineError> {
    let mut merchant_ids: Vec<String> = due.iter().map(|c| c.merchant_id.clone()).collect();
    merchant_ids.sort_unstable();
    merchant_ids.dedup();
    let (due, busy): (Vec<cycles::UnsettledCycle>, Vec<cycles::UnsettledCycle>) = match locking {
        Locking::Wait => {
            locks::lock_merchants_cycles(conn, &merchant_ids, LockMode::Exclusive).await?;
            (due.to_vec(), Vec::new())
        }
        Locking::SkipBusy => {
            merchant_ids = locks::try_lock_merchants_cycles(conn, &merchant_ids).await?;
            due.iter()
                .cloned()
                .partition(|c| merchant_ids.binary_search(&c.merchant_id).is_ok())
        }
    };
    let due = due.as_slice();
    let mut sums = cycles::sum_unsettled_cycles(conn, due).await?;
    // Oldest cutoff first, as `due` is: cycle ids (time-ordered) follow it.
    let position: HashMap<(&str, &str, NaiveDate), usize> = due
        .iter()
        .enumerate()
        .map(|(i, c)| {
            (
                (c.merchant_id.as_str(), c.currency.as_str(), c.cycle_date),
                i,
            )
        })
        .collect();
    sums.sort_by_key(|s| {
        position
            .get(&(s.merchant_id.as_str(), s.currency.as_str(), s.cycle_date))
            .copied()
    });
    if sums.is_empty() {
        return Ok(Closed {
            busy,
            ..Closed::default()
        });
    }
    let overflow = || EngineError::Internal(anyhow::anyhow!("cycle amounts overflow"));
    let mut rows = Vec::with_capacity(sums.len());
    let mut entries = Vec::with_capacity(sums.len());
    for s in &sums {
        let currency = stored_currency(&s.currency)?;
        let payable = s
            .net_amount_minor
            .checked_sub(s.fee_minor)
            .ok_or_else(overflow)?;
        let entry =
            cycle_settlement_entry(&s.merchant_id, currency, s.net_amount_minor, s.fee_minor).map(
                |entry| ledger::NewJournalEntry {
                    id: Uuid::now_v7(),
                    kind: "cycle_settled",
                    merchant_id: Some(&s.merchant_id),
                    description: format!("settlement cycle {} {}", s.cycle_date, s.currency),
                    entry,
                },
            );
        rows.push(CycleRow {
            id: Uuid::now_v7(),
            merchant_id: s.merchant_id.clone(),
            currency: s.currency.clone(),
            cycle_date: s.cycle_date,
            closed_at: now,
            batch_count: i32::try_from(s.batch_count).map_err(|_| overflow())?,
            sale_count: s.sale_count,
            sale_amount_minor: s.sale_amount_minor,
            void_amount_minor: s.void_amount_minor,
            refund_amount_minor: s.refund_amount_minor,
            net_amount_minor: s.net_amount_minor,
            fee_minor: s.fee_minor,
            payable_minor: payable,
            journal_entry_id: entry.as_ref().map(|e| e.id),
        });
        entries.extend(entry);
    }
    ledger::insert_journal_entries(conn, &entries).await?;
    let inserted = cycles::insert_cycles(conn, &rows).await?;
    if inserted != rows.len() as u64 {
        // The exclusive locks make this unreachable; refuse rather than book twice.
        return Err(EngineError::Internal(anyhow::anyhow!(
            "{} of {} cycles were closed already",
            rows.len() as u64 - inserted,
            rows.len()
        )));
    }
    let settled = cycles::settle_batches_into_cycles(conn, &rows).await?;
    let summed: i64 = sums.iter().map(|s| s.batch_count).sum();
    if i64::try_from(settled).ok() != Some(summed) {
        return Err(EngineError::Internal(anyhow::anyhow!(
            "cycles summed {summed} batches but settled {settled}"
        )));
    }
    // Under the exclusive locks nothing else posts to the merchants' accounts: a
    // good moment to checkpoint their balances.
    ledger::checkpoint_merchant_accounts(conn, &merchant_ids).await?;
    let views = rows
        .iter()
        .map(|row| Ok((row.merchant_id.as_str(), CycleView::from_row(row)?)))
        .collect::<Result<Vec<_>, EngineError>>()?;
    events::emit_many(conn, events::SETTLEMENT_CLOSED, &views).await?;
    let mut pairs: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.merchant_id.clone(), r.currency.clone()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let payouts = cover_with_payouts(conn, &pairs, profiles, now).await?;
    Ok(Closed {
        cycles: rows,
        payouts,
        busy,
    })
}

/// What a merchant's money in one currency needs from its payouts.
#[derive(Debug, PartialEq, Eq)]
enum PayoutPlan {
    /// Nothing to pay and no pending payout.
    Nothing,
    /// The merchant owes: the pending payout is withdrawn.
    Cancel(PayoutRow),
    /// New money joins the pending payout (or a refund-heavy cycle shrinks it).
    Update(PayoutCover),
    /// A new pending payout.
    Create(PayoutCover),
}

/// The plan for one merchant and currency, from its pending payout (if any) and the
/// closed cycles whose money is not on its way (`covered`, including the pending
/// payout's). The arrival date counts the merchant's payout delay in business days
/// from the latest cycle, or from today when that is already past.
fn plan_payout(
    pending: Option<PayoutRow>,
    covered: &[&CycleRow],
    profile: &SettlementProfile,
    holidays: &BTreeSet<NaiveDate>,
    (merchant_id, currency): (&str, &str),
    now: DateTime<Utc>,
) -> Result<PayoutPlan, EngineError> {
    let total = covered
        .iter()
        .try_fold(0_i64, |sum, c| sum.checked_add(c.payable_minor))
        .ok_or_else(|| EngineError::Internal(anyhow::anyhow!("payout amount overflow")))?;
    if total <= 0 {
        return Ok(pending.map_or(PayoutPlan::Nothing, PayoutPlan::Cancel));
    }
    let latest_cycle = covered
        .iter()
        .map(|c| c.cycle_date)
        .max()
        .unwrap_or(now.date_naive());
    let local_today = now.with_timezone(&profile.cutoff.time_zone).date_naive();
    let arrival_date = expected_arrival(
        latest_cycle,
        local_today,
        profile.payout_delay_business_days,
        holidays,
    );
    let cycle_ids: Vec<Uuid> = covered.iter().map(|c| c.id).collect();
    Ok(match pending {
        Some(p) => PayoutPlan::Update(PayoutCover {
            payout: PayoutRow {
                amount_minor: total,
                arrival_date,
                ..p
            },
            cycle_ids,
        }),
        None => PayoutPlan::Create(PayoutCover {
            payout: PayoutRow {
                id: Uuid::now_v7(),
                merchant_id: merchant_id.to_owned(),
                currency: currency.to_owned(),
                amount_minor: total,
                status: PayoutStatus::Pending,
                arrival_date,
                failure_code: None,
                created_at: now,
                updated_at: now,
            },
            cycle_ids,
        }),
    })
}

/// Makes each merchant's pending payout in each currency of `pairs` cover every
/// closed cycle whose money no sent payout holds. New money joins the pending payout
/// (there is at most one, until it is exported); a refund-heavy cycle shrinks it,
/// and when the total is no longer positive the pending payout is canceled, so
/// nothing is paid while the merchant owes. The caller holds the merchants' cycle
/// locks exclusively. Returns the payouts created or changed.
async fn cover_with_payouts(
    conn: &mut PgConnection,
    pairs: &[(String, String)],
    profiles: &HashMap<String, SettlementProfile>,
    now: DateTime<Utc>,
) -> Result<Vec<PayoutRow>, EngineError> {
    let mut pending: HashMap<(String, String), PayoutRow> =
        payouts::lock_pending_payouts(conn, pairs)
            .await?
            .into_iter()
            .map(|p| ((p.merchant_id.clone(), p.currency.clone()), p))
            .collect();
    let not_sent = cycles::list_cycles_not_sent(conn, pairs).await?;
    let mut covered: HashMap<(&str, &str), Vec<&CycleRow>> = HashMap::new();
    for c in &not_sent {
        covered
            .entry((c.merchant_id.as_str(), c.currency.as_str()))
            .or_default()
            .push(c);
    }
    // A payout never looks back: holidays from the earliest date any plan counts from.
    let earliest = not_sent
        .iter()
        .map(|c| c.cycle_date)
        .min()
        .unwrap_or(now.date_naive())
        .min(now.date_naive() - Days::new(1));
    let holidays = holidays::holidays_from(conn, earliest).await?;
    // A merchant whose payouts are on hold (a payout bounced for an account reason)
    // gets no new payout: its money stays payable until the bank account changes.
    let held: std::collections::HashSet<String> = payouts::find_merchants_on_hold(
        conn,
        &pairs.iter().map(|(m, _)| m.clone()).collect::<Vec<_>>(),
    )
    .await?
    .into_iter()
    .collect();
    let (mut cancel, mut update, mut create) = (Vec::new(), Vec::new(), Vec::new());
    for (merchant_id, currency) in pairs {
        if held.contains(merchant_id) {
            continue;
        }
        let profile = profiles
            .get(merchant_id)
            .ok_or(EngineError::NotFound("merchant"))?;
        let cycles = covered
            .get(&(merchant_id.as_str(), currency.as_str()))
            .map_or(&[][..], Vec::as_slice);
        let pending = pending.remove(&(merchant_id.clone(), currency.clone()));
        match plan_payout(
            pending,
            cycles,
            profile,
            &holidays,
            (merchant_id, currency),
            now,
        )? {
            PayoutPlan::Nothing => {}
            PayoutPlan::Cancel(p) => cancel.push(p),
            PayoutPlan::Update(cover) => update.push(cover),
            PayoutPlan::Create(cover) => create.push(cover),
        }
    }
    for p in cancel {
        transition_payout(conn, p.id, PayoutStatus::Canceled, None, now).await?;
        tracing::info!(payout_id = %p.id, merchant_id = p.merchant_id, "pending payout canceled: the merchant owes");
    }
    let mut changed = Vec::with_capacity(update.len() + create.len());
    if !update.is_empty() {
        changed.extend(payouts::update_pending_payouts(conn, &update, now).await?);
    }
    if !create.is_empty() {
        payouts::insert_payouts(conn, &create).await?;
        for cover in create {
            crate::metrics::METRICS.payout(
                "pending",
                &cover.payout.currency,
                cover.payout.amount_minor,
            );
            changed.push(cover.payout);
        }
    }
    Ok(changed)
}

/// Pays again money that came back: for each merchant and currency with unpaid
/// cycles that owe money (a failed or canceled payout), a new payout.
async fn repay_returned_money(
    pool: &PgPool,
    now: DateTime<Utc>,
    profiles: &mut HashMap<String, SettlementProfile>,
) -> Result<Vec<PayoutRow>, EngineError> {
    let owed = {
        let mut conn = pool.acquire().await?;
        payouts::find_merchants_with_returned_money(&mut conn).await?
    };
    load_profiles(pool, owed.iter().map(|(m, _)| m), profiles).await?;
    let mut created = Vec::new();
    for pairs in owed.chunks(MERCHANTS_PER_CLOSE) {
        let merchant_ids: Vec<String> = pairs.iter().map(|(m, _)| m.clone()).collect();
        let profiles = &*profiles;
        created.extend(in_transaction!(pool, |tx| {
            locks::lock_merchants_cycles(&mut tx, &merchant_ids, LockMode::Exclusive).await?;
            cover_with_payouts(&mut tx, pairs, profiles, now).await?
        })?);
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
) -> Result<(PayoutRow, PayoutRow), EngineError> {
    let before = payouts::find_payout_for_update(conn, payout_id)
        .await?
        .ok_or(EngineError::NotFound("payout"))?;
    let from = before.status;
    let movement = transition(from, to).map_err(|e| EngineError::Conflict {
        code: ProblemCode::IllegalPayoutTransition,
        detail: e.to_string(),
    })?;
    if let Some((debit, credit)) = movement {
        let currency = stored_currency(&before.currency)?;
        let entry = transfer_entry(
            &account_for(debit, &before.merchant_id, currency),
            &account_for(credit, &before.merchant_id, currency),
            before.amount_minor,
        )
        .ok_or_else(|| EngineError::Internal(anyhow::anyhow!("payout amount cannot be booked")))?;
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
    let after = payouts::update_payout_status(conn, payout_id, to, failure_code, now).await?;
    let event_type = match to {
        PayoutStatus::InTransit => Some(events::PAYOUT_IN_TRANSIT),
        PayoutStatus::Paid => Some(events::PAYOUT_PAID),
        PayoutStatus::Failed => Some(events::PAYOUT_FAILED),
        PayoutStatus::Canceled => Some(events::PAYOUT_CANCELED),
        PayoutStatus::Pending => None,
    };
    if let Some(event_type) = event_type {
        let reader = merchant_reader(conn, &after.merchant_id, None).await?;
        events::emit(
            conn,
            &after.merchant_id,
            event_type,
            &PayoutView::read_row(&after, &reader)?,
        )
        .await?;
    }
    crate::metrics::METRICS.payout(to.as_str(), &after.currency, after.amount_minor);
    tracing::info!(%payout_id, from = from.as_str(), to = to.as_str(), "payout moved");
    Ok((before, after))
}

/// Records what the bank or operations say of one payout, in its own transaction
/// (see [`apply_payout_outcome`]).
pub async fn record_payout_outcome(
    pool: &PgPool,
    actor: &str,
    payout_id: Uuid,
    to: PayoutStatus,
    failure_code: Option<&str>,
    reason: Option<&str>,
    lang: &Lang,
) -> Result<PayoutView, EngineError> {
    in_transaction!(pool, |tx| {
        apply_payout_outcome(&mut tx, actor, (payout_id, to), failure_code, reason, lang).await?
    })
}

/// Applies one bank outcome to a payout inside the caller's transaction, with its
/// audit record.
pub async fn apply_payout_outcome(
    conn: &mut sqlx::PgConnection,
    actor: &str,
    (payout_id, to): (Uuid, PayoutStatus),
    failure_code: Option<&str>,
    reason: Option<&str>,
    lang: &Lang,
) -> Result<PayoutView, EngineError> {
    let (before, after) = transition_payout(conn, payout_id, to, failure_code, Utc::now()).await?;
    if let Some(code) = failure_code.filter(|c| is_account_failure(c)) {
        // Sending to the same account again would bounce again: hold the merchant's
        // payouts until operations change the bank account.
        payouts::hold_payouts(conn, &after.merchant_id, after.id, code).await?;
        tracing::info!(merchant_id = after.merchant_id, %payout_id, failure_code = code, "payouts on hold");
    }
    // The answer in the language asked for; the audit record in the merchant's own.
    let merchant = existing_merchant(conn, &after.merchant_id).await?;
    let reader = Reader::of_merchant(conn, &merchant, lang, Utc::now(), None).await?;
    let own = reader.in_locale(merchant.locale.parse().unwrap_or_default());
    let view = PayoutView::read_row(&after, &reader)?;
    audit::record(
        conn,
        Action {
            actor,
            action: &format!("payout.{}", to.as_str()),
            object_type: "payout",
            object_id: payout_id.to_string(),
            reason: reason.or(failure_code),
            before: Some(to_json(&PayoutView::read_row(&before, &own)?)?),
            after: Some(to_json(&PayoutView::read_row(&after, &own)?)?),
        },
    )
    .await?;
    Ok(view)
}

/// A settlement run an operator asked for: the run, audited with what it did.
pub async fn run_settlement_for(
    pool: &PgPool,
    actor: &str,
    now: DateTime<Utc>,
    lang: &Lang,
) -> Result<SettlementRunView, EngineError> {
    let outcome = run_settlement(pool, now).await?;
    let mut conn = pool.acquire().await?;
    let merchants = outcome
        .auto_closed
        .iter()
        .map(|b| b.merchant_id.as_str())
        .chain(outcome.payouts.iter().map(|p| p.merchant_id.as_str()));
    let readers = Readers::load(&mut conn, merchants, Some(lang.choose(Locale::En))).await?;
    let view = SettlementRunView {
        auto_closed_batches: outcome
            .auto_closed
            .iter()
            .map(|b| BatchView::read_row(b, readers.of(&b.merchant_id)?))
            .collect::<Result<_, _>>()?,
        closed_cycles: outcome.cycles.iter().map(CycleView::from_row).collect::<Result<_, _>>()?,
        payouts: outcome
            .payouts
            .iter()
            .map(|p| PayoutView::read_row(p, readers.of(&p.merchant_id)?))
            .collect::<Result<_, _>>()?,
        failed_cycles: outcome
            .failed
            .iter()
            .map(|c| serde_json::json!({"merchant_id": c.merchant_id, "currency": c.currency, "cycle_date": c.cycle_date}))
            .collect(),
    };
    audit::record(
        &mut conn,
        Action {
            actor,
            action: "settlement.run",
            object_type: "settlement_run",
            object_id: now.to_rfc3339(),
            reason: None,
            before: None,
            // What the run did, by id: the cycles and payouts themselves are the
            // durable record, and a run closing thousands of cycles stays a small row.
            after: Some(serde_json::json!({
                "auto_closed_batches": outcome.auto_closed.iter().map(|b| b.id).collect::<Vec<_>>(),
                "closed_cycles": outcome.cycles.iter().map(|c| c.id).collect::<Vec<_>>(),
                "payouts": outcome.payouts.iter().map(|p| p.id).collect::<Vec<_>>(),
                "failed_cycles": view.failed_cycles,
            })),
        },
    )
    .await?;
    Ok(view)
}

/// What applying a bank's answer about a payout came to.
#[derive(Debug)]
pub enum BankOutcome {
    /// The payout moved, as the view shows.
    Applied(Box<PayoutView>),
    /// It already had that outcome (and failure code): the same answer applied again.
    AlreadyApplied { status: PayoutStatus },
    /// Its status does not allow the move.
    NotApplicable(IllegalTransition),
}

/// Applies a bank's answer (paid, or failed with a code) to a payout once, in the
/// caller's transaction: the same answer again changes nothing, an answer the
/// payout's status does not allow changes nothing and says so.
pub async fn apply_bank_outcome(
    conn: &mut PgConnection,
    actor: &str,
    payout_id: Uuid,
    to: PayoutStatus,
    failure_code: Option<&str>,
    reason: &str,
) -> Result<BankOutcome, EngineError> {
    let current = payouts::find_payout_for_update(conn, payout_id)
        .await?
        .ok_or(EngineError::NotFound("payout"))?;
    if current.status == to && current.failure_code.as_deref() == failure_code {
        return Ok(BankOutcome::AlreadyApplied {
            status: current.status,
        });
    }
    if let Err(illegal) = transition(current.status, to) {
        return Ok(BankOutcome::NotApplicable(illegal));
    }
    let view = apply_payout_outcome(
        conn,
        actor,
        (payout_id, to),
        failure_code,
        Some(reason),
        &Lang::default(),
    )
    .await?;
    Ok(BankOutcome::Applied(Box::new(view)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due(merchant: &str, day: u32, hour: u32) -> (DateTime<Utc>, cycles::UnsettledCycle) {
        let date = NaiveDate::from_ymd_opt(2026, 11, day).unwrap();
        (
            date.and_hms_opt(hour, 0, 0).unwrap().and_utc(),
            cycles::UnsettledCycle {
                merchant_id: merchant.to_owned(),
                currency: "USD".to_owned(),
                cycle_date: date,
            },
        )
    }

    fn names(sets: &[Vec<cycles::UnsettledCycle>]) -> Vec<Vec<String>> {
        sets.iter()
            .map(|set| {
                set.iter()
                    .map(|c| format!("{}@{}", c.merchant_id, c.cycle_date.format("%d")))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_merchants_due_cycles_stay_in_one_set_in_the_order_they_fell_due() {
        let sets = merchant_sets(
            vec![
                due("b", 1, 1),
                due("a", 1, 2),
                due("c", 1, 3),
                due("b", 2, 1),
                due("d", 2, 2),
            ],
            2,
        );
        assert_eq!(
            names(&sets),
            [vec!["b@01", "b@02", "a@01"], vec!["c@01", "d@02"]]
        );
        assert_eq!(
            names(&merchant_sets(vec![due("a", 1, 1), due("a", 2, 1)], 1)),
            [vec!["a@01", "a@02"]]
        );
        assert!(merchant_sets(Vec::new(), MERCHANTS_PER_CLOSE).is_empty());
    }
}
