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
        &EncodingKey::from_secret(secret.as_bytes()).unwrap(),
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
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
    )
    .unwrap();
    let mut with_kid = Header::new(Algorithm::HS256);
    with_kid.kid = Some("unknown".into());
    let unknown_kid = encode(
        &with_kid,
        &merchant_claims(),
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
    )
    .unwrap();
    let cases = [
        ("expired", with("exp", json!(now() - 3600))),
        ("not yet valid", with("nbf", json!(now() + 3600))),
        (
            "exp as a string",
            with("exp", json!((now() + 600).to_string())),
        ),
        // A claim of the wrong JSON type is never read as absent (CVE-2026-25537).
        (
            "exp as a far-future string",
            with("exp", json!("9999999999")),
        ),
        ("exp as a float string", with("exp", json!("9999999999.0"))),
        (
            "exp as an object",
            with("exp", json!({"value": now() + 600})),
        ),
        (
            "nbf in the future as a string",
            with("nbf", json!((now() + 3600).to_string())),
        ),
        ("nbf as a word", with("nbf", json!("now"))),
        ("iss as an array", with("iss", json!([ISSUER]))),
        ("sub as a number", with("sub", json!(42))),
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
        let problem = assert_problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
        // Only a genuine token past its exp is told it has expired.
        let detail = problem["detail"].as_str().unwrap();
        assert_eq!(
            detail.contains("expired"),
            name == "expired",
            "{name}: {detail}"
        );
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

const ED25519_PRIVATE: &str = include_str!("../fixtures/test-ed25519-private.pem");
const ED25519_PUBLIC: &str = include_str!("../fixtures/test-ed25519-public.pem");

#[tokio::test]
async fn production_keys_are_chosen_by_kid_and_pin_their_algorithm() {
    let keys = json!({"keys": [{"kid": "ed-1", "alg": "EdDSA", "pem": ED25519_PUBLIC}]});
    let path = std::env::temp_dir().join(format!("settlement-keys-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&path, keys.to_string()).unwrap();
    let app = spawn_app_with(&[("AUTH_PUBLIC_KEYS_FILE", path.to_str().unwrap())]).await;
    app.merchant_with_terminal("m1", "t1").await;
    let route = "/v1/merchants/m1/batches";

    let header = |alg: Algorithm, kid: &str| {
        let mut h = Header::new(alg);
        h.kid = Some(kid.into());
        h
    };
    let ed_key = EncodingKey::from_ed_pem(ED25519_PRIVATE.as_bytes()).unwrap();
    let good = encode(
        &header(Algorithm::EdDSA, "ed-1"),
        &merchant_claims(),
        &ed_key,
    )
    .unwrap();
    assert_eq!(app.get(route, &good).await.status(), StatusCode::OK);

    // Key confusion: HS256 "signed" with the public key under the EdDSA kid.
    let confused = encode(
        &header(Algorithm::HS256, "ed-1"),
        &merchant_claims(),
        &EncodingKey::from_secret(ED25519_PUBLIC.as_bytes()).unwrap(),
    )
    .unwrap();
    let wrong_kid = encode(
        &header(Algorithm::EdDSA, "ed-2"),
        &merchant_claims(),
        &ed_key,
    )
    .unwrap();
    let mut expired = merchant_claims();
    expired["exp"] = json!(now() - 3600);
    let expired = encode(&header(Algorithm::EdDSA, "ed-1"), &expired, &ed_key).unwrap();
    for (name, token) in [
        ("key confusion", confused),
        ("unknown kid", wrong_kid),
        ("expired", expired),
    ] {
        let r = app.get(route, &token).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{name}");
    }
    std::fs::remove_file(path).unwrap();
}

const RSA_PRIVATE: &str = include_str!("../fixtures/test-rsa-private.pem");
const RSA_PUBLIC: &str = include_str!("../fixtures/test-rsa-public.pem");

#[tokio::test]
async fn an_hs256_token_signed_with_the_rs256_public_key_is_refused() {
    let keys = json!({"keys": [{"kid": "rsa-1", "alg": "RS256", "pem": RSA_PUBLIC}]});
    let path = std::env::temp_dir().join(format!("settlement-keys-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&path, keys.to_string()).unwrap();
    let app = spawn_app_with(&[("AUTH_PUBLIC_KEYS_FILE", path.to_str().unwrap())]).await;
    app.merchant_with_terminal("m1", "t1").await;
    let route = "/v1/merchants/m1/batches";
    let header = |alg: Algorithm| {
        let mut h = Header::new(alg);
        h.kid = Some("rsa-1".into());
        h
    };
    let good = encode(
        &header(Algorithm::RS256),
        &merchant_claims(),
        &EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(app.get(route, &good).await.status(), StatusCode::OK);
    // The classic confusion: the public key, which anyone may hold, used as an HMAC secret.
    let confused = encode(
        &header(Algorithm::HS256),
        &merchant_claims(),
        &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_problem(
        app.get(route, &confused).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    std::fs::remove_file(path).unwrap();
}

#[tokio::test]
async fn a_signed_token_whose_claims_hold_a_control_character_is_401() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let signed = |principal: Value, key: &str, value: &str| {
        let mut claims = principal;
        claims[key] = json!(value);
        sign(&claims, SECRET)
    };
    let ops = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "ops:alice", "exp": now() + 600, "role": "ops"});
    let terminal = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "terminal:t1", "exp": now() + 600,
                          "role": "terminal", "terminal_id": "t1", "merchant_id": "m1"});
    for bad in [
        "ops:\0alice",
        "ops:alice\n",
        "ops:\u{1b}[31malice",
        "ops:\u{7f}",
        "ops:\u{85}",
    ] {
        // An ops change is audited under the token's subject.
        let r = app
            .client
            .put(app.url("/v1/ops/holidays/2027-03-01"))
            .bearer_auth(signed(ops.clone(), "sub", bad))
            .json(&json!({"name": "Bank holiday", "reason": "calendar"}))
            .send()
            .await
            .unwrap();
        assert_problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    // A terminal's close reads its merchant from the token.
    let body = batch_body(1, Utc::now() - Duration::minutes(5));
    for (key, value) in [("merchant_id", "m1\0"), ("sub", "terminal:\0t1")] {
        let r = app
            .client
            .post(app.url("/v1/terminals/t1/batches"))
            .bearer_auth(signed(terminal.clone(), key, value))
            .header("Idempotency-Key", "k-control")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    let r = app
        .get(
            "/v1/merchants/m1/batches",
            &signed(merchant_claims(), "merchant_id", "m1\0"),
        )
        .await;
    assert_problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_eq!(app.count("holidays").await, 0);
    assert_eq!(app.count("batches").await, 0);
}

#[tokio::test]
async fn an_audience_array_naming_the_service_and_a_bearer_scheme_in_any_case_are_accepted() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let path = "/v1/merchants/m1/batches";
    let with_aud = |aud: Value| {
        let mut claims = merchant_claims();
        claims["aud"] = aud;
        sign(&claims, SECRET)
    };
    for aud in [
        json!([AUDIENCE]),
        json!(["reports", AUDIENCE]),
        json!([AUDIENCE, "reports"]),
    ] {
        let r = app.get(path, &with_aud(aud.clone())).await;
        assert_eq!(r.status(), StatusCode::OK, "{aud}");
    }
    // Every other audience check stays strict.
    for aud in [
        json!(["reports"]),
        json!([]),
        json!([format!("{AUDIENCE} ")]),
        json!(AUDIENCE.to_uppercase()),
        json!([[AUDIENCE]]),
        json!({"aud": AUDIENCE}),
        json!(null),
        json!(5),
    ] {
        let r = app.get(path, &with_aud(aud.clone())).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{aud}");
        assert_problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }

    let token = sign(&merchant_claims(), SECRET);
    let with_header = |value: String| {
        app.client
            .get(app.url(path))
            .header("Authorization", value)
            .send()
    };
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let r = with_header(format!("{scheme} {token}")).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{scheme}");
    }
    for value in [
        format!("Bearer{token}"),
        format!("Token {token}"),
        format!("Bearer:{token}"),
        token.clone(),
        "bearer ".to_owned(),
    ] {
        let r = with_header(value.clone()).await.unwrap();
        assert_problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
}
