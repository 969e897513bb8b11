//! Webhooks and reminders, delivered to a real HTTP receiver on port 0.

use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::receiver::{signed_with, Receiver, Reply};

/// Delivery tuned for tests: local receivers allowed, quick polling and retries.
const FAST: [(&str, &str); 5] = [
    ("WEBHOOK_ALLOW_LOCAL_NETWORK", "true"),
    ("WEBHOOK_POLL_INTERVAL_MS", "50"),
    ("WEBHOOK_RETRY_BASE_MS", "100"),
    ("WEBHOOK_TIMEOUT_MS", "400"),
    ("WEBHOOK_MAX_ATTEMPTS", "4"),
];

const WAIT: StdDuration = StdDuration::from_secs(10);

async fn register(app: &TestApp, merchant_id: &str, url: &str, types: &[&str]) -> Value {
    let r = app
        .post(
            &format!("/v1/merchants/{merchant_id}/webhook-endpoints"),
            &merchant_token(merchant_id),
            &json!({"url": url, "event_types": types}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    json_of(r).await
}

fn signature(r: &crate::receiver::Received) -> String {
    r.headers["settlement-signature"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn events_arrive_signed_once_per_change_and_the_attempts_are_recorded() {
    let app = spawn_app_with(&FAST).await;
    let receiver = Receiver::start().await;
    app.merchant_with_terminal("m1", "t1").await;
    let endpoint = register(&app, "m1", &receiver.url, &[]).await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let listed = json_of(
        app.get("/v1/merchants/m1/webhook-endpoints", &merchant_token("m1"))
            .await,
    )
    .await;
    assert_eq!(listed["data"][0]["id"], endpoint["id"]);
    assert!(
        listed["data"][0].get("secret").is_none(),
        "the secret is shown once"
    );

    let batch = json_of(
        app.close(
            "t1",
            "m1",
            "k",
            &batch_body(1, Utc::now() - Duration::minutes(5)),
        )
        .await,
    )
    .await;
    // A replay writes nothing, so it sends nothing either.
    app.close(
        "t1",
        "m1",
        "k",
        &batch_body(1, Utc::now() - Duration::minutes(5)),
    )
    .await;
    let got = receiver.wait_for("batch.accepted", 1, WAIT).await;
    assert_eq!(got.len(), 1);
    let event = &got[0];
    assert!(signed_with(&signature(event), &event.raw, &secret));
    assert!(!signed_with(&signature(event), &event.raw, "whsec_wrong"));
    assert_eq!(event.body["data"]["id"], batch["id"]);
    assert_eq!(event.body["merchant_id"], "m1");
    assert_eq!(
        event.headers["settlement-event-id"].to_str().unwrap(),
        event.body["id"].as_str().unwrap()
    );
    let t: i64 = signature(event)[2..12].parse().unwrap();
    assert!((Utc::now().timestamp() - t).abs() < 60);

    let id = event.body["id"].as_str().unwrap();
    let detail = json_of(
        app.get(
            &format!("/v1/merchants/m1/events/{id}"),
            &merchant_token("m1"),
        )
        .await,
    )
    .await;
    assert_eq!(detail["deliveries"][0]["status"], "succeeded");
    assert_eq!(detail["deliveries"][0]["attempts"][0]["status_code"], 200);
    assert!(
        !detail.to_string().contains(&secret),
        "the secret never shows again"
    );
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 1, "delivered exactly once");
    let events = json_of(
        app.get("/v1/merchants/m1/events", &merchant_token("m1"))
            .await,
    )
    .await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn failed_attempts_are_retried_after_a_500_and_after_a_timeout() {
    let app = spawn_app_with(&FAST).await;
    let receiver = Receiver::start().await;
    receiver.script([
        Reply::Status(500),
        Reply::Hang(StdDuration::from_millis(1500)),
    ]);
    app.merchant_with_terminal("m1", "t1").await;
    let endpoint = register(&app, "m1", &receiver.url, &["batch.accepted"]).await;
    app.close(
        "t1",
        "m1",
        "k",
        &batch_body(1, Utc::now() - Duration::minutes(5)),
    )
    .await;
    let got = receiver.wait_for("batch.accepted", 3, WAIT).await;
    assert_eq!(got.len(), 3);
    let ids: Vec<&Value> = got.iter().map(|r| &r.body["id"]).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "every retry carries the same event id"
    );
    let secret = endpoint["secret"].as_str().unwrap();
    assert!(got
        .iter()
        .all(|r| signed_with(&signature(r), &r.raw, secret)));
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    let id = ids[0].as_str().unwrap();
    let detail = json_of(
        app.get(
            &format!("/v1/merchants/m1/events/{id}"),
            &merchant_token("m1"),
        )
        .await,
    )
    .await;
    let attempts = detail["deliveries"][0]["attempts"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(attempts.len(), 3, "{detail:#}");
    assert_eq!(attempts[0]["status_code"], 500);
    assert_eq!(attempts[1]["status_code"], Value::Null);
    assert!(attempts[1]["error"]
        .as_str()
        .unwrap()
        .contains("no answer within"));
    assert_eq!(attempts[2]["status_code"], 200);
    assert_eq!(detail["deliveries"][0]["status"], "succeeded");
}

#[tokio::test]
async fn a_delivery_is_given_up_after_the_limit_shown_to_ops_and_redelivered_on_request() {
    let app = spawn_app_with(&FAST).await;
    let receiver = Receiver::start().await;
    receiver.script((0..4).map(|_| Reply::Status(503)));
    app.merchant_with_terminal("m1", "t1").await;
    register(&app, "m1", &receiver.url, &[]).await;
    app.close(
        "t1",
        "m1",
        "k",
        &batch_body(1, Utc::now() - Duration::minutes(5)),
    )
    .await;
    let got = receiver.wait_for("batch.accepted", 4, WAIT).await;
    assert_eq!(got.len(), 4);
    let id = got[0].body["id"].as_str().unwrap().to_owned();
    let mut failed = Value::Null;
    for _ in 0..40 {
        failed = json_of(
            app.get("/v1/ops/webhook-deliveries/failed", &ops_token())
                .await,
        )
        .await;
        if !failed["data"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    assert_eq!(failed["data"][0]["event_id"], id.as_str());
    assert_eq!(failed["data"][0]["attempt_count"], 4);
    let status = json_of(
        app.get("/v1/merchants/m1/status", &merchant_token("m1"))
            .await,
    )
    .await;
    assert_eq!(
        status["failed_webhook_deliveries"], 1,
        "the merchant sees it too"
    );
    tokio::time::sleep(StdDuration::from_millis(400)).await;
    assert_eq!(receiver.received().len(), 4, "nothing after giving up");

    let r = app
        .post(
            &format!("/v1/merchants/m1/events/{id}/redeliver"),
            &merchant_token("m1"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let got = receiver.wait_for("batch.accepted", 5, WAIT).await;
    assert_eq!(got.len(), 5);
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    let detail = json_of(
        app.get(
            &format!("/v1/merchants/m1/events/{id}"),
            &merchant_token("m1"),
        )
        .await,
    )
    .await;
    assert_eq!(detail["deliveries"][0]["status"], "succeeded");
}

#[tokio::test]
async fn during_a_rotation_both_secrets_sign_then_only_the_new_one() {
    let app = spawn_app_with(&FAST).await;
    let receiver = Receiver::start().await;
    app.merchant_with_terminal("m1", "t1").await;
    let endpoint = register(&app, "m1", &receiver.url, &["batch.accepted"]).await;
    let id = endpoint["id"].as_str().unwrap();
    let old = endpoint["secret"].as_str().unwrap().to_owned();
    let rotate = |overlap: u32| {
        let app = &app;
        async move {
            let r = app
                .post(
                    &format!("/v1/merchants/m1/webhook-endpoints/{id}/rotate-secret"),
                    &merchant_token("m1"),
                    &json!({"overlap_hours": overlap}),
                )
                .await;
            assert_eq!(r.status(), StatusCode::OK);
            json_of(r).await
        }
    };
    let rotated = rotate(24).await;
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(rotated["previous_secret_expires_at"].is_string());
    app.close(
        "t1",
        "m1",
        "k1",
        &batch_body(1, Utc::now() - Duration::minutes(5)),
    )
    .await;
    let got = receiver.wait_for("batch.accepted", 1, WAIT).await;
    let first = &got[0];
    assert!(
        signed_with(&signature(first), &first.raw, &old),
        "the old secret still signs"
    );
    assert!(signed_with(&signature(first), &first.raw, &new));

    let newest = rotate(0).await["secret"].as_str().unwrap().to_owned();
    app.close(
        "t1",
        "m1",
        "k2",
        &batch_body(2, Utc::now() - Duration::minutes(5)),
    )
    .await;
    let got = receiver.wait_for("batch.accepted", 2, WAIT).await;
    let second = &got[1];
    assert!(signed_with(&signature(second), &second.raw, &newest));
    assert!(
        !signed_with(&signature(second), &second.raw, &new),
        "no overlap: the replaced secret is done"
    );
    assert!(!signed_with(&signature(second), &second.raw, &old));
}

#[tokio::test]
async fn endpoints_on_local_or_private_addresses_are_refused() {
    let app = spawn_app().await;
    app.create_merchant(&MerchantSpec::new("m1")).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "https://127.0.0.1/hook",
        "https://10.0.0.8/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[fd00::1]/hook",
        "https://192.168.1.20:8443/hook",
        "https://user:pw@hooks.example.com/",
        "ftp://hooks.example.com/",
    ] {
        let r = app
            .post(
                "/v1/merchants/m1/webhook-endpoints",
                &merchant_token("m1"),
                &json!({"url": url}),
            )
            .await;
        assert_problem(
            r,
            StatusCode::UNPROCESSABLE_ENTITY,
            "webhook_url_not_allowed",
        )
        .await;
    }
    let r = app
        .post(
            "/v1/merchants/m1/webhook-endpoints",
            &merchant_token("m1"),
            &json!({"url": format!("https://h.example/{}", "a".repeat(2100))}),
        )
        .await;
    assert_problem(
        r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "webhook_url_not_allowed",
    )
    .await;
    let r = app
        .post(
            "/v1/merchants/m1/webhook-endpoints",
            &merchant_token("m2"),
            &json!({"url": "https://1.1.1.1/"}),
        )
        .await;
    assert_problem(r, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(app.count("webhook_endpoints").await, 0);
}

#[tokio::test]
async fn a_change_that_rolls_back_leaves_no_event() {
    let app = spawn_app_with(&FAST).await;
    let receiver = Receiver::start().await;
    app.merchant_with_terminal("m1", "t1").await;
    register(&app, "m1", &receiver.url, &[]).await;
    // Make every commit that wrote an event fail, as a database failure at commit would.
    sqlx::query(
        "CREATE FUNCTION refuse_events() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'commit refused for the test'; END; $$",
    )
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "CREATE CONSTRAINT TRIGGER events_refused AFTER INSERT ON events DEFERRABLE INITIALLY DEFERRED \
         FOR EACH ROW EXECUTE FUNCTION refuse_events()",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let r = app
        .close(
            "t1",
            "m1",
            "k",
            &batch_body(1, Utc::now() - Duration::minutes(5)),
        )
        .await;
    assert_problem(r, StatusCode::INTERNAL_SERVER_ERROR, "internal_error").await;
    for table in [
        "batches",
        "events",
        "event_deliveries",
        "journal_entries",
        "idempotency_keys",
    ] {
        assert_eq!(
            app.count(table).await,
            0,
            "{table} holds nothing of the rolled-back close"
        );
    }
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn each_silent_terminal_is_reminded_once_per_business_date_with_two_replicas() {
    let app = spawn_app_with(&FAST).await;
    let receiver = Receiver::start().await;
    // Cutoff two hours from now (UTC), so no business day ends during the test: the
    // last one ended 22 hours ago, the one before it 46 hours ago.
    let cutoff = (Utc::now() + Duration::hours(2))
        .format("%H:%M:%S")
        .to_string();
    app.create_merchant(&MerchantSpec {
        cutoff_local_time: cutoff,
        time_zone: "UTC",
        ..MerchantSpec::new("m1")
    })
    .await;
    for t in ["t1", "t2", "t3", "t4"] {
        app.create_terminal("m1", t).await;
    }
    // History: t1 last closed two days ago (its close came too late and was kept as
    // rejected), so it has not closed during the last business day.
    sqlx::query(
        "INSERT INTO batches (id, terminal_id, merchant_id, batch_number, status, currency, business_date, cycle_date, \
             received_at, cutoff_at, grace_deadline, late_by_seconds, sale_count, sale_amount_minor, refund_count, \
             refund_amount_minor, void_count, void_amount_minor, net_amount_minor, line_count, content_hash) \
         VALUES (gen_random_uuid(), 't1', 'm1', 7, 'rejected_outside_grace', 'USD', current_date - 6, NULL, \
             now() - interval '2 days', now() - interval '6 days', now() - interval '3 days', 0, 0, 0, 0, 0, 0, 0, 0, 1, '\\x00')",
    )
    .execute(&app.db)
    .await
    .unwrap();
    // t2 closes now: 1 and 3, so batch 2 never arrived. t3 closes now. t4 never closed.
    app.close(
        "t2",
        "m1",
        "k1",
        &batch_body(1, Utc::now() - Duration::minutes(5)),
    )
    .await;
    app.close(
        "t2",
        "m1",
        "k3",
        &batch_body(3, Utc::now() - Duration::minutes(5)),
    )
    .await;
    app.close(
        "t3",
        "m1",
        "k",
        &batch_body(1, Utc::now() - Duration::minutes(5)),
    )
    .await;
    // The host authorized a sale for t1 before the last cutoff, and a refund since.
    let sold_at = Utc::now() - Duration::hours(30);
    let authorization = |rrn: &str, kind: &str, amount: &str, at: chrono::DateTime<Utc>| {
        json!({"type": "authorization", "terminal_id": "t1", "rrn": rrn, "stan": "000001",
               "auth_code": "A1B2C3", "transaction_type": kind, "amount": amount,
               "currency": "USD", "authorized_at": rfc3339(at)})
    };
    let r = app
        .post(
            "/v1/host/authorizations",
            &host_token(),
            &json!({"records": [
                authorization("HOST00000001", "sale", "10.00", sold_at),
                authorization("HOST00000002", "refund", "2.00", Utc::now() - Duration::hours(1)),
            ]}),
        )
        .await;
    assert_eq!(json_of(r).await["totals"]["recorded"], 2);
    register(&app, "m1", &receiver.url, &["terminal.close_missing"]).await;
    let mut replica = FAST.to_vec();
    replica.extend([
        ("SETTLEMENT_RUN_INTERVAL_SECONDS", "1"),
        ("REMINDER_DELAY_SECONDS", "0"),
    ]);
    let _a = spawn_replica(&app, &replica).await;
    let _b = spawn_replica(&app, &replica).await;
    tokio::time::sleep(StdDuration::from_secs(5)).await;

    let got = receiver.of_type("terminal.close_missing");
    let data: Vec<&Value> = got.iter().map(|r| &r.body["data"]).collect();
    let after_cutoff: Vec<&&Value> = data
        .iter()
        .filter(|d| d["reminder"] == "after_cutoff")
        .collect();
    assert_eq!(after_cutoff.len(), 1, "{data:#?}");
    assert_eq!(after_cutoff[0]["terminal_id"], "t1");
    assert!(after_cutoff[0]["grace_deadline"].is_string());
    let unsettled = &after_cutoff[0]["unsettled"];
    assert_eq!(unsettled["count"], 2, "{unsettled}");
    assert_eq!(unsettled["amounts"][0]["sale_amount"], "10.00");
    assert_eq!(unsettled["amounts"][0]["refund_amount"], "2.00");
    assert_eq!(unsettled["amounts"][0]["net_amount"], "8.00");
    assert_eq!(unsettled["since"], rfc3339(sold_at));
    let gaps: Vec<&&Value> = data
        .iter()
        .filter(|d| d["reminder"] == "batch_number_gap")
        .collect();
    assert_eq!(gaps.len(), 1);
    assert_eq!(gaps[0]["terminal_id"], "t2");
    assert_eq!(gaps[0]["missing_batch_numbers"], json!([2]));
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM terminal_reminders")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(rows, 1, "one reminder, though two replicas ran many times");
    let status = json_of(
        app.get("/v1/merchants/m1/status", &merchant_token("m1"))
            .await,
    )
    .await;
    assert_eq!(status["reminders"].as_array().unwrap().len(), 2);
    let t1 = status["terminals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["terminal_id"] == "t1")
        .unwrap();
    assert_eq!(t1["can_still_close"], true);
    assert_eq!(t1["close_deadline"], after_cutoff[0]["grace_deadline"]);
    assert_eq!(t1["unsettled"]["count"], 2);
    assert_eq!(t1["unsettled"]["amounts"][0]["net_amount"], "8.00");
    let next_step = t1["unsettled"]["next_step"].as_str().unwrap();
    assert!(
        next_step.contains("before the grace deadline")
            && next_step.contains("held for operations")
            && !next_step.contains("  "),
        "{next_step}"
    );
    // A terminal with nothing unsettled shows a zero count and no step.
    let t3 = status["terminals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["terminal_id"] == "t3")
        .unwrap();
    assert_eq!(t3["unsettled"]["count"], 0);
    assert!(t3["unsettled"].get("next_step").is_none());
}

#[tokio::test]
async fn every_payout_state_change_sends_an_event() {
    let app = spawn_app_with(&FAST).await;
    let receiver = Receiver::start().await;
    let cutoff = (Utc::now() + Duration::seconds(3))
        .format("%H:%M:%S")
        .to_string();
    app.create_merchant(&MerchantSpec {
        cutoff_local_time: cutoff,
        time_zone: "UTC",
        ..MerchantSpec::new("m1")
    })
    .await;
    app.create_terminal("m1", "t1").await;
    register(&app, "m1", &receiver.url, &[]).await;
    app.close(
        "t1",
        "m1",
        "k",
        &batch_body(1, Utc::now() - Duration::minutes(1)),
    )
    .await;
    tokio::time::sleep(StdDuration::from_millis(4200)).await;
    let run = json_of(
        app.post("/v1/ops/settlement-runs", &ops_token(), &json!({}))
            .await,
    )
    .await;
    let payout = run["payouts"][0]["id"].as_str().unwrap().to_owned();
    let export = app
        .client
        .post(app.url("/v1/ops/payouts/export?through=2099-12-31"))
        .bearer_auth(ops_token())
        .send()
        .await
        .unwrap();
    let csv = export.text().await.unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    app.post(
        &format!("/v1/ops/payouts/{payout}/paid"),
        &ops_token(),
        &json!({}),
    )
    .await;
    app.post(
        &format!("/v1/ops/payouts/{payout}/failed"),
        &ops_token(),
        &json!({"failure_code": "recalled"}),
    )
    .await;
    for (event_type, status) in [
        ("payout.in_transit", "in_transit"),
        ("payout.paid", "paid"),
        ("payout.failed", "failed"),
    ] {
        let got = receiver.wait_for(event_type, 1, WAIT).await;
        assert_eq!(got.len(), 1, "{event_type}");
        assert_eq!(got[0].body["data"]["id"], payout.as_str());
        assert_eq!(got[0].body["data"]["status"], status);
    }
    let closed = receiver.wait_for("settlement.closed", 1, WAIT).await;
    assert_eq!(closed[0].body["data"]["payable_amount"], "17.56");
    assert_eq!(receiver.of_type("batch.accepted").len(), 1);
}

#[tokio::test]
async fn a_delivery_to_an_address_that_became_private_is_refused_at_send_time() {
    // Registered where local addresses were allowed, delivered by a replica where they
    // are not: the address is checked again before every attempt.
    let registrar = [
        ("WEBHOOK_ALLOW_LOCAL_NETWORK", "true"),
        ("WEBHOOK_POLL_INTERVAL_MS", "0"),
    ];
    let app = spawn_app_with(&registrar).await;
    let receiver = Receiver::start().await;
    app.merchant_with_terminal("m1", "t1").await;
    register(
        &app,
        "m1",
        &receiver.url.replace("http://", "https://"),
        &[],
    )
    .await;
    let strict = [
        ("WEBHOOK_POLL_INTERVAL_MS", "50"),
        ("WEBHOOK_RETRY_BASE_MS", "100"),
        ("WEBHOOK_MAX_ATTEMPTS", "2"),
    ];
    let _worker = spawn_replica(&app, &strict).await;
    app.close(
        "t1",
        "m1",
        "k",
        &batch_body(1, Utc::now() - Duration::minutes(5)),
    )
    .await;
    let mut detail = Value::Null;
    for _ in 0..60 {
        let events = json_of(
            app.get("/v1/merchants/m1/events", &merchant_token("m1"))
                .await,
        )
        .await;
        let id = events["data"][0]["id"].as_str().unwrap().to_owned();
        detail = json_of(
            app.get(
                &format!("/v1/merchants/m1/events/{id}"),
                &merchant_token("m1"),
            )
            .await,
        )
        .await;
        if detail["deliveries"][0]["status"] == "failed" {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    assert_eq!(detail["deliveries"][0]["status"], "failed", "{detail:#}");
    let error = detail["deliveries"][0]["attempts"][0]["error"]
        .as_str()
        .unwrap();
    assert!(error.contains("loopback, private"), "{error}");
    assert!(
        receiver.received().is_empty(),
        "nothing reached the private address"
    );
}
