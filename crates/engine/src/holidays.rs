//! The holiday calendar payouts skip: changed with a reason and audited. Payouts
//! created afterwards skip a new holiday; payouts already created keep their
//! arrival date.

use chrono::NaiveDate;
use sqlx::{PgConnection, PgPool};

use settlement_store::holidays::{self, HolidayRow};
use settlement_wire::holidays::{HolidayList, HolidayView};

use crate::audit::{self, Action};
use crate::db::in_transaction;
use crate::error::EngineError;
use crate::views::{to_json, FromRow};

impl FromRow<HolidayRow> for HolidayView {
    fn from_row(h: &HolidayRow) -> Result<Self, EngineError> {
        Ok(HolidayView {
            date: h.holiday_date,
            name: h.name.clone(),
        })
    }
}

/// Every holiday, by date.
pub async fn list(pool: &PgPool) -> Result<HolidayList, EngineError> {
    let mut conn = pool.acquire().await?;
    let rows = holidays::list_holidays(&mut conn).await?;
    Ok(HolidayList {
        data: rows
            .iter()
            .map(HolidayView::from_row)
            .collect::<Result<_, _>>()?,
    })
}

/// Adds a holiday or renames one, in a transaction of its own, audited.
pub async fn put(
    pool: &PgPool,
    date: NaiveDate,
    name: &str,
    reason: &str,
    actor: &str,
) -> Result<HolidayView, EngineError> {
    let view = in_transaction!(pool, |tx| put_in(&mut tx, date, name, reason, actor)
        .await?)?;
    crate::views::forget_holidays();
    Ok(view)
}

/// The transaction of [`put`].
async fn put_in(
    tx: &mut PgConnection,
    date: NaiveDate,
    name: &str,
    reason: &str,
    actor: &str,
) -> Result<HolidayView, EngineError> {
    if !(1..=200).contains(&name.chars().count()) {
        return Err(EngineError::field("name", "must be 1 to 200 characters"));
    }
    let row = HolidayRow {
        holiday_date: date,
        name: name.to_owned(),
    };
    let before = holidays::upsert_holiday(&mut *tx, &row).await?;
    let view = HolidayView::from_row(&row)?;
    audit::record(
        tx,
        Action {
            actor,
            action: "holiday.put",
            object_type: "holiday",
            object_id: date.to_string(),
            reason: Some(reason),
            before: before
                .as_ref()
                .map(|b| to_json(&HolidayView::from_row(b)?))
                .transpose()?,
            after: Some(to_json(&view)?),
        },
    )
    .await?;
    Ok(view)
}

/// Removes a holiday, in a transaction of its own, audited.
pub async fn delete(
    pool: &PgPool,
    date: NaiveDate,
    reason: &str,
    actor: &str,
) -> Result<(), EngineError> {
    in_transaction!(pool, |tx| delete_in(&mut tx, date, reason, actor).await?)?;
    crate::views::forget_holidays();
    Ok(())
}

/// The transaction of [`delete`].
async fn delete_in(
    tx: &mut PgConnection,
    date: NaiveDate,
    reason: &str,
    actor: &str,
) -> Result<(), EngineError> {
    let before = holidays::delete_holiday(&mut *tx, date)
        .await?
        .ok_or(EngineError::NotFound("holiday"))?;
    audit::record(
        tx,
        Action {
            actor,
            action: "holiday.delete",
            object_type: "holiday",
            object_id: date.to_string(),
            reason: Some(reason),
            before: Some(to_json(&HolidayView::from_row(&before)?)?),
            after: None,
        },
    )
    .await
}
