//! Operations become tools: names (MCP's rules), URLs with their path placeholders, methods,
//! arguments, security, output schemas.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::cx::*;
use super::document::*;
use super::error::*;
use super::params::*;
use super::schema::*;
use super::security::*;

/// MCP tool names: "1-64 characters of [A-Za-z0-9_./-]" (the config compiler's rule).
pub(super) const MAX_TOOL_NAME: usize = 64;

/// The operations of a Path Item Object (OpenAPI 3.1 section 4.8.9.1).
pub(super) const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// MCP tool-name rules: every character outside `[A-Za-z0-9_./-]` becomes `_`, then at most 64.
pub(super) fn sanitise_tool_name(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() || "_./-".contains(c) { c } else { '_' })
        .take(MAX_TOOL_NAME)
        .collect()
}

/// `get_pets_petId` for `get /pets/{petId}`; `get_root` for `/`.
pub(super) fn fallback_tool_name(method: &str, path: &str) -> String {
    let segments: Vec<String> =
        path.split('/').map(|s| s.replace(['{', '}'], "")).filter(|s| !s.is_empty()).collect();
    let tail = if segments.is_empty() { "root".to_string() } else { segments.join("_") };
    sanitise_tool_name(&format!("{method}_{tail}"))
}

/// The `{name}` placeholders of a path template.
pub(super) fn path_placeholders(path: &str) -> Vec<String> {
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

/// One operation's location, for messages.
pub(super) struct OpAt<'p> {
    pub(super) path: &'p str,
    pub(super) method: &'p str,
    pub(super) loc: String,
}

/// A server's URL with its variables replaced by their defaults; must be absolute.
pub(super) fn server_url(server: &Value, at: &str) -> Result<String, ImportError> {
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

/// `summary` and `description`, both when they differ; deprecated operations say so first.
pub(super) fn description(op: &Map<String, Value>) -> Option<String> {
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

impl<'a> Cx<'a> {
    pub(super) fn tools(&mut self, schemes: &Schemes, base: Option<&str>) -> Result<Vec<Value>, ImportError> {
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
    pub(super) fn operation(
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
    pub(super) fn tool_name(
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

    /// The base URL for an operation: `--base-url`, else the first server of the operation, of
    /// its path item, then of the document, with variables replaced by their defaults.
    pub(super) fn base_url(
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

    /// The first 2xx response's JSON schema, when it is an object (MCP `outputSchema` must be).
    pub(super) fn output_schema(
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
    pub(super) fn neutralise_env_syntax(&mut self, v: &mut Value, path: &str) {
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
