//! Resource limits under attack: too many lines, bodies over the limit (announced
//! or streamed), a body trickled slower than the request timeout, and a terminal
//! hammering the service past its rate limit.

use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::figures;
use crate::helpers::*;

#[tokio::test]
async fn too_many_lines_oversized_and_streamed_bodies_are_refused_and_keep_nothing() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;

    // 10,001 lines: one more than a close may hold.
    let mut body = batch_body(1, Utc::now() - chrono::Duration::minutes(5));
    let line = body["transactions"][0].clone();
    let lines: Vec<Value> = (0..10_001)
        .map(|i| {
            let mut l = line.clone();
            l["stan"] = json!(format!("{:06}", i % 1_000_000));
            l
        })
        .collect();
    body["transactions"] = json!(lines);
    let r = app.close("t1", "m1", "many", &body).await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

    // Over the default 8 MiB limit, announced by Content-Length.
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(9 * 1024 * 1024));
    let started = Instant::now();
    let r = app.close_text("t1", "m1", "huge", huge.clone()).await;
    assert_problem(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    let announced = started.elapsed();

    // The same, streamed in chunks without a length.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = huge
        .into_bytes()
        .chunks(64 * 1024)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let r = app
        .client
        .post(app.url("/v1/terminals/t1/batches"))
        .bearer_auth(terminal_token("t1", "m1"))
        .header("Idempotency-Key", "streamed")
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await;
    // The service answers 413 as soon as the limit is passed; the client may still
    // be writing and see the connection closed instead.
    if let Ok(r) = r {
        assert_problem(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    }
    for table in [
        "batches",
        "batch_lines",
        "idempotency_keys",
        "close_attempts",
    ] {
        assert_eq!(app.count(table).await, 0, "{table} holds nothing");
    }
    figures(
        "limits-bodies",
        &[
            ("lines_refused_at", "10001".into()),
            (
                "oversized_body_answered_ms",
                announced.as_millis().to_string(),
            ),
        ],
    );
}

#[tokio::test]
async fn a_body_trickled_slower_than_the_timeout_is_cut() {
    let app = spawn_app_with(&[("REQUEST_TIMEOUT_MS", "1000")]).await;
    app.merchant_with_terminal("m1", "t1").await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/terminals/t1/batches HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Idempotency-Key: slow\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
        terminal_token("t1", "m1")
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    // One byte every 100 ms: the whole body would take 100 s.
    let writer = tokio::spawn(async move {
        let (mut read, mut write) = stream.into_split();
        let trickle = async {
            for _ in 0..1000 {
                if write.write_all(b" ").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let mut answer = Vec::new();
        tokio::select! {
            _ = trickle => {}
            _ = read.read_to_end(&mut answer) => {}
        }
        String::from_utf8_lossy(&answer).into_owned()
    });
    let answer = tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .expect("the service cuts the request")
        .unwrap();
    let cut_after = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    assert!(
        cut_after < Duration::from_secs(3),
        "cut after {cut_after:?}"
    );
    assert_eq!(app.count("idempotency_keys").await, 0);
    figures(
        "limits-slow-body",
        &[
            ("request_timeout_ms", "1000".into()),
            ("cut_after_ms", cut_after.as_millis().to_string()),
        ],
    );
}

#[tokio::test]
async fn a_terminal_hammering_the_service_gets_its_burst_and_then_429s() {
    let app = spawn_app_with(&[("RATE_LIMIT_TERMINAL_PER_MINUTE", "20")]).await;
    app.merchant_with_terminal("m1", "t1").await;
    let token = terminal_token("t1", "m1");
    let answers = join_all((1..=60).map(|n| {
        let (app, token) = (&app, token.clone());
        async move {
            let r = app
                .get(&format!("/v1/terminals/t1/batches/{n}"), &token)
                .await;
            let retry_after = r.headers().get("retry-after").cloned();
            (r.status(), retry_after)
        }
    }))
    .await;
    let served = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::NOT_FOUND)
        .count();
    let limited: Vec<_> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!(
        (20..=21).contains(&served),
        "the burst of 20 is served: {served}"
    );
    assert_eq!(served + limited.len(), 60, "{answers:?}");
    assert!(
        limited.iter().all(|(_, h)| h.is_some()),
        "every 429 says when"
    );
    figures(
        "limits-rate",
        &[
            ("requests", "60".into()),
            ("served", served.to_string()),
            ("refused_429", limited.len().to_string()),
        ],
    );
}
