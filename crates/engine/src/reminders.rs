//! Reminders to close: `terminal.close_missing` for a terminal that closed in the last
//! 14 days but not during the business day that ended at the last cutoff (nor since),
//! once a configurable delay after that cutoff and once more 12 hours before the grace
//! deadline, while a deadline can still be met; and once for every run of batch
//! numbers that never arrived (counters wrap: 999999 then 1 skips nothing, 999998
//! then 2 skips 999999 and 1, announced as two runs). Each reminder is fenced by a
//! unique key, so several replicas never send one twice.

use std::time::Duration;

use chrono::{DateTime, Days, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use settlement_domain::lateness::earliest_open_deadline;
use settlement_store::{merchants, reminders, status};
use settlement_wire::reminders::CloseMissing;

use crate::db::in_transaction;
use crate::error::EngineError;
use crate::events::{emit_as, TERMINAL_CLOSE_MISSING};
use crate::host;
use crate::profile::profile_of;
use crate::views::timestamp;

/// A terminal counts as in use when it closed within this many days.
pub const ACTIVE_WITHIN_DAYS: i64 = 14;
/// The second reminder goes this long before the grace deadline.
pub const SECOND_REMINDER_BEFORE_DEADLINE_HOURS: i64 = 12;

/// Longest run of missing numbers listed in one gap reminder.
const MAX_MISSING_LISTED: i32 = 100;

/// Sends every reminder due at `now`; returns how many were sent. One merchant's
/// failure is logged and does not hold up the others.
pub async fn send_due(
    pool: &PgPool,
    now: DateTime<Utc>,
    delay: Duration,
) -> Result<usize, EngineError> {
    let active_since = now - chrono::Duration::days(ACTIVE_WITHIN_DAYS);
    let delay = chrono::Duration::from_std(delay).map_err(|e| EngineError::Internal(e.into()))?;
    let merchant_ids = {
        let mut conn = pool.acquire().await?;
        reminders::active_merchants(&mut conn, active_since).await?
    };
    let mut sent = 0;
    for merchant_id in merchant_ids {
        match send_due_for_merchant(pool, &merchant_id, now, delay, active_since).await {
            Ok(n) => sent += n,
            Err(e) => {
                tracing::error!(merchant_id, error = %e, "reminders failed for a merchant; retrying next run")
            }
        }
    }
    Ok(sent)
}

async fn send_due_for_merchant(
    pool: &PgPool,
    merchant_id: &str,
    now: DateTime<Utc>,
    delay: chrono::Duration,
    active_since: DateTime<Utc>,
) -> Result<usize, EngineError> {
    let mut conn = pool.acquire().await?;
    let Some(merchant) = merchants::find_merchant(&mut conn, merchant_id).await? else {
        return Ok(0);
    };
    let profile = profile_of(&merchant)?;
    let cutoff = profile.cutoff;
    let today = cutoff.business_date_of(now);
    // The business date whose cutoff passed last, and the one before it.
    let last_date = today.checked_sub_days(Days::new(1)).unwrap_or(today);
    let before_last = last_date
        .checked_sub_days(Days::new(1))
        .unwrap_or(last_date);
    let last_cutoff = cutoff.instant_on(last_date);
    // Silent: no close during the last business day, nor since.
    let silent = reminders::silent_terminals(
        &mut conn,
        merchant_id,
        cutoff.instant_on(before_last),
        active_since,
    )
    .await?;
    let gaps = status::batch_number_gaps(&mut conn, merchant_id, active_since).await?;
    let silent_ids: Vec<&str> = silent.iter().map(|t| t.terminal_id.as_str()).collect();
    let unsettled = host::summaries(&mut conn, &silent_ids).await?;
    drop(conn);

    let mut sent = 0;
    for t in &silent {
        // The open batch may hold sales from right after the last close; quote the
        // earliest deadline that can still be met. Past every deadline, nothing
        // can make it any more and nothing is sent.
        let opened = cutoff.business_date_of(t.last_closed_at);
        let Some(deadline) = earliest_open_deadline(&profile, opened, last_date, now) else {
            continue;
        };
        let second_at = deadline - chrono::Duration::hours(SECOND_REMINDER_BEFORE_DEADLINE_HOURS);
        let mut kinds = Vec::new();
        if now >= last_cutoff + delay {
            kinds.push("after_cutoff");
        }
        if now >= second_at {
            kinds.push("before_grace_deadline");
        }
        for kind in kinds {
            let event = CloseMissing {
                terminal_id: t.terminal_id.clone(),
                reminder: kind.to_owned(),
                business_date: Some(last_date),
                cutoff_at: Some(timestamp(last_cutoff)),
                grace_deadline: Some(timestamp(deadline)),
                last_closed_at: Some(timestamp(t.last_closed_at)),
                missing_batch_numbers: Vec::new(),
                unsettled: Some(unsettled.get(&t.terminal_id).cloned().unwrap_or_default()),
            };
            let id = Uuid::now_v7();
            let new = in_transaction!(pool, |tx| {
                let new = reminders::insert_terminal_reminder(
                    &mut tx,
                    &t.terminal_id,
                    last_date,
                    kind,
                    id,
                    now,
                )
                .await?;
                if new {
                    emit_as(&mut tx, id, merchant_id, TERMINAL_CLOSE_MISSING, &event).await?;
                }
                new
            })?;
            sent += usize::from(new);
        }
    }
    // Gaps come from closes received since `active_since`, and each is announced after
    // its later close arrived: a fence of the same run sent before that announced an
    // earlier skip of those numbers, before the counter wrapped.
    for gap in &gaps {
        let last_listed = gap
            .last_missing
            .min(gap.first_missing.saturating_add(MAX_MISSING_LISTED - 1));
        let event = CloseMissing {
            terminal_id: gap.terminal_id.clone(),
            reminder: "batch_number_gap".to_owned(),
            business_date: None,
            cutoff_at: None,
            grace_deadline: None,
            last_closed_at: None,
            missing_batch_numbers: (gap.first_missing..=last_listed).collect(),
            unsettled: None,
        };
        let id = Uuid::now_v7();
        let new = in_transaction!(pool, |tx| {
            let new = reminders::insert_gap_reminder(
                &mut tx,
                &gap.terminal_id,
                gap.first_missing,
                gap.last_missing,
                id,
                now,
                active_since,
            )
            .await?;
            if new {
                emit_as(&mut tx, id, merchant_id, TERMINAL_CLOSE_MISSING, &event).await?;
            }
            new
        })?;
        sent += usize::from(new);
    }
    Ok(sent)
}
