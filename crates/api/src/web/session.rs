//! Sign-in for the web pages: a bearer token, checked exactly as the API checks it,
//! is exchanged for a session kept in Postgres (shared by every replica) and named
//! by a cookie. The cookie holds a random 256-bit id; the table holds only its
//! SHA-256. Every form carries the session's CSRF token, compared in constant time.

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use settlement_store::web_sessions::{self, NewWebSession};

use crate::auth::{authenticate_until, Principal};
use crate::error::ApiError;
use crate::state::AppState;

/// Longest a session lasts: a working day. It never outlasts the token it came from.
pub const SESSION_HOURS: i64 = 8;
/// Sessions expired for longer than this are deleted at the next sign-in.
const EXPIRED_KEPT_HOURS: i64 = 24;
/// Longest token accepted by the sign-in form; real tokens are well under 2 KiB.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Which pages a session opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// `/merchant/`: one merchant's own data.
    Merchant,
    /// `/ops/`: operations' queue.
    Ops,
}

impl Area {
    /// The pages' path prefix, also the cookie's `Path`.
    pub fn root(self) -> &'static str {
        match self {
            Area::Merchant => "/merchant/",
            Area::Ops => "/ops/",
        }
    }

    /// The sign-in page.
    pub fn sign_in(self) -> &'static str {
        match self {
            Area::Merchant => "/merchant/sign-in",
            Area::Ops => "/ops/sign-in",
        }
    }

    /// The session cookie's name.
    pub fn cookie(self) -> &'static str {
        match self {
            Area::Merchant => "settlement_merchant_session",
            Area::Ops => "settlement_ops_session",
        }
    }

    fn role(self) -> &'static str {
        match self {
            Area::Merchant => "merchant",
            Area::Ops => "ops",
        }
    }
}

/// A signed-in merchant: every page reads this merchant's data and no other.
#[derive(Debug, Clone)]
pub struct MerchantSession {
    pub merchant_id: String,
    pub csrf_token: String,
}

/// A signed-in operator, named by the token's `sub` in the audit trail.
#[derive(Debug, Clone)]
pub struct OpsSession {
    pub subject: String,
    pub csrf_token: String,
}

/// A session that is missing, expired, revoked or of the other area: the browser is
/// sent (303) to the area's sign-in page.
#[derive(Debug)]
pub struct SignInFirst(pub Area);

impl IntoResponse for SignInFirst {
    fn into_response(self) -> Response {
        redirect(self.0.sign_in())
    }
}

/// A 303 to `to` (after a form, the browser GETs the next page).
pub fn redirect(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// The value of the cookie `name` in the request's `Cookie` headers.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// 32 random bytes from the operating system, as 64 hex digits.
fn random_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("no random bytes: {e}")))?;
    Ok(hex::encode(bytes))
}

fn id_sha256(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// Cookie of the sign-in form's challenge: the form carries the same random value,
/// so a sign-in posted from another site (which cannot read the form and does not
/// send this SameSite=Strict cookie) is refused, and nobody can be signed in to
/// someone else's merchant behind their back.
pub const SIGN_IN_CHALLENGE_COOKIE: &str = "settlement_sign_in";
/// How long a sign-in form stays usable.
const SIGN_IN_CHALLENGE_SECONDS: i64 = 3600;

/// A new sign-in challenge for `area`: the value for the form and its `Set-Cookie`.
pub fn sign_in_challenge(area: Area, secure: bool) -> Result<(String, String), ApiError> {
    let value = random_token()?;
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!(
        "{SIGN_IN_CHALLENGE_COOKIE}={value}; Path={}; Max-Age={SIGN_IN_CHALLENGE_SECONDS}; HttpOnly; SameSite=Strict{secure}",
        area.sign_in(),
    );
    Ok((value, cookie))
}

/// True when the form's challenge is the cookie's, compared in constant time.
pub fn sign_in_challenge_matches(headers: &HeaderMap, sent: &str) -> bool {
    cookie_value(headers, SIGN_IN_CHALLENGE_COOKIE)
        .is_some_and(|c| !c.is_empty() && csrf_matches(c, sent))
}

/// True when the form's token is the session's, compared in constant time.
pub fn csrf_matches(session_token: &str, sent: &str) -> bool {
    session_token.as_bytes().ct_eq(sent.as_bytes()).into()
}

/// The `Set-Cookie` of a session id, or of its removal when `id` is `None`.
fn session_cookie(area: Area, id: Option<&str>, max_age_seconds: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{}={}; Path={}; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        area.cookie(),
        id.unwrap_or(""),
        area.root(),
        max_age_seconds.max(0),
    )
}

/// Why a sign-in was refused (the form says it; the reason is logged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInRefused {
    /// Not a valid token for this service.
    BadToken,
    /// A valid token of a role these pages are not for.
    WrongRole,
}

/// Checks the token as the API does, then opens a session of `area` for it: the
/// answer is a 303 to the area's first page with the session's cookie.
pub async fn sign_in(
    state: &AppState,
    area: Area,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Result<Response, SignInRefused>, ApiError> {
    let token = token.trim();
    if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
        return Ok(Err(SignInRefused::BadToken));
    }
    let (principal, exp) = match authenticate_until(&state.auth, token) {
        Ok(checked) => checked,
        Err(e) => {
            tracing::info!(reason = %e, "web sign-in refused");
            return Ok(Err(SignInRefused::BadToken));
        }
    };
    let (subject, merchant_id) = match (&principal, area) {
        (Principal::Merchant { merchant_id }, Area::Merchant) => {
            (merchant_id.clone(), Some(merchant_id.clone()))
        }
        // A session names its subject in at most 200 characters, as the audit does.
        (Principal::Ops { subject }, Area::Ops) if subject.chars().count() <= 200 => {
            (subject.clone(), None)
        }
        (Principal::Ops { .. }, Area::Ops) => return Ok(Err(SignInRefused::BadToken)),
        _ => return Ok(Err(SignInRefused::WrongRole)),
    };
    let token_end = i64::try_from(exp)
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .unwrap_or(now);
    let expires_at = (now + Duration::hours(SESSION_HOURS)).min(token_end);
    if expires_at <= now {
        return Ok(Err(SignInRefused::BadToken));
    }
    let id = random_token()?;
    let csrf = random_token()?;
    let hash = id_sha256(&id);
    let mut conn = state.pool.acquire().await.map_err(engine)?;
    web_sessions::delete_expired_web_sessions(&mut conn, now - Duration::hours(EXPIRED_KEPT_HOURS))
        .await
        .map_err(engine)?;
    if let Some(m) = merchant_id.as_deref() {
        // A token may name a merchant that does not exist (yet): no session for it.
        if settlement_store::merchants::find_merchant(&mut conn, m)
            .await
            .map_err(engine)?
            .is_none()
        {
            return Ok(Err(SignInRefused::BadToken));
        }
    }
    web_sessions::insert_web_session(
        &mut conn,
        &NewWebSession {
            id_sha256: &hash,
            role: area.role(),
            subject: &subject,
            merchant_id: merchant_id.as_deref(),
            csrf_token: &csrf,
            created_at: now,
            expires_at,
        },
    )
    .await
    .map_err(engine)?;
    tracing::info!(role = area.role(), "web session opened");
    let mut response = redirect(area.root());
    let cookie = session_cookie(
        area,
        Some(&id),
        (expires_at - now).num_seconds(),
        state.web_cookie_secure,
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    Ok(Ok(response))
}

/// Revokes the request's session of `area` (if any) and clears its cookie; the
/// answer is a 303 to the sign-in page.
pub async fn sign_out(
    state: &AppState,
    area: Area,
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> Result<Response, ApiError> {
    if let Some(id) = cookie_value(headers, area.cookie()) {
        let mut conn = state.pool.acquire().await.map_err(engine)?;
        web_sessions::revoke_web_session(&mut conn, &id_sha256(id), now)
            .await
            .map_err(engine)?;
    }
    let mut response = redirect(area.sign_in());
    let cookie = session_cookie(area, None, 0, state.web_cookie_secure);
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    Ok(response)
}

fn engine(e: sqlx::Error) -> ApiError {
    ApiError::Engine(e.into())
}

/// The live session of `area` named by the request's cookie.
async fn live_session(
    parts: &Parts,
    state: &AppState,
    area: Area,
) -> Result<web_sessions::WebSession, Response> {
    let id = cookie_value(&parts.headers, area.cookie())
        .filter(|id| id.len() == 64)
        .ok_or_else(|| SignInFirst(area).into_response())?;
    let mut conn = state
        .pool
        .acquire()
        .await
        .map_err(|e| super::PageError::from(engine(e)).into_response())?;
    let session = web_sessions::find_live_web_session(&mut conn, &id_sha256(id), Utc::now())
        .await
        .map_err(|e| super::PageError::from(engine(e)).into_response())?
        .filter(|s| s.role == area.role())
        .ok_or_else(|| SignInFirst(area).into_response())?;
    Ok(session)
}

impl FromRequestParts<AppState> for MerchantSession {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let session = live_session(parts, state, Area::Merchant).await?;
        let merchant_id = session
            .merchant_id
            .ok_or_else(|| SignInFirst(Area::Merchant).into_response())?;
        // The pages spend the merchant's API allowance: a page is a request too.
        state
            .rate_limits
            .check(&Principal::Merchant {
                merchant_id: merchant_id.clone(),
            })
            .map_err(|e| super::PageError::from(e).into_response())?;
        Ok(MerchantSession {
            merchant_id,
            csrf_token: session.csrf_token,
        })
    }
}

impl FromRequestParts<AppState> for OpsSession {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let session = live_session(parts, state, Area::Ops).await?;
        Ok(OpsSession {
            subject: session.subject,
            csrf_token: session.csrf_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name_among_several() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("lang=zh-CN; settlement_merchant_session=abc ; x=1"),
        );
        assert_eq!(
            cookie_value(&headers, "settlement_merchant_session"),
            Some("abc")
        );
        assert_eq!(cookie_value(&headers, "lang"), Some("zh-CN"));
        assert_eq!(cookie_value(&headers, "settlement_merchant"), None);
    }

    #[test]
    fn the_session_cookie_is_http_only_strict_and_scoped_to_its_area() {
        let cookie = session_cookie(Area::Ops, Some("id"), 60, true);
        assert_eq!(
            cookie,
            "settlement_ops_session=id; Path=/ops/; Max-Age=60; HttpOnly; SameSite=Strict; Secure"
        );
        assert!(!session_cookie(Area::Merchant, None, 0, false).contains("Secure"));
    }

    #[test]
    fn csrf_tokens_match_only_when_equal() {
        assert!(csrf_matches("abcd", "abcd"));
        assert!(!csrf_matches("abcd", "abce"));
        assert!(!csrf_matches("abcd", "abc"));
        assert!(!csrf_matches("abcd", ""));
    }
}
