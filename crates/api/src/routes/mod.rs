//! HTTP handlers, one file per audience and concern: each checks who asks, parses the
//! request, calls the engine's use case and answers.

pub mod audit;
pub mod bank_files;
pub mod health;
pub mod holidays;
pub mod host;
pub mod merchant_money;
pub mod merchants;
pub mod ops;
pub mod settlement_ops;
pub mod statement;
pub mod status;
pub mod terminals;
pub mod webhooks;
