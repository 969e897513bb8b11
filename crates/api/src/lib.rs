//! HTTP API of the settlement service: routes, authentication, the error shape,
//! and the [`app::Application`] that binds and serves them. The settlement
//! application itself is the engine (crates/engine); its modules are re-exported here
//! under the names the routes use.

pub mod app;
pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod extract;
pub mod language;
pub mod metrics;
pub mod rate_limit;
pub mod routes;
pub mod server;
pub mod state;
pub mod web;

pub use settlement_engine::{
    audit, bank_account, bank_reports, batches, close_batch, csv_out, events, exceptions, jitter,
    money, payout_files, profile, reminders, scheduler, settlement, statement, webhooks,
};

pub use app::Application;
pub use config::Config;
