//! Webhook requests (an endpoint, a secret rotation, the event and failed-delivery
//! lists), and endpoints, events and their deliveries as the API shows them.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

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

/// An endpoint as the API shows it; the secret only on creation and rotation.
#[derive(Debug, Serialize, Deserialize)]
pub struct EndpointView {
    pub id: Uuid,
    pub url: String,
    /// Empty: every event type.
    pub event_types: Vec<String>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Until when the previous secret still signs, during a rotation.
    pub previous_secret_expires_at: Option<String>,
}

/// The endpoint list.
#[derive(Debug, Serialize, Deserialize)]
pub struct EndpointList {
    pub data: Vec<EndpointView>,
}

/// An event as the API shows it (and as endpoints receive it).
#[derive(Debug, Serialize, Deserialize)]
pub struct EventView {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    pub created_at: String,
    pub merchant_id: String,
    pub data: Value,
}

/// One attempt to deliver, as the API shows it; never the secret.
#[derive(Debug, Serialize, Deserialize)]
pub struct AttemptView {
    pub attempted_at: String,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
}

/// A delivery of an event to one endpoint.
#[derive(Debug, Serialize, Deserialize)]
pub struct DeliveryView {
    pub id: Uuid,
    pub event_id: Uuid,
    pub endpoint_id: Uuid,
    /// `pending`, `succeeded`, or `failed` (given up).
    pub status: String,
    pub attempt_count: i32,
    pub next_attempt_at: Option<String>,
    pub attempts: Vec<AttemptView>,
}

/// An event with its deliveries.
#[derive(Debug, Serialize, Deserialize)]
pub struct EventDetail {
    #[serde(flatten)]
    pub event: EventView,
    pub deliveries: Vec<DeliveryView>,
}
