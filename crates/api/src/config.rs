//! Service configuration from environment variables, validated at start-up.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use settlement_domain::batch_number::{ReuseWindow, MAX_REUSE_DAYS, MIN_REUSE_DAYS};
use settlement_store::PoolLimits;

use crate::webhooks::target::Reach;

/// A value that must never be printed: `Debug` shows `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a secret value.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The secret value, for the one place that needs it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Shortest HS256 secret accepted: 256 bits, as RFC 7518 asks for HMAC-SHA256 keys.
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// How tokens are checked.
#[derive(Clone)]
pub struct AuthConfig {
    /// Required `iss` claim.
    pub issuer: String,
    /// Required `aud` claim.
    pub audience: String,
    /// Shared secret for HS256 tokens without `kid` (local use).
    pub hs256_secret: Option<Secret<Vec<u8>>>,
    /// Public keys for RS256 / EdDSA tokens, by `kid`.
    pub public_keys: HashMap<String, (Algorithm, DecodingKey)>,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("hs256_secret", &self.hs256_secret)
            .field(
                "public_key_ids",
                &self.public_keys.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Everything the service needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the HTTP server binds.
    pub listen_addr: SocketAddr,
    /// Address the metrics server binds (its own port, never the public one);
    /// `None` turns it off.
    pub metrics_listen_addr: Option<SocketAddr>,
    /// Postgres URL; it may hold a password.
    pub database_url: Secret<String>,
    /// Connection pool bounds.
    pub pool: PoolLimits,
    /// Token checking.
    pub auth: AuthConfig,
    /// Longest time one request may take before it is answered 503.
    pub request_timeout: Duration,
    /// Largest request body accepted.
    pub body_limit_bytes: usize,
    /// Longest time a connection may take to send a request's line and headers
    /// (from its start, or from its previous answer) before it is closed.
    pub header_read_timeout: Duration,
    /// Longest time shutdown waits for in-flight requests.
    pub shutdown_timeout: Duration,
    /// How often the scheduler looks for due cycles; `None` turns it off.
    pub settlement_run_interval: Option<Duration>,
    /// How often the delivery worker looks for due webhook deliveries; `None` turns
    /// it off.
    pub webhook_poll_interval: Option<Duration>,
    /// How webhooks are delivered.
    pub webhooks: crate::webhooks::delivery::DeliveryConfig,
    /// How long after a cutoff a terminal that has not closed is reminded.
    pub reminder_delay: Duration,
    /// How old a batch number's last use must be before a terminal may use it again.
    pub batch_number_reuse: ReuseWindow,
    /// Requests per minute per terminal and per merchant.
    pub rate_limits: crate::rate_limit::RateLimits,
    /// Keys that seal merchants' bank accounts at rest (`BANK_ACCOUNT_KEYS`).
    pub bank_account_keys: crate::bank_account::BankAccountKeys,
    /// The acquirer's own account that pays merchants, named in pain.001 files.
    pub payout_debtor: PayoutDebtor,
    /// Whether the web pages' session cookies carry `Secure` (`WEB_COOKIE_SECURE`).
    pub web_cookie_secure: bool,
}

pub use settlement_engine::payout_files::PayoutDebtor;

/// The TLS to Postgres the service insists on (`DATABASE_TLS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DatabaseTls {
    /// DATABASE_URL's `sslmode` as it is (without one, TLS when the server offers it,
    /// else plaintext).
    Url,
    /// DATABASE_URL must say `sslmode=verify-full`: TLS, the server's certificate
    /// checked against `sslrootcert` (else the public roots) and its host name.
    VerifyFull,
}

/// The `sslmode` of a Postgres URL, if it names one.
fn ssl_mode(url: &str) -> Option<&str> {
    let (_, query) = url.split_once('?')?;
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(key, _)| *key == "sslmode")
        .map(|(_, value)| value)
        .next_back()
}

/// A configuration problem, naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("configuration variable {variable}: {problem}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub variable: String,
    /// What is wrong with it.
    pub problem: String,
}

fn bad(variable: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable: variable.to_owned(),
        problem: problem.into(),
    }
}

/// Defaults, each with its reason.
pub mod defaults {
    /// The debtor named in payout files until operations configure the acquirer's own.
    pub const PAYOUT_DEBTOR_NAME: &str = "Settlement acquirer";
    /// A placeholder debtor account: a bank refuses a file naming it, so a real one
    /// must be configured before files go to a bank.
    pub const PAYOUT_DEBTOR_ACCOUNT: &str = "NOTPROVIDED";
    /// Loopback and containers alike listen on 8080.
    pub const LISTEN_ADDR: &str = "0.0.0.0:8080";
    /// Metrics on their own port, 9090.
    pub const METRICS_LISTEN_ADDR: &str = "0.0.0.0:9090";
    /// Ten connections per replica: a close holds one for a few milliseconds, and ten
    /// replicas stay far below Postgres' default `max_connections` of 100.
    pub const DATABASE_MAX_CONNECTIONS: u32 = 10;
    /// A request waits at most two seconds for a connection, then gets 503.
    pub const DATABASE_ACQUIRE_TIMEOUT_MS: u64 = 2_000;
    /// A 10,000-line close books in well under a second; ten seconds bounds a stuck one.
    pub const REQUEST_TIMEOUT_MS: u64 = 10_000;
    /// 10,000 lines of about 300 bytes each, with room to spare.
    pub const REQUEST_BODY_LIMIT_BYTES: usize = 8 * 1024 * 1024;
    /// A request's line and headers are a few hundred bytes, sent at once by any real
    /// client; ten seconds is the body's stall bound too (`REQUEST_TIMEOUT_MS`), and it
    /// frees a connection held open by a client that never finishes its headers.
    pub const HTTP_HEADER_READ_TIMEOUT_SECONDS: u64 = 10;
    /// Kubernetes waits 30 s by default before it kills; finish well inside that.
    pub const SHUTDOWN_TIMEOUT_SECONDS: u64 = 20;
    /// The scheduler looks for due cycles every 30 s: a cycle closes within half a
    /// minute of its cutoff, and an idle run costs one indexed query.
    pub const SETTLEMENT_RUN_INTERVAL_SECONDS: u64 = 30;
    /// The delivery worker looks for due deliveries every second.
    pub const WEBHOOK_POLL_INTERVAL_MS: u64 = 1_000;
    /// A receiver has ten seconds to answer.
    pub const WEBHOOK_TIMEOUT_MS: u64 = 10_000;
    /// Sixteen attempts, 30 s apart at first and doubling up to 12 h: about 2.7 days.
    pub const WEBHOOK_MAX_ATTEMPTS: u32 = 16;
    /// Delay after the first failed attempt.
    pub const WEBHOOK_RETRY_BASE_MS: u64 = 30_000;
    /// Terminals that have not closed are reminded an hour after the cutoff.
    pub const REMINDER_DELAY_SECONDS: u64 = 3_600;
    /// A batch number is used again once its last use is 180 days old: shorter than a
    /// three-digit counter takes to wrap, far longer than any retry.
    pub const BATCH_NUMBER_REUSE_DAYS: u32 = settlement_domain::batch_number::DEFAULT_REUSE_DAYS;
    /// A terminal closes a few batches a day and reads them back: 120 requests a
    /// minute leaves room for retries and still stops a looping client.
    pub const RATE_LIMIT_TERMINAL_PER_MINUTE: u32 = 120;
    /// A merchant's dashboards and back office poll status, lists and statements.
    pub const RATE_LIMIT_MERCHANT_PER_MINUTE: u32 = 600;
    /// Token issuer and audience for local use.
    pub const AUTH_ISSUER: &str = "settlement";
    /// Audience tokens must name.
    pub const AUTH_AUDIENCE: &str = "settlement-api";
}

/// One public key of the `AUTH_PUBLIC_KEYS_FILE`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicKeyEntry {
    kid: String,
    alg: String,
    pem: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicKeyFile {
    keys: Vec<PublicKeyEntry>,
}

fn parse_public_keys(text: &str) -> Result<HashMap<String, (Algorithm, DecodingKey)>, String> {
    let file: PublicKeyFile =
        serde_json::from_str(text).map_err(|e| format!("not a key file: {e}"))?;
    let mut keys = HashMap::new();
    for entry in file.keys {
        let (alg, key) = match entry.alg.as_str() {
            "RS256" => (
                Algorithm::RS256,
                DecodingKey::from_rsa_pem(entry.pem.as_bytes()),
            ),
            "EdDSA" => (
                Algorithm::EdDSA,
                DecodingKey::from_ed_pem(entry.pem.as_bytes()),
            ),
            other => {
                return Err(format!(
                    "key {}: algorithm {other} is not RS256 or EdDSA",
                    entry.kid
                ))
            }
        };
        let key = key.map_err(|e| format!("key {}: {e}", entry.kid))?;
        if keys.insert(entry.kid.clone(), (alg, key)).is_some() {
            return Err(format!("key id {} appears twice", entry.kid));
        }
    }
    Ok(keys)
}

/// Where the metrics server listens, or that it is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsListen(pub Option<SocketAddr>);

fn parse_metrics_listen(text: &str) -> Result<MetricsListen, String> {
    match text.trim() {
        "off" => Ok(MetricsListen(None)),
        addr => addr
            .parse()
            .map(|a| MetricsListen(Some(a)))
            .map_err(|_| "must be a socket address such as 0.0.0.0:9090, or off".to_owned()),
    }
}

/// The service's settings, each read by clap from its environment variable (or the
/// flag of the same name) with its default and range; `settlementd serve --help`
/// lists them. Each value is named after its variable, so an error names it.
/// [`Config::from_settings`] checks what spans several of them.
#[derive(Clone, clap::Args)]
pub struct Settings {
    /// Postgres URL, postgres://user:password@host:port/database (required).
    #[arg(
        long,
        env = "DATABASE_URL",
        value_name = "DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// TLS to Postgres the service insists on: `url` takes DATABASE_URL's `sslmode` as
    /// it is; `verify-full` refuses to start unless it says `sslmode=verify-full`.
    #[arg(
        long,
        env = "DATABASE_TLS",
        value_name = "DATABASE_TLS",
        value_enum,
        default_value = "url"
    )]
    pub database_tls: DatabaseTls,
    /// HTTP bind address.
    #[arg(long = "listen-addr", env = "SETTLEMENT_LISTEN_ADDR", value_name = "SETTLEMENT_LISTEN_ADDR",
          default_value = defaults::LISTEN_ADDR)]
    pub listen_addr: SocketAddr,
    /// Prometheus metrics address (never the public port), or `off`.
    #[arg(long, env = "METRICS_LISTEN_ADDR", value_name = "METRICS_LISTEN_ADDR",
          default_value = defaults::METRICS_LISTEN_ADDR, value_parser = parse_metrics_listen)]
    pub metrics_listen_addr: MetricsListen,
    /// Most connections this replica holds (replicas times this must stay below the
    /// server's max_connections), 1 to 200.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", value_name = "DATABASE_MAX_CONNECTIONS",
          default_value_t = defaults::DATABASE_MAX_CONNECTIONS,
          value_parser = clap::value_parser!(u32).range(1..=200))]
    pub database_max_connections: u32,
    /// Milliseconds a request waits for a connection before 503, 1 to 60000.
    #[arg(long, env = "DATABASE_ACQUIRE_TIMEOUT_MS", value_name = "DATABASE_ACQUIRE_TIMEOUT_MS",
          default_value_t = defaults::DATABASE_ACQUIRE_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub database_acquire_timeout_ms: u64,
    /// Milliseconds one request may take before 503, 100 to 300000.
    #[arg(long, env = "REQUEST_TIMEOUT_MS", value_name = "REQUEST_TIMEOUT_MS",
          default_value_t = defaults::REQUEST_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(100..=300_000))]
    pub request_timeout_ms: u64,
    /// Largest request body in bytes, 1024 to 67108864.
    #[arg(long, env = "REQUEST_BODY_LIMIT_BYTES", value_name = "REQUEST_BODY_LIMIT_BYTES",
          default_value_t = defaults::REQUEST_BODY_LIMIT_BYTES as u64,
          value_parser = clap::value_parser!(u64).range(1024..=64 * 1024 * 1024))]
    pub request_body_limit_bytes: u64,
    /// Seconds a connection may take to send a request's line and headers (from its
    /// start, or while idle between requests) before it is closed, 1 to 300.
    #[arg(long, env = "HTTP_HEADER_READ_TIMEOUT_SECONDS", value_name = "HTTP_HEADER_READ_TIMEOUT_SECONDS",
          default_value_t = defaults::HTTP_HEADER_READ_TIMEOUT_SECONDS,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub http_header_read_timeout_seconds: u64,
    /// Seconds shutdown waits for in-flight requests, 1 to 600.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECONDS", value_name = "SHUTDOWN_TIMEOUT_SECONDS",
          default_value_t = defaults::SHUTDOWN_TIMEOUT_SECONDS,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub shutdown_timeout_seconds: u64,
    /// Seconds between scheduler runs looking for due cycles, 0 (off) to 86400.
    #[arg(long, env = "SETTLEMENT_RUN_INTERVAL_SECONDS", value_name = "SETTLEMENT_RUN_INTERVAL_SECONDS",
          default_value_t = defaults::SETTLEMENT_RUN_INTERVAL_SECONDS,
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub settlement_run_interval_seconds: u64,
    /// Milliseconds between looks for due webhook deliveries, 0 (off) to 3600000.
    #[arg(long, env = "WEBHOOK_POLL_INTERVAL_MS", value_name = "WEBHOOK_POLL_INTERVAL_MS",
          default_value_t = defaults::WEBHOOK_POLL_INTERVAL_MS,
          value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub webhook_poll_interval_ms: u64,
    /// Milliseconds a webhook receiver has to answer, 100 to 60000.
    #[arg(long, env = "WEBHOOK_TIMEOUT_MS", value_name = "WEBHOOK_TIMEOUT_MS",
          default_value_t = defaults::WEBHOOK_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub webhook_timeout_ms: u64,
    /// Attempts of a webhook delivery before it is given up, 1 to 30.
    #[arg(long, env = "WEBHOOK_MAX_ATTEMPTS", value_name = "WEBHOOK_MAX_ATTEMPTS",
          default_value_t = defaults::WEBHOOK_MAX_ATTEMPTS,
          value_parser = clap::value_parser!(u32).range(1..=30))]
    pub webhook_max_attempts: u32,
    /// Milliseconds after the first failed attempt (doubling, at most 12 h), 10 to 3600000.
    #[arg(long, env = "WEBHOOK_RETRY_BASE_MS", value_name = "WEBHOOK_RETRY_BASE_MS",
          default_value_t = defaults::WEBHOOK_RETRY_BASE_MS,
          value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    pub webhook_retry_base_ms: u64,
    /// true lets webhooks reach loopback and private addresses (local development only).
    #[arg(long, env = "WEBHOOK_ALLOW_LOCAL_NETWORK", value_name = "WEBHOOK_ALLOW_LOCAL_NETWORK",
          default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_allow_local_network: bool,
    /// false sends the web pages' session cookies without `Secure`, so they work over
    /// plain http (`settlementd dev` only; anywhere else the service is behind TLS).
    #[arg(long, env = "WEB_COOKIE_SECURE", value_name = "WEB_COOKIE_SECURE",
          default_value_t = true, action = clap::ArgAction::Set)]
    pub web_cookie_secure: bool,
    /// Seconds after a cutoff before a terminal that has not closed is reminded, 0 to 86400.
    #[arg(long, env = "REMINDER_DELAY_SECONDS", value_name = "REMINDER_DELAY_SECONDS",
          default_value_t = defaults::REMINDER_DELAY_SECONDS,
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub reminder_delay_seconds: u64,
    /// Days before a terminal may use a batch number again.
    #[arg(long, env = "BATCH_NUMBER_REUSE_DAYS", value_name = "BATCH_NUMBER_REUSE_DAYS",
          default_value_t = defaults::BATCH_NUMBER_REUSE_DAYS,
          value_parser = clap::value_parser!(u32).range(i64::from(MIN_REUSE_DAYS)..=i64::from(MAX_REUSE_DAYS)))]
    pub batch_number_reuse_days: u32,
    /// Requests per minute per terminal, 0 (unlimited) to 1000000.
    #[arg(long, env = "RATE_LIMIT_TERMINAL_PER_MINUTE", value_name = "RATE_LIMIT_TERMINAL_PER_MINUTE",
          default_value_t = defaults::RATE_LIMIT_TERMINAL_PER_MINUTE,
          value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub rate_limit_terminal_per_minute: u32,
    /// Requests per minute per merchant, 0 (unlimited) to 1000000.
    #[arg(long, env = "RATE_LIMIT_MERCHANT_PER_MINUTE", value_name = "RATE_LIMIT_MERCHANT_PER_MINUTE",
          default_value_t = defaults::RATE_LIMIT_MERCHANT_PER_MINUTE,
          value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub rate_limit_merchant_per_minute: u32,
    /// Required `iss` claim of tokens.
    #[arg(long, env = "AUTH_ISSUER", value_name = "AUTH_ISSUER", default_value = defaults::AUTH_ISSUER)]
    pub auth_issuer: String,
    /// Required `aud` claim of tokens.
    #[arg(long, env = "AUTH_AUDIENCE", value_name = "AUTH_AUDIENCE", default_value = defaults::AUTH_AUDIENCE)]
    pub auth_audience: String,
    /// Shared secret of HS256 tokens, at least 32 bytes (local use).
    #[arg(
        long,
        env = "AUTH_HS256_SECRET",
        value_name = "AUTH_HS256_SECRET",
        hide_env_values = true
    )]
    pub auth_hs256_secret: Option<String>,
    /// JSON file of RS256 / EdDSA public keys by kid (production).
    #[arg(
        long,
        env = "AUTH_PUBLIC_KEYS_FILE",
        value_name = "AUTH_PUBLIC_KEYS_FILE"
    )]
    pub auth_public_keys_file: Option<String>,
    /// id:base64key of the 32-byte AES-256-GCM keys sealing bank accounts, current
    /// first (required; `settlementd bank-account-key` prints one).
    #[arg(
        long,
        env = "BANK_ACCOUNT_KEYS",
        value_name = "BANK_ACCOUNT_KEYS",
        hide_env_values = true
    )]
    pub bank_account_keys: Option<String>,
    /// Name of the acquirer's account that pays merchants, in payout files.
    #[arg(long, env = "PAYOUT_DEBTOR_NAME", value_name = "PAYOUT_DEBTOR_NAME",
          default_value = defaults::PAYOUT_DEBTOR_NAME)]
    pub payout_debtor_name: String,
    /// The acquirer's paying account (IBAN), in payout files.
    #[arg(long, env = "PAYOUT_DEBTOR_ACCOUNT", value_name = "PAYOUT_DEBTOR_ACCOUNT",
          default_value = defaults::PAYOUT_DEBTOR_ACCOUNT)]
    pub payout_debtor_account: String,
    /// BIC of the paying account's bank, in payout files.
    #[arg(long, env = "PAYOUT_DEBTOR_BIC", value_name = "PAYOUT_DEBTOR_BIC")]
    pub payout_debtor_bic: Option<String>,
}

impl Settings {
    /// The settings from a variable lookup (a map in tests, `dev`'s own values over
    /// the environment), through the same clap definitions; the process environment
    /// itself is not read.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        use clap::{Args, FromArgMatches};
        let command = Settings::augment_args(clap::Command::new("settlementd"))
            .no_binary_name(true)
            .mut_args(|arg| arg.env(None));
        let mut argv = Vec::new();
        for arg in Settings::augment_args(clap::Command::new("settlementd")).get_arguments() {
            let (Some(variable), Some(long)) = (arg.get_env(), arg.get_long()) else {
                continue;
            };
            if let Some(value) = get(&variable.to_string_lossy()) {
                argv.push(format!("--{long}={value}"));
            }
        }
        let matches = command
            .try_get_matches_from(argv)
            .map_err(|e| clap_error(&e))?;
        Settings::from_arg_matches(&matches).map_err(|e| clap_error(&e))
    }
}

/// A clap error as a configuration error naming the variable (each value is named
/// after its variable).
fn clap_error(e: &clap::Error) -> ConfigError {
    use clap::error::{ContextKind, ContextValue};
    let variable = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => arg
            .split_once('<')
            .and_then(|(_, rest)| rest.split_once('>'))
            .map_or_else(|| arg.clone(), |(name, _)| name.to_owned()),
        _ => "settings".to_owned(),
    };
    let problem = e
        .to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_owned();
    ConfigError { variable, problem }
}

impl Config {
    /// Checks the settings together and builds the configuration.
    pub fn from_settings(s: Settings) -> Result<Self, ConfigError> {
        let database_url = s
            .database_url
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| {
                bad(
                    "DATABASE_URL",
                    "is required (postgres://user:password@host:port/database)",
                )
            })?;
        if !(database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")) {
            return Err(bad(
                "DATABASE_URL",
                "must start with postgres:// or postgresql://",
            ));
        }
        if s.database_tls == DatabaseTls::VerifyFull
            && ssl_mode(&database_url) != Some("verify-full")
        {
            return Err(bad(
                "DATABASE_URL",
                "must say sslmode=verify-full (DATABASE_TLS is verify-full), e.g. \
                 postgres://user:password@host:5432/db?sslmode=verify-full&sslrootcert=/path/ca.crt",
            ));
        }
        if s.auth_issuer.is_empty() {
            return Err(bad("AUTH_ISSUER", "must not be empty"));
        }
        if s.auth_audience.is_empty() {
            return Err(bad("AUTH_AUDIENCE", "must not be empty"));
        }
        let hs256_secret = match s.auth_hs256_secret {
            None => None,
            Some(secret) if secret.len() < MIN_HS256_SECRET_BYTES => {
                return Err(bad(
                    "AUTH_HS256_SECRET",
                    format!("must be at least {MIN_HS256_SECRET_BYTES} bytes"),
                ))
            }
            Some(secret) => Some(Secret::new(secret.into_bytes())),
        };
        let public_keys = match s.auth_public_keys_file {
            None => HashMap::new(),
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    bad("AUTH_PUBLIC_KEYS_FILE", format!("cannot read {path}: {e}"))
                })?;
                parse_public_keys(&text).map_err(|e| bad("AUTH_PUBLIC_KEYS_FILE", e))?
            }
        };
        let bank_account_keys =
            match s.bank_account_keys {
                None => return Err(bad(
                    "BANK_ACCOUNT_KEYS",
                    "is required: id:base64key of a 32-byte AES-256 key (the first is current; \
                     more, comma-separated, open values sealed before a rotation); \
                     `settlementd bank-account-key` prints a new one",
                )),
                Some(text) => crate::bank_account::BankAccountKeys::parse(&text)
                    .map_err(|e| bad("BANK_ACCOUNT_KEYS", e))?,
            };
        let payout_debtor = PayoutDebtor {
            name: s.payout_debtor_name,
            account: s.payout_debtor_account,
            bic: s.payout_debtor_bic.filter(|b| !b.is_empty()),
        };
        if payout_debtor.name.trim().is_empty() || payout_debtor.account.trim().is_empty() {
            return Err(bad(
                "PAYOUT_DEBTOR_ACCOUNT",
                "the payout debtor's name and account must not be empty",
            ));
        }
        if hs256_secret.is_none() && public_keys.is_empty() {
            return Err(bad(
                "AUTH_HS256_SECRET",
                "set it (local use) or AUTH_PUBLIC_KEYS_FILE (production): without a key no token can be checked",
            ));
        }
        let reuse_days = format!("must be days from {MIN_REUSE_DAYS} to {MAX_REUSE_DAYS}");
        let batch_number_reuse = ReuseWindow::from_days(s.batch_number_reuse_days)
            .ok_or_else(|| bad("BATCH_NUMBER_REUSE_DAYS", reuse_days))?;
        let body_limit_bytes = usize::try_from(s.request_body_limit_bytes)
            .map_err(|_| bad("REQUEST_BODY_LIMIT_BYTES", "too large for this machine"))?;

        Ok(Config {
            listen_addr: s.listen_addr,
            metrics_listen_addr: s.metrics_listen_addr.0,
            database_url: Secret::new(database_url),
            pool: PoolLimits {
                max_connections: s.database_max_connections,
                acquire_timeout: Duration::from_millis(s.database_acquire_timeout_ms),
            },
            auth: AuthConfig {
                issuer: s.auth_issuer,
                audience: s.auth_audience,
                hs256_secret,
                public_keys,
            },
            request_timeout: Duration::from_millis(s.request_timeout_ms),
            body_limit_bytes,
            header_read_timeout: Duration::from_secs(s.http_header_read_timeout_seconds),
            shutdown_timeout: Duration::from_secs(s.shutdown_timeout_seconds),
            settlement_run_interval: (s.settlement_run_interval_seconds > 0)
                .then(|| Duration::from_secs(s.settlement_run_interval_seconds)),
            webhook_poll_interval: (s.webhook_poll_interval_ms > 0)
                .then(|| Duration::from_millis(s.webhook_poll_interval_ms)),
            webhooks: crate::webhooks::delivery::DeliveryConfig {
                timeout: Duration::from_millis(s.webhook_timeout_ms),
                max_attempts: s.webhook_max_attempts,
                retry_base: Duration::from_millis(s.webhook_retry_base_ms),
                reach: if s.webhook_allow_local_network {
                    Reach::LocalAllowed
                } else {
                    Reach::PublicOnly
                },
            },
            reminder_delay: Duration::from_secs(s.reminder_delay_seconds),
            batch_number_reuse,
            rate_limits: crate::rate_limit::RateLimits {
                terminal_per_minute: s.rate_limit_terminal_per_minute,
                merchant_per_minute: s.rate_limit_merchant_per_minute,
            },
            bank_account_keys,
            payout_debtor,
            web_cookie_secure: s.web_cookie_secure,
        })
    }

    /// Reads the configuration from a variable lookup (a map in tests, `dev`'s own
    /// values over the environment), through the same clap definitions as the
    /// process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Config::from_settings(Settings::from_lookup(get)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const BANK_KEY: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn a_bad_variable_is_named_in_the_error() {
        let err = Config::from_lookup(lookup(&[
            ("DATABASE_URL", "postgres://x/y"),
            ("AUTH_HS256_SECRET", SECRET),
            ("DATABASE_MAX_CONNECTIONS", "lots"),
        ]))
        .unwrap_err();
        assert_eq!(err.variable, "DATABASE_MAX_CONNECTIONS");
        let err = Config::from_lookup(lookup(&[("AUTH_HS256_SECRET", SECRET)])).unwrap_err();
        assert_eq!(err.variable, "DATABASE_URL");
        let err = Config::from_lookup(lookup(&[
            ("DATABASE_URL", "postgres://x/y"),
            ("AUTH_HS256_SECRET", "short"),
            ("BANK_ACCOUNT_KEYS", BANK_KEY),
        ]))
        .unwrap_err();
        assert_eq!(err.variable, "AUTH_HS256_SECRET");
        // No bank account key, no start.
        let err = Config::from_lookup(lookup(&[
            ("DATABASE_URL", "postgres://x/y"),
            ("AUTH_HS256_SECRET", SECRET),
        ]))
        .unwrap_err();
        assert_eq!(err.variable, "BANK_ACCOUNT_KEYS");
        let err = Config::from_lookup(lookup(&[
            ("DATABASE_URL", "postgres://x/y"),
            ("AUTH_HS256_SECRET", SECRET),
            ("BANK_ACCOUNT_KEYS", "k1:AAAA"),
        ]))
        .unwrap_err();
        assert_eq!(err.variable, "BANK_ACCOUNT_KEYS");
    }

    #[test]
    fn database_tls_verify_full_needs_a_url_that_says_so() {
        let with = |url: &'static str, tls: &'static str| {
            Config::from_lookup(lookup(&[
                ("DATABASE_URL", url),
                ("DATABASE_TLS", tls),
                ("AUTH_HS256_SECRET", SECRET),
                ("BANK_ACCOUNT_KEYS", BANK_KEY),
            ]))
        };
        for url in [
            "postgres://u:p@db/x",
            "postgres://u:p@db/x?sslmode=require",
            "postgres://u:p@db/x?sslmode=verify-ca",
            "postgres://u:p@db/x?sslmode=verify-full&sslmode=prefer",
            "postgres://u:p@db/x?application_name=sslmode=verify-full",
        ] {
            let err = with(url, "verify-full").unwrap_err();
            assert_eq!(err.variable, "DATABASE_URL", "{url}");
            assert!(with(url, "url").is_ok(), "{url}");
        }
        assert!(with(
            "postgres://u:p@db/x?sslrootcert=/tls/ca.crt&sslmode=verify-full",
            "verify-full"
        )
        .is_ok());
        assert_eq!(
            with("postgres://u:p@db/x", "always").unwrap_err().variable,
            "DATABASE_TLS"
        );
    }

    #[test]
    fn ranges_and_forms_are_checked_by_variable() {
        let base = [
            ("DATABASE_URL", "postgres://x/y"),
            ("AUTH_HS256_SECRET", SECRET),
            ("BANK_ACCOUNT_KEYS", BANK_KEY),
        ];
        for (variable, value) in [
            ("DATABASE_MAX_CONNECTIONS", "0"),
            ("DATABASE_MAX_CONNECTIONS", "201"),
            ("REQUEST_TIMEOUT_MS", "99"),
            ("SETTLEMENT_LISTEN_ADDR", "eight-zero"),
            ("METRICS_LISTEN_ADDR", "on"),
            ("WEBHOOK_ALLOW_LOCAL_NETWORK", "yes please"),
            ("BATCH_NUMBER_REUSE_DAYS", "0"),
            ("RATE_LIMIT_MERCHANT_PER_MINUTE", "-1"),
            ("HTTP_HEADER_READ_TIMEOUT_SECONDS", "0"),
            ("HTTP_HEADER_READ_TIMEOUT_SECONDS", "301"),
        ] {
            let mut vars = base.to_vec();
            vars.push((variable, value));
            let err = Config::from_lookup(lookup(&vars)).unwrap_err();
            assert_eq!(err.variable, variable, "{value}: {err}");
        }
        let mut vars = base.to_vec();
        vars.extend([
            ("DATABASE_MAX_CONNECTIONS", "200"),
            ("METRICS_LISTEN_ADDR", "off"),
            ("WEBHOOK_ALLOW_LOCAL_NETWORK", "true"),
            ("SETTLEMENT_RUN_INTERVAL_SECONDS", "0"),
            ("HTTP_HEADER_READ_TIMEOUT_SECONDS", "3"),
        ]);
        let config = Config::from_lookup(lookup(&vars)).unwrap();
        assert_eq!(config.header_read_timeout, Duration::from_secs(3));
        assert_eq!(config.pool.max_connections, 200);
        assert_eq!(config.metrics_listen_addr, None);
        assert_eq!(config.webhooks.reach, Reach::LocalAllowed);
        assert_eq!(config.settlement_run_interval, None);
    }

    #[test]
    fn secrets_never_print() {
        let config = Config::from_lookup(lookup(&[
            ("DATABASE_URL", "postgres://user:hunter2@db/settlement"),
            ("AUTH_HS256_SECRET", SECRET),
            ("BANK_ACCOUNT_KEYS", BANK_KEY),
        ]))
        .unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!printed.contains(&BANK_KEY[3..]), "{printed}");
        assert!(!printed.contains(SECRET), "{printed}");
        assert_eq!(
            config.pool.max_connections,
            defaults::DATABASE_MAX_CONNECTIONS
        );
        assert_eq!(
            config.header_read_timeout,
            Duration::from_secs(defaults::HTTP_HEADER_READ_TIMEOUT_SECONDS)
        );
    }
}
