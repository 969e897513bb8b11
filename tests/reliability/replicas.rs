//! Three replicas run schedulers and delivery workers against one database while
//! terminals close batches through all of them; one replica is killed with SIGKILL
//! around the cutoff. Each cycle must close once, each payout be exported and paid
//! once, and each event reach the merchant at least once, recognisable by its id.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::*;
use crate::helpers::{merchant_token, ops_token};
use crate::receiver::Receiver;

/// Seconds from provisioning to the merchants' cutoff: time to close batches first.
const CUTOFF_AHEAD_SECONDS: i64 = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_one_killed_close_each_cycle_once_pay_once_and_deliver_every_event() {
    let db_url = settlement_store::fresh_test_database().await.unwrap();
    let env = [
        ("SETTLEMENT_RUN_INTERVAL_SECONDS", "1"),
        ("WEBHOOK_POLL_INTERVAL_MS", "100"),
        ("WEBHOOK_ALLOW_LOCAL_NETWORK", "true"),
        ("WEBHOOK_TIMEOUT_MS", "1000"),
        ("WEBHOOK_RETRY_BASE_MS", "200"),
    ];
    let log = log_path("replicas");
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(Service::start(&db_url, &env, &log).await);
    }
    let bases: Vec<String> = replicas.iter().map(|r| r.base.clone()).collect();
    let receiver = Receiver::start().await;
    let cutoff_at = Utc::now() + chrono::Duration::seconds(CUTOFF_AHEAD_SECONDS);
    let cutoff = cutoff_at.format("%H:%M:%S").to_string();
    let merchants = 4;
    let fleet = provision(&bases[1], "r", merchants, 2, &cutoff).await;
    let client = reqwest::Client::new();
    let merchant_ids: BTreeSet<String> = fleet.iter().map(|(_, m)| m.clone()).collect();
    for m in &merchant_ids {
        let r = client
            .post(format!("{}/v1/merchants/{m}/webhook-endpoints", bases[2]))
            .bearer_auth(merchant_token(m))
            .json(&json!({"url": receiver.url}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap()
        );
    }
    let db = crate::helpers::assertion_pool(&db_url);
    let (stop, tally, tasks) = start_fleet(bases.clone(), &fleet, Some(db.clone()));

    // Kill replica 0 just after the cutoff, when the schedulers start closing.
    let until_cutoff = (cutoff_at - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(until_cutoff + Duration::from_millis(300)).await;
    replicas[0].kill().await;
    let killed_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop_fleet(stop, tasks).await;

    // The survivors close every cycle of the cutoff's date.
    let cycle_date = cutoff_at.date_naive();
    let mut closed = 0;
    while killed_at.elapsed() < Duration::from_secs(30) {
        closed = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM settlement_cycles WHERE cycle_date = $1",
        )
        .bind(cycle_date)
        .fetch_one(&db)
        .await
        .unwrap();
        if closed == i64::try_from(merchants).unwrap() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        closed,
        i64::try_from(merchants).unwrap(),
        "every cycle closed"
    );
    let settle_entries: i64 =
        sqlx::query_scalar("SELECT count(*) FROM journal_entries WHERE kind = 'cycle_settled'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(settle_entries, closed, "each cycle was settled once");

    // Two operators export at once through two replicas: each payout goes out once.
    let far = (Utc::now() + chrono::Duration::days(30)).date_naive();
    let exports = crate::helpers::join_all(bases[1..].iter().map(|base| {
        let client = client.clone();
        async move {
            let r = client
                .post(format!("{base}/v1/ops/payouts/export?through={far}"))
                .bearer_auth(ops_token())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.text().await.unwrap()
        }
    }))
    .await;
    let exported: Vec<String> = exports
        .iter()
        .flat_map(|csv| {
            csv.lines()
                .skip(1)
                .map(|l| l.split(',').next().unwrap().to_owned())
        })
        .collect();
    let unique: BTreeSet<&String> = exported.iter().collect();
    assert_eq!(unique.len(), exported.len(), "no payout exported twice");
    let payouts: i64 = sqlx::query_scalar("SELECT count(*) FROM payouts")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(
        exported.len(),
        usize::try_from(payouts).unwrap(),
        "every payout exported"
    );
    assert_eq!(payouts, closed, "one payout per merchant's cycle");

    // The bank's confirmations, sent to both survivors at once, apply once.
    let file = std::iter::once("payout_id,outcome,failure_code".to_owned())
        .chain(exported.iter().map(|id| format!("{id},paid,")))
        .collect::<Vec<_>>()
        .join("\n");
    crate::helpers::join_all(bases[1..].iter().map(|base| {
        let (client, file) = (client.clone(), file.clone());
        async move {
            let r = client
                .post(format!("{base}/v1/ops/payouts/confirmations"))
                .bearer_auth(ops_token())
                .header("content-type", "text/csv")
                .body(file)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        }
    }))
    .await;
    let paid_entries: i64 =
        sqlx::query_scalar("SELECT count(*) FROM journal_entries WHERE kind = 'payout_paid'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(paid_entries, payouts, "each payout paid once");

    // Every event reaches the receiver at least once; its id tells repeats apart.
    let events: BTreeSet<String> = sqlx::query_scalar("SELECT id::text FROM events")
        .fetch_all(&db)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    let waiting = Instant::now();
    while waiting.elapsed() < Duration::from_secs(30) {
        seen.clear();
        for r in receiver.received() {
            *seen
                .entry(r.body["id"].as_str().unwrap_or_default().to_owned())
                .or_default() += 1;
        }
        if events.iter().all(|id| seen.contains_key(id)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let missing: Vec<&String> = events.iter().filter(|id| !seen.contains_key(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} events never delivered",
        missing.len()
    );
    let unknown: Vec<&String> = seen.keys().filter(|id| !events.contains(*id)).collect();
    assert!(
        unknown.is_empty(),
        "deliveries of events that do not exist: {unknown:?}"
    );

    let tally = tally.lock().unwrap().clone();
    verify(&db, &tally, &fleet).await;
    let repeats: u32 = seen.values().map(|n| n - 1).sum();
    figures(
        "replicas",
        &[
            ("replicas", "3".into()),
            ("killed", "1".into()),
            ("closes_acknowledged", tally.acknowledged.len().to_string()),
            ("requests", tally.requests.to_string()),
            (
                "cut_or_refused_requests",
                tally.transport_errors.to_string(),
            ),
            ("cycles_closed", closed.to_string()),
            ("payouts_paid", paid_entries.to_string()),
            ("events", events.len().to_string()),
            ("deliveries_received", receiver.received().len().to_string()),
            ("repeat_deliveries", repeats.to_string()),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_without_workers_and_a_worker_alone_share_the_work() {
    let db_url = settlement_store::fresh_test_database().await.unwrap();
    let env = [
        ("SETTLEMENT_RUN_INTERVAL_SECONDS", "1"),
        ("WEBHOOK_POLL_INTERVAL_MS", "100"),
        ("WEBHOOK_ALLOW_LOCAL_NETWORK", "true"),
    ];
    let log = log_path("split_workers");
    let api = Service::start_as(&["serve", "--no-workers"], &db_url, &env, &log).await;
    let receiver = Receiver::start().await;
    let fleet = provision(&api.base, "w", 1, 1, "23:59:59").await;
    let merchant = &fleet[0].1;
    let r = reqwest::Client::new()
        .post(format!(
            "{}/v1/merchants/{merchant}/webhook-endpoints",
            api.base
        ))
        .bearer_auth(merchant_token(merchant))
        .json(&json!({"url": receiver.url}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let (stop, tally, tasks) = start_fleet(vec![api.base.clone()], &fleet, None);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_fleet(stop, tasks).await;
    assert!(
        !tally.lock().unwrap().acknowledged.is_empty(),
        "closes were answered"
    );

    // The API alone delivers nothing: its delivery worker is off.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(receiver.received().is_empty(), "no worker, no delivery");

    // A worker alone, with no HTTP port, delivers what the API wrote.
    let _worker = api.spawn_worker();
    let started = Instant::now();
    while receiver.received().is_empty() && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!receiver.received().is_empty(), "the worker delivered");
}
