//! The delivery worker: claims due deliveries (several replicas may run it), POSTs
//! each signed event with a timeout, and retries failures with exponential backoff
//! and jitter until the attempt limit, after which the delivery is failed.

use std::time::{Duration, Instant};

use chrono::Utc;
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

use settlement_store::events::{self, AttemptResult, AttemptRow, DeliveryRow};
use settlement_store::webhooks;

use opentelemetry::propagation::Injector;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::events::payload;
use crate::webhooks::signature::{header_value, SIGNATURE_HEADER};
use crate::webhooks::target;

/// Most of a receiver's response body that is read; the rest is dropped.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024;
/// Deliveries claimed per round.
const CLAIM_BATCH: i64 = 20;
/// Rounds per tick; the next tick goes on, so shutdown never waits on a backlog.
const MAX_ROUNDS_PER_TICK: usize = 10;
/// Longest delay between two attempts.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(12 * 3600);
/// Longest error text kept per attempt.
const MAX_ERROR_LEN: usize = 300;
/// The error of an attempt whose endpoint is gone; the delivery is given up.
const ENDPOINT_DELETED: &str = "the endpoint was deleted";
/// A claim outlives the longest attempt by this margin (the receiver's timeout, at
/// least 2 s), so a slow attempt never overlaps another worker's claim of the same
/// delivery; the claims of a worker that died are taken up once it has passed.
fn lease_margin(timeout: Duration) -> Duration {
    timeout.max(Duration::from_secs(2))
}

/// How deliveries are made.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Longest wait for a receiver's answer.
    pub timeout: Duration,
    /// Attempts before a delivery is given up.
    pub max_attempts: u32,
    /// Delay after the first failure; it doubles with each further failure up to
    /// 12 hours. With the defaults (30 s, 16 attempts) a delivery is given up after
    /// about 2.7 days.
    pub retry_base: Duration,
    /// Which addresses deliveries may reach (local ones for development only).
    pub reach: target::Reach,
}

/// The delay before attempt `failures + 1`, after `failures` failed attempts.
pub fn retry_delay(base: Duration, failures: u32) -> Duration {
    let doubled = base.saturating_mul(1_u32 << failures.saturating_sub(1).min(20));
    crate::jitter::spread(doubled.min(MAX_RETRY_DELAY), 200)
}

/// Delivers until `stop` turns true, looking for due deliveries every `every`.
pub async fn run(
    pool: PgPool,
    config: DeliveryConfig,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let client = match client(&config) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "no HTTP client for webhooks; delivery does not run");
            return;
        }
    };
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if let Err(e) = deliver_due(&pool, &client, &config).await {
                    tracing::warn!(error = format!("{e:#}"), "webhook delivery round failed");
                }
            }
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
    }
    tracing::info!("webhook delivery stopped");
}

/// Claims and attempts every due delivery, a batch at a time; returns how many.
/// A poll that finds nothing leaves no trace: each attempt is a trace of its own.
pub async fn deliver_due(
    pool: &PgPool,
    client: &reqwest::Client,
    config: &DeliveryConfig,
) -> anyhow::Result<usize> {
    let mut delivered = 0;
    for _ in 0..MAX_ROUNDS_PER_TICK {
        let now = Utc::now();
        let lease = chrono::Duration::from_std(config.timeout + lease_margin(config.timeout))?;
        let claimed = {
            let mut conn = pool.acquire().await?;
            events::claim_due_deliveries(&mut conn, now, now + lease, CLAIM_BATCH).await?
        };
        if claimed.is_empty() {
            return Ok(delivered);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for delivery in claimed {
            let (pool, client, config) = (pool.clone(), client.clone(), config.clone());
            // Bounded so the result is recorded well inside the claim's lease.
            let limit = config.timeout + lease_margin(config.timeout) / 2;
            tasks.spawn(tracing::Instrument::in_current_span(async move {
                tokio::time::timeout(limit, attempt(&pool, &client, &config, &delivery))
                    .await
                    .unwrap_or_else(|_| {
                        Err(anyhow::anyhow!(
                            "attempt outlived its time; the lease will release it"
                        ))
                    })
            }));
        }
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Ok(())) => delivered += 1,
                Ok(Err(e)) => {
                    tracing::warn!(error = format!("{e:#}"), "recording a delivery failed")
                }
                Err(e) => tracing::error!(error = %e, "delivery task failed"),
            }
        }
    }
    Ok(delivered)
}

/// What one attempt came to.
struct Outcome {
    status_code: Option<u16>,
    error: Option<String>,
}

#[tracing::instrument(name = "webhook.attempt", skip_all, fields(delivery_id = %delivery.id, event_id = %delivery.event_id))]
async fn attempt(
    pool: &PgPool,
    client: &reqwest::Client,
    config: &DeliveryConfig,
    delivery: &DeliveryRow,
) -> anyhow::Result<()> {
    let started_at = Utc::now();
    let started = Instant::now();
    let (event, endpoint) = {
        let mut conn = pool.acquire().await?;
        (
            events::find_event_by_id(&mut conn, delivery.event_id).await?,
            webhooks::find_endpoint(&mut conn, delivery.endpoint_id).await?,
        )
    };
    // The attempt is a trace of its own, linked to what caused the event.
    if let Some(cause) = event
        .as_ref()
        .and_then(|e| e.trace_parent.as_deref())
        .and_then(crate::events::span_context_of)
    {
        tracing::Span::current().add_link(cause);
    }
    let outcome = match (event, endpoint) {
        (Some(event), Some(endpoint)) if endpoint.deleted_at.is_none() => {
            let body = payload(&event).to_string();
            let mut secrets = vec![endpoint.secret.as_str()];
            if let (Some(previous), Some(until)) = (
                &endpoint.previous_secret,
                endpoint.previous_secret_expires_at,
            ) {
                if until > started_at {
                    secrets.push(previous);
                }
            }
            post(client, config, &endpoint.url, event.id, &secrets, body).await
        }
        _ => Outcome {
            status_code: None,
            error: Some(ENDPOINT_DELETED.into()),
        },
    };
    let succeeded = outcome.status_code.is_some_and(|c| (200..300).contains(&c));
    let give_up = outcome.error.as_deref() == Some(ENDPOINT_DELETED);
    let failures = u32::try_from(delivery.attempts)
        .unwrap_or(u32::MAX)
        .saturating_add(1);
    let retry_at =
        started_at + chrono::Duration::from_std(retry_delay(config.retry_base, failures))?;
    let latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
    let row = AttemptRow {
        attempted_at: started_at,
        status_code: outcome.status_code.map(i32::from),
        latency_ms,
        error: outcome.error,
    };
    let max_attempts = i32::try_from(config.max_attempts).unwrap_or(i32::MAX);
    let mut tx = pool.begin().await?;
    let recorded = events::record_attempt(
        &mut tx,
        delivery.id,
        delivery.next_attempt_at,
        &row,
        if succeeded {
            AttemptResult::Succeeded
        } else if give_up {
            AttemptResult::FailedForGood
        } else {
            AttemptResult::Failed
        },
        max_attempts,
        retry_at,
    )
    .await?;
    tx.commit().await?;
    if recorded {
        let outcome = if succeeded {
            "succeeded"
        } else if give_up || failures >= config.max_attempts {
            "failed"
        } else {
            "retry"
        };
        crate::metrics::METRICS
            .webhook_deliveries
            .with_label_values(&[outcome])
            .inc();
        tracing::info!(
            delivery_id = %delivery.id,
            event_id = %delivery.event_id,
            status_code = row.status_code,
            latency_ms,
            succeeded,
            "webhook attempt"
        );
    } else {
        tracing::info!(delivery_id = %delivery.id, "delivery was redelivered or reclaimed meanwhile; result dropped");
    }
    Ok(())
}

/// The one HTTP client of webhook deliveries, built when the worker starts and
/// reused (its connections too). Names are resolved by [`CheckedResolver`] on every
/// new connection, so a name that changes to a private address is refused; address
/// literals are checked before each request. Redirects are not followed, and no proxy
/// may resolve a name instead.
pub fn client(config: &DeliveryConfig) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(std::sync::Arc::new(CheckedResolver {
            reach: config.reach,
        }))
        .user_agent("settlement-webhooks/1")
        .build()
}

/// Resolves names for webhook deliveries, refusing every name with a loopback,
/// private or otherwise special address among its addresses (unless local
/// development is allowed).
#[derive(Debug, Clone, Copy)]
struct CheckedResolver {
    reach: target::Reach,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let reach = self.reach;
        Box::pin(async move {
            let addrs = target::resolve_host(name.as_str(), 0, reach).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// An error with its causes, as one line.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// POSTs one signed event with the deliveries' client. An address literal is checked
/// here; a name, by the client's resolver when it connects.
async fn post(
    client: &reqwest::Client,
    config: &DeliveryConfig,
    url: &str,
    event_id: Uuid,
    secrets: &[&str],
    body: String,
) -> Outcome {
    let failed = |e: String| Outcome {
        status_code: None,
        error: Some(e.chars().take(MAX_ERROR_LEN).collect()),
    };
    let checked = match target::parse(url, config.reach) {
        Ok(t) => t,
        Err(e) => return failed(e.to_string()),
    };
    if let Err(e) = target::check_literal(&checked, config.reach) {
        return failed(e.to_string());
    }
    let timestamp = Utc::now().timestamp();
    let signature = header_value(secrets, timestamp, body.as_bytes());
    // OpenTelemetry's HTTP client conventions; the receiver continues the trace
    // (W3C traceparent) when traces are exported.
    let mut shown = checked.url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    let span = tracing::info_span!(
        "webhook.post",
        otel.name = "POST",
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        http.request.method = "POST",
        url.full = %shown,
        server.address = %checked.host,
        server.port = i64::from(checked.port),
        http.response.status_code = tracing::field::Empty,
        error.r#type = tracing::field::Empty,
    );
    let mut headers = reqwest::header::HeaderMap::new();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&span.context(), &mut HeaderInjector(&mut headers));
    });
    let response = tracing::Instrument::instrument(
        client
            .post(checked.url.clone())
            .timeout(config.timeout)
            .headers(headers)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header("settlement-event-id", event_id.to_string())
            .body(body)
            .send(),
        span.clone(),
    )
    .await;
    match &response {
        Ok(r) => {
            span.record("http.response.status_code", i64::from(r.status().as_u16()));
            if !r.status().is_success() {
                span.record("error.type", r.status().as_str());
                span.record("otel.status_code", "ERROR");
            }
        }
        Err(e) => {
            span.record(
                "error.type",
                if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connect"
                } else {
                    "request"
                },
            );
            span.record("otel.status_code", "ERROR");
        }
    }
    match response {
        Ok(mut r) => {
            let status = r.status().as_u16();
            // Read a little of the answer, so the connection ends cleanly; drop the rest.
            let mut read = 0;
            while read < MAX_RESPONSE_BYTES {
                match r.chunk().await {
                    Ok(Some(chunk)) => read += chunk.len(),
                    _ => break,
                }
            }
            Outcome {
                status_code: Some(status),
                error: (!(200..300).contains(&status)).then(|| format!("answered {status}")),
            }
        }
        Err(e) if e.is_timeout() => failed(format!(
            "no answer within {} ms",
            config.timeout.as_millis()
        )),
        Err(e) => failed(format!("request failed: {}", with_causes(&e))),
    }
}

/// Puts a propagator's fields (`traceparent`) into an outgoing request's headers.
struct HeaderInjector<'a>(&'a mut reqwest::header::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(key.as_bytes()),
            reqwest::header::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_name_that_resolves_to_a_special_address_is_refused_by_the_client() {
        let config = DeliveryConfig {
            timeout: Duration::from_secs(2),
            max_attempts: 1,
            retry_base: Duration::from_secs(1),
            reach: target::Reach::PublicOnly,
        };
        let client = client(&config).unwrap();
        // `localhost` resolves to loopback addresses only.
        let outcome = post(
            &client,
            &config,
            "https://localhost:9/hook",
            Uuid::nil(),
            &["whsec_test"],
            "{}".into(),
        )
        .await;
        assert_eq!(outcome.status_code, None);
        let error = outcome.error.unwrap();
        assert!(error.contains("loopback, private"), "{error}");
    }

    #[test]
    fn retry_delays_double_up_to_twelve_hours_with_jitter() {
        let base = Duration::from_secs(30);
        let d1 = retry_delay(base, 1);
        assert!(
            d1 >= Duration::from_secs(24) && d1 <= Duration::from_secs(36),
            "{d1:?}"
        );
        let d3 = retry_delay(base, 3);
        assert!(
            d3 >= Duration::from_secs(96) && d3 <= Duration::from_secs(144),
            "{d3:?}"
        );
        let d30 = retry_delay(base, 30);
        assert!(d30 <= MAX_RETRY_DELAY + MAX_RETRY_DELAY / 5);
    }

    #[test]
    fn the_default_schedule_gives_up_after_about_three_days() {
        // 16 attempts: 15 delays between them.
        let total: Duration = (1..16)
            .map(|n| {
                let doubled = Duration::from_secs(30).saturating_mul(1 << (n - 1));
                doubled.min(MAX_RETRY_DELAY)
            })
            .sum();
        let hours = total.as_secs() / 3600;
        assert!((60..=80).contains(&hours), "{hours} h");
    }
}
