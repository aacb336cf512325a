//! Stage-1 unit tests: the JWT verifier against published vectors (RFC 7515 Appendix A,
//! RFC 8037 Appendix A.4), a must-reject table, tokens minted by an independent implementation
//! (`jsonwebtoken`, or `ring` directly for hand-built JSON), the protected resource metadata
//! URL (RFC 9728), and every `Authenticator` mode over parsed request heads.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::auth::cache::TokenCache;
use crate::auth::jwk::{Alg, KeySet};
use crate::auth::jwks::KeySource;
use crate::auth::jwt::{verify, Provider, Reject, MAX_TOKEN};
use crate::auth::proxy::Cidr;
use crate::auth::secret::Secrets;
use crate::auth::{
    Authenticator, Failure, KeyIn, Mode, Principal, PrincipalKind, Prm, PrmFields, PRM_PREFIX,
};
use crate::http::head::{parse, Head, Parsed};
use crate::http::Limits;

// ---------------------------------------------------------------------------------------------
// Test keys (tests/data, generated once with openssl; see tests/data/README.md).
// ---------------------------------------------------------------------------------------------

const RSA_PEM: &[u8] = include_bytes!("../../tests/data/jwt-rsa2048.pem");
const RSA_PUB_PEM: &[u8] = include_bytes!("../../tests/data/jwt-rsa2048.pub.pem");
const RSA_JWKS: &[u8] = include_bytes!("../../tests/data/jwt-rsa2048.jwks.json");
const EC_PEM: &[u8] = include_bytes!("../../tests/data/jwt-p256.pem");
const EC_JWKS: &[u8] = include_bytes!("../../tests/data/jwt-p256.jwks.json");
const ED_PEM: &[u8] = include_bytes!("../../tests/data/jwt-ed25519.pem");
const ED_JWKS: &[u8] = include_bytes!("../../tests/data/jwt-ed25519.jwks.json");
/// The `oct` key (kid `hs-1`): 44 bytes, enough for HS256, too short for HS384/HS512.
const HS_SECRET: &[u8] = b"portcullis-test-hmac-secret-0123456789abcdef";

/// The injected clock for minted tokens.
const NOW: u64 = 1_700_000_000;
/// The main provider: every algorithm, 60 s skew, `exp` required.
const ISS: &str = "https://idp.example.com";
/// RS256 only, no skew.
const STRICT_ISS: &str = "https://strict.example.com";
/// `exp` not required.
const LAX_ISS: &str = "https://lax.example.com";
const AUD: &str = "https://gw.example.com/mcp";
const SKEW: u64 = 60;

fn b64u(bytes: &[u8]) -> String {
    base64_simd::URL_SAFE_NO_PAD.encode_to_string(bytes)
}

fn unb64u(s: &str) -> Vec<u8> {
    base64_simd::URL_SAFE_NO_PAD.decode_to_vec(s).unwrap()
}

/// The four test keys as one JWKS: RSA `rsa-1`, EC P-256 `ec-1`, Ed25519 `ed-1`, oct `hs-1`.
fn test_keys() -> KeySet {
    let mut keys = Vec::new();
    for doc in [RSA_JWKS, EC_JWKS, ED_JWKS] {
        let v: Value = serde_json::from_slice(doc).unwrap();
        keys.extend(v["keys"].as_array().unwrap().iter().cloned());
    }
    keys.push(json!({"kty": "oct", "kid": "hs-1", "k": b64u(HS_SECRET)}));
    let doc = serde_json::to_vec(&json!({ "keys": keys })).unwrap();
    let (set, problems) = KeySet::parse(&doc).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(set.keys.len(), 4);
    set
}

fn provider(issuer: &str, algorithms: &[Alg], skew: u64, require_exp: bool) -> Provider {
    Provider {
        name: issuer.into(),
        issuer: issuer.into(),
        audiences: vec![AUD.into(), "https://other.example.com".into()],
        algorithms: algorithms.to_vec(),
        skew,
        require_exp,
        claim_to_headers: vec![
            ("org.id".into(), "x-org-id".into()),
            ("email".into(), "x-user-email".into()),
            ("groups".into(), "x-groups".into()),
            ("level".into(), "x-level".into()),
            ("note".into(), "x-note".into()),
            ("absent".into(), "x-absent".into()),
        ],
        keys: KeySource::fixed(test_keys()),
    }
}

/// [main (index 0), strict (1), lax (2)].
fn providers() -> Vec<Provider> {
    vec![
        provider(ISS, &Alg::ALL, SKEW, true),
        provider(STRICT_ISS, &[Alg::RS256], 0, true),
        provider(LAX_ISS, &Alg::ALL, SKEW, false),
    ]
}

/// Default claims for the main provider, edited by `edit` (a `null` member removes the claim).
fn claims(edit: Value) -> Value {
    let mut c = json!({"iss": ISS, "aud": AUD, "sub": "alice", "iat": NOW, "exp": NOW + 3600});
    for (k, v) in edit.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

/// A token minted by `jsonwebtoken` with the test key for `alg`.
fn mint(alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let key = match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => EncodingKey::from_rsa_pem(RSA_PEM).unwrap(),
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(EC_PEM).unwrap(),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(ED_PEM).unwrap(),
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => EncodingKey::from_secret(HS_SECRET),
    };
    mint_with(alg, kid, claims, &key)
}

fn mint_with(alg: Algorithm, kid: Option<&str>, claims: &Value, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(String::from);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// `b64u(header).b64u(claims).sig` from raw JSON text (tokens no honest signer makes).
fn raw(header: &str, claims: &str, sig: &str) -> String {
    format!("{}.{}.{sig}", b64u(header.as_bytes()), b64u(claims.as_bytes()))
}

/// Raw JSON text signed HS256 with the `hs-1` secret by ring's HMAC (not the code under test).
fn hs256_raw(header: &str, claims: &str) -> String {
    let input = format!("{}.{}", b64u(header.as_bytes()), b64u(claims.as_bytes()));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, HS_SECRET);
    let tag = ring::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64u(tag.as_ref()))
}

/// Raw JSON text signed RS256 with the RSA test key by ring's signer.
fn rs256_raw(header: &str, claims: &str) -> String {
    let body: String =
        std::str::from_utf8(RSA_PEM).unwrap().lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64_simd::STANDARD.decode_to_vec(body.as_bytes()).unwrap();
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&der).unwrap();
    let input = format!("{}.{}", b64u(header.as_bytes()), b64u(claims.as_bytes()));
    let mut sig = vec![0; pair.public().modulus_len()];
    pair.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{input}.{}", b64u(&sig))
}

/// (header, payload, signature) segments.
fn split3(token: &str) -> (String, String, String) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    (parts[0].to_string(), parts[1].to_string(), parts[2].to_string())
}

/// Changes the last base64url character of `seg` so its unused low bits are not zero (same
/// decoded bytes for a lenient decoder, refused by a strict one).
fn noncanonical_tail(seg: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let unused_bits = match seg.len() % 4 {
        2 => 4,
        3 => 2,
        _ => panic!("segment {seg:?} has no partial final group"),
    };
    let last = *seg.as_bytes().last().unwrap();
    let v = ALPHABET.iter().position(|&c| c == last).unwrap();
    assert_eq!(v & ((1 << unused_bits) - 1), 0, "a canonical encoder leaves the low bits zero");
    let mut out = seg[..seg.len() - 1].to_string();
    out.push(ALPHABET[v | 1] as char);
    out
}

fn flip_first_bit(seg: &str) -> String {
    let mut bytes = unb64u(seg);
    bytes[0] ^= 0x01;
    b64u(&bytes)
}

fn check(token: &str) -> Result<(), Reject> {
    verify(token.as_bytes(), &providers(), NOW).map(|_| ())
}

// ---------------------------------------------------------------------------------------------
// RFC 7515 Appendix A and RFC 8037 Appendix A.4 vectors.
// ---------------------------------------------------------------------------------------------

/// The payload of A.1-A.3: `{"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}`.
const RFC7515_PAYLOAD: &str =
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
/// A.1 (HS256): header `{"typ":"JWT",\r\n "alg":"HS256"}`.
const RFC7515_A1_HEADER: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9";
const RFC7515_A1_SIG: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// A.1's oct JWK `k`.
const RFC7515_A1_K: &str =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
/// A.2 (RS256): header `{"alg":"RS256"}`.
const RFC7515_A2_HEADER: &str = "eyJhbGciOiJSUzI1NiJ9";
const RFC7515_A2_SIG: &str = "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7\
AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6x\
BArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh\
6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
/// A.2's RSA JWK modulus (`e` is `AQAB`).
const RFC7515_A2_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEz\
P1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdb\
BYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9\
iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
/// A.3 (ES256): header `{"alg":"ES256"}`.
const RFC7515_A3_HEADER: &str = "eyJhbGciOiJFUzI1NiJ9";
const RFC7515_A3_SIG: &str =
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
/// A.3's EC JWK (P-256).
const RFC7515_A3_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const RFC7515_A3_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
/// RFC 8037 A.4: header `{"alg":"EdDSA"}`, payload "Example of Ed25519 signing".
const RFC8037_HEADER: &str = "eyJhbGciOiJFZERTQSJ9";
const RFC8037_PAYLOAD: &str = "RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
const RFC8037_SIG: &str =
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
/// RFC 8037 A.1/A.2 key: public `x` and private `d`.
const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
const RFC8037_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";

/// Before the RFC tokens' `exp` (1300819380).
const RFC_NOW: u64 = 1_300_819_000;

fn rfc_token(header: &str, sig: &str) -> String {
    format!("{header}.{RFC7515_PAYLOAD}.{sig}")
}

/// Issuer `joe` (the RFC payloads' `iss`), audience `x` (they carry no `aud`), the A.1-A.3 keys.
fn rfc_providers() -> Vec<Provider> {
    let jwks = json!({"keys": [
        {"kty": "oct", "k": RFC7515_A1_K},
        {"kty": "RSA", "n": RFC7515_A2_N, "e": "AQAB"},
        {"kty": "EC", "crv": "P-256", "x": RFC7515_A3_X, "y": RFC7515_A3_Y},
    ]});
    let (set, problems) = KeySet::parse(jwks.to_string().as_bytes()).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(set.keys.len(), 3);
    vec![Provider {
        name: "rfc".into(),
        issuer: "joe".into(),
        audiences: vec!["x".into()],
        algorithms: Alg::ALL.to_vec(),
        skew: 0,
        require_exp: true,
        claim_to_headers: Vec::new(),
        keys: KeySource::fixed(set),
    }]
}

fn rfc_check(token: &str, now: u64) -> Result<(), Reject> {
    verify(token.as_bytes(), &rfc_providers(), now).map(|_| ())
}

#[test]
fn rfc7515_payload_is_what_the_rfc_prints() {
    assert_eq!(
        unb64u(RFC7515_PAYLOAD),
        b"{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}"
    );
    assert_eq!(unb64u(RFC7515_A1_HEADER), b"{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}");
    assert_eq!(unb64u(RFC7515_A2_HEADER), br#"{"alg":"RS256"}"#);
    assert_eq!(unb64u(RFC7515_A3_HEADER), br#"{"alg":"ES256"}"#);
    assert_eq!(unb64u(RFC8037_HEADER), br#"{"alg":"EdDSA"}"#);
    assert_eq!(unb64u(RFC8037_PAYLOAD), b"Example of Ed25519 signing");
}

#[test]
fn rfc7515_a1_hmac_is_reproduced_by_ring() {
    // An independent check of the A.1 constants: HMAC-SHA256 over the signing input with the
    // JWK's `k` is exactly the RFC's signature.
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &unb64u(RFC7515_A1_K));
    let input = format!("{RFC7515_A1_HEADER}.{RFC7515_PAYLOAD}");
    assert_eq!(ring::hmac::sign(&key, input.as_bytes()).as_ref(), &unb64u(RFC7515_A1_SIG)[..]);
}

#[test]
fn rfc7515_vectors_pass_the_signature_and_stop_at_the_audience() {
    for (name, header, sig) in [
        ("A.1 HS256", RFC7515_A1_HEADER, RFC7515_A1_SIG),
        ("A.2 RS256", RFC7515_A2_HEADER, RFC7515_A2_SIG),
        ("A.3 ES256", RFC7515_A3_HEADER, RFC7515_A3_SIG),
    ] {
        let token = rfc_token(header, sig);
        // The signature verifies; the token has no `aud`, so it is not for this resource.
        assert_eq!(rfc_check(&token, RFC_NOW), Err(Reject::Audience), "{name}");
        // At exp (skew 0) it is expired: time is checked after the signature, before aud.
        assert_eq!(rfc_check(&token, 1_300_819_380), Err(Reject::Expired), "{name}");
        // Any other issuer is refused before keys are looked at.
        let other = verify(token.as_bytes(), &providers(), RFC_NOW).map(|_| ());
        assert_eq!(other, Err(Reject::Issuer), "{name}");
    }
}

#[test]
fn rfc7515_vectors_tampered_fail_the_signature() {
    // A payload one second longer-lived, re-encoded, under the original signatures.
    let later = b64u(b"{\"iss\":\"joe\",\r\n \"exp\":1300819381,\r\n \"http://example.com/is_root\":true}");
    for (name, header, sig, other_header) in [
        ("A.1", RFC7515_A1_HEADER, RFC7515_A1_SIG, r#"{"typ":"JWT","alg":"HS256"}"#),
        ("A.2", RFC7515_A2_HEADER, RFC7515_A2_SIG, r#"{"alg":"RS256","typ":"JWT"}"#),
        ("A.3", RFC7515_A3_HEADER, RFC7515_A3_SIG, r#"{"alg":"ES256","typ":"JWT"}"#),
    ] {
        let tampered_payload = format!("{header}.{later}.{sig}");
        assert_eq!(rfc_check(&tampered_payload, RFC_NOW), Err(Reject::Signature), "{name} payload");
        let tampered_header = format!("{}.{RFC7515_PAYLOAD}.{sig}", b64u(other_header.as_bytes()));
        assert_eq!(rfc_check(&tampered_header, RFC_NOW), Err(Reject::Signature), "{name} header");
        let flipped = rfc_token(header, &flip_first_bit(sig));
        assert_eq!(rfc_check(&flipped, RFC_NOW), Err(Reject::Signature), "{name} signature bit");
        let truncated = rfc_token(header, &b64u(&unb64u(sig)[1..]));
        assert_eq!(rfc_check(&truncated, RFC_NOW), Err(Reject::Signature), "{name} short signature");
        // Garbage rather than tampering.
        assert_eq!(rfc_check(&rfc_token(header, "!!!!"), RFC_NOW), Err(Reject::Base64), "{name} sig");
        let not_json = format!("{}.{RFC7515_PAYLOAD}.{sig}", b64u(b"not json"));
        assert_eq!(rfc_check(&not_json, RFC_NOW), Err(Reject::Json), "{name} header not JSON");
    }
    // A.2's signature under A.3's header (and the reverse): the alg picks the key type.
    assert_eq!(rfc_check(&rfc_token(RFC7515_A3_HEADER, RFC7515_A2_SIG), RFC_NOW), Err(Reject::Signature));
    assert_eq!(rfc_check(&rfc_token(RFC7515_A2_HEADER, RFC7515_A3_SIG), RFC_NOW), Err(Reject::Signature));
}

#[test]
fn rfc8037_ed25519_vector_verifies_at_the_signature_level() {
    let jwk = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}]});
    let (set, problems) = KeySet::parse(jwk.to_string().as_bytes()).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    let key = &set.keys[0];
    assert!(key.accepts(Alg::EdDSA));
    assert!(!key.accepts(Alg::ES256));
    let input = format!("{RFC8037_HEADER}.{RFC8037_PAYLOAD}");
    let sig = unb64u(RFC8037_SIG);
    assert!(key.material.verify(Alg::EdDSA, input.as_bytes(), &sig));
    let mut bad = sig.clone();
    bad[10] ^= 0x04;
    assert!(!key.material.verify(Alg::EdDSA, input.as_bytes(), &bad), "flipped signature bit");
    let mut bad_input = input.clone().into_bytes();
    bad_input[0] ^= 0x01;
    assert!(!key.material.verify(Alg::EdDSA, &bad_input, &sig), "flipped input bit");
    assert!(!key.material.verify(Alg::ES256, input.as_bytes(), &sig), "wrong alg");
    assert!(!key.material.verify(Alg::EdDSA, input.as_bytes(), &sig[..63]), "short signature");

    // The RFC's private JWK is not a public key set member.
    let private = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "d": RFC8037_D}]});
    let (set, problems) = KeySet::parse(private.to_string().as_bytes()).unwrap();
    assert!(set.keys.is_empty());
    assert_eq!(problems.len(), 1, "{problems:?}");

    // As a whole token its payload is not a claims set.
    let token = format!("{input}.{RFC8037_SIG}");
    assert_eq!(rfc_check(&token, RFC_NOW), Err(Reject::Json));
}

// ---------------------------------------------------------------------------------------------
// The must-reject table.
// ---------------------------------------------------------------------------------------------

struct Row {
    name: &'static str,
    token: String,
    want: Result<(), Reject>,
}

fn row(name: &'static str, token: impl Into<String>, want: Result<(), Reject>) -> Row {
    Row { name, token: token.into(), want }
}

fn run_rows(rows: &[Row]) {
    let providers = providers();
    let mut failed = Vec::new();
    for r in rows {
        let got = verify(r.token.as_bytes(), &providers, NOW).map(|_| ());
        if got != r.want {
            failed.push(format!("{}: got {got:?}, want {:?}", r.name, r.want));
        }
    }
    assert!(failed.is_empty(), "{} of {} rows failed:\n{}", failed.len(), rows.len(), failed.join("\n"));
}

fn rs(edit: Value) -> String {
    mint(Algorithm::RS256, Some("rsa-1"), &claims(edit))
}

fn nested_arrays(depth: usize) -> Value {
    let mut v = json!(1);
    for _ in 0..depth {
        v = json!([v]);
    }
    v
}

#[test]
fn must_reject_table() {
    use Reject as R;
    let good = rs(json!({}));
    let (h, p, s) = split3(&good);
    let body = claims(json!({})).to_string();
    let fake_sig = b64u(b"not a signature at all, but base64url");
    let hs_good = mint(Algorithm::HS256, Some("hs-1"), &claims(json!({})));
    let (hh, hp, hsig) = split3(&hs_good);
    let rsa_pub_as_secret = EncodingKey::from_secret(RSA_PUB_PEM);
    let standard_alphabet = good.replace('-', "+").replace('_', "/");
    assert_ne!(standard_alphabet, good, "the token has '-' or '_' to swap");
    let big_claim = "x".repeat(MAX_TOKEN);
    // A payload whose encoding needs padding (length not a multiple of 3; JSON allows the
    // trailing space).
    let padded_body = if body.len().is_multiple_of(3) { format!("{body} ") } else { body.clone() };
    let (ph, pp, ps) = split3(&hs256_raw(r#"{"alg":"HS256","kid":"hs-1"}"#, &padded_body));

    let rows = vec![
        row("control: RS256 accepted", good.clone(), Ok(())),
        row("control: HS256 accepted", hs_good.clone(), Ok(())),
        // alg none in every spelling, unsigned or with something in the signature slot.
        row("alg none, empty signature", raw(r#"{"alg":"none"}"#, &body, ""), Err(R::Signature)),
        row("alg None, empty signature", raw(r#"{"alg":"None"}"#, &body, ""), Err(R::Signature)),
        row("alg NONE, empty signature", raw(r#"{"alg":"NONE"}"#, &body, ""), Err(R::Signature)),
        row("alg none, with signature", raw(r#"{"alg":"none"}"#, &body, &fake_sig), Err(R::Alg)),
        row("alg None, with signature", raw(r#"{"alg":"None"}"#, &body, &fake_sig), Err(R::Alg)),
        row("alg NONE, with signature", raw(r#"{"alg":"NONE"}"#, &body, &fake_sig), Err(R::Alg)),
        row("alg none, RSA signature kept", raw(r#"{"alg":"none"}"#, &body, &s), Err(R::Alg)),
        row("alg missing", raw(r#"{"kid":"rsa-1"}"#, &body, &s), Err(R::Alg)),
        row("alg not a string", raw(r#"{"alg":["RS256"]}"#, &body, &s), Err(R::Alg)),
        row("alg lower case", raw(r#"{"alg":"rs256"}"#, &body, &s), Err(R::Alg)),
        row("alg unknown (ES512)", raw(r#"{"alg":"ES512"}"#, &body, &s), Err(R::Alg)),
        // Algorithm confusion: HS256 keyed with the RSA public key's PEM text.
        row(
            "HS256 keyed with the RSA public key, kid of the RSA key",
            mint_with(Algorithm::HS256, Some("rsa-1"), &claims(json!({})), &rsa_pub_as_secret),
            Err(R::KeyMismatch),
        ),
        row(
            "HS256 keyed with the RSA public key, no kid",
            mint_with(Algorithm::HS256, None, &claims(json!({})), &rsa_pub_as_secret),
            Err(R::Signature),
        ),
        row(
            "RS256 naming the EC key",
            mint(Algorithm::RS256, Some("ec-1"), &claims(json!({}))),
            Err(R::KeyMismatch),
        ),
        row(
            "ES256 naming the RSA key",
            mint(Algorithm::ES256, Some("rsa-1"), &claims(json!({}))),
            Err(R::KeyMismatch),
        ),
        row(
            "HS384 with a secret shorter than 384 bits",
            mint(Algorithm::HS384, Some("hs-1"), &claims(json!({}))),
            Err(R::KeyMismatch),
        ),
        row(
            "HS384 without kid, no key long enough",
            mint(Algorithm::HS384, None, &claims(json!({}))),
            Err(R::Signature),
        ),
        // Shape.
        row("missing signature segment", format!("{h}.{p}."), Err(R::Signature)),
        row("a.b.", "a.b.", Err(R::Signature)),
        row("empty header", format!(".{p}.{s}"), Err(R::Malformed)),
        row("empty payload", format!("{h}..{s}"), Err(R::Malformed)),
        row("empty token", "", Err(R::Malformed)),
        row("one segment", h.clone(), Err(R::Malformed)),
        row("two segments", format!("{h}.{p}"), Err(R::Malformed)),
        row("four segments", format!("{h}.{p}.{s}.{s}"), Err(R::Malformed)),
        row("six segments", format!("{h}.{p}.{s}.{s}.{s}.{s}"), Err(R::Malformed)),
        row(
            "JWS JSON serialization (flattened)",
            format!(r#"{{"payload":"{p}","protected":"{h}","signature":"{s}"}}"#),
            Err(R::Malformed),
        ),
        row(
            "JWS JSON serialization (general)",
            format!(r#"{{"payload":"{p}","signatures":[{{"protected":"{h}","signature":"{s}"}}]}}"#),
            Err(R::Malformed),
        ),
        row(
            "five segments (JWE)",
            format!("{}.a2V5.aXY.Y2lwaGVy.dGFn", b64u(br#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#)),
            Err(R::Encrypted),
        ),
        row("five empty segments", "....", Err(R::Encrypted)),
        // Tampering.
        row(
            "tampered header",
            format!("{}.{p}.{s}", b64u(br#"{"typ":"JWT","alg":"RS256","kid":"rsa-1","x":1}"#)),
            Err(R::Signature),
        ),
        row(
            "tampered payload",
            format!("{h}.{}.{s}", b64u(claims(json!({"sub": "admin"})).to_string().as_bytes())),
            Err(R::Signature),
        ),
        row("flipped signature bit", format!("{h}.{p}.{}", flip_first_bit(&s)), Err(R::Signature)),
        row("HS256 flipped signature bit", format!("{hh}.{hp}.{}", flip_first_bit(&hsig)), Err(R::Signature)),
        row(
            "signature of another token",
            format!("{h}.{p}.{}", split3(&rs(json!({"sub": "bob"}))).2),
            Err(R::Signature),
        ),
        // Keys.
        row("unknown kid", mint(Algorithm::RS256, Some("rsa-2"), &claims(json!({}))), Err(R::UnknownKid)),
        row(
            "kid with path characters",
            mint(Algorithm::RS256, Some("../../etc/passwd"), &claims(json!({}))),
            Err(R::UnknownKid),
        ),
        row("empty kid", mint(Algorithm::RS256, Some(""), &claims(json!({}))), Err(R::UnknownKid)),
        row("kid not a string", hs256_raw(r#"{"alg":"HS256","kid":7}"#, &body), Err(R::Json)),
        // JWS extensions.
        row(
            "crit present",
            hs256_raw(r#"{"alg":"HS256","kid":"hs-1","crit":["exp"]}"#, &body),
            Err(R::Unsupported),
        ),
        row("crit empty", hs256_raw(r#"{"alg":"HS256","kid":"hs-1","crit":[]}"#, &body), Err(R::Unsupported)),
        row(
            "b64 false",
            hs256_raw(r#"{"alg":"HS256","kid":"hs-1","b64":false}"#, &body),
            Err(R::Unsupported),
        ),
        // Strict JSON.
        row("duplicate header member", rs256_raw(r#"{"alg":"RS256","alg":"none"}"#, &body), Err(R::Json)),
        row(
            "duplicate claim",
            hs256_raw(
                r#"{"alg":"HS256","kid":"hs-1"}"#,
                &format!(r#"{{"iss":"{ISS}","aud":"{AUD}","exp":{},"sub":"alice","sub":"admin"}}"#, NOW + 60),
            ),
            Err(R::Json),
        ),
        row(
            "duplicate nested claim",
            hs256_raw(
                r#"{"alg":"HS256","kid":"hs-1"}"#,
                &format!(r#"{{"iss":"{ISS}","aud":"{AUD}","exp":{},"org":{{"id":"a","id":"b"}}}}"#, NOW + 60),
            ),
            Err(R::Json),
        ),
        row("header is an array", hs256_raw(r#"["HS256"]"#, &body), Err(R::Json)),
        row("header with trailing data", hs256_raw(r#"{"alg":"HS256","kid":"hs-1"} x"#, &body), Err(R::Json)),
        row("claims are an array", hs256_raw(r#"{"alg":"HS256","kid":"hs-1"}"#, "[1]"), Err(R::Json)),
        row("claims are a string", hs256_raw(r#"{"alg":"HS256","kid":"hs-1"}"#, r#""sub""#), Err(R::Json)),
        row(
            "claims not JSON",
            hs256_raw(r#"{"alg":"HS256","kid":"hs-1"}"#, "Example of Ed25519 signing"),
            Err(R::Json),
        ),
        row(
            "100 nested arrays in the claims",
            mint(Algorithm::RS256, Some("rsa-1"), &claims(json!({"deep": nested_arrays(100)}))),
            Err(R::Json),
        ),
        row(
            "15 nested arrays (16 levels with the claims object) accepted",
            mint(Algorithm::RS256, Some("rsa-1"), &claims(json!({"deep": nested_arrays(15)}))),
            Ok(()),
        ),
        row(
            "16 nested arrays refused",
            mint(Algorithm::RS256, Some("rsa-1"), &claims(json!({"deep": nested_arrays(16)}))),
            Err(R::Json),
        ),
        // Strict base64url.
        row("padded signature", format!("{good}=="), Err(R::Base64)),
        row("padded HS256 signature", format!("{hs_good}="), Err(R::Base64)),
        row("padded payload", format!("{ph}.{}.{ps}", padded(&pp)), Err(R::Base64)),
        row(
            "non-canonical trailing bits (RS256 signature)",
            format!("{h}.{p}.{}", noncanonical_tail(&s)),
            Err(R::Base64),
        ),
        row(
            "non-canonical trailing bits (HS256 signature)",
            format!("{hh}.{hp}.{}", noncanonical_tail(&hsig)),
            Err(R::Base64),
        ),
        row("standard alphabet + and /", standard_alphabet, Err(R::Base64)),
        row("space inside the signature", format!("{h}.{p}.{} {}", &s[..10], &s[10..]), Err(R::Base64)),
        row("header not base64", format!("!!!!.{p}.{s}"), Err(R::Base64)),
        row("payload not base64", format!("{h}.!!!!.{s}"), Err(R::Base64)),
        row("signature length 1 mod 4", format!("{h}.{p}.{s}AAA"), Err(R::Base64)),
        row("signature with extra whole bytes", format!("{h}.{p}.{s}AA"), Err(R::Signature)),
        // exp, with the main provider's 60 s skew and the strict provider's none.
        row("exp exactly at now minus skew", rs(json!({"exp": NOW - SKEW})), Err(R::Expired)),
        row("exp in the past within skew", rs(json!({"exp": NOW - 30})), Ok(())),
        row("exp beyond skew", rs(json!({"exp": NOW - SKEW - 1})), Err(R::Expired)),
        row("exp long ago", rs(json!({"exp": 1})), Err(R::Expired)),
        row("exp zero", rs(json!({"exp": 0})), Err(R::Expired)),
        row(
            "exp exactly at now, no skew",
            mint(Algorithm::RS256, Some("rsa-1"), &claims(json!({"iss": STRICT_ISS, "exp": NOW}))),
            Err(R::Expired),
        ),
        row(
            "exp one second ahead, no skew",
            mint(Algorithm::RS256, Some("rsa-1"), &claims(json!({"iss": STRICT_ISS, "exp": NOW + 1}))),
            Ok(()),
        ),
        row("exp as a fraction", rs(json!({"exp": NOW as f64 + 0.5})), Ok(())),
        row("exp huge", rs(json!({"exp": u64::MAX})), Ok(())),
        // nbf and iat.
        row("nbf in the future beyond skew", rs(json!({"nbf": NOW + SKEW + 1})), Err(R::NotYetValid)),
        row("nbf in the future at the skew", rs(json!({"nbf": NOW + SKEW})), Ok(())),
        row("nbf in the future within skew", rs(json!({"nbf": NOW + 30})), Ok(())),
        row("nbf in the past", rs(json!({"nbf": NOW - 3600})), Ok(())),
        row("iat in the future beyond skew", rs(json!({"iat": NOW + SKEW + 1})), Err(R::NotYetValid)),
        row("iat in the future within skew", rs(json!({"iat": NOW + 30})), Ok(())),
        row("iat missing", rs(json!({"iat": null})), Ok(())),
        // Missing and malformed times.
        row("missing exp, exp required", rs(json!({"exp": null})), Err(R::NoExpiry)),
        row(
            "missing exp, exp not required",
            mint(Algorithm::RS256, Some("rsa-1"), &claims(json!({"iss": LAX_ISS, "exp": null}))),
            Ok(()),
        ),
        row("exp as a string", rs(json!({"exp": (NOW + 3600).to_string()})), Err(R::BadTime)),
        row("exp negative", rs(json!({"exp": -1})), Err(R::BadTime)),
        row("exp a boolean", rs(json!({"exp": true})), Err(R::BadTime)),
        row(
            "exp null",
            hs256_raw(
                r#"{"alg":"HS256","kid":"hs-1"}"#,
                &format!(r#"{{"iss":"{ISS}","aud":"{AUD}","exp":null}}"#),
            ),
            Err(R::BadTime),
        ),
        row("exp absurdly large fraction", rs(json!({"exp": 1e300})), Err(R::BadTime)),
        row("nbf as a string", rs(json!({"nbf": "0"})), Err(R::BadTime)),
        row("iat as a string", rs(json!({"iat": NOW.to_string()})), Err(R::BadTime)),
        // Audience.
        row("aud mismatch", rs(json!({"aud": "https://gw.example.com/other"})), Err(R::Audience)),
        row("aud prefix of an audience", rs(json!({"aud": "https://gw.example.com"})), Err(R::Audience)),
        row("aud different case", rs(json!({"aud": "HTTPS://GW.EXAMPLE.COM/MCP"})), Err(R::Audience)),
        row("aud missing", rs(json!({"aud": null})), Err(R::Audience)),
        row("aud empty array", rs(json!({"aud": []})), Err(R::Audience)),
        row("aud a number", rs(json!({"aud": 7})), Err(R::Audience)),
        row("aud array containing the audience", rs(json!({"aud": ["https://a.example", AUD]})), Ok(())),
        row("aud array with non-strings and the audience", rs(json!({"aud": [1, null, AUD]})), Ok(())),
        row(
            "aud array without the audience",
            rs(json!({"aud": ["https://a.example", [AUD]]})),
            Err(R::Audience),
        ),
        row("aud second configured audience", rs(json!({"aud": "https://other.example.com"})), Ok(())),
        // Issuer.
        row("iss mismatch", rs(json!({"iss": "https://evil.example.com"})), Err(R::Issuer)),
        row("iss with a trailing slash", rs(json!({"iss": "https://idp.example.com/"})), Err(R::Issuer)),
        row("iss missing", rs(json!({"iss": null})), Err(R::Issuer)),
        row("iss not a string", rs(json!({"iss": [ISS]})), Err(R::Issuer)),
        // Per-issuer allow-list.
        row(
            "alg not in the provider's allow-list",
            mint(Algorithm::ES256, Some("ec-1"), &claims(json!({"iss": STRICT_ISS}))),
            Err(R::Alg),
        ),
        row(
            "HS256 not in the provider's allow-list",
            mint(Algorithm::HS256, Some("hs-1"), &claims(json!({"iss": STRICT_ISS}))),
            Err(R::Alg),
        ),
        // Size.
        row("token over 16 KiB", "a".repeat(MAX_TOKEN + 1), Err(R::TooLarge)),
        row(
            "signed token over 16 KiB",
            mint(Algorithm::RS256, Some("rsa-1"), &claims(json!({"blob": big_claim}))),
            Err(R::TooLarge),
        ),
    ];
    run_rows(&rows);
}

/// A segment with `=` padding added (it must need some).
fn padded(seg: &str) -> String {
    let pad = (4 - seg.len() % 4) % 4;
    assert_ne!(pad, 0, "segment {seg:?} needs no padding");
    format!("{seg}{}", "=".repeat(pad))
}

#[test]
fn large_tokens_just_under_the_limit_are_processed() {
    // ~15.5 KiB in one claim.
    let mut n = 11_000;
    let token = loop {
        let t = rs(json!({"blob": "y".repeat(n)}));
        if t.len() > MAX_TOKEN - 256 {
            break t;
        }
        n += 100;
    };
    assert!(token.len() > 15 * 1024 && token.len() <= MAX_TOKEN, "{}", token.len());
    let v = verify(token.as_bytes(), &providers(), NOW).unwrap();
    assert_eq!(v.principal.claims().get("blob").unwrap().as_str().unwrap().len(), n);

    // Many small members instead of one big one.
    let mut edit = serde_json::Map::new();
    for i in 0..900 {
        edit.insert(format!("c{i}"), json!(i));
    }
    let token = rs(Value::Object(edit));
    assert!(token.len() > 12 * 1024 && token.len() <= MAX_TOKEN, "{}", token.len());
    assert_eq!(check(&token), Ok(()));

    // A token of exactly MAX_TOKEN bytes is not refused for its size.
    let dots = format!("{}.{}.", "a".repeat(MAX_TOKEN / 2), "a".repeat(MAX_TOKEN / 2 - 2));
    assert_eq!(dots.len(), MAX_TOKEN);
    assert_eq!(check(&dots), Err(Reject::Signature));
}

// ---------------------------------------------------------------------------------------------
// Acceptance of independently minted tokens, and the principal built from them.
// ---------------------------------------------------------------------------------------------

#[test]
fn every_algorithm_minted_by_jsonwebtoken_is_accepted() {
    let providers = providers();
    for (alg, kid) in [
        (Algorithm::RS256, "rsa-1"),
        (Algorithm::RS384, "rsa-1"),
        (Algorithm::RS512, "rsa-1"),
        (Algorithm::PS256, "rsa-1"),
        (Algorithm::PS384, "rsa-1"),
        (Algorithm::PS512, "rsa-1"),
        (Algorithm::ES256, "ec-1"),
        (Algorithm::EdDSA, "ed-1"),
        (Algorithm::HS256, "hs-1"),
    ] {
        for kid in [Some(kid), None] {
            let token = mint(alg, kid, &claims(json!({"sub": format!("{alg:?}")})));
            let v = verify(token.as_bytes(), &providers, NOW)
                .unwrap_or_else(|r| panic!("{alg:?} {kid:?}: {r:?}"));
            assert_eq!(v.provider, 0);
            assert_eq!(v.epoch, 0);
            assert_eq!(v.deadline, NOW + 3600 + SKEW);
            assert_eq!(v.principal.kind, PrincipalKind::Jwt);
            assert_eq!(v.principal.subject(), format!("{alg:?}"));
        }
    }
}

#[test]
fn the_provider_is_chosen_by_issuer() {
    let token = mint(Algorithm::RS256, Some("rsa-1"), &claims(json!({"iss": LAX_ISS, "exp": null})));
    let v = verify(token.as_bytes(), &providers(), NOW).unwrap();
    assert_eq!(v.provider, 2);
    assert_eq!(v.deadline, u64::MAX, "no exp: no deadline");
    assert_eq!(v.principal.id(), format!("jwt {LAX_ISS} alice"));
}

#[test]
fn principal_from_claims() {
    let c = claims(json!({
        "sub": "user-42",
        "scope": "tools:read  tools:write ",
        "scp": ["admin", "tools:read"],
        "org": {"id": "acme", "name": "Acme"},
        "email": "u42@acme.example",
        "groups": ["eng", "ops"],
        "level": 3,
        "note": "line one\nline two",
    }));
    let token = mint(Algorithm::ES256, Some("ec-1"), &c);
    let v = verify(token.as_bytes(), &providers(), NOW).unwrap();
    let p = v.principal;
    assert_eq!(p.kind, PrincipalKind::Jwt);
    assert_eq!(p.subject(), "user-42");
    assert_eq!(p.id(), format!("jwt {ISS} user-42"));
    let scopes: Vec<&str> = p.scopes().iter().collect();
    assert_eq!(scopes, ["admin", "tools:read", "tools:write"], "scope and scp merged, sorted, deduplicated");
    assert_eq!(p.claims().at_path("org.name").unwrap().as_str(), Some("Acme"));
    let headers: Vec<(&str, &str)> = p.headers().collect();
    assert_eq!(
        headers,
        [
            ("x-org-id", "acme"),
            ("x-user-email", "u42@acme.example"),
            ("x-groups", "eng,ops"),
            ("x-level", "3"),
        ],
        "a claim with a newline (note) and an absent claim are not sent"
    );
}

#[test]
fn claim_header_values_never_carry_control_characters() {
    for bad in ["a\r\nx-injected: 1", "tab\there", "nul\u{0}", "del\u{7f}", ""] {
        let token = rs(json!({"email": bad}));
        let p = verify(token.as_bytes(), &providers(), NOW).unwrap().principal;
        assert!(p.headers().all(|(k, _)| k != "x-user-email"), "{bad:?} became a header");
    }
    let token = rs(json!({"groups": ["a", "b\nc"]}));
    let p = verify(token.as_bytes(), &providers(), NOW).unwrap().principal;
    assert!(p.headers().all(|(k, _)| k != "x-groups"));
    let token = rs(json!({"groups": ["a", 1]}));
    let p = verify(token.as_bytes(), &providers(), NOW).unwrap().principal;
    assert!(p.headers().all(|(k, _)| k != "x-groups"), "mixed arrays are not sent");
}

#[test]
fn sub_is_a_string() {
    // A number, boolean, array or object `sub` must not let `client_id` become the subject.
    for bad in [json!(123), json!(true), json!(["alice"]), json!({"id": "alice"})] {
        let token = rs(json!({"sub": bad, "client_id": "admin"}));
        assert_eq!(verify(token.as_bytes(), &providers(), NOW).err(), Some(Reject::Subject), "{bad}");
    }
    let token = rs(json!({"sub": "alice", "client_id": "admin"}));
    assert_eq!(verify(token.as_bytes(), &providers(), NOW).unwrap().principal.subject(), "alice");
}

#[test]
fn claim_paths_walk_nested_objects_only() {
    // claimToHeaders maps `org.id`: a flat member literally named "org.id" is not it.
    let flat = rs(json!({"org.id": "evil"}));
    let p = verify(flat.as_bytes(), &providers(), NOW).unwrap().principal;
    assert!(p.headers().all(|(k, _)| k != "x-org-id"), "{:?}", p.headers().collect::<Vec<_>>());
    let both = rs(json!({"org.id": "evil", "org": {"id": "acme"}}));
    let p = verify(both.as_bytes(), &providers(), NOW).unwrap().principal;
    let org: Vec<&str> = p.headers().filter(|(k, _)| *k == "x-org-id").map(|(_, v)| v).collect();
    assert_eq!(org, ["acme"]);
    let p = crate::auth::Principal::with_claims(
        PrincipalKind::Jwt,
        "a",
        &json!({"org.id": "evil", "a": {"b.c": 1}}),
    );
    let at = |path| p.claims().at_path(path).map(|c| c.to_serde());
    assert_eq!(at("org.id"), None);
    assert_eq!(at("a.b.c"), None);
    assert_eq!(at("a"), Some(json!({"b.c": 1})));
    // A URL names a namespaced top-level claim, dots and all (a deny rule keyed on one must match).
    let claims = json!({"https://corp.example.com/blocked": true, "https://corp": {"example": {"com/blocked": false}}});
    let p = crate::auth::Principal::with_claims(PrincipalKind::Jwt, "a", &claims);
    let at = |path| p.claims().at_path(path).map(|c| c.to_serde());
    assert_eq!(at("https://corp.example.com/blocked"), Some(json!(true)));
}

#[test]
fn subject_falls_back_to_the_client() {
    let p = |edit| verify(rs(edit).as_bytes(), &providers(), NOW).unwrap().principal;
    assert_eq!(p(json!({"sub": null, "client_id": "svc-1", "azp": "svc-2"})).subject(), "svc-1");
    assert_eq!(p(json!({"sub": null, "azp": "svc-2"})).subject(), "svc-2");
    // A token that names nobody is refused: every such token would share one principal.
    for nobody in [json!({"sub": null}), json!({"sub": ""}), json!({"sub": null, "client_id": ""})] {
        assert_eq!(
            verify(rs(nobody.clone()).as_bytes(), &providers(), NOW).err(),
            Some(Reject::Subject),
            "{nobody}"
        );
    }
    assert!(p(json!({"scope": 7})).scopes().is_empty());
    assert_eq!(p(json!({"scp": "a b"})).scopes().iter().collect::<Vec<_>>(), ["a", "b"]);
}

// ---------------------------------------------------------------------------------------------
// Protected resource metadata (RFC 9728).
// ---------------------------------------------------------------------------------------------

fn prm(resource: Option<&str>, endpoint: &str) -> Prm {
    let scopes = ["a".to_string(), "b".to_string()];
    let servers = ["https://idp.example.com".to_string()];
    Prm::new(
        resource,
        endpoint,
        PrmFields { authorization_servers: &servers, scopes: Some(&scopes), ..PrmFields::default() },
    )
}

#[test]
fn prm_url_puts_the_well_known_segment_before_the_path() {
    for (resource, url, path) in [
        (
            "https://gw.example.com/mcp/weather",
            "https://gw.example.com/.well-known/oauth-protected-resource/mcp/weather",
            "/.well-known/oauth-protected-resource/mcp/weather",
        ),
        (
            "https://gw.example.com/mcp",
            "https://gw.example.com/.well-known/oauth-protected-resource/mcp",
            "/.well-known/oauth-protected-resource/mcp",
        ),
        (
            "https://gw.example.com:8443/mcp",
            "https://gw.example.com:8443/.well-known/oauth-protected-resource/mcp",
            "/.well-known/oauth-protected-resource/mcp",
        ),
        ("https://gw.example.com", "https://gw.example.com/.well-known/oauth-protected-resource", PRM_PREFIX),
        (
            "https://gw.example.com/",
            "https://gw.example.com/.well-known/oauth-protected-resource",
            PRM_PREFIX,
        ),
        (
            "http://[::1]:8080/x",
            "http://[::1]:8080/.well-known/oauth-protected-resource/x",
            "/.well-known/oauth-protected-resource/x",
        ),
    ] {
        let m = prm(Some(resource), "/mcp/ignored");
        assert_eq!(m.url.as_deref(), Some(url), "{resource}");
        assert_eq!(&*m.path, path, "{resource}");
        assert_eq!(m.url_for(b"whatever.example"), url, "a configured URL ignores Host");
        let doc: Value = serde_json::from_slice(&m.document).unwrap();
        assert_eq!(doc["resource"], resource);
        assert_eq!(m.document_for(b"whatever.example", "/mcp/ignored"), m.document.to_vec());
    }
}

#[test]
fn prm_url_of_a_resource_with_a_query_and_no_path() {
    // RFC 9728 3.1: the well-known segment goes between the host and the path and/or query.
    let m = prm(Some("https://gw.example.com?tenant=1"), "/mcp");
    assert_eq!(
        m.url.as_deref(),
        Some("https://gw.example.com/.well-known/oauth-protected-resource?tenant=1")
    );
}

#[test]
fn prm_path_of_a_resource_with_a_query() {
    let m = prm(Some("https://gw.example.com/mcp?tenant=1"), "/mcp");
    assert_eq!(
        m.url.as_deref(),
        Some("https://gw.example.com/.well-known/oauth-protected-resource/mcp?tenant=1")
    );
    assert_eq!(&*m.path, "/.well-known/oauth-protected-resource/mcp");
}

#[test]
fn prm_document_members() {
    let m = prm(Some("https://gw.example.com/mcp"), "/mcp");
    let doc: Value = serde_json::from_slice(&m.document).unwrap();
    assert_eq!(
        doc,
        json!({
            "resource": "https://gw.example.com/mcp",
            "authorization_servers": ["https://idp.example.com"],
            "scopes_supported": ["a", "b"],
            "bearer_methods_supported": ["header"],
        })
    );
    assert_eq!(m.scope.as_deref(), Some("a b"));
    let full = Prm::new(
        None,
        "/mcp",
        PrmFields {
            authorization_servers: &[],
            scopes: Some(&[]),
            name: Some("Weather"),
            documentation: Some("https://docs.example.com"),
            policy: Some("https://policy.example.com"),
            jwks_uri: Some("https://gw.example.com/jwks"),
        },
    );
    assert_eq!(full.scope, None, "no scopes, no scope parameter");
    let doc: Value = serde_json::from_slice(&full.document).unwrap();
    assert_eq!(doc["resource_name"], "Weather");
    assert_eq!(doc["resource_documentation"], "https://docs.example.com");
    assert_eq!(doc["resource_policy_uri"], "https://policy.example.com");
    assert_eq!(doc["jwks_uri"], "https://gw.example.com/jwks");
    assert!(doc.get("authorization_servers").is_none());
    assert!(doc.get("resource").is_none());
}

#[test]
fn prm_without_resource_follows_the_host() {
    let m = prm(None, "/mcp/weather");
    assert_eq!(m.url, None);
    assert_eq!(&*m.path, "/.well-known/oauth-protected-resource/mcp/weather");
    assert_eq!(
        m.url_for(b"gw.example.com:8080"),
        "http://gw.example.com:8080/.well-known/oauth-protected-resource/mcp/weather"
    );
    let doc: Value = serde_json::from_slice(&m.document_for(b"gw.example.com:8080", "/mcp/weather")).unwrap();
    assert_eq!(doc["resource"], "http://gw.example.com:8080/mcp/weather");
    assert_eq!(doc["authorization_servers"], json!(["https://idp.example.com"]));
    let first = doc.as_object().unwrap().keys().next().unwrap().clone();
    assert_eq!(first, "resource", "resource leads the document");
}

// ---------------------------------------------------------------------------------------------
// Authenticator over parsed request heads.
// ---------------------------------------------------------------------------------------------

/// A parsed `GET <target>` head to gw.example.com with extra header lines.
fn request(target: &str, headers: &[(&str, &str)]) -> (Head, Vec<u8>) {
    let mut raw = format!("GET {target} HTTP/1.1\r\nHost: gw.example.com\r\n");
    for (n, v) in headers {
        raw.push_str(&format!("{n}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    let buf = raw.into_bytes();
    let mut head = Head::default();
    assert_eq!(parse(&buf, &Limits::default(), &mut head), Ok(Parsed::Complete));
    (head, buf)
}

fn peer(s: &str) -> IpAddr {
    s.parse().unwrap()
}

struct Run {
    auth: Authenticator,
    cache: TokenCache,
    anonymous: Principal,
}

impl Run {
    fn new(auth: Authenticator) -> Run {
        let cache = TokenCache::new(auth.cache_entries(), 7);
        Run { auth, cache, anonymous: Principal::anonymous() }
    }

    fn at(
        &mut self,
        now: u64,
        from: &str,
        target: &str,
        headers: &[(&str, &str)],
    ) -> Result<Principal, Failure> {
        let (head, buf) = request(target, headers);
        self.auth.authenticate(&head, &buf, peer(from), now, &mut self.cache, &self.anonymous)
    }

    fn call(&mut self, headers: &[(&str, &str)]) -> Result<Principal, Failure> {
        self.at(NOW, "192.0.2.10", "/mcp", headers)
    }
}

fn jwt_authenticator(resource: Option<&str>) -> Authenticator {
    Authenticator {
        mode: Mode::Jwt { providers: providers(), cache_entries: 16 },
        prm: Some(prm(resource, "/mcp")),
        realm: "weather".into(),
        stripped: vec!["x-org-id".into(), "x-user-email".into()],
    }
}

#[test]
fn jwt_mode_missing_wrong_scheme_and_valid() {
    let mut run = Run::new(jwt_authenticator(Some("https://gw.example.com/mcp")));
    assert_eq!(run.call(&[]).unwrap_err(), Failure::Missing);
    // Another scheme is no bearer token at all: no error code in the challenge (RFC 6750 3.1).
    assert_eq!(run.call(&[("Authorization", "Basic YWxpY2U6cHc=")]).unwrap_err(), Failure::Missing);
    assert_eq!(run.call(&[("Authorization", "Bearer")]).unwrap_err(), Failure::Missing);
    assert_eq!(run.call(&[("Authorization", "Bearer ")]).unwrap_err(), Failure::Missing);
    assert_eq!(run.call(&[("Authorization", "Bearertoken")]).unwrap_err(), Failure::Missing);
    assert!(matches!(run.call(&[("Authorization", "Bearer a b")]), Err(Failure::Token(_))));
    assert!(matches!(run.call(&[("Authorization", "Bearer a,b")]), Err(Failure::Token(_))));
    assert!(run.cache.is_empty(), "nothing unverified is cached");

    let token = rs(json!({"scope": "a b", "org": {"id": "acme"}}));
    let p = run.call(&[("Authorization", &format!("Bearer {token}"))]).unwrap();
    assert_eq!(p.kind, PrincipalKind::Jwt);
    assert_eq!(p.subject(), "alice");
    assert_eq!(p.id(), format!("jwt {ISS} alice"));
    assert_eq!(p.headers().next(), Some(("x-org-id", "acme")));
    assert_eq!(run.cache.len(), 1);

    // Second call: a cache hit returns the same principal.
    let again = run.call(&[("Authorization", &format!("Bearer {token}"))]).unwrap();
    assert!(p.same(&again));
    assert_eq!(run.cache.len(), 1);

    // The scheme is case-insensitive and extra spaces are tolerated.
    let lower = run.call(&[("Authorization", &format!("bearer   {token}"))]).unwrap();
    assert!(p.same(&lower));
    assert!(run.auth.strips(b"X-Org-Id"));
    assert!(!run.auth.strips(b"authorization"));
}

#[test]
fn jwt_mode_cached_token_expires() {
    let mut run = Run::new(jwt_authenticator(None));
    let token = rs(json!({"exp": NOW + 10}));
    let bearer = format!("Bearer {token}");
    let p = run.at(NOW, "192.0.2.10", "/mcp", &[("Authorization", &bearer)]).unwrap();
    let hit = run.at(NOW + 10 + SKEW - 1, "192.0.2.10", "/mcp", &[("Authorization", &bearer)]).unwrap();
    assert!(p.same(&hit));
    let late = run.at(NOW + 10 + SKEW, "192.0.2.10", "/mcp", &[("Authorization", &bearer)]);
    assert_eq!(late.unwrap_err(), Failure::Token(Reject::Expired));
}

#[test]
fn jwt_mode_invalid_tokens_say_why() {
    let mut run = Run::new(jwt_authenticator(None));
    let token = rs(json!({"aud": "https://elsewhere.example.com"}));
    let f = run.call(&[("Authorization", &format!("Bearer {token}"))]).unwrap_err();
    assert_eq!(f, Failure::Token(Reject::Audience));
    assert!(run.cache.is_empty());
    let f = run.call(&[("Authorization", "Bearer ~~~.a.b")]).unwrap_err();
    assert_eq!(f, Failure::Token(Reject::Base64));
    // Descriptions go inside a quoted challenge parameter: no quotes or backslashes.
    for r in [
        Reject::TooLarge,
        Reject::Malformed,
        Reject::Encrypted,
        Reject::Base64,
        Reject::Json,
        Reject::Alg,
        Reject::Unsupported,
        Reject::Issuer,
        Reject::UnknownKid,
        Reject::KeyMismatch,
        Reject::Signature,
        Reject::NoExpiry,
        Reject::Expired,
        Reject::NotYetValid,
        Reject::BadTime,
        Reject::Audience,
        Reject::Subject,
    ] {
        assert!(!r.describe().contains(['"', '\\']), "{r:?}");
    }
}

#[test]
fn bearer_challenges() {
    let auth = jwt_authenticator(Some("https://gw.example.com/mcp"));
    assert_eq!(
        auth.challenge(Failure::Missing, b"gw.example.com"),
        r#"Bearer resource_metadata="https://gw.example.com/.well-known/oauth-protected-resource/mcp", scope="a b""#
    );
    let invalid = auth.challenge(Failure::Token(Reject::Expired), b"gw.example.com");
    assert!(invalid.starts_with(r#"Bearer error="invalid_token", error_description=""#), "{invalid}");
    assert_eq!(
        invalid,
        "Bearer error=\"invalid_token\", error_description=\"The access token has expired\", \
         resource_metadata=\"https://gw.example.com/.well-known/oauth-protected-resource/mcp\", scope=\"a b\""
    );

    // Without `resource` the metadata URL follows the request's Host.
    let auth = jwt_authenticator(None);
    assert_eq!(
        auth.challenge(Failure::Missing, b"localhost:8080"),
        r#"Bearer resource_metadata="http://localhost:8080/.well-known/oauth-protected-resource/mcp", scope="a b""#
    );

    // Without metadata: the realm alone, or the error alone.
    let bare = Authenticator { prm: None, ..jwt_authenticator(None) };
    assert_eq!(bare.challenge(Failure::Missing, b"h"), r#"Bearer realm="weather""#);
    assert_eq!(
        bare.challenge(Failure::Credential("x"), b"h"),
        r#"Bearer error="invalid_token", error_description="x""#
    );
}

#[test]
fn none_mode_is_anonymous() {
    let mut run = Run::new(Authenticator::none("open"));
    assert!(run.auth.anonymous());
    assert_eq!(run.auth.cache_entries(), 0);
    assert!(run.auth.providers().is_empty());
    let p = run.call(&[("Authorization", "Bearer whatever")]).unwrap();
    assert!(p.same(&run.anonymous));
    assert_eq!(p.kind, PrincipalKind::Anonymous);
}

fn api_key_authenticator(location: KeyIn, name: &str) -> Authenticator {
    Authenticator {
        mode: Mode::ApiKey {
            location,
            name: name.into(),
            keys: Secrets::new([("ci", "k-123"), ("ops", "a b&c=d%")]).unwrap(),
        },
        prm: None,
        realm: "tools".into(),
        stripped: Vec::new(),
    }
}

#[test]
fn api_key_in_a_header() {
    let mut run = Run::new(api_key_authenticator(KeyIn::Header, "x-api-key"));
    let p = run.call(&[("X-Api-Key", "k-123")]).unwrap();
    assert_eq!(p.kind, PrincipalKind::ApiKey);
    assert_eq!(p.subject(), "ci");
    assert_eq!(p.id(), "key ci");
    assert!(run.cache.is_empty());
    assert_eq!(run.call(&[("x-api-key", "a b&c=d%")]).unwrap().subject(), "ops");
    assert_eq!(run.call(&[]).unwrap_err(), Failure::Missing);
    assert_eq!(run.call(&[("x-api-key-2", "k-123")]).unwrap_err(), Failure::Missing);
    assert_eq!(
        run.call(&[("x-api-key", "k-124")]).unwrap_err(),
        Failure::Credential("The API key is not valid")
    );
    assert_eq!(run.call(&[("x-api-key", "")]).unwrap_err(), Failure::Credential("The API key is not valid"));
    assert_eq!(
        run.call(&[("x-api-key", "k-123"), ("X-API-KEY", "k-123")]).unwrap_err(),
        Failure::Repeated("The credential header is repeated")
    );
    // A key in the query does not count for a header endpoint.
    assert_eq!(run.at(NOW, "192.0.2.1", "/mcp?x-api-key=k-123", &[]).unwrap_err(), Failure::Missing);
    assert_eq!(run.auth.challenge(Failure::Missing, b"h"), r#"ApiKey realm="tools""#);
}

#[test]
fn api_key_in_the_query() {
    let mut run = Run::new(api_key_authenticator(KeyIn::Query, "api_key"));
    let mut at = |target: &str| run.at(NOW, "192.0.2.1", target, &[]);
    assert_eq!(at("/mcp?api_key=k-123").unwrap().subject(), "ci");
    assert_eq!(at("/mcp?x=1&api_key=k%2D123&y").unwrap().subject(), "ci", "percent-encoded");
    assert_eq!(at("/mcp?api_key=a+b%26c%3Dd%25").unwrap().subject(), "ops", "+ is a space");
    assert_eq!(at("/mcp?api_key=a%20b%26c%3dd%25").unwrap().subject(), "ops");
    assert_eq!(at("/mcp").unwrap_err(), Failure::Missing);
    assert_eq!(at("/mcp?apikey=k-123").unwrap_err(), Failure::Missing);
    assert_eq!(at("/mcp?api_key=k-124").unwrap_err(), Failure::Credential("The API key is not valid"));
    assert_eq!(at("/mcp?api_key").unwrap_err(), Failure::Credential("The API key is not valid"));
    assert_eq!(
        at("/mcp?api_key=k%2").unwrap_err(),
        Failure::Credential("The API key is not valid percent-encoding")
    );
    assert_eq!(
        at("/mcp?api_key=k%zz123").unwrap_err(),
        Failure::Credential("The API key is not valid percent-encoding")
    );
    assert_eq!(
        at("/mcp?api_key=k-123&api_key=k-123").unwrap_err(),
        Failure::Repeated("The API key parameter is repeated")
    );
}

fn basic_authenticator() -> Authenticator {
    Authenticator {
        mode: Mode::Basic { users: Secrets::new([("alice", "s3cret:with-colon"), ("bob", "pw1")]).unwrap() },
        prm: None,
        realm: "files".into(),
        stripped: Vec::new(),
    }
}

fn basic(user_pass: &str) -> String {
    format!("Basic {}", base64_simd::STANDARD.encode_to_string(user_pass.as_bytes()))
}

#[test]
fn basic_mode() {
    let mut run = Run::new(basic_authenticator());
    let p = run.call(&[("Authorization", &basic("alice:s3cret:with-colon"))]).unwrap();
    assert_eq!(p.kind, PrincipalKind::Basic);
    assert_eq!(p.subject(), "alice");
    assert_eq!(p.id(), "basic alice");
    assert_eq!(run.call(&[("Authorization", &basic("bob:pw1"))]).unwrap().subject(), "bob");
    let lower = format!("basic {}", base64_simd::STANDARD.encode_to_string(b"bob:pw1"));
    assert_eq!(run.call(&[("Authorization", &lower)]).unwrap().subject(), "bob");

    let invalid = Failure::Credential("The user name or password is not valid");
    assert_eq!(run.call(&[]).unwrap_err(), Failure::Missing);
    assert_eq!(run.call(&[("Authorization", &basic("alice:wrong"))]).unwrap_err(), invalid);
    assert_eq!(run.call(&[("Authorization", &basic("alice:"))]).unwrap_err(), invalid);
    assert_eq!(run.call(&[("Authorization", &basic("mallory:pw1"))]).unwrap_err(), invalid);
    assert_eq!(run.call(&[("Authorization", &basic("bob"))]).unwrap_err(), invalid, "no colon");
    assert_eq!(run.call(&[("Authorization", &basic(":pw1"))]).unwrap_err(), invalid);
    assert_eq!(run.call(&[("Authorization", "Basic !!!garbage")]).unwrap_err(), invalid);
    assert_eq!(run.call(&[("Authorization", "Basic Ym9iOnB3MQ==")]).unwrap().subject(), "bob");
    // RFC 7617 credentials are RFC 4648 base64, padding included.
    assert_eq!(run.call(&[("Authorization", "Basic Ym9iOnB3MQ")]).unwrap_err(), invalid, "unpadded");
    assert_eq!(run.call(&[("Authorization", "Basic Ym9iOnB3MQ=")]).unwrap_err(), invalid, "short padding");
    assert_eq!(run.call(&[("Authorization", "Basic Ym9iOnB3MQ--")]).unwrap_err(), invalid, "url alphabet");
    assert_eq!(run.call(&[("Authorization", "Basic")]).unwrap_err(), invalid);
    let token = rs(json!({}));
    assert_eq!(run.call(&[("Authorization", &format!("Bearer {token}"))]).unwrap_err(), invalid);
    assert_eq!(run.auth.challenge(invalid, b"h"), r#"Basic realm="files", charset="UTF-8""#);
    assert_eq!(run.auth.challenge(Failure::Missing, b"h"), r#"Basic realm="files", charset="UTF-8""#);
}

fn proxy_authenticator(require_user: bool) -> Authenticator {
    Authenticator {
        mode: Mode::Proxy {
            header: "x-forwarded-user".into(),
            trusted: vec![Cidr::parse("10.0.0.0/8").unwrap(), Cidr::parse("::1").unwrap()],
            require_user,
        },
        prm: None,
        realm: "internal".into(),
        stripped: vec!["x-forwarded-user".into()],
    }
}

#[test]
fn proxy_mode_requiring_a_user() {
    let mut run = Run::new(proxy_authenticator(true));
    let user = [("X-Forwarded-User", "alice")];
    let p = run.at(NOW, "10.1.2.3", "/mcp", &user).unwrap();
    assert_eq!(p.kind, PrincipalKind::Proxy);
    assert_eq!(p.subject(), "alice");
    assert_eq!(p.id(), "proxy alice");
    assert_eq!(run.at(NOW, "::ffff:10.1.2.3", "/mcp", &user).unwrap().subject(), "alice");
    assert_eq!(run.at(NOW, "::1", "/mcp", &user).unwrap().subject(), "alice");

    // The header from anyone else is ignored as if it had not been sent.
    assert_eq!(run.at(NOW, "192.0.2.7", "/mcp", &user).unwrap_err(), Failure::Missing);
    assert_eq!(run.at(NOW, "11.0.0.1", "/mcp", &user).unwrap_err(), Failure::Missing);
    assert_eq!(run.at(NOW, "10.1.2.3", "/mcp", &[]).unwrap_err(), Failure::Missing);
    assert_eq!(run.at(NOW, "10.1.2.3", "/mcp", &[("x-forwarded-user", "")]).unwrap_err(), Failure::Missing);
    assert_eq!(
        run.at(NOW, "10.1.2.3", "/mcp", &[("x-forwarded-user", "alice"), ("X-Forwarded-User", "root")])
            .unwrap_err(),
        Failure::Repeated("The credential header is repeated")
    );
    let long = "u".repeat(257);
    assert_eq!(
        run.at(NOW, "10.1.2.3", "/mcp", &[("x-forwarded-user", &long)]).unwrap_err(),
        Failure::Credential("The identity header is not a valid user name")
    );
    assert!(run.auth.strips(b"X-FORWARDED-USER"));
}

#[test]
fn proxy_mode_without_a_required_user() {
    let mut run = Run::new(proxy_authenticator(false));
    let user = [("x-forwarded-user", "alice")];
    assert_eq!(run.at(NOW, "10.9.9.9", "/mcp", &user).unwrap().subject(), "alice");
    let anon = run.at(NOW, "192.0.2.7", "/mcp", &user).unwrap();
    assert!(anon.same(&run.anonymous), "an untrusted peer's header is ignored");
    let anon = run.at(NOW, "10.9.9.9", "/mcp", &[]).unwrap();
    assert!(anon.same(&run.anonymous));
    // A repeated header from a trusted peer is refused even when a user is optional.
    assert_eq!(
        run.at(NOW, "10.9.9.9", "/mcp", &[("x-forwarded-user", "a"), ("x-forwarded-user", "b")]).unwrap_err(),
        Failure::Repeated("The credential header is repeated")
    );
    // From an untrusted peer the repetition does not matter: the header is not read.
    let anon =
        run.at(NOW, "192.0.2.7", "/mcp", &[("x-forwarded-user", "a"), ("x-forwarded-user", "b")]).unwrap();
    assert!(anon.same(&run.anonymous));
}

#[test]
fn failure_messages() {
    assert_eq!(Failure::Missing.message(), "Unauthorized: this endpoint requires authentication");
    assert_eq!(Failure::Credential("why").message(), "why");
    assert_eq!(Principal::user(PrincipalKind::Basic, "u").id(), "basic u");
    assert_eq!(Principal::anonymous().id(), "");
}
