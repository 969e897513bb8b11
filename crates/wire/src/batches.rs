//! A merchant's batch queries and review requests.

use chrono::NaiveDate;
use serde::Deserialize;

/// Query of the batch list.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchListQuery {
    pub status: Option<String>,
    pub terminal_id: Option<String>,
    pub business_date_from: Option<NaiveDate>,
    pub business_date_to: Option<NaiveDate>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Query of one batch: the page of its lines.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinePageQuery {
    pub limit: Option<i64>,
    pub cursor: Option<i32>,
}

/// `POST /v1/merchants/{merchant_id}/batches/{batch_id}/review-requests` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequestBody {
    /// What the merchant wants operations to know.
    pub note: String,
}
