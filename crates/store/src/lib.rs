//! Postgres storage for settlement: the embedded migrations, a connection pool with
//! bounded size and acquire time, and one function per statement, grouped by table.
//! Functions take a connection (or a transaction) so the caller decides what commits
//! together.
//!
//! Statements are checked at build time (`sqlx::query!`, `query_as!`,
//! `query_scalar!`) against the offline query data in `crates/store/.sqlx/`, which
//! `scripts/sqlx-prepare` regenerates from the migrations. In them, `AS "name!"` and
//! `AS "name?"` tell sqlx a column's nullability where it cannot know it (casts,
//! aggregates, outer joins, unions), and `as` names a bind parameter's Rust type
//! where sqlx's check has no match for it (slices of `&str` or `Option<&str>` bound
//! as `text[]`); the parameter is bound as before. Two statements stay unchecked,
//! both here: `migrations_applied` (sqlx's bookkeeping table) and the `CREATE
//! DATABASE` of `create_database_if_absent` (the name is part of the statement).

pub mod audit;
pub mod batches;
pub mod checks;
pub mod close;
pub mod close_attempts;
pub mod cycles;
pub mod events;
pub mod holidays;
pub mod host_authorizations;
pub mod idempotency;
pub mod ledger;
pub mod local_postgres;
pub mod locks;
pub mod merchants;
pub mod payouts;
pub mod presentments;
pub mod reminders;
pub mod statement;
pub mod status;
pub mod web_sessions;
pub mod webhooks;

use std::time::Duration;

use anyhow::Context;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

/// The schema migrations, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

/// Limits of the connection pool.
#[derive(Debug, Clone, Copy)]
pub struct PoolLimits {
    /// Most connections one replica holds; replicas times this must stay below the
    /// server's `max_connections`.
    pub max_connections: u32,
    /// How long a request waits for a free connection before it is answered 503.
    pub acquire_timeout: Duration,
}

/// Opens a connection pool. Connections are made lazily, so a service can start
/// (and report not-ready) while the database is still coming up.
pub fn connect_pool(database_url: &str, limits: PoolLimits) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = database_url
        .parse::<PgConnectOptions>()
        .context("DATABASE_URL is not a valid Postgres URL")?
        // Every statement here is small and indexed, yet a set-based cycle close can be
        // estimated costly enough for Postgres to JIT-compile it: ~150 ms of compiling
        // for a few milliseconds of work. The service's sessions never JIT.
        .options([("jit", "off")]);
    Ok(PgPoolOptions::new()
        .max_connections(limits.max_connections)
        .acquire_timeout(limits.acquire_timeout)
        .connect_lazy_with(options))
}

/// Applies pending migrations. Concurrent replicas serialise on sqlx's advisory lock.
/// Refuses a database that holds migrations this binary does not know.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await.context("applying migrations")
}

/// Applies pending migrations, accepting a database that a newer version has already
/// migrated further: during a rolling deploy, or after a rollback, the older replicas
/// keep starting. Migrations are additive, so an older binary works on a newer schema.
pub async fn migrate_tolerating_newer(pool: &PgPool) -> anyhow::Result<()> {
    let tolerant = Migrator {
        migrations: MIGRATOR.migrations.clone(),
        ignore_missing: true,
        locking: true,
        no_tx: false,
    };
    tolerant.run(pool).await.context("applying migrations")
}

/// True when every embedded migration is applied to the database (a database that
/// a newer version migrated further is ready too).
pub async fn migrations_applied(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    let versions: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
    // Unchecked: it reads sqlx's own bookkeeping table, which the migrator creates (the
    // migrations do not) and which may not exist yet.
    let applied: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM _sqlx_migrations WHERE success AND version = ANY($1)",
    )
    .bind(&versions)
    .fetch_one(&mut *conn)
    .await
    .or_else(|e| match &e {
        // no migrations table yet: nothing applied
        sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01") => Ok(0),
        _ => Err(e),
    })?;
    Ok(usize::try_from(applied).ok() == Some(versions.len()))
}

/// Creates the database `name` on the server of `server_url` unless it exists.
pub async fn create_database_if_absent(server_url: &str, name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        name.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "database name {name:?} must be lower-case letters, digits and '_'"
    );
    let mut admin = PgConnection::connect(server_url)
        .await
        .context("connecting to the database server")?;
    let exists = sqlx::query_scalar!(
        "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS \"exists!\"",
        name,
    )
    .fetch_one(&mut admin)
    .await?;
    if !exists {
        // Unchecked: the database name is part of the statement (validated above).
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .with_context(|| format!("creating database {name}"))?;
    }
    admin.close().await?;
    Ok(())
}

/// Creates a new, empty, migrated database on the test server and returns its URL.
/// The server is `DATABASE_URL` when set, else a throwaway local cluster.
pub async fn fresh_test_database() -> anyhow::Result<String> {
    let server = tokio::task::spawn_blocking(local_postgres::test_server_url).await??;
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    create_database_if_absent(&server, &name).await?;
    let url = local_postgres::with_database(&server, &name);
    let pool = connect_pool(
        &url,
        PoolLimits {
            max_connections: 2,
            acquire_timeout: Duration::from_secs(10),
        },
    )?;
    migrate(&pool).await?;
    pool.close().await;
    Ok(url)
}

/// True when a database error is the violation of the named constraint.
pub fn is_constraint_violation(err: &sqlx::Error, constraint: &str) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.constraint() == Some(constraint))
}
