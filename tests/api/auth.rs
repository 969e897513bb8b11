//! Token checks and role boundaries.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{Duration, Utc};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

fn now() -> i64 {
    Utc::now().timestamp()
}

fn merchant_claims() -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "merchant:m1", "exp": now() + 600, "role": "merchant", "merchant_id": "m1"})
}

fn sign(claims: &Value, secret: &str) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn every_token_defect_is_401() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let path = "/v1/merchants/m1/batches";
    assert_eq!(
        app.get(path, &sign(&merchant_claims(), SECRET))
            .await
            .status(),
        StatusCode::OK
    );

    let with = |key: &str, value: Value| {
        let mut c = merchant_claims();
        c[key] = value;
        sign(&c, SECRET)
    };
    let without = |key: &str| {
        let mut c = merchant_claims();
        c.as_object_mut().unwrap().remove(key);
        sign(&c, SECRET)
    };
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(merchant_claims().to_string())
    );
    let hs512 = encode(
        &Header::new(Algorithm::HS512),
        &merchant_claims(),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let mut with_kid = Header::new(Algorithm::HS256);
    with_kid.kid = Some("unknown".into());
    let unknown_kid = encode(
        &with_kid,
        &merchant_claims(),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let cases = [
        ("expired", with("exp", json!(now() - 3600))),
        ("not yet valid", with("nbf", json!(now() + 3600))),
        (
            "exp as a string",
            with("exp", json!((now() + 600).to_string())),
        ),
        ("missing exp", without("exp")),
        ("missing aud", without("aud")),
        ("wrong audience", with("aud", json!("someone-else"))),
        ("wrong issuer", with("iss", json!("evil"))),
        (
            "wrong signature",
            sign(
                &merchant_claims(),
                "another-secret-0123456789abcdef0123456789",
            ),
        ),
        ("unsigned", unsigned),
        ("other algorithm", hs512),
        ("unknown kid", unknown_kid),
        ("merchant role without merchant", without("merchant_id")),
        ("garbage", "not.a.token".to_owned()),
    ];
    for (name, token) in cases {
        let r = app.get(path, &token).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{name}");
        assert_problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    let r = app.client.get(app.url(path)).send().await.unwrap();
    assert_problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let r = app
        .client
        .get(app.url(path))
        .header("Authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn roles_reach_only_their_routes() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    app.create_terminal("m1", "t2").await;
    let body = batch_body(1, Utc::now() - Duration::minutes(5));

    // A terminal acts only as itself.
    let r = app
        .client
        .post(app.url("/v1/terminals/t2/batches"))
        .bearer_auth(terminal_token("t1", "m1"))
        .header("Idempotency-Key", "k")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = app
        .get("/v1/terminals/t2/batches/1", &terminal_token("t1", "m1"))
        .await;
    assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    // A token naming a terminal of another merchant is refused.
    app.create_merchant(&MerchantSpec::new("m2")).await;
    let r = app.close("t1", "m2", "k", &body).await;
    assert_problem(r, StatusCode::NOT_FOUND, "not_found").await;

    // Merchants and terminals do not reach operations; merchants do not close batches.
    for tok in [merchant_token("m1"), terminal_token("t1", "m1")] {
        let r = app.get("/v1/ops/exceptions", &tok).await;
        assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
        let r = app.post("/v1/ops/merchants", &tok, &json!({})).await;
        assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let r = app
        .client
        .post(app.url("/v1/terminals/t1/batches"))
        .bearer_auth(merchant_token("m1"))
        .header("Idempotency-Key", "k")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = app
        .get("/v1/merchants/m1/batches", &terminal_token("t1", "m1"))
        .await;
    assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(app.count("batches").await, 0);
}
