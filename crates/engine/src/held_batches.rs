//! Batches held for operations after their grace deadline, and what operations
//! decide about them: accept (booked now, if its transactions are still its own) or
//! decline (never paid; its transactions may be presented again). Each decision
//! settles the review request and the duplicate attempts the batch holds, tells the
//! merchant and is audited.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use settlement_domain::exception::ExceptionState;
use settlement_domain::fees::batch_fee;
use settlement_domain::lateness::BatchStatus;
use settlement_domain::ledger::batch_acceptance_entry;
use settlement_store::presentments::{self, Repeat};
use settlement_store::{batches, close_attempts, ledger};
use settlement_wire::batches::BatchView;
use settlement_wire::ProblemCode;

use crate::audit::{self, Action};
use crate::close_batch::duplicates_json;
use crate::db::in_transaction;
use crate::error::EngineError;
use crate::events;
use crate::profile::{existing_merchant, profile_of};
use crate::settlement::open_cycle_date;
use crate::views::{stored_currency, to_json, ReadRow, Reader};
use settlement_i18n::Lang;

/// Accepts a held batch in a transaction of its own: books it into the merchant's
/// open cycle with its fee, unless another batch of the terminal presents one of its
/// transactions meanwhile (then nothing is booked).
pub async fn accept(
    pool: &PgPool,
    batch_id: Uuid,
    actor: &str,
    reason: &str,
    now: DateTime<Utc>,
    lang: &Lang,
) -> Result<BatchView, EngineError> {
    in_transaction!(pool, |tx| accept_in(
        &mut tx, batch_id, actor, reason, now, lang
    )
    .await?)
}

/// The transaction of [`accept`].
async fn accept_in(
    tx: &mut PgConnection,
    batch_id: Uuid,
    actor: &str,
    reason: &str,
    now: DateTime<Utc>,
    lang: &Lang,
) -> Result<BatchView, EngineError> {
    let before = held_for_update(&mut *tx, batch_id).await?;
    // Its transactions must still be its own: if another batch of the terminal
    // presents one of them meanwhile, accepting would pay it twice.
    let repeats =
        presentments::claim_presentments_of_batch(&mut *tx, batch_id, &before.terminal_id).await?;
    if !repeats.is_empty() {
        let as_repeats: Vec<Repeat> = repeats
            .iter()
            .map(|r| Repeat {
                rrn: r.rrn.clone(),
                batch_id: r.batch_id,
                batch_number: r.batch_number,
                status: r.status,
                presenting: None,
            })
            .collect();
        return Err(EngineError::DuplicateTransactions {
            detail: format!(
                "{} of the batch's transactions are presented by another batch of terminal {}; \
                 accepting it would pay them twice, so nothing was booked. Decline this batch instead.",
                repeats.len(),
                before.terminal_id
            ),
            duplicates: duplicates_json(
                repeats.iter().map(|r| (r.stan.as_str(), r.rrn.as_str())),
                &as_repeats,
            ),
        });
    }
    let merchant = existing_merchant(&mut *tx, &before.merchant_id).await?;
    let profile = profile_of(&merchant)?;
    let currency = stored_currency(&before.currency)?;
    let cycle_date = open_cycle_date(
        &mut *tx,
        &before.merchant_id,
        &before.currency,
        profile.cutoff.business_date_of(now),
    )
    .await?;
    let (sale_count, sale_amount) = batches::non_voided_sales_of_batch(&mut *tx, batch_id).await?;
    let fee = batch_fee(sale_count, sale_amount, profile.pricing)
        .ok_or_else(|| EngineError::Internal(anyhow::anyhow!("fee overflow")))?;
    let entry_id =
        match batch_acceptance_entry(&before.merchant_id, currency, before.net_amount_minor) {
            Some(entry) => Some(
                ledger::insert_journal_entry(
                    &mut *tx,
                    "batch_accepted",
                    Some(&before.merchant_id),
                    &format!(
                        "batch {} of terminal {} accepted by {actor}",
                        before.batch_number.unwrap_or_default(),
                        before.terminal_id
                    ),
                    &entry,
                )
                .await?,
            ),
            None => None,
        };
    let after = batches::accept_batch_by_operator(
        &mut *tx, batch_id, cycle_date, fee, entry_id, reason, actor,
    )
    .await?;
    record_decision(
        &mut *tx,
        (actor, reason, lang),
        &before,
        &after,
        Decision::Accepted,
    )
    .await
}

/// Declines a held batch in a transaction of its own: never paid, the merchant reads
/// the reason, and its transactions may be presented again.
pub async fn decline(
    pool: &PgPool,
    batch_id: Uuid,
    actor: &str,
    reason: &str,
    lang: &Lang,
) -> Result<BatchView, EngineError> {
    in_transaction!(pool, |tx| decline_in(
        &mut tx, batch_id, actor, reason, lang
    )
    .await?)
}

/// The transaction of [`decline`].
async fn decline_in(
    tx: &mut PgConnection,
    batch_id: Uuid,
    actor: &str,
    reason: &str,
    lang: &Lang,
) -> Result<BatchView, EngineError> {
    let before = held_for_update(&mut *tx, batch_id).await?;
    let after = batches::decline_batch_by_operator(&mut *tx, batch_id, reason, actor).await?;
    presentments::release_presentments_of_batch(&mut *tx, batch_id).await?;
    record_decision(
        &mut *tx,
        (actor, reason, lang),
        &before,
        &after,
        Decision::Declined,
    )
    .await
}

/// The batch, locked, when it is held for operations (rejected outside grace);
/// another status answers a conflict, since only a held batch can be decided.
async fn held_for_update(
    tx: &mut PgConnection,
    batch_id: Uuid,
) -> Result<batches::BatchRow, EngineError> {
    let batch = batches::find_batch_for_update(tx, batch_id)
        .await?
        .ok_or(EngineError::NotFound("batch"))?;
    if batch.status != BatchStatus::RejectedOutsideGrace {
        return Err(EngineError::Conflict {
            code: ProblemCode::BatchNotRejected,
            detail: format!("the batch is {}, not rejected_outside_grace", batch.status),
        });
    }
    Ok(batch)
}

/// What operations decided about a held batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Accepted,
    Declined,
}

/// What follows a decision about a held batch, in its transaction: its review
/// request and the duplicate attempts it holds are decided with it, the merchant gets
/// the event and the audit the record. Returns the batch's view.
async fn record_decision(
    tx: &mut PgConnection,
    (actor, reason, lang): (&str, &str, &Lang),
    before: &batches::BatchRow,
    after: &batches::BatchRow,
    decision: Decision,
) -> Result<BatchView, EngineError> {
    let (state, verb, attempts, event, action) = match decision {
        Decision::Accepted => (
            ExceptionState::Resolved,
            "accepted",
            "they are paid there",
            events::BATCH_ACCEPTED,
            "batch.accept",
        ),
        Decision::Declined => (
            ExceptionState::Declined,
            "declined",
            "they may be closed again",
            events::BATCH_DECLINED,
            "batch.decline",
        ),
    };
    close_attempts::decide_review_requests(
        tx,
        after.id,
        state,
        actor,
        &format!("the batch was {verb}: {reason}"),
    )
    .await?;
    close_attempts::resolve_attempts_held_by(
        tx,
        &after.merchant_id,
        after.id,
        actor,
        &format!(
            "batch {} holding these transactions was {verb}; {attempts}",
            after.batch_number.unwrap_or_default()
        ),
    )
    .await?;
    // Operations read the answer in the language they asked for; the merchant's
    // event and the audit record are in the merchant's own.
    let merchant = existing_merchant(&mut *tx, &after.merchant_id).await?;
    let reader =
        Reader::of_merchant(&mut *tx, &merchant, lang, Utc::now(), after.cycle_date).await?;
    let own = reader.in_locale(merchant.locale.parse().unwrap_or_default());
    let view = BatchView::read_row(after, &reader)?;
    let own_view = BatchView::read_row(after, &own)?;
    events::emit(tx, &after.merchant_id, event, &own_view).await?;
    audit::record(
        tx,
        Action {
            actor,
            action,
            object_type: "batch",
            object_id: after.id.to_string(),
            reason: Some(reason),
            before: Some(to_json(&BatchView::read_row(before, &own)?)?),
            after: Some(to_json(&own_view)?),
        },
    )
    .await?;
    Ok(view)
}
