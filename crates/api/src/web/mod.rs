//! The web pages, server-rendered HTML that works without JavaScript: `/merchant/`
//! for a merchant (where the money is, batches, unsettled transactions, payouts,
//! statements, review requests, webhook endpoints) and `/ops/` for operations (the
//! exceptions queue, held batches, payouts on hold). They are a door like the JSON
//! routes: each page calls the same engine use cases and only renders their answers.

pub mod layout;
pub mod merchant;
pub mod ops;
pub mod session;
pub mod text;

use axum::http::header::{ACCEPT_LANGUAGE, CONTENT_LANGUAGE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use maud::Markup;
use serde::de::DeserializeOwned;
use settlement_domain::pan::contains_pan;

use settlement_engine::EngineError;

use crate::error::ApiError;
use crate::state::AppState;
use text::Locale;

/// The pages' routes, in the same list as the API's (and so in `openapi.yaml`).
pub fn routes() -> Vec<(Method, &'static str, MethodRouter<AppState>)> {
    vec![
        (Method::GET, "/merchant/", get(merchant::money_page)),
        (
            Method::GET,
            "/merchant/sign-in",
            get(merchant::sign_in_page),
        ),
        (Method::POST, "/merchant/sign-in", post(merchant::sign_in)),
        (Method::POST, "/merchant/sign-out", post(merchant::sign_out)),
        (Method::GET, "/merchant/language", get(merchant::language)),
        (
            Method::GET,
            "/merchant/batches",
            get(merchant::batches_page),
        ),
        (
            Method::GET,
            "/merchant/batches/{batch_id}",
            get(merchant::batch_page),
        ),
        (
            Method::POST,
            "/merchant/batches/{batch_id}/review-requests",
            post(merchant::request_review),
        ),
        (
            Method::GET,
            "/merchant/terminals/{terminal_id}/unsettled",
            get(merchant::unsettled_page),
        ),
        (
            Method::GET,
            "/merchant/payouts",
            get(merchant::payouts_page),
        ),
        (
            Method::GET,
            "/merchant/statement",
            get(merchant::statement_page),
        ),
        (
            Method::GET,
            "/merchant/statement/download",
            get(merchant::statement_download),
        ),
        (
            Method::GET,
            "/merchant/reviews",
            get(merchant::reviews_page),
        ),
        (
            Method::GET,
            "/merchant/webhooks",
            get(merchant::webhooks_page),
        ),
        (
            Method::POST,
            "/merchant/webhooks",
            post(merchant::create_webhook),
        ),
        (
            Method::POST,
            "/merchant/webhooks/{endpoint_id}/delete",
            post(merchant::delete_webhook),
        ),
        (
            Method::POST,
            "/merchant/webhooks/{endpoint_id}/rotate-secret",
            post(merchant::rotate_webhook_secret),
        ),
        (Method::GET, "/ops/", get(ops::queue_page)),
        (Method::GET, "/ops/sign-in", get(ops::sign_in_page)),
        (Method::POST, "/ops/sign-in", post(ops::sign_in)),
        (Method::POST, "/ops/sign-out", post(ops::sign_out)),
        (Method::GET, "/ops/language", get(ops::language)),
        (
            Method::POST,
            "/ops/batches/{batch_id}/accept",
            post(ops::accept_batch),
        ),
        (
            Method::POST,
            "/ops/batches/{batch_id}/decline",
            post(ops::decline_batch),
        ),
        (
            Method::GET,
            "/ops/payout-holds",
            get(ops::payout_holds_page),
        ),
    ]
}

/// The cookie that keeps the language chosen with the switch.
pub const LANG_COOKIE: &str = "lang";
/// How long the chosen language is remembered: a year.
const LANG_COOKIE_SECONDS: i64 = 365 * 24 * 3600;

/// The page's language: the switch's cookie, else the browser's Accept-Language,
/// else the merchant's own (when known), else English.
pub fn locale_of(headers: &HeaderMap, profile: Option<Locale>) -> Locale {
    requested_locale(headers).or(profile).unwrap_or(Locale::En)
}

/// The language a visitor chose with the switch, else the one their browser asks for.
pub fn requested_locale(headers: &HeaderMap) -> Option<Locale> {
    session::cookie_value(headers, LANG_COOKIE)
        .and_then(Locale::parse)
        .or_else(|| {
            headers
                .get(ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(Locale::from_accept_language)
        })
}

/// The language of a merchant's page: [`requested_locale`], else the merchant's own
/// `locale`, else English.
pub async fn merchant_locale(
    pool: &sqlx::PgPool,
    headers: &HeaderMap,
    merchant_id: &str,
) -> Locale {
    match requested_locale(headers) {
        Some(l) => l,
        None => settlement_engine::merchants::locale_of(pool, merchant_id)
            .await
            .unwrap_or_default(),
    }
}

/// A page as an answer: HTML with its language named.
pub fn page(status: StatusCode, locale: Locale, markup: Markup) -> Response {
    let mut response = (status, Html(markup.into_string())).into_response();
    response
        .headers_mut()
        .insert(CONTENT_LANGUAGE, HeaderValue::from_static(locale.tag()));
    // Pages show a merchant's money: never kept by a shared cache.
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    // No script, no framing, forms only to this site, styles only inline.
    response.headers_mut().insert(
        axum::http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    response.headers_mut().insert(
        axum::http::header::X_FRAME_OPTIONS,
        HeaderValue::from_static("DENY"),
    );
    response.headers_mut().insert(
        axum::http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The answer of the language switch: remembers the choice and goes back to `back`
/// when it is a page of the same area (never another site).
pub fn switch_language(area: session::Area, lang: Option<&str>, back: Option<&str>) -> Response {
    let to = back
        .filter(|b| b.starts_with(area.root()) && !b.contains("//") && !b.contains('\\'))
        .unwrap_or(area.root());
    let mut response = session::redirect(to);
    if let Some(locale) = lang.and_then(Locale::parse) {
        let cookie = format!(
            "{LANG_COOKIE}={}; Path=/; Max-Age={LANG_COOKIE_SECONDS}; SameSite=Lax",
            locale.tag()
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(SET_COOKIE, value);
        }
    }
    response
}

/// What a page can fail with: an error of the use case or the request, shown as a
/// page in the reader's language.
#[derive(Debug)]
pub struct PageError {
    error: ApiError,
    locale: Locale,
}

impl PageError {
    /// The error, to be shown in `locale`.
    pub fn new(error: impl Into<ApiError>, locale: Locale) -> Self {
        PageError {
            error: error.into(),
            locale,
        }
    }

    /// A form without the session's CSRF token (or with another).
    pub fn csrf(locale: Locale) -> Self {
        PageError::new(
            ApiError::Forbidden("the form's CSRF token is missing or wrong"),
            locale,
        )
    }
}

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> Self {
        PageError {
            error,
            locale: Locale::En,
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.error.status();
        let l = self.locale;
        // What went wrong in the request is said; a fault of the service is logged
        // with its cause and shown only as such.
        let detail = match &self.error {
            ApiError::Engine(EngineError::Internal(cause)) => {
                tracing::error!(error = format!("{cause:#}"), "page failed");
                text::t(l, "web-error-internal")
            }
            ApiError::Engine(EngineError::Unavailable | EngineError::Contention)
            | ApiError::Timeout
            | ApiError::NotReady(_) => text::t(l, "web-error-unavailable"),
            ApiError::Engine(EngineError::NotFound(_)) => text::t(l, "web-error-not-found"),
            ApiError::Forbidden(_) => text::t(l, "web-error-forbidden"),
            ApiError::RateLimited { .. } => text::t(l, "web-error-rate-limited"),
            other => other.to_string(),
        };
        let markup = layout::error_page(l, status, &detail);
        page(status, l, markup)
    }
}

/// A form's fields; a body that is not one is refused like a bad field.
pub fn parse_form<T: DeserializeOwned>(body: &[u8], locale: Locale) -> Result<T, PageError> {
    form_fields(body, locale)?;
    serde_urlencoded::from_bytes(body).map_err(|_| malformed_form(locale))
}

fn malformed_form(locale: Locale) -> PageError {
    PageError::new(
        ApiError::invalid("the form's fields are not the ones this page sends"),
        locale,
    )
}

/// A form's fields in order, checked as the API's bodies are: a full card number in
/// any field (the sign-in token aside, a signed token rather than text a person
/// typed) is refused before anything reads it, and no text holds NUL.
pub fn form_fields(body: &[u8], locale: Locale) -> Result<Vec<(String, String)>, PageError> {
    let fields: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|_| malformed_form(locale))?;
    for (name, value) in &fields {
        if name != "token" && contains_pan(value) {
            return Err(PageError::new(ApiError::pan_not_allowed(), locale));
        }
        if value.contains('\0') {
            return Err(PageError::new(
                ApiError::field(name.clone(), "must not hold the NUL character"),
                locale,
            ));
        }
    }
    Ok(fields)
}
