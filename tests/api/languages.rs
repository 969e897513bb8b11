//! What merchants read, in their language: `Accept-Language` (with q-values), else the
//! merchant's own `locale`, else English; `Content-Language` on every answer; plain
//! sentences in local time with the money's arrival date; problem bodies translated,
//! codes never.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

async fn get_in(app: &TestApp, path: &str, token: &str, lang: Option<&str>) -> (String, Value) {
    let mut req = app.client.get(app.url(path)).bearer_auth(token);
    if let Some(l) = lang {
        req = req.header("Accept-Language", l);
    }
    let r = req.send().await.expect("request");
    let language = r
        .headers()
        .get("content-language")
        .expect("every answer names its language")
        .to_str()
        .unwrap()
        .to_owned();
    (language, r.json().await.expect("json"))
}

fn has_chinese(text: &str) -> bool {
    text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

#[tokio::test]
async fn a_late_batch_is_explained_in_the_language_asked_for_with_its_arrival_date() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    // Captured two days ago: past that day's cutoff, inside the 72 h grace.
    let r = app
        .close(
            "t1",
            "m1",
            "k1",
            &batch_body(1, Utc::now() - Duration::days(2)),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let closed = json_of(r).await;
    assert_eq!(closed["status"], "accepted_late");
    let id = closed["id"].as_str().unwrap().to_owned();
    let tok = merchant_token("m1");
    let path = format!("/v1/merchants/m1/batches/{id}");

    let (language, en) = get_in(&app, &path, &tok, None).await;
    assert_eq!(language, "en");
    let batch = &en;
    let reason = batch["status_reason"].as_str().unwrap();
    let arrival = batch["expected_arrival_date"]
        .as_str()
        .expect("an arrival date");
    assert!(arrival >= batch["cycle_date"].as_str().unwrap());
    // Hours and minutes, local time with its offset, the money and its arrival date.
    assert!(reason.contains("hours"), "{reason}");
    assert!(!reason.contains(" s after"), "{reason}");
    assert!(reason.contains("(UTC-0"), "New York's offset: {reason}");
    assert!(reason.contains("USD "), "{reason}");
    let arrival_date: chrono::NaiveDate = arrival.parse().unwrap();
    let written = arrival_date.format("%a %-d %b %Y").to_string();
    assert!(reason.contains(&written), "{reason} names {written}");
    assert!(
        reason.contains("Close your terminals"),
        "the next step: {reason}"
    );

    let (language, zh) = get_in(&app, &path, &tok, Some("fr-FR, zh-CN;q=0.8, en;q=0.5")).await;
    assert_eq!(language, "zh-CN");
    let reason_zh = zh["status_reason"].as_str().unwrap();
    assert!(has_chinese(reason_zh), "{reason_zh}");
    assert!(reason_zh.contains("小时"), "{reason_zh}");
    // Codes and machine fields are the same in every language.
    assert_eq!(zh["reason_code"], en["reason_code"]);
    assert_eq!(zh["status"], "accepted_late");
    assert_eq!(zh["expected_arrival_date"], arrival);
    assert_eq!(zh["net_amount"], en["net_amount"]);

    // English wins when it has the higher q-value.
    let (language, _) = get_in(&app, &path, &tok, Some("zh;q=0.3, en-GB;q=0.9")).await;
    assert_eq!(language, "en");
}

#[tokio::test]
async fn the_merchants_own_locale_applies_when_the_request_names_no_language() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let r = app
        .client
        .patch(app.url("/v1/ops/merchants/m1"))
        .bearer_auth(ops_token())
        .json(&json!({"locale": "zh-CN", "reason": "the merchant reads Chinese"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json_of(r).await["locale"], "zh-CN");
    let r = app
        .client
        .patch(app.url("/v1/ops/merchants/m1"))
        .bearer_auth(ops_token())
        .json(&json!({"locale": "fr", "reason": "no"}))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(problem["field"], "locale");

    let r = app
        .close(
            "t1",
            "m1",
            "k1",
            &batch_body(1, Utc::now() - Duration::minutes(5)),
        )
        .await;
    assert_eq!(
        r.headers()["content-language"],
        "zh-CN",
        "a terminal's close answers in the merchant's language"
    );
    let closed = json_of(r).await;
    assert!(has_chinese(closed["status_reason"].as_str().unwrap()));

    // A refused close of a terminal that names no language is explained in its
    // merchant's.
    let r = app.close_text("t1", "m1", "k-bad", "{}".to_owned()).await;
    assert_eq!(r.headers()["content-language"], "zh-CN");
    let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(
        has_chinese(problem["detail"].as_str().unwrap()),
        "{problem}"
    );

    let tok = merchant_token("m1");
    let (language, status) = get_in(&app, "/v1/merchants/m1/status", &tok, None).await;
    assert_eq!(language, "zh-CN");
    let cycle = &status["pending"][0]["cycles"][0];
    assert!(cycle["expected_arrival_date"].is_string());
    // A request that names a language wins over the profile.
    let (language, batches) = get_in(&app, "/v1/merchants/m1/batches", &tok, Some("en-US")).await;
    assert_eq!(language, "en");
    let reason = batches["data"][0]["status_reason"].as_str().unwrap();
    assert!(reason.starts_with("Closed before its cutoff, "), "{reason}");
    assert!(!has_chinese(reason));
    // A language the service does not speak falls back to the merchant's.
    let (language, _) = get_in(&app, "/v1/merchants/m1/batches", &tok, Some("de-DE")).await;
    assert_eq!(language, "zh-CN");
}

#[tokio::test]
async fn problems_are_translated_but_their_codes_are_not() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/v1/merchants/m1/status"))
        .header("Accept-Language", "zh-CN")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-language"], "zh-CN");
    let problem = assert_problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert!(has_chinese(problem["title"].as_str().unwrap()), "{problem}");
    assert!(
        has_chinese(problem["detail"].as_str().unwrap()),
        "{problem}"
    );
    assert_eq!(problem["type"], "urn:settlement:problem:unauthorized");

    let r = app
        .client
        .get(app.url("/v1/merchants/m1/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-language"], "en");
    let problem = assert_problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_eq!(problem["title"], "Not signed in");

    // A validation problem keeps its field and names the fault.
    app.merchant_with_terminal("m1", "t1").await;
    let r = app
        .client
        .get(app.url("/v1/merchants/m1/batches?limit=0"))
        .bearer_auth(merchant_token("m1"))
        .header("Accept-Language", "zh")
        .send()
        .await
        .unwrap();
    let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(problem["field"], "limit");
    let detail = problem["detail"].as_str().unwrap();
    assert!(has_chinese(detail) && detail.contains("limit"), "{detail}");
}
