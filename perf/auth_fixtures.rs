//! Shared by benches/auth.rs and perf/instructions.rs: a JWT authenticator with one key of each
//! type (the test keys in tests/data) and tokens minted by the independent `jsonwebtoken` crate.
#![allow(dead_code)]

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use portcullis::auth::jwk::{Alg, KeySet};
use portcullis::auth::jwks::KeySource;
use portcullis::auth::jwt::Provider;
use portcullis::auth::{Authenticator, Mode};

pub const ISSUER: &str = "https://idp.example.com";
pub const AUDIENCE: &str = "https://gw.example.com/mcp";
pub const HS_SECRET: &[u8] = b"benchmark-hmac-secret-0123456789abcdef";
/// A fixed "now" inside every token's validity.
pub const NOW: u64 = 1_800_000_000;

fn first(jwks: &str) -> serde_json::Value {
    serde_json::from_str::<serde_json::Value>(jwks).unwrap()["keys"][0].clone()
}

/// The provider's key set: RSA, EC P-256, Ed25519 and an oct key.
pub fn keys() -> KeySet {
    let k = base64_simd::URL_SAFE_NO_PAD.encode_to_string(HS_SECRET);
    let doc = serde_json::json!({"keys": [
        first(include_str!("../tests/data/jwt-rsa2048.jwks.json")),
        first(include_str!("../tests/data/jwt-p256.jwks.json")),
        first(include_str!("../tests/data/jwt-ed25519.jwks.json")),
        {"kty": "oct", "kid": "hs", "k": k},
    ]});
    KeySet::parse(doc.to_string().as_bytes()).unwrap().0
}

pub fn provider() -> Provider {
    Provider {
        name: "corp".into(),
        issuer: ISSUER.into(),
        audiences: vec![AUDIENCE.into()],
        algorithms: Alg::ALL.to_vec(),
        skew: 30,
        require_exp: true,
        claim_to_headers: vec![("sub".into(), "x-user-id".into())],
        keys: KeySource::fixed(keys()),
    }
}

pub fn authenticator() -> Authenticator {
    Authenticator {
        mode: Mode::Jwt { providers: vec![provider()], cache_entries: 4096 },
        prm: None,
        realm: "bench".into(),
        stripped: vec!["x-user-id".into()],
    }
}

/// A realistic access token (~800 bytes for RS256) signed with `alg`, valid at [`NOW`].
pub fn token(alg: Algorithm) -> String {
    token_at(alg, NOW)
}

/// [`token`] valid for an hour around `now`.
pub fn token_at(alg: Algorithm, now: u64) -> String {
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": "user-1234567890", "aud": [AUDIENCE, "https://other.example.com"],
        "exp": now + 3600, "iat": now - 60, "nbf": now - 60, "jti": "b8f7c0de-1234-4c1e-9a55-0123456789ab",
        "scope": "tools.read tools.call weather.read", "azp": "mcp-client", "org": {"id": "acme"},
    });
    let (kid, key) = match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => {
            ("rsa-1", EncodingKey::from_rsa_pem(include_bytes!("../tests/data/jwt-rsa2048.pem")).unwrap())
        }
        Algorithm::ES256 => {
            ("ec-1", EncodingKey::from_ec_pem(include_bytes!("../tests/data/jwt-p256.pem")).unwrap())
        }
        Algorithm::EdDSA => {
            ("ed-1", EncodingKey::from_ed_pem(include_bytes!("../tests/data/jwt-ed25519.pem")).unwrap())
        }
        _ => ("hs", EncodingKey::from_secret(HS_SECRET)),
    };
    let mut h = Header::new(alg);
    h.kid = Some(kid.into());
    encode(&h, &claims, &key).unwrap()
}

/// A complete MCP request head carrying `token`.
pub fn head_with(token: &str) -> Vec<u8> {
    format!(
        "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:8080\r\naccept: application/json, text/event-stream\r\n\
content-type: application/json\r\nmcp-protocol-version: 2025-11-25\r\nauthorization: Bearer {token}\r\n\
content-length: 0\r\n\r\n"
    )
    .into_bytes()
}
