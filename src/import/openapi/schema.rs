//! JSON Schemas inlined from the document into self-contained argument and output schemas
//! (refs resolved, cycles cut, size bounded, OpenAPI 3.0 keywords rewritten).

use std::borrow::Cow;

use serde_json::{json, Map, Value};

use crate::rest::schema::TYPES;

use super::document::*;
use super::error::*;

/// Schema nesting inlined into one argument or output schema before it is cut.
pub(super) const MAX_SCHEMA_DEPTH: usize = 32;

/// Schema nodes inlined into one argument or output schema before it is cut: refs can expand a
/// small document exponentially (ten properties each referring to the next level).
pub(super) const SCHEMA_NODE_BUDGET: usize = 10_000;

/// Which side of the API an inlined schema describes: request schemas drop `readOnly`
/// properties, response schemas drop `writeOnly` ones (OpenAPI 3.0 section 4.7.24.1).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Dir {
    Request,
    Response,
}

/// Copies a schema with every local `$ref` inlined, as a self-contained JSON Schema fragment
/// for an MCP client: OpenAPI-only keywords dropped (`xml`, `example`, `discriminator`, `x-*`),
/// OpenAPI 3.0's `nullable` and boolean `exclusiveMinimum`/`exclusiveMaximum` rewritten in the
/// JSON Schema form. A reference already being expanded (a cycle), nesting past
/// [`MAX_SCHEMA_DEPTH`] or size past [`SCHEMA_NODE_BUDGET`] becomes `{"type": T}` with the
/// target's type (`object` when it has none).
pub(super) struct Inliner<'a> {
    pub(super) root: &'a Value,
    pub(super) dir: Dir,
    pub(super) budget: usize,
    pub(super) stack: Vec<String>,
    pub(super) cycles: Vec<String>,
    pub(super) truncated: bool,
}

/// Keywords whose value is a map of schemas.
pub(super) const SCHEMA_MAPS: [&str; 5] =
    ["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"];

/// Keywords whose value is one schema (or, for `items` in old drafts, an array of them).
pub(super) const SCHEMA_ONE: [&str; 12] = [
    "items",
    "additionalProperties",
    "unevaluatedProperties",
    "unevaluatedItems",
    "additionalItems",
    "not",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
    "contentSchema",
];

/// Keywords whose value is an array of schemas.
pub(super) const SCHEMA_LISTS: [&str; 4] = ["allOf", "anyOf", "oneOf", "prefixItems"];

/// OpenAPI-only or identity keywords that mean nothing (or something wrong) once inlined.
pub(super) const DROPPED: [&str; 11] = [
    "xml",
    "externalDocs",
    "example",
    "discriminator",
    "nullable",
    "$id",
    "$schema",
    "$anchor",
    "$dynamicAnchor",
    "$dynamicRef",
    "$comment",
];

impl<'a> Inliner<'a> {
    pub(super) fn new(root: &'a Value, dir: Dir) -> Self {
        Inliner {
            root,
            dir,
            budget: SCHEMA_NODE_BUDGET,
            stack: Vec::new(),
            cycles: Vec::new(),
            truncated: false,
        }
    }

    pub(super) fn placeholder(target: &Value) -> Value {
        let t = target.get("type").and_then(Value::as_str).filter(|t| TYPES.contains(t)).unwrap_or("object");
        json!({ "type": t })
    }

    pub(super) fn schema(&mut self, v: &Value, path: &str, depth: usize) -> Result<Value, ImportError> {
        if depth > MAX_SCHEMA_DEPTH || self.budget == 0 {
            self.truncated = true;
            return Ok(json!({ "type": "object" }));
        }
        self.budget -= 1;
        let Value::Object(obj) = v else {
            // `true`/`false` schemas (3.1), or garbage copied as is.
            return Ok(v.clone());
        };
        if let Some(r) = ref_of(v, path)? {
            let (target, target_path) = pointer(self.root, r, path)?;
            if self.stack.contains(&target_path) {
                if !self.cycles.contains(&target_path) {
                    self.cycles.push(target_path);
                }
                return Ok(Self::placeholder(target));
            }
            let merged = match target {
                Value::Object(t) if obj.len() > 1 => {
                    let mut m = t.clone();
                    for (k, val) in obj.iter().filter(|(k, _)| k.as_str() != "$ref") {
                        m.insert(k.clone(), val.clone());
                    }
                    Cow::Owned(Value::Object(m))
                }
                _ => Cow::Borrowed(target),
            };
            self.stack.push(target_path.clone());
            let out = self.schema(&merged, &target_path, depth + 1);
            self.stack.pop();
            return out;
        }
        let mut out = Map::new();
        let mut dropped_props: Vec<String> = Vec::new();
        for (k, val) in obj {
            let kpath = key(path, k);
            if SCHEMA_MAPS.contains(&k.as_str()) {
                let Value::Object(members) = val else {
                    out.insert(k.clone(), val.clone());
                    continue;
                };
                let mut m = Map::new();
                for (name, s) in members {
                    let s = self.schema(s, &key(&kpath, name), depth + 1)?;
                    let hidden = match self.dir {
                        Dir::Request => "readOnly",
                        Dir::Response => "writeOnly",
                    };
                    if k == "properties" && s.get(hidden) == Some(&Value::Bool(true)) {
                        dropped_props.push(name.clone());
                        continue;
                    }
                    m.insert(name.clone(), s);
                }
                out.insert(k.clone(), Value::Object(m));
            } else if SCHEMA_ONE.contains(&k.as_str()) {
                let s = match val {
                    Value::Array(items) => Value::Array(
                        items
                            .iter()
                            .enumerate()
                            .map(|(i, s)| self.schema(s, &idx(&kpath, i), depth + 1))
                            .collect::<Result<_, _>>()?,
                    ),
                    _ => self.schema(val, &kpath, depth + 1)?,
                };
                out.insert(k.clone(), s);
            } else if SCHEMA_LISTS.contains(&k.as_str()) {
                let Value::Array(items) = val else {
                    out.insert(k.clone(), val.clone());
                    continue;
                };
                let items = items
                    .iter()
                    .enumerate()
                    .map(|(i, s)| self.schema(s, &idx(&kpath, i), depth + 1))
                    .collect::<Result<_, _>>()?;
                out.insert(k.clone(), Value::Array(items));
            } else if DROPPED.contains(&k.as_str()) || k.starts_with("x-") {
                continue;
            } else {
                out.insert(k.clone(), val.clone());
            }
        }
        // OpenAPI 3.0 `nullable: true` is JSON Schema's `type: [T, "null"]`.
        if obj.get("nullable") == Some(&Value::Bool(true)) {
            if let Some(Value::String(t)) = out.get("type") {
                let t = t.clone();
                out.insert("type".into(), json!([t, "null"]));
            }
        }
        // OpenAPI 3.0 booleans `exclusiveMinimum: true` + `minimum: m` are JSON Schema's
        // `exclusiveMinimum: m` (a boolean is invalid there).
        for (excl, bound) in [("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")] {
            if let Some(Value::Bool(b)) = out.get(excl) {
                let b = *b;
                out.remove(excl);
                if b {
                    if let Some(m) = out.remove(bound) {
                        out.insert(excl.into(), m);
                    }
                }
            }
        }
        if !dropped_props.is_empty() {
            if let Some(Value::Array(req)) = out.get_mut("required") {
                req.retain(|r| r.as_str().is_none_or(|r| !dropped_props.iter().any(|d| d == r)));
                if req.is_empty() {
                    out.remove("required");
                }
            }
        }
        Ok(Value::Object(out))
    }
}

/// The single JSON type a schema stands for, as an argument `type`: `type` itself, the non-null
/// member of an OpenAPI 3.1 type list (`[string, "null"]`), or a type the schema implies
/// (`properties` -> object, `items` -> array, string `enum` -> string, agreeing `allOf`/
/// `anyOf`/`oneOf` members). `None` when it cannot say (the runtime then treats it as string).
pub(super) fn arg_type(s: &Value) -> Option<&'static str> {
    let known = |t: &str| TYPES.iter().copied().find(|k| *k == t);
    match s.get("type") {
        Some(Value::String(t)) => return known(t),
        Some(Value::Array(ts)) => {
            return ts.iter().filter_map(Value::as_str).filter(|t| *t != "null").find_map(known);
        }
        _ => {}
    }
    if s.get("properties").is_some() || s.get("additionalProperties").is_some() {
        return Some("object");
    }
    if s.get("items").is_some() || s.get("prefixItems").is_some() {
        return Some("array");
    }
    if let Some(Value::Array(values)) = s.get("enum") {
        if !values.is_empty() && values.iter().all(|v| v.is_string() || v.is_null()) {
            return Some("string");
        }
    }
    for combinator in ["allOf", "oneOf", "anyOf"] {
        if let Some(Value::Array(parts)) = s.get(combinator) {
            let types: Vec<Option<&str>> = parts.iter().map(arg_type).collect();
            if let Some(Some(first)) = types.first() {
                if types.iter().all(|t| *t == Some(*first)) {
                    return Some(first);
                }
            }
        }
    }
    None
}

/// Whether a schema describes a JSON object (what a body or `outputSchema` needs).
pub(super) fn is_object(s: &Value) -> bool {
    match s.get("type") {
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(ts)) => {
            ts.iter().any(|t| t == "object") && ts.iter().all(|t| t == "object" || t == "null")
        }
        _ => {
            s.get("properties").is_some()
                || s.get("additionalProperties").is_some()
                || s.get("allOf")
                    .and_then(Value::as_array)
                    .is_some_and(|p| !p.is_empty() && p.iter().all(is_object))
        }
    }
}

/// Merges an `allOf` of object schemas into one object schema (properties and `required`
/// united; a property in several members gets their keywords merged, the later winning), so a body written as `allOf: [Base, Extra]`
/// still becomes one argument per property. Anything else is returned unchanged.
pub(super) fn flatten_all_of(s: Value) -> Value {
    let Value::Object(mut m) = s else { return s };
    let parts = match m.get("allOf") {
        Some(Value::Array(parts)) if !parts.is_empty() => {
            let parts: Vec<Value> = parts.iter().cloned().map(flatten_all_of).collect();
            if !parts.iter().all(is_object) {
                return Value::Object(m);
            }
            parts
        }
        _ => return Value::Object(m),
    };
    m.remove("allOf");
    let mut props = match m.remove("properties") {
        Some(Value::Object(p)) => p,
        _ => Map::new(),
    };
    let mut required: Vec<Value> = match m.remove("required") {
        Some(Value::Array(r)) => r,
        _ => Vec::new(),
    };
    for part in parts {
        let Value::Object(mut part) = part else { continue };
        if let Some(Value::Object(p)) = part.remove("properties") {
            for (name, schema) in p {
                match (props.get_mut(&name), schema) {
                    (Some(Value::Object(have)), Value::Object(more)) => have.extend(more),
                    (_, schema) => {
                        props.insert(name, schema);
                    }
                }
            }
        }
        if let Some(Value::Array(r)) = part.remove("required") {
            for name in r {
                if !required.contains(&name) {
                    required.push(name);
                }
            }
        }
        if !m.contains_key("description") {
            if let Some(d) = part.remove("description") {
                m.insert("description".into(), d);
            }
        }
    }
    m.insert("type".into(), json!("object"));
    m.insert("properties".into(), Value::Object(props));
    if !required.is_empty() {
        m.insert("required".into(), Value::Array(required));
    }
    Value::Object(m)
}
