//! The scan of a JSON value for what no field may hold: a full card number (PAN,
//! written in the decimal digits of any script), anywhere in a string, a number or an
//! object key, and U+0000, which Postgres cannot store in text.

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn card_numbers_in_the_digits_of_any_script_are_found_in_values_and_keys() {
        for value in [
            json!({"name": "４０００７９２３６５０４６１６２"}),
            json!({"reason": ["ok", "card ٤١١١١١١١١١١١١١١١ seen"]}),
            json!({"holidays": {"٤١١١١١١١١١١١١١١١": "key"}}),
            json!({"url": "https://hooks.example.com/４１１１-１１１１-１１１１-１１１１"}),
        ] {
            assert!(any_string_holds_pan(&value), "{value}");
        }
        let fine = json!({"name": "Café ４２", "count": 4111, "masked": "411111******1111"});
        assert!(!any_string_holds_pan(&fine));
    }
}
