//! The language of every answer: chosen from `Accept-Language` (else the merchant's
//! own default, else English), labelled with `Content-Language`, and applied to
//! problem details, whose `title` and, outside English, `detail` come from the
//! message files. Codes are never translated.

use std::sync::{Arc, OnceLock};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;
use settlement_i18n::{tr, Arg, Lang, Locale};

use crate::error::PROBLEM_JSON;
use crate::state::AppState;

/// Largest problem body re-read for translation; larger ones (a long list of
/// duplicates) pass as they are.
const MAX_PROBLEM_BYTES: usize = 256 * 1024;

/// The language of this request's answer, for handlers to hand to the engine.
#[derive(Debug, Clone)]
pub struct Language(pub Arc<Lang>);

impl<S: Send + Sync> FromRequestParts<S> for Language {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Language(
            parts
                .extensions
                .get::<Arc<Lang>>()
                .cloned()
                .unwrap_or_else(|| {
                    Arc::new(Lang::new(requested(
                        parts.headers.get(header::ACCEPT_LANGUAGE),
                    )))
                }),
        ))
    }
}

impl std::ops::Deref for Language {
    type Target = Lang;

    fn deref(&self) -> &Lang {
        &self.0
    }
}

fn requested(value: Option<&HeaderValue>) -> Option<Locale> {
    value
        .and_then(|v| v.to_str().ok())
        .and_then(Locale::from_accept_language)
}

/// The merchant a request's token speaks for (a merchant's or a terminal's), once
/// known: whose own language an answer falls back to.
#[derive(Debug, Default)]
pub struct Caller(OnceLock<String>);

impl Caller {
    /// Records the caller's merchant (the first one stands).
    pub fn set(&self, merchant_id: &str) {
        let _ = self.0.set(merchant_id.to_owned());
    }
}

/// Middleware: records the language asked for, then labels the answer with the one
/// it was written in and translates a problem body into it. A problem answered
/// before anything chose a language (a refused close, a bad query) for a request
/// that named none is written in its merchant's own language.
pub async fn answer_in_language(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let lang = Arc::new(Lang::new(requested(
        req.headers().get(header::ACCEPT_LANGUAGE),
    )));
    let caller = Arc::new(Caller::default());
    req.extensions_mut().insert(lang.clone());
    req.extensions_mut().insert(caller.clone());
    let response = next.run(req).await;
    let problem = is_problem(&response);
    if problem && lang.chosen().is_none() && lang.requested().is_none() {
        if let Some(merchant_id) = caller.0.get() {
            if let Ok(own) = settlement_engine::merchants::locale_of(&state.pool, merchant_id).await
            {
                lang.choose(own);
            }
        }
    }
    let locale = lang.choose(Locale::En);
    let mut response = if problem {
        translate_problem(response, locale).await
    } else {
        response
    };
    // A page names its own language (chosen by its switch); the API's answers are
    // named here.
    if !response.headers().contains_key(header::CONTENT_LANGUAGE) {
        response.headers_mut().insert(
            header::CONTENT_LANGUAGE,
            HeaderValue::from_static(locale.tag()),
        );
    }
    response
        .headers_mut()
        .append(header::VARY, HeaderValue::from_static("Accept-Language"));
    response
}

fn is_problem(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == PROBLEM_JSON.as_bytes())
}

async fn translate_problem(response: Response, locale: Locale) -> Response {
    use axum::body::HttpBody;
    // A body too large to re-read (a long list of duplicates) is answered as the
    // service wrote it.
    let small = response
        .body()
        .size_hint()
        .upper()
        .is_some_and(|n| n <= MAX_PROBLEM_BYTES as u64);
    if !small {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_PROBLEM_BYTES).await else {
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, axum::body::Body::empty());
    };
    let Ok(mut problem) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    };
    translate(&mut problem, locale);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(problem.to_string()))
}

/// Puts a problem's `title` (and, outside English, its `detail`) into `locale`.
pub fn translate(problem: &mut Value, locale: Locale) {
    let Some(code) = problem
        .get("code")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return;
    };
    let title_id = format!("problem-{code}-title");
    if !settlement_i18n::has_message(locale, &title_id) {
        return;
    }
    let text = |key: &str| {
        problem
            .get(key)
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default()
    };
    let detail = text("detail");
    let limit = text("limit_bytes");
    let retry = text("retry_after_seconds");
    let args: [(&str, Arg<'_>); 3] = [
        ("detail", detail.as_str().into()),
        ("limit_bytes", limit.as_str().into()),
        ("retry_after_seconds", retry.as_str().into()),
    ];
    let title = tr(locale, &title_id, &[]);
    // An expired token is told so in every language (the API's own detail says it).
    let detail_id = if code == "unauthorized" && detail.contains("expired") {
        "problem-unauthorized-expired-detail".to_owned()
    } else {
        format!("problem-{code}-detail")
    };
    let translated = (locale != Locale::En).then(|| tr(locale, &detail_id, &args));
    if let Some(object) = problem.as_object_mut() {
        object.insert("title".into(), Value::String(title));
        if let Some(d) = translated {
            object.insert("detail".into(), Value::String(d));
        }
    }
}
