//! What a pain.002 status code means for a payout.

/// The meaning of a pain.002 status (`TxSts`, `PmtInfSts` or `GrpSts`) for a payout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Final: the money left the debtor account (ACSC) or reached the creditor's (ACCC).
    Settled,
    /// Accepted by the bank and in progress; not final, a later report settles or rejects it.
    Accepted,
    /// Final: the bank will not make the payment.
    Rejected,
    /// Received or waiting (e.g. for funds or a cut-off); nothing decided yet.
    Pending,
}

/// The outcome that a status code, as sent, stands for; `None` for a code this
/// service does not act on by itself.
///
/// - ACSC and ACCC are `Settled`.
/// - ACCP, ACFC, ACPD, ACSP, ACTC, ACWC and ACWP are `Accepted`: each is an accepted
///   stage (customer profile, funds checked, clearing processed, settlement in
///   process, technical validation, accepted with change, without posting) before
///   settlement.
/// - PART and PATC are `Accepted` too: they are group statuses (some transactions
///   accepted, or a partial set of signatures) that settle nothing and fail nothing
///   by themselves; each payment's own `TxSts` decides it.
/// - RJCT is `Rejected`; PDNG and RCVD are `Pending`.
/// - Anything else is `None`, including BLCK (blocked) and CANC (cancelled), which
///   this service never asks for and so must be looked at by a person, and codes in
///   another case (status codes are upper case).
pub fn outcome(status: &str) -> Option<Outcome> {
    match status {
        "ACSC" | "ACCC" => Some(Outcome::Settled),
        "ACCP" | "ACFC" | "ACPD" | "ACSP" | "ACTC" | "ACWC" | "ACWP" | "PART" | "PATC" => {
            Some(Outcome::Accepted)
        }
        "RJCT" => Some(Outcome::Rejected),
        "PDNG" | "RCVD" => Some(Outcome::Pending),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settlement_codes_are_settled() {
        assert_eq!(outcome("ACSC"), Some(Outcome::Settled));
        assert_eq!(outcome("ACCC"), Some(Outcome::Settled));
    }

    #[test]
    fn accepted_stages_are_accepted_not_settled() {
        for code in [
            "ACCP", "ACFC", "ACPD", "ACSP", "ACTC", "ACWC", "ACWP", "PART", "PATC",
        ] {
            assert_eq!(outcome(code), Some(Outcome::Accepted), "{code}");
        }
    }

    #[test]
    fn rejection_and_waiting_codes_map_to_rejected_and_pending() {
        assert_eq!(outcome("RJCT"), Some(Outcome::Rejected));
        assert_eq!(outcome("PDNG"), Some(Outcome::Pending));
        assert_eq!(outcome("RCVD"), Some(Outcome::Pending));
    }

    #[test]
    fn unknown_blocked_cancelled_and_lower_case_codes_have_no_outcome() {
        for code in ["BLCK", "CANC", "XXXX", "", "acsc", "RJCT "] {
            assert_eq!(outcome(code), None, "{code:?}");
        }
    }
}
