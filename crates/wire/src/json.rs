//! JSON request bodies read strictly: an object that names a key twice is refused.
//! RFC 8259 leaves such an object's meaning to the reader, and readers differ (most
//! keep the last value, some the first, some refuse): a body that one reader (a
//! gateway, a log filter, the card-number scan of a client) sees one way and the
//! service another could slip a value past the first. So no reading is chosen.
//!
//! The check is made while the value is built, in the same single pass as
//! `serde_json::from_slice::<Value>` and with its limits (nesting depth included).

use std::cell::RefCell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a body is not a JSON value without duplicate keys.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// Not JSON at all; serde_json's message names a position, never the content.
    #[error("{0}")]
    Syntax(serde_json::Error),
    /// An object names `key` twice; `path` is where that object is (`""` for the
    /// top level, else `transactions[3]` and the like).
    #[error("the key {key:?} appears more than once in {}", place(path))]
    DuplicateKey {
        /// Where the object is.
        path: String,
        /// The key it names twice.
        key: String,
    },
}

fn place(path: &str) -> String {
    if path.is_empty() {
        "the top-level object".to_owned()
    } else {
        format!("the object at {path}")
    }
}

impl JsonError {
    /// The path of the repeated key itself (`transactions[3].auth_code`), for a
    /// duplicate.
    pub fn duplicate_key_path(&self) -> Option<String> {
        match self {
            JsonError::Syntax(_) => None,
            JsonError::DuplicateKey { path, key } if path.is_empty() => Some(key.clone()),
            JsonError::DuplicateKey { path, key } => Some(format!("{path}.{key}")),
        }
    }
}

/// Parses a JSON body, refusing any object, at any depth, that names a key twice.
pub fn from_slice(bytes: &[u8]) -> Result<Value, JsonError> {
    let found = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = ValueSeed {
        at: &At::Root,
        duplicate: &found,
    }
    .deserialize(&mut deserializer)
    .and_then(|value| deserializer.end().map(|()| value));
    match (parsed, found.into_inner()) {
        (Ok(value), _) => Ok(value),
        (Err(_), Some((path, key))) => Err(JsonError::DuplicateKey { path, key }),
        (Err(e), None) => Err(JsonError::Syntax(e)),
    }
}

/// Where a value sits, kept on the stack while the parse descends.
enum At<'a> {
    Root,
    Key(&'a At<'a>, &'a str),
    Index(&'a At<'a>, usize),
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            At::Root => Ok(()),
            At::Key(At::Root, key) => f.write_str(key),
            At::Key(parent, key) => write!(f, "{parent}.{key}"),
            At::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// Builds a `Value` like serde_json's own visitor, remembering the first duplicate
/// key (where, which) in `duplicate` before failing the parse.
struct ValueSeed<'a> {
    at: &'a At<'a>,
    duplicate: &'a RefCell<Option<(String, String)>>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // As serde_json's own visitor: a float JSON cannot hold is null.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        loop {
            let seed = ValueSeed {
                at: &At::Index(self.at, items.len()),
                duplicate: self.duplicate,
            };
            match seq.next_element_seed(seed)? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                let message = format!("duplicate key {key:?}");
                *self.duplicate.borrow_mut() = Some((self.at.to_string(), key));
                return Err(A::Error::custom(message));
            }
            let value = map.next_value_seed(ValueSeed {
                at: &At::Key(self.at, &key),
                duplicate: self.duplicate,
            })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn duplicate(text: &str) -> Option<String> {
        match from_slice(text.as_bytes()) {
            Err(e @ JsonError::DuplicateKey { .. }) => e.duplicate_key_path(),
            Err(JsonError::Syntax(e)) => panic!("{text}: {e}"),
            Ok(_) => None,
        }
    }

    #[test]
    fn a_key_named_twice_anywhere_is_found_with_its_path() {
        assert_eq!(
            duplicate(r#"{"batch_number": 1, "batch_number": 2}"#).as_deref(),
            Some("batch_number")
        );
        assert_eq!(
            duplicate(
                r#"{"transactions": [{}, {"a": 1}, {"auth_code": "x", "b": [], "auth_code": "y"}]}"#
            )
            .as_deref(),
            Some("transactions[2].auth_code")
        );
        assert_eq!(
            duplicate(r#"[{"a": {"b": {"c": 1, "c": 1}}}]"#).as_deref(),
            Some("[0].a.b.c")
        );
        // The same value twice is a duplicate too; escapes are compared decoded.
        assert_eq!(duplicate(r#"{"a": 1, "\u0061": 1}"#).as_deref(), Some("a"));
        let e = from_slice(br#"{"x": {"k": 1, "k": 2}}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"the key "k" appears more than once in the object at x"#
        );
    }

    #[test]
    fn the_same_key_in_different_objects_is_no_duplicate() {
        for text in [
            r#"{"a": {"a": 1}, "b": {"a": 2}}"#,
            r#"[{"a": 1}, {"a": 2}]"#,
            r#"{"a": 1, "A": 2, "a ": 3}"#,
            r#"{}"#,
            r#"[]"#,
            r#""text""#,
        ] {
            assert_eq!(duplicate(text), None, "{text}");
        }
    }

    #[test]
    fn what_is_not_json_is_a_syntax_error() {
        for text in ["", "{", r#"{"a": 1} x"#, r#"{"a" 1}"#, "[1,]"] {
            assert!(
                matches!(from_slice(text.as_bytes()), Err(JsonError::Syntax(_))),
                "{text}"
            );
        }
        // serde_json's nesting limit still holds.
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(matches!(
            from_slice(deep.as_bytes()),
            Err(JsonError::Syntax(_))
        ));
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| Value::Number(n.into())),
            any::<u64>().prop_map(|n| Value::Number(n.into())),
            any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
            ".{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(".{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_value_without_duplicates_reads_as_serde_json_reads_it(value in json_value()) {
            let text = serde_json::to_vec(&value).unwrap();
            let ours = from_slice(&text).unwrap();
            let theirs: Value = serde_json::from_slice(&text).unwrap();
            prop_assert_eq!(ours, theirs);
        }
    }
}
