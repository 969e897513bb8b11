//! The decision of a batch close, made in one pure call from what the close carries
//! and the merchant's settlement profile: the host's totals, the differences from the
//! terminal's, lateness, the fee and the journal entry. The caller reads what the
//! plan needs before it and writes what it decides after it.

use chrono::{DateTime, Days, NaiveDate, Utc};

use crate::batch::{BatchClose, FieldError, Totals};
use crate::fees::{batch_fee, non_voided_sales};
use crate::lateness::{judge, Lateness};
use crate::ledger::{batch_acceptance_entry, JournalEntry};
use crate::merchant::SettlementProfile;
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

/// Decides a close of `merchant_id` received at `received_at`.
pub fn plan_close(
    merchant_id: &str,
    close: &BatchClose,
    profile: &SettlementProfile,
    received_at: DateTime<Utc>,
) -> Result<ClosePlan, FieldError> {
    let totals = host_totals(&close.lines)?;
    let diffs = differences(&close.terminal_totals, &totals);
    if !diffs.is_empty() {
        return Ok(ClosePlan::OutOfBalance(diffs));
    }
    let overflow = || FieldError::new("transactions", "amounts overflow");
    let oldest = close
        .oldest_captured_at()
        .ok_or_else(|| FieldError::new("transactions", "must hold at least one line"))?;
    let lateness = judge(profile, oldest, received_at);
    let net_amount_minor = totals.net_amount_minor().ok_or_else(overflow)?;
    let booked = lateness.status.is_booked();
    // A batch held for operations is not charged until it is booked.
    let fee_minor = if booked {
        let (sale_count, sale_amount) = non_voided_sales(&close.lines);
        batch_fee(sale_count, sale_amount, profile.pricing).ok_or_else(overflow)?
    } else {
        0
    };
    let entry = if booked {
        batch_acceptance_entry(merchant_id, close.currency, net_amount_minor)
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
    use crate::lateness::BatchStatus;
    use crate::merchant::Pricing;
    use crate::money::Currency;
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
        let ClosePlan::Batch(plan) = plan_close("m1", &c, &profile(), at).unwrap() else {
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
        let ClosePlan::Batch(plan) = plan_close("m1", &c, &profile(), received).unwrap() else {
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
        let ClosePlan::OutOfBalance(diffs) = plan_close("m1", &c, &profile(), at).unwrap() else {
            panic!("out of balance");
        };
        assert_eq!(diffs.len(), 1);
        assert_eq!((diffs[0].terminal, diffs[0].host), (999, 1_000));
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
