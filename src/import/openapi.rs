//! `portcullis import openapi`: turns an OpenAPI 3.0/3.1 description (JSON or YAML) into one
//! `servers[]` entry of Higress-style REST tools (`server.securitySchemes` and `tools[]`), returned
//! as JSON with the warnings an operator should read before pasting it into a configuration.
//!
//! It owns the reading of OpenAPI documents only: it never touches the network, never reads
//! other files (external `$ref`s are refused) and never imports credentials. The output is raw
//! configuration (docs/config.md shape); the config compiler remains the only judge of it. A cold-path
//! tool: it allocates freely, but every input is bounded (document size, `$ref` hops, schema depth
//! and size), so no document can make it panic or loop.
//!
//! What the runtime must do with the result (the contract the REST tool caller implements):
//! `requestTemplate.url` keeps OpenAPI's `{name}` placeholders, one per `position: path` argument;
//! `position` says where each argument travels (`path`, `query`, `header`, `cookie`, `body`); a
//! `requestTemplate.body` template, when present, is the whole request body.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use serde_json::{json, Map, Value};

use crate::rest::schema::TYPES;

/// Largest description accepted, in bytes (the biggest public descriptions are ~15 MB).
const MAX_SPEC_BYTES: usize = 64 << 20;
/// `$ref`s followed in a row before a chain counts as a cycle.
const MAX_REF_HOPS: usize = 32;
/// Schema nesting inlined into one argument or output schema before it is cut.
const MAX_SCHEMA_DEPTH: usize = 32;
/// Schema nodes inlined into one argument or output schema before it is cut: refs can expand a
/// small document exponentially (ten properties each referring to the next level).
const SCHEMA_NODE_BUDGET: usize = 10_000;
/// MCP tool names: "1-64 characters of [A-Za-z0-9_./-]" (the config compiler's rule).
const MAX_TOOL_NAME: usize = 64;
/// Server names: "1-128 characters of [A-Za-z0-9_-]".
const MAX_SERVER_NAME: usize = 128;
/// The operations of a Path Item Object (OpenAPI 3.1 section 4.8.9.1).
const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// What the caller may choose instead of the description.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// The server entry's `name` (default: `info.title`, sanitised).
    pub name: Option<String>,
    /// The absolute URL every operation path is appended to, replacing the description's
    /// `servers` (required when those are missing or relative).
    pub base_url: Option<String>,
}

/// A converted description.
#[derive(Clone, Debug, PartialEq)]
pub struct Import {
    /// One `servers[]` object: `name`, `server` (`name`, `securitySchemes`), `tools`.
    pub entry: Value,
    /// What was skipped or approximated, each naming where (shown as `# warning:` lines).
    pub warnings: Vec<String>,
}

/// Why a description could not be converted. Paths are written like config paths
/// (`paths./pets/{id}.get.parameters[2]`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// Neither JSON nor YAML (or over the size limit).
    #[error("not a YAML or JSON document: {0}")]
    Syntax(String),
    /// Not OpenAPI 3.x (Swagger 2.0 included).
    #[error("{0}")]
    Version(String),
    /// A `$ref` to another file or URL.
    #[error(
        "{path}: external $ref {reference:?} is not supported: bundle the description into one \
         file first (e.g. `redocly bundle` or `swagger-cli bundle`)"
    )]
    ExternalRef {
        /// Where the `$ref` is.
        path: String,
        /// Its value.
        reference: String,
    },
    /// A local `$ref` that does not resolve.
    #[error("{path}: $ref {reference:?} {reason}")]
    BrokenRef {
        /// Where the `$ref` is.
        path: String,
        /// Its value.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No usable absolute base URL for an operation.
    #[error("{path}: {message}")]
    BaseUrl {
        /// The server entry (or option) at fault.
        path: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// A structural error in the description.
    #[error("{path}: {message}")]
    Invalid {
        /// Where.
        path: String,
        /// What.
        message: String,
    },
    /// The entry could not be written as YAML.
    #[error("cannot write YAML: {0}")]
    Output(String),
}

fn invalid(path: &str, message: impl Into<String>) -> ImportError {
    ImportError::Invalid { path: display_path(path).to_string(), message: message.into() }
}

fn display_path(path: &str) -> &str {
    if path.is_empty() {
        "(top level)"
    } else {
        path
    }
}

/// Converts `spec` (OpenAPI 3.0 or 3.1, JSON or YAML) into one `servers[]` entry.
pub fn import(spec: &str, opts: &ImportOptions) -> Result<Import, ImportError> {
    if spec.len() > MAX_SPEC_BYTES {
        return Err(ImportError::Syntax(format!("larger than {} MiB", MAX_SPEC_BYTES >> 20)));
    }
    let root = parse(spec)?;
    let mut cx = Cx { root: &root, warnings: Vec::new(), seen: HashSet::new() };
    cx.check_version()?;
    let base = opts.base_url.as_deref().map(check_base_url).transpose()?;
    let name = cx.server_name(opts.name.as_deref());
    let schemes = cx.security_schemes()?;
    let tools = cx.tools(&schemes, base.as_deref())?;

    let mut server = Map::new();
    server.insert("name".into(), json!(name));
    if !schemes.entries.is_empty() {
        server.insert("securitySchemes".into(), Value::Array(schemes.entries));
    }
    let mut entry = Map::new();
    entry.insert("name".into(), json!(name));
    entry.insert("server".into(), Value::Object(server));
    entry.insert("tools".into(), Value::Array(tools));
    let mut entry = Value::Object(entry);
    cx.neutralise_env_syntax(&mut entry, "");
    Ok(Import { entry, warnings: cx.warnings })
}

impl Import {
    /// The entry as a one-element YAML list, ready to paste under `servers:`, after a `#` header
    /// naming `source` and one `# warning:` line per warning.
    pub fn to_yaml(&self, source: &str) -> Result<String, ImportError> {
        let body = serde_yaml::to_string(&[&self.entry]).map_err(|e| ImportError::Output(e.to_string()))?;
        let mut out = format!(
            "# Imported by `portcullis import openapi` from {}.\n\
             # One servers[] entry: paste it under `servers:`. Credentials are never imported.\n",
            one_line(source)
        );
        for w in &self.warnings {
            out.push_str("# warning: ");
            out.push_str(&one_line(w));
            out.push('\n');
        }
        out.push_str(&body);
        Ok(out)
    }
}

fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// Flow (`[`/`{`) nesting refused before parsing: libyaml's scanner is quadratic in it
/// (measured on a debug build: 10k levels 0.7 s, 100k levels 66 s, before serde_yaml's own
/// recursion limit of 128 even looks). Counted over the raw text, brackets in strings included,
/// which only errs on the generous side.
const MAX_FLOW_DEPTH: usize = 1000;

fn flow_too_deep(spec: &str) -> bool {
    let mut depth = 0usize;
    for b in spec.bytes() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// YAML (JSON is YAML) into a JSON tree. serde_yaml bounds nesting and alias expansion; mapping
/// keys that YAML reads as numbers (`200:` under `responses`) become their text.
fn parse(spec: &str) -> Result<Value, ImportError> {
    if flow_too_deep(spec) {
        return Err(ImportError::Syntax(format!("brackets nested deeper than {MAX_FLOW_DEPTH} levels")));
    }
    let mut y: serde_yaml::Value =
        serde_yaml::from_str(spec).map_err(|e| ImportError::Syntax(e.to_string()))?;
    y.apply_merge().map_err(|e| ImportError::Syntax(e.to_string()))?;
    yaml_to_json(y).map_err(ImportError::Syntax)
}

fn yaml_to_json(v: serde_yaml::Value) -> Result<Value, String> {
    use serde_yaml::Value as Y;
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                match n.as_f64().and_then(serde_json::Number::from_f64) {
                    Some(f) => Value::Number(f),
                    None => Value::String(n.to_string()),
                }
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(yaml_to_json).collect::<Result<_, _>>()?),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    Y::Null => "null".to_string(),
                    _ => return Err("a mapping key is not a string".into()),
                };
                out.insert(key, yaml_to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => yaml_to_json(t.value)?,
    })
}

/// The text of a scalar (`openapi: 3.0` may arrive as a number).
fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn check_base_url(url: &str) -> Result<String, ImportError> {
    let url = url.trim();
    if !is_absolute_http(url) || url.contains(['{', '}', ' ']) {
        return Err(ImportError::BaseUrl {
            path: "--base-url".into(),
            message: format!("{url:?} is not an absolute http:// or https:// URL"),
        });
    }
    Ok(url.trim_end_matches('/').to_string())
}

fn is_absolute_http(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    ["http://", "https://"].iter().any(|p| lower.strip_prefix(p).is_some_and(|rest| !rest.is_empty()))
}

fn key(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}

fn idx(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

fn ref_of<'v>(v: &'v Value, path: &str) -> Result<Option<&'v str>, ImportError> {
    match v.as_object().and_then(|m| m.get("$ref")) {
        None => Ok(None),
        Some(Value::String(r)) => Ok(Some(r)),
        Some(_) => Err(invalid(path, "$ref must be a string")),
    }
}

/// Resolves a local reference (`#/components/schemas/Pet`, a JSON Pointer in a URI fragment:
/// percent-decoded, then `~1` -> `/` and `~0` -> `~`, RFC 6901 sections 4 and 6). Returns the
/// target and its path. `at` is where the `$ref` is, for errors.
fn pointer<'a>(root: &'a Value, reference: &str, at: &str) -> Result<(&'a Value, String), ImportError> {
    let broken = |reason: String| ImportError::BrokenRef {
        path: display_path(at).to_string(),
        reference: reference.to_string(),
        reason,
    };
    let Some(fragment) = reference.strip_prefix('#') else {
        return Err(ImportError::ExternalRef {
            path: display_path(at).to_string(),
            reference: reference.to_string(),
        });
    };
    let fragment = percent_decode(fragment).ok_or_else(|| broken("has invalid percent-encoding".into()))?;
    if fragment.is_empty() {
        return Ok((root, String::new()));
    }
    let Some(rest) = fragment.strip_prefix('/') else {
        return Err(broken("is not a JSON Pointer (expected #/...)".into()));
    };
    let mut cur = root;
    let mut path = String::new();
    for segment in rest.split('/') {
        let k = segment.replace("~1", "/").replace("~0", "~");
        let next = match cur {
            Value::Object(m) => m.get(&k),
            Value::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        };
        let Some(next) = next else {
            return Err(broken(format!("does not resolve: no {k:?} in {}", display_path(&path))));
        };
        path = if cur.is_array() { format!("{path}[{k}]") } else { key(&path, &k) };
        cur = next;
    }
    Ok((cur, path))
}

fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_string());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Follows `$ref`s from `v` (at `path`) to a value without one. Keywords next to a `$ref`
/// (`description`, `summary`: OpenAPI 3.1 lets them override the target's) are merged over the
/// target, the outermost winning. Returns the value and the path it came from.
fn deref<'a>(root: &'a Value, v: &'a Value, path: &str) -> Result<(Cow<'a, Value>, String), ImportError> {
    let mut cur = v;
    let mut cur_path = path.to_string();
    let mut overrides: Vec<&'a Map<String, Value>> = Vec::new();
    for _ in 0..MAX_REF_HOPS {
        let Some(r) = ref_of(cur, &cur_path)? else {
            if overrides.is_empty() {
                return Ok((Cow::Borrowed(cur), cur_path));
            }
            let Value::Object(target) = cur else {
                return Ok((Cow::Borrowed(cur), cur_path));
            };
            let mut merged = target.clone();
            for o in overrides.iter().rev() {
                for (k, val) in o.iter().filter(|(k, _)| k.as_str() != "$ref") {
                    merged.insert(k.clone(), val.clone());
                }
            }
            return Ok((Cow::Owned(Value::Object(merged)), cur_path));
        };
        if let Some(m) = cur.as_object().filter(|m| m.len() > 1) {
            overrides.push(m);
        }
        let (target, target_path) = pointer(root, r, &cur_path)?;
        cur = target;
        cur_path = target_path;
    }
    Err(ImportError::BrokenRef {
        path: display_path(path).to_string(),
        reference: ref_of(v, path)?.unwrap_or_default().to_string(),
        reason: format!("starts a chain of more than {MAX_REF_HOPS} references (a cycle?)"),
    })
}

/// Which side of the API an inlined schema describes: request schemas drop `readOnly`
/// properties, response schemas drop `writeOnly` ones (OpenAPI 3.0 section 4.7.24.1).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    Request,
    Response,
}

/// Copies a schema with every local `$ref` inlined, as a self-contained JSON Schema fragment
/// for an MCP client: OpenAPI-only keywords dropped (`xml`, `example`, `discriminator`, `x-*`),
/// OpenAPI 3.0's `nullable` and boolean `exclusiveMinimum`/`exclusiveMaximum` rewritten in the
/// JSON Schema form. A reference already being expanded (a cycle), nesting past
/// [`MAX_SCHEMA_DEPTH`] or size past [`SCHEMA_NODE_BUDGET`] becomes `{"type": T}` with the
/// target's type (`object` when it has none).
struct Inliner<'a> {
    root: &'a Value,
    dir: Dir,
    budget: usize,
    stack: Vec<String>,
    cycles: Vec<String>,
    truncated: bool,
}

/// Keywords whose value is a map of schemas.
const SCHEMA_MAPS: [&str; 5] =
    ["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"];
/// Keywords whose value is one schema (or, for `items` in old drafts, an array of them).
const SCHEMA_ONE: [&str; 12] = [
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
const SCHEMA_LISTS: [&str; 4] = ["allOf", "anyOf", "oneOf", "prefixItems"];
/// OpenAPI-only or identity keywords that mean nothing (or something wrong) once inlined.
const DROPPED: [&str; 11] = [
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
    fn new(root: &'a Value, dir: Dir) -> Self {
        Inliner {
            root,
            dir,
            budget: SCHEMA_NODE_BUDGET,
            stack: Vec::new(),
            cycles: Vec::new(),
            truncated: false,
        }
    }

    fn placeholder(target: &Value) -> Value {
        let t = target.get("type").and_then(Value::as_str).filter(|t| TYPES.contains(t)).unwrap_or("object");
        json!({ "type": t })
    }

    fn schema(&mut self, v: &Value, path: &str, depth: usize) -> Result<Value, ImportError> {
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
fn arg_type(s: &Value) -> Option<&'static str> {
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
fn is_object(s: &Value) -> bool {
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
fn flatten_all_of(s: Value) -> Value {
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

/// `[A-Za-z0-9_-]`, other runs as one `-`, trimmed, at most 128 characters.
fn sanitise_server_name(s: &str, lowercase: bool) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            out.push(if lowercase { c.to_ascii_lowercase() } else { c });
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_matches('-');
    trimmed.chars().take(MAX_SERVER_NAME).collect::<String>().trim_end_matches('-').to_string()
}

/// MCP tool-name rules: every character outside `[A-Za-z0-9_./-]` becomes `_`, then at most 64.
fn sanitise_tool_name(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() || "_./-".contains(c) { c } else { '_' })
        .take(MAX_TOOL_NAME)
        .collect()
}

/// `get_pets_petId` for `get /pets/{petId}`; `get_root` for `/`.
fn fallback_tool_name(method: &str, path: &str) -> String {
    let segments: Vec<String> =
        path.split('/').map(|s| s.replace(['{', '}'], "")).filter(|s| !s.is_empty()).collect();
    let tail = if segments.is_empty() { "root".to_string() } else { segments.join("_") };
    sanitise_tool_name(&format!("{method}_{tail}"))
}

/// The `{name}` placeholders of a path template.
fn path_placeholders(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        out.push(after[..close].to_string());
        rest = &after[close + 1..];
    }
    out
}

/// An environment-variable name suggested for a scheme's credential.
fn env_name(id: &str) -> String {
    let mut s: String =
        id.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert_str(0, "API_");
    }
    s
}

/// The media type without parameters, lower-case (`application/json; charset=utf-8` ->
/// `application/json`).
fn essence(media: &str) -> String {
    media.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

fn is_json(media: &str) -> bool {
    let e = essence(media);
    e == "application/json" || e.ends_with("+json")
}

const FORM: &str = "application/x-www-form-urlencoded";

/// The supported schemes, in the server block's shape, and which ids exist at all.
struct Schemes {
    entries: Vec<Value>,
    supported: HashSet<String>,
    declared: HashSet<String>,
}

/// One operation's location, for messages.
struct OpAt<'p> {
    path: &'p str,
    method: &'p str,
    loc: String,
}

/// A parameter after `$ref` resolution, keyed by `(name, in)`.
struct Param {
    name: String,
    location: String,
    value: Value,
    path: String,
}

struct Cx<'a> {
    root: &'a Value,
    warnings: Vec<String>,
    seen: HashSet<String>,
}

impl<'a> Cx<'a> {
    fn warn(&mut self, w: String) {
        if self.seen.insert(w.clone()) {
            self.warnings.push(w);
        }
    }

    fn deref<'v>(&self, v: &'v Value, path: &str) -> Result<(Cow<'v, Value>, String), ImportError>
    where
        'a: 'v,
    {
        deref(self.root, v, path)
    }

    /// Inlines a schema for one side of the API, reporting cuts as warnings.
    fn inline(&mut self, v: &Value, path: &str, dir: Dir) -> Result<Value, ImportError> {
        let mut inl = Inliner::new(self.root, dir);
        let out = inl.schema(v, path, 0)?;
        for c in inl.cycles {
            self.warn(format!(
                "{c}: recursive schema; its nested occurrences are cut to a bare type (the first level is kept)"
            ));
        }
        if inl.truncated {
            self.warn(format!(
                "{}: schema deeper than {MAX_SCHEMA_DEPTH} levels or larger than {SCHEMA_NODE_BUDGET} nodes once \
                 inlined; the rest is cut to {{type: object}}",
                display_path(path)
            ));
        }
        Ok(out)
    }

    fn check_version(&mut self) -> Result<(), ImportError> {
        let Some(doc) = self.root.as_object() else {
            return Err(ImportError::Version(
                "not an OpenAPI description: the document is not a mapping".into(),
            ));
        };
        if let Some(v) = doc.get("swagger") {
            return Err(ImportError::Version(format!(
                "this is a Swagger / OpenAPI 2.0 description (swagger: {:?}); only OpenAPI 3.0 and 3.1 are \
                 supported: convert it first (e.g. `npx swagger2openapi FILE` or https://converter.swagger.io)",
                scalar_text(v)
            )));
        }
        let Some(v) = doc.get("openapi") else {
            return Err(ImportError::Version(
                "not an OpenAPI description: no `openapi` version field (OpenAPI 3.0 and 3.1 are supported)"
                    .into(),
            ));
        };
        let version = scalar_text(v);
        if !version.starts_with("3.") {
            return Err(ImportError::Version(format!(
                "openapi: {version:?} is not supported (OpenAPI 3.0 and 3.1 are)"
            )));
        }
        if !(version.starts_with("3.0") || version.starts_with("3.1")) {
            self.warn(format!(
                "openapi: {version:?} is newer than 3.1; read as 3.1, newer features are ignored"
            ));
        }
        Ok(())
    }

    fn server_name(&mut self, requested: Option<&str>) -> String {
        if let Some(n) = requested {
            let s = sanitise_server_name(n, false);
            if !s.is_empty() {
                if s != n {
                    self.warn(format!("--name {n:?} is not 1-128 characters of [A-Za-z0-9_-]; using {s:?}"));
                }
                return s;
            }
            self.warn(format!("--name {n:?} has no usable character; using the title"));
        }
        let title = self.root.pointer("/info/title").and_then(Value::as_str).unwrap_or("");
        let s = sanitise_server_name(title, true);
        if s.is_empty() {
            self.warn("info.title gives no usable server name; using \"openapi\" (pass --name)".into());
            return "openapi".into();
        }
        s
    }

    /// `components.securitySchemes` -> `server.securitySchemes` (http basic/bearer, apiKey in
    /// header/query); the rest are skipped with a warning naming the scheme.
    fn security_schemes(&mut self) -> Result<Schemes, ImportError> {
        let mut out = Schemes { entries: Vec::new(), supported: HashSet::new(), declared: HashSet::new() };
        let root = self.root;
        let Some(all) = root.pointer("/components/securitySchemes") else { return Ok(out) };
        let Value::Object(all) = all else {
            return Err(invalid("components.securitySchemes", "must be a mapping"));
        };
        for (id, scheme) in all {
            let at = key("components.securitySchemes", id);
            out.declared.insert(id.clone());
            let (scheme, at) = self.deref(scheme, &at)?;
            let Some(kind) = scheme.get("type").and_then(Value::as_str) else {
                return Err(invalid(&at, "a security scheme needs a string `type`"));
            };
            let entry = match kind {
                "http" => {
                    let s = scheme.get("scheme").and_then(Value::as_str).unwrap_or("").to_ascii_lowercase();
                    if s == "basic" || s == "bearer" {
                        Some(json!({ "id": id, "type": "http", "scheme": s }))
                    } else {
                        self.warn(format!(
                            "{at}: http scheme {s:?} is not supported (basic and bearer are); skipped"
                        ));
                        None
                    }
                }
                "apiKey" => {
                    let location = scheme.get("in").and_then(Value::as_str).unwrap_or("");
                    let name = scheme.get("name").and_then(Value::as_str).unwrap_or("");
                    if name.is_empty() {
                        self.warn(format!("{at}: apiKey scheme without a `name`; skipped"));
                        None
                    } else if location == "header" || location == "query" {
                        Some(json!({ "id": id, "type": "apiKey", "in": location, "name": name }))
                    } else {
                        self.warn(format!(
                            "{at}: apiKey in {location:?} is not supported (header and query are); skipped"
                        ));
                        None
                    }
                }
                "oauth2" | "openIdConnect" => {
                    self.warn(format!(
                        "{at}: {kind} is not supported (the gateway runs no OAuth flow); skipped. With an \
                         access token at hand, declare it by hand as {{id: {id}, type: http, scheme: bearer}}"
                    ));
                    None
                }
                other => {
                    self.warn(format!("{at}: security scheme type {other:?} is not supported; skipped"));
                    None
                }
            };
            if let Some(e) = entry {
                let hint = match e.get("type").and_then(Value::as_str) {
                    Some("http") if e["scheme"] == "basic" => "user:password",
                    Some("http") => "the token",
                    _ => "the key",
                };
                self.warn(format!(
                    "securitySchemes {id:?}: no credential imported; add defaultCredential: ${{{}}} ({hint}) \
                     or set requestTemplate.security.credential per tool",
                    env_name(id)
                ));
                out.supported.insert(id.clone());
                out.entries.push(e);
            }
        }
        Ok(out)
    }

    fn tools(&mut self, schemes: &Schemes, base: Option<&str>) -> Result<Vec<Value>, ImportError> {
        let root = self.root;
        let Some(paths) = root.get("paths") else {
            self.warn("the description has no paths: no tools".into());
            return Ok(Vec::new());
        };
        let Value::Object(paths) = paths else {
            return Err(invalid("paths", "must be a mapping"));
        };
        let mut tools = Vec::new();
        let mut names: HashMap<String, String> = HashMap::new();
        for (p, item) in paths {
            let item_at = key("paths", p);
            if !p.starts_with('/') {
                self.warn(format!("{item_at}: a path must start with '/'; skipped"));
                continue;
            }
            let (item, item_path) = self.deref(item, &item_at)?;
            let Value::Object(item_map) = item.as_ref() else {
                return Err(invalid(&item_path, "a path item must be a mapping"));
            };
            for (method, op) in item_map {
                if !METHODS.contains(&method.as_str()) {
                    continue;
                }
                let at = OpAt { path: p, method, loc: key(&item_at, method) };
                let tool = self.operation(&at, op, &item, &item_path, schemes, base, &mut names)?;
                tools.push(tool);
            }
        }
        Ok(tools)
    }

    #[allow(clippy::too_many_arguments)] // one call site; a struct would only rename these
    fn operation(
        &mut self,
        at: &OpAt<'_>,
        op: &Value,
        item: &Value,
        item_path: &str,
        schemes: &Schemes,
        base: Option<&str>,
        names: &mut HashMap<String, String>,
    ) -> Result<Value, ImportError> {
        let (op, op_path) = self.deref(op, &at.loc)?;
        let Value::Object(opm) = op.as_ref() else {
            return Err(invalid(&op_path, "an operation must be a mapping"));
        };
        let name = self.tool_name(at, opm, names);
        let mut tool = Map::new();
        tool.insert("name".into(), json!(name));
        if let Some(d) = description(opm) {
            tool.insert("description".into(), json!(d));
        }

        // Parameters: path-level, then operation-level overriding the same name + location.
        let mut params: Vec<Param> = Vec::new();
        for (list, list_path) in [
            (item.get("parameters"), key(item_path, "parameters")),
            (opm.get("parameters"), key(&op_path, "parameters")),
        ] {
            let Some(list) = list else { continue };
            let Value::Array(list) = list else {
                return Err(invalid(&list_path, "must be a list"));
            };
            for (i, p) in list.iter().enumerate() {
                let param = self.param(p, &idx(&list_path, i))?;
                match params.iter_mut().find(|q| q.name == param.name && q.location == param.location) {
                    Some(q) => *q = param,
                    None => params.push(param),
                }
            }
        }

        let placeholders = path_placeholders(at.path);
        let mut args: Vec<Map<String, Value>> = Vec::new();
        for param in &params {
            // OpenAPI 3.1 section 4.8.12.1: "If in is "header" and the name field is "Accept",
            // "Content-Type" or "Authorization", the parameter definition SHALL be ignored."
            if param.location == "header"
                && ["accept", "content-type", "authorization"]
                    .contains(&param.name.to_ascii_lowercase().as_str())
            {
                continue;
            }
            if param.location == "path" && !placeholders.contains(&param.name) {
                self.warn(format!(
                    "{}: path parameter {:?} has no {{{}}} in the path {:?}; dropped",
                    param.path, param.name, param.name, at.path
                ));
                continue;
            }
            if let Some(other) = args.iter().find(|a| arg_field(a, "name") == param.name) {
                self.warn(format!(
                    "{}: parameter {:?} in {} has the name of the {} parameter (an argument name is also its \
                     wire name); dropped",
                    param.path,
                    param.name,
                    param.location,
                    arg_field(other, "position")
                ));
                continue;
            }
            args.push(self.param_arg(param)?);
        }
        for ph in &placeholders {
            if !args.iter().any(|a| arg_field(a, "name") == ph && arg_field(a, "position") == "path") {
                self.warn(format!(
                    "{}: the path has {{{ph}}} but no path parameter {ph:?}; added as a required string",
                    at.loc
                ));
                let mut a = Map::new();
                a.insert("name".into(), json!(ph));
                a.insert("type".into(), json!("string"));
                a.insert("required".into(), json!(true));
                a.insert("position".into(), json!("path"));
                args.push(a);
            }
        }

        let url = format!("{}{}", self.base_url(at, opm, &op_path, item, item_path, base)?, at.path);
        let mut request = Map::new();
        request.insert("url".into(), json!(url));
        request.insert("method".into(), json!(at.method.to_ascii_uppercase()));
        if let Some(body) = opm.get("requestBody") {
            let body_path = key(&op_path, "requestBody");
            self.body(body, &body_path, &mut args, &mut request)?;
        }
        if let Some(id) = self.security(&name, opm, &op_path, schemes)? {
            request.insert("security".into(), json!({ "id": id }));
        }

        if !args.is_empty() {
            tool.insert("args".into(), Value::Array(args.into_iter().map(Value::Object).collect()));
        }
        tool.insert("requestTemplate".into(), Value::Object(request));
        if let Some(out) = self.output_schema(opm, &op_path)? {
            tool.insert("outputSchema".into(), out);
        }
        Ok(Value::Object(tool))
    }

    /// operationId (or `<method>_<path>`) under MCP naming rules, unique within the server.
    fn tool_name(
        &mut self,
        at: &OpAt<'_>,
        op: &Map<String, Value>,
        names: &mut HashMap<String, String>,
    ) -> String {
        let op_id = op.get("operationId").and_then(Value::as_str).filter(|s| !s.trim().is_empty());
        let mut name = match op_id {
            Some(id) => {
                let s = sanitise_tool_name(id.trim());
                if s != id {
                    self.warn(format!(
                        "{}: operationId {id:?} is not 1-64 characters of [A-Za-z0-9_./-]; tool named {s:?}",
                        at.loc
                    ));
                }
                s
            }
            None => fallback_tool_name(at.method, at.path),
        };
        if let Some(first) = names.get(&name) {
            let taken = name.clone();
            let first = first.clone();
            for n in 2.. {
                let suffix = format!("_{n}");
                let stem: String = taken.chars().take(MAX_TOOL_NAME - suffix.len()).collect();
                let candidate = format!("{stem}{suffix}");
                if !names.contains_key(&candidate) {
                    name = candidate;
                    break;
                }
            }
            self.warn(format!("{}: tool name {taken:?} is already used by {first}; named {name:?}", at.loc));
        }
        names.insert(name.clone(), at.loc.clone());
        name
    }

    fn param(&self, p: &Value, at: &str) -> Result<Param, ImportError> {
        let (value, path) = self.deref(p, at)?;
        let Some(name) = value.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) else {
            return Err(invalid(&path, "a parameter needs a non-empty string `name`"));
        };
        let location = match value.get("in").and_then(Value::as_str) {
            Some(l @ ("query" | "path" | "header" | "cookie")) => l.to_string(),
            Some(l @ ("body" | "formData")) => {
                return Err(invalid(
                    &path,
                    format!("`in: {l}` is Swagger 2.0; OpenAPI 3 describes bodies with requestBody"),
                ))
            }
            _ => return Err(invalid(&path, "a parameter needs `in`: query, path, header or cookie")),
        };
        Ok(Param { name: name.to_string(), location, value: value.into_owned(), path })
    }

    fn param_arg(&mut self, param: &Param) -> Result<Map<String, Value>, ImportError> {
        let p = &param.value;
        // A parameter has `schema`, or `content` with exactly one media type (section 4.8.12.4).
        let (schema, schema_path) = match (p.get("schema"), p.get("content")) {
            (Some(s), _) => (Some(s), key(&param.path, "schema")),
            (None, Some(Value::Object(c))) => match c.iter().next() {
                Some((media, m)) => {
                    (m.get("schema"), key(&key(&key(&param.path, "content"), media), "schema"))
                }
                None => (None, String::new()),
            },
            _ => (None, String::new()),
        };
        let schema = match schema {
            Some(s) => self.inline(s, &schema_path, Dir::Request)?,
            None => json!({}),
        };
        self.check_style(param, &schema);
        let description = text(p.get("description")).or_else(|| text(schema.get("description")));
        let required = param.location == "path" || p.get("required") == Some(&Value::Bool(true));
        Ok(self.arg(&param.name, description, required, &schema, &param.location, &param.path))
    }

    /// Warns when a parameter asks for a serialisation other than the one the runtime applies
    /// (OpenAPI's defaults: `form` + explode for query and cookie, `simple` for path and header).
    fn check_style(&mut self, param: &Param, schema: &Value) {
        let default = match param.location.as_str() {
            "query" | "cookie" => "form",
            _ => "simple",
        };
        let style = param.value.get("style").and_then(Value::as_str).unwrap_or(default);
        let default_explode = style == "form";
        let explode = param.value.get("explode").and_then(Value::as_bool).unwrap_or(default_explode);
        let structured = matches!(arg_type(schema), Some("array" | "object"));
        if style != default || (structured && explode != default_explode) {
            self.warn(format!(
                "{}: parameter {:?} asks for style {style:?}{}; the gateway sends {} parameters in OpenAPI's \
                 default style ({default}{})",
                param.path,
                param.name,
                if explode { ", explode" } else { ", no explode" },
                param.location,
                if default_explode { ", explode" } else { "" }
            ));
        }
    }

    /// One argument from an (inlined) schema.
    fn arg(
        &mut self,
        name: &str,
        description: Option<String>,
        required: bool,
        schema: &Value,
        position: &str,
        at: &str,
    ) -> Map<String, Value> {
        let mut a = Map::new();
        a.insert("name".into(), json!(name));
        if let Some(d) = description {
            a.insert("description".into(), json!(d));
        }
        let kind = arg_type(schema);
        if kind.is_none() {
            if let Some(Value::String(t)) = schema.get("type") {
                if t != "null" {
                    self.warn(format!(
                        "{at}: argument {name:?} has type {t:?}, not a JSON Schema type; left untyped"
                    ));
                }
            }
        }
        if let Some(t) = kind {
            a.insert("type".into(), json!(t));
        }
        if required {
            a.insert("required".into(), json!(true));
        }
        if let Some(d) = schema.get("default") {
            a.insert("default".into(), d.clone());
        }
        let choices = match (schema.get("enum"), schema.get("const")) {
            (Some(Value::Array(values)), _) => Some(values.clone()),
            (None, Some(c)) => Some(vec![c.clone()]),
            _ => None,
        };
        if let Some(mut values) = choices {
            if kind.is_some() {
                values.retain(|v| !v.is_null());
            }
            if !values.is_empty() {
                a.insert("enum".into(), Value::Array(values));
            }
        }
        if kind == Some("array") {
            if let Some(items) = schema.get("items").filter(|i| i.is_object() || i.is_boolean()) {
                a.insert("items".into(), items.clone());
            }
        }
        if kind == Some("object") {
            let flat = flatten_all_of(schema.clone());
            if let Some(props) = flat.get("properties").filter(|p| p.is_object()) {
                a.insert("properties".into(), props.clone());
            }
        }
        a.insert("position".into(), json!(position));
        a
    }

    /// The request body: a JSON or form object's properties become `position: body` arguments;
    /// any other JSON body becomes one argument sent whole through `requestTemplate.body`.
    fn body(
        &mut self,
        body: &Value,
        at: &str,
        args: &mut Vec<Map<String, Value>>,
        request: &mut Map<String, Value>,
    ) -> Result<(), ImportError> {
        let (body, body_path) = self.deref(body, at)?;
        let content = match body.get("content") {
            Some(Value::Object(c)) if !c.is_empty() => c,
            Some(Value::Object(_)) | None => return Ok(()),
            Some(_) => return Err(invalid(&key(&body_path, "content"), "must be a mapping")),
        };
        let chosen = content
            .iter()
            .find(|(media, _)| is_json(media))
            .or_else(|| content.iter().find(|(media, _)| essence(media) == FORM));
        let Some((media, media_obj)) = chosen else {
            let types: Vec<&str> = content.keys().map(String::as_str).collect();
            self.warn(format!(
                "{body_path}: request body {} is not supported (JSON and {FORM} are); the tool has no body \
                 arguments",
                types.join(", ")
            ));
            return Ok(());
        };
        let media_essence = essence(media);
        let form = media_essence == FORM;
        let schema_path = key(&key(&key(&body_path, "content"), media), "schema");
        let schema = match media_obj.get("schema") {
            Some(s) => flatten_all_of(self.inline(s, &schema_path, Dir::Request)?),
            None => json!({}),
        };
        let body_required = body.get("required") == Some(&Value::Bool(true));
        let props = schema.get("properties").and_then(Value::as_object).filter(|p| !p.is_empty());
        let taken =
            |name: &str, args: &[Map<String, Value>]| args.iter().any(|a| arg_field(a, "name") == name);
        let clash = props.and_then(|p| p.keys().find(|k| taken(k, args)).cloned());
        match props {
            Some(props) if is_object(&schema) && clash.is_none() => {
                let required: Vec<&str> = schema
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                for (name, prop) in props {
                    let d = text(prop.get("description"));
                    let a = self.arg(name, d, required.contains(&name.as_str()), prop, "body", &schema_path);
                    args.push(a);
                }
            }
            _ if form => {
                self.warn(format!(
                    "{schema_path}: a form body that is not an object with properties{} is not supported; the \
                     tool has no body arguments",
                    clash.as_deref().map(|c| format!(" (or whose {c:?} clashes with a parameter)")).unwrap_or_default()
                ));
                return Ok(());
            }
            _ => {
                let name = ["body", "requestBody", "_body"]
                    .into_iter()
                    .find(|n| !taken(n, args))
                    .map(str::to_string)
                    .unwrap_or_else(|| {
                        (2..).map(|n| format!("body_{n}")).find(|n| !taken(n, args)).unwrap_or_default()
                    });
                if let Some(c) = &clash {
                    self.warn(format!(
                        "{schema_path}: body property {c:?} has the name of a parameter; the body is one argument \
                         {name:?} instead"
                    ));
                }
                if arg_type(&schema) == Some("string") {
                    self.warn(format!(
                        "{schema_path}: a JSON string body is sent as the argument's raw text, not as a quoted \
                         JSON string"
                    ));
                }
                let d = text(body.get("description")).or_else(|| text(schema.get("description")));
                let a = self.arg(&name, d, body_required, &schema, "body", &schema_path);
                args.push(a);
                request.insert("body".into(), json!(format!("{{{{.args.{name}}}}}")));
            }
        }
        request.insert("headers".into(), json!([{ "key": "Content-Type", "value": media_essence }]));
        if form {
            request.insert("argsToFormBody".into(), json!(true));
        }
        Ok(())
    }

    /// The base URL for an operation: `--base-url`, else the first server of the operation, of
    /// its path item, then of the document, with variables replaced by their defaults.
    fn base_url(
        &mut self,
        at: &OpAt<'_>,
        op: &Map<String, Value>,
        op_path: &str,
        item: &Value,
        item_path: &str,
        base: Option<&str>,
    ) -> Result<String, ImportError> {
        if let Some(b) = base {
            return Ok(b.to_string());
        }
        let levels = [
            (op.get("servers"), key(op_path, "servers")),
            (item.get("servers"), key(item_path, "servers")),
            (self.root.get("servers"), "servers".to_string()),
        ];
        for (servers, servers_path) in levels {
            match servers {
                Some(Value::Array(list)) if !list.is_empty() => {
                    return server_url(&list[0], &idx(&servers_path, 0));
                }
                None | Some(Value::Array(_)) => {}
                Some(_) => return Err(invalid(&servers_path, "must be a list")),
            }
        }
        Err(ImportError::BaseUrl {
            path: at.loc.clone(),
            message: "the description names no server for this operation; pass --base-url with the API's \
                      absolute URL"
                .into(),
        })
    }

    /// `requestTemplate.security`: from the operation's `security` (or the document's when the
    /// operation has none), the first requirement whose schemes are all supported, by its first
    /// scheme. An empty requirement (`{}`, optional auth) or `security: []` means none.
    fn security(
        &mut self,
        tool: &str,
        op: &Map<String, Value>,
        op_path: &str,
        schemes: &Schemes,
    ) -> Result<Option<String>, ImportError> {
        let (reqs, reqs_path) = match op.get("security") {
            Some(s) => (s, key(op_path, "security")),
            None => match self.root.get("security") {
                Some(s) => (s, "security".to_string()),
                None => return Ok(None),
            },
        };
        let Value::Array(reqs) = reqs else {
            return Err(invalid(&reqs_path, "must be a list of security requirements"));
        };
        for (i, req) in reqs.iter().enumerate() {
            let Value::Object(req) = req else {
                return Err(invalid(&idx(&reqs_path, i), "a security requirement must be a mapping"));
            };
            for id in req.keys().filter(|id| !schemes.declared.contains(*id)) {
                self.warn(format!(
                    "{}: security scheme {id:?} is not declared in components.securitySchemes",
                    idx(&reqs_path, i)
                ));
            }
            if !req.keys().all(|id| schemes.supported.contains(id)) {
                continue;
            }
            let mut ids = req.keys();
            let Some(first) = ids.next() else { return Ok(None) };
            let rest: Vec<&str> = ids.map(String::as_str).collect();
            if !rest.is_empty() {
                self.warn(format!(
                    "{}: requires {first:?} and {} together; only {first:?} is applied (add the others as \
                     requestTemplate.headers by hand)",
                    idx(&reqs_path, i),
                    rest.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>().join(", ")
                ));
            }
            return Ok(Some(first.clone()));
        }
        if !reqs.is_empty() {
            let mut wanted: Vec<String> = Vec::new();
            for id in reqs.iter().filter_map(Value::as_object).flat_map(Map::keys) {
                if !wanted.contains(id) {
                    wanted.push(id.clone());
                }
            }
            self.warn(format!(
                "{reqs_path}: tool {tool:?} accepts only unsupported schemes ({}): it is called without \
                 backend credentials",
                wanted.join(", ")
            ));
        }
        Ok(None)
    }

    /// The first 2xx response's JSON schema, when it is an object (MCP `outputSchema` must be).
    fn output_schema(
        &mut self,
        op: &Map<String, Value>,
        op_path: &str,
    ) -> Result<Option<Value>, ImportError> {
        let Some(Value::Object(responses)) = op.get("responses") else { return Ok(None) };
        let mut codes: Vec<(u16, &String)> = responses
            .keys()
            .filter_map(|k| match k.as_str() {
                "2XX" | "2xx" => Some((300, k)),
                _ => k.parse::<u16>().ok().filter(|c| (200..300).contains(c)).map(|c| (c, k)),
            })
            .collect();
        codes.sort();
        let Some((_, code)) = codes.first() else { return Ok(None) };
        let resp_at = key(&key(op_path, "responses"), code);
        let Some(resp) = responses.get(code.as_str()) else { return Ok(None) };
        let (resp, resp_path) = self.deref(resp, &resp_at)?;
        let Some(Value::Object(content)) = resp.get("content") else { return Ok(None) };
        let Some((media, m)) = content.iter().find(|(media, _)| is_json(media)) else { return Ok(None) };
        let Some(schema) = m.get("schema") else { return Ok(None) };
        let schema_path = key(&key(&key(&resp_path, "content"), media), "schema");
        let schema = flatten_all_of(self.inline(schema, &schema_path, Dir::Response)?);
        if !is_object(&schema) {
            return Ok(None);
        }
        let mut schema = schema;
        if let Value::Object(m) = &mut schema {
            m.insert("type".into(), json!("object"));
        }
        Ok(Some(schema))
    }

    /// `${` starts an environment reference in a config file and docs/config.md has no escape for it,
    /// so imported text carrying one (an example in a description) would fail the load: it is
    /// written `$ {` instead, with a warning naming where.
    fn neutralise_env_syntax(&mut self, v: &mut Value, path: &str) {
        match v {
            Value::String(s) if s.contains("${") => {
                *s = s.replace("${", "$ {");
                self.warn(format!(
                    "{}: \"${{\" written as \"$ {{\" (the config's environment syntax)",
                    display_path(path)
                ));
            }
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.neutralise_env_syntax(item, &idx(path, i));
                }
            }
            Value::Object(m) => {
                for (k, item) in m.iter_mut() {
                    self.neutralise_env_syntax(item, &key(path, k));
                }
            }
            _ => {}
        }
    }
}

/// A server's URL with its variables replaced by their defaults; must be absolute.
fn server_url(server: &Value, at: &str) -> Result<String, ImportError> {
    let Some(url) = server.get("url").and_then(Value::as_str) else {
        return Err(invalid(at, "a server needs a string `url`"));
    };
    let mut out = String::new();
    let mut rest = url;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(invalid(&key(at, "url"), "unclosed '{' in the server URL"));
        };
        let var = &after[..close];
        let default = server.get("variables").and_then(|v| v.get(var)).and_then(|v| v.get("default"));
        match default {
            Some(d) if !d.is_null() && !d.is_object() && !d.is_array() => out.push_str(&scalar_text(d)),
            _ => {
                return Err(ImportError::BaseUrl {
                    path: key(&key(at, "variables"), var),
                    message: format!("server variable {var:?} has no default; pass --base-url"),
                })
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    if !is_absolute_http(&out) {
        return Err(ImportError::BaseUrl {
            path: key(at, "url"),
            message: format!(
                "{out:?} is not an absolute http(s) URL (OpenAPI resolves it against where the description is \
                 served); pass --base-url with the absolute URL the API is served at"
            ),
        });
    }
    Ok(out.trim_end_matches('/').to_string())
}

/// A string field of a generated argument (`name`, `position`), empty when absent.
fn arg_field<'m>(a: &'m Map<String, Value>, field: &str) -> &'m str {
    a.get(field).and_then(Value::as_str).unwrap_or("")
}

/// Trimmed non-empty text.
fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

/// `summary` and `description`, both when they differ; deprecated operations say so first.
fn description(op: &Map<String, Value>) -> Option<String> {
    let summary = text(op.get("summary"));
    let desc = text(op.get("description"));
    let body = match (summary, desc) {
        (Some(s), Some(d)) if s != d => Some(format!("{s}\n\n{d}")),
        (Some(s), _) => Some(s),
        (None, d) => d,
    };
    if op.get("deprecated") == Some(&Value::Bool(true)) {
        return Some(match body {
            Some(b) => format!("Deprecated. {b}"),
            None => "Deprecated.".into(),
        });
    }
    body
}

#[cfg(test)]
mod tests;
