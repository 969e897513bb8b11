//! Prometheus metrics, rendered in the text format (the HTTP crate serves them on
//! their own port, never through the public HTTP port). Counters and histograms are
//! process-wide; gauges that describe the database (outbox backlog, scheduler lag,
//! pool) are read at scrape time.

use std::sync::LazyLock;
use std::time::Duration;

use chrono::Utc;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use sqlx::PgPool;

/// Every metric of the service.
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_request_duration: HistogramVec,
    pub batches_closed: IntCounterVec,
    pub batch_late_by: Histogram,
    pub cycles_closed: IntCounter,
    pub payouts: IntCounterVec,
    pub payout_amount: IntCounterVec,
    pub webhook_deliveries: IntCounterVec,
    pub outbox_backlog: IntGauge,
    pub outbox_oldest_due_age: IntGauge,
    pub scheduler_lag: IntGauge,
    pub db_pool_connections: IntGaugeVec,
    pub db_pool_timeouts: IntCounter,
    pub transaction_retries: IntCounter,
    pub rate_limited: IntCounterVec,
    pub build_info: IntGaugeVec,
}

/// The label values each labelled counter is shown at from start-up, at zero, so
/// that a rate over them is zero rather than absent until the first event.
const KNOWN_LABELS: &[(&str, &[&str])] = &[
    (
        "settlement_batches_closed_total",
        &[
            "accepted",
            "accepted_late",
            "rejected_outside_grace",
            "auto_closed",
            "out_of_balance",
            "duplicate_transactions",
        ],
    ),
    (
        "settlement_payouts_total",
        &["pending", "in_transit", "paid", "failed", "canceled"],
    ),
    (
        "settlement_webhook_attempts_total",
        &["succeeded", "retry", "failed"],
    ),
    (
        "settlement_rate_limited_requests_total",
        &["terminal", "merchant"],
    ),
];

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("metric {name}: {e}"))
}

fn gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"))
}

impl Metrics {
    fn new() -> Self {
        let m = Metrics {
            registry: Registry::new(),
            http_requests: counter(
                "settlement_http_requests_total",
                "HTTP requests answered, by route template, method and status.",
                &["route", "method", "status"],
            ),
            http_request_duration: HistogramVec::new(
                HistogramOpts::new(
                    "settlement_http_request_duration_seconds",
                    "Time to answer an HTTP request, by route template and status.",
                )
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
                &["route", "status"],
            )
            .unwrap_or_else(|e| panic!("http duration: {e}")),
            batches_closed: counter(
                "settlement_batches_closed_total",
                "Batch closes by outcome: the batch status (accepted, accepted_late, rejected_outside_grace; a batch sent again counts under its status now), out_of_balance, duplicate_transactions.",
                &["outcome"],
            ),
            batch_late_by: Histogram::with_opts(
                HistogramOpts::new(
                    "settlement_batch_late_by_seconds",
                    "How long after its cutoff a late batch arrived.",
                )
                .buckets(vec![60.0, 600.0, 3600.0, 6.0 * 3600.0, 12.0 * 3600.0, 86_400.0, 2.0 * 86_400.0, 3.0 * 86_400.0, 7.0 * 86_400.0]),
            )
            .unwrap_or_else(|e| panic!("late by: {e}")),
            cycles_closed: IntCounter::new("settlement_cycles_closed_total", "Settlement cycles closed.")
                .unwrap_or_else(|e| panic!("cycles: {e}")),
            payouts: counter(
                "settlement_payouts_total",
                "Payouts created (pending) and moved to each later status.",
                &["status"],
            ),
            payout_amount: counter(
                "settlement_payout_amount_minor_units_total",
                "Amount of the payouts counted in settlement_payouts_total, in minor units of the currency.",
                &["currency", "status"],
            ),
            webhook_deliveries: counter(
                "settlement_webhook_attempts_total",
                "Webhook delivery attempts by outcome: succeeded, retry, failed (given up).",
                &["outcome"],
            ),
            outbox_backlog: gauge(
                "settlement_webhook_outbox_due",
                "Webhook deliveries due now and not yet attempted successfully.",
            ),
            outbox_oldest_due_age: gauge(
                "settlement_webhook_outbox_oldest_due_age_seconds",
                "Age of the oldest webhook delivery that is due.",
            ),
            scheduler_lag: gauge(
                "settlement_scheduler_lag_seconds",
                "At the last settlement run: how long ago the cutoff of the oldest due cycle passed (0 when none was due).",
            ),
            db_pool_connections: IntGaugeVec::new(
                Opts::new("settlement_db_pool_connections", "Database pool connections by state (in_use, idle, max)."),
                &["state"],
            )
            .unwrap_or_else(|e| panic!("pool: {e}")),
            db_pool_timeouts: IntCounter::new(
                "settlement_db_pool_acquire_timeouts_total",
                "Requests that waited DATABASE_ACQUIRE_TIMEOUT_MS for a connection and were answered 503.",
            )
            .unwrap_or_else(|e| panic!("pool timeouts: {e}")),
            transaction_retries: IntCounter::new(
                "settlement_db_transaction_retries_total",
                "Request transactions run again after a serialization failure or deadlock.",
            )
            .unwrap_or_else(|e| panic!("transaction retries: {e}")),
            rate_limited: counter(
                "settlement_rate_limited_requests_total",
                "Requests answered 429 because the caller's rate limit was spent, by caller kind (terminal, merchant).",
                &["caller"],
            ),
            build_info: IntGaugeVec::new(
                Opts::new(
                    "settlement_build_info",
                    "Always 1: the version of settlementd and the source revision it was built from (SETTLEMENT_REVISION at build time, else unknown).",
                ),
                &["version", "revision"],
            )
            .unwrap_or_else(|e| panic!("build info: {e}")),
        };
        m.build_info
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                option_env!("SETTLEMENT_REVISION").unwrap_or("unknown"),
            ])
            .set(1);
        for (name, values) in KNOWN_LABELS {
            let vec = match *name {
                "settlement_batches_closed_total" => &m.batches_closed,
                "settlement_payouts_total" => &m.payouts,
                "settlement_webhook_attempts_total" => &m.webhook_deliveries,
                _ => &m.rate_limited,
            };
            for v in *values {
                vec.with_label_values(&[v]);
            }
        }
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(m.http_requests.clone()),
            Box::new(m.http_request_duration.clone()),
            Box::new(m.batches_closed.clone()),
            Box::new(m.batch_late_by.clone()),
            Box::new(m.cycles_closed.clone()),
            Box::new(m.payouts.clone()),
            Box::new(m.payout_amount.clone()),
            Box::new(m.webhook_deliveries.clone()),
            Box::new(m.outbox_backlog.clone()),
            Box::new(m.outbox_oldest_due_age.clone()),
            Box::new(m.scheduler_lag.clone()),
            Box::new(m.db_pool_connections.clone()),
            Box::new(m.db_pool_timeouts.clone()),
            Box::new(m.transaction_retries.clone()),
            Box::new(m.rate_limited.clone()),
            Box::new(m.build_info.clone()),
            // CPU, memory, open files and start time of this process (Linux).
            Box::new(prometheus::process_collector::ProcessCollector::for_self()),
        ];
        for c in collectors {
            if let Err(e) = m.registry.register(c) {
                panic!("registering a metric: {e}");
            }
        }
        m
    }

    /// Counts a payout reaching `status`.
    pub fn payout(&self, status: &str, currency: &str, amount_minor: i64) {
        self.payouts.with_label_values(&[status]).inc();
        self.payout_amount
            .with_label_values(&[currency, status])
            .inc_by(u64::try_from(amount_minor).unwrap_or(0));
    }
}

/// The process-wide metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The media type of the text format.
pub fn content_type() -> String {
    TextEncoder::new().format_type().to_owned()
}

/// Reads the database gauges, then renders every metric in the text format.
pub async fn render(pool: &PgPool) -> String {
    let m = &*METRICS;
    let size = i64::from(pool.size());
    let idle = i64::try_from(pool.num_idle()).unwrap_or(0);
    m.db_pool_connections
        .with_label_values(&["in_use"])
        .set(size - idle);
    m.db_pool_connections.with_label_values(&["idle"]).set(idle);
    m.db_pool_connections
        .with_label_values(&["max"])
        .set(i64::from(pool.options().get_max_connections()));
    // Never wait for a connection at scrape time: a saturated pool is exactly when
    // metrics are read. Without one, the backlog gauges keep their last values.
    let now = Utc::now();
    if let Some(mut conn) = pool.try_acquire() {
        if let Ok((due, oldest)) = settlement_store::events::due_backlog(&mut conn, now).await {
            m.outbox_backlog.set(due);
            m.outbox_oldest_due_age
                .set(oldest.map_or(0, |t| (now - t).num_seconds().max(0)));
        }
    }
    let mut text = String::new();
    if let Err(e) = TextEncoder::new().encode_utf8(&m.registry.gather(), &mut text) {
        tracing::error!(error = %e, "encoding metrics failed");
    }
    text
}

/// Records one answered request.
pub fn observe_request(route: &str, method: &str, status: u16, elapsed: Duration) {
    let status = status.to_string();
    METRICS
        .http_requests
        .with_label_values(&[route, method, &status])
        .inc();
    METRICS
        .http_request_duration
        .with_label_values(&[route, &status])
        .observe(elapsed.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_series_is_shown_at_zero_from_start_with_build_and_process_metrics() {
        let m = Metrics::new();
        let mut text = String::new();
        TextEncoder::new()
            .encode_utf8(&m.registry.gather(), &mut text)
            .unwrap();
        for (name, values) in KNOWN_LABELS {
            for v in *values {
                let label = if *name == "settlement_rate_limited_requests_total" {
                    "caller"
                } else if *name == "settlement_payouts_total" {
                    "status"
                } else {
                    "outcome"
                };
                let series = format!("{name}{{{label}=\"{v}\"}} 0");
                assert!(text.contains(&series), "{series} in:\n{text}");
            }
        }
        assert!(text.contains(&format!(
            "settlement_build_info{{revision=\"{}\",version=\"{}\"}} 1",
            option_env!("SETTLEMENT_REVISION").unwrap_or("unknown"),
            env!("CARGO_PKG_VERSION")
        )));
        for process in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_start_time_seconds",
        ] {
            assert!(text.contains(process), "{process} in:\n{text}");
        }
    }

    /// The metric names of the README's metrics table (its first column).
    fn readme_metrics() -> std::collections::BTreeSet<String> {
        let readme = include_str!("../../../README.md");
        let table = readme
            .split("| metric | type | labels | what |")
            .nth(1)
            .expect("the README has the metrics table");
        table
            .lines()
            .skip(2)
            .take_while(|l| l.trim_start().starts_with('|'))
            .filter_map(|l| l.split('`').nth(1).map(str::to_owned))
            .collect()
    }

    /// Metrics with a series of each labelled family, so that every family is
    /// exported.
    fn with_every_family() -> Metrics {
        let m = Metrics::new();
        m.http_requests
            .with_label_values(&["/r", "GET", "200"])
            .inc();
        m.http_request_duration
            .with_label_values(&["/r", "200"])
            .observe(0.1);
        m.payout("pending", "USD", 1);
        m.db_pool_connections.with_label_values(&["max"]).set(1);
        m
    }

    #[test]
    fn every_metric_is_in_the_readme_table() {
        let m = with_every_family();
        let exported: std::collections::BTreeSet<String> = m
            .registry
            .gather()
            .iter()
            .map(|f| f.name().to_owned())
            // Exported only where the address space is limited.
            .filter(|name| name != "process_virtual_memory_max_bytes")
            .collect();
        assert_eq!(exported, readme_metrics());
    }

    #[test]
    fn every_series_the_dashboard_reads_is_one_the_service_exports() {
        let m = with_every_family();
        let mut text = String::new();
        TextEncoder::new()
            .encode_utf8(&m.registry.gather(), &mut text)
            .unwrap();
        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../../../deploy/grafana-dashboard.json")).unwrap();
        let mut checked = 0;
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap();
                let names = expr
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .filter(|w| w.starts_with("settlement_") || w.starts_with("process_"));
                for name in names {
                    assert!(
                        text.lines().any(|l| l.starts_with(name)
                            && l[name.len()..].starts_with(['{', ' '])),
                        "panel {} reads {name}, which the service never exports",
                        panel["title"]
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked >= 15, "{checked}");
    }
}
