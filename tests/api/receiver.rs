//! A real HTTP receiver for webhooks: a small server on port 0 that records what it
//! is sent and answers as the test scripts it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub raw: Bytes,
    pub body: Value,
}

/// How the receiver answers the next request.
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    /// Wait this long before answering 200 (longer than the sender's timeout).
    Hang(Duration),
}

#[derive(Default)]
struct Inner {
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Reply>>,
}

/// The running receiver.
pub struct Receiver {
    pub url: String,
    inner: Arc<Inner>,
}

async fn hook(State(inner): State<Arc<Inner>>, headers: HeaderMap, raw: Bytes) -> StatusCode {
    let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    inner
        .received
        .lock()
        .unwrap()
        .push(Received { headers, raw, body });
    let reply = inner
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Reply::Status(200));
    match reply {
        Reply::Status(code) => StatusCode::from_u16(code).unwrap(),
        Reply::Hang(d) => {
            tokio::time::sleep(d).await;
            StatusCode::OK
        }
    }
}

impl Receiver {
    /// Starts a receiver on a free loopback port.
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let app = Router::new()
            .route("/hook", post(hook))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, inner }
    }

    /// Queues the answers to the next requests; after them it answers 200.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.script.lock().unwrap().extend(replies);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().unwrap().clone()
    }

    /// Requests for events of `event_type`.
    pub fn of_type(&self, event_type: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.body["type"] == event_type)
            .collect()
    }

    /// Waits (at most `within`) until `count` requests for `event_type` arrived.
    pub async fn wait_for(
        &self,
        event_type: &str,
        count: usize,
        within: Duration,
    ) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let got = self.of_type(event_type);
            if got.len() >= count || tokio::time::Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// True when `header` (`t=...,v1=...[,v1=...]`) carries a valid signature of `body`
/// made with `secret`: the receiver-side check the README describes.
pub fn signed_with(header: &str, body: &[u8], secret: &str) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", t)) => timestamp = Some(t.to_owned()),
            Some(("v1", s)) => signatures.push(s.to_owned()),
            _ => {}
        }
    }
    let Some(t) = timestamp else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    signatures.contains(&expected)
}
