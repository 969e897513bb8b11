//! The authorization matrix, generated from `openapi.yaml` so that no route can be
//! forgotten: every documented operation is called with no token, with another
//! merchant's and another terminal's tokens, and (on operations routes) with the
//! owner's own merchant and terminal tokens; the authorization host's token is
//! tried on every other route, and every other role on the host's routes. None may
//! succeed, none may show the owner's data, and none may change anything.

use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::json;

use settlement_api::app::OPENAPI_YAML;

use crate::helpers::*;

/// Tables whose row counts must not move when a request is refused.
const WATCHED_TABLES: [&str; 11] = [
    "merchants",
    "terminals",
    "batches",
    "journal_entries",
    "settlement_cycles",
    "payouts",
    "holidays",
    "webhook_endpoints",
    "events",
    "audit_records",
    "host_authorizations",
];

async fn counts(app: &TestApp) -> Vec<i64> {
    let mut out = Vec::new();
    for table in WATCHED_TABLES {
        out.push(app.count(table).await);
    }
    out
}

#[tokio::test]
async fn no_route_lets_a_caller_reach_another_tenants_data() {
    let app = spawn_app().await;
    // The owner: merchant mA with terminal tA and a booked batch (and its event).
    app.merchant_with_terminal("mA", "tA").await;
    let batch = json_of(
        app.close(
            "tA",
            "mA",
            "k",
            &batch_body(1, Utc::now() - Duration::minutes(5)),
        )
        .await,
    )
    .await;
    let batch_id = batch["id"].as_str().unwrap().to_owned();
    let event_id: String =
        sqlx::query_scalar("SELECT id::text FROM events WHERE merchant_id = 'mA' LIMIT 1")
            .fetch_one(&app.db)
            .await
            .unwrap();
    // The intruders: merchant mB with terminal tB.
    app.merchant_with_terminal("mB", "tB").await;
    let stranger_id = uuid::Uuid::now_v7().to_string();

    let operations = documented_operations(OPENAPI_YAML);
    assert!(operations.len() > 30, "the contract lists the routes");
    let before = counts(&app).await;
    let mut checked = 0;
    for (method, template) in &operations {
        if matches!(template.as_str(), "/healthz" | "/readyz" | "/openapi.yaml") {
            continue;
        }
        // The web pages take no bearer token: a session cookie or nothing (web.rs
        // tests their sessions). Whatever token is sent, a page answers its sign-in
        // form, a way to it, or a refusal, and never another merchant's data.
        if template.starts_with("/merchant/") || template.starts_with("/ops/") {
            let path = template
                .replace("{batch_id}", &batch_id)
                .replace("{terminal_id}", "tA")
                .replace("{endpoint_id}", &stranger_id);
            for token in [
                None,
                Some(merchant_token("mB")),
                Some(merchant_token("mA")),
                Some(ops_token()),
            ] {
                let method = Method::from_bytes(method.as_bytes()).unwrap();
                // Redirects are read, not followed.
                let mut request = crate::web::page_client().request(method.clone(), app.url(&path));
                if let Some(t) = &token {
                    request = request.bearer_auth(t);
                }
                let r = request.send().await.unwrap();
                let status = r.status();
                let body = r.text().await.unwrap();
                let sign_in_page = template.ends_with("/sign-in") && method == Method::GET;
                assert!(
                    sign_in_page
                        || matches!(
                            status,
                            StatusCode::SEE_OTHER
                                | StatusCode::BAD_REQUEST
                                | StatusCode::FORBIDDEN
                                | StatusCode::UNPROCESSABLE_ENTITY
                        ),
                    "{method} {template}: {status} {body}"
                );
                for secret in [batch_id.as_str(), "18.00", "DE89370400440532013000"] {
                    assert!(!body.contains(secret), "{method} {template} shows {secret}");
                }
                checked += 1;
            }
            continue;
        }
        let path = template
            .replace("{merchant_id}", "mA")
            .replace("{terminal_id}", "tA")
            .replace("{batch_id}", &batch_id)
            .replace("{batch_number}", "1")
            .replace("{event_id}", &event_id)
            .replace("{settlement_id}", &stranger_id)
            .replace("{payout_id}", &stranger_id)
            .replace("{endpoint_id}", &stranger_id)
            .replace("{date}", "2030-01-02");
        assert!(
            !path.contains('{'),
            "a path parameter of {template} is not substituted"
        );
        let mut callers: Vec<(&str, Option<String>)> = vec![
            ("no token", None),
            ("another merchant", Some(merchant_token("mB"))),
            ("another terminal", Some(terminal_token("tB", "mB"))),
        ];
        if template.starts_with("/v1/ops/") {
            callers.push(("the merchant itself", Some(merchant_token("mA"))));
            callers.push(("its own terminal", Some(terminal_token("tA", "mA"))));
        }
        if template.starts_with("/v1/terminals/") {
            callers.push(("its merchant", Some(merchant_token("mA"))));
            callers.push(("operations", Some(ops_token())));
        }
        // A terminal reads its own unsettled transactions.
        if template.starts_with("/v1/merchants/") && !template.ends_with("/unsettled") {
            callers.push(("its own terminal", Some(terminal_token("tA", "mA"))));
        }
        if template.starts_with("/v1/host/") {
            callers.push(("the merchant itself", Some(merchant_token("mA"))));
            callers.push(("its own terminal", Some(terminal_token("tA", "mA"))));
            callers.push(("operations", Some(ops_token())));
        } else {
            callers.push(("the authorization host", Some(host_token())));
        }
        for (who, token) in callers {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let mut request = app.client.request(method.clone(), app.url(&path));
            if let Some(t) = &token {
                request = request.bearer_auth(t);
            }
            if matches!(method, Method::POST | Method::PUT | Method::PATCH) {
                // A body that would pass validation nowhere: refusal must come first.
                request = request.header("Idempotency-Key", "matrix").json(&json!({}));
            }
            let r = request.send().await.unwrap();
            let status = r.status();
            let body = r.text().await.unwrap();
            assert!(
                matches!(
                    status,
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
                ),
                "{method} {template} as {who}: {status} {body}"
            );
            if token.is_none() {
                assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {template} without a token"
                );
            }
            for secret in [batch_id.as_str(), "18.00", "DE89370400440532013000"] {
                assert!(
                    !body.contains(secret),
                    "{method} {template} as {who} shows {secret}: {body}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked} calls checked");
    assert_eq!(
        counts(&app).await,
        before,
        "refused requests changed nothing"
    );
}
