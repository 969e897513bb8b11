//! The web pages over plain HTTP: sign-in and its cookie, sessions that expire or
//! are revoked, CSRF tokens on every form, and one merchant never seeing another's.

use chrono::{Duration, Utc};
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{redirect, Client, StatusCode};
use serde_json::Value;

use settlement_api::auth::{sign_hs256, Claims, Principal};

use crate::helpers::*;

/// A browser-like client that follows no redirect, so each answer can be read.
pub fn page_client() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .expect("client")
}

/// A signed-in session: its cookie pair and its CSRF token.
pub struct WebSession {
    pub cookie: String,
    pub set_cookie: String,
    pub csrf: String,
}

/// The CSRF token of the first form of a page.
pub fn csrf_of(html: &str) -> String {
    let at = html
        .find(r#"name="csrf" value=""#)
        .expect("a form with a CSRF token");
    let rest = &html[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').expect("end of the token")].to_owned()
}

/// The sign-in form of `area`: its challenge cookie pair and the form's value.
pub async fn sign_in_form(app: &TestApp, area: &str) -> (String, String) {
    let r = page_client()
        .get(app.url(&format!("/{area}/sign-in")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let set_cookie = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"));
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let html = r.text().await.unwrap();
    (cookie, csrf_of(&html))
}

/// Posts the sign-in form of `area` with `token`, as a browser that loaded it.
pub async fn post_sign_in(app: &TestApp, area: &str, token: &str) -> reqwest::Response {
    let (cookie, challenge) = sign_in_form(app, area).await;
    page_client()
        .post(app.url(&format!("/{area}/sign-in")))
        .header(COOKIE, cookie)
        .form(&[("token", token), ("csrf", challenge.as_str())])
        .send()
        .await
        .unwrap()
}

/// Signs in to `/merchant/` or `/ops/` (`area`) with `token`.
pub async fn sign_in(app: &TestApp, area: &str, token: &str) -> WebSession {
    let client = page_client();
    let r = post_sign_in(app, area, token).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "sign-in answers a redirect"
    );
    assert_eq!(r.headers()[LOCATION], format!("/{area}/"));
    let set_cookie = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let page = client
        .get(app.url(&format!("/{area}/")))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    WebSession {
        csrf: csrf_of(&html),
        cookie,
        set_cookie,
    }
}

impl WebSession {
    pub async fn get(&self, app: &TestApp, path: &str) -> reqwest::Response {
        page_client()
            .get(app.url(path))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .unwrap()
    }

    pub async fn post(
        &self,
        app: &TestApp,
        path: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        page_client()
            .post(app.url(path))
            .header(COOKIE, &self.cookie)
            .form(form)
            .send()
            .await
            .unwrap()
    }
}

/// A merchant with a terminal and a batch held after its grace deadline; the held
/// batch's id.
pub async fn merchant_with_held_batch(
    app: &TestApp,
    merchant_id: &str,
    terminal_id: &str,
) -> String {
    app.merchant_with_terminal(merchant_id, terminal_id).await;
    let r = app
        .close(
            terminal_id,
            merchant_id,
            &format!("{merchant_id}-held"),
            &batch_body(3, Utc::now() - Duration::days(5)),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = r.json().await.unwrap();
    problem["batch_id"]
        .as_str()
        .expect("held batch id")
        .to_owned()
}

async fn review_requests(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM review_requests")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_merchant_token_buys_a_strict_http_only_secure_cookie_scoped_to_the_pages() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let s = sign_in(&app, "merchant", &merchant_token("m1")).await;
    let flags: Vec<&str> = s.set_cookie.split(';').map(str::trim).collect();
    assert!(flags[0].starts_with("settlement_merchant_session="));
    for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/merchant/"] {
        assert!(flags.contains(&flag), "{flag} in {}", s.set_cookie);
    }
    // Only a hash of the id is stored.
    let id = flags[0].split_once('=').unwrap().1;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM web_sessions WHERE encode(id_sha256, 'hex') = $1 OR encode(id_sha256, 'escape') = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 0, "the session id itself is never stored");
    let r = s.get(&app, "/merchant/").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(r.headers()["content-language"], "en");
    let html = r.text().await.unwrap();
    assert!(html.contains("<h1>Where is my money</h1>"), "{html}");
    assert!(html.contains(r#"<html lang="en">"#));
}

#[tokio::test]
async fn in_dev_mode_the_cookie_goes_without_secure() {
    let app = spawn_app_with(&[("WEB_COOKIE_SECURE", "false")]).await;
    app.merchant_with_terminal("m1", "t1").await;
    let s = sign_in(&app, "merchant", &merchant_token("m1")).await;
    assert!(!s.set_cookie.contains("Secure"), "{}", s.set_cookie);
}

#[tokio::test]
async fn the_page_speaks_the_chosen_language_then_the_browsers() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let s = sign_in(&app, "merchant", &merchant_token("m1")).await;
    let r = page_client()
        .get(app.url("/merchant/"))
        .header(COOKIE, &s.cookie)
        .header("accept-language", "zh-CN,zh;q=0.9,en;q=0.5")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-language"], "zh-CN");
    assert!(r.text().await.unwrap().contains("<h1>我的钱在哪里</h1>"));
    // The switch remembers a choice over the browser's.
    let r = page_client()
        .get(app.url("/merchant/language?lang=en&back=/merchant/batches"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/merchant/batches");
    let lang = r.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(lang, "lang=en");
    let r = page_client()
        .get(app.url("/merchant/"))
        .header(COOKIE, format!("{}; {lang}", s.cookie))
        .header("accept-language", "zh-CN")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-language"], "en");
    // The switch never sends the browser to another site.
    let r = page_client()
        .get(app.url("/merchant/language?lang=zh-CN&back=//evil.example/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[LOCATION], "/merchant/");
}

#[tokio::test]
async fn another_merchants_data_never_shows() {
    let app = spawn_app().await;
    let own = merchant_with_held_batch(&app, "m1", "t1").await;
    let theirs = merchant_with_held_batch(&app, "m2", "t2").await;
    let s = sign_in(&app, "merchant", &merchant_token("m1")).await;

    let list = s.get(&app, "/merchant/batches").await.text().await.unwrap();
    assert!(list.contains(&own));
    assert!(!list.contains(&theirs), "m2's batch on m1's list");
    let money = s.get(&app, "/merchant/").await.text().await.unwrap();
    assert!(!money.contains("t2") && !money.contains(&theirs));

    let r = s.get(&app, &format!("/merchant/batches/{theirs}")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(!r.text().await.unwrap().contains("t2"));
    let r = s.get(&app, "/merchant/terminals/t2/unsettled").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = s
        .post(
            &app,
            &format!("/merchant/batches/{theirs}/review-requests"),
            &[("csrf", &s.csrf), ("note", "pay me theirs")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(review_requests(&app).await, 0);
    // A merchant id in the query is not a filter the pages take.
    let r = s.get(&app, "/merchant/batches?merchant_id=m2").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_form_without_its_csrf_token_or_with_another_is_refused() {
    let app = spawn_app().await;
    let held = merchant_with_held_batch(&app, "m1", "t1").await;
    let s = sign_in(&app, "merchant", &merchant_token("m1")).await;
    let other = sign_in(&app, "merchant", &merchant_token("m1")).await;
    assert_ne!(s.csrf, other.csrf, "each session has its own token");
    let path = format!("/merchant/batches/{held}/review-requests");
    for form in [
        vec![("note", "please")],
        vec![("csrf", ""), ("note", "please")],
        vec![("csrf", other.csrf.as_str()), ("note", "please")],
        vec![("csrf", &s.csrf[..63]), ("note", "please")],
    ] {
        let r = s.post(&app, &path, &form).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{form:?}");
        assert!(r.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
    }
    assert_eq!(review_requests(&app).await, 0);
    // Sign-out is a form too.
    let r = s
        .post(&app, "/merchant/sign-out", &[("csrf", "nope")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(s.get(&app, "/merchant/").await.status(), StatusCode::OK);
    // With its token, the form does what it says.
    let r = s
        .post(&app, &path, &[("csrf", &s.csrf), ("note", "please")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(review_requests(&app).await, 1);
}

#[tokio::test]
async fn a_missing_bad_expired_or_revoked_session_goes_to_sign_in() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let to_sign_in = |r: reqwest::Response, area: &str| {
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()[LOCATION], format!("/{area}/sign-in"));
    };
    to_sign_in(
        page_client()
            .get(app.url("/merchant/"))
            .send()
            .await
            .unwrap(),
        "merchant",
    );
    to_sign_in(
        page_client().get(app.url("/ops/")).send().await.unwrap(),
        "ops",
    );
    let forged = format!("settlement_merchant_session={}", "a".repeat(64));
    to_sign_in(
        page_client()
            .get(app.url("/merchant/batches"))
            .header(COOKIE, forged)
            .send()
            .await
            .unwrap(),
        "merchant",
    );

    // A merchant's session opens no operations page, even under the ops name.
    let s = sign_in(&app, "merchant", &merchant_token("m1")).await;
    let id = s.cookie.split_once('=').unwrap().1;
    to_sign_in(
        page_client()
            .get(app.url("/ops/"))
            .header(COOKIE, format!("settlement_ops_session={id}"))
            .send()
            .await
            .unwrap(),
        "ops",
    );

    // Expired.
    let expiring = sign_in(&app, "merchant", &merchant_token("m1")).await;
    sqlx::query("UPDATE web_sessions SET created_at = now() - interval '9 hours', expires_at = now() - interval '1 hour' WHERE role = 'merchant'")
        .execute(&app.db)
        .await
        .unwrap();
    to_sign_in(expiring.get(&app, "/merchant/").await, "merchant");
    to_sign_in(s.get(&app, "/merchant/").await, "merchant");

    // Revoked by signing out; the cookie is cleared too.
    let s = sign_in(&app, "merchant", &merchant_token("m1")).await;
    let r = s
        .post(&app, "/merchant/sign-out", &[("csrf", &s.csrf)])
        .await;
    to_sign_in(
        page_client()
            .get(app.url("/merchant/"))
            .header(COOKIE, &s.cookie)
            .send()
            .await
            .unwrap(),
        "merchant",
    );
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let revoked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM web_sessions WHERE revoked_at IS NOT NULL")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(revoked, 1);
}

#[tokio::test]
async fn sign_in_refuses_bad_tokens_and_tokens_of_other_roles() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let expired = sign_hs256(
        &Claims {
            exp: u64::try_from((Utc::now() - Duration::hours(1)).timestamp()).unwrap(),
            ..Claims::for_principal(
                &Principal::Merchant {
                    merchant_id: "m1".into(),
                },
                ISSUER,
                AUDIENCE,
                60,
            )
        },
        SECRET.as_bytes(),
    )
    .unwrap();
    for (area, token) in [
        ("merchant", "not-a-token".to_owned()),
        ("merchant", expired),
        ("merchant", terminal_token("t1", "m1")),
        ("merchant", ops_token()),
        ("merchant", merchant_token("nobody")),
        ("ops", merchant_token("m1")),
        ("ops", host_token()),
    ] {
        let r = post_sign_in(&app, area, &token).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{area} {token}");
        // Only a fresh sign-in challenge, never a session cookie.
        for c in r.headers().get_all(SET_COOKIE) {
            assert!(
                c.to_str().unwrap().starts_with("settlement_sign_in="),
                "{c:?}"
            );
        }
        assert!(r.text().await.unwrap().contains(r#"role="alert""#));
    }
    assert_eq!(app.count("web_sessions").await, 0);
}

#[tokio::test]
async fn a_session_never_outlives_its_token() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let short = sign_hs256(
        &Claims::for_principal(
            &Principal::Merchant {
                merchant_id: "m1".into(),
            },
            ISSUER,
            AUDIENCE,
            120,
        ),
        SECRET.as_bytes(),
    )
    .unwrap();
    let s = sign_in(&app, "merchant", &short).await;
    let max_age: i64 = s
        .set_cookie
        .split(';')
        .find_map(|f| f.trim().strip_prefix("Max-Age="))
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=120).contains(&max_age), "{max_age}");
    let left: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM expires_at - now())::float8 FROM web_sessions",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(left <= 121.0, "{left}");
    // An ordinary token gives a working day, no more.
    sign_in(&app, "merchant", &merchant_token("m1")).await;
    let longest: f64 = sqlx::query_scalar(
        "SELECT max(extract(epoch FROM expires_at - created_at))::float8 FROM web_sessions",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(longest <= 3600.0, "the test tokens last an hour: {longest}");
}

#[tokio::test]
async fn operations_decline_a_held_batch_and_the_merchant_reads_the_reason() {
    let app = spawn_app().await;
    let held = merchant_with_held_batch(&app, "m1", "t1").await;
    let merchant = sign_in(&app, "merchant", &merchant_token("m1")).await;
    let r = merchant
        .post(
            &app,
            &format!("/merchant/batches/{held}/review-requests"),
            &[
                ("csrf", &merchant.csrf),
                ("note", "The terminal was offline all week."),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    let ops = sign_in(&app, "ops", &ops_token()).await;
    let queue = ops
        .get(&app, "/ops/?kind=review_request")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        queue.contains("The terminal was offline all week."),
        "{queue}"
    );
    // A decision needs a reason.
    let r = ops
        .post(
            &app,
            &format!("/ops/batches/{held}/decline"),
            &[("csrf", &ops.csrf), ("reason", " ")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = ops
        .post(
            &app,
            &format!("/ops/batches/{held}/decline"),
            &[
                ("csrf", &ops.csrf),
                ("reason", "Closed nine days late; present the sales again."),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // The operator of the session is the one on record.
    let decided_by: String = sqlx::query_scalar(
        "SELECT actor FROM audit_records WHERE reason LIKE 'Closed nine days late%'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(decided_by, "ops:alice");

    let page = merchant
        .get(&app, &format!("/merchant/batches/{held}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Closed nine days late; present the sales again."),
        "{page}"
    );
    let reviews = merchant
        .get(&app, "/merchant/reviews")
        .await
        .text()
        .await
        .unwrap();
    assert!(reviews.contains("Closed nine days late; present the sales again."));
}

#[tokio::test]
async fn the_statement_downloads_as_a_file_of_the_merchants_own() {
    let app = spawn_app().await;
    merchant_with_held_batch(&app, "m1", "t1").await;
    merchant_with_held_batch(&app, "m2", "t2").await;
    let s = sign_in(&app, "merchant", &merchant_token("m1")).await;
    let from = (Utc::now() - Duration::days(30)).date_naive();
    let to = Utc::now().date_naive();
    let r = s
        .get(
            &app,
            &format!("/merchant/statement/download?from={from}&to={to}&format=csv"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment;"));
    let csv = r.text().await.unwrap();
    assert!(csv.starts_with("kind,date,"), "{csv}");
    assert!(csv.contains("held_batch"), "{csv}");
    assert!(csv.contains(",t1,") && !csv.contains(",t2,"), "{csv}");
}

#[tokio::test]
async fn a_sign_in_posted_from_another_site_is_refused() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let token = merchant_token("m1");
    let (cookie, challenge) = sign_in_form(&app, "merchant").await;
    // No challenge cookie (another site's form), a forged value, or none at all.
    for (cookie, sent) in [
        (None, challenge.as_str()),
        (Some(cookie.as_str()), "0000"),
        (Some(cookie.as_str()), ""),
    ] {
        let mut req = page_client()
            .post(app.url("/merchant/sign-in"))
            .form(&[("token", token.as_str()), ("csrf", sent)]);
        if let Some(c) = cookie {
            req = req.header(COOKIE, c);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(r.text().await.unwrap().contains(r#"role="alert""#));
    }
    assert_eq!(app.count("web_sessions").await, 0);
    // The form as loaded signs in.
    let r = post_sign_in(&app, "merchant", &token).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.count("web_sessions").await, 1);
}

#[tokio::test]
async fn a_card_number_in_a_form_is_refused_and_never_stored() {
    let app = spawn_app().await;
    let held = merchant_with_held_batch(&app, "m1", "t1").await;
    let s = sign_in(&app, "merchant", &merchant_token("m1")).await;
    for pan in [
        "4111111111111111",
        "4111 1111 1111 1111",
        "４１１１１１１１１１１１１１１１",
    ] {
        let r = s
            .post(
                &app,
                &format!("/merchant/batches/{held}/review-requests"),
                &[
                    ("csrf", &s.csrf),
                    ("note", &format!("card {pan} was charged")),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{pan}");
        let page = r.text().await.unwrap();
        assert!(!page.contains(pan), "the page does not repeat it");
        let r = s
            .post(
                &app,
                "/merchant/webhooks",
                &[
                    ("csrf", &s.csrf),
                    ("url", &format!("https://example.com/{pan}")),
                    ("event_types", "batch.accepted"),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{pan}");
    }
    assert_eq!(review_requests(&app).await, 0);
    assert_eq!(app.count("webhook_endpoints").await, 0);
}
