//! Batch numbers wrap: a terminal counts its batches with a fixed width (six digits,
//! some three) and starts again at 1. So a number is used again once its last use is
//! old enough, and a number lower than the one before may be a wrap, not a step back.

use std::ops::RangeInclusive;

use chrono::{DateTime, Duration, Utc};

use crate::batch::MAX_BATCH_NUMBER;

/// Highest number of a three-digit counter, which wraps after 999.
pub const THREE_DIGIT_MAX_BATCH_NUMBER: u32 = 999;
/// Default reuse window: a terminal with a three-digit counter that closes five times a
/// day wraps every 200 days, and nothing retries a close anywhere near this long.
pub const DEFAULT_REUSE_DAYS: u32 = 180;
/// Shortest reuse window: far beyond the longest grace window (7 days) and idempotency
/// key retention (7 days), so a close retried or sent late is never taken for a new
/// use. The database refuses a reuse sooner than this (migration
/// `20261204000008_batch_number_reuse.sql`), whatever the configuration says.
pub const MIN_REUSE_DAYS: u32 = 30;
/// Longest reuse window: ten years.
pub const MAX_REUSE_DAYS: u32 = 3_650;

/// How old the last use of a batch number must be before the terminal may use it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReuseWindow {
    days: u32,
}

impl ReuseWindow {
    /// A window of `days`, when inside `MIN_REUSE_DAYS..=MAX_REUSE_DAYS`.
    pub fn from_days(days: u32) -> Option<Self> {
        (MIN_REUSE_DAYS..=MAX_REUSE_DAYS)
            .contains(&days)
            .then_some(ReuseWindow { days })
    }

    /// The window in days.
    pub fn days(self) -> u32 {
        self.days
    }

    /// True when a number last used at `last_used_at` may be used again at `now`.
    pub fn allows_reuse(self, last_used_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        now - last_used_at >= Duration::days(i64::from(self.days))
    }
}

impl Default for ReuseWindow {
    fn default() -> Self {
        ReuseWindow {
            days: DEFAULT_REUSE_DAYS,
        }
    }
}

/// The number after which a terminal wraps to 1, judged from the highest number it has
/// used: 999 for a terminal that never went past 999, else 999999.
pub fn wrap_point(highest_seen: u32) -> u32 {
    if highest_seen <= THREE_DIGIT_MAX_BATCH_NUMBER {
        THREE_DIGIT_MAX_BATCH_NUMBER
    } else {
        MAX_BATCH_NUMBER
    }
}

/// The numbers a terminal skipped between two closes that arrived one after the other:
/// at most two runs (up to the wrap point, then from 1), in counting order.
///
/// A number lower than the one before is read the nearer way: as a wrap when going
/// forward through the wrap point is shorter than going back (999998 then 2 skipped
/// 999999 and 1), else as a late close or a reset terminal, which skips nothing (7
/// then 6). The same number twice skips nothing.
pub fn skipped_between(previous: u32, next: u32, highest_seen: u32) -> Vec<RangeInclusive<u32>> {
    if next > previous {
        return if next - previous > 1 {
            vec![previous + 1..=next - 1]
        } else {
            Vec::new()
        };
    }
    let top = wrap_point(highest_seen.max(previous));
    let back = previous - next;
    let forward = u64::from(top - previous) + u64::from(next);
    if next == previous || forward >= u64::from(back) {
        return Vec::new();
    }
    let mut runs = Vec::with_capacity(2);
    if previous < top {
        runs.push(previous + 1..=top);
    }
    if next > 1 {
        runs.push(1..=next - 1);
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn skipped(previous: u32, next: u32, highest_seen: u32) -> Vec<u32> {
        skipped_between(previous, next, highest_seen)
            .into_iter()
            .flatten()
            .collect()
    }

    #[test]
    fn a_run_of_missing_numbers_is_skipped() {
        assert_eq!(skipped(2, 5, 5), vec![3, 4]);
        assert_eq!(skipped(4, 5, 5), Vec::<u32>::new());
    }

    #[test]
    fn a_six_digit_wrap_skips_nothing_and_a_gap_across_it_is_found() {
        assert!(skipped(999_999, 1, 999_999).is_empty());
        assert_eq!(skipped(999_998, 2, 999_999), vec![999_999, 1]);
        assert_eq!(skipped(999_997, 1, 999_997), vec![999_998, 999_999]);
    }

    #[test]
    fn a_three_digit_terminal_wraps_after_999() {
        assert!(skipped(999, 1, 999).is_empty());
        assert_eq!(skipped(998, 3, 999), vec![999, 1, 2]);
        // One that went past 999 counts to 999999: 999 then 1 is a reset there.
        assert!(skipped(999, 1, 1_500).is_empty());
    }

    #[test]
    fn a_late_close_or_a_reset_skips_nothing() {
        assert!(skipped(7, 6, 7).is_empty());
        assert!(skipped(400, 1, 400).is_empty());
        assert!(skipped(5, 5, 5).is_empty());
    }

    #[test]
    fn the_window_allows_reuse_once_the_last_use_is_old_enough() {
        let window = ReuseWindow::from_days(180).unwrap();
        let now = Utc::now();
        assert!(window.allows_reuse(now - Duration::days(180), now));
        assert!(!window.allows_reuse(now - Duration::days(179), now));
        assert!(ReuseWindow::from_days(MIN_REUSE_DAYS - 1).is_none());
        assert!(ReuseWindow::from_days(MAX_REUSE_DAYS + 1).is_none());
        assert_eq!(ReuseWindow::default().days(), DEFAULT_REUSE_DAYS);
    }

    proptest! {
        /// A terminal that closes every number in turn, wrapping at its width, never
        /// shows a gap.
        #[test]
        fn counting_in_turn_through_the_wrap_skips_nothing(
            three_digits in any::<bool>(),
            start in 1u32..=999,
            closes in 1usize..2_000,
        ) {
            let top = if three_digits { 999 } else { MAX_BATCH_NUMBER };
            let start = if three_digits { start } else { MAX_BATCH_NUMBER - start };
            let mut n = start;
            for _ in 0..closes {
                let next = if n == top { 1 } else { n + 1 };
                prop_assert!(skipped_between(n, next, top).is_empty());
                n = next;
            }
        }

        /// Skipped numbers lie strictly between the two closes in counting order, are
        /// valid numbers, and never include either close.
        #[test]
        fn skipped_numbers_are_valid_and_exclude_both_closes(
            previous in 1u32..=MAX_BATCH_NUMBER,
            next in 1u32..=MAX_BATCH_NUMBER,
            highest in 1u32..=MAX_BATCH_NUMBER,
        ) {
            let highest = highest.max(previous).max(next);
            let runs = skipped_between(previous, next, highest);
            prop_assert!(runs.len() <= 2);
            for run in runs {
                prop_assert!(run.start() <= run.end());
                prop_assert!(*run.start() >= 1 && *run.end() <= wrap_point(highest));
                prop_assert!(!run.contains(&previous) && !run.contains(&next));
            }
        }
    }
}
