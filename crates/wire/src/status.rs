//! A merchant's status as the API shows it: "where is my money", in one answer.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::batches::ReviewRequestView;
use crate::host::UnsettledStatus;
use crate::money::PayoutView;

/// One terminal's closing state.
#[derive(Debug, Serialize, Deserialize)]
pub struct TerminalStatus {
    pub terminal_id: String,
    pub last_batch_number: Option<i32>,
    pub last_closed_at: Option<String>,
    /// Batch numbers missing from the terminal's sequence in the last 30 days:
    /// closes that never arrived.
    pub skipped_batch_numbers: Vec<i32>,
    /// True when the terminal closed a batch after the last cutoff.
    pub closed_since_last_cutoff: bool,
    /// For a terminal that has not: the last instant a close of the business day that
    /// ended at the last cutoff is still accepted (late).
    pub close_deadline: Option<String>,
    /// True while that deadline has not passed.
    pub can_still_close: bool,
    /// The terminal's unsettled transactions (authorized by the host, not reversed,
    /// not presented by a booked or held batch) and what to do about them.
    pub unsettled: UnsettledStatus,
}

/// A batch that needs the merchant's attention.
#[derive(Debug, Serialize, Deserialize)]
pub struct AttentionItem {
    pub batch_id: Uuid,
    pub terminal_id: String,
    pub batch_number: Option<i32>,
    pub status: String,
    pub reason_code: String,
    pub reason: String,
    pub business_date: NaiveDate,
    pub cycle_date: Option<NaiveDate>,
    /// When the batch's money is expected in the bank account; null when it is not
    /// paid (held or declined).
    pub expected_arrival_date: Option<NaiveDate>,
    pub received_at: String,
    pub net_amount: String,
}

/// Money waiting for one cycle.
#[derive(Debug, Serialize, Deserialize)]
pub struct PendingCycleView {
    pub cycle_date: NaiveDate,
    /// When the cycle closes (the cutoff of its date).
    pub settles_at: String,
    pub batch_count: i64,
    pub net_amount: String,
    pub fee: String,
    /// What the cycle adds to the merchant's payable: net less fees.
    pub payable_amount: String,
    /// When a payout of this money is expected to arrive.
    pub expected_arrival_date: NaiveDate,
}

/// Pending money in one currency.
#[derive(Debug, Serialize, Deserialize)]
pub struct PendingView {
    pub currency: String,
    pub amount: String,
    pub cycles: Vec<PendingCycleView>,
}

/// Payable money in one currency.
#[derive(Debug, Serialize, Deserialize)]
pub struct PayableView {
    pub currency: String,
    pub amount: String,
}

/// A reminder to close that was sent.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReminderView {
    pub terminal_id: String,
    /// `after_cutoff`, `before_grace_deadline` or `batch_number_gap`.
    pub kind: String,
    pub business_date: Option<NaiveDate>,
    pub missing_batch_numbers: Option<Vec<i32>>,
    /// What the reminder said, in plain words with the next step.
    pub message: String,
    pub event_id: Uuid,
    pub sent_at: String,
}

/// The whole answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct StatusView {
    pub merchant_id: String,
    pub as_of: String,
    pub time_zone: String,
    pub last_cutoff_at: String,
    pub next_cutoff_at: String,
    pub terminals: Vec<TerminalStatus>,
    pub attention: Vec<AttentionItem>,
    pub pending: Vec<PendingView>,
    pub payable: Vec<PayableView>,
    pub next_payouts: Vec<PayoutView>,
    pub last_payouts: Vec<PayoutView>,
    /// Reminders to close sent in the last 30 days, newest first.
    pub reminders: Vec<ReminderView>,
    /// Webhook deliveries of the last 30 days that were given up after every retry
    /// (see each event's deliveries, and redeliver).
    pub failed_webhook_deliveries: i64,
    /// The merchant's review requests of held batches, newest first: open until
    /// operations accept or decline the batch, then with their decision.
    pub review_requests: Vec<ReviewRequestView>,
    /// Why payouts are not being sent, with the step to take; `null` when they are.
    pub payouts_withheld: Option<PayoutsWithheldView>,
}

/// Why a merchant's payouts are not sent: no bank account on file, or a payout
/// returned because the account cannot take money.
#[derive(Debug, Serialize, Deserialize)]
pub struct PayoutsWithheldView {
    /// `no_bank_account` or `account_failure`.
    pub reason: String,
    /// The returned payout that put payouts on hold.
    pub payout_id: Option<Uuid>,
    pub failure_code: Option<String>,
    pub since: Option<String>,
    /// What happened and what to do, in words a merchant understands.
    pub message: String,
}
