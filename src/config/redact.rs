//! The effective configuration for admin `/config`, with every secret replaced. Redaction is by
//! field name (secrets, passwords, credentials, key values, header values that may carry tokens,
//! private JWK members), by origin (any value filled from an environment variable whose name
//! says it is a secret: `${API_KEY}`, `${GITHUB_TOKEN}`), and, under the free-form
//! `server.config` where Higress users keep API keys, by a key name that says so (`apiKey`,
//! `token`, `clientSecret`, ...). URLs keep everything but their query string, where API keys
//! travel (`?api_key=${KEY}`).

use yaml_serde::Value;

/// Field names whose values are always secret.
const SECRET_FIELDS: [&str; 15] = [
    "secret",
    "clientSecret",
    "password",
    "value",
    "defaultCredential",
    "credential",
    "k",
    "d",
    "p",
    "q",
    "dp",
    "dq",
    "qi",
    "token",
    "apiKey",
];

/// Fields holding URLs (or lists of them): their query strings are redacted.
const URL_FIELDS: [&str; 6] = ["url", "uri", "endpoints", "baseUrl", "tokenUrl", "endpoint"];

/// Placeholder for redacted values.
pub const REDACTED: &str = "<redacted>";

/// Whether a key under `server.config` names a secret.
fn secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["key", "secret", "token", "password", "passwd", "credential", "auth", "private", "cookie", "signature"]
        .iter()
        .any(|w| k.contains(w))
}

struct Redaction<'a> {
    /// Paths (as `config::env` writes them) of values filled from secret variables.
    secret_paths: &'a [String],
}

impl Redaction<'_> {
    fn redact(&self, v: &mut Value, path: &str, under_config: bool) {
        if self.secret_paths.iter().any(|p| p == path) {
            blank(v);
            return;
        }
        match v {
            Value::Mapping(m) => {
                for (k, child) in m.iter_mut() {
                    let key = k.as_str().unwrap_or("");
                    let child_path = if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
                    // Header values for the OTLP collector carry its credentials.
                    let otlp_headers = key == "headers" && path.ends_with("otlp");
                    if SECRET_FIELDS.contains(&key) || (under_config && secret_key(key)) || otlp_headers {
                        blank(child);
                    } else if URL_FIELDS.contains(&key) {
                        without_query(child);
                    } else {
                        // `server.config` is free-form: below it, keys decide.
                        let config = under_config || (key == "config" && path.ends_with(".server"));
                        self.redact(child, &child_path, config);
                    }
                }
            }
            Value::Sequence(s) => {
                for (i, c) in s.iter_mut().enumerate() {
                    self.redact(c, &format!("{path}[{i}]"), under_config);
                }
            }
            Value::Tagged(t) => self.redact(&mut t.value, path, under_config),
            _ => {}
        }
    }
}

/// `scheme://host/path?<redacted>` for a URL string (each one, for a list).
fn without_query(v: &mut Value) {
    match v {
        Value::String(s) => {
            if let Some(i) = s.find('?') {
                s.truncate(i + 1);
                s.push_str(REDACTED);
            }
        }
        Value::Sequence(list) => list.iter_mut().for_each(without_query),
        _ => {}
    }
}

/// Every leaf below `v` redacted.
fn blank(v: &mut Value) {
    match v {
        Value::Mapping(m) => m.iter_mut().for_each(|(_, c)| blank(c)),
        Value::Sequence(s) => s.iter_mut().for_each(blank),
        Value::Tagged(t) => blank(&mut t.value),
        Value::Null => {}
        _ => *v = Value::String(REDACTED.into()),
    }
}

/// The config tree (after `${ENV}` substitution) as pretty JSON, secrets redacted;
/// `secret_paths` are the values filled from secret-named variables.
pub fn effective_json(root: &Value, secret_paths: &[String]) -> String {
    let mut v = root.clone();
    Redaction { secret_paths }.redact(&mut v, "", false);
    serde_json::to_string_pretty(&v)
        .unwrap_or_else(|e| format!("{{\"error\":\"config not representable as JSON: {e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_survive() {
        let v: Value = yaml_serde::from_str(
            r#"
sessions: {keys: [{id: k1, secret: "s3cr3t-session-key-material-0000000"}]}
servers:
  - name: a
    server:
      config: {apiKey: "cfg-secret", nested: {deep: "cfg-deep"}, list: ["cfg-item"]}
      securitySchemes: [{id: b, type: http, scheme: bearer, defaultCredential: "bearer-secret"}]
    tools:
      - name: t
        requestTemplate: {headers: [{key: Authorization, value: "Bearer hdr-secret"}]}
"#,
        )
        .unwrap();
        let out = effective_json(&v, &["servers[0].server.config.list[0]".into()]);
        for secret in ["s3cr3t", "cfg-secret", "cfg-item", "bearer-secret", "hdr-secret"] {
            assert!(!out.contains(secret), "{secret} leaked: {out}");
        }
        assert!(
            out.contains("cfg-deep"),
            "a server.config value whose key says nothing secret is shown: {out}"
        );
        assert!(out.contains("\"k1\""), "ids stay visible");
        assert!(out.contains("Authorization"), "header names stay visible");
    }

    #[test]
    fn url_query_strings_are_redacted() {
        let v: Value = yaml_serde::from_str(
            r#"
servers:
  - name: a
    backends:
      - {name: b, url: "https://mcp.test/mcp?api_key=q-secret-1"}
      - {name: c, endpoints: ["http://a.test/mcp?key=q-secret-2", "http://b.test/mcp"]}
    tools:
      - {name: t, requestTemplate: {url: "https://api.test/v1/x?key=q-secret-3&units=m"}}
"#,
        )
        .unwrap();
        let out = effective_json(&v, &[]);
        for secret in ["q-secret-1", "q-secret-2", "q-secret-3"] {
            assert!(!out.contains(secret), "{secret} leaked: {out}");
        }
        assert!(out.contains("https://mcp.test/mcp?<redacted>"), "{out}");
        assert!(out.contains("http://b.test/mcp\""), "a URL without a query stays whole: {out}");
    }
}
