//! The life of a payout and the ledger movement of each step.

use serde::{Deserialize, Serialize};

use crate::ledger::AccountKind;

/// Where a payout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutStatus {
    /// Created; the money is still payable.
    Pending,
    /// Sent to the bank in an instruction file.
    InTransit,
    /// The bank confirmed the merchant was paid.
    Paid,
    /// The bank returned it; the money is payable again.
    Failed,
    /// Withdrawn before it was paid; the money is payable again.
    Canceled,
}

impl std::fmt::Display for PayoutStatus {
    /// The stable name, as stored and as the API shows it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PayoutStatus {
    /// Every status.
    pub const ALL: [PayoutStatus; 5] = [
        PayoutStatus::Pending,
        PayoutStatus::InTransit,
        PayoutStatus::Paid,
        PayoutStatus::Failed,
        PayoutStatus::Canceled,
    ];

    /// The stable name used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            PayoutStatus::Pending => "pending",
            PayoutStatus::InTransit => "in_transit",
            PayoutStatus::Paid => "paid",
            PayoutStatus::Failed => "failed",
            PayoutStatus::Canceled => "canceled",
        }
    }

    /// Parses the stable name.
    pub fn parse(text: &str) -> Option<Self> {
        PayoutStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// True while the payout holds its cycles' money (it is not payable again).
    pub fn holds_money(self) -> bool {
        matches!(
            self,
            PayoutStatus::Pending | PayoutStatus::InTransit | PayoutStatus::Paid
        )
    }
}

/// A refused status change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a payout cannot go from {} to {}", from.as_str(), to.as_str())]
pub struct IllegalTransition {
    pub from: PayoutStatus,
    pub to: PayoutStatus,
}

/// The ledger movement of a transition: debit `from_account`, credit `to_account`
/// with the payout amount; `None` when no money moves.
pub type Movement = Option<(AccountKind, AccountKind)>;

/// Checks a transition and says which accounts it moves money between.
///
/// pending → in_transit: payable to clearing; in_transit → paid: clearing to bank;
/// in_transit → failed: clearing back to payable; paid → failed (the bank returned a
/// paid payout): bank back to payable; pending → canceled: nothing moved yet. A payout
/// in transit cannot be canceled: the bank has its instruction and only the bank's
/// answer (paid or failed) may move it, or the money could go out twice.
pub fn transition(from: PayoutStatus, to: PayoutStatus) -> Result<Movement, IllegalTransition> {
    use AccountKind::*;
    use PayoutStatus::*;
    match (from, to) {
        (Pending, InTransit) => Ok(Some((MerchantPayable, PayoutClearing))),
        (InTransit, Paid) => Ok(Some((PayoutClearing, AcquirerBank))),
        (InTransit, Failed) => Ok(Some((PayoutClearing, MerchantPayable))),
        (Paid, Failed) => Ok(Some((AcquirerBank, MerchantPayable))),
        (Pending, Canceled) => Ok(None),
        _ => Err(IllegalTransition { from, to }),
    }
}

/// Failure codes that say the merchant's bank account itself cannot take money
/// (ISO 20022 AC01 incorrect account number, AC03 invalid creditor account, AC04
/// closed account, AC06 blocked account, AC13 invalid debtor account type, and the
/// service's own words for them). A payout returned for one of them puts the
/// merchant's payouts on hold: sending again to the same account would bounce again.
pub const ACCOUNT_FAILURE_CODES: &[&str] = &[
    "account_closed",
    "account_blocked",
    "account_frozen",
    "incorrect_account",
    "invalid_account",
    "no_account",
    "ac01",
    "ac03",
    "ac04",
    "ac06",
    "ac13",
];

/// True when a payout failure code says the bank account cannot take money.
pub fn is_account_failure(failure_code: &str) -> bool {
    ACCOUNT_FAILURE_CODES.contains(&failure_code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_documented_transitions_are_legal() {
        let legal = [
            (PayoutStatus::Pending, PayoutStatus::InTransit),
            (PayoutStatus::InTransit, PayoutStatus::Paid),
            (PayoutStatus::InTransit, PayoutStatus::Failed),
            (PayoutStatus::Paid, PayoutStatus::Failed),
            (PayoutStatus::Pending, PayoutStatus::Canceled),
        ];
        for from in PayoutStatus::ALL {
            for to in PayoutStatus::ALL {
                assert_eq!(
                    transition(from, to).is_ok(),
                    legal.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
    }

    #[test]
    fn a_failed_payout_returns_its_money_to_payable() {
        for from in [PayoutStatus::InTransit, PayoutStatus::Paid] {
            let (_, credited) = transition(from, PayoutStatus::Failed).unwrap().unwrap();
            assert_eq!(credited, AccountKind::MerchantPayable);
        }
    }

    #[test]
    fn money_held_follows_the_status() {
        assert!(PayoutStatus::Pending.holds_money());
        assert!(PayoutStatus::Paid.holds_money());
        assert!(!PayoutStatus::Failed.holds_money());
        assert!(!PayoutStatus::Canceled.holds_money());
    }
}
