//! Raw config -> [`Snapshot`]. The only place that sees `raw` types. Every rule of docs/config.md is
//! checked here and every violation is collected with its path, so a broken file is reported in
//! one go. Nothing here unwraps: a config is input too.

use std::collections::HashSet;

use rustc_hash::FxHashMap as HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::json;
use serde_yaml::Value;

use crate::config::raw;
use crate::config::snapshot::{Limits, LocalTool, Server, Snapshot, ToolKind};
use crate::config::{env, redact};
use crate::http::head::MAX_HEADERS_CAP;
use crate::http::origin::OriginPolicy;
use crate::mcp::session;
use crate::rest::schema::{self, ArgSpec};
use crate::rest::template::Template;

/// Collected errors, each `path: message`.
#[derive(Default)]
struct Errors(Vec<String>);

impl Errors {
    fn push(&mut self, path: impl AsRef<str>, msg: impl AsRef<str>) {
        self.0.push(format!("{}: {}", path.as_ref(), msg.as_ref()));
    }
}

fn parse_value<T: DeserializeOwned>(v: &Value, path: &str, errs: &mut Errors) -> Option<T> {
    raw::Deferred::<T>::from_value(v.clone()).parse(path).map_err(|e| errs.0.push(e)).ok()
}

/// Compiles configuration text. `lookup` reads environment variables.
pub fn compile_str(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Snapshot, Vec<String>> {
    let (protected, exprs) = env::protect(text);
    let mut root: Value =
        serde_yaml::from_str(&protected).map_err(|e| vec![format!("config is not valid YAML/JSON: {e}")])?;
    let mut errs = Errors::default();
    env::substitute(&mut root, "", lookup, &exprs, &mut errs.0);
    let snapshot = compile_value(&root, &mut errs);
    match snapshot {
        Some(s) if errs.0.is_empty() => Ok(s),
        _ => {
            if errs.0.is_empty() {
                errs.0.push("config could not be compiled".into());
            }
            Err(errs.0)
        }
    }
}

/// Compiles a configuration file.
pub fn compile_file(path: &std::path::Path) -> Result<Snapshot, Vec<String>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| vec![format!("{}: cannot read: {e}", path.display())])?;
    compile_str(&text, &|name| std::env::var(name).ok())
}

const TOP_LEVEL: [&str; 10] = [
    "log",
    "listen",
    "shutdownGraceMs",
    "workers",
    "admin",
    "limits",
    "sessions",
    "allowedOrigins",
    "allowedHosts",
    "servers",
];

fn compile_value(root: &Value, errs: &mut Errors) -> Option<Snapshot> {
    let empty = serde_yaml::Mapping::new();
    let map = match root {
        Value::Mapping(m) => m,
        Value::Null => &empty,
        _ => {
            errs.push("(top level)", "must be a mapping");
            return None;
        }
    };
    for key in map.keys() {
        match key.as_str() {
            Some(k) if TOP_LEVEL.contains(&k) => {}
            Some(k) => errs.push(k, "unknown field"),
            None => errs.push(format!("{key:?}"), "keys must be strings"),
        }
    }
    let get = |k: &str| map.get(k).filter(|v| !v.is_null());

    let (listen, tls_pairs) = compile_listen(get("listen"), errs);
    let workers = match get("workers").and_then(|v| parse_value::<raw::Workers>(v, "workers", errs)) {
        None => default_workers(),
        Some(raw::Workers::Word(w)) if w == "auto" => default_workers(),
        Some(raw::Workers::Word(w)) if w.trim().parse::<u64>().is_ok_and(|n| (1..=1024).contains(&n)) => {
            w.trim().parse::<usize>().unwrap_or(1)
        }
        Some(raw::Workers::Count(n)) if (1..=1024).contains(&n) => n as usize,
        Some(_) => {
            errs.push("workers", "must be \"auto\" or a number from 1 to 1024");
            1
        }
    };
    let grace_ms = get("shutdownGraceMs")
        .and_then(|v| parse_value::<raw::Number>(v, "shutdownGraceMs", errs))
        .and_then(|n| n.0)
        .unwrap_or(10_000);
    if grace_ms > 3_600_000 {
        errs.push("shutdownGraceMs", "must be at most 3600000 (one hour)");
    }
    let shutdown_grace = Duration::from_millis(grace_ms.min(3_600_000));
    let admin = get("admin")
        .and_then(|v| parse_value::<String>(v, "admin", errs))
        .and_then(|a| resolve_addr(&a).map_err(|e| errs.push("admin", e)).ok());
    let limits = compile_limits(get("limits"), errs);
    let log = logging::compile(get("log"), errs);
    let sessions = compile_sessions(get("sessions"), errs);
    let allowed_origins =
        get("allowedOrigins").and_then(|v| parse_value::<Vec<String>>(v, "allowedOrigins", errs));
    let allowed_hosts = get("allowedHosts").and_then(|v| parse_value::<Vec<String>>(v, "allowedHosts", errs));
    let loopback_only = !listen.is_empty() && listen.iter().all(|a| a.ip().is_loopback());
    let listen_ips: Vec<_> = listen.iter().map(|a| a.ip()).collect();
    let origins = OriginPolicy::compile(
        allowed_origins.as_deref(),
        allowed_hosts.as_deref(),
        loopback_only,
        &listen_ips,
    )
    .unwrap_or_else(|list| {
        for (i, e) in list {
            errs.push(format!("allowedOrigins[{i}]"), e);
        }
        OriginPolicy::default()
    });

    let mut warnings = Vec::new();
    if !loopback_only && allowed_hosts.is_none() {
        warnings.push(
            "listening beyond loopback without allowedHosts: the Host header is not checked, and browser \
             Origins are accepted only for loopback names and listen addresses (set allowedHosts/allowedOrigins)"
                .into(),
        );
    }
    let mut servers = Vec::new();
    let mut routes = HashMap::default();
    let mut names = HashSet::new();
    let raw_servers: Vec<Value> =
        get("servers").and_then(|v| parse_value(v, "servers", errs)).unwrap_or_default();
    if raw_servers.is_empty() {
        errs.push("servers", "at least one server is required");
    }
    for (i, v) in raw_servers.iter().enumerate() {
        let path = format!("servers[{i}]");
        let Some(rs) = parse_value::<raw::Server>(v, &path, errs) else { continue };
        let Some(mut srv) = compile_server(&rs, &path, errs, &mut warnings) else { continue };
        srv.index = servers.len();
        if !names.insert(srv.name.clone()) {
            errs.push(format!("{path}.name"), format!("duplicate server name {:?}", srv.name));
        }
        if routes.insert(srv.path.as_bytes().to_vec().into_boxed_slice(), servers.len()).is_some() {
            errs.push(format!("{path}.path"), format!("path {:?} is used by another server", srv.path));
        }
        if srv.anonymous && !loopback_only {
            warnings.push(format!(
                "server {:?} accepts anonymous clients and listens beyond loopback; add an authentication block",
                srv.name
            ));
        }
        servers.push(srv);
    }
    // RFC 9728 documents: at each server's path-suffixed URL, and at the bare well-known path
    // when exactly one server is configured (clients also try the root).
    let mut well_known = HashMap::default();
    for (i, srv) in servers.iter().enumerate() {
        if let Some(prm) = &srv.auth.prm {
            if well_known.insert(prm.path.as_bytes().to_vec().into_boxed_slice(), i).is_some() {
                errs.push(
                    format!("servers[{i}].resource"),
                    "another server publishes metadata at the same URL",
                );
            }
        }
    }
    if servers.len() == 1 && servers[0].auth.prm.is_some() {
        well_known.entry(crate::auth::PRM_PREFIX.as_bytes().to_vec().into_boxed_slice()).or_insert(0);
    }
    let sessions = sessions?;
    if sessions.ephemeral {
        warnings.push(
            "sessions.keys not set: session ids are sealed with a random key and do not survive a restart \
             or work across replicas"
                .into(),
        );
    }
    let listen_tls = compile_tls_listeners(&tls_pairs, &servers, errs);
    let files = referenced_files(root);
    let effective = redact::effective_json(root);
    static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    Some(Snapshot {
        generation: GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        listen,
        listen_tls,
        files,
        workers,
        shutdown_grace,
        admin,
        limits,
        log,
        sessions,
        origins,
        servers,
        routes,
        well_known,
        warnings,
        effective,
    })
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn resolve_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    s.to_socket_addrs()
        .map_err(|e| format!("{s:?} is not a host:port address ({e})"))?
        .next()
        .ok_or_else(|| format!("{s:?} resolves to no address"))
}

/// A TLS listener's `(cert, key)` files, with the entry's path for errors.
type TlsPairs = (String, Vec<(String, String)>);

/// The listen addresses and, for each, its TLS certificate files (`None`: plain).
fn compile_listen(v: Option<&Value>, errs: &mut Errors) -> (Vec<SocketAddr>, Vec<Option<TlsPairs>>) {
    let Some(v) = v else {
        return (vec![SocketAddr::from(([127, 0, 0, 1], 8080))], vec![None]);
    };
    // Parsed entry by entry (not as an untagged enum) so errors name the entry and the field.
    let entries: Vec<(String, &Value)> = match v {
        Value::Sequence(items) => {
            items.iter().enumerate().map(|(i, e)| (format!("listen[{i}]"), e)).collect()
        }
        single => vec![("listen".to_string(), single)],
    };
    let mut out = Vec::new();
    let mut tls = Vec::new();
    for (path, entry) in entries {
        let (addr, pairs) = match entry {
            Value::String(a) => (a.clone(), None),
            Value::Mapping(_) => {
                let Some(f) = parse_value::<raw::ListenFull>(entry, &path, errs) else { continue };
                let pairs = f.tls.map(|t| {
                    let list = t.into_vec().into_iter().map(|t| (t.cert, t.key)).collect::<Vec<_>>();
                    (format!("{path}.tls"), list)
                });
                (f.address, pairs)
            }
            _ => {
                errs.push(&path, "must be \"host:port\" or {address, tls}");
                continue;
            }
        };
        match resolve_addr(&addr) {
            Ok(a) => {
                out.push(a);
                tls.push(pairs);
            }
            Err(e) => errs.push(&path, e),
        }
    }
    if out.is_empty() && errs.0.is_empty() {
        errs.push("listen", "at least one address is required");
    }
    (out, tls)
}

/// Builds the TLS listeners once the servers are known: the client certificates they ask for
/// are those of the `mtls` servers' CAs (none: no client certificate is requested).
fn compile_tls_listeners(
    pairs: &[Option<TlsPairs>],
    servers: &[Server],
    errs: &mut Errors,
) -> Vec<Option<Arc<crate::tls::Listener>>> {
    let mtls: Vec<(usize, &str)> = servers
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match &s.auth.mode {
            crate::auth::Mode::Mtls(m) => Some((i, &*m.ca_file)),
            _ => None,
        })
        .collect();
    if !mtls.is_empty() && pairs.iter().all(Option::is_none) {
        for (i, _) in &mtls {
            errs.push(
                format!("servers[{i}].authentication.mode"),
                "mode mtls needs a listen entry with tls (client certificates come with the TLS handshake)",
            );
        }
    }
    let client_roots = || {
        let mut roots = rustls::RootCertStore::empty();
        for (_, ca) in &mtls {
            // Read before, by the server's own block: errors were reported there.
            for c in crate::tls::read_certs(ca).unwrap_or_default() {
                let _ = roots.add(c);
            }
        }
        Some(roots).filter(|r| !r.is_empty())
    };
    pairs
        .iter()
        .map(|p| {
            let (path, list) = p.as_ref()?;
            match crate::tls::listener(list, client_roots()) {
                Ok(l) => Some(Arc::new(l)),
                Err(e) => {
                    errs.push(path, e);
                    None
                }
            }
        })
        .collect()
}

/// Files the configuration reads besides itself (certificates, keys, CA files, JWKS and OpenAPI
/// documents): a change to one reloads like a change to the config file.
fn referenced_files(root: &Value) -> Vec<std::path::PathBuf> {
    // `listen` and `tls` take one entry or a list of them.
    fn entries(v: Option<&Value>) -> &[Value] {
        match v {
            Some(Value::Sequence(s)) => s,
            Some(v) => std::slice::from_ref(v),
            None => &[],
        }
    }
    let mut out = Vec::new();
    let mut add = |v: Option<&Value>| {
        if let Some(Value::String(s)) = v {
            out.push(std::path::PathBuf::from(s));
        }
    };
    for l in entries(root.get("listen")) {
        for t in entries(l.get("tls")) {
            add(t.get("cert"));
            add(t.get("key"));
        }
    }
    for s in entries(root.get("servers")) {
        let auth = s.get("authentication");
        add(auth.and_then(|a| a.get("mtls")).and_then(|m| m.get("caFile")));
        for p in entries(auth.and_then(|a| a.get("jwt")).and_then(|j| j.get("providers"))) {
            add(p.get("jwks").and_then(|j| j.get("file")));
        }
        add(s.get("openapi").and_then(|o| o.get("file")));
        add(s.get("server").and_then(|o| o.get("caFile")));
        for b in entries(s.get("backends")) {
            add(b.get("caFile"));
        }
    }
    out
}

fn compile_limits(v: Option<&Value>, errs: &mut Errors) -> Limits {
    let d = Limits::default();
    let Some(r) = v.and_then(|v| parse_value::<raw::Limits>(v, "limits", errs)) else { return d };
    let mut pick = |name: &str, value: Option<u64>, default: u64, max: u64| -> u64 {
        match value {
            None => default,
            Some(n) if (1..=max).contains(&n) => n,
            Some(_) => {
                errs.push(format!("limits.{name}"), format!("must be between 1 and {max}"));
                default
            }
        }
    };
    let ms = Duration::from_millis;
    let http = crate::http::Limits {
        max_header_bytes: pick("maxHeaderBytes", r.max_header_bytes, 16_384, 1 << 20) as usize,
        max_headers: pick("maxHeaders", r.max_headers, 100, MAX_HEADERS_CAP as u64) as usize,
        max_body_bytes: pick("maxBodyBytes", r.max_body_bytes, 4 << 20, 1 << 30) as usize,
    };
    Limits {
        http,
        header_timeout: ms(pick("headerTimeoutMs", r.header_timeout_ms, 10_000, 3_600_000)),
        idle_timeout: ms(pick("idleTimeoutMs", r.idle_timeout_ms, 60_000, 86_400_000)),
        upstream_connect_timeout: ms(pick(
            "upstreamConnectTimeoutMs",
            r.upstream_connect_timeout_ms,
            2_000,
            600_000,
        )),
        upstream_timeout: ms(pick("upstreamTimeoutMs", r.upstream_timeout_ms, 30_000, 86_400_000)),
        max_connections_per_worker: pick(
            "maxConnectionsPerWorker",
            r.max_connections_per_worker,
            50_000,
            10_000_000,
        ) as usize,
    }
}

fn compile_sessions(v: Option<&Value>, errs: &mut Errors) -> Option<session::Keys> {
    let r = v.and_then(|v| parse_value::<raw::Sessions>(v, "sessions", errs)).unwrap_or_default();
    let ttl = r.ttl_seconds.unwrap_or(86_400);
    if ttl == 0 {
        errs.push("sessions.ttlSeconds", "must be at least 1");
    }
    let keys = r.keys.unwrap_or_default();
    if keys.is_empty() {
        return session::Keys::ephemeral(ttl).map_err(|e| errs.push("sessions", e.to_string())).ok();
    }
    let mut material = Vec::new();
    let mut ids = HashSet::new();
    for (i, k) in keys.iter().enumerate() {
        if !ids.insert(k.id.as_str()) {
            errs.push(format!("sessions.keys[{i}].id"), "duplicate key id");
        }
        match session::secret_bytes(&k.secret) {
            Ok(b) => material.push((k.id.clone(), b)),
            Err(e) => errs.push(format!("sessions.keys[{i}].secret"), e.to_string()),
        }
    }
    session::Keys::new(&material, ttl).map_err(|e| errs.push("sessions.keys", e.to_string())).ok()
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// MCP tool names: 1-64 of `[A-Za-z0-9_./-]` (the conformance suite's check).
fn valid_tool_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_./-".contains(&b))
}

fn compile_server(
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
    if let Some(s) = &rs.server {
        let spath = format!("{path}.server");
        if let Ok(hs) = s.parse(&spath).map_err(|e| errs.0.push(e)) {
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
    let imported =
        rs.openapi.as_ref().and_then(|o| import_openapi(o, &format!("{path}.openapi"), errs, warnings));
    if let Some((isch, _)) = &imported {
        for sc in isch {
            if scheme_ids.insert(sc.id.clone()) {
                schemes.push(sc.clone());
            }
        }
    }
    let scx = rest::ServerCx {
        schemes: &schemes,
        default_down: higress.as_ref().and_then(|h| h.default_downstream_security.as_ref()),
        default_up: higress.as_ref().and_then(|h| h.default_upstream_security.as_ref()),
        pass_auth: higress.as_ref().and_then(|h| h.passthrough_auth_header).unwrap_or(false),
        config: &config,
        ca_file: higress.as_ref().and_then(|h| h.ca_file.as_deref()),
    };
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
        if let Some(be) = compile_backend(&rb, &bpath, &schemes, errs) {
            backends.push(be);
        }
    }
    let backend_names: Vec<&str> = backends.iter().map(|b| &*b.name).collect();
    let policy = authz::compile(raw_authz.as_ref(), &rs.name, &backend_names, &zpath, errs);
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
        backends,
        separator: rs.tool_name_separator.as_deref().unwrap_or("__").into(),
    })
}

/// Token passthrough is allowed (Higress allows it) but never quiet: a REST tool that hands the
/// client's bearer token - the JWT that authenticated the client to this gateway - to its
/// backend is a load warning naming the tool.
fn passthrough_warnings(
    server: &str,
    auth: &crate::auth::Authenticator,
    tools: &[LocalTool],
    warnings: &mut Vec<String>,
) {
    if !matches!(auth.mode, crate::auth::Mode::Jwt { .. }) {
        return;
    }
    for t in tools {
        let ToolKind::Rest(rt) = &t.kind else { continue };
        let bearer_through = rt
            .downstream
            .as_ref()
            .is_some_and(|d| d.passthrough && d.scheme.kind == crate::auth::scheme::SchemeKind::Bearer);
        if bearer_through || rt.pass_authorization {
            warnings.push(format!(
                "servers[{server}] tool {}: the client's access token, issued for this gateway, is passed \
                 through to the REST backend; the MCP security best practices forbid token passthrough \
                 (the backend would accept a token not issued for it): prefer a backend credential",
                t.name
            ));
        }
    }
}

/// Reads and imports `servers[].openapi.file`: the description's security schemes and
/// operations (as REST tools). The importer's warnings become load warnings.
fn import_openapi(
    o: &raw::Deferred<raw::OpenApi>,
    path: &str,
    errs: &mut Errors,
    warnings: &mut Vec<String>,
) -> Option<(Vec<raw::SecurityScheme>, Vec<raw::Tool>)> {
    let o = o.parse(path).map_err(|e| errs.0.push(e)).ok()?;
    let fpath = format!("{path}.file");
    let text = std::fs::read_to_string(&o.file)
        .map_err(|e| errs.push(&fpath, format!("cannot read {:?}: {e}", o.file)))
        .ok()?;
    let opts = crate::rest::openapi::ImportOptions { name: None, base_url: o.base_url.clone() };
    let imported =
        crate::rest::openapi::import(&text, &opts).map_err(|e| errs.push(&fpath, e.to_string())).ok()?;
    warnings.extend(imported.warnings.iter().map(|w| format!("{fpath}: {w}")));
    let entry = &imported.entry;
    let schemes: Vec<raw::SecurityScheme> = match entry.pointer("/server/securitySchemes") {
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| errs.push(&fpath, format!("imported schemes: {e}")))
            .ok()?,
        None => Vec::new(),
    };
    let tools: Vec<raw::Tool> = match entry.get("tools") {
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| errs.push(&fpath, format!("imported tools: {e}")))
            .ok()?,
        None => Vec::new(),
    };
    Some((schemes, tools))
}

/// The system's trust roots, read once per process (re-read on restart, not on reload).
fn system_roots() -> &'static [rustls::pki_types::CertificateDer<'static>] {
    static ROOTS: std::sync::OnceLock<Vec<rustls::pki_types::CertificateDer<'static>>> =
        std::sync::OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            log::warn!("system trust roots: {e}");
        }
        found.certs
    })
}

/// A rustls client configuration (ring provider) trusting the system roots plus `ca_file`.
fn client_tls(ca_file: Option<&str>) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in system_roots() {
        let _ = roots.add(c.clone());
    }
    if let Some(path) = ca_file {
        roots.roots.extend(crate::tls::read_roots(path)?.roots);
    }
    let config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(std::sync::Arc::new(config))
}

fn compile_backend(
    rb: &raw::Backend,
    path: &str,
    schemes: &[raw::SecurityScheme],
    errs: &mut Errors,
) -> Option<crate::config::snapshot::Backend> {
    use crate::auth::scheme::BackendCredential;
    use crate::upstream::target::Target;
    let before = errs.0.len();
    if !valid_name(&rb.name) {
        errs.push(format!("{path}.name"), "must be 1-128 characters of [A-Za-z0-9_-]");
    }
    let urls: Vec<(String, &str)> = match &rb.endpoints {
        Some(list) if !list.is_empty() => {
            list.iter().enumerate().map(|(i, u)| (format!("{path}.endpoints[{i}]"), u.as_str())).collect()
        }
        _ => vec![(format!("{path}.url"), rb.url.as_str())],
    };
    // One TLS client configuration per backend, built only if an endpoint is https.
    let tls = if urls.iter().any(|(_, u)| u.starts_with("https://")) {
        match client_tls(rb.ca_file.as_deref()) {
            Ok(c) => Some(c),
            Err(e) => {
                errs.push(format!("{path}.caFile"), e);
                None
            }
        }
    } else {
        if rb.ca_file.is_some() {
            errs.push(format!("{path}.caFile"), "only meaningful for https:// backends");
        }
        None
    };
    let mut targets = Vec::new();
    for (p, u) in &urls {
        match Target::parse(u, || tls.clone().ok_or_else(|| "no TLS configuration (see caFile)".to_string()))
        {
            Ok(t) => targets.push(t),
            Err(e) => errs.push(p, e.to_string()),
        }
    }
    let sel = rb.tool_selector.clone().unwrap_or_default();
    let mut regexes = |list: Option<Vec<String>>, field: &str| -> Vec<regex::Regex> {
        let mut out = Vec::new();
        for (i, p) in list.unwrap_or_default().iter().enumerate() {
            // Anchored: a selector names whole tool names, as Envoy AI Gateway's does.
            match regex::Regex::new(&format!("^(?:{p})$")) {
                Ok(r) => out.push(r),
                Err(e) => {
                    errs.push(format!("{path}.toolSelector.{field}[{i}]"), format!("invalid regex: {e}"))
                }
            }
        }
        out
    };
    let include_regex = regexes(sel.include_regex, "includeRegex");
    let exclude_regex = regexes(sel.exclude_regex, "excludeRegex");
    let boxed = |v: Option<Vec<String>>| v.unwrap_or_default().into_iter().map(Into::into).collect();
    let selector = crate::config::snapshot::ToolSelector {
        include: boxed(sel.include),
        include_regex,
        exclude: boxed(sel.exclude),
        exclude_regex,
    };
    let mut credential = None;
    if let Some(sref) = &rb.security {
        if sref.passthrough == Some(true) {
            errs.push(
                format!("{path}.security.passthrough"),
                "passthrough is not supported for MCP backends",
            );
        }
        match schemes.iter().find(|s| s.id == sref.id) {
            None => errs.push(
                format!("{path}.security.id"),
                format!("no securitySchemes entry with id {:?}", sref.id),
            ),
            Some(sc) => {
                let kind = rest::scheme_kind(sc);
                let value = sref.credential.as_deref().or(sc.default_credential.as_deref());
                match (kind, value) {
                    (Some(k), Some(v)) if !v.is_empty() => {
                        credential = Some(BackendCredential::new(k, sc.name.as_deref().unwrap_or(""), v))
                    }
                    (Some(_), _) => errs.push(
                        format!("{path}.security"),
                        format!(
                            "scheme {:?} has no defaultCredential and the backend sets no credential",
                            sc.id
                        ),
                    ),
                    // The scheme itself was already reported by check_scheme.
                    (None, _) => {}
                }
            }
        }
    }
    let forward_headers = rb
        .forward_headers
        .iter()
        .flatten()
        .map(|h| h.name.to_ascii_lowercase().into_boxed_str())
        .collect::<Vec<_>>();
    for (i, h) in forward_headers.iter().enumerate() {
        // Credentials and hop-by-hop or framing headers are never forwarded by name.
        if matches!(
            &**h,
            "authorization"
                | "proxy-authorization"
                | "cookie"
                | "host"
                | "content-length"
                | "transfer-encoding"
                | "connection"
                | "mcp-session-id"
        ) {
            errs.push(format!("{path}.forwardHeaders[{i}].name"), format!("{h:?} cannot be forwarded"));
        }
    }
    (errs.0.len() == before).then(|| crate::config::snapshot::Backend {
        name: rb.name.as_str().into(),
        targets,
        selector,
        credential,
        forward_headers,
    })
}

fn check_scheme(sc: &raw::SecurityScheme, path: &str, errs: &mut Errors) {
    match sc.kind {
        raw::SchemeType::Http => match sc.scheme.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("basic" | "bearer") => {}
            _ => errs.push(format!("{path}.scheme"), "must be basic or bearer for type http"),
        },
        raw::SchemeType::ApiKey => {
            if sc.location.is_none() {
                errs.push(format!("{path}.in"), "is required for type apiKey (header or query)");
            }
            if sc.name.as_deref().is_none_or(str::is_empty) {
                errs.push(format!("{path}.name"), "is required for type apiKey");
            }
        }
    }
}

fn compile_tool(
    t: &raw::Tool,
    path: &str,
    scx: &rest::ServerCx<'_>,
    errs: &mut Errors,
    warnings: &mut Vec<String>,
) -> Option<LocalTool> {
    let before = errs.0.len();
    if !valid_tool_name(&t.name) {
        errs.push(format!("{path}.name"), "must be 1-64 characters of [A-Za-z0-9_./-]");
    }
    let mut specs = Vec::new();
    let mut arg_names = HashSet::new();
    for (i, a) in t.args.iter().flatten().enumerate() {
        let apath = format!("{path}.args[{i}]");
        if !arg_names.insert(a.name.as_str()) {
            errs.push(format!("{apath}.name"), format!("duplicate argument {:?}", a.name));
        }
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
                errs.push(p, format!("no securitySchemes entry with id {:?}", s.id));
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

mod auth;
mod authz;
mod logging;
mod rest;

#[cfg(test)]
mod tests;
