//! `portcullis import mcproute FILE`: an Envoy AI Gateway `MCPRoute` manifest (and the
//! ConfigMaps and `Backend`s beside it in the same file) -> one `servers[]` entry.
//!
//! What maps: `path`; `securityPolicy.oauth` (issuer, audiences, remote or local JWKS,
//! `protectedResourceMetadata`, `claimToHeaders`) -> `authentication` (jwt) and `resource`;
//! `securityPolicy.authorization` as written (the configuration reads Envoy's rule shape);
//! `backendRefs` -> `backends` (URL from `--backend NAME=URL`, else a `Backend` of the file, else
//! the Service's cluster DNS name), with `toolSelector`, `forwardHeaders` and an API key as a
//! security scheme whose credential comes from an environment variable (credentials are never
//! imported). What does not map (routing by host or header, `extAuth`, `apiKeyAuth`,
//! `backendSelector`, header renames) is named in a warning.

use serde_json::{json, Map, Value};

use super::openapi::ImportError;

/// Options of `portcullis import mcproute`.
#[derive(Clone, Debug, Default)]
pub struct McpRouteOptions {
    /// `--backend NAME=URL`: the URL of a `backendRefs[]` entry.
    pub backends: Vec<(String, String)>,
    /// `--jwks-uri URL`: where the keys are when the route has no `jwks` (Envoy discovers them
    /// from the issuer's metadata, which an offline import cannot).
    pub jwks_uri: Option<String>,
    /// `--route NAME`: which `MCPRoute` of the file (required when it holds several).
    pub route: Option<String>,
}

/// A converted route.
#[derive(Clone, Debug)]
pub struct McpRouteImport {
    /// The `servers[]` entry, in the configuration's shape.
    pub entry: Value,
    /// What was skipped or approximated.
    pub warnings: Vec<String>,
}

/// Largest manifest accepted.
const MAX_BYTES: usize = 16 << 20;

/// Converts the `MCPRoute` of `manifest` (multi-document YAML or JSON).
pub fn import(manifest: &str, opts: &McpRouteOptions) -> Result<McpRouteImport, ImportError> {
    if manifest.len() > MAX_BYTES {
        return Err(ImportError::Syntax(format!("larger than {} MiB", MAX_BYTES >> 20)));
    }
    let docs = documents(manifest)?;
    let routes: Vec<&Value> = docs.iter().filter(|d| kind(d) == "MCPRoute").collect();
    let route = match (&opts.route, routes.as_slice()) {
        (None, [one]) => *one,
        (None, []) => return Err(ImportError::Manifest("no document of kind MCPRoute".into())),
        (None, _) => {
            let names: Vec<&str> = routes.iter().map(|r| name(r)).collect();
            return Err(ImportError::Manifest(format!(
                "{} MCPRoutes ({}): choose one with --route NAME",
                routes.len(),
                names.join(", ")
            )));
        }
        (Some(n), _) => *routes
            .iter()
            .find(|r| name(r) == n)
            .ok_or_else(|| ImportError::Manifest(format!("no MCPRoute named {n:?}")))?,
    };
    let mut cx = Cx { docs: &docs, opts, warnings: Vec::new(), schemes: Vec::new() };
    let entry = cx.route(route)?;
    Ok(McpRouteImport { entry, warnings: cx.warnings })
}

impl McpRouteImport {
    /// The entry as a one-element YAML list after a `#` header naming `source` and one
    /// `# warning:` line per warning.
    pub fn to_yaml(&self, source: &str) -> Result<String, ImportError> {
        let body = yaml_serde::to_string(&[&self.entry]).map_err(|e| ImportError::Output(e.to_string()))?;
        let one_line = |s: &str| s.replace(['\r', '\n'], " ");
        let mut out = format!(
            "# Imported by `portcullis import mcproute` from {}.\n\
             # One servers[] entry: paste it under `servers:`. Credentials are never imported.\n",
            one_line(source)
        );
        for w in &self.warnings {
            out.push_str("# warning: ");
            out.push_str(&one_line(w));
            out.push('\n');
        }
        out.push_str(&body);
        Ok(out)
    }
}

fn documents(text: &str) -> Result<Vec<Value>, ImportError> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for (i, doc) in yaml_serde::Deserializer::from_str(text).enumerate() {
        let y = yaml_serde::Value::deserialize(doc)
            .map_err(|e| ImportError::Syntax(format!("document {}: {e}", i + 1)))?;
        let v = super::openapi::yaml_to_json(y).map_err(ImportError::Syntax)?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or("")
}

fn name(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap_or("")
}

struct Cx<'a> {
    docs: &'a [Value],
    opts: &'a McpRouteOptions,
    warnings: Vec<String>,
    schemes: Vec<Value>,
}

impl Cx<'_> {
    fn route(&mut self, route: &Value) -> Result<Value, ImportError> {
        let spec = &route["spec"];
        let route_name = name(route);
        let server_name = sanitize(route_name);
        let mut entry = Map::new();
        entry.insert("name".into(), json!(server_name));
        entry.insert("path".into(), json!(spec["path"].as_str().unwrap_or("/mcp")));
        for (field, what) in [
            ("hostnames", "route matching by host (see allowedHosts)"),
            ("headers", "route matching by request header"),
            ("backendSelector", "per-session backend selection"),
        ] {
            if !spec[field].is_null() {
                self.warnings.push(format!("spec.{field} ({what}) is not imported"));
            }
        }
        let policy = &spec["securityPolicy"];
        for (field, what) in
            [("apiKeyAuth", "API-key client authentication"), ("extAuth", "external authorization")]
        {
            if !policy[field].is_null() {
                self.warnings.push(format!(
                    "spec.securityPolicy.{field} ({what}) is not imported: configure `authentication` by hand"
                ));
            }
        }
        if let Some(oauth) = policy.get("oauth").filter(|o| !o.is_null()) {
            let (authentication, resource) = self.oauth(oauth, route_name)?;
            if let Some(r) = resource {
                entry.insert("resource".into(), json!(r));
            }
            entry.insert("authentication".into(), authentication);
        }
        if let Some(a) = policy.get("authorization").filter(|a| !a.is_null()) {
            entry.insert("authorization".into(), a.clone());
        }
        let refs = spec["backendRefs"].as_array().cloned().unwrap_or_default();
        if refs.is_empty() {
            return Err(ImportError::Manifest("spec.backendRefs: the route names no backend".into()));
        }
        let namespace = route["metadata"]["namespace"].as_str().unwrap_or("default");
        let mut backends = Vec::new();
        for (i, b) in refs.iter().enumerate() {
            backends.push(self.backend(b, i, namespace)?);
        }
        if backends.len() == 1 {
            let b = backends[0]["name"].as_str().unwrap_or_default().to_string();
            self.warnings.push(format!(
                "with one backend, clients see its tools by their own names (`echo`), where Envoy AI \
                 Gateway shows `{b}__echo`"
            ));
        }
        if !self.schemes.is_empty() {
            entry.insert("server".into(), json!({ "name": server_name, "securitySchemes": self.schemes }));
        }
        entry.insert("backends".into(), Value::Array(backends));
        for (name, _) in &self.opts.backends {
            if !refs.iter().any(|b| b["name"].as_str() == Some(name)) {
                self.warnings.push(format!("--backend {name}=...: the route has no backendRef named {name}"));
            }
        }
        Ok(Value::Object(entry))
    }

    /// `securityPolicy.oauth` -> (`authentication`, `resource`).
    fn oauth(&mut self, oauth: &Value, route: &str) -> Result<(Value, Option<String>), ImportError> {
        let issuer = oauth["issuer"]
            .as_str()
            .ok_or_else(|| ImportError::Manifest("spec.securityPolicy.oauth.issuer is required".into()))?;
        let mut provider = Map::new();
        provider.insert("name".into(), json!(sanitize(route)));
        provider.insert("issuer".into(), json!(issuer));
        if let Some(a) = oauth["audiences"].as_array().filter(|a| !a.is_empty()) {
            provider.insert("audiences".into(), Value::Array(a.clone()));
        }
        provider.insert("jwks".into(), self.jwks(&oauth["jwks"])?);
        if let Some(c) = oauth["claimToHeaders"].as_array().filter(|a| !a.is_empty()) {
            provider.insert("claimToHeaders".into(), Value::Array(c.clone()));
        }
        let prm = &oauth["protectedResourceMetadata"];
        let mut doc = Map::new();
        for (from, to) in [
            ("scopesSupported", "scopesSupported"),
            ("resourceName", "resourceName"),
            ("resourceDocumentation", "resourceDocumentation"),
            ("resourcePolicyUri", "resourcePolicyUri"),
        ] {
            if !prm[from].is_null() {
                doc.insert(to.into(), prm[from].clone());
            }
        }
        if !prm["resourceSigningAlgValuesSupported"].is_null() {
            self.warnings
                .push("protectedResourceMetadata.resourceSigningAlgValuesSupported is not published".into());
        }
        let mut authentication = json!({ "mode": "jwt", "jwt": { "providers": [provider] } });
        if !doc.is_empty() {
            // `authorizationServers` defaults to the issuer, as Envoy AI Gateway publishes it.
            authentication["protectedResource"] = Value::Object(doc);
        }
        Ok((authentication, prm["resource"].as_str().map(str::to_string)))
    }

    fn jwks(&mut self, jwks: &Value) -> Result<Value, ImportError> {
        if let Some(remote) = jwks.get("remoteJWKS").filter(|r| !r.is_null()) {
            let uri = remote["uri"].as_str().ok_or_else(|| {
                ImportError::Manifest("spec.securityPolicy.oauth.jwks.remoteJWKS.uri is required".into())
            })?;
            let mut out = json!({ "uri": uri });
            if let Some(d) = remote["cacheDuration"].as_str() {
                match duration_seconds(d) {
                    Some(s) => out["refreshSeconds"] = json!(s),
                    None => self
                        .warnings
                        .push(format!("remoteJWKS.cacheDuration {d:?} is not a duration: ignored")),
                }
            }
            return Ok(out);
        }
        if let Some(local) = jwks.get("localJWKS").filter(|l| !l.is_null()) {
            let text = match (&local["inline"], &local["valueRef"]) {
                (Value::String(s), _) => s.clone(),
                (_, r) if r.is_object() => self.config_map_jwks(r)?,
                _ => {
                    return Err(ImportError::Manifest(
                        "spec.securityPolicy.oauth.jwks.localJWKS needs inline or valueRef".into(),
                    ))
                }
            };
            let keys: Value = serde_json::from_str(&text)
                .map_err(|e| ImportError::Manifest(format!("localJWKS is not a JSON key set: {e}")))?;
            return Ok(json!({ "inline": keys }));
        }
        match &self.opts.jwks_uri {
            Some(uri) => Ok(json!({ "uri": uri })),
            None => Err(ImportError::Manifest(
                "spec.securityPolicy.oauth.jwks is absent (Envoy AI Gateway discovers it from the \
                 issuer's metadata): pass --jwks-uri URL"
                    .into(),
            )),
        }
    }

    /// The key set of a `localJWKS.valueRef` ConfigMap of the same file: its `jwks` key, or its
    /// first value (as Envoy AI Gateway reads it).
    fn config_map_jwks(&self, r: &Value) -> Result<String, ImportError> {
        let wanted = r["name"].as_str().unwrap_or("");
        let map =
            self.docs.iter().find(|d| kind(d) == "ConfigMap" && name(d) == wanted).ok_or_else(|| {
                ImportError::Manifest(format!(
                    "localJWKS.valueRef names ConfigMap {wanted:?}, which is not in this file: add it \
                     (or use remoteJWKS)"
                ))
            })?;
        let data = map["data"].as_object();
        data.and_then(|d| d.get("jwks").or_else(|| d.values().next()))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ImportError::Manifest(format!("ConfigMap {wanted:?} has no data")))
    }

    fn backend(&mut self, b: &Value, i: usize, namespace: &str) -> Result<Value, ImportError> {
        let at = format!("spec.backendRefs[{i}]");
        let bname = b["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ImportError::Manifest(format!("{at}.name is required")))?;
        let path = b["path"].as_str().unwrap_or("/mcp");
        let url = match self.opts.backends.iter().find(|(n, _)| n == bname) {
            Some((_, url)) => url.clone(),
            None => self.backend_url(b, bname, path, namespace, &at)?,
        };
        let mut out = json!({ "name": bname, "url": url });
        if let Some(sel) = b.get("toolSelector").filter(|s| s.is_object()) {
            out["toolSelector"] = sel.clone();
        }
        if let Some(fwd) = b["forwardHeaders"].as_array() {
            let mut names = Vec::new();
            for h in fwd {
                let Some(n) = h["name"].as_str() else { continue };
                if let Some(renamed) = h["backendHeader"].as_str() {
                    self.warnings.push(format!(
                        "{at}.forwardHeaders: {n} is forwarded under its own name, not as {renamed}"
                    ));
                }
                names.push(json!({ "name": n }));
            }
            if !names.is_empty() {
                out["forwardHeaders"] = Value::Array(names);
            }
        }
        if let Some(key) = b["securityPolicy"].get("apiKey").filter(|k| k.is_object()) {
            out["security"] = json!({ "id": self.api_key_scheme(key, bname, &at) });
        }
        Ok(out)
    }

    /// A `Backend` of the file (its first endpoint), else a core Service's cluster DNS name.
    fn backend_url(
        &mut self,
        b: &Value,
        bname: &str,
        path: &str,
        ns: &str,
        at: &str,
    ) -> Result<String, ImportError> {
        let kind_ = b["kind"].as_str().unwrap_or("Service");
        if kind_ == "Backend" {
            let doc = self.docs.iter().find(|d| kind(d) == "Backend" && name(d) == bname);
            let endpoint = doc.and_then(|d| d["spec"]["endpoints"].as_array()).and_then(|e| e.first());
            let host_port = endpoint.and_then(|e| {
                let (host, port) = match (&e["fqdn"], &e["ip"]) {
                    (f, _) if f.is_object() => (f["hostname"].as_str()?.to_string(), f["port"].as_u64()?),
                    (_, ip) if ip.is_object() => {
                        let a = ip["address"].as_str()?;
                        (if a.contains(':') { format!("[{a}]") } else { a.to_string() }, ip["port"].as_u64()?)
                    }
                    _ => return None,
                };
                Some((host, port))
            });
            return match host_port {
                Some((host, port)) => {
                    // Envoy Gateway decides TLS with a BackendTLSPolicy; 443 is the usual sign.
                    let scheme = if port == 443 || port == 8443 { "https" } else { "http" };
                    self.warnings.push(format!(
                        "{at}: {scheme}:// assumed for Backend {bname} (port {port}); pass --backend {bname}=URL to choose"
                    ));
                    Ok(format!("{scheme}://{host}:{port}{path}"))
                }
                None => Err(ImportError::Manifest(format!(
                    "{at}: Backend {bname:?} is not in this file (or has no fqdn/ip endpoint): pass --backend {bname}=URL"
                ))),
            };
        }
        if kind_ != "Service" {
            return Err(ImportError::Manifest(format!(
                "{at}: kind {kind_} has no address: pass --backend {bname}=URL"
            )));
        }
        let port = b["port"].as_u64().ok_or_else(|| {
            ImportError::Manifest(format!(
                "{at}.port is required for a Service (or pass --backend {bname}=URL)"
            ))
        })?;
        let ns = b["namespace"].as_str().unwrap_or(ns);
        Ok(format!("http://{bname}.{ns}.svc.cluster.local:{port}{path}"))
    }

    /// `securityPolicy.apiKey` -> a security scheme (id returned) whose credential is read from
    /// an environment variable named after the Secret (or the backend, for an inline key).
    fn api_key_scheme(&mut self, key: &Value, bname: &str, at: &str) -> String {
        let id = format!("{bname}-api-key");
        let var = match key["secretRef"]["name"].as_str() {
            Some(secret) => {
                let var = env_name(secret);
                self.warnings.push(format!(
                    "{at}: the API key is read from ${{{var}}}: set it to key `apiKey` of Secret {secret}"
                ));
                var
            }
            None => {
                let var = format!("{}_API_KEY", env_name(bname));
                self.warnings.push(format!("{at}: the inline API key is not copied: set ${{{var}}} to it"));
                var
            }
        };
        let credential = format!("${{{var}}}");
        let scheme = match (key["header"].as_str(), key["queryParam"].as_str()) {
            (Some(h), _) if !h.eq_ignore_ascii_case("authorization") => {
                json!({ "id": id, "type": "apiKey", "in": "header", "name": h, "defaultCredential": credential })
            }
            (None, Some(q)) => {
                json!({ "id": id, "type": "apiKey", "in": "query", "name": q, "defaultCredential": credential })
            }
            // Envoy AI Gateway sends `Authorization: Bearer <key>`.
            _ => json!({ "id": id, "type": "http", "scheme": "bearer", "defaultCredential": credential }),
        };
        self.schemes.push(scheme);
        id
    }
}

/// A server or provider name from a Kubernetes name (already `[a-z0-9.-]`).
fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') { c } else { '-' })
        .collect();
    if s.is_empty() {
        "mcproute".into()
    } else {
        s
    }
}

/// `ledger-api-key` -> `LEDGER_API_KEY`.
fn env_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect()
}

/// A Gateway API duration (`300s`, `5m`, `1h30m`, `500ms`) in whole seconds.
fn duration_seconds(d: &str) -> Option<u64> {
    let mut total_ms: u64 = 0;
    let mut rest = d.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit_ms, len) = if rest.starts_with("ms") {
            (1, 2)
        } else if rest.starts_with('h') {
            (3_600_000, 1)
        } else if rest.starts_with('m') {
            (60_000, 1)
        } else if rest.starts_with('s') {
            (1_000, 1)
        } else {
            return None;
        };
        total_ms = total_ms.checked_add(n.checked_mul(unit_ms)?)?;
        rest = &rest[len..];
    }
    Some(total_ms.div_ceil(1000))
}

#[cfg(test)]
mod tests;
