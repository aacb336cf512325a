//! Stateless session ids. A session id is an AEAD-sealed record (AES-256-GCM from ring) of
//! everything the gateway must remember about a session: when it expires, the protocol version,
//! the principal it belongs to and each backend's own session id. Any worker of any process that
//! holds the key can open it, so no session table is shared between cores or replicas.
//!
//! Wire form (base64url, no padding, so it is visible ASCII as the transport requires):
//! `0x01 | kid_len | kid | nonce(12) | ciphertext+tag`. The key id travels in clear to pick the
//! key; the server name and key id are bound as associated data, so an id minted for one
//! endpoint does not open on another.
//!
//! Keys are derived once at config load (HKDF-SHA256), never per request: Envoy AI Gateway's
//! per-request PBKDF2 costs ~12 ms per operation, this costs well under a microsecond.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};

use crate::mcp::version::Version;

const FORMAT_V1: u8 = 1;
/// Longest session id we try to open; anything longer is rejected before any work.
pub const MAX_ID_LEN: usize = 4096;

/// What a session id carries.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Claims {
    /// Random per-session identifier (termination is tracked by it).
    pub id: [u8; 16],
    /// Unix seconds when the session expires.
    pub expires: u64,
    /// Negotiated protocol version tag.
    pub version: u8,
    /// The principal (`iss` + `sub`, key id, user) the session is bound to; empty for anonymous.
    pub principal: String,
    /// Backend name -> that backend's `Mcp-Session-Id`.
    pub backends: Vec<(String, String)>,
}

impl Claims {
    /// The negotiated protocol version.
    pub fn protocol_version(&self) -> Option<Version> {
        Version::from_tag(self.version)
    }
}

/// The session keys of a snapshot: the first seals, every one opens.
pub struct Keys {
    keys: Vec<(String, LessSafeKey)>,
    /// Keys that tag ids the gateway hands out for a backend (task ids), derived from the same
    /// secrets: the first tags, all check.
    tags: Vec<ring::hmac::Key>,
    /// Lifetime of new sessions in seconds.
    pub ttl_seconds: u64,
    /// True when no key was configured and a random one was generated at start-up.
    pub ephemeral: bool,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("Keys")
            .field("ids", &self.keys.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>())
            .field("ttl_seconds", &self.ttl_seconds)
            .field("ephemeral", &self.ephemeral)
            .finish()
    }
}

/// Why a key could not be made.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// The secret is shorter than 32 bytes.
    #[error("session key secret must be at least 32 bytes (raw or base64)")]
    TooShort,
    /// The key id is empty or longer than 64 bytes.
    #[error("session key id must be 1 to 64 bytes")]
    BadId,
    /// The system random generator failed.
    #[error("system random generator failed")]
    Random,
}

fn derive(secret: &[u8]) -> LessSafeKey {
    let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"portcullis/session/v1");
    let prk = salt.extract(secret);
    // expand() fails only when the requested length exceeds 255 hash blocks; 32 bytes never does.
    let okm = prk
        .expand(&[b"aes-256-gcm"], &AES_256_GCM)
        .map_or_else(|_| unreachable!("HKDF output of 32 bytes is always valid"), UnboundKey::from);
    LessSafeKey::new(okm)
}

fn derive_tag(secret: &[u8]) -> ring::hmac::Key {
    let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"portcullis/tag/v1");
    let prk = salt.extract(secret);
    prk.expand(&[b"hmac-sha256"], ring::hmac::HMAC_SHA256)
        .map_or_else(|_| unreachable!("HKDF output of 32 bytes is always valid"), ring::hmac::Key::from)
}

/// Length of a tag in hex characters (64 bits).
pub const TAG_HEX: usize = 16;

impl Keys {
    /// A tag binding `parts` (length-prefixed, so parts cannot trade bytes) under the first key,
    /// as lowercase hex.
    pub fn tag(&self, parts: &[&[u8]]) -> [u8; TAG_HEX] {
        let mut out = [b'0'; TAG_HEX];
        if let Some(key) = self.tags.first() {
            hex_tag(&sign(key, parts), &mut out);
        }
        out
    }

    /// Whether `tag` (hex) binds `parts` under one of the keys (constant-time comparison).
    pub fn check_tag(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        tag.len() == TAG_HEX
            && self.tags.iter().any(|key| {
                let mut want = [0u8; TAG_HEX];
                hex_tag(&sign(key, parts), &mut want);
                // Every byte compared, whatever differs first.
                want.iter().zip(tag).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
            })
    }
}

impl Keys {
    /// `<tag>.<own>`: `own` handed out bound to `context` (the tag covers both).
    pub fn bind(&self, context: &[&[u8]], own: &str) -> String {
        let mut parts = context.to_vec();
        parts.push(own.as_bytes());
        let tag = self.tag(&parts);
        let mut bound = String::with_capacity(TAG_HEX + 1 + own.len());
        bound.extend(tag.iter().map(|&b| char::from(b)));
        bound.push('.');
        bound.push_str(own);
        bound
    }

    /// The `own` of a [`Keys::bind`] result, when its tag binds it to `context`.
    pub fn unbind<'s>(&self, context: &[&[u8]], bound: &'s str) -> Option<&'s str> {
        let (tag, own) = bound.split_once('.')?;
        let mut parts = context.to_vec();
        parts.push(own.as_bytes());
        self.check_tag(&parts, tag.as_bytes()).then_some(own)
    }
}

fn sign(key: &ring::hmac::Key, parts: &[&[u8]]) -> ring::hmac::Tag {
    let mut ctx = ring::hmac::Context::with_key(key);
    for p in parts {
        ctx.update(&(p.len() as u32).to_le_bytes());
        ctx.update(p);
    }
    ctx.sign()
}

fn hex_tag(tag: &ring::hmac::Tag, out: &mut [u8; TAG_HEX]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in tag.as_ref().iter().take(TAG_HEX / 2).enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 15)];
    }
}

/// Decodes a configured secret: base64 (standard or url-safe) of >= 32 bytes, else raw >= 32 bytes.
pub fn secret_bytes(secret: &str) -> Result<Vec<u8>, KeyError> {
    let s = secret.trim();
    let decoded = [base64_simd::STANDARD.decode_to_vec(s), base64_simd::URL_SAFE_NO_PAD.decode_to_vec(s)];
    if let Some(bytes) = decoded.into_iter().flatten().find(|b| b.len() >= 32) {
        return Ok(bytes);
    }
    if s.len() >= 32 {
        Ok(s.as_bytes().to_vec())
    } else {
        Err(KeyError::TooShort)
    }
}

impl Keys {
    /// Keys from configured (id, secret) pairs; the first seals.
    pub fn new(configured: &[(String, Vec<u8>)], ttl_seconds: u64) -> Result<Keys, KeyError> {
        let mut keys = Vec::with_capacity(configured.len());
        let mut tags = Vec::with_capacity(configured.len());
        for (id, secret) in configured {
            if id.is_empty() || id.len() > 64 {
                return Err(KeyError::BadId);
            }
            if secret.len() < 32 {
                return Err(KeyError::TooShort);
            }
            keys.push((id.clone(), derive(secret)));
            tags.push(derive_tag(secret));
        }
        Ok(Keys { keys, tags, ttl_seconds, ephemeral: false })
    }

    /// The random key of a process started without `sessions.keys`: made once per process, so
    /// sessions survive reloads; ids do not survive a restart and are not understood by other
    /// replicas.
    pub fn ephemeral(ttl_seconds: u64) -> Result<Keys, KeyError> {
        static SECRET: std::sync::OnceLock<Result<[u8; 32], KeyError>> = std::sync::OnceLock::new();
        let secret = SECRET
            .get_or_init(|| {
                let mut secret = [0u8; 32];
                SystemRandom::new().fill(&mut secret).map_err(|_| KeyError::Random)?;
                Ok(secret)
            })
            .clone()?;
        let mut keys = Keys::new(&[("ephemeral".into(), secret.to_vec())], ttl_seconds)?;
        keys.ephemeral = true;
        Ok(keys)
    }

    /// The sealed id of a new session of `principal` at endpoint `server`: a fresh random id,
    /// expiring `ttl_seconds` after `now`, with the negotiated `version` and each backend's own
    /// session. Every session is made here.
    pub fn seal_new(
        &self,
        version: Version,
        principal: &str,
        backends: Vec<(String, String)>,
        (server, now): (&str, u64),
        rng: &SystemRandom,
    ) -> Option<String> {
        let mut claims = Claims {
            id: [0; 16],
            expires: now.saturating_add(self.ttl_seconds),
            version: version.tag(),
            principal: principal.to_string(),
            backends,
        };
        rng.fill(&mut claims.id).ok()?;
        self.seal(&claims, server, rng)
    }

    /// Seals `claims` for endpoint `server`.
    pub fn seal(&self, claims: &Claims, server: &str, rng: &SystemRandom) -> Option<String> {
        let (kid, key) = self.keys.first()?;
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce).ok()?;
        let mut out = Vec::with_capacity(64 + claims.principal.len());
        out.push(FORMAT_V1);
        out.push(kid.len() as u8);
        out.extend_from_slice(kid.as_bytes());
        out.extend_from_slice(&nonce);
        let body_start = out.len();
        encode_claims(claims, &mut out);
        let mut body = out.split_off(body_start);
        let aad = aad(kid, server);
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&aad[..]), &mut body)
            .ok()?;
        out.extend_from_slice(&body);
        Some(base64_simd::URL_SAFE_NO_PAD.encode_to_string(&out))
    }

    /// Opens a session id presented on endpoint `server` at unix time `now`. `None` for anything
    /// tampered, foreign, malformed or expired: all answer 404 alike, so nothing leaks why.
    pub fn open(&self, id: &[u8], server: &str, now: u64) -> Option<Claims> {
        self.open_with(id, server, now, &mut Vec::new())
    }

    /// [`Keys::open`] decrypting in `scratch`, a per-core buffer, so that opening a session
    /// allocates nothing once the buffer has grown (every 2025-revision request opens one).
    pub fn open_with(&self, id: &[u8], server: &str, now: u64, scratch: &mut Vec<u8>) -> Option<Claims> {
        if id.len() > MAX_ID_LEN {
            return None;
        }
        scratch.clear();
        base64_simd::URL_SAFE_NO_PAD.decode_append(id, scratch).ok()?;
        let (&mut fmt, rest) = scratch.split_first_mut()?;
        if fmt != FORMAT_V1 {
            return None;
        }
        let (&mut kid_len, rest) = rest.split_first_mut()?;
        if rest.len() < kid_len as usize + NONCE_LEN {
            return None;
        }
        let (kid, rest) = rest.split_at_mut(kid_len as usize);
        let (nonce, sealed) = rest.split_at_mut(NONCE_LEN);
        let kid = std::str::from_utf8(kid).ok()?;
        let (_, key) = self.keys.iter().find(|(k, _)| k == kid)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut aad_buf = [0u8; 2 + 64 + MAX_SERVER_NAME];
        let aad = aad_into(&mut aad_buf, kid, server)?;
        let plain = key.open_in_place(nonce, Aad::from(aad), sealed).ok()?;
        let claims = decode_claims(plain)?;
        (claims.expires > now).then_some(claims)
    }
}

/// Longest server name bound into a session (names are at most 128 bytes by config rule).
const MAX_SERVER_NAME: usize = 128;

/// The associated data, built on the stack.
fn aad_into<'b>(buf: &'b mut [u8; 2 + 64 + MAX_SERVER_NAME], kid: &str, server: &str) -> Option<&'b [u8]> {
    let n = 2 + kid.len() + server.len();
    if kid.len() > 64 || server.len() > MAX_SERVER_NAME {
        return None;
    }
    buf[0] = FORMAT_V1;
    buf[1..1 + kid.len()].copy_from_slice(kid.as_bytes());
    buf[1 + kid.len()] = 0;
    buf[2 + kid.len()..n].copy_from_slice(server.as_bytes());
    Some(&buf[..n])
}

fn aad(kid: &str, server: &str) -> Vec<u8> {
    let mut a = Vec::with_capacity(2 + kid.len() + server.len());
    a.push(FORMAT_V1);
    a.extend_from_slice(kid.as_bytes());
    a.push(0);
    a.extend_from_slice(server.as_bytes());
    a
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let n = s.len().min(u16::MAX as usize);
    out.extend_from_slice(&(n as u16).to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..n]);
}

fn encode_claims(c: &Claims, out: &mut Vec<u8>) {
    out.extend_from_slice(&c.id);
    out.extend_from_slice(&c.expires.to_le_bytes());
    out.push(c.version);
    put_str(out, &c.principal);
    out.extend_from_slice(&(c.backends.len().min(u16::MAX as usize) as u16).to_le_bytes());
    for (name, sid) in c.backends.iter().take(u16::MAX as usize) {
        put_str(out, name);
        put_str(out, sid);
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let n = self.u16()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

fn decode_claims(b: &[u8]) -> Option<Claims> {
    let mut r = Reader(b);
    let id: [u8; 16] = r.take(16)?.try_into().ok()?;
    let expires = u64::from_le_bytes(r.take(8)?.try_into().ok()?);
    let version = r.take(1)?[0];
    let principal = r.string()?;
    let n = r.u16()? as usize;
    let mut backends = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        backends.push((r.string()?, r.string()?));
    }
    r.0.is_empty().then_some(Claims { id, expires, version, principal, backends })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(id: &str, byte: u8) -> Keys {
        Keys::new(&[(id.into(), vec![byte; 32])], 60).unwrap()
    }

    #[test]
    fn tags_bind_their_parts_and_survive_key_rotation() {
        let old = keys("k1", 1);
        let parts: [&[u8]; 2] = [b"alice", b"task-1"];
        let tag = old.tag(&parts);
        assert!(old.check_tag(&parts, &tag));
        assert!(!old.check_tag(&[b"mallory", b"task-1"], &tag), "another principal");
        assert!(!old.check_tag(&[b"alicet", b"ask-1"], &tag), "length-prefixed parts");
        assert!(!old.check_tag(&parts, &tag[..8]), "a short tag");
        let rotated = Keys::new(&[("k2".into(), vec![2; 32]), ("k1".into(), vec![1; 32])], 60).unwrap();
        assert!(rotated.check_tag(&parts, &tag), "an older key still checks");
        assert_ne!(rotated.tag(&parts), tag, "the first key tags");
        assert!(!keys("k2", 2).check_tag(&parts, &tag), "a retired key's tags are refused");
    }

    fn claims() -> Claims {
        Claims {
            id: [7; 16],
            expires: 1_000,
            version: 2,
            principal: "iss|sub".into(),
            backends: vec![("b1".into(), "abc".into())],
        }
    }

    #[test]
    fn round_trip_and_visible_ascii() {
        let k = keys("k1", 1);
        let id = k.seal(&claims(), "weather", &SystemRandom::new()).unwrap();
        assert!(id.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        assert_eq!(k.open(id.as_bytes(), "weather", 999), Some(claims()));
    }

    #[test]
    fn rejects_expired_foreign_tampered_and_other_endpoint() {
        let k = keys("k1", 1);
        let rng = SystemRandom::new();
        let id = k.seal(&claims(), "weather", &rng).unwrap();
        assert_eq!(k.open(id.as_bytes(), "weather", 1_000), None, "expired");
        assert_eq!(k.open(id.as_bytes(), "other", 10), None, "bound to endpoint");
        assert_eq!(keys("k1", 2).open(id.as_bytes(), "weather", 10), None, "foreign key");
        let mut t = id.clone().into_bytes();
        let last = t.len() - 3;
        t[last] = if t[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(k.open(&t, "weather", 10), None, "tampered");
        assert_eq!(k.open(b"", "weather", 10), None);
        assert_eq!(k.open(b"!!!", "weather", 10), None);
    }

    #[test]
    fn rotation_opens_with_any_key() {
        let old = keys("old", 1);
        let id = old.seal(&claims(), "s", &SystemRandom::new()).unwrap();
        let rotated = Keys::new(&[("new".into(), vec![2; 32]), ("old".into(), vec![1; 32])], 60).unwrap();
        assert!(rotated.open(id.as_bytes(), "s", 10).is_some());
    }

    #[test]
    fn secret_forms() {
        assert_eq!(secret_bytes("short"), Err(KeyError::TooShort));
        assert_eq!(secret_bytes(&"x".repeat(32)).unwrap().len(), 32);
        let b64 = base64_simd::STANDARD.encode_to_string([9u8; 32]);
        assert_eq!(secret_bytes(&b64).unwrap(), vec![9u8; 32]);
    }
}
