//! A merchant's batch queries and review requests, and batches, their lines and
//! review requests as the API shows them.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use settlement_domain::exception::ExceptionState;
use uuid::Uuid;

use crate::page::Page;

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

/// Control totals as the API shows them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TotalsView {
    pub sale_count: i64,
    pub sale_amount: String,
    pub refund_count: i64,
    pub refund_amount: String,
    pub void_count: i64,
    pub void_amount: String,
}

/// A batch as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchView {
    pub id: Uuid,
    pub terminal_id: String,
    pub merchant_id: String,
    /// The terminal's batch number; null for a batch the host closed (`origin: host`).
    pub batch_number: Option<i32>,
    /// `terminal`, or `host` for a batch the host closed on the terminal's behalf.
    pub origin: String,
    pub status: String,
    pub reason_code: String,
    pub status_reason: String,
    pub business_date: NaiveDate,
    pub cycle_date: Option<NaiveDate>,
    /// When the batch's money is expected in the merchant's bank account, by the one
    /// payout-arrival rule; null for a batch that is not paid (held or declined).
    /// Absent from answers stored before it existed.
    #[serde(default)]
    pub expected_arrival_date: Option<NaiveDate>,
    pub received_at: String,
    pub cutoff_at: String,
    pub late_by_seconds: i64,
    pub grace_deadline: String,
    pub currency: String,
    pub totals: TotalsView,
    pub net_amount: String,
    pub fee: String,
    pub settlement_id: Option<Uuid>,
    /// Every line of the batch, including those settled already by a host batch.
    pub line_count: i32,
    /// Lines the host did not authorize as presented (merchant setting `report`):
    /// `{line_no, stan, rrn, reasons}`; empty when every line matched.
    pub unmatched_lines: Vec<serde_json::Value>,
    /// Lines a host batch had settled already: `{line_no, stan, rrn, batch_id}`. They
    /// count in the reconciliation but not in this batch's totals, and are not paid
    /// again.
    pub already_settled_lines: Vec<serde_json::Value>,
}

/// A transaction line as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LineView {
    pub line_no: i32,
    pub stan: String,
    pub rrn: String,
    #[serde(rename = "type")]
    pub line_type: String,
    pub amount: String,
    pub original_stan: Option<String>,
    pub captured_at: String,
    pub card_brand: Option<String>,
    pub masked_pan: Option<String>,
    pub auth_code: Option<String>,
}

/// A batch with a page of its lines.
#[derive(Debug, Serialize, Deserialize)]
pub struct BatchDetail {
    #[serde(flatten)]
    pub batch: BatchView,
    pub lines: Page<LineView>,
}

/// A review request as the API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReviewRequestView {
    pub id: Uuid,
    pub merchant_id: String,
    pub batch_id: Uuid,
    pub note: String,
    /// `open` until operations accept (`resolved`) or decline (`declined`) the batch.
    pub state: ExceptionState,
    pub created_at: String,
    pub decided_at: Option<String>,
    pub resolution: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_answer_parses_and_serialises_back_to_the_same_bytes() {
        let json = r#"{"id":"0190a5a0-0000-7000-8000-000000000001","terminal_id":"T1","merchant_id":"M1","batch_number":7,"origin":"terminal","status":"accepted","reason_code":"closed_by_cutoff","status_reason":"Closed by the cutoff.","business_date":"2026-11-02","cycle_date":"2026-11-02","expected_arrival_date":"2026-11-03","received_at":"2026-11-02T20:00:00Z","cutoff_at":"2026-11-02T22:00:00Z","late_by_seconds":0,"grace_deadline":"2026-11-03T22:00:00Z","currency":"USD","totals":{"sale_count":1,"sale_amount":"10.00","refund_count":0,"refund_amount":"0.00","void_count":0,"void_amount":"0.00"},"net_amount":"10.00","fee":"0.30","settlement_id":null,"line_count":1,"unmatched_lines":[],"already_settled_lines":[],"lines":{"data":[{"line_no":1,"stan":"000001","rrn":"123456789012","type":"sale","amount":"10.00","original_stan":null,"captured_at":"2026-11-02T19:00:00Z","card_brand":"visa","masked_pan":"411111******1111","auth_code":null}],"has_more":false,"next_cursor":null}}"#;
        let detail: BatchDetail = serde_json::from_str(json).unwrap();
        assert_eq!(detail.lines.data[0].line_type, "sale");
        assert_eq!(serde_json::to_string(&detail).unwrap(), json);
    }

    #[test]
    fn a_review_request_answer_parses_and_serialises_back_to_the_same_bytes() {
        for (state, decided_at, resolution) in [
            ("open", "null", "null"),
            (
                "resolved",
                r#""2026-11-06T09:30:00Z""#,
                r#""the batch was accepted: late cable""#,
            ),
            (
                "declined",
                r#""2026-11-06T09:30:00Z""#,
                r#""the batch was declined: duplicate""#,
            ),
        ] {
            let json = format!(
                r#"{{"id":"0190a5a0-0000-7000-8000-000000000002","merchant_id":"M1","batch_id":"0190a5a0-0000-7000-8000-000000000001","note":"please look","state":"{state}","created_at":"2026-11-05T10:00:00Z","decided_at":{decided_at},"resolution":{resolution}}}"#
            );
            let view: ReviewRequestView = serde_json::from_str(&json).unwrap();
            assert_eq!(view.state.as_str(), state);
            assert_eq!(serde_json::to_string(&view).unwrap(), json);
        }
    }

    #[test]
    fn a_review_request_in_a_state_not_known_is_refused() {
        let json = r#"{"id":"0190a5a0-0000-7000-8000-000000000002","merchant_id":"M1","batch_id":"0190a5a0-0000-7000-8000-000000000001","note":"n","state":"closed","created_at":"2026-11-05T10:00:00Z","decided_at":null,"resolution":null}"#;
        assert!(serde_json::from_str::<ReviewRequestView>(json).is_err());
    }
}
