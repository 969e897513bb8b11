//! The holiday calendar payouts skip: read by anyone in operations, changed with a
//! reason and audited.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use settlement_store::holidays::{self, HolidayRow};

use crate::audit::{self, check_reason, Action};
use crate::auth::Principal;
use crate::db::in_transaction;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, JsonBody};
use crate::state::AppState;
use crate::wire::to_json;

/// A holiday as the API shows it.
#[derive(Debug, Serialize)]
pub struct HolidayView {
    pub date: NaiveDate,
    pub name: String,
}

impl From<&HolidayRow> for HolidayView {
    fn from(h: &HolidayRow) -> Self {
        HolidayView {
            date: h.holiday_date,
            name: h.name.clone(),
        }
    }
}

/// The holiday list.
#[derive(Debug, Serialize)]
pub struct HolidayList {
    pub data: Vec<HolidayView>,
}

/// `GET /v1/ops/holidays`
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<HolidayList>, ApiError> {
    principal.require_ops()?;
    let mut conn = state.pool.acquire().await?;
    let rows = holidays::list_holidays(&mut conn).await?;
    Ok(Json(HolidayList {
        data: rows.iter().map(HolidayView::from).collect(),
    }))
}

/// `PUT /v1/ops/holidays/{date}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutHoliday {
    pub name: String,
    pub reason: String,
}

/// `PUT /v1/ops/holidays/{date}`: adds a holiday or renames one. Payouts created
/// afterwards skip it; payouts already created keep their arrival date.
#[tracing::instrument(skip_all)]
pub async fn put(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(date): ApiPath<NaiveDate>,
    body: JsonBody,
) -> Result<Json<HolidayView>, ApiError> {
    let actor = principal.require_ops()?.to_owned();
    let req = body.parse::<PutHoliday>()?.value;
    let reason = check_reason(&req.reason)?.to_owned();
    if !(1..=200).contains(&req.name.chars().count()) {
        return Err(ApiError::field("name", "must be 1 to 200 characters"));
    }
    let row = HolidayRow {
        holiday_date: date,
        name: req.name,
    };
    in_transaction!(&state.pool, |tx| {
        let before = holidays::upsert_holiday(&mut tx, &row).await?;
        audit::record(
            &mut tx,
            Action {
                actor: &actor,
                action: "holiday.put",
                object_type: "holiday",
                object_id: date.to_string(),
                reason: Some(&reason),
                before: before
                    .as_ref()
                    .map(HolidayView::from)
                    .map(|v| to_json(&v))
                    .transpose()?,
                after: Some(to_json(&HolidayView::from(&row))?),
            },
        )
        .await?;
    })?;
    Ok(Json(HolidayView::from(&row)))
}

/// `DELETE /v1/ops/holidays/{date}` query: why.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteHoliday {
    pub reason: String,
}

/// `DELETE /v1/ops/holidays/{date}`
#[tracing::instrument(skip_all)]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(date): ApiPath<NaiveDate>,
    query: ApiQuery<DeleteHoliday>,
) -> Result<StatusCode, ApiError> {
    let actor = principal.require_ops()?.to_owned();
    let q = query.get()?;
    let reason = check_reason(&q.reason)?.to_owned();
    in_transaction!(&state.pool, |tx| {
        let before = holidays::delete_holiday(&mut tx, date)
            .await?
            .ok_or(ApiError::NotFound("holiday"))?;
        audit::record(
            &mut tx,
            Action {
                actor: &actor,
                action: "holiday.delete",
                object_type: "holiday",
                object_id: date.to_string(),
                reason: Some(&reason),
                before: Some(to_json(&HolidayView::from(&before))?),
                after: None,
            },
        )
        .await?;
    })?;
    Ok(StatusCode::NO_CONTENT)
}
