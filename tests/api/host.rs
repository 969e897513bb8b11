//! The authorization host: authorizations and reversals answered per record, and a
//! terminal's unsettled transactions (authorized, not reversed, not presented).

use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

const AUTHORIZATIONS: &str = "/v1/host/authorizations";

/// An authorization of a USD sale by terminal `terminal_id`.
fn sale(terminal_id: &str, rrn: &str, amount: &str, at: DateTime<Utc>) -> Value {
    json!({
        "type": "authorization", "terminal_id": terminal_id, "rrn": rrn, "stan": "000001",
        "auth_code": "A1B2C3", "transaction_type": "sale", "amount": amount,
        "currency": "USD", "authorized_at": rfc3339(at), "card_brand": "visa",
        "masked_pan": "411111******1111"
    })
}

fn reversal(terminal_id: &str, rrn: &str) -> Value {
    json!({"type": "reversal", "terminal_id": terminal_id, "rrn": rrn})
}

/// Sends records as the host; asserts 200 and returns the per-record report.
pub(crate) async fn send(app: &TestApp, records: Vec<Value>) -> Value {
    let r = app
        .post(
            AUTHORIZATIONS,
            &host_token(),
            &json!({ "records": records }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    json_of(r).await
}

fn outcomes(report: &Value) -> Vec<String> {
    report["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap().to_owned())
        .collect()
}

async fn unsettled(app: &TestApp, merchant_id: &str, terminal_id: &str) -> Value {
    let r = app
        .get(
            &format!("/v1/merchants/{merchant_id}/terminals/{terminal_id}/unsettled"),
            &merchant_token(merchant_id),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    json_of(r).await
}

fn rrns(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|t| t["rrn"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_same_authorization_twice_is_unchanged_and_a_different_one_conflicts() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let at = Utc::now() - Duration::minutes(30);
    let report = send(&app, vec![sale("t1", "RRN000000001", "12.34", at)]).await;
    assert_eq!(outcomes(&report), ["recorded"]);
    assert_eq!(report["totals"]["recorded"], 1);

    let again = send(
        &app,
        vec![
            sale("t1", "RRN000000001", "12.34", at),
            sale("t1", "RRN000000001", "99.00", at),
        ],
    )
    .await;
    assert_eq!(outcomes(&again), ["unchanged", "conflict"]);
    assert_eq!(again["records"][1]["code"], "authorization_differs");
    assert!(again["records"][1]["detail"]
        .as_str()
        .unwrap()
        .contains("amount"));
    assert_eq!(again["totals"]["unchanged"], 1);
    assert_eq!(again["totals"]["conflict"], 1);
    let stored: i64 = sqlx::query_scalar(
        "SELECT amount_minor FROM host_authorizations WHERE rrn = 'RRN000000001'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(stored, 1234, "the conflict changed nothing");
    assert_eq!(app.count("host_authorizations").await, 1);
}

#[tokio::test]
async fn records_that_cannot_be_taken_are_rejected_one_by_one_with_a_code() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let at = Utc::now() - Duration::minutes(30);
    let mut euro = sale("t1", "RRN000000002", "1.00", at);
    euro["currency"] = json!("EUR");
    let mut no_code = sale("t1", "RRN000000003", "1.00", at);
    no_code.as_object_mut().unwrap().remove("auth_code");
    let report = send(
        &app,
        vec![
            sale("nowhere", "RRN000000001", "1.00", at),
            euro,
            no_code,
            reversal("t1", "RRN000000009"),
            sale("t1", "RRN000000004", "1.00", at),
        ],
    )
    .await;
    assert_eq!(
        outcomes(&report),
        ["rejected", "rejected", "rejected", "rejected", "recorded"]
    );
    let codes: Vec<&str> = report["records"]
        .as_array()
        .unwrap()
        .iter()
        .take(4)
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "unknown_terminal",
            "currency_not_accepted",
            "invalid_field",
            "unknown_authorization"
        ]
    );
    assert!(report["records"][2]["detail"]
        .as_str()
        .unwrap()
        .starts_with("auth_code"));
    assert_eq!(report["totals"]["rejected"], 4);
    assert_eq!(app.count("host_authorizations").await, 1);
}

#[tokio::test]
async fn a_reversal_before_the_close_takes_the_sale_out_of_the_unsettled() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let at = Utc::now() - Duration::minutes(30);
    send(
        &app,
        vec![
            sale("t1", "RRN000000001", "10.00", at),
            sale("t1", "RRN000000002", "2.50", at + Duration::minutes(1)),
        ],
    )
    .await;
    let before = unsettled(&app, "m1", "t1").await;
    assert_eq!(before["summary"]["count"], 2);
    assert_eq!(before["summary"]["amounts"][0]["net_amount"], "12.50");

    let mut disagreeing = reversal("t1", "RRN000000001");
    disagreeing["amount"] = json!("1.00");
    disagreeing["currency"] = json!("USD");
    let report = send(
        &app,
        vec![
            disagreeing,
            reversal("t1", "RRN000000001"),
            reversal("t1", "RRN000000001"),
        ],
    )
    .await;
    assert_eq!(outcomes(&report), ["conflict", "reversed", "unchanged"]);
    assert_eq!(report["records"][0]["code"], "reversal_disagrees");

    let after = unsettled(&app, "m1", "t1").await;
    assert_eq!(rrns(&after), ["RRN000000002"]);
    assert_eq!(after["summary"]["count"], 1);
    assert_eq!(after["summary"]["amounts"][0]["net_amount"], "2.50");
    assert_eq!(
        after["summary"]["since"],
        rfc3339(at + Duration::minutes(1))
    );
    // A reversal is kept: the database refuses to undo it or to delete the row.
    let undo = sqlx::query("UPDATE host_authorizations SET reversed_at = NULL")
        .execute(&app.db)
        .await;
    assert!(undo.is_err());
    let delete = sqlx::query("DELETE FROM host_authorizations")
        .execute(&app.db)
        .await;
    assert!(delete.is_err());
}

#[tokio::test]
async fn a_sale_closed_by_the_terminal_is_no_longer_unsettled() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let at = Utc::now() - Duration::minutes(30);
    send(
        &app,
        vec![
            sale("t1", &rrn_of(1, 1), "23.00", at),
            sale("t1", "RRN000000099", "4.00", at),
        ],
    )
    .await;
    assert_eq!(unsettled(&app, "m1", "t1").await["summary"]["count"], 2);
    let r = app.close("t1", "m1", "k1", &batch_body(1, at)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let after = unsettled(&app, "m1", "t1").await;
    assert_eq!(rrns(&after), ["RRN000000099"]);
    assert_eq!(after["has_more"], false);
}

#[tokio::test]
async fn lines_of_a_held_batch_count_as_presented() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let old = Utc::now() - Duration::days(5);
    send(&app, vec![sale("t1", &rrn_of(3, 1), "23.00", old)]).await;
    assert_eq!(unsettled(&app, "m1", "t1").await["summary"]["count"], 1);
    let r = app.close("t1", "m1", "k1", &batch_body(3, old)).await;
    assert_problem(
        r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "batch_outside_grace_window",
    )
    .await;
    let after = unsettled(&app, "m1", "t1").await;
    assert_eq!(after["summary"]["count"], 0);
    assert!(after["summary"].get("since").is_none());
}

#[tokio::test]
async fn the_unsettled_list_is_paginated_oldest_first() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let at = Utc::now() - Duration::hours(2);
    let records = (1..=5)
        .map(|i| {
            sale(
                "t1",
                &format!("RRN00000000{i}"),
                "1.00",
                at + Duration::minutes(i),
            )
        })
        .collect();
    send(&app, records).await;
    let first = json_of(
        app.get(
            "/v1/merchants/m1/terminals/t1/unsettled?limit=3",
            &merchant_token("m1"),
        )
        .await,
    )
    .await;
    assert_eq!(
        rrns(&first),
        ["RRN000000001", "RRN000000002", "RRN000000003"]
    );
    assert_eq!(first["has_more"], true);
    assert_eq!(first["summary"]["count"], 5);
    // What to do, with the cutoff in the merchant's own time.
    let step = first["next_step"].as_str().expect("a next step");
    assert!(
        step.starts_with("5 transactions authorized by the host"),
        "{step}"
    );
    assert!(
        step.contains("Next step:") && step.contains("(UTC-0"),
        "{step}"
    );
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = json_of(
        app.get(
            &format!("/v1/merchants/m1/terminals/t1/unsettled?limit=3&cursor={cursor}"),
            &ops_token(),
        )
        .await,
    )
    .await;
    assert_eq!(rrns(&second), ["RRN000000004", "RRN000000005"]);
    assert_eq!(second["has_more"], false);
    // The terminal reads its own; another terminal of the merchant does not.
    let own = app
        .get(
            "/v1/merchants/m1/terminals/t1/unsettled",
            &terminal_token("t1", "m1"),
        )
        .await;
    assert_eq!(own.status(), StatusCode::OK);
    let other = app
        .get(
            "/v1/merchants/m1/terminals/t1/unsettled",
            &terminal_token("t2", "m1"),
        )
        .await;
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_card_number_in_a_record_is_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let at = Utc::now() - Duration::minutes(30);
    let mut leaked = sale("t1", "RRN000000002", "1.00", at);
    leaked["masked_pan"] = json!("4111111111111111");
    let r = app
        .post(
            AUTHORIZATIONS,
            &host_token(),
            &json!({"records": [sale("t1", "RRN000000001", "1.00", at), leaked]}),
        )
        .await;
    let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "pan_not_allowed").await;
    assert!(!problem.to_string().contains("4111111111111111"));
    assert_eq!(app.count("host_authorizations").await, 0);
}

#[tokio::test]
async fn more_than_ten_thousand_records_or_another_shape_are_refused() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let records: Vec<Value> = (0..10_001)
        .map(|i| reversal("t1", &format!("R{i:011}")))
        .collect();
    let r = app
        .post(
            AUTHORIZATIONS,
            &host_token(),
            &json!({ "records": records }),
        )
        .await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let r = app
        .post(AUTHORIZATIONS, &host_token(), &json!({ "records": [] }))
        .await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let r = app
        .post(
            AUTHORIZATIONS,
            &host_token(),
            &json!({ "records": [{"type": "authorization", "colour": "red"}] }),
        )
        .await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(app.count("host_authorizations").await, 0);
}

#[tokio::test]
async fn the_host_reads_no_merchant_data_and_merchants_send_no_authorizations() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let at = Utc::now() - Duration::minutes(30);
    for path in [
        "/v1/merchants/m1/status",
        "/v1/merchants/m1/batches",
        "/v1/merchants/m1/terminals/t1/unsettled",
    ] {
        let r = app.get(path, &host_token()).await;
        assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let body = json!({"records": [sale("t1", "RRN000000001", "1.00", at)]});
    for token in [
        merchant_token("m1"),
        terminal_token("t1", "m1"),
        ops_token(),
    ] {
        let r = app.post(AUTHORIZATIONS, &token, &body).await;
        assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    }
    assert_eq!(app.count("host_authorizations").await, 0);
}

async fn upload(app: &TestApp, token: &str, csv: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/ops/host/capture-files"))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(csv.to_owned())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_capture_file_is_recorded_and_a_bad_line_is_reported_on_its_own() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let at = rfc3339(Utc::now() - Duration::minutes(30));
    let csv = format!(
        "type,terminal_id,rrn,stan,auth_code,transaction_type,amount,currency,authorized_at,card_brand,masked_pan\n\
         authorization,t1,CSV000000001,000001,A1B2C3,sale,10.00,USD,{at},visa,411111******1111\n\
         authorization,t1,CSV000000002,000002,A1B2C3,sale,ten,USD,{at},,\n\
         \n\
         authorization,t1,CSV000000003,000003,A1B2C3,refund,1.50,USD,{at},,\n\
         reversal,t1,CSV000000003,,,,,,,,\n"
    );
    let r = upload(&app, &ops_token(), &csv).await;
    assert_eq!(r.status(), StatusCode::OK);
    let report = json_of(r).await;
    assert_eq!(
        outcomes(&report),
        ["recorded", "rejected", "recorded", "reversed"]
    );
    let lines: Vec<u64> = report["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [2, 3, 5, 6]);
    assert_eq!(report["records"][1]["code"], "invalid_field");
    assert!(report["records"][1]["detail"]
        .as_str()
        .unwrap()
        .starts_with("amount"));
    assert_eq!(rrns(&unsettled(&app, "m1", "t1").await), ["CSV000000001"]);

    // The same file again changes nothing.
    let again = json_of(upload(&app, &ops_token(), &csv).await).await;
    assert_eq!(
        outcomes(&again),
        ["unchanged", "rejected", "unchanged", "unchanged"]
    );
}

#[tokio::test]
async fn a_malformed_capture_file_or_one_with_a_card_number_is_refused_whole() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let at = rfc3339(Utc::now() - Duration::minutes(30));
    let pan = format!(
        "type,terminal_id,rrn,stan,auth_code,transaction_type,amount,currency,authorized_at,masked_pan\n\
         authorization,t1,CSV000000001,000001,A1B2C3,sale,10.00,USD,{at},4111111111111111\n"
    );
    let r = upload(&app, &ops_token(), &pan).await;
    let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "pan_not_allowed").await;
    assert!(!problem.to_string().contains("4111111111111111"));
    let ragged = "type,terminal_id,rrn\nreversal,t1\n";
    let r = upload(&app, &ops_token(), ragged).await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let unknown_column = "type,terminal_id,rrn,colour\nreversal,t1,CSV000000001,red\n";
    let r = upload(&app, &ops_token(), unknown_column).await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let r = upload(&app, &host_token(), ragged).await;
    assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(app.count("host_authorizations").await, 0);
}
