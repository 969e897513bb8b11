//! Business days for payout arrival: Saturdays, Sundays and loaded holidays do not
//! count.

use std::collections::BTreeSet;

use chrono::{Datelike, Days, NaiveDate, Weekday};

/// True when `date` is a business day under `holidays`.
pub fn is_business_day(date: NaiveDate, holidays: &BTreeSet<NaiveDate>) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !holidays.contains(&date)
}

/// The date `n` business days after `date` (T+n). With `n` = 0, `date` itself when it
/// is a business day, else the next business day.
pub fn add_business_days(date: NaiveDate, n: u32, holidays: &BTreeSet<NaiveDate>) -> NaiveDate {
    let next = |d: NaiveDate| d.checked_add_days(Days::new(1)).unwrap_or(d);
    let mut day = date;
    if n == 0 {
        while !is_business_day(day, holidays) && day != NaiveDate::MAX {
            day = next(day);
        }
        return day;
    }
    let mut remaining = n;
    while remaining > 0 && day != NaiveDate::MAX {
        day = next(day);
        if is_business_day(day, holidays) {
            remaining -= 1;
        }
    }
    day
}

/// When money of a cycle dated `cycle_date` reaches the merchant's bank: the payout
/// delay in business days counted from the cycle date, or from the merchant's local
/// today when that date has already passed (catching up, or paying again money that
/// came back). The one arrival rule: payouts are planned and pending money is shown
/// with it.
pub fn expected_arrival(
    cycle_date: NaiveDate,
    local_today: NaiveDate,
    delay_business_days: u32,
    holidays: &BTreeSet<NaiveDate>,
) -> NaiveDate {
    let arrival = add_business_days(cycle_date, delay_business_days, holidays);
    if arrival < local_today {
        add_business_days(local_today, delay_business_days, holidays)
    } else {
        arrival
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn money_arrives_after_the_delay_from_the_cycle_or_from_today_when_that_passed() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let none = BTreeSet::new();
        // Friday 2026-11-27, T+1: Monday.
        assert_eq!(
            expected_arrival(d("2026-11-27"), d("2026-11-27"), 1, &none),
            d("2026-11-30")
        );
        // The same cycle seen on Wednesday: the Monday has passed, so T+1 from today.
        assert_eq!(
            expected_arrival(d("2026-11-27"), d("2026-12-02"), 1, &none),
            d("2026-12-03")
        );
        // A holiday on the Monday moves it on.
        let holiday: BTreeSet<NaiveDate> = [d("2026-11-30")].into();
        assert_eq!(
            expected_arrival(d("2026-11-27"), d("2026-11-27"), 1, &holiday),
            d("2026-12-01")
        );
        // T+0 on a business day is the day itself.
        assert_eq!(
            expected_arrival(d("2026-12-02"), d("2026-12-02"), 0, &none),
            d("2026-12-02")
        );
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn t_plus_one_skips_the_weekend() {
        let none = BTreeSet::new();
        // 2026-11-27 is a Friday.
        assert_eq!(
            add_business_days(d("2026-11-27"), 1, &none),
            d("2026-11-30")
        );
        assert_eq!(
            add_business_days(d("2026-11-28"), 1, &none),
            d("2026-11-30")
        );
        assert_eq!(
            add_business_days(d("2026-11-26"), 1, &none),
            d("2026-11-27")
        );
        assert_eq!(
            add_business_days(d("2026-11-27"), 3, &none),
            d("2026-12-02")
        );
    }

    #[test]
    fn loaded_holidays_are_skipped() {
        let holidays: BTreeSet<NaiveDate> = [d("2026-11-30"), d("2026-12-01")].into();
        assert_eq!(
            add_business_days(d("2026-11-27"), 1, &holidays),
            d("2026-12-02")
        );
        assert_eq!(
            add_business_days(d("2026-11-28"), 0, &holidays),
            d("2026-12-02")
        );
    }

    proptest! {
        #[test]
        fn the_result_is_a_business_day_with_exactly_n_business_days_between(
            days in 0_u64..2000, n in 1_u32..10,
        ) {
            let start = d("2024-01-01").checked_add_days(Days::new(days)).unwrap();
            let holidays: BTreeSet<NaiveDate> = [start.checked_add_days(Days::new(1)).unwrap()].into();
            let end = add_business_days(start, n, &holidays);
            prop_assert!(is_business_day(end, &holidays));
            let between = start.iter_days().skip(1).take_while(|x| *x <= end).filter(|x| is_business_day(*x, &holidays)).count();
            prop_assert_eq!(between, usize::try_from(n).unwrap());
        }
    }
}
