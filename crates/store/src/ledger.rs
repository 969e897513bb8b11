//! The double-entry ledger: accounts, journal entries and their postings.

use settlement_domain::ledger::{AccountRef, JournalEntry};
use sqlx::PgConnection;
use uuid::Uuid;

/// Finds the id of an account, creating the account on first use. Existing accounts
/// are only read, never locked, so concurrent bookings do not queue on a hot row.
pub async fn find_or_create_account(
    conn: &mut PgConnection,
    account: &AccountRef,
) -> Result<i64, sqlx::Error> {
    let kind = account.kind.as_str();
    let merchant_id = account.merchant_id.as_deref();
    let currency = account.currency.code();
    // Two spellings so each lookup uses the unique index (IS NOT DISTINCT FROM cannot).
    let find = if merchant_id.is_some() {
        "SELECT id FROM accounts WHERE kind = $1 AND merchant_id = $2 AND currency = $3"
    } else {
        "SELECT id FROM accounts WHERE kind = $1 AND merchant_id IS NULL AND currency = $3 AND $2::text IS NULL"
    };
    if let Some(id) = sqlx::query_scalar(find)
        .bind(kind)
        .bind(merchant_id)
        .bind(currency)
        .fetch_optional(&mut *conn)
        .await?
    {
        return Ok(id);
    }
    sqlx::query(
        "INSERT INTO accounts (kind, merchant_id, currency) VALUES ($1, $2, $3) \
         ON CONFLICT ON CONSTRAINT accounts_unique DO NOTHING",
    )
    .bind(kind)
    .bind(merchant_id)
    .bind(currency)
    .execute(&mut *conn)
    .await?;
    sqlx::query_scalar(find)
        .bind(kind)
        .bind(merchant_id)
        .bind(currency)
        .fetch_one(conn)
        .await
}

/// Books a journal entry with its postings; the database checks at commit that the
/// entry balances. Returns the entry id.
#[tracing::instrument(name = "ledger.insert_journal_entry", skip_all, fields(kind = kind))]
pub async fn insert_journal_entry(
    conn: &mut PgConnection,
    kind: &str,
    merchant_id: Option<&str>,
    description: &str,
    entry: &JournalEntry,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO journal_entries (id, kind, merchant_id, description) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(kind)
    .bind(merchant_id)
    .bind(description)
    .execute(&mut *conn)
    .await?;
    let mut account_ids = Vec::with_capacity(entry.postings().len());
    let mut currencies = Vec::with_capacity(entry.postings().len());
    let mut amounts = Vec::with_capacity(entry.postings().len());
    for p in entry.postings() {
        account_ids.push(find_or_create_account(&mut *conn, &p.account).await?);
        currencies.push(p.account.currency.code().to_owned());
        amounts.push(p.amount_minor);
    }
    sqlx::query(
        "INSERT INTO postings (entry_id, account_id, currency, amount_minor) \
         SELECT $1, * FROM UNNEST($2::bigint[], $3::text[], $4::bigint[])",
    )
    .bind(id)
    .bind(&account_ids)
    .bind(&currencies)
    .bind(&amounts)
    .execute(conn)
    .await?;
    Ok(id)
}

/// The balance of one account: the sum of its postings (debits positive).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AccountBalance {
    pub kind: String,
    pub currency: String,
    pub balance_minor: i64,
}

/// Balances of a merchant's accounts, read from the postings.
pub async fn merchant_balances(
    conn: &mut PgConnection,
    merchant_id: &str,
) -> Result<Vec<AccountBalance>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.kind, a.currency::text AS currency, COALESCE(sum(p.amount_minor), 0)::bigint AS balance_minor \
         FROM accounts a LEFT JOIN postings p ON p.account_id = a.id \
         WHERE a.merchant_id = $1 \
         GROUP BY a.kind, a.currency ORDER BY a.currency, a.kind",
    )
    .bind(merchant_id)
    .fetch_all(conn)
    .await
}

/// Sum of all postings per currency; every sum is zero in a sound ledger.
pub async fn posting_sums_by_currency(
    conn: &mut PgConnection,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT currency::text, COALESCE(sum(amount_minor), 0)::bigint FROM postings GROUP BY currency ORDER BY currency",
    )
    .fetch_all(conn)
    .await
}
