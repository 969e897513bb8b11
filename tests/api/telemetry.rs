//! Traces: the real `settlementd serve` process exports spans over OTLP/HTTP to a
//! receiver started here, continuing the caller's W3C trace.

use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// Collects every OTLP trace export it is sent: protobuf (the service's default),
/// decoded with OpenTelemetry's own message types, or JSON; kept in the JSON mapping
/// of OTLP either way.
async fn otlp_receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    async fn traces(
        State(seen): State<Arc<Mutex<Vec<Value>>>>,
        headers: axum::http::HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        let protobuf = headers
            .get("content-type")
            .is_some_and(|v| v.as_bytes() == b"application/x-protobuf");
        let decoded = if protobuf {
            ExportTraceServiceRequest::decode(body)
                .ok()
                .and_then(|r| serde_json::to_value(&r).ok())
        } else {
            serde_json::from_slice(&body).ok()
        };
        match decoded {
            Some(v) => {
                seen.lock().unwrap().push(v);
                StatusCode::OK
            }
            None => StatusCode::BAD_REQUEST,
        }
    }
    let app = Router::new()
        .route("/v1/traces", post(traces))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// Every span of every export, flattened.
fn spans(exports: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for export in exports {
        for rs in export["resourceSpans"].as_array().into_iter().flatten() {
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                out.extend(ss["spans"].as_array().into_iter().flatten().cloned());
            }
        }
    }
    out
}

/// A real `settlementd serve` exporting to `otlp` (OTLP/JSON), on a fresh database:
/// the process, its base URL and its stderr lines.
async fn traced_serve(
    otlp: &str,
    extra: &[(&str, &str)],
) -> (tokio::process::Child, String, Arc<Mutex<Vec<String>>>) {
    let db = settlement_store::fresh_test_database().await.unwrap();
    let port = settlement_store::local_postgres::free_port().unwrap();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_settlementd"));
    command
        .arg("serve")
        .env_clear()
        .env("DATABASE_URL", &db)
        .env("AUTH_HS256_SECRET", SECRET)
        .env("BANK_ACCOUNT_KEYS", BANK_ACCOUNT_KEYS)
        .env("SETTLEMENT_LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("METRICS_LISTEN_ADDR", "off")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_SERVICE_NAME", "settlementd-test");
    for (name, value) in extra {
        command.env(name, value);
    }
    let mut child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("settlementd runs");
    let logs: Arc<Mutex<Vec<String>>> = Arc::default();
    let stderr = child.stderr.take().unwrap();
    let sink = logs.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
        {
            up = true;
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    assert!(up, "settlementd became ready");
    (child, base, logs)
}

#[tokio::test]
async fn the_sampler_of_otel_traces_sampler_is_honoured() {
    let (otlp, seen) = otlp_receiver().await;
    let (mut child, base, _) = traced_serve(&otlp, &[("OTEL_TRACES_SAMPLER", "always_off")]).await;
    let client = reqwest::Client::new();
    for _ in 0..5 {
        client.get(format!("{base}/healthz")).send().await.unwrap();
    }
    tokio::time::sleep(StdDuration::from_millis(700)).await;
    assert!(
        spans(&seen.lock().unwrap()).is_empty(),
        "always_off exports nothing"
    );
    child.kill().await.ok();
}

#[tokio::test]
async fn the_service_exports_spans_that_continue_the_callers_trace() {
    let (otlp, seen) = otlp_receiver().await;
    let (mut child, base, logs) = traced_serve(
        &otlp,
        &[
            // The scheduler ticks every second, finding nothing due (the cutoff is
            // at the end of the day): it must leave no trace.
            ("SETTLEMENT_RUN_INTERVAL_SECONDS", "1"),
            ("WEBHOOK_ALLOW_LOCAL_NETWORK", "true"),
            ("WEBHOOK_POLL_INTERVAL_MS", "100"),
            // Quiet logs never silence the traces: the engine's spans are below
            // this log filter's level.
            ("RUST_LOG", "warn,settlement_api=info"),
        ],
    )
    .await;
    let client = reqwest::Client::new();

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_span = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace_id}-{parent_span}-01");
    let ops = ops_token();
    let merchant = json!({
        "merchant_id": "m1", "name": "Shop", "currency": "USD", "time_zone": "UTC",
        "cutoff_local_time": "23:59:59", "pricing": {"mdr_basis_points": 0, "fixed_fee": "0"}
    });
    client
        .post(format!("{base}/v1/ops/merchants"))
        .bearer_auth(&ops)
        .json(&merchant)
        .send()
        .await
        .unwrap();
    client
        .post(format!("{base}/v1/ops/merchants/m1/terminals"))
        .bearer_auth(&ops)
        .json(&json!({"terminal_id": "t1"}))
        .send()
        .await
        .unwrap();
    // The merchant's webhook receiver continues the delivery's trace.
    let receiver = crate::receiver::Receiver::start().await;
    let r = client
        .post(format!("{base}/v1/merchants/m1/webhook-endpoints"))
        .bearer_auth(merchant_token("m1"))
        .json(&json!({"url": receiver.url, "event_types": ["batch.accepted"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = client
        .post(format!("{base}/v1/terminals/t1/batches"))
        .bearer_auth(terminal_token("t1", "m1"))
        .header("Idempotency-Key", "k")
        .header("traceparent", &traceparent)
        .json(&batch_body(1, Utc::now() - Duration::minutes(5)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    let mut ours = Vec::new();
    for _ in 0..100 {
        ours = spans(&seen.lock().unwrap())
            .into_iter()
            .filter(|s| s["traceId"] == trace_id)
            .collect();
        if ours.iter().any(|s| s["name"] == "batch.write") {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    let names: Vec<&str> = ours.iter().filter_map(|s| s["name"].as_str()).collect();
    let request = ours
        .iter()
        .find(|s| s["name"] == "POST /v1/terminals/{terminal_id}/batches")
        .unwrap_or_else(|| panic!("no request span in {names:?}"));
    assert_eq!(
        request["parentSpanId"], parent_span,
        "the caller's span is the parent"
    );
    assert!(names.contains(&"batch.close_transaction"), "{names:?}");
    assert!(names.contains(&"batch.write"), "{names:?}");
    // Database calls are client spans with the database conventions and no
    // statement text (nor its parameters).
    for name in ["batch.read", "batch.write"] {
        let db = ours
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {names:?}"));
        assert_eq!(db["kind"], 3, "{db}");
        let text = db["attributes"].to_string();
        assert!(
            text.contains("\"db.system.name\"") && text.contains("postgresql"),
            "{text}"
        );
        assert!(text.contains("\"db.operation.name\""), "{text}");
        assert!(
            !text.contains("db.query.text") && !text.contains("$1"),
            "{text}"
        );
    }
    let attributes = request["attributes"].to_string();
    // OpenTelemetry's HTTP server conventions, the status an integer.
    let attribute = |key: &str| {
        request["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"] == key)
            .map(|a| a["value"].clone())
            .unwrap_or_else(|| panic!("no {key} in {attributes}"))
    };
    assert_eq!(
        attribute("http.request.method"),
        json!({"stringValue": "POST"})
    );
    assert_eq!(
        attribute("http.route"),
        json!({"stringValue": "/v1/terminals/{terminal_id}/batches"})
    );
    let status = attribute("http.response.status_code");
    assert!(
        status == json!({"intValue": "201"}) || status == json!({"intValue": 201}),
        "{status}"
    );
    assert_eq!(attribute("url.scheme"), json!({"stringValue": "http"}));
    assert_eq!(
        attribute("server.address"),
        json!({"stringValue": "127.0.0.1"})
    );
    assert_eq!(
        attribute("client.address"),
        json!({"stringValue": "127.0.0.1"})
    );
    // No internal fields of the tracing library, no log lines as span events.
    for span in &ours {
        let text = span["attributes"].to_string();
        for internal in ["code.", "thread.", "busy_ns", "idle_ns", "target", ".cargo"] {
            assert!(
                !text.contains(internal),
                "{internal} in {}: {text}",
                span["name"]
            );
        }
        assert!(
            span["events"].as_array().is_none_or(Vec::is_empty),
            "{} carries events: {}",
            span["name"],
            span["events"]
        );
    }
    assert!(
        !attributes.contains("/v1/terminals/t1/"),
        "route templates, never raw paths"
    );
    // Its log lines name the trace and span they were written in.
    let answered: Vec<Value> = logs
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["message"] == "answered" && l["trace_id"] == trace_id)
        .collect();
    assert_eq!(answered.len(), 1, "{:?}", logs.lock().unwrap());
    assert_eq!(
        answered[0]["span_id"], request["spanId"],
        "the request's span: {}",
        answered[0]
    );

    // The delivery: a trace of its own, its HTTP client span's context in the
    // request's traceparent.
    let got = receiver
        .wait_for("batch.accepted", 1, StdDuration::from_secs(10))
        .await;
    assert_eq!(got.len(), 1, "the webhook was delivered");
    let sent = got[0].headers["traceparent"].to_str().unwrap().to_owned();
    let parts: Vec<&str> = sent.split('-').collect();
    assert_eq!(parts.len(), 4, "{sent}");
    let mut post = None;
    for _ in 0..100 {
        post = spans(&seen.lock().unwrap())
            .into_iter()
            .find(|s| s["spanId"] == parts[2]);
        if post.is_some() {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    let post = post.expect("the span of the webhook request is exported");
    assert_eq!(post["traceId"], parts[1]);
    assert_ne!(
        post["traceId"], trace_id,
        "background work is its own trace"
    );
    assert_eq!(post["name"], "POST");
    assert_eq!(post["kind"], 3, "a client span: {post}");
    // The attempt (the client span's parent, the root of its trace) links to the
    // close that caused the event.
    let attempt = spans(&seen.lock().unwrap())
        .into_iter()
        .find(|s| s["spanId"] == post["parentSpanId"])
        .expect("the attempt's span");
    assert_eq!(attempt["name"], "webhook.attempt");
    assert!(attempt["parentSpanId"].as_str().is_none_or(str::is_empty));
    let links = attempt["links"].as_array().cloned().unwrap_or_default();
    assert!(
        links.iter().any(|l| l["traceId"] == trace_id),
        "the attempt links to the close's trace: {attempt}"
    );
    let attributes = post["attributes"].to_string();
    for key in [
        "http.request.method",
        "url.full",
        "server.address",
        "server.port",
        "http.response.status_code",
    ] {
        assert!(
            attributes.contains(&format!("\"{key}\"")),
            "{key} in {attributes}"
        );
    }

    // A settlement run that closes a cycle is a trace of its own: a merchant whose
    // cutoff passes in a few seconds, a batch before it, the scheduler after it.
    let cutoff = (Utc::now() + Duration::seconds(3))
        .format("%H:%M:%S")
        .to_string();
    let soon = json!({
        "merchant_id": "m2", "name": "Soon", "currency": "USD", "time_zone": "UTC",
        "cutoff_local_time": cutoff, "grace_period_hours": 24,
        "pricing": {"mdr_basis_points": 0, "fixed_fee": "0"}
    });
    for (path, body) in [
        ("/v1/ops/merchants".to_owned(), soon),
        (
            "/v1/ops/merchants/m2/terminals".to_owned(),
            json!({"terminal_id": "t2"}),
        ),
    ] {
        let r = client
            .post(format!("{base}{path}"))
            .bearer_auth(&ops)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let r = client
        .post(format!("{base}/v1/terminals/t2/batches"))
        .bearer_auth(terminal_token("t2", "m2"))
        .header("Idempotency-Key", "k2")
        .json(&batch_body(1, Utc::now() - Duration::minutes(1)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let mut run = None;
    for _ in 0..100 {
        run = spans(&seen.lock().unwrap())
            .into_iter()
            .find(|s| s["name"] == "settlement.close_cycles");
        if run.is_some() {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    let run = run.expect("the run that closed the cycle is exported");
    assert!(
        run["parentSpanId"].as_str().is_none_or(str::is_empty),
        "a run is a trace of its own: {run}"
    );
    assert!(
        run["attributes"].to_string().contains("\"cycles\""),
        "{run}"
    );

    // Quiet when idle: after a few scheduler ticks and webhook polls with nothing to
    // do, every root span is a request or a delivery attempt.
    tokio::time::sleep(StdDuration::from_millis(2500)).await;
    for span in spans(&seen.lock().unwrap()) {
        let root = span["parentSpanId"].as_str().is_none_or(str::is_empty);
        let name = span["name"].as_str().unwrap_or_default();
        if root {
            assert!(
                name.starts_with("GET ")
                    || name.starts_with("POST ")
                    || name == "webhook.attempt"
                    || name == "settlement.close_cycles",
                "a root span of background work that did nothing: {span}"
            );
        }
    }

    let exports = seen.lock().unwrap().clone();
    assert!(
        exports[0].to_string().contains("settlementd-test"),
        "OTEL_SERVICE_NAME is honoured"
    );
    // The resource names the version and this process; the scope its version.
    let resource = exports[0]["resourceSpans"][0]["resource"].to_string();
    assert!(
        resource.contains("service.version") && resource.contains(env!("CARGO_PKG_VERSION")),
        "{resource}"
    );
    assert!(resource.contains("service.instance.id"), "{resource}");
    let scope = &exports[0]["resourceSpans"][0]["scopeSpans"][0]["scope"];
    assert_eq!(scope["version"], env!("CARGO_PKG_VERSION"), "{scope}");
    child.kill().await.ok();
}

/// The span names the code opens: `#[tracing::instrument(name = "...")]` and
/// `info_span!("...")` in every crate's sources.
fn spans_in_the_code() -> std::collections::BTreeSet<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let crates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for krate in std::fs::read_dir(&crates).unwrap() {
        let src = krate.unwrap().path().join("src");
        if src.is_dir() {
            walk(&src, &mut files);
        }
    }
    let mut names = std::collections::BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (marker, key) in [("tracing::instrument(", "name = \""), ("info_span!(", "\"")] {
            for (at, _) in text.match_indices(marker) {
                let rest = &text[at + marker.len()..];
                // The name comes first in the call, before its first field.
                let head = &rest[..rest.find([',', ')']).unwrap_or(rest.len())];
                if let Some(start) = head.find(key) {
                    let name = &head[start + key.len()..];
                    if let Some(end) = name.find('"') {
                        names.insert(name[..end].to_owned());
                    }
                }
            }
        }
    }
    names
}

#[test]
fn every_span_is_in_the_readme_table() {
    let readme = include_str!("../../README.md");
    let table = readme
        .split("| span | exported as | kind | what |")
        .nth(1)
        .expect("the README has the spans table");
    let documented: std::collections::BTreeSet<String> = table
        .lines()
        .skip(2)
        .take_while(|l| l.trim_start().starts_with('|'))
        .filter_map(|l| l.split('`').nth(1).map(str::to_owned))
        .collect();
    assert_eq!(spans_in_the_code(), documented);
}
