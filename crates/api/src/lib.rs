//! HTTP API of the settlement service: routes, authentication, the error shape,
//! and the [`app::Application`] that binds and serves them.

pub mod app;
pub mod audit;
pub mod auth;
pub mod bank_account;
pub mod close_batch;
pub mod config;
pub mod csv_out;
pub mod db;
pub mod error;
pub mod events;
pub mod extract;
pub mod jitter;
pub mod metrics;
pub mod rate_limit;
pub mod reminders;
pub mod routes;
pub mod scheduler;
pub mod settlement;
pub mod state;
pub mod webhooks;
pub mod wire;

pub use app::Application;
pub use config::Config;
