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
    // Postings to a merchant's accounts are made under the merchant's cycle lock,
    // held shared until commit, so a balance checkpoint (written under the exclusive
    // lock) never misses one. The caller may already hold it, shared or exclusive.
    if let Some(merchant_id) = merchant_id {
        crate::cycles::lock_merchant_cycles(&mut *conn, merchant_id, false).await?;
    }
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

/// Balances of a merchant's accounts: each account's latest checkpoint plus the
/// postings after it, so the read does not grow with the merchant's history.
pub async fn merchant_balances(
    conn: &mut PgConnection,
    merchant_id: &str,
) -> Result<Vec<AccountBalance>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.kind, a.currency::text AS currency, \
                (COALESCE(c.balance_minor, 0) + COALESCE(( \
                    SELECT sum(p.amount_minor) FROM postings p \
                    WHERE p.account_id = a.id AND p.id > COALESCE(c.through_posting_id, 0)), 0))::bigint \
                AS balance_minor \
         FROM accounts a LEFT JOIN LATERAL ( \
             SELECT through_posting_id, balance_minor FROM account_checkpoints \
             WHERE account_id = a.id ORDER BY through_posting_id DESC LIMIT 1) c ON true \
         WHERE a.merchant_id = $1 \
         ORDER BY a.currency, a.kind",
    )
    .bind(merchant_id)
    .fetch_all(conn)
    .await
}

/// Writes a checkpoint of every account of the merchant that has postings since its
/// last one. The caller must hold the merchant's cycle lock exclusive (a cycle
/// close), so that no posting to these accounts is in flight.
pub async fn checkpoint_merchant_accounts(
    conn: &mut PgConnection,
    merchant_id: &str,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO account_checkpoints (account_id, through_posting_id, balance_minor) \
         SELECT a.id, s.through, COALESCE(c.balance_minor, 0) + s.delta \
         FROM accounts a LEFT JOIN LATERAL ( \
             SELECT through_posting_id, balance_minor FROM account_checkpoints \
             WHERE account_id = a.id ORDER BY through_posting_id DESC LIMIT 1) c ON true \
         CROSS JOIN LATERAL ( \
             SELECT max(p.id) AS through, sum(p.amount_minor)::bigint AS delta FROM postings p \
             WHERE p.account_id = a.id AND p.id > COALESCE(c.through_posting_id, 0)) s \
         WHERE a.merchant_id = $1 AND s.through IS NOT NULL",
    )
    .bind(merchant_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
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
