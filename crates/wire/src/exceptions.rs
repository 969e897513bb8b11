//! Query of the exceptions list, and an exception as the API shows it.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Query of the exceptions list.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// `open` (the default), `resolved`, `declined` or `all`.
    pub state: Option<String>,
    pub kind: Option<String>,
    pub merchant_id: Option<String>,
}

/// One exception as the API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct ExceptionView {
    pub id: Uuid,
    pub kind: String,
    /// `open` until it is resolved or declined.
    pub state: String,
    pub merchant_id: String,
    pub terminal_id: String,
    pub batch_number: i32,
    pub currency: String,
    pub received_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grace_deadline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub net_amount: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub differences: Option<Value>,
    /// For a duplicate attempt: the repeated lines, each with the batch that holds it
    /// (the first `MAX_LISTED_DUPLICATES`; `duplicates_total` counts them all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicates: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicates_total: Option<usize>,
    /// The batch it is about (a held batch, or the batch a review request names).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<Uuid>,
    /// The merchant's note of a review request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Who resolved or declined it (`system` when a later close resolved it).
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    /// Why it was resolved or declined.
    pub resolution: Option<String>,
}
