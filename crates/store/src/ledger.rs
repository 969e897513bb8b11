//! The double-entry ledger: accounts, journal entries and their postings.

use settlement_domain::ledger::{AccountKind, AccountRef, JournalEntry, Posting};
use sqlx::PgConnection;
use uuid::Uuid;

/// Finds the id of an account, creating the account on first use.
pub async fn find_or_create_account(
    conn: &mut PgConnection,
    account: &AccountRef,
) -> Result<i64, sqlx::Error> {
    let ids = account_ids(conn, &[account]).await?;
    ids.first().copied().ok_or(sqlx::Error::RowNotFound)
}

/// The ids of `accounts`, in their order, creating the accounts on first use.
/// Existing accounts are only read, never locked, so concurrent bookings do not
/// queue on a hot row.
pub async fn account_ids(
    conn: &mut PgConnection,
    accounts: &[&AccountRef],
) -> Result<Vec<i64>, sqlx::Error> {
    let kinds: Vec<&str> = accounts.iter().map(|a| a.kind.as_str()).collect();
    let merchants: Vec<Option<&str>> = accounts.iter().map(|a| a.merchant_id.as_deref()).collect();
    let currencies: Vec<&str> = accounts.iter().map(|a| a.currency.code()).collect();
    let found = find_account_ids(&mut *conn, &kinds, &merchants, &currencies).await?;
    if found.iter().all(Option::is_some) {
        return Ok(found.into_iter().flatten().collect());
    }
    sqlx::query!(
        "INSERT INTO accounts (kind, merchant_id, currency) \
         SELECT DISTINCT * FROM unnest($1::text[], $2::text[], $3::text[]) \
         ON CONFLICT ON CONSTRAINT accounts_unique DO NOTHING",
        &kinds as &[&str],
        &merchants as &[Option<&str>],
        &currencies as &[&str],
    )
    .execute(&mut *conn)
    .await?;
    let found = find_account_ids(conn, &kinds, &merchants, &currencies).await?;
    found
        .into_iter()
        .map(|id| id.ok_or(sqlx::Error::RowNotFound))
        .collect()
}

/// The ids of the accounts of the given kinds, owners and currencies: one per
/// account asked for, in their order; `None` where the account is new.
async fn find_account_ids(
    conn: &mut PgConnection,
    kinds: &[&str],
    merchants: &[Option<&str>],
    currencies: &[&str],
) -> Result<Vec<Option<i64>>, sqlx::Error> {
    // Two branches so each lookup uses the unique index (IS NOT DISTINCT FROM cannot).
    sqlx::query_scalar!(
        "SELECT (SELECT a.id FROM accounts a WHERE a.kind = u.kind AND a.currency = u.currency \
                     AND a.merchant_id = u.merchant_id \
                 UNION ALL \
                 SELECT a.id FROM accounts a WHERE a.kind = u.kind AND a.currency = u.currency \
                     AND a.merchant_id IS NULL AND u.merchant_id IS NULL) AS \"id?\" \
         FROM unnest($1::text[], $2::text[], $3::bpchar[]) WITH ORDINALITY \
             AS u(kind, merchant_id, currency, n) \
         ORDER BY u.n",
        kinds as &[&str],
        merchants as &[Option<&str>],
        currencies as &[&str],
    )
    .fetch_all(conn)
    .await
}

/// A journal entry to book, with what it is about.
#[derive(Debug, Clone)]
pub struct NewJournalEntry<'a> {
    pub id: Uuid,
    pub kind: &'a str,
    pub merchant_id: Option<&'a str>,
    pub description: String,
    pub entry: JournalEntry,
}

/// Books a journal entry with its postings; the database checks that the entry
/// balances. Returns the entry id.
#[tracing::instrument(
    name = "ledger.insert_journal_entry",
    skip_all,
    fields(
        kind = kind,
        otel.kind = "client",
        db.system.name = "postgresql",
        db.operation.name = "INSERT",
        db.collection.name = "journal_entries",
    )
)]
pub async fn insert_journal_entry(
    conn: &mut PgConnection,
    kind: &str,
    merchant_id: Option<&str>,
    description: &str,
    entry: &JournalEntry,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    insert_journal_entries(
        conn,
        &[NewJournalEntry {
            id,
            kind,
            merchant_id,
            description: description.to_owned(),
            entry: entry.clone(),
        }],
    )
    .await?;
    Ok(id)
}

/// Books journal entries with their postings, one statement per table whatever
/// their number (the database checks each entry's balance at the end of the
/// postings' statement, and at commit that no entry is left without postings).
pub async fn insert_journal_entries(
    conn: &mut PgConnection,
    entries: &[NewJournalEntry<'_>],
) -> Result<(), sqlx::Error> {
    if entries.is_empty() {
        return Ok(());
    }
    // Postings to a merchant's accounts are made under the merchant's cycle lock,
    // held shared until commit, so a balance checkpoint (written under the exclusive
    // lock) never misses one. The caller may already hold it, shared or exclusive.
    let merchants: Vec<String> = entries
        .iter()
        .filter_map(|e| e.merchant_id.map(str::to_owned))
        .collect();
    if !merchants.is_empty() {
        crate::locks::lock_merchants_cycles(&mut *conn, &merchants, crate::locks::LockMode::Shared)
            .await?;
    }
    sqlx::query!(
        "INSERT INTO journal_entries (id, kind, merchant_id, description) \
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[])",
        &entries.iter().map(|e| e.id).collect::<Vec<_>>(),
        entries.iter().map(|e| e.kind).collect::<Vec<_>>() as Vec<&str>,
        entries.iter().map(|e| e.merchant_id).collect::<Vec<_>>() as Vec<Option<&str>>,
        entries
            .iter()
            .map(|e| e.description.as_str())
            .collect::<Vec<_>>() as Vec<&str>,
    )
    .execute(&mut *conn)
    .await?;
    let postings: Vec<(Uuid, &Posting)> = entries
        .iter()
        .flat_map(|e| e.entry.postings().iter().map(move |p| (e.id, p)))
        .collect();
    let accounts: Vec<&AccountRef> = postings.iter().map(|(_, p)| &p.account).collect();
    let account_ids = account_ids(&mut *conn, &accounts).await?;
    sqlx::query!(
        "INSERT INTO postings (entry_id, account_id, currency, amount_minor) \
         SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::bigint[])",
        &postings.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        &account_ids,
        postings
            .iter()
            .map(|(_, p)| p.account.currency.code())
            .collect::<Vec<_>>() as Vec<&str>,
        &postings
            .iter()
            .map(|(_, p)| p.amount_minor)
            .collect::<Vec<_>>(),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The balance of one account: the sum of its postings (debits positive).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AccountBalance {
    pub kind: AccountKind,
    pub currency: String,
    pub balance_minor: i64,
}

/// Balances of a merchant's accounts: each account's latest checkpoint plus the
/// postings after it, so the read does not grow with the merchant's history.
pub async fn merchant_balances(
    conn: &mut PgConnection,
    merchant_id: &str,
) -> Result<Vec<AccountBalance>, sqlx::Error> {
    sqlx::query_as!(
        AccountBalance,
        "SELECT a.kind AS \"kind: AccountKind\", a.currency::text AS \"currency!\", \
                (COALESCE(c.balance_minor, 0) + COALESCE(( \
                    SELECT sum(p.amount_minor) FROM postings p \
                    WHERE p.account_id = a.id AND p.id > COALESCE(c.through_posting_id, 0)), 0))::bigint \
                AS \"balance_minor!\" \
         FROM accounts a LEFT JOIN LATERAL ( \
             SELECT through_posting_id, balance_minor FROM account_checkpoints \
             WHERE account_id = a.id ORDER BY through_posting_id DESC LIMIT 1) c ON true \
         WHERE a.merchant_id = $1 \
         ORDER BY a.currency, a.kind",
        merchant_id,
    )
    .fetch_all(conn)
    .await
}

/// Writes a checkpoint of every account of the merchants that has postings since
/// its last one. The caller must hold the merchants' cycle locks exclusive (a cycle
/// close), so that no posting to these accounts is in flight.
pub async fn checkpoint_merchant_accounts(
    conn: &mut PgConnection,
    merchant_ids: &[String],
) -> Result<u64, sqlx::Error> {
    // The merchants' accounts are found first (OFFSET 0 keeps the planner from
    // visiting every account's postings before filtering on the merchants).
    let done = sqlx::query!(
        "INSERT INTO account_checkpoints (account_id, through_posting_id, balance_minor) \
         SELECT a.id, s.through, COALESCE(c.balance_minor, 0) + s.delta \
         FROM (SELECT a.id FROM unnest($1::text[]) AS m(merchant_id) \
               JOIN accounts a ON a.merchant_id = m.merchant_id OFFSET 0) AS a \
         LEFT JOIN LATERAL ( \
             SELECT through_posting_id, balance_minor FROM account_checkpoints \
             WHERE account_id = a.id ORDER BY through_posting_id DESC LIMIT 1) c ON true \
         CROSS JOIN LATERAL ( \
             SELECT max(p.id) AS through, sum(p.amount_minor)::bigint AS delta FROM postings p \
             WHERE p.account_id = a.id AND p.id > COALESCE(c.through_posting_id, 0)) s \
         WHERE s.through IS NOT NULL",
        merchant_ids,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Sum of all postings per currency; every sum is zero in a sound ledger.
pub async fn posting_sums_by_currency(
    conn: &mut PgConnection,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let sums = sqlx::query!(
        "SELECT currency::text AS \"currency!\", COALESCE(sum(amount_minor), 0)::bigint AS \"sum!\" \
         FROM postings GROUP BY currency ORDER BY \"currency!\""
    )
    .fetch_all(conn)
    .await?;
    Ok(sums.into_iter().map(|s| (s.currency, s.sum)).collect())
}
