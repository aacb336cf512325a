//! The MCP `inputSchema` of a Higress tool, generated from its `args` at config load.

use serde_json::{json, Map, Value};

/// One declared argument, as the schema generator needs it.
pub struct ArgSpec<'a> {
    /// Argument name.
    pub name: &'a str,
    /// JSON Schema type (`string` when absent).
    pub kind: Option<&'a str>,
    /// Human description.
    pub description: Option<&'a str>,
    /// Required flag.
    pub required: bool,
    /// Default value.
    pub default: Option<Value>,
    /// Allowed values.
    pub choices: Option<Vec<Value>>,
    /// Array item schema.
    pub items: Option<Value>,
    /// Object property schemas.
    pub properties: Option<Value>,
    /// Further JSON Schema keywords, as written (`format`, `minimum`, `maximum`, `pattern`,
    /// `minLength`, `maxLength`).
    pub keywords: Vec<(&'static str, Value)>,
}

/// JSON Schema types an argument may declare.
pub const TYPES: [&str; 6] = ["string", "number", "integer", "boolean", "array", "object"];

/// Builds `{"type":"object","properties":{..},"required":[..]}`.
pub fn input_schema(args: &[ArgSpec<'_>]) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    for a in args {
        let mut p = Map::new();
        p.insert("type".into(), json!(a.kind.unwrap_or("string")));
        if let Some(d) = a.description {
            p.insert("description".into(), json!(d));
        }
        if let Some(d) = &a.default {
            p.insert("default".into(), d.clone());
        }
        if let Some(c) = &a.choices {
            p.insert("enum".into(), Value::Array(c.clone()));
        }
        if let Some(i) = &a.items {
            p.insert("items".into(), i.clone());
        }
        if let Some(pr) = &a.properties {
            p.insert("properties".into(), pr.clone());
        }
        for (k, v) in &a.keywords {
            p.insert((*k).into(), v.clone());
        }
        props.insert(a.name.to_string(), Value::Object(p));
        if a.required {
            required.push(json!(a.name));
        }
    }
    let mut schema = Map::new();
    schema.insert("type".into(), json!("object"));
    schema.insert("properties".into(), Value::Object(props));
    if !required.is_empty() {
        schema.insert("required".into(), Value::Array(required));
    }
    Value::Object(schema)
}
