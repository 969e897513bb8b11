//! The handlers' transactions: the engine's, answering [`ApiError`](crate::error::ApiError).

pub use settlement_engine::db::{
    begin, begin_snapshot_read, Plans, LOCK_TIMEOUT, MAX_TRANSACTION_ATTEMPTS,
};

/// Runs `$body` in a request transaction with the engine's retries, answering
/// `ApiError`.
macro_rules! in_transaction {
    ($pool:expr, |$tx:ident| $body:expr) => {
        settlement_engine::in_transaction!($pool, $crate::error::ApiError, |$tx| $body)
    };
}
pub(crate) use in_transaction;
