//! Operations' routes: merchants, terminals, and the exceptions to work on.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use settlement_wire::ProblemCode;
use uuid::Uuid;

use settlement_domain::merchant::{
    Pricing, SettlementProfile, DEFAULT_GRACE_PERIOD_HOURS, DEFAULT_PAYOUT_DELAY_BUSINESS_DAYS,
};
use settlement_domain::money::{format_amount, parse_amount, Currency};
use settlement_store::close_attempts::{self, ExceptionRow};
use settlement_store::is_constraint_violation;
use settlement_store::merchants::{self, MerchantRow, TerminalRow, MERCHANTS_PKEY, TERMINALS_PKEY};

use crate::audit::{self, check_reason, Action};
use crate::auth::Principal;
use crate::bank_account::{self, SealedAccount};
use crate::db::in_transaction;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, JsonBody};
use crate::profile::existing_merchant;
use crate::state::AppState;
use crate::wire::{cursor_id, page, page_limit, stored_currency, timestamp, Page};
use crate::wire::{to_json, BatchView};

use settlement_engine::held_batches;

/// Longest merchant and terminal id.
const MAX_ID_LEN: usize = 64;

fn check_id(field: &str, id: &str) -> Result<(), ApiError> {
    let ok = (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::field(
            field,
            "must be 1 to 64 letters, digits, '_' or '-'",
        ))
    }
}

/// Pricing as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricingRequest {
    pub mdr_basis_points: u32,
    pub fixed_fee: String,
}

/// `POST /v1/ops/merchants` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateMerchantRequest {
    pub merchant_id: String,
    pub name: String,
    pub currency: String,
    pub time_zone: String,
    pub cutoff_local_time: String,
    #[serde(default)]
    pub grace_period_hours: Option<u32>,
    #[serde(default)]
    pub payout_delay_business_days: Option<u32>,
    pub pricing: PricingRequest,
    #[serde(default)]
    pub bank_account: Option<String>,
}

/// `PATCH /v1/ops/merchants/{merchant_id}` body: the fields to change and why.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateMerchantRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub cutoff_local_time: Option<String>,
    #[serde(default)]
    pub grace_period_hours: Option<u32>,
    #[serde(default)]
    pub payout_delay_business_days: Option<u32>,
    #[serde(default)]
    pub pricing: Option<PricingRequest>,
    #[serde(default)]
    pub bank_account: Option<String>,
    pub reason: String,
}

/// A merchant as the API shows it.
#[derive(Debug, Serialize)]
pub struct MerchantView {
    pub merchant_id: String,
    pub name: String,
    pub currency: String,
    pub time_zone: String,
    pub cutoff_local_time: String,
    pub grace_period_hours: i32,
    pub payout_delay_business_days: i32,
    pub pricing: PricingView,
    /// The payout bank account, all but its last four characters masked.
    pub bank_account: Option<String>,
    pub created_at: String,
}

/// Pricing as the API shows it.
#[derive(Debug, Serialize)]
pub struct PricingView {
    pub mdr_basis_points: i32,
    pub fixed_fee: String,
}

impl MerchantView {
    fn from_row(m: &MerchantRow) -> Result<Self, ApiError> {
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
            bank_account: m.bank_account_last4.as_deref().map(bank_account::masked),
            created_at: timestamp(m.created_at),
        })
    }
}

fn to_i32(v: u32) -> Result<i32, ApiError> {
    i32::try_from(v).map_err(|e| ApiError::Internal(e.into()))
}

/// `POST /v1/ops/merchants`: onboard a merchant with its settlement profile.
#[tracing::instrument(skip_all)]
pub async fn create_merchant(
    State(state): State<AppState>,
    principal: Principal,
    body: JsonBody,
) -> Result<(StatusCode, Json<MerchantView>), ApiError> {
    let actor = principal.require_ops()?.to_owned();
    let req = body
        .parse_allowing_card_number_in::<CreateMerchantRequest>(Some("bank_account"))?
        .value;
    check_id("merchant_id", &req.merchant_id)?;
    let currency: Currency = req
        .currency
        .parse()
        .map_err(|_| ApiError::field("currency", "is not a supported ISO 4217 code"))?;
    let sealed = match req.bank_account.as_deref() {
        Some(account) => Some(seal_account(
            &state,
            &req.merchant_id,
            &check_bank_account(account)?,
        )?),
        None => None,
    };
    let row = merchant_row(
        MerchantRow {
            merchant_id: req.merchant_id,
            name: req.name,
            default_currency: currency.code().to_owned(),
            time_zone: req.time_zone,
            cutoff_local_time: chrono::NaiveTime::MIN,
            grace_period_hours: 0,
            payout_delay_business_days: 0,
            mdr_basis_points: 0,
            fixed_fee_minor: 0,
            created_at: chrono::Utc::now(),
            bank_account_key_id: sealed.as_ref().map(|s| s.key_id.clone()),
            bank_account_sealed: sealed.as_ref().map(|s| s.sealed.clone()),
            bank_account_last4: sealed.map(|s| s.last4),
        },
        &req.cutoff_local_time,
        req.grace_period_hours.unwrap_or(DEFAULT_GRACE_PERIOD_HOURS),
        req.payout_delay_business_days
            .unwrap_or(DEFAULT_PAYOUT_DELAY_BUSINESS_DAYS),
        &req.pricing,
    )?;
    let view = in_transaction!(&state.pool, |tx| {
        let stored = merchants::insert_merchant(&mut tx, &row)
            .await
            .map_err(|e| {
                if is_constraint_violation(&e, MERCHANTS_PKEY) {
                    ApiError::Conflict {
                        code: ProblemCode::MerchantExists,
                        detail: "a merchant with this merchant_id exists".into(),
                    }
                } else {
                    e.into()
                }
            })?;
        let view = MerchantView::from_row(&stored)?;
        audit::record(
            &mut tx,
            Action {
                actor: &actor,
                action: "merchant.create",
                object_type: "merchant",
                object_id: stored.merchant_id.clone(),
                reason: None,
                before: None,
                after: Some(to_json(&view)?),
            },
        )
        .await?;
        view
    })?;
    tracing::info!(merchant_id = view.merchant_id, "merchant created");
    Ok((StatusCode::CREATED, Json(view)))
}

/// Checks a bank account as sent and writes it the one way it is kept: spaces and
/// dashes (as printed on cards and statements) removed, letters upper-case.
fn check_bank_account(account: &str) -> Result<String, ApiError> {
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
        Err(ApiError::field(
            "bank_account",
            "must be 4 to 34 letters or digits (spaces and dashes are ignored)",
        ))
    }
}

/// Seals a merchant's bank account with the current key.
fn seal_account(
    state: &AppState,
    merchant_id: &str,
    account: &str,
) -> Result<SealedAccount, ApiError> {
    state
        .bank_account_keys
        .seal(merchant_id, account)
        .map_err(|e| ApiError::Internal(e.into()))
}

/// Checks every field of a merchant and fills in its profile: `base` carries the id,
/// name, currency, time zone and bank account; the rest comes as sent.
fn merchant_row(
    base: MerchantRow,
    cutoff_local_time: &str,
    grace_period_hours: u32,
    payout_delay_business_days: u32,
    pricing: &PricingRequest,
) -> Result<MerchantRow, ApiError> {
    if !(1..=200).contains(&base.name.chars().count()) {
        return Err(ApiError::field("name", "must be 1 to 200 characters"));
    }
    let currency = stored_currency(&base.default_currency)?;
    let fixed_fee_minor = parse_amount(&pricing.fixed_fee, currency)
        .map_err(|e| ApiError::field("pricing.fixed_fee", e.to_string()))?;
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
    .map_err(|e| ApiError::Validation {
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

/// `PATCH /v1/ops/merchants/{merchant_id}`: changes a merchant's name, settlement
/// profile, pricing or bank account, with a reason; audited with before and after.
/// Batches already booked keep their cycle and fee.
#[tracing::instrument(skip_all)]
pub async fn update_merchant(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(merchant_id): ApiPath<String>,
    body: JsonBody,
) -> Result<Json<MerchantView>, ApiError> {
    let actor = principal.require_ops()?.to_owned();
    let req = body
        .parse_allowing_card_number_in::<UpdateMerchantRequest>(Some("bank_account"))?
        .value;
    let reason = check_reason(&req.reason)?.to_owned();
    let new_account = req
        .bank_account
        .as_deref()
        .map(check_bank_account)
        .transpose()?;
    let view = in_transaction!(&state.pool, |tx| {
        let before = merchants::find_merchant_for_update(&mut tx, &merchant_id)
            .await?
            .ok_or(ApiError::NotFound("merchant"))?;
        let currency = stored_currency(&before.default_currency)?;
        // A bank account sent again unchanged is no change (and ends no hold).
        let old_account = match bank_account::of_merchant(&before) {
            Some(sealed) => Some(
                state
                    .bank_account_keys
                    .open(&merchant_id, &sealed)
                    .map_err(|e| ApiError::Internal(e.into()))?,
            ),
            None => None,
        };
        let resealed = match &new_account {
            Some(a) if old_account.as_deref() != Some(a.as_str()) => {
                Some(seal_account(&state, &merchant_id, a)?)
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
        let after = merchants::update_merchant(&mut tx, &changed).await?;
        // A new bank account ends a hold that an account failure put on payouts.
        if resealed.is_some()
            && settlement_store::payouts::release_payout_hold(&mut tx, &merchant_id).await?
        {
            tracing::info!(merchant_id, "payout hold released: bank account changed");
        }
        let view = MerchantView::from_row(&after)?;
        audit::record(
            &mut tx,
            Action {
                actor: &actor,
                action: "merchant.update",
                object_type: "merchant",
                object_id: merchant_id.clone(),
                reason: Some(&reason),
                before: Some(to_json(&MerchantView::from_row(&before)?)?),
                after: Some(to_json(&view)?),
            },
        )
        .await?;
        view
    })?;
    Ok(Json(view))
}

/// `POST /v1/ops/batches/{batch_id}/accept` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptBatchRequest {
    pub reason: String,
}

/// `POST /v1/ops/batches/{batch_id}/accept`: books a batch rejected outside the grace
/// window into the merchant's open cycle, marked `accepted_by_operator`, with the
/// operator's reason. A batch that is not rejected answers 409.
#[tracing::instrument(skip_all)]
pub async fn accept_batch(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(batch_id): ApiPath<Uuid>,
    body: JsonBody,
) -> Result<Json<BatchView>, ApiError> {
    let actor = principal.require_ops()?.to_owned();
    let req = body.parse::<AcceptBatchRequest>()?.value;
    let reason = check_reason(&req.reason)?.to_owned();
    let now = chrono::Utc::now();
    let view = in_transaction!(&state.pool, |tx| {
        held_batches::accept(&mut tx, batch_id, &actor, &reason, now).await?
    })?;
    Ok(Json(view))
}

/// `POST /v1/ops/batches/{batch_id}/decline`: declines a batch rejected outside the
/// grace window, with the operator's reason: it is never paid, the merchant reads the
/// reason, and its transactions may be presented again. A batch that is not rejected
/// answers 409.
#[tracing::instrument(skip_all)]
pub async fn decline_batch(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(batch_id): ApiPath<Uuid>,
    body: JsonBody,
) -> Result<Json<BatchView>, ApiError> {
    let actor = principal.require_ops()?.to_owned();
    let req = body.parse::<AcceptBatchRequest>()?.value;
    let reason = check_reason(&req.reason)?.to_owned();
    let view = in_transaction!(&state.pool, |tx| {
        held_batches::decline(&mut tx, batch_id, &actor, &reason).await?
    })?;
    Ok(Json(view))
}

/// `POST /v1/ops/merchants/{merchant_id}/terminals` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTerminalRequest {
    pub terminal_id: String,
}

/// A terminal as the API shows it.
#[derive(Debug, Serialize)]
pub struct TerminalView {
    pub terminal_id: String,
    pub merchant_id: String,
    pub created_at: String,
}

impl From<TerminalRow> for TerminalView {
    fn from(t: TerminalRow) -> Self {
        TerminalView {
            terminal_id: t.terminal_id,
            merchant_id: t.merchant_id,
            created_at: timestamp(t.created_at),
        }
    }
}

/// `POST /v1/ops/merchants/{merchant_id}/terminals`: register a terminal.
#[tracing::instrument(skip_all)]
pub async fn create_terminal(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(merchant_id): ApiPath<String>,
    body: JsonBody,
) -> Result<(StatusCode, Json<TerminalView>), ApiError> {
    let actor = principal.require_ops()?.to_owned();
    let req = body.parse::<CreateTerminalRequest>()?.value;
    check_id("terminal_id", &req.terminal_id)?;
    let terminal = in_transaction!(&state.pool, |tx| {
        existing_merchant(&mut tx, &merchant_id).await?;
        let terminal = merchants::insert_terminal(&mut tx, &merchant_id, &req.terminal_id)
            .await
            .map_err(|e| {
                if is_constraint_violation(&e, TERMINALS_PKEY) {
                    ApiError::Conflict {
                        code: ProblemCode::TerminalExists,
                        detail: "a terminal with this terminal_id exists".into(),
                    }
                } else {
                    e.into()
                }
            })?;
        let view = TerminalView::from(terminal);
        audit::record(
            &mut tx,
            Action {
                actor: &actor,
                action: "terminal.create",
                object_type: "terminal",
                object_id: view.terminal_id.clone(),
                reason: None,
                before: None,
                after: Some(to_json(&view)?),
            },
        )
        .await?;
        view
    })?;
    Ok((StatusCode::CREATED, Json(terminal)))
}

/// Query of the exceptions list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// `open` (the default), `resolved`, `declined` or `all`.
    pub state: Option<String>,
    pub kind: Option<String>,
    pub merchant_id: Option<String>,
}

/// Most repeated lines an exception lists: a page of exceptions stays small however
/// large the refused closes were (a close holds up to 10,000 lines).
const MAX_LISTED_DUPLICATES: usize = 100;

/// Kinds of exceptions, as the list filters them.
const EXCEPTION_KINDS: &[&str] = &[
    "rejected_outside_grace",
    "out_of_balance",
    "duplicate_transactions",
    "review_request",
];
/// States of an exception, as the list filters them (`all` lists every state).
const EXCEPTION_STATES: &[&str] = &["open", "resolved", "declined", "all"];

/// One exception as the API shows it.
#[derive(Debug, Serialize)]
pub struct ExceptionView {
    pub id: Uuid,
    pub kind: String,
    /// `open` until it is resolved or declined.
    pub state: String,
    pub merchant_id: String,
    pub terminal_id: String,
    pub batch_number: i32,
    pub currency: String,
    pub received_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grace_deadline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub net_amount: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub differences: Option<Value>,
    /// For a duplicate attempt: the repeated lines, each with the batch that holds it
    /// (the first `MAX_LISTED_DUPLICATES`; `duplicates_total` counts them all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicates: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicates_total: Option<usize>,
    /// The batch it is about (a held batch, or the batch a review request names).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<Uuid>,
    /// The merchant's note of a review request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Who resolved or declined it (`system` when a later close resolved it).
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    /// Why it was resolved or declined.
    pub resolution: Option<String>,
}

impl ExceptionView {
    fn from_row(e: &ExceptionRow) -> Result<Self, ApiError> {
        let currency = stored_currency(&e.currency)?;
        let duplicate = e.kind == close_attempts::DUPLICATE_TRANSACTIONS;
        Ok(ExceptionView {
            id: e.id,
            kind: e.kind.clone(),
            state: e.state.clone(),
            merchant_id: e.merchant_id.clone(),
            terminal_id: e.terminal_id.clone(),
            batch_number: e.batch_number,
            currency: e.currency.clone(),
            received_at: timestamp(e.received_at),
            grace_deadline: e.grace_deadline.map(timestamp),
            net_amount: e.net_amount_minor.map(|n| format_amount(n, currency)),
            differences: e.details.clone().filter(|_| !duplicate),
            duplicates_total: e
                .details
                .as_ref()
                .and_then(Value::as_array)
                .filter(|_| duplicate)
                .map(Vec::len),
            duplicates: e
                .details
                .as_ref()
                .and_then(Value::as_array)
                .filter(|_| duplicate)
                .map(|all| Value::Array(all.iter().take(MAX_LISTED_DUPLICATES).cloned().collect())),
            batch_id: e.batch_id,
            note: e.note.clone(),
            decided_by: e.decided_by.clone(),
            decided_at: e.decided_at.map(timestamp),
            resolution: e.resolution.clone(),
        })
    }
}

/// `GET /v1/ops/exceptions`: batches held after their grace deadline, closes refused
/// out of balance or for duplicate transactions, and merchants' review requests,
/// newest first; open ones unless `state` says otherwise.
#[tracing::instrument(skip_all)]
pub async fn list_exceptions(
    State(state): State<AppState>,
    principal: Principal,
    query: ApiQuery<ExceptionQuery>,
) -> Result<Json<Page<ExceptionView>>, ApiError> {
    principal.require_ops()?;
    let q = query.get()?;
    let limit = page_limit(q.limit)?;
    let before = cursor_id(q.cursor.as_deref())?;
    let state_filter = q.state.as_deref().unwrap_or("open");
    if !EXCEPTION_STATES.contains(&state_filter) {
        return Err(ApiError::field(
            "state",
            "must be open, resolved, declined or all",
        ));
    }
    if let Some(kind) = q.kind.as_deref() {
        if !EXCEPTION_KINDS.contains(&kind) {
            return Err(ApiError::field(
                "kind",
                "must be rejected_outside_grace, out_of_balance, duplicate_transactions or review_request",
            ));
        }
    }
    if let Some(id) = q.merchant_id.as_deref() {
        check_id("merchant_id", id)?;
    }
    let filter = close_attempts::ExceptionFilter {
        state: Some(state_filter.to_owned()).filter(|s| s != "all"),
        kind: q.kind.clone(),
        merchant_id: q.merchant_id.clone(),
        before_id: before,
    };
    let mut conn = state.pool.acquire().await?;
    let rows = close_attempts::list_exceptions(&mut conn, &filter, limit + 1).await?;
    Ok(Json(page(
        rows,
        limit,
        |e| e.id.to_string(),
        ExceptionView::from_row,
    )?))
}
