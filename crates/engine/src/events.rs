//! Events: what happened to a merchant's money, written to the outbox in the
//! transaction of the change, and delivered to its webhook endpoints.

use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use settlement_store::events::{insert_event, insert_events, EventRow};

use crate::error::EngineError;

/// Every event type, as merchants subscribe to them.
pub const EVENT_TYPES: &[&str] = &[
    BATCH_ACCEPTED,
    BATCH_ACCEPTED_LATE,
    BATCH_REJECTED,
    BATCH_OUT_OF_BALANCE,
    BATCH_DUPLICATE_TRANSACTIONS,
    BATCH_DECLINED,
    BATCH_AUTO_CLOSED,
    TERMINAL_CLOSE_MISSING,
    SETTLEMENT_CLOSED,
    PAYOUT_IN_TRANSIT,
    PAYOUT_PAID,
    PAYOUT_FAILED,
    PAYOUT_CANCELED,
];

/// A batch was booked on time (or by an operator).
pub const BATCH_ACCEPTED: &str = "batch.accepted";
/// A batch was booked after its cutoff, inside the grace window.
pub const BATCH_ACCEPTED_LATE: &str = "batch.accepted_late";
/// A batch arrived after its grace deadline and was not booked.
pub const BATCH_REJECTED: &str = "batch.rejected";
/// A close's totals disagreed with its lines; nothing was booked.
pub const BATCH_OUT_OF_BALANCE: &str = "batch.out_of_balance";
/// A close repeated transactions presented already; nothing was booked.
pub const BATCH_DUPLICATE_TRANSACTIONS: &str = "batch.duplicate_transactions";
/// Operations declined a batch held after its grace deadline; it is not paid.
pub const BATCH_DECLINED: &str = "batch.declined";
/// The host closed a terminal's unsettled transactions of a business day on its
/// behalf (auto-close); booked in that day's cycle.
pub const BATCH_AUTO_CLOSED: &str = "batch.auto_closed";
/// A terminal has not closed since the last cutoff, or skipped batch numbers.
pub const TERMINAL_CLOSE_MISSING: &str = "terminal.close_missing";
/// A settlement cycle closed.
pub const SETTLEMENT_CLOSED: &str = "settlement.closed";
/// A payout was sent to the bank.
pub const PAYOUT_IN_TRANSIT: &str = "payout.in_transit";
/// A payout arrived.
pub const PAYOUT_PAID: &str = "payout.paid";
/// A payout was returned; its money goes out with the next payout.
pub const PAYOUT_FAILED: &str = "payout.failed";
/// A payout was withdrawn; its money goes out with the next payout.
pub const PAYOUT_CANCELED: &str = "payout.canceled";

/// Writes an event in the caller's transaction; returns its id.
pub async fn emit<T: Serialize>(
    conn: &mut PgConnection,
    merchant_id: &str,
    event_type: &'static str,
    data: &T,
) -> Result<Uuid, EngineError> {
    emit_as(conn, Uuid::now_v7(), merchant_id, event_type, data).await
}

/// Writes events of one type in the caller's transaction, one statement per table
/// whatever their number: `(merchant id, data)` each.
pub async fn emit_many<T: Serialize>(
    conn: &mut PgConnection,
    event_type: &'static str,
    events: &[(&str, T)],
) -> Result<(), EngineError> {
    debug_assert!(EVENT_TYPES.contains(&event_type));
    let created_at = chrono::Utc::now();
    let rows = events
        .iter()
        .map(|(merchant_id, data)| {
            Ok(EventRow {
                id: Uuid::now_v7(),
                merchant_id: (*merchant_id).to_owned(),
                event_type: event_type.to_owned(),
                created_at,
                data: serde_json::to_value(data).map_err(|e| EngineError::Internal(e.into()))?,
                trace_parent: current_trace_parent(),
            })
        })
        .collect::<Result<Vec<_>, EngineError>>()?;
    insert_events(conn, &rows).await?;
    Ok(())
}

/// Writes an event with an id chosen beforehand (a reminder names its event before
/// it exists).
pub async fn emit_as<T: Serialize>(
    conn: &mut PgConnection,
    id: Uuid,
    merchant_id: &str,
    event_type: &'static str,
    data: &T,
) -> Result<Uuid, EngineError> {
    let event = event_row(id, merchant_id, event_type, data)?;
    insert_event(conn, &event).await?;
    Ok(event.id)
}

/// An event as it is written, created now, for a statement that writes it with
/// other rows.
pub fn event_row<T: Serialize>(
    id: Uuid,
    merchant_id: &str,
    event_type: &'static str,
    data: &T,
) -> Result<EventRow, EngineError> {
    debug_assert!(EVENT_TYPES.contains(&event_type));
    Ok(EventRow {
        id,
        merchant_id: merchant_id.to_owned(),
        event_type: event_type.to_owned(),
        created_at: chrono::Utc::now(),
        data: serde_json::to_value(data).map_err(|e| EngineError::Internal(e.into()))?,
        trace_parent: current_trace_parent(),
    })
}

/// The W3C traceparent of the span the caller runs in, when traces are exported
/// (none otherwise): the delivery attempts of the event link to it.
fn current_trace_parent() -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let context = tracing::Span::current().context();
    let span = context.span();
    let sc = span.span_context();
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}

/// The span context a traceparent names, if it is one.
pub fn span_context_of(trace_parent: &str) -> Option<opentelemetry::trace::SpanContext> {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    let mut parts = trace_parent.split('-');
    let (Some("00"), Some(trace), Some(span), Some(flags), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let sc = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(span).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
        true,
        TraceState::default(),
    );
    sc.is_valid().then_some(sc)
}

/// The JSON an endpoint receives for an event.
pub fn payload(e: &EventRow) -> serde_json::Value {
    serde_json::json!({
        "id": e.id,
        "type": e.event_type,
        "created_at": crate::views::timestamp(e.created_at),
        "merchant_id": e.merchant_id,
        "data": e.data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_reads_back_and_anything_else_is_none() {
        let sc =
            span_context_of("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xx",
        ] {
            assert!(span_context_of(bad).is_none(), "{bad}");
        }
    }
}
