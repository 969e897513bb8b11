//! Reminders to close, as the `terminal.close_missing` event carries them.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::host::UnsettledSummary;

/// The `terminal.close_missing` event's object.
#[derive(Debug, Serialize, Deserialize)]
pub struct CloseMissing {
    pub terminal_id: String,
    /// `after_cutoff`, `before_grace_deadline` or `batch_number_gap`.
    pub reminder: String,
    pub business_date: Option<NaiveDate>,
    pub cutoff_at: Option<String>,
    /// Until when a late close of that business date is still accepted.
    pub grace_deadline: Option<String>,
    pub last_closed_at: Option<String>,
    pub missing_batch_numbers: Vec<i32>,
    /// The terminal's unsettled transactions when the reminder was sent (a reminder
    /// to close only; absent on a gap reminder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsettled: Option<UnsettledSummary>,
}
