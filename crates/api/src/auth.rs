//! Bearer JWT authentication and the four roles: ops, merchant, terminal, host.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
pub use settlement_wire::auth::{sign_hs256, Claims, Principal, Refusal, Role, LEEWAY_SECONDS};

use crate::config::AuthConfig;
use crate::error::ApiError;
use crate::state::AppState;

/// Checks a token fully: the algorithm is pinned by the key that checks it (HS256 for
/// the shared secret, the configured algorithm for a `kid`), the signature, `exp`,
/// `nbf`, `iss` and `aud`, then the role's required claims.
pub fn authenticate(config: &AuthConfig, token: &str) -> Result<Principal, ApiError> {
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
            (Algorithm::HS256, DecodingKey::from_secret(secret.expose()))
        }
    };
    let mut validation = Validation::new(algorithm);
    validation.leeway = LEEWAY_SECONDS;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.set_issuer(&[&config.issuer]);
    validation.set_audience(&[&config.audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let claims = decode::<Claims>(token, &key, &validation)
        .map_err(|e| {
            tracing::debug!(reason = %e, "token refused");
            invalid
        })?
        .claims;
    let malformed = || ApiError::Unauthorized("the bearer token lacks the claims of its role");
    match claims.role {
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
    }
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
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized(
                "the Authorization header must be `Bearer <token>`",
            ))?;
        let principal = authenticate(&state.auth, token)?;
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
