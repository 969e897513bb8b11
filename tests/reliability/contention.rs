//! Serialization failures and deadlocks, forced by a trigger that raises them for a
//! budget of attempts: the service retries the whole transaction (bounded, with
//! jittered back-off), and answers 503 `transaction_conflict` only when the
//! conflicts outlast its retries, having written nothing.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::json;

use settlement_api::db::MAX_TRANSACTION_ATTEMPTS;
use settlement_api::metrics::METRICS;

use crate::harness::figures;
use crate::helpers::*;

/// Makes the next `failures` inserts into `table` fail with `sqlstate`; the budget
/// lives in a sequence, which a rolled-back transaction does not undo.
async fn inject(app: &TestApp, table: &str, event: &str, sqlstate: &str, failures: u32) {
    for statement in [
        "DROP TRIGGER IF EXISTS inject_conflict ON batches".to_owned(),
        "DROP TRIGGER IF EXISTS inject_conflict ON merchants".to_owned(),
        "DROP SEQUENCE IF EXISTS fault_budget".to_owned(),
        "CREATE SEQUENCE fault_budget".to_owned(),
        format!(
            "CREATE OR REPLACE FUNCTION inject_conflict() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN \
               IF nextval('fault_budget') <= {failures} THEN \
                 RAISE EXCEPTION 'injected fault' USING ERRCODE = '{sqlstate}'; \
               END IF; \
               RETURN NEW; \
             END $$"
        ),
        format!(
            "CREATE TRIGGER inject_conflict BEFORE {event} ON {table} \
             FOR EACH ROW EXECUTE FUNCTION inject_conflict()"
        ),
    ] {
        sqlx::query(&statement).execute(&app.db).await.unwrap();
    }
}

async fn attempts_made(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT last_value FROM fault_budget")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn serialization_failures_and_deadlocks_are_retried_inside_the_service() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let retries_before = METRICS.transaction_retries.get();

    // Serialization failures on the batch insert, one fewer than the attempts.
    let failures = MAX_TRANSACTION_ATTEMPTS - 1;
    inject(&app, "batches", "INSERT", "40001", failures).await;
    let body = batch_body(1, Utc::now() - Duration::minutes(5));
    let r = app.close("t1", "m1", "k1", &body).await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    assert_eq!(
        attempts_made(&app).await,
        i64::from(MAX_TRANSACTION_ATTEMPTS)
    );
    assert_eq!(app.count("batches").await, 1);

    // Conflicts that outlast the retries: 503 with Retry-After, nothing kept, and
    // the terminal's retry with the same key succeeds.
    inject(&app, "batches", "INSERT", "40P01", MAX_TRANSACTION_ATTEMPTS).await;
    let body = batch_body(2, Utc::now() - Duration::minutes(5));
    let r = app.close("t1", "m1", "k2", &body).await;
    assert_eq!(r.headers()["retry-after"], "1");
    assert_problem(r, StatusCode::SERVICE_UNAVAILABLE, "transaction_conflict").await;
    assert_eq!(app.count("batches").await, 1, "nothing half-written");
    assert_eq!(app.count("idempotency_keys").await, 1);
    let r = app.close("t1", "m1", "k2", &body).await;
    assert_eq!(r.status(), StatusCode::CREATED);

    // Deadlocks in an update (an operator's profile change) are retried the same way.
    inject(&app, "merchants", "UPDATE", "40P01", 2).await;
    let r = app
        .client
        .patch(app.url("/v1/ops/merchants/m1"))
        .bearer_auth(ops_token())
        .json(&json!({"grace_period_hours": 48, "reason": "merchant asked for a shorter grace"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert_eq!(attempts_made(&app).await, 3);
    assert_eq!(
        app.count("audit_records").await,
        3,
        "two creations and one change, once"
    );
    let retries = METRICS.transaction_retries.get() - retries_before;
    assert!(
        retries >= u64::from(2 * MAX_TRANSACTION_ATTEMPTS - 1),
        "retries are counted: {retries}"
    );
    app.assert_ledger_balanced().await;
    figures(
        "contention",
        &[
            (
                "injected_failures",
                (2 * MAX_TRANSACTION_ATTEMPTS + 1).to_string(),
            ),
            ("attempts_per_request", MAX_TRANSACTION_ATTEMPTS.to_string()),
            ("retries_counted", retries.to_string()),
        ],
    );
}
