//! A terminal's batch close, validated: its transaction lines and control totals.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::money::Currency;

/// Most transaction lines one close may carry. A busy terminal captures a few
/// hundred a day; 10,000 leaves room for a week of a busy lane and keeps one close
/// (and its single database transaction) bounded, at about 3 MB of JSON.
pub const MAX_LINES_PER_BATCH: usize = 10_000;
/// Highest batch number before a terminal wraps to 1.
pub const MAX_BATCH_NUMBER: u32 = 999_999;
/// How far ahead of the host clock a capture time may be before it is refused.
pub const MAX_CAPTURE_AHEAD_SECONDS: i64 = 300;
/// Longest card brand name accepted.
const MAX_CARD_BRAND_LEN: usize = 20;

/// The kind of a transaction line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineType {
    /// A charge to the card.
    Sale,
    /// Money back to the card.
    Refund,
    /// Cancellation of a sale in the same batch.
    Void,
}

impl LineType {
    /// The stable name used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            LineType::Sale => "sale",
            LineType::Refund => "refund",
            LineType::Void => "void",
        }
    }

    /// Parses the stable name.
    pub fn parse(text: &str) -> Option<Self> {
        [LineType::Sale, LineType::Refund, LineType::Void]
            .into_iter()
            .find(|t| t.as_str() == text)
    }
}

/// One validated transaction line of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionLine {
    /// System trace audit number: six digits, unique within the batch.
    pub stan: String,
    /// Retrieval reference number: twelve letters or digits.
    pub rrn: String,
    /// Sale, refund or void.
    pub line_type: LineType,
    /// Amount in minor units, never negative.
    pub amount_minor: i64,
    /// For a void, the STAN of the sale it cancels.
    pub original_stan: Option<String>,
    /// When the terminal says it captured the transaction.
    pub captured_at: DateTime<Utc>,
    /// Card brand as the terminal names it (`visa`, `mastercard`...).
    pub card_brand: Option<String>,
    /// Masked card number (`411111******1111`).
    pub masked_pan: Option<String>,
    /// Authorisation code from the issuer.
    pub auth_code: Option<String>,
}

/// Counts and amounts per line type: the terminal's control totals or the host's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub sale_count: i64,
    pub sale_amount_minor: i64,
    pub refund_count: i64,
    pub refund_amount_minor: i64,
    pub void_count: i64,
    pub void_amount_minor: i64,
}

impl Totals {
    /// Money owed to the merchant: sales less voids less refunds (may be negative).
    pub fn net_amount_minor(&self) -> Option<i64> {
        self.sale_amount_minor
            .checked_sub(self.void_amount_minor)?
            .checked_sub(self.refund_amount_minor)
    }
}

/// A batch close whose fields are each well formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchClose {
    /// The terminal's batch number, 1..=999999.
    pub batch_number: u32,
    /// Currency of every amount in the batch.
    pub currency: Currency,
    /// The terminal's control totals.
    pub terminal_totals: Totals,
    /// The transaction lines.
    pub lines: Vec<TransactionLine>,
}

/// Why a field of a batch close was refused; `field` names it for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// JSON path of the offending field.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FieldError {
    /// Builds a field error.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Checks a batch number.
pub fn validate_batch_number(n: i64) -> Result<u32, FieldError> {
    u32::try_from(n)
        .ok()
        .filter(|n| (1..=MAX_BATCH_NUMBER).contains(n))
        .ok_or_else(|| FieldError::new("batch_number", "must be between 1 and 999999"))
}

/// Checks a STAN: exactly six digits.
pub fn validate_stan(field: &str, stan: &str) -> Result<(), FieldError> {
    if stan.len() == 6 && stan.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(FieldError::new(field, "must be exactly 6 digits"))
    }
}

/// Checks an RRN: exactly twelve ASCII letters or digits.
pub fn validate_rrn(field: &str, rrn: &str) -> Result<(), FieldError> {
    if rrn.len() == 12 && rrn.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            "must be exactly 12 letters or digits",
        ))
    }
}

/// Checks an authorisation code: one to six ASCII letters or digits.
pub fn validate_auth_code(field: &str, code: &str) -> Result<(), FieldError> {
    if (1..=6).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(FieldError::new(field, "must be 1 to 6 letters or digits"))
    }
}

/// Checks a card brand: lower-case letters, digits and underscores, 1..=20 long.
pub fn validate_card_brand(field: &str, brand: &str) -> Result<(), FieldError> {
    let ok = (1..=MAX_CARD_BRAND_LEN).contains(&brand.len())
        && brand
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            "must be 1 to 20 lower-case letters, digits or '_'",
        ))
    }
}

/// Checks a capture time against the host clock.
pub fn validate_captured_at(
    field: &str,
    captured_at: DateTime<Utc>,
    received_at: DateTime<Utc>,
) -> Result<(), FieldError> {
    if captured_at > received_at + Duration::seconds(MAX_CAPTURE_AHEAD_SECONDS) {
        Err(FieldError::new(
            field,
            "is more than 5 minutes ahead of the host clock",
        ))
    } else {
        Ok(())
    }
}

impl BatchClose {
    /// The capture time of the oldest line, which decides the business date.
    pub fn oldest_captured_at(&self) -> Option<DateTime<Utc>> {
        self.lines.iter().map(|l| l.captured_at).min()
    }
}
