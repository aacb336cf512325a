//! Reading an OpenAPI document: JSON or YAML (bounded), JSON pointers and `$ref`s inside the
//! document (external ones refused, chains bounded).

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::error::*;

/// Largest description accepted, in bytes (the biggest public descriptions are ~15 MB).
pub(super) const MAX_SPEC_BYTES: usize = 64 << 20;

/// `$ref`s followed in a row before a chain counts as a cycle.
pub(super) const MAX_REF_HOPS: usize = 32;

pub(super) fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// Flow (`[`/`{`) nesting refused before parsing: libyaml's scanner is quadratic in it
/// (measured on a debug build: 10k levels 0.7 s, 100k levels 66 s, before yaml_serde's own
/// recursion limit of 128 even looks). Counted over the raw text, brackets in strings included,
/// which only errs on the generous side.
pub(super) const MAX_FLOW_DEPTH: usize = 1000;

pub(super) fn flow_too_deep(spec: &str) -> bool {
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

/// A description into a JSON tree. One that starts with `{` is JSON (serde_json: linear,
/// surrogate-pair escapes such as `\ud83d\udc4d` decoded, nesting bounded at 128; read as YAML,
/// a JSON syntax error could pass as a null). Anything else is YAML: yaml_serde
/// bounds nesting and alias expansion; mapping keys that YAML reads as numbers (`200:` under
/// `responses`) become their text.
pub(super) fn parse(spec: &str) -> Result<Value, ImportError> {
    if spec.trim_start().starts_with('{') {
        return serde_json::from_str::<Value>(spec).map_err(|e| ImportError::Syntax(format!("JSON: {e}")));
    }
    parse_yaml(spec)
}

fn parse_yaml(spec: &str) -> Result<Value, ImportError> {
    if flow_too_deep(spec) {
        return Err(ImportError::Syntax(format!("brackets nested deeper than {MAX_FLOW_DEPTH} levels")));
    }
    let mut y: yaml_serde::Value =
        yaml_serde::from_str(spec).map_err(|e| ImportError::Syntax(e.to_string()))?;
    y.apply_merge().map_err(|e| ImportError::Syntax(e.to_string()))?;
    yaml_to_json(y).map_err(ImportError::Syntax)
}

pub(crate) fn yaml_to_json(v: yaml_serde::Value) -> Result<Value, String> {
    use yaml_serde::Value as Y;
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
pub(super) fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(super) fn check_base_url(url: &str) -> Result<String, ImportError> {
    let url = url.trim();
    if !is_absolute_http(url) || url.contains(['{', '}', ' ']) {
        return Err(ImportError::BaseUrl {
            path: "--base-url".into(),
            message: format!("{url:?} is not an absolute http:// or https:// URL"),
        });
    }
    Ok(url.trim_end_matches('/').to_string())
}

pub(super) fn is_absolute_http(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    ["http://", "https://"].iter().any(|p| lower.strip_prefix(p).is_some_and(|rest| !rest.is_empty()))
}

pub(super) fn key(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}

pub(super) fn idx(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

pub(super) fn ref_of<'v>(v: &'v Value, path: &str) -> Result<Option<&'v str>, ImportError> {
    match v.as_object().and_then(|m| m.get("$ref")) {
        None => Ok(None),
        Some(Value::String(r)) => Ok(Some(r)),
        Some(_) => Err(invalid(path, "$ref must be a string")),
    }
}

/// Resolves a local reference (`#/components/schemas/Pet`, a JSON Pointer in a URI fragment:
/// percent-decoded, then `~1` -> `/` and `~0` -> `~`, RFC 6901 sections 4 and 6). Returns the
/// target and its path. `at` is where the `$ref` is, for errors.
pub(super) fn pointer<'a>(
    root: &'a Value,
    reference: &str,
    at: &str,
) -> Result<(&'a Value, String), ImportError> {
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

pub(super) fn percent_decode(s: &str) -> Option<String> {
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
pub(super) fn deref<'a>(
    root: &'a Value,
    v: &'a Value,
    path: &str,
) -> Result<(Cow<'a, Value>, String), ImportError> {
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

/// Trimmed non-empty text.
pub(super) fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

/// An environment-variable name suggested for a scheme's credential.
pub(super) fn env_name(id: &str) -> String {
    let mut s: String =
        id.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert_str(0, "API_");
    }
    s
}
