//! Per-caller request rate limits: each terminal and each merchant has a token
//! bucket (GCRA, from the `governor` crate) refilled at its per-minute rate, with a
//! burst of one minute's worth. Operations are not limited. The buckets live in each
//! replica's memory, so with N replicas behind a balancer a caller may reach up to
//! N times the rate; the limit exists to stop a runaway client, not to meter one.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;
use settlement_wire::auth::Principal;

/// Checks between two sweeps of buckets that have refilled completely.
const SWEEP_EVERY: u64 = 4096;

/// Requests per minute allowed to each terminal and each merchant; 0 is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub terminal_per_minute: u32,
    pub merchant_per_minute: u32,
}

/// The buckets of one replica.
pub struct RateLimiters {
    terminals: Option<DefaultKeyedRateLimiter<String>>,
    merchants: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
    checks: AtomicU64,
}

fn keyed(per_minute: u32) -> Option<DefaultKeyedRateLimiter<String>> {
    NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
}

impl RateLimiters {
    pub fn new(limits: RateLimits) -> Self {
        RateLimiters {
            terminals: keyed(limits.terminal_per_minute),
            merchants: keyed(limits.merchant_per_minute),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        }
    }

    /// Takes one request from the caller's bucket, or says how long to wait.
    pub fn check(&self, principal: &Principal) -> Result<(), ApiError> {
        let (limiter, key, caller) = match principal {
            Principal::Terminal { terminal_id, .. } => (&self.terminals, terminal_id, "terminal"),
            Principal::Merchant { merchant_id } => (&self.merchants, merchant_id, "merchant"),
            // Operations and the host switch are the acquirer's own, bounded by
            // their request size.
            Principal::Ops { .. } | Principal::Host { .. } => return Ok(()),
        };
        let Some(limiter) = limiter else {
            return Ok(());
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            limiter.retain_recent();
        }
        limiter.check_key(key).map_err(|not_until| {
            crate::metrics::METRICS
                .rate_limited
                .with_label_values(&[caller])
                .inc();
            let wait = not_until.wait_time_from(self.clock.now());
            ApiError::RateLimited {
                retry_after_seconds: retry_after_seconds(wait),
            }
        })
    }
}

/// Whole seconds to announce in `Retry-After`: the wait rounded up, at least 1.
fn retry_after_seconds(wait: Duration) -> u64 {
    let whole = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    whole.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terminal(id: &str) -> Principal {
        Principal::Terminal {
            terminal_id: id.into(),
            merchant_id: "m".into(),
        }
    }

    #[test]
    fn a_caller_gets_its_burst_then_waits_and_others_are_unaffected() {
        let limiters = RateLimiters::new(RateLimits {
            terminal_per_minute: 3,
            merchant_per_minute: 0,
        });
        for _ in 0..3 {
            limiters.check(&terminal("t1")).unwrap();
        }
        match limiters.check(&terminal("t1")) {
            Err(ApiError::RateLimited {
                retry_after_seconds,
            }) => assert!((1..=20).contains(&retry_after_seconds)),
            other => panic!("expected a rate limit, got {other:?}"),
        }
        limiters.check(&terminal("t2")).unwrap();
        let merchant = Principal::Merchant {
            merchant_id: "m".into(),
        };
        for _ in 0..100 {
            limiters.check(&merchant).unwrap();
        }
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(19_001)), 20);
        assert_eq!(retry_after_seconds(Duration::from_secs(20)), 20);
    }
}
