//! Applying a Higress-style security scheme to a backend request: `http` bearer/basic as an
//! `Authorization` header, `apiKey` as a header or a query parameter. Compiled once at load into
//! the exact header line or query pair, so applying it per request is a copy.

/// Where and how a credential goes on a backend request.
#[derive(Clone, PartialEq, Eq)]
pub enum BackendCredential {
    /// A complete header line value: `name: value`.
    Header {
        /// Header name.
        name: Box<str>,
        /// Header value (secret).
        value: Box<str>,
    },
    /// A query parameter, already percent-encoded: `name=value`.
    Query {
        /// Encoded `name=value` pair (secret).
        pair: Box<str>,
    },
}

impl std::fmt::Debug for BackendCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendCredential::Header { name, .. } => write!(f, "Header({name}: <redacted>)"),
            BackendCredential::Query { .. } => f.write_str("Query(<redacted>)"),
        }
    }
}

impl BackendCredential {
    /// The secret parts of this credential as sent: the whole header value or query pair, and
    /// the part after the scheme word (`Bearer x` -> `x`) or the `=` (`k=x` -> `x`).
    fn secrets(&self) -> [&[u8]; 2] {
        match self {
            BackendCredential::Header { value, .. } => {
                let after = value.split_once(' ').map_or(&**value, |(_, v)| v.trim_start());
                [value.as_bytes(), after.as_bytes()]
            }
            BackendCredential::Query { pair } => {
                [pair.as_bytes(), pair.split_once('=').map_or(&**pair, |(_, v)| v).as_bytes()]
            }
        }
    }

    /// Replaces every exact occurrence of this credential (see [`Self::secrets`]) in `body` with
    /// `<redacted>`: a backend's error body that echoes what the gateway sent it must not hand
    /// the gateway's credential to the client. Parts shorter than 4 bytes are left alone (they
    /// would match ordinary text; a credential that short protects nothing).
    pub fn redact_from(&self, body: &mut Vec<u8>) {
        for secret in self.secrets() {
            if secret.len() < 4 {
                continue;
            }
            replace_all(body, secret);
            // JSON may write `/` as `\/` (base64 and tokens carry slashes).
            if secret.contains(&b'/') {
                let escaped: Vec<u8> = secret
                    .iter()
                    .flat_map(|&b| if b == b'/' { vec![b'\\', b'/'] } else { vec![b] })
                    .collect();
                replace_all(body, &escaped);
            }
        }
    }
}

/// Replaces every occurrence of `secret` in `body` with `<redacted>` (a search only when absent).
fn replace_all(body: &mut Vec<u8>, secret: &[u8]) {
    if memchr::memmem::find(body, secret).is_none() {
        return;
    }
    let mut out = Vec::with_capacity(body.len());
    let mut rest = &body[..];
    while let Some(at) = memchr::memmem::find(rest, secret) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(b"<redacted>");
        rest = &rest[at + secret.len()..];
    }
    out.extend_from_slice(rest);
    *body = out;
}

impl BackendCredential {}

/// The kinds of scheme docs/config.md allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemeKind {
    /// `type: http, scheme: bearer`
    Bearer,
    /// `type: http, scheme: basic`
    Basic,
    /// `type: apiKey, in: header`
    ApiKeyHeader,
    /// `type: apiKey, in: query`
    ApiKeyQuery,
}

impl BackendCredential {
    /// Builds the credential for `kind` (`name` is the apiKey header or parameter name), as
    /// Higress does: `Bearer x`; `Basic` with a `user:pass` credential base64-encoded (one
    /// without a colon is taken as encoded); a credential that already carries its scheme word
    /// is kept as written; an api key as it is.
    pub fn new(kind: SchemeKind, name: &str, credential: &str) -> BackendCredential {
        // `get`: a credential with a multi-byte character at the cut is simply not a match.
        let has = |word: &str| {
            credential.len() > word.len()
                && credential.get(..word.len()).is_some_and(|p| p.eq_ignore_ascii_case(word))
        };
        let authorization =
            |value: String| BackendCredential::Header { name: "authorization".into(), value: value.into() };
        match kind {
            SchemeKind::Bearer if has("bearer ") => authorization(credential.into()),
            SchemeKind::Bearer => authorization(format!("Bearer {credential}")),
            SchemeKind::Basic if has("basic ") => authorization(credential.into()),
            SchemeKind::Basic if credential.contains(':') => authorization(format!(
                "Basic {}",
                base64_simd::STANDARD.encode_to_string(credential.as_bytes())
            )),
            SchemeKind::Basic => authorization(format!("Basic {credential}")),
            SchemeKind::ApiKeyHeader => {
                BackendCredential::Header { name: name.to_ascii_lowercase().into(), value: credential.into() }
            }
            SchemeKind::ApiKeyQuery => {
                BackendCredential::Query { pair: format!("{}={}", encode(name), encode(credential)).into() }
            }
        }
    }

    /// The header name this credential sets, if it is a header (the client's copy of it is
    /// never forwarded).
    pub fn header_name(&self) -> Option<&str> {
        match self {
            BackendCredential::Header { name, .. } => Some(name),
            BackendCredential::Query { .. } => None,
        }
    }
}

/// Percent-encodes everything outside RFC 3986 unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    crate::http::percent::encode(&mut out, s.as_bytes());
    // Percent-encoded output is ASCII.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(
            BackendCredential::new(SchemeKind::Bearer, "", "t0k"),
            BackendCredential::Header { name: "authorization".into(), value: "Bearer t0k".into() }
        );
        // Higress seed: "service_user:p@$$wOrd" is encoded as user:pass.
        let b = BackendCredential::new(SchemeKind::Basic, "", "service_user:p@$$wOrd");
        assert_eq!(
            b,
            BackendCredential::Header {
                name: "authorization".into(),
                value: format!("Basic {}", base64_simd::STANDARD.encode_to_string("service_user:p@$$wOrd"))
                    .into()
            }
        );
        assert_eq!(
            BackendCredential::new(SchemeKind::ApiKeyQuery, "key", "a b&c"),
            BackendCredential::Query { pair: "key=a%20b%26c".into() }
        );
        let h = BackendCredential::new(SchemeKind::ApiKeyHeader, "X-Internal-ApiKey", "s");
        assert_eq!(h.header_name(), Some("x-internal-apikey"));
        assert_eq!(format!("{h:?}"), "Header(x-internal-apikey: <redacted>)", "Debug redacts");
    }

    #[test]
    fn a_multibyte_character_where_the_scheme_word_would_end_is_no_match() {
        // "abcdef" + "é": byte 7 falls inside the "é"; slicing there used to panic.
        assert_eq!(
            BackendCredential::new(SchemeKind::Bearer, "", "abcdefé-token"),
            BackendCredential::Header { name: "authorization".into(), value: "Bearer abcdefé-token".into() }
        );
    }
}
