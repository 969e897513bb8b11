//! Jitter for retry delays, so that many clients retrying at once spread out, drawn
//! from the operating system's random generator (replicas started together, or
//! retries woken by one event, do not share a clock phase to fall into step by).

use std::time::Duration;

/// A random value in `0..1000` (the middle, should the generator fail).
fn per_mille() -> u64 {
    getrandom::u64().map_or(500, |r| r % 1_000)
}

/// `base` scaled by a factor between `1 - spread` and `1 + spread` (spread in per
/// mille, at most 1000).
pub fn spread(base: Duration, spread_per_mille: u64) -> Duration {
    let spread_per_mille = spread_per_mille.min(1_000);
    let low = 1_000 - spread_per_mille;
    let factor = low + per_mille() * 2 * spread_per_mille / 1_000;
    base.saturating_mul(u32::try_from(factor).unwrap_or(1_000)) / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_stays_within_its_bounds() {
        for _ in 0..1000 {
            let d = spread(Duration::from_millis(1000), 200);
            assert!(
                d >= Duration::from_millis(800) && d <= Duration::from_millis(1200),
                "{d:?}"
            );
        }
    }
}
