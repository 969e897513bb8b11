//! The engine's transaction settings, for the tests that check them.

pub use settlement_engine::db::{
    begin, begin_snapshot_read, Plans, LOCK_TIMEOUT, MAX_TRANSACTION_ATTEMPTS,
};
