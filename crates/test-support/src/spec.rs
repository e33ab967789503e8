//! Validation of API responses against Docker's own swagger (v1.50, vendored in
//! `crates/docker-api/spec/`). Swagger 2.0 schemas are JSON Schema draft 4 plus `x-nullable`,
//! which is turned into `"type": [T, "null"]`. Arrays and maps also accept `null`: dockerd is
//! written in Go, whose encoder writes nil slices and maps as `null` (e.g. `Aliases`, `Links` of
//! the default bridge), and clients handle it; strings, numbers, booleans and structs stay strict.

use std::sync::OnceLock;

use serde_json::{json, Map, Value};

fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = crate::repo_root().join("crates/docker-api/spec/docker-engine-api-v1.50.yaml");
        let text = std::fs::read_to_string(&path).expect("read vendored swagger");
        let y: serde_yaml::Value = serde_yaml::from_str(&text).expect("parse swagger yaml");
        let mut v = yaml_to_json(y);
        nullable(&mut v);
        for (def, prop) in GO_POINTERS {
            let p = &mut v["definitions"][def]["properties"][prop];
            if let Some(Value::String(t)) = p.get("type").cloned() {
                p["type"] = json!([t, "null"]);
            }
        }
        v
    })
}

/// Fields that are Go pointers in moby's types, which dockerd itself sends as `null` when unset,
/// though the swagger does not mark them `x-nullable`.
const GO_POINTERS: &[(&str, &str)] = &[
    ("Resources", "MemorySwappiness"),
    ("Resources", "OomKillDisable"),
    ("Resources", "PidsLimit"),
    ("Resources", "Init"),
];

fn yaml_to_json(y: serde_yaml::Value) -> Value {
    match y {
        serde_yaml::Value::Null => Value::Null,
        serde_yaml::Value::Bool(b) => Value::Bool(b),
        serde_yaml::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                json!(i)
            } else if let Some(u) = n.as_u64() {
                json!(u)
            } else {
                json!(n.as_f64().unwrap_or_default())
            }
        }
        serde_yaml::Value::String(s) => Value::String(s),
        serde_yaml::Value::Sequence(s) => Value::Array(s.into_iter().map(yaml_to_json).collect()),
        serde_yaml::Value::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    serde_yaml::Value::String(s) => s,
                    other => serde_yaml::to_string(&other)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                };
                out.insert(key, yaml_to_json(v));
            }
            Value::Object(out)
        }
        serde_yaml::Value::Tagged(t) => yaml_to_json(t.value),
    }
}

/// Applies `x-nullable: true` as a JSON-Schema type union, everywhere in the document.
fn nullable(v: &mut Value) {
    match v {
        Value::Object(m) => {
            let is_map =
                m.get("type") == Some(&json!("object")) && m.contains_key("additionalProperties");
            let go_nil = m.get("type") == Some(&json!("array")) || is_map;
            if m.get("x-nullable") == Some(&Value::Bool(true)) || go_nil {
                if let Some(Value::String(t)) = m.get("type").cloned() {
                    m.insert("type".into(), json!([t, "null"]));
                }
            }
            for child in m.values_mut() {
                nullable(child);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(nullable),
        _ => {}
    }
}

/// The response schema of `method path` (path as in the spec, e.g. `/containers/{id}/json`)
/// for `status`.
fn response_schema(method: &str, path: &str, status: u16) -> Value {
    let s = spec();
    let op = &s["paths"][path][method.to_ascii_lowercase()];
    assert!(op.is_object(), "no operation {method} {path} in the spec");
    let schema = op["responses"][status.to_string()]["schema"].clone();
    assert!(!schema.is_null(), "no schema for {method} {path} {status}");
    schema
}

/// Validates `body` as the spec's response of `method path` with `status`; panics listing every
/// violation.
pub fn assert_response(method: &str, path: &str, status: u16, body: &Value) {
    let mut schema = response_schema(method, path, status);
    if let Value::Object(m) = &mut schema {
        m.insert("definitions".into(), spec()["definitions"].clone());
    }
    let validator = jsonschema::draft4::new(&schema).expect("compile response schema");
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status} does not match Docker's spec:\n{}\nbody: {}",
        errors.join("\n"),
        serde_json::to_string_pretty(body).unwrap_or_default()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validator_rejects_wrong_types_and_accepts_nullable() {
        // SystemVersion: `Version` is a string.
        let bad = json!({"Version": 5});
        let r = std::panic::catch_unwind(|| assert_response("GET", "/version", 200, &bad));
        assert!(r.is_err());
        assert_response(
            "GET",
            "/version",
            200,
            &json!({"Version": "1", "ApiVersion": "1.50"}),
        );
    }
}
