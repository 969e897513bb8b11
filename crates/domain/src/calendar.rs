//! The merchant's settlement calendar: cutoff instants and business dates.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A merchant's daily cutoff in its own time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoff {
    /// IANA time zone of the merchant.
    pub time_zone: Tz,
    /// Local wall-clock time of the daily cutoff.
    pub local_time: NaiveTime,
}

impl Cutoff {
    /// The instant of the cutoff of `date`.
    ///
    /// Where the local time does not exist that day (a DST gap) it is the first instant
    /// after the gap; where it exists twice (DST overlap) it is the earlier instant.
    pub fn instant_on(&self, date: NaiveDate) -> DateTime<Utc> {
        let wall = date.and_time(self.local_time);
        match self.time_zone.from_local_datetime(&wall) {
            LocalResult::Single(t) => t.with_timezone(&Utc),
            LocalResult::Ambiguous(earlier, _) => earlier.with_timezone(&Utc),
            LocalResult::None => first_instant_at_or_after(self.time_zone, wall),
        }
    }

    /// The business date an instant belongs to: its local date if at or before that
    /// date's cutoff, else the next date.
    pub fn business_date_of(&self, instant: DateTime<Utc>) -> NaiveDate {
        let local_date = instant.with_timezone(&self.time_zone).date_naive();
        if instant <= self.instant_on(local_date) {
            local_date
        } else {
            local_date.succ_opt().unwrap_or(local_date)
        }
    }
}

/// The earliest instant whose local wall time is at or after `wall`, for a `wall`
/// that falls into a gap. Gaps last hours at most (a skipped day at the very most), so
/// a binary search over two days of seconds finds the transition exactly.
fn first_instant_at_or_after(tz: Tz, wall: NaiveDateTime) -> DateTime<Utc> {
    let local_of = |secs: i64| {
        DateTime::<Utc>::from_timestamp(secs, 0).map(|t| t.with_timezone(&tz).naive_local())
    };
    // Interpreting the wall time as UTC lands within a day of the real instant.
    let guess = wall.and_utc().timestamp();
    let mut lo = guess - 2 * 86_400; // local(lo) < wall
    let mut hi = guess + 2 * 86_400; // local(hi) >= wall
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        match local_of(mid) {
            Some(local) if local >= wall => hi = mid,
            _ => lo = mid,
        }
    }
    DateTime::<Utc>::from_timestamp(hi, 0).unwrap_or_else(|| wall.and_utc())
}

/// Adds whole hours to an instant, saturating at the far future.
pub fn add_hours(instant: DateTime<Utc>, hours: u32) -> DateTime<Utc> {
    instant
        .checked_add_signed(Duration::hours(i64::from(hours)))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveTime;
    use proptest::prelude::*;

    fn cutoff(tz: Tz, h: u32, m: u32) -> Cutoff {
        Cutoff {
            time_zone: tz,
            local_time: NaiveTime::from_hms_opt(h, m, 0).unwrap(),
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn exactly_at_cutoff_belongs_to_that_date_and_one_second_later_to_the_next() {
        let c = cutoff(chrono_tz::America::New_York, 22, 0);
        // 22:00 EST is 03:00 UTC the next day.
        assert_eq!(
            c.instant_on(date("2026-11-26")),
            utc("2026-11-27T03:00:00Z")
        );
        assert_eq!(
            c.business_date_of(utc("2026-11-27T03:00:00Z")),
            date("2026-11-26")
        );
        assert_eq!(
            c.business_date_of(utc("2026-11-27T03:00:01Z")),
            date("2026-11-27")
        );
    }

    #[test]
    fn zones_east_of_utc_use_their_own_local_date() {
        let c = cutoff(chrono_tz::Asia::Shanghai, 23, 0);
        // 23:00 in Shanghai is 15:00 UTC the same day.
        assert_eq!(
            c.instant_on(date("2026-11-26")),
            utc("2026-11-26T15:00:00Z")
        );
        assert_eq!(
            c.business_date_of(utc("2026-11-26T14:59:59Z")),
            date("2026-11-26")
        );
        assert_eq!(
            c.business_date_of(utc("2026-11-26T15:00:01Z")),
            date("2026-11-27")
        );
        // 01:00 local on the 27th is still before the 27th's cutoff.
        assert_eq!(
            c.business_date_of(utc("2026-11-26T17:00:00Z")),
            date("2026-11-27")
        );
    }

    #[test]
    fn cutoff_inside_a_dst_gap_is_the_first_instant_after_the_gap() {
        // New York springs forward on 2026-03-08 from 02:00 EST to 03:00 EDT.
        let c = cutoff(chrono_tz::America::New_York, 2, 30);
        assert_eq!(
            c.instant_on(date("2026-03-08")),
            utc("2026-03-08T07:00:00Z")
        );
        // The day before and after use the ordinary offsets.
        assert_eq!(
            c.instant_on(date("2026-03-07")),
            utc("2026-03-07T07:30:00Z")
        );
        assert_eq!(
            c.instant_on(date("2026-03-09")),
            utc("2026-03-09T06:30:00Z")
        );
    }

    #[test]
    fn cutoff_inside_a_dst_overlap_is_the_earlier_instant() {
        // New York falls back on 2026-11-01: 01:30 happens at 05:30Z (EDT) and 06:30Z (EST).
        let c = cutoff(chrono_tz::America::New_York, 1, 30);
        assert_eq!(
            c.instant_on(date("2026-11-01")),
            utc("2026-11-01T05:30:00Z")
        );
        assert_eq!(
            c.business_date_of(utc("2026-11-01T05:30:00Z")),
            date("2026-11-01")
        );
        assert_eq!(
            c.business_date_of(utc("2026-11-01T06:00:00Z")),
            date("2026-11-02")
        );
    }

    #[test]
    fn a_gap_in_a_zone_east_of_utc_is_handled_too() {
        // Berlin springs forward on 2026-03-29 from 02:00 CET to 03:00 CEST (01:00Z).
        let c = cutoff(chrono_tz::Europe::Berlin, 2, 15);
        assert_eq!(
            c.instant_on(date("2026-03-29")),
            utc("2026-03-29T01:00:00Z")
        );
    }

    fn any_zone() -> impl Strategy<Value = Tz> {
        proptest::sample::select(vec![
            chrono_tz::UTC,
            chrono_tz::America::New_York,
            chrono_tz::America::Los_Angeles,
            chrono_tz::America::Sao_Paulo,
            chrono_tz::Europe::London,
            chrono_tz::Europe::Berlin,
            chrono_tz::Asia::Shanghai,
            chrono_tz::Asia::Kolkata,
            chrono_tz::Australia::Sydney,
            chrono_tz::Pacific::Auckland,
            chrono_tz::Pacific::Chatham,
        ])
    }

    proptest! {
        #[test]
        fn cutoff_of_the_business_date_is_never_before_the_instant(
            secs in 1_600_000_000_i64..1_900_000_000,
            tz in any_zone(),
            h in 0_u32..24, m in 0_u32..60,
        ) {
            let c = cutoff(tz, h, m);
            let t = DateTime::<Utc>::from_timestamp(secs, 0).unwrap();
            let d = c.business_date_of(t);
            prop_assert!(t <= c.instant_on(d));
            // and it is after the previous date's cutoff
            prop_assert!(t > c.instant_on(d.pred_opt().unwrap()));
        }

        #[test]
        fn cutoffs_strictly_increase_day_by_day(
            days in 0_i64..3650, tz in any_zone(), h in 0_u32..24, m in 0_u32..60,
        ) {
            let c = cutoff(tz, h, m);
            let d = date("2020-01-01") + Duration::days(days);
            prop_assert!(c.instant_on(d) < c.instant_on(d.succ_opt().unwrap()));
        }
    }
}
