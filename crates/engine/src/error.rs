//! The one error type of the engine: what a use case can fail with, in its own terms.
//! The HTTP crate maps each variant to a status and a problem body.

use settlement_domain::batch::FieldError;
use settlement_wire::ProblemCode;

/// Everything a use case can fail with.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The thing asked for does not exist (or is not the caller's to see).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A field is missing, of the wrong shape, or out of range.
    #[error("{detail}")]
    Validation {
        detail: String,
        field: Option<String>,
    },
    /// A full card number where only masked numbers are allowed.
    #[error("a field holds a full card number (PAN); send masked numbers only")]
    PanNotAllowed,
    /// The idempotency key was used before with another request.
    #[error("this Idempotency-Key was used with a different request body")]
    IdempotencyKeyReused,
    /// Another request holds what this one must change.
    #[error("a request with this Idempotency-Key is still being processed; retry shortly")]
    RequestInProgress,
    /// The batch number was closed already with other content.
    #[error("this batch number was already closed with different content")]
    BatchAlreadyClosed { batch_id: uuid::Uuid },
    /// A state conflict with its stable code.
    #[error("{detail}")]
    Conflict { code: ProblemCode, detail: String },
    /// Transactions presented already by another batch that is booked or held.
    #[error("{detail}")]
    DuplicateTransactions {
        detail: String,
        duplicates: serde_json::Value,
    },
    /// Lines the host did not authorize as presented (merchant setting `enforce`).
    #[error("{detail}")]
    UnauthorizedTransactions {
        detail: String,
        unmatched: serde_json::Value,
    },
    /// The batch is not in the merchant's settlement currency.
    #[error("the batch currency must be the merchant's settlement currency {expected}")]
    CurrencyNotAccepted { expected: String },
    /// A webhook URL that may not be called.
    #[error("url: {0}")]
    WebhookUrlNotAllowed(String),
    /// The database is unavailable.
    #[error("the service is temporarily unavailable; retry shortly")]
    Unavailable,
    /// A serialization failure or deadlock that outlasted the retries.
    #[error("the request collided with concurrent changes; retry shortly")]
    Contention,
    /// A close's lines repeat a transaction that another batch presents: the close is
    /// applied again, this time looking for repeats first to name them.
    #[error("the close collided with another presentment of its transactions; retry shortly")]
    Presented,
    /// Anything else: a fault of the service, never of the request.
    #[error("the service failed to process the request")]
    Internal(#[source] anyhow::Error),
}

impl EngineError {
    /// A validation error about one field.
    pub fn field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        let field = field.into();
        EngineError::Validation {
            detail: format!("{field}: {}", detail.into()),
            field: Some(field),
        }
    }
}

impl From<FieldError> for EngineError {
    fn from(e: FieldError) -> Self {
        EngineError::field(e.field, e.reason)
    }
}

/// How a database error is met: classified once, here.
impl From<sqlx::Error> for EngineError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::PoolTimedOut => {
                crate::metrics::METRICS.db_pool_timeouts.inc();
                tracing::warn!(error = %err, "no database connection within the acquire timeout");
                EngineError::Unavailable
            }
            sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                tracing::warn!(error = %err, "database unavailable");
                EngineError::Unavailable
            }
            // Serialization failure and deadlock: the transaction is retried whole
            // (crate::db), and reported as transient when retries run out.
            sqlx::Error::Database(db)
                if matches!(db.code().as_deref(), Some("40001" | "40P01")) =>
            {
                tracing::warn!(error = %err, "transaction conflict");
                EngineError::Contention
            }
            sqlx::Error::Database(db) if db.code().as_deref() == Some("55P03") => {
                EngineError::RequestInProgress
            }
            sqlx::Error::Database(db)
                if matches!(
                    db.code().as_deref(),
                    Some("57P01" | "57P02" | "57P03" | "53300")
                ) =>
            {
                tracing::warn!(error = %err, "database unavailable");
                EngineError::Unavailable
            }
            _ => EngineError::Internal(err.into()),
        }
    }
}

impl From<anyhow::Error> for EngineError {
    fn from(err: anyhow::Error) -> Self {
        match err.downcast::<sqlx::Error>() {
            Ok(db) => db.into(),
            Err(other) => EngineError::Internal(other),
        }
    }
}

/// Errors a retry of the whole transaction can cure.
pub trait Transient {
    /// True for a serialization failure or deadlock.
    fn is_transient(&self) -> bool;
}

impl Transient for EngineError {
    fn is_transient(&self) -> bool {
        matches!(self, EngineError::Contention)
    }
}
