//! The one error type of the API and its problem+json (RFC 9457) rendering.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use settlement_domain::batch::FieldError;
use settlement_engine::error::Transient;
use settlement_engine::EngineError;
use settlement_wire::ProblemCode;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";
/// Seconds a client is told to wait before retrying when the service is unavailable.
const RETRY_AFTER_SECONDS: &str = "1";

/// Everything a request can fail with: what the engine's use case failed with, or
/// what only HTTP knows (tokens, bodies, limits). Each has a stable `code`; this is
/// the one place that sets each one's HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A use case's failure, in the engine's own terms.
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    /// An object of the body names a key twice; `path` is the key's (`a.b[2].c`).
    #[error("the key `{path}` appears more than once in its object")]
    DuplicateKey { path: String },
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    #[error("the request body is larger than {limit_bytes} bytes")]
    PayloadTooLarge { limit_bytes: usize },
    #[error("the Idempotency-Key header is required (1 to 255 visible ASCII characters)")]
    IdempotencyKeyRequired,
    #[error("too many requests from this caller; retry after {retry_after_seconds} s")]
    RateLimited { retry_after_seconds: u64 },
    #[error("{0}")]
    NotReady(&'static str),
    #[error("the request took longer than the service allows")]
    Timeout,
}

impl ApiError {
    /// The stable machine code of this error.
    pub fn code(&self) -> &'static str {
        self.problem_code().as_str()
    }

    /// The stable problem code of this error.
    pub fn problem_code(&self) -> ProblemCode {
        match self {
            ApiError::Engine(e) => engine_code(e),
            ApiError::Unauthorized(_) => ProblemCode::Unauthorized,
            ApiError::Forbidden(_) => ProblemCode::Forbidden,
            ApiError::MalformedJson(_) => ProblemCode::MalformedJson,
            ApiError::DuplicateKey { .. } => ProblemCode::DuplicateKey,
            ApiError::UnsupportedMediaType(_) => ProblemCode::UnsupportedMediaType,
            ApiError::PayloadTooLarge { .. } => ProblemCode::PayloadTooLarge,
            ApiError::IdempotencyKeyRequired => ProblemCode::IdempotencyKeyRequired,
            ApiError::RateLimited { .. } => ProblemCode::RateLimited,
            ApiError::NotReady(_) => ProblemCode::NotReady,
            ApiError::Timeout => ProblemCode::RequestTimeout,
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Engine(e) => engine_status(e),
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::MalformedJson(_) | ApiError::IdempotencyKeyRequired => {
                StatusCode::BAD_REQUEST
            }
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::DuplicateKey { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotReady(_) | ApiError::Timeout => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A validation error about one field.
    pub fn field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        EngineError::field(field, detail).into()
    }

    /// A refusal of the request as a whole (no one field at fault).
    pub fn invalid(detail: impl Into<String>) -> Self {
        EngineError::Validation {
            detail: detail.into(),
            field: None,
        }
        .into()
    }

    /// The thing asked for does not exist (or is not the caller's to see).
    pub fn not_found(what: &'static str) -> Self {
        EngineError::NotFound(what).into()
    }

    /// A full card number where only masked numbers are allowed.
    pub fn pan_not_allowed() -> Self {
        EngineError::PanNotAllowed.into()
    }

    /// A fault of the service, never of the request.
    pub fn internal(cause: anyhow::Error) -> Self {
        EngineError::Internal(cause).into()
    }

    fn extensions(&self) -> Map<String, Value> {
        let mut ext = Map::new();
        match self {
            ApiError::Engine(EngineError::Validation { field: Some(f), .. }) => {
                ext.insert("field".into(), json!(f));
            }
            ApiError::Engine(EngineError::BatchAlreadyClosed { batch_id }) => {
                ext.insert("batch_id".into(), json!(batch_id));
            }
            ApiError::Engine(EngineError::DuplicateTransactions { duplicates, .. }) => {
                ext.insert("duplicates".into(), duplicates.clone());
            }
            ApiError::Engine(EngineError::UnauthorizedTransactions { unmatched, .. }) => {
                ext.insert("unmatched_lines".into(), unmatched.clone());
            }
            ApiError::DuplicateKey { path } => {
                ext.insert("field".into(), json!(path));
            }
            ApiError::PayloadTooLarge { limit_bytes } => {
                ext.insert("limit_bytes".into(), json!(limit_bytes));
            }
            ApiError::RateLimited {
                retry_after_seconds,
            } => {
                ext.insert("retry_after_seconds".into(), json!(retry_after_seconds));
            }
            _ => {}
        }
        ext
    }
}

/// The stable code of an engine failure.
fn engine_code(e: &EngineError) -> ProblemCode {
    match e {
        EngineError::NotFound(_) => ProblemCode::NotFound,
        EngineError::Validation { .. } => ProblemCode::ValidationFailed,
        EngineError::PanNotAllowed => ProblemCode::PanNotAllowed,
        EngineError::IdempotencyKeyReused => ProblemCode::IdempotencyKeyReused,
        EngineError::RequestInProgress => ProblemCode::RequestInProgress,
        EngineError::BatchAlreadyClosed { .. } => ProblemCode::BatchAlreadyClosed,
        EngineError::Conflict { code, .. } => *code,
        EngineError::DuplicateTransactions { .. } => ProblemCode::DuplicateTransactions,
        EngineError::CurrencyNotAccepted { .. } => ProblemCode::CurrencyNotAccepted,
        EngineError::UnauthorizedTransactions { .. } => ProblemCode::UnauthorizedTransactions,
        EngineError::WebhookUrlNotAllowed(_) => ProblemCode::WebhookUrlNotAllowed,
        EngineError::Unavailable => ProblemCode::ServiceUnavailable,
        EngineError::Contention | EngineError::Presented => ProblemCode::TransactionConflict,
        EngineError::Internal(_) => ProblemCode::InternalError,
    }
}

/// The HTTP status of an engine failure.
fn engine_status(e: &EngineError) -> StatusCode {
    match e {
        EngineError::NotFound(_) => StatusCode::NOT_FOUND,
        EngineError::Validation { .. }
        | EngineError::PanNotAllowed
        | EngineError::IdempotencyKeyReused
        | EngineError::CurrencyNotAccepted { .. }
        | EngineError::DuplicateTransactions { .. }
        | EngineError::UnauthorizedTransactions { .. }
        | EngineError::WebhookUrlNotAllowed(_) => StatusCode::UNPROCESSABLE_ENTITY,
        EngineError::RequestInProgress
        | EngineError::BatchAlreadyClosed { .. }
        | EngineError::Conflict { .. } => StatusCode::CONFLICT,
        EngineError::Unavailable | EngineError::Contention | EngineError::Presented => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        EngineError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Builds a problem+json body.
pub fn problem_body(
    status: StatusCode,
    code: ProblemCode,
    detail: &str,
    extensions: Map<String, Value>,
) -> Value {
    settlement_wire::problem::document(
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error"),
        code,
        detail,
        extensions,
    )
}

/// A JSON response with the given status; `problem+json` for error statuses.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let content_type = if status.is_client_error() || status.is_server_error() {
        PROBLEM_JSON
    } else {
        "application/json"
    };
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECONDS),
        );
    }
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Engine(EngineError::Internal(cause)) = &self {
            tracing::error!(error = format!("{cause:#}"), "request failed");
        }
        let status = self.status();
        let body = problem_body(
            status,
            self.problem_code(),
            &self.to_string(),
            self.extensions(),
        );
        let mut response = json_response(status, &body);
        if let ApiError::RateLimited {
            retry_after_seconds,
        } = self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
        }
        response
    }
}

/// Database errors are classified by the engine, once.
impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        EngineError::from(err).into()
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        EngineError::from(err).into()
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::field(e.field, e.reason)
    }
}

impl Transient for ApiError {
    fn is_transient(&self) -> bool {
        matches!(self, ApiError::Engine(e) if e.is_transient())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_code_is_in_the_contract() {
        for code in ProblemCode::ALL {
            assert!(
                crate::app::OPENAPI_YAML.contains(&format!("`{code}`")),
                "openapi.yaml does not name the problem code `{code}`"
            );
        }
    }

    #[test]
    fn every_problem_code_has_a_title_and_detail_in_every_language() {
        for locale in settlement_i18n::Locale::ALL {
            for code in ProblemCode::ALL {
                for part in ["title", "detail"] {
                    let id = format!("problem-{code}-{part}");
                    assert!(
                        settlement_i18n::has_message(locale, &id),
                        "{id} is missing in {locale}"
                    );
                }
            }
        }
    }
}
