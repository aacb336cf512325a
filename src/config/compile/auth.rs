//! `servers[].authentication` -> [`Authenticator`]: every mode checked and compiled here, once,
//! so the request path only looks things up.

use std::time::Duration;

use super::common::{client_tls, Errors};
use crate::auth::jwk::{Alg, KeySet};
use crate::auth::jwks::KeySource;
use crate::auth::jwt::Provider;
use crate::auth::mtls::{CertName, Mtls};
use crate::auth::proxy::Cidr;
use crate::auth::secret::Secrets;
use crate::auth::{Authenticator, KeyIn, Mode, Prm, PrmFields};
use crate::config::raw::{self, AuthMode};
use crate::upstream::target::Target;

/// Default `clockSkewSeconds`.
const DEFAULT_SKEW: u64 = 30;
/// Default `refreshSeconds` for a JWKS `uri`.
const DEFAULT_REFRESH: u64 = 300;
/// Default verified-token cache entries per core.
const DEFAULT_CACHE: u64 = 4096;
/// Default `proxy.userHeader` (ContextForge's `PROXY_USER_HEADER` default).
const DEFAULT_USER_HEADER: &str = "x-authenticated-user";

/// Headers a `claimToHeaders` entry or `userHeader` may not name: framing, routing, and the
/// MCP transport's own.
const RESERVED: [&str; 12] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "expect",
    "authorization",
    "mcp-session-id",
    "mcp-protocol-version",
    "content-type",
];

fn header_name_ok(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Compiles one server's `authentication` (`None` = no block: anonymous).
pub(super) fn compile(
    auth: Option<&raw::Authentication>,
    name: &str,
    endpoint: &str,
    resource: Option<&str>,
    path: &str,
    errs: &mut Errors,
) -> Authenticator {
    let Some(a) = auth else { return Authenticator::none(name) };
    let mut stripped: Vec<Box<str>> = Vec::new();
    let mode = match a.mode {
        AuthMode::None => Mode::None,
        AuthMode::Jwt => match &a.jwt {
            Some(j) => jwt(j, resource, &format!("{path}.jwt"), &mut stripped, errs),
            None => {
                errs.push(format!("{path}.jwt"), "is required for mode jwt");
                Mode::None
            }
        },
        AuthMode::ApiKey => match &a.api_key {
            Some(k) => {
                // The client's key authenticated it to the gateway: it never reaches a backend,
                // not even through `forwardHeaders`.
                if k.location == raw::In::Header {
                    stripped.push(k.name.to_ascii_lowercase().into());
                }
                api_key(k, &format!("{path}.apiKey"), errs)
            }
            None => {
                errs.push(format!("{path}.apiKey"), "is required for mode apiKey");
                Mode::None
            }
        },
        AuthMode::Basic => match &a.basic {
            Some(b) => basic(b, &format!("{path}.basic"), errs),
            None => {
                errs.push(format!("{path}.basic"), "is required for mode basic");
                Mode::None
            }
        },
        AuthMode::Proxy => proxy(a.proxy.as_ref(), &format!("{path}.proxy"), &mut stripped, errs),
        AuthMode::Mtls => match &a.mtls {
            Some(m) => {
                let name = match m.principal.as_deref() {
                    None => Some(CertName::CommonName),
                    Some(p) => CertName::parse(p),
                };
                match (name, Mtls::new(&m.ca_file, name.unwrap_or(CertName::CommonName))) {
                    (None, _) => {
                        errs.push(
                            format!("{path}.mtls.principal"),
                            "must be commonName, subject, dnsName, uri or email",
                        );
                        Mode::None
                    }
                    (_, Err(e)) => {
                        errs.push(format!("{path}.mtls.caFile"), e);
                        Mode::None
                    }
                    (Some(_), Ok(m)) => Mode::Mtls(m),
                }
            }
            None => {
                errs.push(format!("{path}.mtls"), "is required for mode mtls (caFile)");
                Mode::None
            }
        },
    };
    // The metadata document: always for jwt (MCP clients discover the authorization server
    // through it), and for any mode whose block asks for it.
    let prm = match (&a.protected_resource, &mode) {
        (Some(p), _) => {
            // Without `authorizationServers`, a jwt endpoint names its providers' issuers (as
            // Envoy AI Gateway names its `oauth.issuer`); other modes have no issuer to name.
            let issuers: Vec<String> = match &mode {
                Mode::Jwt { providers, .. } => providers.iter().map(|p| p.issuer.to_string()).collect(),
                _ => Vec::new(),
            };
            let servers = p.authorization_servers.as_deref().unwrap_or(&issuers);
            if servers.is_empty() {
                let why = match (&p.authorization_servers, &mode) {
                    (Some(_), _) => "must list at least one",
                    (None, Mode::Jwt { .. }) => "is required: no jwt provider names an issuer",
                    (None, _) => "is required (it defaults to the JWT issuers only for mode jwt)",
                };
                errs.push(format!("{path}.protectedResource.authorizationServers"), why);
            }
            let fields = PrmFields {
                authorization_servers: servers,
                scopes: p.scopes_supported.as_deref(),
                name: p.resource_name.as_deref(),
                documentation: p.resource_documentation.as_deref(),
                policy: p.resource_policy_uri.as_deref(),
                jwks_uri: p.jwks_uri.as_deref(),
            };
            Some(Prm::new(resource, endpoint, fields))
        }
        (None, Mode::Jwt { providers, .. }) => {
            let issuers: Vec<String> = providers.iter().map(|p| p.issuer.to_string()).collect();
            Some(Prm::new(
                resource,
                endpoint,
                PrmFields { authorization_servers: &issuers, ..PrmFields::default() },
            ))
        }
        _ => None,
    };
    Authenticator { mode, prm, realm: name.into(), stripped }
}

fn jwt(
    j: &raw::Jwt,
    resource: Option<&str>,
    path: &str,
    stripped: &mut Vec<Box<str>>,
    errs: &mut Errors,
) -> Mode {
    if j.providers.is_empty() {
        errs.push(format!("{path}.providers"), "must list at least one provider");
    }
    let mut providers = Vec::new();
    for (i, p) in j.providers.iter().enumerate() {
        let pp = format!("{path}.providers[{i}]");
        if p.issuer.is_empty() {
            errs.push(format!("{pp}.issuer"), "must not be empty");
        }
        if j.providers[..i].iter().any(|o| o.issuer == p.issuer) {
            // The issuer picks the provider; two with one issuer would make the keys ambiguous.
            errs.push(format!("{pp}.issuer"), "another provider has the same issuer");
        }
        let audiences: Vec<Box<str>> = match (&p.audiences, resource) {
            (Some(a), _) if !a.is_empty() => a.iter().map(|s| s.as_str().into()).collect(),
            (_, Some(r)) => vec![r.into()],
            _ => {
                errs.push(
                    format!("{pp}.audiences"),
                    "is required when the server has no resource (the default audience)",
                );
                Vec::new()
            }
        };
        let algorithms: Vec<Alg> = match &p.algorithms {
            None => Alg::ALL.to_vec(),
            Some(list) => list
                .iter()
                .enumerate()
                .filter_map(|(k, a)| {
                    let alg = Alg::parse(a);
                    if alg.is_none() {
                        errs.push(
                            format!("{pp}.algorithms[{k}]"),
                            format!("{a:?} is not a supported algorithm (RS256/384/512, PS256/384/512, ES256, ES384, EdDSA, HS256/384/512; never none)"),
                        );
                    }
                    alg
                })
                .collect(),
        };
        let mut claim_to_headers = Vec::new();
        for (k, c) in p.claim_to_headers.iter().flatten().enumerate() {
            let h = c.header.to_ascii_lowercase();
            if !header_name_ok(&h) || RESERVED.contains(&h.as_str()) || h.starts_with("mcp-") {
                errs.push(
                    format!("{pp}.claimToHeaders[{k}].header"),
                    format!("{:?} cannot carry a claim", c.header),
                );
            }
            if c.claim.is_empty() {
                errs.push(format!("{pp}.claimToHeaders[{k}].claim"), "must not be empty");
            }
            stripped.push(h.as_str().into());
            claim_to_headers.push((c.claim.as_str().into(), h.into()));
        }
        let keys = jwks(&p.jwks, &format!("{pp}.jwks"), errs);
        providers.push(Provider {
            name: p.name.as_str().into(),
            issuer: p.issuer.as_str().into(),
            audiences,
            algorithms,
            skew: p.clock_skew_seconds.unwrap_or(DEFAULT_SKEW),
            require_exp: p.require_exp.unwrap_or(true),
            claim_to_headers,
            keys,
        });
    }
    Mode::Jwt { providers, cache_entries: j.cache_entries.unwrap_or(DEFAULT_CACHE).min(1 << 20) as usize }
}

fn jwks(j: &raw::Jwks, path: &str, errs: &mut Errors) -> std::sync::Arc<KeySource> {
    let empty = || KeySource::fixed(KeySet::default());
    let sources = [j.file.is_some(), j.inline.is_some(), j.uri.is_some()].iter().filter(|&&b| b).count();
    if sources != 1 {
        errs.push(path, "exactly one of file, inline or uri is required");
        return empty();
    }
    let parsed = if let Some(f) = &j.file {
        match std::fs::read(f) {
            Ok(bytes) => KeySet::parse(&bytes).map_err(|e| (format!("{path}.file"), e)),
            Err(e) => Err((format!("{path}.file"), format!("cannot read {f:?}: {e}"))),
        }
    } else if let Some(v) = &j.inline {
        match serde_json::to_value(v) {
            Ok(v) => KeySet::from_value(&v).map_err(|e| (format!("{path}.inline"), e)),
            Err(e) => Err((format!("{path}.inline"), format!("not representable as JSON: {e}"))),
        }
    } else {
        let uri = j.uri.as_deref().unwrap_or_default();
        let upath = format!("{path}.uri");
        let loopback = |t: &Target| t.addr.ip().is_loopback();
        let tls = || client_tls(j.ca_file.as_deref());
        return match Target::parse(uri, tls) {
            Ok(t) if t.tls.is_none() && !loopback(&t) => {
                errs.push(upath, "must be https:// (plain http is accepted for loopback addresses only)");
                empty()
            }
            Ok(t) => {
                let refresh = j.refresh_seconds.unwrap_or(DEFAULT_REFRESH).max(10);
                KeySource::remote(uri, t, Duration::from_secs(refresh))
            }
            Err(e) => {
                errs.push(upath, e.to_string());
                empty()
            }
        };
    };
    match parsed {
        Ok((set, problems)) => {
            for p in problems {
                errs.push(path, p);
            }
            if set.keys.is_empty() {
                errs.push(path, "holds no usable key");
            }
            KeySource::fixed(set)
        }
        Err((p, e)) => {
            errs.push(p, e);
            empty()
        }
    }
}

fn api_key(k: &raw::ApiKey, path: &str, errs: &mut Errors) -> Mode {
    if k.name.is_empty() || (k.location == raw::In::Header && !header_name_ok(&k.name)) {
        errs.push(format!("{path}.name"), "must be a header or parameter name");
    }
    if k.location == raw::In::Header && RESERVED.contains(&k.name.to_ascii_lowercase().as_str()) {
        errs.push(
            format!("{path}.name"),
            "cannot be a reserved header (use mode basic or jwt for Authorization)",
        );
    }
    if k.keys.is_empty() {
        errs.push(format!("{path}.keys"), "must list at least one key");
    }
    for (i, e) in k.keys.iter().enumerate() {
        if e.id.is_empty() || k.keys[..i].iter().any(|o| o.id == e.id) {
            errs.push(format!("{path}.keys[{i}].id"), "must be non-empty and unique");
        }
        if e.value.len() < 8 {
            errs.push(format!("{path}.keys[{i}].value"), "must be at least 8 characters");
        }
        if k.keys[..i].iter().any(|o| o.value == e.value) {
            errs.push(format!("{path}.keys[{i}].value"), "is the same as another key's");
        }
    }
    let name = match k.location {
        raw::In::Header => k.name.to_ascii_lowercase(),
        raw::In::Query => k.name.clone(),
    };
    match Secrets::new(k.keys.iter().map(|e| (e.id.as_str(), e.value.as_str()))) {
        Ok(keys) => Mode::ApiKey {
            location: if k.location == raw::In::Header { KeyIn::Header } else { KeyIn::Query },
            name: name.into(),
            keys,
        },
        Err(e) => {
            errs.push(path, e);
            Mode::None
        }
    }
}

fn basic(b: &raw::Basic, path: &str, errs: &mut Errors) -> Mode {
    if b.users.is_empty() {
        errs.push(format!("{path}.users"), "must list at least one user");
    }
    for (i, u) in b.users.iter().enumerate() {
        if u.name.is_empty() || u.name.contains(':') || b.users[..i].iter().any(|o| o.name == u.name) {
            errs.push(format!("{path}.users[{i}].name"), "must be non-empty, unique and without ':'");
        }
        if u.password.is_empty() {
            errs.push(format!("{path}.users[{i}].password"), "must not be empty");
        }
    }
    match Secrets::new(b.users.iter().map(|u| (u.name.as_str(), u.password.as_str()))) {
        Ok(users) => Mode::Basic { users },
        Err(e) => {
            errs.push(path, e);
            Mode::None
        }
    }
}

fn proxy(p: Option<&raw::Proxy>, path: &str, stripped: &mut Vec<Box<str>>, errs: &mut Errors) -> Mode {
    let sources = p.and_then(|p| p.trusted_sources.as_ref()).filter(|t| !t.is_empty());
    let Some(sources) = sources else {
        // docs/config.md: the ContextForge footgun (trusting the header from any peer) made impossible.
        errs.push(format!("{path}.trustedSources"), "is required for mode proxy");
        return Mode::None;
    };
    let mut trusted = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        match Cidr::parse(s) {
            Ok(c) => trusted.push(c),
            Err(e) => errs.push(format!("{path}.trustedSources[{i}]"), e),
        }
    }
    let header = p.and_then(|p| p.user_header.as_deref()).unwrap_or(DEFAULT_USER_HEADER).to_ascii_lowercase();
    if !header_name_ok(&header) || RESERVED.contains(&header.as_str()) {
        errs.push(format!("{path}.userHeader"), "must be a header name that is not reserved");
    }
    stripped.push(header.as_str().into());
    Mode::Proxy {
        header: header.into(),
        trusted,
        require_user: p.and_then(|p| p.require_user).unwrap_or(true),
    }
}
