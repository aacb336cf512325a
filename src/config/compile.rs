//! Raw config -> [`Snapshot`]. The only place that sees `raw` types. Every rule of docs/config.md is
//! checked here and every violation is collected with its path, so a broken file is reported in
//! one go. Nothing here unwraps: a config is input too.

use std::collections::HashSet;

use rustc_hash::FxHashMap as HashMap;
use std::time::Duration;

use yaml_serde::Value;

use crate::config::raw;
use crate::config::snapshot::{Limits, Snapshot};
use crate::config::{env, redact};
use crate::http::head::MAX_HEADERS_CAP;
use crate::http::origin::OriginPolicy;
use crate::mcp::session;

pub use self::common::Purpose;
use self::common::*;
use self::listen::*;
use self::server::*;

/// Compiles configuration text. `lookup` reads environment variables.
pub fn compile_str(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Snapshot, Vec<String>> {
    compile_text(text, lookup, Syntax::Yaml)
}

/// How a configuration text is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    /// YAML 1.2 (JSON is YAML, but YAML parsers refuse some JSON string escapes, such as the
    /// surrogate pairs `\ud83d\udc4d` of characters outside the BMP).
    Yaml,
    /// JSON (RFC 8259): `.json` files.
    Json,
}

/// Compiles a configuration text written in `syntax` to serve it. YAML anchors, aliases and
/// merge keys (`<<: *defaults`) are applied before anything else.
pub fn compile_text(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    syntax: Syntax,
) -> Result<Snapshot, Vec<String>> {
    compile_text_for(text, lookup, syntax, Purpose::Serve)
}

/// [`compile_text`] for a [`Purpose`].
pub fn compile_text_for(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    syntax: Syntax,
    purpose: Purpose,
) -> Result<Snapshot, Vec<String>> {
    let (protected, exprs) = env::protect(text);
    let mut root: Value = match syntax {
        Syntax::Yaml => {
            let mut v: Value = yaml_serde::from_str(&protected)
                .map_err(|e| vec![format!("config is not valid YAML/JSON: {e}")])?;
            v.apply_merge().map_err(|e| vec![format!("config has an invalid merge key (<<): {e}")])?;
            v
        }
        Syntax::Json => {
            serde_json::from_str(&protected).map_err(|e| vec![format!("config is not valid JSON: {e}")])?
        }
    };
    let mut errs = Errors::default();
    let mut secret_paths = Vec::new();
    env::substitute(&mut root, "", lookup, &exprs, &mut errs.0, &mut secret_paths);
    prefetch_hosts(&root);
    let snapshot = compile_value(&root, &mut errs, &secret_paths);
    if purpose == Purpose::Serve {
        let serving = std::mem::take(&mut errs.1);
        errs.0.extend(serving);
    }
    match snapshot {
        Some(s) if errs.0.is_empty() => Ok(s),
        _ => {
            if errs.0.is_empty() {
                errs.0.push("config could not be compiled".into());
            }
            // Two checks of one field (the tool and its REST request) report one error.
            let mut seen = std::collections::HashSet::new();
            errs.0.retain(|e| seen.insert(e.clone()));
            Err(errs.0)
        }
    }
}

/// Looks up every host the configuration connects to (backend and REST `url`s, JWKS `uri`s) at
/// once under one deadline, before compiling: each distinct host is asked once, and hosts that
/// do not answer cost [`RESOLVE_DEADLINE`](crate::upstream::target::RESOLVE_DEADLINE) together,
/// not a resolver timeout each.
fn prefetch_hosts(root: &Value) {
    fn walk(v: &Value, out: &mut Vec<(String, String)>) {
        match v {
            Value::Mapping(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        (Some("url" | "uri"), Value::String(u)) => {
                            out.extend(crate::upstream::target::url_authority(u));
                        }
                        _ => walk(v, out),
                    }
                }
            }
            Value::Sequence(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut hosts = Vec::new();
    walk(root, &mut hosts);
    use crate::upstream::target::{prefetch, system_lookup, RESOLVE_DEADLINE};
    prefetch(hosts, RESOLVE_DEADLINE, system_lookup);
}

/// A `servers[]` entry without `name` takes its `server.name`: a Higress `mcp-server.yaml`
/// (`server: {name, config}` and `tools`) pasted as an entry names itself there.
fn named_by_server_block(entry: &Value) -> std::borrow::Cow<'_, Value> {
    let Value::Mapping(m) = entry else { return std::borrow::Cow::Borrowed(entry) };
    match m.get("server").and_then(|s| s.get("name")) {
        Some(name @ Value::String(_)) if !m.contains_key("name") => {
            let mut named = m.clone();
            named.insert(Value::String("name".into()), name.clone());
            std::borrow::Cow::Owned(Value::Mapping(named))
        }
        _ => std::borrow::Cow::Borrowed(entry),
    }
}

/// Compiles a configuration file to serve it.
pub fn compile_file(path: &std::path::Path) -> Result<Snapshot, Vec<String>> {
    compile_file_for(path, Purpose::Serve)
}

/// [`compile_file`] for a [`Purpose`].
pub fn compile_file_for(path: &std::path::Path, purpose: Purpose) -> Result<Snapshot, Vec<String>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| vec![format!("{}: cannot read: {e}", path.display())])?;
    let json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let syntax = if json { Syntax::Json } else { Syntax::Yaml };
    compile_text_for(&text, &|name| std::env::var(name).ok(), syntax, purpose)
}

const TOP_LEVEL: [&str; 12] = [
    "log",
    "audit",
    "tracing",
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

fn compile_value(root: &Value, errs: &mut Errors, secret_paths: &[String]) -> Option<Snapshot> {
    let empty = yaml_serde::Mapping::new();
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
            // `x-...` keys are ignored: a place for YAML anchors (`x-tool: &tool {...}`).
            Some(k) if k.starts_with("x-") => {}
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
    let audit = logging::compile_audit(get("audit"), errs);
    let tracing = logging::compile_tracing(get("tracing"), errs);
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
        let Some(rs) = parse_value::<raw::Server>(&named_by_server_block(v), &path, errs) else { continue };
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
    let effective = redact::effective_json(root, secret_paths);
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
        audit,
        tracing,
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
        add(s.get("pins"));
        add(s.get("server").and_then(|o| o.get("caFile")));
        for sc in entries(s.get("server").and_then(|o| o.get("securitySchemes"))) {
            add(sc.get("credentials").and_then(|c| c.get("file")));
        }
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

mod auth;
mod authz;
mod backend;
mod common;
mod listen;
mod logging;
mod rest;
mod server;

#[cfg(test)]
mod tests;
