//! The batch close a terminal sends, as sent, and its validation into the domain
//! close: past `into_domain` nothing is unvalidated.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;

use settlement_domain::batch::{
    validate_auth_code, validate_batch_number, validate_captured_at, validate_card_brand,
    validate_rrn, validate_stan, BatchClose, FieldError, LineType, Totals, TransactionLine,
    MAX_LINES_PER_BATCH,
};
use settlement_domain::money::{parse_amount, Currency};
use settlement_domain::pan::is_masked_pan;
use settlement_domain::presentment::repeated_rrn_within;

/// What became of a close, as the terminal is answered: each answer's HTTP status
/// is part of the contract (and what a replay of the close answers again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseAnswer {
    /// A new batch: booked, or held for operations with the grace deadline missed
    /// (see `Refused`).
    Booked,
    /// The same batch sent again: the batch as it was booked.
    SameContent,
    /// Nothing booked: out of balance, repeated transactions, or held after the grace
    /// deadline; a problem document says which.
    Refused,
}

impl CloseAnswer {
    /// The HTTP status of the answer.
    pub const fn status(self) -> u16 {
        match self {
            CloseAnswer::Booked => 201,
            CloseAnswer::SameContent => 200,
            CloseAnswer::Refused => 422,
        }
    }

    /// The reason phrase of the status, the `title` of a problem document.
    pub const fn title(self) -> &'static str {
        match self {
            CloseAnswer::Booked => "Created",
            CloseAnswer::SameContent => "OK",
            CloseAnswer::Refused => "Unprocessable Entity",
        }
    }
}

/// Formats an instant as RFC 3339 in UTC with second precision.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The terminal's control totals as sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotalsRequest {
    pub sale_count: i64,
    pub sale_amount: String,
    pub refund_count: i64,
    pub refund_amount: String,
    pub void_count: i64,
    pub void_amount: String,
}

/// One transaction line as sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransactionRequest {
    pub stan: String,
    pub rrn: String,
    #[serde(rename = "type")]
    pub line_type: String,
    pub amount: String,
    #[serde(default)]
    pub original_stan: Option<String>,
    pub captured_at: String,
    #[serde(default)]
    pub card_brand: Option<String>,
    #[serde(default)]
    pub masked_pan: Option<String>,
    #[serde(default)]
    pub auth_code: Option<String>,
}

/// `POST /v1/terminals/{terminal_id}/batches` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchCloseRequest {
    pub batch_number: i64,
    pub currency: String,
    pub totals: TotalsRequest,
    pub transactions: Vec<TransactionRequest>,
}

fn amount(field: &str, text: &str, currency: Currency) -> Result<i64, FieldError> {
    parse_amount(text, currency).map_err(|e| FieldError::new(field, e.to_string()))
}

fn count(field: &str, n: i64) -> Result<i64, FieldError> {
    if (0..=i64::try_from(MAX_LINES_PER_BATCH).unwrap_or(i64::MAX)).contains(&n) {
        Ok(n)
    } else {
        Err(FieldError::new(
            field,
            format!("must be between 0 and {MAX_LINES_PER_BATCH}"),
        ))
    }
}

impl BatchCloseRequest {
    /// Checks every field and builds the domain close.
    pub fn into_domain(self, received_at: DateTime<Utc>) -> Result<BatchClose, FieldError> {
        let batch_number = validate_batch_number(self.batch_number)?;
        let currency: Currency = self
            .currency
            .parse()
            .map_err(|_| FieldError::new("currency", "is not a supported ISO 4217 code"))?;
        if self.transactions.is_empty() || self.transactions.len() > MAX_LINES_PER_BATCH {
            return Err(FieldError::new(
                "transactions",
                format!("must hold 1 to {MAX_LINES_PER_BATCH} lines"),
            ));
        }
        let t = &self.totals;
        let terminal_totals = Totals {
            sale_count: count("totals.sale_count", t.sale_count)?,
            sale_amount_minor: amount("totals.sale_amount", &t.sale_amount, currency)?,
            refund_count: count("totals.refund_count", t.refund_count)?,
            refund_amount_minor: amount("totals.refund_amount", &t.refund_amount, currency)?,
            void_count: count("totals.void_count", t.void_count)?,
            void_amount_minor: amount("totals.void_amount", &t.void_amount, currency)?,
        };
        let mut lines = Vec::with_capacity(self.transactions.len());
        for (i, tx) in self.transactions.into_iter().enumerate() {
            let at = |f: &str| format!("transactions[{i}].{f}");
            validate_stan(&at("stan"), &tx.stan)?;
            validate_rrn(&at("rrn"), &tx.rrn)?;
            let line_type = LineType::parse(&tx.line_type)
                .ok_or_else(|| FieldError::new(at("type"), "must be sale, refund or void"))?;
            let amount_minor = amount(&at("amount"), &tx.amount, currency)?;
            if amount_minor == 0 {
                return Err(FieldError::new(at("amount"), "must be greater than zero"));
            }
            if let Some(original) = &tx.original_stan {
                validate_stan(&at("original_stan"), original)?;
            }
            let captured_at = DateTime::parse_from_rfc3339(&tx.captured_at)
                .map_err(|_| {
                    FieldError::new(
                        at("captured_at"),
                        "must be an RFC 3339 timestamp with an offset",
                    )
                })?
                .with_timezone(&Utc);
            validate_captured_at(&at("captured_at"), captured_at, received_at)?;
            if let Some(brand) = &tx.card_brand {
                validate_card_brand(&at("card_brand"), brand)?;
            }
            if let Some(masked) = &tx.masked_pan {
                if !is_masked_pan(masked) {
                    return Err(FieldError::new(
                        at("masked_pan"),
                        "must show at most the first 6 and last 4 digits, with * for the rest",
                    ));
                }
            }
            if let Some(code) = &tx.auth_code {
                validate_auth_code(&at("auth_code"), code)?;
            }
            lines.push(TransactionLine {
                stan: tx.stan,
                rrn: tx.rrn,
                line_type,
                amount_minor,
                original_stan: tx.original_stan,
                captured_at,
                card_brand: tx.card_brand,
                masked_pan: tx.masked_pan,
                auth_code: tx.auth_code,
            });
        }
        if let Some((repeat, first)) = repeated_rrn_within(&lines) {
            return Err(FieldError::new(
                format!("transactions[{repeat}].rrn"),
                format!(
                    "repeats the RRN of transactions[{first}]; each sale and refund has its own RRN"
                ),
            ));
        }
        Ok(BatchClose {
            batch_number,
            currency,
            terminal_totals,
            lines,
        })
    }
}
