//! The double-entry ledger's rules: accounts, and entries that always balance.

use std::collections::BTreeMap;

use crate::money::Currency;

/// The kind of a ledger account. Merchant accounts exist per merchant and currency,
/// house accounts per currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccountKind {
    /// Money of accepted batches not yet settled in a cycle (owed to the merchant).
    MerchantPending,
    /// Settled money waiting for a payout (owed to the merchant).
    MerchantPayable,
    /// Money the card schemes owe the acquirer for accepted sales.
    SchemeReceivable,
    /// The acquirer's fee income.
    FeeRevenue,
    /// Money sent to merchants' banks and not yet confirmed.
    PayoutClearing,
    /// The acquirer's settlement bank account, from which payouts leave.
    AcquirerBank,
}

impl std::fmt::Display for AccountKind {
    /// The stable name, as stored.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AccountKind {
    /// Every kind.
    pub const ALL: [AccountKind; 6] = [
        AccountKind::MerchantPending,
        AccountKind::MerchantPayable,
        AccountKind::SchemeReceivable,
        AccountKind::FeeRevenue,
        AccountKind::PayoutClearing,
        AccountKind::AcquirerBank,
    ];

    /// The stable name used in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::MerchantPending => "merchant_pending",
            AccountKind::MerchantPayable => "merchant_payable",
            AccountKind::SchemeReceivable => "scheme_receivable",
            AccountKind::FeeRevenue => "fee_revenue",
            AccountKind::PayoutClearing => "payout_clearing",
            AccountKind::AcquirerBank => "acquirer_bank",
        }
    }

    /// Parses the stable name.
    pub fn parse(text: &str) -> Option<Self> {
        AccountKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// True for accounts that belong to one merchant.
    pub fn is_merchant_account(self) -> bool {
        matches!(
            self,
            AccountKind::MerchantPending | AccountKind::MerchantPayable
        )
    }
}

/// Names one account: its kind, its merchant (for merchant accounts) and currency.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountRef {
    pub kind: AccountKind,
    pub merchant_id: Option<String>,
    pub currency: Currency,
}

/// One line of a journal entry. Debits are positive, credits negative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    pub account: AccountRef,
    pub amount_minor: i64,
}

/// A set of postings that sums to zero per currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    postings: Vec<Posting>,
}

/// Why a set of postings is not an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("an entry needs at least two postings")]
    TooFewPostings,
    #[error("a posting of zero moves nothing")]
    ZeroPosting,
    #[error("postings in {0} do not sum to zero")]
    Unbalanced(Currency),
    #[error("a merchant account needs a merchant and a house account must not have one")]
    AccountOwner,
}

impl JournalEntry {
    /// Builds an entry, refusing one that does not balance per currency.
    pub fn new(postings: Vec<Posting>) -> Result<Self, EntryError> {
        if postings.len() < 2 {
            return Err(EntryError::TooFewPostings);
        }
        let mut sums: BTreeMap<Currency, i128> = BTreeMap::new();
        for p in &postings {
            if p.amount_minor == 0 {
                return Err(EntryError::ZeroPosting);
            }
            if p.account.kind.is_merchant_account() != p.account.merchant_id.is_some() {
                return Err(EntryError::AccountOwner);
            }
            *sums.entry(p.account.currency).or_default() += i128::from(p.amount_minor);
        }
        if let Some((currency, _)) = sums.iter().find(|(_, sum)| **sum != 0) {
            return Err(EntryError::Unbalanced(*currency));
        }
        Ok(JournalEntry { postings })
    }

    /// The postings, in the order given.
    pub fn postings(&self) -> &[Posting] {
        &self.postings
    }
}

/// The entry booking an accepted batch: its net moves from scheme receivable to the
/// merchant's pending account (the other way for a refund-heavy batch). A batch whose
/// net is zero moves no money and books no entry.
pub fn batch_acceptance_entry(
    merchant_id: &str,
    currency: Currency,
    net_minor: i64,
) -> Option<JournalEntry> {
    if net_minor == 0 {
        return None;
    }
    let account = |kind, merchant_id: Option<&str>| AccountRef {
        kind,
        merchant_id: merchant_id.map(str::to_owned),
        currency,
    };
    let entry = JournalEntry::new(vec![
        Posting {
            account: account(AccountKind::SchemeReceivable, None),
            amount_minor: net_minor,
        },
        Posting {
            account: account(AccountKind::MerchantPending, Some(merchant_id)),
            amount_minor: net_minor.checked_neg()?,
        },
    ]);
    // Two opposite non-zero postings on well-owned accounts always balance.
    assert!(entry.is_ok(), "batch acceptance entry must balance");
    entry.ok()
}

/// Builds an entry from `(account, amount)` pairs, leaving out zero amounts. `None`
/// when nothing moves. Callers pass amounts that balance by construction; an
/// unbalanced set is a bug and stops here.
fn entry_of(postings: Vec<(AccountRef, i64)>) -> Option<JournalEntry> {
    let postings: Vec<Posting> = postings
        .into_iter()
        .filter(|(_, amount)| *amount != 0)
        .map(|(account, amount_minor)| Posting {
            account,
            amount_minor,
        })
        .collect();
    if postings.is_empty() {
        return None;
    }
    match JournalEntry::new(postings) {
        Ok(entry) => Some(entry),
        Err(e) => panic!("ledger entry must balance: {e}"),
    }
}

fn merchant_account(kind: AccountKind, merchant_id: &str, currency: Currency) -> AccountRef {
    AccountRef {
        kind,
        merchant_id: Some(merchant_id.to_owned()),
        currency,
    }
}

fn house_account(kind: AccountKind, currency: Currency) -> AccountRef {
    AccountRef {
        kind,
        merchant_id: None,
        currency,
    }
}

/// The entry closing a settlement cycle: the batches' net leaves pending, the net
/// less fees becomes payable, and the fees become revenue. `None` when nothing moves.
/// Amounts must not overflow when negated (callers sum `i64` nets checked).
pub fn cycle_settlement_entry(
    merchant_id: &str,
    currency: Currency,
    net_minor: i64,
    fee_minor: i64,
) -> Option<JournalEntry> {
    let payable = net_minor.checked_sub(fee_minor)?;
    entry_of(vec![
        (
            merchant_account(AccountKind::MerchantPending, merchant_id, currency),
            net_minor,
        ),
        (
            merchant_account(AccountKind::MerchantPayable, merchant_id, currency),
            payable.checked_neg()?,
        ),
        (
            house_account(AccountKind::FeeRevenue, currency),
            fee_minor.checked_neg()?,
        ),
    ])
}

/// The entry debiting `debit` and crediting `credit` with `amount_minor`
/// (`debit` +amount, `credit` −amount).
pub fn transfer_entry(
    debit: &AccountRef,
    credit: &AccountRef,
    amount_minor: i64,
) -> Option<JournalEntry> {
    entry_of(vec![
        (debit.clone(), amount_minor),
        (credit.clone(), amount_minor.checked_neg()?),
    ])
}

/// Account of a merchant, by kind.
pub fn merchant_account_ref(
    kind: AccountKind,
    merchant_id: &str,
    currency: Currency,
) -> AccountRef {
    merchant_account(kind, merchant_id, currency)
}

/// House account, by kind.
pub fn house_account_ref(kind: AccountKind, currency: Currency) -> AccountRef {
    house_account(kind, currency)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_account_kind_parses_back_and_no_other_name_does() {
        for k in AccountKind::ALL {
            assert_eq!(AccountKind::parse(k.as_str()), Some(k));
            assert_eq!(k.to_string(), k.as_str());
        }
        for text in ["", "merchant", "MerchantPayable", "merchant_payable "] {
            assert_eq!(AccountKind::parse(text), None, "{text:?}");
        }
    }

    fn acc(kind: AccountKind, merchant: Option<&str>, currency: Currency) -> AccountRef {
        AccountRef {
            kind,
            merchant_id: merchant.map(Into::into),
            currency,
        }
    }

    #[test]
    fn unbalanced_entries_are_refused() {
        let e = JournalEntry::new(vec![
            Posting {
                account: acc(AccountKind::SchemeReceivable, None, Currency::Usd),
                amount_minor: 100,
            },
            Posting {
                account: acc(AccountKind::MerchantPending, Some("m1"), Currency::Usd),
                amount_minor: -99,
            },
        ]);
        assert_eq!(e, Err(EntryError::Unbalanced(Currency::Usd)));
    }

    #[test]
    fn entries_balance_per_currency_not_in_total() {
        let e = JournalEntry::new(vec![
            Posting {
                account: acc(AccountKind::SchemeReceivable, None, Currency::Usd),
                amount_minor: 100,
            },
            Posting {
                account: acc(AccountKind::MerchantPending, Some("m1"), Currency::Eur),
                amount_minor: -100,
            },
        ]);
        assert!(matches!(e, Err(EntryError::Unbalanced(_))));
    }

    #[test]
    fn house_and_merchant_accounts_are_owned_correctly() {
        let e = JournalEntry::new(vec![
            Posting {
                account: acc(AccountKind::SchemeReceivable, Some("m1"), Currency::Usd),
                amount_minor: 100,
            },
            Posting {
                account: acc(AccountKind::MerchantPending, Some("m1"), Currency::Usd),
                amount_minor: -100,
            },
        ]);
        assert_eq!(e, Err(EntryError::AccountOwner));
    }

    #[test]
    fn a_cycle_moves_net_from_pending_to_payable_and_fees_to_revenue() {
        let e = cycle_settlement_entry("m1", Currency::Usd, 10_000, 160).unwrap();
        let of = |kind| {
            e.postings()
                .iter()
                .filter(|p| p.account.kind == kind)
                .map(|p| p.amount_minor)
                .sum::<i64>()
        };
        assert_eq!(of(AccountKind::MerchantPending), 10_000);
        assert_eq!(of(AccountKind::MerchantPayable), -9_840);
        assert_eq!(of(AccountKind::FeeRevenue), -160);
        // A refund-heavy cycle leaves a negative payable (a debit) for later cycles.
        let e = cycle_settlement_entry("m1", Currency::Usd, -800, 15).unwrap();
        assert_eq!(
            e.postings()
                .iter()
                .find(|p| p.account.kind == AccountKind::MerchantPayable)
                .unwrap()
                .amount_minor,
            815
        );
        assert_eq!(cycle_settlement_entry("m1", Currency::Usd, 0, 0), None);
        // net equal to fees: payable gets nothing, the posting is left out.
        assert_eq!(
            cycle_settlement_entry("m1", Currency::Usd, 50, 50)
                .unwrap()
                .postings()
                .len(),
            2
        );
    }

    #[test]
    fn zero_net_batches_book_nothing() {
        assert_eq!(batch_acceptance_entry("m1", Currency::Usd, 0), None);
    }

    proptest! {
        #[test]
        fn batch_entries_credit_the_merchant_with_the_net(net in (i64::MIN + 1)..i64::MAX) {
            prop_assume!(net != 0);
            let e = batch_acceptance_entry("m1", Currency::Usd, net).unwrap();
            let pending: i64 = e.postings().iter().filter(|p| p.account.kind == AccountKind::MerchantPending).map(|p| p.amount_minor).sum();
            prop_assert_eq!(pending, -net);
            prop_assert_eq!(e.postings().iter().map(|p| i128::from(p.amount_minor)).sum::<i128>(), 0);
        }
    }
}
