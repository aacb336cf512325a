//! One `servers[]` entry: authentication, authorization, the Higress `server` block, tools
//! (template and REST, OpenAPI imports included), backends, allow-lists.

use std::collections::HashSet;

use rustc_hash::FxHashMap as HashMap;
use serde_json::json;
use yaml_serde::Value;

use crate::config::raw;
use crate::config::snapshot::{LocalTool, Server, ToolKind};
use crate::rest::schema::{self, ArgSpec};
use crate::rest::template::Template;

use super::backend::*;
use super::common::*;
use super::{auth, authz, rest};

/// MCP tool names: 1-64 of `[A-Za-z0-9_./-]` (the conformance suite's check).
/// 1-128 characters of `[A-Za-z0-9_./-]`: MCP's tool-name characters (SEP-986: letters,
/// digits, `_`, `-`, `.`) plus `/`, which existing configurations use (a load warning says the
/// TypeScript SDK refuses it).
pub(crate) fn valid_tool_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_./-".contains(&b))
}

pub(crate) fn compile_server(
    rs: &raw::Server,
    path: &str,
    errs: &mut Errors,
    warnings: &mut Vec<String>,
) -> Option<Server> {
    let before = errs.0.len();
    if !valid_name(&rs.name) {
        errs.push(format!("{path}.name"), "must be 1-128 characters of [A-Za-z0-9_-]");
    }
    let endpoint = rs.path.clone().unwrap_or_else(|| format!("/mcp/{}", rs.name));
    if !endpoint.starts_with('/') || endpoint.contains(['?', '#', ' ']) {
        errs.push(format!("{path}.path"), "must be an absolute path without query or fragment");
    }
    if let Some(r) = &rs.resource {
        if !(r.starts_with("https://") || r.starts_with("http://")) {
            errs.push(format!("{path}.resource"), "must be an absolute http(s) URI");
        }
        if r.contains('#') {
            // RFC 8707 2: a resource indicator has no fragment.
            errs.push(format!("{path}.resource"), "must not contain a fragment");
        }
    }

    let apath = format!("{path}.authentication");
    let raw_auth = rs.authentication.as_ref().and_then(|a| a.parse(&apath).map_err(|e| errs.0.push(e)).ok());
    let auth = auth::compile(raw_auth.as_ref(), &rs.name, &endpoint, rs.resource.as_deref(), &apath, errs);
    let anonymous = auth.anonymous();
    let zpath = format!("{path}.authorization");
    let raw_authz = rs.authorization.as_ref().and_then(|a| a.parse(&zpath).map_err(|e| errs.0.push(e)).ok());

    let mut config = serde_json::Value::Object(Default::default());
    let mut scheme_ids = HashSet::new();
    let mut schemes: Vec<raw::SecurityScheme> = Vec::new();
    let mut higress: Option<raw::HigressServer> = None;
    let mut server_block_failed = false;
    if let Some(s) = &rs.server {
        let spath = format!("{path}.server");
        server_block_failed = true;
        if let Ok(hs) = s.parse(&spath).map_err(|e| errs.0.push(e)) {
            server_block_failed = false;
            if let Some(c) = &hs.config {
                match serde_json::to_value(c) {
                    Ok(v) => config = v,
                    Err(e) => errs.push(format!("{spath}.config"), format!("not representable as JSON: {e}")),
                }
            }
            for (i, sc) in hs.security_schemes.iter().flatten().enumerate() {
                let p = format!("{spath}.securitySchemes[{i}]");
                if !scheme_ids.insert(sc.id.clone()) {
                    errs.push(format!("{p}.id"), format!("duplicate scheme id {:?}", sc.id));
                }
                check_scheme(sc, &p, errs);
                schemes.push(sc.clone());
            }
            higress = Some(hs);
        }
    }
    // An OpenAPI description adds its schemes (the entry's own scheme of the same id wins: that
    // is where credentials for imported schemes are given) and its operations as tools.
    let imported = rs
        .openapi
        .as_ref()
        .and_then(|o| import_openapi(o, &format!("{path}.openapi"), &scheme_ids, errs, warnings));
    if let Some((isch, _)) = &imported {
        for sc in isch {
            if scheme_ids.insert(sc.id.clone()) {
                schemes.push(sc.clone());
            }
        }
    }
    let scx = rest::ServerCx {
        schemes: &schemes,
        schemes_known: !server_block_failed,
        default_down: higress.as_ref().and_then(|h| h.default_downstream_security.as_ref()),
        default_up: higress.as_ref().and_then(|h| h.default_upstream_security.as_ref()),
        pass_auth: higress.as_ref().and_then(|h| h.passthrough_auth_header).unwrap_or(false),
        config: &config,
        ca_file: higress.as_ref().and_then(|h| h.ca_file.as_deref()),
        base_url: rs.base_url.as_deref(),
        path,
        token_services: Default::default(),
        credential_files: Default::default(),
    };
    if let Some(b) = &rs.base_url {
        if !(b.starts_with("http://") || b.starts_with("https://")) || b.contains(['?', '#', '{']) {
            errs.push(format!("{path}.baseUrl"), "must be an absolute http(s) URL without query or fragment");
        }
    }
    // Token exchange needs a caller's token to exchange: a verified JWT.
    if !matches!(auth.mode, crate::auth::Mode::Jwt { .. }) {
        for sc in schemes.iter().filter(|s| s.flows.as_ref().is_some_and(|f| f.token_exchange.is_some())) {
            errs.push(
                format!("{}.flows.tokenExchange", scx.scheme_path(&sc.id)),
                "exchanges the caller's token: the server's authentication must be mode jwt",
            );
        }
    }
    for (sref, field) in
        [(scx.default_down, "defaultDownstreamSecurity"), (scx.default_up, "defaultUpstreamSecurity")]
    {
        if let Some(s) = sref {
            if !scheme_ids.contains(&s.id) {
                errs.push(
                    format!("{path}.server.{field}.id"),
                    format!("no securitySchemes entry with id {:?}", s.id),
                );
            }
        }
    }

    let mut tools = Vec::new();
    let mut tool_index = HashMap::default();
    for (i, t) in rs.tools.iter().flatten().enumerate() {
        let tpath = format!("{path}.tools[{i}]");
        let Ok(tool) = t.parse(&tpath).map_err(|e| errs.0.push(e)) else { continue };
        if let Some(lt) = compile_tool(&tool, &tpath, &scx, errs, warnings) {
            if tool_index.insert(lt.name.clone(), tools.len()).is_some() {
                errs.push(format!("{tpath}.name"), format!("duplicate tool name {:?}", lt.name));
            }
            tools.push(lt);
        }
    }
    for (i, tool) in imported.iter().flat_map(|(_, t)| t).enumerate() {
        let tpath = format!("{path}.openapi.tools[{i}]");
        if let Some(lt) = compile_tool(tool, &tpath, &scx, errs, warnings) {
            if tool_index.insert(lt.name.clone(), tools.len()).is_some() {
                errs.push(format!("{tpath}.name"), format!("duplicate tool name {:?}", lt.name));
            }
            tools.push(lt);
        }
    }
    let mut backends = Vec::new();
    let mut backend_names = HashSet::new();
    for (i, b) in rs.backends.iter().flatten().enumerate() {
        let bpath = format!("{path}.backends[{i}]");
        let Ok(rb) = b.parse(&bpath).map_err(|e| errs.0.push(e)) else { continue };
        if !backend_names.insert(rb.name.clone()) {
            errs.push(format!("{bpath}.name"), format!("duplicate backend name {:?}", rb.name));
        }
        if let Some(be) = compile_backend(&rb, &bpath, &scx, errs) {
            backends.push(crate::config::snapshot::Backend { index: backends.len(), ..be });
        }
    }
    let backend_names: Vec<&str> = backends.iter().map(|b| &*b.name).collect();
    let own_tools = |t: &str| tool_index.contains_key(t);
    let policy = authz::compile(raw_authz.as_ref(), (&rs.name, &own_tools), &backend_names, &zpath, errs);
    let rate_limits = authz::rate_limits(rs.rate_limits.as_deref(), path, errs);
    let pins_file = pins(rs, path, &mut backends, errs, warnings);
    if let Some(sep) = &rs.tool_name_separator {
        if sep.is_empty() {
            errs.push(format!("{path}.toolNameSeparator"), "must not be empty");
        }
    }
    // Higress accepts the list at the top level and as `server.allowTools`; with both, a tool
    // must be in both.
    let server_allow = higress.as_ref().and_then(|h| h.allow_tools.as_ref());
    let mut allow_tools: Option<Vec<Box<str>>> = None;
    for (list, at) in [
        (rs.allow_tools.as_ref(), format!("{path}.allowTools")),
        (server_allow, format!("{path}.server.allowTools")),
    ] {
        let Some(list) = list else { continue };
        for (i, t) in list.iter().enumerate() {
            // Backend tool names are only known at run time.
            if rs.backends.as_ref().is_none_or(Vec::is_empty) && !tool_index.contains_key(t.as_str()) {
                errs.push(format!("{at}[{i}]"), format!("no tool named {t:?}"));
            }
        }
        let names: Vec<Box<str>> = list.iter().map(|t| t.as_str().into()).collect();
        allow_tools = Some(match allow_tools {
            Some(prev) => prev.into_iter().filter(|t| names.contains(t)).collect(),
            None => names,
        });
    }
    if let Some(allow) = &allow_tools {
        for t in &mut tools {
            t.allowed = allow.contains(&t.name);
        }
    }
    passthrough_warnings(&rs.name, &auth, &tools, warnings);
    if errs.0.len() > before {
        return None;
    }
    Some(Server {
        name: rs.name.as_str().into(),
        index: 0,
        path: endpoint.into(),
        resource: rs.resource.as_deref().map(Into::into),
        instructions: rs.instructions.as_deref().map(Into::into),
        tools,
        tool_index,
        allow_tools,
        config,
        anonymous,
        auth,
        policy,
        rate_limits,
        pins_file,
        backends,
        separator: rs.tool_name_separator.as_deref().unwrap_or("__").into(),
    })
}

/// Token passthrough is allowed (Higress allows it) but never quiet: a REST tool that hands the
/// client's bearer token - the JWT that authenticated the client to this gateway - to its
/// backend is a load warning naming the tool.
pub(crate) fn passthrough_warnings(
    server: &str,
    auth: &crate::auth::Authenticator,
    tools: &[LocalTool],
    warnings: &mut Vec<String>,
) {
    use crate::auth::scheme::SchemeKind;
    use crate::auth::{KeyIn, Mode};
    for t in tools {
        let ToolKind::Rest(rt) = &t.kind else { continue };
        let through = rt.downstream.as_ref().filter(|d| d.passthrough).map(|d| &d.scheme);
        // Whether what reaches the REST API is the credential this endpoint authenticates with.
        let own = match &auth.mode {
            Mode::Jwt { .. } => {
                rt.pass_authorization || through.is_some_and(|s| s.kind == SchemeKind::Bearer)
            }
            Mode::Basic { .. } => {
                rt.pass_authorization || through.is_some_and(|s| s.kind == SchemeKind::Basic)
            }
            Mode::ApiKey { location, name, .. } => through.is_some_and(|s| {
                let same_place = match location {
                    KeyIn::Header => s.kind == SchemeKind::ApiKeyHeader,
                    KeyIn::Query => s.kind == SchemeKind::ApiKeyQuery,
                };
                same_place && s.name.eq_ignore_ascii_case(name)
            }),
            _ => false,
        };
        if own {
            warnings.push(format!(
                "servers[{server}] tool {}: the client's credential, which authenticated it to this gateway, is \
                 passed through to the REST backend; the MCP security best practices forbid token passthrough \
                 (the backend would accept a credential not issued for it): prefer a backend credential",
                t.name
            ));
        }
    }
}

/// Reads and imports `servers[].openapi.file`: the description's security schemes and
/// operations (as REST tools). The importer's warnings become load warnings, except "no
/// credential imported" for a scheme the entry declares itself (`given`: that declaration
/// replaces the imported one and is where its credential is given).
pub(crate) fn import_openapi(
    o: &raw::Deferred<raw::OpenApi>,
    path: &str,
    given: &std::collections::HashSet<String>,
    errs: &mut Errors,
    warnings: &mut Vec<String>,
) -> Option<(Vec<raw::SecurityScheme>, Vec<raw::Tool>)> {
    let o = o.parse(path).map_err(|e| errs.0.push(e)).ok()?;
    let fpath = format!("{path}.file");
    let text = std::fs::read_to_string(&o.file)
        .map_err(|e| errs.push(&fpath, format!("cannot read {:?}: {e}", o.file)))
        .ok()?;
    let opts = crate::import::openapi::ImportOptions {
        name: None,
        base_url: o.base_url.clone(),
        output_schemas: o.output_schemas.unwrap_or(false),
    };
    let imported =
        crate::import::openapi::import(&text, &opts).map_err(|e| errs.push(&fpath, e.to_string())).ok()?;
    let replaced = |w: &str| {
        given.iter().any(|id| w.starts_with(&format!("securitySchemes {id:?}: no credential imported")))
    };
    warnings.extend(imported.warnings.iter().filter(|w| !replaced(w)).map(|w| format!("{fpath}: {w}")));
    let entry = imported.entry;
    let (schemes, tools) = (entry.server.security_schemes.unwrap_or_default(), entry.tools);
    Some((schemes, tools))
}

pub(crate) fn compile_tool(
    t: &raw::Tool,
    path: &str,
    scx: &rest::ServerCx<'_>,
    errs: &mut Errors,
    warnings: &mut Vec<String>,
) -> Option<LocalTool> {
    let before = errs.0.len();
    if !valid_tool_name(&t.name) {
        errs.push(format!("{path}.name"), "must be 1-128 characters of [A-Za-z0-9_./-]");
    } else if t.name.contains('/') {
        warnings.push(format!(
            "{path}.name: {:?} contains '/', outside MCP's tool-name characters [A-Za-z0-9_.-]; the \
             TypeScript SDK refuses such tools",
            t.name
        ));
    }
    let (t, index) = higress_args(t, path, warnings);
    let t = &*t;
    let mut specs = Vec::new();
    for (k, a) in t.args.iter().flatten().enumerate() {
        let apath = format!("{path}.args[{}]", index.get(k).copied().unwrap_or(k));
        if let Some(k) = &a.kind {
            if !schema::TYPES.contains(&k.as_str()) {
                errs.push(format!("{apath}.type"), format!("must be one of {}", schema::TYPES.join(", ")));
            }
        }
        if let Some(p) = &a.position {
            if !["query", "path", "header", "cookie", "body"].contains(&p.to_ascii_lowercase().as_str()) {
                errs.push(format!("{apath}.position"), "must be query, path, header, cookie or body");
            }
        }
        let to_json = |v: &Option<Value>| v.as_ref().and_then(|v| serde_json::to_value(v).ok());
        if let Some(d) = to_json(&a.default) {
            check_default(&d, a.kind.as_deref(), a.choices.as_deref(), &apath, errs);
        }
        specs.push(ArgSpec {
            name: &a.name,
            kind: a.kind.as_deref(),
            description: a.description.as_deref(),
            required: a.required.unwrap_or(false),
            default: to_json(&a.default),
            choices: a
                .choices
                .as_ref()
                .map(|c| c.iter().filter_map(|v| serde_json::to_value(v).ok()).collect()),
            items: to_json(&a.items),
            properties: to_json(&a.properties),
            keywords: [
                ("format", a.format.as_ref().map(|f| json!(f))),
                ("minimum", to_json(&a.minimum)),
                ("maximum", to_json(&a.maximum)),
                ("pattern", a.pattern.as_ref().map(|p| json!(p))),
                ("minLength", to_json(&a.min_length)),
                ("maxLength", to_json(&a.max_length)),
            ]
            .into_iter()
            .filter_map(|(k, v)| Some((k, v?)))
            .collect(),
        });
    }
    for (sref, p) in [
        (t.security.as_ref(), format!("{path}.security.id")),
        (
            t.request_template.as_ref().and_then(|r| r.security.as_ref()),
            format!("{path}.requestTemplate.security.id"),
        ),
    ] {
        if let Some(s) = sref {
            if !scx.schemes.iter().any(|sc| sc.id == s.id) {
                rest::missing_scheme(scx.schemes_known, &p, &s.id, errs);
            }
        }
    }
    if let Some(os) = &t.output_schema {
        let is_object =
            serde_json::to_value(os).ok().is_some_and(|v| v.get("type") == Some(&json!("object")));
        if !is_object {
            errs.push(format!("{path}.outputSchema"), "must be a JSON Schema with type: object");
        }
    }
    let rules = rest::arg_rules(t);
    let has_url = t.request_template.as_ref().is_some_and(|r| r.url.is_some());
    let kind = match has_url {
        true => rest::rest_tool(t, rules, path, scx, errs, warnings).map(|r| ToolKind::Rest(Box::new(r))),
        false => match t.response_template.as_ref().and_then(|r| r.body.as_deref()) {
            Some(src) => Template::compile(src)
                .map_err(|e| errs.push(format!("{path}.responseTemplate.body"), e))
                .ok()
                .map(|body| ToolKind::Template { body, args: rules }),
            None => {
                errs.push(
                    format!("{path}.responseTemplate.body"),
                    "a tool without requestTemplate.url needs a body",
                );
                None
            }
        },
    };
    if errs.0.len() > before {
        return None;
    }
    let mut entry = serde_json::Map::new();
    entry.insert("name".into(), json!(t.name));
    // The conformance suite requires a non-empty description; fall back to the name.
    entry.insert(
        "description".into(),
        json!(t.description.as_deref().filter(|d| !d.is_empty()).unwrap_or(&t.name)),
    );
    entry.insert("inputSchema".into(), schema::input_schema(&specs));
    if let Some(os) = &t.output_schema {
        if let Ok(v) = serde_json::to_value(os) {
            entry.insert("outputSchema".into(), v);
        }
    }
    let listing = serde_json::to_vec(&serde_json::Value::Object(entry)).ok()?;
    Some(LocalTool {
        name: t.name.as_str().into(),
        listing: listing.into_boxed_slice(),
        allowed: true,
        kind: kind?,
    })
}

/// A tool's arguments as Higress reads them: of two arguments with one name the last wins (its
/// schema, default and position; Higress keeps them in maps), and `type: int` is `integer`
/// (Higress publishes it as written, which is no JSON Schema type). Each is a load warning.
/// Also returns, for each argument kept, its index in the file (for error paths).
fn higress_args<'t>(
    t: &'t raw::Tool,
    path: &str,
    warnings: &mut Vec<String>,
) -> (std::borrow::Cow<'t, raw::Tool>, Vec<usize>) {
    let args = t.args.as_deref().unwrap_or_default();
    let duplicated = |i: usize| args[i + 1..].iter().any(|b| b.name == args[i].name);
    let int = |a: &raw::Arg| a.kind.as_deref() == Some("int");
    if !(0..args.len()).any(duplicated) && !args.iter().any(int) {
        return (std::borrow::Cow::Borrowed(t), (0..args.len()).collect());
    }
    let mut kept = Vec::with_capacity(args.len());
    let mut index = Vec::with_capacity(args.len());
    for (i, a) in args.iter().enumerate() {
        if duplicated(i) {
            warnings.push(format!(
                "{path}.args[{i}]: argument {:?} is declared again later; the later declaration is used, as in Higress",
                a.name
            ));
            continue;
        }
        let mut a = a.clone();
        if int(&a) {
            warnings.push(format!("{path}.args[{i}].type: \"int\" is read as \"integer\""));
            a.kind = Some("integer".into());
        }
        kept.push(a);
        index.push(i);
    }
    let mut t = t.clone();
    t.args = Some(kept);
    (std::borrow::Cow::Owned(t), index)
}

/// `pins` and the backends' `pinning`: the approved digests read into each pinned backend. A
/// pinned backend needs the file; `enforce` needs it readable (a load error otherwise: nothing
/// would be served), `warn` starts with no pins and says so.
fn pins(
    rs: &raw::Server,
    path: &str,
    backends: &mut [crate::config::snapshot::Backend],
    errs: &mut Errors,
    warnings: &mut Vec<String>,
) -> Option<std::path::PathBuf> {
    use crate::config::snapshot::Pinning;
    let pinned = backends.iter().any(|b| b.pinning != Pinning::Off);
    let file = rs.pins.as_deref().map(std::path::PathBuf::from);
    let Some(file) = file else {
        if pinned {
            errs.push(format!("{path}.pins"), "is required when a backend has pinning (warn or enforce)");
        }
        return None;
    };
    if !pinned {
        return Some(file);
    }
    let enforced = backends.iter().any(|b| b.pinning == Pinning::Enforce);
    let all = match crate::mcp::pins::load(&file) {
        Ok(all) => all,
        Err(e) if enforced => {
            errs.1.push(format!("{path}.pins: {e} (record it with `portcullis pins record`)"));
            return Some(file);
        }
        Err(e) => {
            warnings.push(format!("{path}.pins: {e}; pinned backends (warn) report every tool as unpinned"));
            Default::default()
        }
    };
    if let Some(server) = all.get(&rs.name) {
        for b in backends.iter_mut().filter(|b| b.pinning != Pinning::Off) {
            if let Some(tools) = server.get(&*b.name) {
                b.pins = tools.iter().map(|(t, d)| (t.as_str().into(), d.as_str().into())).collect();
            }
        }
    }
    Some(file)
}

/// An argument's `default` must be a value the argument accepts: of its `type` (or one of the
/// documented coercions: a numeric or boolean string) and, with `enum`, one of its values.
fn check_default(
    d: &serde_json::Value,
    kind: Option<&str>,
    choices: Option<&[Value]>,
    apath: &str,
    errs: &mut Errors,
) {
    use serde_json::Value as J;
    let fits = match (kind, d) {
        (None, _) => true,
        (Some("string"), J::String(_) | J::Number(_) | J::Bool(_)) => true,
        (Some("number"), J::Number(_)) => true,
        (Some("number"), J::String(s)) => s.trim().parse::<f64>().is_ok_and(f64::is_finite),
        (Some("integer"), J::Number(n)) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        (Some("integer"), J::String(s)) => s.trim().parse::<i64>().is_ok(),
        (Some("boolean"), J::Bool(_)) => true,
        (Some("boolean"), J::String(s)) => matches!(s.as_str(), "true" | "false"),
        (Some("array"), J::Array(_)) | (Some("object"), J::Object(_)) => true,
        (Some(k), _) => !crate::rest::schema::TYPES.contains(&k), // an unknown type is reported already
    };
    if !fits {
        errs.push(format!("{apath}.default"), format!("{d} is not a value of type {}", kind.unwrap_or("")));
        return;
    }
    if let Some(choices) = choices {
        let allowed: Vec<serde_json::Value> =
            choices.iter().filter_map(|v| serde_json::to_value(v).ok()).collect();
        let text = |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
        if !allowed.iter().any(|c| c == d || text(c) == text(d)) {
            errs.push(format!("{apath}.default"), format!("{d} is not one of its enum values"));
        }
    }
}
