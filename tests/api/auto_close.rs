//! Matching closes against the host, and auto-close: the host closes what a
//! terminal forgot, exactly once, and a later close of the same transactions is
//! recognised and not paid twice.

use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::host::send;

/// One transaction as both the host and the terminal see it.
#[derive(Clone)]
struct Txn {
    stan: &'static str,
    rrn: &'static str,
    amount: &'static str,
    at: DateTime<Utc>,
}

fn txn(stan: &'static str, rrn: &'static str, amount: &'static str, at: DateTime<Utc>) -> Txn {
    Txn {
        stan,
        rrn,
        amount,
        at,
    }
}

fn authorization(terminal_id: &str, t: &Txn) -> Value {
    json!({
        "type": "authorization", "terminal_id": terminal_id, "rrn": t.rrn, "stan": t.stan,
        "auth_code": "A1B2C3", "transaction_type": "sale", "amount": t.amount,
        "currency": "USD", "authorized_at": rfc3339(t.at), "card_brand": "visa",
        "masked_pan": "411111******1111"
    })
}

/// A balanced close of sales only, each line as the host authorized it.
fn close_of(batch_number: u32, sales: &[Txn]) -> Value {
    let minor: i64 = sales.iter().map(|t| minor_of(t.amount)).sum();
    json!({
        "batch_number": batch_number,
        "currency": "USD",
        "totals": {
            "sale_count": sales.len(), "sale_amount": format!("{}.{:02}", minor / 100, minor % 100),
            "refund_count": 0, "refund_amount": "0.00", "void_count": 0, "void_amount": "0.00"
        },
        "transactions": sales.iter().map(|t| json!({
            "stan": t.stan, "rrn": t.rrn, "type": "sale", "amount": t.amount,
            "captured_at": rfc3339(t.at), "card_brand": "visa",
            "masked_pan": "411111******1111", "auth_code": "A1B2C3"
        })).collect::<Vec<_>>()
    })
}

fn minor_of(amount: &str) -> i64 {
    let (units, cents) = amount.split_once('.').unwrap();
    units.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap()
}

async fn set_merchant(app: &TestApp, merchant_id: &str, fields: Value) {
    let mut body = fields;
    body["reason"] = json!("host settings for the test");
    let r = app
        .client
        .patch(app.url(&format!("/v1/ops/merchants/{merchant_id}")))
        .bearer_auth(ops_token())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
}

async fn run_settlement(app: &TestApp) -> Value {
    let r = app
        .post("/v1/ops/settlement-runs", &ops_token(), &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    json_of(r).await
}

async fn unsettled_rrns(app: &TestApp, merchant_id: &str, terminal_id: &str) -> Vec<String> {
    let r = app
        .get(
            &format!("/v1/merchants/{merchant_id}/terminals/{terminal_id}/unsettled"),
            &merchant_token(merchant_id),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    json_of(r).await["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["rrn"].as_str().unwrap().to_owned())
        .collect()
}

/// How many booked lines present each RRN (a terminal's line settled already by a
/// host batch presents nothing).
async fn presentments(app: &TestApp, rrn: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM batch_lines l JOIN batches b ON b.id = l.batch_id \
         WHERE l.rrn = $1 AND l.settled_by IS NULL AND l.released_at IS NULL \
           AND b.status NOT IN ('rejected_outside_grace', 'declined')",
    )
    .bind(rrn)
    .fetch_one(&app.db)
    .await
    .unwrap()
}

async fn ledger_check_passes(app: &TestApp) {
    let r = app.get("/v1/ops/ledger/check", &ops_token()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = json_of(r).await;
    assert_eq!(body["ok"], true, "{body}");
    app.assert_ledger_balanced().await;
}

/// A merchant with auto-close on (no delay) and a terminal; its cutoff is twelve hours
/// away, so a sale twenty hours ago belongs to the business day whose cutoff passed
/// twelve hours ago: due for auto-close, inside the 72-hour grace window.
async fn auto_close_merchant(app: &TestApp, merchant_id: &str, terminal_id: &str) {
    app.merchant_with_terminal(merchant_id, terminal_id).await;
    set_merchant(
        app,
        merchant_id,
        json!({"auto_close": true, "auto_close_delay_minutes": 0}),
    )
    .await;
}

#[tokio::test]
async fn lines_the_host_did_not_authorize_are_reported_on_the_batch_and_to_operations() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let at = Utc::now() - Duration::minutes(30);
    let known = txn("000001", "RRN000000001", "10.00", at);
    let other_amount = txn("000002", "RRN000000002", "20.00", at);
    let unknown = txn("000003", "RRN000000003", "30.00", at);
    let mut authorized = other_amount.clone();
    authorized.amount = "19.00";
    send(
        &app,
        vec![
            authorization("t1", &known),
            authorization("t1", &authorized),
        ],
    )
    .await;

    let r = app
        .close(
            "t1",
            "m1",
            "k1",
            &close_of(1, &[known, other_amount, unknown]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let batch = json_of(r).await;
    assert_eq!(batch["status"], "accepted");
    assert_eq!(batch["net_amount"], "60.00", "the batch is booked whole");
    assert_eq!(
        batch["unmatched_lines"],
        json!([
            {"line_no": 2, "stan": "000002", "rrn": "RRN000000002", "reasons": ["amount_differs"]},
            {"line_no": 3, "stan": "000003", "rrn": "RRN000000003", "reasons": ["no_authorization"]},
        ])
    );
    assert!(batch["status_reason"]
        .as_str()
        .unwrap()
        .contains("2 of its transactions do not match"));

    let r = app
        .get(
            "/v1/ops/exceptions?kind=unmatched_transactions",
            &ops_token(),
        )
        .await;
    let list = json_of(r).await;
    let items = list["data"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["batch_id"], batch["id"]);
    assert_eq!(items[0]["state"], "open");
    assert_eq!(items[0]["unmatched_lines"], batch["unmatched_lines"]);
    ledger_check_passes(&app).await;
}

#[tokio::test]
async fn with_enforce_an_unauthorized_line_refuses_the_close_until_the_host_reports_it() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    set_merchant(&app, "m1", json!({"host_matching": "enforce"})).await;
    let at = Utc::now() - Duration::minutes(30);
    let first = txn("000001", "RRN000000001", "10.00", at);
    let late_report = txn("000002", "RRN000000002", "20.00", at);
    send(&app, vec![authorization("t1", &first)]).await;

    let body = close_of(1, &[first, late_report.clone()]);
    let r = app.close("t1", "m1", "k1", &body).await;
    let problem = assert_problem(
        r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unauthorized_transactions",
    )
    .await;
    assert_eq!(
        problem["unmatched_lines"],
        json!([{"line_no": 2, "stan": "000002", "rrn": "RRN000000002", "reasons": ["no_authorization"]}])
    );
    assert_eq!(app.count("batches").await, 0, "nothing booked");
    assert_eq!(
        app.count("idempotency_keys").await,
        0,
        "nothing stored under the key"
    );

    // Once the host reports it, the same key closes the batch.
    send(&app, vec![authorization("t1", &late_report)]).await;
    let r = app.close("t1", "m1", "k1", &body).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let batch = json_of(r).await;
    assert_eq!(batch["unmatched_lines"], json!([]));
    assert_eq!(app.count("close_attempts").await, 0);
}

#[tokio::test]
async fn the_host_closes_what_the_terminal_forgot_in_that_days_cycle_exactly_once() {
    let app = spawn_app().await;
    auto_close_merchant(&app, "m1", "t1").await;
    let yesterday = Utc::now() - Duration::hours(20);
    let a = txn("000001", "RRN000000001", "10.00", yesterday);
    let b = txn(
        "000002",
        "RRN000000002",
        "25.00",
        yesterday + Duration::minutes(5),
    );
    let reversed = txn(
        "000003",
        "RRN000000003",
        "7.00",
        yesterday + Duration::minutes(9),
    );
    let today = txn(
        "000004",
        "RRN000000004",
        "5.00",
        Utc::now() - Duration::minutes(10),
    );
    send(
        &app,
        vec![
            authorization("t1", &a),
            authorization("t1", &b),
            authorization("t1", &reversed),
            authorization("t1", &today),
            json!({"type": "reversal", "terminal_id": "t1", "rrn": reversed.rrn}),
        ],
    )
    .await;
    // Auto-close is announced with its instant.
    let status = json_of(
        app.get("/v1/merchants/m1/status", &merchant_token("m1"))
            .await,
    )
    .await;
    let step = status["terminals"][0]["unsettled"]["next_step"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        step.contains("the host closes it on the terminal's behalf at"),
        "{step}"
    );

    let run = run_settlement(&app).await;
    let closed = run["auto_closed_batches"].as_array().unwrap();
    assert_eq!(closed.len(), 1, "{run}");
    let host_batch = &closed[0];
    assert_eq!(host_batch["origin"], "host");
    assert_eq!(host_batch["status"], "auto_closed");
    assert_eq!(host_batch["reason_code"], "auto_closed_by_host");
    assert_eq!(host_batch["batch_number"], Value::Null);
    assert_eq!(
        host_batch["line_count"], 2,
        "the reversed sale is not closed"
    );
    assert_eq!(host_batch["net_amount"], "35.00");
    // 1.5 % of 35.00 (52.5 cents, rounded half to even) plus 0.10 per sale.
    assert_eq!(host_batch["fee"], "0.72");
    assert_eq!(
        host_batch["cycle_date"], host_batch["business_date"],
        "paid on time"
    );
    // Its cycle closed in the same run, with it.
    let cycle = run["closed_cycles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cycle_date"] == host_batch["cycle_date"])
        .expect("the day's cycle closed");
    assert_eq!(cycle["batch_count"], 1);
    assert_eq!(
        unsettled_rrns(&app, "m1", "t1").await,
        vec![today.rrn.to_owned()]
    );

    // Run again: nothing more.
    let again = run_settlement(&app).await;
    assert_eq!(again["auto_closed_batches"], json!([]));

    // Audited, and announced to the merchant.
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE type = 'batch.auto_closed'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(events, 1);
    let audits: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_records WHERE action = 'batch.auto_close' AND actor = 'host-auto-close'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(audits, 1);

    // The terminal wakes up and closes the day after all, with one sale the host
    // reports only now: the two settled lines are recognised, only the new one is paid.
    let fresh = txn(
        "000005",
        "RRN000000005",
        "4.00",
        yesterday + Duration::minutes(20),
    );
    send(&app, vec![authorization("t1", &fresh)]).await;
    let r = app
        .close(
            "t1",
            "m1",
            "k-late",
            &close_of(41, &[a.clone(), b.clone(), fresh]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let batch = json_of(r).await;
    assert_eq!(batch["origin"], "terminal");
    assert_eq!(batch["line_count"], 3);
    assert_eq!(batch["totals"]["sale_count"], 1);
    assert_eq!(batch["net_amount"], "4.00");
    assert_eq!(
        batch["already_settled_lines"],
        json!([
            {"line_no": 1, "stan": "000001", "rrn": "RRN000000001", "batch_id": host_batch["id"]},
            {"line_no": 2, "stan": "000002", "rrn": "RRN000000002", "batch_id": host_batch["id"]},
        ])
    );
    assert_eq!(batch["unmatched_lines"], json!([]));
    assert!(batch["status_reason"]
        .as_str()
        .unwrap()
        .contains("settled already by the host's auto-close"));
    for rrn in [a.rrn, b.rrn, "RRN000000005"] {
        assert_eq!(presentments(&app, rrn).await, 1, "{rrn} paid once");
    }
    // The close must still balance on all its lines.
    let mut wrong = close_of(42, &[a.clone(), b.clone()]);
    wrong["totals"]["sale_amount"] = json!("10.00");
    let r = app.close("t1", "m1", "k-wrong", &wrong).await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "out_of_balance").await;

    // A reversal now is recorded but cannot take back the money: it says so.
    let report = send(
        &app,
        vec![json!({"type": "reversal", "terminal_id": "t1", "rrn": a.rrn})],
    )
    .await;
    let record = &report["records"][0];
    assert_eq!(record["outcome"], "reversed");
    assert_eq!(record["code"], "reversed_after_settlement");
    assert!(record["detail"]
        .as_str()
        .unwrap()
        .contains(host_batch["id"].as_str().unwrap()));
    ledger_check_passes(&app).await;
}

#[tokio::test]
async fn a_terminal_closing_while_auto_close_runs_is_paid_once_whichever_wins() {
    for round in 0..4 {
        let app = spawn_app().await;
        auto_close_merchant(&app, "m1", "t1").await;
        let yesterday = Utc::now() - Duration::hours(20);
        let sales = [
            txn("000001", "RRN000000001", "10.00", yesterday),
            txn("000002", "RRN000000002", "20.00", yesterday),
        ];
        send(&app, sales.iter().map(|t| authorization("t1", t)).collect()).await;
        let body = close_of(1, &sales);
        let close = app.close("t1", "m1", "k1", &body);
        let run = run_settlement(&app);
        let (r, _) = tokio::join!(close, run);
        assert_eq!(r.status(), StatusCode::CREATED, "round {round}");
        let batch = json_of(r).await;
        let settled = batch["already_settled_lines"].as_array().unwrap().len();
        // Either the terminal won (nothing for the host to close) or the host did
        // (the terminal's lines are recognised as settled).
        assert!(settled == 0 || settled == 2, "round {round}: {batch}");
        for t in &sales {
            assert_eq!(presentments(&app, t.rrn).await, 1, "round {round}");
        }
        ledger_check_passes(&app).await;
    }
}

#[tokio::test]
async fn two_replicas_racing_the_auto_close_close_each_day_once() {
    let app = spawn_app().await;
    let replica = spawn_replica(&app, &[]).await;
    for t in ["t1", "t2", "t3"] {
        if t == "t1" {
            auto_close_merchant(&app, "m1", t).await;
        } else {
            app.create_terminal("m1", t).await;
        }
    }
    let yesterday = Utc::now() - Duration::hours(20);
    let mut records = Vec::new();
    for (i, t) in ["t1", "t2", "t3"].iter().enumerate() {
        for j in 0..50u32 {
            records.push(json!({
                "type": "authorization", "terminal_id": t,
                "rrn": format!("R{i}{j:010}"), "stan": format!("{:06}", j + 1),
                "auth_code": "A1B2C3", "transaction_type": "sale", "amount": "1.00",
                "currency": "USD", "authorized_at": rfc3339(yesterday + Duration::seconds(i64::from(j))),
            }));
        }
    }
    send(&app, records).await;
    let (a, b) = tokio::join!(run_settlement(&app), run_settlement(&replica));
    let closed = a["auto_closed_batches"].as_array().unwrap().len()
        + b["auto_closed_batches"].as_array().unwrap().len();
    assert_eq!(closed, 3, "one batch per terminal: {a} {b}");
    let batches: i64 = sqlx::query_scalar("SELECT count(*) FROM batches WHERE origin = 'host'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(batches, 3);
    let lines: i64 = sqlx::query_scalar("SELECT count(*) FROM batch_lines")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(lines, 150);
    ledger_check_passes(&app).await;
}

#[tokio::test]
async fn without_auto_close_the_unsettled_wait_and_a_close_after_grace_is_held_as_today() {
    let app = spawn_app().await;
    app.create_merchant(&MerchantSpec {
        grace_period_hours: 24,
        ..MerchantSpec::new("m1")
    })
    .await;
    app.create_terminal("m1", "t1").await;
    // Two days ago: its cutoff passed 36 hours ago, its 24-hour grace deadline 12
    // hours ago.
    let old = txn(
        "000001",
        "RRN000000001",
        "10.00",
        Utc::now() - Duration::hours(44),
    );
    send(&app, vec![authorization("t1", &old)]).await;
    let status = json_of(
        app.get("/v1/merchants/m1/status", &merchant_token("m1"))
            .await,
    )
    .await;
    let step = status["terminals"][0]["unsettled"]["next_step"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(step.contains("grace deadline"), "{step}");
    assert!(!step.contains("host closes"), "{step}");

    let run = run_settlement(&app).await;
    assert_eq!(run["auto_closed_batches"], json!([]));
    assert_eq!(
        unsettled_rrns(&app, "m1", "t1").await,
        vec![old.rrn.to_owned()]
    );

    // Auto-close turned on now does not reach past the grace deadline either.
    set_merchant(
        &app,
        "m1",
        json!({"auto_close": true, "auto_close_delay_minutes": 0}),
    )
    .await;
    let run = run_settlement(&app).await;
    assert_eq!(run["auto_closed_batches"], json!([]));

    let r = app.close("t1", "m1", "k1", &close_of(1, &[old])).await;
    let problem = assert_problem(
        r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "batch_outside_grace_window",
    )
    .await;
    assert_eq!(problem["batch"]["status"], "rejected_outside_grace");
}

#[tokio::test]
async fn host_settings_are_checked_and_shown() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let patch = |body: Value| {
        app.client
            .patch(app.url("/v1/ops/merchants/m1"))
            .bearer_auth(ops_token())
            .json(&body)
            .send()
    };
    let merchant = json_of(patch(json!({"reason": "read back"})).await.unwrap()).await;
    assert_eq!(merchant["host_matching"], "report");
    assert_eq!(merchant["auto_close"], false);
    assert_eq!(merchant["auto_close_delay_minutes"], 60);
    let merchant = json_of(
        patch(json!({"host_matching": "enforce", "auto_close": true, "auto_close_delay_minutes": 90, "reason": "on"}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(merchant["host_matching"], "enforce");
    assert_eq!(merchant["auto_close"], true);
    assert_eq!(merchant["auto_close_delay_minutes"], 90);
    let r = patch(json!({"grace_period_hours": 1, "auto_close_delay_minutes": 90, "reason": "x"}))
        .await
        .unwrap();
    let body = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(
        body["detail"].as_str().unwrap().contains("grace period"),
        "{body}"
    );
    for (field, value) in [
        ("host_matching", json!("strict")),
        ("auto_close_delay_minutes", json!(721)),
        ("auto_close", json!("yes")),
    ] {
        let r = patch(json!({ field: value, "reason": "test" }))
            .await
            .unwrap();
        let body = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        // A value of the wrong JSON type is refused by the body's schema.
        if field != "auto_close" {
            assert!(body["detail"].as_str().unwrap().contains(field), "{body}");
        }
    }
}

#[tokio::test]
async fn a_repeat_that_differs_from_the_host_batch_or_is_voided_is_refused_whole() {
    let app = spawn_app().await;
    auto_close_merchant(&app, "m1", "t1").await;
    let yesterday = Utc::now() - Duration::hours(20);
    let a = txn("000001", "RRN000000001", "10.00", yesterday);
    let b = txn("000002", "RRN000000002", "20.00", yesterday);
    send(&app, vec![authorization("t1", &a), authorization("t1", &b)]).await;
    let run = run_settlement(&app).await;
    let host_id = run["auto_closed_batches"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The terminal's amount differs from what the host batch paid (a tip added later).
    let mut tipped = a.clone();
    tipped.amount = "12.00";
    let r = app
        .close("t1", "m1", "k1", &close_of(1, &[tipped, b.clone()]))
        .await;
    let problem = assert_problem(
        r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "duplicate_transactions",
    )
    .await;
    assert!(
        problem["detail"].as_str().unwrap().contains(&host_id),
        "{problem}"
    );

    // The terminal voided a sale the host batch paid.
    let mut body = close_of(2, &[a.clone(), b.clone()]);
    body["totals"]["void_count"] = json!(1);
    body["totals"]["void_amount"] = json!("10.00");
    body["transactions"].as_array_mut().unwrap().push(json!({
        "stan": "000003", "rrn": "RRN000000003", "type": "void", "amount": "10.00",
        "original_stan": "000001", "captured_at": rfc3339(yesterday), "card_brand": "visa"
    }));
    let r = app.close("t1", "m1", "k2", &body).await;
    assert_problem(
        r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "duplicate_transactions",
    )
    .await;

    // The exact repeat is recognised.
    let r = app.close("t1", "m1", "k3", &close_of(3, &[a, b])).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let batch = json_of(r).await;
    assert_eq!(batch["already_settled_lines"].as_array().unwrap().len(), 2);
    assert_eq!(batch["net_amount"], "0.00");
    assert_eq!(batch["fee"], "0.00");
    ledger_check_passes(&app).await;
}

#[tokio::test]
async fn a_day_whose_stans_repeat_is_closed_in_as_many_host_batches() {
    let app = spawn_app().await;
    auto_close_merchant(&app, "m1", "t1").await;
    let yesterday = Utc::now() - Duration::hours(20);
    // The terminal restarts its STAN counter with each batch it forgets to close.
    send(
        &app,
        vec![
            authorization("t1", &txn("000001", "RRN000000001", "10.00", yesterday)),
            authorization("t1", &txn("000002", "RRN000000002", "20.00", yesterday)),
            authorization("t1", &txn("000001", "RRN000000003", "30.00", yesterday)),
        ],
    )
    .await;
    let run = run_settlement(&app).await;
    let batches = run["auto_closed_batches"].as_array().unwrap();
    let lines: Vec<i64> = batches
        .iter()
        .map(|b| b["line_count"].as_i64().unwrap())
        .collect();
    assert_eq!(lines, [2, 1], "{run}");
    assert!(unsettled_rrns(&app, "m1", "t1").await.is_empty());
    ledger_check_passes(&app).await;
}

/// The DST change in New York (1 November 2026): a cutoff at 01:30 falls in the hour
/// that happens twice, and is the earlier one (05:30 UTC). A sale at 01:00 EDT is of
/// that day; one at 01:00 EST (an hour later in UTC, after the cutoff) is of the
/// next. The day's auto-close, due at 05:30 UTC, closes the first only.
#[tokio::test]
async fn auto_close_on_a_dst_day_closes_by_the_days_own_cutoff() {
    let app = spawn_app().await;
    app.create_merchant(&MerchantSpec {
        cutoff_local_time: "01:30".into(),
        ..MerchantSpec::new("m1")
    })
    .await;
    app.create_terminal("m1", "t1").await;
    set_merchant(
        &app,
        "m1",
        json!({"auto_close": true, "auto_close_delay_minutes": 0}),
    )
    .await;
    let edt = "2026-11-01T05:00:00Z".parse::<DateTime<Utc>>().unwrap();
    let est = "2026-11-01T06:00:00Z".parse::<DateTime<Utc>>().unwrap();
    send(
        &app,
        vec![
            authorization("t1", &txn("000001", "RRN000000001", "10.00", edt)),
            authorization("t1", &txn("000002", "RRN000000002", "20.00", est)),
        ],
    )
    .await;
    // The settlement run as of just after the day's cutoff.
    let now = "2026-11-01T05:45:00Z".parse::<DateTime<Utc>>().unwrap();
    let outcome = settlement_api::settlement::run_settlement(&app.db, now)
        .await
        .unwrap();
    assert_eq!(outcome.auto_closed.len(), 1);
    let batch = &outcome.auto_closed[0];
    assert_eq!(batch.business_date.to_string(), "2026-11-01");
    assert_eq!(
        batch.cycle_date.map(|d| d.to_string()).as_deref(),
        Some("2026-11-01")
    );
    assert_eq!(batch.cutoff_at.to_rfc3339(), "2026-11-01T05:30:00+00:00");
    assert_eq!(batch.line_count, 1);
    assert_eq!(batch.net_amount_minor, 1000);
    // The next day's sale is left for the next day's run.
    let next = "2026-11-02T06:45:00Z".parse::<DateTime<Utc>>().unwrap();
    let outcome = settlement_api::settlement::run_settlement(&app.db, next)
        .await
        .unwrap();
    assert_eq!(outcome.auto_closed.len(), 1);
    assert_eq!(
        outcome.auto_closed[0].business_date.to_string(),
        "2026-11-02"
    );
    assert_eq!(outcome.auto_closed[0].net_amount_minor, 2000);
}
