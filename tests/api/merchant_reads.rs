//! What merchants read: their batches, one batch with its lines, their balance, their
//! statement.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn the_batch_list_filters_and_pages_with_a_cursor() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    app.create_terminal("m1", "t2").await;
    let recent = Utc::now() - Duration::minutes(5);
    for n in 1..=3 {
        assert_eq!(
            app.close("t1", "m1", &format!("a{n}"), &batch_body(n, recent))
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    assert_eq!(
        app.close("t2", "m1", "b1", &batch_body(1, recent))
            .await
            .status(),
        StatusCode::CREATED
    );
    // One late batch and one rejected batch.
    app.close(
        "t2",
        "m1",
        "b2",
        &batch_body(2, Utc::now() - Duration::days(2)),
    )
    .await;
    app.close(
        "t2",
        "m1",
        "b3",
        &batch_body(3, Utc::now() - Duration::days(6)),
    )
    .await;

    let tok = merchant_token("m1");
    let page1 = json_of(app.get("/v1/merchants/m1/batches?limit=2", &tok).await).await;
    assert_eq!(page1["data"].as_array().unwrap().len(), 2);
    assert_eq!(page1["has_more"], true);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let page2 = json_of(
        app.get(
            &format!("/v1/merchants/m1/batches?limit=10&cursor={cursor}"),
            &tok,
        )
        .await,
    )
    .await;
    assert_eq!(page2["data"].as_array().unwrap().len(), 4);
    assert_eq!(page2["has_more"], false);
    let mut ids: Vec<Value> = page1["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].clone())
        .collect();
    ids.extend(
        page2["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].clone()),
    );
    let mut unique = ids.clone();
    unique.sort_by_key(|v| v.to_string());
    unique.dedup();
    assert_eq!(unique.len(), 6, "pages neither repeat nor skip");

    let t1 = json_of(
        app.get("/v1/merchants/m1/batches?terminal_id=t1", &tok)
            .await,
    )
    .await;
    assert_eq!(t1["data"].as_array().unwrap().len(), 3);
    let late = json_of(
        app.get("/v1/merchants/m1/batches?status=accepted_late", &tok)
            .await,
    )
    .await;
    assert_eq!(late["data"].as_array().unwrap().len(), 1);
    let rejected = json_of(
        app.get(
            "/v1/merchants/m1/batches?status=rejected_outside_grace",
            &tok,
        )
        .await,
    )
    .await;
    assert_eq!(rejected["data"][0]["batch_number"], 3);
    let today = Utc::now().date_naive();
    let old = json_of(
        app.get(
            &format!(
                "/v1/merchants/m1/batches?business_date_to={}",
                today - chrono::Days::new(4)
            ),
            &tok,
        )
        .await,
    )
    .await;
    assert_eq!(
        old["data"].as_array().unwrap().len(),
        1,
        "only the six-day-old batch"
    );

    for bad in [
        "limit=0",
        "limit=101",
        "status=paid",
        "cursor=nope",
        "colour=blue",
    ] {
        let r = app
            .get(&format!("/v1/merchants/m1/batches?{bad}"), &tok)
            .await;
        assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
}

#[tokio::test]
async fn one_batch_shows_its_lines_page_by_page() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
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
    let id = batch["id"].as_str().unwrap();
    let tok = merchant_token("m1");
    let first = json_of(
        app.get(&format!("/v1/merchants/m1/batches/{id}?limit=3"), &tok)
            .await,
    )
    .await;
    assert_eq!(first["status"], "accepted");
    let lines = first["lines"]["data"].as_array().unwrap();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["stan"], "000001");
    assert_eq!(lines[0]["amount"], "23.00");
    assert_eq!(lines[0]["masked_pan"], "411111******1111");
    assert_eq!(first["lines"]["has_more"], true);
    let cursor = first["lines"]["next_cursor"].as_str().unwrap();
    let rest = json_of(
        app.get(
            &format!("/v1/merchants/m1/batches/{id}?cursor={cursor}"),
            &tok,
        )
        .await,
    )
    .await;
    assert_eq!(rest["lines"]["data"][0]["type"], "void");
    assert_eq!(rest["lines"]["data"][0]["original_stan"], "000003");
    assert_eq!(rest["lines"]["has_more"], false);
}

#[tokio::test]
async fn a_merchant_never_sees_another_merchants_batches() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    app.merchant_with_terminal("m2", "t2").await;
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
    let id = batch["id"].as_str().unwrap();
    let intruder = merchant_token("m2");
    for path in [
        format!("/v1/merchants/m1/batches/{id}"),
        "/v1/merchants/m1/batches".to_owned(),
        "/v1/merchants/m1/balance".to_owned(),
    ] {
        let r = app.get(&path, &intruder).await;
        let body = assert_problem(r, StatusCode::NOT_FOUND, "not_found").await;
        assert!(!body.to_string().contains("18.00"));
    }
    // Through its own path the other merchant's batch id does not exist either.
    let r = app
        .get(&format!("/v1/merchants/m2/batches/{id}"), &intruder)
        .await;
    assert_problem(r, StatusCode::NOT_FOUND, "not_found").await;
    // Operations may read any merchant.
    assert_eq!(
        app.get(&format!("/v1/merchants/m1/batches/{id}"), &ops_token())
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn card_numbers_in_query_strings_and_request_ids_go_nowhere() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let tok = merchant_token("m1");
    for query in [
        "terminal_id=4111111111111111",
        "terminal_id=4111%201111%201111%201111",
        "cursor=4111-1111-1111-1111",
    ] {
        let r = app
            .get(&format!("/v1/merchants/m1/batches?{query}"), &tok)
            .await;
        assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "pan_not_allowed").await;
    }
    let r = app
        .get("/v1/terminals/4111%201111%201111%201111/batches/1", &tok)
        .await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "pan_not_allowed").await;

    // A request id holding a card number is replaced, since request ids are logged.
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "4111111111111111")
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(id, "4111111111111111");
    assert!(uuid::Uuid::parse_str(&id).is_ok());
}

#[tokio::test]
async fn nul_characters_are_refused_before_they_reach_the_database() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let tok = merchant_token("m1");
    // In a query filter.
    let r = app
        .get("/v1/merchants/m1/batches?terminal_id=t%001", &tok)
        .await;
    let body = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(body["detail"].as_str().unwrap().contains("NUL"));
    // In a path id.
    let r = app.get("/v1/merchants/m%001/status", &ops_token()).await;
    assert_problem(r, StatusCode::NOT_FOUND, "not_found").await;
    // In any string of a JSON body, nested ones included.
    let body = serde_json::json!({
        "merchant_id": "m2",
        "name": "Nul\u{0} Coffee",
        "currency": "USD",
        "time_zone": "UTC",
        "cutoff_local_time": "22:00",
        "grace_period_hours": 24,
        "payout_delay_business_days": 1,
        "pricing": {"mdr_basis_points": 100, "fixed_fee": "0.10"},
        "bank_account": "DE89370400440532013000"
    });
    let r = app.post("/v1/ops/merchants", &ops_token(), &body).await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let r = app.get("/v1/merchants/m2/status", &ops_token()).await;
    assert_problem(r, StatusCode::NOT_FOUND, "not_found").await;
}

/// Cents of a statement amount (`"-5.00"` is -500).
fn cents(amount: &str) -> i64 {
    amount.replace('.', "").parse().unwrap()
}

#[tokio::test]
async fn the_statement_lists_held_and_declined_batches_apart_from_money_with_card_details() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let paid = json_of(
        app.close(
            "t1",
            "m1",
            "k1",
            &batch_body(1, Utc::now() - Duration::minutes(5)),
        )
        .await,
    )
    .await;
    // Two closes after their grace deadline: both held, then one declined.
    let old = Utc::now() - Duration::days(6);
    let held = json_of(app.close("t1", "m1", "k2", &batch_body(2, old)).await).await;
    let held_id = held["batch_id"].as_str().unwrap().to_owned();
    let declined = json_of(app.close("t1", "m1", "k3", &batch_body(3, old)).await).await;
    let declined_id = declined["batch_id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/v1/ops/batches/{declined_id}/decline"),
            &ops_token(),
            &json!({"reason": "sales older than the scheme allows"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    let today = Utc::now().date_naive();
    let range = format!(
        "from={}&to={}",
        today - chrono::Days::new(10),
        today + chrono::Days::new(1)
    );
    let csv = app
        .get(
            &format!("/v1/merchants/m1/statement?{range}"),
            &merchant_token("m1"),
        )
        .await
        .text()
        .await
        .unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    // The columns there were before, in their order, then the new ones at the end.
    assert_eq!(
        header,
        [
            "kind",
            "date",
            "occurred_at",
            "reference",
            "detail",
            "batch_id",
            "terminal_id",
            "settlement_id",
            "payout_id",
            "amount",
            "currency",
            "rrn",
            "auth_code",
            "card_brand",
            "masked_pan"
        ]
    );
    // Read by column name, as a reconciling merchant would.
    let rows: Vec<std::collections::HashMap<&str, &str>> = lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), header.len(), "{line}");
            header.iter().copied().zip(fields).collect()
        })
        .collect();
    let of_batch = |id: &str| -> Vec<&std::collections::HashMap<&str, &str>> {
        rows.iter().filter(|r| r["batch_id"] == id).collect()
    };
    let kinds = |id: &str| -> Vec<&str> { of_batch(id).iter().map(|r| r["kind"]).collect() };
    let paid_id = paid["id"].as_str().unwrap();
    assert_eq!(
        kinds(paid_id),
        [
            "transaction",
            "transaction",
            "transaction",
            "transaction",
            "batch",
            "fee"
        ]
    );
    assert_eq!(
        kinds(&held_id),
        [
            "held_transaction",
            "held_transaction",
            "held_transaction",
            "held_transaction",
            "held_batch"
        ],
        "a held batch is listed, with no fee"
    );
    assert_eq!(
        kinds(&declined_id),
        [
            "declined_transaction",
            "declined_transaction",
            "declined_transaction",
            "declined_transaction",
            "declined_batch"
        ]
    );
    let held_batch = of_batch(&held_id)[4];
    assert_eq!(held_batch["detail"], "rejected_outside_grace");
    assert_eq!(held_batch["amount"], "18.00", "the amount is shown");
    assert_eq!(of_batch(&declined_id)[4]["detail"], "declined");

    // Each transaction with its RRN, authorisation code, brand and masked number;
    // absent values and other rows empty.
    let sale = of_batch(paid_id)[0];
    assert_eq!(
        (
            sale["reference"],
            sale["rrn"],
            sale["auth_code"],
            sale["card_brand"],
            sale["masked_pan"]
        ),
        (
            "000001",
            rrn_of(1, 1).as_str(),
            "A1B2C3",
            "visa",
            "411111******1111"
        )
    );
    let refund = of_batch(paid_id)[1];
    assert_eq!(
        (
            refund["amount"],
            refund["auth_code"],
            refund["card_brand"],
            refund["masked_pan"]
        ),
        ("-5.00", "", "mastercard", "550000******0004")
    );
    assert_eq!(of_batch(&held_id)[0]["rrn"], rrn_of(2, 1));
    for batch_row in rows
        .iter()
        .filter(|r| r["kind"].ends_with("batch") || r["kind"] == "fee")
    {
        assert_eq!(
            [
                batch_row["rrn"],
                batch_row["auth_code"],
                batch_row["card_brand"],
                batch_row["masked_pan"]
            ],
            ["", "", "", ""]
        );
    }

    // The money kinds hold only the paid batch: what the merchant gets.
    let sum = |kind: &str| -> i64 {
        rows.iter()
            .filter(|r| r["kind"] == kind)
            .map(|r| cents(r["amount"]))
            .sum()
    };
    assert_eq!(sum("transaction"), 1800);
    assert_eq!(sum("batch"), 1800);
    assert_eq!(sum("held_transaction"), 1800);
    assert_eq!(sum("declined_batch"), 1800);

    let json_rows = json_of(
        app.get(
            &format!("/v1/merchants/m1/statement?{range}&format=json"),
            &merchant_token("m1"),
        )
        .await,
    )
    .await;
    let json_rows = json_rows.as_array().unwrap();
    assert_eq!(json_rows.len(), rows.len());
    let held_sale = json_rows
        .iter()
        .find(|r| r["kind"] == "held_transaction" && r["reference"] == "000001")
        .unwrap();
    assert_eq!(held_sale["rrn"], rrn_of(2, 1));
    assert_eq!(held_sale["auth_code"], "A1B2C3");
    assert_eq!(held_sale["amount"], "23.00");
    let held_batch = json_rows
        .iter()
        .find(|r| r["kind"] == "held_batch")
        .unwrap();
    assert_eq!(held_batch["rrn"], Value::Null);
    assert_eq!(held_batch["masked_pan"], Value::Null);
}
