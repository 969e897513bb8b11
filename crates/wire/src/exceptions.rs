//! Query of the exceptions list.

use serde::Deserialize;

/// Query of the exceptions list.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// `open` (the default), `resolved`, `declined` or `all`.
    pub state: Option<String>,
    pub kind: Option<String>,
    pub merchant_id: Option<String>,
}
