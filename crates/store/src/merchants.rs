//! Merchants, their settlement profiles, and their terminals.

use chrono::{DateTime, NaiveTime, Utc};
use sqlx::PgConnection;

/// A merchant row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MerchantRow {
    pub merchant_id: String,
    pub name: String,
    pub default_currency: String,
    pub time_zone: String,
    pub cutoff_local_time: NaiveTime,
    pub grace_period_hours: i32,
    pub payout_delay_business_days: i32,
    pub mdr_basis_points: i32,
    pub fixed_fee_minor: i64,
    pub created_at: DateTime<Utc>,
    /// The bank account as sealed by the service: key id, nonce and ciphertext.
    pub bank_account_key_id: Option<String>,
    pub bank_account_sealed: Option<Vec<u8>>,
    /// Its last four characters, what answers show.
    pub bank_account_last4: Option<String>,
}

/// The columns of a merchant row (the plain bank account column, kept only until
/// start-up seals it, is never read).
const MERCHANT_COLUMNS: &str =
    "merchant_id, name, default_currency, time_zone, cutoff_local_time, \
    grace_period_hours, payout_delay_business_days, mdr_basis_points, fixed_fee_minor, created_at, \
    bank_account_key_id, bank_account_sealed, bank_account_last4";

/// Constraint refusing a second merchant with the same id.
pub const MERCHANTS_PKEY: &str = "merchants_pkey";
/// Constraint refusing a second terminal with the same id.
pub const TERMINALS_PKEY: &str = "terminals_pkey";

/// Inserts a merchant; a duplicate id violates [`MERCHANTS_PKEY`].
pub async fn insert_merchant(
    conn: &mut PgConnection,
    m: &MerchantRow,
) -> Result<MerchantRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO merchants (merchant_id, name, default_currency, time_zone, cutoff_local_time, \
             grace_period_hours, payout_delay_business_days, mdr_basis_points, fixed_fee_minor, \
             bank_account_key_id, bank_account_sealed, bank_account_last4) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         RETURNING {MERCHANT_COLUMNS}"
    ))
    .bind(&m.merchant_id)
    .bind(&m.name)
    .bind(&m.default_currency)
    .bind(&m.time_zone)
    .bind(m.cutoff_local_time)
    .bind(m.grace_period_hours)
    .bind(m.payout_delay_business_days)
    .bind(m.mdr_basis_points)
    .bind(m.fixed_fee_minor)
    .bind(&m.bank_account_key_id)
    .bind(&m.bank_account_sealed)
    .bind(&m.bank_account_last4)
    .fetch_one(conn)
    .await
}

/// Finds a merchant and locks it for a profile change.
pub async fn find_merchant_for_update(
    conn: &mut PgConnection,
    merchant_id: &str,
) -> Result<Option<MerchantRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {MERCHANT_COLUMNS} FROM merchants WHERE merchant_id = $1 FOR UPDATE"
    ))
    .bind(merchant_id)
    .fetch_optional(conn)
    .await
}

/// Writes a merchant's name, profile, pricing and bank account.
pub async fn update_merchant(
    conn: &mut PgConnection,
    m: &MerchantRow,
) -> Result<MerchantRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE merchants SET name = $2, time_zone = $3, cutoff_local_time = $4, grace_period_hours = $5, \
             payout_delay_business_days = $6, mdr_basis_points = $7, fixed_fee_minor = $8, \
             bank_account_key_id = $9, bank_account_sealed = $10, bank_account_last4 = $11, bank_account = NULL \
         WHERE merchant_id = $1 RETURNING {MERCHANT_COLUMNS}"
    ))
    .bind(&m.merchant_id)
    .bind(&m.name)
    .bind(&m.time_zone)
    .bind(m.cutoff_local_time)
    .bind(m.grace_period_hours)
    .bind(m.payout_delay_business_days)
    .bind(m.mdr_basis_points)
    .bind(m.fixed_fee_minor)
    .bind(&m.bank_account_key_id)
    .bind(&m.bank_account_sealed)
    .bind(&m.bank_account_last4)
    .fetch_one(conn)
    .await
}

/// Finds a merchant by id.
pub async fn find_merchant(
    conn: &mut PgConnection,
    merchant_id: &str,
) -> Result<Option<MerchantRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {MERCHANT_COLUMNS} FROM merchants WHERE merchant_id = $1"
    ))
    .bind(merchant_id)
    .fetch_optional(conn)
    .await
}

/// Finds merchants by id; ids that name no merchant are left out.
pub async fn find_merchants(
    conn: &mut PgConnection,
    merchant_ids: &[String],
) -> Result<Vec<MerchantRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {MERCHANT_COLUMNS} FROM merchants WHERE merchant_id = ANY($1)"
    ))
    .bind(merchant_ids)
    .fetch_all(conn)
    .await
}

/// A terminal row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TerminalRow {
    pub terminal_id: String,
    pub merchant_id: String,
    pub created_at: DateTime<Utc>,
}

/// Inserts a terminal of a merchant; a duplicate id violates [`TERMINALS_PKEY`].
pub async fn insert_terminal(
    conn: &mut PgConnection,
    merchant_id: &str,
    terminal_id: &str,
) -> Result<TerminalRow, sqlx::Error> {
    sqlx::query_as("INSERT INTO terminals (terminal_id, merchant_id) VALUES ($1, $2) RETURNING *")
        .bind(terminal_id)
        .bind(merchant_id)
        .fetch_one(conn)
        .await
}

/// Finds a terminal by id.
pub async fn find_terminal(
    conn: &mut PgConnection,
    terminal_id: &str,
) -> Result<Option<TerminalRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM terminals WHERE terminal_id = $1")
        .bind(terminal_id)
        .fetch_optional(conn)
        .await
}

/// A merchant whose bank account is still stored in plain, from before accounts were
/// sealed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PlainBankAccount {
    pub merchant_id: String,
    pub bank_account: String,
}

/// Merchants with a plain bank account, at most `limit`, locked.
pub async fn find_plain_bank_accounts(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<PlainBankAccount>, sqlx::Error> {
    sqlx::query_as(
        "SELECT merchant_id, bank_account FROM merchants WHERE bank_account IS NOT NULL \
         ORDER BY merchant_id LIMIT $1 FOR UPDATE",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Replaces a merchant's plain bank account by its sealed form.
pub async fn seal_bank_account(
    conn: &mut PgConnection,
    merchant_id: &str,
    key_id: &str,
    sealed: &[u8],
    last4: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE merchants SET bank_account = NULL, bank_account_key_id = $2, bank_account_sealed = $3, \
             bank_account_last4 = $4 WHERE merchant_id = $1",
    )
    .bind(merchant_id)
    .bind(key_id)
    .bind(sealed)
    .bind(last4)
    .execute(conn)
    .await?;
    Ok(())
}
