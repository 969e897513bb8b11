//! Faults of whole processes: the service killed with SIGKILL, Postgres crashed, one
//! of three replicas killed while schedulers and delivery workers run.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::*;
use crate::helpers::{cutoff_far_from_now, merchant_token, ops_token, terminal_token};

/// Pause between two kills, varied so kills land in different parts of a close.
fn pause(kill: u64) -> Duration {
    Duration::from_millis(300 + (kill * 137) % 500)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_closes_survive_sigkill_of_the_service_and_retries_complete_the_rest() {
    let kills = scale("RELIABILITY_KILLS", 5);
    let db_url = settlement_store::fresh_test_database().await.unwrap();
    let log = log_path("sigkill");
    let mut service = Service::start(&db_url, &[], &log).await;
    let fleet = provision(&service.base, "k", 2, 4, &cutoff_far_from_now("UTC")).await;
    let db = crate::helpers::assertion_pool(&db_url);
    let (stop, tally, tasks) = start_fleet(vec![service.base.clone()], &fleet, Some(db.clone()));

    let mut recoveries = Vec::new();
    for kill in 0..kills {
        tokio::time::sleep(pause(kill)).await;
        service.kill().await;
        recoveries.push(service.restart().await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_fleet(stop, tasks).await;

    let tally = tally.lock().unwrap().clone();
    verify(&db, &tally, &fleet).await;
    assert!(
        tally.transport_errors > 0,
        "the kills cut requests in flight (else the test proves nothing)"
    );
    let slowest_recovery = recoveries.iter().max().unwrap();
    figures(
        "sigkill",
        &[
            ("kills", kills.to_string()),
            ("requests", tally.requests.to_string()),
            ("closes_acknowledged", tally.acknowledged.len().to_string()),
            ("retries", tally.retries.to_string()),
            ("cut_requests", tally.transport_errors.to_string()),
            (
                "lost_answer_committed",
                tally.lost_but_committed.to_string(),
            ),
            (
                "lost_answer_not_committed",
                tally.lost_not_committed.to_string(),
            ),
            (
                "slowest_restart_to_ready_ms",
                slowest_recovery.as_millis().to_string(),
            ),
        ],
    );
}

/// The answer to a request made while the database is down: 503 with
/// `Retry-After`, a problem body without database text, within the time limit.
async fn assert_unavailable(r: reqwest::Response, waited: Duration, limit: Duration) {
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: Value = r.json().await.unwrap();
    let text = body.to_string().to_lowercase();
    assert!(
        !["postgres", "sqlx", "connection refused", "sql"]
            .iter()
            .any(|w| text.contains(w)),
        "{body}"
    );
    assert!(waited <= limit, "answered after {waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_postgres_is_down_the_service_answers_503_and_recovers_by_itself() {
    let crashes = scale("RELIABILITY_PG_CRASHES", 2);
    let down_for = Duration::from_millis(scale("RELIABILITY_PG_DOWN_MS", 2000));
    let cluster = Cluster::start().await;
    let request_timeout = Duration::from_secs(5);
    let log = log_path("pg-crash");
    let service = Service::start(
        &cluster.url(),
        &[
            ("REQUEST_TIMEOUT_MS", "5000"),
            ("DATABASE_ACQUIRE_TIMEOUT_MS", "1000"),
        ],
        &log,
    )
    .await;
    let fleet = provision(&service.base, "p", 2, 3, &cutoff_far_from_now("UTC")).await;
    let probe = provision(&service.base, "probe", 1, 1, &cutoff_far_from_now("UTC")).await;
    let (probe_terminal, probe_merchant) = probe[0].clone();
    let (stop, tally, tasks) = start_fleet(vec![service.base.clone()], &fleet, None);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();

    let mut recoveries = Vec::new();
    let mut answered_while_down = 0;
    let mut slowest_while_down = Duration::ZERO;
    for crash in 0..crashes {
        tokio::time::sleep(Duration::from_millis(600)).await;
        cluster.crash().await;
        let down_since = Instant::now();
        let mut probe_number = 1000 + u32::try_from(crash).unwrap();
        while down_since.elapsed() < down_for {
            let started = Instant::now();
            let r = client
                .get(format!(
                    "{}/v1/merchants/{probe_merchant}/status",
                    service.base
                ))
                .bearer_auth(merchant_token(&probe_merchant))
                .send()
                .await
                .unwrap();
            let waited = started.elapsed();
            slowest_while_down = slowest_while_down.max(waited);
            assert_unavailable(r, waited, request_timeout).await;
            let started = Instant::now();
            let r = client
                .post(format!(
                    "{}/v1/terminals/{probe_terminal}/batches",
                    service.base
                ))
                .bearer_auth(terminal_token(&probe_terminal, &probe_merchant))
                .header("Idempotency-Key", format!("probe-{probe_number}"))
                .json(&crate::helpers::batch_body(
                    probe_number,
                    chrono::Utc::now() - chrono::Duration::minutes(1),
                ))
                .send()
                .await
                .unwrap();
            let waited = started.elapsed();
            slowest_while_down = slowest_while_down.max(waited);
            assert_unavailable(r, waited, request_timeout).await;
            probe_number += 10;
            let r = client
                .get(format!("{}/readyz", service.base))
                .send()
                .await
                .unwrap();
            assert_eq!(
                r.status(),
                StatusCode::SERVICE_UNAVAILABLE,
                "readyz reports it"
            );
            answered_while_down += 3;
        }
        cluster.restart().await;
        let back = Instant::now();
        service.wait_ready(Duration::from_secs(30)).await;
        // Ready means requests work again: an ops read succeeds.
        loop {
            let r = client
                .get(format!("{}/v1/ops/exceptions", service.base))
                .bearer_auth(ops_token())
                .send()
                .await
                .unwrap();
            if r.status() == StatusCode::OK {
                break;
            }
            assert!(
                back.elapsed() < Duration::from_secs(30),
                "no recovery: {}",
                r.status()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        recoveries.push(back.elapsed());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_fleet(stop, tasks).await;

    let db = crate::helpers::assertion_pool(&cluster.url());
    let tally = tally.lock().unwrap().clone();
    verify(&db, &tally, &fleet).await;
    let probes_stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM batches WHERE terminal_id = $1")
            .bind(&probe_terminal)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(
        probes_stored, 0,
        "closes answered 503 while down were not kept"
    );
    figures(
        "pg-crash",
        &[
            ("crashes", crashes.to_string()),
            ("down_ms_each", down_for.as_millis().to_string()),
            ("requests", tally.requests.to_string()),
            ("closes_acknowledged", tally.acknowledged.len().to_string()),
            ("retries", tally.retries.to_string()),
            (
                "answers_503",
                tally.statuses.get(&503).copied().unwrap_or(0).to_string(),
            ),
            ("probe_answers_while_down", answered_while_down.to_string()),
            (
                "slowest_answer_while_down_ms",
                slowest_while_down.as_millis().to_string(),
            ),
            (
                "slowest_recovery_after_restart_ms",
                recoveries.iter().max().unwrap().as_millis().to_string(),
            ),
        ],
    );
}
