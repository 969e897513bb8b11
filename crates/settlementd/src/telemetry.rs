//! Logs and traces. Logs: JSON lines on stderr by default (`LOG_FORMAT=text` for
//! people, the default of `settlementd dev`; colour only on a terminal), filtered by
//! `RUST_LOG` (default `info,sqlx=warn`). Traces: exported over OTLP/HTTP only when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set, following the
//! standard `OTEL_*` variables (service name, resource attributes, sampler, batch
//! delays; `OTEL_EXPORTER_OTLP_PROTOCOL` `http/protobuf` or `http/json`), filtered by
//! `SETTLEMENT_TRACES_FILTER` (default `info`) and never by `RUST_LOG`; otherwise no
//! OpenTelemetry layer is installed at all.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::trace::{SpanContext, TraceContextExt};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::{filter_fn, FilterExt};
use tracing_subscriber::fmt::format::{Format, Json, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Keeps the trace pipeline alive; [`Telemetry::shutdown`] flushes it.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still buffered.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider {
            if let Err(e) = provider.shutdown() {
                eprintln!("settlementd: flushing traces failed: {e}");
            }
        }
    }
}

fn env_set(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.trim().is_empty())
}

/// The OTLP trace pipeline, when an endpoint is configured.
fn tracer_provider() -> Option<SdkTracerProvider> {
    let wanted =
        env_set("OTEL_EXPORTER_OTLP_ENDPOINT") || env_set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    if !wanted || disabled {
        return None;
    }
    let protocol = match std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref() {
        Ok("http/json") => Protocol::HttpJson,
        Ok("grpc") => {
            eprintln!("settlementd: OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported; using http/protobuf");
            Protocol::HttpBinary
        }
        _ => Protocol::HttpBinary,
    };
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .build()
    {
        Ok(e) => e,
        Err(e) => {
            eprintln!("settlementd: OTLP exporter not started: {e}");
            return None;
        }
    };
    // The resource names the service, its version and this process (one replica of
    // several); OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES are read by the builder.
    let mut resource = Resource::builder()
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .with_attribute(KeyValue::new(
            "service.instance.id",
            uuid::Uuid::new_v4().to_string(),
        ));
    if !env_set("OTEL_SERVICE_NAME") {
        resource = resource.with_service_name("settlementd");
    }
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build(),
    )
}

/// JSON log lines that name the trace and span they were written in (`trace_id`,
/// `span_id`, as the exported spans do), so a line can be joined to its trace. Lines
/// outside any exported span have neither.
struct JsonWithTraceIds(Format<Json>);

impl<S, N> FormatEvent<S, N> for JsonWithTraceIds
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        let ids = ctx
            .lookup_current()
            .and_then(|span| {
                tracing::dispatcher::get_default(|d| {
                    tracing_opentelemetry::get_otel_context(&span.id(), d)
                })
            })
            .map(|cx| cx.span().span_context().clone())
            .filter(SpanContext::is_valid);
        match (ids, line.rfind('}')) {
            (Some(ids), Some(end)) => write!(
                writer,
                "{},\"trace_id\":\"{}\",\"span_id\":\"{}\"{}",
                &line[..end],
                ids.trace_id(),
                ids.span_id(),
                &line[end..]
            ),
            _ => writer.write_str(&line),
        }
    }
}

/// Installs the global subscriber; with `traces`, also the OTLP pipeline when one is
/// configured.
pub fn init(traces: bool, text_by_default: bool) -> Telemetry {
    // Logs are filtered by RUST_LOG, spans by their own setting: quieting the logs
    // never silences the traces.
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let text = match std::env::var("LOG_FORMAT") {
        Ok(f) => f == "text",
        Err(_) => text_by_default,
    };
    let logs = if text {
        // Colour only for a person at a terminal, never into files and pipes.
        tracing_subscriber::fmt::layer()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .fmt_fields(JsonFields::new())
            .event_format(JsonWithTraceIds(
                tracing_subscriber::fmt::format()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true),
            ))
            .with_writer(std::io::stderr)
            .boxed()
    };
    let provider = if traces { tracer_provider() } else { None };
    let traces = provider.as_ref().map(|p| {
        let scope = InstrumentationScope::builder("settlementd")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let spans = std::env::var("SETTLEMENT_TRACES_FILTER")
            .ok()
            .and_then(|f| EnvFilter::try_new(f).ok())
            .unwrap_or_else(|| EnvFilter::new("info"));
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer_with_scope(scope))
            // Spans carry what the conventions name, not where the code ran.
            .with_location(false)
            .with_threads(false)
            .with_tracked_inactivity(false)
            .with_target(false)
            .with_level(false)
            // Log lines stay in the logs: spans only, no events as span events.
            .with_filter(spans.and(filter_fn(|m| m.is_span())))
    });
    tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(traces)
        .init();
    Telemetry { provider }
}
