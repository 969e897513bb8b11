//! Pure settlement rules: money, the settlement calendar, reconciliation of batch
//! totals, lateness against the grace window, the ledger's balance rule and the PAN
//! guard. Nothing here performs I/O, so every rule is testable without a database.

pub mod batch;
pub mod batch_number;
pub mod business_days;
pub mod calendar;
pub mod close_plan;
pub mod exception;
pub mod fees;
pub mod host;
pub mod host_match;
pub mod lateness;
pub mod ledger;
pub mod merchant;
pub mod money;
pub mod pan;
pub mod payout;
pub mod presentment;
pub mod reconciliation;
#[cfg(feature = "sqlx")]
mod sql;
