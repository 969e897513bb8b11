//! Merchants, their settlement profiles, and their terminals.

use chrono::{DateTime, NaiveTime, Utc};
use sqlx::PgConnection;

/// A merchant row: every column but the plain bank account, which is kept only until
/// start-up seals it and is never read.
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
    /// What a close's lines the host did not authorize do: `report` or `enforce`.
    pub host_matching: String,
    /// Whether the host closes what terminals forgot, and how long after the cutoff.
    pub auto_close: bool,
    pub auto_close_delay_minutes: i32,
    /// The language of its answers when a request asks for none (`en`, `zh-CN`).
    pub locale: String,
}

/// Constraint refusing a second merchant with the same id.
pub const MERCHANTS_PKEY: &str = "merchants_pkey";
/// Constraint refusing a second terminal with the same id.
pub const TERMINALS_PKEY: &str = "terminals_pkey";

/// Inserts a merchant; a duplicate id violates [`MERCHANTS_PKEY`].
pub async fn insert_merchant(
    conn: &mut PgConnection,
    m: &MerchantRow,
) -> Result<MerchantRow, sqlx::Error> {
    sqlx::query_as!(
        MerchantRow,
        "INSERT INTO merchants (merchant_id, name, default_currency, time_zone, cutoff_local_time, \
             grace_period_hours, payout_delay_business_days, mdr_basis_points, fixed_fee_minor, \
             bank_account_key_id, bank_account_sealed, bank_account_last4, host_matching, auto_close, \
             auto_close_delay_minutes, locale) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
         RETURNING merchant_id, name, default_currency, time_zone, cutoff_local_time, \
             grace_period_hours, payout_delay_business_days, mdr_basis_points, fixed_fee_minor, created_at, \
             bank_account_key_id, bank_account_sealed, bank_account_last4, host_matching, auto_close, \
             auto_close_delay_minutes, locale",
        m.merchant_id,
        m.name,
        m.default_currency,
        m.time_zone,
        m.cutoff_local_time,
        m.grace_period_hours,
        m.payout_delay_business_days,
        m.mdr_basis_points,
        m.fixed_fee_minor,
        m.bank_account_key_id,
        m.bank_account_sealed,
        m.bank_account_last4,
        m.host_matching,
        m.auto_close,
        m.auto_close_delay_minutes,
        m.locale,
    )
    .fetch_one(conn)
    .await
}

/// Finds a merchant and locks it for a profile change.
pub async fn find_merchant_for_update(
    conn: &mut PgConnection,
    merchant_id: &str,
) -> Result<Option<MerchantRow>, sqlx::Error> {
    sqlx::query_as!(
        MerchantRow,
        "SELECT merchant_id, name, default_currency, time_zone, cutoff_local_time, \
             grace_period_hours, payout_delay_business_days, mdr_basis_points, fixed_fee_minor, created_at, \
             bank_account_key_id, bank_account_sealed, bank_account_last4, host_matching, auto_close, \
             auto_close_delay_minutes, locale \
         FROM merchants WHERE merchant_id = $1 FOR UPDATE",
        merchant_id,
    )
    .fetch_optional(conn)
    .await
}

/// Writes a merchant's name, profile, pricing and bank account.
pub async fn update_merchant(
    conn: &mut PgConnection,
    m: &MerchantRow,
) -> Result<MerchantRow, sqlx::Error> {
    sqlx::query_as!(
        MerchantRow,
        "UPDATE merchants SET name = $2, time_zone = $3, cutoff_local_time = $4, grace_period_hours = $5, \
             payout_delay_business_days = $6, mdr_basis_points = $7, fixed_fee_minor = $8, \
             bank_account_key_id = $9, bank_account_sealed = $10, bank_account_last4 = $11, bank_account = NULL, \
             host_matching = $12, auto_close = $13, auto_close_delay_minutes = $14, locale = $15 \
         WHERE merchant_id = $1 \
         RETURNING merchant_id, name, default_currency, time_zone, cutoff_local_time, \
             grace_period_hours, payout_delay_business_days, mdr_basis_points, fixed_fee_minor, created_at, \
             bank_account_key_id, bank_account_sealed, bank_account_last4, host_matching, auto_close, \
             auto_close_delay_minutes, locale",
        m.merchant_id,
        m.name,
        m.time_zone,
        m.cutoff_local_time,
        m.grace_period_hours,
        m.payout_delay_business_days,
        m.mdr_basis_points,
        m.fixed_fee_minor,
        m.bank_account_key_id,
        m.bank_account_sealed,
        m.bank_account_last4,
        m.host_matching,
        m.auto_close,
        m.auto_close_delay_minutes,
        m.locale,
    )
    .fetch_one(conn)
    .await
}

/// The merchants with auto-close on.
pub async fn find_auto_close_merchants(
    conn: &mut PgConnection,
) -> Result<Vec<MerchantRow>, sqlx::Error> {
    sqlx::query_as!(
        MerchantRow,
        "SELECT merchant_id, name, default_currency, time_zone, cutoff_local_time, \
             grace_period_hours, payout_delay_business_days, mdr_basis_points, fixed_fee_minor, created_at, \
             bank_account_key_id, bank_account_sealed, bank_account_last4, host_matching, auto_close, \
             auto_close_delay_minutes, locale \
         FROM merchants WHERE auto_close ORDER BY merchant_id",
    )
    .fetch_all(conn)
    .await
}

/// Finds a merchant by id.
pub async fn find_merchant(
    conn: &mut PgConnection,
    merchant_id: &str,
) -> Result<Option<MerchantRow>, sqlx::Error> {
    sqlx::query_as!(
        MerchantRow,
        "SELECT merchant_id, name, default_currency, time_zone, cutoff_local_time, \
             grace_period_hours, payout_delay_business_days, mdr_basis_points, fixed_fee_minor, created_at, \
             bank_account_key_id, bank_account_sealed, bank_account_last4, host_matching, auto_close, \
             auto_close_delay_minutes, locale \
         FROM merchants WHERE merchant_id = $1",
        merchant_id,
    )
    .fetch_optional(conn)
    .await
}

/// Finds merchants by id; ids that name no merchant are left out.
pub async fn find_merchants(
    conn: &mut PgConnection,
    merchant_ids: &[String],
) -> Result<Vec<MerchantRow>, sqlx::Error> {
    sqlx::query_as!(
        MerchantRow,
        "SELECT merchant_id, name, default_currency, time_zone, cutoff_local_time, \
             grace_period_hours, payout_delay_business_days, mdr_basis_points, fixed_fee_minor, created_at, \
             bank_account_key_id, bank_account_sealed, bank_account_last4, host_matching, auto_close, \
             auto_close_delay_minutes, locale \
         FROM merchants WHERE merchant_id = ANY($1)",
        merchant_ids,
    )
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
    sqlx::query_as!(
        TerminalRow,
        "INSERT INTO terminals (terminal_id, merchant_id) VALUES ($1, $2) \
         RETURNING terminal_id, merchant_id, created_at",
        terminal_id,
        merchant_id,
    )
    .fetch_one(conn)
    .await
}

/// Finds a terminal by id.
pub async fn find_terminal(
    conn: &mut PgConnection,
    terminal_id: &str,
) -> Result<Option<TerminalRow>, sqlx::Error> {
    sqlx::query_as!(
        TerminalRow,
        "SELECT terminal_id, merchant_id, created_at FROM terminals WHERE terminal_id = $1",
        terminal_id,
    )
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
    sqlx::query_as!(
        PlainBankAccount,
        "SELECT merchant_id, bank_account AS \"bank_account!\" FROM merchants WHERE bank_account IS NOT NULL \
         ORDER BY merchant_id LIMIT $1 FOR UPDATE",
        limit,
    )
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
    sqlx::query!(
        "UPDATE merchants SET bank_account = NULL, bank_account_key_id = $2, bank_account_sealed = $3, \
             bank_account_last4 = $4 WHERE merchant_id = $1",
        merchant_id,
        key_id,
        sealed,
        last4,
    )
    .execute(conn)
    .await?;
    Ok(())
}
