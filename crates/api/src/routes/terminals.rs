//! The terminal's routes: close a batch, read a close back.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;

use settlement_domain::pan::contains_pan;
use settlement_wire::close::BatchCloseRequest;

use crate::auth::Principal;
use crate::batches;
use crate::close_batch::{self, CloseOutcome, CloseRequest};
use crate::error::{json_response, ApiError};
use crate::extract::{ApiPath, JsonBody, ReceivedAt};
use crate::language::Language;
use crate::state::AppState;

/// Header carrying the client's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Header set on a response that replays a stored one.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
/// Longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// Reads and checks the `Idempotency-Key` header.
pub fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let key = headers.get(IDEMPOTENCY_KEY).and_then(|v| v.to_str().ok());
    // A card number is named as such, whatever else is wrong with the key.
    if key.is_some_and(contains_pan) {
        return Err(ApiError::pan_not_allowed());
    }
    let key = key
        .filter(|k| (1..=MAX_IDEMPOTENCY_KEY_LEN).contains(&k.len()))
        .filter(|k| k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or(ApiError::IdempotencyKeyRequired)?;
    Ok(key.to_owned())
}

/// The HTTP response of a close's answer; a replayed one says so.
fn respond(outcome: CloseOutcome) -> Response {
    let status = StatusCode::from_u16(outcome.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json_response(status, &outcome.body);
    if outcome.is_replay() {
        response
            .headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

/// `POST /v1/terminals/{terminal_id}/batches`: close a batch.
#[tracing::instrument(skip_all, fields(terminal_id = %terminal_id))]
pub async fn close_batch(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(terminal_id): ApiPath<String>,
    headers: HeaderMap,
    Extension(ReceivedAt(received_at)): Extension<ReceivedAt>,
    lang: Language,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let merchant_id = principal.require_terminal(&terminal_id)?;
    let key = idempotency_key(&headers)?;
    let body = body.parse_digested::<BatchCloseRequest>()?;
    // Lateness is judged by the host's clock at receipt, never the terminal's.
    let close = body.value.into_domain(received_at)?;
    let request = CloseRequest {
        terminal_id: &terminal_id,
        merchant_id: &merchant_id,
        idempotency_key: &key,
        digest: &body.digest,
        close: &close,
        received_at,
        number_reuse: state.batch_number_reuse,
        lang: &lang,
    };
    Ok(respond(
        close_batch::close_batch(&state.pool, &request).await?,
    ))
}

/// `GET /v1/terminals/{terminal_id}/batches/{batch_number}`: the terminal reads its close
/// (the latest use of the number, once the counter has wrapped).
#[tracing::instrument(skip_all)]
pub async fn get_batch(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((terminal_id, batch_number)): ApiPath<(String, i32)>,
    lang: Language,
) -> Result<Response, ApiError> {
    let merchant_id = principal.require_terminal(&terminal_id)?;
    let batch =
        batches::terminal_batch(&state.pool, &merchant_id, &terminal_id, batch_number, &lang)
            .await?;
    Ok(Json(batch).into_response())
}
