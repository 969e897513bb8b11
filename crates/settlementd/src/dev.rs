//! `settlementd dev`: the local run on a private Postgres.

use std::path::PathBuf;

use anyhow::Context;

use settlement_api::auth::{sign_hs256, Claims, Principal};
use settlement_api::config::defaults;
use settlement_api::{app, Application, Config};
use settlement_store::local_postgres::{DataFolder, LocalPostgres, DEV_SETTINGS};

use crate::demo;

/// Port of the private Postgres unless `SETTLEMENT_DEV_PG_PORT` says otherwise.
const DEFAULT_DEV_PG_PORT: u16 = 54329;
/// Address the dev server listens on unless `SETTLEMENT_LISTEN_ADDR` says otherwise.
const DEFAULT_DEV_LISTEN_ADDR: &str = "127.0.0.1:8080";
/// Address of the dev metrics server unless `METRICS_LISTEN_ADDR` says otherwise.
const DEFAULT_DEV_METRICS_ADDR: &str = "127.0.0.1:9090";
/// Lifetime of the tokens printed at start.
const DEV_TOKEN_TTL_SECONDS: u64 = 24 * 3600;
/// Database of the dev cluster.
const DEV_DATABASE: &str = "settlement";

fn data_dir() -> PathBuf {
    std::env::var_os("SETTLEMENT_DATA_DIR").map_or_else(|| PathBuf::from(".data"), PathBuf::from)
}

fn secret_path() -> PathBuf {
    data_dir().join("dev-hs256-secret")
}

/// The file the tokens of the last start are written to (owner-only).
fn tokens_path() -> PathBuf {
    data_dir().join("dev-tokens.env")
}

fn bank_key_path() -> PathBuf {
    data_dir().join("dev-bank-account-keys")
}

/// The dev bank-account keys: `BANK_ACCOUNT_KEYS`, else the stored ones, else a new
/// random key written (owner-only) so sealed accounts open on the next run.
fn dev_bank_account_keys() -> anyhow::Result<String> {
    if let Ok(s) = std::env::var("BANK_ACCOUNT_KEYS") {
        return Ok(s);
    }
    let path = bank_key_path();
    if let Ok(s) = std::fs::read_to_string(&path) {
        return Ok(s.trim().to_owned());
    }
    let keys = settlement_api::bank_account::BankAccountKeys::generate_text("dev1");
    write_owner_only(&path, &keys)?;
    Ok(keys)
}

/// Writes a new file readable by its owner only, from the start.
fn write_owner_only(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .with_context(|| format!("writing {}", path.display()))
}

/// The HS256 secret a previous dev run stored, if any.
pub fn stored_secret() -> Option<String> {
    std::fs::read_to_string(secret_path())
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| s.len() >= settlement_api::config::MIN_HS256_SECRET_BYTES)
}

/// The dev secret: `AUTH_HS256_SECRET`, else the stored one, else a new random one
/// written (owner-only) so tokens stay valid across runs.
fn dev_secret() -> anyhow::Result<String> {
    if let Ok(s) = std::env::var("AUTH_HS256_SECRET") {
        return Ok(s);
    }
    if let Some(s) = stored_secret() {
        return Ok(s);
    }
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    // Created owner-only from the start: the secret is never readable by others.
    write_owner_only(&secret_path(), &secret)?;
    Ok(secret)
}

/// Runs the service locally with demo data.
pub async fn run() -> anyhow::Result<()> {
    let dir = data_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let pg_port = match std::env::var("SETTLEMENT_DEV_PG_PORT") {
        Ok(p) => p
            .parse()
            .context("SETTLEMENT_DEV_PG_PORT must be a port number")?,
        Err(_) => DEFAULT_DEV_PG_PORT,
    };
    let pg_dir = dir.join("postgres");
    eprintln!(
        "starting private Postgres in {} on port {pg_port}...",
        pg_dir.display()
    );
    let pg = tokio::task::spawn_blocking(move || {
        LocalPostgres::start(&pg_dir, pg_port, DEV_SETTINGS, DataFolder::Keep)
    })
    .await??;

    settlement_store::create_database_if_absent(&pg.url("postgres"), DEV_DATABASE).await?;

    let secret = dev_secret()?;
    let bank_keys = dev_bank_account_keys()?;
    let database_url = pg.url(DEV_DATABASE);
    let config = Config::from_lookup(|name| match name {
        "DATABASE_URL" => Some(database_url.clone()),
        "AUTH_HS256_SECRET" => Some(secret.clone()),
        "BANK_ACCOUNT_KEYS" => Some(bank_keys.clone()),
        "SETTLEMENT_LISTEN_ADDR" => {
            Some(std::env::var(name).unwrap_or_else(|_| DEFAULT_DEV_LISTEN_ADDR.to_owned()))
        }
        "METRICS_LISTEN_ADDR" => {
            Some(std::env::var(name).unwrap_or_else(|_| DEFAULT_DEV_METRICS_ADDR.to_owned()))
        }
        // The dev server speaks plain http on loopback: the web pages' cookies go
        // without `Secure` there, so a browser keeps them.
        "WEB_COOKIE_SECURE" => Some(std::env::var(name).unwrap_or_else(|_| "false".to_owned())),
        other => std::env::var(other).ok(),
    })?;
    let issuer = config.auth.issuer.clone();
    let audience = config.auth.audience.clone();
    let bank_account_keys = config.bank_account_keys.clone();
    let app = Application::build(config).await?;
    settlement_store::migrate(&app.pool()).await?;
    let demo = demo::ensure_demo_data(&app.pool(), &bank_account_keys).await?;

    let token = |p: &Principal| {
        sign_hs256(
            &Claims::for_principal(p, &issuer, &audience, DEV_TOKEN_TTL_SECONDS),
            secret.as_bytes(),
        )
    };
    let ops = token(&Principal::Ops {
        subject: "ops:dev".into(),
    })?;
    let merchant = token(&Principal::Merchant {
        merchant_id: demo.merchant_id.clone(),
    })?;
    let terminal = token(&Principal::Terminal {
        terminal_id: demo.terminal_id.clone(),
        merchant_id: demo.merchant_id.clone(),
    })?;
    let base = format!("http://{}", app.local_addr()?);
    // The tokens also go to a file: the log lines that follow scroll them away.
    let tokens = tokens_path();
    let _ = std::fs::remove_file(&tokens);
    write_owner_only(
        &tokens,
        &format!(
            "# settlementd dev: tokens valid for 24 h from {}\nOPS_TOKEN={ops}\nMERCHANT_TOKEN={merchant}\nTERMINAL_TOKEN={terminal}\n",
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
    )?;
    println!(
        "settlement is running at {base} (database: {}, port {})",
        pg.data_dir.display(),
        pg.port
    );
    println!();
    println!("merchant page:   {base}/merchant/  (sign in with MERCHANT_TOKEN)");
    println!("operations page: {base}/ops/  (sign in with OPS_TOKEN)");
    println!();
    println!("OPS_TOKEN={ops}");
    println!("MERCHANT_TOKEN={merchant}");
    println!("TERMINAL_TOKEN={terminal}");
    println!(
        "(also in {}: `. {}` puts them in your shell)",
        tokens.display(),
        tokens.display()
    );
    println!();
    println!(
        "# close a batch of terminal {} (tokens are valid for 24 h):",
        demo.terminal_id
    );
    println!("{}", demo::curl_close_example(&base, &terminal, &demo));
    println!();
    println!("# then read it back as the merchant:");
    println!(
        "curl -sS {base}/v1/merchants/{}/batches -H 'Authorization: Bearer {merchant}'",
        demo.merchant_id
    );
    println!();
    println!(
        "defaults: issuer {}, audience {}",
        defaults::AUTH_ISSUER,
        defaults::AUTH_AUDIENCE
    );
    app.run_until_stopped(app::shutdown_signal()).await
}
