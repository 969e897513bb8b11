//! Authorizations from the acquirer's host: a request's records are checked, then
//! written in one transaction, set-based (one insert of the new authorizations, one
//! locked read of the stored ones they repeat or reverse, one update of the
//! reversals), and each record is answered with its outcome. And a terminal's
//! unsettled transactions: authorized, not reversed, presented by no booked or held
//! batch.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use settlement_domain::batch::FieldError;
use settlement_domain::host::{
    differing_fields, disagreeing_fields, HostAuthorization, HostRecord, HostTransactionType,
};
use settlement_domain::lateness::{judge, BatchStatus};
use settlement_domain::merchant::SettlementProfile;
use settlement_domain::money::format_amount;
use settlement_store::host_authorizations::{
    self, HostAuthorizationRow, NewAuthorizations, TerminalOwner, UnsettledSum,
};
use settlement_store::merchants;
use settlement_store::presentments::{self, Repeat};
use settlement_wire::close::timestamp;
use settlement_wire::host::{
    check_record_count, HostOutcome, HostRecordCode, HostRecordRequest, HostRecordResult,
    HostRecordsReport, HostTotals, UnsettledAmount, UnsettledList, UnsettledQuery,
    UnsettledSummary, UnsettledTransactionView,
};

use crate::db::in_transaction;
use crate::error::EngineError;
use crate::profile::{existing_merchant, profile_of};
use crate::views::{page, page_limit, stored_currency, FromRow, Reader};
use settlement_i18n::Lang;

/// One record as checked at the edge: the domain record, or why it is invalid.
pub type CheckedRecord = Result<HostRecord, FieldError>;

/// Records the host's authorizations and reversals in one transaction; answers one
/// result per record, in their order, with its index taken from `indexes` (the
/// position in the request, or the line of a capture file).
pub async fn record(
    pool: &PgPool,
    records: &[CheckedRecord],
    indexes: &[usize],
    received_at: DateTime<Utc>,
) -> Result<HostRecordsReport, EngineError> {
    if records.len() != indexes.len() {
        return Err(EngineError::Internal(anyhow::anyhow!(
            "{} records with {} indexes",
            records.len(),
            indexes.len()
        )));
    }
    let results = in_transaction!(pool, |tx| record_in(&mut tx, records, received_at).await?)?;
    let mut totals = HostTotals::default();
    let records = results
        .into_iter()
        .zip(indexes)
        .map(|(r, &index)| {
            totals.count(r.outcome);
            HostRecordResult {
                index,
                outcome: r.outcome,
                code: r.code,
                detail: r.detail,
            }
        })
        .collect();
    Ok(HostRecordsReport { totals, records })
}

/// A record's outcome before its index is known.
#[derive(Debug, Clone)]
struct Decided {
    outcome: HostOutcome,
    code: Option<HostRecordCode>,
    detail: Option<String>,
}

impl Decided {
    fn plain(outcome: HostOutcome) -> Self {
        Decided {
            outcome,
            code: None,
            detail: None,
        }
    }

    fn with(outcome: HostOutcome, code: HostRecordCode, detail: String) -> Self {
        Decided {
            outcome,
            code: Some(code),
            detail: Some(detail),
        }
    }
}

type Key<'a> = (&'a str, &'a str);

/// The transaction of [`record`].
async fn record_in(
    tx: &mut PgConnection,
    records: &[CheckedRecord],
    received_at: DateTime<Utc>,
) -> Result<Vec<Decided>, EngineError> {
    let mut decided: Vec<Option<Decided>> = records
        .iter()
        .map(|r| {
            r.as_ref().err().map(|e| {
                Decided::with(
                    HostOutcome::Rejected,
                    HostRecordCode::InvalidField,
                    format!("{}: {}", e.field, e.reason),
                )
            })
        })
        .collect();

    // Who owns each terminal named, in one read.
    let terminal_ids: Vec<&str> = records
        .iter()
        .flatten()
        .map(HostRecord::terminal_id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let owners: HashMap<String, TerminalOwner> =
        host_authorizations::find_terminal_owners(&mut *tx, &terminal_ids)
            .await?
            .into_iter()
            .map(|o| (o.terminal_id.clone(), o))
            .collect();
    for (slot, record) in decided.iter_mut().zip(records) {
        let Ok(record) = record else { continue };
        let Some(owner) = owners.get(record.terminal_id()) else {
            *slot = Some(Decided::with(
                HostOutcome::Rejected,
                HostRecordCode::UnknownTerminal,
                "terminal_id: no terminal has this id".to_owned(),
            ));
            continue;
        };
        if let HostRecord::Authorization(a) = record {
            if a.currency.code() != owner.currency {
                *slot = Some(Decided::with(
                    HostOutcome::Rejected,
                    HostRecordCode::CurrencyNotAccepted,
                    format!(
                        "currency: must be the merchant's settlement currency {}",
                        owner.currency
                    ),
                ));
            }
        }
    }

    // The new authorizations: the first record of each key, in key order.
    let mut first_of_key: HashMap<Key<'_>, usize> = HashMap::new();
    for (i, record) in records.iter().enumerate() {
        if let (None, Ok(HostRecord::Authorization(a))) = (&decided[i], record) {
            first_of_key
                .entry((a.terminal_id.as_str(), a.rrn.as_str()))
                .or_insert(i);
        }
    }
    let mut candidates: Vec<(Key<'_>, usize)> = first_of_key.into_iter().collect();
    candidates.sort_unstable();
    let mut rows = NewAuthorizations::default();
    for &(_, i) in &candidates {
        let Ok(HostRecord::Authorization(a)) = &records[i] else {
            continue;
        };
        let Some(owner) = owners.get(&a.terminal_id) else {
            continue;
        };
        rows.terminal_ids.push(&a.terminal_id);
        rows.merchant_ids.push(&owner.merchant_id);
        rows.rrns.push(&a.rrn);
        rows.stans.push(&a.stan);
        rows.auth_codes.push(&a.auth_code);
        rows.transaction_types.push(a.transaction_type.as_str());
        rows.amounts_minor.push(a.amount_minor);
        rows.currencies.push(a.currency.code());
        rows.authorized_at.push(a.authorized_at);
        rows.card_brands.push(a.card_brand.as_deref());
        rows.masked_pans.push(a.masked_pan.as_deref());
    }
    let inserted: BTreeSet<(String, String)> = if rows.terminal_ids.is_empty() {
        BTreeSet::new()
    } else {
        host_authorizations::insert_new_authorizations(&mut *tx, &rows)
            .await?
            .into_iter()
            .collect()
    };
    for &((terminal_id, rrn), i) in &candidates {
        if inserted.contains(&(terminal_id.to_owned(), rrn.to_owned())) {
            decided[i] = Some(Decided::plain(HostOutcome::Recorded));
        }
    }

    // Every other record is compared with what is stored, locked for the reversals.
    let pending: BTreeSet<Key<'_>> = records
        .iter()
        .zip(&decided)
        .filter(|(_, d)| d.is_none())
        .filter_map(|(r, _)| r.as_ref().ok())
        .map(|r| (r.terminal_id(), r.rrn()))
        .collect();
    let stored: HashMap<(String, String), (HostAuthorization, bool)> = if pending.is_empty() {
        HashMap::new()
    } else {
        let (ids, rrns): (Vec<&str>, Vec<&str>) = pending.iter().copied().unzip();
        host_authorizations::lock_authorizations(&mut *tx, &ids, &rrns)
            .await?
            .iter()
            .map(|row| {
                let reversed = row.reversed_at.is_some();
                authorization_of(row)
                    .map(|a| ((row.terminal_id.clone(), row.rrn.clone()), (a, reversed)))
            })
            .collect::<Result<_, _>>()?
    };
    let mut reversals: BTreeSet<Key<'_>> = BTreeSet::new();
    for (slot, record) in decided.iter_mut().zip(records) {
        if slot.is_some() {
            continue;
        }
        let Ok(record) = record else { continue };
        let key = (record.terminal_id(), record.rrn());
        let found = stored.get(&(key.0.to_owned(), key.1.to_owned()));
        *slot = Some(match (record, found) {
            (HostRecord::Authorization(a), Some((s, _))) => {
                let differ = differing_fields(s, a);
                if differ.is_empty() {
                    Decided::plain(HostOutcome::Unchanged)
                } else {
                    Decided::with(
                        HostOutcome::Conflict,
                        HostRecordCode::AuthorizationDiffers,
                        format!(
                            "this terminal and RRN were authorized with another {}; nothing changed",
                            differ.join(", ")
                        ),
                    )
                }
            }
            (HostRecord::Authorization(_), None) => {
                // Inserted by none and stored by none: a fault, never the record's.
                return Err(EngineError::Internal(anyhow::anyhow!(
                    "an authorization was neither inserted nor found"
                )));
            }
            (HostRecord::Reversal(_), None) => Decided::with(
                HostOutcome::Rejected,
                HostRecordCode::UnknownAuthorization,
                "no authorization of this terminal and RRN is known (yet); send the reversal again after its authorization".to_owned(),
            ),
            (HostRecord::Reversal(r), Some((s, reversed))) => {
                let disagree = disagreeing_fields(s, r);
                if !disagree.is_empty() {
                    Decided::with(
                        HostOutcome::Conflict,
                        HostRecordCode::ReversalDisagrees,
                        format!(
                            "these fields of the reversal disagree with its authorization: {}; nothing changed",
                            disagree.join(", ")
                        ),
                    )
                } else if *reversed || !reversals.insert(key) {
                    Decided::plain(HostOutcome::Unchanged)
                } else {
                    Decided::plain(HostOutcome::Reversed)
                }
            }
        });
    }
    if !reversals.is_empty() {
        note_reversals_after_settlement(&mut *tx, records, &mut decided, &reversals).await?;
        let (ids, rrns): (Vec<&str>, Vec<&str>) = reversals.iter().copied().unzip();
        let done =
            host_authorizations::reverse_authorizations(&mut *tx, &ids, &rrns, received_at).await?;
        if done != u64::try_from(reversals.len()).unwrap_or(u64::MAX) {
            return Err(EngineError::Internal(anyhow::anyhow!(
                "{done} of {} locked authorizations were reversed",
                reversals.len()
            )));
        }
    }
    decided
        .into_iter()
        .map(|d| {
            d.ok_or_else(|| EngineError::Internal(anyhow::anyhow!("a record was not decided")))
        })
        .collect()
}

/// A reversal of a transaction a batch has settled already (the terminal's, or the
/// host's auto-close) is recorded, as the host's fact, but cannot take back money
/// booked for the merchant: its answer says so and names the batch, for operations
/// to recover the amount (a refund).
async fn note_reversals_after_settlement(
    conn: &mut PgConnection,
    records: &[Result<HostRecord, FieldError>],
    decided: &mut [Option<Decided>],
    reversals: &BTreeSet<Key<'_>>,
) -> Result<(), EngineError> {
    let mut by_terminal: HashMap<&str, Vec<&str>> = HashMap::new();
    for (terminal, rrn) in reversals {
        by_terminal.entry(terminal).or_default().push(rrn);
    }
    let mut settled: HashMap<(String, String), Repeat> = HashMap::new();
    for (terminal, rrns) in by_terminal {
        for r in presentments::find_presented(conn, terminal, &rrns).await? {
            settled.insert((terminal.to_owned(), r.rrn.clone()), r);
        }
    }
    if settled.is_empty() {
        return Ok(());
    }
    for (slot, record) in decided.iter_mut().zip(records) {
        let (Ok(HostRecord::Reversal(r)), Some(d)) = (record, slot.as_ref()) else {
            continue;
        };
        if d.outcome != HostOutcome::Reversed {
            continue;
        }
        if let Some(batch) = settled.get(&(r.terminal_id.clone(), r.rrn.clone())) {
            tracing::warn!(
                terminal_id = r.terminal_id,
                batch_id = %batch.batch_id,
                "a reversal arrived for a transaction settled already"
            );
            *slot = Some(Decided::with(
                HostOutcome::Reversed,
                HostRecordCode::ReversedAfterSettlement,
                format!(
                    "recorded, but the transaction was settled already by batch {} ({}): its money stays booked for the merchant; operations recover it with a refund",
                    batch.batch_id, batch.status
                ),
            ));
        }
    }
    Ok(())
}

/// The columns a capture file may name in its header row: the fields of a JSON record.
pub const CAPTURE_FILE_COLUMNS: [&str; 11] = [
    "type",
    "terminal_id",
    "rrn",
    "stan",
    "auth_code",
    "transaction_type",
    "amount",
    "currency",
    "authorized_at",
    "card_brand",
    "masked_pan",
];

/// Reads a host capture file (CSV, RFC 4180, UTF-8): a header row naming columns of
/// [`CAPTURE_FILE_COLUMNS`] (`type` required, any order), then one record per line;
/// an empty cell is an absent field, blank lines are skipped. Answers the records
/// with their lines (from 1, the header being line 1). A card number anywhere
/// refuses the whole file, as does a file that is not such CSV or holds no or more
/// than [`settlement_domain::host::MAX_HOST_RECORDS`] records.
pub fn read_capture_file(body: &[u8]) -> Result<(Vec<HostRecordRequest>, Vec<usize>), EngineError> {
    let text =
        std::str::from_utf8(body).map_err(|_| EngineError::field("body", "must be UTF-8 text"))?;
    // Checked on the raw text first, so a number split across cells or quoted is
    // refused as well and never echoed back.
    if settlement_domain::pan::contains_pan(text) {
        return Err(EngineError::PanNotAllowed);
    }
    if text.contains('\0') {
        return Err(EngineError::field(
            "body",
            "text must not hold the NUL character (U+0000)",
        ));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(body);
    let headers = reader
        .headers()
        .map_err(|_| EngineError::field("body", "line 1 is not a valid CSV header row"))?
        .clone();
    let mut columns = Vec::with_capacity(headers.len());
    for name in &headers {
        if !CAPTURE_FILE_COLUMNS.contains(&name) || columns.contains(&name) {
            return Err(EngineError::field(
                "body",
                format!(
                    "the header row names {name:?}: columns are {} (each once)",
                    CAPTURE_FILE_COLUMNS.join(", ")
                ),
            ));
        }
        columns.push(name);
    }
    if !columns.contains(&"type") {
        return Err(EngineError::field(
            "body",
            "the header row must name a type column",
        ));
    }
    let limit = settlement_domain::host::MAX_HOST_RECORDS;
    let mut records = Vec::new();
    let mut lines = Vec::new();
    for row in reader.records() {
        let row = row.map_err(|e| {
            let line = e.position().map_or(0, csv::Position::line);
            EngineError::field(
                "body",
                format!("line {line} is not valid CSV with one cell per header column"),
            )
        })?;
        if row.iter().all(str::is_empty) {
            continue;
        }
        if records.len() == limit {
            // One past the limit is enough to refuse the file.
            records.push(HostRecordRequest::default());
            break;
        }
        let mut record = HostRecordRequest::default();
        for (name, cell) in columns.iter().zip(row.iter()) {
            let value = (!cell.is_empty()).then(|| cell.to_owned());
            match *name {
                "type" => record.record_type = cell.to_owned(),
                "terminal_id" => record.terminal_id = value,
                "rrn" => record.rrn = value,
                "stan" => record.stan = value,
                "auth_code" => record.auth_code = value,
                "transaction_type" => record.transaction_type = value,
                "amount" => record.amount = value,
                "currency" => record.currency = value,
                "authorized_at" => record.authorized_at = value,
                "card_brand" => record.card_brand = value,
                _ => record.masked_pan = value,
            }
        }
        records.push(record);
        lines.push(crate::bank_reports::line_of(body, row.position()));
    }
    check_record_count(records.len())?;
    Ok((records, lines))
}

/// The domain authorization of a stored row.
fn authorization_of(row: &HostAuthorizationRow) -> Result<HostAuthorization, EngineError> {
    Ok(HostAuthorization {
        terminal_id: row.terminal_id.clone(),
        rrn: row.rrn.clone(),
        stan: row.stan.clone(),
        auth_code: row.auth_code.clone(),
        transaction_type: HostTransactionType::parse(&row.transaction_type).ok_or_else(|| {
            EngineError::Internal(anyhow::anyhow!(
                "stored transaction type {:?} is unknown",
                row.transaction_type
            ))
        })?,
        amount_minor: row.amount_minor,
        currency: stored_currency(&row.currency)?,
        authorized_at: row.authorized_at,
        card_brand: row.card_brand.clone(),
        masked_pan: row.masked_pan.clone(),
    })
}

impl FromRow<HostAuthorizationRow> for UnsettledTransactionView {
    fn from_row(row: &HostAuthorizationRow) -> Result<Self, EngineError> {
        let currency = stored_currency(&row.currency)?;
        Ok(UnsettledTransactionView {
            rrn: row.rrn.clone(),
            stan: row.stan.clone(),
            auth_code: row.auth_code.clone(),
            transaction_type: row.transaction_type.clone(),
            amount: format_amount(row.amount_minor, currency),
            currency: row.currency.clone(),
            authorized_at: timestamp(row.authorized_at),
            card_brand: row.card_brand.clone(),
            masked_pan: row.masked_pan.clone(),
        })
    }
}

/// The summary of one terminal's sums per currency (empty when it has none).
pub fn summary_of(sums: &[&UnsettledSum]) -> Result<UnsettledSummary, EngineError> {
    let mut summary = UnsettledSummary::default();
    for s in sums {
        let currency = stored_currency(&s.currency)?;
        let net = s
            .sale_amount_minor
            .checked_sub(s.refund_amount_minor)
            .ok_or_else(|| EngineError::Internal(anyhow::anyhow!("unsettled amount overflows")))?;
        summary.count += s.count;
        summary.amounts.push(UnsettledAmount {
            currency: s.currency.clone(),
            count: s.count,
            sale_amount: format_amount(s.sale_amount_minor, currency),
            refund_amount: format_amount(s.refund_amount_minor, currency),
            net_amount: format_amount(net, currency),
        });
        let since = timestamp(s.since);
        if summary.since.as_ref().is_none_or(|old| since < *old) {
            summary.since = Some(since);
        }
    }
    Ok(summary)
}

/// The summaries of the given terminals' unsettled transactions, by terminal (a
/// terminal with none is absent).
pub async fn summaries(
    conn: &mut PgConnection,
    terminal_ids: &[&str],
) -> Result<HashMap<String, UnsettledSummary>, EngineError> {
    let sums = host_authorizations::sum_unsettled(conn, terminal_ids).await?;
    let mut by_terminal: HashMap<&str, Vec<&UnsettledSum>> = HashMap::new();
    for s in &sums {
        by_terminal
            .entry(s.terminal_id.as_str())
            .or_default()
            .push(s);
    }
    by_terminal
        .into_iter()
        .map(|(t, sums)| Ok((t.to_owned(), summary_of(&sums)?)))
        .collect()
}

/// What the merchant should do about a terminal's unsettled transactions, the
/// oldest authorized at `since`, in plain words: a close now is judged by the
/// lateness rules like any other (its business date is that of its oldest sale).
pub fn next_step(
    profile: &SettlementProfile,
    summary: &UnsettledSummary,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    reader: &Reader,
) -> String {
    let lateness = judge(profile, since, now);
    let amount = summary
        .amounts
        .iter()
        .map(|a| written_amount(reader, &a.net_amount, &a.currency))
        .collect::<Vec<_>>()
        .join(", ");
    let what = reader.tr(
        "unsettled-what",
        &[("count", summary.count.into()), ("amount", amount.into())],
    );
    let cutoff = reader.instant(lateness.cutoff_at);
    let grace = reader.instant(lateness.grace_deadline);
    // A close now is paid in the cycle the lateness rules give it.
    let arrival =
        reader.date(reader.arrival(lateness.cycle_date.unwrap_or(lateness.business_date)));
    let args = |id: &str| {
        reader.tr(
            id,
            &[
                ("what", what.as_str().into()),
                ("cutoff", cutoff.as_str().into()),
                ("grace_deadline", grace.as_str().into()),
                ("arrival", arrival.as_str().into()),
            ],
        )
    };
    if profile.auto_close_after.is_some() && lateness.status != BatchStatus::RejectedOutsideGrace {
        let closes_at = reader.instant(profile.cycle_due_at(lateness.business_date));
        return reader.tr(
            "unsettled-auto-close",
            &[
                ("what", what.as_str().into()),
                ("cutoff", cutoff.as_str().into()),
                ("closes_at", closes_at.into()),
                ("arrival", arrival.as_str().into()),
            ],
        );
    }
    match lateness.status {
        BatchStatus::Accepted => args("unsettled-on-time"),
        BatchStatus::AcceptedLate => args("unsettled-late"),
        _ => reader.tr(
            "unsettled-past-grace",
            &[
                ("what", what.as_str().into()),
                ("grace_deadline", grace.as_str().into()),
            ],
        ),
    }
}

/// An amount of the unsettled summary (a decimal string, maybe negative) as a
/// sentence writes it; as sent when it does not read back.
fn written_amount(reader: &Reader, amount: &str, currency: &str) -> String {
    let Ok(currency) = currency.parse::<settlement_domain::money::Currency>() else {
        return format!("{currency} {amount}");
    };
    let (negative, digits) = amount
        .strip_prefix('-')
        .map_or((false, amount), |rest| (true, rest));
    match settlement_domain::money::parse_amount(digits, currency) {
        Ok(minor) => reader.money(if negative { -minor } else { minor }, currency),
        Err(_) => format!("{} {amount}", currency.code()),
    }
}

/// The cursor after a transaction of the unsettled list: its authorization time as
/// seconds and microseconds since the epoch, and its RRN (`1764900000.123456_RRN...`).
/// The time is never one run of 13 to 19 digits, which the card-number guard on query
/// values would refuse as a possible card number (a run of 16 digits passes Luhn one
/// time in ten).
fn unsettled_cursor_of(at: DateTime<Utc>, rrn: &str) -> String {
    format!(
        "{}.{:06}_{rrn}",
        at.timestamp(),
        at.timestamp_subsec_micros()
    )
}

/// Reads a cursor of the unsettled list ([`unsettled_cursor_of`]).
fn unsettled_cursor(cursor: &str) -> Result<(DateTime<Utc>, String), EngineError> {
    let bad = || EngineError::field("cursor", "is not a cursor this API returned");
    let (at, rrn) = cursor.split_once('_').ok_or_else(bad)?;
    let (secs, micros) = at.split_once('.').ok_or_else(bad)?;
    let micros = micros
        .parse::<u32>()
        .ok()
        .filter(|m| *m < 1_000_000 && micros.len() == 6)
        .ok_or_else(bad)?;
    let at = secs
        .parse::<i64>()
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, micros * 1_000))
        .ok_or_else(bad)?;
    if rrn.len() != 12 || !rrn.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(bad());
    }
    Ok((at, rrn.to_owned()))
}

/// A terminal's unsettled transactions: the summary and one page, oldest first. The
/// terminal must be the merchant's (else: not found).
pub async fn unsettled(
    pool: &PgPool,
    merchant_id: &str,
    terminal_id: &str,
    q: UnsettledQuery,
    lang: &Lang,
) -> Result<UnsettledList, EngineError> {
    let limit = page_limit(q.limit)?;
    let after = q.cursor.as_deref().map(unsettled_cursor).transpose()?;
    let mut tx = crate::db::begin_snapshot_read(pool, crate::db::Plans::Chosen).await?;
    let terminal = merchants::find_terminal(&mut tx, terminal_id)
        .await?
        .filter(|t| t.merchant_id == merchant_id)
        .ok_or(EngineError::NotFound("terminal"))?;
    let merchant = existing_merchant(&mut tx, merchant_id).await?;
    let profile = profile_of(&merchant)?;
    let now = Utc::now();
    let reader = Reader::of_merchant(&mut tx, &merchant, lang, now, None).await?;
    let sums =
        host_authorizations::sum_unsettled(&mut tx, &[terminal.terminal_id.as_str()]).await?;
    let rows = host_authorizations::list_unsettled(
        &mut tx,
        terminal_id,
        after.as_ref().map(|(at, rrn)| (*at, rrn.as_str())),
        limit + 1,
    )
    .await?;
    tx.commit().await?;
    let summary = summary_of(&sums.iter().collect::<Vec<_>>())?;
    let next_step = summary
        .since
        .as_deref()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|since| next_step(&profile, &summary, since.with_timezone(&Utc), now, &reader));
    let page = page(
        rows,
        limit,
        |r| unsettled_cursor_of(r.authorized_at, &r.rrn),
        UnsettledTransactionView::from_row,
    )?;
    Ok(UnsettledList {
        terminal_id: terminal.terminal_id,
        summary,
        next_step,
        data: page.data,
        has_more: page.has_more,
        next_cursor: page.next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unsettled_cursor_reads_back_and_never_looks_like_a_card_number() {
        let at = DateTime::from_timestamp(1_764_900_000, 123_456_000).unwrap();
        let cursor = unsettled_cursor_of(at, "RRN000000001");
        assert_eq!(cursor, "1764900000.123456_RRN000000001");
        assert_eq!(
            unsettled_cursor(&cursor).unwrap(),
            (at, "RRN000000001".to_owned())
        );
        for bad in [
            "1764900000123456_RRN000000001",
            "1764900000.12345_RRN000000001",
            "x.000001_RRN000000001",
        ] {
            assert!(unsettled_cursor(bad).is_err(), "{bad}");
        }
    }
}
