//! The web pages in a real browser: Debian's Chromium, headless, driven through
//! WebDriver (chromedriver, started here on a free port). A merchant signs in, reads
//! where the money is in English and in Chinese, downloads a statement and asks for
//! a review of a held batch; an operator declines it with a reason; the merchant
//! reads the reason. Every page is photographed at a desktop's and a phone's width
//! into `target/screenshots/` (or `$CARGO_TARGET_DIR/screenshots/`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, Utc};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Map, Value};

use crate::helpers::*;
use crate::web::merchant_with_held_batch;

const INSTALL: &str = "apt-get update && apt-get install -y chromium chromium-driver";
/// Widths the pages are photographed at: a desktop and a phone (iPhone 12 to 15).
const DESKTOP: (u32, u32) = (1280, 900);
const PHONE: (u32, u32) = (390, 844);

/// A program on PATH or at one of Debian's places.
fn program(name: &str, places: &[&str]) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .chain(places.iter().map(PathBuf::from))
        .find(|p| p.is_file())
}

/// chromedriver, killed when the test ends however it ends.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn start_driver() -> (Driver, PathBuf) {
    let chromium = program(
        "chromium",
        &["/usr/bin/chromium", "/usr/lib/chromium/chromium"],
    )
    .unwrap_or_else(|| panic!("the browser tests need Chromium; install it with: {INSTALL}"));
    let chromedriver = program("chromedriver", &["/usr/bin/chromedriver"]).unwrap_or_else(|| {
        panic!("the browser tests need chromedriver; install it with: {INSTALL}")
    });
    let port = free_port();
    let child = Command::new(&chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("chromedriver did not start ({e}); install it with: {INSTALL}"));
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < StdDuration::from_secs(20),
            "chromedriver did not listen within 20 s"
        );
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    (driver, chromium)
}

async fn browser(driver: &Driver, chromium: &Path, downloads: &Path) -> Client {
    let mut caps = Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium.to_string_lossy(),
            "args": [
                "--headless=new",
                // Containers run the tests as root, where Chromium's sandbox cannot start.
                "--no-sandbox",
                "--disable-dev-shm-usage",
                "--disable-gpu",
                "--hide-scrollbars",
                "--lang=en-US",
                format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
            ],
            "prefs": {
                "download.default_directory": downloads.to_string_lossy(),
                "download.prompt_for_download": false,
                "intl.accept_languages": "en-US,en",
            },
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| {
            panic!("no browser session from chromedriver ({e}); install: {INSTALL}")
        })
}

/// Where screenshots go: under the cargo target folder.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

/// Photographs the page at both widths (the whole page's height, so a phone's long
/// page shows whole), then returns to the desktop's.
async fn photograph(c: &Client, name: &str) {
    let dir = screenshot_dir();
    for (label, (width, height)) in [("desktop", DESKTOP), ("phone", PHONE)] {
        c.set_window_size(width, height).await.expect("window size");
        let full: Value = c
            .execute("return document.documentElement.scrollHeight", vec![])
            .await
            .expect("page height");
        let full = u32::try_from(full.as_u64().unwrap_or(u64::from(height)))
            .unwrap_or(height)
            .clamp(height, 6000);
        c.set_window_size(width, full).await.expect("window size");
        let png = c.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(dir.join(format!("{name}-{label}.png")), png).expect("screenshot written");
    }
    c.set_window_size(DESKTOP.0, DESKTOP.1)
        .await
        .expect("window size");
}

async fn heading(c: &Client) -> String {
    c.find(Locator::Css("h1"))
        .await
        .expect("a heading")
        .text()
        .await
        .expect("its text")
}

async fn html_lang(c: &Client) -> String {
    c.find(Locator::Css("html"))
        .await
        .expect("html")
        .attr("lang")
        .await
        .expect("lang")
        .unwrap_or_default()
}

/// Signs in on an area's sign-in page by pasting the token, as a person would.
async fn sign_in(c: &Client, app: &TestApp, area: &str, token: &str) {
    c.goto(&app.url(&format!("/{area}/sign-in")))
        .await
        .expect("sign-in page");
    c.find(Locator::Css("#token"))
        .await
        .expect("token field")
        .send_keys(token)
        .await
        .expect("typed");
    click_and_wait(c, "main form button[type=submit]").await;
}

/// Clicks what submits a form or follows a link, and waits for the next page to
/// have loaded (a click returns before the browser has navigated).
async fn click_and_wait(c: &Client, css: &str) {
    c.execute("window.__previous_page = true;", vec![])
        .await
        .expect("page marked");
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .expect("clicked");
    let started = Instant::now();
    loop {
        let loaded = c
            .execute(
                "return window.__previous_page === undefined && document.readyState === 'complete';",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        if loaded {
            return;
        }
        assert!(
            started.elapsed() < StdDuration::from_secs(20),
            "no page after clicking {css}"
        );
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
}

async fn wait_for_file(dir: &Path, suffix: &str) -> String {
    let started = Instant::now();
    loop {
        if let Some(path) = std::fs::read_dir(dir)
            .expect("downloads")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(suffix))
        {
            return std::fs::read_to_string(path).expect("the statement");
        }
        assert!(
            started.elapsed() < StdDuration::from_secs(20),
            "no {suffix} file downloaded within 20 s"
        );
        tokio::time::sleep(StdDuration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_merchant_and_an_operator_work_a_held_batch_in_a_real_browser() {
    let (driver, chromium) = start_driver().await;
    // Plain http on loopback, as `settlementd dev` serves: the cookies go without Secure.
    let app = spawn_app_with(&[("WEB_COOKIE_SECURE", "false")]).await;
    let held = merchant_with_held_batch(&app, "m1", "t1").await;
    // A batch on time, so money is pending in a cycle.
    let r = app
        .close(
            "t1",
            "m1",
            "on-time",
            &batch_body(4, Utc::now() - Duration::minutes(30)),
        )
        .await;
    assert!(
        r.status().is_success(),
        "{}",
        r.text().await.unwrap_or_default()
    );
    let downloads = tempdir("downloads");
    let c = browser(&driver, &chromium, &downloads).await;

    // A page behind sign-in sends the browser to sign in.
    c.goto(&app.url("/merchant/batches")).await.unwrap();
    assert!(c
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/merchant/sign-in"));
    photograph(&c, "merchant-sign-in").await;

    sign_in(&c, &app, "merchant", &merchant_token("m1")).await;
    assert_eq!(
        c.current_url().await.unwrap().path(),
        "/merchant/",
        "{}",
        c.source().await.unwrap()
    );
    assert_eq!(heading(&c).await, "Where is my money");
    assert_eq!(html_lang(&c).await, "en");
    let page = c.source().await.unwrap();
    assert!(page.contains("Pending, by settlement cycle"));
    assert!(page.contains("What needs attention"));
    photograph(&c, "merchant-money-en").await;

    // The language switch, then back.
    click_and_wait(&c, "a[hreflang=zh-CN]").await;
    assert_eq!(heading(&c).await, "我的钱在哪里");
    assert_eq!(html_lang(&c).await, "zh-CN");
    assert!(c.source().await.unwrap().contains("待结算（按结算周期）"));
    photograph(&c, "merchant-money-zh-CN").await;
    click_and_wait(&c, "a[hreflang=en]").await;
    assert_eq!(heading(&c).await, "Where is my money");

    // The batches list with a filter, and a held batch's page.
    c.goto(&app.url("/merchant/batches?status=rejected_outside_grace"))
        .await
        .unwrap();
    assert!(c.source().await.unwrap().contains(&held));
    photograph(&c, "merchant-batches").await;
    c.goto(&app.url("/merchant/terminals/t1/unsettled"))
        .await
        .unwrap();
    photograph(&c, "merchant-unsettled").await;
    c.goto(&app.url("/merchant/payouts")).await.unwrap();
    photograph(&c, "merchant-payouts").await;
    c.goto(&app.url("/merchant/webhooks")).await.unwrap();
    photograph(&c, "merchant-webhooks").await;

    // A statement, downloaded as a file.
    c.goto(&app.url("/merchant/statement")).await.unwrap();
    photograph(&c, "merchant-statement").await;
    // A download leaves the page where it is: a plain click.
    c.find(Locator::Css("main form button[type=submit]"))
        .await
        .expect("download button")
        .click()
        .await
        .expect("clicked");
    let csv = wait_for_file(&downloads, ".csv").await;
    assert!(csv.starts_with("kind,date,"), "{csv}");
    assert!(csv.contains("held_batch"), "{csv}");

    // A review of the held batch.
    c.goto(&app.url(&format!("/merchant/batches/{held}")))
        .await
        .unwrap();
    photograph(&c, "merchant-batch-held").await;
    c.find(Locator::Css("#note"))
        .await
        .unwrap()
        .send_keys("The terminal was offline for five days; these are real sales.")
        .await
        .unwrap();
    click_and_wait(&c, "form[action$=review-requests] button").await;
    let page = c.source().await.unwrap();
    assert!(page.contains("Waiting for operations"), "{page}");
    c.goto(&app.url("/merchant/reviews")).await.unwrap();
    photograph(&c, "merchant-reviews").await;

    // The operator declines it with a reason.
    sign_in(&c, &app, "ops", &ops_token()).await;
    assert_eq!(c.current_url().await.unwrap().path(), "/ops/");
    let queue = c.source().await.unwrap();
    assert!(
        queue.contains("The terminal was offline for five days"),
        "{queue}"
    );
    photograph(&c, "ops-exceptions").await;
    let reason = "Closed five days after the cutoff; present these sales in a new batch.";
    c.find(Locator::Css(&format!(
        "form[action='/ops/batches/{held}/decline'] textarea"
    )))
    .await
    .unwrap()
    .send_keys(reason)
    .await
    .unwrap();
    click_and_wait(
        &c,
        &format!("form[action='/ops/batches/{held}/decline'] button.secondary"),
    )
    .await;
    assert_eq!(c.current_url().await.unwrap().path(), "/ops/");
    assert!(!c
        .source()
        .await
        .unwrap()
        .contains(&format!("/ops/batches/{held}/decline")));
    c.goto(&app.url("/ops/payout-holds")).await.unwrap();
    photograph(&c, "ops-payout-holds").await;

    // The merchant reads the decision and its reason.
    c.goto(&app.url(&format!("/merchant/batches/{held}")))
        .await
        .unwrap();
    let page = c.source().await.unwrap();
    assert!(page.contains(reason), "{page}");
    assert!(page.contains("Declined"));
    photograph(&c, "merchant-batch-declined").await;

    // Signing out ends the session.
    click_and_wait(&c, "header form button").await;
    assert!(c
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/merchant/sign-in"));
    c.goto(&app.url("/merchant/")).await.unwrap();
    assert!(c
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/merchant/sign-in"));

    c.close().await.expect("browser closed");
    let _ = std::fs::remove_dir_all(&downloads);
}

/// A fresh folder under the system's temp folder.
fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("settlement-browser-{name}-{}", uuid_like()));
    std::fs::create_dir_all(&dir).expect("temp folder");
    dir
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    )
}
