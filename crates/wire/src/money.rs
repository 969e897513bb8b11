//! Queries of a merchant's money and of the payouts operations read.

use chrono::NaiveDate;
use serde::Deserialize;

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
