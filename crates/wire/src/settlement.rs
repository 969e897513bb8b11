//! A settlement run as the API shows it.

use serde::{Deserialize, Serialize};

use crate::money::{CycleView, PayoutView};

/// What a settlement run closed and created.
#[derive(Debug, Serialize, Deserialize)]
pub struct SettlementRunView {
    /// Batches the host closed for terminals that forgot (auto-close), first.
    pub auto_closed_batches: Vec<crate::batches::BatchView>,
    pub closed_cycles: Vec<CycleView>,
    pub payouts: Vec<PayoutView>,
    /// Cycles that were due but failed to close (logged); the next run tries again.
    pub failed_cycles: Vec<serde_json::Value>,
}
