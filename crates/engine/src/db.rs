//! Request transactions: a bounded lock wait, and retries of the transient failures
//! Postgres asks clients to retry.

use sqlx::{PgPool, Postgres, Transaction};

use crate::error::{EngineError, Transient};

/// Attempts of one transaction before a serialization failure or deadlock is
/// reported: enough to ride out contention, few enough to keep a request bounded.
pub const MAX_TRANSACTION_ATTEMPTS: u32 = 4;
/// Longest a row or advisory lock is waited for inside a request transaction; a
/// longer wait means another request holds it and the client should retry.
pub const LOCK_TIMEOUT: &str = "5s";

/// Begins a request transaction with a bounded lock wait, in one round trip.
pub async fn begin(
    pool: &PgPool,
    plans: Plans,
) -> Result<Transaction<'static, Postgres>, EngineError> {
    // Read committed: each statement sees what committed before it, which the
    // re-checks after waiting on a lock rely on.
    let begin =
        format!("BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'");
    Ok(pool.begin_with(plans.after(&begin)).await?)
}

/// How the statements of a transaction are planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plans {
    /// Postgres' own choice between a plan per execution and a cached one.
    Chosen,
    /// Always the cached (generic) plan of each prepared statement. For transactions
    /// whose statements are all index lookups bounded by their parameters (a
    /// merchant, a time window) and inserts of the rows given, where planning each
    /// execution costs more than it saves and the choice would otherwise move with
    /// the table statistics (a close's statements are planned once per connection).
    Generic,
}

impl Plans {
    /// The statements that begin a transaction, followed by this choice of plans.
    fn after(self, begin: &str) -> String {
        match self {
            Plans::Chosen => begin.to_owned(),
            Plans::Generic => format!("{begin}; SET LOCAL plan_cache_mode = force_generic_plan"),
        }
    }
}

/// Begins a read-only transaction over one snapshot, in one round trip, so every
/// figure read in it agrees with the others.
pub async fn begin_snapshot_read(
    pool: &PgPool,
    plans: Plans,
) -> Result<Transaction<'static, Postgres>, EngineError> {
    Ok(pool
        .begin_with(plans.after("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        .await?)
}

/// After a failed attempt number `attempt`: true (after a short, jittered pause)
/// when the transaction should run again.
pub async fn retry_after<E: Transient>(err: &E, attempt: u32) -> bool {
    if attempt >= MAX_TRANSACTION_ATTEMPTS || !err.is_transient() {
        return false;
    }
    tracing::warn!(attempt, "transaction conflict; retrying");
    crate::metrics::METRICS.transaction_retries.inc();
    // 10 ms doubled per attempt, with up to as much again of jitter.
    let base = std::time::Duration::from_millis(10 << attempt.min(6));
    tokio::time::sleep(base + crate::jitter::spread(base, 1_000) / 2).await;
    true
}

/// Runs `$body` (an expression that may use `&mut $tx` and `?`) in a request
/// transaction and commits it, retrying the whole transaction on serialization
/// failures and deadlocks. The error type is [`EngineError`] unless another one is
/// named (`in_transaction!(pool, EngineError, |tx| ...)`), with Postgres' choice of
/// plans unless [`Plans`] are named after it: it must take `EngineError`
/// and `sqlx::Error` with `?` and say which errors are transient. A macro rather than a
/// function taking a closure, because the closure's borrowed future cannot be proven
/// `Send` for every lifetime.
#[macro_export]
macro_rules! in_transaction {
    ($pool:expr, |$tx:ident| $body:expr) => {
        $crate::in_transaction!($pool, $crate::error::EngineError, |$tx| $body)
    };
    ($pool:expr, $error:ty, |$tx:ident| $body:expr) => {
        $crate::in_transaction!($pool, $error, $crate::db::Plans::Chosen, |$tx| $body)
    };
    ($pool:expr, $error:ty, $plans:expr, |$tx:ident| $body:expr) => {{
        let mut attempt = 1;
        loop {
            let result = async {
                let mut $tx = $crate::db::begin($pool, $plans).await?;
                let value = $body;
                $tx.commit().await?;
                Ok::<_, $error>(value)
            }
            .await;
            match result {
                Err(err) if $crate::db::retry_after(&err, attempt).await => attempt += 1,
                other => break other,
            }
        }
    }};
}
pub use crate::in_transaction;
