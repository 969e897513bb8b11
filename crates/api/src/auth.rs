//! Bearer JWT authentication and the three roles: ops, merchant, terminal.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{
    decode, decode_header, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use serde::{Deserialize, Serialize};

use crate::config::AuthConfig;
use crate::error::ApiError;
use crate::state::AppState;

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 30;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The acquirer's operations staff; `subject` (the token's `sub`) names who acts.
    Ops { subject: String },
    /// A merchant, reading its own data.
    Merchant { merchant_id: String },
    /// One terminal of a merchant, acting only as itself.
    Terminal {
        terminal_id: String,
        merchant_id: String,
    },
}

/// The role claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Ops,
    Merchant,
    Terminal,
}

/// The claims the service reads. `exp`, `iss` and `aud` are required.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_id: Option<String>,
}

impl Claims {
    /// Claims for a principal, valid from now for `ttl_seconds`.
    pub fn for_principal(
        principal: &Principal,
        issuer: &str,
        audience: &str,
        ttl_seconds: u64,
    ) -> Self {
        let now = jsonwebtoken::get_current_timestamp();
        let (role, merchant_id, terminal_id, sub) = match principal {
            Principal::Ops { subject } => (Role::Ops, None, None, subject.clone()),
            Principal::Merchant { merchant_id } => (
                Role::Merchant,
                Some(merchant_id.clone()),
                None,
                format!("merchant:{merchant_id}"),
            ),
            Principal::Terminal {
                terminal_id,
                merchant_id,
            } => (
                Role::Terminal,
                Some(merchant_id.clone()),
                Some(terminal_id.clone()),
                format!("terminal:{terminal_id}"),
            ),
        };
        Claims {
            iss: issuer.to_owned(),
            aud: audience.to_owned(),
            sub,
            exp: now + ttl_seconds,
            nbf: Some(now),
            iat: Some(now),
            role,
            merchant_id,
            terminal_id,
        }
    }
}

/// Signs claims with an HS256 secret (local use: `settlementd token`, tests, demo).
pub fn sign_hs256(claims: &Claims, secret: &[u8]) -> Result<String, jsonwebtoken::errors::Error> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
}

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

impl Principal {
    /// Only operations may pass; returns who acts, for the audit trail.
    pub fn require_ops(&self) -> Result<&str, ApiError> {
        match self {
            Principal::Ops { subject } => Ok(subject),
            _ => Err(ApiError::Forbidden("this route is for operations only")),
        }
    }

    /// The merchant itself or operations may read the merchant's data. Another
    /// merchant is told the merchant does not exist, so ids cannot be probed.
    pub fn require_merchant(&self, merchant_id: &str) -> Result<(), ApiError> {
        match self {
            Principal::Ops { .. } => Ok(()),
            Principal::Merchant { merchant_id: own } if own == merchant_id => Ok(()),
            Principal::Merchant { .. } => Err(ApiError::NotFound("merchant")),
            Principal::Terminal { .. } => {
                Err(ApiError::Forbidden("terminals cannot read merchant data"))
            }
        }
    }

    /// Only the terminal itself may pass; returns its merchant.
    pub fn require_terminal(&self, terminal_id: &str) -> Result<String, ApiError> {
        match self {
            Principal::Terminal {
                terminal_id: own,
                merchant_id,
            } if own == terminal_id => Ok(merchant_id.clone()),
            Principal::Terminal { .. } => {
                Err(ApiError::Forbidden("a terminal acts only as itself"))
            }
            _ => Err(ApiError::Forbidden("this route is for terminals only")),
        }
    }
}
