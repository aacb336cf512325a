//! One `backends[]` entry of a server: endpoints resolved, TLS, tool selector, credential,
//! forwarded headers.

use crate::config::raw;

use super::common::*;
use super::rest;

pub(crate) fn compile_backend(
    rb: &raw::Backend,
    path: &str,
    scx: &rest::ServerCx<'_>,
    errs: &mut Errors,
) -> Option<crate::config::snapshot::Backend> {
    use crate::upstream::target::Target;
    let (schemes, schemes_known) = (scx.schemes, scx.schemes_known);
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
            // RE2 search semantics, as Envoy AI Gateway's (Go's `regexp.MatchString`): a pattern
            // matches anywhere in the name unless it anchors itself (`^echo$`).
            match regex::Regex::new(p) {
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
            None => {
                super::rest::missing_scheme(schemes_known, &format!("{path}.security.id"), &sref.id, errs)
            }
            Some(sc) => {
                let kind = rest::scheme_kind(sc);
                let value = sref.credential.as_deref().or(sc.default_credential.as_deref());
                let spath = scx.scheme_path(&sc.id);
                let name = sc.name.as_deref().unwrap_or("");
                match kind.map(|k| (k, rest::credential_source(sc, k, name, value, scx, &spath, errs))) {
                    Some((_, Some(c))) => credential = Some(c),
                    // Reported where the file was read, or the token service compiled.
                    Some((_, None)) if sc.credentials.is_some() || sc.kind == raw::SchemeType::OAuth2 => {}
                    Some(_) => errs.push(
                        format!("{path}.security"),
                        format!(
                            "scheme {:?} has no defaultCredential and the backend sets no credential",
                            sc.id
                        ),
                    ),
                    // The scheme itself was already reported by check_scheme.
                    None => {}
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
    use crate::config::snapshot::Pinning;
    let pinning = match rb.pinning.as_deref() {
        None | Some("off") => Pinning::Off,
        Some("warn") => Pinning::Warn,
        Some("enforce") => Pinning::Enforce,
        Some(_) => {
            errs.push(format!("{path}.pinning"), "must be off, warn or enforce");
            Pinning::Off
        }
    };
    (errs.0.len() == before).then(|| crate::config::snapshot::Backend {
        name: rb.name.as_str().into(),
        index: 0,
        targets,
        selector,
        credential,
        forward_headers,
        pinning,
        pins: Default::default(),
    })
}

pub(crate) fn check_scheme(sc: &raw::SecurityScheme, path: &str, errs: &mut Errors) {
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
        raw::SchemeType::OAuth2 => {
            if sc.credentials.is_some() || sc.default_credential.is_some() {
                errs.push(
                    path,
                    "an oauth2 scheme gets its token from flows (no defaultCredential or credentials)",
                );
            }
            let flows = sc.flows.as_ref();
            let (flow, fpath) = match flows.map(|f| (&f.client_credentials, &f.token_exchange)) {
                Some((Some(f), None)) => (f, format!("{path}.flows.clientCredentials")),
                Some((None, Some(f))) => (f, format!("{path}.flows.tokenExchange")),
                _ => {
                    errs.push(
                        format!("{path}.flows"),
                        "needs exactly one of clientCredentials and tokenExchange",
                    );
                    return;
                }
            };
            if flow.client_id.is_empty() || flow.client_secret.is_empty() {
                errs.push(&fpath, "clientId and clientSecret must not be empty");
            }
            if !matches!(
                flow.auth_method.as_deref(),
                None | Some("client_secret_basic" | "client_secret_post")
            ) {
                errs.push(format!("{fpath}.authMethod"), "must be client_secret_basic or client_secret_post");
            }
            if flows.is_some_and(|f| f.client_credentials.is_some())
                && (flow.resource.is_some() || flow.subject_token_type.is_some())
            {
                errs.push(&fpath, "resource and subjectTokenType belong to tokenExchange");
            }
        }
    }
    if sc.kind != raw::SchemeType::OAuth2 && sc.flows.is_some() {
        errs.push(format!("{path}.flows"), "is for type oauth2");
    }
}
