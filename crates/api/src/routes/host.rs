//! The authorization host's routes: its authorizations and reversals as JSON from
//! the host, or as a capture file from operations, answered per record
//! (engine::host).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
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
    let request = body.parse::<HostRecordsRequest>()?;
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

/// `POST /v1/ops/host/capture-files`: a host capture file (text/csv) from
/// operations, recorded and answered like the host's records, by line.
#[tracing::instrument(skip_all)]
pub async fn post_capture_file(
    State(state): State<AppState>,
    principal: Principal,
    Extension(ReceivedAt(received_at)): Extension<ReceivedAt>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<HostRecordsReport>, ApiError> {
    principal.require_ops()?;
    crate::extract::require_media_type(
        &headers,
        &["text/csv"],
        "send the capture file as text/csv",
    )?;
    let (requests, lines) = host::read_capture_file(&body)?;
    let records: Vec<CheckedRecord> = requests.iter().map(|r| r.to_domain(received_at)).collect();
    Ok(Json(
        host::record(&state.pool, &records, &lines, received_at).await?,
    ))
}
