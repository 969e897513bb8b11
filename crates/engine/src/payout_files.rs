//! The payout instruction file: due pending payouts go in transit and out to the
//! bank, as CSV for people (accounts masked) or as an ISO 20022 pain.001.001.09 for
//! the bank (accounts whole, the one place they are opened). A payout of a merchant
//! without a bank account, or whose payouts are on hold, stays pending and is counted.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, PgPool};

use settlement_bankfiles::{pain001_xml, CreditTransfer, Initiation, Party};
use settlement_domain::business_days::add_business_days;
use settlement_domain::money::format_amount;
use settlement_domain::payout::PayoutStatus;
use settlement_store::{holidays, merchants, payouts};
use settlement_wire::money::PayoutView;
use settlement_wire::ProblemCode;

use crate::audit::{self, Action};
use crate::bank_account::{self, BankAccountKeys};
use crate::csv_out;
use crate::db::in_transaction;
use crate::error::EngineError;
use crate::settlement::transition_payout;
use crate::views::{merchant_reader, stored_currency, to_json, ReadRow};

/// The formats of a payout file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// CSV with masked accounts, for people.
    Csv,
    /// ISO 20022 pain.001.001.09 with whole accounts, for the bank.
    Pain001,
}

impl FileFormat {
    /// The format's name, as the audit records it.
    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::Pain001 => "pain.001.001.09",
        }
    }
}

/// The acquirer's own account, debited by the bank for every payout
/// (`PAYOUT_DEBTOR_*`).
#[derive(Debug, Clone)]
pub struct PayoutDebtor {
    /// `PAYOUT_DEBTOR_NAME`.
    pub name: String,
    /// `PAYOUT_DEBTOR_ACCOUNT`: an IBAN or another account id.
    pub account: String,
    /// `PAYOUT_DEBTOR_BIC`, when the bank wants it.
    pub bic: Option<String>,
}

/// Due payouts an export left pending, by why.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Withheld {
    pub no_bank_account: u64,
    pub on_hold: u64,
}

/// One export.
pub struct Export<'a> {
    pub format: FileFormat,
    /// Payouts due to arrive by this date (default: the next business day).
    pub through: Option<NaiveDate>,
    pub now: DateTime<Utc>,
    /// The file's message id, recorded with each payout it holds.
    pub message_id: &'a str,
    /// Who exports, for the audit.
    pub actor: &'a str,
    pub debtor: &'a PayoutDebtor,
    pub keys: &'a BankAccountKeys,
}

/// What an export produced: the file (none when a pain.001 would hold no payment)
/// and what it left out.
pub struct ExportedFile {
    pub document: Option<String>,
    pub withheld: Withheld,
}

/// Exports due payouts in a transaction of its own: every due pending payout with a
/// payable account goes in transit, is written to the file, and is audited; the
/// export itself is audited with the payouts it holds.
pub async fn export_payouts(pool: &PgPool, req: &Export<'_>) -> Result<ExportedFile, EngineError> {
    in_transaction!(pool, |tx| export(&mut tx, req).await?)
}

/// Exports inside the caller's transaction (see [`export_payouts`]).
pub async fn export(tx: &mut PgConnection, req: &Export<'_>) -> Result<ExportedFile, EngineError> {
    let through = match req.through {
        Some(date) => date,
        None => {
            let today = req.now.date_naive();
            let days = holidays::holidays_from(&mut *tx, today).await?;
            add_business_days(today, 1, &days)
        }
    };
    let due = payouts::lock_due_pending_payouts(&mut *tx, through).await?;
    let mut csv = String::from("payout_id,merchant_id,amount,currency,arrival_date,bank_account\n");
    let mut transfers = Vec::new();
    let mut withheld = Withheld::default();
    for payout in due {
        let merchant = merchants::find_merchant(&mut *tx, &payout.merchant_id)
            .await?
            .ok_or(EngineError::NotFound("merchant"))?;
        // A payout goes out only to an account that can take it: without one, or
        // while the merchant's payouts are on hold, it stays pending.
        let Some(account) = bank_account::of_merchant(&merchant) else {
            withheld.no_bank_account += 1;
            continue;
        };
        if payouts::find_payout_hold(&mut *tx, &payout.merchant_id)
            .await?
            .is_some()
        {
            withheld.on_hold += 1;
            continue;
        }
        let (before, after) =
            transition_payout(&mut *tx, payout.id, PayoutStatus::InTransit, None, req.now).await?;
        let currency = stored_currency(&after.currency)?;
        match req.format {
            FileFormat::Csv => csv.push_str(&csv_out::record([
                after.id.to_string(),
                after.merchant_id.clone(),
                format_amount(after.amount_minor, currency),
                after.currency.clone(),
                after.arrival_date.to_string(),
                bank_account::masked(&account.last4),
            ])),
            // The one place a bank account is opened: the bank needs it whole.
            FileFormat::Pain001 => transfers.push(CreditTransfer {
                end_to_end_id: after.id.simple().to_string(),
                amount_minor: after.amount_minor,
                currency: after.currency.clone(),
                minor_unit_digits: currency.exponent(),
                creditor_name: merchant.name.clone(),
                creditor_account: req
                    .keys
                    .open(&merchant.merchant_id, &account)
                    .map_err(|e| EngineError::Internal(e.into()))?,
                requested_execution_date: after.arrival_date,
                remittance_information: format!(
                    "Settlement payout {} to merchant {}",
                    after.id, after.merchant_id
                ),
            }),
        }
        payouts::add_payout_file_item(&mut *tx, req.message_id, after.id).await?;
        let reader = merchant_reader(&mut *tx, &after.merchant_id, None).await?;
        audit::record(
            &mut *tx,
            Action {
                actor: req.actor,
                action: "payout.in_transit",
                object_type: "payout",
                object_id: after.id.to_string(),
                reason: Some(&format!("exported in payout file {}", req.message_id)),
                before: Some(to_json(&PayoutView::read_row(&before, &reader)?)?),
                after: Some(to_json(&PayoutView::read_row(&after, &reader)?)?),
            },
        )
        .await?;
    }
    let exported_ids = payouts::list_payout_file_items(&mut *tx, req.message_id).await?;
    let document = match req.format {
        FileFormat::Csv => Some(csv),
        FileFormat::Pain001 if transfers.is_empty() => None,
        FileFormat::Pain001 => Some(
            pain001_xml(&Initiation {
                message_id: req.message_id.to_owned(),
                created_at: req.now,
                debtor: Party {
                    name: req.debtor.name.clone(),
                    account: req.debtor.account.clone(),
                    bic: req.debtor.bic.clone(),
                },
                transfers,
            })
            .map_err(|e| EngineError::Conflict {
                code: ProblemCode::PayoutFileRefused,
                detail: format!("the payout file cannot be written, nothing was exported: {e}"),
            })?,
        ),
    };
    if !exported_ids.is_empty() {
        // Who exported which payouts, in which file; the file itself (with whole
        // accounts) is never kept.
        audit::record(
            &mut *tx,
            Action {
                actor: req.actor,
                action: "payouts.export",
                object_type: "payout_file",
                object_id: req.message_id.to_owned(),
                reason: Some(req.format.name()),
                before: None,
                after: Some(serde_json::json!({
                    "message_id": req.message_id,
                    "format": req.format.name(),
                    "payout_ids": exported_ids,
                })),
            },
        )
        .await?;
    }
    Ok(ExportedFile { document, withheld })
}
