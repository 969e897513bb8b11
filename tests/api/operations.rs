//! Operations routes, probes, request ids and running limits.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

fn merchant(id: &str) -> serde_json::Value {
    json!({
        "merchant_id": id, "name": "Corner Shop", "currency": "JPY",
        "time_zone": "Asia/Tokyo", "cutoff_local_time": "23:30:00",
        "pricing": {"mdr_basis_points": 200, "fixed_fee": "10"}
    })
}

#[tokio::test]
async fn merchants_are_created_with_defaults_and_duplicates_are_409() {
    let app = spawn_app().await;
    let r = app
        .post("/v1/ops/merchants", &ops_token(), &merchant("shop-1"))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let m = json_of(r).await;
    assert_eq!(m["grace_period_hours"], 72);
    assert_eq!(m["payout_delay_business_days"], 1);
    assert_eq!(m["cutoff_local_time"], "23:30:00");
    assert_eq!(m["pricing"]["fixed_fee"], "10");
    let r = app
        .post("/v1/ops/merchants", &ops_token(), &merchant("shop-1"))
        .await;
    assert_problem(r, StatusCode::CONFLICT, "merchant_exists").await;

    let r = app
        .post(
            "/v1/ops/merchants/shop-1/terminals",
            &ops_token(),
            &json!({"terminal_id": "T-1"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = app
        .post(
            "/v1/ops/merchants/shop-1/terminals",
            &ops_token(),
            &json!({"terminal_id": "T-1"}),
        )
        .await;
    assert_problem(r, StatusCode::CONFLICT, "terminal_exists").await;
    let r = app
        .post(
            "/v1/ops/merchants/nobody/terminals",
            &ops_token(),
            &json!({"terminal_id": "T-2"}),
        )
        .await;
    assert_problem(r, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn bad_settlement_profiles_are_422() {
    let app = spawn_app().await;
    let cases = [
        ("grace_period_hours", json!(169)),
        ("time_zone", json!("Mars/Olympus_Mons")),
        ("cutoff_local_time", json!("25:00")),
        ("currency", json!("XXX")),
        ("merchant_id", json!("has spaces")),
        ("payout_delay_business_days", json!(31)),
    ];
    for (field, value) in cases {
        let mut body = merchant("shop-2");
        body[field] = value;
        let r = app.post("/v1/ops/merchants", &ops_token(), &body).await;
        assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
    let mut fee = merchant("shop-2");
    fee["pricing"]["fixed_fee"] = json!("0.5");
    let r = app.post("/v1/ops/merchants", &ops_token(), &fee).await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(app.count("merchants").await, 0);
}

#[tokio::test]
async fn probes_answer_without_a_token_and_every_response_has_a_request_id() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().contains_key("x-request-id"));
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json_of(r).await["status"], "ready");

    let r = app
        .client
        .get(app.url("/v1/ops/exceptions"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-me-42");
    assert_problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;

    let r = app
        .client
        .get(app.url("/no/such/route"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("x-request-id"));
    assert_problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = app
        .client
        .delete(app.url("/v1/ops/merchants"))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
}

#[tokio::test]
async fn an_exhausted_pool_answers_503_quickly_and_recovers() {
    let (app, _) = build_app(&[
        ("DATABASE_MAX_CONNECTIONS", "1"),
        ("DATABASE_ACQUIRE_TIMEOUT_MS", "300"),
    ])
    .await;
    let pool = app.pool();
    let base = format!("http://{}", app.local_addr().unwrap());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::new();

    let held = pool.acquire().await.unwrap();
    let started = Instant::now();
    let r = client
        .get(format!("{base}/v1/ops/exceptions"))
        .bearer_auth(ops_token())
        .send()
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(r.headers()["retry-after"], "1");
    assert_problem(r, StatusCode::SERVICE_UNAVAILABLE, "service_unavailable").await;
    assert!(waited < Duration::from_secs(5), "answered after {waited:?}");
    assert!(
        settlement_api::metrics::METRICS.db_pool_timeouts.get() >= 1,
        "the wait is counted"
    );
    let r = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_problem(r, StatusCode::SERVICE_UNAVAILABLE, "not_ready").await;

    drop(held);
    let r = client
        .get(format!("{base}/v1/ops/exceptions"))
        .bearer_auth(ops_token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_database_that_is_not_migrated_is_not_ready() {
    let (app, db) = build_app(&[]).await;
    sqlx::query("DELETE FROM _sqlx_migrations")
        .execute(&db)
        .await
        .unwrap();
    let base = format!("http://{}", app.local_addr().unwrap());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let r = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_problem(r, StatusCode::SERVICE_UNAVAILABLE, "not_ready").await;
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let (app, _) = build_app(&[]).await;
    let base = format!("http://{}", app.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    assert_eq!(
        reqwest::get(format!("{base}/healthz"))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    stop.send(()).unwrap();
    let finished = tokio::time::timeout(Duration::from_secs(10), server).await;
    assert!(matches!(finished, Ok(Ok(Ok(())))), "server stopped cleanly");
    assert!(reqwest::get(format!("{base}/healthz")).await.is_err());
}

#[tokio::test]
async fn metrics_are_served_on_their_own_port_and_count_closes() {
    let (app, _) = build_app(&[]).await;
    let metrics = app.metrics_addr().expect("metrics server");
    let base = format!("http://{}", app.local_addr().unwrap());
    assert_ne!(metrics.port(), app.local_addr().unwrap().port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::new();
    // The public port does not serve metrics.
    let r = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let ops = crate::helpers::ops_token();
    let body = serde_json::json!({
        "merchant_id": "mx", "name": "Shop", "currency": "USD", "time_zone": "UTC",
        "cutoff_local_time": "23:59:59", "pricing": {"mdr_basis_points": 0, "fixed_fee": "0"}
    });
    client
        .post(format!("{base}/v1/ops/merchants"))
        .bearer_auth(&ops)
        .json(&body)
        .send()
        .await
        .unwrap();
    client
        .post(format!("{base}/v1/ops/merchants/mx/terminals"))
        .bearer_auth(&ops)
        .json(&serde_json::json!({"terminal_id": "tx"}))
        .send()
        .await
        .unwrap();
    let close = batch_body(1, chrono::Utc::now() - chrono::Duration::days(2));
    let r = client
        .post(format!("{base}/v1/terminals/tx/batches"))
        .bearer_auth(terminal_token("tx", "mx"))
        .header("Idempotency-Key", "k")
        .json(&close)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    let text = reqwest::get(format!("http://{metrics}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "settlement_batches_closed_total{outcome=\"accepted_late\"}",
        "settlement_batch_late_by_seconds_bucket",
        "settlement_http_requests_total{method=\"POST\",route=\"/v1/terminals/{terminal_id}/batches\",status=\"201\"}",
        "settlement_http_request_duration_seconds_bucket",
        "settlement_webhook_outbox_due",
        "settlement_scheduler_lag_seconds",
        "settlement_db_pool_connections{state=\"max\"} 10",
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
    assert!(
        !text.contains("/v1/terminals/tx/"),
        "raw paths never become labels"
    );
    // Kept for CI, which lints the exposition with `promtool check metrics`.
    std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("metrics.prom"),
        &text,
    )
    .unwrap();
}

#[tokio::test]
async fn serve_answers_liveness_at_once_and_becomes_ready_when_its_database_appears() {
    // A database that does not exist yet, on the test server.
    let existing = settlement_store::fresh_test_database().await.unwrap();
    let name = format!("late_{}", uuid::Uuid::new_v4().simple());
    let url = settlement_store::local_postgres::with_database(&existing, &name);
    let port = settlement_store::local_postgres::free_port().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_settlementd"))
        .arg("serve")
        .env_clear()
        .env("DATABASE_URL", &url)
        .env("AUTH_HS256_SECRET", crate::helpers::SECRET)
        .env("BANK_ACCOUNT_KEYS", crate::helpers::BANK_ACCOUNT_KEYS)
        .env("SETTLEMENT_LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("METRICS_LISTEN_ADDR", "off")
        .env("SETTLEMENT_RUN_INTERVAL_SECONDS", "0")
        .env("WEBHOOK_POLL_INTERVAL_MS", "0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let status_of = |path: &'static str| {
        let client = client.clone();
        let base = base.clone();
        async move {
            client
                .get(format!("{base}{path}"))
                .send()
                .await
                .ok()
                .map(|r| r.status())
        }
    };
    let mut alive = None;
    for _ in 0..100 {
        alive = status_of("/healthz").await;
        if alive.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(alive, Some(StatusCode::OK), "alive without its database");
    assert_eq!(
        status_of("/readyz").await,
        Some(StatusCode::SERVICE_UNAVAILABLE)
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "the service keeps running"
    );

    let server = settlement_store::local_postgres::with_database(&existing, "postgres");
    settlement_store::create_database_if_absent(&server, &name)
        .await
        .unwrap();
    let mut ready = None;
    for _ in 0..150 {
        ready = status_of("/readyz").await;
        if ready == Some(StatusCode::OK) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        ready,
        Some(StatusCode::OK),
        "ready once the database exists and is migrated"
    );
    child.kill().await.ok();
}

#[tokio::test]
async fn a_terminal_or_merchant_over_its_rate_gets_429_with_retry_after() {
    let app = spawn_app_with(&[
        ("RATE_LIMIT_TERMINAL_PER_MINUTE", "3"),
        ("RATE_LIMIT_MERCHANT_PER_MINUTE", "5"),
    ])
    .await;
    app.merchant_with_terminal("m1", "t1").await;
    app.create_terminal("m1", "t2").await;
    let t1 = terminal_token("t1", "m1");
    for n in 1..=3 {
        let r = app.get(&format!("/v1/terminals/t1/batches/{n}"), &t1).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "within the burst");
    }
    let r = app.get("/v1/terminals/t1/batches/4", &t1).await;
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    let body = assert_problem(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_eq!(body["retry_after_seconds"], retry_after);

    // A refused close writes nothing, so the same key works once the wait is over.
    let r = app
        .close("t1", "m1", "k1", &batch_body(1, chrono::Utc::now()))
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(app.count("batches").await, 0);
    assert_eq!(app.count("idempotency_keys").await, 0);

    // Another terminal of the same merchant, and operations, are not held back.
    let r = app
        .get("/v1/terminals/t2/batches/1", &terminal_token("t2", "m1"))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    for _ in 0..10 {
        let r = app.get("/v1/ops/exceptions", &ops_token()).await;
        assert_eq!(r.status(), StatusCode::OK);
    }

    let m1 = merchant_token("m1");
    for _ in 0..5 {
        assert_eq!(
            app.get("/v1/merchants/m1/balance", &m1).await.status(),
            StatusCode::OK
        );
    }
    let r = app.get("/v1/merchants/m1/balance", &m1).await;
    assert_problem(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;

    // Forged tokens naming t2 spend nothing: they are refused before any bucket.
    let forged = settlement_api::auth::sign_hs256(
        &settlement_api::auth::Claims::for_principal(
            &settlement_api::auth::Principal::Terminal {
                terminal_id: "t2".into(),
                merchant_id: "m1".into(),
            },
            ISSUER,
            AUDIENCE,
            3600,
        ),
        b"another-secret-0123456789abcdef0123456789",
    )
    .unwrap();
    for _ in 0..5 {
        let r = app.get("/v1/terminals/t2/batches/1", &forged).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = app
        .get("/v1/terminals/t2/batches/2", &terminal_token("t2", "m1"))
        .await;
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "t2's allowance is intact"
    );
    let scraped = settlement_api::metrics::METRICS
        .rate_limited
        .with_label_values(&["terminal"])
        .get();
    assert!(scraped >= 2, "refusals are counted: {scraped}");
}

/// With TLS asked for (`sslmode=require` or `verify-full`), a database server that does
/// not offer it is refused: the service never falls back to plaintext. The test server
/// has no TLS; the same URL without the mode connects, as a control.
#[tokio::test]
async fn a_database_url_requiring_tls_refuses_a_server_without_it() {
    // An empty database on the test server: the control run migrates it.
    let existing = settlement_store::fresh_test_database().await.unwrap();
    let name = format!("tls_{}", uuid::Uuid::new_v4().simple());
    let admin = settlement_store::local_postgres::with_database(&existing, "postgres");
    settlement_store::create_database_if_absent(&admin, &name)
        .await
        .unwrap();
    let url = settlement_store::local_postgres::with_database(&existing, &name);
    let migrate = |database_url: String| async move {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_settlementd"))
            .arg("migrate")
            .env_clear()
            .env("DATABASE_URL", database_url)
            .env("AUTH_HS256_SECRET", crate::helpers::SECRET)
            .env("BANK_ACCOUNT_KEYS", crate::helpers::BANK_ACCOUNT_KEYS)
            .env("DATABASE_ACQUIRE_TIMEOUT_MS", "3000")
            .env("LOG_FORMAT", "text")
            .output()
            .await
            .unwrap()
    };
    let separator = if url.contains('?') { '&' } else { '?' };
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let migrated = || async {
        sqlx::query_scalar::<_, bool>("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    for mode in ["require", "verify-full"] {
        let output = migrate(format!("{url}{separator}sslmode={mode}")).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "sslmode={mode} connected: {stderr}"
        );
        assert!(
            stderr.to_lowercase().contains("tls"),
            "sslmode={mode}: the failure names TLS: {stderr}"
        );
        assert!(!migrated().await, "sslmode={mode} wrote to the database");
    }
    let output = migrate(url.clone()).await;
    assert!(
        output.status.success(),
        "the control run failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(migrated().await);
}
