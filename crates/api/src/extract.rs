//! Request extractors whose every rejection is a problem+json body: JSON bodies
//! (checked for card numbers before they are typed), query strings and paths.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::AppState;
use settlement_domain::pan::contains_pan;
pub use settlement_wire::scan::{any_string_holds_nul, any_string_holds_pan};

/// A request body, read up to the body limit but not yet parsed: handlers check who
/// is calling first, then [`JsonBody::parse`] it, so an unauthorised caller learns
/// nothing from validation errors.
pub struct JsonBody {
    is_json: bool,
    bytes: Bytes,
}

/// A parsed JSON body with a digest of its canonical form, so two bodies that differ
/// only in spacing or key order are the same request.
pub struct Parsed<T> {
    /// The typed body.
    pub value: T,
    /// SHA-256 of the canonical JSON.
    pub digest: Vec<u8>,
}

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        let limit = state.body_limit_bytes;
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge { limit_bytes: limit }
            } else {
                ApiError::MalformedJson("the request body could not be read".into())
            }
        })?;
        Ok(JsonBody { is_json, bytes })
    }
}

impl JsonBody {
    /// True when the request had no body.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Parses the body: refused when it is not JSON, when an object in it names a
    /// key twice, when any string in it holds a card number or a NUL character, or
    /// when it does not match `T` (unknown fields included).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        typed(self.checked(None)?)
    }

    /// Like [`JsonBody::parse`], with the digest of the body's canonical form, for
    /// the routes that compare a request with one stored under its idempotency key.
    pub fn parse_digested<T: DeserializeOwned>(&self) -> Result<Parsed<T>, ApiError> {
        let raw = self.checked(None)?;
        // The canonical form is written straight into the hash, never held whole.
        let mut hasher = Sha256::new();
        serde_json::to_writer(&mut hasher, &raw).map_err(|e| ApiError::internal(e.into()))?;
        let digest = hasher.finalize().to_vec();
        Ok(Parsed {
            value: typed(raw)?,
            digest,
        })
    }

    /// Like [`JsonBody::parse`], but the top-level string field `field` may hold a
    /// card-shaped number: the merchant's settlement bank account, which may be a
    /// debit card, sealed before it is stored and masked whenever it is shown. Every
    /// other string stays guarded.
    pub fn parse_allowing_card_number_in<T: DeserializeOwned>(
        &self,
        field: &str,
    ) -> Result<T, ApiError> {
        typed(self.checked(Some(field))?)
    }

    /// The body as JSON, once every guard passed.
    fn checked(&self, field: Option<&str>) -> Result<Value, ApiError> {
        if !self.is_json {
            return Err(ApiError::UnsupportedMediaType(
                "send the body as application/json",
            ));
        }
        let raw: Value = settlement_wire::json::from_slice(&self.bytes).map_err(refusal_of)?;
        let guarded = match (&raw, field) {
            (Value::Object(map), Some(allowed)) => map.iter().any(|(k, v)| {
                contains_pan(k) || (!(k == allowed && v.is_string()) && any_string_holds_pan(v))
            }),
            _ => any_string_holds_pan(&raw),
        };
        if guarded {
            return Err(ApiError::pan_not_allowed());
        }
        if any_string_holds_nul(&raw) {
            // Text is stored in Postgres, which cannot hold U+0000.
            return Err(ApiError::invalid(
                "text must not hold the NUL character (U+0000)",
            ));
        }
        Ok(raw)
    }
}

/// The checked body as `T`.
fn typed<T: DeserializeOwned>(raw: Value) -> Result<T, ApiError> {
    serde_json::from_value(raw)
        .map_err(|e| ApiError::invalid(format!("the request body does not match the schema: {e}")))
}

/// Longest key path a refusal names; past it the path is cut (keys are the client's
/// and could be as long as the body).
const MAX_NAMED_PATH_CHARS: usize = 200;

/// The answer to a body that is not JSON, or whose object names a key twice.
fn refusal_of(e: settlement_wire::json::JsonError) -> ApiError {
    use settlement_wire::json::JsonError;
    match e {
        // serde_json's syntax messages name a position, never the content.
        JsonError::Syntax(e) => ApiError::MalformedJson(e.to_string()),
        JsonError::DuplicateKey { .. } => {
            let path = e.duplicate_key_path().unwrap_or_default();
            let named = match path.char_indices().nth(MAX_NAMED_PATH_CHARS) {
                Some((cut, _)) => format!("{}…", &path[..cut]),
                None => path.clone(),
            };
            // The path is made of the body's keys: a card number among them (or one
            // the cut made) is named as such and never echoed.
            if contains_pan(&path) || contains_pan(&named) {
                return ApiError::pan_not_allowed();
            }
            ApiError::DuplicateKey { path: named }
        }
    }
}

/// A typed query string. Parsed during extraction but judged only by
/// [`ApiQuery::get`], which handlers call after checking who is calling: a caller
/// without access learns nothing from validation errors.
pub struct ApiQuery<T>(Result<T, ApiError>);

impl<T> ApiQuery<T> {
    /// The parsed query, or why it was refused.
    pub fn get(self) -> Result<T, ApiError> {
        self.0
    }
}

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // Filters reach Postgres, whose text cannot hold U+0000.
        let holds_nul =
            Query::<Vec<(String, String)>>::try_from_uri(&parts.uri).is_ok_and(|Query(pairs)| {
                pairs
                    .iter()
                    .any(|(k, v)| k.contains('\0') || v.contains('\0'))
            });
        let parsed = if holds_nul {
            Err(ApiError::invalid(
                "bad query string: text must not hold the NUL character (U+0000)",
            ))
        } else {
            Query::<T>::from_request_parts(parts, state)
                .await
                .map(|Query(q)| q)
                .map_err(|e| ApiError::invalid(format!("bad query string: {}", e.body_text())))
        };
        Ok(ApiQuery(parsed))
    }
}

/// Typed path parameters.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // Checked after percent-decoding, so an encoded separator cannot hide a number.
        if let Ok(Path(params)) =
            Path::<Vec<(String, String)>>::from_request_parts(parts, state).await
        {
            if params.iter().any(|(_, v)| contains_pan(v)) {
                return Err(ApiError::pan_not_allowed());
            }
            // No id holds U+0000 (Postgres text cannot): a path of the wrong form.
            if params.iter().any(|(_, v)| v.contains('\0')) {
                return Err(ApiError::not_found("resource"));
            }
        }
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(p)| ApiPath(p))
            .map_err(|_| ApiError::not_found("resource"))
    }
}

/// Refuses any request whose path or query, once percent-decoded, holds a card
/// number, before any handler sees it: such values would otherwise reach the logs
/// or the database through an id or a filter.
pub async fn refuse_card_numbers_in_uri(
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let uri = req.uri();
    let in_path = uri
        .path()
        .split('/')
        .any(|segment| contains_pan(&percent_decode(segment)));
    let in_query = uri.query().is_some_and(|q| {
        Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map(|Query(pairs)| {
                pairs
                    .iter()
                    .any(|(k, v)| contains_pan(k) || contains_pan(v))
            })
            // An undecodable query is judged on its raw text.
            .unwrap_or_else(|_| contains_pan(&percent_decode(q)))
    });
    if in_path || in_query {
        return ApiError::pan_not_allowed().into_response();
    }
    next.run(req).await
}

/// Decodes `%XX` escapes and `+` is left as is; invalid escapes stay literal.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn percent_escapes_are_decoded_and_bad_ones_kept() {
        assert_eq!(percent_decode("4111%201111%2d1"), "4111 1111-1");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}

/// When the host received a request: taken before the body is read, so a slow
/// upload near a cutoff is judged by its arrival.
#[derive(Debug, Clone, Copy)]
pub struct ReceivedAt(pub chrono::DateTime<chrono::Utc>);

/// Refuses (415, with `hint`) a body whose `Content-Type` (parameters aside) is none of
/// `accepted`; the routes that take files rather than JSON call it.
pub fn require_media_type(
    headers: &axum::http::HeaderMap,
    accepted: &[&str],
    hint: &'static str,
) -> Result<(), ApiError> {
    let given = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if given.is_some_and(|v| accepted.iter().any(|a| v.eq_ignore_ascii_case(a))) {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(hint))
    }
}
