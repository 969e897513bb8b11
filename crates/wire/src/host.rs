//! What the acquirer's authorization host sends (authorizations and reversals, as
//! JSON records or as a capture file's CSV lines) and what it is answered: an
//! outcome per record and totals per outcome.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use settlement_domain::batch::{
    validate_captured_at, validate_card_brand, validate_rrn, validate_stan, FieldError,
};
use settlement_domain::host::{
    validate_host_auth_code, HostAuthorization, HostRecord, HostReversal, HostTransactionType,
    MAX_HOST_RECORDS,
};
use settlement_domain::money::{parse_amount, Currency};
use settlement_domain::pan::is_masked_pan;

/// One record as sent: every field but `type` is optional here, so a record with a
/// field missing or wrong is reported on its own (`rejected`) while the others are
/// recorded.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostRecordRequest {
    #[serde(rename = "type")]
    pub record_type: String,
    #[serde(default)]
    pub terminal_id: Option<String>,
    #[serde(default)]
    pub rrn: Option<String>,
    #[serde(default)]
    pub stan: Option<String>,
    #[serde(default)]
    pub auth_code: Option<String>,
    #[serde(default)]
    pub transaction_type: Option<String>,
    #[serde(default)]
    pub amount: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub authorized_at: Option<String>,
    #[serde(default)]
    pub card_brand: Option<String>,
    #[serde(default)]
    pub masked_pan: Option<String>,
}

/// `POST /v1/host/authorizations` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostRecordsRequest {
    pub records: Vec<HostRecordRequest>,
}

/// Checks the number of records of one request or capture file.
pub fn check_record_count(n: usize) -> Result<(), FieldError> {
    if (1..=MAX_HOST_RECORDS).contains(&n) {
        Ok(())
    } else {
        Err(FieldError::new(
            "records",
            format!("must hold 1 to {MAX_HOST_RECORDS} records"),
        ))
    }
}

fn required<'a>(field: &str, value: &'a Option<String>) -> Result<&'a str, FieldError> {
    value
        .as_deref()
        .ok_or_else(|| FieldError::new(field, "is required"))
}

fn currency(text: &str) -> Result<Currency, FieldError> {
    text.parse()
        .map_err(|_| FieldError::new("currency", "is not a supported ISO 4217 code"))
}

fn amount(text: &str, currency: Currency) -> Result<i64, FieldError> {
    let minor =
        parse_amount(text, currency).map_err(|e| FieldError::new("amount", e.to_string()))?;
    if minor == 0 {
        return Err(FieldError::new("amount", "must be greater than zero"));
    }
    Ok(minor)
}

fn instant(text: &str, received_at: DateTime<Utc>) -> Result<DateTime<Utc>, FieldError> {
    let at = DateTime::parse_from_rfc3339(text)
        .map_err(|_| {
            FieldError::new(
                "authorized_at",
                "must be an RFC 3339 timestamp with an offset",
            )
        })?
        .with_timezone(&Utc);
    validate_captured_at("authorized_at", at, received_at)?;
    Ok(at)
}

fn transaction_type(text: &str) -> Result<HostTransactionType, FieldError> {
    HostTransactionType::parse(text)
        .ok_or_else(|| FieldError::new("transaction_type", "must be sale or refund"))
}

fn card_brand(value: &Option<String>) -> Result<Option<String>, FieldError> {
    if let Some(brand) = value {
        validate_card_brand("card_brand", brand)?;
    }
    Ok(value.clone())
}

fn masked_pan(value: &Option<String>) -> Result<Option<String>, FieldError> {
    match value {
        Some(m) if !is_masked_pan(m) => Err(FieldError::new(
            "masked_pan",
            "must show at most the first 6 and last 4 digits, with * for the rest",
        )),
        _ => Ok(value.clone()),
    }
}

impl HostRecordRequest {
    /// Checks every field and builds the domain record; the error names the field
    /// (without the record's position, which the report gives).
    pub fn to_domain(&self, received_at: DateTime<Utc>) -> Result<HostRecord, FieldError> {
        let terminal_id = required("terminal_id", &self.terminal_id)?;
        if terminal_id.is_empty() || terminal_id.len() > 64 {
            return Err(FieldError::new("terminal_id", "must be 1 to 64 characters"));
        }
        let rrn = required("rrn", &self.rrn)?;
        validate_rrn("rrn", rrn)?;
        match self.record_type.as_str() {
            "authorization" => {
                let stan = required("stan", &self.stan)?;
                validate_stan("stan", stan)?;
                let code = required("auth_code", &self.auth_code)?;
                validate_host_auth_code("auth_code", code)?;
                let currency = currency(required("currency", &self.currency)?)?;
                Ok(HostRecord::Authorization(HostAuthorization {
                    terminal_id: terminal_id.to_owned(),
                    rrn: rrn.to_owned(),
                    stan: stan.to_owned(),
                    auth_code: code.to_owned(),
                    transaction_type: transaction_type(required(
                        "transaction_type",
                        &self.transaction_type,
                    )?)?,
                    amount_minor: amount(required("amount", &self.amount)?, currency)?,
                    currency,
                    authorized_at: instant(
                        required("authorized_at", &self.authorized_at)?,
                        received_at,
                    )?,
                    card_brand: card_brand(&self.card_brand)?,
                    masked_pan: masked_pan(&self.masked_pan)?,
                }))
            }
            "reversal" => {
                if let Some(stan) = &self.stan {
                    validate_stan("stan", stan)?;
                }
                if let Some(code) = &self.auth_code {
                    validate_host_auth_code("auth_code", code)?;
                }
                let currency = self.currency.as_deref().map(currency).transpose()?;
                let amount_minor = match (&self.amount, currency) {
                    (None, _) => None,
                    (Some(a), Some(c)) => Some(amount(a, c)?),
                    (Some(_), None) => {
                        return Err(FieldError::new(
                            "currency",
                            "is required with an amount (the amount is read in its units)",
                        ))
                    }
                };
                Ok(HostRecord::Reversal(HostReversal {
                    terminal_id: terminal_id.to_owned(),
                    rrn: rrn.to_owned(),
                    stan: self.stan.clone(),
                    auth_code: self.auth_code.clone(),
                    transaction_type: self
                        .transaction_type
                        .as_deref()
                        .map(transaction_type)
                        .transpose()?,
                    amount_minor,
                    currency,
                    authorized_at: self
                        .authorized_at
                        .as_deref()
                        .map(|t| instant(t, received_at))
                        .transpose()?,
                    card_brand: card_brand(&self.card_brand)?,
                    masked_pan: masked_pan(&self.masked_pan)?,
                }))
            }
            _ => Err(FieldError::new("type", "must be authorization or reversal")),
        }
    }
}

/// What became of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostOutcome {
    /// A new authorization, stored.
    Recorded,
    /// The same record again (or a reversal of an authorization already reversed):
    /// nothing changed.
    Unchanged,
    /// A reversal cancelled its authorization.
    Reversed,
    /// Same terminal and RRN with other content, or a reversal whose fields disagree
    /// with its authorization: nothing changed.
    Conflict,
    /// Not taken: unknown terminal or authorization, a currency not the merchant's,
    /// an invalid field.
    Rejected,
}

/// Why a record was rejected or conflicts: stable codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostRecordCode {
    /// A field is missing or invalid.
    InvalidField,
    /// No terminal has this id.
    UnknownTerminal,
    /// The currency is not the settlement currency of the terminal's merchant.
    CurrencyNotAccepted,
    /// A reversal of an authorization the service does not know (yet).
    UnknownAuthorization,
    /// The terminal and RRN were authorized with other content.
    AuthorizationDiffers,
    /// The reversal's fields disagree with its authorization.
    ReversalDisagrees,
    /// The reversal was recorded, but a batch had settled its transaction already:
    /// the money stays booked, for operations to recover.
    ReversedAfterSettlement,
}

/// The report of one record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostRecordResult {
    /// The record's position: its index in `records`, or its line in a capture file.
    pub index: usize,
    pub outcome: HostOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<HostRecordCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// How many records had each outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostTotals {
    pub recorded: usize,
    pub unchanged: usize,
    pub reversed: usize,
    pub conflict: usize,
    pub rejected: usize,
}

impl HostTotals {
    /// Counts one outcome.
    pub fn count(&mut self, outcome: HostOutcome) {
        let slot = match outcome {
            HostOutcome::Recorded => &mut self.recorded,
            HostOutcome::Unchanged => &mut self.unchanged,
            HostOutcome::Reversed => &mut self.reversed,
            HostOutcome::Conflict => &mut self.conflict,
            HostOutcome::Rejected => &mut self.rejected,
        };
        *slot += 1;
    }
}

/// The answer to a request of records: one result per record, in their order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostRecordsReport {
    pub totals: HostTotals,
    pub records: Vec<HostRecordResult>,
}

/// Query of a terminal's unsettled transactions.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnsettledQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// An unsettled transaction: authorized by the host, not reversed, presented by no
/// booked or held batch yet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnsettledTransactionView {
    pub rrn: String,
    pub stan: String,
    pub auth_code: String,
    pub transaction_type: String,
    pub amount: String,
    pub currency: String,
    /// RFC 3339, UTC, second precision.
    pub authorized_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_brand: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masked_pan: Option<String>,
}

/// The unsettled amount in one currency: sales, refunds, and sales less refunds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsettledAmount {
    pub currency: String,
    pub count: i64,
    pub sale_amount: String,
    pub refund_amount: String,
    pub net_amount: String,
}

/// A terminal's unsettled transactions in sum: how many, how much per currency,
/// and since when (the oldest authorization; absent when there is none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsettledSummary {
    pub count: i64,
    pub amounts: Vec<UnsettledAmount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

/// A terminal's unsettled transactions in the merchant's status: the summary and
/// the step to take, in plain words (absent when there is nothing unsettled).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsettledStatus {
    #[serde(flatten)]
    pub summary: UnsettledSummary,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_step: Option<String>,
}

/// `GET /v1/merchants/{merchant_id}/terminals/{terminal_id}/unsettled`: the summary
/// and one page of the transactions, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnsettledList {
    pub terminal_id: String,
    pub summary: UnsettledSummary,
    /// What to do about them, in plain words (absent when there is nothing
    /// unsettled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_step: Option<String>,
    pub data: Vec<UnsettledTransactionView>,
    pub has_more: bool,
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-04T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn authorization() -> HostRecordRequest {
        HostRecordRequest {
            record_type: "authorization".into(),
            terminal_id: Some("t1".into()),
            rrn: Some("000000000001".into()),
            stan: Some("000001".into()),
            auth_code: Some("A1B2C3".into()),
            transaction_type: Some("sale".into()),
            amount: Some("12.34".into()),
            currency: Some("EUR".into()),
            authorized_at: Some("2026-12-04T11:00:00+01:00".into()),
            card_brand: Some("visa".into()),
            masked_pan: Some("411111******1111".into()),
        }
    }

    #[test]
    fn an_authorization_parses_its_amount_in_minor_units() {
        match authorization().to_domain(now()) {
            Ok(HostRecord::Authorization(a)) => {
                assert_eq!(a.amount_minor, 1234);
                assert_eq!(a.transaction_type, HostTransactionType::Sale);
                assert_eq!(a.authorized_at, now() - chrono::Duration::hours(2));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_authorization_without_an_auth_code_names_the_field() {
        let mut r = authorization();
        r.auth_code = None;
        assert_eq!(r.to_domain(now()).unwrap_err().field, "auth_code");
    }

    #[test]
    fn a_zero_amount_and_an_unmasked_number_are_refused() {
        let mut r = authorization();
        r.amount = Some("0.00".into());
        assert_eq!(r.to_domain(now()).unwrap_err().field, "amount");
        let mut r = authorization();
        r.masked_pan = Some("4111111111".into());
        assert_eq!(r.to_domain(now()).unwrap_err().field, "masked_pan");
    }

    #[test]
    fn a_reversal_needs_only_terminal_and_rrn() {
        let r = HostRecordRequest {
            record_type: "reversal".into(),
            terminal_id: Some("t1".into()),
            rrn: Some("000000000001".into()),
            ..Default::default()
        };
        assert!(matches!(r.to_domain(now()), Ok(HostRecord::Reversal(_))));
    }

    #[test]
    fn a_reversal_with_an_amount_but_no_currency_is_refused() {
        let r = HostRecordRequest {
            record_type: "reversal".into(),
            terminal_id: Some("t1".into()),
            rrn: Some("000000000001".into()),
            amount: Some("1.00".into()),
            ..Default::default()
        };
        assert_eq!(r.to_domain(now()).unwrap_err().field, "currency");
    }

    #[test]
    fn record_counts_are_one_to_ten_thousand() {
        assert!(check_record_count(0).is_err());
        assert!(check_record_count(1).is_ok());
        assert!(check_record_count(10_000).is_ok());
        assert!(check_record_count(10_001).is_err());
    }
}
