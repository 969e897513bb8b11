//! Card numbers everywhere: generated Luhn-valid numbers (13 to 19 digits, plain,
//! spaced, dashed, bare JSON numbers) and magnetic-stripe track data are put into
//! every string and number of every request body, every path parameter, the query
//! string and the Idempotency-Key of the real `settlementd` process. Every one must
//! be refused 422 `pan_not_allowed`; afterwards neither a dump of the database nor
//! the process's logs (at debug level) may hold any of them.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as ProptestConfig, TestRng, TestRunner};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use settlement_api::app::OPENAPI_YAML;

use crate::harness::*;
use crate::helpers::*;
use crate::receiver::Receiver;

/// A generated card number: how it is written, and its bare digits.
#[derive(Debug, Clone)]
struct Sample {
    text: String,
    digits: String,
    /// Only digits: it can also travel as a JSON number.
    numeric: bool,
}

fn luhn_check_digit(body: &[u8]) -> u8 {
    let mut sum = 0u32;
    for (i, d) in body.iter().rev().enumerate() {
        let mut v = u32::from(*d);
        if i % 2 == 0 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    u8::try_from((10 - sum % 10) % 10).unwrap()
}

fn samples() -> impl Strategy<Value = Sample> {
    let issuer = prop::sample::select(vec!["4", "51", "55", "34", "37", "6011", "35", "62"]);
    (
        issuer,
        13usize..=19,
        prop::collection::vec(0u8..10, 19),
        0u8..7,
        "[a-z ]{0,6}",
    )
        .prop_map(|(issuer, len, random, format, pad)| {
            let mut body: Vec<u8> = issuer.bytes().map(|b| b - b'0').collect();
            body.extend(random.iter().take(len - 1 - body.len()));
            body.push(luhn_check_digit(&body));
            let digits: String = body.iter().map(|d| char::from(b'0' + d)).collect();
            let grouped = |sep: &str| {
                digits
                    .as_bytes()
                    .chunks(4)
                    .map(|c| std::str::from_utf8(c).unwrap())
                    .collect::<Vec<_>>()
                    .join(sep)
            };
            let (text, numeric) = match format {
                0 => (digits.clone(), true),
                1 => (grouped(" "), false),
                2 => (grouped("-"), false),
                3 => (format!(";{digits}=29121011000012300000?"), false),
                4 => (format!("%B{digits}^DOE/JANE^2912101000000000000?"), false),
                5 => (format!("card{pad}{digits}{pad}thanks"), false),
                _ => (format!("paid with {} today", grouped(" ")), false),
            };
            Sample {
                text,
                digits,
                numeric,
            }
        })
}

/// Every leaf of a JSON document, as a path of keys and indexes.
fn leaves(value: &Value, at: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                at.push(json!(k));
                leaves(v, at, out);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                at.push(json!(i));
                leaves(v, at, out);
                at.pop();
            }
        }
        _ => out.push(at.clone()),
    }
}

fn replace(value: &mut Value, path: &[Value], with: Value) {
    let mut slot = value;
    for step in path {
        slot = match step {
            Value::String(k) => &mut slot[k.as_str()],
            Value::Number(i) => &mut slot[usize::try_from(i.as_u64().unwrap()).unwrap()],
            _ => unreachable!(),
        };
    }
    *slot = with;
}

/// One request the battery sends with a card number put in.
struct Template {
    method: Method,
    /// The path template of openapi.yaml it stands for.
    route: &'static str,
    path: String,
    token: String,
    body: Option<Value>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn card_numbers_in_any_field_are_refused_and_never_stored_or_logged() {
    let per_field = usize::try_from(scale("RELIABILITY_PAN_CASES", 4)).unwrap();
    let db_url = settlement_store::fresh_test_database().await.unwrap();
    let log = log_path("pan-everywhere");
    let service = Service::start(
        &db_url,
        &[
            ("RUST_LOG", "debug"),
            ("WEBHOOK_ALLOW_LOCAL_NETWORK", "true"),
        ],
        &log,
    )
    .await;
    let base = service.base.clone();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let fleet = provision(&base, "", 1, 1, &cutoff_far_from_now("UTC")).await;
    let (terminal, merchant) = fleet[0].clone();
    let terminal_token = terminal_token(&terminal, &merchant);
    let merchant_token = merchant_token(&merchant);
    let ops = ops_token();
    let host = host_token();
    let receiver = Receiver::start().await;
    let endpoint: Value = client
        .post(format!("{base}/v1/merchants/{merchant}/webhook-endpoints"))
        .bearer_auth(&merchant_token)
        .json(&json!({"url": receiver.url, "event_types": ["batch.accepted"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoint_id = endpoint["id"].as_str().unwrap().to_owned();
    let batch: Value = client
        .post(format!("{base}/v1/terminals/{terminal}/batches"))
        .bearer_auth(&terminal_token)
        .header("Idempotency-Key", "setup")
        .json(&batch_body(1, Utc::now() - chrono::Duration::minutes(5)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let batch_id = batch["id"].as_str().unwrap().to_owned();
    let event_id: String = sqlx::query_scalar("SELECT id::text FROM events LIMIT 1")
        .fetch_one(&assertion_pool(&db_url))
        .await
        .unwrap();
    let payout_id = uuid::Uuid::new_v4().to_string();
    let holiday = "2026-12-25";
    let reason = json!({"reason": "operations asked for it"});

    let t =
        |method: Method, route: &'static str, path: String, token: &str, body: Option<Value>| {
            Template {
                method,
                route,
                path,
                token: token.to_owned(),
                body,
            }
        };
    let templates = vec![
        t(
            Method::POST,
            "/v1/terminals/{terminal_id}/batches",
            format!("/v1/terminals/{terminal}/batches"),
            &terminal_token,
            Some(batch_body(2, Utc::now())),
        ),
        t(
            Method::POST,
            "/v1/merchants/{merchant_id}/webhook-endpoints",
            format!("/v1/merchants/{merchant}/webhook-endpoints"),
            &merchant_token,
            Some(json!({"url": receiver.url, "event_types": ["batch.accepted", "payout.paid"]})),
        ),
        t(
            Method::DELETE,
            "/v1/merchants/{merchant_id}/webhook-endpoints/{endpoint_id}",
            format!("/v1/merchants/{merchant}/webhook-endpoints/{endpoint_id}"),
            &merchant_token,
            None,
        ),
        t(
            Method::POST,
            "/v1/merchants/{merchant_id}/webhook-endpoints/{endpoint_id}/rotate-secret",
            format!("/v1/merchants/{merchant}/webhook-endpoints/{endpoint_id}/rotate-secret"),
            &merchant_token,
            Some(json!({"overlap_hours": 24})),
        ),
        t(
            Method::POST,
            "/v1/merchants/{merchant_id}/events/{event_id}/redeliver",
            format!("/v1/merchants/{merchant}/events/{event_id}/redeliver"),
            &merchant_token,
            None,
        ),
        t(
            Method::POST,
            "/v1/ops/merchants",
            "/v1/ops/merchants".into(),
            &ops,
            Some(json!({
                "merchant_id": "shop-2", "name": "Second Shop", "currency": "USD", "time_zone": "Europe/Berlin",
                "cutoff_local_time": "22:00", "grace_period_hours": 48, "payout_delay_business_days": 2,
                "pricing": {"mdr_basis_points": 180, "fixed_fee": "0.15"}, "bank_account": "DE89370400440532013000"
            })),
        ),
        t(
            Method::PATCH,
            "/v1/ops/merchants/{merchant_id}",
            format!("/v1/ops/merchants/{merchant}"),
            &ops,
            Some(json!({
                "name": "Renamed", "time_zone": "UTC", "cutoff_local_time": "21:00", "grace_period_hours": 24,
                "payout_delay_business_days": 1, "pricing": {"mdr_basis_points": 100, "fixed_fee": "0.05"},
                "bank_account": "DE89370400440532013000", "reason": "merchant asked"
            })),
        ),
        t(
            Method::POST,
            "/v1/ops/merchants/{merchant_id}/terminals",
            format!("/v1/ops/merchants/{merchant}/terminals"),
            &ops,
            Some(json!({"terminal_id": "till-9"})),
        ),
        t(
            Method::POST,
            "/v1/ops/batches/{batch_id}/accept",
            format!("/v1/ops/batches/{batch_id}/accept"),
            &ops,
            Some(reason.clone()),
        ),
        t(
            Method::POST,
            "/v1/ops/batches/{batch_id}/decline",
            format!("/v1/ops/batches/{batch_id}/decline"),
            &ops,
            Some(reason.clone()),
        ),
        t(
            Method::POST,
            "/v1/merchants/{merchant_id}/batches/{batch_id}/review-requests",
            format!("/v1/merchants/{merchant}/batches/{batch_id}/review-requests"),
            &merchant_token,
            Some(json!({"note": "please review this batch"})),
        ),
        t(
            Method::POST,
            "/v1/ops/settlement-runs",
            "/v1/ops/settlement-runs".into(),
            &ops,
            None,
        ),
        t(
            Method::POST,
            "/v1/ops/payouts/export",
            "/v1/ops/payouts/export".into(),
            &ops,
            None,
        ),
        t(
            Method::POST,
            "/v1/ops/payouts/confirmations",
            "/v1/ops/payouts/confirmations".into(),
            &ops,
            None,
        ),
        t(
            Method::POST,
            "/v1/ops/payouts/status-reports",
            "/v1/ops/payouts/status-reports".into(),
            &ops,
            None,
        ),
        t(
            Method::POST,
            "/v1/host/authorizations",
            "/v1/host/authorizations".into(),
            &host,
            Some(json!({"records": [{
                "type": "authorization", "terminal_id": terminal, "rrn": "HOSTPAN00001",
                "stan": "000001", "auth_code": "A1B2C3", "transaction_type": "sale",
                "amount": "12.34", "currency": "USD",
                "authorized_at": rfc3339(Utc::now() - chrono::Duration::minutes(5)),
                "card_brand": "visa", "masked_pan": "411111******1111"
            }]})),
        ),
        t(
            Method::POST,
            "/v1/ops/host/capture-files",
            "/v1/ops/host/capture-files".into(),
            &ops,
            None,
        ),
        t(
            Method::POST,
            "/v1/ops/payouts/{payout_id}/paid",
            format!("/v1/ops/payouts/{payout_id}/paid"),
            &ops,
            Some(reason.clone()),
        ),
        t(
            Method::POST,
            "/v1/ops/payouts/{payout_id}/failed",
            format!("/v1/ops/payouts/{payout_id}/failed"),
            &ops,
            Some(json!({"failure_code": "account_closed", "reason": "bank returned it"})),
        ),
        t(
            Method::POST,
            "/v1/ops/payouts/{payout_id}/cancel",
            format!("/v1/ops/payouts/{payout_id}/cancel"),
            &ops,
            Some(reason.clone()),
        ),
        t(
            Method::PUT,
            "/v1/ops/holidays/{date}",
            format!("/v1/ops/holidays/{holiday}"),
            &ops,
            Some(json!({"name": "Christmas Day", "reason": "bank holiday"})),
        ),
        t(
            Method::DELETE,
            "/v1/ops/holidays/{date}",
            format!("/v1/ops/holidays/{holiday}?reason=operations+asked"),
            &ops,
            None,
        ),
    ];
    // Every documented operation that changes something is covered here; reads are
    // covered through their path and query below.
    let documented = documented_operations(OPENAPI_YAML);
    let covered: BTreeSet<(String, String)> = templates
        .iter()
        .map(|t| (t.method.to_string(), t.route.to_owned()))
        .collect();
    for (method, route) in &documented {
        // The web pages' forms are checked the same way: tests/api/web.rs.
        let page = route.starts_with("/merchant/") || route.starts_with("/ops/");
        if method != "GET" && !page {
            assert!(
                covered.contains(&(method.clone(), route.clone())),
                "{method} {route} has no template"
            );
        }
    }

    let mut runner = TestRunner::new_with_rng(
        ProptestConfig::default(),
        TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let mut sent: Vec<Sample> = Vec::new();
    let mut next = |runner: &mut TestRunner| {
        let s = samples().new_tree(runner).unwrap().current();
        sent.push(s.clone());
        s
    };
    let mut requests = 0u64;
    let refuse = |r: reqwest::Response, what: String| async move {
        let status = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {text}");
        assert!(text.contains("pan_not_allowed"), "{what}: {text}");
    };

    // Bodies: every leaf, and an extra field, of every template.
    for template in &templates {
        let Some(body) = &template.body else { continue };
        let mut paths = Vec::new();
        leaves(body, &mut Vec::new(), &mut paths);
        paths.push(vec![json!("note")]);
        // The settlement bank account is the one field where a card-shaped number is
        // allowed (a debit card as settlement account): checked on its own below.
        paths.retain(|p| p.as_slice() != [json!("bank_account")]);
        for path in paths {
            for _ in 0..per_field {
                let sample = next(&mut runner);
                let mut changed = body.clone();
                let value = if sample.numeric && !path.last().is_some_and(|p| p == "note") {
                    json!(sample.digits.parse::<u64>().unwrap())
                } else {
                    json!(sample.text)
                };
                replace(&mut changed, &path, value);
                let r = client
                    .request(template.method.clone(), format!("{base}{}", template.path))
                    .bearer_auth(&template.token)
                    .header("Idempotency-Key", format!("pan-{requests}"))
                    .json(&changed)
                    .send()
                    .await
                    .unwrap();
                requests += 1;
                refuse(
                    r,
                    format!(
                        "{} {} at {path:?} = {}",
                        template.method, template.path, sample.text
                    ),
                )
                .await;
            }
        }
    }
    // Query parameters a template carries (an operator's reason, say).
    for template in &templates {
        let Some((path, query)) = template.path.split_once('?') else {
            continue;
        };
        let pairs: Vec<(&str, &str)> = query.split('&').filter_map(|p| p.split_once('=')).collect();
        for i in 0..pairs.len() {
            for _ in 0..per_field {
                let sample = next(&mut runner);
                let changed: Vec<String> = pairs
                    .iter()
                    .enumerate()
                    .map(|(j, (k, v))| {
                        if i == j {
                            format!("{k}={}", url_escape(&sample.text))
                        } else {
                            format!("{k}={v}")
                        }
                    })
                    .collect();
                let r = client
                    .request(
                        template.method.clone(),
                        format!("{base}{path}?{}", changed.join("&")),
                    )
                    .bearer_auth(&template.token)
                    .send()
                    .await
                    .unwrap();
                requests += 1;
                refuse(
                    r,
                    format!(
                        "{} {path} query {} = {}",
                        template.method, pairs[i].0, sample.text
                    ),
                )
                .await;
            }
        }
    }
    // A bank's status report may echo a card account (a debit card as settlement
    // account) and name it in its reason text: it is read, never kept or logged.
    for _ in 0..per_field {
        let sample = next(&mut runner);
        let report = format!(
            "<?xml version=\"1.0\"?><Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pain.002.001.12\">\
             <CstmrPmtStsRpt><GrpHdr><MsgId>R1</MsgId><CreDtTm>2026-12-04T10:00:00Z</CreDtTm></GrpHdr>\
             <OrgnlGrpInfAndSts><OrgnlMsgId>PNOFILE</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId></OrgnlGrpInfAndSts>\
             <OrgnlPmtInfAndSts><OrgnlPmtInfId>PNOFILE-1</OrgnlPmtInfId><TxInfAndSts>\
             <OrgnlEndToEndId>{}</OrgnlEndToEndId><TxSts>RJCT</TxSts>\
             <StsRsnInf><Rsn><Cd>AC01</Cd></Rsn><AddtlInf>card {} unknown</AddtlInf></StsRsnInf>\
             <OrgnlTxRef><CdtrAcct><Id><Othr><Id>{}</Id></Othr></Id></CdtrAcct></OrgnlTxRef>\
             </TxInfAndSts></OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>",
            payout_id.replace('-', ""),
            sample.text,
            sample.digits
        );
        let r = client
            .post(format!("{base}/v1/ops/payouts/status-reports"))
            .bearer_auth(&ops)
            .header("content-type", "application/xml")
            .body(report)
            .send()
            .await
            .unwrap();
        requests += 1;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let text = r.text().await.unwrap();
        assert!(!text.contains(&sample.digits), "{text}");
    }
    // The confirmations file: a card number in any column of a line.
    for column in 0..3 {
        for _ in 0..per_field {
            let sample = next(&mut runner);
            let mut fields = [
                payout_id.clone(),
                "failed".to_owned(),
                "account_closed".to_owned(),
            ];
            fields[column] = sample.text.clone();
            let r = client
                .post(format!("{base}/v1/ops/payouts/confirmations"))
                .bearer_auth(&ops)
                .header("content-type", "text/csv")
                .body(format!(
                    "payout_id,outcome,failure_code\n{}\n",
                    fields.join(",")
                ))
                .send()
                .await
                .unwrap();
            requests += 1;
            refuse(r, format!("confirmation column {column} = {}", sample.text)).await;
        }
    }
    // The host's capture file: a card number in any column of a line.
    let columns = [
        "type",
        "terminal_id",
        "rrn",
        "stan",
        "auth_code",
        "transaction_type",
        "amount",
        "currency",
        "authorized_at",
        "masked_pan",
    ];
    for column in 0..columns.len() {
        for _ in 0..per_field {
            let sample = next(&mut runner);
            let mut fields = [
                "authorization".to_owned(),
                terminal.clone(),
                "HOSTCSV00001".to_owned(),
                "000001".to_owned(),
                "A1B2C3".to_owned(),
                "sale".to_owned(),
                "12.34".to_owned(),
                "USD".to_owned(),
                rfc3339(Utc::now() - chrono::Duration::minutes(5)),
                "411111******1111".to_owned(),
            ];
            fields[column] = sample.text.clone();
            let r = client
                .post(format!("{base}/v1/ops/host/capture-files"))
                .bearer_auth(&ops)
                .header("content-type", "text/csv")
                .body(format!("{}\n{}\n", columns.join(","), fields.join(",")))
                .send()
                .await
                .unwrap();
            requests += 1;
            refuse(r, format!("capture file column {column} = {}", sample.text)).await;
        }
    }
    // Paths and query strings of every documented operation.
    for (method, route) in &documented {
        if ["/healthz", "/readyz", "/openapi.yaml"].contains(&route.as_str()) {
            continue;
        }
        let token = if route.starts_with("/v1/terminals") {
            &terminal_token
        } else if route.starts_with("/v1/merchants") {
            &merchant_token
        } else {
            &ops
        };
        let params: Vec<&str> = route.split('/').filter(|s| s.starts_with('{')).collect();
        for param in params.iter().map(Some).chain([None]) {
            for _ in 0..per_field {
                let sample = next(&mut runner);
                let encoded: String = url_escape(&sample.text);
                let mut path = route
                    .replace("{terminal_id}", &terminal)
                    .replace("{merchant_id}", &merchant);
                path = path
                    .replace("{batch_id}", &batch_id)
                    .replace("{event_id}", &event_id)
                    .replace("{endpoint_id}", &endpoint_id)
                    .replace("{payout_id}", &payout_id)
                    .replace("{settlement_id}", &payout_id)
                    .replace("{batch_number}", "1")
                    .replace("{date}", holiday);
                let query = match param {
                    Some(p) => {
                        let real = route.replace(p, "\u{0}");
                        let at = real.find('\u{0}').unwrap();
                        let prefix = &route[..at];
                        let filled_prefix = prefix
                            .replace("{terminal_id}", &terminal)
                            .replace("{merchant_id}", &merchant);
                        let rest = &path[filled_prefix.len()..];
                        let rest = rest
                            .split_once('/')
                            .map(|(_, r)| format!("/{r}"))
                            .unwrap_or_default();
                        path = format!("{filled_prefix}{encoded}{rest}");
                        String::new()
                    }
                    None => format!("?cursor={encoded}"),
                };
                let r = client
                    .request(method.parse().unwrap(), format!("{base}{path}{query}"))
                    .bearer_auth(token)
                    .header("Idempotency-Key", format!("pan-{requests}"))
                    .send()
                    .await
                    .unwrap();
                requests += 1;
                refuse(r, format!("{method} {path}{query}")).await;
            }
        }
    }
    // Idempotency keys; request ids are replaced rather than refused.
    for _ in 0..per_field {
        let sample = next(&mut runner);
        let r = client
            .post(format!("{base}/v1/terminals/{terminal}/batches"))
            .bearer_auth(&terminal_token)
            .header("Idempotency-Key", &sample.text)
            .header("x-request-id", &sample.text)
            .json(&batch_body(3, Utc::now()))
            .send()
            .await
            .unwrap();
        requests += 1;
        refuse(r, format!("Idempotency-Key {}", sample.text)).await;
        let r = client
            .get(format!("{base}/v1/merchants/{merchant}/status"))
            .bearer_auth(&merchant_token)
            .header("x-request-id", &sample.text)
            .send()
            .await
            .unwrap();
        requests += 1;
        assert_eq!(r.status(), StatusCode::OK);
        let echoed = r.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_ne!(
            echoed, sample.text,
            "a request id holding a card number is replaced"
        );
    }

    // A debit card as the settlement account is accepted, sealed, and shown masked;
    // like every card number above, it never reaches the database or the logs.
    let mut settlement_cards = Vec::new();
    for i in 0..per_field {
        let sample = next(&mut runner);
        let r = client
            .post(format!("{base}/v1/ops/merchants"))
            .bearer_auth(&ops)
            .json(&json!({
                "merchant_id": format!("card-settled-{i}"), "name": "Noodle Bar", "currency": "USD",
                "time_zone": "Asia/Shanghai", "cutoff_local_time": "23:00",
                "pricing": {"mdr_basis_points": 60, "fixed_fee": "0.00"},
                "bank_account": sample.digits,
            }))
            .send()
            .await
            .unwrap();
        requests += 1;
        let status = r.status();
        let shown: Value = r.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{shown}");
        let masked = shown["bank_account"].as_str().unwrap().to_owned();
        assert!(masked.ends_with(&sample.digits[sample.digits.len() - 4..]));
        assert!(!masked.contains(&sample.digits[..6]), "{masked}");
        settlement_cards.push(sample.digits);
    }

    // Nothing of it reached the database or the logs.
    let dump = tokio::process::Command::new(
        settlement_store::local_postgres::postgres_bin_dir()
            .unwrap()
            .join("pg_dump"),
    )
    .arg("--data-only")
    .arg(&db_url)
    .output()
    .await
    .unwrap();
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let dump = String::from_utf8(dump.stdout).unwrap();
    assert!(dump.contains(&batch_id), "the dump holds the data");
    drop(service);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.contains("/v1/"), "the logs were captured");
    let mut digits_checked = BTreeSet::new();
    for sample in &sent {
        for text in [&sample.text, &sample.digits] {
            assert!(!dump.contains(text.as_str()), "the database holds {text}");
            assert!(!logs.contains(text.as_str()), "the logs hold {text}");
        }
        digits_checked.insert(sample.digits.clone());
    }
    for card in &settlement_cards {
        assert!(!dump.contains(card.as_str()), "the database holds {card}");
        assert!(!logs.contains(card.as_str()), "the logs hold {card}");
    }
    figures(
        "pan-everywhere",
        &[
            ("requests_refused", requests.to_string()),
            ("distinct_card_numbers", digits_checked.len().to_string()),
            ("dump_bytes", dump.len().to_string()),
            ("log_bytes", logs.len().to_string()),
        ],
    );
}

/// Percent-encodes everything but unreserved characters.
fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
