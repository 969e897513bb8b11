//! Merchants' bank accounts: a debit card may be the settlement account; it is
//! sealed at rest, masked in every answer, and keys rotate.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// A UnionPay debit card, the usual settlement account of a small merchant in China.
const UNIONPAY: &str = "6222020200112233446";

fn noodle_bar(id: &str, account: &str) -> Value {
    json!({
        "merchant_id": id, "name": "Noodle Bar", "currency": "USD",
        "time_zone": "Asia/Shanghai", "cutoff_local_time": "23:00",
        "pricing": {"mdr_basis_points": 60, "fixed_fee": "0.00"},
        "bank_account": account,
    })
}

/// A merchant's bank account columns as stored.
type StoredAccount = (
    Option<String>,
    Option<Vec<u8>>,
    Option<String>,
    Option<String>,
);

async fn stored_bytes(app: &TestApp) -> String {
    let rows: Vec<StoredAccount> =
        sqlx::query_as(
            "SELECT bank_account, bank_account_sealed, bank_account_key_id, bank_account_last4 FROM merchants",
        )
        .fetch_all(&app.db)
        .await
        .unwrap();
    format!("{rows:?}")
}

#[tokio::test]
async fn a_debit_card_settlement_account_is_accepted_sealed_and_shown_masked() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/v1/ops/merchants",
            &ops_token(),
            &noodle_bar("noodles", "6222 0202 0011 2233 446"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let shown = json_of(r).await;
    assert_eq!(shown["bank_account"], "************3446");

    // Not in plain in the database, nor in the audit trail.
    let stored = stored_bytes(&app).await;
    assert!(!stored.contains(UNIONPAY), "{stored}");
    assert!(stored.contains("test-k1"), "{stored}");
    let sealed: Vec<u8> = sqlx::query_scalar(
        "SELECT bank_account_sealed FROM merchants WHERE merchant_id = 'noodles'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(!sealed
        .windows(UNIONPAY.len())
        .any(|w| w == UNIONPAY.as_bytes()));
    let audit = json_of(app.get("/v1/ops/audit", &ops_token()).await).await;
    assert!(!audit.to_string().contains(UNIONPAY), "{audit}");

    // Everywhere else a card number stays refused, also in the same request.
    let mut body = noodle_bar("noodles-2", UNIONPAY);
    body["name"] = json!(format!("Shop {UNIONPAY}"));
    let r = app.post("/v1/ops/merchants", &ops_token(), &body).await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "pan_not_allowed").await;
    // A card number in a field named bank_account deeper in the body is not the
    // settlement account.
    let r = app
        .post(
            "/v1/ops/merchants",
            &ops_token(),
            &json!({"merchant_id": "x", "pricing": {"bank_account": UNIONPAY}}),
        )
        .await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "pan_not_allowed").await;
    let r = app
        .post(
            "/v1/ops/merchants",
            &ops_token(),
            &noodle_bar("noodles-3", "not an account!"),
        )
        .await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
}

#[tokio::test]
async fn keys_rotate_and_plain_accounts_from_before_are_sealed_at_start() {
    let app = spawn_app().await;
    app.post(
        "/v1/ops/merchants",
        &ops_token(),
        &noodle_bar("old-shop", UNIONPAY),
    )
    .await;
    // An account stored in plain before accounts were sealed.
    app.post(
        "/v1/ops/merchants",
        &ops_token(),
        &noodle_bar("plain-shop", "DE89370400440532013000"),
    )
    .await;
    sqlx::query(
        "UPDATE merchants SET bank_account = 'DE89370400440532013000', bank_account_key_id = NULL, \
             bank_account_sealed = NULL, bank_account_last4 = NULL WHERE merchant_id = 'plain-shop'",
    )
    .execute(&app.db)
    .await
    .unwrap();

    // A replica with a new current key, the old one kept to open older values.
    let rotated = format!("k2:{},{BANK_ACCOUNT_KEYS}", "A".repeat(42) + "E=");
    let replica = spawn_replica(&app, &[("BANK_ACCOUNT_KEYS", &rotated)]).await;
    let sealed = async {
        for _ in 0..50 {
            let plain: i64 =
                sqlx::query_scalar("SELECT count(*) FROM merchants WHERE bank_account IS NOT NULL")
                    .fetch_one(&app.db)
                    .await
                    .unwrap();
            if plain == 0 {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        false
    };
    assert!(sealed.await, "the plain account was sealed at start-up");
    let key_ids: Vec<(String, String)> = sqlx::query_as(
        "SELECT merchant_id, bank_account_key_id FROM merchants ORDER BY merchant_id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        key_ids,
        [
            ("old-shop".to_owned(), "test-k1".to_owned()),
            ("plain-shop".to_owned(), "k2".to_owned())
        ]
    );
    // The old value opens with the key it names: sending the same account again is
    // no change, a new one is sealed with the current key.
    let r = replica
        .client
        .patch(replica.url("/v1/ops/merchants/old-shop"))
        .bearer_auth(ops_token())
        .json(&json!({"bank_account": "6222-0202-0011-2233-446", "reason": "confirmed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = replica
        .client
        .patch(replica.url("/v1/ops/merchants/old-shop"))
        .bearer_auth(ops_token())
        .json(&json!({"bank_account": "6222020200119988776", "reason": "new card"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["bank_account"], "************8776");
    let key: String = sqlx::query_scalar(
        "SELECT bank_account_key_id FROM merchants WHERE merchant_id = 'old-shop'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(key, "k2");
    let stored = stored_bytes(&app).await;
    assert!(!stored.contains("6222020200119988776"), "{stored}");
    assert!(!stored.contains("DE89370400440532013000"), "{stored}");
}
