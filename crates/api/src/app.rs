//! The application: routes, middleware, and the server's life from bind to shutdown.

use settlement_wire::ProblemCode;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put, MethodRouter};
use axum::Router;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tower::{BoxError, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::config::Config;
use crate::error::{problem_body, ApiError, PROBLEM_JSON};
use crate::routes::{
    audit, bank_files, health, holidays, host, merchant_money, merchants, ops, settlement_ops,
    statement, status, terminals, webhooks,
};
use crate::state::AppState;

/// Header carrying the request id, set when the client sends none.
pub const REQUEST_ID: &str = "x-request-id";

/// The contract, served at `/openapi.yaml`.
pub const OPENAPI_YAML: &str = include_str!("../../../openapi.yaml");

/// Every route: method, path template and handler. The router is built from this
/// list, and a test checks it against `openapi.yaml` both ways.
pub fn routes() -> Vec<(Method, &'static str, MethodRouter<AppState>)> {
    vec![
        (Method::GET, "/healthz", get(health::healthz)),
        (Method::GET, "/readyz", get(health::readyz)),
        (Method::GET, "/openapi.yaml", get(openapi)),
        // Terminals
        (
            Method::POST,
            "/v1/terminals/{terminal_id}/batches",
            post(terminals::close_batch),
        ),
        (
            Method::GET,
            "/v1/terminals/{terminal_id}/batches/{batch_number}",
            get(terminals::get_batch),
        ),
        // The authorization host
        (
            Method::POST,
            "/v1/host/authorizations",
            post(host::post_authorizations),
        ),
        // Merchants
        (
            Method::GET,
            "/v1/merchants/{merchant_id}/status",
            get(status::get_status),
        ),
        (
            Method::GET,
            "/v1/merchants/{merchant_id}/batches",
            get(merchants::list_batches),
        ),
        (
            Method::GET,
            "/v1/merchants/{merchant_id}/batches/{batch_id}",
            get(merchants::get_batch),
        ),
        (
            Method::POST,
            "/v1/merchants/{merchant_id}/batches/{batch_id}/review-requests",
            post(merchants::request_review),
        ),
        (
            Method::GET,
            "/v1/merchants/{merchant_id}/terminals/{terminal_id}/unsettled",
            get(merchants::list_unsettled),
        ),
        (
            Method::GET,
            "/v1/merchants/{merchant_id}/balance",
            get(merchants::get_balance),
        ),
        (
            Method::GET,
            "/v1/merchants/{merchant_id}/settlements",
            get(merchant_money::list_settlements),
        ),
        (
            Method::GET,
            "/v1/merchants/{merchant_id}/settlements/{settlement_id}",
            get(merchant_money::get_settlement),
        ),
        (
            Method::GET,
            "/v1/merchants/{merchant_id}/payouts",
            get(merchant_money::list_payouts),
        ),
        (
            Method::GET,
            "/v1/merchants/{merchant_id}/payouts/{payout_id}",
            get(merchant_money::get_payout),
        ),
        (
            Method::GET,
            "/v1/merchants/{merchant_id}/statement",
            get(statement::get_statement),
        ),
        (
            Method::POST,
            "/v1/merchants/{merchant_id}/webhook-endpoints",
            post(webhooks::create_endpoint),
        ),
        (
            Method::GET,
            "/v1/merchants/{merchant_id}/webhook-endpoints",
            get(webhooks::list_endpoints),
        ),
        (
            Method::DELETE,
            "/v1/merchants/{merchant_id}/webhook-endpoints/{endpoint_id}",
            delete(webhooks::delete_endpoint),
        ),
        (
            Method::POST,
            "/v1/merchants/{merchant_id}/webhook-endpoints/{endpoint_id}/rotate-secret",
            post(webhooks::rotate_secret),
        ),
        (
            Method::GET,
            "/v1/merchants/{merchant_id}/events",
            get(webhooks::list_events),
        ),
        (
            Method::GET,
            "/v1/merchants/{merchant_id}/events/{event_id}",
            get(webhooks::get_event),
        ),
        (
            Method::POST,
            "/v1/merchants/{merchant_id}/events/{event_id}/redeliver",
            post(webhooks::redeliver),
        ),
        // Operations
        (
            Method::POST,
            "/v1/ops/merchants",
            post(ops::create_merchant),
        ),
        (
            Method::PATCH,
            "/v1/ops/merchants/{merchant_id}",
            patch(ops::update_merchant),
        ),
        (
            Method::POST,
            "/v1/ops/merchants/{merchant_id}/terminals",
            post(ops::create_terminal),
        ),
        (Method::GET, "/v1/ops/exceptions", get(ops::list_exceptions)),
        (
            Method::POST,
            "/v1/ops/batches/{batch_id}/accept",
            post(ops::accept_batch),
        ),
        (
            Method::POST,
            "/v1/ops/batches/{batch_id}/decline",
            post(ops::decline_batch),
        ),
        (
            Method::POST,
            "/v1/ops/settlement-runs",
            post(settlement_ops::run_now),
        ),
        (
            Method::GET,
            "/v1/ops/payouts",
            get(settlement_ops::list_payouts),
        ),
        (
            Method::POST,
            "/v1/ops/payouts/export",
            post(settlement_ops::export),
        ),
        (
            Method::POST,
            "/v1/ops/payouts/confirmations",
            post(settlement_ops::upload_confirmations),
        ),
        (
            Method::POST,
            "/v1/ops/payouts/status-reports",
            post(bank_files::apply_status_report),
        ),
        (
            Method::POST,
            "/v1/ops/payouts/{payout_id}/paid",
            post(settlement_ops::mark_paid),
        ),
        (
            Method::POST,
            "/v1/ops/payouts/{payout_id}/failed",
            post(settlement_ops::mark_failed),
        ),
        (
            Method::POST,
            "/v1/ops/payouts/{payout_id}/cancel",
            post(settlement_ops::cancel),
        ),
        (
            Method::POST,
            "/v1/ops/host/capture-files",
            post(host::post_capture_file),
        ),
        (Method::GET, "/v1/ops/holidays", get(holidays::list)),
        (Method::PUT, "/v1/ops/holidays/{date}", put(holidays::put)),
        (
            Method::DELETE,
            "/v1/ops/holidays/{date}",
            delete(holidays::delete),
        ),
        (Method::GET, "/v1/ops/audit", get(audit::list)),
        (
            Method::GET,
            "/v1/ops/webhook-deliveries/failed",
            get(webhooks::list_failed),
        ),
        (
            Method::GET,
            "/v1/ops/ledger/check",
            get(audit::ledger_check),
        ),
    ]
    .into_iter()
    // The web pages for merchants (/merchant/) and operations (/ops/).
    .chain(crate::web::routes())
    .collect()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI_YAML).into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found("route")
}

async fn method_not_allowed() -> Response {
    let body = problem_body(
        StatusCode::METHOD_NOT_ALLOWED,
        ProblemCode::MethodNotAllowed,
        "this route does not take that method",
        Default::default(),
    );
    crate::error::json_response(StatusCode::METHOD_NOT_ALLOWED, &body)
}

async fn timed_out(_: BoxError) -> ApiError {
    ApiError::Timeout
}

async fn stamp_receipt(mut req: Request) -> Request {
    req.extensions_mut()
        .insert(crate::extract::ReceivedAt(chrono::Utc::now()));
    req
}

/// Reads W3C trace context from request headers.
struct HeaderExtractor<'a>(&'a axum::http::HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The request method as OpenTelemetry's HTTP conventions name it: one of the
/// methods of RFC 9110 (and PATCH), else `_OTHER`.
fn semconv_method(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}

/// A request header as a span attribute: at most 256 visible ASCII characters, never
/// one holding a card number (a client chooses these headers); the host without its
/// port when `host` is set. Empty when absent or refused.
fn header_attribute(req: &Request, name: &str, host: bool) -> String {
    let Some(value) = req.headers().get(name).and_then(|v| v.to_str().ok()) else {
        return String::new();
    };
    let value = if host {
        value.rsplit_once(':').map_or(value, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                value
            }
        })
    } else {
        value
    };
    if value.len() > 256 || settlement_domain::pan::contains_pan(value) {
        return String::new();
    }
    value.to_owned()
}

/// The method as a metric label: the standard ones, anything else as `other`, so a
/// client cannot create new series at will.
fn metric_method(method: &Method) -> &'static str {
    match semconv_method(method) {
        "_OTHER" | "CONNECT" | "TRACE" => "other",
        known => known,
    }
}

/// Counts every answered request and its duration by route template (never the raw
/// path, which holds ids), method and status.
async fn measure(req: Request, next: axum::middleware::Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = metric_method(req.method()).to_owned();
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    crate::metrics::observe_request(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Longest client-chosen request id kept; longer ones are replaced.
const MAX_REQUEST_ID_LEN: usize = 128;

/// A client-sent request id is logged, so it must be short, printable and free of
/// card numbers; otherwise it is dropped and a fresh one is generated.
async fn sanitize_request_id(mut req: Request) -> Request {
    let acceptable = req.headers().get(REQUEST_ID).is_none_or(|v| {
        v.to_str().is_ok_and(|id| {
            (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
                && id.bytes().all(|b| b.is_ascii_graphic())
                && !settlement_domain::pan::contains_pan(id)
        })
    });
    if !acceptable {
        req.headers_mut().remove(REQUEST_ID);
    }
    req
}

/// Any error response that is not already problem+json (a layer's own answer) is
/// rewritten into one, so clients see a single error shape.
async fn problem_for_every_error(response: Response) -> Response {
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE);
    let is_problem = content_type.is_some_and(|v| v.as_bytes() == PROBLEM_JSON.as_bytes());
    // The web pages answer their errors as pages, in the reader's language.
    let is_page = content_type.is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem || is_page {
        return response;
    }
    let body = problem_body(
        status,
        ProblemCode::HttpError,
        status.canonical_reason().unwrap_or("error"),
        Default::default(),
    );
    let mut rewritten = crate::error::json_response(status, &body);
    if let Some(id) = response.headers().get(REQUEST_ID) {
        rewritten.headers_mut().insert(REQUEST_ID, id.clone());
    }
    rewritten
}

/// A handler that panicked answers a problem+json 500 (the request's transaction, if
/// any, was dropped and so rolled back) rather than a dropped connection. The panic
/// message itself went to the process's panic hook.
fn answer_panic(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked; answered 500");
    ApiError::internal(anyhow::anyhow!("a request handler panicked")).into_response()
}

/// Builds the router with its middleware.
pub fn router(state: AppState, request_timeout: Duration) -> Router {
    let body_limit_bytes = state.body_limit_bytes;
    let mut router = Router::new();
    for (_, path, handler) in routes() {
        router = router.route(path, handler);
    }
    let request_id = axum::http::HeaderName::from_static(REQUEST_ID);
    let language_state = state.clone();
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        // The body extractor turns the limit's rejection into problem+json.
        .layer(DefaultBodyLimit::max(body_limit_bytes))
        .layer(CatchPanicLayer::custom(answer_panic))
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::map_request(stamp_receipt))
                .layer(axum::middleware::map_request(sanitize_request_id))
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &Request| {
                            let route = req
                                .extensions()
                                .get::<MatchedPath>()
                                .map_or("unmatched", MatchedPath::as_str);
                            let id = req
                                .headers()
                                .get(REQUEST_ID)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("");
                            // OpenTelemetry's HTTP server conventions: a method it
                            // does not know is `_OTHER`, and its span is named `HTTP`.
                            let method = semconv_method(req.method());
                            let name = if method == "_OTHER" { "HTTP" } else { method };
                            let span = tracing::info_span!(
                                "request",
                                otel.name = %format!("{name} {route}"),
                                otel.kind = "server",
                                otel.status_code = tracing::field::Empty,
                                http.request.method = method,
                                http.route = route,
                                http.response.status_code = tracing::field::Empty,
                                url.scheme = "http",
                                server.address = header_attribute(req, header::HOST.as_str(), true),
                                user_agent.original = header_attribute(req, header::USER_AGENT.as_str(), false),
                                client.address = req
                                    .extensions()
                                    .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                                    .map(|c| c.0.ip().to_string())
                                    .unwrap_or_default(),
                                request_id = id,
                            );
                            // Continue the caller's trace (W3C traceparent) when traces
                            // are exported; without an exporter this does nothing.
                            let parent = opentelemetry::global::get_text_map_propagator(|p| {
                                p.extract(&HeaderExtractor(req.headers()))
                            });
                            let _ = span.set_parent(parent);
                            span
                        })
                        .on_response(|res: &Response, latency: Duration, span: &tracing::Span| {
                            span.record(
                                "http.response.status_code",
                                i64::from(res.status().as_u16()),
                            );
                            if res.status().is_server_error() {
                                span.record("otel.status_code", "ERROR");
                            }
                            tracing::info!(
                                status = res.status().as_u16(),
                                latency_ms = latency.as_millis(),
                                "answered"
                            );
                        }),
                )
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(axum::middleware::from_fn(measure))
                .layer(axum::middleware::from_fn_with_state(
                    language_state,
                    crate::language::answer_in_language,
                ))
                .layer(axum::middleware::map_response(problem_for_every_error))
                .layer(axum::middleware::from_fn(
                    crate::extract::refuse_card_numbers_in_uri,
                ))
                .layer(HandleErrorLayer::new(timed_out))
                .timeout(request_timeout),
        )
}

/// A bound, ready-to-run service.
pub struct Application {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    router: Router,
    pool: PgPool,
    header_read_timeout: Duration,
    shutdown_timeout: Duration,
    settlement_run_interval: Option<Duration>,
    webhook_poll_interval: Option<Duration>,
    webhooks: crate::webhooks::delivery::DeliveryConfig,
    reminder_delay: Duration,
    bank_account_keys: crate::bank_account::BankAccountKeys,
}

impl Application {
    /// Connects the pool (lazily) and binds the listener. Port 0 binds a free port.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let pool = settlement_store::connect_pool(config.database_url.expose(), config.pool)?;
        Application::with_pool(config, pool).await
    }

    /// Like [`Application::build`], with a pool made by the caller.
    pub async fn with_pool(config: Config, pool: PgPool) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.listen_addr).await?;
        let metrics_listener = match config.metrics_listen_addr {
            Some(addr) => Some(TcpListener::bind(addr).await?),
            None => None,
        };
        let state = AppState {
            pool: pool.clone(),
            auth: Arc::new(config.auth.clone()),
            body_limit_bytes: config.body_limit_bytes,
            webhook_reach: config.webhooks.reach,
            batch_number_reuse: config.batch_number_reuse,
            statement_slots: Arc::new(tokio::sync::Semaphore::new(
                crate::statement::MAX_CONCURRENT_STATEMENTS,
            )),
            rate_limits: Arc::new(crate::rate_limit::RateLimiters::new(config.rate_limits)),
            bank_account_keys: Arc::new(config.bank_account_keys.clone()),
            payout_debtor: Arc::new(config.payout_debtor.clone()),
            web_cookie_secure: config.web_cookie_secure,
        };
        Ok(Application {
            listener,
            metrics_listener,
            router: router(state, config.request_timeout),
            pool,
            header_read_timeout: config.header_read_timeout,
            shutdown_timeout: config.shutdown_timeout,
            settlement_run_interval: config.settlement_run_interval,
            webhook_poll_interval: config.webhook_poll_interval,
            webhooks: config.webhooks.clone(),
            bank_account_keys: config.bank_account_keys.clone(),
            reminder_delay: config.reminder_delay,
        })
    }

    /// The pool the application uses.
    pub fn pool(&self) -> PgPool {
        self.pool.clone()
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The bound address of the metrics server, when it runs.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight
    /// requests finish for at most the shutdown timeout, and closes the pool.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        // Bank accounts stored before they were sealed are sealed now, by the one
        // holder of the keys; a failure (say, migrations not applied yet) is retried
        // at the next start and changes nothing.
        match crate::bank_account::seal_plain_accounts(&self.pool, &self.bank_account_keys).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(merchants = n, "plain bank accounts sealed"),
            Err(e) => tracing::warn!(error = format!("{e:#}"), "plain bank accounts not sealed"),
        }
        let stopping = Arc::new(tokio::sync::Notify::new());
        let workers = Workers::start(
            &self.pool,
            WorkerSettings {
                settlement_run_interval: self.settlement_run_interval,
                reminder_delay: self.reminder_delay,
                webhook_poll_interval: self.webhook_poll_interval,
                webhooks: self.webhooks.clone(),
                header_read_timeout: self.header_read_timeout,
            },
            self.metrics_listener,
        );
        let stop_scheduler = workers.stop.clone();
        let notify = stopping.clone();
        let serve = crate::server::serve(
            self.listener,
            self.router,
            self.header_read_timeout,
            async move {
                shutdown.await;
                tracing::info!("shutting down: no new connections, finishing in-flight requests and the current run");
                let _ = stop_scheduler.send(true);
                notify.notify_one();
            },
        );
        let deadline = async {
            stopping.notified().await;
            tokio::time::sleep(self.shutdown_timeout).await;
        };
        let drain = async {
            serve.await;
            workers.join().await;
            Ok::<(), anyhow::Error>(())
        };
        tokio::select! {
            result = drain => result?,
            () = deadline => tracing::warn!("shutdown timeout reached; dropping unfinished work"),
        }
        self.pool.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// What the workers of a replica need.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// How often the scheduler runs settlement (none: it does not run here).
    pub settlement_run_interval: Option<Duration>,
    /// How long after a missed cutoff a terminal is reminded.
    pub reminder_delay: Duration,
    /// How often due webhook deliveries are looked for (none: not here).
    pub webhook_poll_interval: Option<Duration>,
    pub webhooks: crate::webhooks::delivery::DeliveryConfig,
    /// How long the metrics server waits for a request's head.
    pub header_read_timeout: Duration,
}

impl WorkerSettings {
    /// The workers' part of the configuration.
    pub fn of(config: &Config) -> Self {
        WorkerSettings {
            settlement_run_interval: config.settlement_run_interval,
            reminder_delay: config.reminder_delay,
            webhook_poll_interval: config.webhook_poll_interval,
            webhooks: config.webhooks.clone(),
            header_read_timeout: config.header_read_timeout,
        }
    }
}

/// The background work of a replica: the scheduler, webhook delivery and the
/// metrics server, each when configured, stopped together.
struct Workers {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Workers {
    fn start(pool: &PgPool, settings: WorkerSettings, metrics: Option<TcpListener>) -> Self {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        if let Some(every) = settings.settlement_run_interval {
            let task = crate::scheduler::run(
                pool.clone(),
                every,
                settings.reminder_delay,
                stopped.clone(),
            );
            tasks.push(tokio::spawn(task));
        }
        if let Some(every) = settings.webhook_poll_interval {
            let task = crate::webhooks::delivery::run(
                pool.clone(),
                settings.webhooks.clone(),
                every,
                stopped.clone(),
            );
            tasks.push(tokio::spawn(task));
        }
        if let Some(listener) = metrics {
            let router = crate::metrics::router(pool.clone());
            let mut stop = stopped;
            let stopped = async move {
                let _ = stop.changed().await;
            };
            tasks.push(tokio::spawn(crate::server::serve(
                listener,
                router,
                settings.header_read_timeout,
                stopped,
            )));
        }
        Workers { stop, tasks }
    }

    /// Waits for every worker to end (after [`Workers::stop`] was sent).
    async fn join(self) {
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "background task failed");
            }
        }
    }
}

/// Runs the workers alone, without the public HTTP port (`settlementd worker`):
/// the scheduler and webhook delivery as configured, and the metrics server, until
/// `shutdown` completes; then lets the current run finish for at most the shutdown
/// timeout.
pub async fn run_workers(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let pool = settlement_store::connect_pool(config.database_url.expose(), config.pool)?;
    let metrics = match config.metrics_listen_addr {
        Some(addr) => Some(TcpListener::bind(addr).await?),
        None => None,
    };
    let workers = Workers::start(&pool, WorkerSettings::of(&config), metrics);
    tracing::info!(
        scheduler = config.settlement_run_interval.is_some(),
        webhook_delivery = config.webhook_poll_interval.is_some(),
        "workers running"
    );
    shutdown.await;
    tracing::info!("shutting down: finishing the current run");
    let _ = workers.stop.send(true);
    if tokio::time::timeout(config.shutdown_timeout, workers.join())
        .await
        .is_err()
    {
        tracing::warn!("shutdown timeout reached; dropping unfinished work");
    }
    pool.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_handler_that_panics_answers_a_problem_500() {
        let app = Router::new()
            .route(
                "/boom",
                axum::routing::get(|| async {
                    if true {
                        panic!("a handler fails");
                    }
                }),
            )
            .layer(CatchPanicLayer::custom(answer_panic));
        let response = app
            .oneshot(
                Request::builder()
                    .uri("/boom")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let body = axum::body::to_bytes(response.into_body(), 10_000)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], "internal_error");
        assert_eq!(body["status"], 500);
    }
}
