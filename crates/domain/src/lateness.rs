//! Whether a batch close is on time, late inside the grace window, or too late.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::add_hours;
use crate::merchant::SettlementProfile;

/// The outcome of a balanced batch close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    /// Closed by the cutoff of its business date.
    Accepted,
    /// Closed after the cutoff but inside the grace window; paid in a later cycle.
    AcceptedLate,
    /// Closed after the grace window; kept for the record, not booked.
    RejectedOutsideGrace,
    /// Rejected outside grace, then accepted by an operator with a written reason.
    AcceptedByOperator,
    /// Rejected outside grace, then declined by an operator with a written reason:
    /// never paid, and its transactions may be presented again.
    Declined,
    /// Closed by the host on the terminal's behalf (auto-close) with the terminal's
    /// unsettled authorizations of a business day; booked in that day's cycle.
    AutoClosed,
}

impl std::fmt::Display for BatchStatus {
    /// The stable name, as stored and as the API shows it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl BatchStatus {
    /// The stable name used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            BatchStatus::Accepted => "accepted",
            BatchStatus::AcceptedLate => "accepted_late",
            BatchStatus::RejectedOutsideGrace => "rejected_outside_grace",
            BatchStatus::AcceptedByOperator => "accepted_by_operator",
            BatchStatus::Declined => "declined",
            BatchStatus::AutoClosed => "auto_closed",
        }
    }

    /// Parses the stable name.
    pub fn parse(text: &str) -> Option<Self> {
        [
            BatchStatus::Accepted,
            BatchStatus::AcceptedLate,
            BatchStatus::RejectedOutsideGrace,
            BatchStatus::AcceptedByOperator,
            BatchStatus::Declined,
            BatchStatus::AutoClosed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// True when the batch is booked in the ledger and will be paid.
    pub fn is_booked(self) -> bool {
        !matches!(
            self,
            BatchStatus::RejectedOutsideGrace | BatchStatus::Declined
        )
    }

    /// True while the batch waits for an operator's decision.
    pub fn is_held(self) -> bool {
        self == BatchStatus::RejectedOutsideGrace
    }
}

/// Who closed a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchOrigin {
    /// The terminal, under its own batch number.
    Terminal,
    /// The host, on the terminal's behalf (auto-close): no terminal batch number.
    Host,
}

impl BatchOrigin {
    /// The stable name used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            BatchOrigin::Terminal => "terminal",
            BatchOrigin::Host => "host",
        }
    }

    /// Parses the stable name.
    pub fn parse(text: &str) -> Option<Self> {
        [BatchOrigin::Terminal, BatchOrigin::Host]
            .into_iter()
            .find(|o| o.as_str() == text)
    }
}

/// The judgement of one close against the merchant's calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lateness {
    /// Accepted, accepted late or rejected.
    pub status: BatchStatus,
    /// Business date of the batch's oldest transaction.
    pub business_date: NaiveDate,
    /// The cycle that pays the batch: the business date of the receive instant (for
    /// an on-time batch, its own business date); none when rejected.
    pub cycle_date: Option<NaiveDate>,
    /// Cutoff instant of the business date.
    pub cutoff_at: DateTime<Utc>,
    /// Last instant at which the batch is still accepted.
    pub grace_deadline: DateTime<Utc>,
    /// Seconds after the cutoff the close was received; zero when on time.
    pub late_by_seconds: i64,
}

/// Judges a close received by the host at `received_at` whose oldest transaction was
/// captured at `oldest_captured_at`. Only the host's clock decides lateness; the
/// terminal's capture times only decide the business date.
pub fn judge(
    profile: &SettlementProfile,
    oldest_captured_at: DateTime<Utc>,
    received_at: DateTime<Utc>,
) -> Lateness {
    let cutoff = profile.cutoff;
    let business_date = cutoff.business_date_of(oldest_captured_at);
    let cutoff_at = cutoff.instant_on(business_date);
    let grace_deadline = add_hours(cutoff_at, profile.grace_period_hours);
    // Any fraction of a second late counts as a whole second late.
    let late_by_millis = (received_at - cutoff_at).num_milliseconds().max(0);
    let late_by_seconds = late_by_millis.saturating_add(999) / 1000;
    let status = if received_at <= cutoff_at {
        BatchStatus::Accepted
    } else if received_at <= grace_deadline {
        BatchStatus::AcceptedLate
    } else {
        BatchStatus::RejectedOutsideGrace
    };
    let cycle_date = status
        .is_booked()
        .then(|| cutoff.business_date_of(received_at));
    Lateness {
        status,
        business_date,
        cycle_date,
        cutoff_at,
        grace_deadline,
        late_by_seconds,
    }
}

/// Most business dates looked at when searching an open deadline: a batch older than
/// the longest grace window can never be accepted.
const MAX_OPEN_DATES: u32 = 10;

/// The earliest grace deadline still open at `now` among the business dates from
/// `from` to `until`: the last moment a close holding sales of the oldest business date
/// that can still make it is accepted. `None` when every one has passed.
pub fn earliest_open_deadline(
    profile: &SettlementProfile,
    from: NaiveDate,
    until: NaiveDate,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    // Dates older than the grace window are closed for good; start within it.
    let mut date = from.max(until - chrono::Days::new(u64::from(MAX_OPEN_DATES)));
    while date <= until {
        let deadline = add_hours(profile.cutoff.instant_on(date), profile.grace_period_hours);
        if deadline >= now {
            return Some(deadline);
        }
        date = date.succ_opt()?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merchant::Pricing;
    use chrono::Duration;
    use proptest::prelude::*;

    fn profile(tz: &str, cutoff: &str, grace_hours: u32) -> SettlementProfile {
        SettlementProfile::new(
            tz,
            cutoff,
            grace_hours,
            1,
            Pricing {
                mdr_basis_points: 0,
                fixed_fee_minor: 0,
            },
        )
        .unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn received_exactly_at_cutoff_is_on_time() {
        let p = profile("America/New_York", "22:00", 72);
        let l = judge(&p, utc("2026-11-26T14:15:00Z"), utc("2026-11-27T03:00:00Z"));
        assert_eq!(l.status, BatchStatus::Accepted);
        assert_eq!(l.business_date, "2026-11-26".parse().unwrap());
        assert_eq!(l.cycle_date, Some("2026-11-26".parse().unwrap()));
        assert_eq!(l.late_by_seconds, 0);
    }

    #[test]
    fn one_second_after_cutoff_is_late_and_paid_in_the_next_cycle() {
        let p = profile("America/New_York", "22:00", 72);
        let l = judge(&p, utc("2026-11-26T14:15:00Z"), utc("2026-11-27T03:00:01Z"));
        assert_eq!(l.status, BatchStatus::AcceptedLate);
        assert_eq!(l.late_by_seconds, 1);
        assert_eq!(l.cycle_date, Some("2026-11-27".parse().unwrap()));
        assert_eq!(l.grace_deadline, utc("2026-11-30T03:00:00Z"));
    }

    #[test]
    fn exactly_at_grace_deadline_is_late_and_one_second_after_is_rejected() {
        let p = profile("Asia/Shanghai", "23:00", 72);
        let captured = utc("2026-11-26T02:00:00Z");
        let deadline = utc("2026-11-29T15:00:00Z");
        assert_eq!(
            judge(&p, captured, deadline).status,
            BatchStatus::AcceptedLate
        );
        let rejected = judge(&p, captured, deadline + Duration::seconds(1));
        assert_eq!(rejected.status, BatchStatus::RejectedOutsideGrace);
        assert_eq!(rejected.cycle_date, None);
        assert_eq!(rejected.grace_deadline, deadline);
    }

    #[test]
    fn a_fraction_of_a_second_late_is_late_by_one_second() {
        let p = profile("UTC", "22:00", 72);
        let l = judge(
            &p,
            utc("2026-11-26T10:00:00Z"),
            utc("2026-11-26T22:00:00.400Z"),
        );
        assert_eq!(l.status, BatchStatus::AcceptedLate);
        assert_eq!(l.late_by_seconds, 1);
    }

    #[test]
    fn the_cycle_is_the_business_date_of_receipt_even_for_a_capture_slightly_ahead() {
        // Received two minutes before the cutoff; the terminal's clock says two after.
        let p = profile("UTC", "22:00", 72);
        let l = judge(&p, utc("2026-11-26T22:02:00Z"), utc("2026-11-26T21:58:00Z"));
        assert_eq!(l.status, BatchStatus::Accepted);
        assert_eq!(l.business_date, "2026-11-27".parse().unwrap());
        assert_eq!(l.cycle_date, Some("2026-11-26".parse().unwrap()));
    }

    #[test]
    fn the_earliest_open_deadline_skips_dates_already_past_their_grace() {
        let p = profile("UTC", "22:00", 24);
        let now = utc("2026-11-27T23:00:00Z");
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        // The 25th's deadline (26th 22:00) has passed; the 26th's (27th 22:00) too;
        // the 27th's (28th 22:00) is open.
        assert_eq!(
            earliest_open_deadline(&p, d("2026-11-25"), d("2026-11-27"), now),
            Some(utc("2026-11-28T22:00:00Z"))
        );
        assert_eq!(
            earliest_open_deadline(&p, d("2026-11-25"), d("2026-11-26"), now),
            None
        );
    }

    #[test]
    fn zero_grace_rejects_anything_after_cutoff() {
        let p = profile("UTC", "00:00", 0);
        let l = judge(&p, utc("2026-11-26T10:00:00Z"), utc("2026-11-27T00:00:01Z"));
        assert_eq!(l.status, BatchStatus::RejectedOutsideGrace);
    }

    proptest! {
        #[test]
        fn status_follows_the_receive_instant_monotonically(
            captured in 1_700_000_000_i64..1_800_000_000,
            delay in 0_i64..(10 * 86_400),
            grace in 0_u32..=168,
            tz in proptest::sample::select(vec!["UTC", "America/Los_Angeles", "Europe/London", "Asia/Tokyo", "Australia/Sydney"]),
        ) {
            let p = profile(tz, "21:30", grace);
            let captured = DateTime::<Utc>::from_timestamp(captured, 0).unwrap();
            let received = captured + Duration::seconds(delay);
            let l = judge(&p, captured, received);
            match l.status {
                BatchStatus::Accepted => {
                    prop_assert!(received <= l.cutoff_at);
                    prop_assert_eq!(l.cycle_date, Some(l.business_date));
                }
                BatchStatus::AcceptedLate => {
                    prop_assert!(received > l.cutoff_at && received <= l.grace_deadline);
                    prop_assert!(l.cycle_date.unwrap() > l.business_date);
                    prop_assert_eq!(l.late_by_seconds, (received - l.cutoff_at).num_seconds());
                    prop_assert_eq!(l.cycle_date, Some(p.cutoff.business_date_of(received)));
                }
                BatchStatus::RejectedOutsideGrace => prop_assert!(received > l.grace_deadline),
                BatchStatus::AcceptedByOperator | BatchStatus::Declined | BatchStatus::AutoClosed => {
                    prop_assert!(false, "judge never decides for an operator or the host")
                }
            }
        }
    }
}
