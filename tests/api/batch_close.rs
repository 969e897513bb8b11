//! Closing batches: on time, late, too late, out of balance, idempotency, PAN guard.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// A merchant in UTC whose daily cutoff is `offset` from now (time of day).
async fn utc_merchant(
    app: &TestApp,
    merchant_id: &str,
    terminal_id: &str,
    offset: Duration,
    grace_hours: u32,
) {
    let cutoff = (Utc::now() + offset).format("%H:%M:%S").to_string();
    app.create_merchant(&MerchantSpec {
        cutoff_local_time: cutoff,
        grace_period_hours: grace_hours,
        time_zone: "UTC",
        ..MerchantSpec::new(merchant_id)
    })
    .await;
    app.create_terminal(merchant_id, terminal_id).await;
}

#[tokio::test]
async fn on_time_close_is_accepted_and_books_its_net_to_pending() {
    let app = spawn_app().await;
    // The next cutoff is two hours away, so a batch captured a minute ago is on time.
    utc_merchant(&app, "m1", "t1", Duration::hours(2), 72).await;
    let r = app
        .close(
            "t1",
            "m1",
            "k1",
            &batch_body(1, Utc::now() - Duration::minutes(1)),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let batch = json_of(r).await;
    assert_eq!(batch["status"], "accepted");
    assert_eq!(batch["late_by_seconds"], 0);
    assert_eq!(batch["net_amount"], "18.00");
    assert_eq!(batch["business_date"], batch["cycle_date"]);
    assert_eq!(batch["totals"]["sale_amount"], "30.00");
    assert_eq!(batch["totals"]["void_amount"], "7.00");
    assert_eq!(batch["line_count"], 4);

    let balance = json_of(
        app.get("/v1/merchants/m1/balance", &merchant_token("m1"))
            .await,
    )
    .await;
    assert_eq!(
        balance["balances"],
        json!([{"currency": "USD", "pending": "18.00", "payable": "0.00"}])
    );
    assert_eq!(app.count("journal_entries").await, 1);
    assert_eq!(app.count("postings").await, 2);
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn late_batch_inside_grace_is_accepted_flagged_and_paid_one_cycle_later() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    // Captured two days ago: its cutoff passed 24 to 48 hours ago, inside 72 h grace.
    let r = app
        .close(
            "t1",
            "m1",
            "k1",
            &batch_body(7, Utc::now() - Duration::days(2)),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let batch = json_of(r).await;
    assert_eq!(batch["status"], "accepted_late");
    let late_by = batch["late_by_seconds"].as_i64().unwrap();
    assert!(
        (86_400 - 3_600..=2 * 86_400 + 3_600).contains(&late_by),
        "{late_by}"
    );
    let business: chrono::NaiveDate = batch["business_date"].as_str().unwrap().parse().unwrap();
    let cycle: chrono::NaiveDate = batch["cycle_date"].as_str().unwrap().parse().unwrap();
    assert!(cycle > business, "a late batch is paid in a later cycle");
    let reason = batch["status_reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!(
            "paid one cycle later, in the cycle of {} instead of {}",
            cycle.format("%a %-d %b %Y"),
            business.format("%a %-d %b %Y")
        )),
        "{reason}"
    );
    assert_eq!(app.count("journal_entries").await, 1);
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn late_by_is_measured_from_the_cutoff_by_the_host_clock() {
    let app = spawn_app().await;
    // Cutoff two hours ago (time of day), captured five hours ago.
    utc_merchant(&app, "m1", "t1", -Duration::hours(2), 72).await;
    let batch = json_of(
        app.close(
            "t1",
            "m1",
            "k1",
            &batch_body(1, Utc::now() - Duration::hours(5)),
        )
        .await,
    )
    .await;
    assert_eq!(batch["status"], "accepted_late");
    let late_by = batch["late_by_seconds"].as_i64().unwrap();
    assert!((7_190..=7_260).contains(&late_by), "{late_by}");
}

#[tokio::test]
async fn batch_outside_grace_is_rejected_kept_and_not_booked() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let r = app
        .close(
            "t1",
            "m1",
            "k1",
            &batch_body(3, Utc::now() - Duration::days(5)),
        )
        .await;
    let problem = assert_problem(
        r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "batch_outside_grace_window",
    )
    .await;
    assert!(problem["grace_deadline"].is_string());
    let batch_id = problem["batch_id"].as_str().unwrap().to_owned();
    assert_eq!(problem["batch"]["status"], "rejected_outside_grace");
    assert_eq!(problem["batch"]["cycle_date"], Value::Null);

    assert_eq!(app.count("journal_entries").await, 0);
    // Kept for the record: the merchant sees it, and operations has it as an exception.
    let seen = json_of(
        app.get(
            &format!("/v1/merchants/m1/batches/{batch_id}"),
            &merchant_token("m1"),
        )
        .await,
    )
    .await;
    assert_eq!(seen["status"], "rejected_outside_grace");
    assert_eq!(seen["lines"]["data"].as_array().unwrap().len(), 4);
    let exceptions = json_of(app.get("/v1/ops/exceptions", &ops_token()).await).await;
    assert_eq!(exceptions["data"][0]["kind"], "rejected_outside_grace");
    assert_eq!(exceptions["data"][0]["id"], batch_id.as_str());
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn out_of_balance_close_lists_each_difference_and_books_nothing() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let mut body = batch_body(1, Utc::now() - Duration::minutes(5));
    body["totals"]["sale_amount"] = json!("31.00");
    body["totals"]["refund_count"] = json!(2);
    let r = app.close("t1", "m1", "k1", &body).await;
    let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "out_of_balance").await;
    assert_eq!(
        problem["differences"],
        json!([
            {"total": "sale_amount", "terminal": "31.00", "host": "30.00"},
            {"total": "refund_count", "terminal": "2", "host": "1"}
        ])
    );
    assert_eq!(app.count("batches").await, 0);
    assert_eq!(app.count("journal_entries").await, 0);
    let exceptions = json_of(app.get("/v1/ops/exceptions", &ops_token()).await).await;
    assert_eq!(exceptions["data"][0]["kind"], "out_of_balance");

    // The terminal corrects its totals and closes again under a new key.
    let r = app
        .close(
            "t1",
            "m1",
            "k2",
            &batch_body(1, Utc::now() - Duration::minutes(5)),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn voided_sales_count_in_sales_and_cancel_out_of_the_net() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let captured = rfc3339(Utc::now() - Duration::minutes(3));
    let body = json!({
        "batch_number": 2, "currency": "USD",
        "totals": {"sale_count": 1, "sale_amount": "10.00", "refund_count": 0, "refund_amount": "0.00",
                   "void_count": 1, "void_amount": "10.00"},
        "transactions": [
            {"stan": "000001", "rrn": "633012345678", "type": "sale", "amount": "10.00", "captured_at": captured},
            {"stan": "000002", "rrn": "633012345679", "type": "void", "amount": "10.00", "original_stan": "000001", "captured_at": captured}
        ]
    });
    let batch = json_of(app.close("t1", "m1", "k1", &body).await).await;
    assert_eq!(batch["net_amount"], "0.00");
    // Nothing to move: no entry is booked for a zero net.
    assert_eq!(app.count("journal_entries").await, 0);

    let mut orphan = body.clone();
    orphan["batch_number"] = json!(3);
    orphan["transactions"][1]["original_stan"] = json!("000009");
    let problem = assert_problem(
        app.close("t1", "m1", "k2", &orphan).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["field"], "transactions[1].original_stan");
}

#[tokio::test]
async fn refund_heavy_batches_move_money_back_out_of_pending() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let captured = rfc3339(Utc::now() - Duration::minutes(3));
    let body = json!({
        "batch_number": 4, "currency": "USD",
        "totals": {"sale_count": 1, "sale_amount": "1.00", "refund_count": 1, "refund_amount": "9.50",
                   "void_count": 0, "void_amount": "0.00"},
        "transactions": [
            {"stan": "000001", "rrn": "633012345678", "type": "sale", "amount": "1.00", "captured_at": captured},
            {"stan": "000002", "rrn": "633012345679", "type": "refund", "amount": "9.50", "captured_at": captured}
        ]
    });
    let batch = json_of(app.close("t1", "m1", "k1", &body).await).await;
    assert_eq!(batch["net_amount"], "-8.50");
    let balance = json_of(
        app.get("/v1/merchants/m1/balance", &merchant_token("m1"))
            .await,
    )
    .await;
    assert_eq!(balance["balances"][0]["pending"], "-8.50");
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_replay_with_the_same_key_and_body_returns_the_first_response_and_writes_nothing() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let body = batch_body(1, Utc::now() - Duration::minutes(5));
    let first = app.close("t1", "m1", "key-1", &body).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first = json_of(first).await;
    let replay = app.close("t1", "m1", "key-1", &body).await;
    assert_eq!(replay.status(), StatusCode::CREATED);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(json_of(replay).await, first);
    assert_eq!(app.count("batches").await, 1);
    assert_eq!(app.count("journal_entries").await, 1);
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_replay_that_differs_only_in_spacing_and_key_order_is_the_same_request() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let body = batch_body(1, Utc::now() - Duration::minutes(5));
    let first = app.close("t1", "m1", "key-1", &body).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first = json_of(first).await;
    let pretty = |v: &Value| serde_json::to_string_pretty(v).expect("json");
    let reordered = format!(
        "{{\n  \"transactions\": {},\n  \"totals\" : {},\n\t\"currency\": \"{}\", \"batch_number\": {}\n}}",
        pretty(&body["transactions"]),
        pretty(&body["totals"]),
        body["currency"].as_str().expect("currency"),
        body["batch_number"]
    );
    assert_ne!(reordered, body.to_string());
    let replay = app.close_text("t1", "m1", "key-1", reordered).await;
    assert_eq!(replay.status(), StatusCode::CREATED);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(json_of(replay).await, first);
    assert_eq!(app.count("batches").await, 1);
}

#[tokio::test]
async fn a_key_reused_with_a_different_body_is_refused() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let captured = Utc::now() - Duration::minutes(5);
    assert_eq!(
        app.close("t1", "m1", "key-1", &batch_body(1, captured))
            .await
            .status(),
        StatusCode::CREATED
    );
    let r = app
        .close("t1", "m1", "key-1", &batch_body(2, captured))
        .await;
    assert_problem(
        r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
    assert_eq!(app.count("batches").await, 1);
}

#[tokio::test]
async fn twenty_concurrent_identical_closes_book_once() {
    // Enough connections that every racer waits on the key, not on the pool.
    let app = spawn_app_with(&[("DATABASE_MAX_CONNECTIONS", "24")]).await;
    app.merchant_with_terminal("m1", "t1").await;
    let body = batch_body(9, Utc::now() - Duration::minutes(5));
    let closes = (0..20).map(|_| app.close("t1", "m1", "same-key", &body));
    let responses = join_all(closes).await;
    let mut ids = Vec::new();
    for r in responses {
        assert_eq!(r.status(), StatusCode::CREATED);
        ids.push(json_of(r).await["id"].clone());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every response names the same batch");
    assert_eq!(app.count("batches").await, 1);
    assert_eq!(app.count("journal_entries").await, 1);
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_batch_number_closes_once_per_terminal() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let captured = Utc::now() - Duration::minutes(5);
    let first = json_of(app.close("t1", "m1", "a", &batch_body(5, captured)).await).await;
    // Same content under another key: the existing batch.
    let again = app.close("t1", "m1", "b", &batch_body(5, captured)).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(json_of(again).await["id"], first["id"]);
    // Different content under the same number: refused.
    let r = app
        .close(
            "t1",
            "m1",
            "c",
            &batch_body(5, captured - Duration::minutes(1)),
        )
        .await;
    let problem = assert_problem(r, StatusCode::CONFLICT, "batch_already_closed").await;
    assert_eq!(problem["batch_id"], first["id"]);
    assert_eq!(app.count("batches").await, 1);
    assert_eq!(app.count("journal_entries").await, 1);
    app.assert_ledger_balanced().await;
}

/// Puts a card number somewhere in a batch body.
type PlacePan = dyn Fn(&mut Value, &str);

#[tokio::test]
async fn a_card_number_in_any_field_is_refused_and_never_stored() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let base = batch_body(1, Utc::now() - Duration::minutes(5));
    let pans = [
        "4111111111111111",
        "4111 1111 1111 1111",
        "5500-0055-5555-5559",
    ];
    let places: [&PlacePan; 5] = [
        &|b, pan| b["transactions"][0]["masked_pan"] = json!(pan),
        &|b, pan| b["transactions"][0]["auth_code"] = json!(pan),
        &|b, pan| b["transactions"][1]["card_brand"] = json!(pan),
        &|b, pan| b["currency"] = json!(pan),
        &|b, pan| b["transactions"][2]["rrn"] = json!(format!("ref {pan}")),
    ];
    for pan in pans {
        for place in &places {
            let mut body = base.clone();
            place(&mut body, pan);
            let r = app
                .close("t1", "m1", &format!("k-{}", uuid::Uuid::new_v4()), &body)
                .await;
            let problem =
                assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "pan_not_allowed").await;
            assert!(!problem
                .to_string()
                .contains(&pan.replace([' ', '-'], "")[..12]));
        }
    }
    // A card number sent as a JSON number, or with digit groups around it.
    let mut as_number = base.clone();
    as_number["transactions"][0]["amount"] = json!(4111111111111111_u64);
    let r = app.close("t1", "m1", "k-number", &as_number).await;
    let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "pan_not_allowed").await;
    assert!(!problem.to_string().contains("4111111111111111"));
    let r = app.close("t1", "m1", "1-4111-1111-1111-1111", &base).await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "pan_not_allowed").await;
    // On any route, in the query string.
    let r = app
        .client
        .post(app.url("/v1/terminals/t1/batches?note=4111%201111%201111%201111"))
        .bearer_auth(terminal_token("t1", "m1"))
        .header("Idempotency-Key", "k-query")
        .json(&base)
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "pan_not_allowed").await;

    // A PAN in the idempotency key is refused too.
    let r = app.close("t1", "m1", "4111111111111111", &base).await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "pan_not_allowed").await;

    for table in [
        "batches",
        "batch_lines",
        "idempotency_keys",
        "close_attempts",
        "journal_entries",
    ] {
        assert_eq!(app.count(table).await, 0, "{table} holds nothing");
    }
    let dump: String = sqlx::query_scalar(
        "SELECT coalesce(string_agg(t::text, ' '), '') FROM (SELECT row_to_json(m)::text AS t FROM merchants m \
         UNION ALL SELECT row_to_json(x)::text FROM terminals x) d",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(!dump.contains("4111111111111111"));
}

#[tokio::test]
async fn a_capture_time_ahead_of_the_host_clock_is_refused() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let r = app
        .close(
            "t1",
            "m1",
            "k",
            &batch_body(1, Utc::now() + Duration::minutes(10)),
        )
        .await;
    let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(problem["field"], "transactions[0].captured_at");
    assert_eq!(app.count("idempotency_keys").await, 0);
}

#[tokio::test]
async fn malformed_requests_get_problem_json_and_write_nothing() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let url = app.url("/v1/terminals/t1/batches");
    let tok = terminal_token("t1", "m1");

    let r = app
        .client
        .post(&url)
        .bearer_auth(&tok)
        .header("Idempotency-Key", "k")
        .header("content-type", "application/json")
        .body("{\"batch_number\": 1,")
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::BAD_REQUEST, "malformed_json").await;

    let mut unknown = batch_body(1, Utc::now());
    unknown["tip"] = json!("1.00");
    let r = app.close("t1", "m1", "k", &unknown).await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

    let mut bad_amount = batch_body(1, Utc::now());
    bad_amount["transactions"][0]["amount"] = json!("23.005");
    let problem = assert_problem(
        app.close("t1", "m1", "k", &bad_amount).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["field"], "transactions[0].amount");

    let mut negative = batch_body(1, Utc::now());
    negative["totals"]["refund_amount"] = json!("-5.00");
    assert_problem(
        app.close("t1", "m1", "k", &negative).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;

    let mut other_currency = batch_body(1, Utc::now());
    other_currency["currency"] = json!("EUR");
    assert_problem(
        app.close("t1", "m1", "k", &other_currency).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "currency_not_accepted",
    )
    .await;

    let r = app
        .client
        .post(&url)
        .bearer_auth(&tok)
        .json(&batch_body(1, Utc::now()))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::BAD_REQUEST, "idempotency_key_required").await;

    let r = app
        .client
        .post(&url)
        .bearer_auth(&tok)
        .header("Idempotency-Key", "k")
        .body("batch_number=1")
        .send()
        .await
        .unwrap();
    assert_problem(
        r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;

    for table in ["batches", "idempotency_keys", "close_attempts"] {
        assert_eq!(app.count(table).await, 0, "{table} holds nothing");
    }
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413() {
    let app = spawn_app_with(&[("REQUEST_BODY_LIMIT_BYTES", "2048")]).await;
    app.merchant_with_terminal("m1", "t1").await;
    let mut body = batch_body(1, Utc::now());
    body["transactions"][0]["card_brand"] = json!("x".repeat(4096));
    let r = app.close("t1", "m1", "k", &body).await;
    assert_problem(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

#[tokio::test]
async fn the_terminal_reads_its_close_back_by_batch_number() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let closed = json_of(
        app.close(
            "t1",
            "m1",
            "k",
            &batch_body(42, Utc::now() - Duration::minutes(5)),
        )
        .await,
    )
    .await;
    let r = app
        .get("/v1/terminals/t1/batches/42", &terminal_token("t1", "m1"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json_of(r).await["id"], closed["id"]);
    let r = app
        .get("/v1/terminals/t1/batches/43", &terminal_token("t1", "m1"))
        .await;
    assert_problem(r, StatusCode::NOT_FOUND, "not_found").await;
}

/// Holds the idempotency key `key` of terminal t1 in an open transaction, as a
/// request still in flight would.
async fn hold_key(app: &TestApp, key: &str) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut tx = app.db.begin().await.unwrap();
    sqlx::query("INSERT INTO idempotency_keys (terminal_id, idempotency_key, request_hash) VALUES ('t1', $1, '\\x00')")
        .bind(key)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx
}

#[tokio::test]
async fn a_key_held_by_a_request_in_flight_answers_409_after_the_lock_wait() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let held = hold_key(&app, "busy").await;
    let r = app
        .close(
            "t1",
            "m1",
            "busy",
            &batch_body(1, Utc::now() - Duration::minutes(5)),
        )
        .await;
    assert_problem(r, StatusCode::CONFLICT, "request_in_progress").await;
    held.rollback().await.unwrap();
    // Once the other request is gone the key is free.
    let r = app
        .close(
            "t1",
            "m1",
            "busy",
            &batch_body(1, Utc::now() - Duration::minutes(5)),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_request_past_the_timeout_answers_503_and_books_nothing() {
    let app = spawn_app_with(&[("REQUEST_TIMEOUT_MS", "500")]).await;
    app.merchant_with_terminal("m1", "t1").await;
    let held = hold_key(&app, "slow").await;
    let started = std::time::Instant::now();
    let r = app
        .close(
            "t1",
            "m1",
            "slow",
            &batch_body(1, Utc::now() - Duration::minutes(5)),
        )
        .await;
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    assert_problem(r, StatusCode::SERVICE_UNAVAILABLE, "request_timeout").await;
    held.rollback().await.unwrap();
    assert_eq!(app.count("batches").await, 0);
}

#[tokio::test]
async fn batches_and_their_lines_are_kept_and_lines_need_their_batch() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let r = app
        .close(
            "t1",
            "m1",
            "k1",
            &batch_body(1, Utc::now() - Duration::minutes(5)),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let code = |e: sqlx::Error| match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        other => panic!("{other}"),
    };
    for statement in [
        "DELETE FROM batches",
        "DELETE FROM batch_lines",
        "UPDATE batch_lines SET batch_id = gen_random_uuid()",
        "UPDATE batches SET id = gen_random_uuid()",
        "TRUNCATE batch_lines",
    ] {
        let err = sqlx::query(statement).execute(&app.db).await.unwrap_err();
        assert_eq!(code(err).as_deref(), Some("42501"), "{statement}");
    }
    // A line of a batch that does not exist is refused, as a foreign key would.
    let err = sqlx::query(
        "INSERT INTO batch_lines (batch_id, terminal_id, line_no, stan, rrn, line_type, amount_minor, captured_at) \
         VALUES (gen_random_uuid(), 't1', 1, '000001', '000000000001', 'sale', 100, now())",
    )
    .execute(&app.db)
    .await
    .unwrap_err();
    assert!(
        settlement_store::is_constraint_violation(&err, "batch_lines_batch_id_fkey"),
        "{err}"
    );
    assert_eq!(app.count("batch_lines").await, 4);
    assert_eq!(app.count("batches").await, 1);
}

// Batch numbers wrap ---------------------------------------------------------------

/// Moves a batch's receipt `days` back, as if it had been closed that long ago.
async fn age_batch(app: &TestApp, batch_id: &Value, days: i32) {
    sqlx::query(
        "UPDATE batches SET received_at = received_at - make_interval(days => $2) WHERE id = $1::uuid",
    )
    .bind(batch_id.as_str().unwrap())
    .bind(days)
    .execute(&app.db)
    .await
    .unwrap();
}

/// `batch_body` with RRNs of its own (a wrapped counter closes new transactions).
fn with_new_rrns(mut body: Value) -> Value {
    for tx in body["transactions"].as_array_mut().unwrap() {
        let rrn = tx["rrn"].as_str().unwrap();
        tx["rrn"] = json!(format!("W{}", &rrn[1..]));
    }
    body
}

#[tokio::test]
async fn a_batch_number_is_used_again_only_once_its_last_use_is_older_than_the_reuse_window() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let recent = Utc::now() - Duration::minutes(5);
    let first = json_of(app.close("t1", "m1", "a", &batch_body(5, recent)).await).await;
    let wrapped = with_new_rrns(batch_body(5, recent + Duration::minutes(1)));

    // Inside the window (default 180 days) the number stays closed, as ever.
    age_batch(&app, &first["id"], 179).await;
    let r = app.close("t1", "m1", "b", &wrapped).await;
    let problem = assert_problem(r, StatusCode::CONFLICT, "batch_already_closed").await;
    assert_eq!(problem["batch_id"], first["id"]);
    let again = app.close("t1", "m1", "c", &batch_body(5, recent)).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(json_of(again).await["id"], first["id"]);

    // Past it, the counter has wrapped: the same number is a new batch, booked.
    age_batch(&app, &first["id"], 2).await;
    let r = app.close("t1", "m1", "d", &wrapped).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let second = json_of(r).await;
    assert_ne!(second["id"], first["id"]);
    assert_eq!(second["batch_number"], 5);
    assert_eq!(second["status"], "accepted");
    let uses: Vec<(i32, i32)> = sqlx::query_as(
        "SELECT batch_number, number_use FROM batches WHERE terminal_id = 't1' ORDER BY number_use",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(uses, vec![(5, 1), (5, 2)]);
    assert_eq!(app.count("journal_entries").await, 2);

    // The replay of that close replays it; the terminal reads the latest use back.
    let r = app.close("t1", "m1", "d", &wrapped).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    assert_eq!(json_of(r).await["id"], second["id"]);
    let read = app
        .get("/v1/terminals/t1/batches/5", &terminal_token("t1", "m1"))
        .await;
    assert_eq!(json_of(read).await["id"], second["id"]);

    // The new use is inside its own window: the old content is now other content.
    let r = app.close("t1", "m1", "e", &batch_body(5, recent)).await;
    let problem = assert_problem(r, StatusCode::CONFLICT, "batch_already_closed").await;
    assert_eq!(problem["batch_id"], second["id"]);
    let r = app.close("t1", "m1", "f", &wrapped).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json_of(r).await["id"], second["id"]);
    assert_eq!(app.count("batches").await, 2);
    let balance = json_of(
        app.get("/v1/merchants/m1/balance", &merchant_token("m1"))
            .await,
    )
    .await;
    assert_eq!(balance["balances"][0]["pending"], "36.00");
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn the_batch_number_reuse_window_is_configured_and_bounded() {
    let app = spawn_app_with(&[("BATCH_NUMBER_REUSE_DAYS", "30")]).await;
    app.merchant_with_terminal("m1", "t1").await;
    let recent = Utc::now() - Duration::minutes(5);
    let first = json_of(app.close("t1", "m1", "a", &batch_body(7, recent)).await).await;
    age_batch(&app, &first["id"], 31).await;
    let r = app
        .close("t1", "m1", "b", &with_new_rrns(batch_body(7, recent)))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    for days in ["29", "3651", "soon"] {
        let config = settlement_api::Config::from_lookup(|name| match name {
            "DATABASE_URL" => Some("postgres://x/y".into()),
            "AUTH_HS256_SECRET" => Some(SECRET.into()),
            "BATCH_NUMBER_REUSE_DAYS" => Some(days.into()),
            _ => None,
        });
        assert_eq!(
            config.unwrap_err().variable,
            "BATCH_NUMBER_REUSE_DAYS",
            "{days}"
        );
    }
}

#[tokio::test]
async fn the_database_refuses_a_second_use_of_a_number_too_soon_or_out_of_turn() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let first = json_of(
        app.close(
            "t1",
            "m1",
            "a",
            &batch_body(9, Utc::now() - Duration::minutes(5)),
        )
        .await,
    )
    .await;
    // Another batch of the same number under `number_use`, received now.
    let insert_use = |number_use: i32| {
        let db = app.db.clone();
        let id = first["id"].as_str().unwrap().to_owned();
        async move {
            sqlx::query(
                "INSERT INTO batches (id, terminal_id, merchant_id, batch_number, status, currency, business_date, \
                     cycle_date, received_at, cutoff_at, grace_deadline, late_by_seconds, sale_count, sale_amount_minor, \
                     refund_count, refund_amount_minor, void_count, void_amount_minor, net_amount_minor, line_count, \
                     content_hash, number_use) \
                 SELECT gen_random_uuid(), terminal_id, merchant_id, batch_number, 'accepted', currency, business_date, \
                     cycle_date, now(), cutoff_at, grace_deadline, 0, 0, 0, 0, 0, 0, 0, 0, 1, '\\x00', $2 \
                 FROM batches WHERE id = $1::uuid",
            )
            .bind(id)
            .bind(number_use)
            .execute(&db)
            .await
        }
    };
    let refused = |r: Result<sqlx::postgres::PgQueryResult, sqlx::Error>, constraint: &str| {
        let err = r.unwrap_err();
        assert!(
            settlement_store::is_constraint_violation(&err, constraint),
            "{constraint}: {err}"
        );
    };
    // The same use twice; a use that skips one; a second use inside 30 days.
    refused(insert_use(1).await, "batches_terminal_number_use_unique");
    refused(insert_use(3).await, "batches_number_reuse");
    refused(insert_use(2).await, "batches_number_reuse");
    // A batch keeps its number and its use.
    let err = sqlx::query("UPDATE batches SET number_use = 2")
        .execute(&app.db)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not allowed"), "{err}");
    // Thirty days on, the database takes the next use (the service waits its window).
    age_batch(&app, &first["id"], 30).await;
    insert_use(2).await.unwrap();
    refused(insert_use(2).await, "batches_terminal_number_use_unique");
}

#[tokio::test]
async fn skipped_batch_numbers_are_read_across_a_counter_wrap() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "six").await;
    // Closes in the order they arrive, per terminal.
    let terminals: [(&str, &[u32]); 5] = [
        // Six digits wrap after 999999; three digits after 999: no gap.
        ("six", &[999_998, 999_999, 1, 2]),
        ("three", &[997, 998, 999, 1, 2]),
        // A gap across the wrap: before it and after it.
        ("six-gap", &[999_997, 2]),
        ("three-gap", &[998, 3]),
        // A lower number that is not a wrap: a late close, nothing skipped.
        ("late", &[7, 6]),
    ];
    let recent = Utc::now() - Duration::minutes(5);
    for (terminal, numbers) in terminals {
        if terminal != "six" {
            app.create_terminal("m1", terminal).await;
        }
        for n in numbers {
            let r = app
                .close(terminal, "m1", &format!("k{n}"), &batch_body(*n, recent))
                .await;
            assert_eq!(r.status(), StatusCode::CREATED, "{terminal} {n}");
        }
    }
    let status = json_of(
        app.get("/v1/merchants/m1/status", &merchant_token("m1"))
            .await,
    )
    .await;
    let skipped = |terminal: &str| {
        status["terminals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["terminal_id"] == terminal)
            .unwrap()["skipped_batch_numbers"]
            .clone()
    };
    assert_eq!(skipped("six"), json!([]));
    assert_eq!(skipped("three"), json!([]));
    assert_eq!(skipped("six-gap"), json!([999_998, 999_999, 1]));
    assert_eq!(skipped("three-gap"), json!([999, 1, 2]));
    assert_eq!(skipped("late"), json!([]));
}

#[tokio::test]
async fn a_run_of_numbers_skipped_again_after_a_wrap_is_announced_again() {
    use settlement_store::reminders::insert_gap_reminder;
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let now = Utc::now();
    let active_since = now - Duration::days(14);
    // The events the fence rows name are checked at commit, and this rolls back.
    let mut tx = app.db.begin().await.unwrap();
    let mut announce = async |sent_at, earlier_than| {
        let id = uuid::Uuid::now_v7();
        insert_gap_reminder(&mut tx, "t1", 2, 3, id, sent_at, earlier_than)
            .await
            .unwrap()
    };
    let long_ago = now - Duration::days(400);
    assert!(announce(long_ago, long_ago - Duration::days(14)).await);
    // Numbers 2 and 3 skipped again after the counter wrapped: announced again, once.
    assert!(announce(now, active_since).await);
    assert!(!announce(now + Duration::minutes(1), active_since).await);
    tx.rollback().await.unwrap();
}
