//! The gateway as an OAuth 2.0 client of a token service (STS): the token request of the client
//! credentials grant (RFC 6749 4.4) and of token exchange (RFC 8693), and reading the answer.
//! Compiled once at load ([`Sts`]: target, the constant part of the form, client
//! authentication); a request adds only the subject token. The worker sends it and caches the
//! token (`proxy::backends::tokens`).

use std::time::Duration;

use crate::upstream::target::Target;

/// RFC 8693 grant type.
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// RFC 8693 3: the default subject token type.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// One `type: oauth2` scheme, compiled.
pub struct Sts {
    /// The scheme's id (errors, metrics).
    pub scheme: Box<str>,
    /// What the worker's token cache keys on: the scheme and everything that shapes its token
    /// (token URL, client, audience, resource, scopes), so a reload that keeps them keeps the
    /// cached tokens and one that changes them does not.
    pub cache_key: Box<str>,
    /// Token exchange: the caller's bearer token is the subject.
    pub exchange: bool,
    /// The token endpoint.
    pub target: Target,
    /// The form fields every request carries (grant, scope, audience, resource, subject token
    /// type, and the client's credentials for `client_secret_post`), encoded, without a leading
    /// `&`.
    form: String,
    /// `Basic ...` for `client_secret_basic`.
    authorization: Option<String>,
}

impl std::fmt::Debug for Sts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sts({}, exchange: {}, <redacted>)", self.scheme, self.exchange)
    }
}

/// How the client authenticates to the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// HTTP Basic with the url-encoded id and secret (RFC 6749 2.3.1).
    Basic,
    /// `client_id` and `client_secret` in the form.
    Post,
}

/// What a scheme asks for (the `flows` entry, validated).
pub struct Flow<'a> {
    /// The scheme's id.
    pub scheme: &'a str,
    /// Token exchange (else client credentials).
    pub exchange: bool,
    /// The token endpoint URL as written (for the cache key).
    pub token_url: &'a str,
    /// The client.
    pub client_id: &'a str,
    /// Its secret.
    pub client_secret: &'a str,
    /// How it authenticates.
    pub auth: AuthMethod,
    /// `scope` (space-joined).
    pub scopes: &'a [String],
    /// `audience`.
    pub audience: Option<&'a str>,
    /// `resource` (RFC 8707).
    pub resource: Option<&'a str>,
    /// `subject_token_type` (exchange).
    pub subject_token_type: &'a str,
}

impl Sts {
    /// Compiles `flow` against its resolved `target`.
    pub fn new(flow: &Flow<'_>, target: Target) -> Sts {
        let mut form = String::new();
        let mut field = |k: &str, v: &str| {
            if !form.is_empty() {
                form.push('&');
            }
            form.push_str(k);
            form.push('=');
            form_encode(&mut form, v);
        };
        field("grant_type", if flow.exchange { TOKEN_EXCHANGE } else { "client_credentials" });
        if flow.exchange {
            field("subject_token_type", flow.subject_token_type);
            field("requested_token_type", ACCESS_TOKEN_TYPE);
        }
        if !flow.scopes.is_empty() {
            field("scope", &flow.scopes.join(" "));
        }
        if let Some(a) = flow.audience {
            field("audience", a);
        }
        if let Some(r) = flow.resource {
            field("resource", r);
        }
        let authorization = match flow.auth {
            AuthMethod::Post => {
                field("client_id", flow.client_id);
                field("client_secret", flow.client_secret);
                None
            }
            AuthMethod::Basic => {
                let mut pair = String::new();
                form_encode(&mut pair, flow.client_id);
                pair.push(':');
                form_encode(&mut pair, flow.client_secret);
                Some(format!("Basic {}", base64_simd::STANDARD.encode_to_string(pair.as_bytes())))
            }
        };
        let cache_key = format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            flow.scheme,
            flow.token_url,
            flow.client_id,
            flow.audience.unwrap_or(""),
            flow.resource.unwrap_or(""),
            flow.scopes.join(" ")
        );
        Sts {
            scheme: flow.scheme.into(),
            cache_key: cache_key.into(),
            exchange: flow.exchange,
            target,
            form,
            authorization,
        }
    }

    /// The complete HTTP/1.1 token request (`subject`: the caller's token, for an exchange).
    pub fn request(&self, subject: Option<&[u8]>) -> Vec<u8> {
        let mut body = String::with_capacity(self.form.len() + subject.map_or(0, <[u8]>::len) + 32);
        body.push_str(&self.form);
        if let Some(s) = subject {
            body.push_str("&subject_token=");
            form_encode(&mut body, &String::from_utf8_lossy(s));
        }
        let mut r = Vec::with_capacity(256 + body.len());
        r.extend_from_slice(b"POST ");
        r.extend_from_slice(self.target.path.as_bytes());
        r.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        r.extend_from_slice(self.target.authority.as_bytes());
        r.extend_from_slice(
            b"\r\naccept: application/json\r\ncontent-type: application/x-www-form-urlencoded\r\n",
        );
        if let Some(a) = &self.authorization {
            r.extend_from_slice(b"authorization: ");
            r.extend_from_slice(a.as_bytes());
            r.extend_from_slice(b"\r\n");
        }
        r.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
        r.extend_from_slice(body.as_bytes());
        r
    }
}

/// A token the STS issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    /// `access_token`.
    pub token: String,
    /// `expires_in`, when the STS said.
    pub lifetime: Option<Duration>,
}

/// Why no token came (never holding a secret or a token).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StsError {
    /// The STS could not be reached, timed out or broke the connection.
    #[error("token service unreachable ({0})")]
    Unreachable(String),
    /// The STS refused: its `error` code (RFC 6749 5.2), or the HTTP status without one.
    #[error("token service refused: {0}")]
    Refused(String),
    /// An answer that is not a token response.
    #[error("token service answered something that is not a token response: {0}")]
    Malformed(&'static str),
    /// Token exchange for a caller without a bearer token.
    #[error("no bearer token to exchange")]
    NoSubject,
}

impl StsError {
    /// The metric label of the outcome.
    pub fn outcome(&self) -> &'static str {
        match self {
            StsError::Unreachable(_) => "unreachable",
            StsError::Refused(_) => "refused",
            StsError::Malformed(_) => "malformed",
            StsError::NoSubject => "no_subject",
        }
    }
}

/// Reads a token response (`status`, JSON `body`). The STS's `error_description` is returned
/// for a debug log, never for the client.
pub fn parse(status: u16, body: &[u8]) -> Result<Issued, (StsError, Option<String>)> {
    let v: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) if status != 200 => return Err((StsError::Refused(format!("HTTP {status}")), None)),
        Err(_) => return Err((StsError::Malformed("not JSON"), None)),
    };
    if status != 200 {
        // RFC 6749 5.2: `error` is an ASCII code; anything else is named by the status only.
        let code = v["error"]
            .as_str()
            .filter(|c| !c.is_empty() && c.len() <= 64 && c.bytes().all(|b| b.is_ascii_graphic()))
            .map_or_else(|| format!("HTTP {status}"), str::to_string);
        let description = v["error_description"].as_str().map(|d| d.chars().take(256).collect());
        return Err((StsError::Refused(code), description));
    }
    let token = v["access_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or((StsError::Malformed("no access_token"), None))?;
    if token.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
        return Err((StsError::Malformed("access_token is not a printable token"), None));
    }
    // RFC 8693 2.2.1: token_type "N_A" for tokens that are not access tokens of a kind; a
    // bearer token is what the backend receives.
    match v["token_type"].as_str().map(str::to_ascii_lowercase).as_deref() {
        Some("bearer" | "n_a") | None => {}
        Some(_) => return Err((StsError::Malformed("token_type is not Bearer"), None)),
    }
    let lifetime =
        v["expires_in"].as_u64().or_else(|| v["expires_in"].as_str()?.parse().ok()).map(Duration::from_secs);
    Ok(Issued { token: token.to_string(), lifetime })
}

/// `application/x-www-form-urlencoded` (RFC 6749 appendix B: also for Basic client credentials).
fn form_encode(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sts(exchange: bool, auth: AuthMethod) -> Sts {
        let scopes = vec!["inventory.read".to_string(), "inventory.write".to_string()];
        let flow = Flow {
            scheme: "s",
            exchange,
            token_url: "http://127.0.0.1:9/token",
            client_id: "portcullis gw",
            client_secret: "s3cr&t:x",
            auth,
            scopes: &scopes,
            audience: Some("https://inventory.example.com"),
            resource: exchange.then_some("https://inventory.example.com/mcp"),
            subject_token_type: ACCESS_TOKEN_TYPE,
        };
        let target = Target::parse("http://127.0.0.1:9/token", || Err("no tls".into())).unwrap();
        Sts::new(&flow, target)
    }

    fn text(r: &[u8]) -> String {
        String::from_utf8(r.to_vec()).unwrap()
    }

    #[test]
    fn client_credentials_request() {
        let r = text(&sts(false, AuthMethod::Basic).request(None));
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("POST /token HTTP/1.1\r\nhost: 127.0.0.1:9\r\n"), "{head}");
        assert!(head.contains("content-type: application/x-www-form-urlencoded"), "{head}");
        // RFC 6749 2.3.1: id and secret form-encoded, then base64.
        let basic = base64_simd::STANDARD.encode_to_string("portcullis+gw:s3cr%26t%3Ax");
        assert!(head.contains(&format!("authorization: Basic {basic}")), "{head}");
        assert_eq!(
            body,
            "grant_type=client_credentials&scope=inventory.read+inventory.write&audience=https%3A%2F%2Finventory.example.com"
        );
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(!format!("{:?}", sts(false, AuthMethod::Basic)).contains("s3cr"), "Debug redacts");
    }

    #[test]
    fn token_exchange_request_with_post_authentication() {
        let r = text(&sts(true, AuthMethod::Post).request(Some(b"eyJ.a+b/c")));
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert!(!head.contains("authorization"), "{head}");
        let fields: Vec<&str> = body.split('&').collect();
        assert_eq!(
            fields,
            [
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange",
                "subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token",
                "requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token",
                "scope=inventory.read+inventory.write",
                "audience=https%3A%2F%2Finventory.example.com",
                "resource=https%3A%2F%2Finventory.example.com%2Fmcp",
                "client_id=portcullis+gw",
                "client_secret=s3cr%26t%3Ax",
                "subject_token=eyJ.a%2Bb%2Fc",
            ]
        );
    }

    #[test]
    fn answers() {
        let ok = parse(200, br#"{"access_token":"tok-1","token_type":"Bearer","expires_in":300}"#).unwrap();
        assert_eq!(ok, Issued { token: "tok-1".into(), lifetime: Some(Duration::from_secs(300)) });
        let na = parse(
            200,
            br#"{"access_token":"tok-2","token_type":"N_A","issued_token_type":"x","expires_in":"60"}"#,
        );
        assert_eq!(na.unwrap().lifetime, Some(Duration::from_secs(60)));
        assert_eq!(parse(200, br#"{"access_token":"t"}"#).unwrap().lifetime, None);
        let refused =
            parse(400, br#"{"error":"invalid_grant","error_description":"subject expired"}"#).unwrap_err();
        assert_eq!(refused, (StsError::Refused("invalid_grant".into()), Some("subject expired".into())));
        assert_eq!(parse(503, b"down").unwrap_err().0, StsError::Refused("HTTP 503".into()));
        assert_eq!(
            parse(400, br#"{"error":"bad code with spaces"}"#).unwrap_err().0,
            StsError::Refused("HTTP 400".into())
        );
        assert_eq!(parse(200, b"<html>").unwrap_err().0, StsError::Malformed("not JSON"));
        assert_eq!(
            parse(200, br#"{"token_type":"Bearer"}"#).unwrap_err().0,
            StsError::Malformed("no access_token")
        );
        assert!(matches!(parse(200, br#"{"access_token":"a b"}"#).unwrap_err().0, StsError::Malformed(_)));
        assert!(matches!(
            parse(200, br#"{"access_token":"t","token_type":"mac"}"#).unwrap_err().0,
            StsError::Malformed(_)
        ));
    }
}
