//! Webhook requests: an endpoint, a secret rotation, the event and failed-delivery
//! lists.

use serde::Deserialize;

/// `POST /v1/merchants/{merchant_id}/webhook-endpoints` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    pub url: String,
    /// Empty: every event type.
    #[serde(default)]
    pub event_types: Vec<String>,
}

/// `POST .../webhook-endpoints/{endpoint_id}/rotate-secret` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// Hours the old secret keeps signing beside the new one.
    #[serde(default)]
    pub overlap_hours: Option<u32>,
}

/// Query of the event list.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Query of the failed deliveries.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailedQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}
