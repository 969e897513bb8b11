//! Request bodies are read one way only: an object that names a key twice is
//! refused, whatever the route.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

/// The body's text with `extra` put right after the first `{` of the object that
/// `after` opens (`after` being text that ends with that `{`).
fn with_inserted(body: &Value, after: &str, extra: &str) -> String {
    let text = body.to_string();
    let at = text.find(after).expect("anchor in body") + after.len();
    format!("{}{extra}{}", &text[..at], &text[at..])
}

#[tokio::test]
async fn a_body_naming_a_key_twice_anywhere_is_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let body = batch_body(7, Utc::now() - Duration::minutes(5));

    // Two batch numbers: neither reading is chosen.
    let text = with_inserted(&body, "{", r#""batch_number":8,"#);
    let r = app.close_text("t1", "m1", "k-twice", text).await;
    let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "duplicate_key").await;
    assert_eq!(problem["field"], "batch_number");
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("`batch_number`"));

    // In a line, the first of two auth codes holding a card number.
    let text = with_inserted(
        &body,
        r#""transactions":[{"#,
        r#""auth_code":"4111111111111111","#,
    );
    let r = app.close_text("t1", "m1", "k-nested", text).await;
    let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "duplicate_key").await;
    assert_eq!(problem["field"], "transactions[0].auth_code");
    assert!(!problem.to_string().contains("4111111111111111"));

    // Deeper, and on other routes.
    let text = with_inserted(&body, r#""totals":{"#, r#""sale_count":9,"#);
    let r = app.close_text("t1", "m1", "k-totals", text).await;
    let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "duplicate_key").await;
    assert_eq!(problem["field"], "totals.sale_count");
    let r = app
        .client
        .patch(app.url("/v1/ops/merchants/m1"))
        .bearer_auth(ops_token())
        .header("content-type", "application/json")
        .body(r#"{"name": "First", "reason": "rename", "name": "Second"}"#)
        .send()
        .await
        .unwrap();
    let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "duplicate_key").await;
    assert_eq!(problem["field"], "name");

    // A repeated key that is itself a card number is refused as one, never echoed.
    let text = with_inserted(
        &body,
        r#""transactions":[{"#,
        r#""4111 1111 1111 1111":1,"4111 1111 1111 1111":2,"#,
    );
    let r = app.close_text("t1", "m1", "k-pan-key", text).await;
    let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "pan_not_allowed").await;
    assert!(!problem.to_string().contains("4111"));

    for table in [
        "batches",
        "batch_lines",
        "idempotency_keys",
        "close_attempts",
    ] {
        assert_eq!(app.count(table).await, 0, "{table}");
    }
    let name: String = sqlx::query_scalar("SELECT name FROM merchants WHERE merchant_id = 'm1'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(name, "Merchant m1");

    // The same keys in different objects are the ordinary shape of a close.
    let r = app.close("t1", "m1", "k-fine", &body).await;
    assert_eq!(r.status(), StatusCode::CREATED);
}
