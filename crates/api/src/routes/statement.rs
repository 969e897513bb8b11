//! `GET /v1/merchants/{merchant_id}/statement`: every transaction, batch, fee, cycle
//! and payout in a date range as CSV or JSON, streamed: rows go out as Postgres
//! produces them, through a small bounded channel, so memory stays flat. Held and
//! declined batches are listed under kinds of their own (`held_transaction`,
//! `held_batch`, `declined_transaction`, `declined_batch`): shown, never money.
//! Columns are only ever added at the end, so a reader by column name keeps working.

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use settlement_wire::statement::StatementQuery;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;
use crate::statement;

/// `GET /v1/merchants/{merchant_id}/statement?from=&to=&format=csv|json`
#[tracing::instrument(skip_all)]
pub async fn get_statement(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(merchant_id): ApiPath<String>,
    query: ApiQuery<StatementQuery>,
) -> Result<Response, ApiError> {
    principal.require_merchant(&merchant_id)?;
    let q = query.get()?;
    let statement =
        statement::statement(&state.pool, &state.statement_slots, &merchant_id, &q).await?;
    Ok((
        [(header::CONTENT_TYPE, statement.format.content_type())],
        Body::from_stream(statement.chunks),
    )
        .into_response())
}
