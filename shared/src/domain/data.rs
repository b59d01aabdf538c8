//! Custom `data` objects and their shallow merge.

use serde_json::{Map, Value};

use crate::error::Error;

pub type Data = Map<String, Value>;

/// Most top-level keys one `data` object may hold.
pub const MAX_DATA_KEYS: usize = 100;
/// Largest serialised size of one `data` object, in bytes.
pub const MAX_DATA_BYTES: usize = 32 * 1024;

/// Shallow merge: each top-level key of `patch` replaces or adds its value
/// (nested objects are replaced whole), a `null` removes the key, and keys
/// the patch does not mention are kept. Returns whether anything changed.
pub fn merge_data(target: &mut Data, patch: &Data) -> bool {
    let mut changed = false;
    for (key, value) in patch {
        if value.is_null() {
            changed |= target.remove(key).is_some();
        } else if target.get(key) != Some(value) {
            target.insert(key.clone(), value.clone());
            changed = true;
        }
    }
    changed
}

/// Checks a stored `data` object against the published limits.
pub fn check_limits(what: &str, data: &Data) -> Result<(), Error> {
    if data.len() > MAX_DATA_KEYS {
        return Err(Error::invalid(format!(
            "{what} has {} top-level keys; at most {MAX_DATA_KEYS} are allowed",
            data.len()
        )));
    }
    let size = serde_json::to_vec(data)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_DATA_BYTES {
        return Err(Error::invalid(format!(
            "{what} is {size} bytes as JSON; at most {MAX_DATA_BYTES} are allowed"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Data {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn top_level_keys_are_added_or_replaced_and_others_kept() {
        let mut data = obj(json!({"plan": "free", "region": "north_america"}));
        assert!(merge_data(
            &mut data,
            &obj(json!({"plan": "enterprise", "arr": 120000}))
        ));
        assert_eq!(
            Value::Object(data),
            json!({"plan": "enterprise", "region": "north_america", "arr": 120000})
        );
    }

    #[test]
    fn nested_objects_are_replaced_whole() {
        let mut data = obj(json!({"billing": {"cycle": "annual", "currency": "USD"}}));
        merge_data(&mut data, &obj(json!({"billing": {"cycle": "monthly"}})));
        assert_eq!(
            Value::Object(data),
            json!({"billing": {"cycle": "monthly"}})
        );
    }

    #[test]
    fn null_removes_a_key_and_unchanged_values_are_no_change() {
        let mut data = obj(json!({"plan": "free", "csm": "ann"}));
        assert!(!merge_data(
            &mut data,
            &obj(json!({"plan": "free", "missing": null}))
        ));
        assert!(merge_data(&mut data, &obj(json!({"csm": null}))));
        assert_eq!(Value::Object(data), json!({"plan": "free"}));
    }

    #[test]
    fn limits_are_enforced() {
        let many: Data = (0..=MAX_DATA_KEYS)
            .map(|i| (format!("k{i}"), json!(1)))
            .collect();
        assert!(check_limits("data", &many).is_err());
        let big = obj(json!({"blob": "x".repeat(MAX_DATA_BYTES)}));
        assert!(check_limits("data", &big).is_err());
        assert!(check_limits("data", &obj(json!({"plan": "free"}))).is_ok());
    }
}
