//! Who is calling, once authenticated: the principal every later phase reads.

use serde_json::{Map, Value};

/// How the principal was authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    /// Nobody (`mode: none`, or proxy mode with `requireUser: false` and no user).
    Anonymous,
    /// A verified JWT.
    Jwt,
    /// An API key (subject = key id).
    ApiKey,
    /// A basic user (subject = user name).
    Basic,
    /// A user named by a trusted proxy.
    Proxy,
    /// A verified TLS client certificate (subject = the configured name from it).
    Mtls,
}

/// Who is calling.
#[derive(Clone, Debug)]
pub struct Principal {
    /// How.
    pub kind: PrincipalKind,
    /// What a session is bound to: kind and subject (and issuer for JWTs); empty for anonymous.
    pub id: Box<str>,
    /// `sub` (or `client_id`/`azp`), key id, user name; empty for anonymous.
    pub subject: Box<str>,
    /// Whether `subject` is the JWT's `sub` claim (rate limits keyed by `sub`).
    pub subject_is_sub: bool,
    /// Granted scopes (JWT `scope`/`scp`), sorted; none for the other modes.
    pub scopes: Vec<Box<str>>,
    /// Verified JWT claims (empty for the other modes).
    pub claims: Map<String, Value>,
    /// `claimToHeaders` values for backend requests: (lower-case name, value).
    pub headers: Vec<(Box<str>, Box<str>)>,
}

impl Principal {
    /// Nobody.
    pub fn anonymous() -> Principal {
        Principal {
            kind: PrincipalKind::Anonymous,
            id: "".into(),
            subject: "".into(),
            subject_is_sub: false,
            scopes: Vec::new(),
            claims: Map::new(),
            headers: Vec::new(),
        }
    }

    /// A principal with a subject and nothing else (API key, basic, proxy).
    pub fn user(kind: PrincipalKind, subject: &str) -> Principal {
        let tag = match kind {
            PrincipalKind::Anonymous => "",
            PrincipalKind::Jwt => "jwt",
            PrincipalKind::ApiKey => "key",
            PrincipalKind::Basic => "basic",
            PrincipalKind::Proxy => "proxy",
            PrincipalKind::Mtls => "mtls",
        };
        Principal {
            kind,
            id: format!("{tag} {subject}").into(),
            subject: subject.into(),
            ..Principal::anonymous()
        }
    }
}
