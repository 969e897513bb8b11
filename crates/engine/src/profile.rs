//! A merchant's stored settlement profile, read back into the domain's.

use settlement_domain::host_match::HostMatching;
use settlement_domain::merchant::{Pricing, SettlementProfile};
use settlement_store::merchants::{self, MerchantRow};
use sqlx::PgConnection;

use crate::error::EngineError;

/// The settlement profile of a stored merchant.
pub fn profile_of(m: &MerchantRow) -> Result<SettlementProfile, EngineError> {
    let non_negative = |v: i32| {
        u32::try_from(v)
            .map_err(|_| EngineError::Internal(anyhow::anyhow!("negative profile value")))
    };
    SettlementProfile::new(
        &m.time_zone,
        &m.cutoff_local_time.format("%H:%M:%S").to_string(),
        non_negative(m.grace_period_hours)?,
        non_negative(m.payout_delay_business_days)?,
        Pricing {
            mdr_basis_points: non_negative(m.mdr_basis_points)?,
            fixed_fee_minor: m.fixed_fee_minor,
        },
    )
    .and_then(|p| {
        if m.auto_close {
            p.with_auto_close(u32::try_from(m.auto_close_delay_minutes).unwrap_or(u32::MAX))
        } else {
            Ok(p)
        }
    })
    .map_err(|e| {
        EngineError::Internal(anyhow::anyhow!(
            "stored profile of {} is invalid: {e}",
            m.merchant_id
        ))
    })
}

/// The merchant's host matching setting.
pub fn host_matching_of(m: &MerchantRow) -> Result<HostMatching, EngineError> {
    HostMatching::parse(&m.host_matching).ok_or_else(|| {
        EngineError::Internal(anyhow::anyhow!(
            "stored host_matching {:?} of {} is unknown",
            m.host_matching,
            m.merchant_id
        ))
    })
}

/// The merchant, which must exist.
pub async fn existing_merchant(
    conn: &mut PgConnection,
    merchant_id: &str,
) -> Result<MerchantRow, EngineError> {
    merchants::find_merchant(conn, merchant_id)
        .await?
        .ok_or(EngineError::NotFound("merchant"))
}
