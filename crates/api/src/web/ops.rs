//! Operations' pages: the exceptions queue with its filters, where a held batch is
//! accepted or declined with a reason (merchants' review requests among the
//! exceptions), and the merchants whose payouts are on hold.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use maud::html;
use serde::Deserialize;
use uuid::Uuid;

use settlement_engine::exceptions;
use settlement_engine::held_batches;
use settlement_wire::exceptions::ExceptionQuery;

use super::layout::{encode, frame, instant, money, scroll_table, Frame};
use super::merchant::{CsrfForm, CursorQuery, LanguageQuery};
use super::session::{self, csrf_matches, Area, OpsSession};
use super::text::{t, Locale};
use super::{locale_of, page, parse_form, PageError};
use crate::audit::check_reason;
use crate::state::AppState;
use settlement_i18n::Lang;

/// Rows per page of the queue.
const PAGE_ROWS: i64 = 50;

fn frame_of<'a>(l: Locale, s: &'a OpsSession, path: &'a str, title: &'a str) -> Frame<'a> {
    Frame {
        locale: l,
        area: Area::Ops,
        path,
        title,
        who: &s.subject,
        csrf_token: &s.csrf_token,
    }
}

/// `GET /ops/sign-in`
pub async fn sign_in_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let l = locale_of(&headers, None);
    super::merchant::sign_in_form(&state, Area::Ops, l, StatusCode::OK, None)
}

/// `POST /ops/sign-in`: an ops token for a session cookie.
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    super::merchant::sign_in_to(&state, Area::Ops, &headers, &body).await
}

/// `POST /ops/sign-out`
pub async fn sign_out(
    State(state): State<AppState>,
    s: OpsSession,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let l = locale_of(&headers, None);
    let form: CsrfForm = parse_form(&body, l)?;
    if !csrf_matches(&s.csrf_token, &form.csrf) {
        return Err(PageError::csrf(l));
    }
    session::sign_out(&state, Area::Ops, &headers, Utc::now())
        .await
        .map_err(|e| PageError::new(e, l))
}

/// `GET /ops/language?lang=&back=`
pub async fn language(Query(q): Query<LanguageQuery>) -> Response {
    super::switch_language(Area::Ops, q.lang.as_deref(), q.back.as_deref())
}

/// The queue's filters, as the form sends them (empty fields are absent).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueFilters {
    pub state: Option<String>,
    pub kind: Option<String>,
    pub merchant_id: Option<String>,
    pub cursor: Option<String>,
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

const STATES: &[&str] = &["open", "resolved", "declined", "all"];
const KINDS: &[&str] = &[
    "rejected_outside_grace",
    "out_of_balance",
    "duplicate_transactions",
    "review_request",
    "unmatched_transactions",
];

/// `GET /ops/`: the exceptions queue, open ones first by default, with a form per
/// held batch to accept or decline it with a reason.
pub async fn queue_page(
    State(state): State<AppState>,
    s: OpsSession,
    headers: HeaderMap,
    Query(f): Query<QueueFilters>,
) -> Result<Response, PageError> {
    let l = locale_of(&headers, None);
    let q = ExceptionQuery {
        limit: Some(PAGE_ROWS),
        cursor: non_empty(&f.cursor),
        state: non_empty(&f.state),
        kind: non_empty(&f.kind),
        merchant_id: non_empty(&f.merchant_id),
    };
    let list = exceptions::list_exceptions(&state.pool, &q)
        .await
        .map_err(|e| PageError::new(e, l))?;
    let title = t(l, "web-ops-queue-title");
    let chosen_state = non_empty(&f.state).unwrap_or_else(|| "open".into());
    let chosen_kind = non_empty(&f.kind).unwrap_or_default();
    let zone = chrono_tz::UTC;
    let next = list.next_cursor.as_ref().map(|c| {
        format!(
            "/ops/?state={}&kind={}&merchant_id={}&cursor={}",
            encode(&chosen_state),
            encode(&chosen_kind),
            encode(&non_empty(&f.merchant_id).unwrap_or_default()),
            encode(c)
        )
    });
    let body = html! {
        form method="get" action="/ops/" class="filters" {
            div {
                label for="state" { (t(l, "web-col-status")) }
                select id="state" name="state" {
                    @for st in STATES {
                        option value=(st) selected[*st == chosen_state] { (t(l, &format!("web-ops-state-{st}"))) }
                    }
                }
            }
            div {
                label for="kind" { (t(l, "web-ops-kind")) }
                select id="kind" name="kind" {
                    option value="" { (t(l, "web-filter-any")) }
                    @for k in KINDS {
                        option value=(k) selected[*k == chosen_kind] { (t(l, &format!("web-ops-kind-{}", k.replace('_', "-")))) }
                    }
                }
            }
            div {
                label for="merchant_id" { (t(l, "web-ops-merchant")) }
                input id="merchant_id" name="merchant_id" value=(non_empty(&f.merchant_id).unwrap_or_default());
            }
            div { button type="submit" { (t(l, "web-filter-apply")) } }
        }
        @if list.data.is_empty() {
            p class="notice ok" { (t(l, "web-ops-queue-empty")) }
        }
        @for e in &list.data {
            @let kind = e.kind.as_str();
            @let decidable = e.state.as_str() == "open"
                && (kind == "rejected_outside_grace" || kind == "review_request");
            section class="exception" aria-labelledby={ "x-" (e.id) } {
                h2 id={ "x-" (e.id) } {
                    (t(l, &format!("web-ops-kind-{}", kind.replace('_', "-"))))
                    " — " (e.merchant_id) " / " (e.terminal_id) " #" (e.batch_number)
                }
                dl class="facts" {
                    dt { (t(l, "web-col-status")) } dd { (t(l, &format!("web-ops-state-{}", e.state.as_str()))) }
                    dt { (t(l, "web-batch-received")) } dd { (instant(l, &e.received_at, zone)) }
                    @if let Some(d) = &e.grace_deadline {
                        dt { (t(l, "web-batch-grace-deadline")) } dd { (instant(l, d, zone)) }
                    }
                    @if let Some(n) = &e.net_amount {
                        dt { (t(l, "web-col-net")) } dd { (money(n, &e.currency)) }
                    }
                    @if let Some(note) = &e.note {
                        dt { (t(l, "web-review-note")) } dd { (note) }
                    }
                    @if let Some(by) = &e.decided_by {
                        dt { (t(l, "web-ops-decided-by")) } dd { (by) }
                    }
                    @if let Some(r) = &e.resolution {
                        dt { (t(l, "web-review-decision")) } dd { (r) }
                    }
                    @if let Some(d) = &e.differences {
                        dt { (t(l, "web-ops-differences")) } dd { code { (d.to_string()) } }
                    }
                }
                @if let (true, Some(batch_id)) = (decidable, e.batch_id) {
                    form method="post" action={ "/ops/batches/" (batch_id) "/decline" } {
                        input type="hidden" name="csrf" value=(s.csrf_token);
                        label for={ "reason-" (e.id) } { (t(l, "web-ops-reason")) }
                        textarea id={ "reason-" (e.id) } name="reason" required maxlength="1000" {}
                        p class="filters" {
                            button type="submit" formaction={ "/ops/batches/" (batch_id) "/accept" } { (t(l, "web-ops-accept")) }
                            button type="submit" class="secondary" { (t(l, "web-ops-decline")) }
                        }
                    }
                }
            }
        }
        @if let Some(next) = next {
            p { a href=(next) { (t(l, "web-next-page")) } }
        }
    };
    let markup = frame(&frame_of(l, &s, "/ops/", &title), body);
    Ok(page(StatusCode::OK, l, markup))
}

/// The accept and decline form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionForm {
    #[serde(default)]
    pub csrf: String,
    pub reason: String,
}

fn decision(body: &[u8], s: &OpsSession, l: Locale) -> Result<String, PageError> {
    let form: DecisionForm = parse_form(body, l)?;
    if !csrf_matches(&s.csrf_token, &form.csrf) {
        return Err(PageError::csrf(l));
    }
    Ok(check_reason(&form.reason)
        .map_err(|e| PageError::new(e, l))?
        .to_owned())
}

/// `POST /ops/batches/{batch_id}/accept`: books the held batch into the merchant's
/// open cycle, as the API's accept does.
pub async fn accept_batch(
    State(state): State<AppState>,
    s: OpsSession,
    headers: HeaderMap,
    Path(batch_id): Path<Uuid>,
    body: Bytes,
) -> Result<Response, PageError> {
    let l = locale_of(&headers, None);
    let reason = decision(&body, &s, l)?;
    held_batches::accept(
        &state.pool,
        batch_id,
        &s.subject,
        &reason,
        Utc::now(),
        &Lang::new(Some(l)),
    )
    .await
    .map_err(|e| PageError::new(e, l))?;
    Ok(session::redirect("/ops/"))
}

/// `POST /ops/batches/{batch_id}/decline`: declines the held batch for good, as the
/// API's decline does; the merchant reads the reason.
pub async fn decline_batch(
    State(state): State<AppState>,
    s: OpsSession,
    headers: HeaderMap,
    Path(batch_id): Path<Uuid>,
    body: Bytes,
) -> Result<Response, PageError> {
    let l = locale_of(&headers, None);
    let reason = decision(&body, &s, l)?;
    held_batches::decline(
        &state.pool,
        batch_id,
        &s.subject,
        &reason,
        &Lang::new(Some(l)),
    )
    .await
    .map_err(|e| PageError::new(e, l))?;
    Ok(session::redirect("/ops/"))
}

/// `GET /ops/payout-holds`: merchants whose payouts are on hold, why, since when,
/// and what releases them.
pub async fn payout_holds_page(
    State(state): State<AppState>,
    s: OpsSession,
    headers: HeaderMap,
    Query(_q): Query<CursorQuery>,
) -> Result<Response, PageError> {
    let l = locale_of(&headers, None);
    let holds = settlement_engine::money::payout_holds(&state.pool)
        .await
        .map_err(|e| PageError::new(e, l))?;
    let title = t(l, "web-ops-holds-title");
    let zone = chrono_tz::UTC;
    let body = html! {
        p { (t(l, "web-ops-holds-hint")) }
        @if holds.is_empty() {
            p class="notice ok" { (t(l, "web-none")) }
        } @else {
            (scroll_table(&title, html! {
                table {
                    thead { tr {
                        th scope="col" { (t(l, "web-ops-merchant")) }
                        th scope="col" { (t(l, "web-col-payout")) }
                        th scope="col" { (t(l, "web-ops-failure-code")) }
                        th scope="col" { (t(l, "web-ops-held-since")) }
                    } }
                    tbody {
                        @for h in &holds { tr {
                            td { (h.merchant_id) }
                            td class="mono" { (h.payout_id) }
                            td { (h.failure_code) }
                            td { (super::text::fmt_instant(l, h.held_since, zone)) }
                        } }
                    }
                }
            }))
        }
    };
    let markup = frame(&frame_of(l, &s, "/ops/payout-holds", &title), body);
    Ok(page(StatusCode::OK, l, markup))
}
