//! Bearer JWT authentication and the four roles: ops, merchant, terminal, host.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
pub use settlement_wire::auth::{
    sign_hs256, Audience, Claims, Principal, Refusal, Role, LEEWAY_SECONDS,
};

use crate::config::AuthConfig;
use crate::error::ApiError;
use crate::state::AppState;

/// Checks a token fully: the algorithm is pinned by the key that checks it (HS256 for
/// the shared secret, the configured algorithm for a `kid`), the signature, `exp`,
/// `nbf`, `iss` and `aud`, that no text claim holds a control character, then the
/// role's required claims.
pub fn authenticate(config: &AuthConfig, token: &str) -> Result<Principal, ApiError> {
    authenticate_until(config, token).map(|(principal, _)| principal)
}

/// Like [`authenticate`], with the token's `exp` (seconds since the epoch): a web
/// session made from the token never outlives it.
pub fn authenticate_until(config: &AuthConfig, token: &str) -> Result<(Principal, u64), ApiError> {
    let invalid = ApiError::Unauthorized("the bearer token is invalid");
    let header = decode_header(token)
        .map_err(|_| ApiError::Unauthorized("the bearer token is malformed"))?;
    let (algorithm, key): (Algorithm, DecodingKey) = match &header.kid {
        Some(kid) => config
            .public_keys
            .get(kid)
            .cloned()
            .ok_or(ApiError::Unauthorized(
                "the bearer token names an unknown key",
            ))?,
        None => {
            let secret = config
                .hs256_secret
                .as_ref()
                .ok_or(ApiError::Unauthorized("the bearer token names no key"))?;
            // Never empty: the secret is checked at start-up.
            let key = DecodingKey::from_secret(secret.expose())
                .map_err(|_| ApiError::Unauthorized("the bearer token names no key"))?;
            (Algorithm::HS256, key)
        }
    };
    let claims = decode::<Claims>(token, &key, &validation(config, algorithm))
        .map_err(|e| {
            tracing::debug!(reason = %e, "token refused");
            // Expiry is checked after the signature: only a genuine token is told
            // it has expired.
            if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) {
                ApiError::Unauthorized("the bearer token has expired; ask for a new one")
            } else {
                invalid
            }
        })?
        .claims;
    if claims.holds_control_character() {
        return Err(invalid_text());
    }
    let malformed = || ApiError::Unauthorized("the bearer token lacks the claims of its role");
    let exp = claims.exp;
    let principal: Result<Principal, ApiError> = match claims.role {
        Role::Ops => Ok(Principal::Ops {
            subject: claims.sub,
        }),
        Role::Host => Ok(Principal::Host {
            subject: claims.sub,
        }),
        Role::Merchant => Ok(Principal::Merchant {
            merchant_id: claims.merchant_id.ok_or_else(malformed)?,
        }),
        Role::Terminal => Ok(Principal::Terminal {
            terminal_id: claims.terminal_id.ok_or_else(malformed)?,
            merchant_id: claims.merchant_id.ok_or_else(malformed)?,
        }),
    };
    Ok((principal?, exp))
}

/// What the token library checks: the algorithm, `exp` and `nbf` (with leeway; a
/// claim of the wrong JSON type is refused, never read as absent), `iss` and `aud`.
fn validation(config: &AuthConfig, algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.leeway = LEEWAY_SECONDS;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.set_issuer(&[&config.issuer]);
    validation.set_audience(&[&config.audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation
}

/// The token of an `Authorization` value of the Bearer scheme, whose name is
/// case-insensitive (RFC 9110 11.1: `bearer`, `BEARER`), followed by one or more
/// spaces and the token.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim_matches(' ');
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A validly signed token whose names hold a control character: refused like any
/// other bad token, before a name reaches a log line or the database.
fn invalid_text() -> ApiError {
    ApiError::Unauthorized("the bearer token's claims hold a control character")
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or(ApiError::Unauthorized(
                "the Authorization header is missing",
            ))?;
        let token = value
            .to_str()
            .ok()
            .and_then(bearer_token)
            .ok_or(ApiError::Unauthorized(
                "the Authorization header must be `Bearer <token>`",
            ))?;
        let principal = authenticate(&state.auth, token)?;
        // The answer's language falls back to this merchant's own.
        if let Some(caller) = parts
            .extensions
            .get::<std::sync::Arc<crate::language::Caller>>()
        {
            match &principal {
                Principal::Merchant { merchant_id } | Principal::Terminal { merchant_id, .. } => {
                    caller.set(merchant_id);
                }
                _ => {}
            }
        }
        // Only a valid token spends a bucket, so a forged one cannot exhaust another
        // caller's allowance.
        state.rate_limits.check(&principal)?;
        Ok(principal)
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Forbidden(why) => ApiError::Forbidden(why),
            Refusal::NotFound(what) => ApiError::not_found(what),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::{json, Value};

    #[test]
    fn time_claims_of_the_wrong_type_are_refused_by_the_library_itself() {
        // Decoded into a Value, which takes any JSON: only the library's own checks
        // stand between such a token and a caller that reads its claims loosely.
        let config = AuthConfig {
            issuer: "settlement".into(),
            audience: "settlement-api".into(),
            hs256_secret: None,
            public_keys: Default::default(),
        };
        let secret = b"0123456789abcdef0123456789abcdef";
        let now = jsonwebtoken::get_current_timestamp();
        let claims = |nbf: Value, exp: Value| json!({"iss": "settlement", "aud": "settlement-api", "sub": "ops:a", "nbf": nbf, "exp": exp});
        let check = |claims: Value| {
            let token = encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(secret).unwrap(),
            )
            .unwrap();
            decode::<Value>(
                &token,
                &DecodingKey::from_secret(secret).unwrap(),
                &validation(&config, Algorithm::HS256),
            )
        };
        assert!(check(claims(json!(now), json!(now + 600))).is_ok());
        for (nbf, exp) in [
            (json!((now + 3600).to_string()), json!(now + 600)),
            (json!("later"), json!(now + 600)),
            (json!(now), json!("9999999999")),
            (json!(now), json!([now + 600])),
        ] {
            assert!(
                check(claims(nbf.clone(), exp.clone())).is_err(),
                "{nbf} {exp}"
            );
        }
    }

    #[test]
    fn the_bearer_scheme_is_named_in_any_case() {
        for value in ["Bearer abc", "bearer abc", "BEARER abc", "bEaReR  abc "] {
            assert_eq!(bearer_token(value), Some("abc"), "{value}");
        }
        for value in [
            "Basic abc",
            "Bearer",
            "Bearer ",
            "Bearerabc",
            "abc",
            "Bearer\tabc",
        ] {
            assert_eq!(bearer_token(value), None, "{value}");
        }
    }
}
