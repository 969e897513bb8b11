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
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| ApiError::PayloadTooLarge { limit_bytes: limit })?;
        Ok(JsonBody { is_json, bytes })
    }
}

impl JsonBody {
    /// Parses the body: refused when it is not JSON, when any string in it holds a
    /// card number, or when it does not match `T` (unknown fields included).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<Parsed<T>, ApiError> {
        if !self.is_json {
            return Err(ApiError::UnsupportedMediaType(
                "send the body as application/json",
            ));
        }
        let raw: Value = serde_json::from_slice(&self.bytes).map_err(|e| {
            // serde_json's syntax messages name a position, never the content.
            ApiError::MalformedJson(e.to_string())
        })?;
        if any_string_holds_pan(&raw) {
            return Err(ApiError::PanNotAllowed);
        }
        let digest = Sha256::digest(raw.to_string().as_bytes()).to_vec();
        let value = serde_json::from_value(raw).map_err(|e| ApiError::Validation {
            detail: format!("the request body does not match the schema: {e}"),
            field: None,
        })?;
        Ok(Parsed { value, digest })
    }
}

/// True when any string, or any object key, in the JSON holds a card number.
pub fn any_string_holds_pan(value: &Value) -> bool {
    match value {
        Value::String(s) => contains_pan(s),
        Value::Array(items) => items.iter().any(any_string_holds_pan),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| contains_pan(k) || any_string_holds_pan(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// A typed query string.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // Checked after percent-decoding, so an encoded separator cannot hide a number.
        let pairs = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|Query(pairs)| pairs)
            .unwrap_or_default();
        if pairs
            .iter()
            .any(|(k, v)| contains_pan(k) || contains_pan(v))
        {
            return Err(ApiError::PanNotAllowed);
        }
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|e| ApiError::Validation {
                detail: format!("bad query string: {}", e.body_text()),
                field: None,
            })
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
                return Err(ApiError::PanNotAllowed);
            }
        }
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(p)| ApiPath(p))
            .map_err(|_| ApiError::NotFound("resource"))
    }
}
