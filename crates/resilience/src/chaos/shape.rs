//! A small structural check of JSON request bodies (chaos experiments and load tests): the
//! expected keys and JSON types, so a mistake is reported with its full path
//! (`faults[0].probability`) before serde turns the value into a typed spec.

use serde_json::{Map, Value};

/// The JSON type a field must have.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Str,
    /// Any finite number.
    Num,
    /// A non-negative integer up to the bound.
    UInt(u64),
    /// An array whose elements are each checked by the function.
    Arr(fn(&Value, &str) -> Result<(), Mismatch>),
}

/// One field of an object: name, type, whether it must be present (and not null).
pub(crate) type Field = (&'static str, Kind, bool);

/// The first problem found: the JSON path and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mismatch {
    pub path: String,
    pub message: String,
}

impl Mismatch {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Mismatch {
            path: path.into(),
            message: message.into(),
        }
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Checks that `v` is an object with only the `fields` listed, each of its kind.
/// `path` is the object's own path (`""` for the body).
pub(crate) fn object<'a>(
    v: &'a Value,
    path: &str,
    fields: &[Field],
) -> Result<&'a Map<String, Value>, Mismatch> {
    let Value::Object(map) = v else {
        let at = if path.is_empty() { "body" } else { path };
        return Err(Mismatch::new(
            at,
            format!(
                "must be a JSON object, not {}",
                modelgate_types::json_type_name(v)
            ),
        ));
    };
    for key in map.keys() {
        if !fields.iter().any(|(name, _, _)| name == key) {
            let known: Vec<&str> = fields.iter().map(|(n, _, _)| *n).collect();
            return Err(Mismatch::new(
                join(path, key),
                format!("unknown field (expected one of: {})", known.join(", ")),
            ));
        }
    }
    for (name, kind, required) in fields {
        let at = join(path, name);
        match map.get(*name) {
            None | Some(Value::Null) if *required => {
                return Err(Mismatch::new(at, "is required"));
            }
            None | Some(Value::Null) => {}
            Some(value) => check(value, &at, *kind)?,
        }
    }
    Ok(map)
}

/// Checks one value against a kind.
pub(crate) fn check(v: &Value, path: &str, kind: Kind) -> Result<(), Mismatch> {
    let ok = match kind {
        Kind::Str => v.is_string(),
        Kind::Num => v.as_f64().is_some_and(f64::is_finite),
        Kind::UInt(max) => v.as_u64().is_some_and(|n| n <= max),
        Kind::Arr(each) => {
            let Value::Array(items) = v else {
                return Err(Mismatch::new(
                    path,
                    format!(
                        "must be an array, not {}",
                        modelgate_types::json_type_name(v)
                    ),
                ));
            };
            for (i, item) in items.iter().enumerate() {
                each(item, &format!("{path}[{i}]"))?;
            }
            true
        }
    };
    if ok {
        return Ok(());
    }
    let want = match kind {
        Kind::Str => "a string".to_owned(),
        Kind::Num => "a number".to_owned(),
        Kind::UInt(max) => format!("an integer from 0 to {max}"),
        Kind::Arr(_) => "an array".to_owned(),
    };
    Err(Mismatch::new(
        path,
        format!("must be {want}, not {}", describe(v)),
    ))
}

fn describe(v: &Value) -> String {
    match v {
        Value::Number(n) => format!("{n}"),
        Value::String(s) if s.len() <= 40 => format!("the string \"{s}\""),
        other => modelgate_types::json_type_name(other).to_owned(),
    }
}

/// Array element check: a string.
pub(crate) fn each_str(v: &Value, path: &str) -> Result<(), Mismatch> {
    check(v, path, Kind::Str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FIELDS: &[Field] = &[
        ("name", Kind::Str, true),
        ("rate", Kind::Num, false),
        ("code", Kind::UInt(599), false),
        ("tags", Kind::Arr(each_str), false),
    ];

    fn path(v: Value) -> Option<String> {
        object(&v, "", FIELDS).err().map(|m| m.path)
    }

    #[test]
    fn names_the_offending_path() {
        assert_eq!(path(json!({"name": "x", "rate": 0.5})), None);
        assert_eq!(path(json!({"name": "x", "rate": null})), None);
        assert_eq!(path(json!({})).as_deref(), Some("name"));
        assert_eq!(path(json!({"name": null})).as_deref(), Some("name"));
        assert_eq!(path(json!({"name": 1})).as_deref(), Some("name"));
        assert_eq!(
            path(json!({"name": "x", "rate": "high"})).as_deref(),
            Some("rate")
        );
        assert_eq!(
            path(json!({"name": "x", "code": 600})).as_deref(),
            Some("code")
        );
        assert_eq!(
            path(json!({"name": "x", "code": -1})).as_deref(),
            Some("code")
        );
        assert_eq!(
            path(json!({"name": "x", "tags": ["a", 2]})).as_deref(),
            Some("tags[1]")
        );
        assert_eq!(
            path(json!({"name": "x", "extra": 1})).as_deref(),
            Some("extra")
        );
        assert_eq!(path(json!([1])).as_deref(), Some("body"));
        let nested = object(&json!({"name": 2}), "faults[3]", FIELDS).unwrap_err();
        assert_eq!(nested.path, "faults[3].name");
        assert!(nested.message.contains("must be a string"), "{nested:?}");
    }
}
