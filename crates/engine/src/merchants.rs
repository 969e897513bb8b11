//! Onboarding: merchants with their settlement profile, pricing and sealed bank
//! account, and their terminals; each change audited.

use sqlx::{PgConnection, PgPool};

use settlement_domain::host_match::HostMatching;
use settlement_domain::merchant::{
    Pricing, SettlementProfile, DEFAULT_GRACE_PERIOD_HOURS, DEFAULT_PAYOUT_DELAY_BUSINESS_DAYS,
    MAX_AUTO_CLOSE_DELAY_MINUTES,
};
use settlement_domain::money::{format_amount, parse_amount, Currency};
use settlement_i18n::{Locale, UnknownLocale};
use settlement_store::is_constraint_violation;
use settlement_store::merchants::{self, MerchantRow, TerminalRow, MERCHANTS_PKEY, TERMINALS_PKEY};
use settlement_wire::merchants::{
    CreateMerchantRequest, MerchantView, PricingRequest, PricingView, TerminalView,
    UpdateMerchantRequest,
};
use settlement_wire::ProblemCode;

use crate::audit::{self, Action};
use crate::bank_account::{self, BankAccountKeys, SealedAccount};
use crate::db::in_transaction;
use crate::error::EngineError;
use crate::profile::{existing_merchant, profile_of};
use crate::views::{stored_currency, timestamp, to_json, FromRow};

/// Longest merchant and terminal id.
const MAX_ID_LEN: usize = 64;

pub fn check_id(field: &str, id: &str) -> Result<(), EngineError> {
    let ok = (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(EngineError::field(
            field,
            "must be 1 to 64 letters, digits, '_' or '-'",
        ))
    }
}

impl FromRow<MerchantRow> for MerchantView {
    fn from_row(m: &MerchantRow) -> Result<Self, EngineError> {
        let currency = stored_currency(&m.default_currency)?;
        Ok(MerchantView {
            merchant_id: m.merchant_id.clone(),
            name: m.name.clone(),
            currency: m.default_currency.clone(),
            time_zone: m.time_zone.clone(),
            cutoff_local_time: m.cutoff_local_time.format("%H:%M:%S").to_string(),
            grace_period_hours: m.grace_period_hours,
            payout_delay_business_days: m.payout_delay_business_days,
            pricing: PricingView {
                mdr_basis_points: m.mdr_basis_points,
                fixed_fee: format_amount(m.fixed_fee_minor, currency),
            },
            host_matching: m.host_matching.clone(),
            auto_close: m.auto_close,
            auto_close_delay_minutes: m.auto_close_delay_minutes,
            locale: m.locale.clone(),
            bank_account: m.bank_account_last4.as_deref().map(bank_account::masked),
            created_at: timestamp(m.created_at),
        })
    }
}

fn to_i32(v: u32) -> Result<i32, EngineError> {
    i32::try_from(v).map_err(|e| EngineError::Internal(e.into()))
}

impl FromRow<TerminalRow> for TerminalView {
    fn from_row(t: &TerminalRow) -> Result<Self, EngineError> {
        Ok(TerminalView {
            terminal_id: t.terminal_id.clone(),
            merchant_id: t.merchant_id.clone(),
            created_at: timestamp(t.created_at),
        })
    }
}

/// Checks a bank account as sent and writes it the one way it is kept: spaces and
/// dashes (as printed on cards and statements) removed, letters upper-case.
fn check_bank_account(account: &str) -> Result<String, EngineError> {
    let compact: String = account
        .chars()
        .filter(|c| *c != ' ' && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let ok =
        (4..=34).contains(&compact.len()) && compact.bytes().all(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(compact)
    } else {
        Err(EngineError::field(
            "bank_account",
            "must be 4 to 34 letters or digits (spaces and dashes are ignored)",
        ))
    }
}

/// Seals a merchant's bank account with the current key.
fn seal_account(
    keys: &BankAccountKeys,
    merchant_id: &str,
    account: &str,
) -> Result<SealedAccount, EngineError> {
    keys.seal(merchant_id, account)
        .map_err(|e| EngineError::Internal(e.into()))
}

/// Checks every field of a merchant and fills in its profile: `base` carries the id,
/// name, currency, time zone and bank account; the rest comes as sent.
fn merchant_row(
    base: MerchantRow,
    cutoff_local_time: &str,
    grace_period_hours: u32,
    payout_delay_business_days: u32,
    pricing: &PricingRequest,
) -> Result<MerchantRow, EngineError> {
    if !(1..=200).contains(&base.name.chars().count()) {
        return Err(EngineError::field("name", "must be 1 to 200 characters"));
    }
    let currency = stored_currency(&base.default_currency)?;
    let fixed_fee_minor = parse_amount(&pricing.fixed_fee, currency)
        .map_err(|e| EngineError::field("pricing.fixed_fee", e.to_string()))?;
    let profile = SettlementProfile::new(
        &base.time_zone,
        cutoff_local_time,
        grace_period_hours,
        payout_delay_business_days,
        Pricing {
            mdr_basis_points: pricing.mdr_basis_points,
            fixed_fee_minor,
        },
    )
    .map_err(|e| EngineError::Validation {
        detail: e.to_string(),
        field: None,
    })?;
    Ok(MerchantRow {
        cutoff_local_time: profile.cutoff.local_time,
        grace_period_hours: to_i32(profile.grace_period_hours)?,
        payout_delay_business_days: to_i32(profile.payout_delay_business_days)?,
        mdr_basis_points: to_i32(profile.pricing.mdr_basis_points)?,
        fixed_fee_minor,
        ..base
    })
}

/// Applies the host settings as sent (unchanged where not sent) to a merchant's row.
fn apply_host_settings(
    row: &mut MerchantRow,
    host_matching: Option<&str>,
    auto_close: Option<bool>,
    auto_close_delay_minutes: Option<u32>,
) -> Result<(), EngineError> {
    if let Some(m) = host_matching {
        row.host_matching = HostMatching::parse(m)
            .ok_or_else(|| EngineError::field("host_matching", "must be report or enforce"))?
            .as_str()
            .to_owned();
    }
    if let Some(on) = auto_close {
        row.auto_close = on;
    }
    if let Some(delay) = auto_close_delay_minutes {
        if delay > MAX_AUTO_CLOSE_DELAY_MINUTES {
            return Err(EngineError::field(
                "auto_close_delay_minutes",
                format!("must be between 0 and {MAX_AUTO_CLOSE_DELAY_MINUTES}"),
            ));
        }
        row.auto_close_delay_minutes = to_i32(delay)?;
    }
    // The host closes a day only inside its grace window, so the delay must end in it.
    if row.auto_close && row.auto_close_delay_minutes > row.grace_period_hours.saturating_mul(60) {
        return Err(EngineError::field(
            "auto_close_delay_minutes",
            "must not be longer than the grace period: the host closes a day only inside its grace window",
        ));
    }
    Ok(())
}

/// The merchant's own language (English when it names none the service speaks).
pub async fn locale_of(pool: &PgPool, merchant_id: &str) -> Result<Locale, EngineError> {
    let mut conn = pool.acquire().await?;
    let merchant = existing_merchant(&mut conn, merchant_id).await?;
    Ok(merchant.locale.parse().unwrap_or_default())
}

/// The merchant's time zone, in which its pages show instants.
pub async fn time_zone_of(pool: &PgPool, merchant_id: &str) -> Result<chrono_tz::Tz, EngineError> {
    let mut conn = pool.acquire().await?;
    let merchant = existing_merchant(&mut conn, merchant_id).await?;
    Ok(profile_of(&merchant)?.cutoff.time_zone)
}

/// Sets the merchant's default language as sent (unchanged where not sent).
fn apply_locale(row: &mut MerchantRow, locale: Option<&str>) -> Result<(), EngineError> {
    if let Some(tag) = locale {
        let locale: Locale = tag
            .parse()
            .map_err(|e: UnknownLocale| EngineError::field("locale", e.to_string()))?;
        row.locale = locale.tag().to_owned();
    }
    Ok(())
}

/// Checks a new merchant and builds its row, its bank account sealed (no database).
pub fn new_merchant(
    req: &CreateMerchantRequest,
    keys: &BankAccountKeys,
) -> Result<MerchantRow, EngineError> {
    check_id("merchant_id", &req.merchant_id)?;
    let currency: Currency = req
        .currency
        .parse()
        .map_err(|_| EngineError::field("currency", "is not a supported ISO 4217 code"))?;
    let sealed = match req.bank_account.as_deref() {
        Some(account) => Some(seal_account(
            keys,
            &req.merchant_id.clone(),
            &check_bank_account(account)?,
        )?),
        None => None,
    };
    merchant_row(
        MerchantRow {
            merchant_id: req.merchant_id.clone(),
            name: req.name.clone(),
            default_currency: currency.code().to_owned(),
            time_zone: req.time_zone.clone(),
            cutoff_local_time: chrono::NaiveTime::MIN,
            grace_period_hours: 0,
            payout_delay_business_days: 0,
            mdr_basis_points: 0,
            fixed_fee_minor: 0,
            created_at: chrono::Utc::now(),
            bank_account_key_id: sealed.as_ref().map(|s| s.key_id.clone()),
            bank_account_sealed: sealed.as_ref().map(|s| s.sealed.clone()),
            bank_account_last4: sealed.map(|s| s.last4),
            host_matching: HostMatching::default().as_str().to_owned(),
            auto_close: false,
            auto_close_delay_minutes: DEFAULT_AUTO_CLOSE_DELAY_MINUTES,
            locale: Locale::default().tag().to_owned(),
        },
        &req.cutoff_local_time,
        req.grace_period_hours.unwrap_or(DEFAULT_GRACE_PERIOD_HOURS),
        req.payout_delay_business_days
            .unwrap_or(DEFAULT_PAYOUT_DELAY_BUSINESS_DAYS),
        &req.pricing,
    )
    .and_then(|mut row| {
        apply_host_settings(
            &mut row,
            req.host_matching.as_deref(),
            req.auto_close,
            req.auto_close_delay_minutes,
        )?;
        apply_locale(&mut row, req.locale.as_deref())?;
        Ok(row)
    })
}

/// How long after the cutoff the host closes what terminals forgot, unless chosen.
const DEFAULT_AUTO_CLOSE_DELAY_MINUTES: i32 = 60;

/// Stores a new merchant in a transaction of its own, audited.
pub async fn create_merchant(
    pool: &PgPool,
    row: &MerchantRow,
    actor: &str,
) -> Result<MerchantView, EngineError> {
    in_transaction!(pool, |tx| create_merchant_in(&mut tx, row, actor).await?)
}

/// The transaction of [`create_merchant`].
async fn create_merchant_in(
    tx: &mut PgConnection,
    row: &MerchantRow,
    actor: &str,
) -> Result<MerchantView, EngineError> {
    let stored = merchants::insert_merchant(&mut *tx, row)
        .await
        .map_err(|e| {
            if is_constraint_violation(&e, MERCHANTS_PKEY) {
                EngineError::Conflict {
                    code: ProblemCode::MerchantExists,
                    detail: "a merchant with this merchant_id exists".into(),
                }
            } else {
                e.into()
            }
        })?;
    let view = MerchantView::from_row(&stored)?;
    audit::record(
        &mut *tx,
        Action {
            actor,
            action: "merchant.create",
            object_type: "merchant",
            object_id: stored.merchant_id.clone(),
            reason: None,
            before: None,
            after: Some(to_json(&view)?),
        },
    )
    .await?;
    Ok(view)
}

/// Changes a merchant in a transaction of its own: name, settlement profile,
/// pricing or bank account (a new account ends a payout hold), audited with before
/// and after. Batches already booked keep their cycle and fee.
pub async fn update_merchant(
    pool: &PgPool,
    merchant_id: &str,
    req: &UpdateMerchantRequest,
    reason: &str,
    actor: &str,
    keys: &BankAccountKeys,
) -> Result<MerchantView, EngineError> {
    in_transaction!(pool, |tx| update_merchant_in(
        &mut tx,
        merchant_id,
        req,
        reason,
        actor,
        keys
    )
    .await?)
}

/// The transaction of [`update_merchant`].
async fn update_merchant_in(
    tx: &mut PgConnection,
    merchant_id: &str,
    req: &UpdateMerchantRequest,
    reason: &str,
    actor: &str,
    keys: &BankAccountKeys,
) -> Result<MerchantView, EngineError> {
    let new_account = req
        .bank_account
        .as_deref()
        .map(check_bank_account)
        .transpose()?;
    let before = merchants::find_merchant_for_update(&mut *tx, merchant_id)
        .await?
        .ok_or(EngineError::NotFound("merchant"))?;
    let currency = stored_currency(&before.default_currency)?;
    // A bank account sent again unchanged is no change (and ends no hold).
    let old_account = match bank_account::of_merchant(&before) {
        Some(sealed) => Some(
            keys.open(merchant_id, &sealed)
                .map_err(|e| EngineError::Internal(e.into()))?,
        ),
        None => None,
    };
    let resealed = match &new_account {
        Some(a) if old_account.as_deref() != Some(a.as_str()) => {
            Some(seal_account(keys, merchant_id, a)?)
        }
        _ => None,
    };
    let pricing = req.pricing.as_ref().map_or_else(
        || PricingRequest {
            mdr_basis_points: u32::try_from(before.mdr_basis_points).unwrap_or(0),
            fixed_fee: format_amount(before.fixed_fee_minor, currency),
        },
        |p| PricingRequest {
            mdr_basis_points: p.mdr_basis_points,
            fixed_fee: p.fixed_fee.clone(),
        },
    );
    let cutoff = req
        .cutoff_local_time
        .clone()
        .unwrap_or_else(|| before.cutoff_local_time.format("%H:%M:%S").to_string());
    let changed = merchant_row(
        MerchantRow {
            name: req.name.clone().unwrap_or_else(|| before.name.clone()),
            time_zone: req
                .time_zone
                .clone()
                .unwrap_or_else(|| before.time_zone.clone()),
            bank_account_key_id: resealed
                .as_ref()
                .map(|s| s.key_id.clone())
                .or_else(|| before.bank_account_key_id.clone()),
            bank_account_sealed: resealed
                .as_ref()
                .map(|s| s.sealed.clone())
                .or_else(|| before.bank_account_sealed.clone()),
            bank_account_last4: resealed
                .as_ref()
                .map(|s| s.last4.clone())
                .or_else(|| before.bank_account_last4.clone()),
            ..before.clone()
        },
        &cutoff,
        req.grace_period_hours
            .unwrap_or(u32::try_from(before.grace_period_hours).unwrap_or(0)),
        req.payout_delay_business_days
            .unwrap_or(u32::try_from(before.payout_delay_business_days).unwrap_or(0)),
        &pricing,
    )?;
    let mut changed = changed;
    apply_host_settings(
        &mut changed,
        req.host_matching.as_deref(),
        req.auto_close,
        req.auto_close_delay_minutes,
    )?;
    apply_locale(&mut changed, req.locale.as_deref())?;
    let after = merchants::update_merchant(&mut *tx, &changed).await?;
    // A new bank account ends a hold that an account failure put on payouts.
    if resealed.is_some()
        && settlement_store::payouts::release_payout_hold(&mut *tx, merchant_id).await?
    {
        tracing::info!(merchant_id, "payout hold released: bank account changed");
    }
    let view = MerchantView::from_row(&after)?;
    audit::record(
        &mut *tx,
        Action {
            actor,
            action: "merchant.update",
            object_type: "merchant",
            object_id: merchant_id.to_owned(),
            reason: Some(reason),
            before: Some(to_json(&MerchantView::from_row(&before)?)?),
            after: Some(to_json(&view)?),
        },
    )
    .await?;
    Ok(view)
}

/// Registers a terminal of a merchant in a transaction of its own, audited.
pub async fn create_terminal(
    pool: &PgPool,
    merchant_id: &str,
    terminal_id: &str,
    actor: &str,
) -> Result<TerminalView, EngineError> {
    in_transaction!(pool, |tx| create_terminal_in(
        &mut tx,
        merchant_id,
        terminal_id,
        actor
    )
    .await?)
}

/// The transaction of [`create_terminal`].
async fn create_terminal_in(
    tx: &mut PgConnection,
    merchant_id: &str,
    terminal_id: &str,
    actor: &str,
) -> Result<TerminalView, EngineError> {
    check_id("terminal_id", terminal_id)?;
    existing_merchant(&mut *tx, merchant_id).await?;
    let terminal = merchants::insert_terminal(&mut *tx, merchant_id, terminal_id)
        .await
        .map_err(|e| {
            if is_constraint_violation(&e, TERMINALS_PKEY) {
                EngineError::Conflict {
                    code: ProblemCode::TerminalExists,
                    detail: "a terminal with this terminal_id exists".into(),
                }
            } else {
                e.into()
            }
        })?;
    let view = TerminalView::from_row(&terminal)?;
    audit::record(
        &mut *tx,
        Action {
            actor,
            action: "terminal.create",
            object_type: "terminal",
            object_id: view.terminal_id.clone(),
            reason: None,
            before: None,
            after: Some(to_json(&view)?),
        },
    )
    .await?;
    Ok(view)
}
