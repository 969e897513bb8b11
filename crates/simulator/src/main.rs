//! `settlement-sim`: a fleet of card terminals that closes its batches against a
//! running settlement service, over HTTP only, with the behaviours of real terminals
//! (on time, late inside grace, past grace, out of balance then corrected, lost
//! answers retried with the same key, duplicates, skipped numbers, held lines
//! re-entered as a new batch, lines of a booked batch repeated, a batch forgotten).
//! Before the closes, the acquirer's authorization host sends the service every sale
//! and refund the terminals will close and a few they never close; after them, the
//! simulator runs settlement, so the host closes what was forgotten (auto-close). At
//! the end it checks through the public API that every sale is accounted exactly once
//! as its behaviour demands, every authorized transaction is paid once (on time when
//! the terminal forgot) or still unsettled when its day is not due, and that the
//! ledger check passes, prints a summary, and exits non-zero on any mismatch.

mod fleet;
mod host;
mod run;

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use rand::SeedableRng;

use fleet::{Fleet, Plan, Shares};

#[derive(Parser)]
#[command(
    name = "settlement-sim",
    version,
    about = "Drive a fleet of card terminals against the settlement service and check the outcome"
)]
struct Args {
    /// Base URL of the service; several, comma-separated, spread the requests over
    /// replicas (each attempt goes to the next, so a retry finds another replica).
    #[arg(
        long,
        env = "SETTLEMENT_URL",
        default_value = "http://127.0.0.1:8080",
        value_delimiter = ','
    )]
    url: Vec<String>,
    /// HS256 secret the service checks tokens with (else read from --secret-file).
    #[arg(long, env = "AUTH_HS256_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// File holding the secret; `settlementd dev` writes one here.
    #[arg(long, default_value = ".data/dev-hs256-secret")]
    secret_file: PathBuf,
    /// Token issuer and audience the service expects.
    #[arg(long, env = "AUTH_ISSUER", default_value = "settlement")]
    issuer: String,
    #[arg(long, env = "AUTH_AUDIENCE", default_value = "settlement-api")]
    audience: String,
    /// Merchants, spread over six time zones and four currencies.
    #[arg(long, default_value_t = 12)]
    merchants: usize,
    /// Terminals, spread over the merchants.
    #[arg(long, default_value_t = 60)]
    terminals: usize,
    /// Closes each terminal makes.
    #[arg(long, default_value_t = 2)]
    closes_per_terminal: u32,
    /// Shares of the behaviours, per close.
    #[arg(
        long,
        default_value = "on_time=59,late=8,past_grace=3,out_of_balance=5,lost_response=6,duplicate=5,skip_number=3,reenter=3,duplicate_lines=4,forgot_to_close=4"
    )]
    shares: Shares,
    /// Whether the merchants have auto-close on (0 minutes after the cutoff): the host
    /// then closes what terminals forgot. With `false`, it stays unsettled.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    auto_close: bool,
    /// Fewest and most lines in a batch (sizes are drawn log-uniformly between).
    #[arg(long, default_value_t = 3)]
    min_lines: usize,
    #[arg(long, default_value_t = 3000)]
    max_lines: usize,
    /// Terminals closing at the same time.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Seed of the generator; the same seed makes the same fleet and batches.
    #[arg(long)]
    seed: Option<u64>,
}

fn secret(args: &Args) -> anyhow::Result<String> {
    if let Some(s) = &args.secret {
        return Ok(s.clone());
    }
    std::fs::read_to_string(&args.secret_file)
        .map(|s| s.trim().to_owned())
        .with_context(|| {
            format!(
                "no AUTH_HS256_SECRET and cannot read {} (start the service with \
                 `cargo run -p settlementd -- dev`, or pass --secret)",
                args.secret_file.display()
            )
        })
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match main_inner(args).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("settlement-sim: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn main_inner(args: Args) -> anyhow::Result<bool> {
    anyhow::ensure!(args.merchants >= 1, "--merchants must be at least 1");
    anyhow::ensure!(args.terminals >= 1, "--terminals must be at least 1");
    anyhow::ensure!(
        (1..=10_000).contains(&args.max_lines) && args.min_lines <= args.max_lines,
        "--min-lines must not exceed --max-lines, which is at most 10000"
    );
    let seed = args.seed.unwrap_or_else(|| {
        u64::try_from(chrono::Utc::now().timestamp_micros()).unwrap_or_default()
    });
    // Ids are new on every run (a seed may be replayed against the same database).
    let run_id = format!(
        "{:08x}",
        chrono::Utc::now()
            .timestamp_millis()
            .rem_euclid(0x1_0000_0000)
    );
    let tokens = run::Tokens::new(secret(&args)?, args.issuer.clone(), args.audience.clone());
    let now = chrono::Utc::now();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let fleet = Fleet::generate(
        &Plan {
            run_id: &run_id,
            merchants: args.merchants,
            terminals: args.terminals,
            closes_per_terminal: args.closes_per_terminal,
            min_lines: args.min_lines,
            max_lines: args.max_lines,
            shares: &args.shares,
        },
        &mut rng,
        now,
    );
    println!(
        "settlement-sim run {run_id} (seed {seed}) against {}: {} merchants, {} terminals, {} closes each",
        args.url.join(", "), args.merchants, args.terminals, args.closes_per_terminal
    );
    let client = run::Client::new(&args.url, tokens)?;
    client.provision(&fleet, args.auto_close).await?;
    let feed = client.send_feed(&host::feed(&fleet)).await;
    let started = std::time::Instant::now();
    let outcomes = client.drive(&fleet, args.concurrency).await;
    let elapsed = started.elapsed();
    let settlement = client.run_settlement().await?;
    let verdict = client
        .verify(&fleet, &outcomes, feed, settlement, args.auto_close)
        .await?;
    run::print_summary(&fleet, &outcomes, &verdict, elapsed);
    Ok(verdict.ok())
}
