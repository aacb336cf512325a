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
use std::cell::RefCell;
use std::sync::Arc;

use crate::auth::claims::{Claim, Json, Tape};
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

thread_local! {
    /// Where each core parses the claims of the tokens it verifies (reused: warm, it does not
    /// allocate).
    static TAPE: RefCell<Tape> = RefCell::default();
}

/// Verifies `token` against `providers` at unix time `now`.
pub fn verify(token: &[u8], providers: &[Provider], now: u64) -> Result<Verified, Reject> {
    TAPE.with(|cell| match cell.try_borrow_mut() {
        Ok(mut tape) => verify_with(&mut tape, token, providers, now),
        Err(_) => verify_with(&mut Tape::default(), token, providers, now),
    })
}

fn verify_with(tape: &mut Tape, token: &[u8], providers: &[Provider], now: u64) -> Result<Verified, Reject> {
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

    tape.parse(&segment(p64, &mut body)?, MAX_DEPTH).map_err(|_| Reject::Json)?;
    let claims = match tape.root().json() {
        Json::Object(claims) => claims,
        _ => return Err(Reject::Json),
    };
    let (index, provider) = match claims.get("iss").map(Claim::json) {
        Some(Json::Str(iss)) => {
            providers.iter().enumerate().find(|(_, p)| *p.issuer == *iss).ok_or(Reject::Issuer)?
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
        match claims.get(name).map(Claim::json) {
            None => Ok(None),
            Some(Json::Uint(t)) => Ok(Some(t)),
            // NumericDate may carry a fraction; negative or absurd values are malformed.
            Some(Json::Double(f)) if (0.0..1e15).contains(&f) => Ok(Some(f as u64)),
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
    let audience_ok = match claims.get("aud").map(Claim::json) {
        Some(Json::Str(a)) => provider.audiences.iter().any(|x| **x == *a),
        Some(Json::Array(list)) => {
            list.items().any(|a| a.as_str().is_some_and(|a| provider.audiences.iter().any(|x| &**x == a)))
        }
        _ => false,
    };
    if !audience_ok {
        return Err(Reject::Audience);
    }
    // RFC 7519 4.1.2: `sub` is a string. Another type is refused rather than skipped, so a
    // token cannot steer the subject to `client_id` or `azp` by making `sub` a number.
    if claims.get("sub").is_some_and(|s| s.as_str().is_none()) {
        return Err(Reject::Subject);
    }
    // The subject: `sub`, else the client of a client-credentials token. A token that names
    // nobody would share its principal (sessions, gateway-owned backend sessions,
    // `request.auth.subject`) with every other such token.
    let subject = ["sub", "client_id", "azp"]
        .iter()
        .find_map(|m| claims.get(m).and_then(Claim::as_str))
        .filter(|s| !s.is_empty())
        .ok_or(Reject::Subject)?;
    let subject_is_sub = claims.get("sub").is_some();
    // The session binding key: issuer and subject together name one identity.
    let id = ["jwt ", &provider.issuer, " ", subject];
    let headers =
        provider.claim_to_headers.iter().filter_map(|(path, h)| claims.at_path(path).map(|c| (&**h, c)));
    let principal = Principal::build(PrincipalKind::Jwt, &id, subject_is_sub, Some(tape), headers, token);
    // Fails closed should the record not have been laid out (it cannot: see `Principal::build`).
    if principal.subject() != subject {
        return Err(Reject::Subject);
    }
    Ok(Verified { principal, provider: index, epoch, deadline })
}
