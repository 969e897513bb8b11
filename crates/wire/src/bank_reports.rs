//! What applying the bank's reports about payouts came to, as the API shows it: a
//! pain.002 payment status report, payment by payment, or a confirmation file, line
//! by line.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One payment of a report and what applying it did.
#[derive(Debug, Serialize, Deserialize)]
pub struct PaymentResult {
    /// The end-to-end id the report names (the payout id, 32 hex digits).
    pub end_to_end_id: String,
    pub payout_id: Uuid,
    /// The bank's status code (`ACSC`, `RJCT`, `ACSP`...).
    pub status: String,
    pub reason_code: Option<String>,
    /// `applied`, `already_applied`, `in_progress` (accepted or pending, nothing to
    /// change yet) or `not_applicable` (the payout's status does not allow it).
    pub result: String,
    /// The payout's status after the report.
    pub payout_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The answer: the report, and each payment's result.
#[derive(Debug, Serialize, Deserialize)]
pub struct StatusReportResult {
    pub message_id: String,
    pub original_message_id: String,
    pub group_status: Option<String>,
    pub applied: usize,
    pub already_applied: usize,
    pub in_progress: usize,
    pub not_applicable: usize,
    pub payments: Vec<PaymentResult>,
}

/// The result of one line of a confirmation file.
#[derive(Debug, Serialize, Deserialize)]
pub struct LineResult {
    pub line: usize,
    pub payout_id: Option<String>,
    pub outcome: Option<String>,
    /// `applied`, `already_applied` or `rejected`.
    pub result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What a confirmation file did, line by line.
#[derive(Debug, Serialize, Deserialize)]
pub struct ConfirmationReport {
    pub applied: usize,
    pub already_applied: usize,
    pub rejected: usize,
    pub lines: Vec<LineResult>,
}
