//! `GET /v1/merchants/{merchant_id}/status`: where the merchant's money is.

use axum::extract::State;
use axum::Json;
use chrono::Utc;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::ApiPath;
use crate::language::Language;
use crate::state::AppState;
use settlement_engine::status::merchant_status;
use settlement_wire::status::StatusView;

/// `GET /v1/merchants/{merchant_id}/status`
#[tracing::instrument(skip_all)]
pub async fn get_status(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(merchant_id): ApiPath<String>,
    lang: Language,
) -> Result<Json<StatusView>, ApiError> {
    principal.require_merchant(&merchant_id)?;
    Ok(Json(
        merchant_status(&state.pool, merchant_id, Utc::now(), &lang).await?,
    ))
}
