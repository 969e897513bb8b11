//! `settlement-bench`: benchmark programs that print the service's figures beside
//! the physical limits of the same Postgres, measured in the same run, on one
//! machine with the service, Postgres and the load generator together.
//!
//! Build and run with `scripts/bench` (release build), or
//! `cargo run --release -p settlement-bench -- <benchmark>`.

mod authorizations;
mod cycles;
mod env;
mod ingest;
mod status;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use env::{machine, Cluster, Service};

#[derive(Parser)]
#[command(
    name = "settlement-bench",
    version,
    about = "Benchmarks of the settlement service"
)]
struct Cli {
    /// Folder for the benchmark's private Postgres cluster (removed afterwards).
    #[arg(long, default_value = "target/bench-pg")]
    data_dir: PathBuf,
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Transactions per second through POST .../batches beside raw COPY.
    Ingest {
        /// Seconds per measured load.
        #[arg(long, default_value_t = 8.0)]
        seconds: f64,
        /// Concurrencies (terminals closing at once) to try with 200-line batches.
        #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16")]
        concurrency: Vec<usize>,
        /// Rounds of the service and COPY measured in turns at the best concurrency.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// List the statements behind the first round's closes (pg_stat_statements).
        #[arg(long)]
        profile: bool,
    },
    /// Records per second through POST /v1/host/authorizations (1,000 records a
    /// request) beside raw COPY of the same rows, at each concurrency in turns.
    Authorizations {
        /// Seconds per measured load.
        #[arg(long, default_value_t = 8.0)]
        seconds: f64,
        /// Concurrencies (requests at once) to try.
        #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
        concurrency: Vec<usize>,
    },
    /// Time to close many merchants' cycles due at one cutoff, beside one set-based
    /// INSERT ... SELECT ... GROUP BY over the same transactions.
    CycleClose {
        /// Merchants, one terminal and one batch each.
        #[arg(long, default_value_t = 10_000)]
        merchants: usize,
        /// Transactions per merchant.
        #[arg(long, default_value_t = 100)]
        lines: usize,
        /// List the statements behind the run (pg_stat_statements).
        #[arg(long)]
        profile: bool,
    },
    /// Status, batch list and balance p50/p99 with 1 and 10 million transactions of history.
    Status {
        /// Seconds per measured read.
        #[arg(long, default_value_t = 8.0)]
        seconds: f64,
        /// Merchants reading at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// List the statements behind each read (pg_stat_statements).
        #[arg(long)]
        profile: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let command: Vec<String> = std::env::args().collect();
    println!("machine: {}", machine());
    println!("command: {}", command.join(" "));
    let cluster = Cluster::start(&cli.data_dir).await?;
    let pool = settlement_store::connect_pool(
        &cluster.url(),
        settlement_store::PoolLimits {
            max_connections: 32,
            acquire_timeout: std::time::Duration::from_secs(30),
        },
    )?;
    settlement_store::migrate(&pool).await?;
    let service = Service::start(
        &cluster.url(),
        &[
            ("DATABASE_MAX_CONNECTIONS", "16"),
            ("SETTLEMENT_RUN_INTERVAL_SECONDS", "0"),
        ],
    )
    .await?;
    match cli.bench {
        Bench::Ingest {
            seconds,
            concurrency,
            rounds,
            profile,
        } => {
            println!(
                "ingest: batches of 200 sale lines at concurrency {concurrency:?}, {seconds} s each; \
                 then 20 and 2,000 lines at the best; COPY of the same rows in the same Postgres"
            );
            // Steady state: a database in service has planner statistics. Without
            // them (tables created seconds ago) a prepared lookup of a terminal's batch
            // number can be planned on the wrong index and scan the terminal's history.
            ingest::load(&service, &cluster, "w-", 4, 200, 2.0).await?;
            sqlx::query("ANALYZE").execute(&pool).await?;
            service.reset_peak_rss();
            let mut best: Option<ingest::Run> = None;
            for (i, c) in concurrency.iter().enumerate() {
                let run =
                    ingest::load(&service, &cluster, &format!("c{i}-"), *c, 200, seconds).await?;
                println!("  service  {}", ingest::describe(&run));
                if best
                    .as_ref()
                    .is_none_or(|b| run.tx_per_second() > b.tx_per_second())
                {
                    best = Some(run);
                }
            }
            let best = best.expect("at least one concurrency");
            for (i, lines) in [20usize, 2000].iter().enumerate() {
                let run = ingest::load(
                    &service,
                    &cluster,
                    &format!("l{i}-"),
                    best.concurrency,
                    *lines,
                    seconds,
                )
                .await?;
                println!("  service  {}", ingest::describe(&run));
            }
            // The machine's speed drifts (a shared host): the service and COPY are
            // measured in turns, and the ratio is taken within each round.
            ingest::prepare_copy_table(&pool).await?;
            let mut ratios = Vec::new();
            sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                .execute(&pool)
                .await?;
            for round in 1..=rounds {
                sqlx::query("SELECT pg_stat_statements_reset()")
                    .execute(&pool)
                    .await?;
                let run = ingest::load(
                    &service,
                    &cluster,
                    &format!("r{round}-"),
                    best.concurrency,
                    200,
                    seconds,
                )
                .await?;
                let (cpu0, own0) = (
                    env::CpuReading::take(&service, &cluster),
                    env::own_cpu_seconds(),
                );
                // Serials stay below 10^8, so the rows' 12-digit RRNs stay distinct.
                let (per_batch, copied_rows) = ingest::copy_per_batch(
                    &pool,
                    best.concurrency,
                    200,
                    seconds,
                    u64::from(round) * 20_000_000,
                )
                .await?;
                let copied_batches = copied_rows as f64 / 200.0;
                let (_, copy_pg_ms) =
                    env::CpuReading::take(&service, &cluster).ms_per(&cpu0, copied_batches);
                let copy_client_ms = (env::own_cpu_seconds() - own0) * 1000.0 / copied_batches;
                let bulk =
                    ingest::copy_bulk(&pool, 500_000, 80_000_000 + u64::from(round) * 3_000_000)
                        .await?;
                if profile && round == 1 {
                    println!("  statements behind round 1 (service and COPY):");
                    env::statement_profile(&pool, 16).await?;
                }
                let (service_ms, service_pg_ms, load_ms) = run.cpu_ms;
                let (service_cpu, copy_cpu) = (
                    service_ms + service_pg_ms + load_ms,
                    copy_pg_ms + copy_client_ms,
                );
                println!(
                    "  round {round}  CPU per 200-line batch: service {service_cpu:.2} ms (settlementd {service_ms:.2}, \
                     Postgres {service_pg_ms:.2}, load generator {load_ms:.2}); COPY {copy_cpu:.2} ms (Postgres \
                     {copy_pg_ms:.2}, client {copy_client_ms:.2}): {:.2} of the service's",
                    copy_cpu / service_cpu,
                );
                let ratio = run.tx_per_second() / per_batch;
                println!(
                    "  round {round}  service {:>7.0} tx/s (p50 {}  p99 {})  COPY per batch {per_batch:>7.0} rows/s  \
                     one bulk COPY {bulk:>7.0} rows/s  ratio {ratio:.2} per batch, {:.2} bulk",
                    run.tx_per_second(),
                    env::ms(run.p50),
                    env::ms(run.p99),
                    run.tx_per_second() / bulk
                );
                ratios.push(ratio);
            }
            ratios.sort_by(f64::total_cmp);
            let median = ratios[ratios.len() / 2];
            println!(
                "result: best {:.0} tx/s at {} terminals; service / COPY of the same rows per batch, median of {rounds} \
                 rounds {median:.2} (range {:.2}-{:.2}; target >= 0.6); settlementd peak RSS {:.1} MiB",
                best.tx_per_second(),
                best.concurrency,
                ratios[0],
                ratios[ratios.len() - 1],
                service.peak_rss_mib()
            );
        }
        Bench::Authorizations {
            seconds,
            concurrency,
        } => {
            println!(
                "authorizations: requests of {} new sale authorizations at concurrency {concurrency:?}, \
                 {seconds} s each; COPY of the same rows (1,000 per COPY and commit) into a table LIKE \
                 host_authorizations INCLUDING ALL in the same Postgres, in turns at the same concurrency",
                authorizations::RECORDS_PER_REQUEST
            );
            // Warm up and give the planner statistics, as a database in service has.
            authorizations::load(&service, &cluster, "w-", 2, 2.0).await?;
            sqlx::query("ANALYZE").execute(&pool).await?;
            authorizations::prepare_copy_table(&pool).await?;
            let mut ratios = Vec::new();
            for (i, c) in concurrency.iter().enumerate() {
                let run = authorizations::load(&service, &cluster, &format!("a{i}-"), *c, seconds)
                    .await?;
                let copy =
                    authorizations::copy_per_request(&pool, *c, seconds, i as u64 * 16_000_000)
                        .await?;
                let ratio = run.records_per_second() / copy;
                println!(
                    "  service  {}  |  COPY {copy:>8.0} rows/s  |  ratio {ratio:.2}",
                    authorizations::describe(&run)
                );
                ratios.push((run.records_per_second(), copy, ratio, *c));
            }
            let best = ratios
                .iter()
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .expect("at least one concurrency");
            println!(
                "result: best {:.0} records/s at {} connections, COPY {:.0} rows/s there: ratio {:.2} \
                 (target >= 0.6); settlementd peak RSS {:.1} MiB",
                best.0,
                best.3,
                best.1,
                best.2,
                service.peak_rss_mib()
            );
        }
        Bench::CycleClose {
            merchants,
            lines,
            profile,
        } => {
            println!(
                "cycle close: {merchants} merchants with one {lines}-line batch each, all due at one \
                 cutoff; one settlement run (POST /v1/ops/settlement-runs, what the scheduler runs at each tick)"
            );
            let took = cycles::seed(&service, merchants, lines).await?;
            println!("  seeded through the API in {took:.0} s");
            service.reset_peak_rss();
            let cutoff = cycles::cutoff_soon(&pool, std::time::Duration::from_secs(2)).await?;
            sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                .execute(&pool)
                .await?;
            sqlx::query("SELECT pg_stat_statements_reset()")
                .execute(&pool)
                .await?;
            let run = cycles::run_after(&service, &pool, merchants, cutoff).await?;
            if profile {
                env::statement_profile(&pool, 25).await?;
            }
            let baseline = cycles::set_based_baseline(&pool).await?;
            println!(
                "  service   every cycle closed, with its entry, checkpoint, event and payout, in {run:.2} s \
                 (the scheduler adds up to its interval before the run starts)"
            );
            println!("  baseline  one INSERT ... SELECT ... GROUP BY over the same rows: {baseline:.2} s");
            println!(
                "result: {:.2}x the set-based baseline (target <= 2x); settlementd peak RSS {:.1} MiB",
                run / baseline,
                service.peak_rss_mib()
            );
        }
        Bench::Status {
            seconds,
            concurrency,
            profile,
        } => {
            println!(
                "status: {} merchants x 2 terminals, one {}-line batch per terminal and day, settled; \
                 {concurrency} concurrent readers, {seconds} s per read",
                status::MERCHANTS,
                status::LINES
            );
            status::provision_history(&service, &pool).await?;
            let took = status::seed_until(&pool, 1, 25).await?;
            status::close_today(&service).await?;
            let n = status::transactions(&pool).await?;
            println!("  history: {n} transactions (written in {took:.0} s)");
            service.reset_peak_rss();
            let small = status::measure(
                &service,
                &pool,
                &format!("{n} transactions"),
                concurrency,
                seconds,
                profile,
            )
            .await?;
            let took = status::seed_until(&pool, 26, 250).await?;
            let n = status::transactions(&pool).await?;
            println!("  history: {n} transactions (225 more days written in {took:.0} s)");
            let large = status::measure(
                &service,
                &pool,
                &format!("{n} transactions"),
                concurrency,
                seconds,
                profile,
            )
            .await?;
            let reads_peak = service.peak_rss_mib();
            // The two phases above are minutes apart and the machine drifts: the same
            // ~1M history again, in a database and service of its own, read in turns
            // with the ~10M one, the ratio taken within each round.
            settlement_store::create_database_if_absent(
                &cluster.pg.url("postgres"),
                "settlement_small",
            )
            .await?;
            let small_url = cluster.pg.url("settlement_small");
            let small_pool = settlement_store::connect_pool(
                &small_url,
                settlement_store::PoolLimits {
                    max_connections: 8,
                    acquire_timeout: std::time::Duration::from_secs(30),
                },
            )?;
            settlement_store::migrate(&small_pool).await?;
            let small_service = Service::start(
                &small_url,
                &[
                    ("DATABASE_MAX_CONNECTIONS", "16"),
                    ("SETTLEMENT_RUN_INTERVAL_SECONDS", "0"),
                ],
            )
            .await?;
            status::provision_history(&small_service, &small_pool).await?;
            status::seed_until(&small_pool, 1, 25).await?;
            status::close_today(&small_service).await?;
            let mut ratios = Vec::new();
            sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                .execute(&small_pool)
                .await?;
            sqlx::query("SELECT pg_stat_statements_reset()")
                .execute(&pool)
                .await?;
            for round in 1..=3 {
                let blocks_small = status::blocks(&small_pool).await?;
                let blocks_large = status::blocks(&pool).await?;
                let before = env::CpuReading::take(&small_service, &cluster);
                let (_, p99_small, n_small) =
                    status::read_load(&small_service, "status", concurrency, seconds).await?;
                let (cpu_small_service, cpu_small_pg) =
                    env::CpuReading::take(&small_service, &cluster).ms_per(&before, n_small as f64);
                let before = env::CpuReading::take(&service, &cluster);
                let (_, p99_large, n_large) =
                    status::read_load(&service, "status", concurrency, seconds).await?;
                let (cpu_large_service, cpu_large_pg) =
                    env::CpuReading::take(&service, &cluster).ms_per(&before, n_large as f64);
                let (hit_small, read_small) = status::blocks(&small_pool)
                    .await?
                    .since(blocks_small, n_small);
                let (hit_large, read_large) =
                    status::blocks(&pool).await?.since(blocks_large, n_large);
                println!(
                    "  round {round}  buffers per call ~1M: {hit_small:.1} hit, {read_small:.2} read; ~10M: {hit_large:.1} hit, {read_large:.2} read"
                );
                let ratio = p99_large.as_secs_f64() / p99_small.as_secs_f64();
                println!(
                    "  round {round}  status p99 ~1M {}  ~10M {}  ratio {ratio:.2}; CPU per call ~1M: settlementd \
                     {cpu_small_service:.3} ms, Postgres {cpu_small_pg:.3} ms; ~10M: settlementd {cpu_large_service:.3} ms, \
                     Postgres {cpu_large_pg:.3} ms",
                    env::ms(p99_small),
                    env::ms(p99_large)
                );
                ratios.push(ratio);
            }
            if profile {
                println!("  statements behind the status calls read in turns, ~1M:");
                env::statement_profile(&small_pool, 6).await?;
                println!("  ~10M:");
                env::statement_profile(&pool, 6).await?;
            }
            ratios.sort_by(f64::total_cmp);
            println!(
                "result: status p99 {} at ~1M (target <= 10 ms), {} at ~10M = {:.2}x one after the other; \
                 read in turns, median of 3 rounds {:.2}x (range {:.2}-{:.2}; target <= 1.3x); settlementd peak RSS {reads_peak:.1} MiB",
                env::ms(small),
                env::ms(large),
                large.as_secs_f64() / small.as_secs_f64(),
                ratios[1],
                ratios[0],
                ratios[2],
            );
            println!("statement export (CSV, streamed) of hist-m0, 20 terminals:");
            for days in [25, 250] {
                let (rows, bytes, secs, peak) = status::export(&service, "hist-m0", days).await?;
                println!(
                    "  {days:>3} days  {rows:>8} rows  {:>6.1} MiB  {secs:>5.1} s  {:>7.0} rows/s  settlementd peak RSS {peak:.1} MiB",
                    bytes as f64 / 1048576.0,
                    rows as f64 / secs
                );
            }
        }
    }
    service.stop().await;
    Ok(())
}
