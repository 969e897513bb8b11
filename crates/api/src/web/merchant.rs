//! The merchant's pages. The merchant is always the session's: no page takes a
//! merchant id from its path, query or form.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDate, Utc};
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;

use settlement_engine::batches::{self, Review};
use settlement_engine::host;
use settlement_engine::money::{self, PayoutScope};
use settlement_engine::status::merchant_status;
use settlement_engine::webhooks::endpoints;
use settlement_wire::batches::{BatchListQuery, BatchView, LinePageQuery, ReviewRequestView};
use settlement_wire::host::UnsettledQuery;
use settlement_wire::money::PayoutView;
use settlement_wire::statement::StatementQuery;
use settlement_wire::webhooks::{CreateEndpoint, RotateSecret};

use super::layout::{self, date, encode, frame, instant, money, scroll_table, Frame};
use super::session::{self, csrf_matches, Area, MerchantSession};
use super::text::{t, ta, Locale};
use super::{form_fields, locale_of, merchant_locale, page, parse_form, PageError};
use crate::error::ApiError;
use crate::state::AppState;
use settlement_i18n::Lang;

/// Rows per page of the lists.
const PAGE_ROWS: i64 = 50;

fn zone_of(name: &str) -> chrono_tz::Tz {
    name.parse().unwrap_or(chrono_tz::UTC)
}

fn frame_of<'a>(l: Locale, s: &'a MerchantSession, path: &'a str, title: &'a str) -> Frame<'a> {
    Frame {
        locale: l,
        area: Area::Merchant,
        path,
        title,
        who: &s.merchant_id,
        csrf_token: &s.csrf_token,
    }
}

/// A batch status in words.
fn status_words(l: Locale, status: &str) -> String {
    t(l, &format!("web-batch-status-{}", status.replace('_', "-")))
}

/// A payout status in words.
fn payout_words(l: Locale, status: &str) -> String {
    t(
        l,
        &format!("web-payout-status-{}", status.replace('_', "-")),
    )
}

fn review_state_words(l: Locale, r: &ReviewRequestView) -> String {
    t(l, &format!("web-review-state-{}", r.state.as_str()))
}

/// `GET /merchant/sign-in`
pub async fn sign_in_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let l = locale_of(&headers, None);
    sign_in_form(&state, Area::Merchant, l, StatusCode::OK, None)
}

/// The sign-in page of `area` with a fresh challenge (and why the last sign-in was
/// refused, if it was).
pub fn sign_in_form(
    state: &AppState,
    area: Area,
    l: Locale,
    status: StatusCode,
    refused: Option<&str>,
) -> Result<Response, PageError> {
    let (challenge, cookie) = session::sign_in_challenge(area, state.web_cookie_secure)
        .map_err(|e| PageError::new(e, l))?;
    let mut response = page(
        status,
        l,
        layout::sign_in_page(l, area, refused, &challenge),
    );
    if let Ok(value) = axum::http::HeaderValue::from_str(&cookie) {
        response
            .headers_mut()
            .append(axum::http::header::SET_COOKIE, value);
    }
    Ok(response)
}

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInForm {
    pub token: String,
    /// The form's challenge, the same as its cookie's.
    #[serde(default)]
    pub csrf: String,
}

/// `POST /merchant/sign-in`: a merchant token for a session cookie.
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    sign_in_to(&state, Area::Merchant, &headers, &body).await
}

/// Signs in to `area` with the token of the form.
pub async fn sign_in_to(
    state: &AppState,
    area: Area,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, PageError> {
    let l = locale_of(headers, None);
    let form: SignInForm = parse_form(body, l)?;
    if !session::sign_in_challenge_matches(headers, &form.csrf) {
        let why = t(l, "web-sign-in-form-expired");
        return sign_in_form(state, area, l, StatusCode::FORBIDDEN, Some(&why));
    }
    match session::sign_in(state, area, &form.token, Utc::now())
        .await
        .map_err(|e| PageError::new(e, l))?
    {
        Ok(response) => Ok(response),
        Err(refused) => {
            let why = match refused {
                session::SignInRefused::BadToken => t(l, "web-sign-in-bad-token"),
                session::SignInRefused::WrongRole => t(l, "web-sign-in-wrong-role"),
            };
            sign_in_form(state, area, l, StatusCode::UNAUTHORIZED, Some(&why))
        }
    }
}

/// A form that changes nothing but the session: its CSRF token only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// `POST /merchant/sign-out`
pub async fn sign_out(
    State(state): State<AppState>,
    s: MerchantSession,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let l = merchant_locale(&state.pool, &headers, &s.merchant_id).await;
    let form: CsrfForm = parse_form(&body, l)?;
    if !csrf_matches(&s.csrf_token, &form.csrf) {
        return Err(PageError::csrf(l));
    }
    session::sign_out(&state, Area::Merchant, &headers, Utc::now())
        .await
        .map_err(|e| PageError::new(e, l))
}

/// The language switch's query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanguageQuery {
    pub lang: Option<String>,
    pub back: Option<String>,
}

/// `GET /merchant/language?lang=&back=`: remembers the language, back to the page.
pub async fn language(Query(q): Query<LanguageQuery>) -> Response {
    super::switch_language(Area::Merchant, q.lang.as_deref(), q.back.as_deref())
}

/// `GET /merchant/`: where the money is, what needs attention and what to do.
pub async fn money_page(
    State(state): State<AppState>,
    s: MerchantSession,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let l = merchant_locale(&state.pool, &headers, &s.merchant_id).await;
    let lang = Lang::new(Some(l));
    let status = merchant_status(&state.pool, s.merchant_id.clone(), Utc::now(), &lang)
        .await
        .map_err(|e| PageError::new(e, l))?;
    let zone = zone_of(&status.time_zone);
    let title = t(l, "web-money-title");
    let open_reviews: Vec<&ReviewRequestView> = status
        .review_requests
        .iter()
        .filter(|r| r.state.as_str() == "open")
        .collect();
    let late_terminals: Vec<_> = status
        .terminals
        .iter()
        .filter(|term| !term.closed_since_last_cutoff && term.can_still_close)
        .collect();
    let nothing_to_do = status.attention.is_empty()
        && status.payouts_withheld.is_none()
        && status.failed_webhook_deliveries == 0
        && late_terminals.is_empty()
        && status
            .terminals
            .iter()
            .all(|term| term.unsettled.next_step.is_none());
    let body = html! {
        p class="muted" {
            (ta(l, "web-money-as-of", &[
                ("time", instant(l, &status.as_of, zone)),
                ("zone", status.time_zone.clone()),
            ]))
            " "
            (ta(l, "web-money-next-cutoff", &[("time", instant(l, &status.next_cutoff_at, zone))]))
        }
        section aria-labelledby="attention" {
            h2 id="attention" { (t(l, "web-money-attention")) }
            @if nothing_to_do {
                p class="notice ok" { (t(l, "web-money-nothing-to-do")) }
            }
            @if let Some(w) = &status.payouts_withheld {
                div class="notice" {
                    h3 { (t(l, "web-money-payouts-withheld")) }
                    p { (w.message) }
                }
            }
            @for a in &status.attention {
                div class="notice" {
                    h3 {
                        (ta(l, "web-money-attention-batch", &[
                            ("terminal", a.terminal_id.clone()),
                            ("number", a.batch_number.map(|n| n.to_string()).unwrap_or_default()),
                        ]))
                        " — " (status_words(l, &a.status))
                    }
                    p { (a.reason) }
                    p {
                        a href={ "/merchant/batches/" (a.batch_id) } { (t(l, "web-money-see-batch")) }
                        @if a.status == "rejected_outside_grace" {
                            " · " (t(l, "web-money-held-what-to-do"))
                        }
                    }
                }
            }
            @for term in &late_terminals {
                div class="notice info" {
                    p {
                        (ta(l, "web-money-terminal-not-closed", &[
                            ("terminal", term.terminal_id.clone()),
                            ("deadline", term.close_deadline.as_deref().map(|d| instant(l, d, zone)).unwrap_or_default()),
                        ]))
                    }
                }
            }
            @for term in &status.terminals {
                @if let Some(step) = &term.unsettled.next_step {
                    div class="notice info" {
                        p { strong { (term.terminal_id) } ": " (step) }
                        p { a href={ "/merchant/terminals/" (encode(&term.terminal_id)) "/unsettled" } { (t(l, "web-money-see-unsettled")) } }
                    }
                }
            }
            @if status.failed_webhook_deliveries > 0 {
                div class="notice info" {
                    p { (ta(l, "web-money-failed-webhooks", &[("count", status.failed_webhook_deliveries.to_string())])) }
                    p { a href="/merchant/webhooks" { (t(l, "web-nav-webhooks")) } }
                }
            }
            @if !open_reviews.is_empty() {
                p { a href="/merchant/reviews" { (ta(l, "web-money-open-reviews", &[("count", open_reviews.len().to_string())])) } }
            }
        }
        section aria-labelledby="pending" {
            h2 id="pending" { (t(l, "web-money-pending")) }
            @if status.pending.is_empty() {
                p { (t(l, "web-money-no-pending")) }
            }
            @for p in &status.pending {
                h3 { (t(l, "web-money-pending-total")) " " (money(&p.amount, &p.currency)) }
                (scroll_table(&t(l, "web-money-pending"), html! {
                    table {
                        thead { tr {
                            th scope="col" { (t(l, "web-col-cycle-date")) }
                            th scope="col" { (t(l, "web-col-settles-at")) }
                            th scope="col" class="num" { (t(l, "web-col-batches")) }
                            th scope="col" class="num" { (t(l, "web-col-net")) }
                            th scope="col" class="num" { (t(l, "web-col-fee")) }
                            th scope="col" class="num" { (t(l, "web-col-payable")) }
                            th scope="col" { (t(l, "web-col-arrives")) }
                        } }
                        tbody {
                            @for c in &p.cycles { tr {
                                td { (date(l, c.cycle_date)) }
                                td { (instant(l, &c.settles_at, zone)) }
                                td class="num" { (c.batch_count) }
                                td class="num" { (money(&c.net_amount, &p.currency)) }
                                td class="num" { (money(&c.fee, &p.currency)) }
                                td class="num" { (money(&c.payable_amount, &p.currency)) }
                                td { strong { (date(l, c.expected_arrival_date)) } }
                            } }
                        }
                    }
                }))
            }
        }
        section aria-labelledby="payable" {
            h2 id="payable" { (t(l, "web-money-payable")) }
            p class="muted" { (t(l, "web-money-payable-hint")) }
            ul {
                @for p in &status.payable { li { strong { (money(&p.amount, &p.currency)) } } }
            }
        }
        section aria-labelledby="payouts" {
            h2 id="payouts" { (t(l, "web-money-payouts")) }
            h3 { (t(l, "web-money-next-payouts")) }
            (payout_table(l, &status.next_payouts, &t(l, "web-money-next-payouts")))
            h3 { (t(l, "web-money-last-payouts")) }
            (payout_table(l, &status.last_payouts, &t(l, "web-money-last-payouts")))
        }
        section aria-labelledby="terminals" {
            h2 id="terminals" { (t(l, "web-money-terminals")) }
            (scroll_table(&t(l, "web-money-terminals"), html! {
                table {
                    thead { tr {
                        th scope="col" { (t(l, "web-col-terminal")) }
                        th scope="col" { (t(l, "web-col-last-batch")) }
                        th scope="col" { (t(l, "web-col-last-closed")) }
                        th scope="col" { (t(l, "web-col-closed-since-cutoff")) }
                        th scope="col" class="num" { (t(l, "web-col-unsettled")) }
                    } }
                    tbody {
                        @for term in &status.terminals { tr {
                            td { (term.terminal_id) }
                            td { (term.last_batch_number.map(|n| n.to_string()).unwrap_or_else(|| "—".into())) }
                            td { (term.last_closed_at.as_deref().map(|a| instant(l, a, zone)).unwrap_or_else(|| "—".into())) }
                            td { (if term.closed_since_last_cutoff { t(l, "web-yes") } else { t(l, "web-no") }) }
                            td class="num" {
                                a href={ "/merchant/terminals/" (encode(&term.terminal_id)) "/unsettled" } { (term.unsettled.summary.count) }
                            }
                        } }
                    }
                }
            }))
        }
    };
    let markup = frame(&frame_of(l, &s, "/merchant/", &title), body);
    Ok(page(StatusCode::OK, l, markup))
}

fn payout_table(l: Locale, payouts: &[PayoutView], label: &str) -> Markup {
    if payouts.is_empty() {
        return html! { p { (t(l, "web-none")) } };
    }
    scroll_table(
        label,
        html! {
            table {
                thead { tr {
                    th scope="col" { (t(l, "web-col-arrives")) }
                    th scope="col" class="num" { (t(l, "web-col-amount")) }
                    th scope="col" { (t(l, "web-col-status")) }
                    th scope="col" { (t(l, "web-col-payout")) }
                } }
                tbody {
                    @for p in payouts { tr {
                        td { (date(l, p.arrival_date)) }
                        td class="num" { (money(&p.amount, &p.currency)) }
                        td {
                            (payout_words(l, &p.status))
                            @if let Some(code) = &p.failure_code { " (" (code) ")" }
                        }
                        td class="mono" { (p.id) }
                    } }
                }
            }
        },
    )
}

/// The batch list's filters, as the form sends them (empty fields are absent).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchFilters {
    pub status: Option<String>,
    pub terminal_id: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub cursor: Option<String>,
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn parse_date(field: &str, v: &Option<String>, l: Locale) -> Result<Option<NaiveDate>, PageError> {
    non_empty(v)
        .map(|d| {
            d.parse::<NaiveDate>().map_err(|_| {
                PageError::new(ApiError::field(field, "must be a date (YYYY-MM-DD)"), l)
            })
        })
        .transpose()
}

const BATCH_STATUSES: &[&str] = &[
    "accepted",
    "accepted_late",
    "rejected_outside_grace",
    "accepted_by_operator",
    "declined",
    "auto_closed",
];

/// `GET /merchant/batches`: the merchant's batches, filtered, newest first.
pub async fn batches_page(
    State(state): State<AppState>,
    s: MerchantSession,
    headers: HeaderMap,
    Query(f): Query<BatchFilters>,
) -> Result<Response, PageError> {
    let l = merchant_locale(&state.pool, &headers, &s.merchant_id).await;
    let lang = Lang::new(Some(l));
    let q = BatchListQuery {
        status: non_empty(&f.status),
        terminal_id: non_empty(&f.terminal_id),
        business_date_from: parse_date("from", &f.from, l)?,
        business_date_to: parse_date("to", &f.to, l)?,
        limit: Some(PAGE_ROWS),
        cursor: non_empty(&f.cursor),
    };
    let list = batches::list_batches(&state.pool, &s.merchant_id, q, &lang)
        .await
        .map_err(|e| PageError::new(e, l))?;
    let title = t(l, "web-batches-title");
    let chosen = non_empty(&f.status).unwrap_or_default();
    let next = list.next_cursor.as_ref().map(|c| {
        format!(
            "/merchant/batches?status={}&terminal_id={}&from={}&to={}&cursor={}",
            encode(&chosen),
            encode(&non_empty(&f.terminal_id).unwrap_or_default()),
            encode(&non_empty(&f.from).unwrap_or_default()),
            encode(&non_empty(&f.to).unwrap_or_default()),
            encode(c)
        )
    });
    let body = html! {
        form method="get" action="/merchant/batches" class="filters" {
            div {
                label for="status" { (t(l, "web-col-status")) }
                select id="status" name="status" {
                    option value="" { (t(l, "web-filter-any")) }
                    @for st in BATCH_STATUSES {
                        option value=(st) selected[*st == chosen] { (status_words(l, st)) }
                    }
                }
            }
            div {
                label for="terminal_id" { (t(l, "web-col-terminal")) }
                input id="terminal_id" name="terminal_id" value=(non_empty(&f.terminal_id).unwrap_or_default());
            }
            div {
                label for="from" { (t(l, "web-filter-from")) }
                input id="from" name="from" type="date" value=(non_empty(&f.from).unwrap_or_default());
            }
            div {
                label for="to" { (t(l, "web-filter-to")) }
                input id="to" name="to" type="date" value=(non_empty(&f.to).unwrap_or_default());
            }
            div { button type="submit" { (t(l, "web-filter-apply")) } }
        }
        @if list.data.is_empty() {
            p { (t(l, "web-none")) }
        } @else {
            (batch_table(l, &list.data, &title))
        }
        @if let Some(next) = next {
            p { a href=(next) { (t(l, "web-next-page")) } }
        }
    };
    let markup = frame(&frame_of(l, &s, "/merchant/batches", &title), body);
    Ok(page(StatusCode::OK, l, markup))
}

fn batch_table(l: Locale, list: &[BatchView], label: &str) -> Markup {
    scroll_table(
        label,
        html! {
            table {
                thead { tr {
                    th scope="col" { (t(l, "web-col-business-date")) }
                    th scope="col" { (t(l, "web-col-terminal")) }
                    th scope="col" { (t(l, "web-col-batch-number")) }
                    th scope="col" { (t(l, "web-col-status")) }
                    th scope="col" class="num" { (t(l, "web-col-net")) }
                    th scope="col" { (t(l, "web-col-cycle-date")) }
                } }
                tbody {
                    @for b in list { tr {
                        td { a href={ "/merchant/batches/" (b.id) } { (date(l, b.business_date)) } }
                        td { (b.terminal_id) }
                        td { (b.batch_number.map(|n| n.to_string()).unwrap_or_else(|| "—".into())) }
                        td { (status_words(l, &b.status)) }
                        td class="num" { (money(&b.net_amount, &b.currency)) }
                        td { (b.cycle_date.map(|d| date(l, d)).unwrap_or_else(|| "—".into())) }
                    } }
                }
            }
        },
    )
}

/// A page of a batch's lines.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinesQuery {
    pub cursor: Option<i32>,
}

/// `GET /merchant/batches/{batch_id}`: one batch, its lines, and for a held batch
/// the review request form (or the request's state and decision).
pub async fn batch_page(
    State(state): State<AppState>,
    s: MerchantSession,
    headers: HeaderMap,
    Path(batch_id): Path<Uuid>,
    Query(q): Query<LinesQuery>,
) -> Result<Response, PageError> {
    let l = merchant_locale(&state.pool, &headers, &s.merchant_id).await;
    let lang = Lang::new(Some(l));
    let detail = batches::batch_detail(
        &state.pool,
        &s.merchant_id,
        batch_id,
        &LinePageQuery {
            limit: Some(PAGE_ROWS),
            cursor: q.cursor,
        },
        &lang,
    )
    .await
    .map_err(|e| PageError::new(e, l))?;
    // The batch's review requests come with the merchant's status (its own, newest
    // first), so the page needs no query of its own.
    let status = merchant_status(&state.pool, s.merchant_id.clone(), Utc::now(), &lang)
        .await
        .map_err(|e| PageError::new(e, l))?;
    let zone = zone_of(&status.time_zone);
    let reviews: Vec<&ReviewRequestView> = status
        .review_requests
        .iter()
        .filter(|r| r.batch_id == batch_id)
        .collect();
    let b = &detail.batch;
    let title = ta(
        l,
        "web-batch-title",
        &[
            ("terminal", b.terminal_id.clone()),
            (
                "number",
                b.batch_number.map(|n| n.to_string()).unwrap_or_default(),
            ),
        ],
    );
    let held = b.status == "rejected_outside_grace";
    let open_review = reviews.iter().any(|r| r.state.as_str() == "open");
    let body = html! {
        dl class="facts" {
            dt { (t(l, "web-col-status")) } dd { strong { (status_words(l, &b.status)) } }
            dt { (t(l, "web-batch-reason")) } dd { (b.status_reason) }
            dt { (t(l, "web-col-business-date")) } dd { (date(l, b.business_date)) }
            dt { (t(l, "web-batch-received")) } dd { (instant(l, &b.received_at, zone)) }
            dt { (t(l, "web-batch-grace-deadline")) } dd { (instant(l, &b.grace_deadline, zone)) }
            dt { (t(l, "web-col-net")) } dd { (money(&b.net_amount, &b.currency)) }
            dt { (t(l, "web-col-fee")) } dd { (money(&b.fee, &b.currency)) }
            dt { (t(l, "web-col-cycle-date")) } dd { (b.cycle_date.map(|d| date(l, d)).unwrap_or_else(|| "—".into())) }
            dt { (t(l, "web-batch-lines")) } dd { (b.line_count) }
        }
        @if !reviews.is_empty() {
            h2 { (t(l, "web-reviews-title")) }
            (review_table(l, &reviews, zone))
        }
        @if held && !open_review {
            h2 id="review" { (t(l, "web-review-request")) }
            p { (t(l, "web-review-request-hint")) }
            form method="post" action={ "/merchant/batches/" (b.id) "/review-requests" } {
                input type="hidden" name="csrf" value=(s.csrf_token);
                label for="note" { (t(l, "web-review-note")) }
                textarea id="note" name="note" required maxlength="1000" {}
                p { button type="submit" { (t(l, "web-review-send")) } }
            }
        }
        h2 { (t(l, "web-batch-lines")) }
        (scroll_table(&t(l, "web-batch-lines"), html! {
            table {
                thead { tr {
                    th scope="col" class="num" { "#" }
                    th scope="col" { (t(l, "web-col-type")) }
                    th scope="col" class="num" { (t(l, "web-col-amount")) }
                    th scope="col" { (t(l, "web-col-card")) }
                    th scope="col" { "RRN" }
                    th scope="col" { (t(l, "web-col-captured")) }
                } }
                tbody {
                    @for line in &detail.lines.data { tr {
                        td class="num" { (line.line_no) }
                        td { (line.line_type) }
                        td class="num" { (money(&line.amount, &b.currency)) }
                        td { (line.card_brand.clone().unwrap_or_default()) " " span class="mono" { (line.masked_pan.clone().unwrap_or_default()) } }
                        td class="mono" { (line.rrn) }
                        td { (instant(l, &line.captured_at, zone)) }
                    } }
                }
            }
        }))
        @if let Some(next) = &detail.lines.next_cursor {
            p { a href={ "/merchant/batches/" (b.id) "?cursor=" (encode(next)) } { (t(l, "web-next-page")) } }
        }
    };
    let markup = frame(&frame_of(l, &s, "/merchant/batches", &title), body);
    Ok(page(StatusCode::OK, l, markup))
}

fn review_table(l: Locale, reviews: &[&ReviewRequestView], zone: chrono_tz::Tz) -> Markup {
    scroll_table(
        &t(l, "web-reviews-title"),
        html! {
            table {
                thead { tr {
                    th scope="col" { (t(l, "web-review-asked")) }
                    th scope="col" { (t(l, "web-review-note")) }
                    th scope="col" { (t(l, "web-col-status")) }
                    th scope="col" { (t(l, "web-review-decision")) }
                    th scope="col" { (t(l, "web-col-batch")) }
                } }
                tbody {
                    @for r in reviews { tr {
                        td { (instant(l, &r.created_at, zone)) }
                        td { (r.note) }
                        td { (review_state_words(l, r)) }
                        td {
                            @if let Some(reason) = &r.resolution { (reason) }
                            @if let Some(at) = &r.decided_at { br; span class="muted" { (instant(l, at, zone)) } }
                        }
                        td { a href={ "/merchant/batches/" (r.batch_id) } { (t(l, "web-money-see-batch")) } }
                    } }
                }
            }
        },
    )
}

/// The review request form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewForm {
    #[serde(default)]
    pub csrf: String,
    pub note: String,
}

/// `POST /merchant/batches/{batch_id}/review-requests`: asks operations to review
/// a held batch; back to the batch, which shows the request.
pub async fn request_review(
    State(state): State<AppState>,
    s: MerchantSession,
    headers: HeaderMap,
    Path(batch_id): Path<Uuid>,
    body: Bytes,
) -> Result<Response, PageError> {
    let l = merchant_locale(&state.pool, &headers, &s.merchant_id).await;
    let form: ReviewForm = parse_form(&body, l)?;
    if !csrf_matches(&s.csrf_token, &form.csrf) {
        return Err(PageError::csrf(l));
    }
    let (_, review) = batches::request_review(
        &state.pool,
        &s.merchant_id,
        batch_id,
        &form.note,
        &s.merchant_id,
    )
    .await
    .map_err(|e| PageError::new(e, l))?;
    if review == Review::Opened {
        tracing::info!(%batch_id, "review requested from the web page");
    }
    Ok(session::redirect(&format!("/merchant/batches/{batch_id}")))
}

/// A page of unsettled transactions.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CursorQuery {
    pub cursor: Option<String>,
}

/// `GET /merchant/terminals/{terminal_id}/unsettled`: a terminal of the merchant's,
/// its transactions authorized and not yet closed in a batch.
pub async fn unsettled_page(
    State(state): State<AppState>,
    s: MerchantSession,
    headers: HeaderMap,
    Path(terminal_id): Path<String>,
    Query(q): Query<CursorQuery>,
) -> Result<Response, PageError> {
    let l = merchant_locale(&state.pool, &headers, &s.merchant_id).await;
    let list = host::unsettled(
        &state.pool,
        &s.merchant_id,
        &terminal_id,
        UnsettledQuery {
            limit: Some(PAGE_ROWS),
            cursor: non_empty(&q.cursor),
        },
        &Lang::new(Some(l)),
    )
    .await
    .map_err(|e| PageError::new(e, l))?;
    let zone = settlement_engine::merchants::time_zone_of(&state.pool, &s.merchant_id)
        .await
        .map_err(|e| PageError::new(e, l))?;
    let title = ta(
        l,
        "web-unsettled-title",
        &[("terminal", list.terminal_id.clone())],
    );
    let body = html! {
        p { (ta(l, "web-unsettled-count", &[("count", list.summary.count.to_string())])) }
        @if let Some(step) = &list.next_step {
            p class="notice info" { (step) }
        }
        ul {
            @for a in &list.summary.amounts { li { (money(&a.net_amount, &a.currency)) } }
        }
        @if list.data.is_empty() {
            p { (t(l, "web-none")) }
        } @else {
            (scroll_table(&title, html! {
                table {
                    thead { tr {
                        th scope="col" { (t(l, "web-col-authorized")) }
                        th scope="col" { (t(l, "web-col-type")) }
                        th scope="col" class="num" { (t(l, "web-col-amount")) }
                        th scope="col" { (t(l, "web-col-card")) }
                        th scope="col" { "RRN" }
                        th scope="col" { (t(l, "web-col-auth-code")) }
                    } }
                    tbody {
                        @for x in &list.data { tr {
                            td { (instant(l, &x.authorized_at, zone)) }
                            td { (x.transaction_type) }
                            td class="num" { (money(&x.amount, &x.currency)) }
                            td { (x.card_brand.clone().unwrap_or_default()) " " span class="mono" { (x.masked_pan.clone().unwrap_or_default()) } }
                            td class="mono" { (x.rrn) }
                            td class="mono" { (x.auth_code) }
                        } }
                    }
                }
            }))
        }
        @if let Some(next) = &list.next_cursor {
            p { a href={ "/merchant/terminals/" (encode(&list.terminal_id)) "/unsettled?cursor=" (encode(next)) } { (t(l, "web-next-page")) } }
        }
    };
    let markup = frame(&frame_of(l, &s, "/merchant/", &title), body);
    Ok(page(StatusCode::OK, l, markup))
}

/// `GET /merchant/payouts`: the merchant's payouts, newest first.
pub async fn payouts_page(
    State(state): State<AppState>,
    s: MerchantSession,
    headers: HeaderMap,
    Query(q): Query<CursorQuery>,
) -> Result<Response, PageError> {
    let l = merchant_locale(&state.pool, &headers, &s.merchant_id).await;
    let lang = Lang::new(Some(l));
    let cursor = non_empty(&q.cursor);
    let list = money::list_payouts(
        &state.pool,
        PayoutScope::Merchant(&s.merchant_id),
        None,
        Some(PAGE_ROWS),
        cursor.as_deref(),
        &lang,
    )
    .await
    .map_err(|e| PageError::new(e, l))?;
    let title = t(l, "web-payouts-title");
    let body = html! {
        (payout_table(l, &list.data, &title))
        @if let Some(next) = &list.next_cursor {
            p { a href={ "/merchant/payouts?cursor=" (encode(next)) } { (t(l, "web-next-page")) } }
        }
    };
    let markup = frame(&frame_of(l, &s, "/merchant/payouts", &title), body);
    Ok(page(StatusCode::OK, l, markup))
}

/// `GET /merchant/statement`: the download form (a date range and a format).
pub async fn statement_page(
    State(state): State<AppState>,
    s: MerchantSession,
    headers: HeaderMap,
) -> Response {
    let l = merchant_locale(&state.pool, &headers, &s.merchant_id).await;
    let title = t(l, "web-statement-title");
    // The merchant's own today, not the server's.
    let zone = settlement_engine::merchants::time_zone_of(&state.pool, &s.merchant_id)
        .await
        .unwrap_or(chrono_tz::UTC);
    let today = Utc::now().with_timezone(&zone).date_naive();
    let month_ago = today - chrono::Duration::days(30);
    let body = html! {
        p { (t(l, "web-statement-hint")) }
        form method="get" action="/merchant/statement/download" class="filters" {
            div {
                label for="from" { (t(l, "web-filter-from")) }
                input id="from" name="from" type="date" required value=(month_ago);
            }
            div {
                label for="to" { (t(l, "web-filter-to")) }
                input id="to" name="to" type="date" required value=(today);
            }
            div {
                label for="format" { (t(l, "web-statement-format")) }
                select id="format" name="format" {
                    option value="csv" selected { "CSV" }
                    option value="json" { "JSON" }
                }
            }
            div { button type="submit" { (t(l, "web-statement-download")) } }
        }
    };
    page(
        StatusCode::OK,
        l,
        frame(&frame_of(l, &s, "/merchant/statement", &title), body),
    )
}

/// `GET /merchant/statement/download?from=&to=&format=`: the statement as a file,
/// streamed as the API streams it.
pub async fn statement_download(
    State(state): State<AppState>,
    s: MerchantSession,
    headers: HeaderMap,
    Query(q): Query<StatementQuery>,
) -> Result<Response, PageError> {
    let l = merchant_locale(&state.pool, &headers, &s.merchant_id).await;
    let statement = settlement_engine::statement::statement(
        &state.pool,
        &state.statement_slots,
        &s.merchant_id,
        &q,
    )
    .await
    .map_err(|e| PageError::new(e, l))?;
    let extension = match statement.format {
        settlement_engine::statement::Format::Csv => "csv",
        settlement_engine::statement::Format::Json => "json",
    };
    // The merchant id is checked at its source ([A-Za-z0-9_-]), so it is safe here.
    let file = format!(
        "statement-{}-{}-{}.{extension}",
        s.merchant_id, q.from, q.to
    );
    Ok((
        [
            (CONTENT_TYPE, statement.format.content_type().to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        Body::from_stream(statement.chunks),
    )
        .into_response())
}

/// `GET /merchant/reviews`: the merchant's review requests and their decisions.
pub async fn reviews_page(
    State(state): State<AppState>,
    s: MerchantSession,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let l = merchant_locale(&state.pool, &headers, &s.merchant_id).await;
    let lang = Lang::new(Some(l));
    let status = merchant_status(&state.pool, s.merchant_id.clone(), Utc::now(), &lang)
        .await
        .map_err(|e| PageError::new(e, l))?;
    let zone = zone_of(&status.time_zone);
    let title = t(l, "web-reviews-title");
    let reviews: Vec<&ReviewRequestView> = status.review_requests.iter().collect();
    let held: Vec<_> = status
        .attention
        .iter()
        .filter(|a| a.status == "rejected_outside_grace")
        .filter(|a| {
            !reviews
                .iter()
                .any(|r| r.batch_id == a.batch_id && r.state.as_str() == "open")
        })
        .collect();
    let body = html! {
        p { (t(l, "web-reviews-hint")) }
        @if !held.is_empty() {
            h2 { (t(l, "web-reviews-held")) }
            ul {
                @for a in &held {
                    li { a href={ "/merchant/batches/" (a.batch_id) "#review" } {
                        (ta(l, "web-money-attention-batch", &[
                            ("terminal", a.terminal_id.clone()),
                            ("number", a.batch_number.map(|n| n.to_string()).unwrap_or_default()),
                        ]))
                    } }
                }
            }
        }
        h2 { (t(l, "web-reviews-asked")) }
        @if reviews.is_empty() {
            p { (t(l, "web-none")) }
        } @else {
            (review_table(l, &reviews, zone))
        }
    };
    let markup = frame(&frame_of(l, &s, "/merchant/reviews", &title), body);
    Ok(page(StatusCode::OK, l, markup))
}

/// The event types a webhook endpoint may ask for, as the form offers them.
const EVENT_TYPES: &[&str] = settlement_engine::events::EVENT_TYPES;

/// `GET /merchant/webhooks`: live endpoints, and the form to add one.
pub async fn webhooks_page(
    State(state): State<AppState>,
    s: MerchantSession,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let l = merchant_locale(&state.pool, &headers, &s.merchant_id).await;
    webhooks_view(&state, &s, l, None).await
}

async fn webhooks_view(
    state: &AppState,
    s: &MerchantSession,
    l: Locale,
    new_secret: Option<(String, String)>,
) -> Result<Response, PageError> {
    let list = endpoints::list_endpoints(&state.pool, &s.merchant_id)
        .await
        .map_err(|e| PageError::new(e, l))?;
    let title = t(l, "web-webhooks-title");
    let body = html! {
        @if let Some((url, secret)) = &new_secret {
            div class="notice ok" role="status" {
                p { (ta(l, "web-webhooks-secret-once", &[("url", url.clone())])) }
                p { code { (secret) } }
            }
        }
        @if list.data.is_empty() {
            p { (t(l, "web-none")) }
        }
        @for e in &list.data {
            section class="endpoint" {
                h2 class="mono" { (e.url) }
                p { (t(l, "web-webhooks-events")) ": " (e.event_types.join(", ")) }
                div class="filters" {
                    form method="post" action={ "/merchant/webhooks/" (e.id) "/rotate-secret" } {
                        input type="hidden" name="csrf" value=(s.csrf_token);
                        button type="submit" class="secondary" { (t(l, "web-webhooks-rotate")) }
                    }
                    form method="post" action={ "/merchant/webhooks/" (e.id) "/delete" } {
                        input type="hidden" name="csrf" value=(s.csrf_token);
                        button type="submit" class="secondary" { (t(l, "web-webhooks-delete")) }
                    }
                }
            }
        }
        h2 { (t(l, "web-webhooks-add")) }
        form method="post" action="/merchant/webhooks" {
            input type="hidden" name="csrf" value=(s.csrf_token);
            label for="url" { (t(l, "web-webhooks-url")) }
            input id="url" name="url" type="url" required placeholder="https://" size="50";
            fieldset {
                legend { (t(l, "web-webhooks-events")) }
                @for (i, ty) in EVENT_TYPES.iter().enumerate() {
                    div {
                        input type="checkbox" id={ "ev" (i) } name="event_types" value=(ty) checked;
                        " "
                        label for={ "ev" (i) } style="display:inline;font-weight:400" { code { (ty) } }
                    }
                }
            }
            p { button type="submit" { (t(l, "web-webhooks-add")) } }
        }
    };
    let markup = frame(&frame_of(l, s, "/merchant/webhooks", &title), body);
    Ok(page(StatusCode::OK, l, markup))
}

/// Fields of the add-endpoint form (a repeated `event_types`).
fn endpoint_form(body: &[u8], l: Locale) -> Result<(String, String, Vec<String>), PageError> {
    let mut csrf = String::new();
    let mut url = String::new();
    let mut types = Vec::new();
    for (k, v) in form_fields(body, l)? {
        match k.as_str() {
            "csrf" => csrf = v,
            "url" => url = v,
            "event_types" => types.push(v),
            _ => {}
        }
    }
    Ok((csrf, url, types))
}

/// `POST /merchant/webhooks`: registers an endpoint; the page shows its secret once.
pub async fn create_webhook(
    State(state): State<AppState>,
    s: MerchantSession,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let l = merchant_locale(&state.pool, &headers, &s.merchant_id).await;
    let (csrf, url, event_types) = endpoint_form(&body, l)?;
    if !csrf_matches(&s.csrf_token, &csrf) {
        return Err(PageError::csrf(l));
    }
    let view = endpoints::create_endpoint(
        &state.pool,
        state.webhook_reach,
        &s.merchant_id,
        CreateEndpoint { url, event_types },
    )
    .await
    .map_err(|e| PageError::new(e, l))?;
    let secret = view.secret.clone().unwrap_or_default();
    webhooks_view(&state, &s, l, Some((view.url, secret))).await
}

/// `POST /merchant/webhooks/{endpoint_id}/delete`
pub async fn delete_webhook(
    State(state): State<AppState>,
    s: MerchantSession,
    headers: HeaderMap,
    Path(endpoint_id): Path<Uuid>,
    body: Bytes,
) -> Result<Response, PageError> {
    let l = merchant_locale(&state.pool, &headers, &s.merchant_id).await;
    let form: CsrfForm = parse_form(&body, l)?;
    if !csrf_matches(&s.csrf_token, &form.csrf) {
        return Err(PageError::csrf(l));
    }
    endpoints::delete_endpoint(&state.pool, &s.merchant_id, endpoint_id)
        .await
        .map_err(|e| PageError::new(e, l))?;
    Ok(session::redirect("/merchant/webhooks"))
}

/// `POST /merchant/webhooks/{endpoint_id}/rotate-secret`: a new secret, shown once;
/// the old one keeps signing beside it for the API's default overlap.
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    s: MerchantSession,
    headers: HeaderMap,
    Path(endpoint_id): Path<Uuid>,
    body: Bytes,
) -> Result<Response, PageError> {
    let l = merchant_locale(&state.pool, &headers, &s.merchant_id).await;
    let form: CsrfForm = parse_form(&body, l)?;
    if !csrf_matches(&s.csrf_token, &form.csrf) {
        return Err(PageError::csrf(l));
    }
    let view = endpoints::rotate_secret(
        &state.pool,
        &s.merchant_id,
        endpoint_id,
        RotateSecret::default(),
    )
    .await
    .map_err(|e| PageError::new(e, l))?;
    let secret = view.secret.clone().unwrap_or_default();
    webhooks_view(&state, &s, l, Some((view.url, secret))).await
}
