//! Security schemes: the description's `components.securitySchemes` that map to the
//! gateway's scheme kinds (never a credential), and each operation's choice among them.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::config::raw::{In, SchemeType, SecurityScheme};

use super::cx::*;
use super::document::*;
use super::error::*;

/// The supported schemes, in the server block's shape, and which ids exist at all.
pub(super) struct Schemes {
    pub(super) entries: Vec<SecurityScheme>,
    pub(super) supported: HashSet<String>,
    pub(super) declared: HashSet<String>,
}

impl<'a> Cx<'a> {
    /// `components.securitySchemes` -> `server.securitySchemes` (http basic/bearer, apiKey in
    /// header/query); the rest are skipped with a warning naming the scheme.
    pub(super) fn security_schemes(&mut self) -> Result<Schemes, ImportError> {
        let mut out = Schemes { entries: Vec::new(), supported: HashSet::new(), declared: HashSet::new() };
        let root = self.root;
        let Some(all) = root.pointer("/components/securitySchemes") else { return Ok(out) };
        let Value::Object(all) = all else {
            return Err(invalid("components.securitySchemes", "must be a mapping"));
        };
        for (id, scheme) in all {
            let at = key("components.securitySchemes", id);
            out.declared.insert(id.clone());
            let (scheme, at) = self.deref(scheme, &at)?;
            let Some(kind) = scheme.get("type").and_then(Value::as_str) else {
                return Err(invalid(&at, "a security scheme needs a string `type`"));
            };
            let entry = match kind {
                "http" => {
                    let s = scheme.get("scheme").and_then(Value::as_str).unwrap_or("").to_ascii_lowercase();
                    if s == "basic" || s == "bearer" {
                        Some(SecurityScheme { scheme: Some(s), ..scheme_of(id, SchemeType::Http) })
                    } else {
                        self.warn(format!(
                            "{at}: http scheme {s:?} is not supported (basic and bearer are); skipped"
                        ));
                        None
                    }
                }
                "apiKey" => {
                    let location = scheme.get("in").and_then(Value::as_str).unwrap_or("");
                    let name = scheme.get("name").and_then(Value::as_str).unwrap_or("");
                    if name.is_empty() {
                        self.warn(format!("{at}: apiKey scheme without a `name`; skipped"));
                        None
                    } else if let Some(location) = match location {
                        "header" => Some(In::Header),
                        "query" => Some(In::Query),
                        _ => None,
                    } {
                        Some(SecurityScheme {
                            location: Some(location),
                            name: Some(name.to_string()),
                            ..scheme_of(id, SchemeType::ApiKey)
                        })
                    } else {
                        self.warn(format!(
                            "{at}: apiKey in {location:?} is not supported (header and query are); skipped"
                        ));
                        None
                    }
                }
                "oauth2" | "openIdConnect" => {
                    self.warn(format!(
                        "{at}: {kind} is not supported (the gateway runs no OAuth flow); skipped. With an \
                         access token at hand, declare it by hand as {{id: {id}, type: http, scheme: bearer}}"
                    ));
                    None
                }
                other => {
                    self.warn(format!("{at}: security scheme type {other:?} is not supported; skipped"));
                    None
                }
            };
            if let Some(e) = entry {
                let hint = match (e.kind, e.scheme.as_deref()) {
                    (SchemeType::Http, Some("basic")) => "user:password",
                    (SchemeType::Http, _) => "the token",
                    (SchemeType::ApiKey, _) => "the key",
                    (SchemeType::OAuth2, _) => "a token service",
                };
                self.warn(format!(
                    "securitySchemes {id:?}: no credential imported; add defaultCredential: ${{{}}} ({hint}) \
                     or set requestTemplate.security.credential per tool",
                    env_name(id)
                ));
                out.supported.insert(id.clone());
                out.entries.push(e);
            }
        }
        Ok(out)
    }

    /// `requestTemplate.security`: from the operation's `security` (or the document's when the
    /// operation has none), the first requirement whose schemes are all supported, by its first
    /// scheme. An empty requirement (`{}`, optional auth) or `security: []` means none.
    pub(super) fn security(
        &mut self,
        tool: &str,
        op: &Map<String, Value>,
        op_path: &str,
        schemes: &Schemes,
    ) -> Result<Option<String>, ImportError> {
        let (reqs, reqs_path) = match op.get("security") {
            Some(s) => (s, key(op_path, "security")),
            None => match self.root.get("security") {
                Some(s) => (s, "security".to_string()),
                None => return Ok(None),
            },
        };
        let Value::Array(reqs) = reqs else {
            return Err(invalid(&reqs_path, "must be a list of security requirements"));
        };
        for (i, req) in reqs.iter().enumerate() {
            let Value::Object(req) = req else {
                return Err(invalid(&idx(&reqs_path, i), "a security requirement must be a mapping"));
            };
            for id in req.keys().filter(|id| !schemes.declared.contains(*id)) {
                self.warn(format!(
                    "{}: security scheme {id:?} is not declared in components.securitySchemes",
                    idx(&reqs_path, i)
                ));
            }
            if !req.keys().all(|id| schemes.supported.contains(id)) {
                continue;
            }
            let mut ids = req.keys();
            let Some(first) = ids.next() else { return Ok(None) };
            let rest: Vec<&str> = ids.map(String::as_str).collect();
            if !rest.is_empty() {
                self.warn(format!(
                    "{}: requires {first:?} and {} together; only {first:?} is applied (add the others as \
                     requestTemplate.headers by hand)",
                    idx(&reqs_path, i),
                    rest.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>().join(", ")
                ));
            }
            return Ok(Some(first.clone()));
        }
        if !reqs.is_empty() {
            let mut wanted: Vec<String> = Vec::new();
            for id in reqs.iter().filter_map(Value::as_object).flat_map(Map::keys) {
                if !wanted.contains(id) {
                    wanted.push(id.clone());
                }
            }
            self.warn(format!(
                "{reqs_path}: tool {tool:?} accepts only unsupported schemes ({}): it is called without \
                 backend credentials",
                wanted.join(", ")
            ));
        }
        Ok(None)
    }
}

/// A scheme entry with its id and type and nothing else.
fn scheme_of(id: &str, kind: SchemeType) -> SecurityScheme {
    SecurityScheme {
        id: id.to_string(),
        kind,
        scheme: None,
        location: None,
        name: None,
        default_credential: None,
        credentials: None,
        flows: None,
    }
}
