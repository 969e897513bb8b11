//! Connections: a client that never finishes its request's head does not hold a
//! connection open.

use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Reads until the server closes the connection; `None` when it is still open after
/// `wait`. A reset counts as closed.
async fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
    let mut answer = Vec::new();
    match tokio::time::timeout(wait, stream.read_to_end(&mut answer)).await {
        Ok(_) => Some(answer),
        Err(_) => None,
    }
}

#[tokio::test]
async fn a_connection_whose_request_head_never_finishes_is_closed() {
    let app = spawn_app_with(&[("HTTP_HEADER_READ_TIMEOUT_SECONDS", "2")]).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    for partial in [
        "",
        "GET /healthz HT",
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ",
    ] {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        stream.write_all(partial.as_bytes()).await.unwrap();
        let answer = read_until_closed(&mut stream, Duration::from_secs(20)).await;
        let answer = answer.unwrap_or_else(|| panic!("{partial:?}: the connection stayed open"));
        // Closed without an answer: there was no request to answer.
        assert!(answer.is_empty(), "{partial:?}: {answer:?}");
    }

    // A head sent in pieces, all within the time, is answered.
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stream
        .write_all(b"Host: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(20))
        .await
        .expect("closed after the answer");
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // And other clients are served as usual.
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
