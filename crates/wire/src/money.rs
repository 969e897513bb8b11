//! Queries of a merchant's money and of the payouts operations read, and settlement
//! cycles, payouts and balances as the API shows them.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::batches::BatchView;

/// Query of a plain list.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Query of a merchant's payout list.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayoutQuery {
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Query of the operations payout list: any merchant's, or one's.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsPayoutQuery {
    pub status: Option<String>,
    pub merchant_id: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Query of the payout export.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// Export pending payouts arriving on or before this date; default: the next
    /// business day after today (UTC), so the bank has a day to move the money.
    pub through: Option<NaiveDate>,
    /// `csv` (the default, masked accounts) or `pain.001` (ISO 20022, whole accounts).
    pub format: Option<String>,
}

/// A settlement cycle as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CycleView {
    pub id: Uuid,
    pub merchant_id: String,
    pub currency: String,
    pub cycle_date: NaiveDate,
    pub closed_at: String,
    pub batch_count: i32,
    pub sale_count: i64,
    pub sale_amount: String,
    pub void_amount: String,
    pub refund_amount: String,
    pub net_amount: String,
    pub fee: String,
    pub payable_amount: String,
}

/// A payout as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PayoutView {
    pub id: Uuid,
    pub merchant_id: String,
    pub amount: String,
    pub currency: String,
    pub status: String,
    pub arrival_date: NaiveDate,
    pub failure_code: Option<String>,
    /// What happened to the payout, in plain words with the next step, in the
    /// answer's language.
    pub message: String,
    pub created_at: String,
    pub updated_at: String,
}

/// A closed cycle with its batches and the payouts that paid it.
#[derive(Debug, Serialize, Deserialize)]
pub struct SettlementDetail {
    #[serde(flatten)]
    pub cycle: CycleView,
    pub batches: Vec<BatchView>,
    pub payouts: Vec<PayoutView>,
}

/// A batch a payout pays, in brief.
#[derive(Debug, Serialize, Deserialize)]
pub struct PaidBatch {
    pub id: Uuid,
    pub terminal_id: String,
    pub batch_number: Option<i32>,
    pub status: String,
    pub net_amount: String,
    pub fee: String,
}

/// A cycle a payout pays, with its batches.
#[derive(Debug, Serialize, Deserialize)]
pub struct PaidCycle {
    #[serde(flatten)]
    pub cycle: CycleView,
    pub batches: Vec<PaidBatch>,
}

/// A payout with what it pays.
#[derive(Debug, Serialize, Deserialize)]
pub struct PayoutDetail {
    #[serde(flatten)]
    pub payout: PayoutView,
    pub cycles: Vec<PaidCycle>,
}

/// A merchant's money in one currency.
#[derive(Debug, Serialize, Deserialize)]
pub struct CurrencyBalance {
    pub currency: String,
    /// Accepted batches not yet settled in a cycle.
    pub pending: String,
    /// Settled and waiting for a payout.
    pub payable: String,
}

/// `GET /v1/merchants/{merchant_id}/balance` body.
#[derive(Debug, Serialize, Deserialize)]
pub struct BalanceView {
    pub merchant_id: String,
    pub balances: Vec<CurrencyBalance>,
}
