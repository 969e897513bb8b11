//! The audit trail: its query, its records and the ledger check as the API shows
//! them.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Query of the audit list.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// An audit record as the API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct AuditView {
    pub id: Uuid,
    pub actor: String,
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub reason: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub created_at: String,
}

/// One invariant's result.
#[derive(Debug, Serialize, Deserialize)]
pub struct CheckView {
    pub name: String,
    pub description: String,
    pub ok: bool,
    pub violations: i64,
}

/// The ledger check's answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct LedgerCheckView {
    pub ok: bool,
    pub checks: Vec<CheckView>,
}
