//! State shared by every request handler.

use std::sync::Arc;

use sqlx::PgPool;

use crate::config::AuthConfig;

/// Shared state: the pool and the settings handlers read.
#[derive(Clone)]
pub struct AppState {
    /// The Postgres connection pool.
    pub pool: PgPool,
    /// Token checking.
    pub auth: Arc<AuthConfig>,
    /// Largest request body accepted.
    pub body_limit_bytes: usize,
    /// Local development: webhook endpoints may be http and on local networks.
    pub webhook_reach: crate::webhooks::target::Reach,
    /// How old a batch number's last use must be before a terminal may use it again.
    pub batch_number_reuse: settlement_domain::batch_number::ReuseWindow,
    /// Statement downloads in progress at once; each holds a database connection.
    pub statement_slots: Arc<tokio::sync::Semaphore>,
    /// Per-terminal and per-merchant request buckets.
    pub rate_limits: Arc<crate::rate_limit::RateLimiters>,
    /// Keys that seal and open merchants' bank accounts.
    pub bank_account_keys: Arc<crate::bank_account::BankAccountKeys>,
    /// The acquirer's account named as debtor in payout files.
    pub payout_debtor: Arc<crate::config::PayoutDebtor>,
    /// Whether the web pages' session cookies carry `Secure`.
    pub web_cookie_secure: bool,
}
