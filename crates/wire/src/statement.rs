//! Query of a merchant's statement.

use chrono::NaiveDate;
use serde::Deserialize;

/// Query of a statement.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementQuery {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// `csv` (the default) or `json`.
    pub format: Option<String>,
}
