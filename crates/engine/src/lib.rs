//! The settlement application, without HTTP: the batch close, settlement cycles and
//! payouts, reminders, the event outbox and webhook delivery, the audit trail, sealed
//! bank accounts, the metrics they count, and the workers (scheduler, delivery) that
//! run them. Its functions take a connection or a pool and answer domain values or
//! an [`EngineError`]; the HTTP crate maps those to statuses and problem bodies.

pub mod audit;
pub mod auto_close;
pub mod bank_account;
pub mod bank_reports;
pub mod batches;
pub mod close_batch;
pub mod csv_out;
pub mod db;
pub mod error;
pub mod events;
pub mod exceptions;
pub mod held_batches;
pub mod holidays;
pub mod host;
pub mod jitter;
pub mod merchants;
pub mod metrics;
pub mod money;
pub mod payout_files;
pub mod profile;
pub mod reminders;
pub mod scheduler;
pub mod settlement;
pub mod statement;
pub mod status;
pub mod views;
pub mod webhooks;

pub use error::EngineError;
