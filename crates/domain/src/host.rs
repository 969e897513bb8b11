//! Authorizations from the acquirer's host (ISO 8583 0100/0200, reversed by a 0400):
//! what an authorization holds, how a repeat or a reversal is compared with the one
//! stored, and how much a request may carry.

use chrono::{DateTime, Utc};

use crate::batch::FieldError;
use crate::money::Currency;

/// Most records one request (or one capture file) carries: one terminal's busiest
/// day fits, and one request stays one bounded transaction.
pub const MAX_HOST_RECORDS: usize = 10_000;

/// What the host authorized: a sale or a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostTransactionType {
    Sale,
    Refund,
}

impl HostTransactionType {
    /// The name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            HostTransactionType::Sale => "sale",
            HostTransactionType::Refund => "refund",
        }
    }

    /// The type named by `text`, if any.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "sale" => Some(HostTransactionType::Sale),
            "refund" => Some(HostTransactionType::Refund),
            _ => None,
        }
    }
}

/// One authorization, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAuthorization {
    pub terminal_id: String,
    pub rrn: String,
    pub stan: String,
    pub auth_code: String,
    pub transaction_type: HostTransactionType,
    pub amount_minor: i64,
    pub currency: Currency,
    pub authorized_at: DateTime<Utc>,
    pub card_brand: Option<String>,
    pub masked_pan: Option<String>,
}

/// A reversal, validated: it names its authorization by terminal and RRN; any other
/// field it gives must agree with the authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostReversal {
    pub terminal_id: String,
    pub rrn: String,
    pub stan: Option<String>,
    pub auth_code: Option<String>,
    pub transaction_type: Option<HostTransactionType>,
    /// The amount with its currency (an amount is read in its currency's units).
    pub amount_minor: Option<i64>,
    pub currency: Option<Currency>,
    pub authorized_at: Option<DateTime<Utc>>,
    pub card_brand: Option<String>,
    pub masked_pan: Option<String>,
}

/// One record of the host, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRecord {
    Authorization(HostAuthorization),
    Reversal(HostReversal),
}

impl HostRecord {
    /// The terminal the record is about.
    pub fn terminal_id(&self) -> &str {
        match self {
            HostRecord::Authorization(a) => &a.terminal_id,
            HostRecord::Reversal(r) => &r.terminal_id,
        }
    }

    /// The RRN the record is about.
    pub fn rrn(&self) -> &str {
        match self {
            HostRecord::Authorization(a) => &a.rrn,
            HostRecord::Reversal(r) => &r.rrn,
        }
    }
}

/// Checks an authorization code as the host answers it (ISO 8583 field 38): exactly
/// six ASCII letters or digits.
pub fn validate_host_auth_code(field: &str, code: &str) -> Result<(), FieldError> {
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            "must be exactly 6 letters or digits",
        ))
    }
}

/// The fields in which `incoming` differs from the stored authorization, in a fixed
/// order; empty when it is the same authorization sent again.
pub fn differing_fields(
    stored: &HostAuthorization,
    incoming: &HostAuthorization,
) -> Vec<&'static str> {
    let mut out = Vec::new();
    if stored.stan != incoming.stan {
        out.push("stan");
    }
    if stored.auth_code != incoming.auth_code {
        out.push("auth_code");
    }
    if stored.transaction_type != incoming.transaction_type {
        out.push("transaction_type");
    }
    if stored.amount_minor != incoming.amount_minor {
        out.push("amount");
    }
    if stored.currency != incoming.currency {
        out.push("currency");
    }
    if stored.authorized_at != incoming.authorized_at {
        out.push("authorized_at");
    }
    if stored.card_brand != incoming.card_brand {
        out.push("card_brand");
    }
    if stored.masked_pan != incoming.masked_pan {
        out.push("masked_pan");
    }
    out
}

/// The fields a reversal gives that disagree with its authorization; a field it
/// does not give agrees.
pub fn disagreeing_fields(
    stored: &HostAuthorization,
    reversal: &HostReversal,
) -> Vec<&'static str> {
    fn differs<T: PartialEq>(given: Option<&T>, stored: &T) -> bool {
        given.is_some_and(|g| g != stored)
    }
    let mut out = Vec::new();
    if differs(reversal.stan.as_ref(), &stored.stan) {
        out.push("stan");
    }
    if differs(reversal.auth_code.as_ref(), &stored.auth_code) {
        out.push("auth_code");
    }
    if differs(reversal.transaction_type.as_ref(), &stored.transaction_type) {
        out.push("transaction_type");
    }
    if differs(reversal.amount_minor.as_ref(), &stored.amount_minor) {
        out.push("amount");
    }
    if differs(reversal.currency.as_ref(), &stored.currency) {
        out.push("currency");
    }
    if differs(reversal.authorized_at.as_ref(), &stored.authorized_at) {
        out.push("authorized_at");
    }
    if reversal.card_brand.is_some() && reversal.card_brand != stored.card_brand {
        out.push("card_brand");
    }
    if reversal.masked_pan.is_some() && reversal.masked_pan != stored.masked_pan {
        out.push("masked_pan");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sale() -> HostAuthorization {
        HostAuthorization {
            terminal_id: "t1".into(),
            rrn: "000000000001".into(),
            stan: "000001".into(),
            auth_code: "A1B2C3".into(),
            transaction_type: HostTransactionType::Sale,
            amount_minor: 1234,
            currency: Currency::Eur,
            authorized_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default(),
            card_brand: Some("visa".into()),
            masked_pan: Some("411111******1111".into()),
        }
    }

    fn bare_reversal() -> HostReversal {
        HostReversal {
            terminal_id: "t1".into(),
            rrn: "000000000001".into(),
            stan: None,
            auth_code: None,
            transaction_type: None,
            amount_minor: None,
            currency: None,
            authorized_at: None,
            card_brand: None,
            masked_pan: None,
        }
    }

    #[test]
    fn the_same_authorization_sent_again_differs_in_nothing() {
        assert!(differing_fields(&sale(), &sale()).is_empty());
    }

    #[test]
    fn an_authorization_with_another_amount_and_code_names_both() {
        let mut other = sale();
        other.amount_minor = 999;
        other.auth_code = "ZZZZZZ".into();
        assert_eq!(
            differing_fields(&sale(), &other),
            vec!["auth_code", "amount"]
        );
    }

    #[test]
    fn a_reversal_naming_only_terminal_and_rrn_agrees() {
        assert!(disagreeing_fields(&sale(), &bare_reversal()).is_empty());
    }

    #[test]
    fn a_reversal_with_another_amount_disagrees_on_the_amount_only() {
        let mut r = bare_reversal();
        r.amount_minor = Some(1);
        r.stan = Some("000001".into());
        assert_eq!(disagreeing_fields(&sale(), &r), vec!["amount"]);
    }

    #[test]
    fn host_auth_codes_are_exactly_six_letters_or_digits() {
        assert!(validate_host_auth_code("a", "A1B2C3").is_ok());
        assert!(validate_host_auth_code("a", "A1B2C").is_err());
        assert!(validate_host_auth_code("a", "A1B2C3D").is_err());
        assert!(validate_host_auth_code("a", "A1B2-3").is_err());
    }

    #[test]
    fn transaction_types_parse_sale_and_refund_only() {
        assert_eq!(
            HostTransactionType::parse("sale"),
            Some(HostTransactionType::Sale)
        );
        assert_eq!(
            HostTransactionType::parse("refund"),
            Some(HostTransactionType::Refund)
        );
        assert_eq!(HostTransactionType::parse("void"), None);
    }
}
