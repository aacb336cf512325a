//! Higress `tools[]` entries into [`LocalTool`]s: declared arguments into normalization rules,
//! and a `requestTemplate` with a `url` into a [`RestTool`] (URL split into a resolved origin and
//! path/query templates, header and body templates, security schemes looked up, response
//! templates compiled). Every template error names its path.

use std::collections::HashMap;

use crate::auth::scheme::SchemeKind;
use crate::config::raw;
use crate::rest::args::{ArgRule, ArgType, Position};
use crate::rest::template::Template;
use crate::rest::tool::{Body, ContentType, Downstream, Response, RestTool, Scheme, Upstream};
use crate::upstream::target::{Target, TargetError};

use super::common::Errors;

/// What every tool of a server shares: its schemes and server-level security defaults.
pub(super) struct ServerCx<'a> {
    /// `server.securitySchemes`.
    pub schemes: &'a [raw::SecurityScheme],
    /// False when the `server:` block failed to parse: its schemes are unknown, not missing,
    /// and references to them are not reported again.
    pub schemes_known: bool,
    /// `server.defaultDownstreamSecurity`.
    pub default_down: Option<&'a raw::SecurityRef>,
    /// `server.defaultUpstreamSecurity`.
    pub default_up: Option<&'a raw::SecurityRef>,
    /// `server.passthroughAuthHeader`.
    pub pass_auth: bool,
    /// `server.config`, for URLs whose host comes from it.
    pub config: &'a serde_json::Value,
    /// `server.caFile` (extension): extra trust for https REST backends.
    pub ca_file: Option<&'a str>,
    /// `servers[].baseUrl`: the origin (and path prefix) of relative `requestTemplate.url`s.
    pub base_url: Option<&'a str>,
    /// The server's path in the file (`servers[2]`), for errors about its schemes.
    pub path: &'a str,
    /// Token services of oauth2 schemes compiled so far, by scheme id (`None`: invalid, reported
    /// once).
    pub token_services:
        std::cell::RefCell<HashMap<String, Option<std::sync::Arc<crate::upstream::sts::Sts>>>>,
    /// Credentials files read so far, by scheme id (`None`: unreadable, reported once).
    pub credential_files: std::cell::RefCell<HashMap<String, Option<std::sync::Arc<CredentialMap>>>>,
}

impl ServerCx<'_> {
    /// Where scheme `id` is written (`servers[0].server.securitySchemes[1]`).
    pub(super) fn scheme_path(&self, id: &str) -> String {
        match self.schemes.iter().position(|s| s.id == id) {
            Some(i) => format!("{}.server.securitySchemes[{i}]", self.path),
            None => format!("{}.server.securitySchemes", self.path),
        }
    }
}

/// The token service of an oauth2 scheme (compiled once per load and scheme; its errors
/// reported once).
fn token_service(
    sc: &raw::SecurityScheme,
    scx: &ServerCx<'_>,
    scheme_path: &str,
    errs: &mut Errors,
) -> Option<std::sync::Arc<crate::upstream::sts::Sts>> {
    use crate::upstream::sts::{AuthMethod, Flow, Sts, ACCESS_TOKEN_TYPE};
    scx.token_services
        .borrow_mut()
        .entry(sc.id.clone())
        .or_insert_with(|| {
            let flows = sc.flows.as_ref()?;
            let (f, exchange, fpath) = match (&flows.client_credentials, &flows.token_exchange) {
                (Some(f), None) => (f, false, format!("{scheme_path}.flows.clientCredentials")),
                (None, Some(f)) => (f, true, format!("{scheme_path}.flows.tokenExchange")),
                _ => return None, // reported by check_scheme
            };
            let tls = || {
                super::common::client_tls(f.ca_file.as_deref()).map_err(|e| format!("TLS configuration: {e}"))
            };
            let target = match Target::parse(&f.token_url, tls) {
                Ok(t) if t.tls.is_none() && !t.addr.ip().is_loopback() => {
                    errs.push(
                        format!("{fpath}.tokenUrl"),
                        "must be https:// (plain http is accepted for loopback addresses only)",
                    );
                    return None;
                }
                Ok(t) => t,
                Err(e) => {
                    errs.push(format!("{fpath}.tokenUrl"), e.to_string());
                    return None;
                }
            };
            let flow = Flow {
                scheme: &sc.id,
                exchange,
                token_url: &f.token_url,
                client_id: &f.client_id,
                client_secret: &f.client_secret,
                auth: if f.auth_method.as_deref() == Some("client_secret_post") {
                    AuthMethod::Post
                } else {
                    AuthMethod::Basic
                },
                scopes: f.scopes.as_deref().unwrap_or_default(),
                audience: f.audience.as_deref(),
                resource: f.resource.as_deref(),
                subject_token_type: f.subject_token_type.as_deref().unwrap_or(ACCESS_TOKEN_TYPE),
            };
            Some(std::sync::Arc::new(Sts::new(&flow, target)))
        })
        .clone()
}

/// One credentials file, compiled.
pub(super) type CredentialMap = rustc_hash::FxHashMap<Box<str>, crate::auth::scheme::BackendCredential>;

/// The credential a use of scheme `sc` (of kind `kind`, apiKey name `name`) presents:
/// `configured` (the use's `credential`, else the scheme's `defaultCredential`) for everyone, or,
/// with `credentials`, each principal's entry of the file (the file read once per load and
/// scheme; its errors reported once, at `scheme_path`). `None` when there is none to present.
pub(super) fn credential_source(
    sc: &raw::SecurityScheme,
    kind: SchemeKind,
    name: &str,
    configured: Option<&str>,
    scx: &ServerCx<'_>,
    scheme_path: &str,
    errs: &mut Errors,
) -> Option<crate::auth::credentials::Credential> {
    use crate::auth::credentials::{Credential, PerPrincipal, PrincipalKey};
    use crate::auth::scheme::BackendCredential;
    if sc.kind == raw::SchemeType::OAuth2 {
        return token_service(sc, scx, scheme_path, errs).map(Credential::Sts);
    }
    let configured = configured.filter(|c| !c.is_empty()).map(|c| BackendCredential::new(kind, name, c));
    let Some(pc) = &sc.credentials else { return configured.map(Credential::Static) };
    let cpath = format!("{scheme_path}.credentials");
    let map = scx
        .credential_files
        .borrow_mut()
        .entry(sc.id.clone())
        .or_insert_with(|| match crate::auth::credentials::read_file(&pc.file, kind, name) {
            Ok(m) => Some(std::sync::Arc::new(m)),
            Err(e) => {
                errs.push(format!("{cpath}.file"), e);
                None
            }
        })
        .clone()?;
    let key = match pc.key.as_deref().map(PrincipalKey::parse) {
        None => PrincipalKey::Sub,
        Some(Some(k)) => k,
        Some(None) => {
            errs.push(format!("{cpath}.key"), "must be sub, subject or claim:<dotted path>");
            return None;
        }
    };
    let fallback = match pc.fallback.as_deref() {
        None | Some("deny") => None,
        Some("default") if configured.is_some() => configured,
        Some("default") => {
            errs.push(
                format!("{cpath}.fallback"),
                "default needs a defaultCredential (or a credential where the scheme is used)",
            );
            return None;
        }
        Some(_) => {
            errs.push(format!("{cpath}.fallback"), "must be deny or default");
            return None;
        }
    };
    Some(Credential::PerPrincipal(std::sync::Arc::new(PerPrincipal {
        scheme: sc.id.as_str().into(),
        key,
        by_key: map,
        fallback,
    })))
}

/// The kind of a configured scheme (`None` when the scheme itself is invalid; that is reported
/// where the scheme is checked).
pub(super) fn scheme_kind(sc: &raw::SecurityScheme) -> Option<SchemeKind> {
    match (sc.kind, sc.scheme.as_deref().map(str::to_ascii_lowercase).as_deref(), sc.location) {
        (raw::SchemeType::Http, Some("bearer"), _) => Some(SchemeKind::Bearer),
        (raw::SchemeType::Http, Some("basic"), _) => Some(SchemeKind::Basic),
        (raw::SchemeType::ApiKey, _, Some(raw::In::Header)) => Some(SchemeKind::ApiKeyHeader),
        (raw::SchemeType::ApiKey, _, Some(raw::In::Query)) => Some(SchemeKind::ApiKeyQuery),
        // The token goes to the backend as a bearer token.
        (raw::SchemeType::OAuth2, _, _) => Some(SchemeKind::Bearer),
        _ => None,
    }
}

/// `args[]` into normalization rules (types and positions were checked by the caller).
pub(super) fn arg_rules(t: &raw::Tool) -> Vec<ArgRule> {
    t.args
        .iter()
        .flatten()
        .map(|a| ArgRule {
            name: a.name.as_str().into(),
            kind: a.kind.as_deref().and_then(ArgType::parse).unwrap_or(ArgType::String),
            default: a.default.as_ref().and_then(|d| serde_json::to_vec(d).ok()).map(Vec::into_boxed_slice),
            required: a.required.unwrap_or(false),
            position: match a.position.as_deref().map(str::to_ascii_lowercase).as_deref() {
                Some("query") => Position::Query,
                Some("path") => Position::Path,
                Some("header") => Position::Header,
                Some("cookie") => Position::Cookie,
                Some("body") => Position::Body,
                _ => Position::Unset,
            },
            header: None,
        })
        .collect()
}

/// HTTP token characters (RFC 9110 5.6.2), for header names and methods.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Header names the gateway owns on a backend request: framing, routing and the connection.
fn reserved_header(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "host"
            | "content-length"
            | "transfer-encoding"
            | "connection"
            | "keep-alive"
            | "upgrade"
            | "te"
            | "trailer"
            | "proxy-connection"
    )
}

/// The bytes of `src` outside `{{ }}` actions, with their offsets.
fn literal_bytes(src: &str) -> impl Iterator<Item = (usize, u8)> + '_ {
    let b = src.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while b[i.min(b.len())..].starts_with(b"{{") {
            i = src[i..].find("}}").map_or(b.len(), |e| i + e + 2);
        }
        let c = *b.get(i)?;
        i += 1;
        Some((i - 1, c))
    })
}

/// Index of the first `?` of `src` outside actions.
fn query_start(src: &str) -> Option<usize> {
    literal_bytes(src).find(|&(_, c)| c == b'?').map(|(i, _)| i)
}

/// The literal text of `src` outside actions must be a valid URL part.
fn literal_ok(src: &str) -> Result<(), String> {
    match literal_bytes(src).find(|&(_, c)| c <= b' ' || c == 0x7f || c == b'#' || c >= 0x80) {
        Some((_, c)) => Err(format!(
            "the URL contains {:?}, which must be percent-encoded (and a fragment is not allowed)",
            char::from(c)
        )),
        None => Ok(()),
    }
}

/// Turns each `{name}` of a path argument into `{{.args.name}}`, so the template engine
/// substitutes (and percent-encodes) it like any other action.
fn path_placeholders(path: &str, rules: &[ArgRule]) -> String {
    let mut out = path.to_string();
    for r in rules.iter().filter(|r| r.position == Position::Path) {
        let pat = format!("{{{}}}", r.name);
        let mut from = 0;
        while let Some(at) = out[from..].find(&pat).map(|i| from + i) {
            let end = at + pat.len();
            let doubled = out[..at].ends_with('{') || out[end..].starts_with('}');
            if doubled {
                from = end;
                continue;
            }
            let ident = r.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            let with = if ident {
                format!("{{{{.args.{}}}}}", r.name)
            } else {
                format!("{{{{index .args \"{}\"}}}}", r.name)
            };
            out.replace_range(at..end, &with);
            from = at + with.len();
        }
    }
    out
}

/// Reports a reference to a scheme that does not exist, unless the schemes are unknown (their
/// block failed to parse and was reported already).
pub(super) fn missing_scheme(known: bool, path: &str, id: &str, errs: &mut Errors) {
    if known {
        errs.push(path, format!("no securitySchemes entry with id {id:?}"));
    }
}

/// Resolves a security reference to a scheme.
fn scheme<'s>(
    sref: &raw::SecurityRef,
    scx: &ServerCx<'s>,
    path: &str,
    errs: &mut Errors,
) -> Option<(&'s raw::SecurityScheme, Scheme)> {
    let Some(sc) = scx.schemes.iter().find(|s| s.id == sref.id) else {
        missing_scheme(scx.schemes_known, &format!("{path}.id"), &sref.id, errs);
        return None;
    };
    let kind = scheme_kind(sc)?;
    let name = sc.name.as_deref().unwrap_or("");
    let name = if kind == SchemeKind::ApiKeyHeader { name.to_ascii_lowercase() } else { name.to_string() };
    Some((sc, Scheme { id: sc.id.as_str().into(), kind, name: name.into() }))
}

/// A tool with `requestTemplate.url`, compiled.
pub(super) fn rest_tool(
    t: &raw::Tool,
    args: Vec<ArgRule>,
    path: &str,
    scx: &ServerCx<'_>,
    errs: &mut Errors,
    warnings: &mut Vec<String>,
) -> Option<RestTool> {
    let rt = t.request_template.as_ref()?;
    let url = rt.url.as_deref()?;
    let before = errs.0.len();
    let rpath = format!("{path}.requestTemplate");
    let compile = |src: &str, at: String, errs: &mut Errors| -> Option<Template> {
        Template::compile(src).map_err(|e| errs.push(at, e)).ok()
    };

    // URL: a resolved origin, then path and query templates.
    let upath = format!("{rpath}.url");
    let scheme_len = |u: &str| ["http://", "https://"].iter().find(|p| u.starts_with(**p)).map(|p| p.len());
    let rendered;
    let mut url = url;
    if scheme_len(url).is_none() {
        // A host taken from server.config: render it once, now.
        match Template::compile(url) {
            Ok(t) if t.is_static() && url.contains("{{") => {
                let mut o = Vec::new();
                let cx = crate::rest::template::Context {
                    args: None,
                    config: Some(scx.config),
                    ..Default::default()
                };
                if let Err(e) = t.render(&mut o, &cx) {
                    errs.push(&upath, e.to_string());
                    return None;
                }
                rendered = String::from_utf8_lossy(&o).into_owned();
                url = &rendered;
            }
            Ok(_) => {}
            Err(e) => {
                errs.push(&upath, e);
                return None;
            }
        }
    }
    // A relative URL (Higress sends it to its route's backend service): under `baseUrl`, or
    // loaded with calls failing until one is set.
    let mut unusable: Option<String> = None;
    let joined;
    if url.starts_with('/') {
        match scx.base_url {
            Some(base) => {
                joined = format!("{}{url}", base.trim_end_matches('/'));
                url = &joined;
            }
            None => {
                let why = format!(
                    "the URL {url:?} is relative: set this server's baseUrl to where it is served (Higress sends \
                     it to the backend service of its route)"
                );
                if !warnings.iter().any(|w| w.contains("is relative: set this server's baseUrl")) {
                    warnings.push(format!("{upath}: {why}; calls to such tools fail until it is set"));
                }
                unusable = Some(why);
                joined = format!("http://127.0.0.1{url}");
                url = &joined;
            }
        }
    }
    let Some(scheme_len) = scheme_len(url) else {
        errs.push(
            &upath,
            "must start with http:// or https:// (a host from .config included), or with / under baseUrl",
        );
        return None;
    };
    let mut rest = &url[scheme_len..];
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    let host_from_args;
    if authority.contains("{{") {
        // Arguments never choose where a request goes (SSRF): the tool loads, as Higress loads
        // it, and its calls fail saying why.
        let why = format!(
            "the host {authority:?} comes from the arguments; the gateway never lets arguments choose \
             where a request goes"
        );
        warnings.push(format!("{upath}: {why}: calls to this tool fail"));
        unusable = Some(why);
        host_from_args = format!("127.0.0.1{}", &rest[auth_end..]);
        rest = &host_from_args;
    }
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    let after = &rest[auth_end..];
    if let Err(e) = literal_ok(after) {
        errs.push(&upath, e);
    }
    let (path_src, query_src) = match query_start(after) {
        Some(q) => (&after[..q], Some(&after[q + 1..])),
        None => (after, None),
    };
    let path_src = if path_src.is_empty() { "/".to_string() } else { path_placeholders(path_src, &args) };
    let path_t = compile(&path_src, upath.clone(), errs);
    let query_t = query_src.filter(|q| !q.is_empty()).map(|q| compile(q, upath.clone(), errs));
    let origin = format!("{}{authority}/", &url[..scheme_len]);
    let tls = || super::common::client_tls(scx.ca_file).map_err(|e| format!("TLS configuration: {e}"));
    let target = match Target::parse(&origin, tls) {
        Ok(_) if unusable.is_some() => Err(unusable.unwrap_or_default().into_boxed_str()),
        Ok(t) => Ok(t),
        Err(TargetError::Unresolved(e)) => {
            // One warning per host, not one per tool.
            if !warnings.iter().any(|w| w.contains(&e)) {
                warnings.push(format!(
                    "{upath}: {e}; calls to this tool (and to every other tool on this host) fail until a \
                     reload resolves it"
                ));
            }
            Err(e.into_boxed_str())
        }
        Err(e) => {
            errs.push(&upath, e.to_string());
            return None;
        }
    };

    let method = rt.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
    if !is_token(&method) {
        errs.push(format!("{rpath}.method"), "is not an HTTP method");
    }

    let mut headers = Vec::new();
    let mut has_accept = false;
    let mut content_type = None;
    for (i, h) in rt.headers.iter().flatten().enumerate() {
        let hpath = format!("{rpath}.headers[{i}]");
        if !is_token(&h.key) {
            errs.push(format!("{hpath}.key"), "is not a valid header name");
        } else if reserved_header(&h.key) {
            errs.push(format!("{hpath}.key"), format!("{:?} is set by the gateway", h.key));
        }
        if h.key.eq_ignore_ascii_case("accept") {
            has_accept = true;
        }
        if h.key.eq_ignore_ascii_case("content-type") {
            let v = h.value.to_ascii_lowercase();
            content_type = Some(if v.contains("{{") {
                ContentType::Other
            } else if v.starts_with("application/json") || v.contains("+json") {
                ContentType::Json
            } else if v.starts_with("application/x-www-form-urlencoded") {
                ContentType::Form
            } else {
                ContentType::Other
            });
        }
        if let Some(v) = compile(&h.value, format!("{hpath}.value"), errs) {
            headers.push((h.key.as_str().into(), v));
        }
    }
    for (i, a) in args.iter().enumerate() {
        if matches!(a.position, Position::Header | Position::Cookie) && !is_token(&a.name) {
            errs.push(format!("{path}.args[{i}].name"), "a header or cookie argument needs a token name");
        }
        if a.position == Position::Header && reserved_header(&a.name) {
            errs.push(format!("{path}.args[{i}].name"), format!("{:?} is set by the gateway", a.name));
        }
    }

    let modes = [rt.args_to_json_body, rt.args_to_form_body, rt.args_to_url_param]
        .iter()
        .filter(|m| **m == Some(true))
        .count();
    if modes > 1 {
        errs.push(&rpath, "only one of argsToJsonBody, argsToUrlParam or argsToFormBody can be true");
    }
    let body = match &rt.body {
        Some(b) => {
            if modes > 0 {
                warnings.push(format!(
                    "{rpath}: body is set, so argsToJsonBody/argsToFormBody/argsToUrlParam are ignored"
                ));
            }
            compile(b, format!("{rpath}.body"), errs).map_or(Body::None, Body::Template)
        }
        None if rt.args_to_json_body == Some(true) => Body::Json,
        None if rt.args_to_form_body == Some(true) => Body::Form,
        None => Body::None,
    };

    let downstream = t.security.as_ref().or(scx.default_down).and_then(|s| {
        let at = if t.security.is_some() {
            format!("{path}.security")
        } else {
            "server.defaultDownstreamSecurity".into()
        };
        scheme(s, scx, &at, errs).and_then(|(sc, scheme)| {
            if sc.kind == raw::SchemeType::OAuth2 {
                errs.push(
                    format!("{at}.id"),
                    "an oauth2 scheme is how the gateway calls backends (requestTemplate.security, \
                     backends[].security), not how clients authenticate",
                );
                return None;
            }
            Some(Downstream { scheme, passthrough: s.passthrough == Some(true) })
        })
    });
    let upstream = rt.security.as_ref().or(scx.default_up).and_then(|s| {
        let at = if rt.security.is_some() {
            format!("{rpath}.security")
        } else {
            "server.defaultUpstreamSecurity".into()
        };
        scheme(s, scx, &at, errs).map(|(sc, scheme)| {
            let value = s.credential.as_deref().or(sc.default_credential.as_deref());
            let spath = scx.scheme_path(&sc.id);
            let configured = credential_source(sc, scheme.kind, &scheme.name, value, scx, &spath, errs);
            Upstream { scheme, configured }
        })
    });

    let mut response = Response::default();
    if let Some(r) = &t.response_template {
        if r.body.is_some() && (r.prepend_body.is_some() || r.append_body.is_some()) {
            errs.push(
                format!("{path}.responseTemplate"),
                "prependBody and appendBody cannot be used together with body",
            );
        }
        response.body =
            r.body.as_deref().and_then(|b| compile(b, format!("{path}.responseTemplate.body"), errs));
        response.prepend = r.prepend_body.as_deref().unwrap_or("").into();
        response.append = r.append_body.as_deref().unwrap_or("").into();
    }
    response.error = t
        .error_response_template
        .as_deref()
        .and_then(|e| compile(e, format!("{path}.errorResponseTemplate"), errs));
    response.structured = t.output_schema.is_some();

    if errs.0.len() > before {
        return None;
    }
    Some(RestTool {
        target,
        method: method.into(),
        path: path_t?,
        query: query_t.flatten(),
        headers,
        has_accept,
        content_type,
        body,
        args_to_url: rt.args_to_url_param == Some(true) && rt.body.is_none(),
        args,
        downstream,
        upstream,
        pass_authorization: scx.pass_auth && t.security.is_none() && scx.default_down.is_none(),
        response,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_literals_are_scanned_outside_actions() {
        assert_eq!(query_start("/a/{{.args.x}}?q=1"), Some(14));
        assert_eq!(query_start("/a/{{printf \"?\"}}/b"), None, "a ? inside an action is not the query");
        assert_eq!(query_start("/a/{{.args.x"), None, "an unclosed action swallows the rest");
        assert!(literal_ok("/a/{{ .args.x }}/b?c={{.config.y}}").is_ok(), "spaces inside actions are fine");
        assert!(literal_ok("/a b").is_err());
        assert!(literal_ok("/a#frag").is_err());
        assert!(literal_ok("/é").is_err());
    }
}
