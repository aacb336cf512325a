//! Authentication (phase 3: who is calling) and the credentials the gateway itself holds.
//!
//! - [`Authenticator`]: one per server, compiled at load from `authentication`. It turns a
//!   request head into a [`Principal`] or a [`Failure`] whose challenge becomes the 401's
//!   `WWW-Authenticate`. Modes: `jwt` ([`jwt`], keys from [`jwks`], verified tokens remembered
//!   per core in [`cache`]), `apiKey` and `basic` ([`secret`]), `proxy` ([`proxy`] trust by
//!   peer address), `none`.
//! - [`Prm`]: the RFC 9728 protected resource metadata document and its URL.
//! - [`scheme`]: how a backend credential is put on a backend request.
//!
//! Secrets live only in these types, whose `Debug` never prints them; error descriptions are
//! static text and never echo what the client sent.

pub mod cache;
pub mod claims;
pub mod credentials;
pub mod failure;
pub mod jwk;
pub mod jwks;
pub mod jwt;
pub mod mtls;
pub mod principal;
pub mod proxy;
pub mod scheme;
pub mod secret;
pub mod strict;

pub use failure::Failure;
pub use principal::{Principal, PrincipalKind};

use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::http::head::Head;

/// Where an API key is presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyIn {
    /// A request header.
    Header,
    /// A query parameter.
    Query,
}

/// The compiled `authentication.mode`.
#[derive(Debug)]
pub enum Mode {
    /// Anonymous clients.
    None,
    /// Bearer JWTs.
    Jwt {
        /// Trusted issuers.
        providers: Vec<jwt::Provider>,
        /// Verified-token cache entries per core.
        cache_entries: usize,
    },
    /// API keys.
    ApiKey {
        /// Header or query.
        location: KeyIn,
        /// Header name (lower case) or parameter name.
        name: Box<str>,
        /// The keys.
        keys: secret::Secrets,
    },
    /// HTTP basic.
    Basic {
        /// The users.
        users: secret::Secrets,
    },
    /// A trusted authenticating proxy.
    Proxy {
        /// Identity header (lower case).
        header: Box<str>,
        /// Peers whose header is believed.
        trusted: Vec<proxy::Cidr>,
        /// Whether a request without a (believed) user is refused.
        require_user: bool,
    },
    /// TLS client certificates (the pipeline passes the connection's to [`mtls::Mtls`]).
    Mtls(mtls::Mtls),
}

/// RFC 9728 protected resource metadata of one server.
#[derive(Debug)]
pub struct Prm {
    /// The document's URL, when `resource` is configured (else built from the request's Host).
    pub url: Option<Box<str>>,
    /// Path of the document on this gateway (`/.well-known/oauth-protected-resource<path>`).
    pub path: Box<str>,
    /// The document, serialized once.
    pub document: Box<[u8]>,
    /// `scope="..."` for challenges: `scopesSupported` joined by spaces.
    pub scope: Option<Box<str>>,
}

/// The optional members of a metadata document (`protectedResource`).
#[derive(Clone, Copy, Debug, Default)]
pub struct PrmFields<'a> {
    /// `authorization_servers`.
    pub authorization_servers: &'a [String],
    /// `scopes_supported`.
    pub scopes: Option<&'a [String]>,
    /// `resource_name`.
    pub name: Option<&'a str>,
    /// `resource_documentation`.
    pub documentation: Option<&'a str>,
    /// `resource_policy_uri`.
    pub policy: Option<&'a str>,
    /// `jwks_uri`.
    pub jwks_uri: Option<&'a str>,
}

/// The well-known prefix of RFC 9728.
pub const PRM_PREFIX: &str = "/.well-known/oauth-protected-resource";

impl Prm {
    /// Builds the document for a server at `endpoint` whose canonical URI is `resource`.
    pub fn new(resource: Option<&str>, endpoint: &str, fields: PrmFields<'_>) -> Prm {
        let PrmFields { authorization_servers, scopes, name, documentation, policy, jwks_uri } = fields;
        // RFC 9728 3.1: the well-known segment goes between the authority and the path.
        // A query stays on the URL but is not part of the path the document is served at.
        let (url, path) = match resource.and_then(split_uri) {
            Some((origin, rpath, query)) => {
                let rpath = if rpath == "/" { "" } else { rpath };
                (Some(format!("{origin}{PRM_PREFIX}{rpath}{query}").into()), format!("{PRM_PREFIX}{rpath}"))
            }
            None => (None, format!("{PRM_PREFIX}{endpoint}")),
        };
        let mut doc = Map::new();
        if let Some(r) = resource {
            doc.insert("resource".into(), r.into());
        }
        if !authorization_servers.is_empty() {
            doc.insert("authorization_servers".into(), authorization_servers.into());
        }
        if let Some(s) = scopes {
            doc.insert("scopes_supported".into(), s.into());
        }
        doc.insert("bearer_methods_supported".into(), vec!["header"].into());
        for (k, v) in [
            ("resource_name", name),
            ("resource_documentation", documentation),
            ("resource_policy_uri", policy),
            ("jwks_uri", jwks_uri),
        ] {
            if let Some(v) = v {
                doc.insert(k.into(), v.into());
            }
        }
        Prm {
            url,
            path: path.into(),
            document: serde_json::to_vec(&Value::Object(doc)).unwrap_or_default().into(),
            scope: scopes.filter(|s| !s.is_empty()).map(|s| s.join(" ").into()),
        }
    }

    /// The document for a request: with `resource` configured it is fixed; otherwise the
    /// resource is this endpoint at the request's `Host`.
    pub fn document_for(&self, host: &[u8], endpoint: &str) -> Vec<u8> {
        if self.url.is_some() {
            return self.document.to_vec();
        }
        let mut doc: Map<String, Value> = serde_json::from_slice(&self.document).unwrap_or_default();
        let resource = format!("http://{}{endpoint}", String::from_utf8_lossy(host));
        let mut out = Map::new();
        out.insert("resource".into(), resource.into());
        out.append(&mut doc);
        serde_json::to_vec(&Value::Object(out)).unwrap_or_default()
    }

    /// The document's URL for a request to `host`.
    pub fn url_for(&self, host: &[u8]) -> String {
        match &self.url {
            Some(u) => u.to_string(),
            None => format!("http://{}{}", String::from_utf8_lossy(host), self.path),
        }
    }
}

/// `https://host:port/path?query` -> (`https://host:port`, `/path`, `?query`). A fragment is
/// dropped (config refuses one in `resource`).
fn split_uri(uri: &str) -> Option<(&str, &str, &str)> {
    let uri = uri.split('#').next().unwrap_or(uri);
    let after = uri.find("://")? + 3;
    let (before_query, query) = match uri[after..].find('?') {
        Some(q) => uri.split_at(after + q),
        None => (uri, ""),
    };
    match before_query[after..].find('/') {
        Some(i) => Some((&before_query[..after + i], &before_query[after + i..], query)),
        None => Some((before_query, "/", query)),
    }
}

/// One server's authentication.
#[derive(Debug)]
pub struct Authenticator {
    /// The mode.
    pub mode: Mode,
    /// The metadata document, for `jwt` (and any mode with `protectedResource`).
    pub prm: Option<Prm>,
    /// The realm in challenges (the server's name).
    pub realm: Box<str>,
    /// Client headers never forwarded to a backend (lower case): the proxy identity header and
    /// every `claimToHeaders` name, whose values only the gateway sets.
    pub stripped: Vec<Box<str>>,
}

impl Authenticator {
    /// Anonymous clients.
    pub fn none(realm: &str) -> Authenticator {
        Authenticator { mode: Mode::None, prm: None, realm: realm.into(), stripped: Vec::new() }
    }

    /// Whether the endpoint is open to anonymous clients.
    pub fn anonymous(&self) -> bool {
        matches!(self.mode, Mode::None)
    }

    /// The verified-token cache size per core (0 for modes without tokens).
    pub fn cache_entries(&self) -> usize {
        match &self.mode {
            Mode::Jwt { cache_entries, .. } => *cache_entries,
            _ => 0,
        }
    }

    /// The JWT providers (empty for other modes).
    pub fn providers(&self) -> &[jwt::Provider] {
        match &self.mode {
            Mode::Jwt { providers, .. } => providers,
            _ => &[],
        }
    }

    /// Whether a client header must not reach backends.
    pub fn strips(&self, name: &[u8]) -> bool {
        self.stripped.iter().any(|s| name.eq_ignore_ascii_case(s.as_bytes()))
    }

    /// Authentication (phase 3) of one request: `peer` is the TCP peer, `now` unix seconds, `cache` this core's
    /// token cache for this server, `anonymous` the shared anonymous principal.
    pub fn authenticate(
        &self,
        head: &Head,
        buf: &[u8],
        peer: IpAddr,
        now: u64,
        cache: &mut cache::TokenCache,
        anonymous: &Principal,
    ) -> Result<Principal, Failure> {
        match &self.mode {
            Mode::None => Ok(anonymous.clone()),
            Mode::Jwt { providers, .. } => {
                let Some(auth) = head.authorization.map(|s| s.of(buf)) else { return Err(Failure::Missing) };
                // No character check here: a hit compares with a token that verified, and a
                // miss goes through strict base64url decoding. Another scheme is no bearer token
                // at all: its challenge carries no error code (RFC 6750 3.1).
                let token = credential(auth, b"bearer").ok_or(Failure::Missing)?;
                if let Some(hit) =
                    cache.get(token, now, |i| providers.get(i).map_or(u64::MAX, |p| p.keys.epoch()))
                {
                    return Ok(hit.principal);
                }
                let v = jwt::verify(token, providers, now).map_err(Failure::Token)?;
                cache.put(v.principal.clone(), v.provider, v.epoch, v.deadline, now);
                Ok(v.principal)
            }
            Mode::ApiKey { location, name, keys } => {
                let presented = match location {
                    KeyIn::Header => single_header(head, buf, name)?.map(|v| v.trim_ascii().to_vec()),
                    KeyIn::Query => query_param(head.query.of(buf), name.as_bytes())?,
                };
                let Some(presented) = presented else { return Err(Failure::Missing) };
                match keys.key_id(&presented) {
                    Some(id) => Ok(Principal::user(PrincipalKind::ApiKey, id)),
                    None => Err(Failure::Credential("The API key is not valid")),
                }
            }
            Mode::Basic { users } => {
                let Some(auth) = head.authorization.map(|s| s.of(buf)) else { return Err(Failure::Missing) };
                let invalid = Failure::Credential("The user name or password is not valid");
                let encoded = credential(auth, b"basic").ok_or(invalid)?;
                let decoded = base64_simd::STANDARD.decode_to_vec(encoded).map_err(|_| invalid)?;
                let colon = decoded.iter().position(|&b| b == b':').ok_or(invalid)?;
                let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
                if users.check_password(user, password) {
                    let user = std::str::from_utf8(user).map_err(|_| invalid)?;
                    Ok(Principal::user(PrincipalKind::Basic, user))
                } else {
                    Err(invalid)
                }
            }
            Mode::Proxy { header, trusted, require_user } => {
                // The header from an untrusted peer is ignored as if it had not been sent (and
                // it is never forwarded): the ContextForge spoofing bug made impossible.
                let user = if trusted.iter().any(|c| c.contains(peer)) {
                    single_header(head, buf, header)?.map(<[u8]>::trim_ascii).filter(|v| !v.is_empty())
                } else {
                    None
                };
                match user {
                    Some(u) => {
                        let u = std::str::from_utf8(u)
                            .ok()
                            .filter(|u| u.len() <= 256 && !u.bytes().any(|b| b < 0x20 || b == 0x7f))
                            .ok_or(Failure::Credential("The identity header is not a valid user name"))?;
                        Ok(Principal::user(PrincipalKind::Proxy, u))
                    }
                    None if *require_user => Err(Failure::Missing),
                    None => Ok(anonymous.clone()),
                }
            }
            // A certificate belongs to the connection, not the request: see `mtls::Mtls`.
            Mode::Mtls(_) => Err(Failure::Missing),
        }
    }

    /// The `WWW-Authenticate` value for `failure` on a request to `host`.
    pub fn challenge(&self, failure: Failure, host: &[u8]) -> String {
        match &self.mode {
            Mode::Basic { .. } => format!("Basic realm=\"{}\", charset=\"UTF-8\"", self.realm),
            Mode::ApiKey { .. } => format!("ApiKey realm=\"{}\"", self.realm),
            // No HTTP scheme carries a certificate; the name says what is expected.
            Mode::Mtls(_) => format!("ClientCertificate realm=\"{}\"", self.realm),
            _ => {
                // RFC 6750 3: error only when a token was presented; the MCP authorization spec
                // adds resource_metadata and scope.
                let mut params = Vec::new();
                if failure.presented() {
                    params.push("error=\"invalid_token\"".to_string());
                    params.push(format!("error_description=\"{}\"", failure.message()));
                }
                if let Some(prm) = &self.prm {
                    params.push(format!("resource_metadata=\"{}\"", prm.url_for(host)));
                    if let Some(s) = &prm.scope {
                        params.push(format!("scope=\"{s}\""));
                    }
                }
                if params.is_empty() {
                    format!("Bearer realm=\"{}\"", self.realm)
                } else {
                    format!("Bearer {}", params.join(", "))
                }
            }
        }
    }
}

/// The credential after `<scheme> ` in an Authorization value (scheme case-insensitive, RFC
/// 9110 11.4). Its characters are checked by whoever decodes it (strict base64 for both
/// schemes), not here, so a token cache hit does not scan the token twice.
fn credential<'a>(value: &'a [u8], scheme: &[u8]) -> Option<&'a [u8]> {
    let v = value.trim_ascii();
    if v.len() <= scheme.len() || !v[..scheme.len()].eq_ignore_ascii_case(scheme) || v[scheme.len()] != b' ' {
        return None;
    }
    let c = v[scheme.len()..].trim_ascii_start();
    (!c.is_empty()).then_some(c)
}

/// The value of a header that must appear at most once (a repeated credential is refused, not
/// guessed at).
fn single_header<'a>(head: &Head, buf: &'a [u8], name: &str) -> Result<Option<&'a [u8]>, Failure> {
    let mut found = None;
    for (n, v) in &head.headers {
        if n.of(buf).eq_ignore_ascii_case(name.as_bytes()) {
            if found.is_some() {
                return Err(Failure::Repeated("The credential header is repeated"));
            }
            found = Some(v.of(buf));
        }
    }
    Ok(found)
}

/// The percent-decoded value of query parameter `name` (at most once).
pub(crate) fn query_param(query: &[u8], name: &[u8]) -> Result<Option<Vec<u8>>, Failure> {
    let mut found = None;
    for pair in query.split(|&b| b == b'&') {
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        if k == name {
            if found.is_some() {
                return Err(Failure::Repeated("The API key parameter is repeated"));
            }
            found = Some(
                crate::http::percent::decode_form(v)
                    .ok_or(Failure::Credential("The API key is not valid percent-encoding"))?,
            );
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests;
