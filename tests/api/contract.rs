//! `openapi.yaml` is the contract: every route is in it, and it names no route the
//! service lacks.

use std::collections::BTreeSet;

use reqwest::StatusCode;

use settlement_api::app::{routes, OPENAPI_YAML};

use crate::helpers::*;

#[test]
fn every_route_is_documented_and_every_documented_route_exists() {
    let served: BTreeSet<(String, String)> = routes()
        .into_iter()
        .map(|(method, path, _)| (method.to_string(), path.to_owned()))
        .collect();
    let documented = documented_operations(OPENAPI_YAML);
    assert!(!documented.is_empty(), "openapi.yaml documents operations");
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let phantom: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from openapi.yaml: {undocumented:?}"
    );
    assert!(
        phantom.is_empty(),
        "openapi.yaml documents routes the service lacks: {phantom:?}"
    );
}

#[test]
fn every_error_code_of_the_service_is_in_the_contract() {
    for code in [
        "unauthorized",
        "forbidden",
        "not_found",
        "malformed_json",
        "duplicate_key",
        "unsupported_media_type",
        "payload_too_large",
        "validation_failed",
        "pan_not_allowed",
        "idempotency_key_required",
        "idempotency_key_reused",
        "request_in_progress",
        "batch_already_closed",
        "merchant_exists",
        "terminal_exists",
        "currency_not_accepted",
        "service_unavailable",
        "transaction_conflict",
        "rate_limited",
        "not_ready",
        "request_timeout",
        "internal_error",
        "method_not_allowed",
        "out_of_balance",
        "batch_outside_grace_window",
    ] {
        assert!(
            OPENAPI_YAML.contains(code),
            "openapi.yaml lacks the error code {code}"
        );
    }
}

#[tokio::test]
async fn the_contract_is_served_at_openapi_yaml() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/openapi.yaml"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/yaml");
    assert_eq!(r.text().await.unwrap(), OPENAPI_YAML);
}
