//! The frame every page shares: the document head with its small stylesheet (phone
//! widths first, contrast at least 4.5:1), the header with navigation, the language
//! switch and sign-out, and the sign-in and error pages.

use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::session::Area;
use super::text::{t, Locale};

/// The pages' stylesheet: inline, so a page is one request and needs no script.
const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI","Noto Sans","Noto Sans CJK SC",sans-serif;color:#1b1b1b;background:#fff}
a{color:#0b4fae}
a:focus,button:focus,input:focus,select:focus,textarea:focus{outline:3px solid #e0a100;outline-offset:2px}
header{background:#12325b;color:#fff;padding:.5rem 1rem}
header a{color:#fff}
header .bar{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:center;justify-content:space-between}
header .brand{font-weight:700;font-size:1.1rem}
nav ul{list-style:none;margin:.5rem 0 0;padding:0;display:flex;flex-wrap:wrap;gap:.25rem 1rem}
nav a[aria-current=page]{font-weight:700;text-decoration-thickness:3px}
.tools{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center}
.tools form{margin:0}
main{max-width:72rem;margin:0 auto;padding:1rem}
h1{font-size:1.6rem;margin:.5rem 0 1rem}
h2{font-size:1.25rem;margin:1.5rem 0 .5rem;border-bottom:2px solid #d0d7e2}
h3{font-size:1.05rem;margin:1rem 0 .25rem}
.scroll{overflow-x:auto;margin:.5rem 0}
table{border-collapse:collapse;width:100%;min-width:32rem}
caption{text-align:left;font-weight:600;padding:.25rem 0}
th,td{border-bottom:1px solid #c4ccd8;padding:.4rem .5rem;text-align:left;vertical-align:top}
th{background:#eef2f7}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.notice{border-left:6px solid #b3261e;background:#fdf0ef;padding:.5rem 1rem;margin:.5rem 0}
.notice.info{border-color:#12325b;background:#eef2f7}
.notice.ok{border-color:#1e6b34;background:#edf7ef}
.muted{color:#4a5564}
label{display:block;font-weight:600;margin:.5rem 0 .2rem}
input,select,textarea{font:inherit;padding:.4rem;border:1px solid #6b7686;border-radius:4px;max-width:100%}
textarea{width:100%;min-height:5rem}
button,.button{font:inherit;padding:.45rem 1rem;border-radius:4px;border:1px solid #12325b;background:#12325b;color:#fff;cursor:pointer;text-decoration:none;display:inline-block}
button.secondary{background:#fff;color:#12325b}
header button{background:#fff;color:#12325b;border-color:#fff}
.filters{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:flex-end}
.filters div{min-width:9rem}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}
dl.facts dt{font-weight:600}
dl.facts dd{margin:0}
.signin{max-width:32rem}
code,.mono{font-family:ui-monospace,monospace;word-break:break-all}
@media (max-width:40rem){main{padding:.75rem}h1{font-size:1.35rem}dl.facts{grid-template-columns:1fr}dl.facts dd{margin-bottom:.4rem}}
"#;

/// One entry of an area's navigation: its path and its label's message.
pub struct NavItem {
    pub path: &'static str,
    pub label: &'static str,
}

/// The merchant pages' navigation.
pub const MERCHANT_NAV: &[NavItem] = &[
    NavItem {
        path: "/merchant/",
        label: "web-nav-money",
    },
    NavItem {
        path: "/merchant/batches",
        label: "web-nav-batches",
    },
    NavItem {
        path: "/merchant/payouts",
        label: "web-nav-payouts",
    },
    NavItem {
        path: "/merchant/statement",
        label: "web-nav-statement",
    },
    NavItem {
        path: "/merchant/reviews",
        label: "web-nav-reviews",
    },
    NavItem {
        path: "/merchant/webhooks",
        label: "web-nav-webhooks",
    },
];

/// The operations pages' navigation.
pub const OPS_NAV: &[NavItem] = &[
    NavItem {
        path: "/ops/",
        label: "web-nav-exceptions",
    },
    NavItem {
        path: "/ops/payout-holds",
        label: "web-nav-payout-holds",
    },
];

/// What the frame needs of a signed-in page.
pub struct Frame<'a> {
    pub locale: Locale,
    pub area: Area,
    /// The page's own path: marked in the navigation, returned to by the switch.
    pub path: &'a str,
    /// The `<title>` and `<h1>`.
    pub title: &'a str,
    /// Who is signed in, shown in the header.
    pub who: &'a str,
    pub csrf_token: &'a str,
}

fn head(locale: Locale, title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="referrer" content="same-origin";
            title { (title) " · " (t(locale, "web-brand")) }
            style { (PreEscaped(CSS)) }
        }
    }
}

/// The language switch: plain links, one per language, back to this page.
fn language_switch(locale: Locale, area: Area, path: &str) -> Markup {
    let switch = match area {
        Area::Merchant => "/merchant/language",
        Area::Ops => "/ops/language",
    };
    html! {
        nav aria-label=(t(locale, "web-language")) class="tools" {
            @for other in Locale::ALL {
                @if other == locale {
                    span lang=(other.tag()) aria-current="true" { strong { (other.native_name()) } }
                } @else {
                    a lang=(other.tag()) hreflang=(other.tag())
                        href={ (switch) "?lang=" (other.tag()) "&back=" (encode(path)) } {
                        (other.native_name())
                    }
                }
            }
        }
    }
}

/// A signed-in page.
pub fn frame(f: &Frame<'_>, body: Markup) -> Markup {
    let l = f.locale;
    let (nav, sign_out) = match f.area {
        Area::Merchant => (MERCHANT_NAV, "/merchant/sign-out"),
        Area::Ops => (OPS_NAV, "/ops/sign-out"),
    };
    html! {
        (DOCTYPE)
        html lang=(l.tag()) {
            (head(l, f.title))
            body {
                header {
                    div class="bar" {
                        span class="brand" { (t(l, "web-brand")) }
                        div class="tools" {
                            span { (t(l, "web-signed-in-as")) " " strong class="mono" { (f.who) } }
                            (language_switch(l, f.area, f.path))
                            form method="post" action=(sign_out) {
                                input type="hidden" name="csrf" value=(f.csrf_token);
                                button type="submit" { (t(l, "web-sign-out")) }
                            }
                        }
                    }
                    nav aria-label=(t(l, "web-nav")) {
                        ul {
                            @for item in nav {
                                li {
                                    @if item.path == f.path {
                                        a href=(item.path) aria-current="page" { (t(l, item.label)) }
                                    } @else {
                                        a href=(item.path) { (t(l, item.label)) }
                                    }
                                }
                            }
                        }
                    }
                }
                main {
                    h1 { (f.title) }
                    (body)
                }
            }
        }
    }
}

/// The sign-in page of an area, with the reason of a refused attempt.
pub fn sign_in_page(l: Locale, area: Area, refused: Option<&str>, challenge: &str) -> Markup {
    let (title, hint) = match area {
        Area::Merchant => (
            t(l, "web-sign-in-merchant-title"),
            t(l, "web-sign-in-merchant-hint"),
        ),
        Area::Ops => (t(l, "web-sign-in-ops-title"), t(l, "web-sign-in-ops-hint")),
    };
    html! {
        (DOCTYPE)
        html lang=(l.tag()) {
            (head(l, &title))
            body {
                header {
                    div class="bar" {
                        span class="brand" { (t(l, "web-brand")) }
                        (language_switch(l, area, area.sign_in()))
                    }
                }
                main class="signin" {
                    h1 { (title) }
                    @if let Some(why) = refused {
                        p class="notice" role="alert" { (why) }
                    }
                    p { (hint) }
                    form method="post" action=(area.sign_in()) {
                        input type="hidden" name="csrf" value=(challenge);
                        label for="token" { (t(l, "web-sign-in-token")) }
                        textarea id="token" name="token" required autocomplete="off"
                            spellcheck="false" autocapitalize="off" {}
                        p { button type="submit" { (t(l, "web-sign-in")) } }
                    }
                    p class="muted" { (t(l, "web-sign-in-session-note")) }
                }
            }
        }
    }
}

/// The page of a request that failed: what happened, and a way back.
pub fn error_page(l: Locale, status: StatusCode, detail: &str) -> Markup {
    let title = t(l, "web-error-title");
    html! {
        (DOCTYPE)
        html lang=(l.tag()) {
            (head(l, &title))
            body {
                main {
                    h1 { (title) " (" (status.as_u16()) ")" }
                    p class="notice" role="alert" { (detail) }
                    p { a href="/merchant/" { (t(l, "web-error-back-merchant")) } " · " a href="/ops/" { (t(l, "web-error-back-ops")) } }
                }
            }
        }
    }
}

/// A table that scrolls sideways on a narrow screen instead of breaking the page;
/// the region is named and focusable so a keyboard can scroll it.
pub fn scroll_table(label: &str, table: Markup) -> Markup {
    html! {
        div class="scroll" role="region" aria-label=(label) tabindex="0" { (table) }
    }
}

/// An instant as the reader's clock shows it in the merchant's (or UTC) time zone.
pub fn instant(l: Locale, text: &str, zone: chrono_tz::Tz) -> String {
    match DateTime::parse_from_rfc3339(text) {
        Ok(at) => super::text::fmt_instant(l, at.with_timezone(&Utc), zone),
        Err(_) => text.to_owned(),
    }
}

/// A date in the reader's form.
pub fn date(l: Locale, d: NaiveDate) -> String {
    super::text::fmt_date(l, d)
}

/// An amount with its currency.
pub fn money(amount: &str, currency: &str) -> String {
    format!("{amount} {currency}")
}

/// Percent-encodes a query value (the characters a path or date can hold are kept).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            encode("/merchant/batches?x=1&y"),
            "/merchant/batches%3Fx%3D1%26y"
        );
    }

    #[test]
    fn a_page_names_its_language_and_fits_a_phone() {
        let page = sign_in_page(Locale::ZhCn, Area::Merchant, None, "c").into_string();
        assert!(page.contains(r#"<html lang="zh-CN">"#), "{page}");
        assert!(page.contains(r#"name="viewport""#));
        assert!(page.contains(r#"<label for="token">"#));
    }
}
