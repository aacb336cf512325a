//! Backend credentials per principal (`securitySchemes[].credentials`): a file maps a key taken
//! from the caller (`sub`, its subject, or a claim) to the credential the gateway presents to the
//! backend for that caller. Read at load (the file is watched like the configuration), compiled
//! into the same header or query form as a static credential, so choosing one per request is a
//! hash lookup. A principal's credential is only ever chosen by that principal's own key: there
//! is no state shared between requests.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::scheme::{BackendCredential, SchemeKind};
use super::Principal;

/// What picks a principal's entry in the file (`credentials.key`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrincipalKey {
    /// A JWT's `sub` claim; for the other modes, the principal's subject.
    Sub,
    /// The principal's subject (`sub`, or `client_id`/`azp` for a token without one; the key id,
    /// user name, proxy user or certificate name of the other modes).
    Subject,
    /// A claim at a dotted path (`claim:org.id`), when it is a string.
    Claim(Box<str>),
}

impl PrincipalKey {
    /// Parses `sub`, `subject` or `claim:<dotted path>`.
    pub fn parse(s: &str) -> Option<PrincipalKey> {
        match s {
            "sub" => Some(PrincipalKey::Sub),
            "subject" => Some(PrincipalKey::Subject),
            _ => s.strip_prefix("claim:").filter(|p| !p.is_empty()).map(|p| PrincipalKey::Claim(p.into())),
        }
    }

    /// The principal's key, if it has one (never for anonymous callers).
    pub fn of<'p>(&self, p: &'p Principal) -> Option<&'p str> {
        let subject = Some(p.subject()).filter(|s| !s.is_empty());
        match self {
            PrincipalKey::Sub if p.kind == super::PrincipalKind::Jwt => subject.filter(|_| p.subject_is_sub),
            PrincipalKey::Sub | PrincipalKey::Subject => subject,
            PrincipalKey::Claim(path) => p.claims().at_path(path)?.as_str().filter(|s| !s.is_empty()),
        }
    }
}

/// One scheme's credentials by principal.
pub struct PerPrincipal {
    /// The scheme's id (for errors and logs).
    pub scheme: Box<str>,
    /// What picks an entry.
    pub key: PrincipalKey,
    /// Key -> credential, compiled (one file's map, shared by every use of the scheme).
    pub by_key: Arc<FxHashMap<Box<str>, BackendCredential>>,
    /// `fallback: default`: the scheme's configured credential for principals without an entry;
    /// `None` (`fallback: deny`) refuses them.
    pub fallback: Option<BackendCredential>,
}

impl std::fmt::Debug for PerPrincipal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PerPrincipal({}, {} entries, <redacted>)", self.scheme, self.by_key.len())
    }
}

/// The credential a backend (or REST tool) is called with.
#[derive(Clone, Debug)]
pub enum Credential {
    /// The same for every caller.
    Static(BackendCredential),
    /// Chosen by the caller.
    PerPrincipal(Arc<PerPrincipal>),
    /// A token from a token service (`type: oauth2`), fetched and cached by the worker.
    Sts(Arc<crate::upstream::sts::Sts>),
}

/// No credential for this caller under a per-principal scheme (`fallback: deny`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no credential for this caller under scheme {0}")]
pub struct NoCredential(pub Box<str>);

impl Credential {
    /// The credential for `principal` (`None`: a request the gateway makes on its own, such as
    /// recording pins, which only a fallback serves). `Ok(None)` for a token service's token,
    /// which the worker fetches (`proxy::backends::tokens`).
    pub fn for_principal(
        &self,
        principal: Option<&Principal>,
    ) -> Result<Option<&BackendCredential>, NoCredential> {
        match self {
            Credential::Static(c) => Ok(Some(c)),
            Credential::PerPrincipal(pp) => principal
                .and_then(|p| pp.key.of(p))
                .and_then(|k| pp.by_key.get(k))
                .or(pp.fallback.as_ref())
                .map(Some)
                .ok_or_else(|| NoCredential(pp.scheme.clone())),
            Credential::Sts(_) => Ok(None),
        }
    }
}

/// Largest credentials file read.
const MAX_FILE_BYTES: u64 = 16 << 20;

/// Reads a credentials file (YAML or JSON: a map of key -> credential string) and compiles each
/// credential for `kind` (`name`: the apiKey header or parameter). Errors never quote a value.
pub fn read_file(
    path: &str,
    kind: SchemeKind,
    name: &str,
) -> Result<FxHashMap<Box<str>, BackendCredential>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {path}: {e}"))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("{path} is larger than {} MiB", MAX_FILE_BYTES >> 20));
    }
    // JSON is YAML; a `.json` file is read as JSON (its string escapes are JSON's).
    let entries: std::collections::BTreeMap<String, yaml_serde::Value> = if path.ends_with(".json") {
        let m: std::collections::BTreeMap<String, serde_json::Value> =
            serde_json::from_str(&text).map_err(|e| {
                format!("{path}: not a JSON object of key -> credential ({})", position(&e.to_string()))
            })?;
        m.into_iter()
            .map(|(k, v)| {
                (k, v.as_str().map_or(yaml_serde::Value::Null, |s| yaml_serde::Value::String(s.into())))
            })
            .collect()
    } else {
        yaml_serde::from_str(&text).map_err(|e| {
            format!("{path}: not a mapping of key -> credential ({})", position(&e.to_string()))
        })?
    };
    let mut out = FxHashMap::default();
    for (key, value) in entries {
        let Some(v) = value.as_str().filter(|v| !v.is_empty()) else {
            return Err(format!("{path}: the credential of {key:?} must be a non-empty string"));
        };
        if v.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(format!("{path}: the credential of {key:?} holds control characters"));
        }
        out.insert(key.into_boxed_str(), BackendCredential::new(kind, name, v));
    }
    Ok(out)
}

/// Where a parse error is, without the text around it (which may be a credential).
fn position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[i + 1..].to_string(),
        None => "syntax error".to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::auth::PrincipalKind;

    fn jwt(sub: &str, is_sub: bool, claims: serde_json::Value) -> Principal {
        let mut p = Principal::with_claims(PrincipalKind::Jwt, sub, &claims);
        p.subject_is_sub = is_sub;
        p
    }

    #[test]
    fn keys_pick_what_they_name() {
        let alice = jwt("alice", true, serde_json::json!({"org": {"id": "acme"}, "n": 7}));
        let client = jwt("svc-client", false, serde_json::json!({}));
        assert_eq!(PrincipalKey::Sub.of(&alice), Some("alice"));
        assert_eq!(PrincipalKey::Sub.of(&client), None, "a token without sub has no sub key");
        assert_eq!(PrincipalKey::Subject.of(&client), Some("svc-client"));
        assert_eq!(PrincipalKey::parse("claim:org.id").unwrap().of(&alice), Some("acme"));
        assert_eq!(PrincipalKey::parse("claim:n").unwrap().of(&alice), None, "only string claims");
        let key = Principal::user(PrincipalKind::ApiKey, "ci");
        assert_eq!(PrincipalKey::Sub.of(&key), Some("ci"));
        assert_eq!(PrincipalKey::Subject.of(&Principal::anonymous()), None);
        assert_eq!(PrincipalKey::parse("claim:"), None);
        assert_eq!(PrincipalKey::parse("email"), None);
    }

    #[test]
    fn each_principal_gets_its_own_or_the_fallback_or_nothing() {
        let mut by_key = FxHashMap::default();
        by_key.insert("alice".into(), BackendCredential::new(SchemeKind::Bearer, "", "tok-a"));
        by_key.insert("bob".into(), BackendCredential::new(SchemeKind::Bearer, "", "tok-b"));
        let deny = PerPrincipal {
            scheme: "perUser".into(),
            key: PrincipalKey::Sub,
            by_key: Arc::new(by_key),
            fallback: None,
        };
        let c = Credential::PerPrincipal(Arc::new(deny));
        let header = |c: &BackendCredential| match c {
            BackendCredential::Header { value, .. } => value.to_string(),
            BackendCredential::Query { .. } => unreachable!(),
        };
        let alice = jwt("alice", true, serde_json::json!({}));
        let bob = jwt("bob", true, serde_json::json!({}));
        let carol = jwt("carol", true, serde_json::json!({}));
        assert_eq!(header(c.for_principal(Some(&alice)).unwrap().unwrap()), "Bearer tok-a");
        assert_eq!(header(c.for_principal(Some(&bob)).unwrap().unwrap()), "Bearer tok-b");
        assert_eq!(c.for_principal(Some(&carol)).unwrap_err(), NoCredential("perUser".into()));
        assert!(c.for_principal(None).is_err());
        let Credential::PerPrincipal(pp) = c else { unreachable!() };
        let with_default = PerPrincipal {
            scheme: pp.scheme.clone(),
            key: pp.key.clone(),
            by_key: pp.by_key.clone(),
            fallback: Some(BackendCredential::new(SchemeKind::Bearer, "", "tok-default")),
        };
        let c = Credential::PerPrincipal(Arc::new(with_default));
        assert_eq!(header(c.for_principal(Some(&carol)).unwrap().unwrap()), "Bearer tok-default");
        assert_eq!(header(c.for_principal(Some(&alice)).unwrap().unwrap()), "Bearer tok-a");
    }

    #[test]
    fn files_yaml_and_json_and_their_errors_name_no_value() {
        let dir = std::env::temp_dir().join(format!("portcullis-creds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let yaml = dir.join("c.yaml");
        std::fs::write(&yaml, "alice: tok-a\nbob: \"tok-b\"\n").unwrap();
        let m = read_file(yaml.to_str().unwrap(), SchemeKind::ApiKeyHeader, "X-Key").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m["bob"], BackendCredential::Header { name: "x-key".into(), value: "tok-b".into() });
        let json = dir.join("c.json");
        std::fs::write(&json, r#"{"alice": "tok-\ud83d\udc4d"}"#).unwrap();
        let m = read_file(json.to_str().unwrap(), SchemeKind::ApiKeyQuery, "key").unwrap();
        assert_eq!(m["alice"], BackendCredential::Query { pair: "key=tok-%F0%9F%91%8D".into() });
        std::fs::write(&yaml, "alice: [secret-value-1]\n").unwrap();
        let e = read_file(yaml.to_str().unwrap(), SchemeKind::Bearer, "").unwrap_err();
        assert!(e.contains("\"alice\" must be a non-empty string") && !e.contains("secret-value-1"), "{e}");
        std::fs::write(&json, "{\"alice\": \"secret-value-2\",}").unwrap();
        let e = read_file(json.to_str().unwrap(), SchemeKind::Bearer, "").unwrap_err();
        assert!(e.contains("line 1") && !e.contains("secret-value-2"), "{e}");
        assert!(read_file(dir.join("none.yaml").to_str().unwrap(), SchemeKind::Bearer, "")
            .unwrap_err()
            .contains("cannot read"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
