//! `settlementd`: the settlement service.
//!
//! - `serve`: applies pending migrations and serves HTTP (needs `DATABASE_URL`).
//! - `dev`: starts a private Postgres under the data folder, loads demo data, prints
//!   tokens and a working `curl`, then serves on loopback.
//! - `migrate`: applies pending migrations and exits.
//! - `token`: prints a signed HS256 token for local use.
//! - `probe`: exits 0 when a URL answers 200, for container health checks.

mod demo;
mod dev;
mod probe;
mod telemetry;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use settlement_api::auth::{sign_hs256, Claims, Principal};
use settlement_api::config::Settings;
use settlement_api::{app, Application, Config};

/// First wait before retrying migrations at start; doubles up to the maximum.
const MIGRATION_RETRY_FIRST: std::time::Duration = std::time::Duration::from_secs(1);
/// Longest wait between two migration attempts at start.
const MIGRATION_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Parser)]
#[command(
    name = "settlementd",
    version,
    about = "Acquirer-side batch settlement service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations, then serve HTTP and run the workers (scheduler,
    /// webhook delivery) as configured (needs DATABASE_URL).
    Serve {
        /// Serve HTTP only; the workers run elsewhere (`settlementd worker`).
        #[arg(long)]
        no_workers: bool,
        #[command(flatten)]
        settings: Box<Settings>,
    },
    /// Run the workers alone (scheduler, webhook delivery, metrics), without the
    /// public HTTP port, so they scale apart from the API (needs DATABASE_URL; the
    /// migrations are applied by `serve` or `migrate`).
    Worker {
        #[command(flatten)]
        settings: Box<Settings>,
    },
    /// Run locally on a private Postgres with demo data (the default local run).
    Dev,
    /// Apply pending migrations and exit (needs DATABASE_URL).
    Migrate {
        #[command(flatten)]
        settings: Box<Settings>,
    },
    /// Exit 0 when the service at --url answers 200 (container health checks; the
    /// runtime image has no shell or curl).
    Probe {
        /// URL to GET; plain http on loopback.
        #[arg(long, default_value = "http://127.0.0.1:8080/readyz")]
        url: String,
    },
    /// Print a new random bank-account key for BANK_ACCOUNT_KEYS (id:base64 of 32
    /// bytes, AES-256-GCM).
    BankAccountKey {
        /// The key's id, stored beside every account it seals.
        #[arg(long, default_value = "k1")]
        id: String,
    },
    /// Print a signed token for local use (HS256 with AUTH_HS256_SECRET).
    Token {
        /// Role of the token.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Merchant of a merchant or terminal token.
        #[arg(long)]
        merchant_id: Option<String>,
        /// Terminal of a terminal token.
        #[arg(long)]
        terminal_id: Option<String>,
        /// Who an ops token names (its `sub`, recorded in the audit trail), or which
        /// switch a host token names.
        #[arg(long)]
        subject: Option<String>,
        /// Lifetime, e.g. 3600s, 90m, 12h, 7d.
        #[arg(long, default_value = "12h")]
        ttl: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Ops,
    Merchant,
    Terminal,
    Host,
}

/// Parses a lifetime such as `3600s`, `90m`, `12h` or `7d` into seconds (at most 30 days).
fn parse_ttl_seconds(text: &str) -> anyhow::Result<u64> {
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = digits.parse().context("--ttl must start with a number")?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => anyhow::bail!("--ttl unit must be s, m, h or d"),
    };
    let secs = n.checked_mul(scale).context("--ttl is too long")?;
    anyhow::ensure!(
        (1..=30 * 86_400).contains(&secs),
        "--ttl must be between 1 second and 30 days"
    );
    Ok(secs)
}

fn principal_of(
    role: RoleArg,
    merchant_id: Option<String>,
    terminal_id: Option<String>,
    subject: Option<String>,
) -> anyhow::Result<Principal> {
    Ok(match role {
        RoleArg::Ops => Principal::Ops {
            subject: subject.unwrap_or_else(|| "ops".to_owned()),
        },
        RoleArg::Host => Principal::Host {
            subject: subject.unwrap_or_else(|| "host".to_owned()),
        },
        RoleArg::Merchant => Principal::Merchant {
            merchant_id: merchant_id.context("--merchant-id is required for a merchant token")?,
        },
        RoleArg::Terminal => Principal::Terminal {
            terminal_id: terminal_id.context("--terminal-id is required for a terminal token")?,
            merchant_id: merchant_id.context("--merchant-id is required for a terminal token")?,
        },
    })
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Health probes and token printing are short-lived helpers: no trace pipeline.
    let traces = matches!(
        cli.command,
        Command::Serve { .. } | Command::Worker { .. } | Command::Dev | Command::Migrate { .. }
    );
    // The local run logs human-readable text unless LOG_FORMAT says otherwise.
    let telemetry = telemetry::init(traces, matches!(cli.command, Command::Dev));
    let code = match run(cli.command).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "settlementd failed");
            eprintln!("settlementd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    };
    // The exporter's own thread sends what is buffered; give it the time it needs.
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .ok();
    code
}

/// Seals the bank accounts still stored in plain; a failure is logged and tried
/// again at the next start (the service also tries when it starts serving).
async fn seal_plain_bank_accounts(
    pool: &sqlx::PgPool,
    keys: &settlement_api::bank_account::BankAccountKeys,
) {
    match settlement_api::bank_account::seal_plain_accounts(pool, keys).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(merchants = n, "plain bank accounts sealed"),
        Err(e) => tracing::warn!(error = format!("{e:#}"), "plain bank accounts not sealed"),
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve {
            no_workers,
            settings,
        } => {
            let mut config = Config::from_settings(*settings)?;
            if no_workers {
                config.settlement_run_interval = None;
                config.webhook_poll_interval = None;
            }
            let keys = config.bank_account_keys.clone();
            let app = Application::build(config).await?;
            // Serve at once (liveness answers) and migrate beside it, retrying while
            // the database is unreachable: /readyz stays 503 until the migrations are
            // in, so no traffic arrives before, and a database that is late to start
            // does not crash-loop the service.
            let pool = app.pool();
            tokio::spawn(async move {
                let mut delay = MIGRATION_RETRY_FIRST;
                loop {
                    match settlement_store::migrate_tolerating_newer(&pool).await {
                        Ok(()) => {
                            tracing::info!("migrations applied");
                            // Accounts stored in plain before they were sealed are
                            // sealed as soon as the columns for it exist.
                            seal_plain_bank_accounts(&pool, &keys).await;
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(
                                error = format!("{e:#}"),
                                retry_in_s = delay.as_secs(),
                                "migrations not applied yet"
                            );
                            tokio::time::sleep(delay).await;
                            delay = (delay * 2).min(MIGRATION_RETRY_MAX);
                        }
                    }
                }
            });
            tracing::info!(addr = %app.local_addr()?, "serving");
            app.run_until_stopped(app::shutdown_signal()).await
        }
        Command::Worker { settings } => {
            let config = Config::from_settings(*settings)?;
            settlement_api::app::run_workers(config, app::shutdown_signal()).await
        }
        Command::Migrate { settings } => {
            let config = Config::from_settings(*settings)?;
            let pool = settlement_store::connect_pool(config.database_url.expose(), config.pool)?;
            settlement_store::migrate(&pool).await?;
            tracing::info!("migrations applied");
            seal_plain_bank_accounts(&pool, &config.bank_account_keys).await;
            Ok(())
        }
        Command::Dev => dev::run().await,
        Command::Probe { url } => probe::check(&url).await,
        Command::BankAccountKey { id } => {
            let text = settlement_api::bank_account::BankAccountKeys::generate_text(&id);
            settlement_api::bank_account::BankAccountKeys::parse(&text)
                .map_err(|e| anyhow::anyhow!("--id: {e}"))?;
            println!("{text}");
            Ok(())
        }
        Command::Token {
            role,
            merchant_id,
            terminal_id,
            subject,
            ttl,
        } => {
            let secret = std::env::var("AUTH_HS256_SECRET")
                .ok()
                .or_else(dev::stored_secret)
                .context("AUTH_HS256_SECRET is not set and no dev secret exists (run `settlementd dev` once)")?;
            let issuer = std::env::var("AUTH_ISSUER")
                .unwrap_or_else(|_| settlement_api::config::defaults::AUTH_ISSUER.into());
            let audience = std::env::var("AUTH_AUDIENCE")
                .unwrap_or_else(|_| settlement_api::config::defaults::AUTH_AUDIENCE.into());
            let principal = principal_of(role, merchant_id, terminal_id, subject)?;
            let claims =
                Claims::for_principal(&principal, &issuer, &audience, parse_ttl_seconds(&ttl)?);
            println!("{}", sign_hs256(&claims, secret.as_bytes())?);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_ttl_seconds;

    #[test]
    fn ttl_units_scale_and_bounds_hold() {
        assert_eq!(parse_ttl_seconds("90m").unwrap(), 5400);
        assert_eq!(parse_ttl_seconds("12h").unwrap(), 43_200);
        assert_eq!(parse_ttl_seconds("3600").unwrap(), 3600);
        assert!(parse_ttl_seconds("31d").is_err());
        assert!(parse_ttl_seconds("0s").is_err());
        assert!(parse_ttl_seconds("5w").is_err());
        assert!(parse_ttl_seconds("h").is_err());
    }
}
