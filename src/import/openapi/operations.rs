//! Operations become tools: names (MCP's rules), URLs with their path placeholders, methods,
//! arguments, security, output schemas.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::config::raw::{Arg, RequestTemplate, SecurityRef, Tool};

use super::Entry;

use super::cx::*;
use super::document::*;
use super::error::*;
use super::params::*;
use super::schema::*;
use super::security::*;

/// MCP tool names (SEP-986): 1-128 characters of `[A-Za-z0-9_.-]`.
pub(super) const MAX_TOOL_NAME: usize = 128;

/// The operations of a Path Item Object (OpenAPI 3.1 section 4.8.9.1).
pub(super) const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// MCP tool-name rules (1-128 of `[A-Za-z0-9_.-]`): every other character (`/` included, which
/// the TypeScript SDK refuses) becomes `_`, then at most 128.
pub(super) fn sanitise_tool_name(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '_' })
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
    pub(super) fn tools(&mut self, schemes: &Schemes, base: Option<&str>) -> Result<Vec<Tool>, ImportError> {
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
    ) -> Result<Tool, ImportError> {
        let (op, op_path) = self.deref(op, &at.loc)?;
        let Value::Object(opm) = op.as_ref() else {
            return Err(invalid(&op_path, "an operation must be a mapping"));
        };
        let name = self.tool_name(at, opm, names);

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
        let mut args: Vec<Arg> = Vec::new();
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
            if let Some(other) = args.iter().find(|a| a.name == param.name) {
                self.warn(format!(
                    "{}: parameter {:?} in {} has the name of the {} parameter (an argument name is also its \
                     wire name); dropped",
                    param.path,
                    param.name,
                    param.location,
                    position(other)
                ));
                continue;
            }
            args.push(self.param_arg(param)?);
        }
        for ph in &placeholders {
            if !args.iter().any(|a| a.name == *ph && position(a) == "path") {
                self.warn(format!(
                    "{}: the path has {{{ph}}} but no path parameter {ph:?}; added as a required string",
                    at.loc
                ));
                args.push(Arg {
                    name: ph.to_string(),
                    description: None,
                    kind: Some("string".into()),
                    required: Some(true),
                    default: None,
                    choices: None,
                    items: None,
                    properties: None,
                    position: Some("path".into()),
                    ..Arg::default()
                });
            }
        }

        let url = format!("{}{}", self.base_url(at, opm, &op_path, item, item_path, base)?, at.path);
        let mut request = RequestTemplate {
            url: Some(url),
            method: Some(at.method.to_ascii_uppercase()),
            headers: None,
            body: None,
            args_to_json_body: None,
            args_to_url_param: None,
            args_to_form_body: None,
            security: None,
        };
        if let Some(body) = opm.get("requestBody") {
            let body_path = key(&op_path, "requestBody");
            self.body(body, &body_path, &mut args, &mut request)?;
        }
        if let Some(id) = self.security(&name, opm, &op_path, schemes)? {
            request.security = Some(SecurityRef { id, credential: None, passthrough: None });
        }
        Ok(Tool {
            description: description(opm),
            args: (!args.is_empty()).then_some(args),
            request_template: Some(request),
            response_template: None,
            error_response_template: None,
            output_schema: match self.output_schemas {
                true => self.output_schema(opm, &op_path)?.as_ref().map(config_value),
                false => None,
            },
            security: None,
            name,
        })
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
                        "{}: operationId {id:?} is not 1-128 characters of [A-Za-z0-9_.-]; tool named {s:?}",
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
    /// written `$ {` instead, with a warning naming where. Every string of the entry is visited.
    pub(super) fn neutralise_env_syntax(&mut self, e: &mut Entry) {
        self.neutralise(&mut e.name, "name");
        if let Some(n) = &mut e.server.name {
            self.neutralise(n, "server.name");
        }
        for (i, sc) in e.server.security_schemes.iter_mut().flatten().enumerate() {
            let at = idx("server.securitySchemes", i);
            self.neutralise(&mut sc.id, &key(&at, "id"));
            for (field, v) in [("scheme", &mut sc.scheme), ("name", &mut sc.name)] {
                if let Some(v) = v {
                    self.neutralise(v, &key(&at, field));
                }
            }
        }
        for (i, t) in e.tools.iter_mut().enumerate() {
            let at = idx("tools", i);
            self.neutralise(&mut t.name, &key(&at, "name"));
            if let Some(d) = &mut t.description {
                self.neutralise(d, &key(&at, "description"));
            }
            for (j, a) in t.args.iter_mut().flatten().enumerate() {
                let at = idx(&key(&at, "args"), j);
                self.neutralise(&mut a.name, &key(&at, "name"));
                for (field, v) in [("description", &mut a.description), ("position", &mut a.position)] {
                    if let Some(v) = v {
                        self.neutralise(v, &key(&at, field));
                    }
                }
                for (field, v) in
                    [("default", &mut a.default), ("items", &mut a.items), ("properties", &mut a.properties)]
                {
                    if let Some(v) = v {
                        self.neutralise_value(v, &key(&at, field));
                    }
                }
                for (k, v) in a.choices.iter_mut().flatten().enumerate() {
                    self.neutralise_value(v, &idx(&key(&at, "enum"), k));
                }
            }
            if let Some(r) = &mut t.request_template {
                let at = key(&at, "requestTemplate");
                for (field, v) in [("url", &mut r.url), ("body", &mut r.body)] {
                    if let Some(v) = v {
                        self.neutralise(v, &key(&at, field));
                    }
                }
                for (k, h) in r.headers.iter_mut().flatten().enumerate() {
                    self.neutralise(&mut h.value, &key(&idx(&key(&at, "headers"), k), "value"));
                }
                if let Some(sec) = &mut r.security {
                    self.neutralise(&mut sec.id, &key(&key(&at, "security"), "id"));
                }
            }
            if let Some(o) = &mut t.output_schema {
                self.neutralise_value(o, &key(&at, "outputSchema"));
            }
        }
    }

    fn neutralise(&mut self, s: &mut String, path: &str) {
        if s.contains("${") {
            *s = s.replace("${", "$ {");
            self.warn(format!(
                "{}: \"${{\" written as \"$ {{\" (the config's environment syntax)",
                display_path(path)
            ));
        }
    }

    fn neutralise_value(&mut self, v: &mut yaml_serde::Value, path: &str) {
        use yaml_serde::Value as Y;
        match v {
            Y::String(s) => self.neutralise(s, path),
            Y::Sequence(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.neutralise_value(item, &idx(path, i));
                }
            }
            Y::Mapping(m) => {
                for (k, item) in m.iter_mut() {
                    let k = k.as_str().unwrap_or("?").to_string();
                    self.neutralise_value(item, &key(path, &k));
                }
            }
            Y::Tagged(t) => self.neutralise_value(&mut t.value, path),
            Y::Null | Y::Bool(_) | Y::Number(_) => {}
        }
    }
}
