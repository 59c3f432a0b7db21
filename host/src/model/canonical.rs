//! The canonical form of an action's arguments, and its hash: what binds a credential or
//! an approval to exactly one call. Two calls have the same hash when their arguments are
//! the same JSON value, whatever the key order or whitespace the client sent.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Hex SHA-256 of `arguments` serialised with sorted object keys and no whitespace.
pub fn arguments_sha256(arguments: &Value) -> String {
    hex::encode(Sha256::digest(canonical_json(arguments).as_bytes()))
}

/// JSON text with object keys sorted at every level (independent of whether serde_json
/// preserves insertion order in this build).
pub fn canonical_json(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let ordered: BTreeMap<&String, Value> =
                    map.iter().map(|(k, v)| (k, sorted(v))).collect();
                let mut out = serde_json::Map::new();
                for (k, v) in ordered {
                    out.insert(k.clone(), v);
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_and_whitespace_do_not_change_the_hash_and_values_do() {
        let a: Value = serde_json::from_str(r#"{"b": [1, {"y": 2, "x": 1}], "a": "s"}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":"s","b":[1,{"x":1,"y":2}]}"#).unwrap();
        assert_eq!(arguments_sha256(&a), arguments_sha256(&b));
        assert_ne!(
            arguments_sha256(&a),
            arguments_sha256(&json!({"a": "s", "b": [1, {"x": 1, "y": 3}]}))
        );
        assert_eq!(canonical_json(&b), r#"{"a":"s","b":[1,{"x":1,"y":2}]}"#);
    }
}
