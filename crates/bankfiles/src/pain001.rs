//! The pain.001.001.09 writer: one customer credit transfer initiation per payout
//! file, with one payment information block per (execution date, currency).
//!
//! Everything is checked before a byte is written, so a refused initiation yields no
//! partial file. Element order follows the XSD (CustomerCreditTransferInitiationV09).

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Utc};
use quick_xml::escape::escape;

use crate::amount::{decimal_text, rescale, AMOUNT_BOUND, MAX_MINOR_UNIT_DIGITS};
use crate::iban::is_valid_iban;

/// Namespace of the pain.001 version written here.
pub const PAIN001_NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09";

/// Most credit transfers in one file. A bank accepts or rejects a file whole, so a
/// bad file should stop few payouts; and the bank's status report for a full file,
/// echoing each transfer, stays well under `pain002::MAX_REPORT_BYTES`.
pub const MAX_TRANSFERS_PER_FILE: usize = 10_000;

/// Max35Text: message, payment information, instruction and end-to-end ids.
pub const MAX_ID_CHARS: usize = 35;

/// Max140Text: names and unstructured remittance information (longer text is cut).
pub const MAX_TEXT_CHARS: usize = 140;

/// Max34Text: an account id that is not an IBAN (`<Othr><Id>`).
pub const MAX_OTHER_ACCOUNT_CHARS: usize = 34;

/// Debtor agent id when no BIC is given, as the ISO 20022 usage guidelines spell it.
pub const NOT_PROVIDED: &str = "NOTPROVIDED";

/// The ordering customer (debtor) of a file: the acquirer's own account.
#[derive(Clone, PartialEq, Eq)]
pub struct Party {
    /// Name, cut to 140 characters.
    pub name: String,
    /// An IBAN, or any other account id of at most 34 characters.
    pub account: String,
    /// BIC of the account's bank (BICFI, 8 or 11 characters), if known.
    pub bic: Option<String>,
}

/// One payout to one creditor.
#[derive(Clone, PartialEq, Eq)]
pub struct CreditTransfer {
    /// At most 35 characters, unique in the file, e.g. a payout UUID as 32 hex digits.
    pub end_to_end_id: String,
    /// Amount in minor units of `currency`; must be positive.
    pub amount_minor: i64,
    /// ISO 4217 alphabetic code, three upper-case letters.
    pub currency: String,
    /// ISO 4217 exponent of `currency`: 0 for JPY, 2 for USD, 3 for KWD.
    pub minor_unit_digits: u32,
    /// Name of the creditor, cut to 140 characters.
    pub creditor_name: String,
    /// The full account: an IBAN or any other account id, e.g. a 19-digit card number.
    pub creditor_account: String,
    /// Day the debtor's bank is asked to execute the transfer.
    pub requested_execution_date: NaiveDate,
    /// Unstructured remittance text, cut to 140 characters; left out when blank.
    pub remittance_information: String,
}

/// One pain.001 message: a group header and the transfers it initiates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Initiation {
    /// At most 35 characters, unique per debtor and bank.
    pub message_id: String,
    /// When the message was created.
    pub created_at: DateTime<Utc>,
    /// The ordering customer, also named as the initiating party.
    pub debtor: Party,
    /// The transfers; at least one, at most `MAX_TRANSFERS_PER_FILE`.
    pub transfers: Vec<CreditTransfer>,
}

// Accounts may be card numbers: Debug shows only their last four characters.
impl fmt::Debug for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Party")
            .field("name", &self.name)
            .field("account", &Masked(&self.account))
            .field("bic", &self.bic)
            .finish()
    }
}

impl fmt::Debug for CreditTransfer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreditTransfer")
            .field("end_to_end_id", &self.end_to_end_id)
            .field("amount_minor", &self.amount_minor)
            .field("currency", &self.currency)
            .field("minor_unit_digits", &self.minor_unit_digits)
            .field("creditor_name", &self.creditor_name)
            .field("creditor_account", &Masked(&self.creditor_account))
            .field("requested_execution_date", &self.requested_execution_date)
            .field("remittance_information", &self.remittance_information)
            .finish()
    }
}

struct Masked<'a>(&'a str);

impl fmt::Debug for Masked<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.chars().count();
        let tail: String = self.0.chars().skip(count.saturating_sub(4)).collect();
        write!(f, "\"…{tail}\"")
    }
}

/// Why an initiation cannot be written. Fields are named by their path in the
/// `Initiation` (`transfers[3].currency`); account values are never included.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The file would initiate nothing.
    #[error("an initiation needs at least one credit transfer")]
    NoTransfers,
    /// More transfers than one file may hold.
    #[error("{count} credit transfers exceed the limit of {limit} per file")]
    TooManyTransfers {
        /// Transfers given.
        count: usize,
        /// `MAX_TRANSFERS_PER_FILE`.
        limit: usize,
    },
    /// A required id or name is empty or blank.
    #[error("{field} is empty")]
    Empty {
        /// Path of the field.
        field: String,
    },
    /// An id longer than the schema allows (ids are never cut).
    #[error("{field} has {chars} characters, more than the {max} allowed")]
    TooLong {
        /// Path of the field.
        field: String,
        /// Characters given.
        chars: usize,
        /// Characters allowed.
        max: usize,
    },
    /// A control character (or U+FFFE/U+FFFF) that XML 1.0 cannot carry.
    #[error("{field} contains a character that XML 1.0 cannot carry")]
    InvalidCharacter {
        /// Path of the field.
        field: String,
    },
    /// Zero or negative amount.
    #[error("{field} must be positive, got {amount_minor} minor units")]
    NonPositiveAmount {
        /// Path of the field.
        field: String,
        /// Amount given.
        amount_minor: i64,
    },
    /// An amount with more than the 18 digits the schema allows.
    #[error("{field} has more than 18 digits")]
    AmountTooLarge {
        /// Path of the field.
        field: String,
    },
    /// A currency code that is not three upper-case ASCII letters.
    #[error("{field} {currency:?} is not three upper-case letters")]
    InvalidCurrency {
        /// Path of the field.
        field: String,
        /// Code given.
        currency: String,
    },
    /// An exponent no ISO 4217 currency has.
    #[error("{field} is {digits}; ISO 4217 exponents are 0 to 4")]
    InvalidMinorUnitDigits {
        /// Path of the field.
        field: String,
        /// Exponent given.
        digits: u32,
    },
    /// One currency given with two exponents in the same file.
    #[error("currency {currency} is given with {first} and with {second} minor-unit digits")]
    InconsistentMinorUnitDigits {
        /// The currency.
        currency: String,
        /// Exponent of its first transfer.
        first: u32,
        /// The differing exponent.
        second: u32,
    },
    /// An account that is neither a valid IBAN nor an id of 1 to 34 characters.
    #[error("{field} is neither a valid IBAN nor an account id of 1 to 34 characters")]
    InvalidAccount {
        /// Path of the field.
        field: String,
    },
    /// A debtor BIC that does not match BICFI.
    #[error("{field} {bic:?} is not a BIC of 8 or 11 characters")]
    InvalidBic {
        /// Path of the field.
        field: String,
        /// BIC given.
        bic: String,
    },
    /// Two transfers with one end-to-end id: the status report could not tell them apart.
    #[error("end-to-end id {end_to_end_id} appears more than once")]
    DuplicateEndToEndId {
        /// The repeated id.
        end_to_end_id: String,
    },
    /// A control sum with more than the 18 digits the schema allows.
    #[error("the control sum has more than 18 digits")]
    ControlSumTooLarge,
    /// A date or time outside years 1 to 9999, which xs:date cannot carry as written.
    #[error("{field} is outside the years 1 to 9999")]
    DateOutOfRange {
        /// Path of the field.
        field: String,
    },
}

/// The pain.001.001.09 document for `initiation`, as UTF-8 text with an XML
/// declaration, or why it cannot be written.
///
/// Payment information blocks come in (execution date, currency) order, transfers in
/// their given order inside each; `PmtInfId` is the message id (cut if need be)
/// followed by `-` and the block's 1-based index, unique within the message.
pub fn pain001_xml(initiation: &Initiation) -> Result<String, WriteError> {
    let checked = check(initiation)?;
    Ok(write(initiation, &checked))
}

/// What `check` works out once, for `write` to use.
struct Checked<'a> {
    groups: Vec<Group<'a>>,
    control_sum: String,
    debtor_account: Account<'a>,
}

struct Group<'a> {
    date: NaiveDate,
    lines: Vec<Line<'a>>,
    control_sum: String,
}

/// A checked transfer with its account form and amount text.
struct Line<'a> {
    transfer: &'a CreditTransfer,
    account: Account<'a>,
    amount: String,
}

enum Account<'a> {
    Iban(&'a str),
    Other(&'a str),
}

fn check(initiation: &Initiation) -> Result<Checked<'_>, WriteError> {
    let count = initiation.transfers.len();
    if count == 0 {
        return Err(WriteError::NoTransfers);
    }
    if count > MAX_TRANSFERS_PER_FILE {
        return Err(WriteError::TooManyTransfers {
            count,
            limit: MAX_TRANSFERS_PER_FILE,
        });
    }
    check_id("message_id", &initiation.message_id)?;
    if !(1..=9999).contains(&initiation.created_at.year()) {
        return Err(WriteError::DateOutOfRange {
            field: "created_at".into(),
        });
    }
    let debtor = &initiation.debtor;
    check_name("debtor.name", &debtor.name)?;
    let debtor_account = account("debtor.account", &debtor.account)?;
    if let Some(bic) = &debtor.bic {
        if !is_bicfi(bic) {
            return Err(WriteError::InvalidBic {
                field: "debtor.bic".into(),
                bic: bic.clone(),
            });
        }
    }

    let mut seen_ids = HashSet::with_capacity(count);
    let mut digits_by_currency: BTreeMap<&str, u32> = BTreeMap::new();
    let mut groups: BTreeMap<(NaiveDate, &str), Vec<Line<'_>>> = BTreeMap::new();
    for (index, transfer) in initiation.transfers.iter().enumerate() {
        let field = |name: &str| format!("transfers[{index}].{name}");
        check_id(&field("end_to_end_id"), &transfer.end_to_end_id)?;
        if !seen_ids.insert(transfer.end_to_end_id.as_str()) {
            return Err(WriteError::DuplicateEndToEndId {
                end_to_end_id: transfer.end_to_end_id.clone(),
            });
        }
        let currency = transfer.currency.as_str();
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(WriteError::InvalidCurrency {
                field: field("currency"),
                currency: transfer.currency.clone(),
            });
        }
        let digits = transfer.minor_unit_digits;
        if digits > MAX_MINOR_UNIT_DIGITS {
            return Err(WriteError::InvalidMinorUnitDigits {
                field: field("minor_unit_digits"),
                digits,
            });
        }
        let first = *digits_by_currency.entry(currency).or_insert(digits);
        if first != digits {
            return Err(WriteError::InconsistentMinorUnitDigits {
                currency: transfer.currency.clone(),
                first,
                second: digits,
            });
        }
        let amount = u128::try_from(transfer.amount_minor)
            .ok()
            .filter(|amount| *amount > 0)
            .ok_or_else(|| WriteError::NonPositiveAmount {
                field: field("amount_minor"),
                amount_minor: transfer.amount_minor,
            })?;
        if amount >= AMOUNT_BOUND {
            return Err(WriteError::AmountTooLarge {
                field: field("amount_minor"),
            });
        }
        check_name(&field("creditor_name"), &transfer.creditor_name)?;
        let creditor_account = account(&field("creditor_account"), &transfer.creditor_account)?;
        check_text(
            &field("remittance_information"),
            &transfer.remittance_information,
        )?;
        let date = transfer.requested_execution_date;
        if !(1..=9999).contains(&date.year()) {
            return Err(WriteError::DateOutOfRange {
                field: field("requested_execution_date"),
            });
        }
        let digits = usize::try_from(digits).map_err(|_| WriteError::InvalidMinorUnitDigits {
            field: field("minor_unit_digits"),
            digits,
        })?;
        groups.entry((date, currency)).or_default().push(Line {
            transfer,
            account: creditor_account,
            amount: decimal_text(amount, digits),
        });
    }

    let groups = groups
        .into_iter()
        .map(|((date, _), lines)| {
            let control_sum = control_sum(lines.iter().map(|line| line.transfer))?;
            Ok(Group {
                date,
                lines,
                control_sum,
            })
        })
        .collect::<Result<Vec<_>, WriteError>>()?;
    let control_sum = control_sum(initiation.transfers.iter())?;
    Ok(Checked {
        groups,
        control_sum,
        debtor_account,
    })
}

/// The sum of already checked amounts, at the largest exponent among them: a hash
/// total across currencies, as `CtrlSum` is defined.
fn control_sum<'a>(
    transfers: impl Iterator<Item = &'a CreditTransfer> + Clone,
) -> Result<String, WriteError> {
    let digits = transfers
        .clone()
        .map(|t| t.minor_unit_digits)
        .max()
        .unwrap_or(0);
    let mut sum: u128 = 0;
    for transfer in transfers {
        let amount = u128::try_from(transfer.amount_minor)
            .ok()
            .and_then(|amount| rescale(amount, transfer.minor_unit_digits, digits))
            .ok_or(WriteError::ControlSumTooLarge)?;
        sum = sum
            .checked_add(amount)
            .filter(|sum| *sum < AMOUNT_BOUND)
            .ok_or(WriteError::ControlSumTooLarge)?;
    }
    let digits = usize::try_from(digits).map_err(|_| WriteError::ControlSumTooLarge)?;
    Ok(decimal_text(sum, digits))
}

fn check_id(field: &str, id: &str) -> Result<(), WriteError> {
    check_text(field, id)?;
    if id.trim().is_empty() {
        return Err(WriteError::Empty {
            field: field.into(),
        });
    }
    let chars = id.chars().count();
    if chars > MAX_ID_CHARS {
        return Err(WriteError::TooLong {
            field: field.into(),
            chars,
            max: MAX_ID_CHARS,
        });
    }
    Ok(())
}

fn check_name(field: &str, name: &str) -> Result<(), WriteError> {
    check_text(field, name)?;
    if name.trim().is_empty() {
        return Err(WriteError::Empty {
            field: field.into(),
        });
    }
    Ok(())
}

/// Refuses the characters XML 1.0 cannot carry at all, escaped or not.
fn check_text(field: &str, text: &str) -> Result<(), WriteError> {
    let legal = |c: char| {
        matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
    };
    if text.chars().all(legal) {
        Ok(())
    } else {
        Err(WriteError::InvalidCharacter {
            field: field.into(),
        })
    }
}

fn account<'a>(field: &str, account: &'a str) -> Result<Account<'a>, WriteError> {
    check_text(field, account)?;
    if is_valid_iban(account) {
        return Ok(Account::Iban(account));
    }
    let chars = account.chars().count();
    if account.trim().is_empty() || chars > MAX_OTHER_ACCOUNT_CHARS {
        return Err(WriteError::InvalidAccount {
            field: field.into(),
        });
    }
    Ok(Account::Other(account))
}

/// The XSD's BICFIDec2014Identifier: `[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?`.
fn is_bicfi(bic: &str) -> bool {
    let b = bic.as_bytes();
    let upper_or_digit = |c: &u8| c.is_ascii_uppercase() || c.is_ascii_digit();
    (b.len() == 8 || b.len() == 11)
        && b.iter().all(upper_or_digit)
        && b.get(4..6)
            .is_some_and(|country| country.iter().all(u8::is_ascii_uppercase))
}

/// Free text cut to at most `MAX_TEXT_CHARS` characters (Unicode scalar values, as
/// XSD lengths count), without the trailing blanks a cut can leave.
fn cut_text(text: &str) -> &str {
    cut(text, MAX_TEXT_CHARS).trim_end()
}

/// `text` cut to at most `max` characters (Unicode scalar values, as XSD lengths count).
fn cut(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// The PmtInfId of the block at `index` (0-based): the message id, cut so that the
/// suffix `-{index + 1}` fits in 35 characters.
fn payment_information_id(message_id: &str, index: usize) -> String {
    let suffix = format!("-{}", index + 1);
    let room = MAX_ID_CHARS.saturating_sub(suffix.len());
    format!("{}{suffix}", cut(message_id, room))
}

fn write(initiation: &Initiation, checked: &Checked<'_>) -> String {
    let debtor = &initiation.debtor;
    let debtor_name = cut_text(&debtor.name);
    let mut x = Xml::default();
    x.out
        .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.out.push_str("<Document xmlns=\"");
    x.out.push_str(PAIN001_NAMESPACE);
    x.out.push_str("\">\n");
    x.depth = 1;
    x.open("CstmrCdtTrfInitn");

    x.open("GrpHdr");
    x.leaf("MsgId", &initiation.message_id);
    x.leaf(
        "CreDtTm",
        &initiation
            .created_at
            .to_rfc3339_opts(SecondsFormat::Secs, true),
    );
    x.leaf("NbOfTxs", &initiation.transfers.len().to_string());
    x.leaf("CtrlSum", &checked.control_sum);
    x.open("InitgPty");
    x.leaf("Nm", debtor_name);
    x.close("InitgPty");
    x.close("GrpHdr");

    for (index, group) in checked.groups.iter().enumerate() {
        x.open("PmtInf");
        x.leaf(
            "PmtInfId",
            &payment_information_id(&initiation.message_id, index),
        );
        x.leaf("PmtMtd", "TRF");
        // One booking per transfer, so each payout can be matched on the statement.
        x.leaf("BtchBookg", "false");
        x.leaf("NbOfTxs", &group.lines.len().to_string());
        x.leaf("CtrlSum", &group.control_sum);
        x.open("ReqdExctnDt");
        x.leaf("Dt", &group.date.format("%Y-%m-%d").to_string());
        x.close("ReqdExctnDt");
        x.open("Dbtr");
        x.leaf("Nm", debtor_name);
        x.close("Dbtr");
        x.open("DbtrAcct");
        x.account(&checked.debtor_account);
        x.close("DbtrAcct");
        x.open("DbtrAgt");
        x.open("FinInstnId");
        match &debtor.bic {
            Some(bic) => x.leaf("BICFI", bic),
            None => {
                x.open("Othr");
                x.leaf("Id", NOT_PROVIDED);
                x.close("Othr");
            }
        }
        x.close("FinInstnId");
        x.close("DbtrAgt");
        x.leaf("ChrgBr", "SLEV");
        for Line {
            transfer,
            account: creditor_account,
            amount,
        } in &group.lines
        {
            x.open("CdtTrfTxInf");
            x.open("PmtId");
            x.leaf("InstrId", &transfer.end_to_end_id);
            x.leaf("EndToEndId", &transfer.end_to_end_id);
            x.close("PmtId");
            x.open("Amt");
            x.indent();
            x.out.push_str("<InstdAmt Ccy=\"");
            x.out.push_str(&escape(transfer.currency.as_str()));
            x.out.push_str("\">");
            x.out.push_str(amount);
            x.out.push_str("</InstdAmt>\n");
            x.close("Amt");
            x.open("Cdtr");
            x.leaf("Nm", cut_text(&transfer.creditor_name));
            x.close("Cdtr");
            x.open("CdtrAcct");
            x.account(creditor_account);
            x.close("CdtrAcct");
            let remittance = cut_text(&transfer.remittance_information);
            if !remittance.trim().is_empty() {
                x.open("RmtInf");
                x.leaf("Ustrd", remittance);
                x.close("RmtInf");
            }
            x.close("CdtTrfTxInf");
        }
        x.close("PmtInf");
    }

    x.close("CstmrCdtTrfInitn");
    x.out.push_str("</Document>\n");
    x.out
}

/// A minimal indenting writer: every value goes through `escape`.
#[derive(Default)]
struct Xml {
    out: String,
    depth: usize,
}

impl Xml {
    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
    }

    fn open(&mut self, name: &str) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(">\n");
        self.depth += 1;
    }

    fn close(&mut self, name: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.indent();
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    fn leaf(&mut self, name: &str, text: &str) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self.out.push_str(&escape(text));
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    fn account(&mut self, account: &Account<'_>) {
        self.open("Id");
        match account {
            Account::Iban(iban) => self.leaf("IBAN", iban),
            Account::Other(id) => {
                self.open("Othr");
                self.leaf("Id", id);
                self.close("Othr");
            }
        }
        self.close("Id");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    fn transfer(id: &str, amount_minor: i64, currency: &str, digits: u32) -> CreditTransfer {
        CreditTransfer {
            end_to_end_id: id.into(),
            amount_minor,
            currency: currency.into(),
            minor_unit_digits: digits,
            creditor_name: "Merchant One".into(),
            creditor_account: "DE89370400440532013000".into(),
            requested_execution_date: date(2026, 3, 2),
            remittance_information: "Settlement 2026-03-01".into(),
        }
    }

    fn initiation(transfers: Vec<CreditTransfer>) -> Initiation {
        Initiation {
            message_id: "PAYOUT-20260301-0001".into(),
            created_at: Utc
                .with_ymd_and_hms(2026, 3, 1, 22, 5, 9)
                .single()
                .expect("valid time"),
            debtor: Party {
                name: "Acme Acquiring Ltd".into(),
                account: "GB82WEST12345698765432".into(),
                bic: Some("WESTGB2L".into()),
            },
            transfers,
        }
    }

    fn xml(transfers: Vec<CreditTransfer>) -> String {
        pain001_xml(&initiation(transfers)).expect("writes")
    }

    fn err(i: &Initiation) -> WriteError {
        pain001_xml(i).expect_err("refused")
    }

    #[test]
    fn a_single_transfer_is_written_in_schema_order() {
        let out = xml(vec![transfer(
            "0123456789abcdef0123456789abcdef",
            12_345,
            "EUR",
            2,
        )]);
        let expected = r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09">
  <CstmrCdtTrfInitn>
    <GrpHdr>
      <MsgId>PAYOUT-20260301-0001</MsgId>
      <CreDtTm>2026-03-01T22:05:09Z</CreDtTm>
      <NbOfTxs>1</NbOfTxs>
      <CtrlSum>123.45</CtrlSum>
      <InitgPty>
        <Nm>Acme Acquiring Ltd</Nm>
      </InitgPty>
    </GrpHdr>
    <PmtInf>
      <PmtInfId>PAYOUT-20260301-0001-1</PmtInfId>
      <PmtMtd>TRF</PmtMtd>
      <BtchBookg>false</BtchBookg>
      <NbOfTxs>1</NbOfTxs>
      <CtrlSum>123.45</CtrlSum>
      <ReqdExctnDt>
        <Dt>2026-03-02</Dt>
      </ReqdExctnDt>
      <Dbtr>
        <Nm>Acme Acquiring Ltd</Nm>
      </Dbtr>
      <DbtrAcct>
        <Id>
          <IBAN>GB82WEST12345698765432</IBAN>
        </Id>
      </DbtrAcct>
      <DbtrAgt>
        <FinInstnId>
          <BICFI>WESTGB2L</BICFI>
        </FinInstnId>
      </DbtrAgt>
      <ChrgBr>SLEV</ChrgBr>
      <CdtTrfTxInf>
        <PmtId>
          <InstrId>0123456789abcdef0123456789abcdef</InstrId>
          <EndToEndId>0123456789abcdef0123456789abcdef</EndToEndId>
        </PmtId>
        <Amt>
          <InstdAmt Ccy="EUR">123.45</InstdAmt>
        </Amt>
        <Cdtr>
          <Nm>Merchant One</Nm>
        </Cdtr>
        <CdtrAcct>
          <Id>
            <IBAN>DE89370400440532013000</IBAN>
          </Id>
        </CdtrAcct>
        <RmtInf>
          <Ustrd>Settlement 2026-03-01</Ustrd>
        </RmtInf>
      </CdtTrfTxInf>
    </PmtInf>
  </CstmrCdtTrfInitn>
</Document>
"#;
        assert_eq!(out, expected);
    }

    #[test]
    fn amounts_carry_exactly_the_currency_decimals() {
        let out = xml(vec![
            transfer("jpy", 1_500, "JPY", 0),
            transfer("usd", 5, "USD", 2),
            transfer("kwd", 12_000, "KWD", 3),
        ]);
        assert!(out.contains(r#"<InstdAmt Ccy="JPY">1500</InstdAmt>"#));
        assert!(out.contains(r#"<InstdAmt Ccy="USD">0.05</InstdAmt>"#));
        assert!(out.contains(r#"<InstdAmt Ccy="KWD">12.000</InstdAmt>"#));
        // The header total is exact across exponents: 1500 + 0.05 + 12.000.
        assert!(out.contains("<CtrlSum>1512.050</CtrlSum>"));
    }

    #[test]
    fn transfers_are_grouped_by_date_then_currency_in_a_stable_order() {
        let mut late_eur = transfer("late-eur", 100, "EUR", 2);
        late_eur.requested_execution_date = date(2026, 3, 3);
        let mut late_jpy = transfer("late-jpy", 700, "JPY", 0);
        late_jpy.requested_execution_date = date(2026, 3, 3);
        let out = xml(vec![
            late_jpy,
            transfer("early-usd-1", 200, "USD", 2),
            late_eur,
            transfer("early-eur", 300, "EUR", 2),
            transfer("early-usd-2", 250, "USD", 2),
        ]);
        let order: Vec<&str> = out
            .lines()
            .filter_map(|l| l.trim().strip_prefix("<EndToEndId>"))
            .map(|l| l.trim_end_matches("</EndToEndId>"))
            .collect();
        assert_eq!(
            order,
            [
                "early-eur",
                "early-usd-1",
                "early-usd-2",
                "late-eur",
                "late-jpy"
            ]
        );
        let ids: Vec<&str> = out
            .lines()
            .filter_map(|l| l.trim().strip_prefix("<PmtInfId>"))
            .collect();
        assert_eq!(
            ids,
            [
                "PAYOUT-20260301-0001-1</PmtInfId>",
                "PAYOUT-20260301-0001-2</PmtInfId>",
                "PAYOUT-20260301-0001-3</PmtInfId>",
                "PAYOUT-20260301-0001-4</PmtInfId>",
            ]
        );
        assert!(out.contains("<NbOfTxs>5</NbOfTxs>"));
        assert!(out.contains("<NbOfTxs>2</NbOfTxs>\n      <CtrlSum>4.50</CtrlSum>"));
        assert_eq!(out.matches("<Dt>2026-03-02</Dt>").count(), 2);
        assert_eq!(out.matches("<Dt>2026-03-03</Dt>").count(), 2);
    }

    #[test]
    fn text_is_escaped_and_cut_on_character_boundaries() {
        let mut t = transfer("e2e", 100, "CNY", 2);
        t.creditor_name = "O'Brien & Sons <Ltd> \"Q\"".into();
        t.remittance_information = "结算".repeat(100);
        let out = xml(vec![t]);
        assert!(out.contains("<Nm>O&apos;Brien &amp; Sons &lt;Ltd&gt; &quot;Q&quot;</Nm>"));
        let ustrd = format!("<Ustrd>{}</Ustrd>", "结算".repeat(70));
        assert!(out.contains(&ustrd), "{out}");
    }

    #[test]
    fn a_long_name_is_cut_to_140_characters() {
        let mut i = initiation(vec![transfer("e2e", 100, "EUR", 2)]);
        i.debtor.name = "é".repeat(200);
        let out = pain001_xml(&i).expect("writes");
        assert!(out.contains(&format!("<Nm>{}</Nm>", "é".repeat(140))));
        assert!(!out.contains(&"é".repeat(141)));
    }

    #[test]
    fn non_iban_accounts_go_under_othr() {
        let mut t = transfer("e2e", 100, "CNY", 2);
        t.creditor_account = "6222020200112233446".into();
        let mut i = initiation(vec![t]);
        i.debtor.account = "DE89370400440532013001".into(); // check digits fail
        i.debtor.bic = None;
        let out = pain001_xml(&i).expect("writes");
        assert!(out.contains("<Othr>\n              <Id>6222020200112233446</Id>"));
        assert!(out.contains("<Othr>\n            <Id>DE89370400440532013001</Id>"));
        assert!(out.contains("<FinInstnId>\n          <Othr>\n            <Id>NOTPROVIDED</Id>"));
        assert!(!out.contains("<IBAN>"));
        assert!(!out.contains("<BICFI>"));
    }

    #[test]
    fn blank_remittance_is_left_out() {
        let mut t = transfer("e2e", 100, "EUR", 2);
        t.remittance_information = "  ".into();
        assert!(!xml(vec![t]).contains("RmtInf"));
    }

    #[test]
    fn payment_information_ids_stay_within_35_characters() {
        let long = "M".repeat(35);
        assert_eq!(
            payment_information_id(&long, 0),
            format!("{}-1", "M".repeat(33))
        );
        assert_eq!(
            payment_information_id(&long, 99),
            format!("{}-100", "M".repeat(31))
        );
        assert_eq!(payment_information_id("short", 2), "short-3");
    }

    #[test]
    fn debug_output_masks_accounts() {
        let mut t = transfer("e2e", 100, "CNY", 2);
        t.creditor_account = "6222020200112233446".into();
        let shown = format!("{:?}", initiation(vec![t]));
        assert!(!shown.contains("6222020200112233446"), "{shown}");
        assert!(!shown.contains("GB82WEST12345698765432"), "{shown}");
        assert!(shown.contains("…3446"), "{shown}");
    }

    #[test]
    fn an_empty_transfer_list_is_refused() {
        assert_eq!(err(&initiation(vec![])), WriteError::NoTransfers);
    }

    #[test]
    fn more_transfers_than_a_file_holds_are_refused() {
        let transfers = (0..=MAX_TRANSFERS_PER_FILE)
            .map(|n| transfer(&n.to_string(), 1, "EUR", 2))
            .collect();
        assert_eq!(
            err(&initiation(transfers)),
            WriteError::TooManyTransfers {
                count: MAX_TRANSFERS_PER_FILE + 1,
                limit: MAX_TRANSFERS_PER_FILE
            }
        );
    }

    #[test]
    fn zero_and_negative_amounts_are_refused() {
        for amount_minor in [0, -1, i64::MIN] {
            assert_eq!(
                err(&initiation(vec![transfer("e2e", amount_minor, "EUR", 2)])),
                WriteError::NonPositiveAmount {
                    field: "transfers[0].amount_minor".into(),
                    amount_minor
                }
            );
        }
    }

    #[test]
    fn amounts_over_18_digits_are_refused() {
        let i = initiation(vec![transfer("e2e", 1_000_000_000_000_000_000, "EUR", 2)]);
        assert_eq!(
            err(&i),
            WriteError::AmountTooLarge {
                field: "transfers[0].amount_minor".into()
            }
        );
        let i = initiation(vec![
            transfer("a", 999_999_999_999_999_999, "EUR", 2),
            transfer("b", 1, "EUR", 2),
        ]);
        assert_eq!(err(&i), WriteError::ControlSumTooLarge);
    }

    #[test]
    fn ids_longer_than_35_characters_are_refused() {
        let i = initiation(vec![transfer(&"a".repeat(36), 1, "EUR", 2)]);
        assert_eq!(
            err(&i),
            WriteError::TooLong {
                field: "transfers[0].end_to_end_id".into(),
                chars: 36,
                max: 35
            }
        );
        let mut i = initiation(vec![transfer("e2e", 1, "EUR", 2)]);
        i.message_id = "m".repeat(36);
        assert!(matches!(err(&i), WriteError::TooLong { field, .. } if field == "message_id"));
        // 35 is allowed.
        let i = initiation(vec![transfer(&"a".repeat(35), 1, "EUR", 2)]);
        assert!(pain001_xml(&i).is_ok());
    }

    #[test]
    fn empty_ids_and_names_are_refused() {
        let i = initiation(vec![transfer(" ", 1, "EUR", 2)]);
        assert!(
            matches!(err(&i), WriteError::Empty { field } if field == "transfers[0].end_to_end_id")
        );
        let mut t = transfer("e2e", 1, "EUR", 2);
        t.creditor_name = String::new();
        assert!(
            matches!(err(&initiation(vec![t])), WriteError::Empty { field } if field == "transfers[0].creditor_name")
        );
        let mut i = initiation(vec![transfer("e2e", 1, "EUR", 2)]);
        i.debtor.name = "\n".into();
        assert!(matches!(err(&i), WriteError::Empty { field } if field == "debtor.name"));
    }

    #[test]
    fn duplicate_end_to_end_ids_are_refused() {
        let i = initiation(vec![
            transfer("same", 1, "EUR", 2),
            transfer("same", 2, "USD", 2),
        ]);
        assert_eq!(
            err(&i),
            WriteError::DuplicateEndToEndId {
                end_to_end_id: "same".into()
            }
        );
    }

    #[test]
    fn accounts_that_fit_neither_iban_nor_othr_are_refused() {
        for account in ["", "   ", &"1".repeat(35)] {
            let mut t = transfer("e2e", 1, "EUR", 2);
            t.creditor_account = account.to_string();
            let refused = err(&initiation(vec![t]));
            assert_eq!(
                refused,
                WriteError::InvalidAccount {
                    field: "transfers[0].creditor_account".into()
                }
            );
            // The account never appears in the message.
            assert!(account.trim().is_empty() || !refused.to_string().contains(account));
        }
        let mut i = initiation(vec![transfer("e2e", 1, "EUR", 2)]);
        i.debtor.account = "x".repeat(35);
        assert!(
            matches!(err(&i), WriteError::InvalidAccount { field } if field == "debtor.account")
        );
    }

    #[test]
    fn currencies_that_are_not_three_upper_case_letters_are_refused() {
        for currency in ["eur", "EU", "EURO", "E1R", "", "ÉUR"] {
            let refused = err(&initiation(vec![transfer("e2e", 1, currency, 2)]));
            assert!(
                matches!(&refused, WriteError::InvalidCurrency { currency: c, .. } if c == currency),
                "{currency}: {refused:?}"
            );
        }
    }

    #[test]
    fn exponents_beyond_iso_4217_or_inconsistent_ones_are_refused() {
        assert!(matches!(
            err(&initiation(vec![transfer("e2e", 1, "EUR", 5)])),
            WriteError::InvalidMinorUnitDigits { digits: 5, .. }
        ));
        let i = initiation(vec![transfer("a", 1, "EUR", 2), transfer("b", 1, "EUR", 3)]);
        assert_eq!(
            err(&i),
            WriteError::InconsistentMinorUnitDigits {
                currency: "EUR".into(),
                first: 2,
                second: 3
            }
        );
    }

    #[test]
    fn malformed_bics_are_refused() {
        for bic in [
            "WESTGB2",
            "westgb2l",
            "WEST1B2L",
            "WESTGB2LXX",
            "WESTGB2L XXX",
        ] {
            let mut i = initiation(vec![transfer("e2e", 1, "EUR", 2)]);
            i.debtor.bic = Some(bic.into());
            assert!(matches!(err(&i), WriteError::InvalidBic { .. }), "{bic}");
        }
        let mut i = initiation(vec![transfer("e2e", 1, "EUR", 2)]);
        i.debtor.bic = Some("DEUTDEFF500".into());
        assert!(pain001_xml(&i).is_ok());
    }

    #[test]
    fn characters_xml_cannot_carry_are_refused() {
        let mut t = transfer("e2e", 1, "EUR", 2);
        t.remittance_information = "bell\u{7}".into();
        assert!(matches!(
            err(&initiation(vec![t])),
            WriteError::InvalidCharacter { field } if field == "transfers[0].remittance_information"
        ));
        let i = initiation(vec![transfer("e2e\u{0}", 1, "EUR", 2)]);
        assert!(matches!(err(&i), WriteError::InvalidCharacter { .. }));
    }

    #[test]
    fn dates_beyond_year_9999_are_refused() {
        let mut t = transfer("e2e", 1, "EUR", 2);
        t.requested_execution_date = date(10_000, 1, 1);
        assert!(matches!(
            err(&initiation(vec![t])),
            WriteError::DateOutOfRange { field } if field == "transfers[0].requested_execution_date"
        ));
    }
}
