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
}

pub use settlement_engine::payout_files::PayoutDebtor;

/// A configuration problem, naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("configuration variable {variable}: {problem}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub variable: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

fn bad(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
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

impl Config {
    /// Reads the configuration from a variable lookup (the process environment in
    /// production, a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        fn parsed<T: std::str::FromStr>(
            get: &impl Fn(&str) -> Option<String>,
            variable: &'static str,
            default: T,
            valid: impl Fn(&T) -> bool,
            expectation: &str,
        ) -> Result<T, ConfigError> {
            match get(variable) {
                None => Ok(default),
                Some(text) => text
                    .trim()
                    .parse::<T>()
                    .ok()
                    .filter(|v| valid(v))
                    .ok_or_else(|| bad(variable, format!("must be {expectation}"))),
            }
        }

        let database_url = get("DATABASE_URL")
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
        let listen_addr = parsed(
            &get,
            "SETTLEMENT_LISTEN_ADDR",
            defaults::LISTEN_ADDR
                .parse()
                .map_err(|_| bad("SETTLEMENT_LISTEN_ADDR", "bad default"))?,
            |_| true,
            "a socket address such as 0.0.0.0:8080",
        )?;
        let metrics_listen_addr = match get("METRICS_LISTEN_ADDR").as_deref().map(str::trim) {
            Some("off") => None,
            Some(text) => Some(text.parse().map_err(|_| {
                bad(
                    "METRICS_LISTEN_ADDR",
                    "must be a socket address such as 0.0.0.0:9090, or off",
                )
            })?),
            None => Some(
                defaults::METRICS_LISTEN_ADDR
                    .parse()
                    .map_err(|_| bad("METRICS_LISTEN_ADDR", "bad default"))?,
            ),
        };
        let max_connections = parsed(
            &get,
            "DATABASE_MAX_CONNECTIONS",
            defaults::DATABASE_MAX_CONNECTIONS,
            |n| (1..=200).contains(n),
            "a whole number from 1 to 200",
        )?;
        let acquire_timeout_ms = parsed(
            &get,
            "DATABASE_ACQUIRE_TIMEOUT_MS",
            defaults::DATABASE_ACQUIRE_TIMEOUT_MS,
            |n| (1..=60_000).contains(n),
            "milliseconds from 1 to 60000",
        )?;
        let request_timeout_ms = parsed(
            &get,
            "REQUEST_TIMEOUT_MS",
            defaults::REQUEST_TIMEOUT_MS,
            |n| (100..=300_000).contains(n),
            "milliseconds from 100 to 300000",
        )?;
        let body_limit_bytes = parsed(
            &get,
            "REQUEST_BODY_LIMIT_BYTES",
            defaults::REQUEST_BODY_LIMIT_BYTES,
            |n| (1024..=64 * 1024 * 1024).contains(n),
            "bytes from 1024 to 67108864",
        )?;
        let shutdown_timeout_seconds = parsed(
            &get,
            "SHUTDOWN_TIMEOUT_SECONDS",
            defaults::SHUTDOWN_TIMEOUT_SECONDS,
            |n| (1..=600).contains(n),
            "seconds from 1 to 600",
        )?;
        let settlement_run_interval_seconds = parsed(
            &get,
            "SETTLEMENT_RUN_INTERVAL_SECONDS",
            defaults::SETTLEMENT_RUN_INTERVAL_SECONDS,
            |n| *n <= 86_400,
            "seconds from 0 (scheduler off) to 86400",
        )?;
        let webhook_poll_interval_ms = parsed(
            &get,
            "WEBHOOK_POLL_INTERVAL_MS",
            defaults::WEBHOOK_POLL_INTERVAL_MS,
            |n| *n <= 3_600_000,
            "milliseconds from 0 (delivery off) to 3600000",
        )?;
        let webhook_timeout_ms = parsed(
            &get,
            "WEBHOOK_TIMEOUT_MS",
            defaults::WEBHOOK_TIMEOUT_MS,
            |n| (100..=60_000).contains(n),
            "milliseconds from 100 to 60000",
        )?;
        let webhook_max_attempts = parsed(
            &get,
            "WEBHOOK_MAX_ATTEMPTS",
            defaults::WEBHOOK_MAX_ATTEMPTS,
            |n| (1..=30).contains(n),
            "a whole number from 1 to 30",
        )?;
        let webhook_retry_base_ms = parsed(
            &get,
            "WEBHOOK_RETRY_BASE_MS",
            defaults::WEBHOOK_RETRY_BASE_MS,
            |n| (10..=3_600_000).contains(n),
            "milliseconds from 10 to 3600000",
        )?;
        let allow_local = parsed(
            &get,
            "WEBHOOK_ALLOW_LOCAL_NETWORK",
            false,
            |_| true,
            "true or false (true only for local development)",
        )?;
        let reminder_delay_seconds = parsed(
            &get,
            "REMINDER_DELAY_SECONDS",
            defaults::REMINDER_DELAY_SECONDS,
            |n| *n <= 86_400,
            "seconds from 0 to 86400",
        )?;
        let reuse_days = format!("days from {MIN_REUSE_DAYS} to {MAX_REUSE_DAYS}");
        let batch_number_reuse = ReuseWindow::from_days(parsed(
            &get,
            "BATCH_NUMBER_REUSE_DAYS",
            defaults::BATCH_NUMBER_REUSE_DAYS,
            |_| true,
            &reuse_days,
        )?)
        .ok_or_else(|| bad("BATCH_NUMBER_REUSE_DAYS", format!("must be {reuse_days}")))?;
        let terminal_per_minute = parsed(
            &get,
            "RATE_LIMIT_TERMINAL_PER_MINUTE",
            defaults::RATE_LIMIT_TERMINAL_PER_MINUTE,
            |n| *n <= 1_000_000,
            "requests from 0 (unlimited) to 1000000",
        )?;
        let merchant_per_minute = parsed(
            &get,
            "RATE_LIMIT_MERCHANT_PER_MINUTE",
            defaults::RATE_LIMIT_MERCHANT_PER_MINUTE,
            |n| *n <= 1_000_000,
            "requests from 0 (unlimited) to 1000000",
        )?;

        let issuer = get("AUTH_ISSUER").unwrap_or_else(|| defaults::AUTH_ISSUER.to_owned());
        let audience = get("AUTH_AUDIENCE").unwrap_or_else(|| defaults::AUTH_AUDIENCE.to_owned());
        if issuer.is_empty() {
            return Err(bad("AUTH_ISSUER", "must not be empty"));
        }
        if audience.is_empty() {
            return Err(bad("AUTH_AUDIENCE", "must not be empty"));
        }
        let hs256_secret = match get("AUTH_HS256_SECRET") {
            None => None,
            Some(s) if s.len() < MIN_HS256_SECRET_BYTES => {
                return Err(bad(
                    "AUTH_HS256_SECRET",
                    format!("must be at least {MIN_HS256_SECRET_BYTES} bytes"),
                ))
            }
            Some(s) => Some(Secret::new(s.into_bytes())),
        };
        let public_keys = match get("AUTH_PUBLIC_KEYS_FILE") {
            None => HashMap::new(),
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    bad("AUTH_PUBLIC_KEYS_FILE", format!("cannot read {path}: {e}"))
                })?;
                parse_public_keys(&text).map_err(|e| bad("AUTH_PUBLIC_KEYS_FILE", e))?
            }
        };
        let bank_account_keys =
            match get("BANK_ACCOUNT_KEYS") {
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
            name: get("PAYOUT_DEBTOR_NAME")
                .unwrap_or_else(|| defaults::PAYOUT_DEBTOR_NAME.to_owned()),
            account: get("PAYOUT_DEBTOR_ACCOUNT")
                .unwrap_or_else(|| defaults::PAYOUT_DEBTOR_ACCOUNT.to_owned()),
            bic: get("PAYOUT_DEBTOR_BIC").filter(|b| !b.is_empty()),
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

        Ok(Config {
            listen_addr,
            metrics_listen_addr,
            database_url: Secret::new(database_url),
            pool: PoolLimits {
                max_connections,
                acquire_timeout: Duration::from_millis(acquire_timeout_ms),
            },
            auth: AuthConfig {
                issuer,
                audience,
                hs256_secret,
                public_keys,
            },
            request_timeout: Duration::from_millis(request_timeout_ms),
            body_limit_bytes,
            shutdown_timeout: Duration::from_secs(shutdown_timeout_seconds),
            settlement_run_interval: (settlement_run_interval_seconds > 0)
                .then(|| Duration::from_secs(settlement_run_interval_seconds)),
            webhook_poll_interval: (webhook_poll_interval_ms > 0)
                .then(|| Duration::from_millis(webhook_poll_interval_ms)),
            webhooks: crate::webhooks::delivery::DeliveryConfig {
                timeout: Duration::from_millis(webhook_timeout_ms),
                max_attempts: webhook_max_attempts,
                retry_base: Duration::from_millis(webhook_retry_base_ms),
                reach: if allow_local {
                    Reach::LocalAllowed
                } else {
                    Reach::PublicOnly
                },
            },
            reminder_delay: Duration::from_secs(reminder_delay_seconds),
            batch_number_reuse,
            rate_limits: crate::rate_limit::RateLimits {
                terminal_per_minute,
                merchant_per_minute,
            },
            bank_account_keys,
            payout_debtor,
        })
    }

    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
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
    }
}
