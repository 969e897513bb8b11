//! A merchant's batches: the list with its filters, one batch with a page of its
//! lines, and the merchant's request that operations review a held batch.

use chrono::Utc;
use sqlx::PgPool;
use uuid::Uuid;

use settlement_i18n::Lang;

use settlement_domain::lateness::BatchStatus;
use settlement_store::batches::{self, BatchFilter};
use settlement_store::close_attempts;
use settlement_wire::batches::{
    BatchDetail, BatchListQuery, BatchView, LinePageQuery, ReviewRequestView,
};
use settlement_wire::{Page, ProblemCode};

use crate::db::in_transaction;
use crate::error::EngineError;
use crate::views::{
    cursor_id, line_view, page, page_limit, stored_currency, FromRow, ReadRow, Reader,
};

/// A merchant's batches, newest first, filtered.
pub async fn list_batches(
    pool: &PgPool,
    merchant_id: &str,
    q: BatchListQuery,
    lang: &Lang,
) -> Result<Page<BatchView>, EngineError> {
    let limit = page_limit(q.limit)?;
    let status = q
        .status
        .as_deref()
        .map(|status| {
            BatchStatus::parse(status).ok_or_else(|| {
                EngineError::field(
                    "status",
                    "must be accepted, accepted_late, rejected_outside_grace, accepted_by_operator or declined",
                )
            })
        })
        .transpose()?;
    if let (Some(from), Some(to)) = (q.business_date_from, q.business_date_to) {
        if from > to {
            return Err(EngineError::field(
                "business_date_from",
                "must not be after business_date_to",
            ));
        }
    }
    let filter = BatchFilter {
        status,
        terminal_id: q.terminal_id,
        business_date_from: q.business_date_from,
        business_date_to: q.business_date_to,
        before_id: cursor_id(q.cursor.as_deref())?,
    };
    let mut conn = pool.acquire().await?;
    let rows =
        batches::list_batches_of_merchant(&mut conn, merchant_id, &filter, limit + 1).await?;
    let since = rows.iter().filter_map(|b| b.cycle_date).min();
    let mut reader =
        Reader::of_merchant_id(&mut conn, merchant_id, lang, Utc::now(), since).await?;
    reader
        .know_payouts(&mut conn, rows.iter().filter_map(|b| b.settlement_cycle_id))
        .await?;
    page(
        rows,
        limit,
        |b| b.id.to_string(),
        |b| BatchView::read_row(b, &reader),
    )
}

/// One of a merchant's batches with a page of its lines.
pub async fn batch_detail(
    pool: &PgPool,
    merchant_id: &str,
    batch_id: Uuid,
    q: &LinePageQuery,
    lang: &Lang,
) -> Result<BatchDetail, EngineError> {
    let limit = page_limit(q.limit)?;
    let mut conn = pool.acquire().await?;
    let batch = batches::find_batch_of_merchant(&mut conn, merchant_id, batch_id)
        .await?
        .ok_or(EngineError::NotFound("batch"))?;
    let currency = stored_currency(&batch.currency)?;
    let rows =
        batches::list_batch_lines(&mut conn, batch.id, q.cursor.unwrap_or(0), limit + 1).await?;
    let lines = page(
        rows,
        limit,
        |l| l.line_no.to_string(),
        |l| Ok::<_, EngineError>(line_view(l, currency)),
    )?;
    let mut reader =
        Reader::of_merchant_id(&mut conn, merchant_id, lang, Utc::now(), batch.cycle_date).await?;
    reader
        .know_payouts(&mut conn, batch.settlement_cycle_id.into_iter())
        .await?;
    Ok(BatchDetail {
        batch: BatchView::read_row(&batch, &reader)?,
        lines,
    })
}

/// Longest note of a review request.
pub const MAX_REVIEW_NOTE_CHARS: usize = 1000;

/// Whether a review request was opened now or was open already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Review {
    Opened,
    AlreadyOpen,
}

/// The merchant asks operations to review a batch held after its grace deadline.
/// Operations see it in the exceptions list; it is resolved or declined with the
/// batch. Asking again while one is open answers that one instead of opening another.
pub async fn request_review(
    pool: &PgPool,
    merchant_id: &str,
    batch_id: Uuid,
    note: &str,
    requested_by: &str,
) -> Result<(ReviewRequestView, Review), EngineError> {
    let note = note.trim();
    if !(1..=MAX_REVIEW_NOTE_CHARS).contains(&note.chars().count()) {
        return Err(EngineError::field("note", "must be 1 to 1000 characters"));
    }
    let (row, created) = in_transaction!(pool, |tx| {
        let batch = batches::find_batch_of_merchant(&mut tx, merchant_id, batch_id)
            .await?
            .ok_or(EngineError::NotFound("batch"))?;
        if batch.status != BatchStatus::RejectedOutsideGrace {
            return Err(EngineError::Conflict {
                code: ProblemCode::BatchNotHeld,
                detail: format!(
                    "the batch is {}; only a batch held after its grace deadline \
                     (rejected_outside_grace) can be reviewed",
                    batch.status
                ),
            });
        }
        close_attempts::open_review_request(&mut tx, merchant_id, batch_id, note, requested_by)
            .await?
    })?;
    if created {
        tracing::info!(review_request_id = %row.id, %batch_id, "review requested");
    }
    let review = if created {
        Review::Opened
    } else {
        Review::AlreadyOpen
    };
    Ok((ReviewRequestView::from_row(&row)?, review))
}

/// A terminal's close of a batch number (its latest use, once the counter has
/// wrapped), only when the terminal belongs to the merchant.
pub async fn terminal_batch(
    pool: &PgPool,
    merchant_id: &str,
    terminal_id: &str,
    batch_number: i32,
    lang: &Lang,
) -> Result<BatchView, EngineError> {
    let mut conn = pool.acquire().await?;
    let batch = batches::find_batch_by_terminal_and_number(&mut conn, terminal_id, batch_number)
        .await?
        .filter(|b| b.merchant_id == merchant_id)
        .ok_or(EngineError::NotFound("batch"))?;
    let mut reader =
        Reader::of_merchant_id(&mut conn, merchant_id, lang, Utc::now(), batch.cycle_date).await?;
    reader
        .know_payouts(&mut conn, batch.settlement_cycle_id.into_iter())
        .await?;
    BatchView::read_row(&batch, &reader)
}
