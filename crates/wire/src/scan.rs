//! The scan of a JSON value for what no field may hold: a full card number (PAN),
//! anywhere in a string, a number or an object key, and U+0000, which Postgres
//! cannot store in text.

use serde_json::Value;
use settlement_domain::pan::contains_pan;

/// True when any string, number or object key in the JSON holds a card number.
pub fn any_string_holds_pan(value: &Value) -> bool {
    match value {
        Value::String(s) => contains_pan(s),
        Value::Array(items) => items.iter().any(any_string_holds_pan),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| contains_pan(k) || any_string_holds_pan(v)),
        Value::Number(n) => contains_pan(&n.to_string()),
        Value::Null | Value::Bool(_) => false,
    }
}

/// True when any string or object key in the JSON holds U+0000.
pub fn any_string_holds_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(any_string_holds_nul),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| k.contains('\0') || any_string_holds_nul(v)),
        Value::Number(_) | Value::Null | Value::Bool(_) => false,
    }
}
