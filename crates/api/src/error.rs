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

/// Everything a request can fail with. Each variant has a stable `code`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    #[error("the request body is larger than {limit_bytes} bytes")]
    PayloadTooLarge { limit_bytes: usize },
    #[error("{detail}")]
    Validation {
        detail: String,
        field: Option<String>,
    },
    #[error("a field holds a full card number (PAN); send masked numbers only")]
    PanNotAllowed,
    #[error("the Idempotency-Key header is required (1 to 255 visible ASCII characters)")]
    IdempotencyKeyRequired,
    #[error("this Idempotency-Key was used with a different request body")]
    IdempotencyKeyReused,
    #[error("a request with this Idempotency-Key is still being processed; retry shortly")]
    RequestInProgress,
    #[error("this batch number was already closed with different content")]
    BatchAlreadyClosed { batch_id: uuid::Uuid },
    #[error("{detail}")]
    Conflict { code: ProblemCode, detail: String },
    /// Transactions presented already by another batch that is booked or held.
    #[error("{detail}")]
    DuplicateTransactions {
        detail: String,
        duplicates: serde_json::Value,
    },
    #[error("the batch currency must be the merchant's settlement currency {expected}")]
    CurrencyNotAccepted { expected: String },
    #[error("url: {0}")]
    WebhookUrlNotAllowed(String),
    #[error("the service is temporarily unavailable; retry shortly")]
    Unavailable,
    #[error("too many requests from this caller; retry after {retry_after_seconds} s")]
    RateLimited { retry_after_seconds: u64 },
    /// A serialization failure or deadlock that outlasted the service's own retries.
    #[error("the request collided with concurrent changes; retry shortly")]
    Contention,
    /// A close's lines repeat a transaction that another batch presents: the close is
    /// applied again, this time looking for repeats first to name them.
    #[error("the close collided with another presentment of its transactions; retry shortly")]
    Presented,
    #[error("{0}")]
    NotReady(&'static str),
    #[error("the request took longer than the service allows")]
    Timeout,
    #[error("the service failed to process the request")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// The stable machine code of this error.
    pub fn code(&self) -> &'static str {
        self.problem_code().as_str()
    }

    /// The stable problem code of this error.
    pub fn problem_code(&self) -> ProblemCode {
        match self {
            ApiError::Unauthorized(_) => ProblemCode::Unauthorized,
            ApiError::Forbidden(_) => ProblemCode::Forbidden,
            ApiError::NotFound(_) => ProblemCode::NotFound,
            ApiError::MalformedJson(_) => ProblemCode::MalformedJson,
            ApiError::UnsupportedMediaType(_) => ProblemCode::UnsupportedMediaType,
            ApiError::PayloadTooLarge { .. } => ProblemCode::PayloadTooLarge,
            ApiError::Validation { .. } => ProblemCode::ValidationFailed,
            ApiError::PanNotAllowed => ProblemCode::PanNotAllowed,
            ApiError::IdempotencyKeyRequired => ProblemCode::IdempotencyKeyRequired,
            ApiError::IdempotencyKeyReused => ProblemCode::IdempotencyKeyReused,
            ApiError::RequestInProgress => ProblemCode::RequestInProgress,
            ApiError::BatchAlreadyClosed { .. } => ProblemCode::BatchAlreadyClosed,
            ApiError::Conflict { code, .. } => *code,
            ApiError::DuplicateTransactions { .. } => ProblemCode::DuplicateTransactions,
            ApiError::CurrencyNotAccepted { .. } => ProblemCode::CurrencyNotAccepted,
            ApiError::WebhookUrlNotAllowed(_) => ProblemCode::WebhookUrlNotAllowed,
            ApiError::Unavailable => ProblemCode::ServiceUnavailable,
            ApiError::Contention | ApiError::Presented => ProblemCode::TransactionConflict,
            ApiError::RateLimited { .. } => ProblemCode::RateLimited,
            ApiError::NotReady(_) => ProblemCode::NotReady,
            ApiError::Timeout => ProblemCode::RequestTimeout,
            ApiError::Internal(_) => ProblemCode::InternalError,
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MalformedJson(_) | ApiError::IdempotencyKeyRequired => {
                StatusCode::BAD_REQUEST
            }
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Validation { .. }
            | ApiError::PanNotAllowed
            | ApiError::IdempotencyKeyReused
            | ApiError::CurrencyNotAccepted { .. }
            | ApiError::DuplicateTransactions { .. }
            | ApiError::WebhookUrlNotAllowed(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RequestInProgress
            | ApiError::BatchAlreadyClosed { .. }
            | ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable
            | ApiError::Contention
            | ApiError::Presented
            | ApiError::NotReady(_)
            | ApiError::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A validation error about one field.
    pub fn field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        let field = field.into();
        ApiError::Validation {
            detail: format!("{field}: {}", detail.into()),
            field: Some(field),
        }
    }

    fn extensions(&self) -> Map<String, Value> {
        let mut ext = Map::new();
        match self {
            ApiError::Validation { field: Some(f), .. } => {
                ext.insert("field".into(), json!(f));
            }
            ApiError::BatchAlreadyClosed { batch_id } => {
                ext.insert("batch_id".into(), json!(batch_id));
            }
            ApiError::DuplicateTransactions { duplicates, .. } => {
                ext.insert("duplicates".into(), duplicates.clone());
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
        if let ApiError::Internal(cause) = &self {
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

impl From<EngineError> for ApiError {
    fn from(err: EngineError) -> Self {
        match err {
            EngineError::NotFound(what) => ApiError::NotFound(what),
            EngineError::Validation { detail, field } => ApiError::Validation { detail, field },
            EngineError::PanNotAllowed => ApiError::PanNotAllowed,
            EngineError::IdempotencyKeyReused => ApiError::IdempotencyKeyReused,
            EngineError::RequestInProgress => ApiError::RequestInProgress,
            EngineError::BatchAlreadyClosed { batch_id } => {
                ApiError::BatchAlreadyClosed { batch_id }
            }
            EngineError::Conflict { code, detail } => ApiError::Conflict { code, detail },
            EngineError::DuplicateTransactions { detail, duplicates } => {
                ApiError::DuplicateTransactions { detail, duplicates }
            }
            EngineError::CurrencyNotAccepted { expected } => {
                ApiError::CurrencyNotAccepted { expected }
            }
            EngineError::WebhookUrlNotAllowed(detail) => ApiError::WebhookUrlNotAllowed(detail),
            EngineError::Unavailable => ApiError::Unavailable,
            EngineError::Contention => ApiError::Contention,
            EngineError::Presented => ApiError::Presented,
            EngineError::Internal(cause) => ApiError::Internal(cause),
        }
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
        matches!(self, ApiError::Contention)
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
}
