//! Store tests on a real Postgres, one fresh database each: the database itself
//! refuses what must never happen to the ledger.

use std::time::Duration;

use sqlx::{PgPool, Row};
use uuid::Uuid;

use settlement_domain::ledger::{batch_acceptance_entry, AccountKind, AccountRef};
use settlement_domain::money::Currency;
use settlement_store::merchants::{self, MerchantRow};
use settlement_store::{ledger, PoolLimits};

async fn pool() -> PgPool {
    let url = settlement_store::fresh_test_database()
        .await
        .expect("test database");
    settlement_store::connect_pool(
        &url,
        PoolLimits {
            max_connections: 4,
            acquire_timeout: Duration::from_secs(10),
        },
    )
    .expect("pool")
}

async fn merchant(pool: &PgPool, id: &str) {
    let mut conn = pool.acquire().await.unwrap();
    merchants::insert_merchant(
        &mut conn,
        &MerchantRow {
            merchant_id: id.into(),
            name: "Shop".into(),
            default_currency: "USD".into(),
            time_zone: "UTC".into(),
            cutoff_local_time: chrono::NaiveTime::from_hms_opt(22, 0, 0).unwrap(),
            grace_period_hours: 72,
            payout_delay_business_days: 1,
            mdr_basis_points: 100,
            fixed_fee_minor: 0,
            created_at: chrono::Utc::now(),
            bank_account_key_id: None,
            bank_account_sealed: None,
            bank_account_last4: None,
            host_matching: "report".into(),
            auto_close: false,
            auto_close_delay_minutes: 60,
            locale: "en".to_owned(),
        },
    )
    .await
    .unwrap();
}

fn account(kind: AccountKind, merchant_id: Option<&str>) -> AccountRef {
    AccountRef {
        kind,
        merchant_id: merchant_id.map(Into::into),
        currency: Currency::Usd,
    }
}

/// Writes an entry and its postings (in one statement), bypassing the domain's
/// balance check.
async fn raw_entry(pool: &PgPool, amounts: &[(i64, i64)]) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO journal_entries (id, kind, description) VALUES ($1, 'batch_accepted', 'raw')",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if !amounts.is_empty() {
        let (accounts, amounts): (Vec<i64>, Vec<i64>) = amounts.iter().copied().unzip();
        sqlx::query(
            "INSERT INTO postings (entry_id, account_id, currency, amount_minor) \
             SELECT $1, a, 'USD', m FROM unnest($2::bigint[], $3::bigint[]) AS u(a, m)",
        )
        .bind(id)
        .bind(&accounts)
        .bind(&amounts)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

async fn two_accounts(pool: &PgPool) -> (i64, i64) {
    merchant(pool, "m1").await;
    let mut conn = pool.acquire().await.unwrap();
    let a =
        ledger::find_or_create_account(&mut conn, &account(AccountKind::SchemeReceivable, None))
            .await
            .unwrap();
    let b = ledger::find_or_create_account(
        &mut conn,
        &account(AccountKind::MerchantPending, Some("m1")),
    )
    .await
    .unwrap();
    (a, b)
}

fn is_check_violation(err: &sqlx::Error) -> bool {
    settlement_store::is_constraint_violation(err, "ledger_entry_balanced")
}

#[tokio::test]
async fn the_database_refuses_an_unbalanced_entry() {
    let pool = pool().await;
    let (a, b) = two_accounts(&pool).await;
    let err = raw_entry(&pool, &[(a, 100), (b, -99)]).await.unwrap_err();
    assert!(is_check_violation(&err), "{err}");
    let err = raw_entry(&pool, &[(a, 100)]).await.unwrap_err();
    assert!(is_check_violation(&err), "{err}");
    let err = raw_entry(&pool, &[]).await.unwrap_err();
    assert!(is_check_violation(&err), "{err}");
    raw_entry(&pool, &[(a, 100), (b, -100)])
        .await
        .expect("a balanced entry commits");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM journal_entries")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 1, "nothing of the refused entries remains");

    // Each statement that adds postings must leave their entries balanced: an entry
    // written posting by posting is refused at its first posting, and a posting added
    // to a balanced entry later is refused too.
    let mut tx = pool.begin().await.unwrap();
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO journal_entries (id, kind, description) VALUES ($1, 'batch_accepted', 'raw')",
    )
    .bind(id)
    .execute(&mut *tx)
    .await
    .unwrap();
    let err = sqlx::query(
        "INSERT INTO postings (entry_id, account_id, currency, amount_minor) VALUES ($1, $2, 'USD', 100)",
    )
    .bind(id)
    .bind(a)
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert!(is_check_violation(&err), "{err}");
    drop(tx);
    let existing: Uuid = sqlx::query_scalar("SELECT id FROM journal_entries")
        .fetch_one(&pool)
        .await
        .unwrap();
    let err = sqlx::query(
        "INSERT INTO postings (entry_id, account_id, currency, amount_minor) VALUES ($1, $2, 'USD', 5)",
    )
    .bind(existing)
    .bind(a)
    .execute(&pool)
    .await
    .unwrap_err();
    assert!(is_check_violation(&err), "{err}");
}

#[tokio::test]
async fn postings_and_entries_can_never_be_updated_or_deleted() {
    let pool = pool().await;
    let (a, b) = two_accounts(&pool).await;
    raw_entry(&pool, &[(a, 250), (b, -250)]).await.unwrap();
    for statement in [
        "UPDATE postings SET amount_minor = amount_minor * 2",
        "DELETE FROM postings",
        "TRUNCATE postings CASCADE",
        "UPDATE journal_entries SET description = 'changed'",
        "DELETE FROM journal_entries",
        "UPDATE accounts SET merchant_id = NULL, kind = 'fee_revenue'",
        "DELETE FROM accounts",
    ] {
        let err = sqlx::query(statement).execute(&pool).await.unwrap_err();
        assert!(
            err.to_string().contains("append-only"),
            "{statement}: {err}"
        );
    }
    let sum: i64 = sqlx::query_scalar("SELECT sum(abs(amount_minor))::bigint FROM postings")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(sum, 500);
}

#[tokio::test]
async fn a_posting_must_match_its_accounts_currency_and_never_be_zero() {
    let pool = pool().await;
    let (a, b) = two_accounts(&pool).await;
    let err = raw_entry(&pool, &[(a, 0), (b, 0)]).await.unwrap_err();
    assert!(
        settlement_store::is_constraint_violation(&err, "postings_nonzero"),
        "{err}"
    );
    let mut tx = pool.begin().await.unwrap();
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO journal_entries (id, kind, description) VALUES ($1, 'batch_accepted', 'eur')",
    )
    .bind(id)
    .execute(&mut *tx)
    .await
    .unwrap();
    let err = sqlx::query("INSERT INTO postings (entry_id, account_id, currency, amount_minor) VALUES ($1, $2, 'EUR', 5)")
        .bind(id)
        .bind(a)
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert!(
        settlement_store::is_constraint_violation(&err, "postings_account_currency"),
        "{err}"
    );
}

#[tokio::test]
async fn a_booked_entry_moves_the_net_into_the_merchants_pending_account() {
    let pool = pool().await;
    merchant(&pool, "m1").await;
    let entry = batch_acceptance_entry("m1", Currency::Usd, 1_234).unwrap();
    let mut tx = pool.begin().await.unwrap();
    ledger::insert_journal_entry(&mut tx, "batch_accepted", Some("m1"), "test", &entry)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let balances = ledger::merchant_balances(&mut conn, "m1").await.unwrap();
    assert_eq!(balances.len(), 1);
    assert_eq!(balances[0].kind, AccountKind::MerchantPending);
    assert_eq!(balances[0].balance_minor, -1_234);
    assert_eq!(
        ledger::posting_sums_by_currency(&mut conn).await.unwrap(),
        vec![("USD".to_owned(), 0)]
    );
    let row = sqlx::query("SELECT count(*) AS n FROM accounts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(row.get::<i64, _>("n"), 2);
}

#[tokio::test]
async fn concurrent_first_uses_of_an_account_create_it_once() {
    let pool = pool().await;
    merchant(&pool, "m1").await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = pool.acquire().await.unwrap();
            ledger::find_or_create_account(
                &mut conn,
                &account(AccountKind::MerchantPayable, Some("m1")),
            )
            .await
            .unwrap()
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1);
}

#[tokio::test]
async fn every_ledger_check_runs_and_holds_on_a_sound_ledger() {
    let pool = pool().await;
    let (a, b) = two_accounts(&pool).await;
    raw_entry(&pool, &[(a, 700), (b, -700)]).await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let results = settlement_store::checks::run_ledger_checks(&mut conn)
        .await
        .unwrap();
    assert!(results.len() >= 12);
    for r in &results {
        // The raw entry moves money between scheme receivable and pending with no batch
        // behind it: exactly those two checks see it.
        let expected = i64::from(matches!(
            r.name,
            "pending_equals_unsettled_batches" | "scheme_receivable_equals_booked_batches"
        ));
        assert_eq!(r.violations, expected, "{}", r.name);
    }
}

#[tokio::test]
async fn a_database_migrated_by_a_newer_version_stays_ready_and_usable() {
    let pool = pool().await;
    // A newer release applied a migration this binary does not know.
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (29991231000000, 'from a newer release', true, '\\x00', 1)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    assert!(settlement_store::migrations_applied(&mut conn)
        .await
        .unwrap());
    drop(conn);
    settlement_store::migrate_tolerating_newer(&pool)
        .await
        .expect("serve starts on a newer schema");
    // Last: a refused run leaves sqlx's migration lock on its connection until the
    // pool closes (the `migrate` command exits right away).
    assert!(
        settlement_store::migrate(&pool).await.is_err(),
        "the strict migrate command refuses"
    );
    pool.close().await;
}

#[tokio::test]
async fn exceptions_are_read_typed_and_a_state_the_service_does_not_know_fails_the_read() {
    use settlement_domain::exception::{AttemptOutcome, ExceptionKind, ExceptionState};
    use settlement_store::close_attempts::{self, ExceptionFilter};

    let pool = pool().await;
    merchant(&pool, "m1").await;
    sqlx::query("INSERT INTO terminals (terminal_id, merchant_id) VALUES ('t1', 'm1')")
        .execute(&pool)
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let id = close_attempts::insert_close_attempt(
        &mut conn,
        AttemptOutcome::OutOfBalance,
        "t1",
        "m1",
        7,
        "USD",
        &serde_json::json!([]),
        chrono::Utc::now(),
        None,
    )
    .await
    .unwrap();
    let open = ExceptionFilter {
        state: Some(ExceptionState::Open),
        kind: Some(ExceptionKind::OutOfBalance),
        ..ExceptionFilter::default()
    };
    let rows = close_attempts::list_exceptions(&mut conn, &open, 10)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id, id);
    assert_eq!(rows[0].kind, ExceptionKind::OutOfBalance);
    assert_eq!(rows[0].state, ExceptionState::Open);

    // A name written behind the service's back (its checks dropped) is refused on
    // read, not passed on as text.
    sqlx::query(
        "ALTER TABLE close_attempts DROP CONSTRAINT close_attempts_state, \
             DROP CONSTRAINT close_attempts_decided",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::query("UPDATE close_attempts SET state = 'escalated' WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .unwrap();
    let resolved = ExceptionFilter {
        state: Some(ExceptionState::Resolved),
        ..ExceptionFilter::default()
    };
    assert!(close_attempts::list_exceptions(&mut conn, &resolved, 10)
        .await
        .unwrap()
        .is_empty());
    let err = close_attempts::list_exceptions(&mut conn, &ExceptionFilter::default(), 10)
        .await
        .unwrap_err();
    assert!(
        matches!(err, sqlx::Error::ColumnDecode { .. })
            && err.to_string().contains("\"escalated\" is unknown"),
        "{err}"
    );
}

/// The database checks an authorization's terminal and merchant once per statement
/// (no foreign keys on the hot path): an unknown terminal, or a terminal named with
/// another merchant, is refused; and a terminal or merchant that authorizations name
/// cannot be deleted or renamed.
#[tokio::test]
async fn the_database_refuses_an_authorization_of_an_unknown_terminal_and_keeps_its_owners() {
    let pool = pool().await;
    merchant(&pool, "m-auth").await;
    merchant(&pool, "m-other").await;
    sqlx::query("INSERT INTO terminals (terminal_id, merchant_id) VALUES ('t-auth', 'm-auth')")
        .execute(&pool)
        .await
        .unwrap();
    let insert = |terminal: &'static str, merchant: &'static str, rrn: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query(
                "INSERT INTO host_authorizations (terminal_id, merchant_id, rrn, stan, auth_code, \
                 transaction_type, amount_minor, currency, authorized_at) \
                 VALUES ($1, $2, $3, '000001', 'ABC123', 'sale', 100, 'USD', now())",
            )
            .bind(terminal)
            .bind(merchant)
            .bind(rrn)
            .execute(&pool)
            .await
        }
    };
    insert("t-auth", "m-auth", "RRN000000001").await.unwrap();
    for (terminal, merchant) in [("t-none", "m-auth"), ("t-auth", "m-other")] {
        let err = insert(terminal, merchant, "RRN000000002")
            .await
            .unwrap_err();
        let db = err.as_database_error().expect("a database error");
        assert_eq!(
            db.code().as_deref(),
            Some("23503"),
            "{terminal}/{merchant}: {db}"
        );
    }
    for statement in [
        "DELETE FROM terminals WHERE terminal_id = 't-auth'",
        "UPDATE terminals SET terminal_id = 't-renamed' WHERE terminal_id = 't-auth'",
        "DELETE FROM merchants WHERE merchant_id = 'm-other'",
        "UPDATE merchants SET merchant_id = 'm-renamed' WHERE merchant_id = 'm-auth'",
    ] {
        let err = sqlx::query(statement).execute(&pool).await.unwrap_err();
        let db = err.as_database_error().expect("a database error");
        assert_eq!(db.code().as_deref(), Some("42501"), "{statement}: {db}");
    }
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM host_authorizations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(kept, 1);
}
