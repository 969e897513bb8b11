//! Query of the audit trail.

use serde::Deserialize;

/// Query of the audit list.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}
