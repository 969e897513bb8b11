//! A merchant's settlement profile and its validation.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;

use crate::calendar::Cutoff;

/// Grace period applied when a merchant does not choose one.
pub const DEFAULT_GRACE_PERIOD_HOURS: u32 = 72;
/// Longest grace period: card-read transactions are expected within 7 days.
pub const MAX_GRACE_PERIOD_HOURS: u32 = 168;
/// Payout delay applied when a merchant does not choose one (T+1).
pub const DEFAULT_PAYOUT_DELAY_BUSINESS_DAYS: u32 = 1;
/// Longest payout delay the service accepts.
pub const MAX_PAYOUT_DELAY_BUSINESS_DAYS: u32 = 30;
/// MDR can not exceed the sale itself.
pub const MAX_MDR_BASIS_POINTS: u32 = 10_000;

/// How and when a merchant is settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementProfile {
    /// The merchant's daily cutoff in its time zone.
    pub cutoff: Cutoff,
    /// How long after the cutoff a late batch is still accepted.
    pub grace_period_hours: u32,
    /// Business days between a cycle date and the payout's arrival.
    pub payout_delay_business_days: u32,
    /// Pricing applied to the merchant's sales.
    pub pricing: Pricing,
    /// When the host closes a terminal's unsettled authorizations of a business day:
    /// this long after its cutoff (auto-close); `None` when it does not.
    pub auto_close_after: Option<chrono::Duration>,
}

/// The acquirer's fee on a merchant's sales.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pricing {
    /// Merchant discount rate in basis points of each sale.
    pub mdr_basis_points: u32,
    /// Fixed fee per sale, in minor units of the sale's currency.
    pub fixed_fee_minor: i64,
}

/// Why a settlement profile was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("time_zone is not an IANA time zone name")]
    UnknownTimeZone,
    #[error("cutoff_local_time must be HH:MM or HH:MM:SS")]
    BadCutoff,
    #[error("grace_period_hours must be between 0 and {MAX_GRACE_PERIOD_HOURS}")]
    GraceTooLong,
    #[error("payout_delay_business_days must be between 0 and {MAX_PAYOUT_DELAY_BUSINESS_DAYS}")]
    PayoutDelayTooLong,
    #[error("mdr_basis_points must be between 0 and {MAX_MDR_BASIS_POINTS}")]
    MdrOutOfRange,
    #[error("fixed_fee must not be negative")]
    NegativeFixedFee,
    #[error("auto_close_delay_minutes must be between 0 and {MAX_AUTO_CLOSE_DELAY_MINUTES}")]
    AutoCloseDelayTooLong,
}

/// Parses an IANA time zone name.
pub fn parse_time_zone(name: &str) -> Result<Tz, ProfileError> {
    name.parse::<Tz>()
        .map_err(|_| ProfileError::UnknownTimeZone)
}

/// Parses a cutoff written `HH:MM` or `HH:MM:SS`.
pub fn parse_cutoff_time(text: &str) -> Result<NaiveTime, ProfileError> {
    let well_formed = matches!(text.len(), 5 | 8)
        && text.bytes().enumerate().all(|(i, b)| {
            if i == 2 || i == 5 {
                b == b':'
            } else {
                b.is_ascii_digit()
            }
        });
    if !well_formed {
        return Err(ProfileError::BadCutoff);
    }
    // chrono reads second 60 as a leap second; a cutoff never is one.
    if text.len() == 8 && &text[6..] >= "60" {
        return Err(ProfileError::BadCutoff);
    }
    let format = if text.len() == 5 { "%H:%M" } else { "%H:%M:%S" };
    NaiveTime::parse_from_str(text, format).map_err(|_| ProfileError::BadCutoff)
}

impl SettlementProfile {
    /// Builds a profile from its parts, checking every bound.
    pub fn new(
        time_zone: &str,
        cutoff_local_time: &str,
        grace_period_hours: u32,
        payout_delay_business_days: u32,
        pricing: Pricing,
    ) -> Result<Self, ProfileError> {
        let cutoff = Cutoff {
            time_zone: parse_time_zone(time_zone)?,
            local_time: parse_cutoff_time(cutoff_local_time)?,
        };
        if grace_period_hours > MAX_GRACE_PERIOD_HOURS {
            return Err(ProfileError::GraceTooLong);
        }
        if payout_delay_business_days > MAX_PAYOUT_DELAY_BUSINESS_DAYS {
            return Err(ProfileError::PayoutDelayTooLong);
        }
        if pricing.mdr_basis_points > MAX_MDR_BASIS_POINTS {
            return Err(ProfileError::MdrOutOfRange);
        }
        if pricing.fixed_fee_minor < 0 {
            return Err(ProfileError::NegativeFixedFee);
        }
        Ok(SettlementProfile {
            cutoff,
            grace_period_hours,
            payout_delay_business_days,
            pricing,
            auto_close_after: None,
        })
    }

    /// The profile with auto-close on, `delay_minutes` after each cutoff (at most
    /// [`MAX_AUTO_CLOSE_DELAY_MINUTES`]).
    pub fn with_auto_close(mut self, delay_minutes: u32) -> Result<Self, ProfileError> {
        if delay_minutes > MAX_AUTO_CLOSE_DELAY_MINUTES {
            return Err(ProfileError::AutoCloseDelayTooLong);
        }
        self.auto_close_after = Some(chrono::Duration::minutes(i64::from(delay_minutes)));
        Ok(self)
    }

    /// The instant the cycle of `date` is due to close: its cutoff, or for a merchant
    /// with auto-close, its cutoff plus the delay (the host closes what terminals
    /// forgot first, so those batches are paid in the cycle of their own day).
    pub fn cycle_due_at(&self, date: NaiveDate) -> DateTime<Utc> {
        let cutoff_at = self.cutoff.instant_on(date);
        match self.auto_close_after {
            Some(delay) => cutoff_at
                .checked_add_signed(delay)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            None => cutoff_at,
        }
    }
}

impl SettlementProfile {
    /// True when the host closes the unsettled authorizations of `business_date` at
    /// `now`: auto-close is on, the day's cutoff plus the delay has passed, and its
    /// grace deadline has not (older authorizations are left to operations, as a
    /// terminal's batch that late would be).
    pub fn auto_close_due(&self, business_date: NaiveDate, now: DateTime<Utc>) -> bool {
        let Some(_) = self.auto_close_after else {
            return false;
        };
        let cutoff_at = self.cutoff.instant_on(business_date);
        self.cycle_due_at(business_date) <= now
            && now <= crate::calendar::add_hours(cutoff_at, self.grace_period_hours)
    }
}

/// Longest delay after the cutoff before the host closes what terminals forgot: 12
/// hours, so a day's cycle still closes on that day or the next morning.
pub const MAX_AUTO_CLOSE_DELAY_MINUTES: u32 = 720;

#[cfg(test)]
mod tests {
    use super::*;

    const PRICING: Pricing = Pricing {
        mdr_basis_points: 150,
        fixed_fee_minor: 10,
    };

    #[test]
    fn cutoff_accepts_minutes_and_seconds_forms() {
        assert_eq!(
            parse_cutoff_time("22:00"),
            Ok(NaiveTime::from_hms_opt(22, 0, 0).unwrap())
        );
        assert_eq!(
            parse_cutoff_time("23:59:30"),
            Ok(NaiveTime::from_hms_opt(23, 59, 30).unwrap())
        );
        for bad in [
            "24:00", "7:00", "22:0", "22:00:0", "22-00", "", "22:60", "aa:bb",
        ] {
            assert_eq!(
                parse_cutoff_time(bad),
                Err(ProfileError::BadCutoff),
                "{bad}"
            );
        }
    }

    #[test]
    fn profile_bounds_are_enforced() {
        assert!(SettlementProfile::new("America/New_York", "22:00", 72, 1, PRICING).is_ok());
        assert!(SettlementProfile::new("America/New_York", "22:00", 168, 1, PRICING).is_ok());
        assert_eq!(
            SettlementProfile::new("America/New_York", "22:00", 169, 1, PRICING),
            Err(ProfileError::GraceTooLong)
        );
        assert_eq!(
            SettlementProfile::new("Mars/Olympus", "22:00", 72, 1, PRICING),
            Err(ProfileError::UnknownTimeZone)
        );
        let bad_pricing = Pricing {
            mdr_basis_points: 10_001,
            fixed_fee_minor: 0,
        };
        assert_eq!(
            SettlementProfile::new("UTC", "22:00", 72, 1, bad_pricing),
            Err(ProfileError::MdrOutOfRange)
        );
    }
}
