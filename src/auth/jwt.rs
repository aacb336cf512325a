//! Compact JWS access tokens (RFC 7515, RFC 7519, RFC 8725 best practices), verified with ring.
//!
//! The order is fixed and every step is bounded by the token's size (16 KiB at most):
//! shape (exactly three base64url segments; JWE, JWS JSON and anything else refused) -> strict
//! base64url -> strict JSON header (no duplicates, bounded depth) -> header rules (`alg` from the
//! provider's allow-list, never `none`; `crit` and `b64` refused; `jwk`/`jku`/`x5u`/`x5c` never
//! consulted) -> strict JSON claims -> provider by exact `iss` -> key by `kid` (exactly one; an
//! unknown kid asks for a JWKS refetch and fails) or, without `kid`, every key of the alg's type
//! -> signature -> `exp`/`nbf`/`iat` with clock skew -> `aud`.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::auth::jwk::Alg;
use crate::auth::jwks::KeySource;
use crate::auth::principal::{Principal, PrincipalKind};
use crate::auth::strict;

/// Largest bearer token accepted.
pub const MAX_TOKEN: usize = 16 * 1024;
/// Deepest nesting accepted in the header or claims.
const MAX_DEPTH: u32 = 16;

/// One trusted issuer (`authentication.jwt.providers[]`).
#[derive(Debug)]
pub struct Provider {
    /// Name (logs).
    pub name: Box<str>,
    /// Exact `iss`.
    pub issuer: Box<str>,
    /// Accepted `aud` values (one must be present).
    pub audiences: Vec<Box<str>>,
    /// Accepted algorithms.
    pub algorithms: Vec<Alg>,
    /// Clock skew allowed on `exp`, `nbf`, `iat`, in seconds.
    pub skew: u64,
    /// Whether `exp` must be present (default true).
    pub require_exp: bool,
    /// `claimToHeaders`: dotted claim path -> lower-case header name.
    pub claim_to_headers: Vec<(Box<str>, Box<str>)>,
    /// The keys (static, or fetched and hot-swapped).
    pub keys: Arc<KeySource>,
}

/// Why a token was refused. The text goes into `error_description`; it never echoes the token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// Over [`MAX_TOKEN`].
    TooLarge,
    /// Not three dot-separated base64url segments.
    Malformed,
    /// Five segments: an encrypted token.
    Encrypted,
    /// A segment is not strict unpadded base64url.
    Base64,
    /// Header or claims are not one strict JSON object.
    Json,
    /// `alg` missing, `none`, unknown, or not allowed for the issuer.
    Alg,
    /// `crit` or `b64` present.
    Unsupported,
    /// `iss` is missing or not a configured provider.
    Issuer,
    /// `kid` names no key.
    UnknownKid,
    /// The `kid` key does not fit the `alg`.
    KeyMismatch,
    /// The signature is missing or does not verify.
    Signature,
    /// `exp` missing (when required) or not a number.
    NoExpiry,
    /// Past `exp`.
    Expired,
    /// Before `nbf`, or `iat` in the future.
    NotYetValid,
    /// A time claim is not a number.
    BadTime,
    /// No accepted audience.
    Audience,
    /// `sub` is present and not a string (RFC 7519 4.1.2), or the token names no subject at all
    /// (no non-empty `sub`, `client_id` or `azp`).
    Subject,
}

impl Reject {
    /// The `error_description` text.
    pub fn describe(self) -> &'static str {
        match self {
            Reject::TooLarge => "The access token is too large",
            Reject::Malformed => "The access token is not a compact JWS (three base64url segments)",
            Reject::Encrypted => "Encrypted tokens (JWE) are not accepted",
            Reject::Base64 => "The access token is not valid unpadded base64url",
            Reject::Json => "The access token header or claims are not a valid JSON object",
            Reject::Alg => "The token's signing algorithm is not accepted",
            Reject::Unsupported => "The token uses a JWS extension (crit or b64) that is not supported",
            Reject::Issuer => "The token's issuer is not trusted",
            Reject::UnknownKid => "The token's key id is unknown",
            Reject::KeyMismatch => "The token's key does not match its algorithm",
            Reject::Signature => "The token signature is invalid",
            Reject::NoExpiry => "The token has no expiry",
            Reject::Expired => "The access token has expired",
            Reject::NotYetValid => "The access token is not valid yet",
            Reject::BadTime => "The token's time claims are malformed",
            Reject::Audience => "The access token was not issued for this resource",
            Reject::Subject => "The token names no subject: sub must be a non-empty string",
        }
    }
}

/// A verified token.
#[derive(Debug)]
pub struct Verified {
    /// Who it speaks for.
    pub principal: Principal,
    /// Index of the provider that verified it.
    pub provider: usize,
    /// The provider's key epoch at verification (a cached token is re-verified after a change).
    pub epoch: u64,
    /// Unix time after which it is refused (`exp + skew`; `u64::MAX` without `exp`).
    pub deadline: u64,
}

/// Decodes one base64url segment into `stack` when it fits there (a header, a signature and the
/// claims of the usual token all do), else onto the heap. base64-simd's strict decoder refuses
/// padding, foreign characters and non-canonical trailing bits.
fn segment<'b>(s: &[u8], stack: &'b mut [u8]) -> Result<Cow<'b, [u8]>, Reject> {
    let b64 = base64_simd::URL_SAFE_NO_PAD;
    let len = b64.decoded_length(s).map_err(|_| Reject::Base64)?;
    match stack.get_mut(..len) {
        Some(room) => match b64.decode(s, base64_simd::Out::from_slice(room)) {
            Ok(decoded) => Ok(Cow::Borrowed(&*decoded)),
            Err(_) => Err(Reject::Base64),
        },
        None => b64.decode_to_vec(s).map(Cow::Owned).map_err(|_| Reject::Base64),
    }
}

fn object(bytes: &[u8]) -> Result<Map<String, Value>, Reject> {
    match strict::parse(bytes, MAX_DEPTH) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Reject::Json),
    }
}

/// Verifies `token` against `providers` at unix time `now`.
pub fn verify(token: &[u8], providers: &[Provider], now: u64) -> Result<Verified, Reject> {
    if token.len() > MAX_TOKEN {
        return Err(Reject::TooLarge);
    }
    let mut parts = [0usize; 4];
    let mut dots = 0;
    for (i, &b) in token.iter().enumerate() {
        if b == b'.' {
            if dots < 4 {
                parts[dots] = i;
            }
            dots += 1;
        }
    }
    match dots {
        2 => {}
        4 => return Err(Reject::Encrypted),
        _ => return Err(Reject::Malformed),
    }
    let (h64, p64, s64) = (&token[..parts[0]], &token[parts[0] + 1..parts[1]], &token[parts[1] + 1..]);
    if h64.is_empty() || p64.is_empty() {
        return Err(Reject::Malformed);
    }
    if s64.is_empty() {
        return Err(Reject::Signature);
    }

    let (mut head, mut body, mut signature) = ([0u8; 512], [0u8; 2048], [0u8; 1024]);
    let header_bytes = segment(h64, &mut head)?;
    let header = strict::header(&header_bytes, MAX_DEPTH).map_err(|_| Reject::Json)?;
    let alg = match &header.alg {
        Some(Ok(a)) => Alg::parse(a).ok_or(Reject::Alg)?,
        _ => return Err(Reject::Alg),
    };
    if header.extension {
        return Err(Reject::Unsupported);
    }
    let kid = match &header.kid {
        None => None,
        Some(Ok(k)) => Some(&**k),
        Some(Err(())) => return Err(Reject::Json),
    };

    let claims = object(&segment(p64, &mut body)?)?;
    let (index, provider) = match claims.get("iss") {
        Some(Value::String(iss)) => {
            providers.iter().enumerate().find(|(_, p)| *p.issuer == **iss).ok_or(Reject::Issuer)?
        }
        _ => return Err(Reject::Issuer),
    };
    if !provider.algorithms.contains(&alg) {
        return Err(Reject::Alg);
    }

    let sig = segment(s64, &mut signature)?;
    let signed = &token[..parts[1]];
    let (set, epoch) = provider.keys.load();
    let ok = match kid {
        Some(kid) => {
            let Some(key) = set.keys.iter().find(|k| k.kid.as_deref() == Some(kid)) else {
                provider.keys.request_refetch();
                return Err(Reject::UnknownKid);
            };
            if !key.accepts(alg) {
                return Err(Reject::KeyMismatch);
            }
            key.material.verify(alg, signed, &sig)
        }
        None => set.keys.iter().filter(|k| k.accepts(alg)).any(|k| k.material.verify(alg, signed, &sig)),
    };
    if !ok {
        return Err(Reject::Signature);
    }

    let skew = provider.skew;
    let time = |name: &str| -> Result<Option<u64>, Reject> {
        match claims.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(t) => Ok(Some(t)),
                // NumericDate may carry a fraction; negative or absurd values are malformed.
                None => match n.as_f64() {
                    Some(f) if (0.0..1e15).contains(&f) => Ok(Some(f as u64)),
                    _ => Err(Reject::BadTime),
                },
            },
            Some(_) => Err(Reject::BadTime),
        }
    };
    let deadline = match time("exp")? {
        // RFC 7519 4.1.4: the current time MUST be before exp.
        Some(exp) => {
            let deadline = exp.saturating_add(skew);
            if now >= deadline {
                return Err(Reject::Expired);
            }
            deadline
        }
        None if provider.require_exp => return Err(Reject::NoExpiry),
        None => u64::MAX,
    };
    if time("nbf")?.is_some_and(|nbf| now.saturating_add(skew) < nbf) {
        return Err(Reject::NotYetValid);
    }
    if time("iat")?.is_some_and(|iat| iat > now.saturating_add(skew)) {
        return Err(Reject::NotYetValid);
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(a)) => provider.audiences.iter().any(|x| **x == **a),
        Some(Value::Array(list)) => {
            list.iter().any(|a| a.as_str().is_some_and(|a| provider.audiences.iter().any(|x| &**x == a)))
        }
        _ => false,
    };
    if !audience_ok {
        return Err(Reject::Audience);
    }
    // RFC 7519 4.1.2: `sub` is a string. Another type is refused rather than skipped, so a
    // token cannot steer the subject to `client_id` or `azp` by making `sub` a number.
    if claims.get("sub").is_some_and(|s| !s.is_string()) {
        return Err(Reject::Subject);
    }

    let principal = principal(provider, claims);
    // A token that names nobody would share its principal (sessions, gateway-owned backend
    // sessions, `request.auth.subject`) with every other such token.
    if principal.subject.is_empty() {
        return Err(Reject::Subject);
    }
    Ok(Verified { principal, provider: index, epoch, deadline })
}

/// Builds the principal of verified `claims`.
fn principal(provider: &Provider, claims: Map<String, Value>) -> Principal {
    // The subject: `sub`, else the client of a client-credentials token.
    let subject = ["sub", "client_id", "azp"]
        .iter()
        .find_map(|m| claims.get(*m).and_then(Value::as_str))
        .unwrap_or("")
        .to_string();
    let subject_is_sub = claims.get("sub").and_then(Value::as_str).is_some();
    let mut scopes: Vec<Box<str>> = Vec::new();
    match claims.get("scope") {
        Some(Value::String(s)) => scopes.extend(s.split(' ').filter(|s| !s.is_empty()).map(Box::from)),
        Some(Value::Array(a)) => scopes.extend(a.iter().filter_map(Value::as_str).map(Box::from)),
        _ => {}
    }
    match claims.get("scp") {
        Some(Value::String(s)) => scopes.extend(s.split(' ').filter(|s| !s.is_empty()).map(Box::from)),
        Some(Value::Array(a)) => scopes.extend(a.iter().filter_map(Value::as_str).map(Box::from)),
        _ => {}
    }
    scopes.sort_unstable();
    scopes.dedup();
    let mut headers = Vec::new();
    for (path, header) in &provider.claim_to_headers {
        if let Some(value) = claim_at(&claims, path).and_then(header_value) {
            headers.push((header.clone(), value.into_boxed_str()));
        }
    }
    // The session binding key: issuer and subject together name one identity.
    // Written at its exact size: one allocation, kept as is by the `Box<str>`.
    let mut id = String::with_capacity(5 + provider.issuer.len() + subject.len());
    for part in ["jwt ", &provider.issuer, " ", &subject] {
        id.push_str(part);
    }
    Principal {
        kind: PrincipalKind::Jwt,
        id: id.into(),
        subject: subject.into(),
        subject_is_sub,
        scopes,
        claims,
        headers,
    }
}

/// The claim at a dotted path (`org.id`): each part names a member of the object before it. A
/// top-level member whose name itself is `org.id` is not found (a token cannot stand in for a
/// nested claim with a flat one). A path that is a URL (`https://corp.example/roles`: the
/// namespaced claims OpenID Connect providers issue) names one top-level claim, dots and all.
pub fn claim_at<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if path.contains("://") {
        return claims.get(path);
    }
    let mut parts = path.split('.');
    let mut cur = claims.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

/// A claim as a header value: strings as they are, numbers and booleans as JSON, string arrays
/// joined with commas. Anything with a control character is not sent (no header injection,
/// whatever the issuer signed).
fn header_value(v: &Value) -> Option<String> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(a) => {
            let items: Option<Vec<&str>> = a.iter().map(Value::as_str).collect();
            items?.join(",")
        }
        _ => return None,
    };
    (!s.is_empty() && s.len() <= 4096 && !s.bytes().any(|b| b < 0x20 || b == 0x7f)).then_some(s)
}
