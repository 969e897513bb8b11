//! The PAN guard at the edge: card numbers however they are written are refused
//! before anything is stored, and identifiers that only look like spaced digits pass.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

/// 4000 7923 6504 6162 (Luhn-valid) in full-width digits.
const FULL_WIDTH: &str = "４０００７９２３６５０４６１６２";
/// 4111 1111 1111 1111 in Arabic-Indic digits.
const ARABIC_INDIC: &str = "٤١١١١١١١١١١١١١١١";
/// 4111 1111 1111 1111 in Devanagari digits, grouped by spaces.
const DEVANAGARI_SPACED: &str = "४१११ ११११ ११११ ११११";

/// Percent-encodes every byte, as a client puts any text in a path or a query.
fn encoded(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

#[tokio::test]
async fn card_numbers_in_the_digits_of_other_scripts_are_refused_and_never_stored() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let ops = ops_token();
    let audit_before = app.count("audit_records").await;

    for pan in [FULL_WIDTH, ARABIC_INDIC, DEVANAGARI_SPACED] {
        // A merchant's name.
        let mut merchant = json!({
            "merchant_id": "m2",
            "name": pan,
            "currency": "USD",
            "time_zone": "America/New_York",
            "cutoff_local_time": "23:00",
            "grace_period_hours": 72,
            "payout_delay_business_days": 1,
            "pricing": {"mdr_basis_points": 150, "fixed_fee": "0.10"},
            "bank_account": "DE89370400440532013000"
        });
        let r = app.post("/v1/ops/merchants", &ops, &merchant).await;
        let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "pan_not_allowed").await;
        assert!(!problem.to_string().contains(pan));
        merchant["name"] = json!("Shop");
        merchant["merchant_id"] = json!(pan);
        let r = app.post("/v1/ops/merchants", &ops, &merchant).await;
        assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "pan_not_allowed").await;

        // The reason of an audited change.
        let r = app
            .client
            .patch(app.url("/v1/ops/merchants/m1"))
            .bearer_auth(&ops)
            .json(&json!({"name": "Renamed", "reason": format!("card {pan} called")}))
            .send()
            .await
            .unwrap();
        assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "pan_not_allowed").await;

        // A holiday's name and reason.
        for body in [
            json!({"name": pan, "reason": "calendar"}),
            json!({"name": "Bank holiday", "reason": pan}),
        ] {
            let r = app
                .client
                .put(app.url("/v1/ops/holidays/2027-03-01"))
                .bearer_auth(&ops)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "pan_not_allowed").await;
        }

        // A webhook URL's path.
        let r = app
            .post(
                "/v1/merchants/m1/webhook-endpoints",
                &merchant_token("m1"),
                &json!({"url": format!("https://hooks.example.com/{pan}/in")}),
            )
            .await;
        assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "pan_not_allowed").await;

        // A close's line.
        let mut batch = batch_body(1, Utc::now() - Duration::minutes(5));
        batch["transactions"][0]["auth_code"] = json!(pan);
        let r = app
            .close("t1", "m1", &format!("k-{}", uuid::Uuid::new_v4()), &batch)
            .await;
        assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "pan_not_allowed").await;

        // A path segment and a query value.
        let r = app
            .get(
                &format!("/v1/merchants/m1/batches/{}", encoded(pan)),
                &merchant_token("m1"),
            )
            .await;
        assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "pan_not_allowed").await;
        let r = app
            .get(
                &format!("/v1/merchants/m1/batches?terminal_id={}", encoded(pan)),
                &merchant_token("m1"),
            )
            .await;
        assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "pan_not_allowed").await;
    }

    assert_eq!(app.count("merchants").await, 1);
    assert_eq!(app.count("holidays").await, 0);
    assert_eq!(app.count("webhook_endpoints").await, 0);
    assert_eq!(app.count("batches").await, 0);
    assert_eq!(app.count("idempotency_keys").await, 0);
    assert_eq!(app.count("audit_records").await, audit_before);
    let name: String = sqlx::query_scalar("SELECT name FROM merchants WHERE merchant_id = 'm1'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(name, "Merchant m1");

    // Digits of other scripts that make no card number are text like any other.
    let r = app
        .client
        .put(app.url("/v1/ops/holidays/2027-03-01"))
        .bearer_auth(&ops)
        .json(&json!({"name": "يوم ٤ الوطني", "reason": "calendar ２０２７"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// `body` completed with its Luhn check digit.
fn with_check_digit(body: &str) -> String {
    let digits: Vec<u32> = body.chars().filter_map(|c| c.to_digit(10)).collect();
    let check = (0..10)
        .find(|check| {
            let sum: u32 = digits
                .iter()
                .chain(std::iter::once(check))
                .rev()
                .enumerate()
                .map(|(i, &d)| {
                    if i % 2 == 1 {
                        (d * 2) / 10 + (d * 2) % 10
                    } else {
                        d
                    }
                })
                .sum();
            sum.is_multiple_of(10)
        })
        .unwrap();
    format!("{body}{check}")
}

#[tokio::test]
async fn idempotency_keys_whose_digits_only_join_across_other_groupings_are_accepted() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let body = batch_body(1, Utc::now() - Duration::minutes(5));
    // `<terminal>-<counter>-<hex>`: its 14 digits 3166 85 1234567x pass Luhn.
    let digits = with_check_digit("3166851234567");
    let key = format!("{}-{}-{}abcdef", &digits[..4], &digits[4..6], &digits[6..]);
    let r = app.close("t1", "m1", &key, &body).await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{key}: {}",
        r.text().await.unwrap()
    );
    // Its replay is found under the same key.
    let r = app.close("t1", "m1", &key, &body).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["idempotent-replayed"], "true");

    // Card numbers written as card numbers still are refused, in keys and bodies.
    let sixteen = with_check_digit("411111111111111");
    let grouped = |sep: &str| {
        [
            &sixteen[..4],
            &sixteen[4..8],
            &sixteen[8..12],
            &sixteen[12..],
        ]
        .join(sep)
    };
    for key in [
        sixteen.clone(),
        grouped("-"),
        format!("1-{}", grouped("-")),
        format!("3166-85-{sixteen}"),
        "3782-822463-10005".to_owned(),
    ] {
        let r = app
            .close("t1", "m1", &key, &batch_body(2, Utc::now()))
            .await;
        assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "pan_not_allowed").await;
    }
    let mut with_pan = batch_body(2, Utc::now() - Duration::minutes(5));
    with_pan["transactions"][0]["auth_code"] = json!(grouped(" "));
    let r = app.close("t1", "m1", "k-pan", &with_pan).await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "pan_not_allowed").await;
    assert_eq!(app.count("batches").await, 1);
}
