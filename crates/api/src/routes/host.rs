//! The authorization host's route: its authorizations and reversals, answered per
//! record (engine::host).

use axum::extract::State;
use axum::{Extension, Json};

use settlement_engine::host::{self, CheckedRecord};
use settlement_wire::host::{check_record_count, HostRecordsReport, HostRecordsRequest};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{JsonBody, ReceivedAt};
use crate::state::AppState;

/// `POST /v1/host/authorizations`: records authorizations and reversals; each
/// record is answered with its outcome.
#[tracing::instrument(skip_all)]
pub async fn post_authorizations(
    State(state): State<AppState>,
    principal: Principal,
    Extension(ReceivedAt(received_at)): Extension<ReceivedAt>,
    body: JsonBody,
) -> Result<Json<HostRecordsReport>, ApiError> {
    principal.require_host()?;
    let request = body.parse::<HostRecordsRequest>()?.value;
    check_record_count(request.records.len())?;
    let records: Vec<CheckedRecord> = request
        .records
        .iter()
        .map(|r| r.to_domain(received_at))
        .collect();
    let indexes: Vec<usize> = (0..records.len()).collect();
    Ok(Json(
        host::record(&state.pool, &records, &indexes, received_at).await?,
    ))
}
