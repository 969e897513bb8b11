//! HTTP handlers, one file per audience and concern, and the query checks they share.

use settlement_domain::payout::PayoutStatus;

use crate::error::ApiError;

pub mod audit;
pub mod bank_files;
pub mod health;
pub mod holidays;
pub mod merchant_money;
pub mod merchants;
pub mod ops;
pub mod settlement_ops;
pub mod statement;
pub mod status;
pub mod terminals;
pub mod webhooks;

/// Checks a `status` filter of payouts.
pub fn payout_status_filter(status: Option<String>) -> Result<Option<String>, ApiError> {
    if let Some(s) = &status {
        PayoutStatus::parse(s).ok_or_else(|| {
            ApiError::field(
                "status",
                "must be pending, in_transit, paid, failed or canceled",
            )
        })?;
    }
    Ok(status)
}
