//! A batch close's reads and writes, each one statement: what the close must know
//! once its locks are held, and everything a booked close writes.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use settlement_domain::batch::TransactionLine;
use settlement_domain::host::HostTransactionType;
use settlement_domain::host_match::AuthorizationOnFile;

use crate::batches::BatchRow;
use crate::events::EventRow;
use crate::idempotency::StoredKey;

/// The latest use of a batch number by a terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestUse {
    pub batch_id: Uuid,
    pub content_hash: Vec<u8>,
    pub received_at: DateTime<Utc>,
    pub number_use: i32,
}

/// What a close reads under its locks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseState {
    /// What the idempotency key already holds, if it was used.
    pub key: Option<StoredKey>,
    /// The latest use of the batch number, if it was used.
    pub latest: Option<LatestUse>,
    /// The merchant's closed cycles of the currency within the asked dates.
    pub closed_cycles: Vec<NaiveDate>,
    /// The id of each asked account, in the asked order; `None` where it does not
    /// exist yet.
    pub account_ids: Vec<Option<i64>>,
    /// The asked lines that do not match the host, each with the host's
    /// authorization of its RRN when there is one (lines that match are not returned:
    /// nearly every close reads nothing here).
    pub unmatched: Vec<(String, Option<AuthorizationOnFile>)>,
}

/// What a close asks.
pub struct CloseQuery<'a> {
    pub terminal_id: &'a str,
    pub idempotency_key: &'a str,
    pub batch_number: i32,
    pub merchant_id: &'a str,
    pub currency: &'a str,
    /// The closed cycles from this date on, for `cycle_days` days; none asked when
    /// `None`.
    pub cycles_from: Option<NaiveDate>,
    pub cycle_days: i32,
    /// The accounts whose ids are wanted: kind and owning merchant (none for a house
    /// account), all of `currency`.
    pub accounts: &'a [(&'a str, Option<&'a str>)],
    /// The lines to match against the terminal's authorizations, as parallel arrays:
    /// RRN, STAN, amount, type (`sale` or `refund`) and authorization code.
    pub rrns: &'a [&'a str],
    pub stans: &'a [&'a str],
    pub amounts: &'a [i64],
    pub types: &'a [&'a str],
    pub auth_codes: &'a [Option<&'a str>],
}

#[derive(sqlx::FromRow)]
struct StateRow {
    request_hash: Option<Vec<u8>>,
    response_status: Option<i32>,
    response_body: Option<Value>,
    latest_id: Option<Uuid>,
    latest_content_hash: Option<Vec<u8>>,
    latest_received_at: Option<DateTime<Utc>>,
    latest_number_use: Option<i32>,
    closed_cycles: Vec<NaiveDate>,
    account_ids: Vec<Option<i64>>,
    unmatched: Value,
}

/// Reads what a close needs, in one statement. The caller holds the terminal's close
/// lock and the merchant's cycle lock (taken by an earlier statement, so this one's
/// snapshot sees every close and cycle close committed before them).
#[tracing::instrument(
    name = "batch.read",
    skip_all,
    fields(
        otel.kind = "client",
        db.system.name = "postgresql",
        db.operation.name = "SELECT",
        db.collection.name = "batches",
    )
)]
pub async fn read_close_state(
    conn: &mut PgConnection,
    q: &CloseQuery<'_>,
) -> Result<CloseState, sqlx::Error> {
    let kinds: Vec<&str> = q.accounts.iter().map(|(kind, _)| *kind).collect();
    let owners: Vec<Option<&str>> = q.accounts.iter().map(|(_, owner)| *owner).collect();
    let row = sqlx::query_as!(
        StateRow,
        "SELECT k.request_hash AS \"request_hash?\", k.response_status, k.response_body, \
             b.id AS \"latest_id?\", b.content_hash AS \"latest_content_hash?\", \
             b.received_at AS \"latest_received_at?\", b.number_use AS \"latest_number_use?\", \
             ARRAY(SELECT c.cycle_date FROM settlement_cycles c \
                   WHERE c.merchant_id = $4 AND c.currency = $5::bpchar \
                     AND c.cycle_date >= $6 AND c.cycle_date < $6 + $7::int) AS \"closed_cycles!\", \
             ARRAY(SELECT (SELECT a.id FROM accounts a WHERE a.kind = u.kind AND a.currency = $5::bpchar \
                               AND a.merchant_id = u.owner \
                           UNION ALL \
                           SELECT a.id FROM accounts a WHERE a.kind = u.kind AND a.currency = $5::bpchar \
                               AND a.merchant_id IS NULL AND u.owner IS NULL) \
                   FROM unnest($8::text[], $9::text[]) WITH ORDINALITY AS u(kind, owner, n) \
                   ORDER BY u.n) AS \"account_ids!: Vec<Option<i64>>\", \
             (SELECT coalesce(jsonb_agg(jsonb_build_array(l.rrn, a.stan, a.auth_code, a.transaction_type, \
                                                          a.amount_minor, a.reversed_at IS NOT NULL)), '[]') \
              FROM unnest($10::bpchar[], $11::bpchar[], $12::bigint[], $13::text[], $14::bpchar[]) \
                   AS l(rrn, stan, amount_minor, kind, auth_code) \
              LEFT JOIN host_authorizations a ON a.terminal_id = $1 AND a.rrn = l.rrn \
              WHERE a.rrn IS NULL OR a.reversed_at IS NOT NULL OR a.stan <> l.stan \
                 OR a.amount_minor <> l.amount_minor OR a.transaction_type <> l.kind \
                 OR a.auth_code IS DISTINCT FROM l.auth_code) \
                 AS \"unmatched!\" \
         FROM (VALUES (1)) AS one(x) \
         LEFT JOIN idempotency_keys k ON k.terminal_id = $1 AND k.idempotency_key = $2 \
         LEFT JOIN LATERAL ( \
             SELECT id, content_hash, received_at, number_use FROM batches \
             WHERE terminal_id = $1 AND batch_number = $3 ORDER BY number_use DESC LIMIT 1) b ON true",
        q.terminal_id,
        q.idempotency_key,
        q.batch_number,
        q.merchant_id,
        q.currency,
        q.cycles_from,
        q.cycle_days,
        &kinds as &[&str],
        &owners as &[Option<&str>],
        q.rrns as &[&str],
        q.stans as &[&str],
        q.amounts,
        q.types as &[&str],
        q.auth_codes as &[Option<&str>],
    )
    .fetch_one(conn)
    .await?;
    let key = row.request_hash.map(|request_hash| StoredKey {
        request_hash,
        response_status: row.response_status,
        response_body: row.response_body,
    });
    let latest = match (
        row.latest_id,
        row.latest_content_hash,
        row.latest_received_at,
        row.latest_number_use,
    ) {
        (Some(batch_id), Some(content_hash), Some(received_at), Some(number_use)) => {
            Some(LatestUse {
                batch_id,
                content_hash,
                received_at,
                number_use,
            })
        }
        _ => None,
    };
    Ok(CloseState {
        key,
        latest,
        closed_cycles: row.closed_cycles,
        account_ids: row.account_ids,
        unmatched: unmatched_lines(row.unmatched)?,
    })
}

/// Reads the unmatched lines a close's read returns, each `[rrn, stan, auth_code,
/// type, amount, reversed]` of the host's authorization (all but the RRN null when
/// the host has none).
fn unmatched_lines(
    value: Value,
) -> Result<Vec<(String, Option<AuthorizationOnFile>)>, sqlx::Error> {
    type Tuple = (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<bool>,
    );
    let tuples: Vec<Tuple> =
        serde_json::from_value(value).map_err(|e| sqlx::Error::Decode(e.into()))?;
    tuples
        .into_iter()
        .map(|(rrn, stan, auth_code, kind, amount_minor, reversed)| {
            let auth = match (stan, auth_code, kind, amount_minor, reversed) {
                (Some(stan), Some(auth_code), Some(kind), Some(amount_minor), Some(reversed)) => {
                    let transaction_type = HostTransactionType::parse(&kind).ok_or_else(|| {
                        sqlx::Error::Decode(format!("transaction type {kind:?} is unknown").into())
                    })?;
                    Some(AuthorizationOnFile {
                        rrn: rrn.clone(),
                        stan,
                        auth_code,
                        transaction_type,
                        amount_minor,
                        reversed,
                    })
                }
                _ => None,
            };
            Ok((rrn, auth))
        })
        .collect()
}

/// The journal entry booking a batch (its id is the batch's `journal_entry_id`): its
/// description and postings (account id, amount), all in the batch's currency.
pub struct BookedEntry<'a> {
    pub description: &'a str,
    pub postings: &'a [(i64, i64)],
}

/// Everything a booked (or held) close writes.
pub struct NewClose<'a> {
    pub batch: &'a BatchRow,
    pub lines: &'a [TransactionLine],
    /// Per line, in order, the host batch that settled it already; shorter (empty
    /// when none) means none for the lines past its end (unnest pads with NULL).
    pub settled_by: &'a [Option<Uuid>],
    /// The entry, when the batch books money (`batch.journal_entry_id` names it).
    pub entry: Option<BookedEntry<'a>>,
    /// Why the terminal's open attempts at this batch number are resolved.
    pub resolution: &'a str,
    pub event: &'a EventRow,
    /// The key and answer stored for a terminal's close; none for a host batch.
    pub answer: Option<StoredAnswer<'a>>,
}

/// A close's idempotency key and the answer stored under it.
pub struct StoredAnswer<'a> {
    pub idempotency_key: &'a str,
    pub response_status: u16,
    pub response_body: &'a Value,
}

/// Writes a close in one statement: the journal entry and its postings, the batch,
/// its lines, the resolution of open attempts at its number, its event and their
/// deliveries, and the idempotency key with its answer. The database checks the
/// entry's balance, the lines' presentment and every reference when the statement
/// ends; a line presented already fails the whole statement with the unique
/// violation of [`crate::presentments::PRESENTED_INDEX`].
#[tracing::instrument(
    name = "batch.write",
    skip_all,
    fields(
        books_entry = c.entry.is_some(),
        otel.kind = "client",
        db.system.name = "postgresql",
        db.operation.name = "INSERT",
        db.collection.name = "batches",
    )
)]
pub async fn write_close(conn: &mut PgConnection, c: &NewClose<'_>) -> Result<(), sqlx::Error> {
    let b = c.batch;
    let lines = c.lines;
    let col = |f: fn(&TransactionLine) -> &str| lines.iter().map(f).collect::<Vec<_>>();
    let opt = |f: fn(&TransactionLine) -> Option<&str>| lines.iter().map(f).collect::<Vec<_>>();
    let postings = c.entry.as_ref().map_or(&[][..], |e| e.postings);
    // `deliveries` is the pending deliveries of the event `e` (as in
    // `events::insert_events`): one per live endpoint of the merchant that takes its type.
    sqlx::query!(
        "WITH entry AS ( \
             INSERT INTO journal_entries (id, kind, merchant_id, description) \
             SELECT $22, 'batch_accepted', $3, $35 WHERE $22::uuid IS NOT NULL), \
         postings AS ( \
             INSERT INTO postings (entry_id, account_id, currency, amount_minor) \
             SELECT $22, u.account_id, $6, u.amount_minor \
             FROM unnest($36::bigint[], $37::bigint[]) AS u(account_id, amount_minor)), \
         batch AS ( \
             INSERT INTO batches (id, terminal_id, merchant_id, batch_number, status, currency, \
                 business_date, cycle_date, received_at, cutoff_at, grace_deadline, late_by_seconds, \
                 sale_count, sale_amount_minor, refund_count, refund_amount_minor, void_count, \
                 void_amount_minor, net_amount_minor, line_count, content_hash, journal_entry_id, \
                 fee_minor, number_use, origin, unmatched_lines, already_settled_lines) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
                 $18, $19, $20, $21, $22, $23, $24, $46, $47, $48)), \
         lines AS ( \
             INSERT INTO batch_lines (batch_id, terminal_id, line_no, stan, rrn, line_type, \
                 amount_minor, original_stan, captured_at, card_brand, masked_pan, auth_code, settled_by) \
             SELECT $1, $2, * FROM unnest($25::int[], $26::text[], $27::text[], $28::text[], \
                 $29::bigint[], $30::text[], $31::timestamptz[], $32::text[], $33::text[], $34::text[], \
                 $49::uuid[])), \
         attempts AS ( \
             UPDATE close_attempts SET state = 'resolved', decided_by = 'system', \
                 decided_at = now(), resolution = $38 \
             WHERE terminal_id = $2 AND batch_number = $4 AND state = 'open' \
                 AND outcome <> 'unmatched_transactions'), \
         e AS ( \
             INSERT INTO events (id, merchant_id, type, created_at, data, trace_parent) \
             VALUES ($39, $3, $40, $41, $42, $50) \
             RETURNING id, merchant_id, type, created_at), \
         deliveries AS ( \
             INSERT INTO event_deliveries (id, event_id, endpoint_id, status, next_attempt_at, created_at) \
             SELECT uuid_v7(), e.id, w.id, 'pending', e.created_at, e.created_at \
             FROM e JOIN webhook_endpoints w ON w.merchant_id = e.merchant_id AND w.deleted_at IS NULL \
                 AND (cardinality(w.event_types) = 0 OR e.type = ANY(w.event_types)) \
             ORDER BY e.id, w.id) \
         INSERT INTO idempotency_keys (terminal_id, idempotency_key, request_hash, \
             response_status, response_body) SELECT $2, $43, $21, $44, $45 WHERE $43::text IS NOT NULL",
        b.id,
        b.terminal_id,
        b.merchant_id,
        b.batch_number,
        b.status.as_str(),
        b.currency,
        b.business_date,
        b.cycle_date,
        b.received_at,
        b.cutoff_at,
        b.grace_deadline,
        b.late_by_seconds,
        b.sale_count,
        b.sale_amount_minor,
        b.refund_count,
        b.refund_amount_minor,
        b.void_count,
        b.void_amount_minor,
        b.net_amount_minor,
        b.line_count,
        b.content_hash,
        b.journal_entry_id,
        b.fee_minor,
        b.number_use,
        &(1..).take(lines.len()).collect::<Vec<i32>>(),
        col(|l| l.stan.as_str()) as Vec<&str>,
        col(|l| l.rrn.as_str()) as Vec<&str>,
        col(|l| l.line_type.as_str()) as Vec<&str>,
        &lines.iter().map(|l| l.amount_minor).collect::<Vec<_>>(),
        opt(|l| l.original_stan.as_deref()) as Vec<Option<&str>>,
        &lines.iter().map(|l| l.captured_at).collect::<Vec<_>>(),
        opt(|l| l.card_brand.as_deref()) as Vec<Option<&str>>,
        opt(|l| l.masked_pan.as_deref()) as Vec<Option<&str>>,
        opt(|l| l.auth_code.as_deref()) as Vec<Option<&str>>,
        c.entry.as_ref().map(|e| e.description),
        &postings.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        &postings
            .iter()
            .map(|(_, amount)| *amount)
            .collect::<Vec<_>>(),
        c.resolution,
        c.event.id,
        c.event.event_type,
        c.event.created_at,
        c.event.data,
        c.answer.as_ref().map(|a| a.idempotency_key),
        c.answer.as_ref().map(|a| i32::from(a.response_status)),
        c.answer.as_ref().map(|a| a.response_body),
        b.origin.as_str(),
        b.unmatched_lines,
        b.already_settled_lines,
        c.settled_by as &[Option<Uuid>],
        c.event.trace_parent,
    )
    .execute(conn)
    .await?;
    Ok(())
}
