//! A merchant's money as it moves: settlements (closed cycles) and payouts, each with
//! what it holds; and the payout list operations read.

use std::collections::BTreeMap;

use chrono::Utc;
use sqlx::PgPool;
use uuid::Uuid;

use settlement_i18n::{Lang, Locale};

use settlement_domain::ledger::AccountKind;
use settlement_domain::money::format_amount;
use settlement_domain::payout::PayoutStatus;
use settlement_store::payouts::{self, PayoutFilter};
use settlement_store::{batches, cycles, ledger};
use settlement_wire::batches::BatchView;
use settlement_wire::money::{
    BalanceView, CurrencyBalance, CycleView, ListQuery, PaidBatch, PaidCycle, PayoutDetail,
    PayoutView, SettlementDetail,
};
use settlement_wire::Page;

use crate::error::EngineError;
use crate::profile::existing_merchant;
use crate::views::{
    cursor_id, page, page_limit, stored_currency, FromRow, ReadRow, Reader, Readers,
};

/// A payout status filter as asked: one of the payout statuses.
pub fn payout_status_filter(status: Option<String>) -> Result<Option<PayoutStatus>, EngineError> {
    status
        .as_deref()
        .map(|s| {
            PayoutStatus::parse(s).ok_or_else(|| {
                EngineError::field(
                    "status",
                    "must be pending, in_transit, paid, failed or canceled",
                )
            })
        })
        .transpose()
}

/// A merchant's closed cycles, newest first.
pub async fn list_settlements(
    pool: &PgPool,
    merchant_id: &str,
    q: &ListQuery,
) -> Result<Page<CycleView>, EngineError> {
    let limit = page_limit(q.limit)?;
    let mut conn = pool.acquire().await?;
    existing_merchant(&mut conn, merchant_id).await?;
    let rows = cycles::list_cycles_of_merchant(
        &mut conn,
        merchant_id,
        cursor_id(q.cursor.as_deref())?,
        limit + 1,
    )
    .await?;
    page(rows, limit, |c| c.id.to_string(), CycleView::from_row)
}

/// One of a merchant's closed cycles, with what it holds.
pub async fn settlement_detail(
    pool: &PgPool,
    merchant_id: &str,
    cycle_id: Uuid,
    lang: &Lang,
) -> Result<SettlementDetail, EngineError> {
    let mut conn = pool.acquire().await?;
    let cycle = cycles::find_cycle_of_merchant(&mut conn, merchant_id, cycle_id)
        .await?
        .ok_or(EngineError::NotFound("settlement"))?;
    let batch_rows = batches::list_batches_of_cycle(&mut conn, cycle.id).await?;
    let payout_rows = payouts::list_payouts_of_cycle(&mut conn, cycle.id).await?;
    let mut reader = Reader::of_merchant_id(
        &mut conn,
        merchant_id,
        lang,
        Utc::now(),
        Some(cycle.cycle_date),
    )
    .await?;
    reader
        .know_payouts(&mut conn, std::iter::once(cycle.id))
        .await?;
    Ok(SettlementDetail {
        cycle: CycleView::from_row(&cycle)?,
        batches: batch_rows
            .iter()
            .map(|b| BatchView::read_row(b, &reader))
            .collect::<Result<_, _>>()?,
        payouts: payout_rows
            .iter()
            .map(|p| PayoutView::read_row(p, &reader))
            .collect::<Result<_, _>>()?,
    })
}

/// Whose payouts a list shows.
#[derive(Debug, Clone, Copy)]
pub enum PayoutScope<'a> {
    /// A merchant's own, the merchant checked to exist.
    Merchant(&'a str),
    /// Every merchant's, or one's when named (operations).
    Operations(Option<&'a str>),
}

/// Payouts newest first, of a status when asked.
pub async fn list_payouts(
    pool: &PgPool,
    scope: PayoutScope<'_>,
    status: Option<String>,
    limit: Option<i64>,
    cursor: Option<&str>,
    lang: &Lang,
) -> Result<Page<PayoutView>, EngineError> {
    let limit = page_limit(limit)?;
    let mut conn = pool.acquire().await?;
    let merchant_id = match scope {
        PayoutScope::Merchant(m) => Some(existing_merchant(&mut conn, m).await?.merchant_id),
        PayoutScope::Operations(m) => m.map(str::to_owned),
    };
    let filter = PayoutFilter {
        merchant_id,
        status: payout_status_filter(status)?,
        before_id: cursor_id(cursor)?,
    };
    let rows = payouts::list_payouts(&mut conn, &filter, limit + 1).await?;
    let language = Some(lang.choose(Locale::En));
    let readers = Readers::load(
        &mut conn,
        rows.iter().map(|p| p.merchant_id.as_str()),
        language,
    )
    .await?;
    page(
        rows,
        limit,
        |p| p.id.to_string(),
        |p| PayoutView::read_row(p, readers.of(&p.merchant_id)?),
    )
}

/// One of a merchant's payouts, with the cycles and batches it pays.
pub async fn payout_detail(
    pool: &PgPool,
    merchant_id: &str,
    payout_id: Uuid,
    lang: &Lang,
) -> Result<PayoutDetail, EngineError> {
    let mut conn = pool.acquire().await?;
    let payout = payouts::find_payout_of_merchant(&mut conn, merchant_id, payout_id)
        .await?
        .ok_or(EngineError::NotFound("payout"))?;
    let mut reader = Reader::of_merchant_id(&mut conn, merchant_id, lang, Utc::now(), None).await?;
    let paid_cycles = cycles::list_cycles_of_payout(&mut conn, payout.id).await?;
    reader
        .know_payouts(&mut conn, paid_cycles.iter().map(|c| c.id))
        .await?;
    let mut paid = Vec::new();
    for cycle in paid_cycles {
        let batch_rows = batches::list_batches_of_cycle(&mut conn, cycle.id).await?;
        let batches = batch_rows
            .iter()
            .map(|b| {
                let view = BatchView::read_row(b, &reader)?;
                Ok(PaidBatch {
                    id: view.id,
                    terminal_id: view.terminal_id,
                    batch_number: view.batch_number,
                    status: view.status,
                    net_amount: view.net_amount,
                    fee: view.fee,
                })
            })
            .collect::<Result<_, EngineError>>()?;
        paid.push(PaidCycle {
            cycle: CycleView::from_row(&cycle)?,
            batches,
        });
    }
    Ok(PayoutDetail {
        payout: PayoutView::read_row(&payout, &reader)?,
        cycles: paid,
    })
}

/// Pending and payable per currency, read from the ledger's postings.
pub async fn balance(pool: &PgPool, merchant_id: &str) -> Result<BalanceView, EngineError> {
    let mut conn = pool.acquire().await?;
    let merchant = existing_merchant(&mut conn, merchant_id).await?;
    let rows = ledger::merchant_balances(&mut conn, merchant_id).await?;
    // Merchant accounts are liabilities: a credit (negative posting sum) is money owed.
    // The settlement currency is always shown, at zero before the first booking.
    let mut by_currency: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    by_currency.insert(merchant.default_currency.clone(), (0, 0));
    for r in rows {
        let owed = r
            .balance_minor
            .checked_neg()
            .ok_or_else(|| EngineError::Internal(anyhow::anyhow!("balance overflow")))?;
        let slot = by_currency.entry(r.currency).or_default();
        match r.kind {
            AccountKind::MerchantPending => slot.0 = owed,
            AccountKind::MerchantPayable => slot.1 = owed,
            _ => {}
        }
    }
    let balances = by_currency
        .into_iter()
        .map(|(code, (pending, payable))| {
            let currency = stored_currency(&code)?;
            Ok(CurrencyBalance {
                currency: code,
                pending: format_amount(pending, currency),
                payable: format_amount(payable, currency),
            })
        })
        .collect::<Result<_, EngineError>>()?;
    Ok(BalanceView {
        merchant_id: merchant.merchant_id,
        balances,
    })
}

/// Most payout holds one read lists: holds are rare (a returned payout each), and
/// operations release them one by one.
pub const MAX_PAYOUT_HOLDS_LISTED: i64 = 200;

/// Merchants whose payouts are on hold after a payout came back for an account
/// reason, the longest-standing first. A hold is released when operations change the
/// merchant's bank account.
pub async fn payout_holds(pool: &PgPool) -> Result<Vec<payouts::PayoutHold>, EngineError> {
    let mut conn = pool.acquire().await?;
    Ok(payouts::list_payout_holds(&mut conn, MAX_PAYOUT_HOLDS_LISTED).await?)
}
