//! The decision of a batch close, made in one pure call from what the close carries
//! and the merchant's settlement profile: the host's totals, the differences from the
//! terminal's, lateness, the fee and the journal entry. The caller reads what the
//! plan needs before it and writes what it decides after it.

use std::collections::HashSet;

use chrono::{DateTime, Days, NaiveDate, Utc};

use crate::batch::{BatchClose, FieldError, Totals, TransactionLine};
use crate::calendar::add_hours;
use crate::fees::{batch_fee, non_voided_sales};
use crate::lateness::{judge, BatchStatus, Lateness};
use crate::ledger::{batch_acceptance_entry, JournalEntry};
use crate::merchant::SettlementProfile;
use crate::money::Currency;
use crate::presentment::presents;
use crate::reconciliation::{differences, host_totals, TotalDifference};

/// What a close decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClosePlan {
    /// The control totals differ from the lines: nothing is booked.
    OutOfBalance(Vec<TotalDifference>),
    /// The batch is kept, booked or held per its lateness.
    Batch(BatchPlan),
}

/// A balanced batch: what it holds, when it belongs, what it costs and what it books.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPlan {
    /// The totals computed from the lines (equal to the terminal's).
    pub totals: Totals,
    /// Sales less voids less refunds.
    pub net_amount_minor: i64,
    /// Accepted, accepted late or held, with the dates and instants behind it.
    pub lateness: Lateness,
    /// The fee charged at payout; zero for a held batch, charged only once booked.
    pub fee_minor: i64,
    /// The entry booking the net into the merchant's pending account; none for a held
    /// batch or a batch whose net is zero.
    pub entry: Option<JournalEntry>,
}

/// Decides a close of `merchant_id` received at `received_at`. Lines whose RRN is in
/// `settled_elsewhere` were settled already by a host batch (auto-close): they count
/// in the reconciliation with the terminal's totals, but the batch's totals, fee and
/// entry leave them out (and the voids of those sales), so they are not paid again.
pub fn plan_close(
    merchant_id: &str,
    close: &BatchClose,
    profile: &SettlementProfile,
    received_at: DateTime<Utc>,
    settled_elsewhere: &HashSet<&str>,
) -> Result<ClosePlan, FieldError> {
    let all_totals = host_totals(&close.lines)?;
    let diffs = differences(&close.terminal_totals, &all_totals);
    if !diffs.is_empty() {
        return Ok(ClosePlan::OutOfBalance(diffs));
    }
    let oldest = close
        .oldest_captured_at()
        .ok_or_else(|| FieldError::new("transactions", "must hold at least one line"))?;
    let lateness = judge(profile, oldest, received_at);
    if settled_elsewhere.is_empty() {
        return book_plan(
            merchant_id,
            close.currency,
            &close.lines,
            all_totals,
            lateness,
            profile,
        );
    }
    let paid = lines_to_pay(&close.lines, settled_elsewhere);
    let totals = host_totals(&paid)?;
    book_plan(
        merchant_id,
        close.currency,
        &paid,
        totals,
        lateness,
        profile,
    )
}

/// The lines a close pays when some were settled already: all but the sales and
/// refunds whose RRN is in `settled` and the voids of those sales.
pub fn lines_to_pay(lines: &[TransactionLine], settled: &HashSet<&str>) -> Vec<TransactionLine> {
    let settled_stans: HashSet<&str> = lines
        .iter()
        .filter(|l| presents(l) && settled.contains(l.rrn.as_str()))
        .map(|l| l.stan.as_str())
        .collect();
    lines
        .iter()
        .filter(|l| {
            if presents(l) {
                !settled_stans.contains(l.stan.as_str())
            } else {
                !l.original_stan
                    .as_deref()
                    .is_some_and(|s| settled_stans.contains(s))
            }
        })
        .cloned()
        .collect()
}

/// Decides a host batch (auto-close) of `merchant_id` for `business_date`: the
/// terminal's unsettled authorizations of that day as lines, booked in that day's
/// cycle with the merchant's fees, whatever the hour it is made.
pub fn plan_auto_close(
    merchant_id: &str,
    currency: Currency,
    lines: &[TransactionLine],
    profile: &SettlementProfile,
    business_date: NaiveDate,
) -> Result<BatchPlan, FieldError> {
    if lines.is_empty() {
        return Err(FieldError::new(
            "transactions",
            "must hold at least one line",
        ));
    }
    let totals = host_totals(lines)?;
    let cutoff_at = profile.cutoff.instant_on(business_date);
    let lateness = Lateness {
        status: BatchStatus::AutoClosed,
        business_date,
        cycle_date: Some(business_date),
        cutoff_at,
        grace_deadline: add_hours(cutoff_at, profile.grace_period_hours),
        late_by_seconds: 0,
    };
    match book_plan(merchant_id, currency, lines, totals, lateness, profile)? {
        ClosePlan::Batch(plan) => Ok(plan),
        ClosePlan::OutOfBalance(_) => Err(FieldError::new("transactions", "do not balance")),
    }
}

/// The plan of a balanced batch: its fee and entry when it is booked.
fn book_plan(
    merchant_id: &str,
    currency: Currency,
    lines: &[TransactionLine],
    totals: Totals,
    lateness: Lateness,
    profile: &SettlementProfile,
) -> Result<ClosePlan, FieldError> {
    let overflow = || FieldError::new("transactions", "amounts overflow");
    let net_amount_minor = totals.net_amount_minor().ok_or_else(overflow)?;
    let booked = lateness.status.is_booked();
    // A batch held for operations is not charged until it is booked.
    let fee_minor = if booked {
        let (sale_count, sale_amount) = non_voided_sales(lines);
        batch_fee(sale_count, sale_amount, profile.pricing).ok_or_else(overflow)?
    } else {
        0
    };
    let entry = if booked {
        batch_acceptance_entry(merchant_id, currency, net_amount_minor)
    } else {
        None
    };
    Ok(ClosePlan::Batch(BatchPlan {
        totals,
        net_amount_minor,
        lateness,
        fee_minor,
        entry,
    }))
}

/// How many cycle dates after its own a booking looks at for one still open.
pub const CYCLE_LOOKAHEAD_DAYS: u32 = 31;

/// The cycle a booking for `date` joins: the first date from `date` on whose cycle is
/// not closed (a cycle closes while a close is in flight; its batches go to the next
/// one). `closed` holds the closed cycle dates from `date` on, in any order. `None`
/// when every date of the lookahead is closed.
pub fn open_cycle_date(date: NaiveDate, closed: &[NaiveDate]) -> Option<NaiveDate> {
    (0..CYCLE_LOOKAHEAD_DAYS)
        .filter_map(|d| date.checked_add_days(Days::new(u64::from(d))))
        .find(|candidate| !closed.contains(candidate))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{LineType, TransactionLine};
    use crate::merchant::Pricing;
    use chrono::TimeZone;

    fn profile() -> SettlementProfile {
        SettlementProfile::new(
            "UTC",
            "23:00",
            24,
            1,
            Pricing {
                mdr_basis_points: 100,
                fixed_fee_minor: 5,
            },
        )
        .unwrap()
    }

    fn sale(stan: &str, amount: i64, at: DateTime<Utc>) -> TransactionLine {
        TransactionLine {
            stan: stan.into(),
            rrn: format!("rrn{stan}"),
            line_type: LineType::Sale,
            amount_minor: amount,
            captured_at: at,
            original_stan: None,
            card_brand: None,
            masked_pan: None,
            auth_code: None,
        }
    }

    fn close(lines: Vec<TransactionLine>, totals: Totals) -> BatchClose {
        BatchClose {
            batch_number: 1,
            currency: Currency::Eur,
            terminal_totals: totals,
            lines,
        }
    }

    #[test]
    fn a_balanced_close_on_time_is_booked_with_fee_and_entry() {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
        let totals = Totals {
            sale_count: 2,
            sale_amount_minor: 3_000,
            ..Totals::default()
        };
        let c = close(vec![sale("1", 1_000, at), sale("2", 2_000, at)], totals);
        let ClosePlan::Batch(plan) = plan_close("m1", &c, &profile(), at, &HashSet::new()).unwrap()
        else {
            panic!("balanced close");
        };
        assert_eq!(plan.lateness.status, BatchStatus::Accepted);
        assert_eq!(plan.net_amount_minor, 3_000);
        // 1% of 3,000 plus 5 per sale.
        assert_eq!(plan.fee_minor, 40);
        let entry = plan.entry.expect("an entry");
        assert_eq!(
            entry.postings().iter().map(|p| p.amount_minor).sum::<i64>(),
            0
        );
    }

    #[test]
    fn a_close_outside_grace_is_held_without_fee_or_entry() {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
        let received = Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap();
        let totals = Totals {
            sale_count: 1,
            sale_amount_minor: 1_000,
            ..Totals::default()
        };
        let c = close(vec![sale("1", 1_000, at)], totals);
        let ClosePlan::Batch(plan) =
            plan_close("m1", &c, &profile(), received, &HashSet::new()).unwrap()
        else {
            panic!("balanced close");
        };
        assert_eq!(plan.lateness.status, BatchStatus::RejectedOutsideGrace);
        assert_eq!(plan.fee_minor, 0);
        assert!(plan.entry.is_none());
    }

    #[test]
    fn differing_totals_are_listed_and_nothing_else_is_decided() {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
        let totals = Totals {
            sale_count: 1,
            sale_amount_minor: 999,
            ..Totals::default()
        };
        let c = close(vec![sale("1", 1_000, at)], totals);
        let ClosePlan::OutOfBalance(diffs) =
            plan_close("m1", &c, &profile(), at, &HashSet::new()).unwrap()
        else {
            panic!("out of balance");
        };
        assert_eq!(diffs.len(), 1);
        assert_eq!((diffs[0].terminal, diffs[0].host), (999, 1_000));
    }

    #[test]
    fn lines_settled_elsewhere_balance_but_are_not_paid_again() {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
        let mut void = sale("3", 1_000, at);
        void.line_type = LineType::Void;
        void.original_stan = Some("1".into());
        let totals = Totals {
            sale_count: 2,
            sale_amount_minor: 3_000,
            void_count: 1,
            void_amount_minor: 1_000,
            ..Totals::default()
        };
        let c = close(
            vec![sale("1", 1_000, at), sale("2", 2_000, at), void],
            totals,
        );
        let settled: HashSet<&str> = ["rrn2"].into_iter().collect();
        let ClosePlan::Batch(plan) = plan_close("m1", &c, &profile(), at, &settled).unwrap() else {
            panic!("balanced close");
        };
        // Sale 2 was paid by the host batch; sale 1 and its void net to zero.
        assert_eq!(plan.totals.sale_count, 1);
        assert_eq!(plan.net_amount_minor, 0);
        assert_eq!(plan.fee_minor, 0);
        assert!(plan.entry.is_none());
        // Its own totals must still balance on all its lines.
        let mut wrong = c.clone();
        wrong.terminal_totals.sale_count = 1;
        assert!(matches!(
            plan_close("m1", &wrong, &profile(), at, &settled).unwrap(),
            ClosePlan::OutOfBalance(_)
        ));
    }

    #[test]
    fn an_auto_close_is_booked_in_its_own_days_cycle_with_fees() {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let plan = plan_auto_close(
            "m1",
            Currency::Eur,
            &[sale("1", 1_000, at)],
            &profile(),
            day,
        )
        .unwrap();
        assert_eq!(plan.lateness.status, BatchStatus::AutoClosed);
        assert_eq!(plan.lateness.cycle_date, Some(day));
        assert_eq!(plan.lateness.late_by_seconds, 0);
        assert_eq!(plan.fee_minor, 15);
        assert!(plan.entry.is_some());
        assert!(plan_auto_close("m1", Currency::Eur, &[], &profile(), day).is_err());
    }

    #[test]
    fn the_open_cycle_skips_closed_dates() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let next = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        let after = NaiveDate::from_ymd_opt(2026, 12, 3).unwrap();
        assert_eq!(open_cycle_date(d, &[]), Some(d));
        assert_eq!(open_cycle_date(d, &[next, d]), Some(after));
        let all: Vec<NaiveDate> = (0..CYCLE_LOOKAHEAD_DAYS)
            .map(|i| d + Days::new(u64::from(i)))
            .collect();
        assert_eq!(open_cycle_date(d, &all), None);
    }
}
