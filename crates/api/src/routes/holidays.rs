//! The holiday calendar payouts skip: read by anyone in operations, changed with a
//! reason and audited (engine::holidays).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::NaiveDate;
use serde::Deserialize;

use settlement_engine::holidays;
use settlement_wire::holidays::{HolidayList, HolidayView};

use crate::audit::check_reason;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, JsonBody};
use crate::state::AppState;

/// `GET /v1/ops/holidays`
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<HolidayList>, ApiError> {
    principal.require_ops()?;
    Ok(Json(holidays::list(&state.pool).await?))
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
    let req = body.parse::<PutHoliday>()?;
    let reason = check_reason(&req.reason)?.to_owned();
    let view = holidays::put(&state.pool, date, &req.name, &reason, &actor).await?;
    Ok(Json(view))
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
    holidays::delete(&state.pool, date, &reason, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}
