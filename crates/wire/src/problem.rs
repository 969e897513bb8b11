//! The stable problem codes: the `code` of every problem+json body the service
//! answers with, and the last segment of its `type` URN. Machines branch on them;
//! they never change meaning and are never translated.

use std::fmt;

use serde_json::{json, Map, Value};

macro_rules! problem_codes {
    ($($(#[$doc:meta])* $variant:ident => $code:literal,)*) => {
        /// A stable problem code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ProblemCode {
            $($(#[$doc])* $variant,)*
        }

        impl ProblemCode {
            /// Every code, in the order they are declared.
            pub const ALL: &'static [ProblemCode] = &[$(ProblemCode::$variant,)*];

            /// The code as it appears in a problem body.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ProblemCode::$variant => $code,)*
                }
            }
        }
    };
}

problem_codes! {
    /// No valid bearer token.
    Unauthorized => "unauthorized",
    /// The caller's role or identity does not allow this.
    Forbidden => "forbidden",
    /// No such thing, or not the caller's to see.
    NotFound => "not_found",
    /// The route exists but not with this method.
    MethodNotAllowed => "method_not_allowed",
    /// The body is not JSON.
    MalformedJson => "malformed_json",
    /// A JSON object in the body names a key more than once.
    DuplicateKey => "duplicate_key",
    /// The body is not `application/json`.
    UnsupportedMediaType => "unsupported_media_type",
    /// The body is larger than the route takes.
    PayloadTooLarge => "payload_too_large",
    /// A field is missing, of the wrong shape, or out of range.
    ValidationFailed => "validation_failed",
    /// A full card number where only masked numbers are allowed.
    PanNotAllowed => "pan_not_allowed",
    /// A close without an `Idempotency-Key`.
    IdempotencyKeyRequired => "idempotency_key_required",
    /// An `Idempotency-Key` used before with another body.
    IdempotencyKeyReused => "idempotency_key_reused",
    /// A request with this key is still being processed.
    RequestInProgress => "request_in_progress",
    /// The batch number was closed already with other content.
    BatchAlreadyClosed => "batch_already_closed",
    /// The terminal's control totals differ from its lines.
    OutOfBalance => "out_of_balance",
    /// The batch came after its grace deadline and is held for operations.
    BatchOutsideGraceWindow => "batch_outside_grace_window",
    /// Lines repeat transactions another batch presents.
    DuplicateTransactions => "duplicate_transactions",
    /// The batch is not in the merchant's settlement currency.
    CurrencyNotAccepted => "currency_not_accepted",
    /// Lines the host did not authorize as presented, for a merchant whose closes
    /// must match the host (`host_matching: enforce`).
    UnauthorizedTransactions => "unauthorized_transactions",
    /// A merchant with this id exists.
    MerchantExists => "merchant_exists",
    /// A terminal with this id exists.
    TerminalExists => "terminal_exists",
    /// The batch is not held for operations.
    BatchNotHeld => "batch_not_held",
    /// The batch is not rejected outside grace.
    BatchNotRejected => "batch_not_rejected",
    /// The merchant has as many webhook endpoints as allowed.
    EndpointLimitReached => "endpoint_limit_reached",
    /// The payout cannot move to that state from its own.
    IllegalPayoutTransition => "illegal_payout_transition",
    /// The bank's file was refused whole, changing nothing.
    PayoutFileRefused => "payout_file_refused",
    /// The webhook URL is not an allowed public HTTPS address.
    WebhookUrlNotAllowed => "webhook_url_not_allowed",
    /// The service or its database is unavailable; retry.
    ServiceUnavailable => "service_unavailable",
    /// The request collided with concurrent changes; retry.
    TransactionConflict => "transaction_conflict",
    /// Too many requests from this caller.
    RateLimited => "rate_limited",
    /// The replica is not ready to serve.
    NotReady => "not_ready",
    /// The request took longer than the service allows.
    RequestTimeout => "request_timeout",
    /// An HTTP error raised below the service's own handlers.
    HttpError => "http_error",
    /// The service failed; nothing was written.
    InternalError => "internal_error",
}

impl fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A problem document (RFC 9457): `type` (the code as a URN), `title` (the status'
/// reason phrase), `status`, `detail`, `code`, then the extensions.
pub fn document(
    status: u16,
    title: &str,
    code: ProblemCode,
    detail: &str,
    extensions: Map<String, Value>,
) -> Value {
    let mut body = Map::new();
    body.insert(
        "type".into(),
        json!(format!("urn:settlement:problem:{code}")),
    );
    body.insert("title".into(), json!(title));
    body.insert("status".into(), json!(status));
    body.insert("detail".into(), json!(detail));
    body.insert("code".into(), json!(code.as_str()));
    body.extend(extensions);
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_snake_case_words() {
        let mut seen = std::collections::BTreeSet::new();
        for code in ProblemCode::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "{text} is declared twice");
            assert!(
                text.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{text} is not snake_case"
            );
        }
    }
}
