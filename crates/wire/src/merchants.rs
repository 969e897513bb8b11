//! Onboarding requests (a merchant, a change to it, a terminal) and merchants and
//! terminals as the API shows them.

use serde::{Deserialize, Serialize};

/// Pricing as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricingRequest {
    pub mdr_basis_points: u32,
    pub fixed_fee: String,
}

/// `POST /v1/ops/merchants` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateMerchantRequest {
    pub merchant_id: String,
    pub name: String,
    pub currency: String,
    pub time_zone: String,
    pub cutoff_local_time: String,
    #[serde(default)]
    pub grace_period_hours: Option<u32>,
    #[serde(default)]
    pub payout_delay_business_days: Option<u32>,
    pub pricing: PricingRequest,
    #[serde(default)]
    pub bank_account: Option<String>,
    /// `report` (default) or `enforce`: what a close's lines the host did not
    /// authorize do.
    #[serde(default)]
    pub host_matching: Option<String>,
    /// Whether the host closes a terminal's unsettled transactions of a business day
    /// once its cutoff plus `auto_close_delay_minutes` has passed (default off, 60).
    #[serde(default)]
    pub auto_close: Option<bool>,
    #[serde(default)]
    pub auto_close_delay_minutes: Option<u32>,
    /// The language of the merchant's answers when a request asks for none
    /// (`Accept-Language`): `en` (default) or `zh-CN`.
    #[serde(default)]
    pub locale: Option<String>,
}

/// `PATCH /v1/ops/merchants/{merchant_id}` body: the fields to change and why.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateMerchantRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub cutoff_local_time: Option<String>,
    #[serde(default)]
    pub grace_period_hours: Option<u32>,
    #[serde(default)]
    pub payout_delay_business_days: Option<u32>,
    #[serde(default)]
    pub pricing: Option<PricingRequest>,
    #[serde(default)]
    pub bank_account: Option<String>,
    /// `report` (default) or `enforce`: what a close's lines the host did not
    /// authorize do.
    #[serde(default)]
    pub host_matching: Option<String>,
    /// Whether the host closes a terminal's unsettled transactions of a business day
    /// once its cutoff plus `auto_close_delay_minutes` has passed (default off, 60).
    #[serde(default)]
    pub auto_close: Option<bool>,
    #[serde(default)]
    pub auto_close_delay_minutes: Option<u32>,
    /// The language of the merchant's answers when a request asks for none
    /// (`Accept-Language`): `en` (default) or `zh-CN`.
    #[serde(default)]
    pub locale: Option<String>,
    pub reason: String,
}

/// `POST /v1/ops/merchants/{merchant_id}/terminals` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTerminalRequest {
    pub terminal_id: String,
}

/// A merchant as the API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct MerchantView {
    pub merchant_id: String,
    pub name: String,
    pub currency: String,
    pub time_zone: String,
    pub cutoff_local_time: String,
    pub grace_period_hours: i32,
    pub payout_delay_business_days: i32,
    pub pricing: PricingView,
    pub host_matching: String,
    pub auto_close: bool,
    pub auto_close_delay_minutes: i32,
    /// The language of its answers when a request asks for none.
    pub locale: String,
    /// The payout bank account, all but its last four characters masked.
    pub bank_account: Option<String>,
    pub created_at: String,
}

/// Pricing as the API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct PricingView {
    pub mdr_basis_points: i32,
    pub fixed_fee: String,
}

/// A terminal as the API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct TerminalView {
    pub terminal_id: String,
    pub merchant_id: String,
    pub created_at: String,
}
