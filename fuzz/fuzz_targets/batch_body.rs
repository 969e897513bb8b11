//! A terminal's batch close body, as arbitrary bytes, through every step that runs
//! before the database: JSON parsing, the card number guard, the wire schema, field
//! validation (`BatchCloseRequest::into_domain`), reconciliation, lateness, fee and
//! ledger entry. None may panic, and what validation lets through must hold the
//! invariants the later steps rely on.
//!
//! The first steps repeat `JsonBody::parse` (crates/api/src/extract.rs, with the strict
//! reading and the scan of crates/wire), whose body only an HTTP request can build; the
//! rest are the pure calls of `apply_close`.

#![no_main]

use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

use settlement_wire::scan::any_string_holds_pan;
use settlement_wire::close::BatchCloseRequest;
use settlement_domain::batch::{LineType, MAX_BATCH_NUMBER, MAX_LINES_PER_BATCH};
use settlement_domain::fees::{batch_fee, non_voided_sales};
use settlement_domain::lateness::judge;
use settlement_domain::ledger::batch_acceptance_entry;
use settlement_domain::merchant::{Pricing, SettlementProfile};
use settlement_domain::money::format_amount;
use settlement_domain::reconciliation::{differences, host_totals};

/// The host clock at receipt: a fixed instant, so a crash replays exactly.
const RECEIVED_AT: &str = "2026-03-08T07:30:00Z";

/// Profiles whose calendars stress lateness: a plain one, cutoffs inside a daylight
/// saving gap and at midnight, a half-hour shift and a zone that skipped a whole day.
const PROFILES: [(&str, &str, u32); 5] = [
    ("Etc/UTC", "22:00", 72),
    ("America/New_York", "02:30", 0),
    ("Australia/Lord_Howe", "00:00", 168),
    ("Asia/Kathmandu", "23:59:59", 24),
    ("Pacific/Apia", "00:00:00", 48),
];

fuzz_target!(|data: &[u8]| {
    // The strict reading refuses what serde_json refuses, and texts with an object
    // naming a key twice (found before any later syntax error); what it reads is
    // serde_json's value.
    let strict = settlement_wire::json::from_slice(data);
    let lenient = serde_json::from_slice::<Value>(data);
    match (&strict, &lenient) {
        (Ok(ours), Ok(theirs)) => assert_eq!(ours, theirs),
        (Err(settlement_wire::json::JsonError::DuplicateKey { .. }), _) => return,
        (Err(settlement_wire::json::JsonError::Syntax(_)), Err(_)) => return,
        (ours, theirs) => panic!("strict {ours:?}, serde_json {theirs:?}"),
    }
    let Ok(raw) = strict else {
        return;
    };
    if any_string_holds_pan(&raw) {
        return;
    }
    // The idempotency digest is taken over this canonical text.
    let _ = raw.to_string();
    let Ok(request) = serde_json::from_value::<BatchCloseRequest>(raw) else {
        return;
    };
    let received_at: DateTime<Utc> = RECEIVED_AT.parse().expect("constant instant");
    let Ok(close) = request.into_domain(received_at) else {
        return;
    };

    assert!((1..=MAX_BATCH_NUMBER).contains(&close.batch_number));
    assert!((1..=MAX_LINES_PER_BATCH).contains(&close.lines.len()));
    for line in &close.lines {
        assert!(line.amount_minor > 0, "{line:?}");
        assert!(line.captured_at <= received_at + chrono::Duration::minutes(5));
    }

    let Ok(host) = host_totals(&close.lines) else {
        return;
    };
    let voids = close
        .lines
        .iter()
        .filter(|l| l.line_type == LineType::Void)
        .count();
    assert_eq!(
        host.void_count,
        i64::try_from(voids).expect("bounded count")
    );
    for d in differences(&close.terminal_totals, &host) {
        assert_ne!(d.terminal, d.host, "{d:?}");
        let _ = format_amount(d.terminal, close.currency);
        let _ = format_amount(d.host, close.currency);
    }
    let net = host.net_amount_minor().expect("host_totals checks the net");
    let (sale_count, sale_amount) = non_voided_sales(&close.lines);
    assert!(sale_count <= host.sale_count && sale_amount <= host.sale_amount_minor);
    let _ = batch_acceptance_entry("m_fuzz", close.currency, net);

    let oldest = close.oldest_captured_at().expect("at least one line");
    for (time_zone, cutoff, grace_hours) in PROFILES {
        let pricing = Pricing {
            mdr_basis_points: 10_000,
            fixed_fee_minor: i64::MAX,
        };
        let profile = SettlementProfile::new(time_zone, cutoff, grace_hours, 1, pricing)
            .expect("constant profile");
        let lateness = judge(&profile, oldest, received_at);
        assert!(lateness.grace_deadline >= lateness.cutoff_at);
        assert!(lateness.late_by_seconds >= 0);
        let _ = batch_fee(sale_count, sale_amount, profile.pricing);
    }
});
