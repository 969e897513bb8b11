//! A merchant's statement: every transaction, batch, fee, cycle
//! and payout in a date range as CSV or JSON, streamed: rows go out as Postgres
//! produces them, through a small bounded channel, so memory stays flat. Held and
//! declined batches are listed under kinds of their own (`held_transaction`,
//! `held_batch`, `declined_transaction`, `declined_batch`): shown, never money.
//! Columns are only ever added at the end, so a reader by column name keeps working.

use std::sync::Arc;

use futures_util::{Stream, TryStreamExt};
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::Semaphore;

use settlement_domain::money::{format_amount, Currency};
use settlement_store::statement::{statement_rows, StatementRow};
use settlement_wire::statement::StatementQuery;

use crate::error::EngineError;
use crate::profile::existing_merchant;
use crate::views::timestamp;

/// Longest range one statement covers.
pub const MAX_STATEMENT_DAYS: i64 = 366;
/// Chunks buffered between the query and the client; bounds memory per download.
const CHANNEL_CHUNKS: usize = 16;
/// Rows per chunk sent to the client.
const ROWS_PER_CHUNK: usize = 256;
/// Statements streamed at once per replica; each holds one pooled connection, so
/// downloads can never take the pool from terminals' closes.
pub const MAX_CONCURRENT_STATEMENTS: usize = 2;
/// A client that reads nothing for this long loses its download and its connection.
const STALLED_CLIENT: std::time::Duration = std::time::Duration::from_secs(30);

/// How a statement is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
}

/// The columns of the CSV statement (rows are written by [`crate::csv_out`]).
const CSV_HEADER: &str =
    "kind,date,occurred_at,reference,detail,batch_id,terminal_id,settlement_id,payout_id,\
     amount,currency,rrn,auth_code,card_brand,masked_pan\n";

/// An absent value is an empty field.
fn opt(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("")
}

/// Where a row falls in the answer (a JSON array separates all but the first).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    First,
    Later,
}

fn render(row: &StatementRow, format: Format, place: Place) -> String {
    let amount = row
        .currency
        .parse::<Currency>()
        .map(|c| format_amount(row.amount_minor, c))
        .unwrap_or_else(|_| row.amount_minor.to_string());
    match format {
        Format::Csv => crate::csv_out::record([
            row.kind.as_str(),
            &row.entry_date.to_string(),
            &timestamp(row.occurred_at),
            &row.reference,
            &row.detail,
            opt(&row.batch_id),
            opt(&row.terminal_id),
            opt(&row.cycle_id),
            opt(&row.payout_id),
            &amount,
            &row.currency,
            opt(&row.rrn),
            opt(&row.auth_code),
            opt(&row.card_brand),
            opt(&row.masked_pan),
        ]),
        Format::Json => {
            let value = json!({
                "kind": row.kind, "date": row.entry_date, "occurred_at": timestamp(row.occurred_at),
                "reference": row.reference, "detail": row.detail, "batch_id": row.batch_id,
                "terminal_id": row.terminal_id, "settlement_id": row.cycle_id, "payout_id": row.payout_id,
                "amount": amount, "currency": row.currency, "rrn": row.rrn, "auth_code": row.auth_code,
                "card_brand": row.card_brand, "masked_pan": row.masked_pan,
            });
            let separator = match place {
                Place::First => "",
                Place::Later => ",",
            };
            format!("{separator}{value}\n")
        }
    }
}

/// A statement on its way: its format and its text in chunks, as Postgres produces
/// the rows. An `Err` chunk means the statement broke off and the answer must too.
pub struct Statement<S> {
    pub format: Format,
    pub chunks: S,
}

impl Format {
    /// The media type of the statement's text.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
        }
    }
}

/// Starts a merchant's statement over a date range, when one of the replica's
/// `slots` is free (each statement holds one pooled connection while it streams, so
/// downloads never take the pool from terminals' closes).
pub async fn statement(
    pool: &PgPool,
    slots: &Arc<Semaphore>,
    merchant_id: &str,
    q: &StatementQuery,
) -> Result<Statement<impl Stream<Item = Result<String, std::io::Error>>>, EngineError> {
    let format = match q.format.as_deref() {
        None | Some("csv") => Format::Csv,
        Some("json") => Format::Json,
        Some(_) => return Err(EngineError::field("format", "must be csv or json")),
    };
    if q.from > q.to {
        return Err(EngineError::field("from", "must not be after to"));
    }
    if (q.to - q.from).num_days() >= MAX_STATEMENT_DAYS {
        return Err(EngineError::field(
            "to",
            format!("a statement covers at most {MAX_STATEMENT_DAYS} days"),
        ));
    }
    {
        let mut conn = pool.acquire().await?;
        existing_merchant(&mut conn, merchant_id).await?;
    }
    let slot = slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| EngineError::Unavailable)?;

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(CHANNEL_CHUNKS);
    let pool = pool.clone();
    let merchant_id = merchant_id.to_owned();
    let (from, to) = (q.from, q.to);
    tokio::spawn(async move {
        let _slot = slot;
        let mut rows = statement_rows(&pool, &merchant_id, from, to);
        let mut chunk = String::from(match format {
            Format::Csv => CSV_HEADER,
            Format::Json => "[\n",
        });
        let mut in_chunk = 0;
        let mut place = Place::First;
        loop {
            match rows.try_next().await {
                Ok(Some(row)) => {
                    chunk.push_str(&render(&row, format, place));
                    place = Place::Later;
                    in_chunk += 1;
                    if in_chunk == ROWS_PER_CHUNK {
                        in_chunk = 0;
                        // A closed channel means the client went away, and a client that
                        // stops reading is let go: either way, stop reading.
                        let sent = tokio::time::timeout(
                            STALLED_CLIENT,
                            tx.send(Ok(std::mem::take(&mut chunk))),
                        )
                        .await;
                        if !matches!(sent, Ok(Ok(()))) {
                            return;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "statement query failed mid-stream");
                    let _ = tx
                        .send(Err(std::io::Error::other("statement interrupted")))
                        .await;
                    return;
                }
            }
        }
        if format == Format::Json {
            chunk.push_str("]\n");
        }
        let _ = tx.send(Ok(chunk)).await;
    });
    Ok(Statement {
        format,
        chunks: futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)),
    })
}
