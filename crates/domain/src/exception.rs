//! The exceptions operations work from: a batch held after its grace deadline, a close
//! refused out of balance or for presenting transactions presented already, and a
//! merchant's request that operations review a held batch. Each has a life: open until
//! operations (or a later close) resolve or decline it.

use serde::{Deserialize, Serialize};

/// Where an exception stands: the `state` of a close attempt, of a review request and
/// of every item of the exceptions list (a held batch is open, a batch operations
/// accepted is resolved, one they declined is declined).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionState {
    /// Waiting for operations (or for a later close of the same batch number).
    Open,
    /// Dealt with: the batch was accepted, or a later close resolved the attempt.
    Resolved,
    /// Operations declined the batch it is about.
    Declined,
}

impl std::fmt::Display for ExceptionState {
    /// The stable name, as stored and as the API shows it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ExceptionState {
    /// Every state.
    pub const ALL: [ExceptionState; 3] = [
        ExceptionState::Open,
        ExceptionState::Resolved,
        ExceptionState::Declined,
    ];

    /// The stable name used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ExceptionState::Open => "open",
            ExceptionState::Resolved => "resolved",
            ExceptionState::Declined => "declined",
        }
    }

    /// Parses the stable name.
    pub fn parse(text: &str) -> Option<Self> {
        ExceptionState::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Why a close booked nothing: the `outcome` of a close attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptOutcome {
    /// The close's totals disagreed with its lines.
    OutOfBalance,
    /// The close presented transactions presented already.
    DuplicateTransactions,
    /// The close was booked with lines the host did not authorize as presented
    /// (merchant setting `report`): not a refusal, an exception about its batch.
    UnmatchedTransactions,
}

impl std::fmt::Display for AttemptOutcome {
    /// The stable name, as stored.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AttemptOutcome {
    /// Every outcome.
    pub const ALL: [AttemptOutcome; 3] = [
        AttemptOutcome::OutOfBalance,
        AttemptOutcome::DuplicateTransactions,
        AttemptOutcome::UnmatchedTransactions,
    ];

    /// The stable name used in the database (and as the exception's kind).
    pub fn as_str(self) -> &'static str {
        ExceptionKind::from(self).as_str()
    }

    /// Parses the stable name.
    pub fn parse(text: &str) -> Option<Self> {
        AttemptOutcome::ALL.into_iter().find(|o| o.as_str() == text)
    }
}

/// What an item of the exceptions list is: a held (or decided) batch, a close
/// attempt by its outcome, or a review request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionKind {
    /// A batch received after its grace deadline, held for operations or decided.
    RejectedOutsideGrace,
    /// A close refused because its totals disagreed with its lines.
    OutOfBalance,
    /// A close refused because it presented transactions presented already.
    DuplicateTransactions,
    /// A merchant's request that operations review a held batch.
    ReviewRequest,
    /// A booked batch with lines the host did not authorize as presented.
    UnmatchedTransactions,
}

impl std::fmt::Display for ExceptionKind {
    /// The stable name, as the API shows it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ExceptionKind {
    /// Every kind.
    pub const ALL: [ExceptionKind; 5] = [
        ExceptionKind::RejectedOutsideGrace,
        ExceptionKind::OutOfBalance,
        ExceptionKind::DuplicateTransactions,
        ExceptionKind::ReviewRequest,
        ExceptionKind::UnmatchedTransactions,
    ];

    /// The stable name used on the wire and in the exceptions list's statement.
    pub fn as_str(self) -> &'static str {
        match self {
            ExceptionKind::RejectedOutsideGrace => "rejected_outside_grace",
            ExceptionKind::OutOfBalance => "out_of_balance",
            ExceptionKind::DuplicateTransactions => "duplicate_transactions",
            ExceptionKind::ReviewRequest => "review_request",
            ExceptionKind::UnmatchedTransactions => "unmatched_transactions",
        }
    }

    /// Parses the stable name.
    pub fn parse(text: &str) -> Option<Self> {
        ExceptionKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl From<AttemptOutcome> for ExceptionKind {
    /// A close attempt is listed under its outcome.
    fn from(outcome: AttemptOutcome) -> Self {
        match outcome {
            AttemptOutcome::OutOfBalance => ExceptionKind::OutOfBalance,
            AttemptOutcome::DuplicateTransactions => ExceptionKind::DuplicateTransactions,
            AttemptOutcome::UnmatchedTransactions => ExceptionKind::UnmatchedTransactions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_value() {
        for s in ExceptionState::ALL {
            assert_eq!(ExceptionState::parse(s.as_str()), Some(s));
            assert_eq!(s.to_string(), s.as_str());
        }
        for k in ExceptionKind::ALL {
            assert_eq!(ExceptionKind::parse(k.as_str()), Some(k));
            assert_eq!(k.to_string(), k.as_str());
        }
        for o in AttemptOutcome::ALL {
            assert_eq!(AttemptOutcome::parse(o.as_str()), Some(o));
            assert_eq!(o.to_string(), o.as_str());
        }
    }

    #[test]
    fn unknown_names_and_other_spellings_are_refused() {
        for text in ["", "all", "Open", "OPEN", " open", "pending", "closed"] {
            assert_eq!(ExceptionState::parse(text), None, "{text:?}");
        }
        for text in ["", "review", "ReviewRequest", "accepted", "declined"] {
            assert_eq!(ExceptionKind::parse(text), None, "{text:?}");
        }
        // An attempt is never a held batch or a review request.
        assert_eq!(AttemptOutcome::parse("rejected_outside_grace"), None);
        assert_eq!(AttemptOutcome::parse("review_request"), None);
    }
}
