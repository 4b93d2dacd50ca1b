//! The shape log pipelines need of `sluice`'s JSON lines, checked on every line the integration
//! suites read: each line a flat object (no field nested under another), and across every line
//! of a test binary no field name that is also the prefix of another (`listener` beside
//! `listener.addr`), and no field that is a number on one line and a string on another.
//! Elasticsearch and OpenSearch map dotted names to objects, so either would make them refuse
//! documents.

use parking_lot::Mutex;
use serde_json::Value;
use std::collections::BTreeMap;

/// The JSON kind a field had when first seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Number,
    Bool,
    Null,
    Array,
}

/// Every field name seen by this test binary, with its kind.
static FIELDS: Mutex<BTreeMap<String, Kind>> = Mutex::new(BTreeMap::new());

/// What is wrong with `line` alone or against every line seen before it; empty when nothing.
pub fn problems(line: &Value) -> Vec<String> {
    let Some(object) = line.as_object() else {
        return vec![format!("not a JSON object: {line}")];
    };
    if object.contains_key("raw") {
        // Not JSON as written (a start-up error before logging was set up).
        return Vec::new();
    }
    let mut found = Vec::new();
    let mut fields = FIELDS.lock();
    for (name, value) in object {
        let kind = match value {
            Value::Object(_) => {
                found.push(format!("field {name:?} is an object: {line}"));
                continue;
            }
            Value::String(_) => Kind::String,
            Value::Number(_) => Kind::Number,
            Value::Bool(_) => Kind::Bool,
            Value::Null => Kind::Null,
            Value::Array(_) => Kind::Array,
        };
        match fields.get(name) {
            Some(&seen) if seen != kind => found.push(format!(
                "field {name:?} is a {kind:?} here and was a {seen:?} before: {line}"
            )),
            Some(_) => {}
            None => {
                let clash = fields.keys().find(|other| {
                    other.starts_with(&format!("{name}.")) || name.starts_with(&format!("{other}."))
                });
                if let Some(other) = clash {
                    found.push(format!(
                        "field {name:?} and field {other:?}: one is the other's prefix: {line}"
                    ));
                }
                fields.insert(name.clone(), kind);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::problems;

    #[test]
    fn a_leaf_and_a_dotted_field_under_it_clash_across_lines() {
        assert!(problems(&json!({"shape_test_a.b": 1})).is_empty());
        let found = problems(&json!({"shape_test_a": "x"}));
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn nested_objects_and_changing_kinds_are_refused() {
        assert_eq!(problems(&json!({"shape_test_span": {"id": 1}})).len(), 1);
        assert!(problems(&json!({"shape_test_n": 1})).is_empty());
        assert_eq!(problems(&json!({"shape_test_n": "1"})).len(), 1);
    }
}
